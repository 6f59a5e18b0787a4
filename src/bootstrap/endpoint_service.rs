//! The VPC endpoint service on the NLB: acceptance as configured, allowed principals exactly
//! as configured (missing ones added, others removed).

use std::collections::BTreeSet;

use aws_sdk_ec2::types::{ResourceType, ServiceConfiguration, Tag, TagSpecification};

use super::journal::{Journal, Mark};
use super::tags;
use crate::aws::{Observe, RegionClients};
use crate::error::AwsError;
use crate::ownership;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub id: String,
    pub name: String,
}

/// Finds this stack's service by its tags (read from each service: filters are not
/// reliable everywhere).
pub async fn find(c: &RegionClients, name: &str) -> Result<Option<ServiceConfiguration>, AwsError> {
    let mut token = None;
    loop {
        let out = c
            .ec2
            .describe_vpc_endpoint_service_configurations()
            .set_next_token(token)
            .send()
            .await
            .pipe_observe(c, "DescribeVpcEndpointServiceConfigurations", name)?;
        let found = out.service_configurations().iter().find(|s| {
            let t = s
                .tags()
                .iter()
                .filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string())))
                .collect();
            tags::owned_by(Some(&t), name)
        });
        if let Some(s) = found {
            return Ok(Some(s.clone()));
        }
        token = out.next_token().map(str::to_string);
        if token.is_none() {
            return Ok(None);
        }
    }
}

pub async fn ensure(
    c: &RegionClients,
    journal: &mut Journal,
    name: &str,
    nlb_arn: Option<&str>,
    acceptance_required: bool,
    principals: &[String],
) -> Result<Option<Service>, AwsError> {
    let resource = "VPC endpoint service".to_string();
    let service = match find(c, name).await? {
        Some(s) => {
            repair(c, journal, &resource, &s, nlb_arn, acceptance_required).await?;
            s
        }
        None => {
            journal.record(
                Mark::Create,
                &resource,
                format!("on the NLB, acceptance required: {acceptance_required}"),
            );
            match nlb_arn {
                Some(nlb) if !journal.dry_run => {
                    let created = create(c, name, nlb, acceptance_required).await?;
                    journal.confirm();
                    created
                }
                _ => {
                    if !principals.is_empty() {
                        journal.record(Mark::Create, "allowed principals", principals.join(", "));
                    }
                    return Ok(None);
                }
            }
        }
    };
    let id = service.service_id().unwrap_or_default().to_string();
    ensure_principals(c, journal, &id, principals).await?;
    Ok(Some(Service {
        id,
        name: service.service_name().unwrap_or_default().to_string(),
    }))
}

async fn repair(
    c: &RegionClients,
    journal: &mut Journal,
    resource: &str,
    s: &ServiceConfiguration,
    nlb_arn: Option<&str>,
    acceptance_required: bool,
) -> Result<(), AwsError> {
    let id = s.service_id().unwrap_or_default();
    let mut request = c
        .ec2
        .modify_vpc_endpoint_service_configuration()
        .service_id(id);
    let mut drift = Vec::new();
    if s.acceptance_required() != Some(acceptance_required) {
        drift.push(format!("acceptance required: {acceptance_required}"));
        request = request.acceptance_required(acceptance_required);
    }
    if let Some(nlb) = nlb_arn {
        if !s.network_load_balancer_arns().iter().any(|a| a == nlb) {
            drift.push("attach the NLB".into());
            request = request.add_network_load_balancer_arns(nlb);
        }
    }
    if drift.is_empty() {
        journal.record(
            Mark::Ok,
            resource,
            s.service_name().unwrap_or_default().to_string(),
        );
        return Ok(());
    }
    journal.record(Mark::Update, resource, drift.join("; "));
    if !journal.dry_run {
        request
            .send()
            .await
            .pipe_observe(c, "ModifyVpcEndpointServiceConfiguration", id)?;
        journal.confirm();
    }
    Ok(())
}

async fn create(
    c: &RegionClients,
    name: &str,
    nlb_arn: &str,
    acceptance_required: bool,
) -> Result<ServiceConfiguration, AwsError> {
    let mut spec = TagSpecification::builder().resource_type(ResourceType::VpcEndpointService);
    for (k, v) in ownership::ownership_tags(name) {
        spec = spec.tags(Tag::builder().key(k).value(v).build());
    }
    let out = c
        .ec2
        .create_vpc_endpoint_service_configuration()
        .network_load_balancer_arns(nlb_arn)
        .acceptance_required(acceptance_required)
        .tag_specifications(spec.build())
        .send()
        .await
        .pipe_observe(c, "CreateVpcEndpointServiceConfiguration", nlb_arn)?;
    out.service_configuration()
        .cloned()
        .ok_or_else(|| AwsError::Transient {
            op: "CreateVpcEndpointServiceConfiguration",
            detail: "no service in the answer".into(),
        })
}

/// The change that makes the allowed principals exactly `wanted`: (add, remove).
pub fn principal_changes(
    current: &BTreeSet<String>,
    wanted: &[String],
) -> (Vec<String>, Vec<String>) {
    let wanted: BTreeSet<String> = wanted.iter().cloned().collect();
    (
        wanted.difference(current).cloned().collect(),
        current.difference(&wanted).cloned().collect(),
    )
}

async fn ensure_principals(
    c: &RegionClients,
    journal: &mut Journal,
    service_id: &str,
    wanted: &[String],
) -> Result<(), AwsError> {
    let out = c
        .ec2
        .describe_vpc_endpoint_service_permissions()
        .service_id(service_id)
        .send()
        .await
        .pipe_observe(c, "DescribeVpcEndpointServicePermissions", service_id)?;
    let current: BTreeSet<String> = out
        .allowed_principals()
        .iter()
        .filter_map(|p| p.principal())
        .map(str::to_string)
        .collect();
    let (add, remove) = principal_changes(&current, wanted);
    if add.is_empty() && remove.is_empty() {
        journal.record(Mark::Ok, "allowed principals", wanted.join(", "));
        return Ok(());
    }
    let mut detail = Vec::new();
    if !add.is_empty() {
        detail.push(format!("allow {}", add.join(", ")));
    }
    if !remove.is_empty() {
        detail.push(format!("remove {}", remove.join(", ")));
    }
    journal.record(
        if current.is_empty() {
            Mark::Create
        } else {
            Mark::Update
        },
        "allowed principals",
        detail.join("; "),
    );
    if journal.dry_run {
        return Ok(());
    }
    c.ec2
        .modify_vpc_endpoint_service_permissions()
        .service_id(service_id)
        .set_add_allowed_principals((!add.is_empty()).then_some(add))
        .set_remove_allowed_principals((!remove.is_empty()).then_some(remove))
        .send()
        .await
        .pipe_observe(c, "ModifyVpcEndpointServicePermissions", service_id)?;
    journal.confirm();
    Ok(())
}

pub async fn delete(c: &RegionClients, service_id: &str) -> Result<(), AwsError> {
    let out = c
        .ec2
        .delete_vpc_endpoint_service_configurations()
        .service_ids(service_id)
        .send()
        .await
        .pipe_observe(c, "DeleteVpcEndpointServiceConfigurations", service_id)?;
    match out.unsuccessful().first().and_then(|u| u.error()) {
        Some(e) if e.code() != Some("InvalidVpcEndpointService.NotFound") => {
            Err(AwsError::Rejected {
                op: "DeleteVpcEndpointServiceConfigurations",
                code: e.code().unwrap_or("Unknown").to_string(),
                message: e.message().unwrap_or_default().to_string(),
            })
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principals_become_exactly_the_configured_ones() {
        let dbt = "arn:aws:iam::346425330055:role/MTPL_Admin".to_string();
        let other = "arn:aws:iam::111111111111:root".to_string();
        let current: BTreeSet<String> = [other.clone()].into();
        assert_eq!(
            principal_changes(&current, std::slice::from_ref(&dbt)),
            (vec![dbt.clone()], vec![other])
        );
        let current: BTreeSet<String> = [dbt.clone()].into();
        assert_eq!(principal_changes(&current, &[dbt]), (vec![], vec![]));
    }
}
