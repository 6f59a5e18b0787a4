//! The Dockerfile: builds the [[bin]] Cargo.toml names, runs it as non-root, and checks
//! its health with the binary itself (no curl in the image).

use super::{check_pglink_env_name, read};

/// Instructions of a Dockerfile: comments dropped, `\` continuations joined.
fn instructions(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if current.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(head) => {
                current.push_str(head.trim_end());
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                out.push(std::mem::take(&mut current));
            }
        }
    }
    if !current.trim().is_empty() {
        out.push(current);
    }
    out
}

fn keyword(instruction: &str) -> String {
    instruction
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_uppercase()
}

fn bin_name() -> String {
    let manifest: toml::Table = read("Cargo.toml").parse().expect("Cargo.toml parses");
    let bins = manifest
        .get("bin")
        .and_then(|b| b.as_array())
        .expect("Cargo.toml has [[bin]]");
    assert_eq!(bins.len(), 1, "one [[bin]] in Cargo.toml");
    assert!(
        manifest
            .get("profile")
            .and_then(|p| p.get("release"))
            .is_some(),
        "Cargo.toml has [profile.release]"
    );
    bins[0]["name"].as_str().expect("[[bin]] name").to_string()
}

#[test]
fn dockerfile_builds_the_binary_and_runs_it_as_non_root() {
    let all = instructions(&read("deploy/Dockerfile"));
    let froms: Vec<usize> = all
        .iter()
        .enumerate()
        .filter(|(_, i)| keyword(i) == "FROM")
        .map(|(n, _)| n)
        .collect();
    assert!(froms.len() >= 2, "multi-stage: expected two FROM lines");
    let builder = &all[froms[0]..froms[froms.len() - 1]];
    let last = &all[froms[froms.len() - 1]..];
    let bin = bin_name();

    let build = builder
        .iter()
        .find(|i| keyword(i) == "RUN" && i.contains("cargo build"))
        .expect("the builder runs cargo build");
    for flag in ["--release", "--locked", &format!("--bin {bin}")] {
        assert!(build.contains(flag), "{build:?} lacks {flag}");
    }
    let workdir = builder
        .iter()
        .rev()
        .find(|i| keyword(i) == "WORKDIR")
        .and_then(|i| i.split_whitespace().nth(1))
        .expect("the builder sets WORKDIR")
        .trim_end_matches('/')
        .to_string();

    let copy = last
        .iter()
        .find(|i| keyword(i) == "COPY" && i.contains("--from="))
        .expect("the final stage copies from the builder");
    let parts: Vec<&str> = copy
        .split_whitespace()
        .skip(1)
        .filter(|p| !p.starts_with("--"))
        .collect();
    assert_eq!(parts.len(), 2, "COPY --from=builder SRC DEST: {copy:?}");
    let (src, dest) = (parts[0], parts[1]);
    assert_eq!(
        src,
        format!("{workdir}/target/release/{bin}"),
        "the path cargo build --release writes the [[bin]] named {bin:?} to"
    );
    assert_eq!(dest, "/usr/local/bin/pglink");
    let copies = last.iter().filter(|i| keyword(i) == "COPY").count();
    assert_eq!(copies, 1, "the final stage copies only the binary");

    let user = last
        .iter()
        .rev()
        .find(|i| keyword(i) == "USER")
        .and_then(|i| i.split_whitespace().nth(1))
        .expect("the final stage sets USER");
    let name = user.split(':').next().unwrap_or_default();
    assert!(
        name != "root" && name != "0",
        "the final stage runs as {user}"
    );

    let health = last
        .iter()
        .find(|i| keyword(i) == "HEALTHCHECK")
        .expect("HEALTHCHECK");
    assert!(
        health.contains(dest) && health.contains("healthcheck"),
        "HEALTHCHECK must run `pglink healthcheck`: {health:?}"
    );
    let entry = last
        .iter()
        .find(|i| keyword(i) == "ENTRYPOINT")
        .expect("ENTRYPOINT");
    assert!(entry.contains(dest), "ENTRYPOINT runs {dest}: {entry:?}");

    for i in last {
        let lower = i.to_lowercase();
        let words: Vec<&str> = lower
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
            .collect();
        assert!(
            !words.contains(&"curl") && !words.contains(&"wget"),
            "no curl/wget in the final stage: {i:?}"
        );
        if keyword(i) == "ENV" {
            for name in i
                .split_whitespace()
                .skip(1)
                .filter_map(|kv| kv.split_once('=').map(|(k, _)| k))
            {
                check_pglink_env_name(name, "Dockerfile ENV");
            }
        }
    }
}
