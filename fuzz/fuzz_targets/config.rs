//! Config parsing never panics, and every error it returns is one line.
//!
//! The config module depends on nothing else in pglink, so it is compiled in here by path:
//! the instrumented build then covers figment, toml, serde and the validation, not the AWS SDK.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[allow(dead_code, unused_imports)]
#[path = "../../src/config/mod.rs"]
mod config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = config::parse(text, "fuzz.toml") {
        let message = e.to_string();
        assert!(
            !message.chars().any(char::is_control),
            "a config error must be one line of plain text: {message:?}"
        );
    }
});
