//! The README, step by step, as a new user types it (issue 30, item 6): its commands
//! are read from the README itself — not copied here — and run in the order written,
//! against one devnet, from a fresh directory where the README's relative paths
//! (`phalanx-data/devnet/…`, `pruntime/guest/…`) hold, with `phalanx` on the `PATH`.
//! Placeholders are the devnet summary's values (`CHAIN`, `CHAIN_GENESIS`, `CONTRACT`,
//! `PRUNTIME`, `VOTE`, `NODES`). A step that fails, or does not print what the text
//! says it prints, fails the test with the step's README line.
//!
//! Steps: the README's verify command for the devnet's answer (`## The two commands`),
//! a contract user's commands and the verification of the bundles they write (`### Using
//! a contract`), the operator's rounds (`## Gatekeepers`), and a resumed devnet
//! afterwards.
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

/// Runs a README line in `cwd` as a shell would, `phalanx` on the PATH: its stdout.
fn step(cwd: &Path, line: usize, command: &str) -> String {
    let bin = Path::new(env!("CARGO_BIN_EXE_phalanx")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    eprintln!("README.md:{line}: {command}");
    let out = Command::new("bash")
        .args(["-c", command])
        .current_dir(cwd)
        .env("PATH", path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "README.md:{line}: `{command}` failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_readme_works_as_typed_in_order() {
    let all = common::readme_blocks();
    let cwd = tempfile::tempdir().unwrap();
    let dir = cwd.path().join("phalanx-data/devnet");
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
    ];

    // `## The two commands`: the devnet's answer, verified as the README writes it.
    let verify = block(
        &all,
        "phalanx verify answer phalanx-data/devnet/demo/bundle.json",
    );
    for (line, c) in verify {
        let verdict: serde_json::Value =
            serde_json::from_str(&step(cwd.path(), *line, &fill(c, &values))).unwrap();
        assert_eq!(verdict["ok"], true, "README.md:{line}: {verdict}");
    }

    // `### Using a contract`: a user's commands, each as typed.
    // The receipt must say the command applied (the command exits 0 for a refused one
    // too), and the bundles the README writes must verify (the last two steps).
    let user = block(&all, "phalanx chain keygen --out me.key");
    for (line, c) in user {
        let out = step(cwd.path(), *line, &fill(c, &values));
        assert!(!out.trim().is_empty(), "README.md:{line}: printed nothing");
        if c.starts_with("phalanx contract receipt") {
            assert!(out.contains("applied"), "README.md:{line}: {out}");
        }
    }
    for written in ["me.key", "query.json", "receipt.json"] {
        assert!(
            cwd.path().join(written).exists(),
            "{written} was not written"
        );
    }

    // `## Gatekeepers`: the operator's rounds, in the order written.
    let rounds = block(&all, "phalanx keyvault status --nodes NODES");
    for (line, c) in rounds {
        step(cwd.path(), *line, &fill(c, &values));
    }
    let status: serde_json::Value =
        serde_json::from_str(&step(cwd.path(), rounds[0].0, &fill(&rounds[0].1, &values))).unwrap();
    assert_eq!(
        status["epochs"]["1"]["members_agreeing"],
        serde_json::json!([1, 2, 3, 4, 5]),
        "after the rotation every node holds epoch 1: {status}"
    );

    // And the devnet resumes afterwards, on the rotated keys.
    devnet.terminate();
    let (_again, resumed) = common::devnet(&dir);
    assert_eq!(resumed["genesis"], false);
    assert_ne!(resumed["master_public_key"], summary["master_public_key"]);
}
