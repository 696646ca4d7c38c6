//! One conformance suite for every `Registry` backend: each rule, its violation (with
//! its own error), and the events. Run against the embedded ledger in-process and
//! through a light client over gRPC.
#![cfg(feature = "ledger")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod suite;

use chain::grpc::LightClient;
use chain::ledger::Ledger;
use chain::registry::Registry;
use chain::types::public_key;
use p256::ecdsa::SigningKey;
use std::sync::Arc;

fn now() -> i64 {
    1_760_000_000
}

/// A backend taking this crate's signed transactions: accounts are P-256 keys and a
/// worker's account is its identity key.
struct Signed<R> {
    registry: R,
    governance: SigningKey,
    sim: phalanx_dcap_sim::SimTee,
    chain_id: [u8; 32],
}

impl<R: Registry<Account = SigningKey>> suite::Fixture for Signed<R> {
    type R = R;
    fn registry(&self) -> &R {
        &self.registry
    }
    fn governance(&self) -> &SigningKey {
        &self.governance
    }
    async fn account(&mut self) -> (SigningKey, SigningKey) {
        let k = chain::random_key();
        (k.clone(), k)
    }
    fn sim(&self) -> &phalanx_dcap_sim::SimTee {
        &self.sim
    }
    fn chain_id(&self) -> [u8; 32] {
        self.chain_id
    }
}

/// A ledger in `dir` whose genesis trusts `sim`'s root.
fn ledger(
    dir: &std::path::Path,
    governance: &SigningKey,
    sim: &phalanx_dcap_sim::SimTee,
) -> Ledger {
    Ledger::open(
        dir,
        chain::random_key(),
        public_key(governance.verifying_key()),
        chain::sim::evidence_rule(sim),
        now,
    )
    .unwrap()
}

#[tokio::test]
async fn embedded_ledger_in_process() {
    let dir = tempfile::tempdir().unwrap();
    let governance = chain::random_key();
    let sim = suite::sim();
    let ledger = ledger(dir.path(), &governance, &sim);
    let chain_id = ledger.state().unwrap().chain_id();
    let mut f = Signed {
        registry: ledger,
        governance,
        sim,
        chain_id,
    };
    let (worker, stranger) = suite::suite(&mut f).await;
    suite::contracts(&mut f, worker, stranger).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_ledger_through_a_light_client() {
    let dir = tempfile::tempdir().unwrap();
    let governance = chain::random_key();
    let sim = suite::sim();
    let ledger = Arc::new(ledger(dir.path(), &governance, &sim));
    let chain_id = ledger.state().unwrap().chain_id();
    let genesis = ledger.blocks(0, 1).unwrap()[0].hash();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(chain::grpc::serve(
        listener,
        ledger.clone(),
        std::future::pending(),
    ));
    let client = LightClient::pinned(&url, genesis);
    let mut f = Signed {
        registry: client,
        governance,
        sim,
        chain_id,
    };
    let (worker, stranger) = suite::suite(&mut f).await;
    suite::contracts(&mut f, worker, stranger).await;
    // A second client, starting from nothing, rebuilds the same state.
    let fresh = LightClient::new(&url).sync().await.unwrap();
    let local = ledger.state().unwrap();
    assert_eq!(fresh.height(), local.height());
    assert_eq!(fresh.last_hash(), local.last_hash());
    // A client pinned to another chain refuses this one.
    let e = LightClient::pinned(&url, [9; 32]).sync().await.unwrap_err();
    assert!(e.to_string().contains("pinned"), "{e}");
}
