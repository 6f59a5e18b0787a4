//! Configuration: defaults < TOML file < `PGLINK_*` environment variables.
//!
//! Loading is two steps, as in zero-to-production's `configuration.rs`: figment merges the
//! layers into [`RawConfig`] (unknown keys rejected), then [`validate`] checks every value
//! once all input is known and produces typed [`Config`]. Every error is one line that names
//! the key and what was expected.

mod raw;
pub mod rds_name;
mod validate;
mod values;

use std::path::Path;

use figment::providers::{Env, Format, Toml};
use figment::Figment;

pub use raw::RawConfig;
pub use validate::{
    is_log_filter, Adopt, AwsSettings, BootstrapSettings, Config, ConsumerEnvironment,
    DatabaseKind, DnsSettings, EndpointSource, LogFormat, LogSettings, Members, RoleToAssume,
    ServerSettings, StackMode, SyncSettings, Target, TargetGroupArn,
};
pub use values::{lattice_name_problem, partition_of, principal_account};

/// Environment variable that names the config file when `-c` is not given.
pub const CONFIG_ENV: &str = "PGLINK_CONFIG";
const ENV_PREFIX: &str = "PGLINK_";

/// A configuration problem: always reported as one line, exit code 2.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("no configuration file: pass -c/--config FILE or set {CONFIG_ENV}")]
    NoFile,
    #[error("config file {file}: {reason}")]
    Unreadable { file: String, reason: String },
    #[error("config {source_name}: {detail}")]
    Parse { source_name: String, detail: String },
    #[error("config key `{key}`: {expected}")]
    Invalid { key: String, expected: String },
}

impl ConfigError {
    pub(crate) fn invalid(key: impl Into<String>, expected: impl Into<String>) -> Self {
        Self::Invalid {
            key: one_line(&key.into()),
            expected: one_line(&expected.into()),
        }
    }
}

/// Reads, merges and validates the configuration.
pub fn load(path: &Path) -> Result<(RawConfig, Config), ConfigError> {
    let raw = load_raw(path)?;
    let config = validate::validate(&raw)?;
    sdk_endpoints(raw.aws.allow_clear_text_endpoint)?;
    Ok((raw, config))
}

/// The SDK also takes endpoints from `AWS_ENDPOINT_URL` and `AWS_ENDPOINT_URL_<SERVICE>`:
/// they get the same clear-text rule as `aws.endpoint_url`, naming the variable.
/// https://docs.aws.amazon.com/sdkref/latest/guide/feature-ss-endpoints.html
fn sdk_endpoints(allow_clear_text: bool) -> Result<(), ConfigError> {
    // The services pglink calls; another service's endpoint (S3 in a shared pod) is not ours.
    const USED: [&str; 6] = [
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_EC2",
        "AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2",
        "AWS_ENDPOINT_URL_RDS",
        "AWS_ENDPOINT_URL_STS",
        "AWS_ENDPOINT_URL_AUTO_SCALING",
    ];
    let ignored = std::env::var("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
        .is_ok_and(|v| v.eq_ignore_ascii_case("true"));
    if ignored {
        return Ok(());
    }
    for name in USED {
        let Ok(value) = std::env::var(name) else {
            continue;
        };
        if value.trim().is_empty() {
            continue;
        }
        values::endpoint_url(&value, allow_clear_text)
            .map_err(|expected| ConfigError::invalid(name, expected))?;
    }
    Ok(())
}

/// Merges the file and the environment without validating values.
pub fn load_raw(path: &Path) -> Result<RawConfig, ConfigError> {
    let text = read_file(path)?;
    // Only PGLINK_<SECTION>__<KEY> is config. Other PGLINK_* variables are someone else's:
    // Kubernetes injects PGLINK_PORT, PGLINK_SERVICE_HOST, ... into every pod when a Service
    // named `pglink` exists, and PGLINK_CONFIG / PGLINK_HEALTHCHECK_URL name the file and the
    // healthcheck URL. (https://kubernetes.io/docs/concepts/services-networking/service/#environment-variables)
    let env = Env::prefixed(ENV_PREFIX)
        .filter(|key| is_config_key(key.as_str()))
        .split("__");
    Figment::new()
        .merge(Toml::string(&text))
        .merge(env)
        .extract::<RawConfig>()
        .map_err(|e| describe_figment_error(&path.display().to_string(), e))
}

/// Whether `PGLINK_<rest>` is a config key: `<SECTION>__<KEY>`.
fn is_config_key(rest: &str) -> bool {
    rest.contains("__")
}

/// The PGLINK_* environment variables that are not config keys, and so are ignored,
/// sorted: for a debug line once logging is up.
pub fn ignored_environment() -> Vec<String> {
    let mut names: Vec<String> = std::env::vars_os()
        .filter_map(|(name, _)| name.into_string().ok())
        .filter(|name| {
            name.strip_prefix(ENV_PREFIX)
                .is_some_and(|key| !is_config_key(key))
        })
        .filter(|name| name != CONFIG_ENV && name != "PGLINK_HEALTHCHECK_URL")
        .collect();
    names.sort();
    names
}

/// Parses and validates configuration text on its own, without the environment layer.
/// Any input gives a config or a one-line error, never a panic: `fuzz/` holds this to that.
pub fn parse(text: &str, source_name: &str) -> Result<(RawConfig, Config), ConfigError> {
    let raw = Figment::new()
        .merge(Toml::string(text))
        .extract::<RawConfig>()
        .map_err(|e| describe_figment_error(source_name, e))?;
    let config = validate::validate(&raw)?;
    Ok((raw, config))
}

fn read_file(path: &Path) -> Result<String, ConfigError> {
    let unreadable = |reason: String| ConfigError::Unreadable {
        file: one_line(&path.display().to_string()),
        reason,
    };
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(unreadable("not found".into())),
        Err(e) => Err(unreadable(e.to_string())),
        Ok(m) if m.is_dir() => Err(unreadable("is a directory, expected a TOML file".into())),
        Ok(_) => std::fs::read_to_string(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::InvalidData => unreadable("is not UTF-8 text".into()),
            _ => unreadable(e.to_string()),
        }),
    }
}

/// Turns figment's error into one line: where it came from, which key, what was wrong.
fn describe_figment_error(file_name: &str, err: figment::Error) -> ConfigError {
    use figment::error::Kind;
    let source_name = match err.metadata.as_ref().map(|m| m.name.as_ref()) {
        Some(name) if name.contains("environment") => "environment (PGLINK_*)".to_string(),
        _ => file_name.to_string(),
    };
    let mut key = key_path(&err.path);
    let detail = match &err.kind {
        Kind::UnknownField(field, _) => {
            key = join_key(&key, field);
            format!("unknown key `{key}`")
        }
        Kind::MissingField(field) => {
            key = join_key(&key, field);
            format!("missing key `{key}`")
        }
        Kind::Message(msg) if key.is_empty() => one_line(msg),
        other if key.is_empty() => one_line(&other.to_string()),
        other => format!(
            "key `{key}`: {}",
            plain_types(&one_line(&other.to_string()))
        ),
    };
    ConfigError::Parse {
        source_name: one_line(&source_name),
        detail: one_line(&detail),
    }
}

/// `["targets", "0", "port"]` -> `targets[0].port`, the form validation errors use.
fn key_path(path: &[String]) -> String {
    let mut key = String::new();
    for segment in path {
        if segment.parse::<usize>().is_ok() {
            key.push_str(&format!("[{segment}]"));
        } else {
            if !key.is_empty() {
                key.push('.');
            }
            key.push_str(segment);
        }
    }
    key
}

fn join_key(parent: &str, field: &str) -> String {
    if parent.is_empty() {
        field.to_string()
    } else {
        format!("{parent}.{field}")
    }
}

/// Rust type names mean nothing to a user writing TOML.
fn plain_types(text: &str) -> String {
    ["i64", "u64", "i32", "u32", "u16", "f64"]
        .iter()
        .fold(text.to_string(), |t, ty| {
            t.replace(&format!("expected {ty}"), "expected a number")
        })
        .replace("expected a string", "expected a quoted string")
}

/// Folds text onto one line: line breaks (`\n`, `\r`) become spaces and any other control
/// character is escaped, so that input quoted back in an error cannot break the line.
fn one_line(text: &str) -> String {
    let joined = text
        .split(['\n', '\r'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let mut line = String::with_capacity(joined.len());
    for c in joined.chars() {
        if c.is_control() {
            line.extend(c.escape_default());
        } else {
            line.push(c);
        }
    }
    line
}

#[cfg(test)]
mod tests;
