//! The daemon in the strict world (`World::strict`): AWS's documented rules enforced in
//! front of moto, every group behind an NLB, target health moving through `initial`, and
//! DNS through a caching resolver (unbound) that holds answers for their TTL, as the VPC
//! resolver does. Each test here is a defect the kinder world hid.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use support::dns::Behaviour;
use support::fixture::{self, set, Daemon, TargetEntry, Watcher};
use support::strict::{kit, Strict};
use support::world::{instance_name, World};

const BIN: &str = env!("CARGO_BIN_EXE_pglink");
/// An RDS instance endpoint: a name that cannot rotate.
const HOST: &str = "analytics.c9akciq32.us-east-1.rds.amazonaws.com";
const LIMIT: Duration = Duration::from_secs(40);

/// The daemon's config at `interval`, with `drift_check`.
fn config(w: &World, interval: &str, drift: &str, targets: &[TargetEntry]) -> String {
    fixture::config_text(&w.aws_endpoint(), w.nameserver(), interval, targets).replace(
        "drift_check = \"10s\"",
        &format!("drift_check = \"{drift}\""),
    )
}

/// `HOST` at 10.0.1.10, one target on a new owned group, the daemon at `interval` and
/// `drift`, and the group holding 10.0.1.10; returns the group's ARN, its watcher and the
/// daemon.
async fn one_target(
    w: &World,
    name: &str,
    interval: &str,
    drift: &str,
) -> (String, Watcher, Daemon) {
    let arn = w.group(&format!("pglink-{name}"), true).await;
    w.point(HOST, "10.0.1.10");
    let watch = w.watch(&arn);
    let text = config(
        w,
        interval,
        drift,
        &[TargetEntry::endpoint(name, HOST, &arn)],
    );
    let daemon = w.daemon_with(BIN, &format!("{name}.toml"), &text);
    watch.wait_for(&set(&["10.0.1.10:5432"]), LIMIT).await;
    (arn, watch, daemon)
}

/// Waits for the daemon's report that a registered target cannot serve; returns its line.
async fn cannot_serve(daemon: &Daemon, limit: Duration) -> String {
    const REPORT: &str = "a registered target cannot serve";
    fixture::eventually(limit, REPORT, || daemon.logs().contains(REPORT)).await;
    let logs = daemon.logs();
    logs.lines()
        .find(|l| l.contains(REPORT))
        .unwrap_or_default()
        .to_string()
}

/// The targets pglink asked to deregister, in order, from the requests the proxy saw.
fn deregistered(w: &World) -> Vec<String> {
    w.proxy()
        .requests()
        .into_iter()
        .filter(|r| r.action.as_deref() == Some("DeregisterTargets") && r.strict.is_none())
        .filter(|r| !r.faulted)
        .flat_map(|r| {
            let body = r.body;
            (1..)
                .map_while(move |i| form_value(&body, &format!("Targets.member.{i}.Id")))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn form_value(body: &str, key: &str) -> Option<String> {
    body.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == key).then(|| v.replace("%3A", ":"))
    })
}

/// A writer failover through the cache, at the default 1 s interval: the new address is in
/// about one TTL after the DNS change, the old one out within 30 s, never an empty group.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_failover_through_the_cache_is_followed_in_seconds() {
    let w = World::strict().await;
    let (_, watch, _daemon) = one_target(&w, "writer", "1s", "60s").await;

    let changed = Instant::now();
    w.point(HOST, "10.0.2.20");
    let new_in = watch
        .first_seen(changed, |s| s.contains("10.0.2.20:5432"), LIMIT)
        .await;
    let old_out = watch
        .first_seen(changed, |s| s == &set(&["10.0.2.20:5432"]), LIMIT)
        .await;
    let (new_in, old_out) = (new_in - changed, old_out - changed);
    eprintln!("through the cache: new in after {new_in:?}, old out after {old_out:?}");
    // TTL 5 s + 2 s, with room for a loaded machine; the figures are in PERFORMANCE.md.
    assert!(new_in < Duration::from_secs(10), "new in after {new_in:?}");
    assert!(
        old_out < Duration::from_secs(30),
        "old out after {old_out:?}"
    );
    assert!(
        old_out >= Duration::from_secs(10),
        "removed after {old_out:?}: sooner than two TTL windows"
    );
    assert!(watch.never_emptied(), "{:?}", watch.transitions());
}

/// A name that answers one of three instances at random per query (as a round-robin
/// record does), through the cache: before the fix, two 200 ms passes inside one 1 s
/// cache window counted as two answers, and live addresses were removed over and over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotating_name_keeps_every_live_address() {
    let w = World::strict().await;
    let arn = w.group("pglink-rotating", true).await;
    let members = ["10.0.1.31", "10.0.2.32", "10.0.1.33"];
    for ip in members {
        let ips = vec![ip.parse().unwrap()];
        w.dns
            .set(&instance_name(ip), Behaviour::Addresses { ips, ttl: 1 });
    }
    let host = "replicas.db.test";
    w.dns.set(
        host,
        Behaviour::RoundRobin {
            targets: members.iter().map(|ip| instance_name(ip)).collect(),
            ttl: 1,
        },
    );
    let watch = w.watch(&arn);
    let _daemon = w.daemon(BIN, &[TargetEntry::endpoint("rotating", host, &arn)]);
    let keys = members.map(|ip| format!("{ip}:5432"));
    let all = set(&keys.each_ref().map(String::as_str));
    watch.wait_for(&all, LIMIT).await;
    tokio::time::sleep(Duration::from_secs(30)).await;
    let removed = deregistered(&w);
    assert!(removed.len() <= 1, "live addresses removed: {removed:?}");
    assert_eq!(watch.latest(), all, "{:?}", watch.transitions());
}

/// An address in an AZ the NLB is not enabled in is registered but `unused`: reported at
/// once, naming the AZ and the fix, and counted in /metrics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unused_target_is_reported_with_its_zone() {
    let w = World::strict().await;
    let arn = fixture::target_group(&w.clients.elb, &w.vpc_id, "pglink-onezone", true).await;
    w.nlb_for(&arn, "pglink-onezone", &[&w.subnet_ids[0]]).await;
    w.point(HOST, "10.0.2.40");
    let daemon = w.daemon(BIN, &[TargetEntry::endpoint("onezone", HOST, &arn)]);
    let line = cannot_serve(&daemon, LIMIT).await;
    assert!(
        line.contains("10.0.2.40") && line.contains("us-east-1b, where the NLB is not enabled"),
        "{line}"
    );
    // `plan` says it too.
    let config = w.dir.path().join("pglink.toml");
    let out = fixture::pglink(BIN, &["plan", "-c", config.to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("problem:     10.0.2.40:5432 unused: it is in us-east-1b"),
        "{stdout}"
    );
}

/// A target whose health checks keep failing (the database's security group does not
/// admit the NLB) is reported once past the grace, naming the database's security group.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_that_stays_unhealthy_is_reported_with_the_security_group() {
    let w = World::strict().await;
    let arn = w.group("pglink-sick", true).await;
    let net = fixture::Network {
        vpc_id: w.vpc_id.clone(),
        subnet_ids: w.subnet_ids.clone(),
    };
    let sg = fixture::db_placement(&w.clients, &net).await;
    let address = fixture::rds_instance(&w.clients, "sick", &sg, true, false).await;
    w.point(&address, "10.0.1.60");
    w.proxy().set_unhealthy("10.0.1.60".parse().unwrap());
    let entry = TargetEntry {
        name: "sick".into(),
        source: "db_instance = \"sick\"".into(),
        arn,
        extra: String::new(),
    };
    let daemon = w.daemon(BIN, &[entry]);
    let started = Instant::now();
    let line = cannot_serve(&daemon, Duration::from_secs(100)).await;
    assert!(
        line.contains("unhealthy") && line.contains(&sg) && line.contains("TCP 5432"),
        "{line}"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(60),
        "reported before the grace"
    );
}

/// A public address in the answer (a publicly accessible database resolved outside its
/// VPC): one clear error, nothing sent to AWS (which would refuse it), and backoff.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_answer_changes_nothing_and_is_named() {
    let w = World::strict().await;
    let arn = w.group("pglink-public", true).await;
    w.point(HOST, "54.210.3.7");
    let daemon = w.daemon(BIN, &[TargetEntry::endpoint("public", HOST, &arn)]);
    fixture::eventually(LIMIT, "the public answer reported", || {
        daemon.logs().contains("a public address")
    })
    .await;
    let queries = w.dns.queries_for(HOST);
    tokio::time::sleep(Duration::from_secs(8)).await;
    let more = w.dns.queries_for(HOST) - queries;
    assert_eq!(w.proxy().count("RegisterTargets"), 0);
    // At a 200 ms interval 40 passes would ask; backing off to 2 s asks a handful.
    assert!(more <= 10, "{more} queries in 8 s: no backoff");
    let logs = daemon.logs();
    let warnings = logs
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("a public address"))
        .count();
    assert!(warnings <= 2, "warned {warnings} times:\n{logs}");
}

/// A CIDR added to the VPC after start is read with the drift check: an address in it is
/// registered as in the VPC. Before, the CIDRs were read once, and AWS refused the address
/// sent with `AvailabilityZone=all`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vpc_cidr_added_after_start_is_followed() {
    let w = World::strict().await;
    let (_, watch, _daemon) = one_target(&w, "cidr", "200ms", "2s").await;

    let ec2 = &w.clients.ec2;
    let vpc = ec2.associate_vpc_cidr_block().vpc_id(&w.vpc_id);
    vpc.cidr_block("10.1.0.0/16")
        .send()
        .await
        .expect("AssociateVpcCidrBlock");
    let subnet = ec2
        .create_subnet()
        .vpc_id(&w.vpc_id)
        .cidr_block("10.1.1.0/24");
    subnet
        .availability_zone("us-east-1a")
        .send()
        .await
        .expect("CreateSubnet");
    tokio::time::sleep(Duration::from_secs(3)).await;
    w.point(HOST, "10.1.1.20");
    watch.wait_for(&set(&["10.1.1.20:5432"]), LIMIT).await;
    let refused: Vec<_> = w
        .proxy()
        .requests()
        .into_iter()
        .filter(|r| r.strict.as_deref().is_some_and(|s| s != "health"))
        .map(|r| (r.action, r.strict, r.body))
        .collect();
    assert!(refused.is_empty(), "AWS would have refused: {refused:?}");
}

/// `adopt = true` keeps what the group held when adopted, across a restart;
/// `adopt = "replace"` manages it like pglink's own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adopting_keeps_the_targets_already_there() {
    let w = World::strict().await;
    let (keep, replace) = (
        w.group("adopt-keep", false).await,
        w.group("adopt-replace", false).await,
    );
    for arn in [&keep, &replace] {
        let hand = kit::ip_target("10.0.1.99", None);
        let req = w.clients.elb.register_targets().target_group_arn(arn);
        req.targets(hand).send().await.expect("RegisterTargets");
    }
    w.point(HOST, "10.0.1.10");
    let mut entries = [
        TargetEntry::endpoint("keep", HOST, &keep),
        TargetEntry::endpoint("replace", HOST, &replace),
    ];
    entries[0].extra = "adopt = true".into();
    entries[1].extra = "adopt = \"replace\"".into();
    let (keep_watch, replace_watch) = (w.watch(&keep), w.watch(&replace));
    let mut daemon = w.daemon(BIN, &entries);
    keep_watch
        .wait_for(&set(&["10.0.1.10:5432", "10.0.1.99:5432"]), LIMIT)
        .await;
    replace_watch
        .wait_for(&set(&["10.0.1.10:5432"]), LIMIT)
        .await;

    // A failover, then a restart, then another failover: the adopted target stays.
    w.point(HOST, "10.0.2.20");
    keep_watch
        .wait_for(&set(&["10.0.2.20:5432", "10.0.1.99:5432"]), LIMIT)
        .await;
    daemon.terminate(Duration::from_secs(10));
    let _daemon = w.daemon(BIN, &entries);
    tokio::time::sleep(Duration::from_secs(2)).await;
    w.point(HOST, "10.0.1.10");
    keep_watch
        .wait_for(&set(&["10.0.1.10:5432", "10.0.1.99:5432"]), LIMIT)
        .await;
    assert!(
        keep_watch
            .transitions()
            .iter()
            .skip(1)
            .all(|s| s.contains("10.0.1.99:5432")),
        "the adopted target was removed: {:?}",
        keep_watch.transitions()
    );
}

/// The plain emulator still runs the basic failover: an emulator upgrade that changes
/// what moto accepts is noticed here first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_moto_smoke_failover() {
    let w = World::new(false).await;
    let arn = w.group("pglink-smoke", true).await;
    w.point(HOST, "10.0.1.10");
    let watch = w.watch(&arn);
    let _daemon: Daemon = w.daemon(BIN, &[TargetEntry::endpoint("smoke", HOST, &arn)]);
    watch.wait_for(&set(&["10.0.1.10:5432"]), LIMIT).await;
    w.point(HOST, "10.0.2.20");
    watch.wait_for(&set(&["10.0.2.20:5432"]), LIMIT).await;
    assert!(watch.never_emptied());
}

/// One daemon, three accounts: a target on the daemon's own credentials; one whose group
/// lives in account B, reached by assuming a role there with the external ID its trust
/// policy requires; one whose role (account C) does not trust the daemon. C fails alone,
/// naming its role and AWS's refusal; the others follow a failover; STS is asked once per
/// role, not per call; `plan` shows each target's account and exits 1 for C.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn targets_in_other_accounts_are_synced_through_their_roles() {
    const ROLE_B: &str = "arn:aws:iam::111111111111:role/pglink-sync";
    const ROLE_C: &str = "arn:aws:iam::222222222222:role/pglink-sync";
    const HOST_B: &str = "billing.c9akciq32.us-east-1.rds.amazonaws.com";
    const HOST_C: &str = "ledger.c9akciq32.us-east-1.rds.amazonaws.com";
    let trust = BTreeMap::from([(ROLE_B.to_string(), Some("tenant-b".to_string()))]);
    let rules = Strict {
        trust: Some(trust),
        ..Strict::aws()
    };
    let w = World::strict_with(rules).await;
    let arn_a = w.group("pglink-home", true).await;
    let b = w.other_account("111111111111").await;
    let arn_b = b.group("pglink-billing", true).await;
    let c = w.other_account("222222222222").await;
    let arn_c = c.group("pglink-ledger", true).await;
    let own_view = w
        .clients
        .elb
        .describe_target_groups()
        .target_group_arns(&arn_b);
    assert!(
        own_view.send().await.is_err(),
        "B's group must be out of reach of the daemon's own credentials"
    );
    w.point(HOST, "10.0.1.10");
    w.point(HOST_B, "10.0.1.20");
    w.point(HOST_C, "10.0.1.30");
    let as_role = |mut entry: TargetEntry, extra: String| {
        entry.extra = extra;
        entry
    };
    let targets = [
        TargetEntry::endpoint("home", HOST, &arn_a),
        as_role(
            TargetEntry::endpoint("billing", HOST_B, &arn_b),
            format!("role_arn = \"{ROLE_B}\"\nexternal_id = \"tenant-b\""),
        ),
        as_role(
            TargetEntry::endpoint("ledger", HOST_C, &arn_c),
            format!("role_arn = \"{ROLE_C}\""),
        ),
    ];
    let (watch_a, watch_b) = (w.watch(&arn_a), b.watch(&arn_b));
    let started = Instant::now();
    let daemon = w.daemon(BIN, &targets);
    watch_a.wait_for(&set(&["10.0.1.10:5432"]), LIMIT).await;
    watch_b.wait_for(&set(&["10.0.1.20:5432"]), LIMIT).await;

    w.point(HOST, "10.0.2.10");
    w.point(HOST_B, "10.0.2.20");
    let settle = Duration::from_secs(60);
    watch_a.wait_for(&set(&["10.0.2.10:5432"]), settle).await;
    watch_b.wait_for(&set(&["10.0.2.20:5432"]), settle).await;
    assert!(watch_b.never_emptied(), "{:?}", watch_b.transitions());

    let refusal = format!("could not assume role {ROLE_C}: AccessDenied: User:");
    fixture::eventually(LIMIT, "the refusal, named, in the logs", || {
        daemon.logs().contains(&refusal)
    })
    .await;
    assert!(
        fixture::registered(&c.clients.elb, &arn_c).await.is_empty(),
        "nothing may change in C"
    );
    let assumed = |role: &str| {
        let encoded = role.replace(':', "%3A").replace('/', "%2F");
        let calls = w.proxy().requests().into_iter();
        calls
            .filter(|r| r.action.as_deref() == Some("AssumeRole"))
            .filter(|r| r.body.contains(&encoded))
            .map(|r| r.body)
            .collect::<Vec<_>>()
    };
    let for_b = assumed(ROLE_B);
    assert_eq!(for_b.len(), 1, "one session serves every call: {for_b:?}");
    assert!(
        for_b[0].contains("ExternalId=tenant-b") && for_b[0].contains("RoleSessionName=pglink"),
        "{for_b:?}"
    );
    // A refused role is asked again every 10 s at most, not on every call.
    let tries = assumed(ROLE_C).len() as u64;
    let most = started.elapsed().as_secs() / 10 + 2;
    assert!(
        (1..=most).contains(&tries),
        "{tries} AssumeRole calls for C"
    );

    let config = w.dir.path().join("pglink.toml");
    let out = fixture::pglink(BIN, &["plan", "-c", config.to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    for line in [
        "account:     123456789012 as the daemon's own credentials".to_string(),
        format!("account:     111111111111 as {ROLE_B}"),
        format!("account:     222222222222 as {ROLE_C}"),
        refusal,
    ] {
        assert!(stdout.contains(&line), "no {line:?} in\n{stdout}");
    }
    assert!(stdout.contains("resolved:    10.0.2.20"), "{stdout}");
}
