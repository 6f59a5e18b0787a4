//! VPC Lattice resource gateways and configurations, and RAM resource shares, as a small
//! stateful model on the SDK's mock layer: the emulator has neither (moto 5.2.5 has no
//! resource gateways or configurations, and its RAM refuses to share a configuration), so
//! resource mode's bootstrap, re-runs and teardown are tested against this model, with EC2
//! and RDS on the emulator.
//!
//! What it models, from the API references: creates and deletes are asynchronous (a
//! gateway or configuration is `*_IN_PROGRESS` for a few reads); names are unique in the
//! account (ConflictException); ARN configurations take no port ranges and SINGLE ones need
//! them (ValidationException); a gateway is not deleted while a configuration uses it, nor
//! a configuration while a consumer endpoint is associated (ConflictException); a deleted
//! share stays listed as DELETED; an account outside the organization stays ASSOCIATING
//! until it accepts. https://docs.aws.amazon.com/vpc-lattice/latest/APIReference/
//! https://docs.aws.amazon.com/ram/latest/APIReference/

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use aws_sdk_ram::types as ram;
use aws_sdk_vpclattice::types as lt;
use aws_smithy_mocks::{mock, mock_client, MockResponse, Rule, RuleMode};
use aws_smithy_types::error::ErrorMetadata;
use pglink::bootstrap::resource::ResourceClients;

/// The account the fake (and moto) act as.
pub const ACCOUNT: &str = "123456789012";
const REGION: &str = "us-east-1";

#[derive(Debug, Clone)]
pub struct Gateway {
    pub id: String,
    pub name: String,
    pub vpc: String,
    pub subnets: Vec<String>,
    pub groups: Vec<String>,
    pub per_eni: i32,
    pub tags: HashMap<String, String>,
    pub account: String,
    status: lt::ResourceGatewayStatus,
    reads_left: u32,
}

#[derive(Debug, Clone)]
pub struct Configuration {
    pub id: String,
    pub name: String,
    pub gateway: String,
    pub kind: lt::ResourceConfigurationType,
    pub definition: lt::ResourceConfigurationDefinition,
    pub ports: Vec<String>,
    pub tags: HashMap<String, String>,
    status: lt::ResourceConfigurationStatus,
    reads_left: u32,
}

#[derive(Debug, Clone)]
pub struct Share {
    pub arn: String,
    pub name: String,
    pub status: ram::ResourceShareStatus,
    pub external: bool,
    pub tags: Vec<(String, String)>,
    /// (entity, status) for accounts and for resources.
    pub principals: Vec<(String, String)>,
    pub resources: Vec<(String, String)>,
}

/// A consumer's resource endpoint on a configuration.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub id: String,
    pub configuration: String,
    pub vpc_endpoint: String,
    pub owner: String,
}

/// A consumer's service network associated with a configuration.
#[derive(Debug, Clone)]
pub struct Network {
    pub id: String,
    pub configuration: String,
    pub service_network: String,
}

#[derive(Debug, Default)]
pub struct State {
    pub gateways: Vec<Gateway>,
    pub configurations: Vec<Configuration>,
    pub shares: Vec<Share>,
    pub endpoints: Vec<Endpoint>,
    pub networks: Vec<Network>,
    /// Every mutating call, in order.
    pub calls: Vec<String>,
    /// The next call of this operation fails with ServiceQuotaExceededException (which the
    /// SDK does not retry).
    pub fail_next: Option<&'static str>,
    /// Reads of a resource before a create or delete settles (pglink looks every 10 s).
    pub settle_reads: u32,
    next_id: u64,
}

impl State {
    fn id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}-{:017x}", self.next_id)
    }

    fn fails(&mut self, op: &'static str) -> bool {
        self.calls.push(op.to_string());
        if self.fail_next == Some(op) {
            self.fail_next = None;
            return true;
        }
        false
    }

    /// Mutating calls of this name so far.
    pub fn count(&self, op: &str) -> usize {
        self.calls.iter().filter(|c| *c == op).count()
    }
}

fn arn(kind: &str, id: &str) -> String {
    format!("arn:aws:vpc-lattice:{REGION}:{ACCOUNT}:{kind}/{id}")
}

fn meta(code: &str, message: &str) -> ErrorMetadata {
    ErrorMetadata::builder().code(code).message(message).build()
}

/// The model, and clients that answer from it.
#[derive(Clone, Default)]
pub struct Fake {
    pub state: Arc<Mutex<State>>,
}

impl Fake {
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A gateway of someone else's stack (another name, its own tags) in the same account.
    pub fn foreign_gateway(&self, name: &str) {
        let mut s = self.state();
        let id = s.id("rgw");
        s.gateways.push(Gateway {
            id,
            name: name.into(),
            vpc: "vpc-other".into(),
            subnets: vec![],
            groups: vec![],
            per_eni: 16,
            tags: HashMap::from([("team".to_string(), "payments".to_string())]),
            account: ACCOUNT.into(),
            status: lt::ResourceGatewayStatus::Active,
            reads_left: 0,
        });
    }

    /// A consumer's endpoint on the configuration named `name`.
    pub fn consumer_endpoint(&self, name: &str, owner: &str) {
        let mut s = self.state();
        let cfg = s
            .configurations
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.id.clone())
            .expect("the configuration exists");
        let id = s.id("rcfg-ep");
        let vpce = s.id("vpce");
        s.endpoints.push(Endpoint {
            id,
            configuration: cfg,
            vpc_endpoint: vpce,
            owner: owner.into(),
        });
    }

    /// A consumer's service network associated with the configuration named `name`.
    pub fn consumer_network(&self, name: &str, service_network: &str) {
        let mut s = self.state();
        let cfg = s
            .configurations
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.id.clone())
            .expect("the configuration exists");
        let id = s.id("snra");
        s.networks.push(Network {
            id,
            configuration: cfg,
            service_network: service_network.into(),
        });
    }

    pub fn clients(&self) -> ResourceClients {
        let lattice = self.lattice_rules();
        let ram = self.ram_rules();
        let caller = mock!(aws_sdk_sts::Client::get_caller_identity).then_output(|| {
            aws_sdk_sts::operation::get_caller_identity::GetCallerIdentityOutput::builder()
                .account(ACCOUNT)
                .build()
        });
        let lattice: Vec<&Rule> = lattice.iter().collect();
        let ram: Vec<&Rule> = ram.iter().collect();
        ResourceClients {
            lattice: mock_client!(aws_sdk_vpclattice, RuleMode::MatchAny, &lattice),
            ram: mock_client!(aws_sdk_ram, RuleMode::MatchAny, &ram),
            sts: mock_client!(aws_sdk_sts, RuleMode::MatchAny, &[&caller]),
            metrics: pglink::metrics::Metrics::new(),
        }
    }

    fn lattice_rules(&self) -> Vec<Rule> {
        use aws_sdk_vpclattice::operation as op;
        use aws_sdk_vpclattice::Client;
        let st = |f: &Fake| f.state.clone();
        let mut rules = Vec::new();

        let s = st(self);
        rules.push(
            mock!(Client::list_resource_gateways).then_compute_output(move |_| {
                let s = s.lock().unwrap();
                let items = s.gateways.iter().map(|g| {
                    lt::ResourceGatewaySummary::builder()
                        .id(&g.id)
                        .name(&g.name)
                        .arn(format!(
                            "arn:aws:vpc-lattice:{REGION}:{}:resourcegateway/{}",
                            g.account, g.id
                        ))
                        .status(g.status.clone())
                        .vpc_identifier(&g.vpc)
                        .set_subnet_ids(Some(g.subnets.clone()))
                        .set_security_group_ids(Some(g.groups.clone()))
                        .ip_address_type(lt::ResourceGatewayIpAddressType::Ipv4)
                        .ipv4_addresses_per_eni(g.per_eni)
                        .build()
                });
                op::list_resource_gateways::ListResourceGatewaysOutput::builder()
                    .set_items(Some(items.collect()))
                    .build()
            }),
        );

        let s = st(self);
        rules.push(
            mock!(Client::create_resource_gateway).then_compute_response(move |r| {
                let mut s = s.lock().unwrap();
                if s.fails("CreateResourceGateway") {
                    return MockResponse::Error(
                        op::create_resource_gateway::CreateResourceGatewayError::generic(meta(
                            "ServiceQuotaExceededException",
                            "resource gateways per VPC",
                        )),
                    );
                }
                let name = r.name().unwrap_or_default().to_string();
                if s.gateways.iter().any(|g| g.name == name) {
                    return MockResponse::Error(
                        op::create_resource_gateway::CreateResourceGatewayError::generic(meta(
                            "ConflictException",
                            "a resource gateway with this name exists",
                        )),
                    );
                }
                let id = s.id("rgw");
                let reads_left = s.settle_reads;
                s.gateways.push(Gateway {
                    id: id.clone(),
                    name: name.clone(),
                    vpc: r.vpc_identifier().unwrap_or_default().into(),
                    subnets: r.subnet_ids().to_vec(),
                    groups: r.security_group_ids().to_vec(),
                    per_eni: r.ipv4_addresses_per_eni().unwrap_or(16),
                    tags: r.tags().cloned().unwrap_or_default(),
                    account: ACCOUNT.into(),
                    status: lt::ResourceGatewayStatus::CreateInProgress,
                    reads_left,
                });
                MockResponse::Output(
                    op::create_resource_gateway::CreateResourceGatewayOutput::builder()
                        .id(&id)
                        .name(name)
                        .arn(arn("resourcegateway", &id))
                        .status(lt::ResourceGatewayStatus::CreateInProgress)
                        .build(),
                )
            }),
        );

        let s = st(self);
        rules.push(
            mock!(Client::get_resource_gateway).then_compute_response(move |r| {
                let mut s = s.lock().unwrap();
                let id = r.resource_gateway_identifier().unwrap_or_default();
                let Some(i) = s.gateways.iter().position(|g| g.id == id) else {
                    return MockResponse::Error(
                        op::get_resource_gateway::GetResourceGatewayError::generic(meta(
                            "ResourceNotFoundException",
                            "no such resource gateway",
                        )),
                    );
                };
                let g = &mut s.gateways[i];
                if g.reads_left > 0 {
                    g.reads_left -= 1;
                } else if g.status == lt::ResourceGatewayStatus::DeleteInProgress {
                    s.gateways.remove(i);
                    return MockResponse::Error(
                        op::get_resource_gateway::GetResourceGatewayError::generic(meta(
                            "ResourceNotFoundException",
                            "no such resource gateway",
                        )),
                    );
                } else {
                    g.status = lt::ResourceGatewayStatus::Active;
                }
                let g = &s.gateways[i];
                MockResponse::Output(
                    op::get_resource_gateway::GetResourceGatewayOutput::builder()
                        .id(&g.id)
                        .name(&g.name)
                        .status(g.status.clone())
                        .vpc_id(&g.vpc)
                        .build(),
                )
            }),
        );

        let s = st(self);
        rules.push(
            mock!(Client::update_resource_gateway).then_compute_output(move |r| {
                let mut s = s.lock().unwrap();
                s.calls.push("UpdateResourceGateway".into());
                let id = r
                    .resource_gateway_identifier()
                    .unwrap_or_default()
                    .to_string();
                if let Some(g) = s.gateways.iter_mut().find(|g| g.id == id) {
                    g.groups = r.security_group_ids().to_vec();
                    g.status = lt::ResourceGatewayStatus::UpdateInProgress;
                    g.reads_left = 1;
                }
                op::update_resource_gateway::UpdateResourceGatewayOutput::builder()
                    .id(id)
                    .build()
            }),
        );

        let s = st(self);
        rules.push(
            mock!(Client::delete_resource_gateway).then_compute_response(move |r| {
                let mut s = s.lock().unwrap();
                s.calls.push("DeleteResourceGateway".into());
                let id = r
                    .resource_gateway_identifier()
                    .unwrap_or_default()
                    .to_string();
                let settle = s.settle_reads;
                if s.configurations.iter().any(|c| c.gateway == id) {
                    return MockResponse::Error(
                        op::delete_resource_gateway::DeleteResourceGatewayError::generic(meta(
                            "ConflictException",
                            "a resource configuration uses this gateway",
                        )),
                    );
                }
                if let Some(g) = s.gateways.iter_mut().find(|g| g.id == id) {
                    g.status = lt::ResourceGatewayStatus::DeleteInProgress;
                    g.reads_left = settle;
                }
                MockResponse::Output(
                    op::delete_resource_gateway::DeleteResourceGatewayOutput::builder()
                        .id(id)
                        .status(lt::ResourceGatewayStatus::DeleteInProgress)
                        .build(),
                )
            }),
        );

        let s = st(self);
        rules.push(
            mock!(Client::list_resource_configurations).then_compute_output(move |_| {
                let s = s.lock().unwrap();
                let items = s.configurations.iter().map(|c| {
                    lt::ResourceConfigurationSummary::builder()
                        .id(&c.id)
                        .name(&c.name)
                        .arn(arn("resourceconfiguration", &c.id))
                        .resource_gateway_id(&c.gateway)
                        .r#type(c.kind.clone())
                        .status(c.status.clone())
                        .amazon_managed(false)
                        .build()
                });
                op::list_resource_configurations::ListResourceConfigurationsOutput::builder()
                    .set_items(Some(items.collect()))
                    .build()
            }),
        );

        let s = st(self);
        rules.push(mock!(Client::create_resource_configuration).then_compute_response(move |r| {
            use op::create_resource_configuration::CreateResourceConfigurationError as E;
            let mut s = s.lock().unwrap();
            if s.fails("CreateResourceConfiguration") {
                return MockResponse::Error(E::generic(meta("ServiceQuotaExceededException", "resource configurations per account")));
            }
            let name = r.name().unwrap_or_default().to_string();
            let kind = r.r#type().cloned().unwrap_or(lt::ResourceConfigurationType::Single);
            // ARN configurations take no port ranges; the others need them.
            let arn_type = kind == lt::ResourceConfigurationType::Arn;
            if arn_type != r.port_ranges().is_empty() {
                return MockResponse::Error(E::generic(meta("ValidationException", "portRanges apply to SINGLE, GROUP and CHILD configurations only, and they need them")));
            }
            if s.configurations.iter().any(|c| c.name == name) {
                return MockResponse::Error(E::generic(meta("ConflictException", "a resource configuration with this name exists")));
            }
            let gateway = r.resource_gateway_identifier().unwrap_or_default().to_string();
            if !s.gateways.iter().any(|g| g.id == gateway && g.status == lt::ResourceGatewayStatus::Active) {
                return MockResponse::Error(E::generic(meta("ValidationException", "the resource gateway is not ACTIVE")));
            }
            let id = s.id("rcfg");
            let reads_left = s.settle_reads;
            s.configurations.push(Configuration {
                id: id.clone(),
                name,
                gateway,
                kind,
                definition: r.resource_configuration_definition().cloned().expect("a definition"),
                ports: r.port_ranges().to_vec(),
                tags: r.tags().cloned().unwrap_or_default(),
                status: lt::ResourceConfigurationStatus::CreateInProgress,
                reads_left,
            });
            MockResponse::Output(
                op::create_resource_configuration::CreateResourceConfigurationOutput::builder()
                    .id(&id)
                    .arn(arn("resourceconfiguration", &id))
                    .status(lt::ResourceConfigurationStatus::CreateInProgress)
                    .build(),
            )
        }));

        let s = st(self);
        rules.push(
            mock!(Client::get_resource_configuration).then_compute_response(move |r| {
                use op::get_resource_configuration::GetResourceConfigurationError as E;
                let mut s = s.lock().unwrap();
                let id = r.resource_configuration_identifier().unwrap_or_default();
                let Some(i) = s.configurations.iter().position(|c| c.id == id) else {
                    return MockResponse::Error(E::generic(meta(
                        "ResourceNotFoundException",
                        "no such resource configuration",
                    )));
                };
                let c = &mut s.configurations[i];
                if c.reads_left > 0 {
                    c.reads_left -= 1;
                } else if c.status == lt::ResourceConfigurationStatus::DeleteInProgress {
                    s.configurations.remove(i);
                    return MockResponse::Error(E::generic(meta(
                        "ResourceNotFoundException",
                        "no such resource configuration",
                    )));
                } else {
                    c.status = lt::ResourceConfigurationStatus::Active;
                }
                let c = &s.configurations[i];
                MockResponse::Output(
                    op::get_resource_configuration::GetResourceConfigurationOutput::builder()
                        .id(&c.id)
                        .name(&c.name)
                        .arn(arn("resourceconfiguration", &c.id))
                        .r#type(c.kind.clone())
                        .resource_gateway_id(&c.gateway)
                        .resource_configuration_definition(c.definition.clone())
                        .set_port_ranges(Some(c.ports.clone()))
                        .status(c.status.clone())
                        .build(),
                )
            }),
        );

        let s = st(self);
        rules.push(
            mock!(Client::update_resource_configuration).then_compute_output(move |r| {
                let mut s = s.lock().unwrap();
                s.calls.push("UpdateResourceConfiguration".into());
                let id = r
                    .resource_configuration_identifier()
                    .unwrap_or_default()
                    .to_string();
                if let Some(c) = s.configurations.iter_mut().find(|c| c.id == id) {
                    if let Some(d) = r.resource_configuration_definition() {
                        c.definition = d.clone();
                    }
                    c.ports = r.port_ranges().to_vec();
                    c.status = lt::ResourceConfigurationStatus::UpdateInProgress;
                    c.reads_left = 1;
                }
                op::update_resource_configuration::UpdateResourceConfigurationOutput::builder()
                    .id(id)
                    .build()
            }),
        );

        let s = st(self);
        rules.push(mock!(Client::delete_resource_configuration).then_compute_response(move |r| {
            let mut s = s.lock().unwrap();
            s.calls.push("DeleteResourceConfiguration".into());
            let id = r.resource_configuration_identifier().unwrap_or_default().to_string();
            let settle = s.settle_reads;
            if s.endpoints.iter().any(|e| e.configuration == id)
                || s.networks.iter().any(|n| n.configuration == id)
            {
                return MockResponse::Error(op::delete_resource_configuration::DeleteResourceConfigurationError::generic(meta("ConflictException", "resource endpoints are associated with this configuration")));
            }
            if let Some(c) = s.configurations.iter_mut().find(|c| c.id == id) {
                c.status = lt::ResourceConfigurationStatus::DeleteInProgress;
                c.reads_left = settle;
            }
            MockResponse::Output(op::delete_resource_configuration::DeleteResourceConfigurationOutput::builder().build())
        }));

        let s = st(self);
        rules.push(
            mock!(Client::list_tags_for_resource).then_compute_output(move |r| {
                let s = s.lock().unwrap();
                let wanted = r.resource_arn().unwrap_or_default();
                let id = wanted.rsplit('/').next().unwrap_or_default();
                let tags = s
                    .gateways
                    .iter()
                    .find(|g| g.id == id)
                    .map(|g| g.tags.clone())
                    .or_else(|| {
                        s.configurations
                            .iter()
                            .find(|c| c.id == id)
                            .map(|c| c.tags.clone())
                    })
                    .unwrap_or_default();
                op::list_tags_for_resource::ListTagsForResourceOutput::builder()
                    .set_tags(Some(tags))
                    .build()
            }),
        );

        let s = st(self);
        rules.push(mock!(Client::list_resource_endpoint_associations).then_compute_output(move |r| {
            let s = s.lock().unwrap();
            let cfg = r.resource_configuration_identifier().unwrap_or_default();
            let items = s.endpoints.iter().filter(|e| e.configuration == cfg).map(|e| {
                lt::ResourceEndpointAssociationSummary::builder()
                    .id(&e.id)
                    .resource_configuration_id(&e.configuration)
                    .vpc_endpoint_id(&e.vpc_endpoint)
                    .vpc_endpoint_owner(&e.owner)
                    .build()
            });
            op::list_resource_endpoint_associations::ListResourceEndpointAssociationsOutput::builder()
                .set_items(Some(items.collect()))
                .build()
                .expect("items are set")
        }));

        let s = st(self);
        rules.push(mock!(Client::delete_resource_endpoint_association).then_compute_output(move |r| {
            let mut s = s.lock().unwrap();
            s.calls.push("DeleteResourceEndpointAssociation".into());
            let id = r.resource_endpoint_association_identifier().unwrap_or_default().to_string();
            s.endpoints.retain(|e| e.id != id);
            op::delete_resource_endpoint_association::DeleteResourceEndpointAssociationOutput::builder().id(id).build()
        }));
        let s = st(self);
        rules.push(mock!(Client::list_service_network_resource_associations).then_compute_output(move |r| {
            let s = s.lock().unwrap();
            let cfg = r.resource_configuration_identifier().unwrap_or_default();
            let items = s.networks.iter().filter(|n| n.configuration == cfg).map(|n| {
                lt::ServiceNetworkResourceAssociationSummary::builder()
                    .id(&n.id)
                    .resource_configuration_id(&n.configuration)
                    .service_network_arn(&n.service_network)
                    .created_by("072088201116")
                    .build()
            });
            op::list_service_network_resource_associations::ListServiceNetworkResourceAssociationsOutput::builder()
                .set_items(Some(items.collect()))
                .build()
                .expect("items are set")
        }));

        let s = st(self);
        rules.push(mock!(Client::delete_service_network_resource_association).then_compute_output(move |r| {
            let mut s = s.lock().unwrap();
            s.calls.push("DeleteServiceNetworkResourceAssociation".into());
            let id = r.service_network_resource_association_identifier().unwrap_or_default().to_string();
            s.networks.retain(|n| n.id != id);
            op::delete_service_network_resource_association::DeleteServiceNetworkResourceAssociationOutput::builder().id(id).build()
        }));
        rules
    }

    fn ram_rules(&self) -> Vec<Rule> {
        use aws_sdk_ram::operation as op;
        use aws_sdk_ram::Client;
        let mut rules = Vec::new();

        let s = self.state.clone();
        rules.push(
            mock!(Client::get_resource_shares).then_compute_output(move |r| {
                let s = s.lock().unwrap();
                let shares = s
                    .shares
                    .iter()
                    .filter(|sh| r.name().is_none_or(|n| n == sh.name))
                    .map(share_of);
                op::get_resource_shares::GetResourceSharesOutput::builder()
                    .set_resource_shares(Some(shares.collect()))
                    .build()
            }),
        );

        let s = self.state.clone();
        rules.push(mock!(Client::create_resource_share).then_compute_output(move |r| {
            let mut s = s.lock().unwrap();
            s.calls.push("CreateResourceShare".into());
            let n = s.next_id + 1;
            s.next_id = n;
            let share = Share {
                arn: format!("arn:aws:ram:{REGION}:{ACCOUNT}:resource-share/{n:08x}-0000-4000-8000-000000000000"),
                name: r.name().unwrap_or_default().into(),
                status: ram::ResourceShareStatus::Active,
                external: r.allow_external_principals().unwrap_or(true),
                tags: r
                    .tags()
                    .iter()
                    .map(|t| (t.key().unwrap_or_default().into(), t.value().unwrap_or_default().into()))
                    .collect(),
                principals: r.principals().iter().map(|p| (p.clone(), "ASSOCIATING".into())).collect(),
                resources: r.resource_arns().iter().map(|a| (a.clone(), "ASSOCIATED".into())).collect(),
            };
            let out = share_of(&share);
            s.shares.push(share);
            op::create_resource_share::CreateResourceShareOutput::builder()
                .resource_share(out)
                .build()
        }));

        let s = self.state.clone();
        rules.push(
            mock!(Client::get_resource_share_associations).then_compute_output(move |r| {
                let s = s.lock().unwrap();
                let principal =
                    r.association_type() == Some(&ram::ResourceShareAssociationType::Principal);
                let list: Vec<ram::ResourceShareAssociation> = s
                    .shares
                    .iter()
                    .filter(|sh| r.resource_share_arns().contains(&sh.arn))
                    .flat_map(|sh| {
                        let entities = if principal {
                            &sh.principals
                        } else {
                            &sh.resources
                        };
                        entities.iter().map(move |(entity, status)| {
                            ram::ResourceShareAssociation::builder()
                                .resource_share_arn(&sh.arn)
                                .associated_entity(entity)
                                .status(ram::ResourceShareAssociationStatus::from(status.as_str()))
                                .external(principal)
                                .build()
                        })
                    })
                    .collect();
                op::get_resource_share_associations::GetResourceShareAssociationsOutput::builder()
                    .set_resource_share_associations(Some(list))
                    .build()
            }),
        );

        let s = self.state.clone();
        rules.push(
            mock!(Client::associate_resource_share).then_compute_output(move |r| {
                let mut s = s.lock().unwrap();
                s.calls.push("AssociateResourceShare".into());
                if let Some(sh) = s
                    .shares
                    .iter_mut()
                    .find(|sh| Some(sh.arn.as_str()) == r.resource_share_arn())
                {
                    sh.principals.extend(
                        r.principals()
                            .iter()
                            .map(|p| (p.clone(), "ASSOCIATING".into())),
                    );
                    sh.resources.extend(
                        r.resource_arns()
                            .iter()
                            .map(|a| (a.clone(), "ASSOCIATED".into())),
                    );
                }
                op::associate_resource_share::AssociateResourceShareOutput::builder().build()
            }),
        );

        let s = self.state.clone();
        rules.push(
            mock!(Client::disassociate_resource_share).then_compute_output(move |r| {
                let mut s = s.lock().unwrap();
                s.calls.push("DisassociateResourceShare".into());
                if let Some(sh) = s
                    .shares
                    .iter_mut()
                    .find(|sh| Some(sh.arn.as_str()) == r.resource_share_arn())
                {
                    for (entity, status) in sh.principals.iter_mut().chain(sh.resources.iter_mut())
                    {
                        if r.principals().contains(entity) || r.resource_arns().contains(entity) {
                            *status = "DISASSOCIATED".into();
                        }
                    }
                }
                op::disassociate_resource_share::DisassociateResourceShareOutput::builder().build()
            }),
        );

        let s = self.state.clone();
        rules.push(
            mock!(Client::update_resource_share).then_compute_output(move |r| {
                let mut s = s.lock().unwrap();
                s.calls.push("UpdateResourceShare".into());
                if let Some(sh) = s
                    .shares
                    .iter_mut()
                    .find(|sh| Some(sh.arn.as_str()) == r.resource_share_arn())
                {
                    sh.external = r.allow_external_principals().unwrap_or(sh.external);
                }
                op::update_resource_share::UpdateResourceShareOutput::builder().build()
            }),
        );

        let s = self.state.clone();
        rules.push(
            mock!(Client::delete_resource_share).then_compute_output(move |r| {
                let mut s = s.lock().unwrap();
                s.calls.push("DeleteResourceShare".into());
                if let Some(sh) = s
                    .shares
                    .iter_mut()
                    .find(|sh| Some(sh.arn.as_str()) == r.resource_share_arn())
                {
                    sh.status = ram::ResourceShareStatus::Deleted;
                }
                op::delete_resource_share::DeleteResourceShareOutput::builder()
                    .return_value(true)
                    .build()
            }),
        );
        rules
    }
}

fn share_of(sh: &Share) -> ram::ResourceShare {
    let mut b = ram::ResourceShare::builder()
        .resource_share_arn(&sh.arn)
        .name(&sh.name)
        .owning_account_id(ACCOUNT)
        .allow_external_principals(sh.external)
        .status(sh.status.clone());
    for (k, v) in &sh.tags {
        b = b.tags(ram::Tag::builder().key(k).value(v).build());
    }
    b.build()
}
