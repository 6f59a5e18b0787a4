//! The systemd unit: notify with a watchdog, not root, and `systemd-analyze security`
//! exposure at most 2.0.

use std::process::Command;

use super::{read, root};

/// Highest `systemd-analyze security` overall exposure the unit may have.
const MAX_EXPOSURE: f64 = 2.0;

const UNIT: &str = "deploy/systemd/pglink.service";

/// `Key=value` lines of the unit's [Service] section (a key may repeat).
fn service_settings() -> Vec<(String, String)> {
    let mut in_service = false;
    let mut out = Vec::new();
    for line in read(UNIT).lines().map(str::trim) {
        if line.starts_with('[') {
            in_service = line == "[Service]";
            continue;
        }
        if !in_service || line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            out.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    out
}

#[test]
fn systemd_unit_speaks_notify_and_has_a_watchdog() {
    let settings = service_settings();
    let get = |key: &str| {
        settings
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(get("Type"), Some("notify"));
    assert_eq!(get("NotifyAccess"), Some("main"));
    assert_eq!(get("Restart"), Some("on-failure"));
    let watchdog = get("WatchdogSec").expect("WatchdogSec");
    assert!(
        !watchdog.is_empty() && watchdog != "0",
        "WatchdogSec={watchdog}"
    );
    let exec = get("ExecStart").expect("ExecStart");
    assert!(
        exec.starts_with("/usr/local/bin/pglink run ") && exec.contains("/etc/pglink/pglink.toml"),
        "ExecStart={exec}"
    );
    assert!(
        get("DynamicUser") == Some("yes") || get("User").is_some_and(|u| u != "root"),
        "the daemon must not run as root"
    );
}

#[test]
fn systemd_unit_exposure_is_at_most_two() {
    let unit = root().join(UNIT);
    let output = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager"])
        .arg(&unit)
        .env("SYSTEMD_COLORS", "0")
        .env("SYSTEMD_PAGER", "")
        .output();
    let output = match output {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "systemd-analyze is not installed, so the unit's hardening cannot be checked. \
             Install it (Debian/Ubuntu: `apt-get install systemd`; systemd 250 or newer) \
             and run the tests again."
        ),
        Err(e) => panic!("run systemd-analyze: {e}"),
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let line = text
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| {
            panic!("systemd-analyze printed no \"Overall exposure level\" line:\n{text}")
        });
    let score: f64 = line
        .rsplit_once(':')
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("cannot read the exposure from {line:?}"));
    assert!(
        score <= MAX_EXPOSURE,
        "{UNIT}: exposure {score} > {MAX_EXPOSURE}\n{text}"
    );
}
