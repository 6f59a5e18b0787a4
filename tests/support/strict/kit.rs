//! Helpers for tests against the strict proxy: a fresh moto with a VPC that has two
//! subnets in one zone, an NLB, and the SDK calls whose answers tests look at.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_elasticloadbalancingv2 as elbv2;
use elbv2::config::retry::RetryConfig;
use elbv2::error::{ProvideErrorMetadata, SdkError};
use elbv2::types::{
    Action, ActionTypeEnum, LoadBalancerSchemeEnum, LoadBalancerTypeEnum, ProtocolEnum,
    TargetDescription, TargetGroupAttribute,
};

use super::super::fixture::{self, Clients};
use super::super::moto::Moto;
use super::super::proxy::Proxy;
use super::Strict;

/// moto; a VPC 10.0.0.0/16 with subnets `a` (10.0.1.0/24) and `a2` (10.0.3.0/24) in
/// us-east-1a and `b` (10.0.2.0/24) in us-east-1b; the strict proxy; clients both ways.
pub struct Setup {
    pub moto: Moto,
    pub proxy: Proxy,
    /// Straight to moto, for fixtures and for what moto really holds.
    pub direct: Clients,
    /// Through the strict proxy: what the code under test would see.
    pub via: Clients,
    pub vpc: String,
    pub a: String,
    pub a2: String,
    pub b: String,
}

impl Setup {
    /// `blocking`: the proxy runs on its own thread, as `World` starts it.
    pub async fn new(strict: Strict, blocking: bool) -> Setup {
        let moto = Moto::start();
        let direct = Clients::new(&moto.endpoint).await;
        let net = fixture::network(&direct.ec2, "10.0.0.0/16").await;
        let a2 = direct.ec2.create_subnet().vpc_id(&net.vpc_id);
        let a2 = a2.cidr_block("10.0.3.0/24").availability_zone("us-east-1a");
        let a2 = a2.send().await.expect("CreateSubnet");
        let a2 = a2.subnet().and_then(|s| s.subnet_id()).expect("subnet id");
        let proxy = if blocking {
            Proxy::start_blocking_strict(&moto.endpoint, strict)
        } else {
            Proxy::start_strict(&moto.endpoint, strict).await
        };
        let via = Clients::new(&proxy.endpoint).await;
        let [a, b] = [0, 1].map(|i| net.subnet_ids[i].clone());
        let (vpc, a2) = (net.vpc_id, a2.to_string());
        Setup {
            moto,
            proxy,
            direct,
            via,
            vpc,
            a,
            a2,
            b,
        }
    }

    /// What the strict layer did to each recorded `action` request, in order.
    pub fn strict_answers(&self, action: &str) -> Vec<Option<String>> {
        let requests = self.proxy.requests().into_iter();
        let matching = requests.filter(|r| r.action.as_deref() == Some(action));
        matching.map(|r| r.strict).collect()
    }
}

/// The error code and message of a call that must fail.
pub fn rejected<T: std::fmt::Debug, E: ProvideErrorMetadata, R>(
    result: Result<T, SdkError<E, R>>,
) -> (String, String) {
    let err = result.expect_err("AWS should have refused this");
    let service = err.as_service_error().expect("an AWS error answer");
    let code = service.code().unwrap_or_default().to_string();
    (code, service.message().unwrap_or_default().to_string())
}

/// An IP target on port 5432.
pub fn ip_target(ip: &str, zone: Option<&str>) -> TargetDescription {
    let t = TargetDescription::builder().id(ip).port(5432);
    t.set_availability_zone(zone.map(str::to_string)).build()
}

/// Registers (IP, zone) targets on port 5432; `Err` holds the error code and message.
pub async fn register(
    elb: &elbv2::Client,
    arn: &str,
    targets: &[(&str, Option<&str>)],
) -> Result<(), (String, String)> {
    let targets = targets.iter().map(|(ip, zone)| ip_target(ip, *zone));
    let req = elb.register_targets().target_group_arn(arn);
    let out = req.set_targets(Some(targets.collect())).send().await;
    out.map(|_| ()).map_err(|e| rejected::<(), _, _>(Err(e)))
}

pub async fn deregister(elb: &elbv2::Client, arn: &str, ip: &str) {
    let req = elb.deregister_targets().target_group_arn(arn);
    let out = req.targets(ip_target(ip, None)).send().await;
    out.expect("DeregisterTargets");
}

/// An internal NLB in `subnets` with a TCP listener forwarding to `group`.
pub async fn nlb(elb: &elbv2::Client, name: &str, subnets: &[&str], group: &str) {
    let subnets = subnets.iter().map(|s| s.to_string()).collect();
    let lb = elb
        .create_load_balancer()
        .name(name)
        .set_subnets(Some(subnets));
    let lb = lb.r#type(LoadBalancerTypeEnum::Network);
    let lb = lb.scheme(LoadBalancerSchemeEnum::Internal).send().await;
    let lb = lb.expect("CreateLoadBalancer");
    let lb = lb.load_balancers()[0].load_balancer_arn().expect("arn");
    let forward = Action::builder().r#type(ActionTypeEnum::Forward);
    let forward = forward.target_group_arn(group).build();
    let listener = elb.create_listener().load_balancer_arn(lb).port(5432);
    let listener = listener
        .protocol(ProtocolEnum::Tcp)
        .default_actions(forward);
    listener.send().await.expect("CreateListener");
}

/// Sets the group's `deregistration_delay.timeout_seconds`.
pub async fn set_deregistration_delay(elb: &elbv2::Client, arn: &str, delay: Duration) {
    let key = TargetGroupAttribute::builder().key("deregistration_delay.timeout_seconds");
    let attribute = key.value(delay.as_secs().to_string()).build();
    let modify = elb.modify_target_group_attributes().target_group_arn(arn);
    let out = modify.attributes(attribute).send().await;
    out.expect("ModifyTargetGroupAttributes");
}

/// One target as DescribeTargetHealth shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Shown {
    pub state: String,
    pub reason: Option<String>,
    pub zone: Option<String>,
    pub check_port: Option<String>,
}

/// "ip:port" -> what DescribeTargetHealth says; for the IPs in `only` if any.
pub async fn health(elb: &elbv2::Client, arn: &str, only: &[&str]) -> BTreeMap<String, Shown> {
    let named: Vec<_> = only.iter().map(|ip| ip_target(ip, None)).collect();
    let req = elb.describe_target_health().target_group_arn(arn);
    let out = req.set_targets((!named.is_empty()).then_some(named));
    let out = out.send().await.expect("DescribeTargetHealth");
    let shown = out.target_health_descriptions().iter().map(|d| {
        let (t, h) = (
            d.target().expect("target"),
            d.target_health().expect("health"),
        );
        let key = format!("{}:{}", t.id().unwrap_or_default(), t.port().unwrap_or(0));
        let shown = Shown {
            state: h.state().map(|s| s.as_str().into()).unwrap_or_default(),
            reason: h.reason().map(|r| r.as_str().to_string()),
            zone: t.availability_zone().map(str::to_string),
            check_port: d.health_check_port().map(str::to_string),
        };
        (key, shown)
    });
    shown.collect()
}

/// (state, reason) of `ip`:5432 in a [`health`] answer.
pub fn state_of(shown: &BTreeMap<String, Shown>, ip: &str) -> (String, Option<String>) {
    let s = shown.get(&format!("{ip}:5432"));
    let s = s.unwrap_or_else(|| panic!("{ip} not listed: {shown:?}"));
    (s.state.clone(), s.reason.clone())
}

/// An ELBv2 client through `endpoint` that never retries, so each call is one request.
pub async fn elb_once(endpoint: &str) -> elbv2::Client {
    let sdk = fixture::sdk(endpoint).await;
    let conf = elbv2::config::Builder::from(&sdk).retry_config(RetryConfig::disabled());
    elbv2::Client::from_conf(conf.build())
}
