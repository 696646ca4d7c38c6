//! Five gatekeeper nodes on loopback (gRPC, rocksdb stores in temporary directories),
//! threshold 3, shares from a real DKG: a worker fetches its key from all of them in
//! parallel, with two down, with one lying (named), after a restart from disk; and is
//! refused, with the reason, what it may not derive.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../release/tests/common/mod.rs"]
mod common;

use common::*;
use keyvault::dkg::{DkgParams, run_in_memory};
use keyvault::gatekeeper::GatekeeperError;
use keyvault::grpc::{AuditError, Endpoint, FetchError, audit, fetch_key, serve};
use keyvault::node::Node;
use keyvault::share::{KeyShare, NodeIndex, PublicKeySet, SecretScalar};
use keyvault::store::{EpochState, NodeStore, SealingKey};
use p256::ecdsa::VerifyingKey;
use phalanx_types::Epoch;
use std::sync::Arc;
use std::time::Duration;

fn clock() -> i64 {
    NOW + 5
}

struct Running {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
    endpoint: Endpoint,
}

fn open_node(dir: &std::path::Path, index: NodeIndex, w: &Worker) -> Arc<Node> {
    let store = NodeStore::open(
        &dir.join("db"),
        SealingKey::load_or_create(&dir.join("sealing.key")).unwrap(),
    )
    .unwrap();
    Arc::new(Node::open(store, index, w.jwks.clone(), sim_policy(), &mut rand::rng()).unwrap())
}

async fn start(node: Arc<Node>) -> Running {
    start_at(node, "127.0.0.1:0").await
}

async fn start_at(node: Arc<Node>, addr: &str) -> Running {
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let status = node.status().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        serve(listener, node, clock, async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    Running {
        stop,
        task,
        endpoint: Endpoint {
            index: status.index,
            url,
            identity: VerifyingKey::from_sec1_bytes(&status.identity_key).unwrap(),
        },
    }
}

async fn stop(r: Running) {
    r.stop.send(()).unwrap();
    r.task.await.unwrap();
}

/// The endpoints of the nodes still running.
fn endpoints(running: &[Option<Running>]) -> Vec<Endpoint> {
    running
        .iter()
        .flatten()
        .map(|r| r.endpoint.clone())
        .collect()
}

/// Five nodes of a fresh 3-of-5 genesis, each in its own directory, serving.
async fn genesis(w: &Worker) -> (PublicKeySet, Vec<tempfile::TempDir>, Vec<Option<Running>>) {
    let members: Vec<NodeIndex> = (1..=5).map(|i| NodeIndex::new(i).unwrap()).collect();
    let outputs = run_in_memory(
        &DkgParams::new(Epoch(0), 3, &members).unwrap(),
        &mut rand::rng(),
    )
    .unwrap();
    let public: PublicKeySet = outputs[0].public.clone();
    let dirs: Vec<_> = (0..5).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut running = Vec::new();
    for (o, dir) in outputs.iter().zip(&dirs) {
        let node = open_node(dir.path(), o.share.index, w);
        node.install_epoch(
            Epoch(0),
            &EpochState {
                share: o.share.clone(),
                public: public.clone(),
            },
            NOW,
        )
        .unwrap();
        running.push(Some(start(node).await));
    }
    (public, dirs, running)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_of_five_over_grpc_with_faults_and_restarts() {
    let w = worker(MR, MR, "sim");
    let members: Vec<NodeIndex> = (1..=5).map(|i| NodeIndex::new(i).unwrap()).collect();
    let (public, dirs, mut running) = genesis(&w).await;
    let all_endpoints = endpoints(&running);
    let request = w.request(0);
    let t = Duration::from_secs(5);

    // All up.
    let k = fetch_key(&all_endpoints, &request, &w.recipient, &public, t)
        .await
        .unwrap();
    assert!(k.faulty.is_empty());

    // Two down (4 and 5): the worker still asks all five.
    for i in [3, 4] {
        stop(running[i].take().unwrap()).await;
    }
    let f = fetch_key(&all_endpoints, &request, &w.recipient, &public, t)
        .await
        .unwrap();
    assert_eq!(f.key, k.key);
    let mut down: Vec<u16> = f.unavailable.iter().map(|(i, _)| i.get()).collect();
    down.sort();
    assert_eq!(down, vec![4, 5]);

    // Node 1 restarts from its directory: same shares, same identity, its log kept.
    let before = running[0].as_ref().unwrap().endpoint.identity;
    stop(running[0].take().unwrap()).await;
    let reopened = open_node(dirs[0].path(), members[0], &w);
    // Genesis record plus the two releases so far.
    assert_eq!(reopened.status().unwrap().log_size, 3);
    let r = start(reopened).await;
    assert_eq!(r.endpoint.identity, before);
    running[0] = Some(r);
    let now_up = endpoints(&running);
    let f = fetch_key(&now_up, &request, &w.recipient, &public, t)
        .await
        .unwrap();
    assert_eq!(f.key, k.key);

    // Node 4 comes back lying (a wrong share): named, outvoted.
    let liar = open_node(dirs[3].path(), members[3], &w);
    liar.install_epoch(
        Epoch(0),
        &EpochState {
            share: KeyShare {
                index: members[3],
                secret: SecretScalar::new(p256::Scalar::from(5u64)),
            },
            public: public.clone(),
        },
        NOW,
    )
    .unwrap();
    running[3] = Some(start(liar).await);
    let mut eps = endpoints(&running);
    eps.sort_by_key(|e| e.index);
    let f = fetch_key(&eps, &request, &w.recipient, &public, t).await;
    match f {
        // The three honest answers may arrive first; then the liar is never needed.
        Ok(f) => {
            assert_eq!(f.key, k.key);
            assert!(f.faulty.iter().all(|i| i.get() == 4), "{:?}", f.faulty);
        }
        Err(e) => panic!("{e}"),
    }
    // With only two honest nodes up, the liar is named in the failure.
    stop(running[1].take().unwrap()).await;
    let eps = endpoints(&running);
    match fetch_key(&eps, &request, &w.recipient, &public, t).await {
        Err(FetchError::NotEnough {
            valid,
            need,
            faulty,
            ..
        }) => {
            assert_eq!((valid, need), (2, 3));
            assert_eq!(faulty, vec![members[3]]);
        }
        other => panic!("{other:?}"),
    }

    // A key outside the worker's namespace: every node refuses, with the reason.
    let mut other = request.clone();
    other.key_id.tenant = "someone-else".into();
    match fetch_key(&eps, &other, &w.recipient, &public, t).await {
        Err(FetchError::NotEnough { unavailable, .. }) => {
            assert_eq!(unavailable.len(), 3);
            assert!(
                unavailable
                    .iter()
                    .all(|(_, why)| why.contains("PermissionDenied")
                        && why.contains("may not derive"))
            );
        }
        other => panic!("{other:?}"),
    }
    // An auditor's view of node 1: its head now, more releases, a consistent later head.
    let n1 = running[0].as_ref().unwrap().endpoint.clone();
    let seen = audit(&n1.url, &n1.identity, None).await.unwrap();
    // (Too few honest nodes are up to combine, but node 1 still releases and logs.)
    let _ = fetch_key(&endpoints(&running), &request, &w.recipient, &public, t).await;
    let later = audit(&n1.url, &n1.identity, Some(&seen)).await.unwrap();
    assert!(later.head.size > seen.head.size);
    // Node 1 restarted on a rewritten history (one leaf edited on disk): caught, with
    // evidence the registry takes (its head of the earlier size now has another root).
    stop(running[0].take().unwrap()).await;
    {
        let store = NodeStore::open(
            &dirs[0].path().join("db"),
            SealingKey::load_or_create(&dirs[0].path().join("sealing.key")).unwrap(),
        )
        .unwrap();
        store
            .raw_put("log", &1u64.to_be_bytes(), &[0xee; 32])
            .unwrap();
    }
    let rewritten = start(open_node(dirs[0].path(), members[0], &w)).await;
    let err = audit(&rewritten.endpoint.url, &n1.identity, Some(&later))
        .await
        .unwrap_err();
    let AuditError::Forked { earlier, now } = err else {
        panic!("expected a fork, got {err}");
    };
    let (first, second) = (earlier.head, now.head);
    assert_eq!((first.size, first.root), (later.head.size, later.head.root));
    assert_eq!(second.size, first.size);
    let head = |h: &keyvault::translog::SignedTreeHead| chain::types::LogHead {
        root: h.head.root,
        timestamp: h.head.timestamp,
        signature: h.signature.to_bytes().into(),
    };
    let evidence = chain::types::Misbehaviour {
        accused: chain::types::public_key(&n1.identity),
        fault: chain::types::Fault::ForkedLog {
            size: first.size,
            first: head(&earlier),
            second: head(&now),
        },
    };
    chain::state::check_misbehaviour(&evidence, |_| None).unwrap();
    // A head signed by another key is refused.
    let other = VerifyingKey::from_sec1_bytes(
        &running[2]
            .as_ref()
            .unwrap()
            .endpoint
            .identity
            .to_sec1_bytes(),
    )
    .unwrap();
    assert!(matches!(
        audit(&rewritten.endpoint.url, &other, None).await,
        Err(AuditError::BadHead)
    ));
    running[0] = Some(rewritten);

    // Retiring epoch 0 on node 1 erases its share and is logged; it then has no share.
    let node1 = open_node(dirs[1].path(), members[1], &w);
    let size = node1.status().unwrap().log_size;
    node1.retire_epoch(Epoch(0), NOW + 9).unwrap();
    let s = node1.status().unwrap();
    assert_eq!((s.log_size, s.epochs.len()), (size + 1, 0));
    for r in running.into_iter().flatten() {
        stop(r).await;
    }
}

/// A gatekeeper restarted at its address counts again in the very next fetch, whatever
/// connection the worker kept to it from the fetch before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gatekeeper_restarted_at_its_address_answers_the_next_fetch() {
    let w = worker(MR, MR, "sim");
    let (public, dirs, mut running) = genesis(&w).await;
    let endpoints = endpoints(&running);
    let request = w.request(0);
    let t = Duration::from_secs(5);
    let k = fetch_key(&endpoints, &request, &w.recipient, &public, t)
        .await
        .unwrap();
    // Node 1 restarts where it was; nodes 4 and 5 stop: node 1 is needed.
    let addr = endpoints[0].url.trim_start_matches("http://").to_owned();
    stop(running[0].take().unwrap()).await;
    let node1 = open_node(dirs[0].path(), endpoints[0].index, &w);
    running[0] = Some(start_at(node1, &addr).await);
    for i in [3, 4] {
        stop(running[i].take().unwrap()).await;
    }
    let f = fetch_key(&endpoints, &request, &w.recipient, &public, t)
        .await
        .unwrap();
    assert_eq!(f.key, k.key);
    let mut down: Vec<u16> = f.unavailable.iter().map(|(i, _)| i.get()).collect();
    down.sort();
    assert_eq!(down, vec![4, 5]);
    for r in running.into_iter().flatten() {
        stop(r).await;
    }
}

/// Member 1 of a 2-of-3 epoch 0, trusting `w`'s attestation service.
fn one_member(dir: &std::path::Path, w: &Worker) -> Arc<Node> {
    let members: Vec<NodeIndex> = (1..=3).map(|i| NodeIndex::new(i).unwrap()).collect();
    let outputs = run_in_memory(
        &DkgParams::new(Epoch(0), 2, &members).unwrap(),
        &mut rand::rng(),
    )
    .unwrap();
    let node = open_node(dir, outputs[0].share.index, w);
    node.install_epoch(
        Epoch(0),
        &EpochState {
            share: outputs[0].share.clone(),
            public: outputs[0].public.clone(),
        },
        NOW,
    )
    .unwrap();
    node
}

/// Connections are kept between fetches, process-wide; one kept by a runtime since
/// dropped (its connection task gone with it) is replaced, not reported as the
/// gatekeeper's failure: with two gatekeepers down, every answer of the other three is
/// needed, from a second runtime as from the first.
#[test]
fn a_connection_kept_by_a_dropped_runtime_is_replaced() {
    let w = worker(MR, MR, "sim");
    let servers = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (public, _dirs, mut running) = servers.block_on(genesis(&w));
    let endpoints = endpoints(&running);
    servers.block_on(async {
        for i in [3, 4] {
            stop(running[i].take().unwrap()).await;
        }
    });
    let request = w.request(0);
    let fetch = || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(fetch_key(
            &endpoints,
            &request,
            &w.recipient,
            &public,
            Duration::from_secs(5),
        ))
    };
    let first = fetch().unwrap();
    let second = fetch().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(first.key, second.key);
    servers.block_on(async {
        for r in running.into_iter().flatten() {
            stop(r).await;
        }
    });
}

/// A gatekeeper that hangs (accepts, never answers) or dies mid-request (reads the
/// request, drops the connection) costs a fetch only its answer: with three healthy
/// gatekeepers the key comes without waiting for the hung one's timeout, and with two
/// the fetch fails by its timeout, naming all three that did not answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hung_and_dying_gatekeepers_cost_a_fetch_only_their_answers() {
    let w = worker(MR, MR, "sim");
    let (public, _dirs, mut running) = genesis(&w).await;
    let endpoints = endpoints(&running);
    let request = w.request(0);
    let k = fetch_key(
        &endpoints,
        &request,
        &w.recipient,
        &public,
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    // Nodes 4 and 5 are replaced, at their addresses, by a hung and a dying one.
    let addr = |i: usize| endpoints[i].url.trim_start_matches("http://").to_owned();
    for i in [3, 4] {
        stop(running[i].take().unwrap()).await;
    }
    let hung = tokio::net::TcpListener::bind(addr(3)).await.unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((conn, _)) = hung.accept().await {
            held.push(conn);
        }
    });
    let dying = tokio::net::TcpListener::bind(addr(4)).await.unwrap();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = dying.accept().await {
            let mut buf = [0u8; 64];
            let _ = tokio::io::AsyncReadExt::read(&mut conn, &mut buf).await;
        }
    });
    let patient = Duration::from_secs(60);
    let started = std::time::Instant::now();
    let f = fetch_key(&endpoints, &request, &w.recipient, &public, patient)
        .await
        .unwrap();
    assert_eq!(f.key, k.key);
    assert!(
        started.elapsed() < patient / 3,
        "waited {:?} for the hung gatekeeper",
        started.elapsed()
    );
    // Node 3 stops too: two answers, and the fetch ends by its timeout with the reasons.
    stop(running[2].take().unwrap()).await;
    let short = Duration::from_secs(3);
    let started = std::time::Instant::now();
    match fetch_key(&endpoints, &request, &w.recipient, &public, short).await {
        Err(FetchError::NotEnough {
            valid,
            need,
            unavailable,
            faulty,
        }) => {
            assert_eq!((valid, need), (2, 3));
            assert!(faulty.is_empty(), "{faulty:?}");
            let mut down: Vec<u16> = unavailable.iter().map(|(i, _)| i.get()).collect();
            down.sort();
            assert_eq!(down, vec![3, 4, 5], "{unavailable:?}");
            let why = |i: u16| &unavailable.iter().find(|(n, _)| n.get() == i).unwrap().1;
            assert_eq!(why(4), "timed out");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        started.elapsed() < short * 3,
        "took {:?}",
        started.elapsed()
    );
    for r in running.into_iter().flatten() {
        stop(r).await;
    }
}

/// Releases from many threads at once (through the group commit): each answer is valid
/// on its own (signed head, inclusion of its record), their records take distinct
/// places one after another, and a reopened node has exactly the log they were
/// answered from. (That a sync precedes each answer is not observable without
/// crashing the machine; `Node::release` says why it holds.)
#[test]
fn concurrent_releases_are_each_logged_once_and_survive_a_reopen() {
    let w = worker(MR, MR, "sim");
    let dir = tempfile::tempdir().unwrap();
    let node = one_member(dir.path(), &w);
    let index = node.status().unwrap().index;
    let public = node.public_key_set(Epoch(0)).unwrap().unwrap();
    let identities = std::collections::BTreeMap::from([(index, node.identity().verifying_key())]);
    let request = w.request(0);
    let start = node.status().unwrap().log_size;
    let answers: Vec<_> = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| {
                    (0..12)
                        .map(|_| node.release(&request, NOW + 5, &mut rand::rng()).unwrap())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect()
    });
    let mut places: Vec<u64> = answers.iter().map(|a| a.log_index).collect();
    places.sort();
    assert_eq!(places, (start..start + 48).collect::<Vec<_>>());
    for a in &answers {
        keyvault::gatekeeper::check_answer(&request, &w.recipient, &public, &identities, a)
            .unwrap();
    }
    let last = answers.iter().max_by_key(|a| a.log_index).unwrap();
    drop(node);
    let reopened = open_node(dir.path(), index, &w);
    assert_eq!(reopened.status().unwrap().log_size, start + 48);
    assert_eq!(
        reopened.tree_head(0, NOW + 6).unwrap().head.root,
        last.tree_head.head.root
    );
}

/// L3: a bearer token replayed past what a worker needs is refused by the node (it
/// would otherwise append one synced log entry per replay, for its whole lifetime);
/// authorization runs outside the node's lock.
#[test]
fn attack_l3_a_replayed_token_is_rate_limited() {
    let w = worker(MR, MR, "sim");
    let dir = tempfile::tempdir().unwrap();
    let node = one_member(dir.path(), &w);
    let request = w.request(0);
    let mut rng = rand::rng();
    for _ in 0..keyvault::node::MAX_RELEASES_PER_TOKEN {
        node.release(&request, NOW + 5, &mut rng).unwrap();
    }
    let e = node.release(&request, NOW + 5, &mut rng).unwrap_err();
    assert!(
        matches!(
            e,
            keyvault::node::NodeError::Release(GatekeeperError::TokenOverused(_))
        ),
        "{e}"
    );
    let size = node.status().unwrap().log_size;
    assert!(node.release(&request, NOW + 6, &mut rng).is_err());
    assert_eq!(
        node.status().unwrap().log_size,
        size,
        "a refused replay logs nothing"
    );
}

/// L4: after the attestation service rotates its signing key, a node flags the unknown
/// key id (its refresher then refetches the JWKS) and accepts the new key once set.
#[test]
fn attack_l4_a_rotated_attestation_key_is_picked_up() {
    let old = worker(MR, MR, "sim");
    let rotated = worker(MR, MR, "sim");
    let dir = tempfile::tempdir().unwrap();
    let node = one_member(dir.path(), &old);
    let request = rotated.request(0);
    let mut rng = rand::rng();
    assert!(!node.take_unknown_kid());
    assert!(node.release(&request, NOW + 5, &mut rng).is_err());
    assert!(node.take_unknown_kid(), "the unknown key id is flagged");
    assert!(!node.take_unknown_kid(), "once");
    node.set_jwks(rotated.jwks.clone()).unwrap();
    node.release(&request, NOW + 5, &mut rng).unwrap();
}
