//! What the strict rules learn from moto, asked directly with the SDK (never through the
//! proxy, so it costs no Describe tokens and is not recorded). A group's VPC, CIDRs and
//! subnets are cached for a second (a test may add a CIDR to the VPC while it runs) and a
//! subnet's zone for good; which load balancers use a group, and its attributes, are read
//! every time. A group in another account is read as that account (moto serves a caller
//! who assumed a role in an account as that account).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use aws_sdk_ec2::types::Filter;
use aws_sdk_elasticloadbalancingv2::types::{TargetDescription, TargetHealthReasonEnum};
use ipnet::IpNet;

use super::super::fixture::Clients;
use super::Target;

/// How long a group's VPC facts are trusted.
const GROUP_CACHE: Duration = Duration::from_secs(1);

/// A target group as the rules need it.
pub struct Group {
    pub target_type: String,
    pub port: Option<i32>,
    pub health_check_port: Option<String>,
    /// Every IPv4 and IPv6 CIDR of the group's VPC.
    pub vpc_cidrs: Vec<IpNet>,
    /// (CIDR, Availability Zone) of every subnet of the VPC.
    pub subnets: Vec<(IpNet, String)>,
}

impl Group {
    /// The zone of the subnet that holds `ip`.
    pub fn zone_of(&self, ip: IpAddr) -> Option<&str> {
        let subnet = self.subnets.iter().find(|(c, _)| c.contains(&ip));
        subnet.map(|(_, zone)| zone.as_str())
    }
}

/// A target as moto reports it; `registered` is false for one asked about by name that
/// is not in the group.
pub struct Seen {
    pub id: String,
    pub port: i32,
    pub registered: bool,
}

pub struct Facts {
    upstream: String,
    /// By account; `None` is the emulator's default account.
    clients: tokio::sync::Mutex<HashMap<Option<String>, Arc<Clients>>>,
    groups: Mutex<HashMap<String, (Arc<Group>, Instant)>>,
    subnet_zones: Mutex<HashMap<String, String>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Facts {
    pub fn new(upstream: &str) -> Facts {
        Facts {
            upstream: upstream.to_string(),
            clients: Default::default(),
            groups: Mutex::default(),
            subnet_zones: Mutex::default(),
        }
    }

    /// Made on first use, on whichever runtime serves the proxy: clients acting in the
    /// account of `arn` (the default account for anything else).
    async fn clients(&self, arn: Option<&str>) -> Arc<Clients> {
        let account = arn
            .and_then(|a| a.split(':').nth(4))
            .filter(|a| *a != super::super::fixture::ACCOUNT)
            .map(str::to_string);
        let mut by_account = self.clients.lock().await;
        if let Some(c) = by_account.get(&account) {
            return c.clone();
        }
        let c = Arc::new(match &account {
            None => Clients::new(&self.upstream).await,
            Some(a) => Clients::in_account(&self.upstream, a).await,
        });
        by_account.insert(account, c.clone());
        c
    }

    /// (endpoint id, owner, state) of the consumer endpoints created against a service.
    pub async fn consumer_endpoints(&self, service_id: &str) -> Vec<(String, String, String)> {
        let c = self.clients(None).await;
        let Ok(services) = c
            .ec2
            .describe_vpc_endpoint_service_configurations()
            .service_ids(service_id)
            .send()
            .await
        else {
            return Vec::new();
        };
        let Some(service) = services.service_configurations().first() else {
            return Vec::new();
        };
        let Some(name) = service.service_name() else {
            return Vec::new();
        };
        // moto makes every endpoint `available` at once; AWS holds it in
        // `pendingAcceptance` until the service accepts it, when acceptance is required.
        let arrives_as = if service.acceptance_required() == Some(true) {
            "pendingAcceptance"
        } else {
            "available"
        };
        let endpoints = c
            .ec2
            .describe_vpc_endpoints()
            .filters(Filter::builder().name("service-name").values(name).build())
            .send()
            .await;
        let Ok(endpoints) = endpoints else {
            return Vec::new();
        };
        endpoints
            .vpc_endpoints()
            .iter()
            .filter(|e| e.service_name() == Some(name))
            .filter_map(|e| {
                Some((
                    e.vpc_endpoint_id()?.to_string(),
                    e.owner_id()
                        .unwrap_or(super::super::fixture::ACCOUNT)
                        .to_string(),
                    match e.state().map_or("available", |s| s.as_str()) {
                        "available" => arrives_as,
                        other => other,
                    }
                    .to_string(),
                ))
            })
            .collect()
    }

    /// The group, or `None` if moto does not know it (moto then answers the call).
    pub async fn group(&self, arn: &str) -> Option<Arc<Group>> {
        let fresh = |(_, at): &&(Arc<Group>, Instant)| at.elapsed() < GROUP_CACHE;
        if let Some((group, _)) = lock(&self.groups).get(arn).filter(fresh) {
            return Some(group.clone());
        }
        let group = Arc::new(self.load_group(arn).await?);
        let entry = (group.clone(), Instant::now());
        lock(&self.groups).insert(arn.to_string(), entry);
        Some(group)
    }

    async fn load_group(&self, arn: &str) -> Option<Group> {
        let c = self.clients(Some(arn)).await;
        let out = c.elb.describe_target_groups().target_group_arns(arn);
        let out = out.send().await.ok()?;
        let g = out.target_groups().first()?;
        let vpc_id = g.vpc_id()?;
        let vpcs = c.ec2.describe_vpcs().vpc_ids(vpc_id).send().await.ok()?;
        let vpc = vpcs.vpcs().first()?;
        let v4 = vpc.cidr_block_association_set().iter();
        let v6 = vpc.ipv6_cidr_block_association_set().iter();
        let cidrs = (v4.filter_map(|a| a.cidr_block()))
            .chain(v6.filter_map(|a| a.ipv6_cidr_block()))
            .chain(vpc.cidr_block());
        Some(Group {
            target_type: g
                .target_type()
                .map(|t| t.as_str().into())
                .unwrap_or_default(),
            port: g.port(),
            health_check_port: g.health_check_port().map(str::to_string),
            vpc_cidrs: cidrs.filter_map(|c| c.parse().ok()).collect(),
            subnets: subnets_of(&c.ec2, vpc_id).await?,
        })
    }

    /// The zones of `ids`, in order; `None` if moto does not know one of them.
    pub async fn subnet_zones(&self, ids: &[String]) -> Option<Vec<String>> {
        let missing: Vec<String> = {
            let known = lock(&self.subnet_zones);
            ids.iter()
                .filter(|id| !known.contains_key(*id))
                .cloned()
                .collect()
        };
        if !missing.is_empty() {
            let ec2 = &self.clients(None).await.ec2;
            let out = ec2.describe_subnets().set_subnet_ids(Some(missing));
            let out = out.send().await.ok()?;
            let mut known = lock(&self.subnet_zones);
            for s in out.subnets() {
                if let (Some(id), Some(zone)) = (s.subnet_id(), s.availability_zone()) {
                    known.insert(id.to_string(), zone.to_string());
                }
            }
        }
        let known = lock(&self.subnet_zones);
        ids.iter().map(|id| known.get(id).cloned()).collect()
    }

    /// The zones enabled on the load balancers that use the group; empty when none does.
    pub async fn enabled_zones(&self, arn: &str) -> Option<Vec<String>> {
        let elb = &self.clients(Some(arn)).await.elb;
        let out = elb.describe_target_groups().target_group_arns(arn);
        let out = out.send().await.ok()?;
        let lbs = out.target_groups().first()?.load_balancer_arns().to_vec();
        if lbs.is_empty() {
            return Some(Vec::new());
        }
        let out = elb
            .describe_load_balancers()
            .set_load_balancer_arns(Some(lbs));
        let out = out.send().await.ok()?;
        let zones = out
            .load_balancers()
            .iter()
            .flat_map(|lb| lb.availability_zones());
        Some(
            zones
                .filter_map(|z| z.zone_name())
                .map(str::to_string)
                .collect(),
        )
    }

    /// `deregistration_delay.timeout_seconds`, or AWS's default of 300 s.
    pub async fn deregistration_delay(&self, arn: &str) -> Duration {
        let elb = &self.clients(Some(arn)).await.elb;
        let out = elb.describe_target_group_attributes().target_group_arn(arn);
        let out = out.send().await.ok();
        let attrs = out.as_ref().map(|o| o.attributes()).unwrap_or_default();
        let delay = attrs
            .iter()
            .find(|a| a.key() == Some("deregistration_delay.timeout_seconds"))
            .and_then(|a| a.value()?.parse().ok());
        Duration::from_secs(delay.unwrap_or(300))
    }

    /// The group's targets as moto reports them, only those in `filter` if it has any.
    pub async fn target_health(&self, arn: &str, filter: &[Target]) -> Option<Vec<Seen>> {
        let described = filter.iter().map(|t| {
            let d = TargetDescription::builder().id(&t.id).set_port(t.port);
            d.set_availability_zone(t.zone.clone()).build()
        });
        let targets: Vec<TargetDescription> = described.collect();
        let elb = &self.clients(Some(arn)).await.elb;
        let req = elb.describe_target_health().target_group_arn(arn);
        let req = req.set_targets((!targets.is_empty()).then_some(targets));
        let out = req.send().await.ok()?;
        let seen = out.target_health_descriptions().iter().filter_map(|d| {
            let t = d.target()?;
            let reason = d.target_health().and_then(|h| h.reason());
            Some(Seen {
                id: t.id()?.to_string(),
                port: t.port().unwrap_or(0),
                registered: reason != Some(&TargetHealthReasonEnum::NotRegistered),
            })
        });
        Some(seen.collect())
    }
}

async fn subnets_of(ec2: &aws_sdk_ec2::Client, vpc_id: &str) -> Option<Vec<(IpNet, String)>> {
    let filter = Filter::builder().name("vpc-id").values(vpc_id).build();
    let out = ec2.describe_subnets().filters(filter).send().await.ok()?;
    let mut subnets = Vec::new();
    for s in out.subnets() {
        let Some(zone) = s.availability_zone() else {
            continue;
        };
        let v6 = s.ipv6_cidr_block_association_set().iter();
        let cidrs = s.cidr_block().into_iter();
        for cidr in cidrs.chain(v6.filter_map(|a| a.ipv6_cidr_block())) {
            if let Ok(net) = cidr.parse() {
                subnets.push((net, zone.to_string()));
            }
        }
    }
    Some(subnets)
}
