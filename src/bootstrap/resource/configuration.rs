//! The resource configuration: what the consumer's resource endpoint reaches through the
//! gateway. An RDS instance or cluster is named by its ARN (type ARN: AWS follows the
//! database itself, so nothing has to track its address); a hostname or an address is a
//! SINGLE configuration with the port and TCP. ARN configurations take no port ranges or
//! protocol. The definition of a SINGLE configuration and its ports can be updated; an ARN,
//! the type or the gateway cannot.
//! https://docs.aws.amazon.com/vpc-lattice/latest/APIReference/API_CreateResourceConfiguration.html
//! https://docs.aws.amazon.com/vpc-lattice/latest/APIReference/API_UpdateResourceConfiguration.html

use std::net::IpAddr;

use aws_sdk_vpclattice::operation::get_resource_configuration::GetResourceConfigurationOutput;
use aws_sdk_vpclattice::types::{
    ArnResource, DnsResource, IpResource, ProtocolType, ResourceConfigurationDefinition,
    ResourceConfigurationIpAddressType, ResourceConfigurationStatus, ResourceConfigurationSummary,
    ResourceConfigurationType,
};

use super::gateway::Gateway;
use super::wait::{self, Look};
use super::{arn_account, tags, ResourceClients};
use crate::aws::{Boxed, Observe};
use crate::bootstrap::journal::{Journal, Mark};
use crate::error::AwsError;

/// What the configuration names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Definition {
    /// An RDS instance or cluster, by ARN.
    Arn(String),
    /// An address inside the VPC (AWS takes only those for an IP resource).
    Ip(IpAddr),
    /// A publicly resolvable hostname.
    Dns(String),
}

impl Definition {
    fn kind(&self) -> ResourceConfigurationType {
        match self {
            Self::Arn(_) => ResourceConfigurationType::Arn,
            Self::Ip(_) | Self::Dns(_) => ResourceConfigurationType::Single,
        }
    }

    fn sdk(&self) -> ResourceConfigurationDefinition {
        match self {
            Self::Arn(arn) => ResourceConfigurationDefinition::ArnResource(
                ArnResource::builder().arn(arn).build(),
            ),
            Self::Ip(ip) => ResourceConfigurationDefinition::IpResource(
                IpResource::builder().ip_address(ip.to_string()).build(),
            ),
            Self::Dns(host) => ResourceConfigurationDefinition::DnsResource(
                DnsResource::builder()
                    .domain_name(host)
                    .ip_address_type(ResourceConfigurationIpAddressType::Ipv4)
                    .build(),
            ),
        }
    }

    /// The definition AWS reports, if it is one pglink writes.
    fn from_sdk(d: &ResourceConfigurationDefinition) -> Option<Self> {
        match d {
            ResourceConfigurationDefinition::ArnResource(a) => Some(Self::Arn(a.arn()?.into())),
            ResourceConfigurationDefinition::IpResource(i) => {
                Some(Self::Ip(i.ip_address()?.parse().ok()?))
            }
            ResourceConfigurationDefinition::DnsResource(d) => {
                Some(Self::Dns(d.domain_name()?.into()))
            }
            _ => None,
        }
    }

    pub fn describe(&self, port: u16) -> String {
        match self {
            Self::Arn(arn) => format!("ARN {arn}"),
            Self::Ip(ip) => format!("IP {ip}, TCP {port}"),
            Self::Dns(host) => format!("DNS {host}, TCP {port}"),
        }
    }

    /// ARN configurations carry no ports: the resource's own are used.
    fn port_ranges(&self, port: u16) -> Option<Vec<String>> {
        match self {
            Self::Arn(_) => None,
            _ => Some(vec![port.to_string()]),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigurationSpec {
    /// The Lattice name, `pglink-NAME` (unique in the account).
    pub name: String,
    pub definition: Definition,
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Configuration {
    pub id: String,
    pub arn: String,
}

/// What a found configuration needs (pure).
#[derive(Debug, PartialEq, Eq)]
pub enum Needs {
    Nothing,
    /// A SINGLE configuration's definition or ports changed: updated in place.
    Update(Vec<String>),
    /// What cannot change in place: the type, an ARN, the gateway.
    Recreate(String),
}

/// Compares what AWS reports with the spec.
pub fn needs(
    found_type: Option<&ResourceConfigurationType>,
    found_definition: Option<&ResourceConfigurationDefinition>,
    found_ports: &[String],
    found_gateway: Option<&str>,
    spec: &ConfigurationSpec,
    gateway: Option<&Gateway>,
) -> Needs {
    if let Some(g) = gateway {
        if found_gateway != Some(g.id.as_str()) {
            return Needs::Recreate(format!(
                "it uses gateway {} instead of {}",
                found_gateway.unwrap_or("?"),
                g.id
            ));
        }
    }
    if found_type != Some(&spec.definition.kind()) {
        return Needs::Recreate(format!(
            "it is of type {} instead of {}",
            found_type.map_or("?", |t| t.as_str()),
            spec.definition.kind().as_str()
        ));
    }
    let found = found_definition.and_then(Definition::from_sdk);
    let mut changes = Vec::new();
    if found.as_ref() != Some(&spec.definition) {
        if let (Definition::Arn(_), Some(Definition::Arn(old))) = (&spec.definition, &found) {
            return Needs::Recreate(format!("it names {old}"));
        }
        changes.push(spec.definition.describe(spec.port));
    }
    if let Some(ports) = spec.definition.port_ranges(spec.port) {
        if found_ports != ports.as_slice() {
            changes.push(format!("ports {}", ports.join(",")));
        }
    }
    match changes.is_empty() {
        true => Needs::Nothing,
        false => Needs::Update(changes),
    }
}

/// This stack's configuration in `account`, by name; one without our tags is refused.
/// AWS's own child configurations (`amazon_managed`) are never ours.
pub async fn find(
    c: &ResourceClients,
    stack: &str,
    account: &str,
    name: &str,
) -> Result<Option<ResourceConfigurationSummary>, AwsError> {
    let mut token = None;
    loop {
        let out = c
            .lattice
            .list_resource_configurations()
            .set_next_token(token)
            .send()
            .boxed()
            .await
            .pipe_observe(c, "ListResourceConfigurations", name)?;
        let found = out.items().iter().find(|r| {
            r.name() == Some(name)
                && r.amazon_managed() != Some(true)
                && r.arn().and_then(arn_account) == Some(account)
        });
        if let Some(r) = found {
            let what = format!("resource configuration {name}");
            let arn = r.arn().unwrap_or_default();
            tags::require_owned(c, arn, stack, "ListTagsForResource", &what).await?;
            return Ok(Some(r.clone()));
        }
        token = out.next_token().map(str::to_string);
        if token.is_none() {
            return Ok(None);
        }
    }
}

/// Finds, creates (waiting until ACTIVE) or repairs the configuration on `gateway`; `None`
/// in a dry run that would create it (or whose gateway does not exist yet).
pub async fn ensure(
    c: &ResourceClients,
    journal: &mut Journal,
    stack: &str,
    account: &str,
    spec: &ConfigurationSpec,
    gateway: Option<&Gateway>,
) -> Result<Option<Configuration>, AwsError> {
    let resource = format!("resource configuration {}", spec.name);
    if let Some(found) = find(c, stack, account, &spec.name).await? {
        let configuration = Configuration {
            id: found.id().unwrap_or_default().to_string(),
            arn: found.arn().unwrap_or_default().to_string(),
        };
        // One found half-way (a run that stopped while AWS was creating it) is waited for.
        match found.status() {
            Some(ResourceConfigurationStatus::Active) | None => {}
            Some(
                s @ (ResourceConfigurationStatus::CreateInProgress
                | ResourceConfigurationStatus::UpdateInProgress),
            ) => {
                tracing::info!(resource = %resource, status = s.as_str(), "waiting until ACTIVE");
                wait_active(c, &configuration.id, &resource).await?;
            }
            Some(s) => {
                return Err(AwsError::Rejected {
                    op: "ListResourceConfigurations",
                    code: s.as_str().to_string(),
                    message: format!(
                        "{resource} is {}: run pglink teardown, then bootstrap again",
                        s.as_str()
                    ),
                })
            }
        }
        repair(c, journal, &resource, spec, gateway, &configuration).await?;
        return Ok(Some(configuration));
    }
    journal.record(Mark::Create, &resource, spec.definition.describe(spec.port));
    let Some(gateway) = gateway.filter(|_| !journal.dry_run) else {
        return Ok(None);
    };
    let out = c
        .lattice
        .create_resource_configuration()
        .name(&spec.name)
        .r#type(spec.definition.kind())
        .resource_gateway_identifier(&gateway.id)
        .resource_configuration_definition(spec.definition.sdk())
        .set_port_ranges(spec.definition.port_ranges(spec.port))
        .set_protocol(
            spec.definition
                .port_ranges(spec.port)
                .map(|_| ProtocolType::Tcp),
        )
        // Reached through resource endpoints only, never a shareable service network.
        .allow_association_to_shareable_service_network(false)
        .set_tags(Some(tags::lattice(stack)))
        .send()
        .boxed()
        .await
        .pipe_observe(c, "CreateResourceConfiguration", &spec.name)?;
    let configuration = Configuration {
        id: out.id().unwrap_or_default().to_string(),
        arn: out.arn().unwrap_or_default().to_string(),
    };
    wait_active(c, &configuration.id, &resource).await?;
    journal.confirm();
    Ok(Some(configuration))
}

async fn repair(
    c: &ResourceClients,
    journal: &mut Journal,
    resource: &str,
    spec: &ConfigurationSpec,
    gateway: Option<&Gateway>,
    configuration: &Configuration,
) -> Result<(), AwsError> {
    let found = get(c, &configuration.id).await?;
    let verdict = needs(
        found.r#type(),
        found.resource_configuration_definition(),
        found.port_ranges(),
        found.resource_gateway_id(),
        spec,
        gateway,
    );
    match verdict {
        Needs::Nothing => {
            journal.record(Mark::Ok, resource, configuration.id.clone());
            Ok(())
        }
        Needs::Recreate(why) => Err(AwsError::Rejected {
            op: "GetResourceConfiguration",
            code: "CannotUpdate".into(),
            message: format!(
                "{resource} {why}, which AWS cannot change in place: run pglink teardown, then bootstrap (consumers reconnect to the new configuration)"
            ),
        }),
        Needs::Update(changes) => {
            journal.record(Mark::Update, resource, changes.join("; "));
            if journal.dry_run {
                return Ok(());
            }
            c.lattice
                .update_resource_configuration()
                .resource_configuration_identifier(&configuration.id)
                .resource_configuration_definition(spec.definition.sdk())
                .set_port_ranges(spec.definition.port_ranges(spec.port))
                .send()
                .boxed()
                .await
                .pipe_observe(c, "UpdateResourceConfiguration", &configuration.id)?;
            wait_active(c, &configuration.id, resource).await?;
            journal.confirm();
            Ok(())
        }
    }
}

async fn get(c: &ResourceClients, id: &str) -> Result<GetResourceConfigurationOutput, AwsError> {
    c.lattice
        .get_resource_configuration()
        .resource_configuration_identifier(id)
        .send()
        .boxed()
        .await
        .pipe_observe(c, "GetResourceConfiguration", id)
}

async fn wait_active(c: &ResourceClients, id: &str, what: &str) -> Result<(), AwsError> {
    wait::until("GetResourceConfiguration", what, || async {
        let out = get(c, id).await?;
        Ok(match out.status() {
            Some(ResourceConfigurationStatus::Active) => Look::Done(()),
            Some(
                s @ (ResourceConfigurationStatus::CreateFailed
                | ResourceConfigurationStatus::UpdateFailed),
            ) => Look::Failed(format!(
                "AWS reports {}: {}",
                s.as_str(),
                out.failure_reason().unwrap_or("no reason given")
            )),
            other => Look::Pending(other.map_or("unknown", |s| s.as_str()).to_string()),
        })
    })
    .await
}

/// Deletes the configuration and waits until it is gone (AWS then lets the gateway go).
pub async fn delete(c: &ResourceClients, id: &str, what: &str) -> Result<(), AwsError> {
    c.lattice
        .delete_resource_configuration()
        .resource_configuration_identifier(id)
        .send()
        .boxed()
        .await
        .pipe_observe(c, "DeleteResourceConfiguration", id)?;
    wait::until("GetResourceConfiguration", what, || async {
        Ok(match get(c, id).await {
            Err(e) if e.is_not_found() => Look::Done(()),
            Err(e) => return Err(e),
            Ok(o) => match o.status() {
                Some(ResourceConfigurationStatus::DeleteFailed) => Look::Failed(format!(
                    "AWS reports DELETE_FAILED: {}",
                    o.failure_reason().unwrap_or("no reason given")
                )),
                other => Look::Pending(other.map_or("unknown", |s| s.as_str()).to_string()),
            },
        })
    })
    .await
}

#[cfg(test)]
mod tests;
