//! `pglink teardown` in resource mode: consumers first (their endpoints stop the teardown
//! unless `--reject-connections`), then the RAM share, the configuration, the gateway, the
//! database group's rule and the gateway's group, each only if it carries this stack's tags.

use std::time::Duration;

use super::accept::{endpoints, networks};
use super::stack::lattice_name;
use super::{configuration, gateway, share, ResourceClients};
use crate::aws::{Boxed, Observe, RegionClients};
use crate::bootstrap::journal::{Journal, Mark};
use crate::bootstrap::security_group::Front;
use crate::bootstrap::teardown::{
    needs_flag, remove_rules_and_group, retry_while_in_use, stop_for_consumers,
};
use crate::error::AwsError;

/// A gateway is refused (ConflictException) while a configuration still uses it, and a
/// configuration while endpoints are still being disassociated from it.
const SETTLE: Duration = Duration::from_secs(300);

pub async fn teardown(
    c: &RegionClients,
    r: &ResourceClients,
    stack: &str,
    journal: &mut Journal,
    reject_connections: bool,
) -> Result<(), AwsError> {
    let name = lattice_name(stack);
    let account = r.account().await?;
    let cfg = configuration::find(r, stack, &account, &name).await?;
    let (live, nets) = match &cfg {
        Some(cfg) => {
            let id = cfg.id().unwrap_or_default();
            (endpoints(r, id).await?, networks(r, id).await?)
        }
        None => (Vec::new(), Vec::new()),
    };
    let consumers = !(live.is_empty() && nets.is_empty());
    if consumers && !reject_connections {
        let list: Vec<String> = live
            .iter()
            .map(|e| format!("{} from account {}", e.vpc_endpoint_id, e.owner))
            .chain(
                nets.iter()
                    .map(|n| format!("service network {}", n.service_network)),
            )
            .collect();
        stop_for_consumers(
            journal,
            format!(
                "resource configuration {name} has {} consumer association(s): {}; deleting it cuts them off: run again with --reject-connections to remove them first",
                list.len(),
                list.join(", ")
            ),
        )?;
    }
    if let Some(found) = share::find(r, stack, &name).await? {
        let arn = found.resource_share_arn().unwrap_or_default().to_string();
        journal.record(Mark::Delete, format!("resource share {name}"), arn.clone());
        if !journal.dry_run {
            share::delete(r, &arn).await?;
            journal.confirm();
        }
    }
    for e in &live {
        journal.record(
            Mark::Delete,
            format!("consumer endpoint association {}", e.association_id),
            format!(
                "{} from account {}{}",
                e.vpc_endpoint_id,
                e.owner,
                needs_flag(reject_connections)
            ),
        );
        if !journal.dry_run {
            r.lattice
                .delete_resource_endpoint_association()
                .resource_endpoint_association_identifier(&e.association_id)
                .send()
                .boxed()
                .await
                .pipe_observe(r, "DeleteResourceEndpointAssociation", &e.association_id)?;
            journal.confirm();
        }
    }
    for n in &nets {
        journal.record(
            Mark::Delete,
            format!("service network association {}", n.association_id),
            format!("{}{}", n.service_network, needs_flag(reject_connections)),
        );
        if !journal.dry_run {
            r.lattice
                .delete_service_network_resource_association()
                .service_network_resource_association_identifier(&n.association_id)
                .send()
                .boxed()
                .await
                .pipe_observe(
                    r,
                    "DeleteServiceNetworkResourceAssociation",
                    &n.association_id,
                )?;
            journal.confirm();
        }
    }
    if let Some(cfg) = &cfg {
        let id = cfg.id().unwrap_or_default().to_string();
        let what = format!("resource configuration {name}");
        journal.record(Mark::Delete, &what, id.clone());
        if !journal.dry_run {
            retry_while_in_use(&what, SETTLE, || configuration::delete(r, &id, &what)).await?;
            journal.confirm();
        }
    }
    if let Some(gw) = gateway::find(r, stack, &account, &name).await? {
        let id = gw.id().unwrap_or_default().to_string();
        let what = format!("resource gateway {name}");
        journal.record(Mark::Delete, &what, id.clone());
        if !journal.dry_run {
            retry_while_in_use(&what, SETTLE, || gateway::delete(r, &id, &what)).await?;
            journal.confirm();
        }
    }
    remove_rules_and_group(c, journal, stack, Front::Gateway).await
}
