//! pglink's ownership tags in the shapes VPC Lattice (a map) and RAM (a list) take.

use std::collections::{BTreeMap, HashMap};

use crate::aws::{Boxed, Observe};
use crate::error::AwsError;
use crate::ownership;

use super::ResourceClients;

/// Lattice's `tags` map for this stack.
pub fn lattice(stack: &str) -> HashMap<String, String> {
    ownership::ownership_tags(stack).into_iter().collect()
}

/// RAM's tags for this stack.
pub fn ram(stack: &str) -> Vec<aws_sdk_ram::types::Tag> {
    ownership::ownership_tags(stack)
        .into_iter()
        .map(|(k, v)| aws_sdk_ram::types::Tag::builder().key(k).value(v).build())
        .collect()
}

/// A Lattice resource's tags (the list calls return none).
pub async fn of(c: &ResourceClients, arn: &str) -> Result<BTreeMap<String, String>, AwsError> {
    let out = c
        .lattice
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .boxed()
        .await
        .pipe_observe(c, "ListTagsForResource", arn)?;
    Ok(out
        .tags()
        .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default())
}

/// A resource found by this stack's name must carry this stack's tags: one that does not is
/// an error, never adopted.
pub async fn require_owned(
    c: &ResourceClients,
    arn: &str,
    stack: &str,
    op: &'static str,
    what: &str,
) -> Result<(), AwsError> {
    let tags = of(c, arn).await?;
    if crate::bootstrap::tags::owned_by(Some(&tags), stack) {
        return Ok(());
    }
    Err(AwsError::Rejected {
        op,
        code: "NotOwned".into(),
        message: format!(
            "{what} exists without pglink's tags for {stack:?}; rename bootstrap.name or remove it"
        ),
    })
}
