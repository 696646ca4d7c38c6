//! H2: a participant that confirms a round to some members and aborts it to others
//! cannot split the committee. Three in-process nodes over real sockets and mutual TLS;
//! node 3 runs every phase honestly, then serves its confirmation to node 1 and — late,
//! after node 1 could already hold every confirmation — a signed abort to node 2. With
//! a decider that orders outcomes (the registry in production, an in-memory one here),
//! nodes 1 and 2 end in the same state.
//!
//! And misbehaviour has consequences (issue 28, item 4): a member that confirms two
//! outcomes is reported to a real ledger by the member it lied to, loses its
//! registration, and is reshared out while a worker keeps getting its key; a member
//! merely cut off is never reported.
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
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
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

/// How a faulty node's peer service behaves ([`Faulty`]).
const HONEST: u8 = 0;
/// Answers the victim's confirmation fetches with a signed abort, after a delay (H2).
const ABORT_TO_VICTIM: u8 = 1;
/// Answers the victim's confirmation fetches, after a delay, with a signed confirmation
/// of another outcome: it confirms two (evidence once the round is published).
const OTHER_OUTCOME_TO_VICTIM: u8 = 2;
/// Answers nobody (cut off from its peers).
const CUT_OFF: u8 = 3;
/// Deals to the victim a share that does not match its commitments (DKG phase 1),
/// signed as its own.
const BAD_DEAL_TO_VICTIM: u8 = 4;

/// A node's peer service: honest until its `mode` says otherwise.
struct Faulty {
    inner: PeerGrpc,
    victim: VerifyingKey,
    key: IdentityKey,
    index: NodeIndex,
    mode: Arc<AtomicU8>,
}

/// Another outcome than any real one.
const OTHER_OUTCOME: [u8; 32] = [0xbd; 32];

#[tonic::async_trait]
impl pb::peer_server::Peer for Faulty {
    async fn fetch(
        &self,
        request: Request<pb::PeerFetchRequest>,
    ) -> Result<Response<pb::PeerMessage>, Status> {
        let caller = keyvault::tls::peer_identity(&request);
        let r = request.get_ref().clone();
        let mode = self.mode.load(Ordering::SeqCst);
        if mode == CUT_OFF {
            return Err(Status::unavailable("cut off"));
        }
        if mode == BAD_DEAL_TO_VICTIM && r.phase == 1 && caller == Some(self.victim) {
            let mut m = self.inner.fetch(request).await?.into_inner();
            if let Some(last) = m.private.last_mut() {
                *last ^= 1;
            }
            let id: RoundId = r.round_id.as_slice().try_into().unwrap();
            let bytes = keyvault::round::peer_message_bytes(
                &id, 1, self.index, 2, false, &m.public, &m.private,
            );
            let sig: p256::ecdsa::Signature = self.key.signing_key().sign(&bytes);
            m.signature = sig.to_bytes().to_vec();
            return Ok(Response::new(m));
        }
        if matches!(mode, ABORT_TO_VICTIM | OTHER_OUTCOME_TO_VICTIM)
            && r.phase == u32::from(CONFIRM)
            && caller == Some(self.victim)
        {
            tokio::time::sleep(Duration::from_secs(2)).await;
            let id: RoundId = r.round_id.as_slice().try_into().unwrap();
            let (aborted, public) = match mode {
                ABORT_TO_VICTIM => (true, b"I abort (to you)".to_vec()),
                _ => (false, OTHER_OUTCOME.to_vec()),
            };
            let bytes = keyvault::round::peer_message_bytes(
                &id,
                CONFIRM,
                self.index,
                0,
                aborted,
                &public,
                &[],
            );
            let sig: p256::ecdsa::Signature = self.key.signing_key().sign(&bytes);
            return Ok(Response::new(pb::PeerMessage {
                sender: u32::from(self.index.get()),
                phase: u32::from(CONFIRM),
                public,
                private: Vec::new(),
                aborted,
                signature: sig.to_bytes().to_vec(),
            }));
        }
        self.inner.fetch(request).await
    }
}

/// Serves node `index` of `app` on its listeners (with its TLS certificate) by hand,
/// with the [`Faulty`] peer service in `mode` (`victim`: whom it lies to) and `hooks`
/// as its decider.
async fn serve_faulty(
    app: NodeApp,
    index: u16,
    (client, peer, cert): (tokio::net::TcpListener, tokio::net::TcpListener, String),
    ca: &ClusterCa,
    hooks: Arc<dyn RoundHooks>,
    (victim, mode): (VerifyingKey, Arc<AtomicU8>),
) {
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
        Some(hooks),
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
    let service = Faulty {
        inner: PeerGrpc(rounds),
        victim,
        key: node.identity().clone(),
        index: NodeIndex::new(index).unwrap(),
        mode,
    };
    tokio::spawn(keyvault::peer::serve_peer_service(
        peer,
        tls.server_tls13().unwrap(),
        pb::peer_server::PeerServer::new(service),
        std::future::pending(),
    ));
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
    let mode = Arc::new(AtomicU8::new(HONEST));
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
        serve_faulty(
            app,
            3,
            (client, peer, cert),
            &ca,
            decider.clone(),
            (victim, mode.clone()),
        )
        .await;
    }

    // Genesis, with everyone honest.
    // `waited` are the members whose view of the outcome is awaited: all three at
    // genesis (node 3 must hold its share before the refresh starts, or it refuses to
    // take part), the two honest ones during the attack.
    let run = |kind, waited: usize| {
        let urls = urls.clone();
        async move {
            let spec = admin::spec(kind, &infos(&urls).await).unwrap();
            let id = admin::start_round(&urls, SECRET, &spec).await.unwrap();
            admin::wait_round(&urls[..waited], &id, Duration::from_secs(60))
                .await
                .unwrap()
        }
    };
    assert_eq!(
        run(
            RoundKind::Dkg {
                epoch: Epoch(0),
                threshold: 2
            },
            3
        )
        .await,
        admin::Outcome::Committed
    );
    let before = infos(&urls[..1]).await[0].epochs[&Epoch(0)].clone();

    // A refresh during which node 3 equivocates.
    mode.store(ABORT_TO_VICTIM, Ordering::SeqCst);
    let outcome = run(RoundKind::Refresh { epoch: Epoch(0) }, 2).await;
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

/// Issue 28, item 4: misbehaviour has consequences. Four nodes following a real ledger
/// (threshold 2). A member cut off from its peers makes a refresh abort, and nobody is
/// reported for it. Then node 3 confirms another outcome to node 2 than to the others:
/// the round still commits (node 1 published it first), node 2 reports node 3 with the
/// signed confirmation it holds, and the registry takes node 3's registration away.
/// Governance sets the committee without it and the rest reshare it out. A worker
/// keeps getting the same key from before the fault to after the reshare, and the
/// registry never names an honest member.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_confirms_two_outcomes_is_reported_and_reshared_out() {
    use chain::registry::Registry as _;
    use chain::types::Gatekeeper;
    let w = Arc::new(worker(MR, MR, "sim"));
    let root = tempfile::tempdir().unwrap();
    let RegistryCluster {
        ledger,
        governance,
        urls,
        set,
        modes,
    } = registry_cluster(root.path(), &w).await;
    assert_eq!(
        run(
            RoundKind::Dkg {
                epoch: Epoch(0),
                threshold: 2
            },
            urls.clone()
        )
        .await,
        admin::Outcome::Committed
    );

    // A worker fetches its key from the members that stay (1, 2 and 4) all along.
    let stay: Vec<String> = [0, 1, 3].iter().map(|&i| urls[i].clone()).collect();
    let key0 = fetch(&stay, &w).await.unwrap().0;
    let stop = Arc::new(AtomicU8::new(0));
    let fetcher = tokio::spawn({
        let (stay, w, stop) = (stay.clone(), w.clone(), stop.clone());
        async move {
            let (mut longest, mut last, mut got) = (Duration::ZERO, Instant::now(), 0u32);
            while stop.load(Ordering::SeqCst) == 0 {
                if let Some((k, _)) = fetch(&stay, &w).await {
                    assert_eq!(k, key0, "another key");
                    longest = longest.max(last.elapsed());
                    last = Instant::now();
                    got += 1;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            (got, longest.max(last.elapsed()))
        }
    });

    // Node 4 cut off: a refresh aborts, and nobody is reported for it.
    modes[3].store(CUT_OFF, Ordering::SeqCst);
    assert!(matches!(
        run(RoundKind::Refresh { epoch: Epoch(0) }, urls.clone()).await,
        admin::Outcome::Aborted(_)
    ));
    modes[3].store(HONEST, Ordering::SeqCst);

    // Node 3 confirms another outcome to node 2.
    modes[2].store(OTHER_OUTCOME_TO_VICTIM, Ordering::SeqCst);
    assert_eq!(
        run(RoundKind::Refresh { epoch: Epoch(0) }, urls.clone()).await,
        admin::Outcome::Committed
    );
    let accused = set[2].identity_key.clone();
    let deadline = Instant::now() + Duration::from_secs(30);
    while ledger.state().unwrap().worker(&accused).is_some() {
        assert!(Instant::now() < deadline, "node 3 was not reported");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let state = ledger.state().unwrap();
    assert!(
        state
            .fact(&chain::facts::Fact::Fault(accused.clone()))
            .is_some()
    );
    modes[2].store(HONEST, Ordering::SeqCst);

    // Governance cannot keep it in the committee; it sets the committee without it, and
    // the members that stay reshare the epoch to themselves.
    assert!(matches!(
        ledger.set_gatekeepers(&governance, &set, 2).await,
        Err(chain::registry::RegistryError::Rule(
            chain::state::RuleError::GatekeeperNotWorker(_)
        ))
    ));
    let rest: Vec<Gatekeeper> = [0, 1, 3].iter().map(|&i| set[i].clone()).collect();
    ledger.set_gatekeepers(&governance, &rest, 2).await.unwrap();
    assert_eq!(
        run(
            RoundKind::Reshare {
                epoch: Epoch(0),
                dealers: [1, 2, 4].map(|i| NodeIndex::new(i).unwrap()).to_vec(),
                new_threshold: 2,
            },
            stay.clone()
        )
        .await,
        admin::Outcome::Committed
    );
    assert_eq!(fetch(&stay, &w).await.unwrap(), (key0, 0));
    stop.store(1, Ordering::SeqCst);
    let (got, longest) = fetcher.await.unwrap();
    eprintln!("key fetches: {got}, the longest gap without one {longest:?}");
    assert!(got > 10, "{got} fetches");
    assert!(
        longest < Duration::from_secs(5),
        "{longest:?} without a key"
    );

    // The registry named node 3, and nobody else.
    assert_eq!(named(&ledger), vec![(accused, 1)]);
}

/// Runs a round of `kind` among the nodes at `urls` to its end.
async fn run(kind: RoundKind, urls: Vec<String>) -> admin::Outcome {
    let spec = admin::spec(kind, &infos(&urls).await).unwrap();
    let id = admin::start_round(&urls, SECRET, &spec).await.unwrap();
    admin::wait_round(&urls, &id, Duration::from_secs(60))
        .await
        .unwrap()
}

/// Four nodes following a real ledger: each registered with simulated evidence, each
/// deciding its rounds through the registry, each with its [`Faulty`] peer service
/// (lying, when its mode says so, to node 2); the ledger's gatekeeper set is theirs
/// (threshold 2) and epoch 0 is locked for genesis.
struct RegistryCluster {
    ledger: Arc<chain::ledger::Ledger>,
    governance: p256::ecdsa::SigningKey,
    urls: Vec<String>,
    set: Vec<chain::types::Gatekeeper>,
    modes: Vec<Arc<AtomicU8>>,
}

async fn registry_cluster(root: &std::path::Path, w: &Worker) -> RegistryCluster {
    use chain::registry::Registry as _;
    use chain::types::{Gatekeeper, Role};
    use keyvault::registry::{Evidence, RegistryHooks};
    let ca = ClusterCa::generate().unwrap();
    std::fs::write(root.join("ca.pem"), ca.cert_pem()).unwrap();
    let governance = chain::random_key();
    let sim = chain::sim::platform(phalanx_types::unix_now() - 60).unwrap();
    let enclave = chain::sim::enclave([1; 32]);
    let ledger = Arc::new(
        chain::ledger::Ledger::open(
            &root.join("ledger"),
            chain::random_key(),
            chain::types::public_key(governance.verifying_key()),
            chain::sim::evidence_rule(&sim),
            phalanx_types::unix_now,
        )
        .unwrap(),
    );
    let genesis = ledger.blocks(0, 1).unwrap()[0].hash();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let registry_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(chain::grpc::serve(
        listener,
        ledger.clone(),
        std::future::pending(),
    ));
    ledger
        .add_measurement(&governance, &chain::sim::tenant(&enclave), Role::Gatekeeper)
        .await
        .unwrap();
    let chain_id = ledger.state().unwrap().chain_id();
    let modes: Vec<Arc<AtomicU8>> = (0..4).map(|_| Arc::new(AtomicU8::new(HONEST))).collect();
    let mut urls = Vec::new();
    let mut set = Vec::new();
    let mut started = Vec::new();
    for i in 1..=4u16 {
        let client = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let peer = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let c = config(root, i, &peer);
        let app = NodeApp::open(c.clone(), w.jwks.clone()).unwrap();
        let identity = app.node.identity().clone();
        let key = identity.signing_key().clone();
        let registration =
            chain::sim::registration(&sim, &enclave, &key, Vec::new(), chain_id).unwrap();
        ledger.register_worker(&key, &registration).await.unwrap();
        let url = format!("http://{}", client.local_addr().unwrap());
        set.push(Gatekeeper {
            index: i,
            identity_key: chain::types::public_key(&identity.verifying_key()),
            url: url.clone(),
            peer_url: format!("https://{}", peer.local_addr().unwrap()),
        });
        let hooks: Arc<dyn RoundHooks> = Arc::new(RegistryHooks::new(
            &registry_url,
            genesis,
            key,
            Evidence::DangerousSkip,
        ));
        let cert = ca
            .issue(NodeIndex::new(i).unwrap(), &identity.verifying_key())
            .unwrap();
        std::fs::write(&c.tls.cert, &cert).unwrap();
        urls.push(url);
        started.push((app, client, peer, cert, hooks, identity));
    }
    let victim = started[1].5.verifying_key();
    for (i, (app, client, peer, cert, hooks, _)) in (1u16..).zip(started) {
        let mode = modes[usize::from(i - 1)].clone();
        serve_faulty(app, i, (client, peer, cert), &ca, hooks, (victim, mode)).await;
    }
    ledger.set_gatekeepers(&governance, &set, 2).await.unwrap();
    ledger.lock_rotation(&governance, Epoch(0)).await.unwrap();
    RegistryCluster {
        ledger,
        governance,
        urls,
        set,
        modes,
    }
}

/// Issue 28, item 4: a dealer whose DKG deal to node 2 carries a share that does not
/// match its commitments is reported by node 2 with the signed deal, and loses its
/// registration; the genesis still completes (the dealer answered the complaint in
/// public), and nobody else is named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dealer_whose_share_does_not_match_its_commitments_is_reported() {
    let w = worker(MR, MR, "sim");
    let root = tempfile::tempdir().unwrap();
    let c = registry_cluster(root.path(), &w).await;
    c.modes[2].store(BAD_DEAL_TO_VICTIM, Ordering::SeqCst);
    assert_eq!(
        run(
            RoundKind::Dkg {
                epoch: Epoch(0),
                threshold: 2
            },
            c.urls.clone()
        )
        .await,
        admin::Outcome::Committed
    );
    let accused = c.set[2].identity_key.clone();
    let deadline = Instant::now() + Duration::from_secs(30);
    while c.ledger.state().unwrap().worker(&accused).is_some() {
        assert!(Instant::now() < deadline, "node 3 was not reported");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(named(&c.ledger), vec![(accused, 4)]);
}

/// Whom the registry named faulty, with each fault's code, in order.
fn named(ledger: &chain::ledger::Ledger) -> Vec<(Vec<u8>, u8)> {
    ledger
        .events(0)
        .unwrap()
        .into_iter()
        .filter_map(|(_, e)| match e {
            chain::types::Event::Misbehaved {
                identity_key,
                fault,
            } => Some((identity_key, fault)),
            _ => None,
        })
        .collect()
}

/// The key of epoch 0 from the members at `urls`, if they agree on its public key set
/// and answer (`None` while they do not, e.g. between a reshare's commits), and how
/// many partials failed their proof against the set read (a member whose share
/// changed between the worker's read and its answer, during a round).
async fn fetch(urls: &[String], w: &Worker) -> Option<([u8; 32], usize)> {
    use keyvault::grpc::{Endpoint, fetch_key};
    let all: Vec<NodeInfo> = admin::cluster_status(urls)
        .await
        .into_iter()
        .collect::<Result<_, _>>()
        .ok()?;
    let public = admin::agreed_public_key_set(&all, Epoch(0), None).ok()?;
    let endpoints: Vec<Endpoint> = all.iter().map(NodeInfo::endpoint).collect();
    let request = w.request(0);
    let f = fetch_key(
        &endpoints,
        &request,
        &w.recipient,
        &public,
        Duration::from_secs(5),
    )
    .await
    .ok()?;
    Some((*f.key.expose(), f.faulty.len()))
}
