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
use hyper_util::rt::{TokioIo, TokioTimer};
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

/// Connections served at once. One more evicts the oldest, gracefully: an idle one is closed
/// at once, one in the middle of a request gets its answer first (within
/// [`EVICTED_GRACE`]). A flood of connections that send nothing thus cannot keep a scrape
/// out, and never cuts one off.
const MAX_CONNECTIONS: usize = 32;
/// How long an evicted connection may take to finish the answer it is sending.
const EVICTED_GRACE: Duration = Duration::from_secs(10);
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Read buffer per connection, headers included (hyper's floor is 8 KiB); a larger request
/// line or header block is answered 431 and the connection closed.
const MAX_REQUEST_HEAD: usize = 16 * 1024;

/// The open connections, oldest first, each with the token that closes it.
#[derive(Default)]
struct Connections {
    next_id: u64,
    open: std::collections::BTreeMap<u64, CancellationToken>,
}

impl Connections {
    /// Registers a new connection; evicts the oldest when the cap is passed.
    fn admit(&mut self) -> (u64, CancellationToken) {
        let id = self.next_id;
        self.next_id += 1;
        let token = CancellationToken::new();
        self.open.insert(id, token.clone());
        if self.open.len() > MAX_CONNECTIONS {
            if let Some((_, oldest)) = self.open.pop_first() {
                oldest.cancel();
            }
        }
        (id, token)
    }
}

/// Serves until `shutdown` fires. Connections in progress finish on their own.
pub async fn serve(listener: TcpListener, state: Arc<ServerState>, shutdown: CancellationToken) {
    let connections = Arc::new(std::sync::Mutex::new(Connections::default()));
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
        let (id, evicted) = lock(&connections).admit();
        let (state, connections) = (state.clone(), connections.clone());
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(respond(&req, &state)) }
            });
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .max_buf_size(MAX_REQUEST_HEAD)
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            let result = tokio::select! {
                result = connection.as_mut() => Some(result),
                () = evicted.cancelled() => {
                    debug!("http: closing the oldest connection to make room for a newer one");
                    connection.as_mut().graceful_shutdown();
                    tokio::time::timeout(EVICTED_GRACE, connection).await.ok()
                }
            };
            if let Some(Err(e)) = result {
                debug!(error = %e, "http: connection ended with an error");
            }
            lock(&connections).open.remove(&id);
        });
    }
}

fn lock(connections: &std::sync::Mutex<Connections>) -> std::sync::MutexGuard<'_, Connections> {
    connections.lock().unwrap_or_else(|e| e.into_inner())
}

fn respond<B>(req: &Request<B>, state: &ServerState) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET\n".into());
    }
    if has_body(req) {
        // Never read: the connection is closed after the answer instead of draining it.
        let mut response = text(
            StatusCode::PAYLOAD_TOO_LARGE,
            "no request body expected\n".into(),
        );
        response.headers_mut().insert(
            hyper::header::CONNECTION,
            hyper::header::HeaderValue::from_static("close"),
        );
        return response;
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

/// A GET with a body (a length above zero, or chunked): nothing here reads one.
fn has_body<B>(req: &Request<B>) -> bool {
    let headers = req.headers();
    headers.contains_key(hyper::header::TRANSFER_ENCODING)
        || headers
            .get(hyper::header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0")
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use super::*;

    async fn server() -> (std::net::SocketAddr, CancellationToken) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(ServerState {
            board: StatusBoard::default(),
            metrics: Metrics::new(),
            targets: vec![],
            started: crate::pulse::now(),
            stall_after: Duration::from_secs(60),
            not_ready_after: Duration::from_secs(60),
        });
        let stop = CancellationToken::new();
        tokio::spawn(serve(listener, state, stop.clone()));
        (addr, stop)
    }

    /// Sends `request` on a fresh connection and reads until the server closes it (or 30 s,
    /// far beyond any limit here, pass: the test then fails on the content).
    async fn exchange(addr: std::net::SocketAddr, request: &[u8]) -> String {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(request).await.unwrap();
        let mut reply = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut reply)).await;
        String::from_utf8_lossy(&reply).into_owned()
    }

    /// Whether the server closes `stream` (EOF or reset) within `limit`.
    async fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
        let mut buf = [0u8; 512];
        loop {
            match tokio::time::timeout(limit, stream.read(&mut buf)).await {
                Ok(Ok(0) | Err(_)) => return true,
                Ok(Ok(_)) => {}
                Err(_) => return false,
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn slow_clients_are_cut_off_and_metrics_are_served_meanwhile() {
        let (addr, stop) = server().await;
        // A flood: clients that send nothing, and clients that send half a request.
        let mut flood = Vec::new();
        for i in 0..(3 * MAX_CONNECTIONS) {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            if i % 2 == 0 {
                stream
                    .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
                    .await
                    .unwrap();
            }
            flood.push(stream);
        }
        let reply = exchange(
            addr,
            b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
        assert!(reply.contains("# EOF"), "{reply}");
        // Every flood connection is closed by the server: the oldest to make room, the rest
        // when the header timeout runs out (a limit far above HEADER_READ_TIMEOUT).
        for (i, stream) in flood.iter_mut().enumerate() {
            assert!(
                closed_within(stream, HEADER_READ_TIMEOUT * 4).await,
                "flood connection {i} still open"
            );
        }
        stop.cancel();
    }

    #[tokio::test]
    async fn request_bodies_and_oversized_heads_are_refused() {
        let (addr, stop) = server().await;
        let reply = exchange(
            addr,
            b"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\nabc",
        )
        .await;
        assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
        let reply = exchange(
            addr,
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
        )
        .await;
        assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
        let huge = format!(
            "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Filler: {}\r\n\r\n",
            "a".repeat(4 * MAX_REQUEST_HEAD)
        );
        let reply = exchange(addr, huge.as_bytes()).await;
        assert!(reply.starts_with("HTTP/1.1 431"), "{reply}");
        stop.cancel();
    }
}
