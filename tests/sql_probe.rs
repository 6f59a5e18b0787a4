//! `drill --dsn`'s `SELECT 1` against a real PostgreSQL set up as RDS is (TLS forced, a
//! private CA, SCRAM): each libpq `sslmode` checks what libpq checks, and a failure comes back
//! in the server's or the TLS layer's own words.

mod support;

use pglink::sql_probe::Dsn;
use support::postgres::{Postgres, CERT_NAME, PASSWORD};

fn dsn(text: &str, password: &str) -> Dsn {
    let password = password.to_string();
    Dsn::parse(text, move |var| {
        (var == "PGPASSWORD").then(|| password.clone())
    })
    .unwrap_or_else(|e| panic!("{text}: {e}"))
}

#[tokio::test]
async fn each_sslmode_checks_what_libpq_checks() {
    let pg = Postgres::start();
    let ca = pg.ca.display().to_string();
    let other = pg.other_ca.display().to_string();
    let answers = [
        // The chain against the CA; the address the consumer uses is not in the certificate.
        (format!("sslmode=verify-ca sslrootcert={ca}"), None),
        // verify-full: the name is checked, so through an address it fails...
        (
            format!("sslmode=verify-full sslrootcert={ca}"),
            Some("certificate not valid for name"),
        ),
        // ...and works with the database's name as host, the address as hostaddr.
        (
            format!("sslmode=verify-full sslrootcert={ca} host={CERT_NAME} hostaddr=127.0.0.1"),
            None,
        ),
        // require encrypts without checking, unless given a CA.
        ("sslmode=require".to_string(), None),
        (
            format!("sslmode=require sslrootcert={other}"),
            Some("UnknownIssuer"),
        ),
        // libpq's default, prefer, takes TLS when the server offers it.
        (String::new(), None),
        // Plain text is refused, as rds.force_ssl refuses it.
        ("sslmode=disable".to_string(), Some("no encryption")),
    ];
    for (extra, expected) in answers {
        let text = pg.dsn(&extra);
        let result = dsn(&text, PASSWORD).select_one().await;
        match expected {
            None => assert_eq!(result, Ok(()), "{text}\n{}", pg.log()),
            Some(words) => {
                let err = result.expect_err(&text);
                assert!(err.contains(words), "{text}: {err}");
            }
        }
    }
    let err = dsn(
        &pg.dsn(&format!("sslmode=verify-ca sslrootcert={ca}")),
        "wrong",
    )
    .select_one()
    .await
    .unwrap_err();
    assert!(
        err.contains("password authentication failed for user \"pglink\""),
        "{err}"
    );
    assert!(!err.contains("wrong"), "{err}");
}
