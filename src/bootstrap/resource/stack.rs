//! Resource mode's bootstrap, in dependency order: the gateway's security group, the
//! database group's rule from it, the resource gateway, the resource configuration, the RAM
//! share. Each step finds by name and tag first, so a run that stopped halfway is completed
//! by the next one.
//!
//! ```text
//!  consumer resource endpoint -> RAM share -> resource configuration (the database's ARN)
//!      -> resource gateway (one interface per AZ, its own group) -> database
//!  database security group: + TCP port from the gateway's security group only
//! ```

use serde::Serialize;

use super::configuration::{self, ConfigurationSpec, Definition};
use super::gateway::{self, GatewaySpec};
use super::share::{self, Association, ShareSpec};
use super::{preflight, ResourceClients};
use crate::aws::RegionClients;
use crate::bootstrap::journal::Journal;
use crate::bootstrap::network::{self, InitialTarget, Placement};
use crate::bootstrap::security_group::{self, Front};
use crate::bootstrap::BootstrapError;
use crate::config::{BootstrapSettings, DatabaseKind};

/// The result, for the text output and `--output json`.
#[derive(Debug, Default, Serialize)]
pub struct ResourceOutcome {
    pub name: String,
    pub region: String,
    pub account: String,
    pub dry_run: bool,
    pub vpc_id: String,
    pub subnet_ids: Vec<String>,
    /// The gateway's AZ IDs: the consumer's endpoint needs at least one of them (names
    /// differ between accounts, IDs do not).
    pub availability_zone_ids: Vec<String>,
    /// What the configuration names, in words (`ARN arn:aws:rds:...`).
    pub resource: String,
    pub port: u16,
    pub gateway_security_group_id: Option<String>,
    pub resource_gateway_id: Option<String>,
    pub resource_configuration_id: Option<String>,
    pub resource_configuration_arn: Option<String>,
    pub resource_share_arn: Option<String>,
    /// The share's accounts as RAM reports them (ASSOCIATING until an account outside the
    /// organization accepts the invitation).
    pub shared_with: Vec<Association>,
    pub warnings: Vec<String>,
    pub changes: usize,
}

/// The Lattice and RAM name of this stack's resources.
pub fn lattice_name(stack: &str) -> String {
    format!("pglink-{stack}")
}

/// What the configuration names: an RDS database by its ARN, else the address or hostname.
pub fn definition(s: &BootstrapSettings, p: &Placement) -> Result<Definition, BootstrapError> {
    match (&s.database, &p.database_arn, &p.initial_target) {
        (DatabaseKind::DbInstance(_) | DatabaseKind::DbCluster(_), Some(arn), _) => {
            Ok(Definition::Arn(arn.clone()))
        }
        (DatabaseKind::Ip(ip), _, _) => Ok(Definition::Ip(*ip)),
        (DatabaseKind::Host(host), _, _) => Ok(Definition::Dns(host.clone())),
        (_, _, InitialTarget::Ip(ip)) => Ok(Definition::Ip(*ip)),
        _ => Err(BootstrapError::Input(
            "bootstrap.database: RDS did not report the database's ARN; expected a db_instance or db_cluster that exists".into(),
        )),
    }
}

pub async fn bootstrap(
    c: &RegionClients,
    r: &ResourceClients,
    region: &str,
    s: &BootstrapSettings,
    journal: &mut Journal,
) -> Result<ResourceOutcome, BootstrapError> {
    let placement = network::derive(c, s).await?;
    let account = r.account().await?;
    let definition = definition(s, &placement)?;
    // An ARN configuration reaches the database on its own port.
    let port = match definition {
        Definition::Arn(_) => placement.database_port.unwrap_or(s.port),
        _ => s.port,
    };
    let mut findings = preflight::check(&placement, s, region, &account, &definition, port);
    findings.warnings.extend(whole_accounts(s));
    for w in &findings.warnings {
        tracing::warn!("preflight: {w}");
    }
    if let Some(first) = findings.errors.first() {
        return Err(BootstrapError::Input(first.clone()));
    }
    let name = s.name.as_str();
    refuse_a_switch(c, name).await?;
    let lattice = lattice_name(name);
    let mut out = ResourceOutcome {
        name: s.name.clone(),
        region: region.to_string(),
        account: account.clone(),
        dry_run: journal.dry_run,
        vpc_id: placement.vpc_id.clone(),
        subnet_ids: placement.subnets.iter().map(|s| s.id.clone()).collect(),
        availability_zone_ids: placement
            .subnets
            .iter()
            .map(|s| s.az_id.clone().unwrap_or_else(|| s.az.clone()))
            .collect(),
        resource: definition.describe(port),
        port,
        warnings: findings.warnings,
        ..ResourceOutcome::default()
    };
    let sg =
        security_group::ensure_group(c, journal, name, &placement.vpc_id, Front::Gateway).await?;
    for db_group in &placement.database_security_groups {
        let source = (sg.as_deref(), Front::Gateway);
        security_group::ensure_db_rule(c, journal, name, db_group, source, port).await?;
    }
    let gateway_spec = GatewaySpec {
        name: lattice.clone(),
        vpc_id: placement.vpc_id.clone(),
        subnet_ids: out.subnet_ids.clone(),
        security_group_id: sg.clone(),
        ipv4_addresses_per_eni: s.ipv4_addresses_per_eni,
    };
    let gw = gateway::ensure(r, journal, name, &account, &gateway_spec).await?;
    if let Some(g) = &gw {
        out.warnings.extend(g.fixed_drift.iter().cloned());
    }
    let configuration_spec = ConfigurationSpec {
        name: lattice.clone(),
        definition,
        port,
    };
    let cfg =
        configuration::ensure(r, journal, name, &account, &configuration_spec, gw.as_ref()).await?;
    let share_spec = ShareSpec {
        name: lattice,
        principals: s.share_accounts(),
    };
    let shared = share::ensure(r, journal, name, &share_spec, cfg.as_ref()).await?;
    if let Some(share) = &shared {
        let kind = aws_sdk_ram::types::ResourceShareAssociationType::Principal;
        out.shared_with = share::associations(r, &share.arn, kind).await?;
    }
    out.gateway_security_group_id = sg;
    out.resource_gateway_id = gw.map(|g| g.id);
    out.resource_configuration_id = cfg.as_ref().map(|c| c.id.clone());
    out.resource_configuration_arn = cfg.map(|c| c.arn);
    out.resource_share_arn = shared.map(|s| s.arn);
    out.changes = journal.changes();
    Ok(out)
}

/// An endpoint-service stack of this name still serves consumers: building this one would
/// move the database's rule to the gateway and cut them off, and leave the NLB behind.
async fn refuse_a_switch(c: &RegionClients, name: &str) -> Result<(), BootstrapError> {
    let service = crate::bootstrap::endpoint_service::find(c, name).await?;
    let group = security_group::find_group(c, name, Front::Nlb, None).await?;
    let found = match (service, group) {
        (Some(s), _) => format!("endpoint service {}", s.service_id().unwrap_or_default()),
        (None, Some(g)) => format!("security group {} ({g})", Front::Nlb.group_name(name)),
        (None, None) => return Ok(()),
    };
    Err(BootstrapError::Input(format!(
        "bootstrap.mode: an endpoint-service stack named {name} exists ({found}); switching to resource mode would cut its consumers off: remove it first (pglink teardown with mode = \"endpoint-service\"), or give this stack another name"
    )))
}

/// A share goes to accounts: a role or user named in `allowed_principals` stands for its
/// whole account here, which the output says.
fn whole_accounts(s: &BootstrapSettings) -> Vec<String> {
    s.allowed_principals
        .iter()
        .filter(|p| p.contains(":role/") || p.contains(":user/"))
        .filter_map(|p| {
            let account = crate::bootstrap::accept::account_of(p)?;
            Some(format!(
                "{p} is a role or user, and a resource share goes to accounts: the whole account {account} gets the configuration"
            ))
        })
        .collect()
}

/// What the consumer asks for, in text: ClickPipes' fields by their names, and the rest.
pub fn consumer_info(o: &ResourceOutcome) -> Option<String> {
    let (share, id, arn) = (
        o.resource_share_arn.as_deref()?,
        o.resource_configuration_id.as_deref()?,
        o.resource_configuration_arn.as_deref()?,
    );
    let shared: Vec<String> = o
        .shared_with
        .iter()
        .map(|a| format!("{} ({})", a.entity, a.status))
        .collect();
    Some(format!(
        "Resource endpoint (AWS PrivateLink, VPC resource) for {}\n  \
         Resource share ARN:          {share}\n  \
         Resource configuration ID:   {id}\n  \
         Resource configuration ARN:  {arn}\n  \
         Region:                      {} (the consumer's endpoint must be in this Region)\n  \
         Port:                        {} (the consumer adds it to the DNS name it is given)\n  \
         Gateway AZ IDs:              {} (the endpoint needs at least one of them)\n  \
         Shared with:                 {}\n\n\
         ClickHouse ClickPipes: choose the VPC endpoint type \"VPC Resource\" and paste the \
         resource configuration ID and the resource share ARN.\n\
         Other consumers: send the share ARN and the configuration's ARN; an account outside \
         your organization accepts the share's invitation in AWS RAM first.\n",
        o.name,
        o.region,
        o.port,
        o.availability_zone_ids.join(", "),
        if shared.is_empty() {
            "-".to_string()
        } else {
            shared.join(", ")
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bootstrap::network::placement;

    fn settings(database: &str) -> BootstrapSettings {
        let text = format!(
            "[bootstrap]\nname = \"analytics\"\nmode = \"resource\"\ndatabase = {database}\nallowed_principals = [\"072088201116\"]\nvpc_id = \"vpc-0123456789abcdef0\"\nsubnet_ids = [\"subnet-0123456789abcdef0\", \"subnet-0123456789abcdef1\"]\n"
        );
        crate::config::parse(&text, "test")
            .expect("valid")
            .1
            .bootstrap
            .unwrap()
    }

    #[test]
    fn an_rds_database_is_named_by_its_arn_an_address_or_host_as_given() {
        let p = placement();
        let d = definition(&settings("{ db_instance = \"analytics\" }"), &p).unwrap();
        assert_eq!(
            d,
            Definition::Arn("arn:aws:rds:us-east-1:111122223333:db:analytics".into())
        );
        let d = definition(&settings("{ ip = \"10.0.1.10\" }"), &p).unwrap();
        assert_eq!(d, Definition::Ip("10.0.1.10".parse().unwrap()));
        let d = definition(&settings("{ host = \"db.example.com\" }"), &p).unwrap();
        assert_eq!(d, Definition::Dns("db.example.com".into()));
        let mut no_arn = placement();
        no_arn.database_arn = None;
        assert!(definition(&settings("{ db_cluster = \"ledger\" }"), &no_arn).is_err());
    }

    #[test]
    fn the_consumer_gets_the_share_the_configuration_and_where() {
        let o = ResourceOutcome {
            name: "analytics".into(),
            region: "us-east-1".into(),
            port: 5432,
            availability_zone_ids: vec!["use1-az1".into(), "use1-az2".into()],
            resource_share_arn: Some("arn:aws:ram:us-east-1:111122223333:resource-share/0f1e".into()),
            resource_configuration_id: Some("rcfg-0123456789abcdef0".into()),
            resource_configuration_arn: Some("arn:aws:vpc-lattice:us-east-1:111122223333:resourceconfiguration/rcfg-0123456789abcdef0".into()),
            shared_with: vec![Association {
                entity: "072088201116".into(),
                status: "ASSOCIATING".into(),
                external: Some(true),
                message: None,
            }],
            ..ResourceOutcome::default()
        };
        let text = consumer_info(&o).unwrap();
        for part in [
            "Resource share ARN:          arn:aws:ram:us-east-1:111122223333:resource-share/0f1e",
            "Resource configuration ID:   rcfg-0123456789abcdef0",
            "Gateway AZ IDs:              use1-az1, use1-az2",
            "Shared with:                 072088201116 (ASSOCIATING)",
            "Port:                        5432",
        ] {
            assert!(text.contains(part), "{part}\n{text}");
        }
        let dry = ResourceOutcome {
            resource_share_arn: None,
            ..o
        };
        assert_eq!(consumer_info(&dry), None);
    }
}
