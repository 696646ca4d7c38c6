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
    let (mut server, url, genesis) = serve(&dir.path().join("chain"), &pubkey);

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
    // A file pRuntime would not load is refused before anything is sent (the height
    // below counts no deployment).
    let pem = dir.path().join("not-a-module.pem");
    std::fs::write(
        &pem,
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let out = tx(&["deploy", "--module", pem.to_str().unwrap()]);
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("not a contract module pRuntime accepts"),
        "{said}"
    );

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

/// Starts `phalanx chain serve` on `dir`, governed by `governance` (hex); its URL and
/// genesis (hex).
fn serve(dir: &std::path::Path, governance: &str) -> (std::process::Child, String, String) {
    let mut server = Command::new(env!("CARGO_BIN_EXE_phalanx"))
        .args(["chain", "serve", "--listen", "127.0.0.1:0", "--dir"])
        .arg(dir)
        .args(["--governance", governance])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let hello: serde_json::Value = serde_json::from_str(&line).unwrap();
    let url = hello["url"].as_str().unwrap().to_owned();
    let genesis = hello["genesis"].as_str().unwrap().to_owned();
    (server, url, genesis)
}

/// Killed with SIGKILL under a load of concurrent submissions, the ledger loses nothing
/// it acknowledged: every block re-verifies from genesis, every transaction it answered
/// with a height is in that block, and the restarted node, which reads the state it
/// stored with its blocks instead of replaying, stands at the replay's state root.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_transactions_survive_kill_9() {
    use phalanx_proto::chain::v1 as pb;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("chain");
    let governance = hex::encode(chain::types::public_key(
        chain::random_key().verifying_key(),
    ));
    let (mut server, url, genesis) = serve(&data, &governance);
    let state = LightClient::pinned(&url, hex::decode(&genesis).unwrap().try_into().unwrap())
        .sync()
        .await
        .unwrap();
    let chain_id = state.chain_id();
    let acknowledged = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let submitters: Vec<_> = (0..8u8)
        .map(|t| {
            let (url, acknowledged, stop) = (url.clone(), acknowledged.clone(), stop.clone());
            tokio::spawn(async move {
                let mut client = pb::chain_client::ChainClient::connect(url).await.unwrap();
                for i in 0u16.. {
                    if stop.load(std::sync::atomic::Ordering::SeqCst) {
                        break;
                    }
                    let mut salt = [t; 32];
                    salt[1..3].copy_from_slice(&i.to_be_bytes());
                    let tx = chain::types::SignedTx::sign(
                        &chain::random_key(),
                        &chain_id,
                        0,
                        chain::types::Tx::DeployContract {
                            code: b"\0asm\x01\0\0\0".to_vec(),
                            salt,
                        },
                    );
                    match client.submit(pb::SubmitRequest { tx: tx.encode() }).await {
                        Ok(r) => acknowledged
                            .lock()
                            .unwrap()
                            .push((tx, r.into_inner().height)),
                        Err(_) => break,
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    server.kill().unwrap(); // SIGKILL
    server.wait().unwrap();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for s in submitters {
        s.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() > 20,
        "{} acknowledged",
        acknowledged.len()
    );
    // Every block re-verifies from genesis; every acknowledged transaction is where the
    // node said.
    let state = chain::ledger::Ledger::verify_dir(&data.join("ledger")).unwrap();
    for (tx, height) in &acknowledged {
        assert!(*height < state.height(), "block {height} lost");
        let chain::types::Tx::DeployContract { code, salt } = &tx.tx else {
            unreachable!()
        };
        let id = phalanx_types::contract::contract_id(
            &chain_id,
            &tx.signer,
            &phalanx_types::contract::code_hash(code),
            salt,
        );
        assert!(
            state.contract(&id).is_some(),
            "an acknowledged deployment is lost"
        );
    }
    // And the node starts again on the same chain, from the state it stored with the
    // last block (nothing replayed): the state root a replay from genesis gives.
    let (mut again, url_again, genesis_again) = serve(&data, &governance);
    assert_eq!(genesis_again, genesis);
    let mut pin = [0u8; 32];
    hex::decode_to_slice(&genesis, &mut pin).unwrap();
    let head = chain::grpc::LightClient::pinned(&url_again, pin)
        .facts(&[])
        .await
        .unwrap()
        .header;
    assert_eq!(
        (head.height + 1, head.state_root),
        (state.height(), state.state_root())
    );
    again.kill().unwrap();
    again.wait().unwrap();
}
