//! Three `keyvault serve` processes on the Solidity registry (anvil; skipped without one
//! unless `PHALANX_REQUIRE_ANVIL` is set), configured as an operator would: `[registry]
//! url = "evm+http://…#0x…"`, an account key file, the simulated TEE and its root as the
//! evidence root. Each attests and waits for governance, which approves the pending
//! registration each node wrote (`phalanx chain tx … approve-registration`); governance
//! names the set and locks epoch 0; the genesis DKG commits and its certificate lands on
//! the contract; and a worker then registers with the running nodes' endorsements.
#![cfg(unix)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use chain::evm::{Anvil, EvmAccount, EvmRegistry, RemoteEndorser, funded};
use chain::registry::Registry as _;
use chain::types::Role;
use keyvault::admin::{self, Outcome};
use keyvault::round::RoundKind;
use keyvault::share::NodeIndex;
use keyvault::tls::ClusterCa;
use phalanx_cli::ChainChange;
use phalanx_types::Epoch;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

const N: u16 = 3;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The children, killed when the test ends however it ends.
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `phalanx chain tx --url URL --key KEY CHANGE`.
async fn tx(url: &str, key: &Path, change: ChainChange) {
    phalanx_cli::chain_cmd::tx(url, None, key, change)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_committee_on_the_solidity_registry_from_first_approval_to_genesis() {
    let Some(anvil) = Anvil::start(None).await.unwrap() else {
        assert!(
            std::env::var_os("PHALANX_REQUIRE_ANVIL").is_none(),
            "PHALANX_REQUIRE_ANVIL is set but no anvil is installed (set ANVIL)"
        );
        return;
    };
    let rpc = anvil.url();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let att = phalanx_cli::devnet::attestation(&root.join("as"), std::future::pending())
        .await
        .unwrap();
    std::fs::write(root.join("jwks.json"), &att.jwks_json).unwrap();
    std::fs::write(root.join("sim-root.pem"), att.sim.root_pem()).unwrap();
    let secret = "evm-process-test-admin-secret".to_owned();
    std::fs::write(root.join("admin.secret"), &secret).unwrap();
    let ca = ClusterCa::load_or_create(&root).unwrap();

    // Governance deploys the registry and allows the gatekeepers' enclave.
    let governance = funded(rpc).await.unwrap();
    let gov_key = root.join("governance.key");
    phalanx_types::secret_file::create(&gov_key, hex::encode(governance.to_bytes()).as_bytes())
        .unwrap();
    let registry = EvmRegistry::deploy(rpc, &funded(rpc).await.unwrap(), governance.address())
        .await
        .unwrap();
    let url = format!("evm+{rpc}#{}", registry.address());
    tx(
        &url,
        &gov_key,
        ChainChange::AddMeasurement {
            measurement: hex::encode(phalanx_cli::devnet::gatekeeper_tenant().digest()),
            role: Role::Gatekeeper,
        },
    )
    .await;

    let mut children = Children(Vec::new());
    let mut urls = Vec::new();
    for i in 1..=N {
        let (client, peer) = (free_port(), free_port());
        let dir = root.join(format!("node-{i}"));
        let config = root.join(format!("node-{i}.toml"));
        std::fs::write(
            &config,
            format!(
                "index = {i}\ndata_dir = \"{d}\"\nadmin_secret_file = \"{r}/admin.secret\"\n\
                 [listen]\nclient = \"127.0.0.1:{client}\"\npeer = \"127.0.0.1:{peer}\"\n\
                 [tls]\nca_cert = \"{r}/ca.pem\"\ncert = \"{d}/cert.pem\"\n\
                 [attestation]\njwks_file = \"{r}/jwks.json\"\nservice_url = \"http://{rest}\"\npolicy = \"devnet\"\n\
                 [policy]\nissuer = \"http://{rest}\"\ntrust_roots = [\"sim\"]\n\
                 attestation_policies = [\"devnet\"]\ngatekeeper_policies = [\"devnet\"]\n\
                 [rounds]\nphase_timeout_ms = 8000\npoll_interval_ms = 50\n\
                 [registry]\nurl = \"{url}\"\n\
                 evidence_roots = [\"{r}/sim-root.pem\"]\n\
                 [tee]\nbackend = \"sim\"\nsim_pki = \"{pki}\"\nmr_enclave = \"{mr}\"\n",
                d = dir.display(),
                r = root.display(),
                rest = att.rest,
                pki = att.sim_pki.display(),
                mr = hex::encode(phalanx_cli::devnet::GATEKEEPER_MR_ENCLAVE),
            ),
        )
        .unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_keyvault"))
            .args(["--config", config.to_str().unwrap(), "init"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(
            &hex::decode(v["identity_key"].as_str().unwrap()).unwrap(),
        )
        .unwrap();
        std::fs::write(
            dir.join("cert.pem"),
            ca.issue(NodeIndex::new(i).unwrap(), &key).unwrap(),
        )
        .unwrap();
        // Its Ethereum account (derived from its sealed identity), funded.
        let account: chain::evm::Address = v["evm_account"].as_str().unwrap().parse().unwrap();
        chain::evm::fund(rpc, account).await.unwrap();
        let log = std::fs::File::create(root.join(format!("node-{i}.log"))).unwrap();
        children.0.push(
            Command::new(env!("CARGO_BIN_EXE_keyvault"))
                .args(["--config", config.to_str().unwrap(), "serve"])
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap(),
        );
        urls.push(format!("http://127.0.0.1:{client}"));
    }
    let logs = || {
        (1..=N)
            .map(|i| std::fs::read_to_string(root.join(format!("node-{i}.log"))).unwrap())
            .collect::<Vec<_>>()
            .join("\n")
    };

    // No set yet: each node waits for governance, which checks and approves its file.
    for i in 1..=N {
        let pending = root.join(format!("node-{i}/registration.pending"));
        wait_for(|| pending.exists(), &logs, "a pending registration").await;
        tx(
            &url,
            &gov_key,
            ChainChange::ApproveRegistration {
                file: pending,
                trust_root: Some(root.join("sim-root.pem")),
            },
        )
        .await;
    }
    for u in &urls {
        let up = async {
            while admin::node_status(u).await.is_err() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        if tokio::time::timeout(Duration::from_secs(60), up)
            .await
            .is_err()
        {
            panic!("{u} never served:\n{}", logs());
        }
    }

    // Governance names the set (threshold 2) and locks epoch 0; the genesis DKG commits
    // and its certificate lands on the contract.
    tx(
        &url,
        &gov_key,
        ChainChange::SetGatekeepers {
            nodes: urls.clone(),
            threshold: 2,
        },
    )
    .await;
    tx(
        &url,
        &gov_key,
        ChainChange::LockRotation { epoch: Epoch(0) },
    )
    .await;
    let infos: Vec<_> = admin::cluster_status(&urls)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let spec = admin::spec(
        RoundKind::Dkg {
            epoch: Epoch(0),
            threshold: 2,
        },
        &infos,
    )
    .unwrap();
    let id = admin::start_round(&urls, &secret, &spec).await.unwrap();
    let outcome = admin::wait_round(&urls, &id, Duration::from_secs(90))
        .await
        .unwrap();
    assert_eq!(outcome, Outcome::Committed, "{}", logs());
    let published = async {
        loop {
            if let Some(k) = registry.master_key(Epoch(0)).await.unwrap() {
                return k;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    let key = tokio::time::timeout(Duration::from_secs(30), published)
        .await
        .unwrap_or_else(|_| panic!("epoch 0 never published:\n{}", logs()));
    let public = admin::agreed_public_key_set(
        &admin::cluster_status(&urls)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect::<Vec<_>>(),
        Epoch(0),
        None,
    )
    .unwrap();
    assert_eq!(
        key.master_public_key,
        keyvault::dleq::point_bytes(&public.master_public_key())
    );

    // A worker now registers with the running nodes' endorsements (2 of 3).
    let enclave = chain::sim::enclave([0x77; 32]);
    tx(
        &url,
        &gov_key,
        ChainChange::AddMeasurement {
            measurement: hex::encode(chain::sim::tenant(&enclave)),
            role: Role::Runtime,
        },
    )
    .await;
    let worker = chain::random_key();
    let reg = chain::sim::registration(
        &att.sim,
        &enclave,
        &worker,
        vec![4; 65],
        registry.chain_id().await.unwrap(),
    )
    .unwrap();
    let account = EvmAccount {
        signer: funded(rpc).await.unwrap(),
        identity: Some(worker.clone()),
    };
    registry
        .clone()
        .with_endorser(Arc::new(RemoteEndorser::new(None)))
        .register_worker(&account, &reg)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", logs()));
    assert!(
        registry
            .worker(&chain::types::public_key(worker.verifying_key()))
            .await
            .unwrap()
            .is_some()
    );
}

/// Waits (at most a minute) until `ready`, showing the nodes' logs if it never is.
async fn wait_for(ready: impl Fn() -> bool, logs: &impl Fn() -> String, what: &str) {
    for _ in 0..600 {
        if ready() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no {what} within a minute:\n{}", logs());
}
