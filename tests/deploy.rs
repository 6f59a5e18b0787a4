//! The deployment files under `deploy/` against the code they deploy: every JSON file
//! parses, the ECS task definition has what the guide promises, the IAM policies allow
//! every AWS call the sources make (and grant no wildcard action), the systemd unit is
//! hardened (`systemd-analyze security` exposure <= 2.0), and the Dockerfile builds the
//! binary Cargo.toml names and runs it as non-root with a curl-free health check.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// Highest `systemd-analyze security` overall exposure the unit may have.
const MAX_EXPOSURE: f64 = 2.0;
/// AWS SDK calls the daemon's adapters make at least; a scanner that finds fewer is broken.
const MIN_DAEMON_CALLS: usize = 8;

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

// ---------------------------------------------------------------------------------------
// JSON files and the ECS task definition
// ---------------------------------------------------------------------------------------

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

#[test]
fn task_definition_is_fargate_read_only_and_health_checked() {
    let td = json("deploy/ecs/task-definition.json");
    assert_eq!(td["networkMode"], "awsvpc");
    let compat: Vec<&str> = td["requiresCompatibilities"]
        .as_array()
        .expect("requiresCompatibilities is an array")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        compat.contains(&"FARGATE"),
        "requiresCompatibilities: {compat:?}"
    );
    for (key, want) in [("cpu", "256"), ("memory", "512")] {
        let got = match &td[key] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        assert_eq!(got, want, "task {key}");
    }
    for key in ["taskRoleArn", "executionRoleArn"] {
        let arn = td[key].as_str().unwrap_or_default();
        assert!(arn.starts_with("arn:aws:iam::"), "{key}: {arn:?}");
    }

    let containers = td["containerDefinitions"]
        .as_array()
        .expect("containerDefinitions");
    let c = containers
        .iter()
        .find(|c| c["name"] == "pglink")
        .expect("a container named pglink");
    assert_eq!(c["essential"], true);
    assert_eq!(c["readonlyRootFilesystem"], true);
    assert_eq!(c["user"], "65532", "distroless nonroot uid");
    let stop = c["stopTimeout"].as_u64().expect("stopTimeout is a number");
    assert!(
        (10..=120).contains(&stop),
        "stopTimeout {stop}: the daemon needs ~5 s to stop; Fargate allows up to 120"
    );

    let check = &c["healthCheck"];
    let command: Vec<&str> = check["command"]
        .as_array()
        .expect("healthCheck.command")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        command,
        ["CMD", "/usr/local/bin/pglink", "healthcheck"],
        "the image has no shell and no curl: the binary probes itself"
    );
    for key in ["interval", "timeout", "retries", "startPeriod"] {
        assert!(check[key].is_u64(), "healthCheck.{key} missing");
    }

    let logs = &c["logConfiguration"];
    assert_eq!(logs["logDriver"], "awslogs");
    for key in ["awslogs-group", "awslogs-region", "awslogs-stream-prefix"] {
        assert!(
            logs["options"][key].is_string(),
            "logConfiguration.options.{key} missing"
        );
    }

    let env: BTreeMap<&str, &str> = c["environment"]
        .as_array()
        .expect("environment")
        .iter()
        .map(|e| {
            (
                e["name"].as_str().expect("environment name"),
                e["value"].as_str().expect("environment value"),
            )
        })
        .collect();
    for name in env.keys() {
        assert!(
            name.starts_with("PGLINK_") || name.starts_with("AWS_"),
            "environment variable {name}: only PGLINK_* and AWS_* belong here"
        );
        if name.starts_with("PGLINK_") {
            check_pglink_env_name(name, "task definition");
        }
    }
    assert_eq!(env.get("PGLINK_LOG__FORMAT"), Some(&"json"));
    assert!(
        env.contains_key("PGLINK_CONFIG"),
        "PGLINK_CONFIG names the file"
    );
    assert!(env.contains_key("PGLINK_AWS__REGION"));
    let listen = env
        .get("PGLINK_SERVER__LISTEN")
        .expect("PGLINK_SERVER__LISTEN: the default 127.0.0.1 is unreachable from outside");
    let port: u64 = listen
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .expect("listen has a port");
    assert!(listen.starts_with("0.0.0.0:"), "listen {listen}");
    let ports: Vec<u64> = c["portMappings"]
        .as_array()
        .expect("portMappings")
        .iter()
        .filter_map(|m| m["containerPort"].as_u64())
        .collect();
    assert!(ports.contains(&port), "portMappings {ports:?} lacks {port}");
    assert_eq!(
        port, 9187,
        "pglink healthcheck probes 127.0.0.1:9187 by default"
    );
}

// ---------------------------------------------------------------------------------------
// IAM: every AWS SDK call in the sources is allowed by the matching policy
// ---------------------------------------------------------------------------------------

/// Client fields on `RegionClients` (and the like) and the IAM service prefix of each.
const CLIENT_FIELDS: &[(&str, &str)] = &[
    ("elb", "elasticloadbalancing"),
    ("ec2", "ec2"),
    ("rds", "rds"),
    ("autoscaling", "autoscaling"),
    ("iam", "iam"),
];

/// Methods on an SDK client that are not API operations.
const NOT_OPERATIONS: &[&str] = &["clone", "config", "to_owned", "as_ref"];

/// Words whose IAM spelling is not just a capitalised snake_case word.
const WORD_SPELLINGS: &[(&str, &str)] = &[("db", "DB"), ("vpc", "Vpc")];

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Every client (`.field` on a struct such as `RegionClients`, or a bare variable such as
/// `ec2: &aws_sdk_ec2::Client`) followed, possibly across whitespace and newlines, by
/// `.snake_case_method(`: returns (IAM service prefix, SDK method name), in source order.
/// Paths (`aws_sdk_ec2::...`, `crate::ec2`) are not clients.
fn sdk_calls(source: &str) -> Vec<(&'static str, String)> {
    let bytes = source.as_bytes();
    let ident_at = |start: usize| {
        let mut end = start;
        while end < bytes.len() && is_ident(bytes[end]) {
            end += 1;
        }
        end
    };
    let skip_space = |mut i: usize| {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    };
    let mut calls = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        // Only at the start of an identifier.
        if !is_ident(bytes[i]) || (i > 0 && is_ident(bytes[i - 1])) {
            i += 1;
            continue;
        }
        let end = ident_at(i);
        let word = &source[i..end];
        let before = source[..i].trim_end().as_bytes().last().copied();
        let client = CLIENT_FIELDS.iter().find(|(f, _)| *f == word);
        if let (Some(&(_, service)), false) = (client, before == Some(b':')) {
            let dot = skip_space(end);
            if dot < bytes.len() && bytes[dot] == b'.' {
                let method_start = skip_space(dot + 1);
                let method_end = ident_at(method_start);
                let method = &source[method_start..method_end];
                let snake = method.starts_with(|c: char| c.is_ascii_lowercase())
                    && method
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
                let paren = skip_space(method_end);
                if snake
                    && paren < bytes.len()
                    && bytes[paren] == b'('
                    && !NOT_OPERATIONS.contains(&method)
                {
                    calls.push((service, method.to_string()));
                }
            }
        }
        i = end;
    }
    calls
}

/// `describe_db_instances` -> `DescribeDBInstances`.
fn action_name(method: &str) -> String {
    method
        .split('_')
        .filter(|w| !w.is_empty())
        .map(|word| {
            if let Some((_, spelled)) = WORD_SPELLINGS.iter().find(|(w, _)| *w == word) {
                return (*spelled).to_string();
            }
            let mut chars = word.chars();
            match chars.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

/// `service:Action` for every SDK call in the given files, with the files it appears in.
fn required_actions(files: &[PathBuf]) -> BTreeMap<String, BTreeSet<String>> {
    let mut actions: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for path in files {
        let source = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        let rel = path
            .strip_prefix(root())
            .unwrap_or(path)
            .display()
            .to_string();
        for (service, method) in sdk_calls(&source) {
            actions
                .entry(format!("{service}:{}", action_name(&method)))
                .or_default()
                .insert(rel.clone());
        }
    }
    actions
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

fn statements(policy: &Value) -> Vec<Value> {
    match &policy["Statement"] {
        Value::Array(s) => s.clone(),
        Value::Object(_) => vec![policy["Statement"].clone()],
        _ => Vec::new(),
    }
}

/// Actions (lower-cased: IAM action names are case-insensitive) some Allow statement names.
fn allowed_actions(policy: &Value) -> BTreeSet<String> {
    statements(policy)
        .iter()
        .filter(|s| s["Effect"] == "Allow")
        .flat_map(|s| strings(&s["Action"]))
        .map(|a| a.to_lowercase())
        .collect()
}

fn assert_covered(policy_rel: &str, required: &BTreeMap<String, BTreeSet<String>>) {
    let allowed = allowed_actions(&json(policy_rel));
    let missing: Vec<String> = required
        .iter()
        .filter(|(action, _)| !allowed.contains(&action.to_lowercase()))
        .map(|(action, files)| {
            let files: Vec<&str> = files.iter().map(String::as_str).collect();
            format!("{action} (called in {})", files.join(", "))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "{policy_rel} does not allow these AWS calls made by the code:\n  {}",
        missing.join("\n  ")
    );
}

fn daemon_sources() -> Vec<PathBuf> {
    vec![
        root().join("src/targets.rs"),
        root().join("src/discover.rs"),
    ]
}

#[test]
fn scanner_finds_calls_across_lines_and_ignores_the_rest() {
    let source = r#"
        let out = self
            .clients
            .elb
            .describe_target_health()
            .send();
        clients.ec2.create_security_group().group_name("x");
        c.rds . describe_db_subnet_groups ();
        c.autoscaling
            .attach_load_balancer_target_groups()
            .send();
        let host = "db.abc.us-east-1.rds.amazonaws.com";
        let client = self.clients.elb.clone();
        let field = self.elb_client.describe_tags();
        let x = settings.rds;
        let page = ec2
            .describe_vpc_endpoint_connections()
            .send();
        pending(ec2, service_id);
        let out = aws_sdk_ec2::Client::describe_vpcs(&client);
        let y = crate::rds.describe_db_clusters();
    "#;
    let calls: Vec<String> = sdk_calls(source)
        .into_iter()
        .map(|(service, method)| format!("{service}:{}", action_name(&method)))
        .collect();
    assert_eq!(
        calls,
        [
            "elasticloadbalancing:DescribeTargetHealth",
            "ec2:CreateSecurityGroup",
            "rds:DescribeDBSubnetGroups",
            "autoscaling:AttachLoadBalancerTargetGroups",
            "ec2:DescribeVpcEndpointConnections",
        ]
    );
}

#[test]
fn method_names_become_iam_action_names() {
    for (method, action) in [
        ("describe_target_health", "DescribeTargetHealth"),
        ("describe_db_instances", "DescribeDBInstances"),
        ("describe_db_clusters", "DescribeDBClusters"),
        ("describe_db_subnet_groups", "DescribeDBSubnetGroups"),
        ("describe_vpcs", "DescribeVpcs"),
        (
            "create_vpc_endpoint_service_configuration",
            "CreateVpcEndpointServiceConfiguration",
        ),
        ("add_tags", "AddTags"),
        ("create_service_linked_role", "CreateServiceLinkedRole"),
    ] {
        assert_eq!(action_name(method), action, "{method}");
    }
}

#[test]
fn daemon_policy_allows_every_call_the_daemon_makes() {
    let required = required_actions(&daemon_sources());
    let calls: usize = daemon_sources()
        .iter()
        .map(|p| sdk_calls(&std::fs::read_to_string(p).unwrap()).len())
        .sum();
    assert!(
        calls >= MIN_DAEMON_CALLS,
        "found only {calls} AWS SDK calls in src/targets.rs and src/discover.rs \
         (expected at least {MIN_DAEMON_CALLS}): the call scanner is broken. Found: {:?}",
        required.keys().collect::<Vec<_>>()
    );
    assert_covered("deploy/iam/daemon-policy.json", &required);
}

#[test]
fn daemon_policy_grants_nothing_the_daemon_does_not_call() {
    let required: BTreeSet<String> = required_actions(&daemon_sources())
        .into_keys()
        .map(|a| a.to_lowercase())
        .collect();
    let extra: Vec<String> = allowed_actions(&json("deploy/iam/daemon-policy.json"))
        .into_iter()
        .filter(|a| !required.contains(a))
        .collect();
    assert!(
        extra.is_empty(),
        "deploy/iam/daemon-policy.json allows actions src/targets.rs and src/discover.rs \
         never call: {extra:?}"
    );
}

#[test]
fn bootstrap_policy_allows_every_call_bootstrap_makes() {
    let dir = root().join("src/bootstrap");
    let files = files_under(&dir, ".rs");
    if files.is_empty() {
        // Nothing to check until the bootstrap module exists; the policy must still parse.
        json("deploy/iam/bootstrap-policy.json");
        return;
    }
    assert_covered(
        "deploy/iam/bootstrap-policy.json",
        &required_actions(&files),
    );
}

#[test]
fn policies_grant_no_wildcard_actions_and_name_every_statement() {
    let files = files_under(&root().join("deploy/iam"), ".json");
    assert!(files.len() >= 2, "IAM policies under deploy/iam: {files:?}");
    for path in files {
        let name = path.display().to_string();
        let policy: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(policy["Version"], "2012-10-17", "{name}: Version");
        let mut sids = BTreeSet::new();
        let all = statements(&policy);
        assert!(!all.is_empty(), "{name}: no statements");
        for s in all {
            let sid = s["Sid"].as_str().unwrap_or_default().to_string();
            assert!(!sid.is_empty(), "{name}: a statement has no Sid: {s}");
            assert!(sids.insert(sid.clone()), "{name}: duplicate Sid {sid}");
            if s["Effect"] == "Allow" {
                assert!(
                    s.get("NotAction").is_none(),
                    "{name} {sid}: Allow with NotAction grants everything else"
                );
            }
            let actions = strings(&s["Action"]);
            assert!(!actions.is_empty(), "{name} {sid}: no Action");
            for action in actions {
                assert!(
                    !action.contains('*'),
                    "{name} {sid}: wildcard action {action:?}; list the actions"
                );
                assert!(
                    action
                        .split_once(':')
                        .is_some_and(|(svc, op)| !svc.is_empty()
                            && op.starts_with(|c: char| c.is_ascii_uppercase())),
                    "{name} {sid}: {action:?} is not service:Action"
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// systemd
// ---------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------
// Dockerfile
// ---------------------------------------------------------------------------------------

/// Instructions of a Dockerfile: comments dropped, `\` continuations joined.
fn instructions(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if current.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(head) => {
                current.push_str(head.trim_end());
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                out.push(std::mem::take(&mut current));
            }
        }
    }
    if !current.trim().is_empty() {
        out.push(current);
    }
    out
}

fn keyword(instruction: &str) -> String {
    instruction
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_uppercase()
}

fn bin_name() -> String {
    let manifest: toml::Table = read("Cargo.toml").parse().expect("Cargo.toml parses");
    let bins = manifest
        .get("bin")
        .and_then(|b| b.as_array())
        .expect("Cargo.toml has [[bin]]");
    assert_eq!(bins.len(), 1, "one [[bin]] in Cargo.toml");
    assert!(
        manifest
            .get("profile")
            .and_then(|p| p.get("release"))
            .is_some(),
        "Cargo.toml has [profile.release]"
    );
    bins[0]["name"].as_str().expect("[[bin]] name").to_string()
}

#[test]
fn dockerfile_builds_the_binary_and_runs_it_as_non_root() {
    let all = instructions(&read("deploy/Dockerfile"));
    let froms: Vec<usize> = all
        .iter()
        .enumerate()
        .filter(|(_, i)| keyword(i) == "FROM")
        .map(|(n, _)| n)
        .collect();
    assert!(froms.len() >= 2, "multi-stage: expected two FROM lines");
    let builder = &all[froms[0]..froms[froms.len() - 1]];
    let last = &all[froms[froms.len() - 1]..];
    let bin = bin_name();

    let build = builder
        .iter()
        .find(|i| keyword(i) == "RUN" && i.contains("cargo build"))
        .expect("the builder runs cargo build");
    for flag in ["--release", "--locked", &format!("--bin {bin}")] {
        assert!(build.contains(flag), "{build:?} lacks {flag}");
    }
    let workdir = builder
        .iter()
        .rev()
        .find(|i| keyword(i) == "WORKDIR")
        .and_then(|i| i.split_whitespace().nth(1))
        .expect("the builder sets WORKDIR")
        .trim_end_matches('/')
        .to_string();

    let copy = last
        .iter()
        .find(|i| keyword(i) == "COPY" && i.contains("--from="))
        .expect("the final stage copies from the builder");
    let parts: Vec<&str> = copy
        .split_whitespace()
        .skip(1)
        .filter(|p| !p.starts_with("--"))
        .collect();
    assert_eq!(parts.len(), 2, "COPY --from=builder SRC DEST: {copy:?}");
    let (src, dest) = (parts[0], parts[1]);
    assert_eq!(
        src,
        format!("{workdir}/target/release/{bin}"),
        "the path cargo build --release writes the [[bin]] named {bin:?} to"
    );
    assert_eq!(dest, "/usr/local/bin/pglink");
    let copies = last.iter().filter(|i| keyword(i) == "COPY").count();
    assert_eq!(copies, 1, "the final stage copies only the binary");

    let user = last
        .iter()
        .rev()
        .find(|i| keyword(i) == "USER")
        .and_then(|i| i.split_whitespace().nth(1))
        .expect("the final stage sets USER");
    let name = user.split(':').next().unwrap_or_default();
    assert!(
        name != "root" && name != "0",
        "the final stage runs as {user}"
    );

    let health = last
        .iter()
        .find(|i| keyword(i) == "HEALTHCHECK")
        .expect("HEALTHCHECK");
    assert!(
        health.contains(dest) && health.contains("healthcheck"),
        "HEALTHCHECK must run `pglink healthcheck`: {health:?}"
    );
    let entry = last
        .iter()
        .find(|i| keyword(i) == "ENTRYPOINT")
        .expect("ENTRYPOINT");
    assert!(entry.contains(dest), "ENTRYPOINT runs {dest}: {entry:?}");

    for i in last {
        let lower = i.to_lowercase();
        let words: Vec<&str> = lower
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
            .collect();
        assert!(
            !words.contains(&"curl") && !words.contains(&"wget"),
            "no curl/wget in the final stage: {i:?}"
        );
        if keyword(i) == "ENV" {
            for name in i
                .split_whitespace()
                .skip(1)
                .filter_map(|kv| kv.split_once('=').map(|(k, _)| k))
            {
                check_pglink_env_name(name, "Dockerfile ENV");
            }
        }
    }
}
