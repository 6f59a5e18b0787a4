//! tracing setup: text for terminals, JSON lines for log collectors (CloudWatch Logs).
//! Logs go to stderr so that command output on stdout stays machine-readable.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::{is_log_filter, LogFormat};

/// `RUST_LOG` wins over the configured level, as operators expect; one that is not a log
/// filter (`RUST_LOG=verbose` would silence every line, errors included) is set aside with
/// a warning, and the configured level is used.
pub fn init(format: LogFormat, level: &str) {
    let rust_log = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty());
    let (usable, refused) = match rust_log.as_deref() {
        Some(v) if is_log_filter(v) => (Some(v), None),
        other => (None, other),
    };
    let filter = usable
        .and_then(|v| EnvFilter::try_new(v).ok())
        .or_else(|| EnvFilter::try_new(level).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false);
    let result = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(true)
            .try_init(),
    };
    // A second init (tests) keeps the first subscriber.
    let _ = result;
    if let Some(value) = refused {
        tracing::warn!(
            rust_log = value,
            level,
            "RUST_LOG is not a log filter (expected a level such as info, or filters such as info,pglink=debug); using [log] level"
        );
    }
}

/// Items as one plain log field, space-separated (never Rust's debug formatting).
pub fn join<T: std::fmt::Display>(items: impl IntoIterator<Item = T>) -> String {
    join_with(items, " ")
}

/// Items as plain text, with `separator` between them.
pub fn join_with<T: std::fmt::Display>(
    items: impl IntoIterator<Item = T>,
    separator: &str,
) -> String {
    items
        .into_iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(separator)
}
