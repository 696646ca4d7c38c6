//! `phalanx verify answer` on an answer from a worker on the Solidity registry (issue 27,
//! item 3): offline with the block pinned, and online against the user's own node,
//! which vouches for the answer's block and supplies the proofs a bundle leaves out.
//! On anvil; skips without one unless `PHALANX_REQUIRE_ANVIL` is set.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../../pruntime/verify/tests/evm_world/mod.rs"]
mod evm_world;

use std::process::Command;

fn verify(args: &[&str]) -> (i32, serde_json::Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_phalanx"))
        .args(["verify", "answer", "--json", "--at-statement"])
        .args(args)
        .output()
        .unwrap();
    let json = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out.status.code().unwrap(), json)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_answer_pins_an_evm_registry_and_asks_the_users_node() {
    let Some(w) = evm_world::world().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("sim-root.pem");
    std::fs::write(&root, &w.root_pem).unwrap();
    let write = |name: &str, b: &phalanx_verify::Bundle| {
        let p = dir.path().join(name);
        std::fs::write(&p, serde_json::to_vec(b).unwrap()).unwrap();
        p.display().to_string()
    };
    let full = write("bundle.json", &w.bundle);
    let mut bare = w.bundle.clone();
    bare.registry = phalanx_verify::RegistryProof::default();
    let bare = write("bare.json", &bare);
    let (chain_id, registry, block) = w.pin();
    let pin = format!("{chain_id}:0x{}", hex::encode(registry));
    let block = hex::encode(block);
    let root = root.display().to_string();
    let node = w.registry_url.clone();
    let base = [
        "--evm-registry",
        pin.as_str(),
        "--trust-root",
        root.as_str(),
    ];

    // Offline, the block pinned.
    let (code, v) = verify(&[&[full.as_str()], &base[..], &["--evm-block", &block]].concat());
    assert_eq!((code, &v["ok"]), (0, &serde_json::json!(true)), "{v}");
    assert!(v["checks"][0]["anchor"].as_str().unwrap().contains(&block));
    // Offline, nothing vouching for the block: refused, saying how to fix it.
    let (code, v) = verify(&[&[full.as_str()], &base[..]].concat());
    assert_eq!(
        (code, v["error"]["code"].as_str()),
        (1, Some("evm_block_untrusted")),
        "{v}"
    );
    // Online: the user's node names the block, and fills in a bundle without proofs.
    let (code, v) = verify(&[&[bare.as_str()], &base[..], &["--chain", &node]].concat());
    assert_eq!((code, &v["ok"]), (0, &serde_json::json!(true)), "{v}");
    // A pinned block the node's proofs are not at; another chain's node; a bad pin.
    let (code, v) = verify(
        &[
            &[bare.as_str()],
            &base[..],
            &["--chain", &node, "--evm-block", &"ab".repeat(32)],
        ]
        .concat(),
    );
    assert_eq!(
        (code, v["error"]["code"].as_str()),
        (1, Some("evm_block_untrusted")),
        "{v}"
    );
    let other = format!("{}:0x{}", chain_id + 1, hex::encode(registry));
    let (code, v) = verify(&[full.as_str(), "--evm-registry", &other, "--chain", &node]);
    assert_eq!(
        (code, v["error"]["check"].as_str()),
        (2, Some("registry")),
        "{v}"
    );
    let (code, _) = verify(&[full.as_str(), "--evm-registry", "0x12"]);
    assert_eq!(code, 2);
    // A registry URL names the user's node and the registry at once; the chain is the
    // node's. Naming another contract than the pinned one is refused.
    let url = format!("evm+{node}#0x{}", hex::encode(registry));
    let (code, v) = verify(&[bare.as_str(), "--trust-root", &root, "--chain", &url]);
    assert_eq!((code, &v["ok"]), (0, &serde_json::json!(true)), "{v}");
    let elsewhere = format!("evm+{node}#0x{}", "11".repeat(20));
    let (code, v) = verify(&[&[full.as_str()], &base[..], &["--chain", &elsewhere]].concat());
    assert_eq!(
        (code, v["error"]["check"].as_str()),
        (2, Some("options")),
        "{v}"
    );
    let (code, _) = verify(&[full.as_str(), "--chain", "evm+http://127.0.0.1:1"]);
    assert_eq!(code, 2, "a registry URL without its contract");
    // A ledger's genesis and an EVM registry at once: refused by the argument parser.
    let out = Command::new(env!("CARGO_BIN_EXE_phalanx"))
        .args([
            "verify",
            "answer",
            &full,
            "--evm-registry",
            &pin,
            "--genesis",
            &"00".repeat(32),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// `phalanx chain evm-keygen` and `evm-deploy`: an account key file (0600, refused when
/// it exists), then the registry deployed with it, printed as the URL configs name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evm_keygen_and_deploy_make_a_registry_configs_can_name() {
    let Some(anvil) = chain::evm::Anvil::start(None).await.unwrap() else {
        assert!(
            std::env::var_os("PHALANX_REQUIRE_ANVIL").is_none(),
            "no anvil"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("deployer.key");
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_phalanx"))
            .args(args)
            .output()
            .unwrap();
        let json = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
        (
            out.status.code().unwrap(),
            json,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, made, _) = run(&["chain", "evm-keygen", "--out", key.to_str().unwrap()]);
    assert_eq!(code, 0);
    let address = made["address"].as_str().unwrap().to_owned();
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let (code, _, err) = run(&["chain", "evm-keygen", "--out", key.to_str().unwrap()]);
    assert!(code != 0 && err.contains("exists"), "{err}");
    let signer = chain::evm::signer_file(&key, false).unwrap();
    assert_eq!(signer.address().to_string(), address);
    // A funded account's key file deploys; governance is another account.
    let payer = chain::evm::funded(anvil.url()).await.unwrap();
    let key = dir.path().join("payer.key");
    phalanx_types::secret_file::create(&key, hex::encode(payer.to_bytes()).as_bytes()).unwrap();
    let gov = chain::evm::funded(anvil.url()).await.unwrap();
    let gov_key = dir.path().join("governance.key");
    phalanx_types::secret_file::create(&gov_key, hex::encode(gov.to_bytes()).as_bytes()).unwrap();
    let governance = gov.address().to_string();
    let (code, deployed, err) = run(&[
        "chain",
        "evm-deploy",
        "--rpc",
        anvil.url(),
        "--key",
        key.to_str().unwrap(),
        "--governance",
        &governance,
    ]);
    assert_eq!(code, 0, "{err}");
    let url: chain::registry_url::RegistryUrl =
        deployed["registry"].as_str().unwrap().parse().unwrap();
    let chain::registry_url::RegistryUrl::Evm { rpc, address } = url else {
        panic!("{deployed}")
    };
    assert_eq!(rpc, anvil.url());
    assert_eq!(
        deployed["pin"],
        format!("31337:{}", deployed["address"].as_str().unwrap())
    );
    let registry = chain::evm::EvmRegistry::at(&rpc, address.into()).unwrap();
    use chain::registry::Registry as _;
    assert_eq!(
        registry.rotation().await.unwrap(),
        chain::types::Rotation::Idle
    );
    // Governance's changes through `phalanx chain tx`, the same command as on the ledger.
    let reg = deployed["registry"].as_str().unwrap().to_owned();
    let tx = |key: &std::path::Path, change: &[&str]| {
        run(&[
            &[
                "chain",
                "tx",
                "--url",
                reg.as_str(),
                "--key",
                key.to_str().unwrap(),
            ],
            change,
        ]
        .concat())
    };
    let tenant = "ab".repeat(32);
    let (code, out, err) = tx(
        &gov_key,
        &["add-measurement", &tenant, "--role", "pruntime"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out["height"].as_u64().unwrap() > 0);
    let allowed = registry.allowed_measurements().await.unwrap();
    assert_eq!(allowed[0].measurement, hex::decode(&tenant).unwrap());
    assert_eq!(allowed[0].role, chain::types::Role::Runtime);
    let (code, _, err) = tx(
        &gov_key,
        &[
            "set-tcb-rule",
            "--tcb-status",
            "UpToDate",
            "--tcb-status",
            "SWHardeningNeeded",
            "--max-evidence-age",
            "86400",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(registry.tcb_rule().await.unwrap().max_evidence_age, 86400);
    // Anyone deploys a contract (checked as pRuntime would load it first).
    let counter = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../pruntime/guest/wasm/counter.wasm");
    let (code, out, err) = tx(&key, &["deploy", "--module", counter.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let id: [u8; 32] = hex::decode(out["contract"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    use chain::registry::ContractRegistry as _;
    assert!(registry.contract(id).await.unwrap().is_some());
    // The registry as proven at the node's newest block.
    let (code, status, err) = run(&["chain", "status", "--url", &reg]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(status["allowed_measurements"][0]["measurement"], tenant);
    assert_eq!(status["allowed_measurements"][0]["role"], "pruntime");
    assert_eq!(status["contracts"][0]["id"], hex::encode(id));
    assert_eq!(status["contracts"][0]["commands"], 0);
    assert_eq!(status["tcb_rule"]["max_evidence_age"], 86400);
    assert_eq!(status["rotation"], "Idle");
    assert_eq!(status["governance"], governance.to_lowercase());
    // Not governance: refused, by the rule's name; a ledger's genesis for an EVM registry.
    let (code, _, err) = tx(
        &key,
        &["add-measurement", &"cd".repeat(32), "--role", "pruntime"],
    );
    assert!(code != 0 && err.contains("governance"), "{err}");
    let (code, _, err) = run(&[
        "chain",
        "tx",
        "--url",
        &reg,
        "--genesis",
        &"00".repeat(32),
        "--key",
        key.to_str().unwrap(),
        "lock-rotation",
        "0",
    ]);
    assert!(code != 0 && err.contains("--genesis"), "{err}");
    // A bad governance address, a missing key file: refused before anything is sent.
    let (code, _, err) = run(&[
        "chain",
        "evm-deploy",
        "--rpc",
        anvil.url(),
        "--key",
        key.to_str().unwrap(),
        "--governance",
        "0x1234",
    ]);
    assert!(code != 0 && err.contains("--governance"), "{err}");
    let (code, _, _) = run(&[
        "chain",
        "evm-deploy",
        "--rpc",
        anvil.url(),
        "--key",
        "/nonexistent.key",
        "--governance",
        &governance,
    ]);
    assert_ne!(code, 0);
}
