//! Start-up: describe every configured target group in a few batched calls (20 groups a
//! call) instead of three calls per target, so that a daemon with many targets spends its
//! Describe budget on the reads that matter. A batch that fails is skipped: those targets
//! describe themselves on their first pass and report their own errors.

use std::collections::{BTreeMap, BTreeSet};

use ipnet::IpNet;
use tracing::debug;

use crate::aws::{Observe, RegionClients};
use crate::bootstrap::tags::elb_tags_of;
use crate::budget::{Budget, Priority};
use crate::error::AwsError;
use crate::targets::{cidrs_of, group_info, GroupInfo};

/// Groups per DescribeTargetGroups / DescribeTags call (DescribeTags takes at most 20).
pub const BATCH: usize = 20;

pub async fn describe_all(
    c: &RegionClients,
    arns: &[String],
    budget: &Budget,
) -> BTreeMap<String, GroupInfo> {
    let mut found = Vec::new();
    for chunk in arns.chunks(BATCH) {
        match describe_batch(c, chunk, budget).await {
            Ok(mut batch) => found.append(&mut batch),
            Err(e) => {
                debug!(error = %e, "batched describe failed; these targets describe themselves")
            }
        }
    }
    let vpcs: BTreeSet<String> = found
        .iter()
        .filter_map(|(g, _)| g.vpc_id().map(str::to_string))
        .collect();
    let cidrs = match vpc_cidrs(c, &vpcs).await {
        Ok(cidrs) => cidrs,
        Err(e) => {
            debug!(error = %e, "describing the VPCs failed; every target describes itself");
            return BTreeMap::new();
        }
    };
    found
        .into_iter()
        .filter_map(|(group, tags)| {
            let arn = group.target_group_arn()?.to_string();
            let vpc = group
                .vpc_id()
                .map(|v| cidrs.get(v).cloned().unwrap_or_default())
                .unwrap_or_default();
            Some((arn.clone(), group_info(&arn, &group, vpc, tags)))
        })
        .collect()
}

type Described = (
    aws_sdk_elasticloadbalancingv2::types::TargetGroup,
    BTreeMap<String, String>,
);

async fn describe_batch(
    c: &RegionClients,
    arns: &[String],
    budget: &Budget,
) -> Result<Vec<Described>, AwsError> {
    budget.acquire(Priority::Background).await;
    let out = c
        .elb
        .describe_target_groups()
        .set_target_group_arns(Some(arns.to_vec()))
        .send()
        .await
        .pipe_observe(c, "DescribeTargetGroups", "a batch of target groups")?;
    budget.acquire(Priority::Background).await;
    let mut tags = elb_tags_of(c, arns).await?;
    Ok(out
        .target_groups()
        .iter()
        .map(|g| {
            let arn = g.target_group_arn().unwrap_or_default();
            (g.clone(), tags.remove(arn).unwrap_or_default())
        })
        .collect())
}

async fn vpc_cidrs(
    c: &RegionClients,
    vpcs: &BTreeSet<String>,
) -> Result<BTreeMap<String, Vec<IpNet>>, AwsError> {
    if vpcs.is_empty() {
        return Ok(BTreeMap::new());
    }
    let out = c
        .ec2
        .describe_vpcs()
        .set_vpc_ids(Some(vpcs.iter().cloned().collect()))
        .send()
        .await
        .pipe_observe(c, "DescribeVpcs", "the target groups' VPCs")?;
    Ok(out
        .vpcs()
        .iter()
        .filter_map(|v| Some((v.vpc_id()?.to_string(), cidrs_of(v))))
        .collect())
}
