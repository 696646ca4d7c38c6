//! What a light client pays to trust nothing: verifying and applying one block (the
//! authority's signature, the transaction's signature and the rules), against the two
//! bare ECDSA P-256 verifications it contains (with `ring`, which the registry uses, and
//! with `p256` for reference), measured in the same run.
//! `cargo bench -p chain --no-default-features --bench chain` (no rocksdb needed).
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use chain::state::State;
use chain::types::{Block, Genesis, SignedTx, Tx, public_key};
use criterion::{Criterion, criterion_group, criterion_main};
use p256::ecdsa::signature::{Signer, Verifier};

fn bench(c: &mut Criterion) {
    let (authority, governance) = (chain::random_key(), chain::random_key());
    let genesis = Block {
        height: 0,
        prev: [0; 32],
        timestamp: 1,
        genesis: Some(Genesis {
            authority: public_key(authority.verifying_key()),
            governance: public_key(governance.verifying_key()),
            timestamp: 1,
            evidence: chain::types::EvidenceRule::intel(),
        }),
        txs: Vec::new(),
        signature: Vec::new(),
    }
    .seal(&authority);
    let state = State::from_genesis(&genesis).unwrap();
    let tx = SignedTx::sign(
        &governance,
        &state.chain_id(),
        0,
        Tx::AddMeasurement {
            measurement: vec![1; 32],
            role: chain::types::Role::App,
        },
    );
    let block = Block {
        height: 1,
        prev: state.last_hash(),
        timestamp: 2,
        genesis: None,
        txs: vec![tx],
        signature: Vec::new(),
    }
    .seal(&authority);
    let bytes = block.encode();
    let mut g = c.benchmark_group("light_client");
    g.bench_function("decode_verify_apply_block", |b| {
        b.iter(|| {
            let mut s = state.clone();
            s.apply_block(&Block::decode(&bytes).unwrap()).unwrap();
            s
        })
    });
    let msg = [7u8; 64];
    let sig: p256::ecdsa::Signature = authority.sign(&msg);
    let key = *authority.verifying_key();
    let point = {
        use p256::elliptic_curve::sec1::ToSec1Point as _;
        p256::PublicKey::from(key)
            .to_sec1_point(false)
            .as_bytes()
            .to_vec()
    };
    let raw = sig.to_bytes();
    g.bench_function("two_bare_ring_verifies", |b| {
        b.iter(|| {
            for _ in 0..2 {
                ring::signature::UnparsedPublicKey::new(
                    &ring::signature::ECDSA_P256_SHA256_FIXED,
                    &point,
                )
                .verify(&msg, &raw)
                .unwrap();
            }
        })
    });
    g.bench_function("two_bare_p256_verifies", |b| {
        b.iter(|| {
            key.verify(&msg, &sig).unwrap();
            key.verify(&msg, &sig).unwrap();
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
