//! `pglink drill` against the strict world: moto's RDS behind the strict proxy, which writes
//! RDS's failover events and repoints the database's name when the failover call succeeds
//! (moto does neither), targets moving through `initial` to `healthy`, and DNS behind the
//! caching resolver. Every step of the drill is seen, and one that never comes times out.

mod support;

use std::net::TcpListener;

use support::drill::{text, Drill, FAILOVER};
use support::fixture;

const BIN: &str = env!("CARGO_BIN_EXE_pglink");

async fn drill_world() -> Drill {
    support::drill::drill_world(BIN).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_yes_nothing_fails_over_and_a_single_az_database_is_refused() {
    let d = drill_world().await;
    let out = d.run(&["--target", "analytics"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("would call:  RebootDBInstance with ForceFailover on analytics")
            && stdout.contains(&format!("{} -> 10.0.1.10", d.address))
            && stdout.contains("10.0.1.10:5432"),
        "{stdout}"
    );
    let out = d.run(&["--target", "solo", "--yes"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: --target solo: db_instance solo is Single-AZ"),
        "{stderr}"
    );
    let out = d.run(&["--target", "nope"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let out = d.run(&["--target", "analytics", "--probe", "nohost"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert_eq!(d.w.proxy().count("RebootDBInstance"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_step_of_a_forced_failover_is_timed() {
    let d = drill_world().await;
    let probe = TcpListener::bind("127.0.0.1:0").unwrap();
    let probe = probe.local_addr().unwrap().to_string();
    let out = d.run(&[
        "--target",
        "analytics",
        "--yes",
        "--timeout",
        "90s",
        "--probe",
        &probe,
        "--output",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(d.w.proxy().count("RebootDBInstance"), 1);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(doc["completed"], true, "{doc}");
    let at = |step: &str| -> f64 {
        let record = doc["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["step"] == step)
            .unwrap_or_else(|| panic!("no {step} in {doc}"));
        record["seconds"]
            .as_f64()
            .unwrap_or_else(|| panic!("{step} not seen: {doc}"))
    };
    // RDS repoints the name after its failover; pglink follows; the NLB takes its time.
    assert!(at("dns_changed") >= FAILOVER.as_secs_f64(), "{doc}");
    assert!(at("registered") >= at("dns_changed"), "{doc}");
    assert!(at("healthy") >= at("registered"), "{doc}");
    assert!(at("old_removed") >= at("registered"), "{doc}");
    assert!(at("probe_connected") >= at("dns_changed"), "{doc}");
    at("rds_failover_started");
    at("rds_failover_completed");
    let registered = fixture::registered(&d.w.clients.elb, &target_group(&d).await).await;
    assert_eq!(registered, fixture::set(&["10.0.2.20:5432"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_that_never_comes_fails_the_drill_naming_it() {
    let d = drill_world().await;
    // The new primary's health checks never pass.
    d.w.proxy().set_unhealthy("10.0.2.20".parse().unwrap());
    let out = d.run(&["--target", "analytics", "--yes", "--timeout", "25s"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("new address registered"), "{stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr.lines().last().unwrap_or_default();
    assert_eq!(
        last, "error: drill: not seen within 25s: new target healthy",
        "{stderr}"
    );
}

async fn target_group(d: &Drill) -> String {
    let out =
        d.w.clients
            .elb
            .describe_target_groups()
            .names("pglink-analytics")
            .send()
            .await
            .unwrap();
    out.target_groups()[0]
        .target_group_arn()
        .unwrap()
        .to_string()
}

/// Beside a running daemon, `--watch` only watches: the daemon registers the new address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beside_a_daemon_the_drill_only_watches() {
    let d = drill_world().await;
    let daemon = fixture::Daemon::start(BIN, std::path::Path::new(&d.config), &[]);
    let out = d.run(&[
        "--target",
        "analytics",
        "--yes",
        "--watch",
        "--timeout",
        "90s",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("new address registered") && stdout.contains("10.0.2.20:5432"),
        "{stdout}"
    );
    let logs = daemon.logs();
    assert!(
        logs.contains("ip=10.0.2.20") && logs.contains("action=\"registering\""),
        "the daemon, not the drill, registered the new address:\n{logs}"
    );
}
