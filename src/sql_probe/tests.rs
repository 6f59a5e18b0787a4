use super::*;

fn no_env(_: &str) -> Option<String> {
    None
}

fn parse(text: &str) -> Result<Dsn, String> {
    Dsn::parse(text, no_env)
}

#[test]
fn the_keyword_form_is_read_as_libpq_reads_it() {
    let dsn = parse(
        r"host = db.example.com port=6432 user=app dbname='my db' password='it\'s' sslmode=require",
    )
    .unwrap();
    assert_eq!(dsn.config.get_user(), Some("app"));
    assert_eq!(dsn.config.get_dbname(), Some("my db"));
    assert_eq!(dsn.config.get_password(), Some(&b"it's"[..]));
    assert_eq!(dsn.config.get_ports(), [6432]);
    assert_eq!(dsn.mode(), SslMode::Require);
    assert_eq!(
        dsn.to_string(),
        "app@db.example.com:6432/my db (sslmode=require)"
    );
    assert!(!format!("{dsn:?}").contains("it's"));
}

#[test]
fn the_url_form_is_decoded() {
    let dsn =
        parse("postgresql://app:p%40ss@[::1]:5433/analytics?sslmode=disable&connect_timeout=2")
            .unwrap();
    assert_eq!(dsn.config.get_password(), Some(&b"p@ss"[..]));
    assert_eq!(dsn.config.get_ports(), [5433]);
    assert_eq!(dsn.mode(), SslMode::Disable);
    assert_eq!(
        dsn.config.get_connect_timeout(),
        Some(&Duration::from_secs(2))
    );
    assert_eq!(dsn.to_string(), "app@::1:5433/analytics (sslmode=disable)");
    let dsn = parse("postgres://app@db.example.com").unwrap();
    assert_eq!(dsn.mode(), SslMode::Prefer, "libpq's default");
    assert_eq!(dsn.config.get_connect_timeout(), Some(&CONNECT_TIMEOUT));
}

#[test]
fn libpq_variables_fill_what_the_string_leaves_out() {
    let env = |var: &str| match var {
        "PGPASSWORD" => Some("secret".to_string()),
        "PGUSER" => Some("fromenv".to_string()),
        "PGSSLMODE" => Some("disable".to_string()),
        _ => None,
    };
    let dsn = Dsn::parse("user=app", |v| match v {
        "PGHOST" => Some("db.example.com".into()),
        "PGPORT" => Some("6432".into()),
        _ => None,
    })
    .unwrap();
    assert_eq!(
        dsn.to_string(),
        "app@db.example.com:6432/app (sslmode=prefer)"
    );
    let dsn = Dsn::parse("host=db user=app", env).unwrap();
    assert_eq!(dsn.config.get_password(), Some(&b"secret"[..]));
    assert_eq!(dsn.config.get_user(), Some("app"), "the string wins");
    let dsn = Dsn::parse("host=a user=app host=b", env).unwrap();
    assert_eq!(
        dsn.to_string(),
        "app@b:5432/app (sslmode=disable)",
        "the last one counts"
    );
    assert_eq!(dsn.mode(), SslMode::Disable);
}

#[test]
fn bad_strings_name_the_keyword_and_what_was_expected() {
    let cases = [
        (
            "host=db user=app sslmode=strict",
            "sslmode: expected disable",
        ),
        (
            "host=db user=app sslmode=verify-ca",
            "sslrootcert: sslmode=verify-ca checks",
        ),
        (
            "host=db user=app sslmode=verify-full sslrootcert=/nonexistent/ca.pem",
            "sslrootcert: cannot read /nonexistent/ca.pem",
        ),
        (
            "user=app",
            "host: expected the host the consumer connects to",
        ),
        (
            "host=/var/run/postgresql user=app",
            "host: expected a TCP host",
        ),
        ("host=db", "user: expected the database user"),
        ("host=db user=app port=x", "invalid value for option `port`"),
        ("host=db user=app colour=blue", "unknown option `colour`"),
        ("host db", "has no '='"),
        (
            "host=db user=app sslrootcert=system sslmode=require",
            "sslrootcert: system trusts any public CA",
        ),
        ("host=db user='app", "user: unterminated quoted value"),
        ("postgresql://app@a,b/db", "host: expected one host"),
    ];
    for (text, expected) in cases {
        let err = parse(text).unwrap_err();
        assert!(err.contains(expected), "{text}: {err}");
    }
}

#[test]
fn require_checks_the_chain_only_when_given_a_ca() {
    let dir = tempfile::tempdir().unwrap();
    let not_pem = dir.path().join("ca.pem");
    std::fs::write(&not_pem, "not a certificate").unwrap();
    let text = format!(
        "host=db user=app sslmode=require sslrootcert={}",
        not_pem.display()
    );
    let err = parse(&text).unwrap_err();
    assert!(
        err.starts_with("sslrootcert: expected PEM CA certificates"),
        "{err}"
    );
    assert!(parse("host=db user=app sslmode=require")
        .unwrap()
        .roots
        .is_none());
}
