//! `pglink sync`, `plan` and `check-config` as a user runs them: exit codes, output, and
//! what they do (or do not do) to the target group in the emulator.

mod support;

use std::net::IpAddr;
use std::process::Output;

use support::dns::{Behaviour, TestDns};
use support::fixture::{self, set, Clients, TargetEntry};
use support::moto::Moto;

const BIN: &str = env!("CARGO_BIN_EXE_pglink");
const HOST: &str = "orders.c9akciq32.us-east-1.rds.amazonaws.com";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn answer(dns: &TestDns, addr: &str) {
    dns.set(
        HOST,
        Behaviour::Addresses {
            ips: vec![ip(addr)],
            ttl: 1,
        },
    );
}

fn pglink(args: &[&str]) -> Output {
    fixture::pglink(BIN, args).output().expect("run pglink")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

struct Setup {
    _moto: Moto,
    dns: TestDns,
    clients: Clients,
    arn: String,
    _dir: tempfile::TempDir,
    config: String,
}

async fn setup() -> Setup {
    let moto = Moto::start();
    let clients = Clients::new(&moto.endpoint).await;
    let net = fixture::network(&clients.ec2, "10.0.0.0/16").await;
    let arn = fixture::target_group(&clients.elb, &net.vpc_id, "pglink-orders", true).await;
    let dns = TestDns::start();
    let dir = tempfile::tempdir().unwrap();
    let text = fixture::config_text(
        &moto.endpoint,
        dns.addr,
        "100ms",
        &[TargetEntry::endpoint("orders", HOST, &arn)],
    );
    let config = fixture::write_config(dir.path(), &text)
        .to_str()
        .unwrap()
        .to_string();
    Setup {
        _moto: moto,
        dns,
        clients,
        arn,
        _dir: dir,
        config,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_converges_in_one_run_and_reports_failures_with_exit_1() {
    let s = setup().await;
    answer(&s.dns, "10.0.1.10");
    let out = pglink(&["sync", "-c", &s.config]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        fixture::registered(&s.clients.elb, &s.arn).await,
        set(&["10.0.1.10:5432"])
    );

    // A failover is finished in one run: the new target in, then the old one out.
    answer(&s.dns, "10.0.2.20");
    let out = pglink(&["sync", "-c", &s.config]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        fixture::registered(&s.clients.elb, &s.arn).await,
        set(&["10.0.2.20:5432"])
    );

    // --dry-run logs the change and makes none.
    answer(&s.dns, "10.0.3.30");
    let out = pglink(&["sync", "-c", &s.config, "--dry-run"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("would register"), "{}", text(&out));
    assert_eq!(
        fixture::registered(&s.clients.elb, &s.arn).await,
        set(&["10.0.2.20:5432"])
    );

    s.dns.set(HOST, Behaviour::ServFail);
    let out = pglink(&["sync", "-c", &s.config]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("SERVFAIL"), "{}", text(&out));
    assert_eq!(
        fixture::registered(&s.clients.elb, &s.arn).await,
        set(&["10.0.2.20:5432"])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_shows_the_changes_and_makes_none() {
    let s = setup().await;
    answer(&s.dns, "10.0.1.10");
    assert_eq!(pglink(&["sync", "-c", &s.config]).status.code(), Some(0));
    answer(&s.dns, "10.0.2.20");

    let out = pglink(&["plan", "-c", &s.config, "--output", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let doc: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("plan --output json is JSON");
    assert_eq!(doc["schema_version"], 2);
    let t = &doc["targets"][0];
    assert_eq!(t["name"], "orders");
    assert_eq!(t["resolved"], serde_json::json!(["10.0.2.20"]));
    assert_eq!(t["registered"][0]["ip"], "10.0.1.10");
    // One shape for a target everywhere: {ip, port, state}; null for one not in the group.
    assert_eq!(
        t["register"],
        serde_json::json!([{"ip": "10.0.2.20", "port": 5432, "state": null}])
    );
    assert_eq!(
        t["deregister"],
        serde_json::json!([{"ip": "10.0.1.10", "port": 5432, "state": "healthy"}])
    );
    assert_eq!(t["in_sync"], false);

    // As Terraform's plan: 3 = read fine, changes pending.
    let out = pglink(&["plan", "-c", &s.config, "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let out = pglink(&["plan", "-c", &s.config]);
    let human = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        human.contains("register:    10.0.2.20:5432") && human.contains("changes pending"),
        "{human}"
    );
    assert_eq!(
        fixture::registered(&s.clients.elb, &s.arn).await,
        set(&["10.0.1.10:5432"]),
        "plan changed the group"
    );

    // In sync: 0, with or without --detailed-exitcode.
    answer(&s.dns, "10.0.1.10");
    let out = pglink(&["plan", "-c", &s.config, "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // A target that could not be read: the error is in the output, and the exit code is 1,
    // so that a script can trust exit 0.
    s.dns.set(HOST, Behaviour::NxDomain);
    let out = pglink(&["plan", "-c", &s.config, "--output", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let detailed = pglink(&["plan", "-c", &s.config, "--detailed-exitcode"]);
    assert_eq!(
        detailed.status.code(),
        Some(1),
        "an error wins over pending changes"
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        doc["targets"][0]["error"]
            .as_str()
            .unwrap()
            .contains("NXDOMAIN"),
        "{doc}"
    );
}

#[test]
fn check_config_prints_the_effective_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    let arn =
        "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/pglink-x/0123456789abcdef";
    std::fs::write(
        &path,
        format!(
            "[[targets]]\nname = \"x\"\nendpoint = \"x.example.com\"\ntarget_group = \"{arn}\"\n"
        ),
    )
    .unwrap();
    let out = fixture::pglink(BIN, &["check-config"])
        .env("PGLINK_CONFIG", &path)
        .env("PGLINK_SYNC__INTERVAL", "3s")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("interval = \"3s\""), "{stdout}");
    assert!(stdout.contains("drift_check = \"60s\""), "{stdout}");
    let reparsed: toml::Value = toml::from_str(&stdout).expect("output is TOML");
    assert_eq!(reparsed["targets"][0]["name"].as_str(), Some("x"));
}

#[test]
fn bad_input_exits_2_with_one_line_naming_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[sync]\ninterval = \"soon\"\n").unwrap();
    let empty = dir.path().join("empty.toml");
    std::fs::write(&empty, "").unwrap();
    let bad = bad.to_str().unwrap();
    let empty = empty.to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["check-config", "-c", bad], "sync.interval"),
        (vec!["sync", "-c", bad], "sync.interval"),
        (vec!["run", "-c", "/nonexistent.toml"], "/nonexistent.toml"),
        (vec!["plan", "-c", empty], "targets"),
        (vec!["run"], "PGLINK_CONFIG"),
        (vec!["plan", "-c", empty, "--output", "yaml"], "--output"),
        (vec!["sync", "--dry-rum"], "--dry-rum"),
        (vec!["frobnicate"], "frobnicate"),
    ];
    for (args, needle) in cases {
        let out = pglink(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(needle),
            "{args:?}: expected {needle:?} in {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        if args[0] != "frobnicate" && !args.iter().any(|a| a.starts_with("--")) {
            assert_eq!(
                stderr.trim().lines().count(),
                1,
                "{args:?}: not one line: {stderr}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_one_line_per_change() {
    let s = setup().await;
    answer(&s.dns, "10.0.1.10");
    let out = pglink(&["--log-format", "json", "sync", "-c", &s.config]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let change = lines
        .iter()
        .find(|l| l["message"] == "target change")
        .unwrap_or_else(|| panic!("no change line in {lines:?}"));
    assert_eq!(change["action"], "registering");
    assert_eq!(change["ip"], "10.0.1.10");
    assert_eq!(change["port"], 5432);
    assert_eq!(change["target_name"], "orders");
    assert_eq!(change["hostname"], HOST);
    assert!(change["timestamp"].is_string() && change["level"] == "INFO");
}

/// A first run without credentials says so, with the fix, instead of "could not reach AWS".
/// (Nothing leaves the machine: the endpoint is a closed loopback port, and the SDK gives up
/// before sending anything.)
#[test]
fn missing_or_expired_credentials_are_named_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        "[aws]\nregion = \"us-east-1\"\nendpoint_url = \"http://127.0.0.1:9\"\n\n[dns]\nnameservers = [\"127.0.0.1:9\"]\ntimeout = \"200ms\"\n\n[[targets]]\nname = \"a\"\nendpoint = \"10.0.0.5\"\ntarget_group = \"arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/pglink-a/0123456789abcdef\"\n",
    )
    .unwrap();
    let run = |home: &std::path::Path, profile: Option<&str>| {
        let mut cmd = std::process::Command::new(BIN);
        cmd.args(["plan", "-c", config.to_str().unwrap()])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", home)
            .env("AWS_EC2_METADATA_DISABLED", "true");
        if let Some(p) = profile {
            cmd.env("AWS_PROFILE", p);
        }
        cmd.output().expect("run pglink")
    };
    let out = run(dir.path(), None);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("no AWS credentials found: set AWS_PROFILE")
            && !stdout.contains("could not reach AWS"),
        "{stdout}"
    );
    // An SSO profile whose session was never started (or has expired).
    let aws = dir.path().join(".aws");
    std::fs::create_dir_all(&aws).unwrap();
    std::fs::write(
        aws.join("config"),
        "[profile sso]\nsso_start_url = https://example.awsapps.com/start\nsso_region = us-east-1\nsso_account_id = 123456789012\nsso_role_name = reader\n",
    )
    .unwrap();
    let out = run(dir.path(), Some("sso"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("run `aws sso login`"), "{stdout}");
}

/// `--version` and `pglink_build_info` carry the git revision the binary was built from.
#[test]
fn version_names_the_git_revision() {
    let out = pglink(&["--version"]);
    assert_eq!(out.status.code(), Some(0));
    let revision = env!("PGLINK_REVISION");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("pglink {} ({revision})\n", env!("CARGO_PKG_VERSION"))
    );
    if std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(".git")
        .exists()
    {
        assert!(
            revision.len() == 12 && revision.bytes().all(|b| b.is_ascii_hexdigit()),
            "a checkout's build knows its revision: {revision:?}"
        );
    }
}

/// Completion scripts for every shell clap knows; bash's really completes: sourced into
/// bash, its function offers `bootstrap` for `pglink boot` and the flags of a command.
#[test]
fn completions_complete_commands_and_flags() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = pglink(&["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}: {}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("bootstrap"),
            "{shell}"
        );
    }
    let script = String::from_utf8(pglink(&["completions", "bash"]).stdout).unwrap();
    let complete = |line: &str| {
        let words: Vec<&str> = line.split(' ').collect();
        let program = format!(
            "{script}\nCOMP_WORDS=({line}); COMP_CWORD={}; COMP_LINE='{line}'; COMP_POINT={}; \
             _pglink pglink '{}' '{}'; echo \"${{COMPREPLY[@]}}\"",
            words.len() - 1,
            line.len(),
            words[words.len() - 1],
            words[words.len() - 2],
        );
        let out = std::process::Command::new("bash")
            .args(["--norc", "-c", &program])
            .output()
            .expect("run bash");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(complete("pglink boot"), "bootstrap");
    assert!(complete("pglink teardown --re").contains("--reject-connections"));
    assert_eq!(pglink(&["completions", "tcsh"]).status.code(), Some(2));
}

/// `pglink man` and `pglink man COMMAND` are roff pages that groff renders without a
/// warning; an unknown command is bad input naming `man`.
#[test]
fn man_pages_render_without_warnings() {
    for (args, expected) in [
        (vec!["man"], "bootstrap"),
        (vec!["man", "teardown"], "reject-connections"),
        (vec!["man", "iam-policy"], "role-arn"),
    ] {
        let out = pglink(&args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", text(&out));
        let mut groff = std::process::Command::new("groff")
            .args(["-man", "-Tutf8", "-ww"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run groff (Debian's groff-base)");
        use std::io::Write;
        groff.stdin.take().unwrap().write_all(&out.stdout).unwrap();
        let rendered = groff.wait_with_output().unwrap();
        let warnings = String::from_utf8_lossy(&rendered.stderr);
        assert!(warnings.is_empty(), "{args:?}: groff warned: {warnings}");
        let page = String::from_utf8_lossy(&rendered.stdout).replace('\u{2010}', "-");
        let plain: String = strip_overstrike(&page);
        assert!(plain.contains(expected), "{args:?}: {plain}");
    }
    let out = pglink(&["man", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("error: man: no command \"nope\"") && err.lines().count() == 1,
        "{err}"
    );
}

/// groff's terminal output emboldens by overstriking (`b\bb`): keep the printed letters.
fn strip_overstrike(text: &str) -> String {
    let mut out: Vec<char> = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{8}' {
            out.pop();
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out.into_iter().collect()
}
