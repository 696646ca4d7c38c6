//! The ledger node as a process (`phalanx chain serve`), written to by a light client in
//! the test process and read back by `phalanx chain status` in a third process, which
//! rebuilds the registry from verified blocks.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use chain::grpc::LightClient;
use chain::registry::Registry;
use std::io::BufRead;
use std::process::{Command, Stdio};

fn phalanx(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_phalanx"))
        .args(args)
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ledger_process_and_light_clients_in_others() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("governance.key");
    let out = phalanx(&["chain", "keygen", "--out", key.to_str().unwrap()]);
    assert!(out.status.success());
    let pubkey = serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["public_key"]
        .as_str()
        .unwrap()
        .to_owned();
    // Never overwrites a key.
    assert!(
        !phalanx(&["chain", "keygen", "--out", key.to_str().unwrap()])
            .status
            .success()
    );
    let mut server = Command::new(env!("CARGO_BIN_EXE_phalanx"))
        .args([
            "chain",
            "serve",
            "--dir",
            dir.path().join("chain").to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--governance",
            &pubkey,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let hello: serde_json::Value = serde_json::from_str(&line).unwrap();
    let (url, genesis) = (
        hello["url"].as_str().unwrap().to_owned(),
        hello["genesis"].as_str().unwrap().to_owned(),
    );

    let governance = chain_key(&key);
    let client = LightClient::pinned(&url, hex::decode(&genesis).unwrap().try_into().unwrap());
    client
        .add_measurement(&governance, &[0xd3; 32], chain::types::Role::App)
        .await
        .unwrap();
    let stranger = chain::random_key();
    assert!(
        client
            .add_measurement(&stranger, &[0xd4; 32], chain::types::Role::App)
            .await
            .is_err()
    );
    // The same through `phalanx chain tx` in another process: a rule violation there
    // is an error exit naming the rule.
    let tx = |args: &[&str]| {
        let mut all = vec![
            "chain",
            "tx",
            "--url",
            &url,
            "--genesis",
            &genesis,
            "--key",
            key.to_str().unwrap(),
        ];
        all.extend_from_slice(args);
        phalanx(&all)
    };
    let d5 = hex::encode([0xd5; 32]);
    let out = tx(&["add-measurement", &d5, "--role", "pruntime"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = tx(&["add-measurement", &d5, "--role", "pruntime"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already allowed"));
    // A measurement is a tenant id (32 bytes), in a role: no role, an unknown role or
    // a bare short value is refused before anything is sent.
    for bad in [
        vec!["add-measurement", "5a5a", "--role", "app"],
        vec!["add-measurement", &d5],
        vec!["add-measurement", &d5, "--role", "root"],
    ] {
        assert!(!tx(&bad).status.success(), "{bad:?}");
    }
    // The TCB rule is governance's: a floor after a TCB recovery.
    let out = tx(&[
        "set-tcb-rule",
        "--tcb-status",
        "UpToDate",
        "--min-tcb-evaluation-data-number",
        "17",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !tx(&["set-tcb-rule", "--tcb-status", "Revoked"])
            .status
            .success()
    );
    assert!(tx(&["lock-rotation", "0"]).status.success());
    assert!(tx(&["abort-rotation", "0"]).status.success());

    let out = phalanx(&["chain", "status", "--url", &url, "--genesis", &genesis]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["height"], 6);
    assert_eq!(
        status["evidence_rule"]["min_tcb_evaluation_data_number"],
        17
    );
    assert_eq!(status["evidence_rule"]["intel_root_only"], true);
    assert_eq!(
        status["allowed_measurements"][0],
        serde_json::json!({"measurement": hex::encode([0xd3; 32]), "role": "app"})
    );
    assert_eq!(
        status["allowed_measurements"][1],
        serde_json::json!({"measurement": d5, "role": "pruntime"})
    );
    assert_eq!(status["governance"], pubkey);
    // The state root is the last header's, and the (empty) contract list is shown.
    assert_eq!(status["state_root"].as_str().unwrap().len(), 64);
    assert_eq!(status["contracts"], serde_json::json!([]));
    // Pinned to another genesis: refused.
    let out = phalanx(&[
        "chain",
        "status",
        "--url",
        &url,
        "--genesis",
        &"00".repeat(32),
    ]);
    assert!(!out.status.success());

    server.kill().unwrap();
    server.wait().unwrap();
}

fn chain_key(path: &std::path::Path) -> p256::ecdsa::SigningKey {
    keyvault::registry::key_file(path).unwrap()
}
