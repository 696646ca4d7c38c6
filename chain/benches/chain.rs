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
    let genesis = State::genesis_block(
        Genesis {
            authority: public_key(authority.verifying_key()),
            governance: public_key(governance.verifying_key()),
            timestamp: 1,
            evidence: chain::types::EvidenceRule::intel(),
        },
        &authority,
    );
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
    let block = state.seal_next(vec![tx], 2, &authority).unwrap();
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

/// What a registration costs the registry: the block carrying one worker's evidence,
/// decoded and applied with the quote and its collateral verified to the genesis's root
/// — cold (a fresh state: PCK chain, CRLs, TCB Info and QE Identity all verified) and
/// warm (a state whose verifier saw this collateral: a replaying light client after
/// the first registration of a platform) — against the plain governance block above.
fn registration(c: &mut Criterion) {
    let sim = chain::sim::platform(1_759_000_000).unwrap();
    let (authority, governance) = (chain::random_key(), chain::random_key());
    let genesis = State::genesis_block(
        Genesis {
            authority: public_key(authority.verifying_key()),
            governance: public_key(governance.verifying_key()),
            timestamp: 1_760_000_000,
            evidence: chain::sim::evidence_rule(&sim),
        },
        &authority,
    );
    let mut state = State::from_genesis(&genesis).unwrap();
    let enclave = chain::sim::enclave([0x5e; 32]);
    let allow = state
        .seal_next(
            vec![SignedTx::sign(
                &governance,
                &state.chain_id(),
                0,
                Tx::AddMeasurement {
                    measurement: chain::sim::tenant(&enclave).to_vec(),
                    role: chain::types::Role::Runtime,
                },
            )],
            1_760_000_001,
            &authority,
        )
        .unwrap();
    state.apply_block(&allow).unwrap();
    let worker = chain::random_key();
    let registration =
        chain::sim::registration(&sim, &enclave, &worker, vec![4; 65], state.chain_id()).unwrap();
    let block = state
        .seal_next(
            vec![SignedTx::sign(
                &worker,
                &state.chain_id(),
                0,
                Tx::RegisterWorker(registration),
            )],
            1_760_000_002,
            &authority,
        )
        .unwrap();
    let bytes = block.encode();
    eprintln!("registration block: {} bytes", bytes.len());
    let mut g = c.benchmark_group("registration");
    g.bench_function("cold", |b| {
        b.iter(|| {
            let mut s = State::from_genesis(&genesis).unwrap();
            s.apply_block(&allow).unwrap();
            s.apply_block(&Block::decode(&bytes).unwrap()).unwrap();
            s
        })
    });
    // The verifier's caches are shared by copies of a state: warm them once.
    state.clone().apply_block(&block).unwrap();
    g.bench_function("warm", |b| {
        b.iter(|| {
            let mut s = state.clone();
            s.apply_block(&Block::decode(&bytes).unwrap()).unwrap();
            s
        })
    });
    g.finish();
}

criterion_group!(benches, bench, registration);
criterion_main!(benches);
