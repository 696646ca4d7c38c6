//! Quote verification speed on real vectors, measured in one run:
//! `dcap-qvl` (ring backend), ours cold (nothing cached), ours warm (collateral and
//! PCK chain verified once, cached by their exact bytes).
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use criterion::{Criterion, criterion_group, criterion_main};
use phalanx_dcap::{Collateral, TrustAnchors, Verifier, verify};
use std::hint::black_box;

#[path = "../tests/common/mod.rs"]
mod common;

fn load(quote: &str, collateral: &str) -> (Vec<u8>, Collateral) {
    (
        common::read(quote),
        Collateral::from_bundle_json(&common::read(collateral)).unwrap(),
    )
}

fn bench(c: &mut Criterion) {
    for (name, quote, collateral, now) in [
        (
            "sgx_v3",
            "phala/sgx_quote",
            "phala/sgx_quote_collateral.json",
            1_750_334_171i64,
        ),
        (
            "tdx_v4",
            "phala/tdx_quote",
            "phala/tdx_quote_collateral.json",
            1_750_332_747,
        ),
    ] {
        let (q, col) = load(quote, collateral);
        let theirs = common::to_dcap_qvl(&col);
        let mut g = c.benchmark_group(name);
        g.bench_function("dcap_qvl_ring", |b| {
            b.iter(|| dcap_qvl::verify::ring::verify(black_box(&q), &theirs, now as u64).unwrap())
        });
        let anchors = TrustAnchors::intel();
        g.bench_function("ours_cold", |b| {
            b.iter(|| verify(black_box(&q), &col, now, &anchors).unwrap())
        });
        let warm = Verifier::new(TrustAnchors::intel());
        warm.verify(&q, &col, now).unwrap();
        g.bench_function("ours_warm", |b| {
            b.iter(|| warm.verify(black_box(&q), &col, now).unwrap())
        });
        let prepared = warm.verified_collateral(&col).unwrap();
        g.bench_function("ours_warm_prepared", |b| {
            b.iter(|| warm.verify_with(black_box(&q), &prepared, now).unwrap())
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
