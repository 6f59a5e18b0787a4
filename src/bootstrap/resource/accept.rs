//! `pglink accept` in resource mode: nothing to accept on the owner's side (an account
//! outside the organization accepts the share's invitation in AWS RAM), so it reports what
//! the owner can see: the share's accounts and their association status, and the consumer
//! endpoints associated with the configuration.
//! https://docs.aws.amazon.com/vpc-lattice/latest/APIReference/API_ListResourceEndpointAssociations.html

use serde::Serialize;

use super::configuration;
use super::share::{self, Association};
use super::stack::lattice_name;
use super::ResourceClients;
use crate::aws::{Boxed, Observe};
use crate::error::AwsError;

/// A consumer's resource endpoint on the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsumerEndpoint {
    /// The association's ID (what DeleteResourceEndpointAssociation takes).
    pub association_id: String,
    pub vpc_endpoint_id: String,
    pub owner: String,
}

#[derive(Debug, Default, Serialize)]
pub struct ResourceReport {
    pub resource_share_arn: Option<String>,
    pub resource_configuration_id: Option<String>,
    pub shared_with: Vec<Association>,
    pub endpoints: Vec<ConsumerEndpoint>,
    pub networks: Vec<ConsumerNetwork>,
}

/// A consumer's service network associated with the configuration (the other way a
/// consumer reaches a shared configuration).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsumerNetwork {
    pub association_id: String,
    pub service_network: String,
    pub created_by: String,
}

/// The service networks associated with a configuration.
/// https://docs.aws.amazon.com/vpc-lattice/latest/APIReference/API_ListServiceNetworkResourceAssociations.html
pub async fn networks(
    r: &ResourceClients,
    configuration_id: &str,
) -> Result<Vec<ConsumerNetwork>, AwsError> {
    let mut all = Vec::new();
    let mut token = None;
    loop {
        let out = r
            .lattice
            .list_service_network_resource_associations()
            .resource_configuration_identifier(configuration_id)
            .set_next_token(token)
            .send()
            .boxed()
            .await
            .pipe_observe(
                r,
                "ListServiceNetworkResourceAssociations",
                configuration_id,
            )?;
        all.extend(out.items().iter().map(|a| {
            ConsumerNetwork {
                association_id: a.id().unwrap_or_default().to_string(),
                service_network: a
                    .service_network_arn()
                    .or(a.service_network_id())
                    .unwrap_or_default()
                    .to_string(),
                created_by: a.created_by().unwrap_or_default().to_string(),
            }
        }));
        token = out.next_token().map(str::to_string);
        if token.is_none() {
            return Ok(all);
        }
    }
}

/// The consumer endpoints associated with a configuration.
pub async fn endpoints(
    r: &ResourceClients,
    configuration_id: &str,
) -> Result<Vec<ConsumerEndpoint>, AwsError> {
    let mut all = Vec::new();
    let mut token = None;
    loop {
        let out = r
            .lattice
            .list_resource_endpoint_associations()
            .resource_configuration_identifier(configuration_id)
            .set_next_token(token)
            .send()
            .boxed()
            .await
            .pipe_observe(r, "ListResourceEndpointAssociations", configuration_id)?;
        all.extend(out.items().iter().map(|a| ConsumerEndpoint {
            association_id: a.id().unwrap_or_default().to_string(),
            vpc_endpoint_id: a.vpc_endpoint_id().unwrap_or_default().to_string(),
            owner: a.vpc_endpoint_owner().unwrap_or_default().to_string(),
        }));
        token = out.next_token().map(str::to_string);
        if token.is_none() {
            return Ok(all);
        }
    }
}

/// What the owner sees of this stack's consumers.
pub async fn report(r: &ResourceClients, stack: &str) -> Result<ResourceReport, AwsError> {
    let name = lattice_name(stack);
    let account = r.account().await?;
    let mut out = ResourceReport::default();
    if let Some(found) = share::find(r, stack, &name).await? {
        let arn = found.resource_share_arn().unwrap_or_default().to_string();
        let kind = aws_sdk_ram::types::ResourceShareAssociationType::Principal;
        out.shared_with = share::associations(r, &arn, kind).await?;
        out.resource_share_arn = Some(arn);
    }
    if let Some(cfg) = configuration::find(r, stack, &account, &name).await? {
        let id = cfg.id().unwrap_or_default().to_string();
        out.endpoints = endpoints(r, &id).await?;
        out.networks = networks(r, &id).await?;
        out.resource_configuration_id = Some(id);
    }
    Ok(out)
}

/// The report in text: one line per account, one per endpoint.
pub fn render(report: &ResourceReport) -> String {
    let mut text = String::new();
    match &report.resource_share_arn {
        Some(arn) => text.push_str(&format!("resource share {arn}\n")),
        None => text.push_str("no resource share carries pglink's tags for this name\n"),
    }
    for a in &report.shared_with {
        let note = match (a.status.as_str(), a.external) {
            ("ASSOCIATING", Some(true)) => {
                " (outside your organization: waits until the account accepts the invitation in AWS RAM)"
            }
            _ => "",
        };
        text.push_str(&format!("  shared with {}: {}{note}\n", a.entity, a.status));
    }
    match (
        &report.resource_configuration_id,
        report.endpoints.is_empty(),
    ) {
        (Some(id), true) => text.push_str(&format!("no consumer endpoint on {id} yet\n")),
        (Some(id), false) => {
            text.push_str(&format!("consumer endpoints on {id}:\n"));
            for e in &report.endpoints {
                text.push_str(&format!("  {} (account {})\n", e.vpc_endpoint_id, e.owner));
            }
        }
        (None, _) => {
            text.push_str("no resource configuration carries pglink's tags for this name\n")
        }
    }
    for n in &report.networks {
        text.push_str(&format!(
            "  service network {} (associated by {})\n",
            n.service_network, n.created_by
        ));
    }
    text
}
