//! The resource gateway: the way into the database's VPC for resource endpoints, with an
//! interface in each subnet (one subnet per Availability Zone) and a security group of its
//! own. After creation only its security groups can change (UpdateResourceGateway); its
//! subnets, address type and addresses per interface are fixed, so drift there is reported
//! for the user to recreate it, never "repaired" by cutting consumers off.
//! https://docs.aws.amazon.com/vpc-lattice/latest/ug/resource-gateway.html
//! https://docs.aws.amazon.com/vpc-lattice/latest/APIReference/API_UpdateResourceGateway.html

use std::collections::BTreeSet;

use aws_sdk_vpclattice::types::{
    ResourceGatewayIpAddressType, ResourceGatewayStatus, ResourceGatewaySummary,
};
use tracing::warn;

use super::wait::{self, Look};
use super::{arn_account, tags, ResourceClients};
use crate::aws::{Boxed, Observe};
use crate::bootstrap::journal::{Journal, Mark};
use crate::error::AwsError;

/// What the gateway should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewaySpec {
    /// The Lattice name, `pglink-NAME`.
    pub name: String,
    pub vpc_id: String,
    /// One per Availability Zone of the database's subnets.
    pub subnet_ids: Vec<String>,
    /// The gateway's own group; `None` in a dry run that has not created it yet.
    pub security_group_id: Option<String>,
    /// IPv4 addresses per interface (1-62): the gateway's concurrent connections per AZ.
    pub ipv4_addresses_per_eni: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gateway {
    pub id: String,
    pub arn: String,
    /// What differs from the spec and cannot change in place (for the output's warnings).
    pub fixed_drift: Vec<String>,
}

/// How a found gateway differs from the spec.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Drift {
    /// The security groups to set (the only field UpdateResourceGateway changes).
    pub security_groups: Option<Vec<String>>,
    /// What differs and cannot change in place.
    pub fixed: Vec<String>,
}

/// Compares a found gateway with the spec (pure).
pub fn drift(found: &ResourceGatewaySummary, spec: &GatewaySpec) -> Drift {
    let mut d = Drift::default();
    if let Some(sg) = &spec.security_group_id {
        if found.security_group_ids() != [sg.clone()] {
            d.security_groups = Some(vec![sg.clone()]);
        }
    }
    if found.vpc_identifier() != Some(spec.vpc_id.as_str()) {
        d.fixed.push(format!(
            "in {} instead of {}",
            found.vpc_identifier().unwrap_or("?"),
            spec.vpc_id
        ));
    }
    let found_subnets: BTreeSet<&String> = found.subnet_ids().iter().collect();
    let wanted: BTreeSet<&String> = spec.subnet_ids.iter().collect();
    if found_subnets != wanted {
        d.fixed.push(format!(
            "subnets {} instead of {}",
            join(&found_subnets),
            join(&wanted)
        ));
    }
    if let Some(n) = found.ipv4_addresses_per_eni() {
        if n != spec.ipv4_addresses_per_eni {
            d.fixed.push(format!(
                "{n} IPv4 addresses per interface instead of {}",
                spec.ipv4_addresses_per_eni
            ));
        }
    }
    d
}

fn join(set: &BTreeSet<&String>) -> String {
    set.iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// This stack's gateway in `account`: found by name (unique in an account), refused if it
/// lacks this stack's tags. The list also holds gateways shared with the account, so the
/// account in the ARN must match.
pub async fn find(
    c: &ResourceClients,
    stack: &str,
    account: &str,
    name: &str,
) -> Result<Option<ResourceGatewaySummary>, AwsError> {
    let mut token = None;
    loop {
        let out = c
            .lattice
            .list_resource_gateways()
            .set_next_token(token)
            .send()
            .boxed()
            .await
            .pipe_observe(c, "ListResourceGateways", name)?;
        let found = out
            .items()
            .iter()
            .find(|g| g.name() == Some(name) && g.arn().and_then(arn_account) == Some(account));
        if let Some(g) = found {
            let arn = g.arn().unwrap_or_default();
            let what = format!("resource gateway {name}");
            tags::require_owned(c, arn, stack, "ListTagsForResource", &what).await?;
            return Ok(Some(g.clone()));
        }
        token = out.next_token().map(str::to_string);
        if token.is_none() {
            return Ok(None);
        }
    }
}

/// Finds, creates (and waits until ACTIVE) or repairs the gateway. `None` in a dry run
/// that would create it.
pub async fn ensure(
    c: &ResourceClients,
    journal: &mut Journal,
    stack: &str,
    account: &str,
    spec: &GatewaySpec,
) -> Result<Option<Gateway>, AwsError> {
    let resource = format!("resource gateway {}", spec.name);
    if let Some(found) = find(c, stack, account, &spec.name).await? {
        let mut gateway = Gateway {
            id: found.id().unwrap_or_default().to_string(),
            arn: found.arn().unwrap_or_default().to_string(),
            fixed_drift: Vec::new(),
        };
        settle(c, &found, &resource).await?;
        gateway.fixed_drift = repair(c, journal, &resource, &found, spec, &gateway).await?;
        return Ok(Some(gateway));
    }
    journal.record(
        Mark::Create,
        &resource,
        format!(
            "{}; IPv4, {} addresses per interface",
            spec.subnet_ids.join(", "),
            spec.ipv4_addresses_per_eni
        ),
    );
    let Some(sg) = spec
        .security_group_id
        .as_deref()
        .filter(|_| !journal.dry_run)
    else {
        return Ok(None);
    };
    let out = c
        .lattice
        .create_resource_gateway()
        .name(&spec.name)
        .vpc_identifier(&spec.vpc_id)
        .set_subnet_ids(Some(spec.subnet_ids.clone()))
        .security_group_ids(sg)
        .ip_address_type(ResourceGatewayIpAddressType::Ipv4)
        .ipv4_addresses_per_eni(spec.ipv4_addresses_per_eni)
        .set_tags(Some(tags::lattice(stack)))
        .send()
        .boxed()
        .await
        .pipe_observe(c, "CreateResourceGateway", &spec.name)?;
    let gateway = Gateway {
        id: out.id().unwrap_or_default().to_string(),
        arn: out.arn().unwrap_or_default().to_string(),
        fixed_drift: Vec::new(),
    };
    wait_active(c, &gateway.id, &resource).await?;
    journal.confirm();
    Ok(Some(gateway))
}

/// A gateway found half-way (a run that stopped while AWS was still creating it) is waited
/// for; a failed one is an error naming the way out.
async fn settle(
    c: &ResourceClients,
    found: &ResourceGatewaySummary,
    resource: &str,
) -> Result<(), AwsError> {
    match found.status() {
        Some(ResourceGatewayStatus::Active) | None => Ok(()),
        Some(
            s @ (ResourceGatewayStatus::CreateFailed
            | ResourceGatewayStatus::UpdateFailed
            | ResourceGatewayStatus::DeleteFailed
            | ResourceGatewayStatus::DeleteInProgress),
        ) => Err(AwsError::Rejected {
            op: "ListResourceGateways",
            code: s.as_str().to_string(),
            message: format!(
                "{resource} is {}: run pglink teardown, then bootstrap again",
                s.as_str()
            ),
        }),
        Some(_) => wait_active(c, found.id().unwrap_or_default(), resource).await,
    }
}

/// Repairs what can change in place; returns what differs and cannot.
async fn repair(
    c: &ResourceClients,
    journal: &mut Journal,
    resource: &str,
    found: &ResourceGatewaySummary,
    spec: &GatewaySpec,
    gateway: &Gateway,
) -> Result<Vec<String>, AwsError> {
    let d = drift(found, spec);
    let fixed: Vec<String> = d
        .fixed
        .iter()
        .map(|f| format!("{resource} is {f}, which cannot change in place: recreate it (pglink teardown, then bootstrap) in a window, as consumers lose the path meanwhile"))
        .collect();
    for f in &fixed {
        warn!("{f}");
    }
    let Some(groups) = d.security_groups else {
        journal.record(Mark::Ok, resource, gateway.id.clone());
        return Ok(fixed);
    };
    journal.record(
        Mark::Update,
        resource,
        format!("security groups {}", groups.join(", ")),
    );
    if journal.dry_run {
        return Ok(fixed);
    }
    c.lattice
        .update_resource_gateway()
        .resource_gateway_identifier(&gateway.id)
        .set_security_group_ids(Some(groups))
        .send()
        .boxed()
        .await
        .pipe_observe(c, "UpdateResourceGateway", &gateway.id)?;
    wait_active(c, &gateway.id, resource).await?;
    journal.confirm();
    Ok(fixed)
}

/// The gateway's status, as GetResourceGateway reports it.
async fn status(c: &ResourceClients, id: &str) -> Result<Option<ResourceGatewayStatus>, AwsError> {
    let out = c
        .lattice
        .get_resource_gateway()
        .resource_gateway_identifier(id)
        .send()
        .boxed()
        .await
        .pipe_observe(c, "GetResourceGateway", id)?;
    Ok(out.status().cloned())
}

/// Polls until the gateway is ACTIVE; a failed create or update is an error.
async fn wait_active(c: &ResourceClients, id: &str, what: &str) -> Result<(), AwsError> {
    wait::until("GetResourceGateway", what, || async {
        Ok(match status(c, id).await?.as_ref() {
            Some(ResourceGatewayStatus::Active) => Look::Done(()),
            Some(
                s @ (ResourceGatewayStatus::CreateFailed | ResourceGatewayStatus::UpdateFailed),
            ) => Look::Failed(format!("AWS reports {}", s.as_str())),
            other => Look::Pending(other.map_or("unknown", |s| s.as_str()).to_string()),
        })
    })
    .await
}

/// Deletes the gateway and waits until it is gone. AWS refuses while a resource
/// configuration still uses it (ConflictException), which the caller retries.
pub async fn delete(c: &ResourceClients, id: &str, what: &str) -> Result<(), AwsError> {
    c.lattice
        .delete_resource_gateway()
        .resource_gateway_identifier(id)
        .send()
        .boxed()
        .await
        .pipe_observe(c, "DeleteResourceGateway", id)?;
    wait::until("GetResourceGateway", what, || async {
        Ok(match status(c, id).await {
            Err(e) if e.is_not_found() => Look::Done(()),
            Err(e) => return Err(e),
            Ok(s) => match s.as_ref() {
                Some(ResourceGatewayStatus::DeleteFailed) => {
                    Look::Failed("AWS reports DELETE_FAILED".into())
                }
                other => Look::Pending(other.map_or("unknown", |s| s.as_str()).to_string()),
            },
        })
    })
    .await
}

#[cfg(test)]
mod tests;
