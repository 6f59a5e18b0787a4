//! One test's world: a fresh emulator (optionally behind the recording, fault-injecting
//! proxy), a VPC, a DNS server, and helpers to start the daemon and watch groups.

use std::net::IpAddr;
use std::time::Duration;

use super::dns::{Behaviour, TestDns};
use super::fixture::{self, Clients, Daemon, TargetEntry, Watcher};
use super::moto::Moto;
use super::proxy::Proxy;

/// The endpoint is a CNAME to an instance name, as RDS publishes it; a failover repoints
/// it to another instance name.
pub fn point(dns: &TestDns, host: &str, addr: &str) {
    let ip: IpAddr = addr.parse().expect("ip");
    let instance = format!("ip-{}.instances.test", addr.replace('.', "-"));
    dns.set(
        &instance,
        Behaviour::Addresses {
            ips: vec![ip],
            ttl: 1,
        },
    );
    dns.set(
        host,
        Behaviour::Cname {
            target: instance,
            ttl: 1,
        },
    );
}

pub struct World {
    pub moto: Moto,
    pub proxy: Option<Proxy>,
    pub dns: TestDns,
    pub clients: Clients,
    pub dir: tempfile::TempDir,
    pub vpc_id: String,
}

impl World {
    /// `proxied`: the daemon reaches the emulator through a [`Proxy`].
    pub async fn new(proxied: bool) -> World {
        let moto = Moto::start();
        let clients = Clients::new(&moto.endpoint).await;
        let net = fixture::network(&clients.ec2, "10.0.0.0/16").await;
        let proxy = proxied.then(|| Proxy::start_blocking(&moto.endpoint));
        World {
            moto,
            proxy,
            dns: TestDns::start(),
            clients,
            dir: tempfile::tempdir().unwrap(),
            vpc_id: net.vpc_id,
        }
    }

    /// Where the daemon sends AWS calls.
    pub fn aws_endpoint(&self) -> String {
        self.proxy
            .as_ref()
            .map_or_else(|| self.moto.endpoint.clone(), |p| p.endpoint.clone())
    }

    pub async fn group(&self, name: &str, owned: bool) -> String {
        fixture::target_group(&self.clients.elb, &self.vpc_id, name, owned).await
    }

    /// The config text for these targets at a 200 ms interval.
    pub fn config(&self, targets: &[TargetEntry]) -> String {
        fixture::config_text(&self.aws_endpoint(), self.dns.addr, "200ms", targets)
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
        Watcher::start(
            self.clients.elb.clone(),
            arn.to_string(),
            Duration::from_millis(40),
        )
    }
}
