//! The monitoring files: the alert rules pass `promtool check rules` and their unit tests
//! (`alerts_test.yml`), every dashboard query is valid PromQL, and every `pglink_*` name
//! either uses is one the daemon exports. promtool comes from Debian's `prometheus`
//! package, installed with apt-get on first use.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use serde_json::Value;

use super::apt::Package;
use super::{json, read, root};

const ALERTS: &str = "deploy/prometheus/alerts.yml";
const ALERTS_TEST: &str = "deploy/prometheus/alerts_test.yml";
const DASHBOARD: &str = "deploy/grafana/pglink-dashboard.json";

/// Units of the Debian package that must never run: a Prometheus server (port 9090) and
/// the node exporter (port 9100, a Recommends) would start on the test machine.
const PACKAGE: Package = Package {
    program: "promtool",
    dir: "/usr/bin",
    name: "prometheus",
    flags: &["--no-install-recommends"],
    units: &["prometheus.service", "prometheus-node-exporter.service"],
};

#[test]
fn alert_rules_pass_promtool_check() {
    promtool(&["check", "rules", ALERTS]);
}

#[test]
fn alert_rules_pass_their_unit_tests() {
    promtool(&["test", "rules", ALERTS_TEST]);
}

#[test]
fn dashboard_queries_are_valid_promql() {
    let dashboard = json(DASHBOARD);
    assert_eq!(dashboard["schemaVersion"], 39);
    let vars = dashboard["templating"]["list"]
        .as_array()
        .expect("templating.list");
    let var = |name: &str| {
        vars.iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("{DASHBOARD}: no templating variable {name}"))
    };
    assert_eq!(var("DS_PROMETHEUS")["type"], "datasource");
    let target = var("target");
    assert!(target["multi"] == true && target["includeAll"] == true);
    assert!(
        target
            .to_string()
            .contains("label_values(pglink_target_info, target)"),
        "the target variable must list pglink_target_info's targets"
    );

    let mut exprs = Vec::new();
    collect_exprs(&dashboard, &mut exprs);
    assert!(
        exprs.len() >= 13,
        "only {} queries in {DASHBOARD}",
        exprs.len()
    );
    // promtool knows no Grafana variables: substitute what Grafana would.
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, (expr, datasource)) in exprs.iter().enumerate() {
        assert_eq!(datasource, "${DS_PROMETHEUS}", "query {expr:?}: datasource");
        let promql = expr
            .replace("$__rate_interval", "5m")
            .replace("$__range", "1h")
            .replace("$__interval", "1m")
            .replace("$target", ".*");
        assert!(!promql.contains('$'), "unknown variable in {expr:?}");
        // A JSON string is a valid YAML double-quoted scalar.
        let quoted = serde_json::to_string(&promql).unwrap();
        rules.push_str(&format!(
            "      - record: dashboard:expr_{i}\n        expr: {quoted}\n"
        ));
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("dashboard-rules.yml");
    fs::write(&path, rules).expect("write rules");
    promtool(&["check", "rules", path.to_str().unwrap()]);
}

#[test]
fn every_metric_name_used_is_exported() {
    let families = exported_families();
    for rel in [ALERTS, ALERTS_TEST, DASHBOARD] {
        let names = metric_names(&read(rel));
        assert!(!names.is_empty(), "{rel}: no pglink_ metric names");
        for name in names {
            if let Err(e) = resolve(&name, &families) {
                panic!("{rel}: {name}: {e}");
            }
        }
    }
}

/// The alerts need their series before the first event (`increase()` misses a counter's
/// first increment otherwise, and a never-synced target must look stale): every series
/// and every label value an alert reads exists in a freshly seeded exposition.
#[test]
fn every_series_an_alert_reads_exists_from_start() {
    let text = exposition();
    let alerts = read(ALERTS);
    for name in metric_names(&alerts) {
        let present = text
            .lines()
            .any(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")));
        assert!(
            present,
            "{ALERTS}: no {name} series before the first event:\n{text}"
        );
    }
    let mut checked = 0;
    for label in ["result", "kind", "state", "problem", "operation"] {
        for value in matched_values(&alerts, label) {
            checked += 1;
            let pair = format!("{label}=\"{value}\"");
            assert!(
                text.contains(&pair),
                "{ALERTS}: {pair} is not exported:\n{text}"
            );
        }
    }
    assert!(
        checked >= 6,
        "found only {checked} label matchers in {ALERTS}"
    );
}

/// Every `expr` string in the dashboard with its datasource uid (the target's, else the
/// panel's).
fn collect_exprs(v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(map) => {
            if let Some(Value::String(expr)) = map.get("expr") {
                let uid = map["datasource"]["uid"].as_str().unwrap_or_default();
                out.push((expr.clone(), uid.to_string()));
            }
            map.values().for_each(|v| collect_exprs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_exprs(v, out)),
        _ => {}
    }
}

/// The daemon's exposition at start-up, with one configured target.
fn exposition() -> String {
    let m = pglink::metrics::Metrics::new();
    m.seed_target("t");
    m.target_info("t", "123456789012", "us-east-1", "");
    m.encode()
}

/// Family name -> OpenMetrics type, from the `# TYPE` lines.
fn exported_families() -> BTreeMap<String, String> {
    exposition()
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_once(' '))
        .map(|(name, kind)| (name.to_string(), kind.trim().to_string()))
        .collect()
}

/// Whether a series name belongs to an exported family of the right type: counters are
/// read as `_total`, histograms as `_bucket` / `_sum` / `_count`, gauges by their name.
fn resolve(name: &str, families: &BTreeMap<String, String>) -> Result<(), String> {
    if families.get(name).is_some_and(|t| t == "gauge") {
        return Ok(());
    }
    let suffixes: [(&str, &[&str]); 5] = [
        ("_total", &["counter"]),
        ("_bucket", &["histogram"]),
        ("_sum", &["histogram", "summary"]),
        ("_count", &["histogram", "summary"]),
        ("_info", &["info"]),
    ];
    for (suffix, kinds) in suffixes {
        let family = name
            .strip_suffix(suffix)
            .and_then(|base| families.get_key_value(base));
        if let Some((base, kind)) = family {
            return if kinds.contains(&kind.as_str()) {
                Ok(())
            } else {
                Err(format!("{base} is a {kind}, not read as {suffix}"))
            };
        }
    }
    match families.get(name) {
        Some(kind) => Err(format!("{name} is a {kind}: read it with its suffix")),
        None => Err(format!(
            "the daemon exports no such family; it exports {:?}",
            families.keys().collect::<Vec<_>>()
        )),
    }
}

/// Every distinct `pglink_[a-z_]+` token in `text`.
fn metric_names(text: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(at) = text[from..].find("pglink_").map(|i| i + from) {
        let mut end = at + "pglink_".len();
        while end < bytes.len() && (bytes[end].is_ascii_lowercase() || bytes[end] == b'_') {
            end += 1;
        }
        // Part of a longer word (a file name such as `my_pglink_x`) is not a metric.
        let standalone =
            at == 0 || !(bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_');
        let name = &text[at..end];
        if standalone && !name.ends_with('_') && !names.iter().any(|n| n == name) {
            names.push(name.to_string());
        }
        from = end;
    }
    names
}

/// The values `label` is matched against in `text` (`label="a"`, `label!="a"`,
/// `label=~"a|b"`), skipping templated ones (`{{ $labels.x }}`).
fn matched_values(text: &str, label: &str) -> Vec<String> {
    let mut out = Vec::new();
    for op in ["=\"", "!=\"", "=~\"", "!~\""] {
        let needle = format!("{label}{op}");
        for (at, _) in text.match_indices(&needle) {
            let preceded_by_word = text[..at]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
            let rest = &text[at + needle.len()..];
            let value = &rest[..rest.find('"').unwrap_or(0)];
            if preceded_by_word || value.contains("{{") {
                continue;
            }
            out.extend(value.split('|').map(str::to_string));
        }
    }
    out
}

/// Runs promtool from the repository root and panics with its output unless it succeeds.
fn promtool(args: &[&str]) {
    let out = Command::new(ensure_installed())
        .args(args)
        .current_dir(root())
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run promtool: {e}"));
    assert!(
        out.status.success(),
        "promtool {} exited with {}:\n{}{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// promtool, from Debian's `prometheus` package installed once per machine if missing.
fn ensure_installed() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| PACKAGE.ensure()).clone()
}
