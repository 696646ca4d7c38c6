//! Threshold key costs: a key release (gatekeeper partial evaluation with its DLEQ
//! proof; worker verification and combination), and whole DKG, refresh and reshare
//! rounds run in one process (every member's work added up); and the whole release
//! exchange: a gatekeeper's `release` (token check, evaluation, HPKE seal, log append,
//! signed tree head) and a worker's `assemble` of three answers (log proofs, envelopes,
//! DLEQ proofs, combination) — the CPU floor of the cluster's load benchmark.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::expect_used
)]

#[path = "../tests/common/mod.rs"]
mod common;

use criterion::{Criterion, criterion_group, criterion_main};
use phalanx_threshold::derive::{KeyId, combine, evaluate};
use phalanx_threshold::dkg::{DkgParams, run_in_memory};
use phalanx_threshold::lifecycle::{refresh_in_memory, reshare_in_memory};
use phalanx_threshold::share::{NodeIndex, SecretScalar, dealer_split};
use phalanx_types::Epoch;
use rand::SeedableRng;
use std::hint::black_box;

fn members(n: u16) -> Vec<NodeIndex> {
    (1..=n).map(|i| NodeIndex::new(i).unwrap()).collect()
}

fn release(c: &mut Criterion) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let id = KeyId {
        epoch: Epoch(1),
        tenant: "mrenclave".into(),
        path: "db".into(),
        purpose: "aead".into(),
    };
    for (t, n) in [(3usize, 5usize), (7, 10)] {
        let (shares, public) =
            dealer_split(&SecretScalar::new(p256::Scalar::from(7u64)), t, n, &mut rng).unwrap();
        if t == 3 {
            c.bench_function("gatekeeper/partial_eval_and_proof", |b| {
                b.iter(|| evaluate(black_box(&shares[0]), &id, &mut rng).unwrap())
            });
        }
        let partials: Vec<_> = shares[..t]
            .iter()
            .map(|s| evaluate(s, &id, &mut rng).unwrap())
            .collect();
        c.bench_function(&format!("worker/verify_and_combine_t{t}_n{n}"), |b| {
            b.iter(|| combine(&public, &id, black_box(&partials)).unwrap())
        });
    }
}

/// Long on purpose: one committee and one worker set up once, then each measured step of
/// the exchange (and the assemble floor) side by side, so the report's rows share them.
fn exchange(c: &mut Criterion) {
    use phalanx_release::gatekeeper::{Gatekeeper, ReleaseRequest, assemble};
    use std::collections::BTreeMap;
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let w = common::worker(common::MR, common::MR, "sim");
    let outputs =
        run_in_memory(&DkgParams::new(Epoch(0), 3, &members(5)).unwrap(), &mut rng).unwrap();
    let public = outputs[0].public.clone();
    let shares: Vec<_> = outputs.iter().map(|o| o.share.clone()).collect();
    let mut identities = BTreeMap::new();
    let mut gks: Vec<Gatekeeper> = outputs
        .into_iter()
        .map(|o| {
            let id = phalanx_threshold::identity::IdentityKey::generate(&mut rng);
            identities.insert(o.share.index, id.verifying_key());
            Gatekeeper::new(
                id,
                o.share.index,
                BTreeMap::from([(Epoch(0), o.share)]),
                phalanx_threshold::translog::MerkleLog::new(),
                w.jwks.clone(),
                common::sim_policy(),
            )
        })
        .collect();
    let req = ReleaseRequest {
        token: w.token.clone(),
        runtime_data: w.runtime_data.clone(),
        key_id: common::key_id(0, &common::sgx_tenant(common::MR)),
        hpke_public_key: w.hpke.clone(),
    };
    c.bench_function("exchange/gatekeeper_release", |b| {
        b.iter(|| {
            gks[0]
                .release(black_box(&req), common::NOW, &mut rng)
                .unwrap()
        })
    });
    // What committing to the partial adds to a release (issue 28, item 4): the key id's
    // input and one hash over it, the public share and the partial, to set against the
    // whole release above.
    let partial = vec![7u8; 229];
    let share = [4u8; 65];
    c.bench_function("exchange/release_evaluation_commitment", |b| {
        b.iter(|| {
            phalanx_threshold::release_log::evaluation(
                &black_box(&req).key_id.encode_point_input().unwrap(),
                &share,
                &partial,
            )
        })
    });
    let answers: Vec<_> = gks
        .iter_mut()
        .take(3)
        .map(|g| g.release(&req, common::NOW, &mut rng).unwrap().0)
        .collect();
    // Assemble's floor (issue 30, item 5): what no worker can skip — per answer one
    // static-key ECDH (to open its envelope) and the check of its log's signed head, on
    // a thread each as `assemble` opens them; then one batch DLEQ check and one Lagrange
    // combination (`combine`) — measured alone.
    let partials: Vec<_> = shares
        .iter()
        .take(3)
        .map(|s| evaluate(s, &req.key_id, &mut rng).unwrap())
        .collect();
    let (secret, peer) = (
        p256::SecretKey::from_slice(&[7; 32]).unwrap(),
        p256::SecretKey::from_slice(&[9; 32]).unwrap().public_key(),
    );
    let required = |a: &phalanx_release::gatekeeper::ReleaseResponse| {
        black_box(p256::ecdh::diffie_hellman(
            secret.to_nonzero_scalar(),
            peer.as_affine(),
        ));
        a.tree_head.verify(&identities[&a.node]).unwrap();
    };
    c.bench_function("exchange/worker_assemble_floor_t3", |b| {
        b.iter(|| {
            std::thread::scope(|scope| {
                let others: Vec<_> = answers[1..]
                    .iter()
                    .map(|a| scope.spawn(|| required(a)))
                    .collect();
                required(&answers[0]);
                for h in others {
                    h.join().unwrap();
                }
            });
            combine(&public, &req.key_id, black_box(&partials)).unwrap()
        })
    });
    c.bench_function("exchange/worker_assemble_t3", |b| {
        b.iter(|| {
            assemble(
                &req,
                &w.recipient,
                &public,
                &identities,
                black_box(&answers),
            )
            .unwrap()
        })
    });
}

fn rounds(c: &mut Criterion) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(2);
    let mut g = c.benchmark_group("rounds");
    g.sample_size(10);
    for n in [5u16, 10, 20] {
        let params = DkgParams::new(Epoch(1), usize::from(n / 2 + 1), &members(n)).unwrap();
        g.bench_function(format!("dkg_n{n}"), |b| {
            b.iter(|| run_in_memory(&params, &mut rng).unwrap())
        });
    }
    let (shares, public) = dealer_split(
        &SecretScalar::new(p256::Scalar::from(9u64)),
        6,
        10,
        &mut rng,
    )
    .unwrap();
    g.bench_function("refresh_n10", |b| {
        b.iter(|| refresh_in_memory(&shares, &public, &mut rng).unwrap())
    });
    let new = members(10);
    g.bench_function("reshare_n10_to_n10", |b| {
        b.iter(|| reshare_in_memory(&shares, &public, &new, 6, &mut rng).unwrap())
    });
    g.finish();
}

criterion_group!(benches, release, exchange, rounds);
criterion_main!(benches);
