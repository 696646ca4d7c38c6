//! Key release cost: a gatekeeper's partial evaluation with its DLEQ proof, and a
//! worker's verification of t proofs plus Lagrange combination and HKDF.
#![allow(missing_docs, clippy::unwrap_used, clippy::indexing_slicing)]

use criterion::{Criterion, criterion_group, criterion_main};
use keyvault::derive::{KeyId, combine, evaluate};
use keyvault::share::{SecretScalar, dealer_split};
use rand::SeedableRng;
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let id = KeyId {
        epoch: 1,
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

criterion_group!(benches, bench);
criterion_main!(benches);
