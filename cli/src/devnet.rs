//! `phalanx devnet`: the whole system on loopback with embedded defaults, under one
//! directory.
//!
//! 1. The attestation service (simulated trust root) from `<dir>/attestation`, with the
//!    devnet policy allowing the demo worker's enclave.
//! 2. Five gatekeepers (threshold 3), each with its own sealed rocksdb store in
//!    `<dir>/gatekeeper-<i>`, trusting the service's JWKS and the simulated root.
//! 3. Genesis, when no gatekeeper holds epoch 0 yet: a GJKR DKG among the five. In the
//!    devnet the five members run in one process and their rounds are exchanged in
//!    memory (`dkg::run_in_memory`); no one ever computes the master secret, but the
//!    process sees every share — acceptable for a development network only, and said
//!    so in the output. On later runs the gatekeepers resume from disk with the same
//!    master public key.
//! 4. A demo worker: a fresh HPKE key and identity key in its runtime data, a nonce
//!    from the service, a simulated SGX quote binding both, an attestation token over
//!    REST, and its key fetched from all five gatekeepers over gRPC. The key itself is
//!    never printed: its SHA-256 fingerprint is.
//!
//! Then it prints every address and serves until Ctrl-C (or returns at once with
//! `--once`, which tests use).

use anyhow::{Context, bail};
use attestation_service::app::App;
use attestation_service::config::Config;
use attestation_service::nonce::report_data;
use attestation_service::sim::{SgxEnclave, SimTee};
use base64::Engine as _;
use keyvault::derive::KeyId;
use keyvault::dkg::{DkgParams, run_in_memory};
use keyvault::envelope::RecipientKey;
use keyvault::gatekeeper::ReleaseRequest;
use keyvault::grpc::{Endpoint, fetch_key};
use keyvault::identity::IdentityKey;
use keyvault::node::Node;
use keyvault::release::{Jwks, ReleasePolicy, WorkerRuntimeData};
use keyvault::share::NodeIndex;
use keyvault::store::{EpochState, NodeStore, SealingKey};
use sha2::Digest as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Gatekeepers in the devnet.
pub const MEMBERS: u16 = 5;
/// Threshold.
pub const THRESHOLD: usize = 3;
/// MRENCLAVE of the demo worker.
pub const DEMO_MR_ENCLAVE: [u8; 32] = [0xd3; 32];

fn now() -> i64 {
    attestation_service::rest::system_now()
}

/// What a devnet run did (also printed).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    /// REST address of the attestation service.
    pub attestation_rest: String,
    /// gRPC address of the attestation service.
    pub attestation_grpc: String,
    /// Gatekeeper gRPC URLs by index.
    pub gatekeepers: Vec<String>,
    /// Whether this run performed genesis.
    pub genesis: bool,
    /// The master public key of epoch 0 (SEC1 compressed, hex).
    pub master_public_key: String,
    /// The demo worker's key id.
    pub demo_key_id: String,
    /// SHA-256 of the demo worker's derived key (hex); the key is never printed.
    pub demo_key_fingerprint: String,
    /// Gatekeepers named faulty while fetching.
    pub faulty: Vec<u16>,
}

/// Runs the devnet in `dir`; with `once`, returns after the demo instead of serving.
pub async fn run(dir: &Path, once: bool) -> anyhow::Result<Summary> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;

    // 1. The attestation service.
    let policy = dir.join("devnet-policy.toml");
    std::fs::write(
        &policy,
        format!(
            "# The devnet's attestation policy: the demo worker's enclave, UpToDate only.\nid = \"devnet\"\nversion = 1\n[[sgx]]\nmr_enclave = \"{}\"\n",
            hex::encode(DEMO_MR_ENCLAVE)
        ),
    )?;
    let mut config = Config {
        data_dir: dir.join("attestation"),
        policies: vec![policy],
        ..Config::default()
    };
    config.listen.rest = "127.0.0.1:0".into();
    config.listen.grpc = "127.0.0.1:0".into();
    let rest = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let (rest_addr, grpc_addr) = (rest.local_addr()?, grpc.local_addr()?);
    config.token.issuer = Some(format!("http://{rest_addr}"));
    let app = App::open(config, now)?;
    let service = app.service.clone();
    let (stop_tx, _) = tokio::sync::broadcast::channel::<()>(1);
    let mut stop_as = stop_tx.subscribe();
    let as_task = tokio::spawn(app.serve(rest, grpc, async move {
        let _ = stop_as.recv().await;
    }));
    let jwks = Jwks::from_json(&service.jwks().map_err(anyhow::Error::msg)?.to_string())?;
    let release_policy = ReleasePolicy {
        issuer: Some(format!("http://{rest_addr}")),
        trust_roots: vec!["sim".into()],
        ..ReleasePolicy::default()
    };

    // 2. The gatekeepers, from disk.
    let members: Vec<NodeIndex> = (1..=MEMBERS)
        .map(NodeIndex::new)
        .collect::<Result<_, _>>()?;
    let mut nodes = Vec::new();
    for &m in &members {
        let gdir = dir.join(format!("gatekeeper-{}", m.get()));
        std::fs::create_dir_all(&gdir)?;
        let store = NodeStore::open(
            &gdir.join("db"),
            SealingKey::load_or_create(&gdir.join("sealing.key"))?,
        )?;
        nodes.push(Arc::new(Node::open(
            store,
            m,
            jwks.clone(),
            release_policy.clone(),
            &mut rand::rng(),
        )?));
    }

    // 3. Genesis, or resume.
    let have: Vec<bool> = nodes
        .iter()
        .map(|n| n.status().map(|s| s.epochs.contains(&0)))
        .collect::<Result<_, _>>()?;
    let genesis = !have.iter().any(|h| *h);
    if genesis {
        eprintln!(
            "phalanx devnet: genesis: GJKR DKG among {MEMBERS} gatekeepers (threshold {THRESHOLD}), rounds exchanged in this process (development only)"
        );
        let outputs = run_in_memory(&DkgParams::new(0, THRESHOLD, &members)?, &mut rand::rng())?;
        for (node, o) in nodes.iter().zip(outputs) {
            node.install_epoch(
                0,
                &EpochState {
                    share: o.share,
                    public: o.public,
                },
                now(),
            )?;
        }
    } else if have.iter().any(|h| !*h) {
        bail!(
            "some gatekeepers in {} hold epoch 0 and some do not",
            dir.display()
        );
    }
    let public = nodes
        .first()
        .map(|n| n.public_key_set(0))
        .transpose()?
        .flatten()
        .context("no public key set for epoch 0")?;
    let mpk = keyvault::dleq::point_bytes(&public.master_public_key());

    let mut endpoints = Vec::new();
    let mut tasks = Vec::new();
    for node in &nodes {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let status = node.status()?;
        endpoints.push(Endpoint {
            index: status.index,
            url: format!("http://{}", listener.local_addr()?),
            identity: p256::ecdsa::VerifyingKey::from_sec1_bytes(&status.identity_key)?,
        });
        let mut stop = stop_tx.subscribe();
        let node = node.clone();
        tasks.push(tokio::spawn(async move {
            keyvault::grpc::serve(listener, node, now, async move {
                let _ = stop.recv().await;
            })
            .await
        }));
    }

    // 4. The demo worker.
    let sim = SimTee::from_json(&std::fs::read_to_string(
        dir.join("attestation/sim/sim.json"),
    )?)?;
    let (key_id, fetched) = demo_worker(&sim, &rest_addr.to_string(), &endpoints, &public).await?;
    let summary = Summary {
        attestation_rest: rest_addr.to_string(),
        attestation_grpc: grpc_addr.to_string(),
        gatekeepers: endpoints.iter().map(|e| e.url.clone()).collect(),
        genesis,
        master_public_key: hex::encode(mpk),
        demo_key_id: format!(
            "epoch {} / tenant {} / path {} / purpose {}",
            key_id.epoch, key_id.tenant, key_id.path, key_id.purpose
        ),
        demo_key_fingerprint: hex::encode(sha2::Sha256::digest(fetched.key.expose())),
        faulty: fetched.faulty.iter().map(|i| i.get()).collect(),
    };
    println!("{}", serde_json::to_string_pretty(&summary)?);

    if !once {
        eprintln!("phalanx devnet: running; Ctrl-C to stop");
        tokio::signal::ctrl_c().await?;
    }
    let _ = stop_tx.send(());
    for t in tasks {
        t.await??;
    }
    as_task.await??;
    Ok(summary)
}

/// A worker's whole path: runtime data → nonce → quote → token → key.
async fn demo_worker(
    sim: &SimTee,
    rest: &str,
    endpoints: &[Endpoint],
    public: &keyvault::share::PublicKeySet,
) -> anyhow::Result<(KeyId, keyvault::grpc::Fetched)> {
    let mut rng = rand::rng();
    let recipient = RecipientKey::generate(&mut rng);
    let runtime_data = WorkerRuntimeData {
        identity_key: IdentityKey::generate(&mut rng)
            .verifying_key()
            .to_sec1_bytes()
            .to_vec(),
        hpke_public_key: recipient.public_bytes(),
    };
    let rd = runtime_data.encode();
    let http = reqwest::Client::new();
    let nonce: serde_json::Value = http
        .post(format!("http://{rest}/v1/nonce"))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let nonce = nonce
        .get("nonce")
        .and_then(|v| v.as_str())
        .context("no nonce")?
        .to_owned();
    let nonce_bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&nonce)?;
    let quote = sim.sgx_quote(
        &SgxEnclave {
            mr_enclave: DEMO_MR_ENCLAVE,
            ..SgxEnclave::default()
        },
        &report_data(&nonce_bytes, &rd),
    )?;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let resp = http
        .post(format!("http://{rest}/v1/attest"))
        .json(&serde_json::json!({
            "tee": "sgx", "quote": b64(&quote), "runtime_data": b64(&rd),
            "nonce": nonce, "policy": "devnet",
        }))
        .send()
        .await?;
    let status = resp.status();
    let body: serde_json::Value = resp.json().await?;
    if !status.is_success() {
        bail!("attestation failed: {body}");
    }
    let token = body
        .get("token")
        .and_then(|v| v.as_str())
        .context("no token")?
        .to_owned();
    let key_id = KeyId {
        epoch: 0,
        tenant: hex::encode(DEMO_MR_ENCLAVE),
        path: "demo".into(),
        purpose: "aes-256-gcm".into(),
    };
    let request = ReleaseRequest {
        token,
        runtime_data: rd,
        key_id: key_id.clone(),
        hpke_public_key: runtime_data.hpke_public_key,
    };
    let fetched = fetch_key(
        endpoints,
        &request,
        &recipient,
        public,
        Duration::from_secs(10),
    )
    .await?;
    Ok((key_id, fetched))
}
