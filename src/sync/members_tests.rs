//! A cluster followed instance by instance (`role = "readers"` / `"all"`): the group holds
//! the chosen members' own addresses, follows a failover that swaps roles (make before
//! break, never empty), and a member added to the cluster.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::config::{Members, TargetGroupArn};
use crate::discover::Member;
use crate::fakes::{owned_group, FakeDiscover, FakeGroups, FakeResolver};

const ARN: &str =
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/pglink-c/0123456789abcdef";
const WRITER_ENDPOINT: &str = "c.cluster-x.us-east-1.rds.amazonaws.com";

type TestSyncer = Syncer<FakeGroups, FakeResolver, FakeDiscover>;

/// `(instance, address, writer)` of each member; each instance's endpoint answers its own
/// address and the writer endpoint the writer's.
fn cluster(s: &TestSyncer, members: &[(&str, &str, bool)]) {
    let mut list = Vec::new();
    for (id, ip, writer) in members {
        let host = format!("{id}.x.us-east-1.rds.amazonaws.com");
        s.resolver.set_host(&host, &[ip]);
        if *writer {
            s.resolver.set_host(WRITER_ENDPOINT, &[ip]);
        }
        list.push(Member {
            instance_id: id.to_string(),
            address: host,
            writer: *writer,
        });
    }
    *s.discover.answer.lock().unwrap() = Some(Ok(DbEndpoint {
        address: WRITER_ENDPOINT.into(),
        port: Some(5432),
        security_groups: vec![],
        members: list,
    }));
}

fn syncer(members: Members) -> TestSyncer {
    Syncer {
        target: Target {
            name: "c".into(),
            source: EndpointSource::DbCluster("c".into()),
            members,
            target_group: TargetGroupArn::parse(ARN).unwrap(),
            port: None,
            adopt: crate::config::Adopt::Off,
            role: None,
            database_region: "us-east-1".into(),
        },
        groups: Arc::new(FakeGroups::new(owned_group(ARN))),
        resolver: Arc::new(FakeResolver::new(&[])),
        discover: Arc::new(FakeDiscover::default()),
        settings: crate::fakes::sync_settings(),
        dry_run: false,
        metrics: crate::metrics::Metrics::new(),
        budgets: Arc::new(Budgets::unlimited()),
        prefetched: None,
    }
}

fn keys(ips: &[&str]) -> BTreeSet<TargetKey> {
    ips.iter()
        .map(|i| TargetKey::new(i.parse().unwrap(), 5432))
        .collect()
}

/// Passes one second apart for `seconds`, checking the group is never empty.
async fn run_for(s: &TestSyncer, mem: &mut Memory, seconds: u64) {
    for _ in 0..seconds {
        s.pass(mem).await.unwrap();
        assert!(!s.groups.keys().is_empty(), "the group was emptied");
        tokio::time::advance(Duration::from_secs(1)).await;
    }
}

#[tokio::test(start_paused = true)]
async fn readers_follow_a_failover_that_swaps_roles() {
    let s = syncer(Members::Readers);
    cluster(
        &s,
        &[
            ("w", "10.0.1.1", true),
            ("r1", "10.0.2.2", false),
            ("r2", "10.0.3.3", false),
        ],
    );
    let mut mem = s.memory();
    run_for(&s, &mut mem, 3).await;
    assert_eq!(s.groups.keys(), keys(&["10.0.2.2", "10.0.3.3"]));
    let reads = *s.discover.calls.lock().unwrap();

    // r1 is promoted: the writer endpoint moves to it, and RDS reports the new roles.
    cluster(
        &s,
        &[
            ("w", "10.0.1.1", false),
            ("r1", "10.0.2.2", true),
            ("r2", "10.0.3.3", false),
        ],
    );
    run_for(&s, &mut mem, 7).await;
    assert!(
        *s.discover.calls.lock().unwrap() > reads,
        "membership read again at once, not at the next drift check"
    );
    assert!(
        s.groups
            .keys()
            .is_superset(&keys(&["10.0.1.1", "10.0.3.3"])),
        "the old writer, now a reader, joined before anything left"
    );
    run_for(&s, &mut mem, 15).await;
    assert_eq!(s.groups.keys(), keys(&["10.0.1.1", "10.0.3.3"]));
}

#[tokio::test(start_paused = true)]
async fn a_member_added_to_the_cluster_joins_within_a_drift_check() {
    let s = syncer(Members::All);
    cluster(&s, &[("w", "10.0.1.1", true), ("r1", "10.0.2.2", false)]);
    let mut mem = s.memory();
    run_for(&s, &mut mem, 2).await;
    assert_eq!(s.groups.keys(), keys(&["10.0.1.1", "10.0.2.2"]));
    cluster(
        &s,
        &[
            ("w", "10.0.1.1", true),
            ("r1", "10.0.2.2", false),
            ("r2", "10.0.3.3", false),
        ],
    );
    run_for(&s, &mut mem, 61).await;
    assert_eq!(s.groups.keys(), keys(&["10.0.1.1", "10.0.2.2", "10.0.3.3"]));
    // And one removed from it leaves after the removal delay.
    cluster(&s, &[("w", "10.0.1.1", true), ("r2", "10.0.3.3", false)]);
    run_for(&s, &mut mem, 75).await;
    assert_eq!(s.groups.keys(), keys(&["10.0.1.1", "10.0.3.3"]));
}

#[tokio::test(start_paused = true)]
async fn a_cluster_without_readers_changes_nothing_and_says_so() {
    let s = syncer(Members::Readers);
    cluster(&s, &[("w", "10.0.1.1", true)]);
    let mut mem = s.memory();
    let err = s.pass(&mut mem).await.unwrap_err();
    assert_eq!(err.kind(), "no_members");
    assert!(err.to_string().contains("role = \"readers\""), "{err}");
    assert!(s.groups.keys().is_empty());
}

/// RDS reports the new roles a little after DNS moves: the readers go on reading
/// membership until it agrees with DNS, not only once.
#[tokio::test(start_paused = true)]
async fn readers_wait_out_rds_reporting_roles_after_dns() {
    let s = syncer(Members::Readers);
    cluster(
        &s,
        &[
            ("w", "10.0.1.1", true),
            ("r1", "10.0.2.2", false),
            ("r2", "10.0.3.3", false),
        ],
    );
    let mut mem = s.memory();
    run_for(&s, &mut mem, 3).await;
    // DNS moves first; RDS still lists the old roles for a while.
    s.resolver.set_host(WRITER_ENDPOINT, &["10.0.2.2"]);
    run_for(&s, &mut mem, 12).await;
    let reads = *s.discover.calls.lock().unwrap();
    assert!(
        reads >= 3,
        "membership read again while it disagrees: {reads}"
    );
    cluster(
        &s,
        &[
            ("w", "10.0.1.1", false),
            ("r1", "10.0.2.2", true),
            ("r2", "10.0.3.3", false),
        ],
    );
    run_for(&s, &mut mem, 25).await;
    assert_eq!(s.groups.keys(), keys(&["10.0.1.1", "10.0.3.3"]));
}

/// The writer endpoint is only a hint: when it does not answer, the members' answers stand.
#[tokio::test(start_paused = true)]
async fn a_silent_writer_endpoint_does_not_fail_the_pass() {
    let s = syncer(Members::Readers);
    cluster(&s, &[("w", "10.0.1.1", true), ("r1", "10.0.2.2", false)]);
    s.resolver.by_host.lock().unwrap().remove(WRITER_ENDPOINT);
    // Other names answer NXDOMAIN.
    let mut mem = s.memory();
    run_for(&s, &mut mem, 2).await;
    assert_eq!(s.groups.keys(), keys(&["10.0.2.2"]));
}

/// The same for a READER custom endpoint, whose members (as discovery lists them) never
/// include the writer.
#[tokio::test(start_paused = true)]
async fn a_reader_custom_endpoint_waits_out_rds_too() {
    let s = syncer(Members::All);
    cluster(&s, &[("r1", "10.0.2.2", false), ("r2", "10.0.3.3", false)]);
    s.resolver.set_host(WRITER_ENDPOINT, &["10.0.1.1"]);
    let mut mem = s.memory();
    run_for(&s, &mut mem, 3).await;
    s.resolver.set_host(WRITER_ENDPOINT, &["10.0.2.2"]);
    run_for(&s, &mut mem, 12).await;
    let reads = *s.discover.calls.lock().unwrap();
    assert!(
        reads >= 3,
        "membership read again while it disagrees: {reads}"
    );
    cluster(&s, &[("w", "10.0.1.1", false), ("r2", "10.0.3.3", false)]);
    s.resolver.set_host(WRITER_ENDPOINT, &["10.0.2.2"]);
    run_for(&s, &mut mem, 25).await;
    assert_eq!(s.groups.keys(), keys(&["10.0.1.1", "10.0.3.3"]));
}
