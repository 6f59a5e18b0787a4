//! systemd's notify protocol (sd_notify), without libsystemd: a datagram to
//! `$NOTIFY_SOCKET`. READY=1 once every target has had its first pass; WATCHDOG=1 at half
//! of `$WATCHDOG_USEC` while the loop is live; STOPPING=1 on shutdown. Outside systemd
//! (no `$NOTIFY_SOCKET`) every call does nothing.

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Notifier {
    socket: Option<PathBuf>,
    watchdog: Option<Duration>,
}

impl Notifier {
    pub fn from_env() -> Self {
        let socket = std::env::var_os("NOTIFY_SOCKET").map(PathBuf::from);
        // WATCHDOG_PID, when set, names the process the watchdog is meant for.
        let for_us = std::env::var("WATCHDOG_PID")
            .map_or(true, |pid| pid.trim() == std::process::id().to_string());
        let watchdog = std::env::var("WATCHDOG_USEC")
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|usec| *usec > 0 && for_us)
            .map(Duration::from_micros);
        Self { socket, watchdog }
    }

    /// How often to send WATCHDOG=1 (half the configured timeout), if systemd asked.
    pub fn watchdog_period(&self) -> Option<Duration> {
        self.watchdog.map(|w| w / 2)
    }

    pub fn is_enabled(&self) -> bool {
        self.socket.is_some()
    }

    pub fn ready(&self, status: &str) {
        self.send(&format!("READY=1\nSTATUS={status}"));
    }

    pub fn watchdog(&self) {
        self.send("WATCHDOG=1");
    }

    pub fn status(&self, status: &str) {
        self.send(&format!("STATUS={status}"));
    }

    pub fn stopping(&self) {
        self.send("STOPPING=1");
    }

    fn send(&self, message: &str) {
        let Some(path) = &self.socket else { return };
        let result = UnixDatagram::unbound().and_then(|sock| {
            let bytes = message.as_bytes();
            match path.to_str().and_then(|p| p.strip_prefix('@')) {
                Some(name) => send_abstract(&sock, name, bytes),
                None => sock.send_to(bytes, path).map(|_| ()),
            }
        });
        if let Err(e) = result {
            tracing::warn!(error = %e, socket = %path.display(), "sd_notify failed");
        }
    }
}

#[cfg(target_os = "linux")]
fn send_abstract(sock: &UnixDatagram, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
    sock.send_to_addr(bytes, &addr).map(|_| ())
}

#[cfg(not(target_os = "linux"))]
fn send_abstract(_: &UnixDatagram, _: &str, _: &[u8]) -> std::io::Result<()> {
    Err(std::io::Error::other("abstract sockets need Linux"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_reach_the_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let server = UnixDatagram::bind(&path).unwrap();
        let n = Notifier {
            socket: Some(path),
            watchdog: Some(Duration::from_secs(10)),
        };
        n.ready("1 target in sync");
        n.watchdog();
        let mut buf = [0u8; 256];
        let len = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"READY=1\nSTATUS=1 target in sync");
        let len = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"WATCHDOG=1");
        assert_eq!(n.watchdog_period(), Some(Duration::from_secs(5)));
    }

    #[test]
    fn without_a_socket_nothing_happens() {
        let n = Notifier {
            socket: None,
            watchdog: None,
        };
        n.ready("x");
        assert!(!n.is_enabled());
    }
}
