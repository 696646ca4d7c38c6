//! The whole system on the Solidity registry (anvil; skipped without one unless
//! `PHALANX_REQUIRE_ANVIL` is set), as an operator and a user run it, every part a
//! `phalanx` process configured as the deploy files would:
//!
//! 1. governance deploys the registry and allows the gatekeepers' and pRuntime's
//!    enclaves (`phalanx chain evm-deploy`, `chain tx add-measurement`);
//! 2. three `phalanx gatekeeper serve` nodes (`[registry] url = "evm+http://…#0x…"`,
//!    simulated TEE) attest and wait for governance, which checks and approves the
//!    pending registration each wrote (`chain tx approve-registration`); governance
//!    names the set and locks epoch 0; the genesis DKG commits and its certificate
//!    lands on the contract;
//! 3. a user deploys the counter (`chain tx deploy`); `phalanx pruntime --registry-url
//!    evm+… --evm-chain-id … --confirmations 0` registers with the running nodes'
//!    endorsements, publishes the contract's keys and follows its commands from the
//!    contract's logs;
//! 4. the user sends a sealed command from an Ethereum account, queries the worker,
//!    and `phalanx verify answer --chain evm+…` checks the answer against the user's
//!    own node.
#![cfg(unix)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
use chain::evm::{Anvil, EvmAccount, EvmRegistry, funded};
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
async fn the_whole_system_on_the_solidity_registry() {
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

    // pRuntime's enclave: the devnet policy's (the SHA-256 of this test binary).
    let runtime_mr = pruntime::tee::own_measurement().unwrap();
    let runtime_tenant = phalanx_cli::devnet::pruntime_tenant(runtime_mr);
    tx(
        &url,
        &gov_key,
        ChainChange::AddMeasurement {
            measurement: hex::encode(runtime_tenant.digest()),
            role: Role::Runtime,
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
                 contract_runtimes = [\"{runtime}\"]\n\
                 [rounds]\nphase_timeout_ms = 8000\npoll_interval_ms = 50\n\
                 [registry]\nurl = \"{url}\"\n\
                 evidence_roots = [\"{r}/sim-root.pem\"]\n\
                 [tee]\nbackend = \"sim\"\nsim_pki = \"{pki}\"\nmr_enclave = \"{mr}\"\n",
                d = dir.display(),
                r = root.display(),
                rest = att.rest,
                pki = att.sim_pki.display(),
                mr = hex::encode(phalanx_cli::devnet::GATEKEEPER_MR_ENCLAVE),
                runtime = runtime_tenant.tenant_id(),
            ),
        )
        .unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_phalanx"))
            .args(["gatekeeper", "--config", config.to_str().unwrap(), "init"])
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
            Command::new(env!("CARGO_BIN_EXE_phalanx"))
                .args(["gatekeeper", "--config", config.to_str().unwrap(), "serve"])
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
                dry_run: false,
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
    assert_eq!(
        dkg(&urls, &secret, Epoch(0)).await,
        Outcome::Committed,
        "{}",
        logs()
    );
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

    // A user deploys the counter; pRuntime registers with the running nodes'
    // endorsements, publishes the contract's keys and follows it.
    let user_key = root.join("user.key");
    let user = funded(rpc).await.unwrap();
    phalanx_types::secret_file::create(&user_key, hex::encode(user.to_bytes()).as_bytes()).unwrap();
    let module = root.join("counter.wasm");
    std::fs::write(&module, phalanx_cli::devnet::COUNTER_WASM).unwrap();
    let deployed = phalanx(&[
        "chain",
        "tx",
        "--url",
        &url,
        "--key",
        user_key.to_str().unwrap(),
        "deploy",
        "--module",
        module.to_str().unwrap(),
    ]);
    let contract = deployed["contract"].as_str().unwrap().to_owned();
    let chain_id = registry.evm_chain_id().await.unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let worker_args = |extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = [
            "pruntime",
            "--data-dir",
            root.join("pruntime").to_str().unwrap(),
            "--attestation-url",
            &format!("http://{}", att.rest),
            "--policy",
            "devnet",
            "--registry-url",
            &url,
            "--evm-chain-id",
            &chain_id.to_string(),
            "--confirmations",
            "0",
            "--contract",
            &contract,
            "--listen",
            &listen,
            "--tee",
            "sim",
            "--sim-pki",
            att.sim_pki.to_str().unwrap(),
            "--mr-enclave",
            &hex::encode(runtime_mr),
            "--gatekeeper-trust-root",
            "sim",
            "--gatekeeper-policy",
            "devnet",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        a.extend(extra.iter().map(|s| (*s).to_owned()));
        a
    };
    // Its account derives from its sealed identity: the operator asks for it and funds it.
    let args = worker_args(&["--print-account"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let account: chain::evm::Address = phalanx(&args)["evm_account"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    chain::evm::fund(rpc, account).await.unwrap();
    let worker_log = std::fs::File::create(root.join("pruntime.log")).unwrap();
    children.0.push(
        Command::new(env!("CARGO_BIN_EXE_phalanx"))
            .args(worker_args(&[
                "--checkpoint-every",
                "1",
                "--commit-every-secs",
                "0",
            ]))
            .stdout(Stdio::null())
            .stderr(worker_log)
            .spawn()
            .unwrap(),
    );
    let logs = || {
        let mut all = logs();
        all.push_str(&std::fs::read_to_string(root.join("pruntime.log")).unwrap_or_default());
        all
    };
    let worker_url = format!("http://{listen}");
    let http = reqwest::Client::new();
    let info = || async {
        let r = http
            .get(format!("{worker_url}/v1/info"))
            .send()
            .await
            .ok()?;
        r.json::<serde_json::Value>().await.ok()
    };
    let mut identity = None;
    for _ in 0..600 {
        if let Some(i) = info().await {
            identity = i["identity_key"].as_str().map(str::to_owned);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let identity =
        hex::decode(identity.unwrap_or_else(|| panic!("pRuntime never served:\n{}", logs())))
            .unwrap();

    // The user's command, from an Ethereum account, sealed to the contract's key.
    let mut id = [0u8; 32];
    hex::decode_to_slice(&contract, &mut id).unwrap();
    let sender = EvmAccount::plain(funded(rpc).await.unwrap());
    let asker = chain::random_key();
    let send = |input: &'static [u8]| {
        let (registry, sender, asker) = (&registry, &sender, &asker);
        async move {
            pruntime::client::send_command_evm(registry, sender, asker, id, input)
                .await
                .unwrap()
        }
    };
    let height = send(b"bump").await;
    let applied = until(|| async {
        info()
            .await
            .is_some_and(|i| i["contracts"][0]["height"].as_u64().unwrap_or(0) >= height)
    });
    if tokio::time::timeout(Duration::from_secs(60), applied)
        .await
        .is_err()
    {
        panic!("the command was never applied:\n{}", logs());
    }

    // The query, sealed to the worker's key as the registry lists it; the answer checks
    // out against the user's own node.
    let asked = pruntime::client::query_evm(
        &registry,
        &http,
        &worker_url,
        &identity,
        &asker,
        id,
        b"read",
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", logs()));
    // The same caller in its command and its query: its own count and the total.
    let expected = [1u64.to_le_bytes(), 1u64.to_le_bytes()].concat();
    assert_eq!(
        asked.output.as_slice(),
        expected,
        "the counter after one bump"
    );
    let evidence: phalanx_verify::WorkerEvidence = http
        .get(format!("{worker_url}/v1/evidence"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bundle = phalanx_verify::Bundle::new(
        pruntime::client::answer_proof(&asked, b"read"),
        evidence,
        phalanx_verify::RegistryProof::default(),
    );
    let file = root.join("bundle.json");
    std::fs::write(&file, serde_json::to_string(&bundle).unwrap()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_phalanx"))
        .args([
            "verify",
            "answer",
            "--json",
            file.to_str().unwrap(),
            "--chain",
            &url,
            "--trust-root",
            root.join("sim-root.pem").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let verdict: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(verdict["ok"], true, "{verdict}");

    // Issue 28 on the Solidity registry: the worker commits the contract's state (the
    // fact proven at a block says what the contract's log says); a rotation to epoch 1
    // reaches it and it commits under epoch 1; then epoch 0 retires, which the contract
    // refused while it was the newest.
    use chain::registry::ContractRegistry as _;
    let committed_under = |epoch: u64| {
        let registry = &registry;
        async move {
            for _ in 0..600 {
                let c = registry.contract(id).await.unwrap().unwrap();
                if let Some(s) = c
                    .state
                    .filter(|s| s.epoch == Epoch(epoch) && s.count == c.commands)
                {
                    return s;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            panic!("no state committed under epoch {epoch}");
        }
    };
    let first = committed_under(0).await;
    let proven = registry
        .proven(&[chain::facts::Fact::State(id)], None)
        .await
        .unwrap();
    assert_eq!(proven.state(&id).unwrap(), Some(first));
    let retire = |epoch| {
        let (url, gov_key) = (&url, &gov_key);
        async move {
            phalanx_cli::chain_cmd::tx(url, None, gov_key, ChainChange::RetireEpoch { epoch }).await
        }
    };
    let refused = retire(Epoch(0)).await.unwrap_err().to_string();
    assert!(refused.contains("is the newest epoch"), "{refused}");
    tx(
        &url,
        &gov_key,
        ChainChange::LockRotation { epoch: Epoch(1) },
    )
    .await;
    assert_eq!(
        dkg(&urls, &secret, Epoch(1)).await,
        Outcome::Committed,
        "{}",
        logs()
    );
    committed_under(1).await;
    retire(Epoch(0)).await.unwrap();
    let height = send(b"bump").await;
    let applied = until(|| async {
        info()
            .await
            .is_some_and(|i| i["contracts"][0]["height"].as_u64().unwrap_or(0) >= height)
    });
    tokio::time::timeout(Duration::from_secs(60), applied)
        .await
        .unwrap_or_else(|_| panic!("a command under epoch 1 was never applied:\n{}", logs()));

    // A reorganisation deeper than the depth (0 here): the chain goes back past a
    // command the worker applied and grows another way. The worker stops serving the
    // contract and says why, instead of answering from a block that is gone.
    let snapshot = rpc_call(&http, rpc, "evm_snapshot", serde_json::json!([])).await;
    let height = send(b"bump").await;
    let applied = until(|| async {
        info()
            .await
            .is_some_and(|i| i["contracts"][0]["height"].as_u64().unwrap_or(0) >= height)
    });
    tokio::time::timeout(Duration::from_secs(60), applied)
        .await
        .unwrap_or_else(|_| panic!("the second command was never applied:\n{}", logs()));
    rpc_call(&http, rpc, "evm_revert", serde_json::json!([snapshot])).await;
    rpc_call(&http, rpc, "anvil_mine", serde_json::json!([5])).await;
    let stopped = until(|| async {
        info()
            .await
            .is_some_and(|i| i["contracts"][0]["ready"] == false)
    });
    tokio::time::timeout(Duration::from_secs(60), stopped)
        .await
        .unwrap_or_else(|_| panic!("the worker kept serving past a reorganisation:\n{}", logs()));
    assert!(
        logs().contains("a reorganisation deeper than the confirmation depth"),
        "{}",
        logs()
    );
}

/// A DKG creating `epoch` (threshold 2) among the nodes at `urls`, to its outcome.
async fn dkg(urls: &[String], secret: &str, epoch: Epoch) -> Outcome {
    let infos: Vec<_> = admin::cluster_status(urls)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let spec = admin::spec(
        RoundKind::Dkg {
            epoch,
            threshold: 2,
        },
        &infos,
    )
    .unwrap();
    let id = admin::start_round(urls, secret, &spec).await.unwrap();
    admin::wait_round(urls, &id, Duration::from_secs(90))
        .await
        .unwrap()
}

/// Resolves once `ready` (polled every 100 ms) says so.
async fn until<F: std::future::Future<Output = bool>>(ready: impl Fn() -> F) {
    while !ready().await {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A JSON-RPC call to the node at `rpc` (anvil's test methods); its result.
async fn rpc_call(
    http: &reqwest::Client,
    rpc: &str,
    method: &str,
    params: serde_json::Value,
) -> serde_json::Value {
    let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let r: serde_json::Value = http
        .post(rpc)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(r.get("error").is_none(), "{method}: {r}");
    r["result"].clone()
}

/// `phalanx ARGS`, which must succeed; its output as JSON.
fn phalanx(args: &[&str]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_phalanx"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
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

/// `phalanx devnet --chain anvil --once` (what `make devnet ARGS=--chain=anvil` runs):
/// the same demo on the Solidity registry, and the verify command it prints checks the
/// answer as printed, offline (the registry pinned by chain id, address and block).
#[test]
fn the_devnet_runs_on_anvil() {
    if std::env::var_os("ANVIL").is_none()
        && Command::new("anvil").arg("--version").output().is_err()
    {
        assert!(
            std::env::var_os("PHALANX_REQUIRE_ANVIL").is_none(),
            "PHALANX_REQUIRE_ANVIL is set but no anvil is installed (set ANVIL)"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let summary = phalanx(&[
        "devnet",
        "--dir",
        dir.path().to_str().unwrap(),
        "--once",
        "--chain",
        "anvil",
    ]);
    assert!(
        summary["chain"]
            .as_str()
            .unwrap()
            .starts_with("evm+http://")
    );
    let command = summary["verify_command"].as_str().unwrap();
    assert!(command.contains("--evm-registry") && command.contains("--evm-block"));
    let args: Vec<&str> = command.split_whitespace().skip(1).collect();
    let verdict = phalanx(&[&args[..], &["--json"]].concat());
    assert_eq!(verdict["ok"], true, "{verdict}");
    assert_eq!(verdict["height"], summary["answer_height"]);
}

/// `phalanx devnet --chain http://NODE --evm-key FILE` on a chain that outlives it (here
/// an anvil the test runs, paid by its first development account): a new registry; then
/// `--registry 0x…` joins it again from the same directory — no second genesis, the same
/// master key — and its answer verifies as printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_devnet_joins_an_evm_node_and_resumes() {
    let Some(anvil) = Anvil::start(None).await.unwrap() else {
        assert!(
            std::env::var_os("PHALANX_REQUIRE_ANVIL").is_none(),
            "PHALANX_REQUIRE_ANVIL is set but no anvil is installed (set ANVIL)"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("funder.key");
    // anvil's first development account (the public test mnemonic's).
    phalanx_types::secret_file::create(
        &key,
        b"ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    )
    .unwrap();
    let data = dir.path().join("devnet");
    let run = |extra: &[&str]| {
        let mut args = vec![
            "devnet",
            "--dir",
            data.to_str().unwrap(),
            "--once",
            "--chain",
            anvil.url(),
            "--evm-key",
            key.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        phalanx(&args)
    };
    let first = tokio::task::block_in_place(|| run(&[]));
    assert_eq!(first["genesis"], true);
    let registry = first["chain"]
        .as_str()
        .unwrap()
        .rsplit('#')
        .next()
        .unwrap()
        .to_owned();
    let again = tokio::task::block_in_place(|| run(&["--registry", &registry]));
    assert_eq!(again["genesis"], false, "{again}");
    assert_eq!(again["chain"], first["chain"]);
    assert_eq!(again["master_public_key"], first["master_public_key"]);
    let command = again["verify_command"].as_str().unwrap();
    let args: Vec<&str> = command.split_whitespace().skip(1).collect();
    let verdict = phalanx(&[&args[..], &["--json"]].concat());
    assert_eq!(verdict["ok"], true, "{verdict}");
}
