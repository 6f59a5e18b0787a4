//! Python tools the tests need (moto, parliament), each pip-installed on first use into its
//! own virtualenv under `target/`, pinned, so that a fresh machine needs nothing by hand.
//!
//! Threads of this process are serialized by the caller's `OnceLock`; other test processes
//! wait on an exclusive `flock` of `<venv>.lock`, which the OS releases if the holder dies,
//! so there is no stale lock to clean up. The marker file is written only after pip
//! succeeded, so a half-done install is redone.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// `<venv>` with `requirement` (such as `moto[server]==5.2.5`) installed; installs it first
/// when missing. A changed requirement reinstalls (the marker names it).
pub fn ensure(venv: &Path, requirement: &str) -> PathBuf {
    let marker = venv.join(marker_name(requirement));
    if marker.exists() {
        return venv.to_path_buf();
    }
    let parent = venv.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(parent).expect("create venv parent dir");
    let lock_path = venv.with_extension("lock");
    let lock =
        File::create(&lock_path).unwrap_or_else(|e| panic!("open {}: {e}", lock_path.display()));
    lock.lock()
        .unwrap_or_else(|e| panic!("lock {}: {e}", lock_path.display()));
    if !marker.exists() {
        install(venv, requirement);
        fs::write(&marker, requirement).expect("write venv marker");
    }
    drop(lock); // releases the flock
    venv.to_path_buf()
}

/// `moto[server]==5.2.5` -> `.pglink-moto-5.2.5-installed`.
fn marker_name(requirement: &str) -> String {
    let package = requirement
        .split(['[', '=', '<', '>'])
        .next()
        .unwrap_or(requirement);
    let version = requirement.rsplit("==").next().unwrap_or_default();
    format!(".pglink-{package}-{version}-installed")
}

/// Creates the venv from scratch and pip-installs `requirement` into it.
fn install(venv: &Path, requirement: &str) {
    eprintln!(
        "pglink tests: installing {requirement} into {}",
        venv.display()
    );
    if venv.exists() {
        fs::remove_dir_all(venv).expect("remove half-built venv");
    }
    let python = std::env::var("MOTO_PYTHON").unwrap_or_else(|_| "python3".into());
    run(Command::new(&python).arg("-m").arg("venv").arg(venv));
    run(Command::new(venv.join("bin/pip")).args([
        "install",
        "--disable-pip-version-check",
        "--no-input",
        "--quiet",
        requirement,
    ]));
}

/// Runs a setup command, panicking with the tail of its output on failure.
fn run(cmd: &mut Command) {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    if !out.status.success() {
        panic!(
            "venv setup failed: {cmd:?} exited with {}\n--- stderr tail ---\n{}\n--- stdout tail ---\n{}",
            out.status,
            tail(&String::from_utf8_lossy(&out.stderr), 40),
            tail(&String::from_utf8_lossy(&out.stdout), 10),
        );
    }
}

pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
