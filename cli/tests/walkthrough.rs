//! The README, step by step, as a new user types it (issue 30, item 6): its commands
//! are read from the README itself — not copied here — and run in the order written,
//! against one devnet, from a fresh directory that is also the shell's home, so the
//! README's paths (`~/.phalanx/devnet/…`, and `pruntime/guest/…` relative to it) hold,
//! with `phalanx` on the `PATH`.
//! Placeholders are the devnet summary's values (`CHAIN`, `CHAIN_GENESIS`, `CONTRACT`,
//! `PRUNTIME`, `VOTE`, `NODES`). A step that fails, or does not print what the text
//! says it prints, fails the test with the step's README line.
//!
//! Steps: the README's verify command for the devnet's answer (`## The two commands`),
//! a contract user's commands and the verification of the bundles they write (`### Using
//! a contract`), a contract bundled with the one it calls, the operator's rounds (`## Gatekeepers`: refresh, rotate, reshare,
//! retire), and a resumed devnet afterwards, on what those rounds left.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A README `sh` block: its commands with their line numbers.
type Block = Vec<(usize, String)>;

/// The block whose first command starts with `first`.
fn block<'a>(all: &'a [Block], first: &str) -> &'a Block {
    all.iter()
        .find(|b| b.first().is_some_and(|(_, c)| c.starts_with(first)))
        .unwrap_or_else(|| panic!("the README has no block starting with {first:?}"))
}

/// `command` with each placeholder (a whole word) replaced by the summary's value; a
/// placeholder left anywhere (inside another word) fails.
fn fill(command: &str, values: &[(&str, String)]) -> String {
    let filled = command
        .split(' ')
        .map(|w| {
            values
                .iter()
                .find(|(k, _)| *k == w)
                .map_or_else(|| w.to_owned(), |(_, v)| v.clone())
        })
        .collect::<Vec<_>>()
        .join(" ");
    for (k, _) in values {
        assert!(!filled.contains(k), "{k} left in `{filled}`");
    }
    filled
}

/// Runs a README line in `cwd` as a shell would, `phalanx` on the PATH and `cwd` the
/// home: its stdout.
fn step(cwd: &Path, line: usize, command: &str) -> String {
    passed(line, command, shell(cwd, line, command))
}

/// The stdout of a step that must have succeeded.
fn passed(line: usize, command: &str, out: std::process::Output) -> String {
    assert!(
        out.status.success(),
        "README.md:{line}: `{command}` failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A step the README says to run again until it passes (retiring an epoch waits for the
/// workers' commitments): tried for up to a minute.
fn step_again(cwd: &Path, line: usize, command: &str) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let out = shell(cwd, line, command);
        if out.status.success() || std::time::Instant::now() > deadline {
            return passed(line, command, out);
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

fn shell(cwd: &Path, line: usize, command: &str) -> std::process::Output {
    let bin = Path::new(env!("CARGO_BIN_EXE_phalanx")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    eprintln!("README.md:{line}: {command}");
    Command::new("bash")
        .args(["-c", command])
        .current_dir(cwd)
        .env("PATH", path)
        .env("HOME", cwd)
        .env_remove(phalanx_types::home::ENV)
        .output()
        .unwrap()
}

#[test]
fn the_readme_works_as_typed_in_order() {
    let all = common::readme_blocks();
    let cwd = tempfile::tempdir().unwrap();
    let dir = cwd.path().join(".phalanx/devnet");
    std::fs::create_dir_all(dir.parent().unwrap()).unwrap();
    // The README's paths into the checkout (example modules) resolve from here too; the
    // checkout itself is never written.
    std::os::unix::fs::symlink(repo().join("pruntime"), cwd.path().join("pruntime")).unwrap();
    let (devnet, summary) = common::devnet(&dir);
    let s = |k: &str| summary[k].as_str().unwrap().to_owned();
    let values = [
        ("CHAIN_GENESIS", s("chain_genesis")),
        ("CHAIN", s("chain")),
        ("CONTRACT", s("contract")),
        ("PRUNTIME", s("pruntime")),
        (
            "VOTE",
            summary["examples"]["vote"].as_str().unwrap().to_owned(),
        ),
        ("NODES", s("nodes")),
        ("NODES_1_4", {
            let nodes = s("nodes");
            nodes.rsplit_once(',').unwrap().0.to_owned()
        }),
        (
            "GATEKEEPER",
            summary["gatekeepers"][0].as_str().unwrap().to_owned(),
        ),
    ];

    // `## The two commands`: the devnet's answer, verified as the README writes it.
    let verify = block(
        &all,
        "phalanx verify answer ~/.phalanx/devnet/demo/bundle.json",
    );
    for (line, c) in verify {
        let verdict: serde_json::Value =
            serde_json::from_str(&step(cwd.path(), *line, &fill(c, &values))).unwrap();
        assert_eq!(verdict["ok"], true, "README.md:{line}: {verdict}");
    }

    // `### Using a contract`: a user's commands, each as typed.
    // The receipt must say the command applied (the command exits 0 for a refused one
    // too), and the bundles the README writes must verify (the last two steps).
    let user = block(&all, "phalanx chain keygen --out ~/.phalanx/me.key");
    for (line, c) in user {
        let out = step(cwd.path(), *line, &fill(c, &values));
        assert!(!out.trim().is_empty(), "README.md:{line}: printed nothing");
        if c.starts_with("phalanx contract receipt") {
            assert!(out.contains("applied"), "README.md:{line}: {out}");
        }
    }
    for written in ["me.key", "query.json", "receipt.json"] {
        assert!(
            cwd.path().join(".phalanx").join(written).exists(),
            "~/.phalanx/{written} was not written"
        );
    }

    // `**Contracts calling contracts**`: the market bundled with its token, checked.
    for (line, c) in block(&all, "phalanx contract bundle") {
        let out = step(cwd.path(), *line, &fill(c, &values));
        assert!(out.contains("component token"), "README.md:{line}: {out}");
    }
    assert!(
        cwd.path().join(".phalanx/market.wasm").exists(),
        "~/.phalanx/market.wasm was not written"
    );

    // `## Gatekeepers`: the operator's rounds, in the order written.
    let rounds = block(&all, "phalanx keyvault status --nodes NODES");
    for (line, c) in rounds {
        if c.starts_with("phalanx chain tx") && c.ends_with("retire-epoch 0") {
            step_again(cwd.path(), *line, &fill(c, &values));
        } else {
            step(cwd.path(), *line, &fill(c, &values));
        }
    }
    let status: serde_json::Value =
        serde_json::from_str(&step(cwd.path(), rounds[0].0, &fill(&rounds[0].1, &values))).unwrap();
    assert_eq!(
        status["epochs"]["1"]["members_agreeing"],
        serde_json::json!([1, 2, 3, 4, 5]),
        "after the rotation every node holds epoch 1: {status}"
    );
    assert_eq!(status["epochs"]["1"]["threshold"], 4, "reshared: {status}");
    assert!(
        status["epochs"].get("0").is_none(),
        "epoch 0 erased: {status}"
    );

    // An auditor's two visits to gatekeeper 1: the first pins its key and head, the
    // second checks the head it gets now against that one.
    let audit = block(&all, "phalanx keyvault audit");
    for _ in 0..2 {
        let (line, c) = &audit[0];
        let out: serde_json::Value =
            serde_json::from_str(&step(cwd.path(), *line, &fill(c, &values))).unwrap();
        assert_eq!(out["ok"], true, "README.md:{line}: {out}");
    }

    // Gatekeeper 5 leaves.
    for (line, c) in block(
        &all,
        "phalanx chain tx --url CHAIN --genesis CHAIN_GENESIS --key ~/.phalanx/devnet/chain/governance.key set-gatekeepers --nodes NODES_1_4",
    ) {
        step(cwd.path(), *line, &fill(c, &values));
    }
    let status: serde_json::Value =
        serde_json::from_str(&step(cwd.path(), rounds[0].0, &fill(&rounds[0].1, &values))).unwrap();
    assert_eq!(
        status["epochs"]["1"]["members_agreeing"],
        serde_json::json!([1, 2, 3, 4]),
        "after the removal the four that stay hold epoch 1: {status}"
    );
    assert_eq!(status["epochs"]["1"]["threshold"], 3, "reshared: {status}");

    // And the devnet resumes afterwards, on the rotated keys, with the four.
    devnet.terminate();
    let (_again, resumed) = common::devnet(&dir);
    assert_eq!(resumed["genesis"], false);
    assert_ne!(resumed["master_public_key"], summary["master_public_key"]);
    assert_eq!(
        resumed["gatekeepers"].as_array().map(Vec::len),
        Some(4),
        "gatekeeper 5 left: {resumed}"
    );
}
