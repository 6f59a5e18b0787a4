//! `drill --dsn`: one `SELECT 1` through the consumer's path, from a libpq connection string
//! read as libpq reads it, so the string a user already has for psql works unchanged.
//!
//! Both libpq forms are taken (`host=... sslmode=...` and `postgresql://...`), with libpq's
//! variables as defaults (PGPASSWORD keeps the password off the command line). TLS follows
//! libpq's `sslmode`: `disable`; `prefer` (libpq's default) and `require` encrypt without
//! checking the certificate, unless `require` is given an `sslrootcert`, when it checks the
//! chain as `verify-ca` does; `verify-full` also checks the host name (and is the only mode
//! with `sslrootcert=system`, as in libpq 16). RDS forces TLS by
//! default from PostgreSQL 15 (`rds.force_ssl`), and its certificates chain to the RDS CA,
//! which no system trust store holds: give its bundle as `sslrootcert`.
//! https://www.postgresql.org/docs/current/libpq-ssl.html#LIBPQ-SSL-PROTECTION
//! https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/PostgreSQL.Concepts.General.SSL.html
//! Through a PrivateLink endpoint the host is the endpoint's name, which the database's
//! certificate does not carry: `verify-ca` checks the chain there; `verify-full` needs the
//! database's name as `host` and the endpoint's address as `hostaddr`.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres::config::{Host, SslMode as PgSslMode};

/// How long one attempt may take when the string sets no `connect_timeout`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The certificate check, as libpq's `sslmode` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Result<Self, String> {
        Ok(match value {
            "disable" => Self::Disable,
            // libpq's `allow` tries without TLS first; a probe that prefers TLS is no weaker.
            "allow" | "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            other => {
                return Err(format!(
                    "sslmode: expected disable, allow, prefer, require, verify-ca or verify-full, got {other:?}"
                ))
            }
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        }
    }
}

/// A parsed connection string, ready to probe.
pub struct Dsn {
    config: tokio_postgres::Config,
    mode: SslMode,
    /// The CA certificates to check the chain against, when the mode checks it.
    roots: Option<Arc<RootCertStore>>,
}

impl fmt::Debug for Dsn {
    // Never prints the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Dsn({self})")
    }
}

impl fmt::Display for Dsn {
    /// `user@host:port/dbname (sslmode=...)`, without the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = match self.config.get_hosts().first() {
            Some(Host::Tcp(h)) => h.clone(),
            _ => self
                .config
                .get_hostaddrs()
                .first()
                .map(ToString::to_string)
                .unwrap_or_default(),
        };
        let port = self.config.get_ports().first().copied().unwrap_or(5432);
        write!(
            f,
            "{}@{host}:{port}/{} (sslmode={})",
            self.config.get_user().unwrap_or_default(),
            self.config
                .get_dbname()
                .or(self.config.get_user())
                .unwrap_or_default(),
            self.mode.as_str()
        )
    }
}

impl Dsn {
    /// Parses `text` in either libpq form, with `env` (libpq's PG* variables) filling what
    /// the string leaves out. Errors name the keyword and what was expected, never a value
    /// that could be the password.
    pub fn parse(text: &str, env: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let mut params = if text.starts_with("postgresql://") || text.starts_with("postgres://") {
            url_params(text)?
        } else {
            keyword_params(text)?
        };
        // A keyword given twice: the last one counts, as in libpq.
        let mut seen = std::collections::HashSet::new();
        params.reverse();
        params.retain(|(k, _)| seen.insert(k.clone()));
        params.reverse();
        for (key, var) in [
            ("host", "PGHOST"),
            ("hostaddr", "PGHOSTADDR"),
            ("port", "PGPORT"),
            ("user", "PGUSER"),
            ("password", "PGPASSWORD"),
            ("dbname", "PGDATABASE"),
            ("connect_timeout", "PGCONNECT_TIMEOUT"),
            ("sslmode", "PGSSLMODE"),
            ("sslrootcert", "PGSSLROOTCERT"),
        ] {
            if !params.iter().any(|(k, _)| k == key) {
                if let Some(value) = env(var).filter(|v| !v.is_empty()) {
                    params.push((key.to_string(), value));
                }
            }
        }
        let take = |params: &mut Vec<(String, String)>, key: &str| {
            let found = params.iter().rposition(|(k, _)| k == key);
            found.map(|i| params.remove(i).1)
        };
        let rootcert = take(&mut params, "sslrootcert");
        let system = rootcert.as_deref() == Some("system");
        // With the system's store libpq (16+) checks the name by default and refuses less.
        let mode = match (take(&mut params, "sslmode"), system) {
            (Some(v), _) => SslMode::parse(&v)?,
            (None, true) => SslMode::VerifyFull,
            (None, false) => SslMode::Prefer,
        };
        if system && mode != SslMode::VerifyFull {
            return Err(format!(
                "sslrootcert: system trusts any public CA, so libpq requires sslmode=verify-full with it, got sslmode={}",
                mode.as_str()
            ));
        }
        let roots = match (mode, rootcert) {
            (SslMode::Disable | SslMode::Prefer, _) | (SslMode::Require, None) => None,
            (_, Some(path)) => Some(Arc::new(load_roots(&path)?)),
            (_, None) => {
                return Err(format!(
                    "sslrootcert: sslmode={} checks the server's certificate against a CA: give the CA bundle's path (for RDS, https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem) or sslrootcert=system",
                    mode.as_str()
                ))
            }
        };
        let mut config: tokio_postgres::Config = keyword_string(&params)
            .parse()
            .map_err(|e: tokio_postgres::Error| crate::error::error_chain(&e))?;
        if config.get_hosts().is_empty() && config.get_hostaddrs().is_empty() {
            return Err(
                "host: expected the host the consumer connects to (its endpoint's name or address)"
                    .into(),
            );
        }
        if config
            .get_hosts()
            .iter()
            .any(|h| !matches!(h, Host::Tcp(_)))
        {
            return Err(
                "host: expected a TCP host (the consumer's endpoint), not a socket directory"
                    .into(),
            );
        }
        if config.get_user().is_none() {
            return Err("user: expected the database user (in the string or PGUSER)".into());
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        config.ssl_mode(match mode {
            SslMode::Disable => PgSslMode::Disable,
            SslMode::Prefer => PgSslMode::Prefer,
            _ => PgSslMode::Require,
        });
        Ok(Self {
            config,
            mode,
            roots,
        })
    }

    pub fn mode(&self) -> SslMode {
        self.mode
    }

    /// Connects, runs `SELECT 1` and checks its answer. The error is the server's or the
    /// TLS layer's own words.
    pub async fn select_one(&self) -> Result<(), String> {
        let limit = self
            .config
            .get_connect_timeout()
            .copied()
            .unwrap_or(CONNECT_TIMEOUT)
            * 2;
        tokio::time::timeout(limit, self.query())
            .await
            .unwrap_or_else(|_| {
                Err(format!(
                    "no answer within {}",
                    humantime::format_duration(limit)
                ))
            })
    }

    async fn query(&self) -> Result<(), String> {
        let client = if self.mode == SslMode::Disable {
            let (client, connection) = self
                .config
                .connect(tokio_postgres::NoTls)
                .await
                .map_err(|e| crate::error::error_chain(&e))?;
            tokio::spawn(connection);
            client
        } else {
            let tls = tokio_postgres_rustls::MakeRustlsConnect::new(self.tls_config()?);
            let (client, connection) = self
                .config
                .connect(tls)
                .await
                .map_err(|e| crate::error::error_chain(&e))?;
            tokio::spawn(connection);
            client
        };
        let rows = client
            .simple_query("SELECT 1")
            .await
            .map_err(|e| crate::error::error_chain(&e))?;
        let one = rows.iter().find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_string),
            _ => None,
        });
        match one.as_deref() {
            Some("1") => Ok(()),
            other => Err(format!("SELECT 1 answered {other:?}")),
        }
    }

    fn tls_config(&self) -> Result<rustls::ClientConfig, String> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let chain = match &self.roots {
            Some(roots) => Some(
                WebPkiServerVerifier::builder_with_provider(roots.clone(), provider.clone())
                    .build()
                    .map_err(|e| format!("sslrootcert: {e}"))?,
            ),
            None => None,
        };
        let verifier = Verifier {
            chain,
            check_name: self.mode == SslMode::VerifyFull,
            provider: provider.clone(),
        };
        Ok(rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth())
    }
}

/// libpq's checks: none (`prefer`, `require` without a CA), the chain (`verify-ca`), the
/// chain and the name (`verify-full`). The handshake's signatures are always checked.
#[derive(Debug)]
struct Verifier {
    chain: Option<Arc<WebPkiServerVerifier>>,
    check_name: bool,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.check_name => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The CA certificates in a PEM file, or the system's with `system` (as libpq 16 does).
fn load_roots(path: &str) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    if path == "system" {
        let found = rustls_native_certs::load_native_certs();
        let (added, _) = roots.add_parsable_certificates(found.certs);
        if added == 0 {
            return Err("sslrootcert=system: no CA certificate found in the system's store".into());
        }
        return Ok(roots);
    }
    let pem = std::fs::read(Path::new(path))
        .map_err(|e| format!("sslrootcert: cannot read {path}: {e}"))?;
    let certs: Vec<CertificateDer<'static>> =
        rustls::pki_types::pem::PemObject::pem_slice_iter(&pem)
            .collect::<Result<_, _>>()
            .map_err(|e| format!("sslrootcert: {path} is not a PEM certificate file: {e:?}"))?;
    let (added, _) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(format!(
            "sslrootcert: expected PEM CA certificates in {path}, found none"
        ));
    }
    Ok(roots)
}

/// `key=value` pairs of libpq's keyword form: spaces around `=` allowed, values quoted with
/// `'...'`, backslash escaping a quote or a backslash.
/// https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-CONNSTRING-KEYWORD-VALUE
fn keyword_params(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(out);
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| !c.is_whitespace() && *c != '=') {
            key.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            return Err(format!(
                "expected keyword=value pairs (libpq's form) or a postgresql:// URL; {key:?} has no '='"
            ));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    Some('\\') => value.extend(chars.next()),
                    Some('\'') => break,
                    Some(c) => value.push(c),
                    None => return Err(format!("{key}: unterminated quoted value")),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                if c == '\\' {
                    value.extend(chars.next());
                } else {
                    value.push(c);
                }
            }
        }
        out.push((key, value));
    }
}

/// The URL form as keyword pairs: `postgresql://[user[:password]@][host][:port][/dbname][?k=v&...]`.
/// https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-CONNSTRING-URIS
fn url_params(text: &str) -> Result<Vec<(String, String)>, String> {
    let rest = text
        .split_once("://")
        .map(|(_, rest)| rest)
        .unwrap_or_default();
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (authority, dbname) = rest.split_once('/').unwrap_or((rest, ""));
    let (userinfo, hosts) = authority.rsplit_once('@').unwrap_or(("", authority));
    let mut out = Vec::new();
    if !userinfo.is_empty() {
        let (user, password) = match userinfo.split_once(':') {
            Some((u, p)) => (u, Some(p)),
            None => (userinfo, None),
        };
        out.push(("user".into(), decode(user)?));
        if let Some(p) = password {
            out.push(("password".into(), decode(p)?));
        }
    }
    if !hosts.is_empty() {
        let (host, port) = split_host_port(hosts)?;
        if !host.is_empty() {
            out.push(("host".into(), decode(&host)?));
        }
        if let Some(port) = port {
            out.push(("port".into(), port));
        }
    }
    if !dbname.is_empty() {
        out.push(("dbname".into(), decode(dbname)?));
    }
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("expected key=value in the URL's query, got {pair:?}"))?;
        out.push((decode(key)?, decode(value)?));
    }
    Ok(out)
}

/// `host:port`, `[v6]:port` or a bare host.
fn split_host_port(hosts: &str) -> Result<(String, Option<String>), String> {
    if hosts.contains(',') {
        return Err("host: expected one host, the consumer's endpoint".into());
    }
    if let Some(v6) = hosts.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or("host: unterminated [ in an IPv6 address")?;
        let port = after.strip_prefix(':').map(str::to_string);
        return Ok((host.to_string(), port));
    }
    Ok(match hosts.rsplit_once(':') {
        Some((h, p)) => (h.to_string(), Some(p.to_string())),
        None => (hosts.to_string(), None),
    })
}

/// Percent-decoding of a URL part.
fn decode(part: &str) -> Result<String, String> {
    let bytes = part.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = part
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or("expected %XX escapes in the URL")?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "the URL decodes to invalid UTF-8".to_string())
}

/// Pairs back to the keyword form, every value quoted, for tokio-postgres's parser.
fn keyword_string(params: &[(String, String)]) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{k}='{}'", v.replace('\\', "\\\\").replace('\'', "\\'")))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests;
