//! Bad input through the real binary: every case exits 2 with one line on stderr that names
//! the key or flag and what was expected, and none panics.

mod support;

use support::fixture;

const BIN: &str = env!("CARGO_BIN_EXE_pglink");
const TG: &str =
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/pglink-a/0123456789abcdef";

fn target() -> String {
    format!("[[targets]]\nname = \"a\"\nendpoint = \"a.example.com\"\ntarget_group = \"{TG}\"\n")
}

/// (config text, extra args, what the error line must contain)
fn cases() -> Vec<(String, Vec<&'static str>, &'static str)> {
    let t = target();
    let with = |extra: &str| format!("{t}{extra}");
    vec![
        ("[sync\ninterval = 1".into(), vec![], "TOML"),
        ("= 3".into(), vec![], "TOML"),
        (with("[sync]\ninterval = 5\n"), vec![], "sync.interval"),
        (with("[sync]\ninterval = \"soon\"\n"), vec![], "sync.interval"),
        (with("[sync]\ninterval = \"0s\"\n"), vec![], "sync.interval"),
        (with("[sync]\ninterval = \"2h\"\n"), vec![], "sync.interval"),
        (with("[sync]\ndrift_check = \"100ms\"\n"), vec![], "sync.drift_check"),
        (with("[sync]\nconfirmations = 0\n"), vec![], "sync.confirmations"),
        (with("[sync]\nconfirmations = -1\n"), vec![], "sync.confirmations"),
        (with("[sync]\nconfirmations = 1.5\n"), vec![], "sync.confirmations"),
        (with("[sync]\nmax_backoff = \"forever\"\n"), vec![], "sync.max_backoff"),
        (with("[sync]\nturbo = true\n"), vec![], "sync.turbo"),
        (with("[dns]\nnameservers = \"10.0.0.2\"\n"), vec![], "dns.nameservers"),
        (with("[dns]\nnameservers = [\"10.0.0.2:99999\"]\n"), vec![], "dns.nameservers[0]"),
        (with("[dns]\ntimeout = \"-1s\"\n"), vec![], "dns.timeout"),
        (with("[dns]\nmax_queries_per_second = 5000\n"), vec![], "dns.max_queries_per_second"),
        (with("[aws]\nmax_describe_per_second = 0\n"), vec![], "aws.max_describe_per_second"),
        (with("[aws]\nendpoint_url = \"ftp://x\"\n"), vec![], "aws.endpoint_url"),
        (with("[aws]\nendpoint_url = \"http://10.0.0.5:5000\"\n"), vec![], "aws.endpoint_url"),
        (with("[aws]\nendpoint_url = \"http://moto.internal\"\nallow_clear_text_endpoint = \"yes\"\n"), vec![], "aws.allow_clear_text_endpoint"),
        (with("[aws]\nregion = \"\"\n"), vec![], "aws.region"),
        (with("[aws]\nsecret = \"x\"\n"), vec![], "aws.secret"),
        (with("[server]\nlisten = \"localhost\"\n"), vec![], "server.listen"),
        (with("[server]\nnot_ready_after = \"never\"\n"), vec![], "server.not_ready_after"),
        (with("[log]\nformat = \"yaml\"\n"), vec![], "log.format"),
        (with("[log]\nlevel = \"[\"\n"), vec![], "log.level"),
        (with("[extra]\n"), vec![], "extra"),
        (t.replace("a.example.com", "-bad-.example.com"), vec![], "targets[0].endpoint"),
        (t.replace("a.example.com", "a example.com"), vec![], "targets[0].endpoint"),
        (t.replace(TG, "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/net/x/1"), vec![], "targets[0].target_group"),
        (t.replace(TG, "arn:aws:s3:::bucket"), vec![], "targets[0].target_group"),
        (t.replace("name = \"a\"", "name = \"has space\""), vec![], "targets[0].name"),
        (t.replace("name = \"a\"\n", ""), vec![], "targets[0].name"),
        (format!("{t}port = 0\n"), vec![], "targets[0].port"),
        (format!("{t}port = \"5432\"\n"), vec![], "targets[0].port"),
        (format!("{t}db_cluster = \"c\"\n"), vec![], "targets[0].endpoint"),
        (format!("{t}adopt = \"yes\"\n"), vec![], "targets[0].adopt"),
        (format!("{t}role = \"readers\"\n"), vec![], "targets[0].role"),
        (format!("{t}proxy_endpoint = \"ro\"\n"), vec![], "targets[0].proxy_endpoint"),
        (format!("{t}db_proxy = \"p\"\n"), vec![], "targets[0].endpoint"),
        (t.replace("endpoint = \"a.example.com\"", "db_proxy = \"p_1\""), vec![], "targets[0].db_proxy"),
        (t.replace("endpoint = \"a.example.com\"", "db_cluster = \"c\"\nrole = \"reader\""), vec![], "targets[0].role"),
        (format!("{t}adopt = 2\n"), vec![], "targets[0].adopt"),
        (with("[sync]\nrotation_hold = \"10s\"\n"), vec![], "sync.rotation_hold"),
        (t.replace("a.example.com", "db.cluster-ro-abc123.us-east-1.rds.amazonaws.com"), vec![], "targets[0].endpoint"),
        (t.replace("a.example.com", "db.cluster-custom-abc123.us-east-1.rds.amazonaws.com"), vec![], "targets[0].endpoint"),
        (format!("{t}{}", t.replace(TG, &TG.replace("abcdef", "abcde0"))), vec![], "targets[1].name"),
        (format!("{t}{}", t.replace("\"a\"\n", "\"b\"\n")), vec![], "targets[1].target_group"),
        ("[[targets]]\nname = \"a\"\nendpoint = \"a.example.com\"\n".into(), vec![], "targets[0].target_group"),
        (with("[bootstrap]\nname = \"x_y\"\ndatabase = { ip = \"10.0.0.1\" }\n"), vec![], "bootstrap.name"),
        (with("[bootstrap]\nname = \"x\"\ndatabase = { rds = \"a\" }\n"), vec![], "bootstrap.database.rds"),
        (with("[bootstrap]\nname = \"x\"\ndatabase = { ip = \"10.0.0.1\" }\nport = 70000\n"), vec![], "bootstrap.port"),
        (with("[bootstrap]\nname = \"x\"\ndatabase = { ip = \"10.0.0.1\" }\nvpc_id = \"vpc_1\"\n"), vec![], "bootstrap.vpc_id"),
        (with("[bootstrap]\nname = \"x\"\ndatabase = { ip = \"10.0.0.1\" }\ndatabase_security_group_id = \"sg-zz\"\n"), vec![], "bootstrap.database_security_group_id"),
        (with("[bootstrap]\nname = \"x\"\ndatabase = { ip = \"10.0.0.1\" }\nacceptance_required = \"yes\"\n"), vec![], "bootstrap.acceptance_required"),
        (with("[bootstrap]\nname = \"x\"\ndatabase = { ec2_instance = \"db-1\" }\n"), vec![], "bootstrap.database.ec2_instance"),
        (with("[bootstrap]\nname = \"x\"\ndatabase = { ip = \"10.0.0.1\" }\nallowed_principals = [\"*\"]\n"), vec![], "bootstrap.allowed_principals[0]"),
        (with("[bootstrap]\nname = \"x\"\nmode = \"resource\"\ndatabase = { ip = \"10.0.0.1\" }\nallowed_principals = [\"*\"]\n"), vec![], "bootstrap.allowed_principals[0]"),
        (with("[bootstrap]\nname = \"x\"\nmode = \"nlb\"\ndatabase = { ip = \"10.0.0.1\" }\n"), vec![], "bootstrap.mode"),
        (with("[bootstrap]\nname = \"x\"\ndatabase = { host = \"db.example.com\" }\n"), vec![], "bootstrap.database.host"),
        (with("[bootstrap]\nname = \"Big\"\nmode = \"resource\"\ndatabase = { ip = \"10.0.0.1\" }\nallowed_principals = [\"072088201116\"]\n"), vec![], "bootstrap.name"),
        (with("[bootstrap]\nname = \"x\"\ndatabase = { ip = \"10.0.0.1\" }\nallowed_principals = [\"arn:aws:iam::346425330055:root\", \"arn:aws:iam::*:root\"]\n"), vec![], "bootstrap.allowed_principals[1]"),
        (t.clone(), vec!["--output", "xml"], "--output"),
        (t.clone(), vec!["--log-format", "logfmt"], "--log-format"),
        (t.clone(), vec!["--dry-run=maybe"], "--dry-run"),
        (t.clone(), vec!["--detailed-exitcode"], "--detailed-exitcode"),
        (t.clone(), vec!["--role", "bootstrap", "--account", "12345"], "--account"),
        (t.clone(), vec!["--role", "daemon", "--account", "123456789012"], "--account"),
        (t.clone(), vec!["--role", "daemon", "--role-arn", "arn:aws:iam::210987654321:role/x"], "--role-arn"),
    ]
}

#[test]
fn every_bad_input_exits_2_with_one_line_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let cases = cases();
    assert!(cases.len() >= 30);
    for (i, (text, extra, needle)) in cases.into_iter().enumerate() {
        let path = dir.path().join(format!("case{i}.toml"));
        std::fs::write(&path, &text).unwrap();
        // Flag cases go to the command that has the flag; the rest to check-config.
        let command = match extra.first().copied() {
            Some("--output") => "plan",
            Some("--dry-run=maybe") => "sync",
            Some("--detailed-exitcode") => "bootstrap",
            Some("--role") => "iam-policy",
            _ => "check-config",
        };
        let mut args = vec![command, "-c", path.to_str().unwrap()];
        args.extend(extra.iter().copied());
        let out = fixture::pglink(BIN, &args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(2),
            "case {i} {args:?}:\n{text}\n{stderr}"
        );
        assert!(
            stderr.contains(needle),
            "case {i}: expected {needle:?} in {stderr}\n{text}"
        );
        assert!(!stderr.contains("panicked"), "case {i}: {stderr}");
        if extra.is_empty() {
            assert_eq!(
                stderr.trim().lines().count(),
                1,
                "case {i}: not one line: {stderr}"
            );
        }
    }
}

#[test]
fn missing_unreadable_and_conflicting_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let unreadable = dir.path().join("secret.toml");
    std::fs::write(&unreadable, target()).unwrap();
    let perms = std::os::unix::fs::PermissionsExt::from_mode(0o000);
    std::fs::set_permissions(&unreadable, perms).unwrap();
    let dir_path = dir.path().to_str().unwrap().to_string();
    let mut cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "check-config".into(),
                "-c".into(),
                "/no/such/pglink.toml".into(),
            ],
            "not found",
        ),
        (
            vec!["check-config".into(), "-c".into(), dir_path],
            "directory",
        ),
        (vec!["run".into()], "PGLINK_CONFIG"),
        (
            vec![
                "run".into(),
                "-c".into(),
                dir.path().join("resource.toml").to_str().unwrap().into(),
            ],
            "in resource mode, where AWS follows the database itself: it needs no daemon",
        ),
        (
            vec![
                "bootstrap".into(),
                "-c".into(),
                dir.path().join("nobootstrap.toml").to_str().unwrap().into(),
            ],
            "bootstrap",
        ),
    ];
    std::fs::write(dir.path().join("nobootstrap.toml"), target()).unwrap();
    std::fs::write(
        dir.path().join("resource.toml"),
        "[bootstrap]\nname = \"analytics\"\nmode = \"resource\"\ndatabase = { db_instance = \"analytics\" }\nallowed_principals = [\"072088201116\"]\n",
    )
    .unwrap();
    // Root reads any file, whatever its mode: only check unreadable files as another user.
    let is_root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(false);
    if !is_root {
        cases.push((
            vec![
                "check-config".into(),
                "-c".into(),
                unreadable.to_str().unwrap().into(),
            ],
            "ermission",
        ));
    }
    for (args, needle) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = fixture::pglink(BIN, &args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(needle),
            "{args:?}: expected {needle:?} in {stderr}"
        );
        assert_eq!(stderr.trim().lines().count(), 1, "{args:?}: {stderr}");
    }
}

/// The SDK's own endpoint variables get the clear-text rule of `aws.endpoint_url`.
#[test]
fn sdk_endpoint_variables_follow_the_clear_text_rule() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, target()).unwrap();
    let check = |name: &str, value: &str| {
        fixture::pglink(BIN, &["check-config", "-c", path.to_str().unwrap()])
            .env(name, value)
            .output()
            .unwrap()
    };
    let out = check(
        "AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2",
        "http://10.0.0.5:5000",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2")
            && stderr.contains("clear text"),
        "{stderr}"
    );
    assert_eq!(
        check("AWS_ENDPOINT_URL", "http://127.0.0.1:5000")
            .status
            .code(),
        Some(0)
    );
    // Another service's endpoint (S3 in a shared pod) is not pglink's business.
    let s3 = check("AWS_ENDPOINT_URL_S3", "http://minio.internal:9000");
    assert_eq!(s3.status.code(), Some(0));
    assert_eq!(
        check("AWS_ENDPOINT_URL", "https://vpce.example.com")
            .status
            .code(),
        Some(0)
    );
}
