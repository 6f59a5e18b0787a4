//! The pure decision: given what DNS said and what the target group holds, what to change.
//!
//! No async, no I/O, no SDK types: everything here is table-tested. Time comes in as an
//! argument, so tests step it by hand.
//!
//! ```text
//!  DNS answer   registered (state)      missing for     action
//!  ----------   ---------------------   -------------   -----------------------------------
//!  {A}          {}                      -               register A
//!  {A}          {A}                     -               nothing (converged)
//!  {B}          {A}                     A: 0 s          register B; A kept (confirming)
//!  {B}          {A, B}                  A: >= delay     deregister A
//!  {B}          {A} (B register failed)  A: >= delay     nothing removed: B is not in yet
//!  {A}          {A (draining)}          -               register A (draining counts as gone)
//!  {B}          {A, A:6432}             ...             stale (ip, port) pairs are removed alike
//!  failure      {A}                     A: 3 s          nothing; A's absence keeps its start
//!  {}           {A}                     -               nothing: an empty answer is a failure
//!  {A} rotating {A, B}                  B: < 15 min     nothing: B is kept (union of answers)
//! ```
//!
//! Rules (design section 3): act only on a usable answer; make before break (an old target
//! goes only once every wanted target is registered); never remove the last target; compare
//! by (IP, port).
//!
//! Removal is decided in time, not in passes: through a caching resolver (the VPC's holds an
//! RDS answer for its 5 s TTL) several passes inside one TTL window are one answer seen
//! again. A stale target goes once it has been missing from every usable answer for
//! `removal_delay` (the caller makes it `confirmations` TTL windows).
//!
//! A name whose answers rotate (one address at random per query, as an Aurora reader
//! endpoint or a round-robin record) must never cost a live address its registration. An
//! answer that changes a second time within [`ROTATION_WINDOW`] marks the name as rotating:
//! from then on every address of recent answers is kept (each was registered when seen),
//! and one is removed only after `rotation_hold` without it. At most one removal can come
//! before rotation is seen (an address missing for `removal_delay` before the second
//! change). Names that cannot rotate (an RDS instance or cluster writer endpoint) skip
//! this: two failovers in a minute there (Aurora fails over in about 30 s) must each
//! remove the old writer.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// A target as ELBv2 identifies it: IP and port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TargetKey {
    pub ip: IpAddr,
    pub port: u16,
}

impl TargetKey {
    pub fn new(ip: IpAddr, port: u16) -> Self {
        Self { ip, port }
    }
}

impl fmt::Display for TargetKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ip {
            IpAddr::V4(ip) => write!(f, "{ip}:{}", self.port),
            IpAddr::V6(ip) => write!(f, "[{ip}]:{}", self.port),
        }
    }
}

/// ELBv2 target health states, as data (cf. aws-load-balancer-controller's predicates).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetState {
    Initial,
    Healthy,
    Unhealthy,
    Unused,
    Draining,
    Unavailable,
    Unknown,
}

impl TargetState {
    pub const ALL: [TargetState; 7] = [
        Self::Initial,
        Self::Healthy,
        Self::Unhealthy,
        Self::Unused,
        Self::Draining,
        Self::Unavailable,
        Self::Unknown,
    ];

    pub fn parse(s: &str) -> Self {
        match s {
            "initial" => Self::Initial,
            "healthy" => Self::Healthy,
            "unhealthy" | "unhealthy.draining" => Self::Unhealthy,
            "unused" => Self::Unused,
            "draining" => Self::Draining,
            "unavailable" => Self::Unavailable,
            _ => Self::Unknown,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Initial => "initial",
            Self::Healthy => "healthy",
            Self::Unhealthy => "unhealthy",
            Self::Unused => "unused",
            Self::Draining => "draining",
            Self::Unavailable => "unavailable",
            Self::Unknown => "unknown",
        }
    }

    /// A draining target is on its way out: it serves no new connections.
    pub fn is_draining(self) -> bool {
        self == Self::Draining
    }

    pub fn is_healthy(self) -> bool {
        self == Self::Healthy
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Registered {
    pub key: TargetKey,
    pub state: TargetState,
}

/// What this pass's DNS resolution gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observation {
    /// A successful answer. An empty set is treated as unusable.
    Addresses(BTreeSet<IpAddr>),
    /// Timeout, SERVFAIL, NXDOMAIN, ...: nothing may change because of it.
    Unusable,
}

/// An answer that changes twice within this long marks the name as rotating.
pub const ROTATION_WINDOW: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// How long a target must be missing from every usable answer before it is removed.
    pub removal_delay: Duration,
    /// The same for a name seen rotating: much longer, so rotation never removes.
    pub rotation_hold: Duration,
    /// False for names that cannot rotate (an RDS instance or writer endpoint): a quick
    /// failback there is a failover, and the old writer must go.
    pub detect_rotation: bool,
}

/// What one target's decisions remember between passes; carried by the caller.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    /// Registered targets missing from every usable answer since then.
    missing_since: BTreeMap<TargetKey, Instant>,
    /// When the answer last changed (for rotation).
    last_change: Option<Instant>,
    /// The targets the last usable answer named.
    last: BTreeSet<TargetKey>,
    /// The name counts as rotating until then.
    rotating_until: Option<Instant>,
}

impl History {
    /// How long `key` has been missing from the answers, if it is.
    pub fn missing_for(&self, key: &TargetKey, now: Instant) -> Option<Duration> {
        self.missing_since
            .get(key)
            .map(|since| now.saturating_duration_since(*since))
    }

    pub fn is_rotating(&self, now: Instant) -> bool {
        self.rotating_until.is_some_and(|until| now < until)
    }

    /// Notes this answer: a second change within [`ROTATION_WINDOW`] means rotation.
    fn observe(&self, desired: &BTreeSet<TargetKey>, policy: Policy, now: Instant) -> History {
        let changed = !self.last.is_empty() && self.last != *desired;
        let recent = |t: &Instant| now.saturating_duration_since(*t) <= ROTATION_WINDOW;
        let again = changed && self.last_change.as_ref().is_some_and(recent);
        let rotating_until = if !policy.detect_rotation {
            None
        } else if again {
            Some(now + policy.rotation_hold)
        } else {
            self.rotating_until.filter(|until| now < *until)
        };
        History {
            missing_since: BTreeMap::new(),
            last_change: if changed { Some(now) } else { self.last_change },
            last: desired.clone(),
            rotating_until,
        }
    }
}

/// Why a stale target stays registered for now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    /// Missing from the answers for `missing_for`; it goes after `needed`.
    Confirming {
        missing_for: Duration,
        needed: Duration,
    },
    /// The name rotates: kept until missing for `needed`.
    Rotating {
        missing_for: Duration,
        needed: Duration,
    },
    /// Make before break: a wanted target is not registered yet.
    AwaitingRegistration,
    /// Removing it would leave the group empty.
    LastTarget,
}

impl fmt::Display for Hold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = |d: &Duration| d.as_secs_f64();
        match self {
            Self::Confirming {
                missing_for,
                needed,
            } => write!(
                f,
                "missing from DNS for {:.1}s of {:.1}s",
                secs(missing_for),
                secs(needed)
            ),
            Self::Rotating {
                missing_for,
                needed,
            } => write!(
                f,
                "the name rotates: missing for {:.0}s of {:.0}s",
                secs(missing_for),
                secs(needed)
            ),
            Self::AwaitingRegistration => f.write_str("a new target is not registered yet"),
            Self::LastTarget => f.write_str("it is the last target"),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub register: Vec<TargetKey>,
    pub deregister: Vec<TargetKey>,
    /// Stale targets kept this pass, and why.
    pub held: Vec<(TargetKey, Hold)>,
    /// False when the answer was unusable and nothing was decided.
    pub acted_on_answer: bool,
    /// The name was seen rotating: recent answers are kept as a union.
    pub rotating: bool,
}

impl Plan {
    pub fn has_changes(&self) -> bool {
        !self.register.is_empty() || !self.deregister.is_empty()
    }

    /// Nothing to change and nothing waiting: the group matches DNS.
    /// A rotating name's kept addresses are part of its steady state, not a pending change.
    pub fn is_converged(&self) -> bool {
        let settled = |h: &Hold| matches!(h, Hold::Rotating { .. });
        self.acted_on_answer && !self.has_changes() && self.held.iter().all(|(_, h)| settled(h))
    }
}

/// The set difference by (IP, port), draining targets counted as gone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diff {
    pub missing: Vec<TargetKey>,
    pub stale: Vec<TargetKey>,
    pub present: Vec<TargetKey>,
}

pub fn diff(desired: &BTreeSet<TargetKey>, registered: &[Registered]) -> Diff {
    let active: BTreeSet<TargetKey> = registered
        .iter()
        .filter(|r| !r.state.is_draining())
        .map(|r| r.key)
        .collect();
    Diff {
        missing: desired.difference(&active).copied().collect(),
        stale: active.difference(desired).copied().collect(),
        present: active.intersection(desired).copied().collect(),
    }
}

pub fn desired_targets(addresses: &BTreeSet<IpAddr>, port: u16) -> BTreeSet<TargetKey> {
    addresses
        .iter()
        .map(|ip| TargetKey::new(*ip, port))
        .collect()
}

/// Decides this pass's changes and returns the history to carry to the next pass.
pub fn decide(
    observation: &Observation,
    port: u16,
    registered: &[Registered],
    history: &History,
    policy: Policy,
    now: Instant,
) -> (Plan, History) {
    let addresses = match observation {
        Observation::Addresses(a) if !a.is_empty() => a,
        _ => return (Plan::default(), history.clone()),
    };
    let desired = desired_targets(addresses, port);
    let d = diff(&desired, registered);
    let mut next = history.observe(&desired, policy, now);
    next.missing_since = d
        .stale
        .iter()
        .map(|k| (*k, history.missing_since.get(k).copied().unwrap_or(now)))
        .collect();
    let rotating = next.is_rotating(now);
    let needed = if rotating {
        policy.rotation_hold
    } else {
        policy.removal_delay
    };

    let mut plan = Plan {
        register: d.missing.clone(),
        acted_on_answer: true,
        rotating,
        ..Plan::default()
    };
    let mut removable = Vec::new();
    for key in &d.stale {
        let missing_for = next.missing_for(key, now).unwrap_or_default();
        if missing_for < needed {
            let hold = if rotating {
                Hold::Rotating {
                    missing_for,
                    needed,
                }
            } else {
                Hold::Confirming {
                    missing_for,
                    needed,
                }
            };
            plan.held.push((*key, hold));
        } else if !d.missing.is_empty() {
            plan.held.push((*key, Hold::AwaitingRegistration));
        } else {
            removable.push(*key);
        }
    }
    // `present` is non-empty whenever nothing is missing, so this guard is defence in depth.
    if d.present.is_empty() && !removable.is_empty() {
        plan.held
            .extend(removable.drain(..).map(|k| (k, Hold::LastTarget)));
    }
    plan.deregister = removable;
    (plan, next)
}

#[cfg(test)]
mod tests;
