//! The NLB target group: TCP on the database port, IP targets, fast TCP health checks and a
//! short deregistration delay that closes connections, so that clients reconnect to the new
//! primary after a failover instead of hanging on the old one.

use aws_sdk_elasticloadbalancingv2::types::{
    ProtocolEnum, TargetGroup, TargetGroupAttribute, TargetTypeEnum,
};

use super::journal::{Journal, Mark};
use super::tags;
use crate::aws::{Observe, RegionClients};
use crate::error::AwsError;

/// ELBv2's shortest health check interval; timeout below it; two checks either way.
pub const HEALTH_INTERVAL: i32 = 5;
pub const HEALTH_TIMEOUT: i32 = 4;
pub const HEALTH_THRESHOLD: i32 = 2;
pub const ATTRIBUTES: &[(&str, &str)] = &[
    ("deregistration_delay.timeout_seconds", "10"),
    (
        "deregistration_delay.connection_termination.enabled",
        "true",
    ),
];

pub fn group_name(name: &str) -> String {
    format!("pglink-{name}")
}

/// Finds the group by name; an existing group under that name that is not this stack's is
/// an error, never adopted silently.
pub async fn find(c: &RegionClients, name: &str) -> Result<Option<TargetGroup>, AwsError> {
    let group_name = group_name(name);
    let out = match c
        .elb
        .describe_target_groups()
        .names(&group_name)
        .send()
        .await
        .pipe_observe(c, "DescribeTargetGroups", &group_name)
    {
        Ok(out) => out,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(e),
    };
    let Some(group) = out.target_groups().first() else {
        return Ok(None);
    };
    let arn = group.target_group_arn().unwrap_or_default().to_string();
    tags::require_owned(
        c,
        &arn,
        name,
        "DescribeTargetGroups",
        &format!("a target group named {group_name}"),
    )
    .await?;
    Ok(Some(group.clone()))
}

fn health_drift(g: &TargetGroup) -> Option<String> {
    let ok = g.health_check_protocol() == Some(&ProtocolEnum::Tcp)
        && g.health_check_interval_seconds() == Some(HEALTH_INTERVAL)
        && g.healthy_threshold_count() == Some(HEALTH_THRESHOLD)
        && g.unhealthy_threshold_count() == Some(HEALTH_THRESHOLD);
    (!ok).then(|| format!("health check: TCP every {HEALTH_INTERVAL}s, thresholds {HEALTH_THRESHOLD}/{HEALTH_THRESHOLD}"))
}

pub async fn ensure(
    c: &RegionClients,
    journal: &mut Journal,
    name: &str,
    vpc_id: &str,
    port: u16,
    target_type: TargetTypeEnum,
) -> Result<Option<String>, AwsError> {
    let resource = format!("target group {}", group_name(name));
    let Some(group) = find(c, name).await? else {
        journal.record(
            Mark::Create,
            &resource,
            format!(
                "TCP {port}, {} targets, health checks every {HEALTH_INTERVAL}s",
                target_type.as_str()
            ),
        );
        if journal.dry_run {
            return Ok(None);
        }
        let arn = create(c, name, vpc_id, port, target_type).await?;
        journal.confirm();
        return Ok(Some(arn));
    };
    let arn = group.target_group_arn().unwrap_or_default().to_string();
    let fixed_ok = group.port() == Some(i32::from(port))
        && group.protocol() == Some(&ProtocolEnum::Tcp)
        && group.target_type() == Some(&target_type)
        && group.vpc_id() == Some(vpc_id);
    if !fixed_ok {
        return Err(AwsError::Rejected {
            op: "DescribeTargetGroups",
            code: "Mismatch".into(),
            message: format!("{resource} exists with another port, protocol, target type or VPC; these cannot be changed in place: run `pglink teardown` first"),
        });
    }
    let mut changed = false;
    if let Some(what) = health_drift(&group) {
        journal.record(Mark::Update, &resource, what);
        changed = true;
        if !journal.dry_run {
            modify_health(c, &arn).await?;
            journal.confirm();
        }
    }
    if let Some(what) = attribute_drift(c, &arn).await? {
        journal.record(Mark::Update, &resource, what);
        changed = true;
        if !journal.dry_run {
            set_attributes(c, &arn).await?;
            journal.confirm();
        }
    }
    if !changed {
        journal.record(Mark::Ok, &resource, arn.clone());
    }
    Ok(Some(arn))
}

async fn create(
    c: &RegionClients,
    name: &str,
    vpc_id: &str,
    port: u16,
    target_type: TargetTypeEnum,
) -> Result<String, AwsError> {
    let group_name = group_name(name);
    let out = c
        .elb
        .create_target_group()
        .name(&group_name)
        .protocol(ProtocolEnum::Tcp)
        .port(i32::from(port))
        .vpc_id(vpc_id)
        .target_type(target_type)
        .health_check_protocol(ProtocolEnum::Tcp)
        .health_check_interval_seconds(HEALTH_INTERVAL)
        .health_check_timeout_seconds(HEALTH_TIMEOUT)
        .healthy_threshold_count(HEALTH_THRESHOLD)
        .unhealthy_threshold_count(HEALTH_THRESHOLD)
        .set_tags(Some(tags::elb_tags(name)))
        .send()
        .await
        .pipe_observe(c, "CreateTargetGroup", &group_name)?;
    let arn = out
        .target_groups()
        .first()
        .and_then(|g| g.target_group_arn())
        .unwrap_or_default()
        .to_string();
    set_attributes(c, &arn).await?;
    Ok(arn)
}

async fn modify_health(c: &RegionClients, arn: &str) -> Result<(), AwsError> {
    c.elb
        .modify_target_group()
        .target_group_arn(arn)
        .health_check_protocol(ProtocolEnum::Tcp)
        .health_check_interval_seconds(HEALTH_INTERVAL)
        .health_check_timeout_seconds(HEALTH_TIMEOUT)
        .healthy_threshold_count(HEALTH_THRESHOLD)
        .unhealthy_threshold_count(HEALTH_THRESHOLD)
        .send()
        .await
        .pipe_observe(c, "ModifyTargetGroup", arn)
        .map(|_| ())
}

async fn attribute_drift(c: &RegionClients, arn: &str) -> Result<Option<String>, AwsError> {
    let out = c
        .elb
        .describe_target_group_attributes()
        .target_group_arn(arn)
        .send()
        .await
        .pipe_observe(c, "DescribeTargetGroupAttributes", arn)?;
    let current = |key: &str| {
        out.attributes()
            .iter()
            .find(|a| a.key() == Some(key))
            .and_then(|a| a.value())
    };
    let wrong: Vec<String> = ATTRIBUTES
        .iter()
        .filter(|(k, v)| current(k) != Some(*v))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    Ok((!wrong.is_empty()).then(|| wrong.join(", ")))
}

async fn set_attributes(c: &RegionClients, arn: &str) -> Result<(), AwsError> {
    let attributes = ATTRIBUTES
        .iter()
        .map(|(k, v)| TargetGroupAttribute::builder().key(*k).value(*v).build())
        .collect();
    c.elb
        .modify_target_group_attributes()
        .target_group_arn(arn)
        .set_attributes(Some(attributes))
        .send()
        .await
        .pipe_observe(c, "ModifyTargetGroupAttributes", arn)
        .map(|_| ())
}

pub async fn delete(c: &RegionClients, arn: &str) -> Result<(), AwsError> {
    c.elb
        .delete_target_group()
        .target_group_arn(arn)
        .send()
        .await
        .pipe_observe(c, "DeleteTargetGroup", arn)
        .map(|_| ())
}
