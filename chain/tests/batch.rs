//! Group commit: concurrent submissions share blocks, each gets its own outcome (a
//! refused one its rule, the rest their block's height), and the chain they make
//! reopens and verifies.
#![cfg(feature = "ledger")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use chain::ledger::{Ledger, LedgerError};
use chain::state::RuleError;
use chain::types::{SignedTx, Tx, public_key};
use std::sync::Arc;

fn now() -> i64 {
    1_760_000_000
}

fn deploy(chain_id: &[u8; 32], nonce: u64, n: u16) -> SignedTx {
    let mut salt = [0u8; 32];
    salt[..2].copy_from_slice(&n.to_be_bytes());
    SignedTx::sign(
        &chain::random_key(),
        chain_id,
        nonce,
        Tx::DeployContract {
            code: b"\0asm\x01\0\0\0".to_vec(),
            salt,
        },
    )
}

#[test]
fn concurrent_submissions_share_blocks_and_keep_their_own_outcomes() {
    let dir = tempfile::tempdir().unwrap();
    let authority = chain::random_key();
    let governance = public_key(chain::random_key().verifying_key());
    let open = || {
        Ledger::open(
            dir.path(),
            authority.clone(),
            governance.clone(),
            chain::types::EvidenceRule::intel(),
            now,
        )
    };
    let ledger = Arc::new(open().unwrap());
    let chain_id = ledger.state().unwrap().chain_id();
    // 16 threads × 25 submissions; every fifth carries a wrong nonce.
    let threads: Vec<_> = (0..16u8)
        .map(|t| {
            let ledger = ledger.clone();
            std::thread::spawn(move || {
                (0..25u8)
                    .map(|i| {
                        let bad = i % 5 == 0;
                        let tx =
                            deploy(&chain_id, u64::from(bad), u16::from(t) * 25 + u16::from(i));
                        (bad, ledger.submit(tx))
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut heights = std::collections::BTreeSet::new();
    for t in threads {
        for (bad, outcome) in t.join().unwrap() {
            match (bad, outcome) {
                (true, Err(LedgerError::Rule(RuleError::Nonce { got: 1, .. }))) => {}
                (false, Ok(h)) => {
                    heights.insert(h);
                }
                other => panic!("unexpected outcome {other:?}"),
            }
        }
    }
    let state = ledger.state().unwrap();
    assert_eq!(state.contracts().count(), 16 * 20);
    // Every height an accepted submission was told holds it; no empty blocks.
    let blocks = ledger.blocks(1, 1024).unwrap();
    assert_eq!(heights.len(), blocks.len());
    assert!(blocks.iter().all(|b| !b.txs.is_empty()));
    assert_eq!(blocks.iter().map(|b| b.txs.len()).sum::<usize>(), 16 * 20);
    drop(ledger);
    // The chain reopens, every block re-verified, to the same state root.
    let reopened = open().unwrap();
    assert_eq!(reopened.state().unwrap().state_root(), state.state_root());
}
