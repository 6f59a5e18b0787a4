//! The daemon's HTTP endpoints: `/healthz` (the loop is ticking), `/readyz` (every target
//! synced, none failing too long) and `/metrics` (OpenMetrics text).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::health;
use crate::metrics::Metrics;
use crate::scheduler::StatusBoard;

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What the endpoints read.
pub struct ServerState {
    pub board: StatusBoard,
    pub metrics: Metrics,
    pub targets: Vec<String>,
    pub started: Instant,
    pub stall_after: Duration,
    pub not_ready_after: Duration,
}

impl ServerState {
    pub fn liveness(&self) -> health::Verdict {
        let board = self.board.lock().unwrap_or_else(|e| e.into_inner());
        health::liveness(
            &self.targets,
            &board,
            self.started,
            crate::pulse::now(),
            self.stall_after,
        )
    }

    pub fn readiness(&self) -> health::Verdict {
        let board = self.board.lock().unwrap_or_else(|e| e.into_inner());
        health::readiness(
            &self.targets,
            &board,
            crate::pulse::now(),
            self.not_ready_after,
        )
    }
}

/// Serves until `shutdown` fires. Connections in progress finish on their own.
pub async fn serve(listener: TcpListener, state: Arc<ServerState>, shutdown: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.cancelled() => return,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                warn!(error = %e, "http: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(respond(&req, &state)) }
            });
            if let Err(e) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                debug!(error = %e, "http: connection ended with an error");
            }
        });
    }
}

fn respond<B>(req: &Request<B>, state: &ServerState) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET\n".into());
    }
    match req.uri().path() {
        "/healthz" => verdict(state.liveness()),
        "/readyz" => verdict(state.readiness()),
        "/metrics" => {
            let mut response = text(StatusCode::OK, state.metrics.encode());
            if let Ok(value) = OPENMETRICS.parse() {
                response
                    .headers_mut()
                    .insert(hyper::header::CONTENT_TYPE, value);
            }
            response
        }
        "/" => text(StatusCode::OK, "pglink: /healthz /readyz /metrics\n".into()),
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: try /healthz /readyz /metrics\n".into(),
        ),
    }
}

fn verdict(v: health::Verdict) -> Response<Full<Bytes>> {
    let status = if v.ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    text(status, v.detail)
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(value) = "text/plain; charset=utf-8".parse() {
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, value);
    }
    response
}
