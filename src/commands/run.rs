//! `pglink run`: the daemon. Runs until SIGTERM or SIGINT, then exits 0 within seconds.

use std::path::PathBuf;

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{build_syncers, load_for_sync, runtime, Exit};
use crate::config::{Config, LogFormat};
use crate::scheduler::{self, StatusBoard};

pub fn run(path: Option<PathBuf>, log_format: Option<LogFormat>) -> Exit {
    let config = match load_for_sync(path, log_format) {
        Ok(c) => c,
        Err(exit) => return exit,
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(exit) => return exit,
    };
    let shutdown = CancellationToken::new();
    rt.block_on(async {
        tokio::spawn(stop_on_signal(shutdown.clone()));
        daemon(config, shutdown).await
    })
}

/// The daemon itself, stopped by `shutdown`: `run` wires it to signals, the demo to its
/// own script.
pub async fn daemon(config: Config, shutdown: CancellationToken) -> Exit {
    let syncers = match build_syncers(&config, false).await {
        Ok(s) => s,
        Err(exit) => return exit,
    };
    info!(
        version = env!("CARGO_PKG_VERSION"),
        targets = syncers.len(),
        interval = %humantime::format_duration(config.sync.interval),
        drift_check = %humantime::format_duration(config.sync.drift_check),
        confirmations = config.sync.confirmations,
        "pglink daemon starting"
    );
    scheduler::run(syncers, StatusBoard::default(), shutdown).await;
    info!("pglink daemon stopped");
    Exit::Ok
}

/// First SIGTERM/SIGINT: stop gracefully. A second one: exit at once.
async fn stop_on_signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        warn!("could not install signal handlers; stop the daemon with SIGKILL");
        return;
    };
    tokio::select! {
        _ = term.recv() => info!(signal = "SIGTERM", "shutting down"),
        _ = int.recv() => info!(signal = "SIGINT", "shutting down"),
    }
    shutdown.cancel();
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    warn!("second signal: exiting now");
    std::process::exit(130);
}
