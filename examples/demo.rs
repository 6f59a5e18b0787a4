//! The pglink demo: no AWS account needed.
//!
//! Starts an AWS API emulator (moto) and a DNS server on loopback, builds a VPC, an internal
//! NLB with a TCP 5432 listener and a pglink-owned target group in the emulator, runs the
//! sync daemon (interval 1 s, DNS TTL 1 s, as in production), then performs three Multi-AZ
//! style failovers by repointing the database's DNS name and prints what happened.
//!
//!     cargo run --example demo

#[path = "../tests/support/mod.rs"]
mod support;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, LoadBalancerSchemeEnum, LoadBalancerTypeEnum, ProtocolEnum,
};
use pglink::config::LogFormat;
use support::dns::{Behaviour, TestDns};
use support::fixture::{self, set, Clients, TargetEntry, Watcher};
use support::moto::Moto;
use tokio_util::sync::CancellationToken;

const HOST: &str = "analytics.c9akciq32.us-east-1.rds.amazonaws.com";
const LIMIT: Duration = Duration::from_secs(30);

fn point(dns: &TestDns, addr: &str) {
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
        HOST,
        Behaviour::Cname {
            target: instance,
            ttl: 1,
        },
    );
}

#[tokio::main]
async fn main() {
    for (k, v) in fixture::AWS_ENV {
        std::env::set_var(k, v);
    }
    println!("pglink demo: emulator + DNS server on loopback, then three failovers\n");
    let started = Instant::now();
    let moto = Moto::start();
    let dns = TestDns::start();
    let clients = Clients::new(&moto.endpoint).await;
    println!(
        "  moto server      {}   (started in {:.1?})",
        moto.endpoint,
        started.elapsed()
    );
    println!("  DNS server       {}", dns.addr);

    let net = fixture::network(&clients.ec2, "10.0.0.0/16").await;
    let arn = fixture::target_group(&clients.elb, &net.vpc_id, "pglink-analytics", true).await;
    let nlb = clients
        .elb
        .create_load_balancer()
        .name("pglink-analytics")
        .r#type(LoadBalancerTypeEnum::Network)
        .scheme(LoadBalancerSchemeEnum::Internal)
        .set_subnets(Some(net.subnet_ids.clone()))
        .send()
        .await
        .expect("CreateLoadBalancer");
    let nlb_arn = nlb.load_balancers()[0]
        .load_balancer_arn()
        .expect("nlb arn")
        .to_string();
    clients
        .elb
        .create_listener()
        .load_balancer_arn(&nlb_arn)
        .protocol(ProtocolEnum::Tcp)
        .port(5432)
        .default_actions(
            Action::builder()
                .r#type(ActionTypeEnum::Forward)
                .target_group_arn(&arn)
                .build(),
        )
        .send()
        .await
        .expect("CreateListener");
    println!(
        "  VPC              {} with subnets {}",
        net.vpc_id,
        net.subnet_ids.join(", ")
    );
    println!("  internal NLB     {nlb_arn}");
    println!("  target group     {arn}\n");

    point(&dns, "10.0.1.10");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut text = fixture::config_text(
        &moto.endpoint,
        dns.addr,
        "1s",
        &[TargetEntry::endpoint("analytics", HOST, &arn)],
    );
    text = text
        .replace("drift_check = \"10s\"", "drift_check = \"60s\"")
        .replace("info,pglink=debug", "info");
    let path = fixture::write_config(dir.path(), &text);
    println!("config ({}):\n{}", path.display(), indent(&text));

    let (_, config) = pglink::config::load(&path).expect("valid config");
    pglink::logging::init(LogFormat::Text, "info");
    let shutdown = CancellationToken::new();
    let daemon = tokio::spawn(pglink::commands::daemon(config, shutdown.clone()));
    let watch = Watcher::start(clients.elb.clone(), arn.clone(), Duration::from_millis(20));
    let t0 = Instant::now();
    watch.wait_for(&set(&["10.0.1.10:5432"]), LIMIT).await;
    let first = t0.elapsed();

    let mut rows = Vec::new();
    for (from, to) in [
        ("10.0.1.10", "10.0.2.20"),
        ("10.0.2.20", "10.0.3.30"),
        ("10.0.3.30", "10.0.1.10"),
    ] {
        tokio::time::sleep(Duration::from_secs(2)).await;
        println!("\n>>> failover: {HOST} now resolves to {to} (was {from})");
        let changed = Instant::now();
        point(&dns, to);
        let both = set(&[&format!("{from}:5432"), &format!("{to}:5432")]);
        let only_new = set(&[&format!("{to}:5432")]);
        let in_at = wait_until(&watch, |s| s.contains(&format!("{to}:5432"))).await;
        let out_at = watch.wait_for(&only_new, LIMIT).await;
        let overlap = watch.transitions().contains(&both);
        rows.push((from, to, in_at - changed, out_at - changed, overlap));
    }
    shutdown.cancel();
    daemon.await.expect("daemon task");

    println!("\nfirst registration after start: {first:.2?}\n");
    println!("failover  from        to          new IP registered  old IP removed  both in group between");
    for (i, (from, to, new_in, old_out, overlap)) in rows.iter().enumerate() {
        println!(
            "{:<9} {:<11} {:<11} {:>17.2?}  {:>14.2?}  {}",
            i + 1,
            from,
            to,
            new_in,
            old_out,
            if *overlap { "yes" } else { "NO" }
        );
    }
    println!(
        "\ngroup ever empty after the first registration: {}",
        if watch.never_emptied() { "no" } else { "YES" }
    );
    println!("(times are from the DNS change, seen by polling the emulator every 20 ms; interval 1 s, TTL 1 s.");
    println!(" On AWS the NLB then needs its own registration and health checks before it routes to the new IP.)");
}

async fn wait_until(
    watch: &Watcher,
    pred: impl Fn(&std::collections::BTreeSet<String>) -> bool,
) -> Instant {
    let started = Instant::now();
    loop {
        if let Some((at, _)) = watch
            .snapshots
            .lock()
            .unwrap()
            .iter()
            .find(|(t, s)| *t >= started && pred(s))
        {
            return *at;
        }
        assert!(started.elapsed() < LIMIT, "timed out");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("    {l}\n")).collect()
}
