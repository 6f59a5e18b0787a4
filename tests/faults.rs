//! Faults on every side, all on loopback, in the strict world where it matters (AWS's rules
//! and a caching resolver; see `World::strict`): AWS throttling, 5xx, slow answers and dropped
//! connections (through the fault-injecting proxy), a target group lost from under the
//! daemon and the emulator restarted with all state lost, a nameserver out for a minute,
//! `kill -9` between register and deregister, and two daemons on the same targets. The
//! invariants: no wrong deregistration, never an empty group, convergence once the fault
//! ends, and a daemon that keeps running.

mod support;

use std::time::Duration;

use support::dns::Behaviour;
use support::fixture::{self, set, TargetEntry};
use support::proxy::Fault;
use support::world::{point, World};

const BIN: &str = env!("CARGO_BIN_EXE_pglink");
const HOST: &str = "faults.c9akciq32.us-east-1.rds.amazonaws.com";
const LIMIT: Duration = Duration::from_secs(45);

fn throttled() -> Fault {
    Fault::Status {
        status: 400,
        code: "Throttling".into(),
    }
}

fn unavailable() -> Fault {
    Fault::Status {
        status: 503,
        code: "ServiceUnavailable".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_faults_delay_a_failover_but_never_break_it() {
    let w = World::strict().await;
    let proxy = w.proxy.as_ref().unwrap();
    let arn = w.group("pglink-faults", true).await;
    w.point(HOST, "10.0.1.10");
    let watch = w.watch(&arn);
    let mut daemon = w.daemon(BIN, &[TargetEntry::endpoint("faults", HOST, &arn)]);
    watch.wait_for(&set(&["10.0.1.10:5432"]), LIMIT).await;

    let cases: Vec<(&str, Fault)> = vec![
        ("RegisterTargets", throttled()),
        ("DescribeTargetHealth", unavailable()),
        (
            "DeregisterTargets",
            Fault::Status {
                status: 500,
                code: "InternalFailure".into(),
            },
        ),
        ("DescribeTargetHealth", Fault::Drop),
        ("RegisterTargets", Fault::Delay(Duration::from_secs(2))),
    ];
    let mut current = "10.0.1.10".to_string();
    for (i, (action, fault)) in cases.into_iter().enumerate() {
        let next = format!("10.0.{}.20", i + 2);
        // Enough failures to outlast the SDK's own three attempts for a few passes.
        proxy.inject(action, fault.clone(), Some(7));
        w.point(HOST, &next);
        watch
            .wait_for(&set(&[&format!("{next}:5432")]), LIMIT)
            .await;
        let t = watch.transitions();
        assert!(
            t.contains(&set(&[&format!("{current}:5432"), &format!("{next}:5432")])),
            "{action} {fault:?}: the old target left before the new one was in: {t:?}"
        );
        proxy.clear_faults();
        current = next;
    }
    assert!(watch.never_emptied(), "{:?}", watch.transitions());
    assert!(daemon.is_running());
    let logs = daemon.logs();
    assert!(
        logs.contains("throttled"),
        "throttling not reported:\n{logs}"
    );
    let (status, _) = daemon.terminate(Duration::from_secs(10));
    assert_eq!(status.and_then(|s| s.code()), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_target_group_is_reported_and_the_other_target_keeps_working() {
    let mut w = World::new(false).await;
    let lost = w.group("pglink-lost", true).await;
    let kept = w.group("pglink-kept", true).await;
    point(&w.dns, "lost.db.test", "10.0.1.30");
    point(&w.dns, HOST, "10.0.1.10");
    let watch = w.watch(&kept);
    let daemon = w.daemon(
        BIN,
        &[
            TargetEntry::endpoint("lost", "lost.db.test", &lost),
            TargetEntry::endpoint("kept", HOST, &kept),
        ],
    );
    watch.wait_for(&set(&["10.0.1.10:5432"]), LIMIT).await;
    fixture::eventually(LIMIT, "lost group registered", || {
        daemon.logs().matches("registered targets").count() >= 2
    })
    .await;

    // The group vanishes (deleted by hand, or the account was reset), then DNS changes.
    w.clients
        .elb
        .delete_target_group()
        .target_group_arn(&lost)
        .send()
        .await
        .unwrap();
    point(&w.dns, "lost.db.test", "10.0.2.30");
    point(&w.dns, HOST, "10.0.2.20");
    watch.wait_for(&set(&["10.0.2.20:5432"]), LIMIT).await;
    fixture::eventually(LIMIT, "the missing group is reported", || {
        daemon.logs().contains("TargetGroupNotFound")
    })
    .await;

    // The emulator restarted (refused connections, then all state lost): the daemon keeps
    // running and says why each target fails.
    w.moto.restart();
    point(&w.dns, HOST, "10.0.3.30");
    fixture::eventually(
        LIMIT,
        "the kept group reported missing after the restart",
        || {
            daemon
                .logs()
                .lines()
                .any(|l| l.contains("target_name=kept") && l.contains("TargetGroupNotFound"))
        },
    )
    .await;
    let mut daemon = daemon;
    assert!(daemon.is_running(), "{}", daemon.logs());
}

/// The nameserver is out for a full minute: silent for half of it, then its port closed
/// (the server down; hickory's unconnected UDP socket sees that as timeouts too). Nothing is
/// removed, the daemon keeps asking at its pace, and it follows the answer that comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nameserver_down_for_a_minute_removes_nothing() {
    let mut w = World::new(false).await;
    let arn = w.group("pglink-silent", true).await;
    point(&w.dns, HOST, "10.0.1.10");
    let watch = w.watch(&arn);
    let daemon = w.daemon(BIN, &[TargetEntry::endpoint("silent", HOST, &arn)]);
    watch.wait_for(&set(&["10.0.1.10:5432"]), LIMIT).await;

    w.dns.set(HOST, Behaviour::Drop);
    let before = w.dns.queries_for(HOST);
    tokio::time::sleep(OUTAGE / 2).await;
    let asked = w.dns.queries_for(HOST) - before;
    // A failed pass takes the 300 ms timeout, then the next starts about 1 s later: some 23
    // queries in 30 s (no backoff on DNS failures). Half of that still proves it kept asking.
    assert!(
        asked >= 12,
        "{asked} queries in {:?} of silence",
        OUTAGE / 2
    );

    w.dns.down();
    let failed_before = failed_passes(&daemon.logs());
    tokio::time::sleep(OUTAGE / 2).await;
    let failed = failed_passes(&daemon.logs()) - failed_before;
    assert!(
        failed >= 12,
        "{failed} failed passes in {:?} with the port closed",
        OUTAGE / 2
    );
    assert_eq!(
        watch.transitions(),
        vec![set(&[]), set(&["10.0.1.10:5432"])]
    );

    point(&w.dns, HOST, "10.0.2.20");
    w.dns.up();
    watch.wait_for(&set(&["10.0.2.20:5432"]), LIMIT).await;
    assert!(watch.never_emptied());
}

const OUTAGE: Duration = Duration::from_secs(60);

/// Passes that ended in a DNS failure, from the daemon's debug and warning log lines.
fn failed_passes(logs: &str) -> usize {
    logs.lines()
        .filter(|l| l.contains("sync pass failed") && l.contains(HOST))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_between_register_and_deregister_then_restart_converges() {
    let w = World::strict().await;
    let arn = w.group("pglink-kill", true).await;
    w.point(HOST, "10.0.1.10");
    let watch = w.watch(&arn);
    // Four 5 s TTL windows: a 20 s window between the register and the deregister.
    let config = w
        .config(&[TargetEntry::endpoint("kill", HOST, &arn)])
        .replace("confirmations = 2", "confirmations = 4");
    let mut daemon = w.daemon_with(BIN, "kill.toml", &config);
    watch.wait_for(&set(&["10.0.1.10:5432"]), LIMIT).await;
    w.point(HOST, "10.0.2.20");
    watch
        .wait_for(&set(&["10.0.1.10:5432", "10.0.2.20:5432"]), LIMIT)
        .await;
    daemon.signal("KILL");
    let (status, _) = daemon.wait(Duration::from_secs(5));
    assert!(status.is_some_and(|s| s.code().is_none()), "not killed");
    assert_eq!(watch.latest(), set(&["10.0.1.10:5432", "10.0.2.20:5432"]));

    let _restarted = w.daemon_with(BIN, "kill.toml", &config);
    watch.wait_for(&set(&["10.0.2.20:5432"]), LIMIT).await;
    assert!(watch.never_emptied());
    let t = watch.transitions();
    assert_eq!(t.last(), Some(&set(&["10.0.2.20:5432"])), "{t:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_daemons_on_the_same_target_agree() {
    let w = World::strict().await;
    let arn = w.group("pglink-twins", true).await;
    w.point(HOST, "10.0.1.10");
    let watch = w.watch(&arn);
    let config = w.config(&[TargetEntry::endpoint("twins", HOST, &arn)]);
    let _a = w.daemon_with(BIN, "a.toml", &config);
    let _b = w.daemon_with(BIN, "b.toml", &config);
    watch.wait_for(&set(&["10.0.1.10:5432"]), LIMIT).await;
    for next in ["10.0.2.20", "10.0.3.30"] {
        w.point(HOST, next);
        watch
            .wait_for(&set(&[&format!("{next}:5432")]), LIMIT)
            .await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Every state was a step forward: no address came back once removed.
    let t = watch.transitions();
    let expected = vec![
        set(&[]),
        set(&["10.0.1.10:5432"]),
        set(&["10.0.1.10:5432", "10.0.2.20:5432"]),
        set(&["10.0.2.20:5432"]),
        set(&["10.0.2.20:5432", "10.0.3.30:5432"]),
        set(&["10.0.3.30:5432"]),
    ];
    assert_eq!(t, expected);
}
