//! ELBv2 and EC2 tag helpers over the ownership tags in `crate::ownership`.

use std::collections::BTreeMap;

use aws_sdk_elasticloadbalancingv2::types::Tag;

use crate::aws::{Boxed, Observe, RegionClients};
use crate::error::AwsError;
use crate::ownership;

pub fn pairs(name: &str) -> Vec<(String, String)> {
    ownership::ownership_tags(name)
}

pub fn elb_tags(name: &str) -> Vec<Tag> {
    pairs(name)
        .into_iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// Tags of several ELBv2 resources at once, by ARN.
pub async fn elb_tags_of(
    c: &RegionClients,
    arns: &[String],
) -> Result<BTreeMap<String, BTreeMap<String, String>>, AwsError> {
    if arns.is_empty() {
        return Ok(BTreeMap::new());
    }
    let out = c
        .elb
        .describe_tags()
        .set_resource_arns(Some(arns.to_vec()))
        .send()
        .boxed()
        .await
        .pipe_observe(c, "DescribeTags", &arns.join(","))?;
    Ok(out
        .tag_descriptions()
        .iter()
        .filter_map(|d| {
            let tags = d.tags().iter().filter_map(|t| {
                Some((
                    t.key()?.to_string(),
                    t.value().unwrap_or_default().to_string(),
                ))
            });
            Some((d.resource_arn()?.to_string(), tags.collect()))
        })
        .collect())
}

/// Whether a resource carries pglink's tags for exactly this bootstrap name.
pub fn owned_by(tags: Option<&BTreeMap<String, String>>, name: &str) -> bool {
    tags.is_some_and(|t| ownership::is_managed(t) && ownership::owner_name(t) == Some(name))
}

/// A resource found by pglink's name for this stack must carry this stack's tags; one
/// that does not is an error, never adopted silently.
pub async fn require_owned(
    c: &RegionClients,
    arn: &str,
    name: &str,
    op: &'static str,
    what: &str,
) -> Result<(), AwsError> {
    let tags = elb_tags_of(c, &[arn.to_string()]).await?;
    if owned_by(tags.get(arn), name) {
        return Ok(());
    }
    Err(AwsError::Rejected {
        op,
        code: "NotOwned".into(),
        message: format!(
            "{what} exists without pglink's tags for {name:?}; rename bootstrap.name or remove it"
        ),
    })
}
