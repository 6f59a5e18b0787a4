//! Operating the daemon: HTTP endpoints, the healthcheck command and systemd's notify
//! protocol, against the real binary, moto server and a DNS server on loopback.

mod support;

use std::net::IpAddr;
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use support::dns::{Behaviour, TestDns};
use support::fixture::{self, http_get, set, Clients, Daemon, TargetEntry, Watcher};
use support::moto::Moto;
use support::openmetrics;

const BIN: &str = env!("CARGO_BIN_EXE_pglink");
const HOST: &str = "ops.c9akciq32.us-east-1.rds.amazonaws.com";
const LIMIT: Duration = Duration::from_secs(20);

fn answer(dns: &TestDns, addr: &str) {
    let ip: IpAddr = addr.parse().unwrap();
    dns.set(
        HOST,
        Behaviour::Addresses {
            ips: vec![ip],
            ttl: 1,
        },
    );
}

struct Ops {
    _moto: Moto,
    dns: TestDns,
    clients: Clients,
    arn: String,
    dir: tempfile::TempDir,
    port: u16,
    config: std::path::PathBuf,
}

async fn ops() -> Ops {
    let moto = Moto::start();
    let clients = Clients::new(&moto.endpoint).await;
    let net = fixture::network(&clients.ec2, "10.0.0.0/16").await;
    let arn = fixture::target_group(&clients.elb, &net.vpc_id, "pglink-ops", true).await;
    let dns = TestDns::start();
    let dir = tempfile::tempdir().unwrap();
    let port = support::free_port();
    let text = fixture::config_text(
        &moto.endpoint,
        dns.addr,
        "200ms",
        &[TargetEntry::endpoint("ops", HOST, &arn)],
    )
    .replace(
        "listen = \"127.0.0.1:0\"",
        &format!("listen = \"127.0.0.1:{port}\"\nnot_ready_after = \"2s\""),
    );
    let config = fixture::write_config(dir.path(), &text);
    Ops {
        _moto: moto,
        dns,
        clients,
        arn,
        dir,
        port,
        config,
    }
}

async fn get_until(port: u16, path: &str, status: u16) -> String {
    get_matching(port, path, status, |_| true).await
}

/// GETs `path` until it answers `status` with a body that satisfies `pred`.
async fn get_matching(port: u16, path: &str, status: u16, pred: impl Fn(&str) -> bool) -> String {
    let mut last = None;
    let started = std::time::Instant::now();
    while started.elapsed() < LIMIT {
        last = http_get(port, path);
        if let Some((s, body)) = &last {
            if *s == status && pred(body) {
                return body.clone();
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{path} never answered {status}; last: {last:?}");
}

fn metric(text: &str, prefix: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {prefix} in\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_only_after_a_sync_and_metrics_follow_a_failover() {
    let o = ops().await;
    o.dns.set(HOST, Behaviour::ServFail);
    let daemon = Daemon::start(BIN, &o.config, &[]);
    let body = get_until(o.port, "/healthz", 200).await;
    assert!(body.contains("ops: ticking"), "{body}");
    // Before any pass, and after passes that failed: not ready, with the reason.
    let body = get_until(o.port, "/readyz", 503).await;
    assert!(body.contains("not synced yet"), "{body}");
    get_matching(o.port, "/readyz", 503, |b| b.contains("SERVFAIL")).await;
    every_alerting_series_exists_before_the_first_success(o.port);

    answer(&o.dns, "10.0.1.10");
    get_until(o.port, "/readyz", 200).await;
    let watch = Watcher::start(
        o.clients.elb.clone(),
        o.arn.clone(),
        Duration::from_millis(40),
    );
    watch.wait_for(&set(&["10.0.1.10:5432"]), LIMIT).await;
    let before = http_get(o.port, "/metrics").unwrap().1;
    answer(&o.dns, "10.0.2.20");
    watch.wait_for(&set(&["10.0.2.20:5432"]), LIMIT).await;
    // The pass after a change re-reads the group: wait for the gauge to show it.
    let after = get_matching(o.port, "/metrics", 200, |m| {
        m.contains("pglink_registered_targets{target=\"ops\"} 1")
    })
    .await;

    assert_eq!(
        metric(&after, "pglink_failovers_total{target=\"ops\"}"),
        1.0
    );
    assert_eq!(
        metric(
            &after,
            "pglink_target_changes_total{target=\"ops\",action=\"register\"}"
        ),
        2.0
    );
    assert_eq!(
        metric(
            &after,
            "pglink_target_changes_total{target=\"ops\",action=\"deregister\"}"
        ),
        1.0
    );
    assert!(
        metric(
            &after,
            "pglink_dns_answers_total{target=\"ops\",result=\"servfail\"}"
        ) >= 1.0
    );
    assert!(
        metric(&after, "pglink_syncs_total{target=\"ops\",result=\"ok\"}")
            > metric(&before, "pglink_syncs_total{target=\"ops\",result=\"ok\"}")
    );
    assert_eq!(
        metric(
            &after,
            "pglink_detection_to_registration_seconds_count{target=\"ops\"}"
        ),
        2.0
    );
    assert!(
        metric(
            &after,
            "pglink_aws_api_calls_total{operation=\"RegisterTargets\"}"
        ) >= 2.0
    );
    assert_eq!(
        metric(&after, "pglink_registered_targets{target=\"ops\"}"),
        1.0
    );
    assert!(
        metric(
            &after,
            "pglink_last_successful_sync_timestamp_seconds{target=\"ops\"}"
        ) > 1.7e9
    );
    assert!(after.contains("pglink_build_info{version=\""), "{after}");
    // moto reports targets healthy at once: the health poll (every 5 s while a new target
    // is not known healthy) records the registration-to-healthy figure.
    get_matching(o.port, "/metrics", 200, |m| {
        m.contains("pglink_registration_to_healthy_seconds_count{target=\"ops\"}")
    })
    .await;

    latencies_and_states_are_exported(&after);

    // A target removed by hand is a drift repair, not a failover.
    o.clients
        .elb
        .deregister_targets()
        .target_group_arn(&o.arn)
        .targets(
            aws_sdk_elasticloadbalancingv2::types::TargetDescription::builder()
                .id("10.0.2.20")
                .port(5432)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let repaired = get_matching(o.port, "/metrics", 200, |m| {
        m.contains("pglink_drift_repairs_total{target=\"ops\"} 1")
    })
    .await;
    assert_eq!(
        metric(&repaired, "pglink_failovers_total{target=\"ops\"}"),
        1.0
    );
    watch.wait_for(&set(&["10.0.2.20:5432"]), LIMIT).await;

    // A target failing for longer than not_ready_after makes the daemon unready, not dead.
    o.dns.set(HOST, Behaviour::NxDomain);
    let body = get_until(o.port, "/readyz", 503).await;
    assert!(
        body.contains("failing for") && body.contains("NXDOMAIN"),
        "{body}"
    );
    assert_eq!(http_get(o.port, "/healthz").unwrap().0, 200);
    assert_eq!(http_get(o.port, "/nope").unwrap().0, 404);
    drop(daemon);
}

/// Before any pass succeeded: every series an alert needs is there, at zero, in valid
/// OpenMetrics (a counter born at its first increment is invisible to `increase()`, and a
/// timestamp born at the first success never looks stale).
fn every_alerting_series_exists_before_the_first_success(port: u16) {
    let text = http_get(port, "/metrics").unwrap().1;
    let samples = openmetrics::parse(&text);
    let t = ("target", "ops");
    for (name, labels) in [
        ("pglink_syncs_total", vec![t, ("result", "access_denied")]),
        ("pglink_syncs_total", vec![t, ("result", "throttled")]),
        ("pglink_failovers_total", vec![t]),
        ("pglink_drift_repairs_total", vec![t]),
        (
            "pglink_target_changes_total",
            vec![t, ("action", "register")],
        ),
        ("pglink_last_successful_sync_timestamp_seconds", vec![t]),
        ("pglink_target_synced", vec![t]),
        ("pglink_target_states", vec![t, ("state", "healthy")]),
        ("pglink_target_states", vec![t, ("state", "draining")]),
        ("pglink_target_problems", vec![t, ("problem", "unused")]),
        ("pglink_detection_to_registration_seconds_count", vec![t]),
        (
            "pglink_aws_api_errors_total",
            vec![("operation", "RegisterTargets"), ("kind", "access_denied")],
        ),
    ] {
        assert_eq!(
            openmetrics::value(&samples, name, &labels),
            Some(0.0),
            "{name} {labels:?} at start in\n{text}"
        );
    }
    let failing = openmetrics::value(&samples, "pglink_syncs_total", &[t, ("result", "servfail")]);
    assert!(failing.unwrap_or(0.0) >= 1.0, "{text}");
}

/// After a failover: latency histograms, the synced gauge and the state gauges.
fn latencies_and_states_are_exported(text: &str) {
    let samples = openmetrics::parse(text);
    let t = ("target", "ops");
    let at_least_one = |name: &str, labels: &[(&str, &str)]| {
        let v = openmetrics::value(&samples, name, labels).unwrap_or(0.0);
        assert!(v >= 1.0, "{name} {labels:?} = {v} in\n{text}");
    };
    at_least_one(
        "pglink_aws_api_call_duration_seconds_count",
        &[("operation", "RegisterTargets")],
    );
    at_least_one(
        "pglink_aws_api_call_duration_seconds_count",
        &[("operation", "DescribeTargetHealth")],
    );
    at_least_one("pglink_dns_query_duration_seconds_count", &[]);
    // The failover's three figures: pglink's part, the NLB's, and the old target's removal.
    at_least_one("pglink_detection_to_registration_seconds_count", &[t]);
    at_least_one("pglink_detection_to_removal_seconds_count", &[t]);
    at_least_one("pglink_target_synced", &[t]);
    // The new target: `initial` right after pglink registered it, `healthy` once read.
    let states: f64 = ["initial", "healthy"]
        .iter()
        .filter_map(|s| openmetrics::value(&samples, "pglink_target_states", &[t, ("state", s)]))
        .sum();
    assert_eq!(states, 1.0, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthcheck_command_is_0_with_a_live_daemon_and_1_without() {
    let o = ops().await;
    answer(&o.dns, "10.0.1.10");
    let url = format!("http://127.0.0.1:{}/healthz", o.port);
    let out = fixture::pglink(BIN, &["healthcheck", "--url", &url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "nothing listens yet");
    let mut daemon = Daemon::start(BIN, &o.config, &[]);
    get_until(o.port, "/healthz", 200).await;
    let out = fixture::pglink(BIN, &["healthcheck", "--url", &url])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = fixture::pglink(BIN, &["healthcheck"])
        .env("PGLINK_HEALTHCHECK_URL", &url)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let (status, _) = daemon.terminate(Duration::from_secs(10));
    assert_eq!(status.and_then(|s| s.code()), Some(0));
    let out = fixture::pglink(BIN, &["healthcheck", "--url", &url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let out = fixture::pglink(BIN, &["healthcheck", "--url", "localhost"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// In a Kubernetes pod next to a Service named `pglink`, the kubelet injects PGLINK_PORT,
/// PGLINK_SERVICE_HOST and the like: they are not config and must not stop the daemon,
/// while PGLINK_SECTION__KEY variables still apply.
/// https://kubernetes.io/docs/concepts/services-networking/service/#environment-variables
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_service_variables_are_ignored_and_section_keys_apply() {
    let o = ops().await;
    answer(&o.dns, "10.0.1.10");
    let mut daemon = Daemon::start_with_env(
        BIN,
        &o.config,
        &[],
        &[
            ("PGLINK_PORT", "tcp://10.96.0.10:9187"),
            ("PGLINK_PORT_9187_TCP", "tcp://10.96.0.10:9187"),
            ("PGLINK_PORT_9187_TCP_ADDR", "10.96.0.10"),
            ("PGLINK_PORT_9187_TCP_PORT", "9187"),
            ("PGLINK_PORT_9187_TCP_PROTO", "tcp"),
            ("PGLINK_SERVICE_HOST", "10.96.0.10"),
            ("PGLINK_SERVICE_PORT", "9187"),
            ("PGLINK_SERVICE_PORT_METRICS", "9187"),
            ("PGLINK_LOG__FORMAT", "json"),
            ("PGLINK_LOG__LEVEL", "debug"),
            // Not a filter: read as a target name it would silence every line.
            ("RUST_LOG", "verbose"),
        ],
    );
    get_until(o.port, "/healthz", 200).await;
    // A pass has logged inside the target's span (at debug, every pass does).
    fixture::eventually(LIMIT, "a log line inside the target's span", || {
        daemon.logs().contains("\"name\":\"target\"")
    })
    .await;
    let (status, _) = daemon.terminate(Duration::from_secs(10));
    assert_eq!(status.and_then(|s| s.code()), Some(0));
    let logs = daemon.logs();
    let first = logs.lines().next().unwrap_or_default();
    assert!(
        serde_json::from_str::<serde_json::Value>(first).is_ok(),
        "PGLINK_LOG__FORMAT=json applies: {first}"
    );
    let ignored = logs
        .lines()
        .find(|l| l.contains("ignored PGLINK_* environment variables"))
        .unwrap_or_else(|| panic!("no debug line naming the ignored variables:\n{logs}"));
    assert!(
        ignored.contains("PGLINK_PORT,") && ignored.contains("PGLINK_SERVICE_HOST"),
        "{ignored}"
    );
    assert!(
        logs.lines()
            .any(|l| l.contains("RUST_LOG is not a log filter") && l.contains("verbose")),
        "a warning about RUST_LOG, and the configured level used:\n{logs}"
    );
    // The target's span carries its name under its own key: JSON has no duplicate "name".
    let in_span = logs
        .lines()
        .find(|l| l.contains("\"name\":\"target\""))
        .unwrap_or_else(|| panic!("no line inside a target's span:\n{logs}"));
    assert!(
        in_span.contains("{\"target_name\":\"ops\",\"name\":\"target\"}"),
        "{in_span}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn systemd_hears_ready_then_watchdog_pings_then_stopping() {
    let o = ops().await;
    answer(&o.dns, "10.0.1.10");
    let socket_path = o.dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket.set_read_timeout(Some(LIMIT)).unwrap();
    let mut daemon = Daemon::start_with_env(
        BIN,
        &o.config,
        &[],
        &[
            ("NOTIFY_SOCKET", socket_path.to_str().unwrap()),
            ("WATCHDOG_USEC", "400000"),
        ],
    );
    let mut buf = [0u8; 512];
    let mut messages = Vec::new();
    while messages
        .iter()
        .filter(|m: &&String| m.as_str() == "WATCHDOG=1")
        .count()
        < 2
    {
        let len = socket.recv(&mut buf).expect("a notify message in time");
        messages.push(String::from_utf8_lossy(&buf[..len]).to_string());
    }
    assert!(messages[0].starts_with("READY=1\nSTATUS="), "{messages:?}");
    let (status, _) = daemon.terminate(Duration::from_secs(10));
    assert_eq!(status.and_then(|s| s.code()), Some(0));
    loop {
        let len = socket.recv(&mut buf).expect("STOPPING=1 before exit");
        if &buf[..len] == b"STOPPING=1" {
            break;
        }
    }
}

/// Start-up is bounded whatever the fleet: with 200 targets and a Describe budget of one
/// call every 2 s (their first reads alone take almost 7 minutes), systemd hears READY=1
/// within seconds, `/healthz` answers 200 throughout, and a failover on the last target is
/// registered at once although its group has not been read yet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_within_seconds_and_protected_at_many_targets_under_a_tight_budget() {
    const TARGETS: usize = 200;
    let moto = Moto::start();
    let clients = Clients::new(&moto.endpoint).await;
    let net = fixture::network(&clients.ec2, "10.0.0.0/16").await;
    let dns = TestDns::start();
    let mut entries = Vec::new();
    let mut arns = Vec::new();
    for i in 0..TARGETS {
        let arn =
            fixture::target_group(&clients.elb, &net.vpc_id, &format!("pglink-f{i}"), true).await;
        let host = format!("f{i}.c9akciq32.us-east-1.rds.amazonaws.com");
        dns.set(
            &host,
            Behaviour::Addresses {
                ips: vec![format!("10.0.{}.{}", i / 200, 1 + i % 200).parse().unwrap()],
                ttl: 1,
            },
        );
        entries.push(TargetEntry::endpoint(&format!("f{i}"), &host, &arn));
        arns.push(arn);
    }
    let dir = tempfile::tempdir().unwrap();
    let port = support::free_port();
    let text = fixture::config_text(&moto.endpoint, dns.addr, "1s", &entries)
        .replace("[aws]\n", "[aws]\nmax_describe_per_second = 0.5\n")
        .replace(
            "listen = \"127.0.0.1:0\"",
            &format!("listen = \"127.0.0.1:{port}\""),
        )
        .replace("level = \"info,pglink=debug\"", "level = \"info\"");
    let config = fixture::write_config(dir.path(), &text);
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let started = std::time::Instant::now();
    let mut daemon = Daemon::start_with_env(
        BIN,
        &config,
        &[],
        &[("NOTIFY_SOCKET", socket_path.to_str().unwrap())],
    );
    let mut buf = [0u8; 512];
    let len = socket.recv(&mut buf).expect("READY=1 within a minute");
    let ready_after = started.elapsed();
    let message = String::from_utf8_lossy(&buf[..len]).to_string();
    assert!(message.starts_with("READY=1"), "{message}");
    assert!(
        ready_after <= Duration::from_secs(30),
        "READY=1 after {ready_after:?}"
    );
    // The backlog of first reads is /readyz's business, not liveness's.
    let last = TARGETS - 1;
    let protected = format!("f{last}: not synced yet: protected");
    get_matching(port, "/readyz", 503, |b| b.contains(&protected)).await;
    let protected_after = started.elapsed();
    // A failover on the last target, whose first read is minutes away.
    dns.set(
        &format!("f{last}.c9akciq32.us-east-1.rds.amazonaws.com"),
        Behaviour::Addresses {
            ips: vec!["10.0.9.9".parse().unwrap()],
            ttl: 1,
        },
    );
    let watcher = Watcher::start(
        clients.elb.clone(),
        arns[last].clone(),
        Duration::from_millis(200),
    );
    let changed = std::time::Instant::now();
    let seen = watcher
        .wait_for(&set(&["10.0.9.9:5432"]), Duration::from_secs(30))
        .await;
    let registered_after = seen.duration_since(changed);
    // The backlog is still there: the registration did not wait for it.
    let (_, readyz) = http_get(port, "/readyz").expect("/readyz answers");
    let unread = readyz.matches("not synced yet: protected").count();
    for _ in 0..20 {
        let (code, body) = http_get(port, "/healthz").expect("/healthz answers");
        assert_eq!(code, 200, "{body}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let (status, _) = daemon.terminate(Duration::from_secs(10));
    assert_eq!(status.and_then(|s| s.code()), Some(0));
    assert!(
        registered_after <= Duration::from_secs(10),
        "the failover was registered {registered_after:?} after the change"
    );
    assert!(
        protected_after <= Duration::from_secs(30),
        "the last target was protected only {protected_after:?} after start"
    );
    assert!(
        unread >= TARGETS * 3 / 4,
        "only {unread} targets still unread: the test shows nothing\n{readyz}"
    );
}
