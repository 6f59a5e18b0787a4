//! ELBv2 target-group adapter behind a trait: describe the group, read its targets with
//! health, register and deregister. Always with the port; IPs outside the group's VPC get
//! `AvailabilityZone=all`, which AWS requires for such targets.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_elasticloadbalancingv2::types::{Tag, TargetDescription, TargetGroup};
use ipnet::IpNet;

use crate::aws::{Boxed, Observe, RegionClients};
use crate::bootstrap::tags::elb_tags_of;
use crate::error::AwsError;
use crate::plan::{Registered, TargetKey, TargetState};
use crate::target_state::Placement;

/// What pglink needs to know about a target group before touching it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInfo {
    pub arn: String,
    pub target_type: String,
    pub port: Option<u16>,
    pub vpc_id: Option<String>,
    pub vpc_cidrs: Vec<IpNet>,
    pub ipv6: bool,
    /// `None` until read: the start-up batch describes groups without their tags, which
    /// come later (see [`crate::prefetch`]) or when a change first needs them.
    pub tags: Option<BTreeMap<String, String>>,
}

/// A target to register or deregister, with the AZ that AWS needs for out-of-VPC IPs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TargetSpec {
    pub key: TargetKey,
    pub availability_zone: Option<&'static str>,
}

/// `Some("all")` for an IP outside every CIDR of the group's VPC (on-prem over Direct
/// Connect/VPN, or a peered VPC): AWS rejects such a registration without it.
pub fn availability_zone_for(ip: IpAddr, vpc_cidrs: &[IpNet]) -> Option<&'static str> {
    if vpc_cidrs.is_empty() || vpc_cidrs.iter().any(|c| c.contains(&ip)) {
        None
    } else {
        Some("all")
    }
}

/// What pglink keeps of a described target group.
pub fn group_info(
    arn: &str,
    group: &aws_sdk_elasticloadbalancingv2::types::TargetGroup,
    vpc_cidrs: Vec<IpNet>,
    tags: Option<BTreeMap<String, String>>,
) -> GroupInfo {
    GroupInfo {
        arn: arn.to_string(),
        target_type: group
            .target_type()
            .map(|t| t.as_str().to_string())
            .unwrap_or_default(),
        port: group.port().and_then(|p| u16::try_from(p).ok()),
        vpc_id: group.vpc_id().map(str::to_string),
        vpc_cidrs,
        ipv6: group
            .ip_address_type()
            .is_some_and(|t| t.as_str() == "ipv6"),
        tags,
    }
}

/// Every IPv4 and IPv6 CIDR associated with a VPC, sorted.
pub fn cidrs_of(vpc: &aws_sdk_ec2::types::Vpc) -> Vec<IpNet> {
    let v4 = vpc
        .cidr_block_association_set()
        .iter()
        .filter_map(|a| a.cidr_block());
    let v6 = vpc
        .ipv6_cidr_block_association_set()
        .iter()
        .filter_map(|a| a.ipv6_cidr_block());
    let mut cidrs: Vec<IpNet> = v4
        .chain(v6)
        .chain(vpc.cidr_block())
        .filter_map(|c| c.parse().ok())
        .collect();
    cidrs.sort();
    cidrs.dedup();
    cidrs
}

/// Whether AWS lets an IP target group hold `ip`: "IP addresses from the subnets of the VPC
/// for the target group, the RFC 1918 range (10.0.0.0/8, 172.16.0.0/12, and
/// 192.168.0.0/16), and the RFC 6598 range (100.64.0.0/10). You can't specify publicly
/// routable IP addresses."
/// (<https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_TargetDescription.html>,
/// <https://docs.aws.amazon.com/elasticloadbalancing/latest/network/target-group-register-targets.html>).
/// IPv6 has no such private range beside unique local addresses (fc00::/7).
pub fn registrable(ip: IpAddr, vpc_cidrs: &[IpNet]) -> bool {
    // Parsed once: this runs for every address of every answer.
    static PRIVATE: LazyLock<Vec<IpNet>> = LazyLock::new(|| {
        [
            "10.0.0.0/8",
            "172.16.0.0/12",
            "192.168.0.0/16",
            "100.64.0.0/10",
            "fc00::/7",
        ]
        .iter()
        .filter_map(|c| c.parse().ok())
        .collect()
    });
    vpc_cidrs
        .iter()
        .chain(PRIVATE.iter())
        .any(|c| c.contains(&ip))
}

pub fn specs(keys: &[TargetKey], vpc_cidrs: &[IpNet]) -> Vec<TargetSpec> {
    keys.iter()
        .map(|k| TargetSpec {
            key: *k,
            availability_zone: availability_zone_for(k.ip, vpc_cidrs),
        })
        .collect()
}

pub trait TargetGroups: Send + Sync + 'static {
    fn describe_group(&self, arn: &str)
        -> impl Future<Output = Result<GroupInfo, AwsError>> + Send;
    fn read_targets(
        &self,
        arn: &str,
    ) -> impl Future<Output = Result<Vec<Registered>, AwsError>> + Send;
    fn register(
        &self,
        arn: &str,
        targets: &[TargetSpec],
    ) -> impl Future<Output = Result<(), AwsError>> + Send;
    fn deregister(
        &self,
        arn: &str,
        targets: &[TargetSpec],
    ) -> impl Future<Output = Result<(), AwsError>> + Send;
    fn add_tags(
        &self,
        arn: &str,
        tags: &[(String, String)],
    ) -> impl Future<Output = Result<(), AwsError>> + Send;
    /// Where an `unused` target stands: its subnet's AZ and the load balancers' AZs.
    fn placement_of(
        &self,
        group: &GroupInfo,
        ip: IpAddr,
    ) -> impl Future<Output = Result<Placement, AwsError>> + Send;
    /// The VPC's CIDRs, read at most once per `max_age` for all targets in that VPC.
    fn vpc_cidrs(
        &self,
        vpc_id: &str,
        max_age: Duration,
    ) -> impl Future<Output = Result<Vec<IpNet>, AwsError>> + Send;
    /// The group's tags if the start-up batch has read them already (no AWS call).
    fn cached_tags(&self, arn: &str) -> Option<BTreeMap<String, String>>;
    /// The group's tags, from AWS (one DescribeTags call).
    fn read_tags(
        &self,
        arn: &str,
    ) -> impl Future<Output = Result<BTreeMap<String, String>, AwsError>> + Send;
}

type CidrCache = Arc<Mutex<HashMap<String, (Vec<IpNet>, Instant)>>>;

/// Tags of target groups read in batches after start-up, by ARN, shared by every target.
pub type TagCache = Arc<Mutex<HashMap<String, BTreeMap<String, String>>>>;

/// The real adapter: ELBv2, plus EC2 for the VPC's CIDRs.
#[derive(Clone, Debug)]
pub struct ElbTargetGroups {
    clients: RegionClients,
    /// VPC CIDRs by VPC ID and when they were read: a fleet's targets share a few VPCs.
    cidr_cache: CidrCache,
    tag_cache: TagCache,
}

impl ElbTargetGroups {
    pub fn new(clients: RegionClients) -> Self {
        Self::sharing(clients, TagCache::default())
    }

    /// An adapter that looks tags up in `tag_cache` (filled by the start-up batches) first.
    pub fn sharing(clients: RegionClients, tag_cache: TagCache) -> Self {
        Self {
            clients,
            cidr_cache: Arc::default(),
            tag_cache,
        }
    }

    async fn read_vpc_cidrs(&self, vpc_id: &str) -> Result<Vec<IpNet>, AwsError> {
        let out = self
            .clients
            .ec2
            .describe_vpcs()
            .vpc_ids(vpc_id)
            .send()
            .boxed()
            .await
            .pipe_observe(&self.clients, "DescribeVpcs", vpc_id)?;
        let mut cidrs: Vec<IpNet> = out.vpcs().iter().flat_map(cidrs_of).collect();
        cidrs.sort();
        cidrs.dedup();
        Ok(cidrs)
    }

    async fn target_group(&self, arn: &str) -> Result<TargetGroup, AwsError> {
        let out = self
            .clients
            .elb
            .describe_target_groups()
            .target_group_arns(arn)
            .send()
            .boxed()
            .await
            .pipe_observe(&self.clients, "DescribeTargetGroups", arn)?;
        out.target_groups()
            .first()
            .cloned()
            .ok_or_else(|| AwsError::NotFound {
                op: "DescribeTargetGroups",
                what: arn.to_string(),
                code: "TargetGroupNotFound".into(),
                message: "no such target group".into(),
            })
    }

    /// The AZ of the VPC subnet whose CIDR holds `ip`.
    async fn subnet_zone(&self, vpc_id: &str, ip: IpAddr) -> Result<Option<String>, AwsError> {
        let filter = aws_sdk_ec2::types::Filter::builder()
            .name("vpc-id")
            .values(vpc_id)
            .build();
        let out = self
            .clients
            .ec2
            .describe_subnets()
            .filters(filter)
            .send()
            .boxed()
            .await
            .pipe_observe(&self.clients, "DescribeSubnets", vpc_id)?;
        let holds = |cidr: Option<&str>| {
            cidr.and_then(|c| c.parse::<IpNet>().ok())
                .is_some_and(|c| c.contains(&ip))
        };
        Ok(out
            .subnets()
            .iter()
            .find(|s| {
                holds(s.cidr_block())
                    || s.ipv6_cidr_block_association_set()
                        .iter()
                        .any(|a| holds(a.ipv6_cidr_block()))
            })
            .and_then(|s| s.availability_zone())
            .map(str::to_string))
    }

    async fn tags(&self, arn: &str) -> Result<BTreeMap<String, String>, AwsError> {
        let mut by_arn = elb_tags_of(&self.clients, &[arn.to_string()]).await?;
        Ok(by_arn.remove(arn).unwrap_or_default())
    }
}

fn descriptions(targets: &[TargetSpec]) -> Vec<TargetDescription> {
    targets
        .iter()
        .map(|t| {
            TargetDescription::builder()
                .id(t.key.ip.to_string())
                .port(i32::from(t.key.port))
                .set_availability_zone(t.availability_zone.map(str::to_string))
                .build()
        })
        .collect()
}

impl TargetGroups for ElbTargetGroups {
    fn cached_tags(&self, arn: &str) -> Option<BTreeMap<String, String>> {
        self.tag_cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(arn)
            .cloned()
    }

    async fn read_tags(&self, arn: &str) -> Result<BTreeMap<String, String>, AwsError> {
        self.tags(arn).await
    }

    async fn describe_group(&self, arn: &str) -> Result<GroupInfo, AwsError> {
        let group = self.target_group(arn).await?;
        let vpc_cidrs = match group.vpc_id() {
            Some(id) => self.read_vpc_cidrs(id).await?,
            None => Vec::new(),
        };
        Ok(group_info(
            arn,
            &group,
            vpc_cidrs,
            Some(self.tags(arn).await?),
        ))
    }

    async fn read_targets(&self, arn: &str) -> Result<Vec<Registered>, AwsError> {
        let out = self
            .clients
            .elb
            .describe_target_health()
            .target_group_arn(arn)
            .send()
            .boxed()
            .await
            .pipe_observe(&self.clients, "DescribeTargetHealth", arn)?;
        let mut targets = Vec::new();
        for d in out.target_health_descriptions() {
            let Some(t) = d.target() else { continue };
            // Only IP targets are pglink's business; anything else is left alone.
            let (Ok(ip), Some(port)) = (t.id().unwrap_or_default().parse::<IpAddr>(), t.port())
            else {
                continue;
            };
            let Ok(port) = u16::try_from(port) else {
                continue;
            };
            let state = d
                .target_health()
                .and_then(|h| h.state())
                .map_or(TargetState::Unknown, |s| TargetState::parse(s.as_str()));
            targets.push(Registered {
                key: TargetKey::new(ip, port),
                state,
            });
        }
        targets.sort_by_key(|r| r.key);
        Ok(targets)
    }

    async fn register(&self, arn: &str, targets: &[TargetSpec]) -> Result<(), AwsError> {
        self.clients
            .elb
            .register_targets()
            .target_group_arn(arn)
            .set_targets(Some(descriptions(targets)))
            .send()
            .boxed()
            .await
            .pipe_observe(&self.clients, "RegisterTargets", arn)
            .map(|_| ())
    }

    async fn deregister(&self, arn: &str, targets: &[TargetSpec]) -> Result<(), AwsError> {
        self.clients
            .elb
            .deregister_targets()
            .target_group_arn(arn)
            .set_targets(Some(descriptions(targets)))
            .send()
            .boxed()
            .await
            .pipe_observe(&self.clients, "DeregisterTargets", arn)
            .map(|_| ())
    }

    async fn placement_of(&self, group: &GroupInfo, ip: IpAddr) -> Result<Placement, AwsError> {
        let arn = group.arn.as_str();
        let lbs = self.target_group(arn).await?.load_balancer_arns().to_vec();
        let mut placement = Placement {
            has_load_balancer: !lbs.is_empty(),
            ..Placement::default()
        };
        if !lbs.is_empty() {
            let out = self
                .clients
                .elb
                .describe_load_balancers()
                .set_load_balancer_arns(Some(lbs))
                .send()
                .boxed()
                .await
                .pipe_observe(&self.clients, "DescribeLoadBalancers", arn)?;
            placement.load_balancer_zones = out
                .load_balancers()
                .iter()
                .flat_map(|lb| lb.availability_zones())
                .filter_map(|z| z.zone_name())
                .map(str::to_string)
                .collect();
        }
        if let Some(vpc_id) = &group.vpc_id {
            placement.zone = self.subnet_zone(vpc_id, ip).await?;
        }
        Ok(placement)
    }

    async fn vpc_cidrs(&self, vpc_id: &str, max_age: Duration) -> Result<Vec<IpNet>, AwsError> {
        let cached = {
            let cache = self.cidr_cache.lock().unwrap_or_else(|e| e.into_inner());
            cache.get(vpc_id).cloned()
        };
        if let Some((cidrs, _)) = cached.filter(|(_, at)| at.elapsed() < max_age) {
            return Ok(cidrs);
        }
        let cidrs = self.read_vpc_cidrs(vpc_id).await?;
        let mut cache = self.cidr_cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.insert(vpc_id.to_string(), (cidrs.clone(), Instant::now()));
        Ok(cidrs)
    }

    async fn add_tags(&self, arn: &str, tags: &[(String, String)]) -> Result<(), AwsError> {
        let tags = tags
            .iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect();
        self.clients
            .elb
            .add_tags()
            .resource_arns(arn)
            .set_tags(Some(tags))
            .send()
            .boxed()
            .await
            .pipe_observe(&self.clients, "AddTags", arn)
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidrs(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|c| c.parse().unwrap()).collect()
    }

    #[test]
    fn outside_the_vpc_needs_az_all() {
        let vpc = cidrs(&["10.0.0.0/16", "100.64.0.0/24"]);
        assert_eq!(
            availability_zone_for("10.0.3.7".parse().unwrap(), &vpc),
            None
        );
        assert_eq!(
            availability_zone_for("100.64.0.9".parse().unwrap(), &vpc),
            None
        );
        assert_eq!(
            availability_zone_for("192.168.1.10".parse().unwrap(), &vpc),
            Some("all")
        );
        assert_eq!(
            availability_zone_for("10.1.0.1".parse().unwrap(), &vpc),
            Some("all")
        );
    }

    #[test]
    fn public_addresses_are_not_registrable() {
        let vpc = cidrs(&["10.0.0.0/16", "2600:1f18:1234:5600::/56"]);
        for ok in [
            "10.9.9.9",
            "172.31.0.4",
            "192.168.1.1",
            "100.64.3.3",
            "fd00::5",
        ] {
            assert!(registrable(ok.parse().unwrap(), &vpc), "{ok}");
        }
        assert!(registrable("2600:1f18:1234:5601::7".parse().unwrap(), &vpc));
        for public in ["54.23.1.9", "8.8.8.8", "172.32.0.1", "2600:1f18:ffff::1"] {
            assert!(!registrable(public.parse().unwrap(), &vpc), "{public}");
        }
        // A VPC may use a public range of its own (BYOIP): its subnets are registrable.
        assert!(registrable(
            "54.23.1.9".parse().unwrap(),
            &cidrs(&["54.23.0.0/16"])
        ));
    }

    #[test]
    fn unknown_vpc_sends_no_zone() {
        assert_eq!(
            availability_zone_for("192.168.1.10".parse().unwrap(), &[]),
            None
        );
    }

    #[test]
    fn descriptions_always_carry_the_port() {
        let key = TargetKey::new("192.168.1.10".parse().unwrap(), 6432);
        let d = descriptions(&specs(&[key], &cidrs(&["10.0.0.0/16"])));
        assert_eq!(d[0].id(), Some("192.168.1.10"));
        assert_eq!(d[0].port(), Some(6432));
        assert_eq!(d[0].availability_zone(), Some("all"));
    }
}
