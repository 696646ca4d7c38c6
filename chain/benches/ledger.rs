//! A load generator for the embedded ledger (rocksdb, synced writes): how many
//! transactions a second it seals with the state tree, from one submitter (a block and a
//! synced write each) and from 64 concurrent ones (group commit: one block and one write
//! per batch). Each transaction is a contract deployment from its own account: the
//! registry's per-transaction work (signature, nonce, rules) plus a change to the state
//! tree — at least what a command costs. Signing happens before the clock starts.
//! `cargo bench -p chain --bench ledger` (prints the rates).
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use chain::ledger::Ledger;
use chain::types::{SignedTx, Tx, public_key};
use std::sync::Arc;
use std::time::Instant;

fn now() -> i64 {
    1_760_000_000
}

fn deploys(chain_id: [u8; 32], n: usize) -> Vec<SignedTx> {
    (0..n)
        .map(|i| {
            let key = chain::random_key();
            let mut salt = [0u8; 32];
            salt[..8].copy_from_slice(&(i as u64).to_be_bytes());
            SignedTx::sign(
                &key,
                &chain_id,
                0,
                Tx::DeployContract {
                    code: b"\0asm\x01\0\0\0".to_vec(),
                    salt,
                },
            )
        })
        .collect()
}

/// Transactions a second sealed from `submitters` threads (in `dir`, by `authority`).
fn rate(
    dir: &std::path::Path,
    authority: &p256::ecdsa::SigningKey,
    submitters: usize,
    n: usize,
) -> (f64, u64) {
    let ledger = Arc::new(open(dir, authority));
    let txs = deploys(ledger.state().unwrap().chain_id(), n);
    let mut shares: Vec<Vec<SignedTx>> = (0..submitters).map(|_| Vec::new()).collect();
    for (i, tx) in txs.into_iter().enumerate() {
        shares[i % submitters].push(tx);
    }
    let start = Instant::now();
    let threads: Vec<_> = shares
        .into_iter()
        .map(|share| {
            let ledger = ledger.clone();
            std::thread::spawn(move || {
                for tx in share {
                    ledger.submit(tx).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    let state = ledger.state().unwrap();
    assert_eq!(state.contracts().count(), n);
    (n as f64 / secs, state.height() - 1)
}

fn open(dir: &std::path::Path, authority: &p256::ecdsa::SigningKey) -> Ledger {
    open_governed(dir, authority, &chain::random_key())
}

fn open_governed(
    dir: &std::path::Path,
    authority: &p256::ecdsa::SigningKey,
    governance: &p256::ecdsa::SigningKey,
) -> Ledger {
    Ledger::open(
        dir,
        authority.clone(),
        public_key(governance.verifying_key()),
        chain::types::EvidenceRule::intel(),
        now,
    )
    .unwrap()
}

/// Reopening `dir` from its stored state, against replaying it from genesis.
fn reopen(dir: &std::path::Path, authority: &p256::ecdsa::SigningKey, what: &str) {
    let start = Instant::now();
    let reopened = open(dir, authority).state().unwrap();
    let read = start.elapsed();
    let start = Instant::now();
    let replayed = Ledger::verify_dir(dir).unwrap();
    let replay = start.elapsed();
    assert_eq!(reopened.state_root(), replayed.state_root());
    println!(
        "ledger: reopening {} blocks ({what}): {read:.2?} from the stored state, {replay:.2?} \
         replayed from genesis",
        replayed.height() - 1
    );
}

fn main() {
    // `cargo test --benches` runs this with --bench absent: a quick pass only.
    let quick = !std::env::args().any(|a| a == "--bench");
    let (one, many) = if quick { (50, 500) } else { (1_000, 20_000) };
    let authority = chain::random_key();
    let dir = tempfile::tempdir().unwrap();
    let (r1, b1) = rate(dir.path(), &authority, 1, one);
    println!("ledger: 1 submitter: {r1:.0} transactions/s ({one} in {b1} blocks)");
    let dir = tempfile::tempdir().unwrap();
    let (r64, b64) = rate(dir.path(), &authority, 64, many);
    println!("ledger: 64 submitters: {r64:.0} transactions/s ({many} in {b64} blocks)");
    // Reopening that ledger reads its stored state; the auditor's check replays it.
    reopen(
        dir.path(),
        &authority,
        &format!("{many} deployments: state as large as the chain"),
    );
    // A long chain over a small state: governance allows and removes one measurement,
    // a block each.
    let dir = tempfile::tempdir().unwrap();
    let governance = chain::random_key();
    {
        let ledger = open_governed(dir.path(), &authority, &governance);
        let chain_id = ledger.state().unwrap().chain_id();
        for i in 0..(if quick { 100 } else { 4_000 }) {
            let tx = if i % 2 == 0 {
                Tx::AddMeasurement {
                    measurement: vec![7; 32],
                    role: chain::types::Role::App,
                }
            } else {
                Tx::RemoveMeasurement(vec![7; 32])
            };
            ledger
                .submit(SignedTx::sign(&governance, &chain_id, i, tx))
                .unwrap();
        }
    }
    reopen(dir.path(), &authority, "a long chain over a small state");
}
