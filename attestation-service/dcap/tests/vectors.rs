//! Every row of `vectors.tsv` gives its expected result.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use phalanx_dcap::{Error, TrustAnchors, Verifier, verify};

fn class_of(e: &Error) -> &'static str {
    match e {
        Error::TcbLevelNotFound => "no-tcb-level",
        Error::CrlNotValid { .. }
        | Error::CollateralNotValid { .. }
        | Error::CertificateNotValid { .. } => "expired",
        _ => "other",
    }
}

#[test]
fn every_vector_gives_its_expected_result() {
    let vectors = common::vectors();
    assert!(vectors.len() >= 10);
    let warm = Verifier::new(TrustAnchors::intel());
    for v in &vectors {
        let cold = verify(&v.quote, &v.collateral, v.now, &TrustAnchors::intel());
        let warm1 = warm.verify(&v.quote, &v.collateral, v.now);
        let warm2 = warm.verify(&v.quote, &v.collateral, v.now);
        assert_eq!(cold, warm1, "{}: cold and warm differ", v.name);
        assert_eq!(warm1, warm2, "{}: warm is not stable", v.name);
        match v.expected.strip_prefix("ERROR:") {
            Some(class) => {
                let err = cold.expect_err(&v.name);
                if class != "any" {
                    assert_eq!(class_of(&err), class, "{}: {err:?}", v.name);
                }
            }
            None => {
                let ok = cold.unwrap_or_else(|e| panic!("{}: {e:?}", v.name));
                assert_eq!(ok.status.as_str(), v.expected, "{}", v.name);
                assert_eq!(ok.advisory_ids, v.advisories, "{}", v.name);
                assert_eq!(ok.debug, v.debug, "{}", v.name);
            }
        }
    }
}

#[test]
fn mobilecoin_collateral_has_no_common_window() {
    let v = common::vectors()
        .into_iter()
        .find(|v| v.name == "mobilecoin_sgx_v3_crl_expired")
        .unwrap();
    // Sweep across 2023 by the day: some piece is always outside its window.
    for day in 0..365 {
        let now = 1_672_531_200 + day * 86_400;
        let err = verify(&v.quote, &v.collateral, now, &TrustAnchors::intel()).unwrap_err();
        assert_eq!(class_of(&err), "expired", "day {day}: {err:?}");
    }
}

#[test]
fn bundle_and_pccs_forms_agree() {
    let vs = common::vectors();
    let a = vs
        .iter()
        .find(|v| v.name == "google_tdx_v4_spr_e4_bundle")
        .unwrap();
    let b = vs
        .iter()
        .find(|v| v.name == "google_tdx_v4_spr_e4_pccs")
        .unwrap();
    assert_eq!(a.collateral.tcb_info, b.collateral.tcb_info);
    assert_eq!(
        a.collateral.tcb_info_signature,
        b.collateral.tcb_info_signature
    );
    assert_eq!(a.collateral.qe_identity, b.collateral.qe_identity);
    assert_eq!(a.collateral.pck_crl, b.collateral.pck_crl);
    assert_eq!(a.collateral.root_ca_crl, b.collateral.root_ca_crl);
}

/// Intel's root exists in two issues (2033, 2049) with one key: a chain ending in either
/// is trusted, because chains are checked by key and signature, never by bytes.
#[test]
fn either_issue_of_the_intel_root_is_accepted() {
    let v = common::vectors()
        .into_iter()
        .find(|v| v.name == "phala_sgx_v3")
        .unwrap();
    let old_root = common::read("fortanix/root_SGX_CA_der.cert");
    let old_pem = pem::encode(&pem::Pem::new("CERTIFICATE", old_root.clone()));
    let replace_root = |chain: &[u8]| {
        let mut blocks = pem::parse_many(chain).unwrap();
        assert_ne!(blocks.last().unwrap().contents(), old_root.as_slice());
        blocks.pop();
        let mut out = pem::encode_many(&blocks);
        out.push_str(&old_pem);
        out.into_bytes()
    };
    let mut c = v.collateral.clone();
    c.tcb_info_issuer_chain = replace_root(&c.tcb_info_issuer_chain);
    c.qe_identity_issuer_chain = c.tcb_info_issuer_chain.clone();
    c.pck_crl_issuer_chain = replace_root(&c.pck_crl_issuer_chain);
    let expected = verify(&v.quote, &v.collateral, v.now, &TrustAnchors::intel()).unwrap();
    assert_eq!(
        verify(&v.quote, &c, v.now, &TrustAnchors::intel())
            .unwrap()
            .status,
        expected.status
    );
    // The 2033 issue expires in 2033: after that the chain ending in it is refused.
    let err = verify(&v.quote, &c, 2_000_000_000, &TrustAnchors::intel()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::CertificateNotValid { .. }
                | Error::CrlNotValid { .. }
                | Error::CollateralNotValid { .. }
        ),
        "{err:?}"
    );
}
