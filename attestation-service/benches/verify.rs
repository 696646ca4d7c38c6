//! Quote verification speed on real vectors, measured in one run:
//! `dcap-qvl` (ring backend), ours cold (nothing cached), ours warm (collateral and
//! PCK chain verified once, cached by their exact bytes).
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use attestation_service::{Collateral, TrustAnchors, Verifier, verify};
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::path::PathBuf;

fn load(quote: &str, collateral: &str) -> (Vec<u8>, Collateral) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/dcap");
    let q = std::fs::read(dir.join(quote)).unwrap();
    let c = Collateral::from_bundle_json(&std::fs::read(dir.join(collateral)).unwrap()).unwrap();
    (q, c)
}

fn to_dcap_qvl(c: &Collateral) -> dcap_qvl::QuoteCollateralV3 {
    dcap_qvl::QuoteCollateralV3 {
        pck_crl_issuer_chain: String::from_utf8_lossy(&c.pck_crl_issuer_chain).into_owned(),
        root_ca_crl: c.root_ca_crl.clone(),
        pck_crl: c.pck_crl.clone(),
        tcb_info_issuer_chain: String::from_utf8_lossy(&c.tcb_info_issuer_chain).into_owned(),
        tcb_info: c.tcb_info.clone(),
        tcb_info_signature: c.tcb_info_signature.clone(),
        qe_identity_issuer_chain: String::from_utf8_lossy(&c.qe_identity_issuer_chain).into_owned(),
        qe_identity: c.qe_identity.clone(),
        qe_identity_signature: c.qe_identity_signature.clone(),
        pck_certificate_chain: None,
    }
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
        let theirs = to_dcap_qvl(&col);
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
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
