//! The internal NLB, in every subnet (so every AZ the database can fail over to), with
//! cross-zone load balancing on (RDS lives in one AZ at a time), and its TCP listener.

use std::time::{Duration, Instant};

use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, EnforceSecurityGroupInboundRulesOnPrivateLinkTrafficEnum as Enforce,
    LoadBalancer, LoadBalancerAttribute, LoadBalancerSchemeEnum, LoadBalancerStateEnum,
    LoadBalancerTypeEnum, ProtocolEnum,
};
use tracing::info;

use super::journal::{Journal, Mark};
use super::network::Subnet;
use super::tags;
use crate::aws::{Observe, RegionClients};
use crate::error::AwsError;

const CROSS_ZONE: &str = "load_balancing.cross_zone.enabled";
/// How long to wait for a new NLB to become active (AWS: usually 2-5 minutes).
const ACTIVE_TIMEOUT: Duration = Duration::from_secs(900);

pub fn nlb_name(name: &str) -> String {
    format!("pglink-{name}")
}

pub async fn find(c: &RegionClients, name: &str) -> Result<Option<LoadBalancer>, AwsError> {
    let lb_name = nlb_name(name);
    let out = match c
        .elb
        .describe_load_balancers()
        .names(&lb_name)
        .send()
        .await
        .pipe_observe(c, "DescribeLoadBalancers", &lb_name)
    {
        Ok(out) => out,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(e),
    };
    let Some(lb) = out.load_balancers().first() else {
        return Ok(None);
    };
    let arn = lb.load_balancer_arn().unwrap_or_default().to_string();
    tags::require_owned(
        c,
        &arn,
        name,
        "DescribeLoadBalancers",
        &format!("a load balancer named {lb_name}"),
    )
    .await?;
    Ok(Some(lb.clone()))
}

pub async fn ensure(
    c: &RegionClients,
    journal: &mut Journal,
    name: &str,
    subnets: &[Subnet],
    security_group: Option<&str>,
) -> Result<Option<String>, AwsError> {
    let resource = format!("internal NLB {}", nlb_name(name));
    let subnet_ids: Vec<String> = subnets.iter().map(|s| s.id.clone()).collect();
    let Some(lb) = find(c, name).await? else {
        journal.record(
            Mark::Create,
            &resource,
            format!("in {}, cross-zone on", placed(subnets)),
        );
        if journal.dry_run {
            return Ok(None);
        }
        let arn = create(c, name, &subnet_ids, security_group).await?;
        // It exists now, whatever happens to the attribute: the next run repairs that.
        journal.confirm();
        set_cross_zone(c, &arn).await?;
        return Ok(Some(arn));
    };
    let arn = lb.load_balancer_arn().unwrap_or_default().to_string();
    let mut changed = false;
    let zones = lb.availability_zones();
    // By AZ, not by subnet ID: the NLB keeps the subnet it has in an AZ (one per AZ), and
    // only AZs it is not enabled in get one of the wanted subnets.
    let missing: Vec<&Subnet> = subnets
        .iter()
        .filter(|s| !zones.iter().any(|z| z.zone_name() == Some(s.az.as_str())))
        .collect();
    if !missing.is_empty() {
        let added: Vec<Subnet> = missing.iter().map(|s| (*s).clone()).collect();
        journal.record(
            Mark::Update,
            &resource,
            format!("enable {}", placed(&added)),
        );
        changed = true;
        if !journal.dry_run {
            let mut all: Vec<String> = zones
                .iter()
                .filter_map(|z| z.subnet_id())
                .map(str::to_string)
                .collect();
            all.extend(added.into_iter().map(|s| s.id));
            c.elb
                .set_subnets()
                .load_balancer_arn(&arn)
                .set_subnets(Some(all))
                .send()
                .await
                .pipe_observe(c, "SetSubnets", &arn)?;
            journal.confirm();
        }
    }
    if lb.enforce_security_group_inbound_rules_on_private_link_traffic() == Some("on") {
        journal.record(
            Mark::Update,
            &resource,
            "stop applying inbound rules to PrivateLink traffic",
        );
        changed = true;
        if !journal.dry_run {
            set_security_groups(c, &arn, lb.security_groups()).await?;
            journal.confirm();
        }
    }
    if !cross_zone_on(c, &arn).await? {
        journal.record(Mark::Update, &resource, "turn cross-zone load balancing on");
        changed = true;
        if !journal.dry_run {
            set_cross_zone(c, &arn).await?;
            journal.confirm();
        }
    }
    if !changed {
        journal.record(Mark::Ok, &resource, arn.clone());
    }
    Ok(Some(arn))
}

/// "us-east-1a (subnet-0a), us-east-1b (subnet-0b)".
fn placed(subnets: &[Subnet]) -> String {
    subnets
        .iter()
        .map(|s| format!("{} ({})", s.az, s.id))
        .collect::<Vec<_>>()
        .join(", ")
}

async fn create(
    c: &RegionClients,
    name: &str,
    subnets: &[String],
    security_group: Option<&str>,
) -> Result<String, AwsError> {
    let lb_name = nlb_name(name);
    let out = c
        .elb
        .create_load_balancer()
        .name(&lb_name)
        .r#type(LoadBalancerTypeEnum::Network)
        .scheme(LoadBalancerSchemeEnum::Internal)
        .set_subnets(Some(subnets.to_vec()))
        .set_security_groups(security_group.map(|g| vec![g.to_string()]))
        .set_tags(Some(tags::elb_tags(name)))
        .send()
        .await
        .pipe_observe(c, "CreateLoadBalancer", &lb_name)?;
    let arn = out
        .load_balancers()
        .first()
        .and_then(|l| l.load_balancer_arn())
        .unwrap_or_default()
        .to_string();
    if let Some(group) = security_group {
        set_security_groups(c, &arn, &[group.to_string()]).await?;
    }
    wait_active(c, &arn).await?;
    Ok(arn)
}

/// PrivateLink traffic is what the NLB is for: its group's (empty) inbound rules must not
/// apply to it.
async fn set_security_groups(
    c: &RegionClients,
    arn: &str,
    groups: &[String],
) -> Result<(), AwsError> {
    c.elb
        .set_security_groups()
        .load_balancer_arn(arn)
        .set_security_groups(Some(groups.to_vec()))
        .enforce_security_group_inbound_rules_on_private_link_traffic(Enforce::Off)
        .send()
        .await
        .pipe_observe(c, "SetSecurityGroups", arn)
        .map(|_| ())
}

async fn wait_active(c: &RegionClients, arn: &str) -> Result<(), AwsError> {
    let started = Instant::now();
    let mut next_report = Duration::from_secs(10);
    loop {
        let out = c
            .elb
            .describe_load_balancers()
            .load_balancer_arns(arn)
            .send()
            .await
            .pipe_observe(c, "DescribeLoadBalancers", arn)?;
        let state = out
            .load_balancers()
            .first()
            .and_then(|l| l.state())
            .and_then(|s| s.code())
            .cloned();
        match state {
            Some(LoadBalancerStateEnum::Active) => return Ok(()),
            Some(LoadBalancerStateEnum::Failed) => {
                return Err(AwsError::Rejected {
                    op: "CreateLoadBalancer",
                    code: "Failed".into(),
                    message: format!("{arn} failed to provision"),
                })
            }
            _ => {}
        }
        let waited = started.elapsed();
        if waited >= ACTIVE_TIMEOUT {
            return Err(AwsError::Transient {
                op: "DescribeLoadBalancers",
                detail: format!(
                    "{arn} not active after {}s; run bootstrap again to continue",
                    waited.as_secs()
                ),
            });
        }
        if waited >= next_report {
            info!(
                waited_s = waited.as_secs(),
                "waiting for the NLB to become active (usually 2-5 minutes)"
            );
            next_report += Duration::from_secs(10);
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

async fn cross_zone_on(c: &RegionClients, arn: &str) -> Result<bool, AwsError> {
    let out = c
        .elb
        .describe_load_balancer_attributes()
        .load_balancer_arn(arn)
        .send()
        .await
        .pipe_observe(c, "DescribeLoadBalancerAttributes", arn)?;
    Ok(out
        .attributes()
        .iter()
        .any(|a| a.key() == Some(CROSS_ZONE) && a.value() == Some("true")))
}

async fn set_cross_zone(c: &RegionClients, arn: &str) -> Result<(), AwsError> {
    c.elb
        .modify_load_balancer_attributes()
        .load_balancer_arn(arn)
        .attributes(
            LoadBalancerAttribute::builder()
                .key(CROSS_ZONE)
                .value("true")
                .build(),
        )
        .send()
        .await
        .pipe_observe(c, "ModifyLoadBalancerAttributes", arn)
        .map(|_| ())
}

/// The TCP listener on the database port, forwarding to the target group.
pub async fn ensure_listener(
    c: &RegionClients,
    journal: &mut Journal,
    name: &str,
    nlb_arn: Option<&str>,
    target_group_arn: Option<&str>,
    port: u16,
) -> Result<(), AwsError> {
    let resource = format!("TCP listener :{port}");
    let (Some(nlb), Some(tg)) = (nlb_arn, target_group_arn) else {
        journal.record(Mark::Create, resource, "forward to the target group");
        return Ok(());
    };
    let forward = Action::builder()
        .r#type(ActionTypeEnum::Forward)
        .target_group_arn(tg)
        .build();
    let listeners = c
        .elb
        .describe_listeners()
        .load_balancer_arn(nlb)
        .send()
        .await
        .pipe_observe(c, "DescribeListeners", nlb)?;
    let existing = listeners
        .listeners()
        .iter()
        .find(|l| l.port() == Some(i32::from(port)));
    match existing {
        Some(l)
            if l.default_actions()
                .iter()
                .any(|a| a.target_group_arn() == Some(tg))
                && l.protocol() == Some(&ProtocolEnum::Tcp) =>
        {
            journal.record(
                Mark::Ok,
                resource,
                l.listener_arn().unwrap_or_default().to_string(),
            );
        }
        Some(l) => {
            journal.record(Mark::Update, resource, "forward TCP to the target group");
            if !journal.dry_run {
                let arn = l.listener_arn().unwrap_or_default();
                c.elb
                    .modify_listener()
                    .listener_arn(arn)
                    .protocol(ProtocolEnum::Tcp)
                    .default_actions(forward)
                    .send()
                    .await
                    .pipe_observe(c, "ModifyListener", arn)?;
                journal.confirm();
            }
        }
        None => {
            journal.record(Mark::Create, resource, "forward to the target group");
            if !journal.dry_run {
                c.elb
                    .create_listener()
                    .load_balancer_arn(nlb)
                    .protocol(ProtocolEnum::Tcp)
                    .port(i32::from(port))
                    .default_actions(forward)
                    .set_tags(Some(tags::elb_tags(name)))
                    .send()
                    .await
                    .pipe_observe(c, "CreateListener", nlb)?;
                journal.confirm();
            }
        }
    }
    Ok(())
}

pub async fn listener_arns(c: &RegionClients, nlb_arn: &str) -> Result<Vec<String>, AwsError> {
    let out = c
        .elb
        .describe_listeners()
        .load_balancer_arn(nlb_arn)
        .send()
        .await
        .pipe_observe(c, "DescribeListeners", nlb_arn)?;
    Ok(out
        .listeners()
        .iter()
        .filter_map(|l| l.listener_arn())
        .map(str::to_string)
        .collect())
}

pub async fn delete(c: &RegionClients, arn: &str) -> Result<(), AwsError> {
    c.elb
        .delete_load_balancer()
        .load_balancer_arn(arn)
        .send()
        .await
        .pipe_observe(c, "DeleteLoadBalancer", arn)
        .map(|_| ())
}
