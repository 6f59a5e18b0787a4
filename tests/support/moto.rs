//! A private moto (AWS mock) server per test, so every test starts from an
//! empty AWS account and tests can run in parallel.
//!
//! moto is installed on first use into a virtualenv under `target/` (or
//! `$MOTO_VENV`, see [`super::venv`]). Blocking std code only: no runtime needed.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The pinned moto release; bumping it reinstalls (the marker name changes).
const MOTO_REQ: &str = "moto[server]==5.2.5";
/// How long one moto_server may take to answer its first request.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Attempts with a fresh port when the chosen one turned out to be taken.
const START_TRIES: usize = 3;

/// A running `moto_server` on 127.0.0.1; killed on drop.
pub struct Moto {
    /// Base URL, e.g. `http://127.0.0.1:40123`.
    pub endpoint: String,
    pub port: u16,
    /// stdout+stderr of the server; deleted on drop unless the test is panicking.
    pub log: PathBuf,
    child: Child,
}

impl Moto {
    /// Installs moto if needed, then starts a fresh server and waits until it answers.
    pub fn start() -> Moto {
        let venv = ensure_venv();
        let mut last_err = String::new();
        for _ in 0..START_TRIES {
            match spawn_and_wait(&venv) {
                Ok(moto) => return moto,
                Err(e) => last_err = e,
            }
        }
        panic!("moto_server failed to start after {START_TRIES} tries: {last_err}");
    }

    /// Kills the server and starts a new one on the same port, as when the emulator (or a
    /// region's API) goes away and comes back: clients see refused connections for a
    /// moment, and then a server that has lost all state.
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let venv = ensure_venv();
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            match spawn_on(&venv, self.port, "-restarted") {
                Ok(moto) => {
                    // The old child is dead already: dropping it only removes its log.
                    drop(std::mem::replace(self, moto));
                    return;
                }
                // The port may linger for a moment after the kill.
                Err(e) if Instant::now() < deadline => {
                    eprintln!("moto restart on port {}: {e}; retrying", self.port);
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(e) => panic!("moto_server did not come back on port {}: {e}", self.port),
            }
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !std::thread::panicking() {
            let _ = fs::remove_file(&self.log);
        }
    }
}

/// Where the venv lives: `$MOTO_VENV` or `<crate>/target/moto-venv`.
fn ensure_venv() -> PathBuf {
    static VENV: OnceLock<PathBuf> = OnceLock::new();
    VENV.get_or_init(|| {
        let dir = match std::env::var_os("MOTO_VENV") {
            Some(p) if !p.is_empty() => PathBuf::from(p),
            _ => target_dir().join("moto-venv"),
        };
        super::venv::ensure(&dir, MOTO_REQ)
    })
    .clone()
}

fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target")
}

/// One start attempt on a fresh port; `Err` means "try another port".
fn spawn_and_wait(venv: &Path) -> Result<Moto, String> {
    spawn_on(venv, super::free_port(), "")
}

/// Starts a server on `port`, logging to `moto-logs/PORT[SUFFIX].log`.
fn spawn_on(venv: &Path, port: u16, log_suffix: &str) -> Result<Moto, String> {
    let logs = target_dir().join("moto-logs");
    fs::create_dir_all(&logs).expect("create moto log dir");
    let log = logs.join(format!("{port}{log_suffix}.log"));
    let out = File::create(&log).expect("create moto log");
    let err = out.try_clone().expect("clone moto log handle");
    let child = Command::new(venv.join("bin/moto_server"))
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot spawn moto_server from {}: {e}", venv.display()));
    // From here on `moto` owns the child, so every early return kills it.
    let mut moto = Moto {
        endpoint: format!("http://127.0.0.1:{port}"),
        port,
        log,
        child,
    };
    wait_ready(&mut moto)?;
    Ok(moto)
}

/// Polls `/moto-api/` until it answers while our child is still alive.
fn wait_ready(moto: &mut Moto) -> Result<(), String> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        // Checked first so another process's server on a clashing port is not mistaken for ours.
        if let Ok(Some(status)) = moto.child.try_wait() {
            let log = fs::read_to_string(&moto.log).unwrap_or_default();
            return Err(format!(
                "moto_server exited ({status}):\n{}",
                super::venv::tail(&log, 20)
            ));
        }
        if http(moto.port, "GET", "/moto-api/", Duration::from_secs(2)).is_ok() {
            if let Ok(None) = moto.child.try_wait() {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            let log = fs::read_to_string(&moto.log).unwrap_or_default();
            return Err(format!(
                "moto_server on port {} not ready after {START_TIMEOUT:?}:\n{}",
                moto.port,
                super::venv::tail(&log, 20)
            ));
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Minimal HTTP/1.0 request to 127.0.0.1; returns the status code.
fn http(port: u16, method: &str, path: &str, timeout: Duration) -> std::io::Result<u16> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let req =
        format!("{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\n\r\n");
    stream.write_all(req.as_bytes())?;
    // HTTP/1.0: the server closes after the response, so read to EOF.
    let mut resp = Vec::new();
    stream.read_to_end(&mut resp)?;
    let head = String::from_utf8_lossy(&resp[..resp.len().min(64)]).into_owned();
    head.strip_prefix("HTTP/1.")
        .and_then(|rest| rest.get(2..5))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP response: {head:?}")))
}
