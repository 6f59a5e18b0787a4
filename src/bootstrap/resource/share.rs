//! The AWS RAM resource share that gives the consumer's accounts the resource configuration:
//! exactly this stack's configuration, with exactly the configured accounts, open to
//! accounts outside the organization (a SaaS consumer's always is). An account outside the
//! owner's organization gets an invitation it must accept; the owner sees its principal
//! association, not the invitation.
//! https://docs.aws.amazon.com/ram/latest/APIReference/API_CreateResourceShare.html
//! https://docs.aws.amazon.com/vpc/latest/privatelink/use-resource-endpoint.html

use std::collections::BTreeSet;

use aws_sdk_ram::types::{
    ResourceOwner, ResourceShare, ResourceShareAssociationStatus, ResourceShareAssociationType,
    ResourceShareStatus,
};
use serde::Serialize;

use super::configuration::Configuration;
use super::{tags, ResourceClients};
use crate::aws::{Boxed, Observe};
use crate::bootstrap::endpoint_service::principal_changes;
use crate::bootstrap::journal::{Journal, Mark};
use crate::error::AwsError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareSpec {
    /// `pglink-NAME`.
    pub name: String,
    /// The consumer's account IDs.
    pub principals: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Share {
    pub arn: String,
}

/// One association of a share, as RAM reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Association {
    pub entity: String,
    pub status: String,
    /// Outside the owner's organization: the account accepts an invitation first.
    pub external: Option<bool>,
    pub message: Option<String>,
}

impl Association {
    /// Counts towards what the share holds (not on its way out or failed).
    fn holds(&self) -> bool {
        !matches!(
            self.status.as_str(),
            "DISASSOCIATED" | "DISASSOCIATING" | "FAILED"
        )
    }
}

/// This stack's share, owned by this account: found by name, refused without our tags.
/// Deleted and deleting shares stay listed for a while and are not ours any more.
pub async fn find(
    c: &ResourceClients,
    stack: &str,
    name: &str,
) -> Result<Option<ResourceShare>, AwsError> {
    let mut token = None;
    loop {
        let out = c
            .ram
            .get_resource_shares()
            .resource_owner(ResourceOwner::SelfValue)
            .name(name)
            .set_next_token(token)
            .send()
            .boxed()
            .await
            .pipe_observe(c, "GetResourceShares", name)?;
        let live: Vec<&ResourceShare> = out
            .resource_shares()
            .iter()
            .filter(|s| {
                s.name() == Some(name)
                    && !matches!(
                        s.status(),
                        Some(ResourceShareStatus::Deleted | ResourceShareStatus::Deleting)
                    )
            })
            .collect();
        // RAM names are not unique: two live shares of this name are not pglink's doing
        // to guess between.
        if live.len() > 1 {
            let arns: Vec<&str> = live.iter().filter_map(|s| s.resource_share_arn()).collect();
            return Err(AwsError::Rejected {
                op: "GetResourceShares",
                code: "Ambiguous".into(),
                message: format!(
                    "{} resource shares are named {name}: {}; delete all but one (aws ram delete-resource-share) and run again",
                    live.len(),
                    arns.join(", ")
                ),
            });
        }
        if let Some(share) = live.first().copied() {
            let tags = share
                .tags()
                .iter()
                .filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string())))
                .collect();
            if !crate::bootstrap::tags::owned_by(Some(&tags), stack) {
                return Err(AwsError::Rejected {
                    op: "GetResourceShares",
                    code: "NotOwned".into(),
                    message: format!(
                        "resource share {name} exists without pglink's tags for {stack:?}; rename bootstrap.name or remove it"
                    ),
                });
            }
            return Ok(Some(share.clone()));
        }
        token = out.next_token().map(str::to_string);
        if token.is_none() {
            return Ok(None);
        }
    }
}

/// The share's associations of one type (its configuration, or its accounts).
pub async fn associations(
    c: &ResourceClients,
    arn: &str,
    kind: ResourceShareAssociationType,
) -> Result<Vec<Association>, AwsError> {
    let mut all = Vec::new();
    let mut token = None;
    loop {
        let out = c
            .ram
            .get_resource_share_associations()
            .association_type(kind.clone())
            .resource_share_arns(arn)
            .set_next_token(token)
            .send()
            .boxed()
            .await
            .pipe_observe(c, "GetResourceShareAssociations", arn)?;
        all.extend(out.resource_share_associations().iter().map(|a| {
            Association {
                entity: a.associated_entity().unwrap_or_default().to_string(),
                status: a
                    .status()
                    .map_or("UNKNOWN", ResourceShareAssociationStatus::as_str)
                    .to_string(),
                external: a.external(),
                message: a.status_message().map(str::to_string),
            }
        }));
        token = out.next_token().map(str::to_string);
        if token.is_none() {
            return Ok(all);
        }
    }
}

/// Finds, creates or repairs the share of `configuration`; `None` in a dry run that would
/// create it (or whose configuration does not exist yet).
pub async fn ensure(
    c: &ResourceClients,
    journal: &mut Journal,
    stack: &str,
    spec: &ShareSpec,
    configuration: Option<&Configuration>,
) -> Result<Option<Share>, AwsError> {
    let resource = format!("resource share {}", spec.name);
    if let Some(found) = find(c, stack, &spec.name).await? {
        let share = Share {
            arn: found.resource_share_arn().unwrap_or_default().to_string(),
        };
        repair(c, journal, &resource, &found, spec, configuration).await?;
        return Ok(Some(share));
    }
    journal.record(
        Mark::Create,
        &resource,
        format!(
            "with {} (outside your organization: the account accepts an invitation)",
            spec.principals.join(", ")
        ),
    );
    let Some(configuration) = configuration.filter(|_| !journal.dry_run) else {
        return Ok(None);
    };
    // RAM's SDK fills in no idempotency token, and share names are not unique: one token
    // per run makes the SDK's own retries of this call create one share, not two.
    let token = format!("pglink-{:032x}", rand::random::<u128>());
    let out = c
        .ram
        .create_resource_share()
        .client_token(token)
        .name(&spec.name)
        .resource_arns(&configuration.arn)
        .set_principals(Some(spec.principals.clone()))
        .allow_external_principals(true)
        .set_tags(Some(tags::ram(stack)))
        .send()
        .boxed()
        .await
        .pipe_observe(c, "CreateResourceShare", &spec.name)?;
    journal.confirm();
    Ok(Some(Share {
        arn: out
            .resource_share()
            .and_then(|s| s.resource_share_arn())
            .unwrap_or_default()
            .to_string(),
    }))
}

async fn repair(
    c: &ResourceClients,
    journal: &mut Journal,
    resource: &str,
    found: &ResourceShare,
    spec: &ShareSpec,
    configuration: Option<&Configuration>,
) -> Result<(), AwsError> {
    let arn = found.resource_share_arn().unwrap_or_default();
    let held = |list: Vec<Association>| -> BTreeSet<String> {
        list.into_iter()
            .filter(Association::holds)
            .map(|a| a.entity)
            .collect()
    };
    let accounts = held(associations(c, arn, ResourceShareAssociationType::Principal).await?);
    let resources = held(associations(c, arn, ResourceShareAssociationType::Resource).await?);
    let (add_accounts, drop_accounts) = principal_changes(&accounts, &spec.principals);
    let wanted: Vec<String> = configuration.map(|c| c.arn.clone()).into_iter().collect();
    let (add_resources, drop_resources) = match configuration {
        Some(_) => principal_changes(&resources, &wanted),
        None => (Vec::new(), Vec::new()),
    };
    let external = found.allow_external_principals() != Some(true);
    let mut drift = Vec::new();
    for (what, list, sign) in [
        ("accounts", &add_accounts, '+'),
        ("accounts", &drop_accounts, '-'),
        ("configuration", &add_resources, '+'),
        ("configuration", &drop_resources, '-'),
    ] {
        if !list.is_empty() {
            drift.push(format!("{sign} {what} {}", list.join(", ")));
        }
    }
    if external {
        drift.push("allow accounts outside the organization".into());
    }
    if drift.is_empty() {
        journal.record(Mark::Ok, resource, arn.to_string());
        return Ok(());
    }
    journal.record(Mark::Update, resource, drift.join("; "));
    if journal.dry_run {
        return Ok(());
    }
    if external {
        c.ram
            .update_resource_share()
            .resource_share_arn(arn)
            .allow_external_principals(true)
            .send()
            .boxed()
            .await
            .pipe_observe(c, "UpdateResourceShare", arn)?;
    }
    if !add_accounts.is_empty() || !add_resources.is_empty() {
        c.ram
            .associate_resource_share()
            .resource_share_arn(arn)
            .set_principals(Some(add_accounts).filter(|v| !v.is_empty()))
            .set_resource_arns(Some(add_resources).filter(|v| !v.is_empty()))
            .send()
            .boxed()
            .await
            .pipe_observe(c, "AssociateResourceShare", arn)?;
    }
    if !drop_accounts.is_empty() || !drop_resources.is_empty() {
        c.ram
            .disassociate_resource_share()
            .resource_share_arn(arn)
            .set_principals(Some(drop_accounts).filter(|v| !v.is_empty()))
            .set_resource_arns(Some(drop_resources).filter(|v| !v.is_empty()))
            .send()
            .boxed()
            .await
            .pipe_observe(c, "DisassociateResourceShare", arn)?;
    }
    journal.confirm();
    Ok(())
}

/// Deletes the share: the consumers lose the configuration.
pub async fn delete(c: &ResourceClients, arn: &str) -> Result<(), AwsError> {
    c.ram
        .delete_resource_share()
        .resource_share_arn(arn)
        .send()
        .boxed()
        .await
        .pipe_observe(c, "DeleteResourceShare", arn)?;
    Ok(())
}

#[cfg(test)]
mod tests;
