//! `pglink check-config`: validate, then print the effective configuration as TOML.

use std::path::PathBuf;

use super::{load, Exit};
use crate::config::RawConfig;

pub fn check_config(path: Option<PathBuf>) -> Exit {
    let (raw, config) = match load(path) {
        Ok(loaded) => loaded,
        Err(exit) => return exit,
    };
    match toml::to_string_pretty(&masked(raw)) {
        Ok(text) => {
            println!("# effective configuration: defaults < file < PGLINK_* environment");
            print!("{text}");
            eprintln!(
                "configuration is valid: {} target(s){}",
                config.targets.len(),
                if config.bootstrap.is_some() {
                    ", bootstrap section present"
                } else {
                    ""
                }
            );
            Exit::Ok
        }
        Err(e) => Exit::BadInput(format!("could not print the configuration: {e}")),
    }
}

/// Credentials in an endpoint URL (`http://user:secret@host`) are never printed.
fn masked(mut raw: RawConfig) -> RawConfig {
    if let Some(url) = raw.aws.endpoint_url.as_mut() {
        if let Some((scheme, rest)) = url.split_once("://") {
            if let Some((_, host)) = rest.split_once('@') {
                *url = format!("{scheme}://***@{host}");
            }
        }
    }
    raw
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_credentials_are_masked() {
        let mut raw = RawConfig::default();
        raw.aws.endpoint_url = Some("http://user:secret@127.0.0.1:5000".into());
        assert_eq!(
            masked(raw).aws.endpoint_url.as_deref(),
            Some("http://***@127.0.0.1:5000")
        );
    }
}
