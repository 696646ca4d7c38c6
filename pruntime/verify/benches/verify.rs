//! What a whole answer check costs against the quote verification inside it: cold (every
//! signature of quote and collateral verified) and warm (collateral and PCK chain
//! verified once, by a reused [`phalanx_verify::Checker`] / `phalanx_dcap::Verifier`).
//! The target: the whole check under twice a cold quote verification.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

#[path = "../tests/common/mod.rs"]
mod common;

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let w = common::world(common::Shape::default());
    let json = serde_json::to_vec(&w.bundle).unwrap();
    let registry = serde_json::to_vec(&w.bundle.registry).unwrap();
    eprintln!(
        "bundle: {} bytes of JSON (registry header and {} proofs: {} bytes; quote {} bytes base64; collateral {} bytes)",
        json.len(),
        w.bundle.registry.facts.len(),
        registry.len(),
        w.bundle.evidence.quote.len(),
        w.bundle.evidence.collateral.len(),
    );
    let (quote, collateral, at) = common::quote_and_collateral(&w.bundle);
    let mut g = c.benchmark_group("verify_answer");
    g.bench_function("whole_check_cold", |b| {
        b.iter(|| {
            let bundle = phalanx_verify::parse(black_box(&json)).unwrap();
            assert!(phalanx_verify::verify(&bundle, &w.options).ok);
        })
    });
    g.bench_function("quote_alone_cold", |b| {
        b.iter(|| {
            phalanx_dcap::verify(black_box(&quote), &collateral, at, &w.options.anchors).unwrap()
        })
    });
    let checker = phalanx_verify::Checker::new(w.options.clone());
    g.bench_function("whole_check_warm", |b| {
        b.iter(|| {
            let bundle = phalanx_verify::parse(black_box(&json)).unwrap();
            assert!(checker.verify(&bundle).ok);
        })
    });
    let verifier = phalanx_dcap::Verifier::new(w.options.anchors.clone());
    g.bench_function("quote_alone_warm", |b| {
        b.iter(|| verifier.verify(black_box(&quote), &collateral, at).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
