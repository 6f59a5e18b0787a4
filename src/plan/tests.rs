use super::*;

const PORT: u16 = 5432;
const SECOND: Duration = Duration::from_secs(1);
const POLICY: Policy = Policy {
    removal_delay: Duration::from_secs(10),
    rotation_hold: Duration::from_secs(900),
    detect_rotation: true,
};

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

fn keys(list: &[&str]) -> Vec<TargetKey> {
    list.iter().map(|k| key(k)).collect()
}

fn confirming(missing: u64) -> Hold {
    Hold::Confirming {
        missing_for: SECOND * missing as u32,
        needed: POLICY.removal_delay,
    }
}

/// A history in which `stale` has been missing for `for_secs` by `now`, the last answer
/// having named `last`.
fn missing(now: Instant, last: &[&str], stale: &[(&str, u64)]) -> History {
    History {
        missing_since: stale
            .iter()
            .map(|(k, s)| (key(k), now - SECOND * *s as u32))
            .collect(),
        last: keys(last).into_iter().collect(),
        ..History::default()
    }
}

struct Case {
    name: &'static str,
    observation: Observation,
    registered: Vec<Registered>,
    /// The previous answer and how long each stale target had been missing.
    before: (Vec<&'static str>, Vec<(&'static str, u64)>),
    register: Vec<TargetKey>,
    deregister: Vec<TargetKey>,
    held: Vec<(TargetKey, Hold)>,
}

#[test]
fn decision_table() {
    use TargetState::*;
    let cases = vec![
        Case {
            name: "initial registration",
            observation: answer(&["10.0.1.5"]),
            registered: vec![],
            before: (vec![], vec![]),
            register: keys(&["10.0.1.5"]),
            deregister: vec![],
            held: vec![],
        },
        Case {
            name: "converged",
            observation: answer(&["10.0.1.5"]),
            registered: healthy(&["10.0.1.5"]),
            before: (vec!["10.0.1.5"], vec![]),
            register: vec![],
            deregister: vec![],
            held: vec![],
        },
        Case {
            name: "failover: new one in, old one kept while confirming",
            observation: answer(&["10.0.2.9"]),
            registered: healthy(&["10.0.1.5"]),
            before: (vec!["10.0.1.5"], vec![]),
            register: keys(&["10.0.2.9"]),
            deregister: vec![],
            held: vec![(key("10.0.1.5"), confirming(0))],
        },
        Case {
            name: "failover: still confirming just before the delay",
            observation: answer(&["10.0.2.9"]),
            registered: healthy(&["10.0.1.5", "10.0.2.9"]),
            before: (vec!["10.0.2.9"], vec![("10.0.1.5", 9)]),
            register: vec![],
            deregister: vec![],
            held: vec![(key("10.0.1.5"), confirming(9))],
        },
        Case {
            name: "failover: old one out once missing for the delay and the new one is in",
            observation: answer(&["10.0.2.9"]),
            registered: reg(&[("10.0.1.5", Unhealthy), ("10.0.2.9", Initial)]),
            before: (vec!["10.0.2.9"], vec![("10.0.1.5", 10)]),
            register: vec![],
            deregister: keys(&["10.0.1.5"]),
            held: vec![],
        },
        Case {
            name: "a healthy old target goes all the same (an old writer may still answer)",
            observation: answer(&["10.0.2.9"]),
            registered: reg(&[("10.0.1.5", Healthy), ("10.0.2.9", Initial)]),
            before: (vec!["10.0.2.9"], vec![("10.0.1.5", 10)]),
            register: vec![],
            deregister: keys(&["10.0.1.5"]),
            held: vec![],
        },
        Case {
            name: "make before break: missing long enough but the new one did not register",
            observation: answer(&["10.0.2.9"]),
            registered: healthy(&["10.0.1.5"]),
            before: (vec!["10.0.2.9"], vec![("10.0.1.5", 60)]),
            register: keys(&["10.0.2.9"]),
            deregister: vec![],
            held: vec![(key("10.0.1.5"), Hold::AwaitingRegistration)],
        },
        Case {
            name: "unusable answer changes nothing",
            observation: Observation::Unusable,
            registered: healthy(&["10.0.1.5"]),
            before: (vec!["10.0.2.9"], vec![("10.0.1.5", 60)]),
            register: vec![],
            deregister: vec![],
            held: vec![],
        },
        Case {
            name: "empty answer is unusable",
            observation: answer(&[]),
            registered: healthy(&["10.0.1.5"]),
            before: (vec!["10.0.1.5"], vec![]),
            register: vec![],
            deregister: vec![],
            held: vec![],
        },
        Case {
            name: "draining counts as gone and is registered again",
            observation: answer(&["10.0.1.5"]),
            registered: reg(&[("10.0.1.5", Draining), ("10.0.2.9", Healthy)]),
            before: (vec!["10.0.2.9"], vec![]),
            register: keys(&["10.0.1.5"]),
            deregister: vec![],
            held: vec![(key("10.0.2.9"), confirming(0))],
        },
        Case {
            name: "a draining stale target is left to finish draining",
            observation: answer(&["10.0.2.9"]),
            registered: reg(&[("10.0.1.5", Draining), ("10.0.2.9", Healthy)]),
            before: (vec!["10.0.2.9"], vec![]),
            register: vec![],
            deregister: vec![],
            held: vec![],
        },
        Case {
            name: "same IP on another port is a different target",
            observation: answer(&["10.0.1.5"]),
            registered: healthy(&["10.0.1.5:6432", "10.0.1.5"]),
            before: (vec!["10.0.1.5"], vec![("10.0.1.5:6432", 30)]),
            register: vec![],
            deregister: keys(&["10.0.1.5:6432"]),
            held: vec![],
        },
        Case {
            name: "multi-address answer registers each and removes nothing early",
            observation: answer(&["10.0.1.5", "10.0.3.3"]),
            registered: healthy(&["10.0.1.5"]),
            before: (vec!["10.0.1.5"], vec![]),
            register: keys(&["10.0.3.3"]),
            deregister: vec![],
            held: vec![],
        },
        Case {
            name: "IPv6 targets",
            observation: answer(&["fd00::2"]),
            registered: healthy(&["[fd00::1]:5432"]),
            before: (vec!["fd00::2"], vec![("[fd00::1]:5432", 20)]),
            register: keys(&["[fd00::2]:5432"]),
            deregister: vec![],
            held: vec![(key("[fd00::1]:5432"), Hold::AwaitingRegistration)],
        },
    ];
    let now = Instant::now() + Duration::from_secs(3600);
    for c in cases {
        let history = missing(now, &c.before.0, &c.before.1);
        let (plan, _) = decide(&c.observation, PORT, &c.registered, &history, POLICY, now);
        assert_eq!(plan.register, c.register, "{}: register", c.name);
        assert_eq!(plan.deregister, c.deregister, "{}: deregister", c.name);
        assert_eq!(plan.held, c.held, "{}: held", c.name);
    }
}

#[test]
fn absence_is_timed_from_the_first_answer_without_the_address() {
    let t0 = Instant::now();
    let group = healthy(&["10.0.1.5", "10.0.2.9"]);
    let mut history = missing(t0, &["10.0.1.5"], &[]);
    let b = answer(&["10.0.2.9"]);
    // Ten passes a second apart inside what a cache serves as one answer: no removal.
    for s in 0..10 {
        let (plan, next) = decide(&b, PORT, &group, &history, POLICY, t0 + SECOND * s);
        assert!(plan.deregister.is_empty(), "removed after {s} s");
        history = next;
    }
    let (plan, _) = decide(&b, PORT, &group, &history, POLICY, t0 + SECOND * 10);
    assert_eq!(plan.deregister, keys(&["10.0.1.5"]));
}

#[test]
fn an_unusable_answer_neither_resets_nor_forgets_an_absence() {
    let t0 = Instant::now();
    let group = healthy(&["10.0.1.5", "10.0.2.9"]);
    let b = answer(&["10.0.2.9"]);
    let (_, h) = decide(
        &b,
        PORT,
        &group,
        &missing(t0, &["10.0.1.5"], &[]),
        POLICY,
        t0,
    );
    let (_, h) = decide(
        &Observation::Unusable,
        PORT,
        &group,
        &h,
        POLICY,
        t0 + SECOND * 5,
    );
    assert_eq!(
        h.missing_for(&key("10.0.1.5"), t0 + SECOND * 5),
        Some(SECOND * 5)
    );
    let (plan, _) = decide(&b, PORT, &group, &h, POLICY, t0 + SECOND * 10);
    assert_eq!(plan.deregister, keys(&["10.0.1.5"]));
}

#[test]
fn a_second_change_within_the_window_marks_the_name_rotating() {
    let t0 = Instant::now();
    let group = healthy(&["10.0.1.5", "10.0.2.9"]);
    let (a, b) = (answer(&["10.0.1.5"]), answer(&["10.0.2.9"]));
    let h = missing(t0, &["10.0.1.5", "10.0.2.9"], &[]);
    let (_, h) = decide(&a, PORT, &group, &h, POLICY, t0);
    assert!(
        !h.is_rotating(t0),
        "a first change is a failover until proven otherwise"
    );
    let (_, h) = decide(&b, PORT, &group, &h, POLICY, t0 + SECOND * 5);
    assert!(
        h.is_rotating(t0 + SECOND * 5),
        "the answer changed twice in 5 s"
    );
    // Now 10.0.1.5 stays away for 14 minutes: kept, as a rotating name's member.
    let (plan, _) = decide(&b, PORT, &group, &h, POLICY, t0 + SECOND * 14 * 60);
    assert!(plan.deregister.is_empty());
    assert!(plan.rotating && plan.is_converged(), "{plan:?}");
    assert!(matches!(plan.held[0].1, Hold::Rotating { .. }));
}

#[test]
fn a_failback_after_a_minute_is_a_failover_not_rotation() {
    let t0 = Instant::now();
    let (a, b) = (answer(&["10.0.1.5"]), answer(&["10.0.2.9"]));
    let h = missing(t0, &["10.0.1.5"], &[]);
    let (_, h) = decide(&b, PORT, &healthy(&["10.0.1.5"]), &h, POLICY, t0);
    let later = t0 + ROTATION_WINDOW + SECOND;
    let (_, h) = decide(&a, PORT, &healthy(&["10.0.2.9"]), &h, POLICY, later);
    assert!(!h.is_rotating(later));
    let (plan, _) = decide(
        &a,
        PORT,
        &healthy(&["10.0.1.5", "10.0.2.9"]),
        &h,
        POLICY,
        later + POLICY.removal_delay,
    );
    assert_eq!(plan.deregister, keys(&["10.0.2.9"]));
}

#[test]
fn a_change_through_three_members_is_rotation_before_any_removal() {
    let (states, removals) = simulate(
        &[
            answer(&["10.0.1.5"]),
            answer(&["10.0.2.9"]),
            answer(&["10.0.3.7"]),
            answer(&["10.0.3.7"]),
            answer(&["10.0.3.7"]),
            answer(&["10.0.3.7"]),
        ],
        SECOND * 5,
    );
    assert_eq!(removals, 0);
    assert_eq!(states.last().unwrap().len(), 3);
}

#[test]
fn a_name_that_cannot_rotate_treats_a_quick_failback_as_a_failover() {
    let policy = Policy {
        detect_rotation: false,
        ..POLICY
    };
    let t0 = Instant::now();
    let (a, b) = (answer(&["10.0.1.5"]), answer(&["10.0.2.9"]));
    let both = healthy(&["10.0.1.5", "10.0.2.9"]);
    let h = missing(t0, &["10.0.1.5"], &[]);
    let (_, h) = decide(&b, PORT, &both, &h, policy, t0);
    let (_, h) = decide(&a, PORT, &both, &h, policy, t0 + SECOND * 20);
    assert!(!h.is_rotating(t0 + SECOND * 20));
    let (plan, _) = decide(&a, PORT, &both, &h, policy, t0 + SECOND * 30);
    assert_eq!(plan.deregister, keys(&["10.0.2.9"]));
}

#[test]
fn rotation_ends_after_the_hold_without_a_change() {
    let t0 = Instant::now();
    let mut h = History {
        rotating_until: Some(t0 + POLICY.rotation_hold),
        ..History::default()
    };
    let group = healthy(&["10.0.1.5"]);
    (_, h) = decide(&answer(&["10.0.1.5"]), PORT, &group, &h, POLICY, t0);
    assert!(h.is_rotating(t0));
    let after = t0 + POLICY.rotation_hold;
    (_, h) = decide(&answer(&["10.0.1.5"]), PORT, &group, &h, POLICY, after);
    assert!(!h.is_rotating(after));
}

/// Walks answers `step` apart through repeated passes, applying each plan to a simulated
/// group, and checks the invariants on every step: never empty once filled, and nothing
/// removed that the current answer still names. Returns the group after each pass and the
/// number of removals.
fn simulate(answers: &[Observation], step: Duration) -> (Vec<BTreeSet<TargetKey>>, usize) {
    let mut group: BTreeSet<TargetKey> = BTreeSet::new();
    let mut history = History::default();
    let mut states = Vec::new();
    let mut removals = 0;
    let t0 = Instant::now();
    for (i, obs) in answers.iter().enumerate() {
        let registered: Vec<Registered> = group
            .iter()
            .map(|k| Registered {
                key: *k,
                state: TargetState::Healthy,
            })
            .collect();
        let now = t0 + step * i as u32;
        let (plan, next) = decide(obs, PORT, &registered, &history, POLICY, now);
        history = next;
        group.extend(plan.register.iter().copied());
        if let Observation::Addresses(a) = obs {
            for k in &plan.deregister {
                assert!(!a.contains(&k.ip), "removed {k} while DNS still names it");
            }
        }
        removals += plan.deregister.len();
        for k in &plan.deregister {
            group.remove(k);
        }
        if states.iter().any(|g: &BTreeSet<TargetKey>| !g.is_empty()) {
            assert!(!group.is_empty(), "group emptied after {obs:?}");
        }
        states.push(group.clone());
    }
    (states, removals)
}

#[test]
fn flapping_answers_never_remove_either_address() {
    let a = answer(&["10.0.1.5"]);
    let b = answer(&["10.0.2.9"]);
    let answers: Vec<Observation> = (0..600)
        .map(|i| {
            if (i / 3) % 2 == 0 {
                a.clone()
            } else {
                b.clone()
            }
        })
        .collect();
    let (states, removals) = simulate(&answers, SECOND * 5);
    // 15 s on one answer lets one removal through before the second change shows rotation.
    assert!(removals <= 1, "{removals} removals");
    let last = states.last().unwrap();
    assert_eq!(last, &keys(&["10.0.1.5", "10.0.2.9"]).into_iter().collect());
}

#[test]
fn random_rotation_costs_at_most_one_removal_over_ten_minutes() {
    use rand::{Rng, SeedableRng};
    let members = ["10.0.1.5", "10.0.2.9", "10.0.3.7"];
    for seed in 0..200 {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        // One pick per 5 s cache window, seen by a pass every second, for ten minutes.
        let answers: Vec<Observation> = (0..120)
            .flat_map(|_| {
                let pick = answer(&[members[rng.random_range(0..members.len())]]);
                std::iter::repeat_n(pick, 5)
            })
            .collect();
        let (_, removals) = simulate(&answers, SECOND);
        assert!(removals <= 1, "seed {seed}: {removals} removals");
    }
}

#[test]
fn three_failovers_converge_with_failures_in_between() {
    let a = answer(&["10.0.1.5"]);
    let b = answer(&["10.0.2.9"]);
    let bad = Observation::Unusable;
    // Passes a second apart; failovers more than a minute apart.
    let mut seq = Vec::new();
    let phases = [
        (&a, 70),
        (&b, 5),
        (&bad, 3),
        (&b, 70),
        (&a, 30),
        (&bad, 10),
        (&a, 40),
        (&b, 80),
    ];
    for (obs, secs) in phases {
        seq.extend(std::iter::repeat_n(obs.clone(), secs));
    }
    let (states, removals) = simulate(&seq, SECOND);
    assert_eq!(removals, 3);
    assert_eq!(
        states.last().unwrap(),
        &keys(&["10.0.2.9"]).into_iter().collect()
    );
}

#[test]
fn converged_means_no_changes_and_nothing_held() {
    let now = Instant::now();
    let h = missing(now, &["10.0.1.5"], &[]);
    let (plan, _) = decide(
        &answer(&["10.0.1.5"]),
        PORT,
        &healthy(&["10.0.1.5"]),
        &h,
        POLICY,
        now,
    );
    assert!(plan.is_converged());
    let (plan, _) = decide(
        &Observation::Unusable,
        PORT,
        &healthy(&["10.0.1.5"]),
        &h,
        POLICY,
        now,
    );
    assert!(!plan.is_converged());
    let group = healthy(&["10.0.1.5", "10.0.2.9"]);
    let (plan, _) = decide(&answer(&["10.0.2.9"]), PORT, &group, &h, POLICY, now);
    assert!(
        !plan.is_converged(),
        "a target held while confirming is not converged"
    );
}

#[test]
fn holds_read_as_plain_words() {
    assert_eq!(
        confirming(3).to_string(),
        "missing from DNS for 3.0s of 10.0s"
    );
    assert_eq!(Hold::LastTarget.to_string(), "it is the last target");
}
