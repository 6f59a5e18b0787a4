//! `pglink drill`'s record: the steps of a forced failover, each as the time after the API
//! call that started it, and how they read as a table or JSON. Pure: the command
//! (`commands/drill.rs`) observes, this keeps the books.
//!
//! Who owns each step: RDS (the failover and its events, the DNS change: 60-120 s for a
//! Multi-AZ instance, under 35 s for a Multi-AZ DB cluster), pglink (registering the new
//! address once DNS shows it), the NLB (registration and health checks: minutes), pglink
//! again (removing the old address after the removal delay), and end to end the consumer's
//! path (a TCP connect, a `SELECT 1`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use crate::config::{EndpointSource, Members, Target};

/// What fails a target's database over: RebootDBInstance with ForceFailover for a Multi-AZ
/// instance, FailoverDBCluster for a cluster. Other targets (readers, custom endpoints,
/// proxies, hostnames) have no one database to fail over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failover {
    Instance(String),
    Cluster(String),
}

impl Failover {
    pub fn of(target: &Target) -> Option<Self> {
        match (&target.source, target.members) {
            (EndpointSource::DbInstance(id), _) => Some(Self::Instance(id.clone())),
            (EndpointSource::DbCluster(id), Members::Writer) => Some(Self::Cluster(id.clone())),
            _ => None,
        }
    }

    /// The API call, for people.
    pub fn call(&self) -> String {
        match self {
            Self::Instance(id) => format!("RebootDBInstance with ForceFailover on {id}"),
            Self::Cluster(id) => format!("FailoverDBCluster on {id}"),
        }
    }
}

/// One observable step of a failover, in the order they usually come.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// RDS lists a failover event for the database (best effort: may lag minutes).
    RdsFailoverStarted,
    /// RDS lists the failover as completed.
    RdsFailoverCompleted,
    /// The database's name answers a new address.
    DnsChanged,
    /// The new address is in the target group.
    Registered,
    /// The NLB reports the new target healthy.
    Healthy,
    /// The old address has left the target group (or is draining).
    OldRemoved,
    /// A TCP connection through the consumer's path succeeded after the DNS change.
    ProbeConnected,
    /// `SELECT 1` through the consumer's path answered after the DNS change.
    QueryAnswered,
}

impl Step {
    pub const ALL: [Step; 8] = [
        Step::RdsFailoverStarted,
        Step::RdsFailoverCompleted,
        Step::DnsChanged,
        Step::Registered,
        Step::Healthy,
        Step::OldRemoved,
        Step::ProbeConnected,
        Step::QueryAnswered,
    ];

    pub fn describe(self) -> &'static str {
        match self {
            Step::RdsFailoverStarted => "RDS reports the failover",
            Step::RdsFailoverCompleted => "RDS reports it completed",
            Step::DnsChanged => "DNS answers the new address",
            Step::Registered => "new address registered",
            Step::Healthy => "new target healthy",
            Step::OldRemoved => "old target removed",
            Step::ProbeConnected => "probe connects",
            Step::QueryAnswered => "SELECT 1 answers",
        }
    }

    /// A check through the consumer's path, asked for on the command line.
    pub fn is_probe(self) -> bool {
        matches!(self, Step::ProbeConnected | Step::QueryAnswered)
    }

    /// RDS's events: best effort, so they never fail a drill.
    pub fn informational(self) -> bool {
        matches!(self, Step::RdsFailoverStarted | Step::RdsFailoverCompleted)
    }

    /// Who the time of this step belongs to.
    pub fn owner(self) -> &'static str {
        match self {
            Step::RdsFailoverStarted | Step::RdsFailoverCompleted | Step::DnsChanged => "RDS",
            Step::Registered | Step::OldRemoved => "pglink",
            Step::Healthy => "NLB",
            Step::ProbeConnected | Step::QueryAnswered => "end to end",
        }
    }
}

/// When each wanted step was first seen, after the failover call.
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    wanted: Vec<Step>,
    seen: BTreeMap<Step, (Duration, String)>,
    /// Why a step not seen was not: the last failure of a probe, in its own words.
    last_errors: BTreeMap<Step, String>,
}

impl Timeline {
    /// Every step, with the probes asked for (`Step::ProbeConnected`, `Step::QueryAnswered`).
    pub fn new(probes: &[Step]) -> Self {
        Self {
            wanted: Step::ALL
                .into_iter()
                .filter(|s| !s.is_probe() || probes.contains(s))
                .collect(),
            seen: BTreeMap::new(),
            last_errors: BTreeMap::new(),
        }
    }

    /// Keeps why `step` has not been seen (shown only while it is not).
    pub fn last_error(&mut self, step: Step, error: impl Into<String>) {
        self.last_errors.insert(step, error.into());
    }

    /// The reason a step was not seen, if one is known.
    pub fn why_not(&self, step: Step) -> Option<&str> {
        match self.seen.contains_key(&step) {
            true => None,
            false => self.last_errors.get(&step).map(String::as_str),
        }
    }

    /// Records `step` at `after` unless it was seen already; true when it is new.
    pub fn see(&mut self, step: Step, after: Duration, detail: impl Into<String>) -> bool {
        if self.seen.contains_key(&step) || !self.wanted.contains(&step) {
            return false;
        }
        self.seen.insert(step, (after, detail.into()));
        true
    }

    pub fn has(&self, step: Step) -> bool {
        self.seen.contains_key(&step)
    }

    /// The wanted steps not seen yet.
    pub fn missing(&self) -> Vec<Step> {
        self.wanted
            .iter()
            .copied()
            .filter(|s| !self.seen.contains_key(s))
            .collect()
    }

    /// The steps not seen yet that decide the outcome: RDS's events are best effort (they
    /// may come minutes late, or not at all) and only inform.
    pub fn failed(&self) -> Vec<Step> {
        self.missing()
            .into_iter()
            .filter(|s| !s.informational())
            .collect()
    }

    pub fn done(&self) -> bool {
        self.missing().is_empty()
    }

    /// The table: one line per wanted step, its seconds after the call (or what is missing).
    pub fn table(&self) -> String {
        let mut out = format!(
            "{:<30} {:>9}  {:<10} {}\n",
            "step", "seconds", "owner", "detail"
        );
        for step in &self.wanted {
            let (seconds, detail) = match self.seen.get(step) {
                Some((after, detail)) => (format!("{:.1}", after.as_secs_f64()), detail.clone()),
                None => (
                    "-".to_string(),
                    match self.why_not(*step) {
                        Some(why) => format!("not seen within the timeout; last error: {why}"),
                        None => "not seen within the timeout".to_string(),
                    },
                ),
            };
            let _ = writeln!(
                out,
                "{:<30} {:>9}  {:<10} {}",
                step.describe(),
                seconds,
                step.owner(),
                detail
            );
        }
        out
    }

    /// One record per wanted step, `seconds` null when it was not seen.
    pub fn records(&self) -> Vec<serde_json::Value> {
        self.wanted
            .iter()
            .map(|step| {
                let seen = self.seen.get(step);
                serde_json::json!({
                    "step": step,
                    "description": step.describe(),
                    "owner": step.owner(),
                    "seconds": seen.map(|(after, _)| after.as_secs_f64()),
                    "detail": seen.map(|(_, detail)| detail.clone()),
                    "last_error": self.why_not(*step),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_recorded_once_and_missing_ones_named() {
        let mut t = Timeline::new(&[]);
        assert!(t.see(
            Step::DnsChanged,
            Duration::from_secs(61),
            "10.0.1.10 -> 10.0.2.20"
        ));
        assert!(!t.see(Step::DnsChanged, Duration::from_secs(70), "later"));
        assert!(!t.see(
            Step::ProbeConnected,
            Duration::from_secs(1),
            "not asked for"
        ));
        t.see(
            Step::Registered,
            Duration::from_millis(61_600),
            "10.0.2.20:5432",
        );
        assert_eq!(
            t.missing(),
            [
                Step::RdsFailoverStarted,
                Step::RdsFailoverCompleted,
                Step::Healthy,
                Step::OldRemoved
            ]
        );
        let table = t.table();
        assert!(table.contains("DNS answers the new address"), "{table}");
        assert!(table.contains("61.0"), "{table}");
        assert!(table.contains("61.6"), "{table}");
        assert!(!table.contains("probe"), "{table}");
        let records = t.records();
        assert_eq!(records.len(), 6);
        assert_eq!(records[2]["step"], "dns_changed");
        assert_eq!(records[2]["seconds"], 61.0);
        assert!(records[4]["seconds"].is_null());
        assert!(records[4]["last_error"].is_null());
    }

    #[test]
    fn a_probe_not_seen_shows_its_last_error_until_it_is() {
        let mut t = Timeline::new(&[Step::QueryAnswered]);
        assert!(!t.missing().contains(&Step::ProbeConnected));
        t.last_error(
            Step::QueryAnswered,
            "db error: FATAL: the database system is starting up",
        );
        let table = t.table();
        assert!(
            table.contains("SELECT 1 answers") && table.contains("last error: db error: FATAL"),
            "{table}"
        );
        assert_eq!(
            t.records()[6]["last_error"],
            "db error: FATAL: the database system is starting up"
        );
        t.see(
            Step::QueryAnswered,
            Duration::from_secs(9),
            "SELECT 1 as app@db:5432/app",
        );
        assert_eq!(t.why_not(Step::QueryAnswered), None);
        assert!(!t.table().contains("last error"));
    }

    #[test]
    fn done_once_every_wanted_step_is_seen() {
        let mut t = Timeline::new(&[Step::ProbeConnected, Step::QueryAnswered]);
        for (i, step) in Step::ALL.into_iter().enumerate() {
            assert!(!t.done());
            t.see(step, Duration::from_secs(i as u64), "");
        }
        assert!(t.done());
    }
}
