//! The daemon loop: one task per target, each running sync passes at `interval` with
//! jitter, backing off after AWS errors, and stopping when the shutdown token fires.
//!
//! One target's failure never delays another: tasks share nothing but the clients, the
//! rate budgets and the status board. A target's first read of its group waits in line
//! between passes, which go on meanwhile (see [`Syncer::daemon_memory`]); the turn, when it
//! comes, starts a pass at once. Each task carries a pulse that liveness reads.
//! On shutdown a pass in flight gets `grace` to finish its AWS calls; after that it is
//! dropped, which is safe because every pass starts from a fresh read.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::pulse::{self, Pulse};

use rand::Rng;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn, Instrument};

use crate::discover::Discover;
use crate::logging::join;
use crate::metrics::Metrics;
use crate::resolve::Resolve;
use crate::sync::{PassReport, SyncError, Syncer};
use crate::targets::TargetGroups;

/// How long an in-flight pass may run on after shutdown is requested.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Spread of each wait around `interval`, so that targets do not move in lock-step.
const JITTER: f64 = 0.1;

/// The latest known state of each target, shared with the HTTP server and logs.
#[derive(Debug, Clone, Default)]
pub struct TargetStatus {
    /// When the last pass ended, successful or not: the loop is ticking.
    pub last_pass: Option<Instant>,
    /// The loop's heartbeat, which also beats while a pass waits in line for a budget.
    pub pulse: Option<Arc<Pulse>>,
    /// A pass has resolved the name with the group described: a change would be
    /// registered at once, even before the group's first read.
    pub protected: bool,
    /// Start of the current run of failed passes.
    pub failing_since: Option<Instant>,
    pub passes: u64,
    pub successes: u64,
    pub consecutive_failures: u32,
    pub last_success: Option<SystemTime>,
    pub last_error: Option<String>,
    pub registered: usize,
    pub resolved: usize,
    pub converged: bool,
}

pub type StatusBoard = Arc<Mutex<BTreeMap<String, TargetStatus>>>;

/// The wait before the next pass. DNS failures keep the normal pace (the next answer may
/// be good, and resolving is cheap); AWS errors back off exponentially up to `max_backoff`.
pub fn next_delay(
    interval: Duration,
    max_backoff: Duration,
    failure: Option<&SyncError>,
    consecutive_failures: u32,
    jitter_unit: f64,
) -> Duration {
    let base = match failure {
        Some(e) if !e.is_dns() => {
            let factor = 2u32.saturating_pow(consecutive_failures.min(16));
            interval
                .saturating_mul(factor)
                .min(max_backoff)
                .max(interval)
        }
        _ => interval,
    };
    // jitter_unit in [0, 1) maps to [1 - JITTER, 1 + JITTER).
    base.mul_f64(1.0 - JITTER + 2.0 * JITTER * jitter_unit.clamp(0.0, 1.0))
}

/// Runs every target until `shutdown` fires, then waits for the tasks to wind down.
pub async fn run<G, R, D>(
    syncers: Vec<Syncer<G, R, D>>,
    board: StatusBoard,
    shutdown: CancellationToken,
) where
    G: TargetGroups,
    R: Resolve,
    D: Discover,
{
    let mut tasks = JoinSet::new();
    for syncer in syncers {
        // `target_name`, not `name`: JSON logs list a span's own name under "name".
        let span = tracing::info_span!("target", target_name = %syncer.target.name);
        let (board, shutdown) = (board.clone(), shutdown.clone());
        let pulse = Pulse::new();
        lock(&board)
            .entry(syncer.target.name.clone())
            .or_default()
            .pulse = Some(pulse.clone());
        tasks.spawn(
            pulse
                .carry(target_loop(syncer, board, shutdown))
                .instrument(span),
        );
    }
    while let Some(result) = tasks.join_next().await {
        if let Err(e) = result {
            error!(error = %e, "a target task ended abnormally");
        }
    }
}

/// Not an `async fn`: its arguments would be kept twice in the future (as arguments and as
/// locals), and the future lives as long as the daemon, once per target.
#[expect(
    clippy::manual_async_fn,
    reason = "an async fn keeps its arguments twice"
)]
fn target_loop<G, R, D>(
    syncer: Syncer<G, R, D>,
    board: StatusBoard,
    shutdown: CancellationToken,
) -> impl std::future::Future<Output = ()>
where
    G: TargetGroups,
    R: Resolve,
    D: Discover,
{
    async move {
        let name = syncer.target.name.clone();
        // Made here, in the order the tasks start: the first reads are served in config order.
        let mut memory = syncer.daemon_memory();
        let mut failures = 0u32;
        loop {
            let abandon = async {
                shutdown.cancelled().await;
                tokio::time::sleep(SHUTDOWN_GRACE).await;
            };
            let outcome = tokio::select! {
                outcome = syncer.pass(&mut memory) => outcome,
                () = abandon => {
                    warn!("shutdown: abandoned a pass still in flight after the grace period");
                    break;
                }
            };
            failures = if outcome.is_ok() {
                0
            } else {
                failures.saturating_add(1)
            };
            record(&board, &name, &outcome, failures);
            count(&syncer.metrics, &name, &outcome);
            log_outcome(&outcome, failures);
            let delay = next_delay(
                syncer.settings.interval,
                syncer.settings.max_backoff,
                outcome.as_ref().err(),
                failures,
                rand::rng().random::<f64>(),
            );
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = memory.first_read_turn() => {}
                () = shutdown.cancelled() => break,
            }
        }
        debug!("target loop stopped");
    }
}

fn lock(board: &StatusBoard) -> std::sync::MutexGuard<'_, BTreeMap<String, TargetStatus>> {
    board.lock().unwrap_or_else(|e| e.into_inner())
}

fn record(board: &StatusBoard, name: &str, outcome: &Result<PassReport, SyncError>, failures: u32) {
    let mut board = lock(board);
    let status = board.entry(name.to_string()).or_default();
    let now = pulse::now();
    status.last_pass = Some(now);
    pulse::beat();
    status.failing_since = match outcome {
        Ok(_) => None,
        Err(_) => status.failing_since.or(Some(now)),
    };
    status.passes += 1;
    status.consecutive_failures = failures;
    match outcome {
        Ok(report) => {
            status.protected = true;
            status.last_error = None;
            status.resolved = report.resolved.addresses.len();
            if report.group_known {
                status.successes += 1;
                status.last_success = Some(SystemTime::now());
                status.registered = report.registered.len();
                status.converged = report.plan.is_converged();
            }
        }
        Err(e) => status.last_error = Some(e.to_string()),
    }
}

fn count(metrics: &Metrics, name: &str, outcome: &Result<PassReport, SyncError>) {
    let result = outcome.as_ref().map_or_else(SyncError::kind, |_| "ok");
    metrics
        .syncs
        .get_or_create(&Metrics::result(name, result))
        .inc();
    let synced = outcome.as_ref().is_ok_and(|r| r.group_known);
    metrics
        .synced
        .get_or_create(&Metrics::target(name))
        .set(i64::from(synced));
    if synced {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        metrics
            .last_success
            .get_or_create(&Metrics::target(name))
            .set(now.as_secs_f64());
    }
}

fn log_outcome(outcome: &Result<PassReport, SyncError>, failures: u32) {
    match outcome {
        Ok(r) if r.plan.has_changes() || !r.plan.held.is_empty() => {
            for (key, hold) in &r.plan.held {
                info!(ip = %key.ip, port = key.port, hold = %hold, "keeping a target no longer in DNS");
            }
        }
        Ok(r) => {
            debug!(addresses = %join(&r.resolved.addresses), read_group = r.read_group, "in sync")
        }
        // Log the first failure and then every 10th, so a long outage does not flood logs.
        Err(e) if failures == 1 || failures.is_multiple_of(10) => {
            warn!(error = %e, kind = e.kind(), consecutive_failures = failures, "sync pass failed; nothing changed")
        }
        Err(e) => debug!(error = %e, consecutive_failures = failures, "sync pass failed"),
    }
}

#[cfg(test)]
mod tests;
