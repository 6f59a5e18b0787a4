use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::alloc_count;
use crate::config::TargetGroupArn;
use crate::fakes::{owned_group, Call, FakeDiscover, FakeGroups, FakeResolver};
use crate::plan::TargetState;

const ARN: &str =
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/pglink-t/0123456789abcdef";

type TestSyncer = Syncer<FakeGroups, FakeResolver, FakeDiscover>;

fn syncer(groups: FakeGroups, resolver: FakeResolver, adopt: bool, dry_run: bool) -> TestSyncer {
    Syncer {
        target: Target {
            name: "t".into(),
            source: EndpointSource::Hostname("db.test".into()),
            members: crate::config::Members::Writer,
            target_group: TargetGroupArn::parse(ARN).unwrap(),
            port: None,
            adopt: if adopt {
                crate::config::Adopt::Keep
            } else {
                crate::config::Adopt::Off
            },
            role: None,
            database_region: "us-east-1".into(),
        },
        groups: Arc::new(groups),
        resolver: Arc::new(resolver),
        discover: Arc::new(FakeDiscover::default()),
        settings: crate::fakes::sync_settings(),
        dry_run,
        metrics: crate::metrics::Metrics::new(),
        budgets: Arc::new(crate::sync::Budgets::unlimited()),
        prefetched: None,
    }
}

fn key(ip: &str) -> TargetKey {
    TargetKey::new(ip.parse().unwrap(), 5432)
}

fn keys(ips: &[&str]) -> BTreeSet<TargetKey> {
    ips.iter().map(|i| key(i)).collect()
}

fn standard(ips: &[&str]) -> TestSyncer {
    syncer(
        FakeGroups::new(owned_group(ARN)),
        FakeResolver::new(ips),
        false,
        false,
    )
}

#[tokio::test]
async fn registers_then_stays_quiet() {
    let s = standard(&["10.0.1.5"]);
    let mut mem = Memory::default();
    let r = s.pass(&mut mem).await.unwrap();
    assert_eq!(r.plan.register, vec![key("10.0.1.5")]);
    assert_eq!(s.groups.keys(), keys(&["10.0.1.5"]));
    s.pass(&mut mem).await.unwrap(); // re-reads once after a change
    s.groups.clear_calls();
    for _ in 0..5 {
        let r = s.pass(&mut mem).await.unwrap();
        assert!(r.plan.is_converged());
    }
    assert_eq!(s.groups.calls(), vec![], "steady state makes no AWS calls");
}

/// The fake's answers have a 5 s TTL: an old address goes after two TTL windows.
const REMOVAL_DELAY: Duration = Duration::from_secs(10);

#[tokio::test(start_paused = true)]
async fn failover_registers_new_before_removing_old() {
    let s = standard(&["10.0.1.5"]);
    let mut mem = Memory::default();
    s.pass(&mut mem).await.unwrap();
    s.resolver.set(&["10.0.2.9"]);
    let r = s.pass(&mut mem).await.unwrap();
    assert_eq!(r.plan.register, vec![key("10.0.2.9")]);
    assert!(r.plan.deregister.is_empty());
    assert_eq!(s.groups.keys(), keys(&["10.0.1.5", "10.0.2.9"]));
    tokio::time::advance(REMOVAL_DELAY - Duration::from_millis(1)).await;
    let r = s.pass(&mut mem).await.unwrap();
    assert!(r.plan.deregister.is_empty(), "removed before the delay");
    tokio::time::advance(Duration::from_millis(1)).await;
    let r = s.pass(&mut mem).await.unwrap();
    assert_eq!(r.plan.deregister, vec![key("10.0.1.5")]);
    assert_eq!(s.groups.keys(), keys(&["10.0.2.9"]));
    for state in s.groups.history.lock().unwrap().iter() {
        assert!(!state.is_empty(), "the group was empty at some point");
    }
}

/// A target in sync at 10.0.1.5 whose answer has just moved to 10.0.2.9, after the pass
/// that saw the move; the recorded calls are that pass's only.
async fn failed_over() -> (TestSyncer, Memory) {
    let s = standard(&["10.0.1.5"]);
    let mut mem = Memory::default();
    s.pass(&mut mem).await.unwrap();
    s.pass(&mut mem).await.unwrap();
    s.resolver.set(&["10.0.2.9"]);
    s.groups.clear_calls();
    s.pass(&mut mem).await.unwrap();
    (s, mem)
}

/// A failover needs no read at all: the register goes out on the copy, and pglink's own
/// successful RegisterTargets vouches for the copy when the old target's removal comes due.
#[tokio::test(start_paused = true)]
async fn a_removal_right_after_its_own_registration_needs_no_read() {
    let (s, mut mem) = failed_over().await;
    let register = s.groups.calls();
    assert!(
        matches!(register.as_slice(), [Call::Register(_)]),
        "{register:?}"
    );
    // The health poll reads the group and finds both targets healthy.
    s.groups.set_state(key("10.0.1.5"), TargetState::Healthy);
    s.groups.set_state(key("10.0.2.9"), TargetState::Healthy);
    tokio::time::advance(HEALTH_POLL).await;
    let r = s.pass(&mut mem).await.unwrap();
    assert!(r.read_group);
    s.groups.clear_calls();
    tokio::time::advance(REMOVAL_DELAY - HEALTH_POLL).await;
    let r = s.pass(&mut mem).await.unwrap();
    assert_eq!(r.plan.deregister, vec![key("10.0.1.5")]);
    let deregister = s.groups.calls();
    assert!(
        matches!(deregister.as_slice(), [Call::Deregister(_)]),
        "{deregister:?}"
    );
}

/// Without a recent registration of its own to vouch for the copy, a removal reads first.
#[tokio::test(start_paused = true)]
async fn a_removal_long_after_the_registration_reads_first() {
    let (s, mut mem) = failed_over().await;
    tokio::time::advance(HEALTH_POLL).await;
    s.pass(&mut mem).await.unwrap();
    // DNS fails for longer than the vouch lasts: nothing may be removed meanwhile.
    s.resolver.fail(DnsFailure::Timeout);
    for _ in 0..3 {
        tokio::time::advance(VOUCH_WINDOW / 2).await;
        assert!(s.pass(&mut mem).await.is_err());
    }
    s.resolver.set(&["10.0.2.9"]);
    s.groups.clear_calls();
    let r = s.pass(&mut mem).await.unwrap();
    assert_eq!(r.plan.deregister, vec![key("10.0.1.5")]);
    let calls = s.groups.calls();
    assert!(
        matches!(calls.as_slice(), [Call::Read, Call::Deregister(_)]),
        "{calls:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn failed_registration_keeps_the_old_target() {
    let s = standard(&["10.0.1.5"]);
    let mut mem = Memory::default();
    s.pass(&mut mem).await.unwrap();
    s.resolver.set(&["10.0.2.9"]);
    for _ in 0..4 {
        s.groups
            .register_errors
            .lock()
            .unwrap()
            .push_back(AwsError::Throttled {
                op: "RegisterTargets",
                code: "Throttling".into(),
            });
        let err = s.pass(&mut mem).await.unwrap_err();
        assert_eq!(err.kind(), "throttled");
    }
    assert_eq!(s.groups.keys(), keys(&["10.0.1.5"]));
    assert!(!s
        .groups
        .calls()
        .iter()
        .any(|c| matches!(c, Call::Deregister(_))));
    // Once AWS answers again: in, then out after the delay.
    s.pass(&mut mem).await.unwrap();
    tokio::time::advance(REMOVAL_DELAY).await;
    s.pass(&mut mem).await.unwrap();
    assert_eq!(s.groups.keys(), keys(&["10.0.2.9"]));
}

#[tokio::test]
async fn dns_failures_change_nothing() {
    let s = standard(&["10.0.1.5"]);
    let mut mem = Memory::default();
    s.pass(&mut mem).await.unwrap();
    s.groups.clear_calls();
    for failure in [
        DnsFailure::Timeout,
        DnsFailure::ServFail,
        DnsFailure::NxDomain,
        DnsFailure::Empty,
    ] {
        s.resolver.fail(failure.clone());
        let err = s.pass(&mut mem).await.unwrap_err();
        assert!(err.is_dns(), "{err}");
        assert_eq!(err.kind(), failure.kind());
    }
    assert!(s.groups.calls().iter().all(|c| !c.is_mutating()));
    assert_eq!(s.groups.keys(), keys(&["10.0.1.5"]));
}

#[tokio::test]
async fn untagged_group_is_refused_unless_adopted() {
    let mut info = owned_group(ARN);
    info.tags = Some(Default::default());
    let s = syncer(
        FakeGroups::new(info.clone()),
        FakeResolver::new(&["10.0.1.5"]),
        false,
        false,
    );
    let err = s.pass(&mut Memory::default()).await.unwrap_err();
    assert_eq!(err.kind(), "not_owned");
    assert!(err.to_string().contains("adopt = true"), "{err}");
    assert_eq!(s.groups.calls(), vec![Call::Describe]);

    let s = syncer(
        FakeGroups::new(info),
        FakeResolver::new(&["10.0.1.5"]),
        true,
        false,
    );
    s.pass(&mut Memory::default()).await.unwrap();
    assert!(ownership::is_managed(
        &s.groups.info.lock().unwrap().tags.clone().unwrap()
    ));
    assert_eq!(s.groups.keys(), keys(&["10.0.1.5"]));
}

#[tokio::test]
async fn instance_target_groups_are_refused() {
    let mut info = owned_group(ARN);
    info.target_type = "instance".into();
    let s = syncer(
        FakeGroups::new(info),
        FakeResolver::new(&["10.0.1.5"]),
        false,
        false,
    );
    let err = s.pass(&mut Memory::default()).await.unwrap_err();
    assert_eq!(err.kind(), "unsupported_group");
}

#[tokio::test]
async fn dry_run_changes_nothing() {
    let s = syncer(
        FakeGroups::new(owned_group(ARN)),
        FakeResolver::new(&["10.0.1.5"]),
        false,
        true,
    );
    let r = s.pass(&mut Memory::default()).await.unwrap();
    assert_eq!(r.plan.register, vec![key("10.0.1.5")]);
    assert!(!r.applied);
    assert!(s.groups.calls().iter().all(|c| !c.is_mutating()));
}

#[tokio::test]
async fn out_of_vpc_addresses_are_sent_with_az_all() {
    let s = standard(&["192.168.7.20"]);
    s.pass(&mut Memory::default()).await.unwrap();
    let sent = s.groups.calls().into_iter().find_map(|c| match c {
        Call::Register(specs) => Some(specs),
        _ => None,
    });
    assert_eq!(sent.unwrap()[0].availability_zone, Some("all"));
}

#[tokio::test]
async fn draining_target_is_registered_again() {
    let s = standard(&["10.0.1.5"]);
    s.groups.set_state(key("10.0.1.5"), TargetState::Draining);
    let r = s.pass(&mut Memory::default()).await.unwrap();
    assert_eq!(r.plan.register, vec![key("10.0.1.5")]);
}

#[tokio::test]
async fn drift_is_repaired_at_drift_check() {
    let mut s = standard(&["10.0.1.5"]);
    s.settings.drift_check = Duration::from_millis(50);
    let mut mem = Memory::default();
    s.pass(&mut mem).await.unwrap();
    s.pass(&mut mem).await.unwrap();
    // Someone removes the target by hand; the cached copy still says it is there.
    s.groups.targets.lock().unwrap().clear();
    let r = s.pass(&mut mem).await.unwrap();
    assert!(
        r.plan.is_converged() && !r.read_group,
        "no read before drift_check"
    );
    tokio::time::sleep(Duration::from_millis(60)).await;
    let r = s.pass(&mut mem).await.unwrap();
    assert!(r.read_group);
    assert_eq!(r.plan.register, vec![key("10.0.1.5")]);
    assert_eq!(s.groups.keys(), keys(&["10.0.1.5"]));
}

/// `n` passes a second apart, forgetting the fake's record of calls and states.
async fn steady_passes(n: usize, s: &TestSyncer, mem: &mut Memory) {
    for _ in 0..n {
        s.pass(mem).await.unwrap();
        s.groups.clear_calls();
        s.groups.clear_history();
        tokio::time::advance(Duration::from_secs(1)).await;
    }
}

/// Failovers back and forth between two addresses, a minute apart (a failback sooner would
/// look like a rotating name): the new one is registered at once and the old one removed
/// after the removal delay, then passes find nothing to do.
async fn fail_over(rounds: std::ops::Range<usize>, s: &TestSyncer, mem: &mut Memory) {
    for i in rounds {
        let new = if i % 2 == 0 { "10.0.2.9" } else { "10.0.1.5" };
        s.resolver.set(&[new]);
        steady_passes(61, s, mem).await;
        assert_eq!(
            s.groups.keys(),
            keys(&[new]),
            "failover {i} did not complete"
        );
    }
}

/// Memory does not grow with passes: after a warm-up, a thousand steady passes (sixteen
/// drift checks among them), and then 200 failovers, leave the same bytes live on this
/// thread.
#[tokio::test(start_paused = true)]
async fn passes_do_not_grow_memory() {
    let s = standard(&["10.0.1.5"]);
    let mut mem = Memory::default();
    steady_passes(200, &s, &mut mem).await;
    let (live, allocated) = (alloc_count::live_bytes(), alloc_count::allocated_bytes());
    steady_passes(1000, &s, &mut mem).await;
    let churn = alloc_count::allocated_bytes() - allocated;
    let grown = alloc_count::live_bytes() - live;
    // The passes do allocate (labels, answers, reports): the counter sees this thread.
    assert!(
        churn > 100_000,
        "only {churn} bytes allocated: not counting"
    );
    assert_eq!(grown, 0, "1000 steady passes left {grown} bytes more live");
    eprintln!(
        "a steady pass allocates {} bytes and frees them all",
        churn / 1000
    );

    // Failing over back and forth between two addresses: register, confirm, deregister.
    fail_over(0..20, &s, &mut mem).await;
    let live = alloc_count::live_bytes();
    fail_over(20..220, &s, &mut mem).await;
    let grown = alloc_count::live_bytes() - live;
    assert_eq!(grown, 0, "200 failovers left {grown} bytes more live");
}

/// A public address in the answer (a publicly accessible database resolved outside its
/// VPC): one clear error, nothing sent to AWS, and backed off like an AWS error.
#[tokio::test]
async fn a_public_address_is_refused_and_changes_nothing() {
    let s = standard(&["10.0.1.5"]);
    let mut mem = Memory::default();
    s.pass(&mut mem).await.unwrap();
    s.groups.clear_calls();
    s.resolver.set(&["54.210.3.7"]);
    for _ in 0..3 {
        let err = s.pass(&mut mem).await.unwrap_err();
        assert_eq!(err.kind(), "public_address");
        let text = err.to_string();
        assert!(
            text.contains("54.210.3.7") && text.contains("VPC's resolver"),
            "{text}"
        );
        assert!(!err.is_dns(), "must back off, not retry at the DNS pace");
    }
    assert!(s.groups.calls().iter().all(|c| !c.is_mutating()));
    assert_eq!(s.groups.keys(), keys(&["10.0.1.5"]));
}

fn untagged_with(targets: &[&str]) -> FakeGroups {
    let mut info = owned_group(ARN);
    info.tags = Some(Default::default());
    let groups = FakeGroups::new(info);
    for t in targets {
        groups.set_state(key(t), TargetState::Healthy);
    }
    groups
}

/// `adopt = true`: what the group held when adopted stays, even across a restart (a new
/// memory reads the record from the group's tags); pglink's own addresses follow DNS.
#[tokio::test(start_paused = true)]
async fn adopting_keeps_the_targets_already_there_across_restarts() {
    let s = syncer(
        untagged_with(&["10.0.9.1", "10.0.9.2"]),
        FakeResolver::new(&["10.0.1.5"]),
        true,
        false,
    );
    let mut mem = s.memory();
    s.pass(&mut mem).await.unwrap();
    let tags = s.groups.info.lock().unwrap().tags.clone().unwrap();
    assert_eq!(
        ownership::kept_targets(&tags),
        keys(&["10.0.9.1", "10.0.9.2"])
    );
    for _ in 0..2 {
        s.resolver.set(&["10.0.2.9"]);
        for _ in 0..15 {
            s.pass(&mut mem).await.unwrap();
            tokio::time::advance(Duration::from_secs(1)).await;
        }
        assert_eq!(
            s.groups.keys(),
            keys(&["10.0.9.1", "10.0.9.2", "10.0.2.9"]),
            "pglink's old address goes, the adopted ones stay"
        );
        // Restart: the group is now tagged, and the record comes from its tags.
        mem = s.memory();
        s.resolver.set(&["10.0.1.5"]);
        for _ in 0..75 {
            s.pass(&mut mem).await.unwrap();
            tokio::time::advance(Duration::from_secs(1)).await;
        }
        assert_eq!(s.groups.keys(), keys(&["10.0.9.1", "10.0.9.2", "10.0.1.5"]));
    }
}

/// `adopt = "replace"`: the group is pglink's entirely; old targets go like stale ones.
#[tokio::test(start_paused = true)]
async fn adopting_with_replace_removes_what_was_there() {
    let mut s = syncer(
        untagged_with(&["10.0.9.1"]),
        FakeResolver::new(&["10.0.1.5"]),
        true,
        false,
    );
    s.target.adopt = crate::config::Adopt::Replace;
    let mut mem = s.memory();
    for _ in 0..12 {
        s.pass(&mut mem).await.unwrap();
        tokio::time::advance(Duration::from_secs(1)).await;
    }
    assert_eq!(s.groups.keys(), keys(&["10.0.1.5"]));
    let tags = s.groups.info.lock().unwrap().tags.clone().unwrap();
    assert!(ownership::kept_targets(&tags).is_empty());
}

/// The endpoint from RDS is asked again every `drift_check`: a new port is followed
/// without a restart, and a failed refresh keeps the last known endpoint.
#[tokio::test(start_paused = true)]
async fn the_rds_endpoint_is_refreshed_every_drift_check() {
    let mut s = standard(&["10.0.1.5"]);
    s.target.source = EndpointSource::DbInstance("analytics".into());
    let mut mem = s.memory();
    s.pass(&mut mem).await.unwrap();
    assert_eq!(
        s.groups.keys(),
        [TargetKey::new("10.0.1.5".parse().unwrap(), 5432)].into()
    );
    *s.discover.answer.lock().unwrap() = Some(Err(AwsError::Throttled {
        op: "DescribeDBInstances",
        code: "Throttling".into(),
    }));
    tokio::time::advance(Duration::from_secs(61)).await;
    s.pass(&mut mem)
        .await
        .expect("a failed refresh keeps the last endpoint");
    *s.discover.answer.lock().unwrap() = Some(Ok(DbEndpoint {
        address: "analytics.rds.test".into(),
        port: Some(6432),
        security_groups: vec![],
        members: vec![],
    }));
    tokio::time::advance(Duration::from_secs(30)).await;
    s.pass(&mut mem).await.unwrap();
    assert_eq!(
        *s.discover.calls.lock().unwrap(),
        2,
        "no refresh before drift_check"
    );
    tokio::time::advance(Duration::from_secs(31)).await;
    for _ in 0..12 {
        s.pass(&mut mem).await.unwrap();
        tokio::time::advance(Duration::from_secs(1)).await;
    }
    assert_eq!(
        s.groups.keys(),
        [TargetKey::new("10.0.1.5".parse().unwrap(), 6432)].into()
    );
}

/// A CIDR added to the VPC is read again with the drift check, so an address in it is no
/// longer sent with `AvailabilityZone=all` (which AWS rejects for an address in the VPC).
#[tokio::test(start_paused = true)]
async fn a_new_vpc_cidr_is_followed_without_a_restart() {
    let s = standard(&["10.0.1.5"]);
    let mut mem = s.memory();
    s.pass(&mut mem).await.unwrap();
    s.groups
        .info
        .lock()
        .unwrap()
        .vpc_cidrs
        .push("10.1.0.0/16".parse().unwrap());
    tokio::time::advance(Duration::from_secs(61)).await;
    s.pass(&mut mem).await.unwrap();
    s.resolver.set(&["10.1.0.7"]);
    s.groups.clear_calls();
    s.pass(&mut mem).await.unwrap();
    let register = s
        .groups
        .calls()
        .into_iter()
        .find_map(|c| match c {
            Call::Register(specs) => Some(specs),
            _ => None,
        })
        .expect("registered");
    assert_eq!(register[0].availability_zone, None, "{register:?}");
}

/// A registered target the NLB does not use is looked into once (its AZ against the NLB's)
/// and counted at once; one that stays unhealthy is counted after the grace.
#[tokio::test(start_paused = true)]
async fn targets_that_cannot_serve_are_counted_and_looked_into_once() {
    let s = standard(&["10.0.1.5"]);
    *s.groups.placement.lock().unwrap() = crate::target_state::Placement {
        zone: Some("us-east-1c".into()),
        load_balancer_zones: vec!["us-east-1a".into(), "us-east-1b".into()],
        has_load_balancer: true,
    };
    let mut mem = s.memory();
    s.pass(&mut mem).await.unwrap();
    let gauge = |problem: &str| {
        let line = format!("pglink_target_problems{{target=\"t\",problem=\"{problem}\"}} ");
        let text = s.metrics.encode();
        text.lines()
            .find_map(|l| l.strip_prefix(&line).map(str::to_string))
            .unwrap_or_else(|| panic!("no {line} in\n{text}"))
    };
    s.groups.set_state(key("10.0.1.5"), TargetState::Unused);
    for _ in 0..3 {
        tokio::time::advance(Duration::from_secs(61)).await;
        s.pass(&mut mem).await.unwrap();
        assert_eq!(gauge("unused"), "1");
    }
    let lookups = s
        .groups
        .calls()
        .iter()
        .filter(|c| **c == Call::Placement)
        .count();
    assert_eq!(lookups, 1, "looked into once while it stays unused");

    s.groups.set_state(key("10.0.1.5"), TargetState::Unhealthy);
    tokio::time::advance(Duration::from_secs(61)).await;
    s.pass(&mut mem).await.unwrap();
    assert_eq!(
        (gauge("unused"), gauge("unhealthy")),
        ("0".into(), "0".into())
    );
    tokio::time::advance(Duration::from_secs(61)).await;
    s.pass(&mut mem).await.unwrap();
    assert_eq!(gauge("unhealthy"), "1", "unhealthy past the grace");
    assert!(s
        .metrics
        .encode()
        .contains("pglink_target_states{target=\"t\",state=\"unhealthy\"} 1"));
}

#[test]
fn only_names_that_can_rotate_are_watched_for_rotation() {
    let mut s = standard(&["10.0.1.5"]);
    let window = Duration::from_secs(5);
    assert!(
        s.policy(window).detect_rotation,
        "db.test could be anything"
    );
    for source in [
        EndpointSource::Hostname("a.c9akciq32.us-east-1.rds.amazonaws.com".into()),
        EndpointSource::Hostname("o.cluster-c9akciq32.us-east-1.rds.amazonaws.com".into()),
        EndpointSource::DbInstance("a".into()),
        EndpointSource::DbCluster("o".into()),
    ] {
        s.target.source = source.clone();
        assert!(!s.policy(window).detect_rotation, "{source}");
    }
    s.target.source =
        EndpointSource::Hostname("p.proxy-c9akciq32.us-east-1.rds.amazonaws.com".into());
    assert!(s.policy(window).detect_rotation);
    assert_eq!(s.policy(window).removal_delay, Duration::from_secs(10));
    assert_eq!(
        s.policy(Duration::from_secs(3600)).removal_delay,
        Duration::from_secs(120),
        "a long TTL counts for at most a minute"
    );
}

/// In the daemon (first reads in line, tags possibly not at hand), a group that is not
/// pglink's still fails every pass once it can be checked, and is followed as soon as it
/// is tagged.
#[tokio::test]
async fn the_daemon_keeps_refusing_an_untagged_group_until_it_is_tagged() {
    let mut info = owned_group(ARN);
    info.tags = Some(Default::default());
    let s = syncer(
        FakeGroups::new(info),
        FakeResolver::new(&["10.0.1.5"]),
        false,
        false,
    );
    // Already in sync with DNS: no change would reveal the problem.
    s.groups.set_state(key("10.0.1.5"), TargetState::Healthy);
    let mut mem = s.daemon_memory();
    for _ in 0..3 {
        let err = s.pass(&mut mem).await.unwrap_err();
        assert_eq!(err.kind(), "not_owned", "{err}");
    }
    assert!(s.groups.calls().iter().all(|c| !c.is_mutating()));
    s.groups
        .info
        .lock()
        .unwrap()
        .tags
        .get_or_insert_default()
        .extend(ownership::ownership_tags("t"));
    let r = s.pass(&mut mem).await.unwrap();
    assert!(r.group_known);
    assert_eq!(s.groups.keys(), keys(&["10.0.1.5"]));
}

/// RDS refreshes take a token only when one is free: with the RDS budget spent, a due
/// refresh is put off and the pass answers from the known endpoint at once, so a large
/// fleet's refreshes never hold up DNS.
#[tokio::test(start_paused = true)]
async fn a_spent_rds_budget_never_holds_up_a_pass() {
    let mut s = standard(&["10.0.1.5"]);
    s.target.source = EndpointSource::DbInstance("db".into());
    s.budgets = Arc::new(Budgets {
        rds: Arc::new(crate::budget::Budget::new(0.001, 1.0)),
        ..Budgets::unlimited()
    });
    let mut mem = s.memory();
    s.pass(&mut mem).await.unwrap();
    tokio::time::advance(Duration::from_secs(61)).await;
    s.pass(&mut mem).await.unwrap(); // the one token: a refresh
    assert_eq!(*s.discover.calls.lock().unwrap(), 2);
    tokio::time::advance(Duration::from_secs(61)).await;
    let started = tokio::time::Instant::now();
    s.pass(&mut mem).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "the pass waited {:?} for an RDS token",
        started.elapsed()
    );
    assert_eq!(
        *s.discover.calls.lock().unwrap(),
        2,
        "the refresh was put off"
    );
}
