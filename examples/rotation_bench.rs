//! Rotation figures: a name that answers one of several instances at random per query (as
//! a round-robin record does), resolved through a caching resolver (unbound) that holds
//! each pick for its TTL, as the VPC resolver does. The daemon runs at its default 1 s
//! interval; the harness counts how many live addresses it removes, and how long each was
//! out of the group, over the run.
//!
//!     cargo run [--release] --example rotation_bench -- [MINUTES=10] [MEMBERS=3] [TTL=5]

#[path = "../tests/support/mod.rs"]
mod support;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use support::dns::{Behaviour, TestDns};
use support::fixture::{self, Clients, TargetEntry, Watcher};
use support::moto::Moto;
use support::proxy::Proxy;
use support::unbound::Unbound;
use support::world::instance_name;
use tokio_util::sync::CancellationToken;

const HOST: &str = "replicas.db.test";

#[tokio::main]
async fn main() {
    for (k, v) in fixture::AWS_ENV {
        std::env::set_var(k, v);
    }
    let minutes = support::arg(1, 10);
    let members = support::arg(2, 3);
    let ttl = support::arg(3, 5);
    let moto = Moto::start();
    let proxy = Proxy::start(&moto.endpoint).await;
    let dns = TestDns::start();
    let cache = Unbound::start(dns.addr);
    let clients = Clients::new(&moto.endpoint).await;
    let net = fixture::network(&clients.ec2, "10.0.0.0/16").await;
    let arn = fixture::target_group(&clients.elb, &net.vpc_id, "pglink-rot", true).await;
    let ips: Vec<String> = (1..=members)
        .map(|i| format!("10.0.1.{}", 30 + i))
        .collect();
    for ip in &ips {
        let addr: IpAddr = ip.parse().expect("ip");
        let records = Behaviour::Addresses {
            ips: vec![addr],
            ttl,
        };
        dns.set(&instance_name(ip), records);
    }
    let targets = ips.iter().map(|ip| instance_name(ip)).collect();
    dns.set(HOST, Behaviour::RoundRobin { targets, ttl });

    let dir = tempfile::tempdir().expect("tempdir");
    let text = fixture::config_text(
        &proxy.endpoint,
        cache.addr,
        "1s",
        &[TargetEntry::endpoint("rotating", HOST, &arn)],
    )
    .replace("drift_check = \"10s\"", "drift_check = \"60s\"");
    let path = fixture::write_config(dir.path(), &text);
    let (_, config) = pglink::config::load(&path).expect("valid config");
    pglink::logging::init(pglink::config::LogFormat::Text, "warn");
    let shutdown = CancellationToken::new();
    let daemon = tokio::spawn(pglink::commands::daemon(config, shutdown.clone()));
    let watch = Watcher::start(clients.elb.clone(), arn.clone(), Duration::from_millis(50));

    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(minutes * 60)).await;
    let elapsed = started.elapsed();
    let removals = proxy.count("DeregisterTargets");
    let answers = dns.queries_for(HOST);
    let snapshots = watch.snapshots.lock().unwrap().clone();
    let last = snapshots.last().map(|(_, s)| s.len()).unwrap_or(0);
    println!(
        "{members} members, TTL {ttl}s through unbound, interval 1s, {:.0} s, {} build",
        elapsed.as_secs_f64(),
        support::build_profile()
    );
    println!("  answers fetched from the server (cache misses): {answers}");
    println!("  DeregisterTargets calls: {removals}");
    println!(
        "  addresses in the group at the end: {last} of {members}; first time all in: {}",
        first_full(&snapshots, members as usize, started)
    );
    shutdown.cancel();
    daemon.await.expect("daemon");
}

/// When the group first held every member, as seconds after start.
fn first_full(snapshots: &[fixture::Snapshot], members: usize, started: Instant) -> String {
    snapshots
        .iter()
        .find(|(_, s)| s.len() == members)
        .map_or("never".into(), |(at, _)| {
            format!("{:.1} s", at.duration_since(started).as_secs_f64())
        })
}
