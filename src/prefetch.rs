//! Start-up: describe every configured target group in a few calls instead of one per
//! target, so that a daemon with many targets is protected within seconds and spends its
//! Describe budget on the reads that matter.
//!
//! - Groups: by ARN, 20 a call; for a large fleet, by listing the region's groups 400 a
//!   page (DescribeTargetGroups' largest page,
//!   <https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_DescribeTargetGroups.html>),
//!   which takes 3 calls for 1,000 targets instead of 50. The VPCs' CIDRs in one call.
//! - Tags (whether each group is pglink's): DescribeTags takes at most 20 ARNs
//!   (<https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_DescribeTags.html>),
//!   so 1,000 targets need 50 calls: too many to wait for. They are read in the background
//!   after start-up, in line ahead of the targets' first reads; a target that needs its
//!   tags sooner (a change to make) reads them itself.
//!
//! A batch that fails is skipped: those targets describe themselves on their first pass
//! and report their own errors.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_elasticloadbalancingv2::types::TargetGroup;
use ipnet::IpNet;
use tokio::time::Instant;
use tracing::{debug, info};

use crate::aws::{Boxed, Observe, RegionClients};
use crate::bootstrap::tags::elb_tags_of;
use crate::budget::{Budget, Priority};
use crate::error::AwsError;
use crate::targets::{cidrs_of, group_info, GroupInfo, TagCache};

/// Groups per DescribeTargetGroups-by-ARN and DescribeTags call (DescribeTags takes 20).
pub const BATCH: usize = 20;
/// DescribeTargetGroups' largest page.
const PAGE: i32 = 400;
/// Above this many by-ARN calls, listing the region's groups is cheaper (a region holds
/// 3,000 target groups by default, 8 pages).
const LIST_ABOVE_BATCHES: usize = 2;

/// How long start-up may spend describing: READY=1 waits for it, and systemd's start
/// timeout must never be reached whatever the target count or the budget. Groups not
/// described by then describe themselves on their first pass.
pub const STARTUP_LIMIT: Duration = Duration::from_secs(15);

/// Describes the groups (without their tags) and their VPCs' CIDRs, starting no call
/// after `deadline`.
pub async fn describe_all(
    c: &RegionClients,
    arns: &[String],
    budget: &Budget,
    deadline: Instant,
) -> BTreeMap<String, GroupInfo> {
    let wanted: BTreeSet<&String> = arns.iter().collect();
    let batches = arns.len().div_ceil(BATCH);
    let mut found: BTreeMap<String, TargetGroup> = BTreeMap::new();
    if batches > LIST_ABOVE_BATCHES {
        // Stop listing once it would cost more than asking by ARN for the rest.
        match list(c, &wanted, budget, batches, deadline).await {
            Ok(listed) => found = listed,
            Err(e) => debug!(error = %e, "listing target groups failed; describing by ARN"),
        }
    }
    let missing: Vec<String> = arns
        .iter()
        .filter(|a| !found.contains_key(*a))
        .cloned()
        .collect();
    for chunk in missing.chunks(BATCH) {
        if !wait_until(budget, deadline).await {
            debug!(
                left = missing.len(),
                "start-up describe limit reached; the rest describe themselves"
            );
            break;
        }
        match describe_batch(c, chunk).await {
            Ok(batch) => found.extend(batch),
            Err(e) => {
                debug!(error = %e, "batched describe failed; these targets describe themselves")
            }
        }
    }
    let vpcs: BTreeSet<String> = found
        .values()
        .filter_map(|g| g.vpc_id().map(str::to_string))
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
        .map(|(arn, group)| {
            let vpc = group
                .vpc_id()
                .map(|v| cidrs.get(v).cloned().unwrap_or_default())
                .unwrap_or_default();
            let info = group_info(&arn, &group, vpc, None);
            (arn, info)
        })
        .collect()
}

/// Lists the region's target groups, keeping the wanted ones, for at most `max_pages`.
async fn list(
    c: &RegionClients,
    wanted: &BTreeSet<&String>,
    budget: &Budget,
    max_pages: usize,
    deadline: Instant,
) -> Result<BTreeMap<String, TargetGroup>, AwsError> {
    let mut found = BTreeMap::new();
    let mut marker: Option<String> = None;
    for _ in 0..max_pages {
        if !wait_until(budget, deadline).await {
            break;
        }
        let out = c
            .elb
            .describe_target_groups()
            .page_size(PAGE)
            .set_marker(marker.take())
            .send()
            .boxed()
            .await
            .pipe_observe(
                c,
                "DescribeTargetGroups",
                "a page of the region's target groups",
            )?;
        for g in out.target_groups() {
            if let Some(arn) = g
                .target_group_arn()
                .filter(|a| wanted.contains(&a.to_string()))
            {
                found.insert(arn.to_string(), g.clone());
            }
        }
        marker = out.next_marker().map(str::to_string);
        if marker.is_none() || found.len() == wanted.len() {
            break;
        }
    }
    Ok(found)
}

/// Takes a token unless `deadline` passes first.
async fn wait_until(budget: &Budget, deadline: Instant) -> bool {
    tokio::time::timeout_at(deadline, budget.acquire(Priority::Background))
        .await
        .is_ok()
}

async fn describe_batch(
    c: &RegionClients,
    arns: &[String],
) -> Result<BTreeMap<String, TargetGroup>, AwsError> {
    let out = c
        .elb
        .describe_target_groups()
        .set_target_group_arns(Some(arns.to_vec()))
        .send()
        .boxed()
        .await
        .pipe_observe(c, "DescribeTargetGroups", "a batch of target groups")?;
    Ok(out
        .target_groups()
        .iter()
        .filter_map(|g| Some((g.target_group_arn()?.to_string(), g.clone())))
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
        .boxed()
        .await
        .pipe_observe(c, "DescribeVpcs", "the target groups' VPCs")?;
    Ok(out
        .vpcs()
        .iter()
        .filter_map(|v| Some((v.vpc_id()?.to_string(), cidrs_of(v))))
        .collect())
}

/// Reads the groups' tags into `cache`, 20 a call, in the background. Each call's place in
/// the Describe line is taken now, so that the batches go ahead of the first reads of the
/// targets that start after this.
pub fn read_tags_in_background(
    c: RegionClients,
    arns: Vec<String>,
    budget: &Arc<Budget>,
    cache: TagCache,
) -> tokio::task::JoinHandle<()> {
    let batches: Vec<_> = arns
        .chunks(BATCH)
        .map(|chunk| (chunk.to_vec(), budget.ticket(Priority::Background)))
        .collect();
    tokio::spawn(async move {
        let mut read = 0;
        for (chunk, mut ticket) in batches {
            ticket.wait().await;
            match elb_tags_of(&c, &chunk).await {
                Ok(tags) => {
                    read += tags.len();
                    cache.lock().unwrap_or_else(|e| e.into_inner()).extend(tags);
                }
                Err(e) => {
                    debug!(error = %e, "a batch of tags could not be read; those targets read their own")
                }
            }
        }
        info!(groups = read, "read the target groups' tags");
    })
}
