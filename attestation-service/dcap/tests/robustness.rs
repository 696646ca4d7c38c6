//! Malformed, truncated and oversized input gives typed errors, never panics: every
//! truncation of the real quotes, seeded random bytes, and the fuzz corpus replayed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use phalanx_dcap::collateral::MAX_COLLATERAL_SIZE;
use phalanx_dcap::quote::MAX_QUOTE_SIZE;
use phalanx_dcap::{Collateral, Error, QeIdentity, Quote, TcbInfo, TrustAnchors, Verifier, pki};
use proptest::prelude::*;
use std::path::PathBuf;

#[test]
fn every_truncation_of_every_real_quote_is_an_error() {
    for v in common::vectors() {
        let full = Quote::parse(&v.quote).unwrap();
        for len in 0..full.len {
            assert!(
                Quote::parse(&v.quote[..len]).is_err(),
                "{} cut at {len}",
                v.name
            );
        }
        // Past its own end the quote is whole; the rest is counted, never parsed.
        let mut padded = v.quote[..full.len].to_vec();
        padded.extend_from_slice(b"\0\0 trailing text");
        assert_eq!(Quote::parse(&padded).unwrap().trailing_len, 16);
    }
}

#[test]
fn oversized_input_is_refused_before_parsing() {
    let big = vec![0u8; MAX_QUOTE_SIZE + 1];
    assert!(matches!(
        Quote::parse(&big),
        Err(Error::QuoteTooLarge { .. })
    ));
    let big = vec![b' '; MAX_COLLATERAL_SIZE + 1];
    assert!(matches!(
        Collateral::from_bundle_json(&big),
        Err(Error::CollateralTooLarge { .. })
    ));
    let big = vec![b'A'; pki::MAX_CHAIN_SIZE + 1];
    assert!(matches!(
        pki::split_chain(&big, "chain"),
        Err(Error::CollateralTooLarge { .. })
    ));
}

#[test]
fn unknown_versions_and_types_are_explicit_errors() {
    let v = &common::vectors()[0];
    let mut q = v.quote.clone();
    q[0] = 9;
    assert_eq!(Quote::parse(&q), Err(Error::UnsupportedQuoteVersion(9)));
    let mut q = v.quote.clone();
    q[2] = 3;
    assert_eq!(
        Quote::parse(&q),
        Err(Error::UnsupportedAttestationKeyType(3))
    );
    let tdx = common::vectors()
        .into_iter()
        .find(|v| v.name == "phala_tdx_v4")
        .unwrap();
    let mut q = tdx.quote.clone();
    q[4] = 0x82;
    assert_eq!(Quote::parse(&q), Err(Error::UnsupportedTeeType(0x82)));
}

fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let p = e.unwrap().path();
            (p.display().to_string(), std::fs::read(&p).unwrap())
        })
        .collect();
    out.sort();
    assert!(!out.is_empty());
    out
}

#[test]
fn fuzz_corpus_replays_without_panic() {
    let verifier = Verifier::new(TrustAnchors::intel());
    let collateral = common::vectors()[0].collateral.clone();
    for (name, data) in corpus("quote") {
        if let Ok(q) = Quote::parse(&data) {
            assert_eq!(q.len + q.trailing_len, data.len(), "{name}");
        }
        let _ = verifier.verify(&data, &collateral, 1_750_334_171);
    }
    for (_, data) in corpus("collateral") {
        let _ = Collateral::from_bundle_json(&data);
        if let Ok(text) = std::str::from_utf8(&data) {
            let _ = TcbInfo::parse(text);
            let _ = QeIdentity::parse(text);
        }
        let _ = pki::split_chain(&data, "corpus");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..6000)) {
        let _ = Quote::parse(&data);
        let _ = Collateral::from_bundle_json(&data);
        let _ = pki::split_chain(&data, "random");
    }

    #[test]
    fn random_edits_of_a_real_quote_never_panic(at in 0usize..4600, byte in any::<u8>(), cut in 0usize..5000) {
        static QUOTE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        let mut q = QUOTE.get_or_init(|| common::vectors()[0].quote.clone()).clone();
        let at = at % q.len();
        q[at] = byte;
        q.truncate(cut.max(1));
        let _ = Quote::parse(&q);
    }
}
