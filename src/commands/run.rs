//! `pglink run`: the daemon. Runs until SIGTERM or SIGINT, then exits 0 within seconds.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use tokio::net::TcpListener;

use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use super::{build_syncers, sync_command, Exit};
use crate::config::{Config, LogFormat};
use crate::health;
use crate::metrics::Metrics;
use crate::notify::Notifier;
use crate::scheduler::{self, StatusBoard};
use crate::server::{self, ServerState};

pub fn run(path: Option<PathBuf>, log_format: Option<LogFormat>) -> Exit {
    sync_command(path, log_format, async |config| {
        let shutdown = CancellationToken::new();
        tokio::spawn(stop_on_signal(shutdown.clone()));
        daemon(config, shutdown).await
    })
}

/// The daemon itself, stopped by `shutdown`: `run` wires it to signals, the demo to its
/// own script. Serves the HTTP endpoints and talks to systemd when started by it.
///
/// Start-up is bounded whatever the target count: the server listens first (so `/healthz`
/// answers during start-up), then the groups are described in a few batched calls, then
/// READY=1 goes to systemd and the target loops start. Reading every group's targets comes
/// after, in line under the Describe budget; `/readyz` says which have not been read yet.
pub async fn daemon(config: Config, shutdown: CancellationToken) -> Exit {
    let metrics = Metrics::new();
    for target in &config.targets {
        metrics.seed_target(&target.name);
    }
    let listener = match TcpListener::bind(config.server.listen).await {
        Ok(l) => l,
        Err(e) => {
            error!(listen = %config.server.listen, error = %e, "server.listen: cannot listen");
            return Exit::Failed;
        }
    };
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let board = StatusBoard::default();
    let state = Arc::new(ServerState {
        board: board.clone(),
        metrics: metrics.clone(),
        targets: config.targets.iter().map(|t| t.name.clone()).collect(),
        started: crate::pulse::now(),
        stall_after: health::stall_after(config.sync.interval, config.sync.max_backoff),
        not_ready_after: config.server.not_ready_after,
    });
    let server_stop = CancellationToken::new();
    let server = tokio::spawn(server::serve(listener, state.clone(), server_stop.clone()));
    let started = Instant::now();
    let syncers = tokio::select! {
        built = build_syncers(&config, false, &metrics) => built,
        () = shutdown.cancelled() => Err(Exit::Ok),
    };
    let syncers = match syncers {
        Ok(s) => s,
        Err(exit) => {
            server_stop.cancel();
            let _ = server.await;
            return exit;
        }
    };
    info!(
        version = env!("CARGO_PKG_VERSION"),
        targets = syncers.len(),
        described = syncers.iter().filter(|s| s.prefetched.is_some()).count(),
        startup_ms = started.elapsed().as_millis() as u64,
        interval = %humantime::format_duration(config.sync.interval),
        drift_check = %humantime::format_duration(config.sync.drift_check),
        confirmations = config.sync.confirmations,
        http = %addr,
        "pglink daemon starting"
    );
    let notifier = Notifier::from_env();
    notifier.ready(&format!(
        "following {} targets; /readyz tells which are synced",
        syncers.len()
    ));
    let supervisor = tokio::spawn(watchdog(notifier.clone(), state, shutdown.clone()));
    scheduler::run(syncers, board, shutdown).await;
    notifier.stopping();
    supervisor.abort();
    server_stop.cancel();
    let _ = server.await;
    info!("pglink daemon stopped");
    Exit::Ok
}

/// WATCHDOG=1 while every target loop is live (ticking, or waiting in a moving line).
async fn watchdog(notifier: Notifier, state: Arc<ServerState>, shutdown: CancellationToken) {
    let Some(period) = notifier.watchdog_period() else {
        return;
    };
    loop {
        tokio::select! {
            () = tokio::time::sleep(period) => {}
            () = shutdown.cancelled() => return,
        }
        let live = state.liveness();
        if live.ok {
            notifier.watchdog();
        } else {
            warn!(detail = %live.detail.trim_end(), "a target loop is stalled: withholding the systemd watchdog ping");
        }
    }
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
