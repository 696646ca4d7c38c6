//! H2: a participant that confirms a round to some members and aborts it to others
//! cannot split the committee. Three in-process nodes over real sockets and mutual TLS;
//! node 3 runs every phase honestly, then serves its confirmation to node 1 and — late,
//! after node 1 could already hold every confirmation — a signed abort to node 2. With
//! a decider that orders outcomes (the registry in production, an in-memory one here),
//! nodes 1 and 2 end in the same state.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../release/tests/common/mod.rs"]
mod common;

use common::*;
use keyvault::admin::{self, NodeInfo};
use keyvault::app::{NodeApp, NodeConfig};
use keyvault::grpc::GatekeeperGrpc;
use keyvault::identity::IdentityKey;
use keyvault::peer::{
    AdminAuth, AdminGrpc, CONFIRM, Decision, PeerGrpc, Proposal, RoundHooks, RoundTiming, Rounds,
};
use keyvault::round::{RoundId, RoundKind, RoundSpec};
use keyvault::share::{NodeIndex, PublicKeySet};
use keyvault::tls::{ClusterCa, PeerTls};
use p256::ecdsa::VerifyingKey;
use p256::ecdsa::signature::Signer as _;
use phalanx_proto::keyvault::v1 as pb;
use phalanx_types::Epoch;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tonic::{Request, Response, Status};

const SECRET: &str = "correct horse battery staple";

fn clock() -> i64 {
    NOW + 5
}

/// First proposal wins, as the registry orders them; a commit needs a valid
/// certificate.
#[derive(Default)]
struct Decider {
    decisions: Mutex<HashMap<RoundId, Decision>>,
}

impl RoundHooks for Decider {
    fn admit<'a>(
        &'a self,
        _spec: &'a RoundSpec,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>> {
        Box::pin(async { Ok(()) })
    }
    fn committed<'a>(
        &'a self,
        _spec: &'a RoundSpec,
        _public: &'a PublicKeySet,
        _certificate: &'a keyvault::round::CommitCertificate,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        Box::pin(async {})
    }
    fn orders_outcomes(&self) -> bool {
        true
    }
    fn decide<'a>(
        &'a self,
        spec: &'a RoundSpec,
        proposal: Proposal<'a>,
    ) -> Pin<Box<dyn Future<Output = Result<Option<Decision>, String>> + Send + 'a>> {
        let mut d = self.decisions.lock().unwrap();
        match proposal {
            Proposal::Commit {
                public,
                certificate,
            } => {
                if certificate.verify(spec, public).is_ok() {
                    d.entry(spec.id()).or_insert(Decision::Commit);
                }
            }
            Proposal::Abort => {
                d.entry(spec.id()).or_insert(Decision::Abort);
            }
            Proposal::Query => {}
        }
        let out = d.get(&spec.id()).copied();
        Box::pin(async move { Ok(out) })
    }
}

/// Node 3's peer service: honest, except that once `on`, it answers node 2's
/// confirmation fetches with a signed abort (after a delay).
struct Equivocator {
    inner: PeerGrpc,
    victim: VerifyingKey,
    key: IdentityKey,
    index: NodeIndex,
    on: Arc<AtomicBool>,
}

#[tonic::async_trait]
impl pb::peer_server::Peer for Equivocator {
    async fn fetch(
        &self,
        request: Request<pb::PeerFetchRequest>,
    ) -> Result<Response<pb::PeerMessage>, Status> {
        let caller = keyvault::tls::peer_identity(&request);
        let r = request.get_ref().clone();
        if self.on.load(Ordering::SeqCst)
            && r.phase == u32::from(CONFIRM)
            && caller == Some(self.victim)
        {
            tokio::time::sleep(Duration::from_secs(2)).await;
            let id: RoundId = r.round_id.as_slice().try_into().unwrap();
            let reason = b"I abort (to you)".to_vec();
            let bytes = keyvault::round::peer_message_bytes(
                &id,
                CONFIRM,
                self.index,
                0,
                true,
                &reason,
                &[],
            );
            let sig: p256::ecdsa::Signature = self.key.signing_key().sign(&bytes);
            return Ok(Response::new(pb::PeerMessage {
                sender: u32::from(self.index.get()),
                phase: u32::from(CONFIRM),
                public: reason,
                private: Vec::new(),
                aborted: true,
                signature: sig.to_bytes().to_vec(),
            }));
        }
        self.inner.fetch(request).await
    }
}

fn config(root: &std::path::Path, i: u16, peer: &tokio::net::TcpListener) -> NodeConfig {
    let dir = root.join(format!("node-{i}"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("admin.secret"), SECRET).unwrap();
    NodeConfig::from_toml(&format!(
        "index = {i}\ndata_dir = \"{d}\"\npeer_url = \"https://{p}\"\nadmin_secret_file = \"{d}/admin.secret\"\n\
         [tls]\nca_cert = \"{r}/ca.pem\"\ncert = \"{d}/cert.pem\"\n[attestation]\njwks_file = \"unused\"\n\
         [policy]\nissuer = \"{ISSUER}\"\ntrust_roots = [\"sim\"]\nattestation_policies = [\"app\"]\n\
         [rounds]\nphase_timeout_ms = 5000\npoll_interval_ms = 50\n",
        d = dir.display(),
        r = root.display(),
        p = peer.local_addr().unwrap(),
    ))
    .unwrap()
}

async fn infos(urls: &[String]) -> Vec<NodeInfo> {
    admin::cluster_status(urls)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_h2_an_equivocating_participant_cannot_split_the_committee() {
    let w = worker(MR, MR, "sim");
    let root = tempfile::tempdir().unwrap();
    let ca = ClusterCa::generate().unwrap();
    std::fs::write(root.path().join("ca.pem"), ca.cert_pem()).unwrap();
    let decider = Arc::new(Decider::default());
    let on = Arc::new(AtomicBool::new(false));
    let mut urls = Vec::new();
    let mut identities = Vec::new();
    let mut apps = Vec::new();
    for i in 1..=3u16 {
        let client = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let peer = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let c = config(root.path(), i, &peer);
        let app = NodeApp::open(c.clone(), w.jwks.clone())
            .unwrap()
            .with_hooks(decider.clone());
        let identity = app.node.identity().clone();
        let cert = ca
            .issue(NodeIndex::new(i).unwrap(), &identity.verifying_key())
            .unwrap();
        std::fs::write(&c.tls.cert, &cert).unwrap();
        urls.push(format!("http://{}", client.local_addr().unwrap()));
        identities.push(identity);
        apps.push((app, client, peer, cert));
    }
    let victim = identities[1].verifying_key();
    for (i, (app, client, peer, cert)) in (1u16..).zip(apps) {
        if i < 3 {
            tokio::spawn(app.serve(client, peer, clock, std::future::pending()));
            continue;
        }
        // Node 3, served by hand with the equivocating peer service.
        let node = app.node.clone();
        let tls = PeerTls::new(ca.cert_pem().into(), cert, node.identity()).unwrap();
        let rounds = Rounds::new(
            node.clone(),
            app.config().peer_url(),
            tls.clone(),
            RoundTiming {
                phase_timeout: Duration::from_secs(5),
                poll_interval: Duration::from_millis(50),
            },
            clock,
            Some(decider.clone()),
        );
        tokio::spawn(keyvault::grpc::serve_client(
            client,
            GatekeeperGrpc::new(node.clone(), clock).with_rounds(rounds.clone()),
            Some(AdminGrpc::new(
                rounds.clone(),
                AdminAuth::new(SECRET).unwrap(),
            )),
            std::future::pending(),
        ));
        let service = Equivocator {
            inner: PeerGrpc(rounds),
            victim,
            key: node.identity().clone(),
            index: NodeIndex::new(3).unwrap(),
            on: on.clone(),
        };
        tokio::spawn(keyvault::peer::serve_peer_service(
            peer,
            tls.server_tls13().unwrap(),
            pb::peer_server::PeerServer::new(service),
            std::future::pending(),
        ));
    }

    // Genesis, with everyone honest.
    let run = |kind| {
        let urls = urls.clone();
        async move {
            let spec = admin::spec(kind, &infos(&urls).await).unwrap();
            let id = admin::start_round(&urls, SECRET, &spec).await.unwrap();
            admin::wait_round(&urls[..2], &id, Duration::from_secs(60))
                .await
                .unwrap()
        }
    };
    assert_eq!(
        run(RoundKind::Dkg {
            epoch: Epoch(0),
            threshold: 2
        })
        .await,
        admin::Outcome::Committed
    );
    let before = infos(&urls[..1]).await[0].epochs[&Epoch(0)].clone();

    // A refresh during which node 3 equivocates.
    on.store(true, Ordering::SeqCst);
    let outcome = run(RoundKind::Refresh { epoch: Epoch(0) }).await;
    let after = infos(&urls[..2]).await;
    let (one, two) = (&after[0].epochs[&Epoch(0)], &after[1].epochs[&Epoch(0)]);
    assert_eq!(
        one, two,
        "nodes 1 and 2 hold different public key sets after the round ({outcome:?})"
    );
    // Node 1 held every confirmation before node 2 saw the abort, so the round
    // committed, for both.
    assert_eq!(outcome, admin::Outcome::Committed);
    assert_ne!(one, &before);
}
