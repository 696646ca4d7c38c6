//! Quote verification speed on real vectors, measured in one run:
//! `dcap-qvl` (ring backend), ours cold (nothing cached), ours warm (collateral and
//! PCK chain verified once, cached by their exact bytes), and the floor of the warm path:
//! one ECDSA P-256 verification with ring (the quote's own signature, over as many bytes
//! as the quote signs), which no verifier of a fresh quote can skip; and the floor of
//! the cold path: the nine verifications a fresh quote with fresh collateral needs.
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
    // Header (48 bytes) plus the report the attestation key signs: an SGX enclave report
    // (384) or a TD report (584).
    for (name, quote, collateral, now, signed_len) in [
        (
            "sgx_v3",
            "phala/sgx_quote",
            "phala/sgx_quote_collateral.json",
            1_750_334_171i64,
            48 + 384,
        ),
        (
            "tdx_v4",
            "phala/tdx_quote",
            "phala/tdx_quote_collateral.json",
            1_750_332_747,
            48 + 584,
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
        let (message, public, signature) = one_signature(&q[..signed_len.min(q.len())]);
        g.bench_function("floor_one_p256_verify_ring", |b| {
            b.iter(|| {
                ring::signature::UnparsedPublicKey::new(
                    &ring::signature::ECDSA_P256_SHA256_FIXED,
                    black_box(&public),
                )
                .verify(&message, &signature)
                .unwrap()
            })
        });
        // The cold path's floor: the nine P-256 verifications no verifier of a fresh quote
        // and fresh collateral can skip, with ring, over messages as long as the real
        // ones (each certificate and CRL whole, a little more than its signed part).
        let floor: Vec<_> = nine_signed_lengths(&q, &col)
            .into_iter()
            .map(|len| one_signature(&vec![0x5a; len]))
            .collect();
        g.bench_function("floor_nine_p256_verifies_ring", |b| {
            b.iter(|| {
                for (message, public, signature) in &floor {
                    ring::signature::UnparsedPublicKey::new(
                        &ring::signature::ECDSA_P256_SHA256_FIXED,
                        black_box(public),
                    )
                    .verify(message, signature)
                    .unwrap()
                }
            })
        });
        g.finish();
    }
}

/// The lengths of what the nine signatures of a cold verification cover: the quote
/// (by the attestation key), the QE report (by the PCK key), the PCK certificate and
/// its CA's (by the CA and the root), the TCB Info and the QE Identity (by the TCB
/// signing key), the TCB signing certificate (by the root), and the two CRLs.
fn nine_signed_lengths(q: &[u8], col: &Collateral) -> Vec<usize> {
    let quote = phalanx_dcap::quote::Quote::parse(q).unwrap();
    let pck = phalanx_dcap::pki::split_chain(quote.signature.pck_cert_chain, "pck").unwrap();
    let tcb = phalanx_dcap::pki::split_chain(&col.tcb_info_issuer_chain, "tcb").unwrap();
    let lengths = vec![
        quote.signed.len(),
        quote.signature.qe_report_raw.len(),
        pck[0].len(),
        pck[1].len(),
        col.tcb_info.len(),
        col.qe_identity.len(),
        tcb[0].len(),
        col.root_ca_crl.len(),
        col.pck_crl.len(),
    ];
    assert_eq!(lengths.len(), 9);
    lengths
}

/// A fresh P-256 key's signature over `message` (what the floor verifies).
fn one_signature(message: &[u8]) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let signature = pair.sign(&rng, message).unwrap();
    (
        message.to_vec(),
        pair.public_key().as_ref().to_vec(),
        signature.as_ref().to_vec(),
    )
}

criterion_group!(benches, bench);
criterion_main!(benches);
