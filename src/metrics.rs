//! Every metric pglink exports, in one place, Prometheus/OpenMetrics text via
//! prometheus-client. Names carry the `pglink_` prefix; counters get `_total` on export.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TargetLabel {
    pub target: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub target: String,
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabels {
    pub target: String,
    pub action: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    pub target: String,
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProblemLabels {
    pub target: String,
    pub problem: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabel {
    pub operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub operation: String,
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TargetInfoLabels {
    pub target: String,
    pub account: String,
    pub region: String,
    pub role: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    pub version: String,
    pub revision: String,
}

fn seconds_histogram() -> Histogram {
    // From a quick re-registration to the slow end of an NLB's registration process.
    Histogram::new([
        0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
    ])
}

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
    pub detection_to_registration: Family<TargetLabel, Histogram>,
    pub registration_to_healthy: Family<TargetLabel, Histogram>,
    pub aws_calls: Family<OperationLabel, Counter>,
    pub aws_errors: Family<ErrorLabels, Counter>,
    pub last_success: Family<TargetLabel, Gauge<f64, AtomicU64>>,
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

impl Metrics {
    pub fn new() -> Self {
        let mut r = Registry::with_prefix("pglink");
        let syncs = Family::<ResultLabels, Counter>::default();
        r.register(
            "syncs",
            "Sync passes by target and result (ok or the failure kind)",
            syncs.clone(),
        );
        let dns_answers = Family::<ResultLabels, Counter>::default();
        r.register(
            "dns_answers",
            "DNS resolutions by target and result",
            dns_answers.clone(),
        );
        let registered_targets = Family::<TargetLabel, Gauge>::default();
        r.register(
            "registered_targets",
            "Targets in the group at the last read",
            registered_targets.clone(),
        );
        let resolved_addresses = Family::<TargetLabel, Gauge>::default();
        r.register(
            "resolved_addresses",
            "Addresses in the last usable DNS answer",
            resolved_addresses.clone(),
        );
        let changes = Family::<ActionLabels, Counter>::default();
        r.register(
            "target_changes",
            "Targets registered or deregistered",
            changes.clone(),
        );
        let failovers = Family::<TargetLabel, Counter>::default();
        r.register(
            "failovers",
            "Address changes handled: a new address registered in place of another",
            failovers.clone(),
        );
        let detection_to_registration = Family::<TargetLabel, Histogram>::new_with_constructor(
            seconds_histogram as fn() -> Histogram,
        );
        r.register(
            "detection_to_registration_seconds",
            "From the first pass that saw a new address to its successful registration",
            detection_to_registration.clone(),
        );
        let registration_to_healthy = Family::<TargetLabel, Histogram>::new_with_constructor(
            seconds_histogram as fn() -> Histogram,
        );
        r.register(
            "registration_to_healthy_seconds",
            "From registering an address to the first read that reports it healthy",
            registration_to_healthy.clone(),
        );
        let aws_calls = Family::<OperationLabel, Counter>::default();
        r.register(
            "aws_api_calls",
            "AWS API calls by operation",
            aws_calls.clone(),
        );
        let aws_errors = Family::<ErrorLabels, Counter>::default();
        r.register(
            "aws_api_errors",
            "Failed AWS API calls by operation and kind",
            aws_errors.clone(),
        );
        let last_success = Family::<TargetLabel, Gauge<f64, AtomicU64>>::default();
        r.register(
            "last_successful_sync_timestamp_seconds",
            "Unix time of the last successful sync pass",
            last_success.clone(),
        );
        let target_states = Family::<StateLabels, Gauge>::default();
        r.register(
            "target_states",
            "Registered targets by ELB health state (healthy, initial, unhealthy, unused, draining, ...)",
            target_states.clone(),
        );
        let target_problems = Family::<ProblemLabels, Gauge>::default();
        r.register(
            "target_problems",
            "Registered targets that cannot serve: unused (AZ not enabled, no listener) or unhealthy past the grace",
            target_problems.clone(),
        );
        let target_infos = Family::<TargetInfoLabels, Gauge>::default();
        r.register(
            "target_info",
            "1 per target: its target group's account and region, and the role its calls are made as (empty: the daemon's own credentials)",
            target_infos.clone(),
        );
        let build = Family::<BuildLabels, Gauge>::default();
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION").into(),
                revision: env!("PGLINK_REVISION").into(),
            })
            .set(1);
        r.register("build_info", "pglink version and git revision", build);
        Self {
            registry: Arc::new(r),
            syncs,
            dns_answers,
            registered_targets,
            resolved_addresses,
            changes,
            failovers,
            detection_to_registration,
            registration_to_healthy,
            aws_calls,
            aws_errors,
            last_success,
            target_states,
            target_problems,
            target_infos,
        }
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
            .get_or_create(&OperationLabel {
                operation: operation.into(),
            })
            .inc();
        if let Some(kind) = error_kind {
            self.aws_errors
                .get_or_create(&ErrorLabels {
                    operation: operation.into(),
                    kind: kind.into(),
                })
                .inc();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_names_carry_the_prefix() {
        let m = Metrics::new();
        m.syncs.get_or_create(&Metrics::result("a", "ok")).inc();
        m.target_info("a", "123456789012", "us-east-1", "");
        m.aws_call("RegisterTargets", Some("throttled"));
        m.detection_to_registration
            .get_or_create(&Metrics::target("a"))
            .observe(0.4);
        let text = m.encode();
        for name in [
            "pglink_syncs_total{target=\"a\",result=\"ok\"} 1",
            "pglink_aws_api_calls_total{operation=\"RegisterTargets\"} 1",
            "pglink_aws_api_errors_total{operation=\"RegisterTargets\",kind=\"throttled\"} 1",
            "pglink_detection_to_registration_seconds_count{target=\"a\"} 1",
            "pglink_build_info{version=",
            concat!("revision=\"", env!("PGLINK_REVISION"), "\"} 1"),
            "pglink_target_info{target=\"a\",account=\"123456789012\",region=\"us-east-1\",role=\"\"} 1",
        ] {
            assert!(text.contains(name), "missing {name} in\n{text}");
        }
    }
}
