//! A caching resolver (unbound) in front of a [`TestDns`](super::dns::TestDns), as the
//! Amazon VPC resolver sits in front of Route 53: answers are cached for their TTL, so a
//! changed record is seen only once the old answer expires, and a name that answers one
//! instance at random per query holds its pick for the TTL.
//!
//! What tests see through it (unbound 1.17, measured):
//! - TTLs count down in whole seconds, so an answer cached with TTL t is held between
//!   t - 1 and t + 1 s.
//! - A CNAME chain is cut after the first link and each link is asked for separately,
//!   so every name in it reaches the test server and is cached with its own TTL.
//! - NXDOMAIN and NODATA are held for the SOA's negative TTL (the test server's: 1 s);
//!   SERVFAIL, or an upstream that stays silent, is answered SERVFAIL for about 5 s.
//!
//! Debian's `unbound` binary runs in the foreground with our own config; it is installed
//! with apt-get on first use (`.ci/run` installs it up front). Blocking std code only.

use std::fs::{self, File};
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::apt::Package;
use hickory_proto::op::{Message, MessageType, Query};
use hickory_proto::rr::{DNSClass, Name, RData, RecordType};

/// How long one unbound may take to answer its first query.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// Attempts with a fresh port when the chosen one turned out to be taken.
const START_TRIES: usize = 3;
/// Units of the Debian package that must never run: they would start a second resolver
/// on port 53 with the package's config and (with resolvconf) repoint the host's DNS at it.
const PACKAGE: Package = Package {
    program: "unbound",
    dir: "/usr/sbin",
    name: "unbound",
    flags: &[],
    units: &["unbound.service", "unbound-resolvconf.service"],
};

/// A running unbound on 127.0.0.1 (UDP and TCP) forwarding every name to one upstream;
/// killed on drop.
pub struct Unbound {
    pub addr: SocketAddr,
    /// unbound's stderr; kept (with the config) when the test panics.
    pub log: PathBuf,
    child: Child,
    dir: Option<tempfile::TempDir>,
}

impl Unbound {
    /// Installs unbound if needed, starts it forwarding to `upstream`, and waits until it
    /// answers.
    pub fn start(upstream: SocketAddr) -> Unbound {
        let binary = ensure_installed();
        let mut last_err = String::new();
        for _ in 0..START_TRIES {
            match spawn_and_wait(&binary, upstream, super::free_port()) {
                Ok(unbound) => return unbound,
                Err(e) => last_err = e,
            }
        }
        panic!("unbound failed to start after {START_TRIES} tries: {last_err}");
    }
}

impl Drop for Unbound {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            if let Some(dir) = self.dir.take() {
                eprintln!("unbound config and log kept in {}", dir.keep().display());
            }
        }
    }
}

/// The config: a forwarding cache and nothing else. Every line that changes a default
/// (unbound's or Debian's build) says why; each was checked against unbound 1.17.
fn config(port: u16, upstream: SocketAddr, dir: &Path, identity: &str) -> String {
    format!(
        r#"server:
    interface: 127.0.0.1
    port: {port}
    # Default yes: a second unbound would share a taken port instead of failing to bind.
    so-reuseport: no
    # The default already; one thread is plenty and keeps parallel tests light.
    num-threads: 1
    # Run as we are, where we are. Defaults: setuid to `unbound`, chdir to /etc/unbound,
    # write /run/unbound.pid (the system service's), log to syslog; upstream's chroot is
    # /etc/unbound (Debian's build has none).
    chroot: ""
    username: ""
    directory: "{dir}"
    pidfile: ""
    use-syslog: no
    logfile: ""
    log-time-ascii: yes
    log-replies: yes
    # Answers id.server: the start-up probe must not take another process's unbound that
    # got the same port for this one.
    identity: "{identity}"
    # A plain cache: no DNSSEC validator (nothing here is signed) and no ECS module.
    module-config: "iterator"
    # Default yes: no query is ever sent to 127.0.0.0/8, where the test server is.
    do-not-query-localhost: no
    # Default: answered NXDOMAIN locally (RFC 6761), never forwarded.
    local-zone: "test." nodefault
    local-zone: "invalid." nodefault
    # How long unbound remembers a server's timeouts; default 900 s. After the test server
    # was silent or down for 20-60 s, unbound took 3-22 s to ask it again once it was back;
    # with 10 s it took 1-5 s (up to 5 s is its hold on SERVFAIL, not configurable).
    infra-host-ttl: 10
    # Both default off; written out because the VPC resolver (as far as is known) neither
    # refreshes early nor serves stale answers.
    prefetch: no
    serve-expired: no
forward-zone:
    name: "."
    forward-addr: {ip}@{up_port}
"#,
        dir = dir.display(),
        ip = upstream.ip(),
        up_port = upstream.port(),
    )
}

/// One start attempt on `port`; `Err` means "try another port".
fn spawn_and_wait(binary: &Path, upstream: SocketAddr, port: u16) -> Result<Unbound, String> {
    let dir = tempfile::Builder::new()
        .prefix("pglink-unbound-")
        .tempdir()
        .expect("create unbound tempdir");
    let identity = format!("pglink-{port}-{}", std::process::id());
    let conf = dir.path().join("unbound.conf");
    fs::write(&conf, config(port, upstream, dir.path(), &identity)).expect("write unbound.conf");
    let log = dir.path().join("unbound.log");
    let out = File::create(&log).expect("create unbound log");
    let err = out.try_clone().expect("clone unbound log handle");
    let child = Command::new(binary)
        .arg("-d")
        .arg("-c")
        .arg(&conf)
        // Debian builds it with systemd support: never let it notify a unit we run under.
        .env_remove("NOTIFY_SOCKET")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot spawn {}: {e}", binary.display()));
    // From here on `unbound` owns the child, so every early return kills it.
    let mut unbound = Unbound {
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        log,
        child,
        dir: Some(dir),
    };
    wait_ready(&mut unbound, &identity)?;
    Ok(unbound)
}

/// Asks `id.server` until our own instance answers, while our child is still alive.
fn wait_ready(unbound: &mut Unbound, identity: &str) -> Result<(), String> {
    let deadline = Instant::now() + START_TIMEOUT;
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind probe socket");
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("set probe timeout");
    loop {
        if let Ok(Some(status)) = unbound.child.try_wait() {
            return Err(format!("unbound exited ({status}):\n{}", log_tail(unbound)));
        }
        if probe(&socket, unbound.addr) == Some(identity.to_string()) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "unbound on {} not ready after {START_TIMEOUT:?}:\n{}",
                unbound.addr,
                log_tail(unbound)
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The `id.server. CH TXT` answer from `addr`, if one came.
fn probe(socket: &UdpSocket, addr: SocketAddr) -> Option<String> {
    let mut query = Query::query(Name::from_ascii("id.server.").ok()?, RecordType::TXT);
    query.set_query_class(DNSClass::CH);
    let id = rand::random::<u16>();
    let mut msg = Message::query();
    msg.metadata.id = id;
    msg.add_query(query);
    socket.send_to(&msg.to_vec().ok()?, addr).ok()?;
    let mut buf = [0u8; 1232];
    // Skips late replies to earlier probes: on a loaded machine each would otherwise be
    // read as the answer to the next probe, and never match.
    loop {
        let len = socket.recv(&mut buf).ok()?;
        let Ok(reply) = Message::from_vec(&buf[..len]) else {
            continue;
        };
        if reply.metadata.id != id || reply.metadata.message_type != MessageType::Response {
            continue;
        }
        return reply.answers.iter().find_map(|r| match &r.data {
            RData::TXT(txt) => Some(txt.to_string()),
            _ => None,
        });
    }
}

fn log_tail(unbound: &Unbound) -> String {
    let log = fs::read_to_string(&unbound.log).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    let tail = lines[lines.len().saturating_sub(20)..].join("\n");
    if tail.contains("Permission denied") {
        // Debian's AppArmor profile for /usr/sbin/unbound allows reading /etc/unbound only.
        format!("{tail}\n(AppArmor confining unbound? try `aa-complain /usr/sbin/unbound`)")
    } else {
        tail
    }
}

/// The unbound binary, installed once per machine if missing.
fn ensure_installed() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| PACKAGE.ensure()).clone()
}
