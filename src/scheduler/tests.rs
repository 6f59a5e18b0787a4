use std::sync::Arc;

use super::*;
use crate::config::{EndpointSource, SyncSettings, Target, TargetGroupArn};
use crate::error::AwsError;
use crate::fakes::{owned_group, FakeDiscover, FakeGroups, FakeResolver};
use crate::plan::TargetKey;
use crate::resolve::DnsFailure;

const S: Duration = Duration::from_secs(1);

fn settings() -> SyncSettings {
    crate::fakes::sync_settings()
}

fn syncer(name: &str, ips: &[&str]) -> Syncer<FakeGroups, FakeResolver, FakeDiscover> {
    let arn = format!(
        "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/{name}/0123456789abcdef"
    );
    Syncer {
        target: Target {
            name: name.into(),
            source: EndpointSource::Hostname(format!("{name}.test")),
            members: crate::config::Members::Writer,
            target_group: TargetGroupArn::parse(&arn).unwrap(),
            port: None,
            adopt: crate::config::Adopt::Off,
            role: None,
            database_region: "us-east-1".into(),
        },
        groups: Arc::new(FakeGroups::new(owned_group(&arn))),
        resolver: Arc::new(FakeResolver::new(ips)),
        discover: Arc::new(FakeDiscover::default()),
        settings: settings(),
        dry_run: false,
        metrics: crate::metrics::Metrics::new(),
        budgets: Arc::new(crate::sync::Budgets::unlimited()),
        prefetched: None,
    }
}

/// `n` targets named t0.. answering 10.0.1.5, sharing `budgets` (as the daemon's do).
fn fleet(
    n: usize,
    budgets: &Arc<crate::sync::Budgets>,
) -> Vec<Syncer<FakeGroups, FakeResolver, FakeDiscover>> {
    (0..n)
        .map(|i| {
            let mut s = syncer(&format!("t{i}"), &["10.0.1.5"]);
            s.budgets = budgets.clone();
            s
        })
        .collect()
}

fn dns_error() -> SyncError {
    SyncError::Dns {
        host: "h".into(),
        failure: DnsFailure::Timeout,
    }
}

fn aws_error() -> SyncError {
    SyncError::Aws(AwsError::Throttled {
        op: "RegisterTargets",
        code: "Throttling".into(),
    })
}

#[test]
fn delays() {
    let max = Duration::from_secs(30);
    assert_eq!(next_delay(S, max, None, 0, 0.5), S);
    assert_eq!(next_delay(S, max, None, 0, 0.0), Duration::from_millis(900));
    assert!(next_delay(S, max, None, 0, 0.999) < Duration::from_millis(1100));
    assert_eq!(
        next_delay(S, max, Some(&dns_error()), 7, 0.5),
        S,
        "DNS failures keep the pace"
    );
    assert_eq!(next_delay(S, max, Some(&aws_error()), 1, 0.5), 2 * S);
    assert_eq!(next_delay(S, max, Some(&aws_error()), 3, 0.5), 8 * S);
    assert_eq!(
        next_delay(S, max, Some(&aws_error()), 40, 0.5),
        max,
        "capped"
    );
}

fn key(ip: &str) -> TargetKey {
    TargetKey::new(ip.parse().unwrap(), 5432)
}

#[tokio::test(start_paused = true)]
async fn a_broken_target_does_not_hold_back_another() {
    let healthy = syncer("good", &["10.0.1.5"]);
    let broken = syncer("bad", &["10.0.9.9"]);
    broken.resolver.fail(DnsFailure::ServFail);
    let (good_groups, good_dns) = (healthy.groups.clone(), healthy.resolver.clone());
    let bad_groups = broken.groups.clone();
    let board = StatusBoard::default();
    let shutdown = CancellationToken::new();
    let daemon = tokio::spawn(run(vec![healthy, broken], board.clone(), shutdown.clone()));

    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(good_groups.keys(), [key("10.0.1.5")].into());
    good_dns.set(&["10.0.2.9"]);
    // The old address goes once missing for two 5 s TTL windows.
    tokio::time::sleep(Duration::from_secs(13)).await;
    assert_eq!(good_groups.keys(), [key("10.0.2.9")].into());
    assert!(bad_groups.keys().is_empty());

    let status = board.lock().unwrap().clone();
    assert!(status["good"].converged && status["good"].consecutive_failures == 0);
    assert!(
        status["bad"].consecutive_failures >= 5,
        "{:?}",
        status["bad"]
    );
    assert!(status["bad"]
        .last_error
        .as_deref()
        .unwrap()
        .contains("SERVFAIL"));

    shutdown.cancel();
    daemon.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn shutdown_abandons_a_stuck_pass_after_the_grace_period() {
    let stuck = syncer("stuck", &["10.0.1.5"]);
    *stuck.resolver.delay.lock().unwrap() = Duration::from_secs(3600);
    let shutdown = CancellationToken::new();
    let daemon = tokio::spawn(run(vec![stuck], StatusBoard::default(), shutdown.clone()));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let started = tokio::time::Instant::now();
    shutdown.cancel();
    daemon.await.unwrap();
    let waited = started.elapsed();
    assert!(
        waited >= SHUTDOWN_GRACE && waited < SHUTDOWN_GRACE + S,
        "{waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn steady_state_resolves_once_per_interval() {
    let s = syncer("steady", &["10.0.1.5"]);
    let (groups, dns) = (s.groups.clone(), s.resolver.clone());
    let shutdown = CancellationToken::new();
    let daemon = tokio::spawn(run(vec![s], StatusBoard::default(), shutdown.clone()));
    // Registration, then health polling until the fake reports the target healthy.
    tokio::time::sleep(Duration::from_secs(12)).await;
    let (q0, c0) = (*dns.queries.lock().unwrap(), groups.calls().len());
    tokio::time::sleep(Duration::from_secs(50)).await;
    let (q1, c1) = (*dns.queries.lock().unwrap(), groups.calls().len());
    shutdown.cancel();
    daemon.await.unwrap();
    let queries = q1 - q0;
    assert!(
        (45..=56).contains(&queries),
        "{queries} queries in 50 s at a 1 s interval"
    );
    assert_eq!(
        c1 - c0,
        0,
        "no AWS calls in the steady state before drift_check"
    );
}

#[tokio::test(start_paused = true)]
async fn a_dns_budget_stretches_every_target_evenly() {
    let budgets = Arc::new(crate::sync::Budgets::new(20.0, 1e9));
    let syncers = fleet(100, &budgets);
    let resolvers: Vec<_> = syncers.iter().map(|s| s.resolver.clone()).collect();
    let shutdown = CancellationToken::new();
    let daemon = tokio::spawn(run(syncers, StatusBoard::default(), shutdown.clone()));
    tokio::time::sleep(Duration::from_secs(30)).await;
    // Counted before shutdown: passes in flight may finish during the grace period.
    let counts: Vec<u64> = resolvers
        .iter()
        .map(|r| *r.queries.lock().unwrap())
        .collect();
    shutdown.cancel();
    daemon.await.unwrap();
    let total: u64 = counts.iter().sum();
    // 100 targets at 1/s want 3000 queries in 30 s; the budget allows about 600.
    assert!(
        (560..=640).contains(&total),
        "{total} queries in 30 s at 20/s"
    );
    let (min, max) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
    assert!(*min >= 4 && *max <= 8, "uneven: min {min}, max {max}");
}

#[tokio::test(start_paused = true)]
async fn a_failover_is_not_queued_behind_startup_reads() {
    let budgets = Arc::new(crate::sync::Budgets::new(1e9, 2.0));
    let syncers = fleet(60, &budgets);
    let (groups, dns) = (syncers[0].groups.clone(), syncers[0].resolver.clone());
    let shutdown = CancellationToken::new();
    let daemon = tokio::spawn(run(syncers, StatusBoard::default(), shutdown.clone()));
    // Target 0 is registered early; then it fails over while 59 others still wait to start.
    let start = tokio::time::Instant::now();
    while groups.keys().is_empty() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let registered_after = start.elapsed();
    dns.set(&["10.0.2.9"]);
    let changed = tokio::time::Instant::now();
    while !groups.keys().contains(&key("10.0.2.9")) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let took = changed.elapsed();
    shutdown.cancel();
    daemon.await.unwrap();
    // Start-up alone needs 60 x 3 describe calls at 2/s: 90 s. The failover read jumps it.
    assert!(
        took <= Duration::from_secs(3),
        "failover waited {took:?} (first registration after {registered_after:?})"
    );
}

#[tokio::test(start_paused = true)]
async fn drift_checks_over_budget_never_slow_the_dns_pace() {
    // 50 targets want a drift check every second; the budget allows one every 2 s.
    let budgets = Arc::new(crate::sync::Budgets::new(1e9, 0.5));
    let mut syncers = fleet(50, &budgets);
    for s in &mut syncers {
        s.settings.drift_check = Duration::from_secs(1);
    }
    let resolvers: Vec<_> = syncers.iter().map(|s| s.resolver.clone()).collect();
    let shutdown = CancellationToken::new();
    let daemon = tokio::spawn(run(syncers, StatusBoard::default(), shutdown.clone()));
    // Start-up (3 describe calls per target at 0.5/s) takes a while: let it finish first.
    tokio::time::sleep(Duration::from_secs(400)).await;
    let before: u64 = resolvers.iter().map(|r| *r.queries.lock().unwrap()).sum();
    tokio::time::sleep(Duration::from_secs(20)).await;
    let after: u64 = resolvers.iter().map(|r| *r.queries.lock().unwrap()).sum();
    shutdown.cancel();
    daemon.await.unwrap();
    let queries = after - before;
    assert!(
        (900..=1100).contains(&queries),
        "{queries} queries in 20 s from 50 targets at 1 s"
    );
}

/// The daemon takes each target's first answer as what its group holds, so a failover is
/// registered at once even while the target still waits in line for its first read.
#[tokio::test(start_paused = true)]
async fn a_target_is_protected_before_its_first_read() {
    // 60 first reads at 1/s (after a burst of 5) take about a minute.
    let budgets = Arc::new(crate::sync::Budgets::new(1e9, 1.0));
    let mut syncers = fleet(60, &budgets);
    for s in &mut syncers {
        s.prefetched = Some(s.groups.info.lock().unwrap().clone());
    }
    let (groups, dns) = (syncers[59].groups.clone(), syncers[59].resolver.clone());
    let board = StatusBoard::default();
    let shutdown = CancellationToken::new();
    let daemon = tokio::spawn(run(syncers, board.clone(), shutdown.clone()));
    tokio::time::sleep(Duration::from_secs(15)).await;
    assert!(
        !groups.calls().contains(&crate::fakes::Call::Read),
        "the last target was read already: the test needs a longer line"
    );
    dns.set(&["10.0.2.9"]);
    let changed = tokio::time::Instant::now();
    while !groups.keys().contains(&key("10.0.2.9")) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let took = changed.elapsed();
    let read_before = groups.calls().contains(&crate::fakes::Call::Read);
    let status = board.lock().unwrap()["t59"].clone();
    shutdown.cancel();
    daemon.await.unwrap();
    assert!(took <= 2 * S, "registered {took:?} after the change");
    assert!(!read_before, "waited for the group read");
    assert!(status.protected && status.successes == 0, "{status:?}");
}

/// A loop that waits minutes for its turn at the DNS budget is alive all along.
#[tokio::test(start_paused = true)]
async fn a_loop_waiting_long_for_its_turn_stays_live() {
    // 60 targets at 0.5 queries/s: each waits about 2 minutes for its next answer.
    let budgets = Arc::new(crate::sync::Budgets::new(0.5, 1e9));
    let syncers = fleet(60, &budgets);
    let names: Vec<String> = syncers.iter().map(|s| s.target.name.clone()).collect();
    let board = StatusBoard::default();
    let shutdown = CancellationToken::new();
    let started = crate::pulse::now();
    let daemon = tokio::spawn(run(syncers, board.clone(), shutdown.clone()));
    let stall = crate::health::stall_after(S, 30 * S);
    let mut longest_silence = Duration::ZERO;
    for _ in 0..60 {
        tokio::time::sleep(5 * S).await;
        let now = crate::pulse::now();
        let snapshot = board.lock().unwrap().clone();
        for s in snapshot.values() {
            let last_pass = s.last_pass.unwrap_or(started);
            longest_silence = longest_silence.max(now.saturating_duration_since(last_pass));
        }
        let verdict = crate::health::liveness(&names, &snapshot, started, now, stall);
        assert!(verdict.ok, "{}", verdict.detail);
    }
    shutdown.cancel();
    daemon.await.unwrap();
    assert!(
        longest_silence > stall,
        "no loop went {stall:?} without a pass ({longest_silence:?}): the test shows nothing"
    );
}
