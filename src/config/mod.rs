//! Configuration: defaults < TOML file < `PGLINK_*` environment variables.
//!
//! Loading is two steps, as in zero-to-production's `configuration.rs`: figment merges the
//! layers into [`RawConfig`] (unknown keys rejected), then [`validate`] checks every value
//! once all input is known and produces typed [`Config`]. Every error is one line that names
//! the key and what was expected.

mod raw;
mod validate;
mod values;

use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Toml};
use figment::Figment;

pub use raw::RawConfig;
pub use validate::{
    AwsSettings, BootstrapSettings, Config, ConsumerEnvironment, DatabaseKind, DnsSettings,
    EndpointSource, LogFormat, LogSettings, ServerSettings, SyncSettings, Target, TargetGroupArn,
};

/// Environment variable that names the config file when `-c` is not given.
pub const CONFIG_ENV: &str = "PGLINK_CONFIG";
const ENV_PREFIX: &str = "PGLINK_";

/// A configuration problem: always reported as one line, exit code 2.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("no configuration file: pass -c/--config FILE or set {CONFIG_ENV}")]
    NoFile,
    #[error("config file {path}: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    #[error("config {source_name}: {detail}")]
    Parse { source_name: String, detail: String },
    #[error("config key `{key}`: {expected}")]
    Invalid { key: String, expected: String },
}

impl ConfigError {
    pub(crate) fn invalid(key: impl Into<String>, expected: impl Into<String>) -> Self {
        Self::Invalid {
            key: key.into(),
            expected: expected.into(),
        }
    }
}

/// Reads, merges and validates the configuration.
pub fn load(path: &Path) -> Result<(RawConfig, Config), ConfigError> {
    let raw = load_raw(path)?;
    let config = validate::validate(&raw)?;
    Ok((raw, config))
}

/// Merges the file and the environment without validating values.
pub fn load_raw(path: &Path) -> Result<RawConfig, ConfigError> {
    check_readable(path)?;
    let env = Env::prefixed(ENV_PREFIX)
        .split("__")
        // These name the file and the healthcheck URL; they are not keys inside the file.
        .ignore(&["config", "healthcheck_url"]);
    Figment::new()
        .merge(Toml::file_exact(path))
        .merge(env)
        .extract::<RawConfig>()
        .map_err(|e| describe_figment_error(path, e))
}

fn check_readable(path: &Path) -> Result<(), ConfigError> {
    let unreadable = |reason: String| ConfigError::Unreadable {
        path: path.to_path_buf(),
        reason,
    };
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(unreadable("not found".into())),
        Err(e) => Err(unreadable(e.to_string())),
        Ok(m) if m.is_dir() => Err(unreadable("is a directory, expected a TOML file".into())),
        Ok(_) => std::fs::File::open(path)
            .map(|_| ())
            .map_err(|e| unreadable(e.to_string())),
    }
}

/// Turns figment's error into one line: where it came from, which key, what was wrong.
fn describe_figment_error(path: &Path, err: figment::Error) -> ConfigError {
    use figment::error::Kind;
    let source_name = match err.metadata.as_ref().map(|m| m.name.as_ref()) {
        Some(name) if name.contains("environment") => "environment (PGLINK_*)".to_string(),
        _ => path.display().to_string(),
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
        Kind::Message(msg) if key.is_empty() => first_line(msg),
        other if key.is_empty() => first_line(&other.to_string()),
        other => format!(
            "key `{key}`: {}",
            plain_types(&first_line(&other.to_string()))
        ),
    };
    ConfigError::Parse {
        source_name,
        detail,
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

fn first_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests;
