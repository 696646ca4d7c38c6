//! The README is a promise: every command in its shell blocks exists as written. Lines
//! that call `phalanx` or `keyvault` are parsed by the binaries' own argument parsers
//! (placeholders such as `<hash>`, `...` and `[--opt X]` are filled in or expanded);
//! `cargo … -p CRATE [--bin B] [--bench B] [--features F]` must name a workspace
//! crate, binary, bench and feature; `make TARGET` a Makefile target; scripts must exist.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use clap::Parser;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The shell lines of the README's ```sh blocks, continuation lines joined.
fn shell_lines() -> Vec<String> {
    common::readme_blocks()
        .into_iter()
        .flatten()
        .map(|(_, command)| command)
        .collect()
}

/// Turns a documented line into concrete argv variants: the placeholders become sample
/// values, `[…]` optional parts are taken, `a|b` alternatives take the first, and a
/// `( … | … )` group is expanded to each alternative.
fn variants(line: &str) -> Vec<Vec<String>> {
    let mut lines = vec![line.to_owned()];
    if let (Some(open), Some(close)) = (line.find(" ("), line.rfind(')')) {
        let (head, group, tail) = (&line[..open], &line[open + 2..close], &line[close + 1..]);
        lines = group
            .split(" | ")
            .map(|alt| format!("{head} {alt}{tail}"))
            .collect();
    }
    lines
        .iter()
        .map(|l| {
            fill_placeholders(l)
                .replace(['[', ']'], " ")
                .split_whitespace()
                .map(|w| {
                    let w = w.split('|').next().unwrap_or(w);
                    match w {
                        "UNIX_SECONDS" | "PORT" | "0" => "1".to_owned(),
                        _ => w.to_owned(),
                    }
                })
                .collect()
        })
        .collect()
}

/// `<epoch>` becomes 1, any other `<placeholder, maybe with spaces>` and any shell
/// substitution `$( … )` become `00`.
fn fill_placeholders(line: &str) -> String {
    let mut line = line.to_owned();
    while let Some(start) = line.find("$(") {
        let mut depth = 0;
        let mut end = line.len();
        for (i, c) in line[start + 1..].char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        end = start + 1 + i + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        line.replace_range(start..end, "00");
    }
    let mut out = String::new();
    let mut rest = line.as_str();
    while let Some(open) = rest.find('<') {
        let Some(close) = rest[open..].find('>') else {
            break;
        };
        out.push_str(&rest[..open]);
        let name = &rest[open + 1..open + close];
        out.push_str(if name == "epoch" { "1" } else { "00" });
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    out
}

fn crate_dir(name: &str) -> PathBuf {
    for dir in [
        "proto",
        "proto/types",
        "proto/rocksdb",
        "attestation-service",
        "attestation-service/dcap",
        "attestation-service/dcap-sim",
        "attestation-service/ear",
        "attestation-service/tee",
        "keyvault",
        "keyvault/threshold",
        "keyvault/release",
        "keyvault/attested",
        "chain",
        "cli",
        "pruntime",
        "pruntime/contract",
        "pruntime/verify",
        // The guest workspace (`--manifest-path pruntime/guest/Cargo.toml`).
        "pruntime/guest/sdk",
        "pruntime/guest/contracts/template",
    ] {
        let manifest = std::fs::read_to_string(root().join(dir).join("Cargo.toml")).unwrap();
        if manifest.contains(&format!("name = \"{name}\"")) {
            return root().join(dir);
        }
    }
    panic!("no workspace crate {name}");
}

fn check_cargo(argv: &[String]) {
    let arg = |flag: &str| {
        argv.iter()
            .position(|a| a == flag)
            .and_then(|i| argv.get(i + 1))
            .cloned()
    };
    let Some(krate) = arg("-p") else { return };
    let dir = crate_dir(&krate);
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    if let Some(bench) = arg("--bench") {
        assert!(
            dir.join(format!("benches/{bench}.rs")).exists(),
            "{krate} has no bench {bench}"
        );
    }
    if let Some(features) = arg("--features") {
        for f in features.split(',') {
            assert!(
                manifest.contains(&format!("\n{f} = [")),
                "{krate} has no feature {f}"
            );
        }
    }
    // What follows `--` goes to the binary: parse it with the binary's parser.
    if let Some(sep) = argv.iter().position(|a| a == "--") {
        let rest = &argv[sep + 1..];
        match krate.as_str() {
            "phalanx-cli" => parse_phalanx(&[&["phalanx".to_owned()], rest].concat()),
            "keyvault" => parse_keyvault(&[&["keyvault".to_owned()], rest].concat()),
            "phalanx-pruntime" => {
                let argv = [&["pruntime".to_owned()], rest].concat();
                if let Err(e) = pruntime::cmd::Cli::try_parse_from(&argv) {
                    panic!("README: `{}` does not parse: {e}", argv.join(" "));
                }
            }
            _ => {}
        }
    }
}

fn parse_phalanx(argv: &[String]) {
    if let Err(e) = phalanx_cli::Cli::try_parse_from(argv) {
        panic!("README: `{}` does not parse: {e}", argv.join(" "));
    }
}

fn parse_keyvault(argv: &[String]) {
    if let Err(e) = keyvault::run::Cli::try_parse_from(argv) {
        panic!("README: `{}` does not parse: {e}", argv.join(" "));
    }
}

#[test]
fn every_readme_command_exists_as_written() {
    let makefile = std::fs::read_to_string(root().join("Makefile")).unwrap();
    let mut checked = 0;
    for line in shell_lines() {
        for argv in variants(&line) {
            let Some(first) = argv.first() else { continue };
            match first.as_str() {
                "phalanx" => parse_phalanx(&argv),
                "keyvault" => parse_keyvault(&argv),
                "cargo" => check_cargo(&argv),
                "make" => {
                    let target = argv.get(1).expect("make with a target");
                    assert!(
                        makefile.contains(&format!("\n{target}:")),
                        "no make target {target}"
                    );
                }
                s if s.starts_with("scripts/") => {
                    assert!(Path::new(&root().join(s)).exists(), "no script {s}");
                }
                _ => continue,
            }
            checked += 1;
        }
    }
    assert!(checked >= 25, "only {checked} README commands found");
}

#[test]
fn example_configs_name_served_routes() {
    let node = std::fs::read_to_string(root().join("keyvault/config/node.toml")).unwrap();
    assert!(
        node.contains("/.well-known/jwks.json"),
        "the node example's jwks_url"
    );
    let routes = std::fs::read_to_string(root().join("attestation-service/src/rest.rs")).unwrap();
    assert!(routes.contains("\"/.well-known/jwks.json\""));
}
