//! What the tests of processes share: a child process killed on drop, and the devnet
//! serving in one.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    dead_code
)]

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process, killed and waited for on drop.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Proc {
    /// SIGTERM, then wait (the worker seals its checkpoints on the way out).
    pub fn terminate(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.0.try_wait().unwrap().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the worker did not stop on SIGTERM");
    }
}

/// `phalanx devnet --dir D`, serving; its summary (printed once it is up).
pub fn devnet(dir: &Path) -> (Proc, serde_json::Value) {
    devnet_with(dir, &[])
}

/// [`devnet`] with more arguments (`--chain …`).
// The child is waited for by `Proc`'s drop, also when the devnet exits early.
#[allow(clippy::zombie_processes)]
pub fn devnet_with(dir: &Path, args: &[&str]) -> (Proc, serde_json::Value) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_phalanx"))
        .args(["devnet", "--dir", dir.to_str().unwrap()])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut text = String::new();
    loop {
        let mut line = String::new();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "devnet exited: {text}"
        );
        text.push_str(&line);
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
            return (Proc(child), v);
        }
    }
}

/// The README's ```sh blocks, each a list of its commands with their line numbers:
/// continuation lines joined, trailing ` # …` comments and comment lines dropped. The
/// one reading of the README that `readme.rs` (every command exists) and
/// `walkthrough.rs` (the steps run in order) share.
pub fn readme_blocks() -> Vec<Vec<(usize, String)>> {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let text = std::fs::read_to_string(root.join("README.md")).unwrap();
    let mut blocks = Vec::new();
    let mut block: Option<Vec<(usize, String)>> = None;
    let (mut acc, mut start) = (String::new(), 0);
    for (i, line) in text.lines().enumerate() {
        if line.starts_with("```") {
            if let Some(b) = block.take() {
                blocks.push(b);
            }
            if line.trim() == "```sh" {
                block = Some(Vec::new());
            }
            acc.clear();
            continue;
        }
        let Some(b) = block.as_mut() else {
            continue;
        };
        if acc.is_empty() {
            start = i + 1;
        }
        let line = line.split(" # ").next().unwrap_or("").trim_end();
        if let Some(head) = line.strip_suffix('\\') {
            acc.push_str(head);
            acc.push(' ');
            continue;
        }
        acc.push_str(line);
        let full = acc.trim().to_owned();
        acc.clear();
        if !full.is_empty() && !full.starts_with('#') {
            b.push((start, full));
        }
    }
    blocks
}
