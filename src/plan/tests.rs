use super::*;

const PORT: u16 = 5432;
const POLICY: Policy = Policy { confirmations: 2 };

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn key(s: &str) -> TargetKey {
    match s.rsplit_once(':') {
        Some((ip_part, port)) if !ip_part.contains(':') || ip_part.starts_with('[') => {
            TargetKey::new(ip(ip_part.trim_matches(['[', ']'])), port.parse().unwrap())
        }
        _ => TargetKey::new(ip(s), PORT),
    }
}

fn answer(ips: &[&str]) -> Observation {
    Observation::Addresses(ips.iter().map(|s| ip(s)).collect())
}

fn reg(entries: &[(&str, TargetState)]) -> Vec<Registered> {
    entries
        .iter()
        .map(|(k, state)| Registered {
            key: key(k),
            state: *state,
        })
        .collect()
}

fn healthy(keys: &[&str]) -> Vec<Registered> {
    keys.iter()
        .map(|k| Registered {
            key: key(k),
            state: TargetState::Healthy,
        })
        .collect()
}

fn misses(entries: &[(&str, u32)]) -> Misses {
    Misses(entries.iter().map(|(k, n)| (key(k), *n)).collect())
}

fn keys(list: &[&str]) -> Vec<TargetKey> {
    list.iter().map(|k| key(k)).collect()
}

struct Case {
    name: &'static str,
    observation: Observation,
    registered: Vec<Registered>,
    misses_before: Misses,
    register: Vec<TargetKey>,
    deregister: Vec<TargetKey>,
    held: Vec<(TargetKey, Hold)>,
    misses_after: Misses,
}

#[test]
fn decision_table() {
    use TargetState::*;
    let cases = vec![
        Case {
            name: "initial registration",
            observation: answer(&["10.0.1.5"]),
            registered: vec![],
            misses_before: Misses::default(),
            register: keys(&["10.0.1.5"]),
            deregister: vec![],
            held: vec![],
            misses_after: Misses::default(),
        },
        Case {
            name: "converged",
            observation: answer(&["10.0.1.5"]),
            registered: healthy(&["10.0.1.5"]),
            misses_before: Misses::default(),
            register: vec![],
            deregister: vec![],
            held: vec![],
            misses_after: Misses::default(),
        },
        Case {
            name: "failover: new one in, old one kept while confirming",
            observation: answer(&["10.0.2.9"]),
            registered: healthy(&["10.0.1.5"]),
            misses_before: Misses::default(),
            register: keys(&["10.0.2.9"]),
            deregister: vec![],
            held: vec![(key("10.0.1.5"), Hold::Confirming { seen: 1, needed: 2 })],
            misses_after: misses(&[("10.0.1.5", 1)]),
        },
        Case {
            name: "failover: old one out once confirmed and the new one is in",
            observation: answer(&["10.0.2.9"]),
            registered: reg(&[("10.0.1.5", Unhealthy), ("10.0.2.9", Initial)]),
            misses_before: misses(&[("10.0.1.5", 1)]),
            register: vec![],
            deregister: keys(&["10.0.1.5"]),
            held: vec![],
            misses_after: misses(&[("10.0.1.5", 2)]),
        },
        Case {
            name: "make before break: confirmed but the new one did not register",
            observation: answer(&["10.0.2.9"]),
            registered: healthy(&["10.0.1.5"]),
            misses_before: misses(&[("10.0.1.5", 5)]),
            register: keys(&["10.0.2.9"]),
            deregister: vec![],
            held: vec![(key("10.0.1.5"), Hold::AwaitingRegistration)],
            misses_after: misses(&[("10.0.1.5", 6)]),
        },
        Case {
            name: "unusable answer changes nothing and keeps the count",
            observation: Observation::Unusable,
            registered: healthy(&["10.0.1.5"]),
            misses_before: misses(&[("10.0.1.5", 1)]),
            register: vec![],
            deregister: vec![],
            held: vec![],
            misses_after: misses(&[("10.0.1.5", 1)]),
        },
        Case {
            name: "empty answer is unusable",
            observation: answer(&[]),
            registered: healthy(&["10.0.1.5"]),
            misses_before: Misses::default(),
            register: vec![],
            deregister: vec![],
            held: vec![],
            misses_after: Misses::default(),
        },
        Case {
            name: "flap back: the returning address resets its count",
            observation: answer(&["10.0.1.5"]),
            registered: healthy(&["10.0.1.5", "10.0.2.9"]),
            misses_before: misses(&[("10.0.1.5", 1)]),
            register: vec![],
            deregister: vec![],
            held: vec![(key("10.0.2.9"), Hold::Confirming { seen: 1, needed: 2 })],
            misses_after: misses(&[("10.0.2.9", 1)]),
        },
        Case {
            name: "draining counts as gone and is registered again",
            observation: answer(&["10.0.1.5"]),
            registered: reg(&[("10.0.1.5", Draining), ("10.0.2.9", Healthy)]),
            misses_before: Misses::default(),
            register: keys(&["10.0.1.5"]),
            deregister: vec![],
            held: vec![(key("10.0.2.9"), Hold::Confirming { seen: 1, needed: 2 })],
            misses_after: misses(&[("10.0.2.9", 1)]),
        },
        Case {
            name: "a draining stale target is left to finish draining",
            observation: answer(&["10.0.2.9"]),
            registered: reg(&[("10.0.1.5", Draining), ("10.0.2.9", Healthy)]),
            misses_before: Misses::default(),
            register: vec![],
            deregister: vec![],
            held: vec![],
            misses_after: Misses::default(),
        },
        Case {
            name: "same IP on another port is a different target",
            observation: answer(&["10.0.1.5"]),
            registered: healthy(&["10.0.1.5:6432", "10.0.1.5"]),
            misses_before: misses(&[("10.0.1.5:6432", 3)]),
            register: vec![],
            deregister: keys(&["10.0.1.5:6432"]),
            held: vec![],
            misses_after: misses(&[("10.0.1.5:6432", 4)]),
        },
        Case {
            name: "multi-address answer registers each and removes nothing early",
            observation: answer(&["10.0.1.5", "10.0.3.3"]),
            registered: healthy(&["10.0.1.5"]),
            misses_before: Misses::default(),
            register: keys(&["10.0.3.3"]),
            deregister: vec![],
            held: vec![],
            misses_after: Misses::default(),
        },
        Case {
            name: "counts of targets no longer registered are dropped",
            observation: answer(&["10.0.2.9"]),
            registered: healthy(&["10.0.2.9"]),
            misses_before: misses(&[("10.0.1.5", 1)]),
            register: vec![],
            deregister: vec![],
            held: vec![],
            misses_after: Misses::default(),
        },
        Case {
            name: "IPv6 targets",
            observation: answer(&["fd00::2"]),
            registered: healthy(&["[fd00::1]:5432"]),
            misses_before: misses(&[("[fd00::1]:5432", 1)]),
            register: keys(&["[fd00::2]:5432"]),
            deregister: vec![],
            held: vec![(key("[fd00::1]:5432"), Hold::AwaitingRegistration)],
            misses_after: misses(&[("[fd00::1]:5432", 2)]),
        },
    ];
    for c in cases {
        let (plan, after) = decide(
            &c.observation,
            PORT,
            &c.registered,
            &c.misses_before,
            POLICY,
        );
        assert_eq!(plan.register, c.register, "{}: register", c.name);
        assert_eq!(plan.deregister, c.deregister, "{}: deregister", c.name);
        assert_eq!(plan.held, c.held, "{}: held", c.name);
        assert_eq!(after, c.misses_after, "{}: misses", c.name);
    }
}

#[test]
fn one_confirmation_removes_on_the_first_pass_after_the_new_target_is_in() {
    let policy = Policy { confirmations: 1 };
    let (plan, _) = decide(
        &answer(&["10.0.2.9"]),
        PORT,
        &healthy(&["10.0.1.5", "10.0.2.9"]),
        &Misses::default(),
        policy,
    );
    assert_eq!(plan.deregister, keys(&["10.0.1.5"]));
}

/// Walks a sequence of answers through repeated passes, applying each plan to a simulated
/// group, and checks the invariants on every step: never empty once filled, and nothing
/// removed that the current answer still names.
fn simulate(answers: &[Observation], confirmations: u32) -> Vec<BTreeSet<TargetKey>> {
    let policy = Policy { confirmations };
    let mut group: BTreeSet<TargetKey> = BTreeSet::new();
    let mut misses = Misses::default();
    let mut history = Vec::new();
    for obs in answers {
        let registered: Vec<Registered> = group
            .iter()
            .map(|k| Registered {
                key: *k,
                state: TargetState::Healthy,
            })
            .collect();
        let (plan, next) = decide(obs, PORT, &registered, &misses, policy);
        misses = next;
        group.extend(plan.register.iter().copied());
        if let Observation::Addresses(a) = obs {
            for k in &plan.deregister {
                assert!(!a.contains(&k.ip), "removed {k} while DNS still names it");
            }
        }
        for k in &plan.deregister {
            group.remove(k);
        }
        if history.iter().any(|g: &BTreeSet<TargetKey>| !g.is_empty()) {
            assert!(!group.is_empty(), "group emptied after {obs:?}");
        }
        history.push(group.clone());
    }
    history
}

#[test]
fn flapping_answers_never_remove_either_address() {
    let a = answer(&["10.0.1.5"]);
    let b = answer(&["10.0.2.9"]);
    let history = simulate(
        &[a.clone(), b.clone(), a.clone(), b.clone(), a.clone(), b],
        2,
    );
    let last = history.last().unwrap();
    assert_eq!(last, &keys(&["10.0.1.5", "10.0.2.9"]).into_iter().collect());
}

#[test]
fn three_failovers_converge_with_failures_in_between() {
    let a = answer(&["10.0.1.5"]);
    let b = answer(&["10.0.2.9"]);
    let bad = Observation::Unusable;
    let seq = [
        a.clone(),
        a.clone(),
        b.clone(),
        bad.clone(),
        b.clone(),
        b.clone(),
        a.clone(),
        bad.clone(),
        bad,
        a.clone(),
        a,
        b.clone(),
        b.clone(),
        b,
    ];
    let history = simulate(&seq, 2);
    assert_eq!(
        history.last().unwrap(),
        &keys(&["10.0.2.9"]).into_iter().collect()
    );
}

#[test]
fn converged_means_no_changes_and_nothing_held() {
    let (plan, _) = decide(
        &answer(&["10.0.1.5"]),
        PORT,
        &healthy(&["10.0.1.5"]),
        &Misses::default(),
        POLICY,
    );
    assert!(plan.is_converged());
    let (plan, _) = decide(
        &Observation::Unusable,
        PORT,
        &healthy(&["10.0.1.5"]),
        &Misses::default(),
        POLICY,
    );
    assert!(!plan.is_converged());
    let (plan, _) = decide(
        &answer(&["10.0.2.9"]),
        PORT,
        &healthy(&["10.0.1.5", "10.0.2.9"]),
        &Misses::default(),
        POLICY,
    );
    assert!(!plan.is_converged(), "a held target is not converged");
}
