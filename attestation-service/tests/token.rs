//! Attestation result tokens checked by an implementation other than the signer's:
//! the JWS is taken apart by hand and its ES256 signature verified with the `p256`
//! crate (the signer uses `ring`), knowing only the JWKS.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use attestation_service::policy::{Policy, appraise};
use attestation_service::token::{Signer, claims, generate_key};
use attestation_service::{TeeType, verify};
use base64::Engine as _;
use p256::ecdsa::signature::Verifier as _;
use phalanx_dcap_sim::{SgxEnclave, SimConfig, SimTee};

const NOW: i64 = 1_760_003_600;

fn unb64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .unwrap()
}

/// Verifies a compact JWS against a JWKS; returns the claims.
fn check(token: &str, jwks: &serde_json::Value) -> Result<serde_json::Value, String> {
    let parts: Vec<&str> = token.split('.').collect();
    let [h, p, s] = parts.as_slice() else {
        return Err("not a JWS".into());
    };
    let header: serde_json::Value = serde_json::from_slice(&unb64(h)).unwrap();
    if header["alg"] != "ES256" {
        return Err("alg".into());
    }
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .ok_or("unknown kid")?;
    let point = [
        vec![4u8],
        unb64(jwk["x"].as_str().unwrap()),
        unb64(jwk["y"].as_str().unwrap()),
    ]
    .concat();
    let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&point).unwrap();
    let sig = p256::ecdsa::Signature::from_slice(&unb64(s)).map_err(|e| e.to_string())?;
    key.verify(format!("{h}.{p}").as_bytes(), &sig)
        .map_err(|e| e.to_string())?;
    Ok(serde_json::from_slice(&unb64(p)).unwrap())
}

#[test]
fn results_verify_with_only_the_jwks_and_carry_the_ear_claims() {
    let sim = SimTee::generate(SimConfig::up_to_date(NOW - 3600)).unwrap();
    let enclave = SgxEnclave {
        mr_enclave: [0x42; 32],
        ..SgxEnclave::default()
    };
    let q = sim.sgx_quote(&enclave, &[1; 64]).unwrap();
    let v = verify(
        &q,
        &sim.collateral(TeeType::Sgx).unwrap(),
        NOW,
        &sim.trust_anchors(),
    )
    .unwrap();
    let policy = Policy::from_toml(&format!(
        "id = \"p\"\nversion = 3\n[[sgx]]\nmr_enclave = \"{}\"\n",
        hex::encode([0x42; 32])
    ))
    .unwrap();
    let verdict = appraise(&policy, &v, NOW);

    let mut signer = Signer::new(&generate_key().unwrap()).unwrap();
    let token = signer
        .sign(&claims(
            "https://as.example",
            NOW,
            600,
            b"nonce",
            b"runtime",
            &v,
            &verdict,
        ))
        .unwrap();
    let c = check(&token, &signer.jwks(NOW)).unwrap();
    assert_eq!(c["iss"], "https://as.example");
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 600);
    assert_eq!(
        c["eat_nonce"],
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b"nonce")
    );
    assert_eq!(c["ear.status"], "affirming");
    let sgx = &c["submods"]["sgx"];
    assert_eq!(
        sgx["phalanx.evidence"]["mr_enclave"],
        hex::encode([0x42; 32])
    );
    assert_eq!(sgx["phalanx.evidence"]["status"], "UpToDate");
    assert_eq!(sgx["phalanx.policy"]["policy_version"], 3);

    // Tampering with the payload breaks the signature.
    let parts: Vec<&str> = token.split('.').collect();
    let forged_payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(
        String::from_utf8(unb64(parts[1]))
            .unwrap()
            .replace("affirming", "warning"),
    );
    assert!(
        check(
            &format!("{}.{}.{}", parts[0], forged_payload, parts[2]),
            &signer.jwks(NOW)
        )
        .is_err()
    );

    // Rotation: the old key stays in the JWKS until its tokens expire.
    let old_kid = signer.kid().to_string();
    signer.rotate(&generate_key().unwrap(), NOW + 600).unwrap();
    assert_ne!(signer.kid(), old_kid);
    assert!(check(&token, &signer.jwks(NOW + 600)).is_ok());
    assert!(check(&token, &signer.jwks(NOW + 601)).is_err());
    let fresh = signer
        .sign(&claims(
            "https://as.example",
            NOW,
            600,
            b"n",
            b"r",
            &v,
            &verdict,
        ))
        .unwrap();
    assert!(check(&fresh, &signer.jwks(NOW + 601)).is_ok());
    assert!(Signer::new(b"not a key").is_err());
    assert!(!format!("{signer:?}").contains("pair"));
}
