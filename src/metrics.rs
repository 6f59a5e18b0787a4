//! Every metric pglink exports, in one place, Prometheus/OpenMetrics text via
//! prometheus-client. Names carry the `pglink_` prefix; counters get `_total` on export.
//!
//! Every series an alert needs exists from the daemon's start ([`Metrics::seed_target`]):
//! a counter that appears only at its first increment is invisible to `increase()`, and a
//! timestamp that appears only at the first success never looks stale.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::TypedMetric;
use prometheus_client::registry::Registry;

use crate::error::AwsError;
use crate::plan::TargetState;
use crate::resolve::DnsFailure;
use crate::sync::SyncError;
use crate::target_state::Problem;

mod labels;
pub use labels::*;

/// The AWS operations the daemon calls: their error counters exist from start.
pub const DAEMON_OPERATIONS: [&str; 14] = [
    "AddTags",
    "DeregisterTargets",
    "DescribeDBClusterEndpoints",
    "DescribeDBClusters",
    "DescribeDBInstances",
    "DescribeDBProxies",
    "DescribeDBProxyEndpoints",
    "DescribeLoadBalancers",
    "DescribeSubnets",
    "DescribeTags",
    "DescribeTargetGroups",
    "DescribeTargetHealth",
    "DescribeVpcs",
    "RegisterTargets",
];

/// From a quick re-registration to the slow end of an NLB's registration process.
fn phase_histogram() -> Histogram {
    Histogram::new([
        0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
    ])
}

/// An AWS call, retries included: the SDK's operation timeout is 15 s.
fn aws_call_histogram() -> Histogram {
    Histogram::new([0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0])
}

/// A DNS query: a resolver's cache answers in a millisecond, the `[dns] timeout` is 1 s.
fn dns_query_histogram() -> Histogram {
    Histogram::new([
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    ])
}

type Timestamp = Gauge<f64, AtomicU64>;

/// Handles to every metric; cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    pub syncs: Family<ResultLabels, Counter>,
    pub dns_answers: Family<ResultLabels, Counter>,
    pub registered_targets: Family<TargetLabel, Gauge>,
    pub resolved_addresses: Family<TargetLabel, Gauge>,
    pub changes: Family<ActionLabels, Counter>,
    pub failovers: Family<TargetLabel, Counter>,
    pub drift_repairs: Family<TargetLabel, Counter>,
    pub detection_to_registration: Family<TargetLabel, Histogram>,
    pub registration_to_healthy: Family<TargetLabel, Histogram>,
    pub detection_to_removal: Family<TargetLabel, Histogram>,
    pub aws_calls: Family<OperationLabel, Counter>,
    pub aws_errors: Family<ErrorLabels, Counter>,
    pub aws_call_duration: Family<OperationLabel, Histogram>,
    pub dns_query_duration: Histogram,
    pub last_success: Family<TargetLabel, Timestamp>,
    pub synced: Family<TargetLabel, Gauge>,
    pub target_states: Family<StateLabels, Gauge>,
    pub target_problems: Family<ProblemLabels, Gauge>,
    pub target_infos: Family<TargetInfoLabels, Gauge>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Registers `metric` under `name` and hands it back.
fn add<M>(r: &mut Registry, name: &str, help: &str, metric: M) -> M
where
    M: EncodeMetric + TypedMetric + Clone + Send + Sync + std::fmt::Debug + 'static,
{
    r.register(name, help, metric.clone());
    metric
}

fn family<L, M: Default>() -> Family<L, M>
where
    L: EncodeLabelSet + Clone + std::hash::Hash + Eq + std::fmt::Debug,
{
    Family::default()
}

fn histograms<L>(make: fn() -> Histogram) -> Family<L, Histogram, fn() -> Histogram>
where
    L: EncodeLabelSet + Clone + std::hash::Hash + Eq + std::fmt::Debug,
{
    Family::new_with_constructor(make)
}

/// Creates a series (at zero) without touching its value.
fn create<L, M, C>(family: &Family<L, M, C>, labels: &L)
where
    L: EncodeLabelSet + Clone + std::hash::Hash + Eq + std::fmt::Debug,
    M: TypedMetric,
    C: prometheus_client::metrics::family::MetricConstructor<M>,
{
    drop(family.get_or_create(labels));
}

impl Metrics {
    pub fn new() -> Self {
        let mut r = Registry::with_prefix("pglink");
        let build: Family<BuildLabels, Gauge> = add(
            &mut r,
            "build_info",
            "pglink version and git revision",
            family(),
        );
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION").into(),
                revision: env!("PGLINK_REVISION").into(),
            })
            .set(1);
        let r = &mut r;
        let m = Self {
            syncs: add(r, "syncs", "Sync passes by target and result (ok or the failure kind)", family()),
            dns_answers: add(r, "dns_answers", "DNS resolutions by target and result", family()),
            registered_targets: add(r, "registered_targets", "Targets in the group, after pglink's own changes", family()),
            resolved_addresses: add(r, "resolved_addresses", "Addresses in the last usable DNS answer", family()),
            changes: add(r, "target_changes", "Targets registered or deregistered", family()),
            failovers: add(r, "failovers", "DNS answer changes handled: a new address registered in place of another", family()),
            drift_repairs: add(r, "drift_repairs", "Addresses DNS still names registered again: the group had lost them (removed by hand or by another tool)", family()),
            detection_to_registration: add(r, "detection_to_registration_seconds", "From the first pass that saw a new address in DNS to its successful registration", histograms(phase_histogram)),
            registration_to_healthy: add(r, "registration_to_healthy_seconds", "From registering an address to the first read that reports it healthy (the NLB's part)", histograms(phase_histogram)),
            detection_to_removal: add(r, "detection_to_removal_seconds", "From the first pass that saw a change in DNS to the deregistration of the address it replaced (the removal delay included)", histograms(phase_histogram)),
            aws_calls: add(r, "aws_api_calls", "AWS API calls by operation", family()),
            aws_errors: add(r, "aws_api_errors", "Failed AWS API calls by operation and kind", family()),
            aws_call_duration: add(r, "aws_api_call_duration_seconds", "AWS API call latency by operation, SDK retries included", histograms(aws_call_histogram)),
            dns_query_duration: add(r, "dns_query_duration_seconds", "DNS query latency, answers and failures alike", dns_query_histogram()),
            last_success: add(r, "last_successful_sync_timestamp_seconds", "Unix time of the last successful sync pass with the group read; 0 until the first", family()),
            synced: add(r, "target_synced", "1 while the target's last pass succeeded with its group read, else 0", family()),
            target_states: add(r, "target_states", "Registered targets by ELB health state (healthy, initial, unhealthy, unused, draining, ...)", family()),
            target_problems: add(r, "target_problems", "Registered targets that cannot serve: unused (AZ not enabled, no listener) or unhealthy past the grace", family()),
            target_infos: add(r, "target_info", "1 per target: its target group's account and region, and the role its calls are made as (empty: the daemon's own credentials)", family()),
            registry: Arc::new(std::mem::take(r)),
        };
        for operation in DAEMON_OPERATIONS {
            create(&m.aws_calls, &OperationLabel::new(operation));
            create(&m.aws_call_duration, &OperationLabel::new(operation));
            for kind in AwsError::KINDS {
                create(&m.aws_errors, &ErrorLabels::new(operation, kind));
            }
        }
        m
    }

    /// Creates every per-target series at zero, so that alerts see the target from start.
    pub fn seed_target(&self, name: &str) {
        let target = Self::target(name);
        for result in std::iter::once("ok").chain(SyncError::kinds()) {
            create(&self.syncs, &Self::result(name, result));
        }
        for result in std::iter::once("ok").chain(DnsFailure::KINDS) {
            create(&self.dns_answers, &Self::result(name, result));
        }
        for action in ["register", "deregister"] {
            create(&self.changes, &Self::action(name, action));
        }
        for state in TargetState::ALL {
            create(&self.target_states, &StateLabels::new(name, state.as_str()));
        }
        for problem in Problem::ALL {
            create(
                &self.target_problems,
                &ProblemLabels::new(name, problem.as_str()),
            );
        }
        create(&self.registered_targets, &target);
        create(&self.resolved_addresses, &target);
        create(&self.failovers, &target);
        create(&self.drift_repairs, &target);
        create(&self.detection_to_registration, &target);
        create(&self.registration_to_healthy, &target);
        create(&self.detection_to_removal, &target);
        create(&self.last_success, &target);
        create(&self.synced, &target);
    }

    /// Records who and where a target's calls go to, for joins (`* on(target)`) in queries.
    pub fn target_info(&self, target: &str, account: &str, region: &str, role: &str) {
        self.target_infos
            .get_or_create(&TargetInfoLabels {
                target: target.into(),
                account: account.into(),
                region: region.into(),
                role: role.into(),
            })
            .set(1);
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    pub fn target(name: &str) -> TargetLabel {
        TargetLabel {
            target: name.to_string(),
        }
    }

    pub fn result(target: &str, result: &str) -> ResultLabels {
        ResultLabels {
            target: target.to_string(),
            result: result.to_string(),
        }
    }

    pub fn action(target: &str, action: &str) -> ActionLabels {
        ActionLabels {
            target: target.to_string(),
            action: action.to_string(),
        }
    }

    /// Counts one AWS call and, if it failed, its error kind.
    pub fn aws_call(&self, operation: &str, error_kind: Option<&str>) {
        self.aws_calls
            .get_or_create(&OperationLabel::new(operation))
            .inc();
        if let Some(kind) = error_kind {
            self.aws_errors
                .get_or_create(&ErrorLabels::new(operation, kind))
                .inc();
        }
    }

    /// Records how long one AWS operation took, retries included.
    pub fn aws_call_took(&self, operation: &str, seconds: f64) {
        self.aws_call_duration
            .get_or_create(&OperationLabel::new(operation))
            .observe(seconds);
    }
}

#[cfg(test)]
mod tests;
