//! `pglink run` end to end: the real binary against moto server and a real DNS server on
//! loopback, whose records each test changes while the daemon runs.

mod support;

use std::net::IpAddr;
use std::time::Duration;

use support::dns::{Behaviour, TestDns};
use support::fixture::{self, set, Clients, Daemon, TargetEntry, Watcher};
use support::moto::Moto;

const BIN: &str = env!("CARGO_BIN_EXE_pglink");
const HOST: &str = "analytics.c9akciq32.us-east-1.rds.amazonaws.com";
const LIMIT: Duration = Duration::from_secs(20);

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// The endpoint is a CNAME to an instance name, as RDS publishes it; failover repoints
/// the instance name's A record.
fn point(dns: &TestDns, host: &str, addr: &str) {
    let instance = format!("ip-{}.instances.test", addr.replace('.', "-"));
    dns.set(&instance, Behaviour::Addresses { ips: vec![ip(addr)], ttl: 1 });
    dns.set(host, Behaviour::Cname { target: instance, ttl: 1 });
}

struct World {
    _moto: Moto,
    dns: TestDns,
    clients: Clients,
    dir: tempfile::TempDir,
    vpc_id: String,
    endpoint: String,
}

async fn world() -> World {
    let moto = Moto::start();
    let clients = Clients::new(&moto.endpoint).await;
    let net = fixture::network(&clients.ec2, "10.0.0.0/16").await;
    World {
        endpoint: moto.endpoint.clone(),
        _moto: moto,
        dns: TestDns::start(),
        clients,
        dir: tempfile::tempdir().unwrap(),
        vpc_id: net.vpc_id,
    }
}

impl World {
    async fn group(&self, name: &str, owned: bool) -> String {
        fixture::target_group(&self.clients.elb, &self.vpc_id, name, owned).await
    }

    fn daemon(&self, targets: &[TargetEntry]) -> Daemon {
        let text = fixture::config_text(&self.endpoint, self.dns.addr, "200ms", targets);
        let path = fixture::write_config(self.dir.path(), &text);
        Daemon::start(BIN, &path, &[])
    }

    fn watch(&self, arn: &str) -> Watcher {
        Watcher::start(self.clients.elb.clone(), arn.to_string(), Duration::from_millis(40))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_then_follows_failovers_without_emptying_the_group() {
    let w = world().await;
    let arn = w.group("pglink-analytics", true).await;
    point(&w.dns, HOST, "10.0.1.10");
    let watch = w.watch(&arn);
    let mut daemon = w.daemon(&[TargetEntry::endpoint("analytics", HOST, &arn)]);

    watch.wait_for(&set(&["10.0.1.10:5432"]), LIMIT).await;
    for (from, to) in [("10.0.1.10", "10.0.2.20"), ("10.0.2.20", "10.0.1.10")] {
        point(&w.dns, HOST, to);
        watch.wait_for(&set(&[&format!("{to}:5432")]), LIMIT).await;
        let t = watch.transitions();
        let both = set(&[&format!("{from}:5432"), &format!("{to}:5432")]);
        assert!(t.contains(&both), "new target was not added before the old one left: {t:?}");
    }
    assert!(watch.never_emptied(), "group was empty at some point: {:?}", watch.transitions());
    let logs = daemon.logs();
    assert!(logs.contains("registered targets") && logs.contains("deregistered targets"), "{logs}");
    let (status, took) = daemon.terminate(Duration::from_secs(10));
    assert_eq!(status.and_then(|s| s.code()), Some(0), "exit after {took:?}\n{}", daemon.logs());
}
