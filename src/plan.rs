//! The pure decision: given what DNS said and what the target group holds, what to change.
//!
//! No async, no I/O, no SDK types: everything here is table-tested.
//!
//! ```text
//!  DNS answer   registered (state)     misses before   action
//!  ----------   --------------------   -------------   ------------------------------------
//!  {A}          {}                     -               register A
//!  {A}          {A}                    -               nothing (converged)
//!  {B}          {A}                    A:0             register B; A missing 1/2, kept
//!  {B}          {A, B}                 A:1             A missing 2/2 -> deregister A
//!  {B}          {A} (B register failed) A:5            nothing removed: B is not in yet
//!  {A}          {A (draining)}         -               register A (draining counts as gone)
//!  {B}          {A, A:6432}            ...             stale (ip, port) pairs are removed alike
//!  failure      {A}                    A:1             nothing; misses unchanged
//!  {}           {A}                    -               nothing: an empty answer is a failure
//! ```
//!
//! Rules (design section 3): act only on a usable answer; make before break (an old target
//! goes only once every wanted target is registered and the old one has been missing from
//! `confirmations` consecutive answers); never remove the last target; compare by (IP, port).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Consecutive usable answers without a target before it is removed.
    pub confirmations: u32,
}

/// Per target: how many consecutive usable answers it has been missing from.
/// Carried from one pass to the next by the caller.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Misses(BTreeMap<TargetKey, u32>);

impl Misses {
    pub fn get(&self, key: &TargetKey) -> u32 {
        self.0.get(key).copied().unwrap_or(0)
    }
}

/// Why a stale target stays registered for now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    /// Missing from `seen` of the `needed` consecutive answers so far.
    Confirming { seen: u32, needed: u32 },
    /// Make before break: a wanted target is not registered yet.
    AwaitingRegistration,
    /// Removing it would leave the group empty.
    LastTarget,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub register: Vec<TargetKey>,
    pub deregister: Vec<TargetKey>,
    /// Stale targets kept this pass, and why.
    pub held: Vec<(TargetKey, Hold)>,
    /// False when the answer was unusable and nothing was decided.
    pub acted_on_answer: bool,
}

impl Plan {
    pub fn has_changes(&self) -> bool {
        !self.register.is_empty() || !self.deregister.is_empty()
    }

    /// Nothing to change and nothing waiting: the group matches DNS.
    pub fn is_converged(&self) -> bool {
        self.acted_on_answer && !self.has_changes() && self.held.is_empty()
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

/// Decides this pass's changes and returns the misses to carry to the next pass.
pub fn decide(
    observation: &Observation,
    port: u16,
    registered: &[Registered],
    misses: &Misses,
    policy: Policy,
) -> (Plan, Misses) {
    let addresses = match observation {
        Observation::Addresses(a) if !a.is_empty() => a,
        _ => return (Plan::default(), misses.clone()),
    };
    let d = diff(&desired_targets(addresses, port), registered);
    let next = Misses(d.stale.iter().map(|k| (*k, misses.get(k) + 1)).collect());

    let mut plan = Plan {
        register: d.missing.clone(),
        acted_on_answer: true,
        ..Plan::default()
    };
    let mut removable = Vec::new();
    for key in &d.stale {
        let seen = next.get(key);
        if seen < policy.confirmations {
            let hold = Hold::Confirming {
                seen,
                needed: policy.confirmations,
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
