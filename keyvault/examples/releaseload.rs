//! Load benchmark of key release: five gatekeeper nodes (3 of 5) on loopback gRPC with
//! rocksdb stores, and workers calling `fetch_key` (all five asked in parallel, the
//! first three valid answers combined) at several concurrency levels. Reports fetches
//! per second and p50/p99, against the CPU floor measured in the same run: one fetch
//! costs five gatekeeper `release` calls (authorize, evaluate, seal, log, sign) plus
//! one worker `assemble`, so two cores can do at most `2 / (5·release + assemble)`.
//!
//! ```sh
//! scripts/releaseload.sh [SECONDS] [CONCURRENCY,...]
//! ```
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

#[path = "../release/tests/common/mod.rs"]
mod common;

use keyvault::dkg::{DkgParams, run_in_memory};
use keyvault::gatekeeper::{Gatekeeper, ReleaseRequest, assemble};
use keyvault::grpc::{Endpoint, fetch_key, serve};
use keyvault::node::Node;
use keyvault::share::NodeIndex;
use keyvault::store::{EpochState, NodeStore, SealingKey};
use phalanx_types::Epoch;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn clock() -> i64 {
    common::NOW + 1
}

/// Long on purpose: one load run read top to bottom (setup, the floor, each
/// concurrency, the report), as its printed table is.
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let secs: u64 = args.first().and_then(|s| s.parse().ok()).unwrap_or(5);
    let levels: Vec<usize> = args
        .get(1)
        .map(|s| s.split(',').filter_map(|n| n.parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 4, 16]);
    // One token allows MAX_RELEASES_PER_TOKEN releases per gatekeeper: the load cycles
    // through workers attested by one service.
    let pool: Arc<Vec<(common::Worker, ReleaseRequest)>> = Arc::new(
        common::workers(64, common::MR)
            .into_iter()
            .map(|w| {
                let r = ReleaseRequest {
                    token: w.token.clone(),
                    runtime_data: w.runtime_data.clone(),
                    key_id: common::key_id(0, &common::sgx_tenant(common::MR)),
                    hpke_public_key: w.hpke.clone(),
                };
                (w, r)
            })
            .collect(),
    );
    let (w, request) = (&pool[0].0, pool[0].1.clone());
    let members: Vec<NodeIndex> = (1..=5).map(|i| NodeIndex::new(i).unwrap()).collect();
    let outputs = run_in_memory(
        &DkgParams::new(Epoch(0), 3, &members).unwrap(),
        &mut rand::rng(),
    )
    .unwrap();
    let public = outputs[0].public.clone();

    // The CPU floor, in-process on one thread.
    let mut identities = BTreeMap::new();
    let mut gks: Vec<Gatekeeper> = outputs
        .iter()
        .map(|o| {
            let id = keyvault::identity::IdentityKey::generate(&mut rand::rng());
            identities.insert(o.share.index, id.verifying_key());
            Gatekeeper::new(
                id,
                o.share.index,
                BTreeMap::from([(Epoch(0), o.share.clone())]),
                keyvault::translog::MerkleLog::new(),
                w.jwks.clone(),
                common::sim_policy(),
            )
        })
        .collect();
    // Each the best of five batches: on a noisy machine one batch may be slowed by
    // others, which would make the floor lenient; the best batch makes it strict.
    let best_of = |f: &mut dyn FnMut()| -> f64 {
        (0..5)
            .map(|_| {
                let t0 = Instant::now();
                for _ in 0..20 {
                    f();
                }
                t0.elapsed().as_secs_f64() / 20.0
            })
            .fold(f64::INFINITY, f64::min)
    };
    let release = best_of(&mut || {
        gks[0].release(&request, clock(), &mut rand::rng()).unwrap();
    });
    let answers: Vec<_> = gks
        .iter_mut()
        .take(3)
        .map(|g| g.release(&request, clock(), &mut rand::rng()).unwrap().0)
        .collect();
    let assemble_t = best_of(&mut || {
        assemble(&request, &w.recipient, &public, &identities, &answers).unwrap();
    });
    let floor = 2.0 / (5.0 * release + assemble_t);
    println!(
        "floor: release {:.2} ms, assemble {:.2} ms -> at most {floor:.1} fetches/s on 2 cores",
        release * 1e3,
        assemble_t * 1e3
    );

    // Five nodes on loopback.
    let tmp = std::env::temp_dir().join(format!("phalanx-releaseload-{}", std::process::id()));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let endpoints: Vec<Endpoint> = rt.block_on(async {
        let mut eps = Vec::new();
        for o in &outputs {
            let dir = tmp.join(format!("gk-{}", o.share.index.get()));
            std::fs::create_dir_all(&dir).unwrap();
            let store = NodeStore::open(
                &dir.join("db"),
                SealingKey::load_or_create(&dir.join("sealing.key")).unwrap(),
            )
            .unwrap();
            let node = Arc::new(
                Node::open(
                    store,
                    o.share.index,
                    w.jwks.clone(),
                    common::sim_policy(),
                    &mut rand::rng(),
                )
                .unwrap(),
            );
            let state = EpochState {
                share: o.share.clone(),
                public: public.clone(),
            };
            node.install_epoch(Epoch(0), &state, clock()).unwrap();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let status = node.status().unwrap();
            eps.push(Endpoint {
                index: status.index,
                url: format!("http://{}", listener.local_addr().unwrap()),
                identity: p256::ecdsa::VerifyingKey::from_sec1_bytes(&status.identity_key).unwrap(),
            });
            tokio::spawn(serve(listener, node, clock, std::future::pending()));
        }
        eps
    });
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(1));
    for c in levels {
        let cpu0 = phalanx_types::process::cpu_seconds().unwrap_or(f64::NAN);
        let (ops, lat) = rt.block_on(async {
            let deadline = Instant::now() + Duration::from_secs(secs);
            let start = Instant::now();
            let mut tasks = Vec::new();
            for _ in 0..c {
                let (eps, pool, public, next) = (
                    endpoints.clone(),
                    pool.clone(),
                    public.clone(),
                    next.clone(),
                );
                tasks.push(tokio::spawn(async move {
                    let mut lat = Vec::new();
                    let mut n = 0usize;
                    let mut mine = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    while Instant::now() < deadline {
                        // A fresh worker (token) every 200 fetches, never one used before.
                        if n > 0 && n.is_multiple_of(200) {
                            mine = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                        let (w, req) = &pool[mine % pool.len()];
                        let t = Instant::now();
                        fetch_key(&eps, req, &w.recipient, &public, Duration::from_secs(10))
                            .await
                            .unwrap();
                        lat.push(t.elapsed());
                        n += 1;
                    }
                    lat
                }));
            }
            let mut all = Vec::new();
            for t in tasks {
                all.extend(t.await.unwrap());
            }
            all.sort();
            (all.len() as f64 / start.elapsed().as_secs_f64(), all)
        });
        // CPU per fetch against the floor's tells extra work (transport, storage,
        // threads) from cores left idle.
        let cpu = phalanx_types::process::cpu_seconds().unwrap_or(f64::NAN) - cpu0;
        let pct =
            |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)].as_secs_f64() * 1e3;
        println!(
            "c={c:<3} {ops:>6.1} fetches/s  p50 {:>7.1} ms  p99 {:>7.1} ms  {:.2} of the floor  \
             CPU {:.2} ms per fetch ({:.2}× the floor's)",
            pct(0.5),
            pct(0.99),
            ops / floor,
            cpu * 1e3 / lat.len() as f64,
            cpu / lat.len() as f64 / (5.0 * release + assemble_t),
        );
    }
    println!(
        "peak RSS {:.1} MiB (five gatekeepers and the workers, one process)",
        phalanx_types::process::peak_rss_mib().unwrap_or(f64::NAN)
    );
    let _ = std::fs::remove_dir_all(&tmp);
}
