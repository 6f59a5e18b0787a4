//! One test's world: a fresh emulator (optionally behind the recording, fault-injecting
//! proxy), a VPC, a DNS server, and helpers to start the daemon and watch groups.
//!
//! [`World::strict`] is the world as AWS documents it: the proxy enforces AWS's rules
//! (one subnet per AZ, no public or unzoned out-of-VPC targets, the target health state
//! machine, the Describe bucket), every group sits behind an internal NLB with a listener
//! (a group no load balancer uses has only `unused` targets), and the daemon resolves
//! through a caching resolver that holds each answer for its TTL, as the VPC resolver does,
//! with RDS's 5 s TTL.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::dns::{Behaviour, TestDns};
use super::fixture::{self, Clients, Daemon, TargetEntry, Watcher};
use super::moto::Moto;
use super::proxy::Proxy;
use super::strict::{kit, Strict};
use super::unbound::Unbound;

/// RDS endpoints answer with a 5 s TTL.
pub const RDS_TTL: u32 = 5;

/// The endpoint is a CNAME to an instance name, as RDS publishes it; a failover repoints
/// it to another instance name.
pub fn point(dns: &TestDns, host: &str, addr: &str) {
    point_with_ttl(dns, host, addr, 1);
}

pub fn point_with_ttl(dns: &TestDns, host: &str, addr: &str, ttl: u32) {
    let ip: IpAddr = addr.parse().expect("ip");
    let instance = instance_name(addr);
    dns.set(&instance, Behaviour::Addresses { ips: vec![ip], ttl });
    dns.set(
        host,
        Behaviour::Cname {
            target: instance,
            ttl,
        },
    );
}

/// The instance name `point` gives an address: `ip-10-0-1-10.instances.test`.
pub fn instance_name(addr: &str) -> String {
    format!("ip-{}.instances.test", addr.replace(['.', ':'], "-"))
}

pub struct World {
    pub moto: Moto,
    pub proxy: Option<Proxy>,
    pub dns: TestDns,
    /// The caching resolver in front of `dns` (strict world only).
    pub cache: Option<Unbound>,
    pub clients: Clients,
    pub dir: tempfile::TempDir,
    pub vpc_id: String,
    /// One subnet per AZ: 10.0.1.0/24 in us-east-1a, 10.0.2.0/24 in us-east-1b.
    pub subnet_ids: Vec<String>,
    /// The TTL `point` gives answers in this world.
    pub ttl: u32,
}

impl World {
    /// `proxied`: the daemon reaches the emulator through a plain [`Proxy`] (moto's rules).
    pub async fn new(proxied: bool) -> World {
        let moto = Moto::start();
        let proxy = proxied.then(|| Proxy::start_blocking(&moto.endpoint));
        World::build(moto, proxy, false).await
    }

    /// AWS as documented (see the module comment).
    pub async fn strict() -> World {
        World::strict_with(Strict::aws()).await
    }

    pub async fn strict_with(rules: Strict) -> World {
        let moto = Moto::start();
        let proxy = Proxy::start_blocking_strict(&moto.endpoint, rules);
        World::build(moto, Some(proxy), true).await
    }

    async fn build(moto: Moto, proxy: Option<Proxy>, strict: bool) -> World {
        let clients = Clients::new(&moto.endpoint).await;
        let net = fixture::network(&clients.ec2, "10.0.0.0/16").await;
        let dns = TestDns::start();
        let cache = strict.then(|| Unbound::start(dns.addr));
        World {
            moto,
            proxy,
            dns,
            cache,
            clients,
            dir: tempfile::tempdir().unwrap(),
            vpc_id: net.vpc_id,
            subnet_ids: net.subnet_ids,
            ttl: if strict { RDS_TTL } else { 1 },
        }
    }

    pub fn is_strict(&self) -> bool {
        self.cache.is_some()
    }

    /// Where the daemon sends AWS calls.
    pub fn aws_endpoint(&self) -> String {
        self.proxy
            .as_ref()
            .map_or_else(|| self.moto.endpoint.clone(), |p| p.endpoint.clone())
    }

    /// Where the daemon sends DNS queries: the caching resolver in the strict world.
    pub fn nameserver(&self) -> SocketAddr {
        self.cache.as_ref().map_or(self.dns.addr, |c| c.addr)
    }

    pub fn proxy(&self) -> &Proxy {
        self.proxy.as_ref().expect("this world has a proxy")
    }

    /// Repoints `host` to `addr` with this world's TTL.
    pub fn point(&self, host: &str, addr: &str) {
        point_with_ttl(&self.dns, host, addr, self.ttl);
    }

    /// A TCP/5432 IP target group; in the strict world behind an NLB in both AZs.
    pub async fn group(&self, name: &str, owned: bool) -> String {
        let (elb, strict) = (&self.clients.elb, self.is_strict());
        group_in(elb, &self.vpc_id, &self.subnet_ids, name, owned, strict).await
    }

    /// Another AWS account in the emulator, with a VPC laid out like this world's.
    pub async fn other_account(&self, account: &str) -> Account {
        let clients = Clients::in_account(&self.moto.endpoint, account).await;
        let net = fixture::network(&clients.ec2, "10.0.0.0/16").await;
        Account {
            clients,
            vpc_id: net.vpc_id,
            subnet_ids: net.subnet_ids,
            strict: self.is_strict(),
        }
    }

    /// An internal NLB in `subnets` with a TCP listener forwarding to the group.
    pub async fn nlb_for(&self, arn: &str, name: &str, subnets: &[&str]) {
        nlb_in(&self.clients.elb, arn, name, subnets).await;
    }

    /// The config text for these targets at a 200 ms interval.
    pub fn config(&self, targets: &[TargetEntry]) -> String {
        fixture::config_text(&self.aws_endpoint(), self.nameserver(), "200ms", targets)
    }

    /// Starts `bin run` with `config`, written to a file of its own.
    pub fn daemon_with(&self, bin: &str, file: &str, config: &str) -> Daemon {
        let path = self.dir.path().join(file);
        std::fs::write(&path, config).expect("config");
        Daemon::start(bin, &path, &[])
    }

    pub fn daemon(&self, bin: &str, targets: &[TargetEntry]) -> Daemon {
        self.daemon_with(bin, "pglink.toml", &self.config(targets))
    }

    pub fn watch(&self, arn: &str) -> Watcher {
        watch_in(&self.clients.elb, arn)
    }
}

/// A TCP/5432 IP target group in `vpc_id`; when `strict`, behind an NLB in `subnet_ids`.
async fn group_in(
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    vpc_id: &str,
    subnet_ids: &[String],
    name: &str,
    owned: bool,
    strict: bool,
) -> String {
    let arn = fixture::target_group(elb, vpc_id, name, owned).await;
    if strict {
        let subnets: Vec<&str> = subnet_ids.iter().map(String::as_str).collect();
        nlb_in(elb, &arn, name, &subnets).await;
    }
    arn
}

/// An internal NLB named after the group in `subnets`, with a TCP listener to it.
async fn nlb_in(
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    arn: &str,
    name: &str,
    subnets: &[&str],
) {
    let lb_name: String = format!("{name}-nlb").chars().take(32).collect();
    kit::nlb(elb, &lb_name, subnets, arn).await;
}

/// Records the group's contents every 40 ms.
fn watch_in(elb: &aws_sdk_elasticloadbalancingv2::Client, arn: &str) -> Watcher {
    Watcher::start(elb.clone(), arn.to_string(), Duration::from_millis(40))
}

/// Another account's resources, built as that account.
pub struct Account {
    pub clients: Clients,
    pub vpc_id: String,
    pub subnet_ids: Vec<String>,
    strict: bool,
}

impl Account {
    /// As [`World::group`], in this account.
    pub async fn group(&self, name: &str, owned: bool) -> String {
        let elb = &self.clients.elb;
        group_in(
            elb,
            &self.vpc_id,
            &self.subnet_ids,
            name,
            owned,
            self.strict,
        )
        .await
    }

    pub fn watch(&self, arn: &str) -> Watcher {
        watch_in(&self.clients.elb, arn)
    }
}
