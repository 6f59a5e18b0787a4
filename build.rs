//! Stamps the binary with its git revision (`pglink --version`, `pglink_build_info`):
//! `PGLINK_REVISION` from the environment (container builds pass it as a build argument,
//! having no `.git`), else `git rev-parse` in the checkout, else "unknown".

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=PGLINK_REVISION");
    let from_env = std::env::var("PGLINK_REVISION")
        .ok()
        .filter(|r| !r.trim().is_empty());
    let revision = from_env.unwrap_or_else(|| {
        // Rebuild when HEAD moves: HEAD itself (a checkout) and the branch it points to (a commit).
        let git = Path::new(".git");
        if git.join("HEAD").exists() {
            println!("cargo:rerun-if-changed=.git/HEAD");
            if let Ok(head) = std::fs::read_to_string(git.join("HEAD")) {
                if let Some(branch) = head.trim().strip_prefix("ref: ") {
                    println!("cargo:rerun-if-changed=.git/{branch}");
                }
            }
        }
        Command::new("git")
            .args(["rev-parse", "--short=12", "HEAD"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "unknown".to_string())
    });
    println!("cargo:rustc-env=PGLINK_REVISION={revision}");
}
