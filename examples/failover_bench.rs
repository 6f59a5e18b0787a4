//! Failover figures for the sync daemon, end to end against the emulator and a live DNS
//! server (interval 1 s, confirmations 2, as in the default config), either straight to the
//! server with a 1 s TTL, or (`cached`) through a caching resolver (unbound) with RDS's 5 s
//! TTL, as the VPC resolver serves it:
//!
//! - time from the DNS change to the new IP being registered, and to the old IP being
//!   removed (median, p90, worst over N failovers, seen by polling the group every 20 ms);
//! - AWS API calls and DNS queries per target per hour in the steady state, counted by a
//!   recording proxy in front of the emulator and by the DNS server.
//!
//!     cargo run [--release] --example failover_bench -- [FAILOVERS=20] [STEADY_SECONDS=130] [cached]

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use support::dns::{Behaviour, TestDns};
use support::fixture::{self, set, Clients, TargetEntry, Watcher};
use support::moto::Moto;
use support::proxy::Proxy;
use support::unbound::Unbound;
use tokio_util::sync::CancellationToken;

const HOST: &str = "bench.c9akciq32.us-east-1.rds.amazonaws.com";
const LIMIT: Duration = Duration::from_secs(30);

fn point(dns: &TestDns, addr: &str, ttl: u32) {
    let ip: IpAddr = addr.parse().expect("ip");
    dns.set(HOST, Behaviour::Addresses { ips: vec![ip], ttl });
}

#[tokio::main]
async fn main() {
    for (k, v) in fixture::AWS_ENV {
        std::env::set_var(k, v);
    }
    let failovers = support::arg(1, 20);
    let steady = Duration::from_secs(support::arg(2, 130));
    let cached = std::env::args().nth(3).as_deref() == Some("cached");
    let ttl = if cached { 5 } else { 1 };
    let moto = Moto::start();
    let proxy = Proxy::start(&moto.endpoint).await;
    let dns = TestDns::start();
    let cache = cached.then(|| Unbound::start(dns.addr));
    let nameserver = cache.as_ref().map_or(dns.addr, |c| c.addr);
    let clients = Clients::new(&moto.endpoint).await;
    let net = fixture::network(&clients.ec2, "10.0.0.0/16").await;
    let arn = fixture::target_group(&clients.elb, &net.vpc_id, "pglink-bench", true).await;
    point(&dns, "10.0.1.10", ttl);

    let dir = tempfile::tempdir().expect("tempdir");
    let text = fixture::config_text(
        &proxy.endpoint,
        nameserver,
        "1s",
        &[TargetEntry::endpoint("bench", HOST, &arn)],
    )
    .replace("drift_check = \"10s\"", "drift_check = \"60s\"")
    .replace("max_backoff = \"2s\"", "max_backoff = \"30s\"");
    let path = fixture::write_config(dir.path(), &text);
    let (_, config) = pglink::config::load(&path).expect("valid config");
    pglink::logging::init(pglink::config::LogFormat::Text, "warn");
    let shutdown = CancellationToken::new();
    let daemon = tokio::spawn(pglink::commands::daemon(config, shutdown.clone()));
    let watch = Watcher::start(clients.elb.clone(), arn.clone(), Duration::from_millis(20));
    watch.wait_for(&set(&["10.0.1.10:5432"]), LIMIT).await;

    let through = if cached { " through unbound" } else { "" };
    println!(
        "{failovers} failovers, interval 1s, TTL {ttl}s{through}, confirmations 2, {} build",
        support::build_profile()
    );
    let (mut new_in, mut old_out) = (Vec::new(), Vec::new());
    let mut current = "10.0.1.10".to_string();
    for i in 0..failovers {
        let next = format!("10.0.{}.{}", 2 + i % 200, 10 + i % 7);
        // Settle, and change at a random phase relative to the daemon's passes.
        tokio::time::sleep(Duration::from_millis(1500 + (i as u64 * 137) % 1000)).await;
        let changed = Instant::now();
        point(&dns, &next, ttl);
        let new_key = format!("{next}:5432");
        let registered_at = watch
            .first_seen(changed, |s| s.contains(&new_key), LIMIT)
            .await;
        let removed_at = watch.wait_for(&set(&[&new_key]), LIMIT).await;
        new_in.push(registered_at - changed);
        old_out.push(removed_at - changed);
        current = next;
    }
    assert!(watch.never_emptied(), "the group was empty at some point");
    report("DNS change -> new IP registered", &mut new_in);
    report("DNS change -> old IP removed  ", &mut old_out);
    println!(
        "group empty at any time after the first registration: no ({} snapshots)",
        watch.snapshots.lock().unwrap().len()
    );

    // Steady state: the answer does not change. Skip the read that verifies the last change.
    tokio::time::sleep(Duration::from_secs(3)).await;
    proxy.clear_requests();
    let q0 = dns.queries_for(HOST);
    // Through the cache the server sees one query a TTL; the daemon still asks every pass.
    let started = Instant::now();
    tokio::time::sleep(steady).await;
    let elapsed = started.elapsed().as_secs_f64();
    let queries = dns.queries_for(HOST) - q0;
    let mut by_action: BTreeMap<String, usize> = BTreeMap::new();
    for r in proxy.requests() {
        *by_action
            .entry(r.action.unwrap_or_else(|| "?".into()))
            .or_default() += 1;
    }
    let calls: usize = by_action.values().sum();
    let per_hour = |n: f64| n * 3600.0 / elapsed;
    println!("\nsteady state over {elapsed:.0}s (1 target, answer unchanged at {current}):");
    println!(
        "  AWS API calls: {calls} ({by_action:?}) = {:.0} per target per hour",
        per_hour(calls as f64)
    );
    println!(
        "  DNS queries:   {queries} = {:.2}/s = {:.0} per target per hour",
        queries as f64 / elapsed,
        per_hour(queries as f64)
    );
    shutdown.cancel();
    daemon.await.expect("daemon");
}

fn report(label: &str, samples: &mut [Duration]) {
    samples.sort();
    let pick = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    println!(
        "{label}: median {:.2}s  p90 {:.2}s  worst {:.2}s  best {:.2}s  (n={})",
        pick(0.5).as_secs_f64(),
        pick(0.9).as_secs_f64(),
        samples.last().unwrap().as_secs_f64(),
        samples[0].as_secs_f64(),
        samples.len()
    );
}
