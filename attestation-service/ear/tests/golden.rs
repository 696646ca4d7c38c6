//! The claims' JSON is a wire format: the attestation service signs it, gatekeepers,
//! workers and users parse it. This test pins it on two real quotes (SGX and TDX):
//! the claims built from each verified quote serialize to exactly the committed
//! `tests/golden/*.json`, and that JSON parses back to the same claims. A change here
//! is a change of format; regenerate with `PHALANX_BLESS=1 cargo test -p phalanx-ear`
//! only on purpose.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use phalanx_dcap::policy::{Appraisal, Reason, Verdict};
use phalanx_dcap::{Collateral, TrustAnchors, Verifier};
use phalanx_ear::{
    Claims, EAR_PROFILE, Evidence, Stale, Submodule, TrustRoot, VerifierId, runtime_data_hash,
};
use std::path::PathBuf;

fn vectors() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../dcap/testdata/dcap/phala")
}

fn claims_for(quote: &str, collateral: &str, now: i64) -> Claims {
    let dir = vectors();
    let quote = std::fs::read(dir.join(quote)).unwrap();
    let collateral =
        Collateral::from_bundle_json(&std::fs::read(dir.join(collateral)).unwrap()).unwrap();
    let verified = Verifier::new(TrustAnchors::intel())
        .verify(&quote, &collateral, now)
        .unwrap();
    let verdict = Verdict {
        status: Appraisal::Warning,
        reasons: vec![Reason::TcbNotUpToDate {
            status: verified.status,
        }],
        policy_id: "golden".into(),
        policy_version: 7,
    };
    let tee = verified.tee().as_str().to_owned();
    Claims {
        iss: "https://attestation.example".into(),
        iat: now,
        exp: now + 3600,
        eat_nonce: "bm9uY2U".into(),
        eat_profile: EAR_PROFILE.into(),
        status: Appraisal::Warning,
        verifier_id: VerifierId {
            developer: "phalanx".into(),
            build: "golden".into(),
        },
        trust_root: TrustRoot::Intel,
        submods: [(
            tee,
            Submodule {
                status: Appraisal::Warning,
                evidence: Evidence::from(&verified),
                runtime_data_hash: runtime_data_hash(b"runtime data"),
                policy: verdict,
                stale_collateral: Some(Stale {
                    next_update: now - 10,
                    stale_secs: 10,
                }),
            },
        )]
        .into_iter()
        .collect(),
    }
}

fn golden(name: &str, claims: &Claims) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/golden/{name}.json"));
    let json = serde_json::to_string_pretty(claims).unwrap() + "\n";
    if std::env::var_os("PHALANX_BLESS").is_some() {
        std::fs::write(&path, &json).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap();
    assert_eq!(json, committed, "the claims format of {name} changed");
    let parsed: Claims = serde_json::from_str(&committed).unwrap();
    assert_eq!(&parsed, claims);
}

#[test]
fn sgx_claims_are_pinned() {
    golden(
        "sgx",
        &claims_for("sgx_quote", "sgx_quote_collateral.json", 1_750_334_171),
    );
}

#[test]
fn tdx_claims_are_pinned() {
    golden(
        "tdx",
        &claims_for("tdx_quote", "tdx_quote_collateral.json", 1_750_332_747),
    );
}

#[test]
fn unknown_trust_roots_and_statuses_do_not_parse() {
    let text = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/sgx.json"),
    )
    .unwrap();
    for (from, to) in [
        (
            "\"phalanx.trust_root\": \"intel\"",
            "\"phalanx.trust_root\": \"mine\"",
        ),
        ("\"ear.status\": \"warning\"", "\"ear.status\": \"fine\""),
        ("\"tee\": \"sgx\"", "\"tee\": \"sev\""),
    ] {
        assert!(text.contains(from), "{from}");
        assert!(
            serde_json::from_str::<Claims>(&text.replacen(from, to, 1)).is_err(),
            "{to}"
        );
    }
}
