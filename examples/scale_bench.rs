//! Scale figures for the daemon, end to end: the real `pglink run` process against the
//! emulator (through a counting proxy) and a live DNS server, for N targets at
//! `interval = "1s"` with the default budgets unless told otherwise. Reports time to the
//! first full registration, steady-state DNS queries/s and AWS calls/s, the daemon's CPU
//! (% of one core) and RSS, and failover convergence (new in / old out, median and p99)
//! over F failovers of which every tenth moves 10% of the targets at the same moment.
//! Start-up as a supervisor sees it: READY=1 (on a notify socket this process owns),
//! `/healthz` sampled every 200 ms until every target is registered, and a failover on
//! the last target injected 15 s after start (the time until it is registered shows
//! whether the whole fleet is protected by then).
//!
//!     cargo build && cargo run --example scale_bench -- TARGETS [FAILOVERS=50] [DESCRIBE_PER_S=2] [STEADY_S=30]
//!
//! (`--release` on both for the release profile.) The steady-state window samples RSS
//! every few seconds: a long window (STEADY_S=600) shows whether memory grows with passes.
//!
//! Times come from the daemon's own JSON log lines (its clock), changes from this process.

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant, SystemTime};

use support::dns::{Behaviour, TestDns};
use support::fixture::{self, http_get, Clients, Daemon, TargetEntry};
use support::moto::Moto;
use support::proxy::Proxy;

const ROUND_LIMIT: Duration = Duration::from_secs(600);

fn address(target: usize, generation: usize) -> String {
    format!(
        "10.{}.{}.{}",
        generation % 200,
        target / 250,
        1 + target % 250
    )
}

/// An RDS instance endpoint, as users configure: a name that cannot rotate, so two
/// failovers of one target a minute apart are two failovers (a plain name changing twice
/// within a minute counts as rotating and keeps its old address for `rotation_hold`).
fn host(target: usize) -> String {
    format!("t{target}.c9akciq32.us-east-1.rds.amazonaws.com")
}

fn answer(dns: &TestDns, target: usize, generation: usize) {
    let ip: IpAddr = address(target, generation).parse().expect("ip");
    dns.set(
        &host(target),
        Behaviour::Addresses {
            ips: vec![ip],
            ttl: 1,
        },
    );
}

/// Sum of a counter over all targets, from /metrics.
fn counter(port: u16, name: &str, action: &str) -> u64 {
    let Some((_, body)) = http_get(port, "/metrics") else {
        return 0;
    };
    body.lines()
        .filter(|l| l.starts_with(name) && l.contains(&format!("action=\"{action}\"")))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// utime+stime (seconds) and RSS (KiB) of a process, from /proc.
fn cpu_and_rss(pid: u32) -> (f64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks: f64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0);
    (ticks / 100.0, rss)
}

/// (target name, message) -> times, from the daemon's JSON log.
fn log_events(daemon: &Daemon) -> BTreeMap<(String, String), Vec<SystemTime>> {
    let mut events: BTreeMap<(String, String), Vec<SystemTime>> = BTreeMap::new();
    for line in daemon.logs().lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let (Some(name), Some(msg), Some(ts)) = (
            v["target_name"].as_str(),
            v["message"].as_str(),
            v["timestamp"].as_str(),
        ) else {
            continue;
        };
        if let Ok(at) = humantime::parse_rfc3339_weak(ts.trim_end_matches('Z')) {
            events
                .entry((name.to_string(), msg.to_string()))
                .or_default()
                .push(at);
        }
    }
    events
}

const RSS_EVERY: Duration = Duration::from_secs(5);

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// RSS over the steady window: where it started, its range, where it ended, and the
/// change between the first and last fifth (growth with passes would show there).
fn report_rss(samples: &[(Duration, u64)], queries: u64) {
    let values: Vec<u64> = samples.iter().map(|(_, kib)| *kib).collect();
    let fifth = (values.len() / 5).max(1);
    let mean = |s: &[u64]| s.iter().sum::<u64>() as f64 / s.len() as f64;
    let early = mean(&values[..fifth]);
    let late = mean(&values[values.len() - fifth..]);
    println!(
        "RSS over {:.0}s ({queries} DNS queries, {} samples): first {}, min {}, max {}, last {}; last fifth vs first fifth {:+.1} MiB",
        samples.last().map_or(0.0, |(t, _)| t.as_secs_f64()),
        values.len(),
        mib(values[0]),
        mib(*values.iter().min().unwrap_or(&0)),
        mib(*values.iter().max().unwrap_or(&0)),
        mib(*values.last().unwrap_or(&0)),
        (late - early) / 1024.0
    );
}

fn percentile(samples: &mut [Duration], q: f64) -> Duration {
    samples.sort();
    samples[((samples.len() - 1) as f64 * q).round() as usize]
}

#[tokio::main]
async fn main() {
    for (k, v) in fixture::AWS_ENV {
        std::env::set_var(k, v);
    }
    let n: usize = support::arg(1, 100);
    let failovers: usize = support::arg(2, 50);
    let describe: f64 = support::arg(3, 2.0);
    let steady = Duration::from_secs(support::arg(4, 30));
    let bin = support::pglink_binary();
    let moto = Moto::start();
    let proxy = Proxy::start_blocking(&moto.endpoint);
    let dns = TestDns::start();
    let clients = Clients::new(&moto.endpoint).await;
    let net = fixture::network(&clients.ec2, "10.0.0.0/16").await;
    let mut entries = Vec::with_capacity(n);
    for i in 0..n {
        let arn =
            fixture::target_group(&clients.elb, &net.vpc_id, &format!("pglink-t{i}"), true).await;
        answer(&dns, i, 0);
        entries.push(TargetEntry::endpoint(&format!("t{i}"), &host(i), &arn));
    }
    let port = support::free_port();
    let dir = tempfile::tempdir().expect("tempdir");
    let text = fixture::config_text(&proxy.endpoint, dns.addr, "1s", &entries)
        .replace("drift_check = \"10s\"", "drift_check = \"60s\"")
        .replace("max_backoff = \"2s\"", "max_backoff = \"30s\"")
        .replace(
            "listen = \"127.0.0.1:0\"",
            &format!("listen = \"127.0.0.1:{port}\""),
        )
        .replace(
            "level = \"info,pglink=debug\"",
            "level = \"info\"\nformat = \"json\"",
        )
        .replace(
            "[aws]\n",
            &format!("[aws]\nmax_describe_per_second = {describe}\n"),
        );
    let path = fixture::write_config(dir.path(), &text);
    println!(
        "{n} targets, interval 1s, DNS TTL 1s, describe budget {describe}/s, {} build of {}",
        support::build_profile(),
        bin.display()
    );

    // Start-up, as systemd sees it: READY=1 on a notify socket this process owns.
    let socket_path = dir.path().join("notify.sock");
    let socket = std::os::unix::net::UnixDatagram::bind(&socket_path).expect("notify socket");
    socket
        .set_read_timeout(Some(Duration::from_secs(120)))
        .expect("timeout");
    let started = Instant::now();
    let mut daemon = Daemon::start_with_env(
        bin.to_str().expect("path"),
        &path,
        &[],
        &[("NOTIFY_SOCKET", socket_path.to_str().expect("path"))],
    );
    let mut buf = [0u8; 512];
    let ready = match socket.recv(&mut buf) {
        Ok(len) if buf[..len].starts_with(b"READY=1") => started.elapsed(),
        other => panic!("no READY=1 within 120 s: {other:?}"),
    };
    println!("READY=1 after {:.2}s", ready.as_secs_f64());

    // Protection: the last target (the back of every queue) fails over 15 s after start.
    let mut generation = vec![0usize; n];
    let (mut healthz_checks, mut healthz_failures) = (0u32, 0u32);
    let mut probe: Option<SystemTime> = None;
    while counter(port, "pglink_target_changes_total", "register") < n as u64 {
        assert!(daemon.is_running(), "daemon exited:\n{}", daemon.logs());
        if probe.is_none() && started.elapsed() >= Duration::from_secs(15) {
            generation[n - 1] = 1;
            answer(&dns, n - 1, 1);
            probe = Some(SystemTime::now());
        }
        healthz_checks += 1;
        if http_get(port, "/healthz").map(|(code, _)| code) != Some(200) {
            healthz_failures += 1;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let first_full = started.elapsed();
    println!("first full registration: {:.1}s", first_full.as_secs_f64());
    println!("/healthz during start-up: {healthz_failures} failures in {healthz_checks} checks");
    if let Some(at) = probe {
        let events = log_events(&daemon);
        let registered = events
            .get(&(format!("t{}", n - 1), "registered targets".to_string()))
            .and_then(|ts| ts.iter().filter(|t| **t >= at).min().copied());
        match registered {
            Some(r) => println!(
                "failover on the last target 15 s after start: registered {:.2}s after the change",
                r.duration_since(at).unwrap_or_default().as_secs_f64()
            ),
            None => println!("failover on the last target 15 s after start: never registered"),
        }
    }

    // Steady state: answers unchanged.
    tokio::time::sleep(Duration::from_secs(5)).await;
    proxy.clear_requests();
    let q0 = dns.queries();
    let (cpu0, rss0) = cpu_and_rss(daemon.pid());
    let mut rss_samples = vec![(Duration::ZERO, rss0)];
    let window = Instant::now();
    while window.elapsed() < steady {
        let left = steady.saturating_sub(window.elapsed());
        tokio::time::sleep(left.min(RSS_EVERY)).await;
        rss_samples.push((window.elapsed(), cpu_and_rss(daemon.pid()).1));
    }
    let secs = window.elapsed().as_secs_f64();
    let (cpu1, rss) = cpu_and_rss(daemon.pid());
    let queries = dns.queries() - q0;
    let dns_rate = queries as f64 / secs;
    let aws_rate = proxy.requests().len() as f64 / secs;
    let mut by_action: BTreeMap<String, usize> = BTreeMap::new();
    for r in proxy.requests() {
        *by_action.entry(r.action.unwrap_or_default()).or_default() += 1;
    }
    let cpu = (cpu1 - cpu0) / secs * 100.0;
    println!("steady state: {dns_rate:.1} DNS queries/s, {aws_rate:.2} AWS calls/s, CPU {cpu:.1}% of one core, RSS {}", mib(rss));
    println!("steady-state AWS calls by action: {by_action:?}");
    report_rss(&rss_samples, queries);

    // Failovers: every tenth moves 10% of the targets at once.
    let mut changes: Vec<(String, SystemTime, usize)> = Vec::new();
    for round in 0..failovers {
        let count = if round % 10 == 9 { (n / 10).max(1) } else { 1 };
        let chosen: Vec<usize> = (0..count)
            .map(|k| (round * 7919 + k * 104729) % n)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let (reg0, dereg0) = (
            counter(port, "pglink_target_changes_total", "register"),
            counter(port, "pglink_target_changes_total", "deregister"),
        );
        let at = SystemTime::now();
        for &t in &chosen {
            generation[t] += 1;
            answer(&dns, t, generation[t]);
            changes.push((format!("t{t}"), at, round));
        }
        let round_start = Instant::now();
        let k = chosen.len() as u64;
        while counter(port, "pglink_target_changes_total", "register") < reg0 + k
            || counter(port, "pglink_target_changes_total", "deregister") < dereg0 + k
        {
            if round_start.elapsed() >= ROUND_LIMIT {
                let names: Vec<String> = chosen.iter().map(|t| format!("\"t{t}\"")).collect();
                let logs = daemon.logs();
                let lines: Vec<&str> = logs
                    .lines()
                    .filter(|l| names.iter().any(|n| l.contains(n.as_str())))
                    .collect();
                let tail = &lines[lines.len().saturating_sub(60)..];
                panic!(
                    "round {round} did not converge; its targets' last log lines:\n{}",
                    tail.join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(Duration::from_millis(300 + (round as u64 * 211) % 900)).await;
    }
    let events = log_events(&daemon);
    let (mut new_in, mut old_out) = (Vec::new(), Vec::new());
    // The rounds that move many targets at once: until the last one's old address is out.
    let mut bulk: BTreeMap<usize, Duration> = BTreeMap::new();
    for (name, at, round) in &changes {
        let after = |msg: &str| {
            events
                .get(&(name.clone(), msg.to_string()))
                .and_then(|ts| ts.iter().filter(|t| *t >= at).min().copied())
        };
        if let (Some(r), Some(d)) = (after("registered targets"), after("deregistered targets")) {
            let out = d.duration_since(*at).unwrap_or_default();
            new_in.push(r.duration_since(*at).unwrap_or_default());
            old_out.push(out);
            if round % 10 == 9 {
                let slowest = bulk.entry(*round).or_default();
                *slowest = (*slowest).max(out);
            }
        }
    }
    if new_in.is_empty() {
        println!("failovers: none measured");
    } else {
        report(&mut new_in, &mut old_out, failovers);
    }
    if !bulk.is_empty() {
        let rounds: Vec<String> = bulk
            .values()
            .map(|d| format!("{:.2}s", d.as_secs_f64()))
            .collect();
        println!(
            "rounds moving {} targets at once, converged (every new in, every old out) after: {}",
            (n / 10).max(1),
            rounds.join(", ")
        );
    }
    println!(
        "RSS after the failovers: {}",
        mib(cpu_and_rss(daemon.pid()).1)
    );
    let (status, _) = daemon.terminate(Duration::from_secs(15));
    println!("daemon exit: {:?}", status.and_then(|s| s.code()));
}

fn report(new_in: &mut [Duration], old_out: &mut [Duration], failovers: usize) {
    println!(
        "failovers: {} target moves in {failovers} rounds; new in: median {:.2}s p99 {:.2}s; old out: median {:.2}s p99 {:.2}s",
        new_in.len(),
        percentile(new_in, 0.5).as_secs_f64(),
        percentile(new_in, 0.99).as_secs_f64(),
        percentile(old_out, 0.5).as_secs_f64(),
        percentile(old_out, 0.99).as_secs_f64()
    );
}
