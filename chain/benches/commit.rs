//! What a state commitment costs (`chain::commit`): for registries of 10², 10⁴ and 10⁵
//! facts (a worker's record is ~250 bytes), the size of one fact's proof, the time to
//! verify it — against one bare ECDSA P-256 verification with `ring`, a bundle's other
//! unit of work, measured in the same run — and the time to change one fact.
//! `cargo bench -p chain --no-default-features --bench commit`.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use chain::commit::{Commitment, verify};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use p256::ecdsa::signature::Signer;

fn fact(i: u64) -> (Vec<u8>, Option<Vec<u8>>) {
    let mut key = b"worker/".to_vec();
    key.extend_from_slice(&i.to_be_bytes());
    (key, Some(vec![(i % 251) as u8; 250]))
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("commit");
    g.sample_size(30);
    for n in [100u64, 10_000, 100_000] {
        let mut tree = Commitment::new();
        // In blocks of 1,000 facts, as registrations arrive.
        for start in (0..n).step_by(1000) {
            tree.update((start..(start + 1000).min(n)).map(fact))
                .unwrap();
        }
        let root = tree.root();
        let (key, value) = fact(n / 2);
        let (got, proof) = tree.prove(&key).unwrap();
        assert_eq!(got, value);
        let (absent_key, _) = fact(n + 7);
        let (_, absent) = tree.prove(&absent_key).unwrap();
        eprintln!(
            "commit n={n}: inclusion proof {} bytes, non-inclusion proof {} bytes",
            proof.len(),
            absent.len()
        );
        g.bench_with_input(BenchmarkId::new("verify_inclusion", n), &n, |b, _| {
            b.iter(|| verify(&root, &key, value.as_deref(), &proof).unwrap())
        });
        g.bench_with_input(BenchmarkId::new("verify_absence", n), &n, |b, _| {
            b.iter(|| verify(&root, &absent_key, None, &absent).unwrap())
        });
        let mut i = 0u64;
        g.bench_with_input(BenchmarkId::new("update_one_fact", n), &n, |b, _| {
            b.iter(|| {
                i += 1;
                let (k, _) = fact(i % n);
                tree.update([(k, Some(i.to_be_bytes().to_vec()))]).unwrap()
            })
        });
    }
    let key = chain::random_key();
    let msg = [7u8; 64];
    let sig: p256::ecdsa::Signature = key.sign(&msg);
    let point = {
        use p256::elliptic_curve::sec1::ToSec1Point as _;
        p256::PublicKey::from(*key.verifying_key())
            .to_sec1_point(false)
            .as_bytes()
            .to_vec()
    };
    let raw = sig.to_bytes();
    g.bench_function("one_ring_p256_verify", |b| {
        b.iter(|| {
            ring::signature::UnparsedPublicKey::new(
                &ring::signature::ECDSA_P256_SHA256_FIXED,
                &point,
            )
            .verify(&msg, &raw)
            .unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
