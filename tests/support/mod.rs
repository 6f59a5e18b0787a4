//! Shared helpers for pglink's integration tests and examples.
//!
//! Included with `mod support;` from tests and with
//! `#[path = "../tests/support/mod.rs"] mod support;` from examples, so it
//! only relies on `CARGO_MANIFEST_DIR`, never `CARGO_TARGET_TMPDIR`.
#![allow(dead_code)] // each test binary uses a different subset

pub mod apt;
pub mod dns;
pub mod drill;
pub mod fixture;
pub mod lattice;
pub mod moto;
pub mod openmetrics;
pub mod postgres;
pub mod proxy;
pub mod strict;
pub mod unbound;
pub mod venv;
pub mod world;

/// A TCP port on 127.0.0.1 that was free a moment ago.
///
/// The port is released before returning, so a rare clash is possible;
/// callers that start servers on it retry with a new port.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

/// The `n`th command-line argument parsed, or `default` (for the examples' harnesses).
pub fn arg<T: std::str::FromStr>(n: usize, default: T) -> T {
    std::env::args()
        .nth(n)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

/// The Cargo profile this binary (and the `pglink` beside it) was built with, for reports.
pub fn build_profile() -> &'static str {
    if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    }
}

/// The `pglink` binary beside the running example (`target/<profile>/pglink`), for the
/// examples, which Cargo gives no `CARGO_BIN_EXE_pglink`.
pub fn pglink_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let bin = exe
        .parent()
        .and_then(|p| p.parent())
        .expect("target dir")
        .join("pglink");
    assert!(
        bin.exists(),
        "{} not found: run `cargo build` first",
        bin.display()
    );
    bin
}
