//! `pglink sync`: bring every target to convergence once, then exit.
//!
//! A failover needs more than one pass (register, then deregister after `confirmations`
//! answers), so a target runs passes `interval` apart until it converges, fails, or has
//! had `confirmations + 2` passes. With `--dry-run` one pass is made and logged.

use std::path::PathBuf;

use tokio::task::JoinSet;
use tracing::{error, info, warn};

use super::{build_syncers, sync_command, Exit, RealSyncer};
use crate::config::LogFormat;
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
    let max_passes = syncer.settings.confirmations + 2;
    let mut memory = syncer.memory();
    for pass in 1..=max_passes {
        match syncer.pass(&mut memory).await {
            Ok(report) if report.plan.is_converged() => {
                info!(target_name = %name, addresses = ?report.resolved.addresses, "in sync");
                return Outcome::Converged;
            }
            Ok(_) if syncer.dry_run => return Outcome::DryRun,
            Ok(_) if pass < max_passes => tokio::time::sleep(syncer.settings.interval).await,
            Ok(_) => {}
            Err(e) => {
                error!(target_name = %name, error = %e, kind = e.kind(), "sync failed; nothing changed by this pass");
                return Outcome::Failed;
            }
        }
    }
    warn!(target_name = %name, passes = max_passes, "not converged yet; the next sync or the daemon finishes it");
    Outcome::NotConverged
}
