//! Stamps the binary with its git revision (`pglink --version`, `pglink_build_info`):
//! `PGLINK_REVISION` from the environment (container builds pass it as a build argument,
//! having no `.git`), else `git rev-parse` in the checkout, else "unknown".

use std::path::Path;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    Command::new("git")
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// Rebuild when HEAD moves: git names the files (a worktree's `.git` is a file, refs may be
/// packed), and only files that exist are named: Cargo reruns a script whose listed file is
/// missing on every build.
fn watch_head() {
    let mut paths = vec![git(&["rev-parse", "--git-path", "HEAD"])];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        paths.push(git(&["rev-parse", "--git-path", &branch]));
    }
    paths.push(git(&["rev-parse", "--git-path", "packed-refs"]));
    for path in paths.into_iter().flatten() {
        if Path::new(&path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=PGLINK_REVISION");
    let from_env = std::env::var("PGLINK_REVISION")
        .ok()
        .filter(|r| !r.trim().is_empty());
    let revision = from_env.unwrap_or_else(|| {
        watch_head();
        git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".to_string())
    });
    println!("cargo:rustc-env=PGLINK_REVISION={revision}");
}
