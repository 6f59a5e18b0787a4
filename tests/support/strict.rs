//! A strict AWS layer for the test proxy: the ELBv2 rules that moto does not enforce,
//! each switchable per test, so tests see what AWS documents rather than moto's kindness.
//!
//! 1. One subnet per Availability Zone in CreateLoadBalancer and SetSubnets.
//! 2. RegisterTargets on an `ip` group: no publicly routable address, and
//!    `AvailabilityZone=all` for an address outside the group's VPC.
//! 3. Target health follows AWS's state machine (`health.rs`).
//! 4. ELBv2 Describe* calls share a token bucket.
//! 5. STS AssumeRole honours the roles' trust policies (moto lets anyone assume anything).
//!
//! What the rules need from moto (a group's VPC, subnets, load balancers) comes from
//! moto directly through the SDK (`facts.rs`), never through the proxy.

mod call;
mod endpoints;
mod facts;
mod failover;
mod health;
pub mod kit;

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ipnet::IpNet;

pub use call::{Call, Target};
use facts::Facts;
pub use failover::Hook;
use health::Health;

/// Which AWS rules the proxy enforces. Faults injected with `Proxy::inject` come first.
#[derive(Clone, Debug)]
pub struct Strict {
    pub one_subnet_per_az: bool,
    pub register_rules: bool,
    pub health: Option<HealthModel>,
    pub describe_bucket: Option<Bucket>,
    /// Roles that trust the caller, each with the external ID its trust policy requires;
    /// `None`: every role may be assumed, as moto has it.
    pub trust: Option<BTreeMap<String, Option<String>>>,
}

/// How long a target registered through the proxy stays `initial`; draining lasts the
/// group's `deregistration_delay.timeout_seconds`, read from moto.
#[derive(Clone, Copy, Debug)]
pub struct HealthModel {
    pub registration: Duration,
}

/// A token bucket: `burst` tokens, refilled at `per_second`.
#[derive(Clone, Copy, Debug)]
pub struct Bucket {
    pub burst: f64,
    pub per_second: f64,
}

impl Strict {
    /// Every rule on, with a test-sized registration time.
    pub fn aws() -> Strict {
        Strict {
            one_subnet_per_az: true,
            register_rules: true,
            health: Some(HealthModel::test()),
            describe_bucket: Some(Bucket::aws()),
            trust: None,
        }
    }

    /// Plain moto behind the proxy.
    pub fn off() -> Strict {
        Strict {
            one_subnet_per_az: false,
            register_rules: false,
            health: None,
            describe_bucket: None,
            trust: None,
        }
    }
}

impl HealthModel {
    /// AWS takes minutes ("It can take a few minutes for the registration process to
    /// complete and health checks to start"); tests wait 2 s.
    pub fn test() -> HealthModel {
        HealthModel {
            registration: Duration::from_secs(2),
        }
    }
}

impl Bucket {
    /// ELBv2's bucket for non-mutating (Describe*) calls: 40 tokens, 10 back per second,
    /// per account and Region; each ELB API version has its own.
    /// https://docs.aws.amazon.com/elasticloadbalancing/latest/userguide/elb-api-throttling.html
    /// That page names the error `ThrottlingException` with "Rate exceeded"; on the wire
    /// the Query API's code is `Throttling`, which is what SDKs and field reports show.
    pub fn aws() -> Bucket {
        Bucket {
            burst: 40.0,
            per_second: 10.0,
        }
    }
}

/// A strict rule's answer instead of upstream's.
#[derive(Debug, PartialEq, Eq)]
pub struct Rejection {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl Rejection {
    fn new(code: &'static str, message: String) -> Rejection {
        Rejection {
            status: 400,
            code,
            message,
        }
    }
}

/// The rules with their state; one per proxy.
pub struct Layer {
    rules: Strict,
    facts: Facts,
    endpoints: endpoints::Endpoints,
    failovers: failover::Failovers,
    health: Health,
    tokens: Mutex<(f64, Instant)>,
    throttled: AtomicUsize,
}

impl Layer {
    pub fn new(upstream: &str, rules: Strict) -> Layer {
        let burst = rules.describe_bucket.map_or(0.0, |b| b.burst);
        Layer {
            facts: Facts::new(upstream),
            endpoints: endpoints::Endpoints::default(),
            failovers: failover::Failovers::default(),
            health: Health::new(rules.health),
            tokens: Mutex::new((burst, Instant::now())),
            throttled: AtomicUsize::new(0),
            rules,
        }
    }

    pub fn mark_unhealthy(&self, ip: IpAddr, unhealthy: bool) {
        self.health.mark_unhealthy(ip, unhealthy);
    }

    pub fn throttled(&self) -> usize {
        self.throttled.load(Ordering::Relaxed)
    }

    /// From now on a successful failover call runs `hook` after `delay` (see
    /// `failover.rs`).
    pub fn on_failover(&self, delay: Duration, hook: Hook) {
        self.failovers.on_failover(delay, hook);
    }

    /// Before upstream: a rule's answer, or `None` to forward.
    pub async fn check(&self, call: &mut Call) -> Option<Rejection> {
        if call.action.as_deref() == Some("AssumeRole") {
            return self.trust(call);
        }
        if !call.elbv2 {
            return None;
        }
        let rules = &self.rules;
        match call.action.as_deref()? {
            a if a.starts_with("Describe") => self.take_token(),
            "CreateLoadBalancer" | "SetSubnets" if rules.one_subnet_per_az => {
                self.one_subnet_per_az(call).await
            }
            "RegisterTargets" => {
                if rules.register_rules {
                    if let Some(rejection) = self.register_rules(call).await {
                        return Some(rejection);
                    }
                }
                if rules.health.is_some() {
                    call.held_before = self.held(call).await;
                }
                None
            }
            _ => None,
        }
    }

    /// Before upstream: the answer to an EC2 call moto does not implement (the endpoint
    /// connections), from what moto knows.
    pub async fn answer(&self, call: &Call) -> Option<String> {
        if call.elbv2 {
            return None;
        }
        if let Some(xml) = self.failovers.answer(call) {
            return Some(xml);
        }
        self.endpoints.answer(call, &self.facts).await
    }

    /// After upstream answered `status`: keeps the health model's books, and returns a
    /// new DescribeTargetHealth answer when the model applies.
    pub async fn after(&self, call: &Call, status: u16) -> Option<String> {
        if status == 200 {
            self.failovers.after(call);
        }
        if !call.elbv2 || status != 200 || self.rules.health.is_none() {
            return None;
        }
        let arn = call.get("TargetGroupArn")?;
        match call.action.as_deref()? {
            "RegisterTargets" => {
                let held = call.held_before.clone().unwrap_or_default();
                let port = self.facts.group(arn).await?.port.unwrap_or(0);
                self.health.registered(arn, port, &call.targets(), &held);
                None
            }
            "DeregisterTargets" => {
                let port = self.facts.group(arn).await?.port.unwrap_or(0);
                let delay = self.facts.deregistration_delay(arn).await;
                self.health.deregistered(arn, port, &call.targets(), delay);
                None
            }
            "DescribeTargetHealth" => {
                // Only IP targets: the model places a target in a zone by its address.
                let group = self.facts.group(arn).await;
                let group = group.filter(|g| g.target_type == "ip")?;
                let zones = self.facts.enabled_zones(arn).await?;
                let named = call.targets();
                let seen = self.facts.target_health(arn, &named).await?;
                let filtered = !named.is_empty();
                Some(self.health.describe(arn, &group, &zones, seen, filtered))
            }
            _ => None,
        }
    }

    /// Rule 5: only the roles listed trust the caller (a test has one caller), each with
    /// the external ID its `sts:ExternalId` condition requires, if any; anything else is
    /// AccessDenied.
    /// https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_common-scenarios_third-party.html
    /// https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html
    fn trust(&self, call: &Call) -> Option<Rejection> {
        let trusted = self.rules.trust.as_ref()?;
        let role = call.get("RoleArn").unwrap_or_default();
        let allowed = match trusted.get(role) {
            Some(None) => true,
            Some(Some(required)) => call.get("ExternalId") == Some(required.as_str()),
            None => false,
        };
        if allowed {
            return None;
        }
        let message = format!(
            "User: arn:aws:iam::123456789012:user/test is not authorized to perform: \
             sts:AssumeRole on resource: {role}"
        );
        Some(Rejection {
            status: 403,
            code: "AccessDenied",
            message,
        })
    }

    /// Rule 4: one token per ELBv2 Describe* call.
    fn take_token(&self) -> Option<Rejection> {
        let bucket = self.rules.describe_bucket?;
        let mut tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let refill = now.duration_since(tokens.1).as_secs_f64() * bucket.per_second;
        *tokens = ((tokens.0 + refill).min(bucket.burst), now);
        if tokens.0 >= 1.0 {
            tokens.0 -= 1.0;
            return None;
        }
        self.throttled.fetch_add(1, Ordering::Relaxed);
        Some(Rejection::new("Throttling", "Rate exceeded".into()))
    }

    /// Rule 1: "You can specify only one subnet per Availability Zone." Subnets moto
    /// does not know are left for moto to reject.
    async fn one_subnet_per_az(&self, call: &Call) -> Option<Rejection> {
        let zones = self.facts.subnet_zones(&call.subnet_ids()).await?;
        let mut seen = HashSet::new();
        if zones.iter().all(|z| seen.insert(z)) {
            return None;
        }
        let message = "You can specify only one subnet per Availability Zone.".to_string();
        Some(Rejection::new("InvalidConfigurationRequest", message))
    }

    /// Rule 2, for `ip` groups only; IDs that are not IPs are left to moto.
    async fn register_rules(&self, call: &Call) -> Option<Rejection> {
        let group = self.facts.group(call.get("TargetGroupArn")?).await?;
        if group.target_type != "ip" {
            return None;
        }
        call.targets().iter().find_map(|t| {
            let ip: IpAddr = t.id.parse().ok()?;
            ip_verdict(ip, &group.vpc_cidrs, t.zone.as_deref()).err()
        })
    }

    /// What moto holds in the group now, as (id, port).
    async fn held(&self, call: &Call) -> Option<HashSet<(String, i32)>> {
        let seen = self
            .facts
            .target_health(call.get("TargetGroupArn")?, &[])
            .await?;
        Some(seen.into_iter().map(|s| (s.id, s.port)).collect())
    }
}

/// Whether AWS accepts `ip` as a target of a group in a VPC with `vpc_cidrs`, registered
/// with `zone`. AWS: IP targets may come from the VPC's subnets, 10.0.0.0/8,
/// 100.64.0.0/10, 172.16.0.0/12 and 192.168.0.0/16 (IPv6: the VPC's ranges, or unique
/// local fc00::/7); "You can't specify publicly routable IP addresses". An address
/// outside the VPC needs `AvailabilityZone=all`.
/// https://docs.aws.amazon.com/elasticloadbalancing/latest/network/target-group-register-targets.html
/// https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_TargetDescription.html
pub fn ip_verdict(ip: IpAddr, vpc_cidrs: &[IpNet], zone: Option<&str>) -> Result<(), Rejection> {
    const PRIVATE: [&str; 5] = [
        "10.0.0.0/8",
        "100.64.0.0/10",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "fc00::/7",
    ];
    let in_vpc = vpc_cidrs.iter().any(|c| c.contains(&ip));
    let private = PRIVATE
        .iter()
        .any(|c| c.parse::<IpNet>().expect("private range").contains(&ip));
    if !in_vpc && !private {
        // AWS's own wording for this case is not published; InvalidTarget is the
        // RegisterTargets error for a target it will not take.
        let message = format!(
            "The IP address '{ip}' is not a valid target: publicly routable addresses \
             cannot be registered; use an address in the VPC or a private range"
        );
        return Err(Rejection::new("InvalidTarget", message));
    }
    if !in_vpc && zone != Some("all") {
        // Code and wording as AWS answers it (reported in
        // kubernetes-sigs/aws-load-balancer-controller#3084).
        let message = format!(
            "You must specify a valid Availability Zone or select 'all' for all enabled \
             Availability zones, since the IP address '{ip}' is outside the VPC"
        );
        return Err(Rejection::new("ValidationError", message));
    }
    if in_vpc && zone == Some("all") {
        // The converse, as AWS answers it (reported in
        // kubernetes-sigs/aws-load-balancer-controller#561): an address in the VPC is
        // placed in its subnet's zone and cannot be sent to every zone.
        let message = format!(
            "The IP address '{ip}' is within the VPC, and cannot have its Availability \
             Zone overridden to 'all'"
        );
        return Err(Rejection::new("ValidationError", message));
    }
    Ok(())
}
