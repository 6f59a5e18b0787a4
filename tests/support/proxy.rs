//! A recording, fault-injecting HTTP/1.1 reverse proxy on 127.0.0.1.
//!
//! Put it between the system under test and moto to see exactly which AWS
//! Query-protocol calls were made (and their bodies), and to make chosen
//! actions fail (throttling, slowness, dropped connections).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

/// One request as the proxy received it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path_and_query: String,
    pub body: String,
    /// The AWS Query-protocol `Action=` (form body, else query string).
    pub action: Option<String>,
    /// True when an injected fault answered instead of (or delayed) upstream.
    pub faulted: bool,
}

/// What to do to a matching request instead of a plain forward.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Answer with this status and an AWS Query-protocol XML error `code`.
    Status { status: u16, code: String },
    /// Wait, then forward as usual.
    Delay(Duration),
    /// Close the connection without answering.
    Drop,
}

struct Rule {
    action: String,
    fault: Fault,
    remaining: Option<u32>,
}

#[derive(Default)]
struct State {
    requests: Vec<Recorded>,
    rules: VecDeque<Rule>,
}

type Shared = Arc<Mutex<State>>;
type HttpClient = Client<HttpConnector, Full<Bytes>>;

enum Stopper {
    /// Aborting the accept task drops its `JoinSet`, which aborts connections.
    Task(tokio::task::JoinHandle<()>),
    /// Dropping the sender stops the background runtime; then we join it.
    Thread(
        Option<tokio::sync::oneshot::Sender<()>>,
        Option<std::thread::JoinHandle<()>>,
    ),
}

/// The running proxy; stops on drop.
pub struct Proxy {
    /// Base URL, e.g. `http://127.0.0.1:40123`.
    pub endpoint: String,
    state: Shared,
    stopper: Stopper,
}

impl Proxy {
    /// Starts the proxy on the caller's tokio runtime.
    pub async fn start(upstream: &str) -> Proxy {
        let (std_listener, endpoint) = bind();
        let listener = TcpListener::from_std(std_listener).expect("register proxy listener");
        let state = Shared::default();
        let task = tokio::spawn(serve(listener, upstream_base(upstream), state.clone()));
        Proxy {
            endpoint,
            state,
            stopper: Stopper::Task(task),
        }
    }

    /// Starts the proxy on its own thread and runtime, for tests whose code
    /// under test runs in another process (or that have no runtime).
    pub fn start_blocking(upstream: &str) -> Proxy {
        let (std_listener, endpoint) = bind();
        let upstream = upstream_base(upstream);
        let state = Shared::default();
        let thread_state = state.clone();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("test-proxy".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("proxy runtime");
                rt.block_on(async move {
                    let listener = TcpListener::from_std(std_listener).expect("proxy listener");
                    tokio::select! {
                        _ = serve(listener, upstream, thread_state) => {}
                        _ = stop_rx => {}
                    }
                });
            })
            .expect("spawn proxy thread");
        Proxy {
            endpoint,
            state,
            stopper: Stopper::Thread(Some(stop_tx), Some(thread)),
        }
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.lock().requests.clone()
    }

    /// Number of requests received for `action`.
    pub fn count(&self, action: &str) -> usize {
        let state = self.lock();
        let matching = state.requests.iter();
        matching
            .filter(|r| r.action.as_deref() == Some(action))
            .count()
    }

    /// Applies `fault` to the next `times` requests for `action` (all of them
    /// if `None`). `"*"` matches every request. Earlier rules win.
    pub fn inject(&self, action: &str, fault: Fault, times: Option<u32>) {
        self.lock().rules.push_back(Rule {
            action: action.to_string(),
            fault,
            remaining: times,
        });
    }

    /// Removes all injected faults.
    pub fn clear_faults(&self) {
        self.lock().rules.clear();
    }

    /// Forgets recorded requests (faults stay).
    pub fn clear_requests(&self) {
        self.lock().requests.clear();
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        match &mut self.stopper {
            Stopper::Task(task) => task.abort(),
            Stopper::Thread(tx, thread) => {
                drop(tx.take());
                if let Some(t) = thread.take() {
                    let _ = t.join();
                }
            }
        }
    }
}

fn lock(state: &Shared) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

fn bind() -> (std::net::TcpListener, String) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind proxy");
    listener.set_nonblocking(true).expect("nonblocking proxy");
    let port = listener.local_addr().expect("proxy addr").port();
    (listener, format!("http://127.0.0.1:{port}"))
}

/// `scheme://host:port` of the upstream; any path in it is ignored.
fn upstream_base(upstream: &str) -> String {
    let uri: Uri = upstream.parse().expect("upstream URL");
    let authority = uri.authority().expect("upstream needs host:port");
    format!("{}://{authority}", uri.scheme_str().unwrap_or("http"))
}

/// Accept loop; connections live in a `JoinSet` so they die with this task.
async fn serve(listener: TcpListener, upstream: String, state: Shared) {
    // No upstream pooling: a fresh connection per request means no spurious
    // 502 from an idle connection the upstream closed, and nothing outlives us.
    let client: HttpClient = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(0)
        .build_http();
    let mut conns = JoinSet::new();
    loop {
        let Ok((stream, _peer)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await; // e.g. EMFILE: don't spin
            continue;
        };
        let (client, upstream, state) = (client.clone(), upstream.clone(), state.clone());
        let service =
            service_fn(move |req| handle(req, client.clone(), upstream.clone(), state.clone()));
        conns.spawn(async move {
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            let _ = conn.await;
        });
        while conns.try_join_next().is_some() {} // reap finished connections
    }
}

/// Records the request, applies any fault, else forwards it upstream.
/// Returning `Err` makes hyper close the connection unanswered (`Fault::Drop`).
async fn handle(
    req: Request<Incoming>,
    client: HttpClient,
    upstream: String,
    state: Shared,
) -> Result<Response<Full<Bytes>>, std::io::Error> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map_err(std::io::Error::other)?
        .to_bytes();
    let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let text = String::from_utf8_lossy(&body).into_owned();
    let action = query_param(&text, "Action")
        .or_else(|| query_param(parts.uri.query().unwrap_or(""), "Action"));
    let fault = take_fault(&state, action.as_deref());
    lock(&state).requests.push(Recorded {
        method: parts.method.to_string(),
        path_and_query: path_and_query.to_string(),
        body: text,
        action,
        faulted: fault.is_some(),
    });
    match fault {
        Some(Fault::Status { status, code }) => return Ok(aws_error(status, &code)),
        Some(Fault::Drop) => return Err(std::io::Error::other("injected drop")),
        Some(Fault::Delay(d)) => tokio::time::sleep(d).await,
        None => {}
    }
    let uri = format!("{upstream}{path_and_query}");
    let mut out = Request::from_parts(parts, Full::new(body));
    *out.uri_mut() = uri.parse().map_err(std::io::Error::other)?;
    strip_hop_by_hop(out.headers_mut());
    Ok(forward(&client, out).await)
}

/// Sends to upstream and buffers the answer; 502 if upstream is unreachable.
async fn forward(client: &HttpClient, req: Request<Full<Bytes>>) -> Response<Full<Bytes>> {
    let result = async {
        let resp = client.request(req).await.map_err(|e| e.to_string())?;
        let (mut parts, body) = resp.into_parts();
        let bytes = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
        strip_hop_by_hop(&mut parts.headers);
        parts.headers.remove(hyper::header::CONTENT_LENGTH); // hyper recomputes it
        Ok::<_, String>(Response::from_parts(parts, Full::new(bytes)))
    };
    result.await.unwrap_or_else(|e| {
        let mut resp = Response::new(Full::new(Bytes::from(format!("proxy: upstream: {e}"))));
        *resp.status_mut() = StatusCode::BAD_GATEWAY;
        resp
    })
}

/// Finds the first rule matching `action`, counting down its uses.
fn take_fault(state: &Shared, action: Option<&str>) -> Option<Fault> {
    let mut state = lock(state);
    let idx = state
        .rules
        .iter()
        .position(|r| r.action == "*" || Some(r.action.as_str()) == action)?;
    let rule = &mut state.rules[idx];
    let fault = rule.fault.clone();
    if let Some(n) = rule.remaining.as_mut() {
        *n = n.saturating_sub(1);
        if *n == 0 {
            state.rules.remove(idx);
        }
    }
    Some(fault)
}

/// An AWS Query-protocol error, as ELBv2/EC2-style services send it.
fn aws_error(status: u16, code: &str) -> Response<Full<Bytes>> {
    let xml = format!(
        "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code>\
         <Message>injected</Message></Error><RequestId>x</RequestId></ErrorResponse>"
    );
    let mut resp = Response::new(Full::new(Bytes::from(xml)));
    *resp.status_mut() = StatusCode::from_u16(status).expect("valid HTTP status");
    let ctype = HeaderValue::from_static("text/xml");
    resp.headers_mut().insert(CONTENT_TYPE, ctype);
    resp
}

/// Headers that describe one hop's connection, not the message.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    for name in [
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    ] {
        headers.remove(name);
    }
}

/// Value of `key` in an `a=b&c=d` form/query string, percent-decoded.
pub fn query_param(form: &str, key: &str) -> Option<String> {
    form.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k) == key).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
                continue;
            }
            (b'+', _) => out.push(b' '),
            (c, _) => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
