//! A recording, fault-injecting HTTP/1.1 reverse proxy on 127.0.0.1.
//!
//! Put it between the system under test and moto to see exactly which AWS
//! Query-protocol calls were made (and their bodies), and to make chosen
//! actions fail (throttling, slowness, dropped connections). Started with
//! [`Strict`] rules it also behaves like AWS where moto is kinder (see
//! `strict.rs`); injected faults come first, strict rules after them.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use hyper::http::request::Parts;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use super::strict::{Call, Layer, Strict};

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
    /// What a strict rule did: the error code it answered with, or `"health"` when it
    /// rewrote a DescribeTargetHealth answer.
    pub strict: Option<String>,
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
    /// Bumped by `clear_requests`, so a late note never lands on another request.
    epoch: u64,
}

type Shared = Arc<Mutex<State>>;
type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// What every connection handler needs.
#[derive(Clone)]
struct Ctx {
    client: HttpClient,
    upstream: String,
    state: Shared,
    strict: Arc<Layer>,
}

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
    strict: Arc<Layer>,
    stopper: Stopper,
}

impl Proxy {
    /// Starts the proxy on the caller's tokio runtime.
    pub async fn start(upstream: &str) -> Proxy {
        Self::start_strict(upstream, Strict::off()).await
    }

    /// Starts the proxy on its own thread and runtime, for tests whose code
    /// under test runs in another process (or that have no runtime).
    pub fn start_blocking(upstream: &str) -> Proxy {
        Self::start_blocking_strict(upstream, Strict::off())
    }

    /// [`Proxy::start`] with AWS's rules where moto is kinder.
    pub async fn start_strict(upstream: &str, strict: Strict) -> Proxy {
        let (std_listener, endpoint) = bind();
        let listener = TcpListener::from_std(std_listener).expect("register proxy listener");
        let ctx = Ctx::new(upstream, strict);
        let (state, strict) = (ctx.state.clone(), ctx.strict.clone());
        let task = tokio::spawn(serve(listener, ctx));
        Proxy {
            endpoint,
            state,
            strict,
            stopper: Stopper::Task(task),
        }
    }

    /// [`Proxy::start_blocking`] with AWS's rules where moto is kinder.
    pub fn start_blocking_strict(upstream: &str, strict: Strict) -> Proxy {
        let (std_listener, endpoint) = bind();
        let ctx = Ctx::new(upstream, strict);
        let (state, strict) = (ctx.state.clone(), ctx.strict.clone());
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
                        _ = serve(listener, ctx) => {}
                        _ = stop_rx => {}
                    }
                });
            })
            .expect("spawn proxy thread");
        Proxy {
            endpoint,
            state,
            strict,
            stopper: Stopper::Thread(Some(stop_tx), Some(thread)),
        }
    }

    /// From now on a successful failover call (RebootDBInstance with ForceFailover,
    /// FailoverDBCluster) writes RDS's failover events and runs `hook` with the
    /// database's identifier after `delay`, as RDS repoints its name.
    pub fn on_failover(&self, delay: Duration, hook: impl Fn(&str) + Send + Sync + 'static) {
        self.strict.on_failover(delay, Arc::new(hook));
    }

    /// Nothing listens at `ip` any more: with a health model, its targets turn
    /// `unhealthy` once registration is over.
    pub fn set_unhealthy(&self, ip: IpAddr) {
        self.strict.mark_unhealthy(ip, true);
    }

    /// Undoes [`Proxy::set_unhealthy`].
    pub fn set_healthy(&self, ip: IpAddr) {
        self.strict.mark_unhealthy(ip, false);
    }

    /// ELBv2 Describe* requests the strict token bucket turned away.
    pub fn throttled(&self) -> usize {
        self.strict.throttled()
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
        let mut state = self.lock();
        state.requests.clear();
        state.epoch += 1;
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

impl Ctx {
    fn new(upstream: &str, strict: Strict) -> Ctx {
        let upstream = upstream_base(upstream);
        // No upstream pooling: a fresh connection per request means no spurious
        // 502 from an idle connection the upstream closed, and nothing outlives us.
        let client: HttpClient = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(0)
            .build_http();
        Ctx {
            client,
            strict: Arc::new(Layer::new(&upstream, strict)),
            upstream,
            state: Shared::default(),
        }
    }
}

/// Accept loop; connections live in a `JoinSet` so they die with this task.
async fn serve(listener: TcpListener, ctx: Ctx) {
    let mut conns = JoinSet::new();
    loop {
        let Ok((stream, _peer)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await; // e.g. EMFILE: don't spin
            continue;
        };
        let ctx = ctx.clone();
        let service = service_fn(move |req| handle(req, ctx.clone()));
        conns.spawn(async move {
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            let _ = conn.await;
        });
        while conns.try_join_next().is_some() {} // reap finished connections
    }
}

/// Records the request, applies any fault, then strict rules, else forwards it
/// upstream. Returning `Err` makes hyper close the connection unanswered (`Fault::Drop`).
async fn handle(req: Request<Incoming>, ctx: Ctx) -> Result<Response<Full<Bytes>>, std::io::Error> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map_err(std::io::Error::other)?
        .to_bytes();
    let (mut call, fault, entry) = admit(&ctx.state, &parts, &body);
    match fault {
        Some(Fault::Status { status, code }) => return Ok(aws_error(status, &code, "injected")),
        Some(Fault::Drop) => return Err(std::io::Error::other("injected drop")),
        Some(Fault::Delay(d)) => tokio::time::sleep(d).await,
        None => {}
    }
    if let Some(r) = ctx.strict.check(&mut call).await {
        note(&ctx.state, entry, r.code);
        return Ok(aws_error(r.status, r.code, &r.message));
    }
    if let Some(xml) = ctx.strict.answer(&call).await {
        note(&ctx.state, entry, "emulated");
        return Ok(xml_response(StatusCode::OK, xml));
    }
    let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let uri = format!("{}{path_and_query}", ctx.upstream);
    let mut out = Request::from_parts(parts, Full::new(body));
    *out.uri_mut() = uri.parse().map_err(std::io::Error::other)?;
    strip_hop_by_hop(out.headers_mut());
    let resp = forward(&ctx.client, out).await;
    match ctx.strict.after(&call, resp.status().as_u16()).await {
        Some(xml) => {
            note(&ctx.state, entry, "health");
            Ok(xml_response(StatusCode::OK, xml))
        }
        None => Ok(resp),
    }
}

/// Reads the request for the rules, takes the first matching fault, and records both.
fn admit(state: &Shared, parts: &Parts, body: &Bytes) -> (Call, Option<Fault>, (u64, usize)) {
    let text = String::from_utf8_lossy(body).into_owned();
    let call = Call::parse(&text, parts.uri.query(), &parts.headers);
    let fault = take_fault(state, call.action.as_deref());
    let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let request = Recorded {
        method: parts.method.to_string(),
        path_and_query: path_and_query.to_string(),
        body: text,
        action: call.action.clone(),
        faulted: fault.is_some(),
        strict: None,
    };
    (call, fault, record(state, request))
}

/// Appends a request; returns where it went, for [`note`].
fn record(state: &Shared, request: Recorded) -> (u64, usize) {
    let mut state = lock(state);
    state.requests.push(request);
    (state.epoch, state.requests.len() - 1)
}

/// Marks a recorded request as answered (or rewritten) by a strict rule.
fn note(state: &Shared, (epoch, index): (u64, usize), what: &str) {
    let mut state = lock(state);
    if state.epoch == epoch {
        if let Some(r) = state.requests.get_mut(index) {
            r.strict = Some(what.to_string());
        }
    }
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
fn aws_error(status: u16, code: &str, message: &str) -> Response<Full<Bytes>> {
    let xml = format!(
        "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code>\
         <Message>{}</Message></Error><RequestId>x</RequestId></ErrorResponse>",
        xml_escape(message)
    );
    xml_response(
        StatusCode::from_u16(status).expect("valid HTTP status"),
        xml,
    )
}

fn xml_response(status: StatusCode, xml: String) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(xml)));
    *resp.status_mut() = status;
    let ctype = HeaderValue::from_static("text/xml");
    resp.headers_mut().insert(CONTENT_TYPE, ctype);
    resp
}

/// Text made safe for an XML element.
pub fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
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
