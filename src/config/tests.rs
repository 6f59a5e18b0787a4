use std::io::Write;
use std::time::Duration;

use super::*;

const TG: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/pglink-analytics/0123456789abcdef";

fn file(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f
}

fn minimal() -> String {
    format!("[[targets]]\nname = \"analytics\"\nendpoint = \"analytics.abc.us-east-1.rds.amazonaws.com\"\ntarget_group = \"{TG}\"\n")
}

/// figment reads the real environment: tests that set PGLINK_* take this lock.
static ENV_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn load_text(text: &str) -> Result<Config, ConfigError> {
    let _guard = ENV_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let f = file(text);
    load(f.path()).map(|(_, c)| c)
}

fn error_of(text: &str) -> String {
    load_text(text).unwrap_err().to_string()
}

#[test]
fn defaults_fill_what_is_left_out() {
    let c = load_text(&minimal()).unwrap();
    assert_eq!(c.sync.interval, Duration::from_secs(1));
    assert_eq!(c.sync.drift_check, Duration::from_secs(60));
    assert_eq!(c.sync.confirmations, 2);
    assert_eq!(c.dns.timeout, Duration::from_secs(1));
    assert!(c.dns.nameservers.is_empty());
    assert_eq!(c.server.listen.to_string(), "127.0.0.1:9187");
    assert_eq!(c.targets[0].target_group.region, "us-east-1");
    assert_eq!(c.targets[0].port, None);
}

#[test]
fn the_example_config_is_valid() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.toml");
    let _guard = ENV_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let (_, c) = load(&path).unwrap();
    assert!(!c.targets.is_empty());
    assert!(c.bootstrap.is_some());
}

#[test]
fn environment_overrides_the_file() {
    let _guard = ENV_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let f = file(&minimal());
    std::env::set_var("PGLINK_SYNC__INTERVAL", "250ms");
    std::env::set_var("PGLINK_SYNC__CONFIRMATIONS", "3");
    std::env::set_var("PGLINK_CONFIG", "/ignored/as/a/key");
    let result = load(f.path());
    std::env::remove_var("PGLINK_SYNC__INTERVAL");
    std::env::remove_var("PGLINK_SYNC__CONFIRMATIONS");
    std::env::remove_var("PGLINK_CONFIG");
    let (_, c) = result.unwrap();
    assert_eq!(c.sync.interval, Duration::from_millis(250));
    assert_eq!(c.sync.confirmations, 3);
}

#[test]
fn environment_errors_name_the_key_and_the_source() {
    let _guard = ENV_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let f = file(&minimal());
    std::env::set_var("PGLINK_SYNC__BOGUS", "1");
    let err = load(f.path()).unwrap_err().to_string();
    std::env::remove_var("PGLINK_SYNC__BOGUS");
    assert!(
        err.contains("sync.bogus") && err.contains("environment"),
        "{err}"
    );
}

#[test]
fn bad_inputs_name_the_key() {
    let m = minimal();
    let cases: Vec<(String, &str)> = vec![
        (format!("{m}[sync]\ninterval = \"fast\"\n"), "sync.interval"),
        (format!("{m}[sync]\ninterval = \"1ms\"\n"), "sync.interval"),
        (format!("{m}[sync]\nconfirmations = 0\n"), "sync.confirmations"),
        (format!("{m}[sync]\nconfirmations = \"two\"\n"), "sync.confirmations"),
        (format!("{m}[sync]\ndrift_check = \"500ms\"\n"), "sync.drift_check"),
        (format!("{m}[sync]\nrotation_hold = \"5s\"\n"), "sync.rotation_hold"),
        (format!("{m}adopt = \"yes\"\n"), "targets[0].adopt"),
        (format!("{m}adopt = 1\n"), "targets[0].adopt"),
        (m.replace("analytics.abc.", "analytics.cluster-ro-abc."), "targets[0].endpoint"),
        (m.replace("analytics.abc.", "analytics.cluster-custom-abc."), "targets[0].endpoint"),
        (format!("{m}[sync]\nintervall = \"1s\"\n"), "sync.intervall"),
        (format!("{m}[dns]\nnameservers = [\"dns.example\"]\n"), "dns.nameservers[0]"),
        (format!("{m}[dns]\ntimeout = \"1 fortnight\"\n"), "dns.timeout"),
        (format!("{m}[server]\nlisten = \"9187\"\n"), "server.listen"),
        (format!("{m}[aws]\nendpoint_url = \"127.0.0.1:5000\"\n"), "aws.endpoint_url"),
        (format!("{m}[aws]\nregion = \"US East\"\n"), "aws.region"),
        (format!("{m}[log]\nformat = \"xml\"\n"), "log.format"),
        (format!("{m}[surprise]\n"), "surprise"),
        (m.replace("analytics.abc", "bad_host.abc"), "targets[0].endpoint"),
        (m.replace(TG, "arn:aws:elasticloadbalancing:us-east-1:123:targetgroup/x/1"), "targets[0].target_group"),
        (m.replace(TG, "pglink-analytics"), "targets[0].target_group"),
        (m.replace("pglink-analytics/", "pglink-*/"), "targets[0].target_group"),
        (m.replace(":us-east-1:", ":*:"), "targets[0].target_group"),
        (format!("{m}role_arn = \"arn:aws:iam::123456789012:role/*/pglink\"\n"), "targets[0].role_arn"),
        ("[bootstrap]\nname = \"x\"\ndatabase = { autoscaling_group = \"pg-*\" }\n".to_string(), "bootstrap.database.autoscaling_group"),
        (m.replace("name = \"analytics\"", "name = \"\""), "targets[0].name"),
        (format!("{m}port = 70000\n"), "targets[0].port"),
        (format!("{m}db_instance = \"analytics\"\n"), "targets[0].endpoint"),
        (format!("{m}{}", m.replace(TG, &TG.replace("abcdef", "abcdee"))), "targets[1].name"),
        (format!("{m}{}", m.replace("\"analytics\"\n", "\"other\"\n")), "targets[1].target_group"),
        ("[[targets]]\nname = \"x\"\nendpoint = \"h.example\"\n".to_string(), "targets[0].target_group"),
        ("[bootstrap]\nname = \"x\"\n".to_string(), "bootstrap.database"),
        ("[bootstrap]\nname = \"x\"\ndatabase = { db_instance = \"a\", ip = \"10.0.0.1\" }\n".to_string(), "bootstrap.database"),
        ("[bootstrap]\nname = \"x\"\ndatabase = { ip = \"10.0.0.300\" }\n".to_string(), "bootstrap.database.ip"),
        ("[bootstrap]\nname = \"x\"\ndatabase = { ip = \"10.0.0.3\" }\nconsumer_environment = \"MARS\"\n".to_string(), "bootstrap.consumer_environment"),
        ("[bootstrap]\nname = \"x\"\ndatabase = { ip = \"10.0.0.3\" }\nallowed_principals = [\"346425330055\"]\n".to_string(), "bootstrap.allowed_principals[0]"),
        ("[bootstrap]\nname = \"x\"\ndatabase = { ip = \"10.0.0.3\" }\nsubnet_ids = [\"sub-1\"]\n".to_string(), "bootstrap.subnet_ids[0]"),
        ("[bootstrap]\nname = \"x\"\nmode = \"lattice\"\ndatabase = { ip = \"10.0.0.3\" }\n".to_string(), "bootstrap.mode"),
        ("[bootstrap]\nname = \"x\"\ndatabase = { host = \"db.example.com\" }\n".to_string(), "bootstrap.database.host"),
        ("[bootstrap]\nname = \"x\"\nmode = \"resource\"\ndatabase = { host = \"10.0.1.5\" }\nallowed_principals = [\"072088201116\"]\n".to_string(), "bootstrap.database.host"),
        ("[bootstrap]\nname = \"Analytics\"\nmode = \"resource\"\ndatabase = { ip = \"10.0.0.3\" }\nallowed_principals = [\"072088201116\"]\n".to_string(), "bootstrap.name"),
        ("[bootstrap]\nname = \"a--b\"\nmode = \"resource\"\ndatabase = { ip = \"10.0.0.3\" }\nallowed_principals = [\"072088201116\"]\n".to_string(), "bootstrap.name"),
        ("[bootstrap]\nname = \"x\"\nmode = \"resource\"\ndatabase = { ip = \"10.0.0.3\" }\n".to_string(), "bootstrap.allowed_principals"),
        ("[bootstrap]\nname = \"x\"\nmode = \"resource\"\ndatabase = { autoscaling_group = \"pg\" }\nallowed_principals = [\"072088201116\"]\n".to_string(), "bootstrap.database.autoscaling_group"),
        ("[bootstrap]\nname = \"x\"\nmode = \"resource\"\ndatabase = { ec2_instance = \"i-0123456789abcdef0\" }\nallowed_principals = [\"072088201116\"]\n".to_string(), "bootstrap.database.ec2_instance"),
        ("[bootstrap]\nname = \"x\"\nmode = \"resource\"\ndatabase = { ip = \"10.0.0.3\" }\nallowed_principals = [\"072088201116\"]\nipv4_addresses_per_eni = 63\n".to_string(), "bootstrap.ipv4_addresses_per_eni"),
        ("[bootstrap]\nname = \"x\"\nmode = \"resource\"\ndatabase = { ip = \"10.0.0.3\" }\nallowed_principals = [\"072088201116\"]\nconsumer_region = \"mars\"\n".to_string(), "bootstrap.consumer_region"),
        ("[targets]\nname = \"x\"\n".to_string(), "targets"),
        ("not toml at all [".to_string(), ""),
    ];
    for (text, key) in cases {
        let err = error_of(&text);
        assert!(
            err.contains(key),
            "expected {key:?} in: {err}\nfor:\n{text}"
        );
        assert!(!err.contains('\n'), "not one line: {err}");
    }
}

#[test]
fn resource_mode_shares_with_accounts() {
    let text = "[bootstrap]\nname = \"analytics\"\nmode = \"resource\"\ndatabase = { host = \"db.example.com\" }\nallowed_principals = [\"072088201116\", \"arn:aws:iam::346425330055:role/MTPL_Admin\", \"arn:aws:iam::072088201116:root\"]\n";
    let (_, c) = parse(text, "t.toml").unwrap();
    let b = c.bootstrap.unwrap();
    assert_eq!(b.mode, StackMode::Resource);
    assert_eq!(b.ipv4_addresses_per_eni, 16);
    assert_eq!(b.share_accounts(), ["072088201116", "346425330055"]);
    let (_, c) = parse(
        "[bootstrap]\nname = \"x\"\ndatabase = { ip = \"10.0.0.3\" }\n",
        "t.toml",
    )
    .unwrap();
    assert_eq!(
        c.bootstrap.unwrap().mode,
        StackMode::EndpointService,
        "the default"
    );
}

#[test]
fn adopt_takes_a_flag_or_a_mode() {
    let m = minimal();
    for (line, want) in [
        ("", Adopt::Off),
        ("adopt = false\n", Adopt::Off),
        ("adopt = true\n", Adopt::Keep),
        ("adopt = \"keep\"\n", Adopt::Keep),
        ("adopt = \"replace\"\n", Adopt::Replace),
    ] {
        let (_, c) = parse(&format!("{m}{line}"), "t.toml").unwrap();
        assert_eq!(c.targets[0].adopt, want, "{line}");
    }
}

#[test]
fn reader_endpoints_are_refused_and_point_to_db_cluster() {
    let m = minimal().replace("analytics.abc.", "analytics.cluster-ro-abc.");
    let err = error_of(&m);
    assert!(
        err.contains("reader endpoint") && err.contains("db_cluster"),
        "{err}"
    );
    // The writer endpoint of the same cluster is one instance at a time: accepted.
    let writer = minimal().replace("analytics.abc.", "analytics.cluster-abc.");
    assert!(parse(&writer, "t.toml").is_ok());
}

#[test]
fn missing_and_unreadable_files_are_named() {
    let err = load(std::path::Path::new("/nonexistent/pglink.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("/nonexistent/pglink.toml") && err.contains("not found"),
        "{err}"
    );
    let dir = tempfile::tempdir().unwrap();
    let err = load(dir.path()).unwrap_err().to_string();
    assert!(err.contains("directory"), "{err}");
}

/// Found by `fuzz/`: a bare carriage return inside a comment came back in the parse error,
/// which then printed as two lines. Control characters in quoted keys did the same.
#[test]
fn errors_stay_on_one_line_whatever_the_input_holds() {
    let inputs = [
        "# a comment with a bare \r carriage return\n[[targets]\nname = 1\n".to_string(),
        "[aws]\nregion = \"eu\"\r\nbogus\r= 1\n".to_string(),
        "[targets.\"a\\nb\\u001b[31m\"]\n".to_string(),
        format!("{}port = \"5432\r\n\"\n", minimal()),
        "[\"line\\rbreak\"]\nx = 1\n".to_string(),
    ];
    for text in inputs {
        for err in [
            parse(&text, "fuzz.toml").unwrap_err().to_string(),
            error_of(&text),
        ] {
            assert!(
                !err.chars().any(char::is_control),
                "control character in {err:?} for {text:?}"
            );
        }
    }
}

#[test]
fn a_target_may_assume_a_role_in_its_groups_account() {
    let text = format!(
        "{}role_arn = \"arn:aws:iam::123456789012:role/pglink-sync\"\nexternal_id = \"tenant-42\"\n",
        minimal()
    );
    let c = load_text(&text).unwrap();
    let role = c.targets[0].role.as_ref().unwrap();
    assert_eq!(role.account, "123456789012");
    assert_eq!(role.external_id.as_deref(), Some("tenant-42"));
    assert_eq!(c.targets[0].database_region, "us-east-1");
    assert!(load_text(&minimal()).unwrap().targets[0].role.is_none());
}

#[test]
fn a_role_elsewhere_or_an_orphan_external_id_is_refused() {
    let other_account = format!(
        "{}role_arn = \"arn:aws:iam::999988887777:role/pglink-sync\"\n",
        minimal()
    );
    let e = error_of(&other_account);
    assert!(e.contains("`targets[0].role_arn`"), "{e}");
    assert!(e.contains("account 123456789012"), "{e}");
    let other_partition = format!(
        "{}role_arn = \"arn:aws-cn:iam::123456789012:role/pglink-sync\"\n",
        minimal()
    );
    assert!(error_of(&other_partition).contains("partition aws"));
    let orphan = format!("{}external_id = \"tenant-42\"\n", minimal());
    let e = error_of(&orphan);
    assert!(
        e.contains("`targets[0].external_id`") && e.contains("role_arn"),
        "{e}"
    );
    let user = format!(
        "{}role_arn = \"arn:aws:iam::123456789012:user/pglink\"\n",
        minimal()
    );
    assert!(error_of(&user).contains("expected an IAM role ARN"));
}

#[test]
fn region_names_where_rds_is_asked_and_only_for_rds_sources() {
    let text = format!(
        "[[targets]]\nname = \"a\"\ndb_instance = \"analytics\"\nregion = \"eu-west-1\"\ntarget_group = \"{TG}\"\n"
    );
    let c = load_text(&text).unwrap();
    assert_eq!(c.targets[0].database_region, "eu-west-1");
    assert_eq!(c.targets[0].target_group.region, "us-east-1");
    let on_endpoint = format!("{}region = \"eu-west-1\"\n", minimal());
    let e = error_of(&on_endpoint);
    assert!(
        e.contains("`targets[0].region`") && e.contains("db_instance"),
        "{e}"
    );
    let bad = text.replace("eu-west-1", "europe");
    assert!(error_of(&bad).contains("expected a region"));
    let other_partition = text.replace("eu-west-1", "cn-north-1");
    assert!(error_of(&other_partition).contains("partition aws"));
}

#[test]
fn a_log_level_that_would_silence_pglink_is_refused() {
    for good in [
        "info",
        "DEBUG",
        "info,pglink=debug",
        "warn,aws_config=error",
        "off",
    ] {
        let text = format!("{}[log]\nlevel = \"{good}\"\n", minimal());
        assert!(load_text(&text).is_ok(), "{good} refused");
    }
    for bad in ["verbose", "info,verbose", "pglink", "", "["] {
        let text = format!("{}[log]\nlevel = \"{bad}\"\n", minimal());
        let e = error_of(&text);
        assert!(
            e.contains("`log.level`") && e.contains("trace, debug"),
            "{bad}: {e}"
        );
    }
}
