//! The deployment files under `deploy/` against the code they deploy: every JSON file
//! parses, the ECS task definition has what the guide promises, the IAM policies allow
//! every AWS call the sources make (and grant no wildcard action), the systemd unit is
//! hardened (`systemd-analyze security` exposure <= 2.0), and the Dockerfile builds the
//! binary Cargo.toml names and runs it as non-root with a curl-free health check.

#[path = "../support/apt.rs"]
mod apt;
mod docker;
mod ecs;
mod iam;
mod prometheus;
mod systemd;
#[path = "../support/venv.rs"]
mod venv;

use std::path::{Path, PathBuf};

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    let path = root().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn json(rel: &str) -> Value {
    serde_json::from_str(&read(rel)).unwrap_or_else(|e| panic!("{rel}: invalid JSON: {e}"))
}

/// Every file under `dir` (recursively) whose name ends with `suffix`, sorted.
fn files_under(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            out.extend(files_under(&path, suffix));
        } else if path.to_string_lossy().ends_with(suffix) {
            out.push(path);
        }
    }
    out.sort();
    out
}

#[test]
fn every_json_file_under_deploy_parses() {
    let files = files_under(&root().join("deploy"), ".json");
    assert!(
        files.len() >= 3,
        "expected the task definition and two IAM policies under deploy/, found {files:?}"
    );
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        if let Err(e) = serde_json::from_str::<Value>(&text) {
            panic!("{}: invalid JSON: {e}", path.display());
        }
    }
}

/// `PGLINK_<SECTION>__<KEY>` must name a key that config.example.toml documents; the two
/// variables that are not config keys (the file's path, the health check URL) are allowed.
fn check_pglink_env_name(name: &str, context: &str) {
    if name == "PGLINK_CONFIG" || name == "PGLINK_HEALTHCHECK_URL" {
        return;
    }
    let example: toml::Table = read("config.example.toml")
        .parse()
        .expect("config.example.toml parses");
    let rest = name
        .strip_prefix("PGLINK_")
        .unwrap_or_else(|| panic!("{context}: {name} does not start with PGLINK_"));
    let (section, key) = rest
        .split_once("__")
        .unwrap_or_else(|| panic!("{context}: {name} is not PGLINK_<SECTION>__<KEY>"));
    let (section, key) = (section.to_lowercase(), key.to_lowercase());
    let known = example
        .get(&section)
        .and_then(|s| s.as_table())
        .is_some_and(|t| t.contains_key(&key));
    assert!(
        known,
        "{context}: {name} sets `{section}.{key}`, which config.example.toml does not document"
    );
}
