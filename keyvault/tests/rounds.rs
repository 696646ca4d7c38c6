//! Rounds between gatekeeper nodes over the network (in-process nodes, real sockets,
//! mutual TLS): genesis DKG, refresh, rotation and reshare started through the admin
//! service; keys derived before survive every round; a round with a member down
//! aborts cleanly and changes nothing; one round at a time; peers without a valid
//! certificate get nothing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../release/tests/common/mod.rs"]
mod common;

use common::*;
use keyvault::admin::{self, NodeInfo, Outcome};
use keyvault::app::{NodeApp, NodeConfig};
use keyvault::grpc::{Endpoint, fetch_key};
use keyvault::identity::IdentityKey;
use keyvault::peer::RoundHooks;
use keyvault::round::RoundKind;
use keyvault::round::{Participant, RoundSpec};
use keyvault::share::{NodeIndex, PublicKeySet};
use keyvault::tls::{ClusterCa, PeerTls};
use phalanx_proto::keyvault::v1 as pb;
use phalanx_types::Epoch;
use std::time::Duration;

fn clock() -> i64 {
    NOW + 5
}

fn idx(i: u16) -> NodeIndex {
    NodeIndex::new(i).unwrap()
}

const SECRET: &str = "correct horse battery staple";

struct Member {
    url: String,
    /// The admin service's URL (the client URL unless it listens apart).
    admin_url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

async fn start_member(root: &std::path::Path, ca: &ClusterCa, i: u16, w: &Worker) -> Member {
    start(root, ca, i, w, false, None).await
}

async fn start(
    root: &std::path::Path,
    ca: &ClusterCa,
    i: u16,
    w: &Worker,
    admin_apart: bool,
    hooks: Option<std::sync::Arc<dyn RoundHooks>>,
) -> Member {
    let client = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let peer = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dir = root.join(format!("node-{i}"));
    std::fs::create_dir_all(&dir).unwrap();
    if !root.join("ca.pem").exists() {
        std::fs::write(root.join("ca.pem"), ca.cert_pem()).unwrap();
    }
    std::fs::write(dir.join("admin.secret"), SECRET).unwrap();
    let config = NodeConfig::from_toml(&format!(
        "index = {i}\ndata_dir = \"{d}\"\npeer_url = \"https://{p}\"\nadmin_secret_file = \"{d}/admin.secret\"\n\
         [tls]\nca_cert = \"{r}/ca.pem\"\ncert = \"{d}/cert.pem\"\n[attestation]\njwks_file = \"unused\"\n\
         [policy]\nissuer = \"{ISSUER}\"\ntrust_roots = [\"sim\"]\nattestation_policies = [\"app\"]\n[rounds]\nphase_timeout_ms = 3000\npoll_interval_ms = 50\n",
        d = dir.display(),
        r = root.display(),
        p = peer.local_addr().unwrap(),
    ))
    .unwrap();
    let mut app = NodeApp::open(config, w.jwks.clone()).unwrap();
    let url = format!("http://{}", client.local_addr().unwrap());
    let mut admin_url = url.clone();
    if admin_apart {
        let admin = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        admin_url = format!("http://{}", admin.local_addr().unwrap());
        app = app.with_admin_listener(admin);
    }
    if let Some(hooks) = hooks {
        app = app.with_hooks(hooks);
    }
    let cert = ca
        .issue(idx(i), &app.node.identity().verifying_key())
        .unwrap();
    std::fs::write(dir.join("cert.pem"), cert).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        app.serve(client, peer, clock, async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    Member {
        url,
        admin_url,
        stop: Some(stop),
        task: Some(task),
    }
}

async fn stop_member(m: &mut Member) {
    m.stop.take().unwrap().send(()).unwrap();
    m.task.take().unwrap().await.unwrap();
}

async fn infos(urls: &[String]) -> Vec<NodeInfo> {
    admin::cluster_status(urls)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect()
}

async fn run_round(urls: &[String], kind: RoundKind) -> Outcome {
    let spec = admin::spec(kind, &infos(urls).await).unwrap();
    let id = admin::start_round(urls, SECRET, &spec).await.unwrap();
    admin::wait_round(urls, &id, Duration::from_secs(60))
        .await
        .unwrap()
}

async fn fetch(urls: &[String], w: &Worker, epoch: u64) -> ([u8; 32], PublicKeySet) {
    let all = infos(urls).await;
    let public = admin::agreed_public_key_set(&all, Epoch(epoch), None).unwrap();
    let endpoints: Vec<Endpoint> = all.iter().map(NodeInfo::endpoint).collect();
    let request = w.request(epoch);
    let f = fetch_key(
        &endpoints,
        &request,
        &w.recipient,
        &public,
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    assert!(f.faulty.is_empty());
    (*f.key.expose(), public)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rounds_over_the_network() {
    let w = worker(MR, MR, "sim");
    let root = tempfile::tempdir().unwrap();
    let ca = ClusterCa::generate().unwrap();
    let mut members = Vec::new();
    for i in 1..=5 {
        members.push(start_member(root.path(), &ca, i, &w).await);
    }
    let urls: Vec<String> = members.iter().map(|m| m.url.clone()).collect();

    // Genesis.
    assert_eq!(
        run_round(
            &urls,
            RoundKind::Dkg {
                epoch: Epoch(0),
                threshold: 3
            }
        )
        .await,
        Outcome::Committed
    );
    let (k0, p0) = fetch(&urls, &w, 0).await;
    let mpk0 = p0.master_public_key();

    // A wrong admin secret is refused; a second round cannot start while one runs.
    let spec = admin::spec(RoundKind::Refresh { epoch: Epoch(0) }, &infos(&urls).await).unwrap();
    let e = admin::start_round(&urls[..1], "wrong", &spec)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, admin::AdminError::Refused { code: tonic::Code::PermissionDenied, message, .. } if message.contains("wrong admin secret")),
        "{e}"
    );
    admin::start_round(&urls[..1], SECRET, &spec).await.unwrap();
    let other = admin::spec(RoundKind::Refresh { epoch: Epoch(0) }, &infos(&urls).await).unwrap();
    let e = admin::start_round(&urls[..1], SECRET, &other)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, admin::AdminError::Refused { message, .. } if message.contains("in progress")),
        "{e}"
    );
    // ... which the others then join: a refresh, same MPK, new shares, same key.
    admin::start_round(&urls[1..], SECRET, &spec).await.unwrap();
    assert_eq!(
        admin::wait_round(&urls, &spec.id(), Duration::from_secs(60))
            .await
            .unwrap(),
        Outcome::Committed
    );
    let (k, p1) = fetch(&urls, &w, 0).await;
    assert_eq!(k, k0);
    assert_ne!(p1, p0);
    assert_eq!(p1.master_public_key(), mpk0);

    // A peer without a certificate from the cluster CA cannot even connect; one with a
    // CA certificate for a key the round does not list gets nothing.
    let peer_url = infos(&urls[..1]).await[0].peer_url.clone();
    let stranger = keyvault::identity::IdentityKey::generate(&mut rand::rng());
    let ca_pem = std::fs::read_to_string(root.path().join("ca.pem")).unwrap();
    let try_fetch_round = |cert: String, id: [u8; 32], phase: u32, asked: Vec<u8>| {
        let tls = PeerTls::new(ca_pem.clone(), cert, &stranger).unwrap();
        let peer_url = peer_url.clone();
        async move {
            let ch = tonic::transport::Endpoint::from_shared(peer_url)
                .unwrap()
                .tls_config(tls.client(idx(1)))
                .unwrap()
                .connect()
                .await
                .map_err(|e| format!("connect: {e}"))?;
            pb::peer_client::PeerClient::new(ch)
                .fetch(pb::PeerFetchRequest {
                    round_id: id.to_vec(),
                    phase,
                    spec: asked,
                })
                .await
                .map(|m| m.into_inner())
                .map_err(|s| s.message().to_owned())
        }
    };
    let try_fetch = |cert: String| try_fetch_round(cert, spec.id(), 1, Vec::new());
    let foreign = ClusterCa::generate().unwrap();
    let e = try_fetch(foreign.issue(idx(1), &stranger.verifying_key()).unwrap())
        .await
        .unwrap_err();
    assert!(!e.contains("participant"), "{e}");
    let e = try_fetch(ca.issue(idx(1), &stranger.verifying_key()).unwrap())
        .await
        .unwrap_err();
    assert!(e.contains("not a participant"), "{e}");
    // L2: nor can it make a node durably abort (and log) rounds it made up: not with a
    // bare id, not with a spec that lists neither it nor that node.
    let log_before = infos(&urls[..1]).await[0].log_size;
    let made_up = admin::spec(
        RoundKind::Refresh { epoch: Epoch(0) },
        &infos(&urls[1..3]).await,
    )
    .unwrap();
    for (id, asked) in [([7u8; 32], Vec::new()), (made_up.id(), made_up.encode())] {
        let e = try_fetch_round(
            ca.issue(idx(1), &stranger.verifying_key()).unwrap(),
            id,
            255,
            asked,
        )
        .await
        .unwrap_err();
        assert!(
            e.contains("not started here") || e.contains("not a participant"),
            "{e}"
        );
    }
    assert_eq!(infos(&urls[..1]).await[0].log_size, log_before);
    // Without a registry, every holder of a cluster-CA certificate is a member: a spec
    // listing it and node 1 that node 1 has no record of is aborted there, durably, so
    // node 1 never confirms a rerun of it (restarts into agreement). With a registry, a
    // made-up spec stores nothing (`attack_nl5_…` below).
    {
        let crafted = crafted_spec(&infos(&urls[..1]).await[0], &stranger, [1; 16]);
        let m = confirm_fetch(
            &peer_url,
            &ca_pem,
            ca.issue(idx(2), &stranger.verifying_key()).unwrap(),
            &stranger,
            &crafted,
        )
        .await
        .unwrap();
        assert!(m.aborted);
        assert_eq!(infos(&urls[..1]).await[0].log_size, log_before + 1);
        let e = admin::start_round(&urls[..1], SECRET, &crafted)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("already"), "{e}");
    }
    // M3: the peer listener speaks TLS 1.3 only: a TLS 1.2 client gets no handshake
    // (so no ServerKeyExchange signed with the identity key).
    {
        use rustls::pki_types::pem::PemObject as _;
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(rustls::pki_types::CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
            .unwrap();
        let connect = |versions: &'static [&'static rustls::SupportedProtocolVersion]| {
            let config = rustls::ClientConfig::builder_with_provider(provider.clone())
                .with_protocol_versions(versions)
                .unwrap()
                .with_root_certificates(roots.clone())
                .with_no_client_auth();
            let addr = peer_url.trim_start_matches("https://").to_owned();
            async move {
                let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
                tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
                    .connect(
                        rustls::pki_types::ServerName::try_from("gatekeeper-1").unwrap(),
                        tcp,
                    )
                    .await
                    .map(|_| ())
            }
        };
        static TLS12_ONLY: [&rustls::SupportedProtocolVersion; 1] = [&rustls::version::TLS12];
        let e = connect(&TLS12_ONLY).await.unwrap_err();
        assert!(e.to_string().to_lowercase().contains("version"), "{e}");
    }

    // Node 5 down: a refresh among all five aborts after the phase timeout, naming it,
    // and nothing changes on the others.
    stop_member(&mut members[4]).await;
    let live = &urls[..4];
    let mut everyone = infos(live).await;
    let mut five = everyone[0].clone();
    five.index = idx(5);
    five.identity = keyvault::identity::IdentityKey::generate(&mut rand::rng()).verifying_key();
    five.peer_url = "https://127.0.0.1:1".into();
    everyone.push(five);
    let spec = admin::spec(RoundKind::Refresh { epoch: Epoch(0) }, &everyone).unwrap();
    admin::start_round(live, SECRET, &spec).await.unwrap();
    match admin::wait_round(live, &spec.id(), Duration::from_secs(60))
        .await
        .unwrap()
    {
        Outcome::Aborted(why) => assert!(why.iter().any(|(_, r)| r.contains('5')), "{why:?}"),
        other => panic!("{other:?}"),
    }
    for i in infos(live).await {
        assert_eq!(i.epochs[&Epoch(0)], p1);
    }

    // Node 6 joins and 5 leaves by a reshare to threshold 2: same MPK, same key.
    members.push(start_member(root.path(), &ca, 6, &w).await);
    let new_urls: Vec<String> = urls[..4]
        .iter()
        .cloned()
        .chain([members[5].url.clone()])
        .collect();
    let kind = RoundKind::Reshare {
        epoch: Epoch(0),
        dealers: (1..=4).map(idx).collect(),
        new_threshold: 2,
    };
    assert_eq!(run_round(&new_urls, kind).await, Outcome::Committed);
    let (k, p2) = fetch(&new_urls, &w, 0).await;
    assert_eq!(k, k0);
    assert_eq!(p2.threshold(), 2);
    assert_eq!(p2.master_public_key(), mpk0);

    // Rotation: epoch 1 has a new master key; epoch 0 stays derivable until retired.
    assert_eq!(
        run_round(
            &new_urls,
            RoundKind::Dkg {
                epoch: Epoch(1),
                threshold: 3
            }
        )
        .await,
        Outcome::Committed
    );
    let (k1, p) = fetch(&new_urls, &w, 1).await;
    assert_ne!(p.master_public_key(), mpk0);
    assert_ne!(k1, k0);
    assert_eq!(fetch(&new_urls, &w, 0).await.0, k0);
    // An epoch that is not after every held one cannot be opened again.
    let spec = admin::spec(
        RoundKind::Dkg {
            epoch: Epoch(1),
            threshold: 2,
        },
        &infos(&new_urls).await,
    )
    .unwrap();
    assert!(
        admin::start_round(&new_urls[..1], SECRET, &spec)
            .await
            .is_err()
    );

    for m in members.iter_mut().filter(|m| m.stop.is_some()) {
        stop_member(m).await;
    }
}

/// With `listen.admin` set, the admin service answers on its own port only (with the
/// node's status, so the same commands work there), and the client port has no admin:
/// a network policy can keep the admin port to the operators' hosts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_service_can_listen_apart() {
    let w = worker(MR, MR, "sim");
    let root = tempfile::tempdir().unwrap();
    let ca = ClusterCa::generate().unwrap();
    let mut m = start(root.path(), &ca, 1, &w, true, None).await;
    assert_ne!(m.admin_url, m.url);
    let e = admin::retire_epoch(&m.url, SECRET, Epoch(0))
        .await
        .unwrap_err();
    assert!(
        matches!(
            &e,
            admin::AdminError::Refused {
                code: tonic::Code::Unimplemented,
                ..
            }
        ),
        "{e}"
    );
    let e = admin::retire_epoch(&m.admin_url, "wrong", Epoch(0))
        .await
        .unwrap_err();
    assert!(
        matches!(
            &e,
            admin::AdminError::Refused {
                code: tonic::Code::PermissionDenied,
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(
        admin::node_status(&m.admin_url).await.unwrap().index,
        idx(1)
    );
    assert_eq!(admin::node_status(&m.url).await.unwrap().index, idx(1));
    stop_member(&mut m).await;
}

/// A refresh among node `one` and `other` (a made-up round unless they are a committee).
fn crafted_spec(one: &NodeInfo, other: &IdentityKey, nonce: [u8; 16]) -> RoundSpec {
    RoundSpec::new(
        nonce,
        RoundKind::Refresh { epoch: Epoch(0) },
        vec![
            Participant {
                index: idx(1),
                identity: one.identity,
                url: one.peer_url.clone(),
            },
            Participant {
                index: idx(2),
                identity: other.verifying_key(),
                url: "https://127.0.0.1:1".into(),
            },
        ],
    )
    .unwrap()
}

/// Node 1's confirmation of `spec`, asked over mutual TLS as `key` (certified `cert`).
async fn confirm_fetch(
    peer_url: &str,
    ca_pem: &str,
    cert: String,
    key: &IdentityKey,
    spec: &RoundSpec,
) -> Result<pb::PeerMessage, tonic::Status> {
    let tls = PeerTls::new(ca_pem.to_owned(), cert, key).unwrap();
    let ch = tonic::transport::Endpoint::from_shared(peer_url.to_owned())
        .unwrap()
        .tls_config(tls.client(idx(1)))
        .unwrap()
        .connect()
        .await
        .unwrap();
    pb::peer_client::PeerClient::new(ch)
        .fetch(pb::PeerFetchRequest {
            round_id: spec.id().to_vec(),
            phase: u32::from(keyvault::peer::CONFIRM),
            spec: spec.encode(),
        })
        .await
        .map(tonic::Response::into_inner)
}

/// Admits only rounds among exactly `committee` (what the registry's hooks check
/// against its gatekeeper set; `keyvault::registry` tests that check itself).
#[derive(Default)]
struct Committee(std::sync::RwLock<Vec<p256::ecdsa::VerifyingKey>>);

impl RoundHooks for Committee {
    fn admit<'a>(
        &'a self,
        spec: &'a RoundSpec,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send + 'a>> {
        let ok = {
            let committee = self.0.read().unwrap();
            spec.participants.len() == committee.len()
                && spec
                    .participants
                    .iter()
                    .all(|p| committee.contains(&p.identity))
        };
        Box::pin(async move {
            if ok {
                Ok(())
            } else {
                Err("the round's committee is not the registry's gatekeeper set".into())
            }
        })
    }
    fn committed<'a>(
        &'a self,
        _spec: &'a RoundSpec,
        _public: &'a PublicKeySet,
        _certificate: &'a keyvault::round::CommitCertificate,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>> {
        Box::pin(async {})
    }
}

/// NL5: on a registry-following node, a CA-certified peer that is not in the committee
/// shows a thousand made-up specs listing itself and the node: each is refused, and
/// the node's log and rounds table do not grow. A member's confirmation request for a
/// round of the real committee that the node lost is still aborted, durably.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_nl5_made_up_rounds_store_nothing_on_a_registry_following_node() {
    let w = worker(MR, MR, "sim");
    let root = tempfile::tempdir().unwrap();
    let ca = ClusterCa::generate().unwrap();
    let committee = std::sync::Arc::new(Committee::default());
    let mut m = start(root.path(), &ca, 1, &w, false, Some(committee.clone())).await;
    let one = admin::node_status(&m.url).await.unwrap();
    let member = IdentityKey::generate(&mut rand::rng());
    *committee.0.write().unwrap() = vec![one.identity, member.verifying_key()];
    let ca_pem = std::fs::read_to_string(root.path().join("ca.pem")).unwrap();
    let stranger = IdentityKey::generate(&mut rand::rng());
    let cert = ca.issue(idx(2), &stranger.verifying_key()).unwrap();
    let log_before = one.log_size;
    for n in 0u32..1000 {
        let mut nonce = [0u8; 16];
        nonce[..4].copy_from_slice(&n.to_be_bytes());
        let spec = crafted_spec(&one, &stranger, nonce);
        let e = confirm_fetch(&one.peer_url, &ca_pem, cert.clone(), &stranger, &spec)
            .await
            .unwrap_err();
        assert!(e.message().contains("not started"), "{e}");
    }
    assert_eq!(
        admin::node_status(&m.url).await.unwrap().log_size,
        log_before
    );
    // The committee's own round, lost here: aborted and recorded, never rerun.
    let real = crafted_spec(&one, &member, [9; 16]);
    let cert = ca.issue(idx(2), &member.verifying_key()).unwrap();
    let msg = confirm_fetch(&one.peer_url, &ca_pem, cert, &member, &real)
        .await
        .unwrap();
    assert!(msg.aborted);
    assert_eq!(
        admin::node_status(&m.url).await.unwrap().log_size,
        log_before + 1
    );
    let e = admin::start_round(&[m.url.clone()], SECRET, &real)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("already"), "{e}");
    stop_member(&mut m).await;
}
