//! Security groups: the group of what stands in front of the database (the NLB, or in
//! resource mode the resource gateway), created and tagged by pglink, and the rule on the
//! database's group that lets it in on the database port, from that group only.
//!
//! The NLB group has no inbound rules and pglink turns off their enforcement for PrivateLink
//! traffic (`SetSecurityGroups`), so the NLB takes connections from the endpoint service
//! only, not from anything else in the VPC.

use aws_sdk_ec2::types::{Filter, IpPermission, ResourceType, TagSpecification, UserIdGroupPair};

use super::journal::{Journal, Mark};
use super::tags;
use crate::aws::{Observe, RegionClients};
use crate::error::AwsError;

/// What stands in front of the database and has a group of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Front {
    Nlb,
    /// A VPC Lattice resource gateway: its group controls its outbound traffic to the
    /// database; the database's group lets that group in.
    /// https://docs.aws.amazon.com/vpc-lattice/latest/ug/resource-gateway.html
    Gateway,
}

impl Front {
    pub fn group_name(self, name: &str) -> String {
        match self {
            Self::Nlb => format!("pglink-{name}-nlb"),
            Self::Gateway => format!("pglink-{name}-rgw"),
        }
    }

    fn words(self) -> &'static str {
        match self {
            Self::Nlb => "the NLB",
            Self::Gateway => "the resource gateway",
        }
    }

    fn rule_description(self, name: &str) -> String {
        match self {
            Self::Nlb => format!("pglink {name}: NLB to database"),
            Self::Gateway => format!("pglink {name}: resource gateway to database"),
        }
    }
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

/// Finds the group of `front` by tags and name (in the VPC, when given).
pub async fn find_group(
    c: &RegionClients,
    name: &str,
    front: Front,
    vpc_id: Option<&str>,
) -> Result<Option<String>, AwsError> {
    let mut filters = owned_filters(name);
    filters.push(
        Filter::builder()
            .name("group-name")
            .values(front.group_name(name))
            .build(),
    );
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

pub async fn ensure_group(
    c: &RegionClients,
    journal: &mut Journal,
    name: &str,
    vpc_id: &str,
    front: Front,
) -> Result<Option<String>, AwsError> {
    let group_name = front.group_name(name);
    if let Some(id) = find_group(c, name, front, Some(vpc_id)).await? {
        journal.record(Mark::Ok, format!("security group {group_name}"), id.clone());
        return Ok(Some(id));
    }
    journal.record(
        Mark::Create,
        format!("security group {group_name}"),
        format!("for {}, in {vpc_id}", front.words()),
    );
    if journal.dry_run {
        return Ok(None);
    }
    let out = c
        .ec2
        .create_security_group()
        .group_name(&group_name)
        .description(format!(
            "pglink {name}: {} in front of the database",
            front.words()
        ))
        .vpc_id(vpc_id)
        .tag_specifications(tag_spec(ResourceType::SecurityGroup, name))
        .send()
        .await
        .pipe_observe(c, "CreateSecurityGroup", &group_name)?;
    journal.confirm();
    Ok(out.group_id().map(str::to_string))
}

fn tag_spec(kind: ResourceType, name: &str) -> TagSpecification {
    let mut spec = TagSpecification::builder().resource_type(kind);
    for (k, v) in tags::pairs(name) {
        spec = spec.tags(aws_sdk_ec2::types::Tag::builder().key(k).value(v).build());
    }
    spec.build()
}

/// An inbound rule pglink added to the database's group, as AWS reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbRule {
    pub id: String,
    /// `tcp`, `udp`, `icmp`, `-1` (every protocol) or a protocol number.
    pub protocol: String,
    pub from_port: i32,
    pub to_port: i32,
    /// The referenced security group, when the source is a group.
    pub source_group: Option<String>,
    /// The CIDR or prefix list, when the source is one.
    pub source_other: Option<String>,
}

impl DbRule {
    /// What the rule allows, in words: "TCP 5432-65535 from sg-0abc".
    pub fn describe(&self) -> String {
        let what = match (self.protocol.as_str(), self.from_port, self.to_port) {
            ("-1", _, _) => "every protocol and port".to_string(),
            (p, from, to) if from == to => format!("{} {from}", p.to_ascii_uppercase()),
            (p, from, to) => format!("{} {from}-{to}", p.to_ascii_uppercase()),
        };
        let source = self
            .source_group
            .as_deref()
            .or(self.source_other.as_deref())
            .unwrap_or("an unknown source");
        format!("{what} from {source}")
    }

    /// Whether the rule is exactly TCP `port` (one port) from `nlb_group` and nothing else.
    /// Without the NLB's group (a dry run that would create it) the source cannot be
    /// checked, and only the protocol and ports are.
    /// The fields compared: https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_SecurityGroupRule.html
    pub fn is_exactly(&self, port: u16, nlb_group: Option<&str>) -> bool {
        let port = i32::from(port);
        let protocol = self.protocol.eq_ignore_ascii_case("tcp") || self.protocol == "6";
        let source = match nlb_group {
            Some(group) => self.source_group.as_deref() == Some(group),
            None => self.source_group.is_some(),
        };
        protocol
            && self.from_port == port
            && self.to_port == port
            && source
            && self.source_other.is_none()
    }
}

/// The inbound rules pglink added to a database group under `name`.
pub async fn find_db_rules(
    c: &RegionClients,
    name: &str,
    db_group: &str,
) -> Result<Vec<DbRule>, AwsError> {
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
        .filter_map(|r| {
            Some(DbRule {
                id: r.security_group_rule_id()?.to_string(),
                protocol: r.ip_protocol().unwrap_or("-1").to_string(),
                from_port: r.from_port().unwrap_or(-1),
                to_port: r.to_port().unwrap_or(-1),
                source_group: r
                    .referenced_group_info()
                    .and_then(|g| g.group_id())
                    .map(str::to_string),
                source_other: r
                    .cidr_ipv4()
                    .or(r.cidr_ipv6())
                    .or(r.prefix_list_id())
                    .map(str::to_string),
            })
        })
        .collect())
}

/// TCP `port` into the database's group from the front's group only. A rule of pglink's
/// that allows anything else (a wider port range, another protocol or source, changed by
/// hand) is replaced: the database must not be open wider than the front needs.
pub async fn ensure_db_rule(
    c: &RegionClients,
    journal: &mut Journal,
    name: &str,
    db_group: &str,
    (nlb_group, front): (Option<&str>, Front),
    port: u16,
) -> Result<(), AwsError> {
    let resource = format!("ingress rule on {db_group}");
    let from = format!("from {}'s group", front.words());
    let (exact, wrong): (Vec<DbRule>, Vec<DbRule>) = find_db_rules(c, name, db_group)
        .await?
        .into_iter()
        .partition(|r| r.is_exactly(port, nlb_group));
    // The right rule goes in before a wrong one comes out, so that repairing a widened
    // rule never cuts the NLB off from the database, even for a moment.
    match exact.first() {
        Some(rule) => journal.record(
            Mark::Ok,
            resource.clone(),
            format!("{}: TCP {port} {from}", rule.id),
        ),
        None => {
            journal.record(Mark::Create, resource.clone(), format!("TCP {port} {from}"));
            if let (Some(source), false) = (nlb_group, journal.dry_run) {
                authorize(c, name, db_group, source, port, front).await?;
                journal.confirm();
            }
        }
    }
    for rule in &wrong {
        journal.record(
            Mark::Update,
            resource.clone(),
            format!(
                "revoke {}: it allows {}, not only TCP {port} {from}",
                rule.id,
                rule.describe()
            ),
        );
        if !journal.dry_run {
            revoke(c, db_group, &rule.id).await?;
            journal.confirm();
        }
    }
    Ok(())
}

async fn authorize(
    c: &RegionClients,
    name: &str,
    db_group: &str,
    source: &str,
    port: u16,
    front: Front,
) -> Result<(), AwsError> {
    let pair = UserIdGroupPair::builder()
        .group_id(source)
        .description(front.rule_description(name))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(
        protocol: &str,
        from: i32,
        to: i32,
        group: Option<&str>,
        other: Option<&str>,
    ) -> DbRule {
        DbRule {
            id: "sgr-1".into(),
            protocol: protocol.into(),
            from_port: from,
            to_port: to,
            source_group: group.map(str::to_string),
            source_other: other.map(str::to_string),
        }
    }

    #[test]
    fn only_the_exact_rule_is_up_to_date() {
        let nlb = Some("sg-nlb");
        assert!(rule("tcp", 5432, 5432, nlb, None).is_exactly(5432, nlb));
        assert!(rule("6", 5432, 5432, nlb, None).is_exactly(5432, nlb));
        let widened = [
            rule("tcp", 5432, 65535, nlb, None),
            rule("tcp", 0, 5432, nlb, None),
            rule("udp", 5432, 5432, nlb, None),
            rule("-1", -1, -1, nlb, None),
            rule("tcp", 5432, 5432, Some("sg-other"), None),
            rule("tcp", 5432, 5432, None, Some("0.0.0.0/0")),
            rule("tcp", 5433, 5433, nlb, None),
        ];
        for r in widened {
            assert!(!r.is_exactly(5432, nlb), "{}", r.describe());
        }
        // A dry run before the NLB's group exists checks what it can.
        assert!(rule("tcp", 5432, 5432, Some("sg-any"), None).is_exactly(5432, None));
        assert!(!rule("tcp", 5432, 5432, None, Some("10.0.0.0/8")).is_exactly(5432, None));
        assert_eq!(
            rule("tcp", 5432, 65535, nlb, None).describe(),
            "TCP 5432-65535 from sg-nlb"
        );
        assert_eq!(
            rule("-1", -1, -1, None, Some("0.0.0.0/0")).describe(),
            "every protocol and port from 0.0.0.0/0"
        );
    }
}
