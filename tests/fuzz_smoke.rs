//! The config fuzz target (`fuzz/`), built and run for a bounded time: parsing any input
//! gives a config or a one-line error, never a panic. `fuzz/run config 600` runs it longer.

use std::path::Path;
use std::process::Command;

const SECONDS: u32 = 30;

/// libFuzzer's `stat::number_of_executed_units: N` line.
fn executed_units(output: &str) -> Option<u64> {
    output
        .lines()
        .find_map(|l| l.strip_prefix("stat::number_of_executed_units:"))
        .and_then(|n| n.trim().parse().ok())
}

/// The M of libFuzzer's `INFO: Loaded 1 modules (M inline 8-bit counters): ...` line: the
/// coverage points it sees. Without instrumentation it only warns and fuzzes blind.
fn coverage_counters(output: &str) -> Option<u64> {
    let line = output
        .lines()
        .find(|l| l.contains("inline 8-bit counters"))?;
    let (_, after) = line.split_once('(')?;
    after.split_whitespace().next()?.parse().ok()
}

#[test]
fn config_parsing_survives_a_bounded_fuzz_run() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("bash")
        .arg(root.join("fuzz/run"))
        .args(["config", &SECONDS.to_string()])
        .output()
        .expect("run fuzz/run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    let tail = lines[lines.len().saturating_sub(60)..].join("\n");
    assert!(
        out.status.success(),
        "the fuzzer failed (its input is under target/fuzz-artifacts/config/):\n{tail}"
    );
    // A run without coverage, or one that executed next to nothing, proves nothing.
    let counters = coverage_counters(&stderr).unwrap_or(0);
    assert!(
        counters >= 1_000,
        "{counters} coverage counters: is the build instrumented?"
    );
    let units = executed_units(&stderr).expect("libFuzzer printed its final stats");
    assert!(units >= 1_000, "only {units} inputs in {SECONDS} s");
    eprintln!("fuzz smoke: {units} inputs in {SECONDS} s, no failure");
}
