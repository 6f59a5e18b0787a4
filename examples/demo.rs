//! The pglink demo: no AWS account needed.
//!
//! Starts an AWS API emulator (moto) and a DNS server on loopback, creates what a team
//! already has (a VPC and a Multi-AZ RDS Postgres instance), runs `pglink bootstrap` to
//! build the PrivateLink stack in front of it, then runs the sync daemon (interval 1 s,
//! DNS TTL 1 s) and performs three Multi-AZ style failovers by repointing the database's
//! DNS name, printing what happened and how long it took.
//!
//!     cargo run --example demo

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use pglink::config::LogFormat;
use support::dns::TestDns;
use support::fixture::{self, set, Clients, Watcher};
use support::moto::Moto;
use support::world::point;
use tokio_util::sync::CancellationToken;

const LIMIT: Duration = Duration::from_secs(30);

#[tokio::main]
async fn main() {
    for (k, v) in fixture::AWS_ENV {
        std::env::set_var(k, v);
    }
    pglink::logging::init(LogFormat::Text, "info");
    println!("pglink demo: emulator + DNS server on loopback, bootstrap, then three failovers\n");
    let started = Instant::now();
    let moto = Moto::start();
    let dns = TestDns::start();
    let clients = Clients::new(&moto.endpoint).await;
    println!(
        "  moto server   {}   (started in {:.1?})",
        moto.endpoint,
        started.elapsed()
    );
    println!("  DNS server    {}\n", dns.addr);

    // What the team already has: a VPC and a Multi-AZ Postgres instance in it.
    let net = fixture::network(&clients.ec2, "10.0.0.0/16").await;
    let db_sg = fixture::db_placement(&clients, &net).await;
    let host = fixture::rds_instance(&clients, "analytics", &db_sg, true, false).await;
    point(&dns, &host, "10.0.1.10");
    println!("  database      db_instance \"analytics\" at {host} -> 10.0.1.10\n");

    let dir = tempfile::tempdir().expect("tempdir");
    let text = format!(
        "[aws]\nregion = \"us-east-1\"\nendpoint_url = \"{}\"\n\n[dns]\nnameservers = [\"{}\"]\n\n\
         [sync]\ninterval = \"1s\"\n\n[server]\nlisten = \"127.0.0.1:0\"\n\n\
         [bootstrap]\nname = \"analytics\"\ndatabase = {{ db_instance = \"analytics\" }}\n\
         allowed_principals = [\"arn:aws:iam::346425330055:role/MTPL_Admin\"]\nconsumer_environment = \"US\"\n",
        moto.endpoint, dns.addr
    );
    let path = fixture::write_config(dir.path(), &text);
    println!("config ({}):\n{}", path.display(), indent(&text));
    println!("$ pglink bootstrap -c {}\n", path.display());
    let bootstrap_path = path.clone();
    let exit = tokio::task::spawn_blocking(move || {
        pglink::commands::bootstrap(Some(bootstrap_path), None, false, false, false)
    })
    .await
    .expect("bootstrap");
    assert_eq!(exit, pglink::commands::Exit::Ok, "bootstrap failed");
    let out = clients
        .elb
        .describe_target_groups()
        .names("pglink-analytics")
        .send()
        .await
        .expect("target group");
    let arn = out.target_groups()[0]
        .target_group_arn()
        .expect("arn")
        .to_string();

    // The snippet bootstrap printed, appended to the same config: the daemon follows the
    // instance through RDS discovery and DNS.
    let text = format!("{text}\n[[targets]]\nname = \"analytics\"\ndb_instance = \"analytics\"\ntarget_group = \"{arn}\"\nport = 5432\n");
    std::fs::write(&path, &text).expect("config");
    println!("$ pglink run -c {}   (in-process here)\n", path.display());
    let (_, config) = pglink::config::load(&path).expect("valid config");
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
        println!("\n>>> failover: {host} now resolves to {to} (was {from})");
        let changed = Instant::now();
        point(&dns, &host, to);
        let both = set(&[&format!("{from}:5432"), &format!("{to}:5432")]);
        let only_new = set(&[&format!("{to}:5432")]);
        let new_key = format!("{to}:5432");
        let in_at = watch
            .first_seen(changed, |s| s.contains(&new_key), LIMIT)
            .await;
        let out_at = watch.wait_for(&only_new, LIMIT).await;
        let overlap = watch.transitions().contains(&both);
        rows.push((from, to, in_at - changed, out_at - changed, overlap));
    }
    shutdown.cancel();
    daemon.await.expect("daemon task");

    println!("\ndaemon start to a group matching DNS: {first:.2?} (bootstrap registered the first target)\n");
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

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("    {l}\n")).collect()
}
