//! `pglink sync`: bring every target to convergence once, then exit.
//!
//! A failover needs more than one pass (register, then deregister once the old address has
//! been missing from DNS for the removal delay), so a target runs passes `interval` apart
//! until it converges, fails, or the removal delay and two more passes have gone by. With
//! `--dry-run` one pass is made and logged.

use std::path::PathBuf;

use tokio::task::JoinSet;
use tracing::{error, info, warn};

use super::{build_syncers, sync_command, Exit, RealSyncer};
use crate::config::LogFormat;
use crate::logging::join;
use crate::metrics::Metrics;

#[derive(Debug)]
enum Outcome {
    Converged,
    DryRun,
    NotConverged,
    Failed,
}

pub fn sync_once(path: Option<PathBuf>, log_format: Option<LogFormat>, dry_run: bool) -> Exit {
    sync_command(path, log_format, async |config| {
        let syncers = match build_syncers(&config, dry_run, &Metrics::new()).await {
            Ok(s) => s,
            Err(exit) => return exit,
        };
        let mut tasks = JoinSet::new();
        for syncer in syncers {
            tasks.spawn(converge(syncer));
        }
        let mut all_ok = true;
        while let Some(result) = tasks.join_next().await {
            all_ok &= matches!(result, Ok(Outcome::Converged | Outcome::DryRun));
        }
        if all_ok {
            Exit::Ok
        } else {
            Exit::Failed
        }
    })
}

async fn converge(syncer: RealSyncer) -> Outcome {
    let name = syncer.target.name.clone();
    let mut memory = syncer.memory();
    let started = tokio::time::Instant::now();
    let mut passes = 0;
    loop {
        passes += 1;
        match syncer.pass(&mut memory).await {
            Ok(report) if report.plan.is_converged() => {
                info!(target_name = %name, addresses = %join(&report.resolved.addresses), "in sync");
                return Outcome::Converged;
            }
            Ok(_) if syncer.dry_run => return Outcome::DryRun,
            Ok(report) => {
                let limit =
                    syncer.policy(report.resolved.ttl).removal_delay + syncer.settings.interval * 2;
                if started.elapsed() >= limit {
                    break;
                }
                tokio::time::sleep(syncer.settings.interval).await;
            }
            Err(e) => {
                error!(target_name = %name, error = %e, kind = e.kind(), "sync failed; nothing changed by this pass");
                return Outcome::Failed;
            }
        }
    }
    warn!(target_name = %name, passes, "not converged yet; the next sync or the daemon finishes it");
    Outcome::NotConverged
}
