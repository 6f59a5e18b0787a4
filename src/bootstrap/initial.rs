//! The first target: the database's current address, its instance, or its Auto Scaling
//! group attached to the target group.

use std::collections::BTreeSet;

use aws_sdk_elasticloadbalancingv2::types::TargetDescription;
use ipnet::IpNet;

use super::journal::{Journal, Mark};
use super::network::InitialTarget;
use super::BootstrapError;
use crate::aws::{Observe, RegionClients};
use crate::error::AwsError;
use crate::plan::TargetKey;
use crate::resolve::{Family, Resolve};
use crate::target_view::TargetView;
use crate::targets::{specs, ElbTargetGroups, TargetGroups};

async fn addresses<R: Resolve>(
    target: &InitialTarget,
    resolver: &R,
) -> Result<BTreeSet<std::net::IpAddr>, BootstrapError> {
    match target {
        InitialTarget::Ip(ip) => Ok([*ip].into()),
        InitialTarget::Hostname(host) => Ok(resolver
            .resolve(host, Family::V4)
            .await
            .map_err(|failure| BootstrapError::Dns {
                host: host.clone(),
                failure,
            })?
            .addresses),
        _ => Ok(BTreeSet::new()),
    }
}

/// What the first registration will be, for the plan.
pub async fn wanted<R: Resolve>(
    target: &InitialTarget,
    port: u16,
    resolver: &R,
) -> Result<Vec<TargetView>, BootstrapError> {
    if let InitialTarget::Instance(id) = target {
        return Ok(vec![TargetView::of(id, port, None)]);
    }
    let found = addresses(target, resolver).await?;
    Ok(found
        .iter()
        .map(|ip| TargetView::planned(&TargetKey::new(*ip, port)))
        .collect())
}

/// Every target in the group, whatever its type, in its state.
pub async fn registered(c: &RegionClients, tg: &str) -> Result<Vec<TargetView>, AwsError> {
    let out = c
        .elb
        .describe_target_health()
        .target_group_arn(tg)
        .send()
        .await
        .pipe_observe(c, "DescribeTargetHealth", tg)?;
    Ok(out
        .target_health_descriptions()
        .iter()
        .filter_map(|d| {
            let t = d.target()?;
            let state = d.target_health().and_then(|h| h.state());
            Some(TargetView::of(
                t.id().unwrap_or_default(),
                t.port()
                    .and_then(|p| u16::try_from(p).ok())
                    .unwrap_or_default(),
                state.map(|s| s.as_str()),
            ))
        })
        .collect())
}

pub async fn register<R: Resolve>(
    c: &RegionClients,
    tg: &str,
    target: &InitialTarget,
    port: u16,
    vpc_cidrs: &[IpNet],
    resolver: &R,
) -> Result<(), BootstrapError> {
    if let InitialTarget::Instance(id) = target {
        let description = TargetDescription::builder()
            .id(id)
            .port(i32::from(port))
            .build();
        c.elb
            .register_targets()
            .target_group_arn(tg)
            .targets(description)
            .send()
            .await
            .pipe_observe(c, "RegisterTargets", tg)?;
        return Ok(());
    }
    let keys: Vec<TargetKey> = addresses(target, resolver)
        .await?
        .iter()
        .map(|ip| TargetKey::new(*ip, port))
        .collect();
    ElbTargetGroups::new(c.clone())
        .register(tg, &specs(&keys, vpc_cidrs))
        .await?;
    Ok(())
}

/// Attaches the Auto Scaling group to the target group (it then registers its instances).
pub async fn attach_group(
    c: &RegionClients,
    journal: &mut Journal,
    tg: Option<&str>,
    asg: &str,
) -> Result<Vec<TargetView>, AwsError> {
    let resource = format!("Auto Scaling group {asg}");
    let Some(tg) = tg else {
        journal.record(Mark::Create, resource, "attach to the target group");
        return Ok(Vec::new());
    };
    if attached(c, asg, tg).await? {
        journal.record(Mark::Ok, resource, "attached to the target group");
    } else {
        journal.record(Mark::Create, resource, "attach to the target group");
        if !journal.dry_run {
            c.autoscaling
                .attach_load_balancer_target_groups()
                .auto_scaling_group_name(asg)
                .target_group_arns(tg)
                .send()
                .await
                .pipe_observe(c, "AttachLoadBalancerTargetGroups", asg)?;
            journal.confirm();
        }
    }
    registered(c, tg).await
}

/// Whether the Auto Scaling group is attached to the target group.
async fn attached(c: &RegionClients, asg: &str, tg: &str) -> Result<bool, AwsError> {
    let out = c
        .autoscaling
        .describe_load_balancer_target_groups()
        .auto_scaling_group_name(asg)
        .send()
        .await
        .pipe_observe(c, "DescribeLoadBalancerTargetGroups", asg)?;
    Ok(out
        .load_balancer_target_groups()
        .iter()
        .any(|g| g.load_balancer_target_group_arn() == Some(tg)))
}

/// Detaches the group before the target group is deleted (teardown).
pub async fn detach_group(
    c: &RegionClients,
    journal: &mut Journal,
    tg: &str,
    asg: &str,
) -> Result<(), AwsError> {
    if !attached(c, asg, tg).await? {
        return Ok(());
    }
    journal.record(
        Mark::Delete,
        format!("attachment of Auto Scaling group {asg}"),
        tg.to_string(),
    );
    if !journal.dry_run {
        c.autoscaling
            .detach_load_balancer_target_groups()
            .auto_scaling_group_name(asg)
            .target_group_arns(tg)
            .send()
            .await
            .pipe_observe(c, "DetachLoadBalancerTargetGroups", asg)?;
        journal.confirm();
    }
    Ok(())
}
