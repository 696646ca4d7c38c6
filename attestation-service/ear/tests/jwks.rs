//! A JWKS is remote input: its EC keys are kept only when they are P-256 points, every
//! other defect refuses the set by name, and keys of other types are skipped.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::Engine as _;
use phalanx_ear::{EarError, Jwks};

/// The P-256 generator's coordinates: a point certainly on the curve.
const GX: &str = "6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296";
const GY: &str = "4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn set(x: &str, y: &str) -> String {
    serde_json::json!({"keys": [
        {"kty": "EC", "crv": "P-256", "kid": "k1", "x": x, "y": y},
        {"kty": "RSA", "kid": "other", "n": "AQAB", "e": "AQAB"},
    ]})
    .to_string()
}

#[test]
fn curve_points_are_kept_and_every_defect_refuses_the_set() {
    let (x, y) = (hex::decode(GX).unwrap(), hex::decode(GY).unwrap());
    let jwks = Jwks::from_json(&set(&b64(&x), &b64(&y))).unwrap();
    assert!(jwks.contains("k1"));
    assert_eq!(jwks.len(), 1, "the RSA key is skipped");

    let mut flipped = y.clone();
    flipped[31] ^= 1;
    assert!(matches!(
        Jwks::from_json(&set(&b64(&x), &b64(&flipped))),
        Err(EarError::BadJwk(kid)) if kid == "k1"
    ));
    assert!(matches!(
        Jwks::from_json(&set(&b64(&x[..31]), &b64(&y))),
        Err(EarError::BadJwk(_))
    ));
    assert!(matches!(
        Jwks::from_json(&set(&b64(&[x.clone(), vec![0]].concat()), &b64(&y))),
        Err(EarError::BadJwk(_))
    ));
    assert!(matches!(
        Jwks::from_json(&set("not*base64", &b64(&y))),
        Err(EarError::NotBase64)
    ));
    assert!(matches!(
        Jwks::from_json(r#"{"keys": "#),
        Err(EarError::NotJwkSet)
    ));
}
