//! `pglink run` end to end: the real binary against moto server and a real DNS server on
//! loopback, whose records each test changes while the daemon runs. Failover scenarios run
//! in the strict world (AWS's rules, NLB-backed groups, a caching resolver with RDS's 5 s
//! TTL); the ones about pglink's own handling of each DNS outcome run against the DNS
//! server directly, which a cache would hide.

mod support;

use std::net::IpAddr;
use std::time::Duration;

use support::dns::{Behaviour, TestDns};
use support::fixture::{self, set, TargetEntry};
use support::world::{point, World};

const BIN: &str = env!("CARGO_BIN_EXE_pglink");
const HOST: &str = "analytics.c9akciq32.us-east-1.rds.amazonaws.com";
const LIMIT: Duration = Duration::from_secs(40);

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// The world as AWS documents it: see `World::strict`.
async fn world() -> World {
    World::strict().await
}

/// The DNS server answers the daemon directly, every pass.
async fn uncached_world() -> World {
    World::new(false).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_then_follows_failovers_without_emptying_the_group() {
    let w = world().await;
    let arn = w.group("pglink-analytics", true).await;
    w.point(HOST, "10.0.1.10");
    let watch = w.watch(&arn);
    let mut daemon = w.daemon(BIN, &[TargetEntry::endpoint("analytics", HOST, &arn)]);

    watch.wait_for(&set(&["10.0.1.10:5432"]), LIMIT).await;
    // Straight back after the first: an instance endpoint never rotates, so the failback
    // removes the old writer like any failover.
    for (from, to) in [("10.0.1.10", "10.0.2.20"), ("10.0.2.20", "10.0.1.10")] {
        w.point(HOST, to);
        watch.wait_for(&set(&[&format!("{to}:5432")]), LIMIT).await;
        let t = watch.transitions();
        let both = set(&[&format!("{from}:5432"), &format!("{to}:5432")]);
        assert!(
            t.contains(&both),
            "new target was not added before the old one left: {t:?}"
        );
    }
    assert!(
        watch.never_emptied(),
        "group was empty at some point: {:?}",
        watch.transitions()
    );
    let logs = daemon.logs();
    assert!(
        logs.contains("registered targets") && logs.contains("deregistered targets"),
        "{logs}"
    );
    let (status, took) = daemon.terminate(Duration::from_secs(10));
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "exit after {took:?}\n{}",
        daemon.logs()
    );
}

/// Waits until the DNS server has answered `n` more queries for `host`, so a test can
/// change the answer between two passes of the daemon.
async fn passes(dns: &TestDns, host: &str, n: u64) {
    let start = dns.queries_for(host);
    fixture::eventually(LIMIT, "daemon passes", || {
        dns.queries_for(host) >= start + n
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flapping_answers_never_remove_the_address_that_comes_back() {
    let w = uncached_world().await;
    let arn = w.group("pglink-flap", true).await;
    point(&w.dns, HOST, "10.0.1.10");
    let watch = w.watch(&arn);
    let _daemon = w.daemon(BIN, &[TargetEntry::endpoint("flap", HOST, &arn)]);
    watch.wait_for(&set(&["10.0.1.10:5432"]), LIMIT).await;

    // A, B, A, B, ... one answer per pass: neither is ever missing from two answers in a row.
    for i in 0..8 {
        point(
            &w.dns,
            HOST,
            if i % 2 == 0 { "10.0.2.20" } else { "10.0.1.10" },
        );
        passes(&w.dns, HOST, 1).await;
    }
    point(&w.dns, HOST, "10.0.1.10");
    watch.wait_for(&set(&["10.0.1.10:5432"]), LIMIT).await;
    let transitions = watch.transitions();
    assert!(
        transitions
            .iter()
            .skip(1)
            .all(|s| s.contains("10.0.1.10:5432")),
        "the returning address was removed while flapping: {transitions:?}"
    );
    assert!(
        transitions.contains(&set(&["10.0.1.10:5432", "10.0.2.20:5432"])),
        "{transitions:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_or_empty_answers_change_nothing() {
    let w = uncached_world().await;
    let arn = w.group("pglink-dnsfail", true).await;
    point(&w.dns, HOST, "10.0.1.10");
    let watch = w.watch(&arn);
    let daemon = w.daemon(BIN, &[TargetEntry::endpoint("dnsfail", HOST, &arn)]);
    watch.wait_for(&set(&["10.0.1.10:5432"]), LIMIT).await;

    let failures = [
        Behaviour::NxDomain,
        Behaviour::ServFail,
        Behaviour::Refused,
        Behaviour::Empty,
        Behaviour::Drop,
        Behaviour::Cname {
            target: "missing.instances.test".into(),
            ttl: 1,
        },
    ];
    for behaviour in failures {
        w.dns.set(HOST, behaviour.clone());
        passes(&w.dns, HOST, 4).await;
        assert_eq!(
            watch.latest(),
            set(&["10.0.1.10:5432"]),
            "changed after {behaviour:?}"
        );
    }
    assert_eq!(
        watch.transitions(),
        vec![set(&[]), set(&["10.0.1.10:5432"])]
    );
    // And it still follows DNS once answers are good again.
    point(&w.dns, HOST, "10.0.2.20");
    watch.wait_for(&set(&["10.0.2.20:5432"]), LIMIT).await;
    let logs = daemon.logs();
    assert!(logs.contains("sync pass failed"), "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untagged_group_is_refused_and_adopted_only_when_asked() {
    let w = uncached_world().await;
    let refused = w.group("not-ours", false).await;
    let adopted = w.group("adopt-me", false).await;
    point(&w.dns, HOST, "10.0.1.10");
    let mut adopt = TargetEntry::endpoint("adopted", HOST, &adopted);
    adopt.extra = "adopt = true".into();
    let daemon = w.daemon(
        BIN,
        &[TargetEntry::endpoint("refused", HOST, &refused), adopt],
    );

    let watch = w.watch(&adopted);
    watch.wait_for(&set(&["10.0.1.10:5432"]), LIMIT).await;
    passes(&w.dns, HOST, 5).await;
    assert!(fixture::registered(&w.clients.elb, &refused)
        .await
        .is_empty());
    let logs = daemon.logs();
    assert!(logs.contains("not managed by pglink"), "{logs}");
    let tags = w
        .clients
        .elb
        .describe_tags()
        .resource_arns(&adopted)
        .send()
        .await
        .unwrap();
    let tags: Vec<_> = tags.tag_descriptions()[0]
        .tags()
        .iter()
        .map(|t| (t.key().unwrap(), t.value().unwrap()))
        .collect();
    assert!(tags.contains(&("pglink:managed-by", "pglink")), "{tags:?}");
    let tags = w
        .clients
        .elb
        .describe_tags()
        .resource_arns(&refused)
        .send()
        .await
        .unwrap();
    assert!(
        tags.tag_descriptions().iter().all(|d| d.tags().is_empty()),
        "refused group was tagged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_vpc_address_is_registered_with_availability_zone_all() {
    let w = world().await;
    let proxy = w.proxy();
    let onprem = w.group("pglink-onprem", true).await;
    let invpc = w.group("pglink-invpc", true).await;
    w.dns.set(
        "onprem.db.test",
        Behaviour::Addresses {
            ips: vec![ip("192.168.50.10")],
            ttl: 1,
        },
    );
    w.dns.set(
        "invpc.db.test",
        Behaviour::Addresses {
            ips: vec![ip("10.0.1.10")],
            ttl: 1,
        },
    );
    // The strict proxy refuses an out-of-VPC address without AvailabilityZone=all and an
    // in-VPC one with it, as AWS does.
    let _daemon = w.daemon(
        BIN,
        &[
            TargetEntry::endpoint("onprem", "onprem.db.test", &onprem),
            TargetEntry::endpoint("invpc", "invpc.db.test", &invpc),
        ],
    );
    w.watch(&onprem)
        .wait_for(&set(&["192.168.50.10:5432"]), LIMIT)
        .await;
    w.watch(&invpc)
        .wait_for(&set(&["10.0.1.10:5432"]), LIMIT)
        .await;

    let registers: Vec<String> = proxy
        .requests()
        .into_iter()
        .filter(|r| r.action.as_deref() == Some("RegisterTargets"))
        .map(|r| r.body)
        .collect();
    let body_for = |ip: &str| {
        registers
            .iter()
            .find(|b| b.contains(ip))
            .cloned()
            .unwrap_or_default()
    };
    let onprem_body = body_for("192.168.50.10");
    assert!(
        onprem_body.contains("Targets.member.1.AvailabilityZone=all"),
        "{onprem_body}"
    );
    assert!(
        onprem_body.contains("Targets.member.1.Port=5432"),
        "{onprem_body}"
    );
    let invpc_body = body_for("10.0.1.10");
    assert!(!invpc_body.contains("AvailabilityZone"), "{invpc_body}");
    assert!(
        invpc_body.contains("Targets.member.1.Port=5432"),
        "{invpc_body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_with_broken_dns_does_not_hold_back_another_failover() {
    let w = world().await;
    let good = w.group("pglink-good", true).await;
    let bad = w.group("pglink-bad", true).await;
    w.point("good.db.test", "10.0.1.10");
    w.point("bad.db.test", "10.0.1.30");
    let (good_watch, bad_watch) = (w.watch(&good), w.watch(&bad));
    let _daemon = w.daemon(
        BIN,
        &[
            TargetEntry::endpoint("good", "good.db.test", &good),
            TargetEntry::endpoint("bad", "bad.db.test", &bad),
        ],
    );
    good_watch.wait_for(&set(&["10.0.1.10:5432"]), LIMIT).await;
    bad_watch.wait_for(&set(&["10.0.1.30:5432"]), LIMIT).await;

    w.dns.set("bad.db.test", Behaviour::Drop);
    w.point("good.db.test", "10.0.2.20");
    good_watch.wait_for(&set(&["10.0.2.20:5432"]), LIMIT).await;
    // The cache has let the bad name's old answer expire and asked the silent server.
    passes(&w.dns, "bad.db.test", 2).await;
    assert_eq!(
        bad_watch.transitions(),
        vec![set(&[]), set(&["10.0.1.30:5432"])]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_and_sigint_stop_the_daemon_with_exit_code_zero() {
    let w = uncached_world().await;
    let arn = w.group("pglink-stop", true).await;
    point(&w.dns, HOST, "10.0.1.10");
    for signal in ["TERM", "INT"] {
        let mut daemon = w.daemon(BIN, &[TargetEntry::endpoint("stop", HOST, &arn)]);
        passes(&w.dns, HOST, 3).await;
        // Stop while the daemon waits on a silent nameserver: the pass in flight is bounded.
        w.dns.set(HOST, Behaviour::Drop);
        passes(&w.dns, HOST, 1).await;
        daemon.signal(signal);
        let (status, took) = daemon.wait(Duration::from_secs(10));
        assert_eq!(
            status.and_then(|s| s.code()),
            Some(0),
            "SIG{signal}: {:?}\n{}",
            took,
            daemon.logs()
        );
        assert!(took < Duration::from_secs(6), "SIG{signal} took {took:?}");
        assert!(daemon.logs().contains("pglink daemon stopped"));
        point(&w.dns, HOST, "10.0.1.10");
    }
}

/// A Postgres instance `id` on port 5433; returns its endpoint address.
async fn create_instance(rds: &aws_sdk_rds::Client, id: &str) -> String {
    let db = rds
        .create_db_instance()
        .db_instance_identifier(id)
        .engine("postgres")
        .db_instance_class("db.t3.micro")
        .allocated_storage(20)
        .master_username("pglink")
        .master_user_password("not-a-secret-1")
        .port(5433)
        .send()
        .await
        .expect("CreateDBInstance");
    db.db_instance()
        .and_then(|d| d.endpoint())
        .and_then(|e| e.address())
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn db_instance_endpoint_is_discovered_through_rds() {
    let w = world().await;
    let arn = w.group("pglink-rds", true).await;
    let address = create_instance(&w.clients.rds, "analytics").await;
    w.point(&address, "10.0.1.10");
    let entry = TargetEntry {
        name: "rds".into(),
        source: "db_instance = \"analytics\"".into(),
        arn: arn.clone(),
        extra: String::new(),
    };
    let daemon = w.daemon(BIN, &[entry]);
    // The port comes from RDS too.
    w.watch(&arn)
        .wait_for(&set(&["10.0.1.10:5433"]), LIMIT)
        .await;
    assert!(daemon.logs().contains("discovered the database endpoint"));
}

/// `region` on a target: RDS is asked in the database's region, not the group's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_in_another_region_is_looked_up_there() {
    let w = world().await;
    let arn = w.group("pglink-west", true).await;
    let sdk = fixture::sdk(&w.moto.endpoint).await;
    let conf = aws_sdk_rds::config::Builder::from(&sdk)
        .region(aws_config::Region::new("us-west-2"))
        .build();
    let west = aws_sdk_rds::Client::from_conf(conf);
    let address = create_instance(&west, "west").await;
    w.point(&address, "10.0.1.30");
    let entry = |extra: &str| TargetEntry {
        name: "west".into(),
        source: "db_instance = \"west\"".into(),
        arn: arn.clone(),
        extra: extra.into(),
    };
    // Without `region`, the group's region has no such instance.
    let path = fixture::write_config(w.dir.path(), &w.config(&[entry("")]));
    let out = fixture::pglink(BIN, &["sync", "-c", path.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("DBInstanceNotFound"), "{stderr}");
    let _daemon = w.daemon(BIN, &[entry("region = \"us-west-2\"")]);
    w.watch(&arn)
        .wait_for(&set(&["10.0.1.30:5433"]), LIMIT)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn db_cluster_follows_the_writer_endpoint() {
    let w = world().await;
    let arn = w.group("pglink-aurora", true).await;
    let cluster = w
        .clients
        .rds
        .create_db_cluster()
        .db_cluster_identifier("orders")
        .engine("aurora-postgresql")
        .master_username("pglink")
        .master_user_password("not-a-secret-1")
        .send()
        .await
        .expect("CreateDBCluster");
    let cluster = cluster.db_cluster().unwrap();
    let writer = cluster.endpoint().unwrap().to_string();
    let port = cluster.port().unwrap_or(5432);
    w.point(&writer, "10.0.1.10");
    let entry = TargetEntry {
        name: "aurora".into(),
        source: "db_cluster = \"orders\"".into(),
        arn: arn.clone(),
        extra: String::new(),
    };
    let _daemon = w.daemon(BIN, &[entry]);
    let watch = w.watch(&arn);
    watch
        .wait_for(&set(&[&format!("10.0.1.10:{port}")]), LIMIT)
        .await;
    w.point(&writer, "10.0.2.20");
    watch
        .wait_for(&set(&[&format!("10.0.2.20:{port}")]), LIMIT)
        .await;
    assert!(watch.never_emptied());
}
