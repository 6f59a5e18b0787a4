//! Watching what the NLB reports for registered targets: a target that is registered but can
//! never serve must be said at once, not counted as converged. Pure: the caller reads the
//! group, this decides what to report and when.
//!
//! - `unused` (`Target.NotInUse`): the target is in an Availability Zone the load balancer is
//!   not enabled in, or no load balancer uses the group. The NLB routes nothing to it, so
//!   after a failover into that AZ the consumer is cut off. Reported at once.
//! - `unhealthy` for longer than [`UNHEALTHY_GRACE`]: the NLB's health checks fail, most
//!   often because the database's security group does not admit the NLB's. The first
//!   checks may fail while the database settles, so it is reported after a grace.
//!
//! Target states and reason codes:
//! <https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_TargetHealth.html>;
//! health checks: <https://docs.aws.amazon.com/elasticloadbalancing/latest/network/target-group-health-checks.html>.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::{Duration, Instant};

use crate::plan::{Registered, TargetKey, TargetState};

/// How long a target may stay `unhealthy` before it is reported: a few health-check rounds
/// (an NLB checks every 5 to 30 s and needs 2 to 10 failures to mark a target unhealthy).
pub const UNHEALTHY_GRACE: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Problem {
    Unused,
    Unhealthy,
}

impl Problem {
    pub const ALL: [Problem; 2] = [Problem::Unused, Problem::Unhealthy];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unused => "unused",
            Self::Unhealthy => "unhealthy",
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one target's reads have shown so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateWatch {
    unhealthy_since: BTreeMap<TargetKey, Instant>,
    /// Problems already reported, so each is said once until it clears.
    reported: BTreeSet<(TargetKey, Problem)>,
}

impl StateWatch {
    /// Notes a fresh read; returns the problems to report now (each once until it clears).
    pub fn observe(&mut self, targets: &[Registered], now: Instant) -> Vec<(TargetKey, Problem)> {
        self.unhealthy_since.retain(|k, _| {
            targets
                .iter()
                .any(|t| t.key == *k && t.state == TargetState::Unhealthy)
        });
        for t in targets.iter().filter(|t| t.state == TargetState::Unhealthy) {
            self.unhealthy_since.entry(t.key).or_insert(now);
        }
        let current = self.current(targets, now);
        self.reported.retain(|p| current.contains(p));
        current
            .into_iter()
            .filter(|p| self.reported.insert(*p))
            .collect()
    }

    /// The problems that hold at this read.
    pub fn current(&self, targets: &[Registered], now: Instant) -> Vec<(TargetKey, Problem)> {
        targets
            .iter()
            .filter_map(|t| match t.state {
                TargetState::Unused => Some((t.key, Problem::Unused)),
                TargetState::Unhealthy => self
                    .unhealthy_since
                    .get(&t.key)
                    .filter(|since| now.saturating_duration_since(**since) >= UNHEALTHY_GRACE)
                    .map(|_| (t.key, Problem::Unhealthy)),
                _ => None,
            })
            .collect()
    }
}

/// Where an `unused` target stands, as far as AWS tells.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Placement {
    /// The AZ of the VPC subnet that holds the address (none outside the VPC).
    pub zone: Option<String>,
    /// The AZs of the load balancers that use the group.
    pub load_balancer_zones: Vec<String>,
    /// False when no load balancer uses the group.
    pub has_load_balancer: bool,
}

/// The cause and the fix, in words, for an `unused` target.
pub fn unused_advice(p: &Placement) -> String {
    if !p.has_load_balancer {
        return "no load balancer uses the target group: add a listener on the NLB that forwards to it".into();
    }
    match &p.zone {
        Some(zone) if !p.load_balancer_zones.contains(zone) => format!(
            "it is in {zone}, where the NLB is not enabled (enabled: {}): add a subnet in {zone} to the NLB (pglink bootstrap enables every AZ of the DB subnet group)",
            p.load_balancer_zones.join(", ")
        ),
        _ => "the NLB does not route to it (Target.NotInUse): check that the NLB is enabled in the database's Availability Zone".into(),
    }
}

/// The likely cause and the fix for a target that stays `unhealthy`.
pub fn unhealthy_advice(port: u16, security_groups: &[String]) -> String {
    let groups = if security_groups.is_empty() {
        "the database's security group".to_string()
    } else {
        format!(
            "the database's security group ({})",
            security_groups.join(", ")
        )
    };
    format!("the NLB's health checks fail: check that {groups} admits the NLB's security group on TCP {port}, and that the database listens there")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ip: &str, state: TargetState) -> Registered {
        Registered {
            key: TargetKey::new(ip.parse().unwrap(), 5432),
            state,
        }
    }

    #[test]
    fn unused_is_reported_at_once_and_once() {
        let mut w = StateWatch::default();
        let t0 = Instant::now();
        let targets = [at("10.0.1.5", TargetState::Unused)];
        assert_eq!(w.observe(&targets, t0).len(), 1);
        assert!(w.observe(&targets, t0 + Duration::from_secs(5)).is_empty());
        // Cleared, then back: reported again.
        w.observe(
            &[at("10.0.1.5", TargetState::Healthy)],
            t0 + Duration::from_secs(10),
        );
        assert_eq!(w.observe(&targets, t0 + Duration::from_secs(15)).len(), 1);
    }

    #[test]
    fn unhealthy_is_reported_after_the_grace_only() {
        let mut w = StateWatch::default();
        let t0 = Instant::now();
        let sick = [at("10.0.1.5", TargetState::Unhealthy)];
        assert!(w
            .observe(&[at("10.0.1.5", TargetState::Initial)], t0)
            .is_empty());
        assert!(w.observe(&sick, t0 + Duration::from_secs(5)).is_empty());
        assert!(w.observe(&sick, t0 + Duration::from_secs(64)).is_empty());
        let found = w.observe(&sick, t0 + Duration::from_secs(65));
        assert_eq!(found, vec![(sick[0].key, Problem::Unhealthy)]);
        // A healthy read in between restarts the grace.
        w.observe(
            &[at("10.0.1.5", TargetState::Healthy)],
            t0 + Duration::from_secs(70),
        );
        assert!(w.observe(&sick, t0 + Duration::from_secs(75)).is_empty());
        assert!(w.current(&sick, t0 + Duration::from_secs(80)).is_empty());
    }

    #[test]
    fn advice_names_the_zone_or_the_missing_listener() {
        let p = Placement {
            zone: Some("us-east-1c".into()),
            load_balancer_zones: vec!["us-east-1a".into(), "us-east-1b".into()],
            has_load_balancer: true,
        };
        let text = unused_advice(&p);
        assert!(
            text.contains("in us-east-1c, where the NLB is not enabled"),
            "{text}"
        );
        assert!(text.contains("us-east-1a, us-east-1b"), "{text}");
        let none = Placement::default();
        assert!(unused_advice(&none).contains("no load balancer uses"));
        let text = unhealthy_advice(5432, &["sg-0db".into()]);
        assert!(
            text.contains("(sg-0db)") && text.contains("TCP 5432"),
            "{text}"
        );
    }
}
