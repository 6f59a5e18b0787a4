//! Security groups: the NLB's own group (created and tagged by pglink), and the rule on the
//! database's group that lets the NLB in on the database port, from that group only.
//!
//! The NLB group has no inbound rules and pglink turns off their enforcement for PrivateLink
//! traffic (`SetSecurityGroups`), so the NLB takes connections from the endpoint service
//! only, not from anything else in the VPC.

use aws_sdk_ec2::types::{Filter, IpPermission, ResourceType, TagSpecification, UserIdGroupPair};

use super::journal::{Journal, Mark};
use super::tags;
use crate::aws::{Observe, RegionClients};
use crate::error::AwsError;

pub fn nlb_group_name(name: &str) -> String {
    format!("pglink-{name}-nlb")
}

fn owned_filters(name: &str) -> Vec<Filter> {
    vec![
        Filter::builder()
            .name(format!("tag:{}", crate::ownership::MANAGED_BY_KEY))
            .values(crate::ownership::MANAGED_BY_VALUE)
            .build(),
        Filter::builder()
            .name(format!("tag:{}", crate::ownership::NAME_KEY))
            .values(name)
            .build(),
    ]
}

/// Finds the NLB's group by tags (in the VPC, when given).
pub async fn find_nlb_group(
    c: &RegionClients,
    name: &str,
    vpc_id: Option<&str>,
) -> Result<Option<String>, AwsError> {
    let mut filters = owned_filters(name);
    if let Some(vpc) = vpc_id {
        filters.push(Filter::builder().name("vpc-id").values(vpc).build());
    }
    let out = c
        .ec2
        .describe_security_groups()
        .set_filters(Some(filters))
        .send()
        .await
        .pipe_observe(c, "DescribeSecurityGroups", name)?;
    Ok(out
        .security_groups()
        .iter()
        .find_map(|g| g.group_id())
        .map(str::to_string))
}

pub async fn ensure_nlb_group(
    c: &RegionClients,
    journal: &mut Journal,
    name: &str,
    vpc_id: &str,
) -> Result<Option<String>, AwsError> {
    let group_name = nlb_group_name(name);
    if let Some(id) = find_nlb_group(c, name, Some(vpc_id)).await? {
        journal.record(Mark::Ok, format!("security group {group_name}"), id.clone());
        return Ok(Some(id));
    }
    journal.record(
        Mark::Create,
        format!("security group {group_name}"),
        format!("for the NLB, in {vpc_id}"),
    );
    if journal.dry_run {
        return Ok(None);
    }
    let out = c
        .ec2
        .create_security_group()
        .group_name(&group_name)
        .description(format!("pglink {name}: the NLB in front of the database"))
        .vpc_id(vpc_id)
        .tag_specifications(tag_spec(ResourceType::SecurityGroup, name))
        .send()
        .await
        .pipe_observe(c, "CreateSecurityGroup", &group_name)?;
    Ok(out.group_id().map(str::to_string))
}

fn tag_spec(kind: ResourceType, name: &str) -> TagSpecification {
    let mut spec = TagSpecification::builder().resource_type(kind);
    for (k, v) in tags::pairs(name) {
        spec = spec.tags(aws_sdk_ec2::types::Tag::builder().key(k).value(v).build());
    }
    spec.build()
}

/// The rule pglink added to a database group, if any: (rule id, source group, port).
pub async fn find_db_rule(
    c: &RegionClients,
    name: &str,
    db_group: &str,
) -> Result<Option<(String, Option<String>, i32)>, AwsError> {
    let out = c
        .ec2
        .describe_security_group_rules()
        .set_filters(Some(owned_filters(name)))
        .filters(Filter::builder().name("group-id").values(db_group).build())
        .send()
        .await
        .pipe_observe(c, "DescribeSecurityGroupRules", db_group)?;
    Ok(out
        .security_group_rules()
        .iter()
        .filter(|r| r.is_egress() != Some(true) && r.group_id() == Some(db_group))
        .find_map(|r| {
            let source = r
                .referenced_group_info()
                .and_then(|g| g.group_id())
                .map(str::to_string);
            Some((
                r.security_group_rule_id()?.to_string(),
                source,
                r.from_port().unwrap_or(-1),
            ))
        }))
}

/// TCP `port` into the database's group from the NLB's group only.
pub async fn ensure_db_rule(
    c: &RegionClients,
    journal: &mut Journal,
    name: &str,
    db_group: &str,
    nlb_group: Option<&str>,
    port: u16,
) -> Result<(), AwsError> {
    let resource = format!("ingress rule on {db_group}");
    let existing = find_db_rule(c, name, db_group).await?;
    let wanted_source = nlb_group.map(str::to_string);
    if let Some((id, source, from)) = &existing {
        if *from == i32::from(port) && (nlb_group.is_none() || *source == wanted_source) {
            journal.record(
                Mark::Ok,
                resource,
                format!("{id}: TCP {port} from the NLB's group"),
            );
            return Ok(());
        }
        journal.record(
            Mark::Update,
            resource.clone(),
            format!("replace {id}: it no longer matches TCP {port} from the NLB's group"),
        );
        if !journal.dry_run {
            revoke(c, db_group, id).await?;
        }
    } else {
        journal.record(
            Mark::Create,
            resource,
            format!("TCP {port} from the NLB's group"),
        );
    }
    let Some(source) = nlb_group else {
        return Ok(());
    };
    if journal.dry_run {
        return Ok(());
    }
    let pair = UserIdGroupPair::builder()
        .group_id(source)
        .description(format!("pglink {name}: NLB to database"))
        .build();
    let permission = IpPermission::builder()
        .ip_protocol("tcp")
        .from_port(i32::from(port))
        .to_port(i32::from(port))
        .user_id_group_pairs(pair)
        .build();
    c.ec2
        .authorize_security_group_ingress()
        .group_id(db_group)
        .ip_permissions(permission)
        .tag_specifications(tag_spec(ResourceType::SecurityGroupRule, name))
        .send()
        .await
        .pipe_observe(c, "AuthorizeSecurityGroupIngress", db_group)?;
    Ok(())
}

/// Every rule pglink added under `name`, in any group: (group id, rule id).
pub async fn find_rules(c: &RegionClients, name: &str) -> Result<Vec<(String, String)>, AwsError> {
    let out = c
        .ec2
        .describe_security_group_rules()
        .set_filters(Some(owned_filters(name)))
        .send()
        .await
        .pipe_observe(c, "DescribeSecurityGroupRules", name)?;
    Ok(out
        .security_group_rules()
        .iter()
        .filter_map(|r| {
            Some((
                r.group_id()?.to_string(),
                r.security_group_rule_id()?.to_string(),
            ))
        })
        .collect())
}

pub async fn revoke(c: &RegionClients, db_group: &str, rule_id: &str) -> Result<(), AwsError> {
    c.ec2
        .revoke_security_group_ingress()
        .group_id(db_group)
        .security_group_rule_ids(rule_id)
        .send()
        .await
        .pipe_observe(c, "RevokeSecurityGroupIngress", rule_id)
        .map(|_| ())
}

pub async fn delete_group(c: &RegionClients, group_id: &str) -> Result<(), AwsError> {
    c.ec2
        .delete_security_group()
        .group_id(group_id)
        .send()
        .await
        .pipe_observe(c, "DeleteSecurityGroup", group_id)
        .map(|_| ())
}
