//! `pglink bootstrap`: builds or repairs the PrivateLink stack in front of a database, in
//! dependency order, each resource found by pglink's tags first, created if missing and
//! repaired if drifted. Preflight checks run before any change. A failure halfway leaves
//! tagged resources that the next run finds and completes.
//!
//! ```text
//!  consumer VPC endpoint -> endpoint service -> internal NLB :port (cross-zone, every DB AZ)
//!      -> listener -> target group (TCP, fast health checks) -> database IP
//!  database security group: + TCP port from the NLB's security group only
//! ```

pub mod accept;
pub mod endpoint_service;
pub mod initial;
pub mod journal;
pub mod load_balancer;
pub mod network;
pub mod preflight;
pub mod request;
pub mod resource;
pub mod security_group;
pub mod tags;
pub mod target_group;
pub mod teardown;

use aws_sdk_elasticloadbalancingv2::types::TargetTypeEnum;
use serde::Serialize;

use crate::target_view::TargetView;

use crate::aws::RegionClients;
use crate::config::BootstrapSettings;
use crate::error::AwsError;
use crate::resolve::Resolve;
use journal::{Journal, Mark};
use network::{InitialTarget, Placement, PlacementError};

/// Why bootstrap stopped: bad input (exit 2, nothing changed) or AWS (exit 1).
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error("{0}")]
    Input(String),
    #[error("{0}")]
    Aws(#[from] AwsError),
    #[error("resolving the database endpoint {host}: {failure}; the stack is in place, run bootstrap again to register the first target")]
    Dns {
        host: String,
        failure: crate::resolve::DnsFailure,
    },
}

impl From<PlacementError> for BootstrapError {
    fn from(e: PlacementError) -> Self {
        match e {
            PlacementError::Input(m) => Self::Input(m),
            PlacementError::Aws(a) => Self::Aws(a),
        }
    }
}

/// The result, for the text output and `--output json`.
#[derive(Debug, Default, Serialize)]
pub struct Outcome {
    pub name: String,
    pub region: String,
    pub dry_run: bool,
    pub vpc_id: String,
    pub subnet_ids: Vec<String>,
    /// Subnets of the DB subnet group not used: their AZ already has one.
    pub skipped_subnet_ids: Vec<String>,
    pub nlb_security_group_id: Option<String>,
    pub target_group_arn: Option<String>,
    pub load_balancer_arn: Option<String>,
    pub endpoint_service_id: Option<String>,
    pub endpoint_service_name: Option<String>,
    pub registered_targets: Vec<TargetView>,
    pub warnings: Vec<String>,
    pub changes: usize,
}

pub async fn bootstrap<R: Resolve>(
    c: &RegionClients,
    region: &str,
    s: &BootstrapSettings,
    resolver: &R,
    journal: &mut Journal,
) -> Result<Outcome, BootstrapError> {
    let placement = network::derive(c, s).await?;
    let findings = preflight::check(&placement, s.port, s.subnet_ids.is_some(), preflight::NLB);
    for w in &findings.warnings {
        tracing::warn!("preflight: {w}");
    }
    if let Some(first) = findings.errors.first() {
        return Err(BootstrapError::Input(first.clone()));
    }
    let mut out = Outcome {
        name: s.name.clone(),
        region: region.to_string(),
        dry_run: journal.dry_run,
        vpc_id: placement.vpc_id.clone(),
        subnet_ids: placement.subnets.iter().map(|s| s.id.clone()).collect(),
        skipped_subnet_ids: placement
            .skipped_subnets
            .iter()
            .map(|s| s.id.clone())
            .collect(),
        warnings: findings.warnings,
        ..Outcome::default()
    };
    let name = s.name.as_str();
    let front = security_group::Front::Nlb;
    // A resource-mode stack of this name (its gateway's group is made first) still serves
    // consumers: this stack would move the database's rule to the NLB and cut them off.
    let gateway = security_group::Front::Gateway;
    if let Some(g) = security_group::find_group(c, name, gateway, None).await? {
        return Err(BootstrapError::Input(format!(
            "bootstrap.mode: a resource-mode stack named {name} exists (security group {} ({g})); switching to endpoint-service mode would cut its consumers off: remove it first (pglink teardown with mode = \"resource\"), or give this stack another name",
            gateway.group_name(name)
        )));
    }
    let sg = security_group::ensure_group(c, journal, name, &placement.vpc_id, front).await?;
    for db_group in &placement.database_security_groups {
        let source = (sg.as_deref(), front);
        security_group::ensure_db_rule(c, journal, name, db_group, source, s.port).await?;
    }
    let target_type = if placement.initial_target.by_instance() {
        TargetTypeEnum::Instance
    } else {
        TargetTypeEnum::Ip
    };
    let tg = target_group::ensure(c, journal, name, &placement.vpc_id, s.port, target_type).await?;
    let nlb = load_balancer::ensure(c, journal, name, &placement.subnets, sg.as_deref()).await?;
    load_balancer::ensure_listener(c, journal, name, nlb.as_deref(), tg.as_deref(), s.port).await?;
    let service = endpoint_service::ensure(
        c,
        journal,
        name,
        nlb.as_deref(),
        s.acceptance_required,
        &s.allowed_principals,
    )
    .await?;
    out.registered_targets =
        initial_target(c, journal, tg.as_deref(), &placement, s.port, resolver).await?;
    out.nlb_security_group_id = sg;
    out.target_group_arn = tg;
    out.load_balancer_arn = nlb;
    out.endpoint_service_id = service.as_ref().map(|s| s.id.clone());
    out.endpoint_service_name = service.map(|s| s.name);
    out.changes = journal.changes();
    Ok(out)
}

/// Registers the database's current address (or instance, or attaches the Auto Scaling
/// group) when the group is empty, so the consumer has a target from the start;
/// `pglink run` keeps an address current afterwards.
async fn initial_target<R: Resolve>(
    c: &RegionClients,
    journal: &mut Journal,
    tg: Option<&str>,
    placement: &Placement,
    port: u16,
    resolver: &R,
) -> Result<Vec<TargetView>, BootstrapError> {
    if let InitialTarget::AutoScalingGroup(asg) = &placement.initial_target {
        return initial::attach_group(c, journal, tg, asg)
            .await
            .map_err(Into::into);
    }
    let shown = initial::wanted(&placement.initial_target, port, resolver).await?;
    let Some(tg) = tg else {
        journal.record(
            Mark::Create,
            "first target",
            crate::logging::join_with(&shown, ", "),
        );
        return Ok(shown);
    };
    let registered = initial::registered(c, tg).await?;
    if !registered.is_empty() {
        journal.record(
            Mark::Ok,
            "targets",
            crate::logging::join_with(&registered, ", "),
        );
        return Ok(registered);
    }
    journal.record(
        Mark::Create,
        "first target",
        crate::logging::join_with(&shown, ", "),
    );
    if !journal.dry_run {
        initial::register(
            c,
            tg,
            &placement.initial_target,
            port,
            &placement.vpc_cidrs,
            resolver,
        )
        .await?;
        journal.confirm();
    }
    Ok(shown)
}
