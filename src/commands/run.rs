//! `pglink run`: the daemon. Runs until SIGTERM or SIGINT, then exits 0 within seconds.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

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
pub async fn daemon(config: Config, shutdown: CancellationToken) -> Exit {
    let metrics = Metrics::new();
    let listener = match TcpListener::bind(config.server.listen).await {
        Ok(l) => l,
        Err(e) => {
            error!(listen = %config.server.listen, error = %e, "server.listen: cannot listen");
            return Exit::Failed;
        }
    };
    let syncers = match build_syncers(&config, false, &metrics).await {
        Ok(s) => s,
        Err(exit) => return exit,
    };
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    info!(
        version = env!("CARGO_PKG_VERSION"),
        targets = syncers.len(),
        interval = %humantime::format_duration(config.sync.interval),
        drift_check = %humantime::format_duration(config.sync.drift_check),
        confirmations = config.sync.confirmations,
        http = %addr,
        "pglink daemon starting"
    );
    let board = StatusBoard::default();
    let state = Arc::new(ServerState {
        board: board.clone(),
        metrics,
        targets: config.targets.iter().map(|t| t.name.clone()).collect(),
        started: Instant::now(),
        stall_after: health::stall_after(config.sync.interval, config.sync.max_backoff),
        not_ready_after: config.server.not_ready_after,
    });
    let notifier = Notifier::from_env();
    let server = tokio::spawn(server::serve(listener, state.clone(), shutdown.clone()));
    let supervisor = tokio::spawn(talk_to_systemd(notifier.clone(), state, shutdown.clone()));
    scheduler::run(syncers, board, shutdown).await;
    notifier.stopping();
    supervisor.abort();
    let _ = server.await;
    info!("pglink daemon stopped");
    Exit::Ok
}

/// READY=1 once every target has finished its first pass (successful or not: readiness
/// for traffic is /readyz's job), then WATCHDOG=1 while the loop is live.
async fn talk_to_systemd(notifier: Notifier, state: Arc<ServerState>, shutdown: CancellationToken) {
    if !notifier.is_enabled() {
        return;
    }
    loop {
        let first_passes_done = {
            let board = state.board.lock().unwrap_or_else(|e| e.into_inner());
            state
                .targets
                .iter()
                .all(|t| board.get(t).is_some_and(|s| s.passes > 0))
        };
        if first_passes_done {
            break;
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(50)) => {}
            () = shutdown.cancelled() => return,
        }
    }
    let ready = state.readiness();
    notifier.ready(if ready.ok {
        "all targets in sync"
    } else {
        "first pass done; some targets failing"
    });
    let Some(period) = notifier.watchdog_period() else {
        return;
    };
    loop {
        tokio::select! {
            () = tokio::time::sleep(period) => {}
            () = shutdown.cancelled() => return,
        }
        if state.liveness().ok {
            notifier.watchdog();
        } else {
            warn!("a target loop is stalled: withholding the systemd watchdog ping");
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
