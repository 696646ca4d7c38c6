//! Negative cases built from the real vectors: each damage is rejected, with the error
//! of the step that must catch it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::Vector;
use phalanx_dcap::error::{CertRole, CrlRole, Doc};
use phalanx_dcap::quote::{ENCLAVE_REPORT_SIZE, HEADER_SIZE};
use phalanx_dcap::{Collateral, Error, Quote, TrustAnchors, Verifier, verify};

fn vector(name: &str) -> Vector {
    common::vectors()
        .into_iter()
        .find(|v| v.name == name)
        .unwrap()
}

fn check(q: &[u8], c: &Collateral, now: i64) -> Result<phalanx_dcap::VerifiedQuote, Error> {
    let cold = verify(q, c, now, &TrustAnchors::intel());
    // The warm path must reach the same verdict, also after a good verification
    // warmed its caches.
    let warm = Verifier::new(TrustAnchors::intel());
    let _ = warm.verify(
        &common::vectors()[0].quote,
        &common::vectors()[0].collateral,
        common::vectors()[0].now,
    );
    assert_eq!(cold, warm.verify(q, c, now));
    cold
}

/// Offsets of the signed regions of a v3/v4 quote.
struct Layout {
    body: std::ops::Range<usize>,
    attestation_key: std::ops::Range<usize>,
    qe_report: std::ops::Range<usize>,
    qe_auth: std::ops::Range<usize>,
}

fn layout(q: &[u8]) -> Layout {
    let parsed = Quote::parse(q).unwrap();
    let base = q.as_ptr() as usize;
    let off = |s: &[u8]| s.as_ptr() as usize - base;
    let signed_len = parsed.signed.len();
    let key_start = signed_len + 4 + 64;
    let qe = off(parsed.signature.qe_report_raw);
    let auth = off(parsed.signature.qe_auth_data);
    Layout {
        body: HEADER_SIZE..signed_len,
        attestation_key: key_start..key_start + 64,
        qe_report: qe..qe + ENCLAVE_REPORT_SIZE,
        qe_auth: auth..auth + parsed.signature.qe_auth_data.len(),
    }
}

fn flipped(q: &[u8], at: usize) -> Vec<u8> {
    let mut q = q.to_vec();
    q[at] ^= 0x01;
    q
}

#[test]
fn bit_flips_in_signed_quote_regions() {
    for name in ["phala_sgx_v3", "phala_tdx_v4"] {
        let v = vector(name);
        let l = layout(&v.quote);
        // Header fields that do not change how the quote parses: qe_svn, pce_svn, user_data.
        for at in [8, 10, 28, 47] {
            assert_eq!(
                check(&flipped(&v.quote, at), &v.collateral, v.now),
                Err(Error::QuoteSignatureInvalid),
                "{name} header byte {at}"
            );
        }
        for at in [l.body.start, l.body.start + 100, l.body.end - 1] {
            assert_eq!(
                check(&flipped(&v.quote, at), &v.collateral, v.now),
                Err(Error::QuoteSignatureInvalid),
                "{name} body byte {at}"
            );
        }
        for at in [
            l.qe_report.start,
            l.qe_report.start + 200,
            l.qe_report.end - 1,
        ] {
            assert_eq!(
                check(&flipped(&v.quote, at), &v.collateral, v.now),
                Err(Error::QeReportSignatureInvalid),
                "{name} QE report byte {at}"
            );
        }
        for at in [l.qe_auth.start, l.qe_auth.end - 1] {
            assert_eq!(
                check(&flipped(&v.quote, at), &v.collateral, v.now),
                Err(Error::QeReportDataMismatch),
                "{name} QE auth byte {at}"
            );
        }
        for at in [l.attestation_key.start, l.attestation_key.end - 1] {
            assert_eq!(
                check(&flipped(&v.quote, at), &v.collateral, v.now),
                Err(Error::QeReportDataMismatch),
                "{name} key byte {at}"
            );
        }
        // The quote signature itself.
        let sig = l.attestation_key.start - 64;
        assert_eq!(
            check(&flipped(&v.quote, sig + 5), &v.collateral, v.now),
            Err(Error::QuoteSignatureInvalid)
        );
    }
}

#[test]
fn bit_flips_in_signed_collateral() {
    let v = vector("phala_tdx_v4");
    let mut c = v.collateral.clone();
    c.tcb_info = c
        .tcb_info
        .replacen("\"pceId\":\"0000\"", "\"pceId\":\"0001\"", 1);
    assert_ne!(c.tcb_info, v.collateral.tcb_info);
    assert_eq!(
        check(&v.quote, &c, v.now),
        Err(Error::CollateralSignatureInvalid { doc: Doc::TcbInfo })
    );

    let mut c = v.collateral.clone();
    c.qe_identity = c
        .qe_identity
        .replacen("\"isvprodid\":2", "\"isvprodid\":3", 1);
    assert_ne!(c.qe_identity, v.collateral.qe_identity);
    assert_eq!(
        check(&v.quote, &c, v.now),
        Err(Error::CollateralSignatureInvalid {
            doc: Doc::QeIdentity
        })
    );

    for (i, which) in ["tcb", "qe"].iter().enumerate() {
        let mut c = v.collateral.clone();
        let sig = if i == 0 {
            &mut c.tcb_info_signature
        } else {
            &mut c.qe_identity_signature
        };
        sig[10] ^= 0x80;
        assert!(
            matches!(
                check(&v.quote, &c, v.now),
                Err(Error::CollateralSignatureInvalid { .. })
            ),
            "{which}"
        );
    }

    // Each CRL: flip the last byte (inside its signature).
    let mut c = v.collateral.clone();
    *c.root_ca_crl.last_mut().unwrap() ^= 1;
    assert_eq!(
        check(&v.quote, &c, v.now),
        Err(Error::CrlSignatureInvalid {
            role: CrlRole::Root
        })
    );
    let mut c = v.collateral.clone();
    *c.pck_crl.last_mut().unwrap() ^= 1;
    assert_eq!(
        check(&v.quote, &c, v.now),
        Err(Error::CrlSignatureInvalid { role: CrlRole::Pck })
    );
}

/// Flips the last byte (inside the signature) of certificate `index` of a PEM chain.
fn damage_pem_chain(pem_text: &[u8], index: usize) -> Vec<u8> {
    let mut blocks = pem::parse_many(pem_text).unwrap();
    let mut der = blocks[index].contents().to_vec();
    *der.last_mut().unwrap() ^= 1;
    blocks[index] = pem::Pem::new("CERTIFICATE", der);
    pem::encode_many(&blocks).into_bytes()
}

#[test]
fn bit_flips_in_every_certificate() {
    let v = vector("phala_sgx_v3");
    let parsed = Quote::parse(&v.quote).unwrap();
    let chain = parsed.signature.pck_cert_chain.to_vec();
    let chain_at = v
        .quote
        .windows(chain.len())
        .position(|w| w == chain)
        .unwrap();
    // PCK chain in the quote: leaf, intermediate, root. The cert data size changes
    // with re-encoding, so rebuild the quote's tail.
    for (i, role) in [CertRole::PckLeaf, CertRole::PckIntermediate, CertRole::Root]
        .into_iter()
        .enumerate()
    {
        let new_chain = damage_pem_chain(&chain, i);
        let mut q = v.quote[..chain_at].to_vec();
        // Patch the certification data size (u32 just before the chain) and the
        // signature data length (u32 right after header and body).
        let size_at = chain_at - 4;
        q[size_at..size_at + 4].copy_from_slice(&(new_chain.len() as u32).to_le_bytes());
        let sig_len_at = parsed.signed.len();
        let old = u32::from_le_bytes(q[sig_len_at..sig_len_at + 4].try_into().unwrap());
        let new = old as usize - chain.len() + new_chain.len();
        q[sig_len_at..sig_len_at + 4].copy_from_slice(&(new as u32).to_le_bytes());
        q.extend_from_slice(&new_chain);
        assert_eq!(
            check(&q, &v.collateral, v.now),
            Err(Error::CertificateSignatureInvalid { role }),
            "PCK chain cert {i}"
        );
    }
    // Collateral chains: TCB signing cert and root, for each of the three chains.
    for (i, role) in [CertRole::TcbSigning, CertRole::Root]
        .into_iter()
        .enumerate()
    {
        let mut c = v.collateral.clone();
        c.tcb_info_issuer_chain = damage_pem_chain(&c.tcb_info_issuer_chain, i);
        assert_eq!(
            check(&v.quote, &c, v.now),
            Err(Error::CertificateSignatureInvalid { role }),
            "TCB Info chain {i}"
        );
        let mut c = v.collateral.clone();
        c.qe_identity_issuer_chain = damage_pem_chain(&c.qe_identity_issuer_chain, i);
        assert_eq!(
            check(&v.quote, &c, v.now),
            Err(Error::CertificateSignatureInvalid { role }),
            "QE Identity chain {i}"
        );
    }
    for (i, role) in [CertRole::PckIntermediate, CertRole::Root]
        .into_iter()
        .enumerate()
    {
        let mut c = v.collateral.clone();
        c.pck_crl_issuer_chain = damage_pem_chain(&c.pck_crl_issuer_chain, i);
        assert_eq!(
            check(&v.quote, &c, v.now),
            Err(Error::CertificateSignatureInvalid { role }),
            "PCK CRL chain {i}"
        );
    }
}

fn is_time_error(e: &Error) -> bool {
    matches!(
        e,
        Error::CrlNotValid { .. }
            | Error::CollateralNotValid { .. }
            | Error::CertificateNotValid { .. }
    )
}

#[test]
fn one_second_outside_the_validity_window() {
    for name in ["phala_sgx_v3", "phala_tdx_v4", "phala_near_tdx_v4"] {
        let v = vector(name);
        let ok = check(&v.quote, &v.collateral, v.now).unwrap();
        let (from, until) = (ok.collateral_valid_from, ok.collateral_expiry);
        assert!(from <= v.now && v.now <= until);
        assert!(
            check(&v.quote, &v.collateral, from).is_ok(),
            "{name} at the first valid second"
        );
        assert!(
            check(&v.quote, &v.collateral, until).is_ok(),
            "{name} at the last valid second"
        );
        let before = check(&v.quote, &v.collateral, from - 1).unwrap_err();
        let after = check(&v.quote, &v.collateral, until + 1).unwrap_err();
        assert!(is_time_error(&before), "{name}: {before:?}");
        assert!(is_time_error(&after), "{name}: {after:?}");
    }
    // Each signed document's own window, named in the error.
    let v = vector("phala_tdx_v4");
    let vc =
        phalanx_dcap::verify::VerifiedCollateral::verify(&v.collateral, &TrustAnchors::intel())
            .unwrap();
    let next = vc.tcb_info.next_update.min(vc.qe_identity.next_update);
    let err = check(&v.quote, &v.collateral, next + 1).unwrap_err();
    assert!(is_time_error(&err), "{err:?}");
}

#[test]
fn collateral_of_another_fmspc() {
    let q = vector("phala_tdx_v4");
    let other = vector("phala_near_tdx_v4");
    let err = check(&q.quote, &other.collateral, other.now).unwrap_err();
    assert!(matches!(err, Error::FmspcMismatch { .. }), "{err:?}");
}

#[test]
fn collateral_of_the_other_tee() {
    let sgx = vector("phala_sgx_v3");
    let tdx = vector("phala_tdx_v4");
    let now = sgx.now.min(tdx.now) + 600;
    assert!(check(&sgx.quote, &sgx.collateral, now).is_ok());
    // The TD_QE identity for an SGX quote.
    let mut c = sgx.collateral.clone();
    c.qe_identity = tdx.collateral.qe_identity.clone();
    c.qe_identity_signature = tdx.collateral.qe_identity_signature.clone();
    c.qe_identity_issuer_chain = tdx.collateral.qe_identity_issuer_chain.clone();
    assert!(matches!(
        check(&sgx.quote, &c, now),
        Err(Error::CollateralTeeMismatch {
            doc: Doc::QeIdentity,
            ..
        })
    ));
    // The QE identity for a TDX quote.
    let mut c = tdx.collateral.clone();
    c.qe_identity = sgx.collateral.qe_identity.clone();
    c.qe_identity_signature = sgx.collateral.qe_identity_signature.clone();
    assert!(matches!(
        check(&tdx.quote, &c, now),
        Err(Error::CollateralTeeMismatch {
            doc: Doc::QeIdentity,
            ..
        })
    ));
    // The SGX TCB Info for a TDX quote.
    let mut c = tdx.collateral.clone();
    c.tcb_info = sgx.collateral.tcb_info.clone();
    c.tcb_info_signature = sgx.collateral.tcb_info_signature.clone();
    assert!(matches!(
        check(&tdx.quote, &c, now),
        Err(Error::CollateralTeeMismatch {
            doc: Doc::TcbInfo,
            ..
        })
    ));
}

#[test]
fn intel_synthetic_vectors_need_their_test_root() {
    let dir = "intel-synthetic/tdx";
    let quote = common::read(&format!("{dir}/quote.dat"));
    let c = Collateral::from_bundle_json(&common::read(&format!(
        "{dir}/collateral_synthetic_tdx.dcapqvl.json"
    )))
    .unwrap();
    let now = 1_640_995_200; // 2022-01-01, inside the synthetic windows
    let err = verify(&quote, &c, now, &TrustAnchors::intel()).unwrap_err();
    assert!(matches!(err, Error::UntrustedRoot { .. }), "{err:?}");
    let test_root =
        TrustAnchors::from_pem(&common::read(&format!("{dir}/trustedRootCaCert.pem"))).unwrap();
    match verify(&quote, &c, now, &test_root) {
        Ok(v) => assert_eq!(v.tee(), phalanx_dcap::TeeType::Tdx),
        Err(e) => assert!(!matches!(e, Error::UntrustedRoot { .. }), "{e:?}"),
    }
    // The SGX synthetic quote carries certification data type 1 (PPID), not a chain.
    let sgx = common::read("intel-synthetic/quote.dat");
    let err = Quote::parse(&sgx).unwrap_err();
    assert_eq!(
        err,
        Error::UnexpectedCertificationDataType {
            expected: 5,
            found: 1
        }
    );
}
