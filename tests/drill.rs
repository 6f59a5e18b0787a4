//! `pglink drill` against the strict world: moto's RDS behind the strict proxy, which writes
//! RDS's failover events and repoints the database's name when the failover call succeeds
//! (moto does neither), targets moving through `initial` to `healthy`, and DNS behind the
//! caching resolver. Every step of the drill is seen, and one that never comes times out.
//! `--dsn` runs `SELECT 1` against a real PostgreSQL with TLS forced, as RDS has it.

mod support;

use std::net::TcpListener;

use support::drill::{text, Drill, FAILOVER};
use support::fixture;
use support::postgres::{Postgres, PASSWORD};

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
    let pg = Postgres::start();
    let d = drill_world().await;
    // The new primary's health checks never pass, and the consumer's password is wrong.
    d.w.proxy().set_unhealthy("10.0.2.20".parse().unwrap());
    let dsn = pg.dsn(&format!(
        "sslmode=verify-ca sslrootcert={}",
        pg.ca.display()
    ));
    let out = d.run_env(
        &[
            "--target",
            "analytics",
            "--yes",
            "--timeout",
            "25s",
            "--dsn",
            &dsn,
        ],
        &[("PGPASSWORD", "not-the-password")],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("new address registered"), "{stdout}");
    assert!(
        stdout.contains("SELECT 1 answers") && stdout.contains("last error: db error: FATAL"),
        "{stdout}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr.lines().last().unwrap_or_default();
    assert_eq!(
        last,
        "error: drill: not seen within 25s: new target healthy, SELECT 1 answers (last error: \
         db error: FATAL: password authentication failed for user \"pglink\")",
        "{stderr}"
    );
    assert!(!text(&out).contains("not-the-password"));
}

/// `--dsn`: the first `SELECT 1` through the consumer's path after the DNS change is a step,
/// over TLS checked against the database's CA, the password from PGPASSWORD.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn select_one_through_the_consumers_path_is_a_step() {
    let pg = Postgres::start();
    let d = drill_world().await;
    let dsn = pg.dsn(&format!(
        "sslmode=verify-ca sslrootcert={}",
        pg.ca.display()
    ));
    let out = d.run(&["--target", "analytics", "--dsn", &dsn]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(", SELECT 1\n"),
        "the dry run names the query: {}",
        text(&out)
    );
    let out = d.run_env(
        &[
            "--target",
            "analytics",
            "--yes",
            "--timeout",
            "90s",
            "--dsn",
            &dsn,
            "--output",
            "json",
        ],
        &[("PGPASSWORD", PASSWORD)],
    );
    assert_eq!(out.status.code(), Some(0), "{}\n{}", text(&out), pg.log());
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let step = |name: &str| -> serde_json::Value {
        doc["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["step"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no {name} in {doc}"))
    };
    let query = step("query_answered");
    let dns = step("dns_changed")["seconds"].as_f64().unwrap();
    assert!(query["seconds"].as_f64().unwrap() >= dns, "{doc}");
    let detail = query["detail"].as_str().unwrap_or_default();
    let expected = format!(
        "SELECT 1 as pglink@127.0.0.1:{}/postgres (sslmode=verify-ca) in ",
        pg.port
    );
    assert!(
        detail.starts_with(&expected) && detail.ends_with(" ms"),
        "{doc}"
    );
    assert!(
        doc["steps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["step"] != "probe_connected"),
        "no --probe, no connect step: {doc}"
    );
    let bad = d.run(&[
        "--target",
        "analytics",
        "--dsn",
        "host=db user=app sslmode=verify-full",
    ]);
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr
            .lines()
            .last()
            .unwrap_or_default()
            .starts_with("error: --dsn: sslrootcert: sslmode=verify-full checks"),
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
