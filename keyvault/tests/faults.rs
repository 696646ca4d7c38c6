//! Fault tests with real processes: five `keyvault` node binaries on loopback (3 of 5),
//! the attestation service in the test process, a worker fetching its key over gRPC.
//!
//! - any two nodes killed → releases still succeed, with the same key;
//! - a node killed with SIGKILL during a refresh, a reshare and a rotation, then
//!   restarted → every node settles, all agree on every epoch's public key set, and
//!   the key already derived is unchanged.
#![cfg(unix)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use keyvault::admin::{self, NodeInfo, Outcome};
use keyvault::grpc::Endpoint;
use keyvault::round::RoundKind;
use keyvault::share::NodeIndex;
use keyvault::tls::ClusterCa;
use phalanx_types::Epoch;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const N: u16 = 5;

struct Cluster {
    root: PathBuf,
    urls: Vec<String>,
    children: Vec<Option<Child>>,
    secret: String,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn config_path(root: &Path, i: u16) -> PathBuf {
    root.join(format!("node-{i}.toml"))
}

impl Cluster {
    fn spawn(&mut self, i: u16) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.root.join(format!("node-{i}.log")))
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_keyvault"))
            .args([
                "--config",
                config_path(&self.root, i).to_str().unwrap(),
                "serve",
            ])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.children[usize::from(i - 1)] = Some(child);
    }

    fn kill(&mut self, i: u16) {
        let mut c = self.children[usize::from(i - 1)].take().unwrap();
        c.kill().unwrap(); // SIGKILL
        c.wait().unwrap();
    }

    async fn wait_up(&self) {
        for url in &self.urls {
            for _ in 0..200 {
                if admin::node_status(url).await.is_ok() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    async fn infos(&self) -> Vec<NodeInfo> {
        admin::cluster_status(&self.urls)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect()
    }

    /// Until every node answers and none is running or waiting in a round.
    async fn settle(&self) -> Vec<NodeInfo> {
        for _ in 0..600 {
            let all = admin::cluster_status(&self.urls).await;
            if all.iter().all(|s| {
                s.as_ref()
                    .is_ok_and(|i| !i.round.contains("running") && !i.round.contains("prepared"))
            }) {
                return all.into_iter().map(Result::unwrap).collect();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "cluster did not settle: {:?}",
            admin::cluster_status(&self.urls).await
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for c in self.children.iter_mut().flatten() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Every node holds the same epochs with the same public key sets.
fn agree(infos: &[NodeInfo]) {
    let first = &infos[0].epochs;
    for i in infos {
        assert_eq!(
            i.epochs.keys().collect::<Vec<_>>(),
            first.keys().collect::<Vec<_>>(),
            "node {} epochs",
            i.index
        );
        for (e, p) in first {
            assert_eq!(&i.epochs[e], p, "node {} disagrees on epoch {e}", i.index);
        }
    }
}

/// A worker's key of epoch 0, fetched as pRuntime fetches: attested through
/// `phalanx_attested` from a simulated TEE (whose MRENCLAVE, this binary's hash, the
/// devnet's policy allows), then asked of the gatekeepers through the release client.
async fn fetch(
    att: &phalanx_cli::devnet::Attestation,
    root: &Path,
    infos: &[NodeInfo],
) -> [u8; 32] {
    use keyvault::release::WorkerRuntimeData;
    let public = admin::agreed_public_key_set(infos, Epoch(0), None).unwrap();
    let endpoints: Vec<Endpoint> = infos.iter().map(NodeInfo::endpoint).collect();
    let tee = phalanx_tee::SimTee::new(
        phalanx_dcap_sim::SimTee::from_json(&att.sim.to_json()).unwrap(),
        phalanx_tee::own_measurement().unwrap(),
        &root.join("worker-sealing.key"),
    );
    let recipient = keyvault::envelope::RecipientKey::generate(&mut rand::rng());
    let identity = keyvault::identity::IdentityKey::generate(&mut rand::rng());
    let runtime_data = WorkerRuntimeData {
        identity_key: chain::types::public_key(&identity.verifying_key()),
        hpke_public_key: recipient.public_bytes(),
        registry: [0; 32],
    }
    .encode();
    let service = phalanx_attested::attest::Service {
        url: format!("http://{}", att.rest),
        policy: "devnet".into(),
    };
    let attested =
        phalanx_attested::attest::attest(&reqwest::Client::new(), &service, &tee, &runtime_data)
            .await
            .unwrap();
    let request = keyvault::gatekeeper::ReleaseRequest {
        token: attested.token.clone(),
        runtime_data,
        key_id: keyvault::derive::KeyId {
            epoch: Epoch(0),
            tenant: attested.tenant.to_string(),
            path: "faults".into(),
            purpose: "aes-256-gcm".into(),
        },
        hpke_public_key: recipient.public_bytes(),
    };
    let fetched = keyvault::grpc::fetch_key(
        &endpoints,
        &request,
        &recipient,
        &public,
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    *fetched.key.expose()
}

async fn start_round(c: &Cluster, kind: RoundKind) -> [u8; 32] {
    let spec = admin::spec(kind, &c.infos().await).unwrap();
    admin::start_round(&c.urls, &c.secret, &spec).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_killed_at_any_time_come_back_in_agreement() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let att = phalanx_cli::devnet::attestation(&root.join("as"), std::future::pending())
        .await
        .unwrap();
    std::fs::write(root.join("jwks.json"), &att.jwks_json).unwrap();
    let ca = ClusterCa::load_or_create(&root).unwrap();
    let secret = "process-test-admin-secret".to_owned();
    std::fs::write(root.join("admin.secret"), &secret).unwrap();
    let mut urls = Vec::new();
    for i in 1..=N {
        let (client, peer) = (free_port(), free_port());
        let dir = root.join(format!("node-{i}"));
        std::fs::write(
            config_path(&root, i),
            format!(
                "index = {i}\ndata_dir = \"{d}\"\nadmin_secret_file = \"{r}/admin.secret\"\n\
                 [listen]\nclient = \"127.0.0.1:{client}\"\npeer = \"127.0.0.1:{peer}\"\n\
                 [tls]\nca_cert = \"{r}/ca.pem\"\ncert = \"{d}/cert.pem\"\n\
                 [attestation]\njwks_file = \"{r}/jwks.json\"\n\
                 [policy]\nissuer = \"http://{rest}\"\ntrust_roots = [\"sim\"]\nattestation_policies = [\"devnet\"]\n\
                 [rounds]\nphase_timeout_ms = 4000\npoll_interval_ms = 50\n",
                d = dir.display(),
                r = root.display(),
                rest = att.rest,
            ),
        )
        .unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_keyvault"))
            .args(["--config", config_path(&root, i).to_str().unwrap(), "init"])
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
        urls.push(format!("http://127.0.0.1:{client}"));
    }
    let mut c = Cluster {
        root: root.clone(),
        urls,
        children: (0..N).map(|_| None).collect(),
        secret,
    };
    for i in 1..=N {
        c.spawn(i);
    }
    c.wait_up().await;

    // Genesis over the network.
    let id = start_round(
        &c,
        RoundKind::Dkg {
            epoch: Epoch(0),
            threshold: 3,
        },
    )
    .await;
    assert_eq!(
        admin::wait_round(&c.urls, &id, Duration::from_secs(60))
            .await
            .unwrap(),
        Outcome::Committed
    );
    let infos = c.infos().await;
    agree(&infos);
    let k0 = fetch(&att, &root, &infos).await;

    // Any two down: still the same key.
    for pair in [(1, 2), (4, 5), (2, 4)] {
        c.kill(pair.0);
        c.kill(pair.1);
        assert_eq!(fetch(&att, &root, &infos).await, k0, "with {pair:?} down");
        c.spawn(pair.0);
        c.spawn(pair.1);
        c.wait_up().await;
    }

    // SIGKILL one node during each kind of round, at different instants, restart it.
    let rounds = [
        (RoundKind::Refresh { epoch: Epoch(0) }, 3, 30),
        (RoundKind::Refresh { epoch: Epoch(0) }, 1, 300),
        (
            RoundKind::Reshare {
                epoch: Epoch(0),
                dealers: (1..=N).map(|i| NodeIndex::new(i).unwrap()).collect(),
                new_threshold: 2,
            },
            2,
            150,
        ),
        (
            RoundKind::Dkg {
                epoch: Epoch(1),
                threshold: 3,
            },
            5,
            200,
        ),
        (
            RoundKind::Dkg {
                epoch: Epoch(2),
                threshold: 3,
            },
            4,
            600,
        ),
    ];
    for (kind, victim, delay_ms) in rounds {
        let name = kind.name();
        start_round(&c, kind).await;
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        let seen = admin::node_status(&c.urls[usize::from(victim - 1)])
            .await
            .map(|i| i.round);
        c.kill(victim);
        tokio::time::sleep(Duration::from_millis(500)).await;
        c.spawn(victim);
        c.wait_up().await;
        let infos = c.settle().await;
        agree(&infos);
        assert_eq!(
            fetch(&att, &root, &infos).await,
            k0,
            "{name}: killed node {victim} at {seen:?}"
        );
        eprintln!(
            "{name}: node {victim} killed after {delay_ms} ms ({seen:?}); settled on epochs {:?}",
            infos[0].epochs.keys().collect::<Vec<_>>()
        );
    }
}
