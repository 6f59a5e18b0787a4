//! `pglink teardown`: deletes, in dependency order, only what carries pglink's tags for
//! this bootstrap name (and the rule it added to the database's group). Without `--yes`
//! it only lists what it would delete.

use std::future::Future;
use std::time::{Duration, Instant};

use tracing::info;

use super::journal::{Journal, Mark};
use super::security_group::Front;
use super::{accept, endpoint_service, initial, load_balancer, security_group, target_group};
use crate::aws::RegionClients;
use crate::config::{BootstrapSettings, DatabaseKind};
use crate::error::AwsError;

/// Deleting an NLB releases its network interfaces over a few minutes; the security group
/// and target group can only go after that.
const DEPENDENCY_TIMEOUT: Duration = Duration::from_secs(600);
/// How long rejected connections may still count against deleting the endpoint service.
const REJECTED_SETTLE: Duration = Duration::from_secs(60);

/// `reject_connections`: reject the consumers' live connections first; without it, a
/// service with live connections stops the teardown before anything is deleted.
pub async fn teardown(
    c: &RegionClients,
    settings: &BootstrapSettings,
    journal: &mut Journal,
    reject_connections: bool,
) -> Result<(), AwsError> {
    let name = settings.name.as_str();
    if let Some(service) = endpoint_service::find(c, name).await? {
        let id = service.service_id().unwrap_or_default().to_string();
        let live = accept::live(&c.ec2, &id).await?;
        if !live.is_empty() && !reject_connections {
            let list: Vec<String> = live
                .iter()
                .map(|(conn, state)| {
                    format!(
                        "{} from account {} ({})",
                        conn.endpoint_id,
                        conn.owner,
                        state.as_str()
                    )
                })
                .collect();
            stop_for_consumers(
                journal,
                format!(
                    "the endpoint service {id} has {} live connection(s): {}; deleting it cuts them off: run again with --reject-connections to reject them first",
                    live.len(),
                    list.join(", ")
                ),
            )?;
        }
        for (conn, state) in &live {
            journal.record(
                Mark::Delete,
                format!("endpoint connection {}", conn.endpoint_id),
                format!(
                    "reject: from account {}, {state}{}",
                    conn.owner,
                    needs_flag(reject_connections)
                ),
            );
        }
        if !live.is_empty() && !journal.dry_run {
            // A `pending` connection is being accepted: AWS rejects only available or
            // pendingAcceptance ones, so it has to settle first.
            if let Some((conn, _)) = live
                .iter()
                .find(|(_, state)| state.eq_ignore_ascii_case("pending"))
            {
                return Err(AwsError::Rejected {
                    op: "teardown",
                    code: "PendingConnection".into(),
                    message: format!(
                        "the connection {} from account {} is being accepted (pending): run teardown again in a minute",
                        conn.endpoint_id, conn.owner
                    ),
                });
            }
            let ids: Vec<String> = live.iter().map(|(c, _)| c.endpoint_id.clone()).collect();
            accept::reject(&c.ec2, &id, &ids).await?;
            journal.confirm();
        }
        journal.record(
            Mark::Delete,
            "VPC endpoint service",
            format!("{id} ({})", service.service_name().unwrap_or_default()),
        );
        if !journal.dry_run {
            // Right after a reject AWS may still count the connections for a moment; a
            // consumer that connects after the check is reported with the fix.
            retry_while_in_use("endpoint service", REJECTED_SETTLE, || {
                endpoint_service::delete(c, &id)
            })
            .await
            .map_err(|e| match e {
                AwsError::Rejected { code, message, .. }
                    if code == "ExistingVpcEndpointConnections" =>
                {
                    AwsError::Rejected {
                        op: "DeleteVpcEndpointServiceConfigurations",
                        code,
                        message: format!(
                            "{message}: a consumer connected; run again with --reject-connections"
                        ),
                    }
                }
                other => other,
            })?;
            journal.confirm();
        }
    }
    if let Some(lb) = load_balancer::find(c, name).await? {
        let arn = lb.load_balancer_arn().unwrap_or_default().to_string();
        // Deleting the NLB deletes its listeners, pglink's or not; deleting them one by one
        // would need a right on listeners pglink did not create.
        // https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_DeleteLoadBalancer.html
        for listener in load_balancer::listener_arns(c, &arn).await? {
            journal.record(Mark::Delete, "listener (with the NLB)", listener);
        }
        journal.record(
            Mark::Delete,
            format!("internal NLB {}", load_balancer::nlb_name(name)),
            arn.clone(),
        );
        if !journal.dry_run {
            load_balancer::delete(c, &arn).await?;
            journal.confirm();
        }
    }
    if let Some(tg) = target_group::find(c, name).await? {
        let arn = tg.target_group_arn().unwrap_or_default().to_string();
        if let DatabaseKind::AutoscalingGroup(asg) = &settings.database {
            initial::detach_group(c, journal, &arn, asg).await?;
        }
        journal.record(
            Mark::Delete,
            format!("target group {}", target_group::group_name(name)),
            arn.clone(),
        );
        if !journal.dry_run {
            retry_while_in_use("target group", DEPENDENCY_TIMEOUT, || {
                target_group::delete(c, &arn)
            })
            .await?;
            journal.confirm();
        }
    }
    remove_rules_and_group(c, journal, name, Front::Nlb).await?;
    if journal.entries.is_empty() {
        info!(
            name,
            "nothing to delete: no resources carry pglink's tags for this name"
        );
    }
    Ok(())
}

/// Live consumers stop a teardown before anything is deleted; a dry run only warns.
pub(crate) fn stop_for_consumers(journal: &Journal, message: String) -> Result<(), AwsError> {
    if !journal.dry_run {
        return Err(AwsError::Rejected {
            op: "teardown",
            code: "LiveConnections".into(),
            message,
        });
    }
    tracing::warn!("{message}");
    Ok(())
}

/// What a consumer's line in the plan says when it would stay without the flag.
pub(crate) fn needs_flag(reject_connections: bool) -> &'static str {
    if reject_connections {
        ""
    } else {
        " (needs --reject-connections)"
    }
}

/// Revokes every rule pglink added under `name` (on the database's groups), then deletes
/// the front's own group once its network interfaces are gone.
pub(crate) async fn remove_rules_and_group(
    c: &RegionClients,
    journal: &mut Journal,
    name: &str,
    front: Front,
) -> Result<(), AwsError> {
    for (group, rule) in security_group::find_rules(c, name).await? {
        journal.record(
            Mark::Delete,
            format!("ingress rule on {group}"),
            rule.clone(),
        );
        if !journal.dry_run {
            security_group::revoke(c, &group, &rule).await?;
            journal.confirm();
        }
    }
    if let Some(group) = security_group::find_group(c, name, front, None).await? {
        journal.record(
            Mark::Delete,
            format!("security group {}", front.group_name(name)),
            group.clone(),
        );
        if !journal.dry_run {
            retry_while_in_use("security group", DEPENDENCY_TIMEOUT, || {
                security_group::delete_group(c, &group)
            })
            .await?;
            journal.confirm();
        }
    }
    Ok(())
}

/// Retries a delete that AWS refuses while something still depends on the resource
/// (Lattice says ConflictException while a configuration still uses a gateway).
pub(crate) async fn retry_while_in_use<F, Fut>(
    what: &str,
    limit: Duration,
    mut delete: F,
) -> Result<(), AwsError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), AwsError>>,
{
    let started = Instant::now();
    loop {
        match delete().await {
            Err(AwsError::Rejected { code, .. })
                if (code == "DependencyViolation"
                    || code == "ResourceInUse"
                    || code == "ConflictException"
                    || code == "ExistingVpcEndpointConnections")
                    && started.elapsed() < limit =>
            {
                info!(
                    what,
                    waited_s = started.elapsed().as_secs(),
                    "still in use; waiting"
                );
                tokio::time::sleep(Duration::from_secs(10)).await;
            }
            other => return other,
        }
    }
}
