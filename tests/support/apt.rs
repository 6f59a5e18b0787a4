//! Debian packages the tests need (unbound, promtool from `prometheus`), installed with
//! apt-get on first use so that a fresh machine needs nothing by hand.
//!
//! Threads of one process share the caller's `OnceLock`; test processes wait on an
//! exclusive `flock` of `target/apt-install.lock`, which the OS releases if the holder
//! dies. One lock for every package: two apt-get runs at once fail on dpkg's own lock. The package's services are masked before it is configured, so its postinst cannot
//! start a server on the test machine (a mask it did not create stays in place).

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// What to install and how to find it once installed.
pub struct Package {
    /// The program the tests run.
    pub program: &'static str,
    /// Where it lives when not on PATH (`/usr/sbin` is not on every PATH).
    pub dir: &'static str,
    /// The Debian package that provides it.
    pub name: &'static str,
    /// Extra apt-get install flags (such as `--no-install-recommends`).
    pub flags: &'static [&'static str],
    /// Units the package would start.
    pub units: &'static [&'static str],
}

impl Package {
    /// The program's path, installing the package first when it is missing.
    pub fn ensure(&self) -> PathBuf {
        if let Some(found) = self.find() {
            return found;
        }
        let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
        fs::create_dir_all(&target).expect("create target dir");
        let lock_path = target.join("apt-install.lock");
        let lock = File::create(&lock_path)
            .unwrap_or_else(|e| panic!("open {}: {e}", lock_path.display()));
        lock.lock()
            .unwrap_or_else(|e| panic!("lock {}: {e}", lock_path.display()));
        if self.find().is_none() {
            self.install();
        }
        drop(lock);
        self.find().unwrap_or_else(|| {
            panic!(
                "{} installed but {} not found on PATH or in {}",
                self.name, self.program, self.dir
            )
        })
    }

    fn find(&self) -> Option<PathBuf> {
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .chain([PathBuf::from(self.dir)])
            .map(|dir| dir.join(self.program))
            .find(|p| p.is_file())
    }

    /// The package index is refreshed only if the first try fails.
    fn install(&self) {
        eprintln!("pglink tests: installing {} with apt-get", self.name);
        let _ = Command::new("systemctl")
            .arg("mask")
            .args(self.units)
            .stdin(Stdio::null())
            .output();
        let mut args = vec!["install", "-y", "-qq"];
        args.extend(self.flags);
        args.push(self.name);
        if apt(&args).is_ok() {
            return;
        }
        if let Err(e) = apt(&["update", "-qq"]).and_then(|()| apt(&args)) {
            panic!(
                "{} is needed by the tests and could not be installed; install it with \
                 `apt-get {}` (as root):\n{e}",
                self.program,
                args.join(" ")
            );
        }
    }
}

fn apt(args: &[&str]) -> Result<(), String> {
    let out = Command::new("apt-get")
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run apt-get: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "apt-get {} exited with {}:\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    ))
}
