// The attestation token and JWKS parsers a gatekeeper runs: any text is refused with a
// typed error (or, for a JWKS, parsed), never a panic. Tokens come two ways: the raw
// bytes as a compact JWS (what an unauthenticated caller sends), and the bytes as the
// claims of a token signed by a key the gatekeeper trusts (so the claims and evidence
// parsers behind the signature check are reached too).
// Shared by the fuzz target and the test that replays its corpus.
use phalanx_threshold::Epoch;
use base64::Engine as _;
use phalanx_threshold::derive::KeyId;
use phalanx_release::release::{Jwks, ReleasePolicy, authorize};
use p256::ecdsa::signature::Signer as _;

/// Panics only on a bug.
pub fn check(data: &[u8]) {
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let key_id = KeyId {
        epoch: Epoch(0),
        tenant: "t".into(),
        path: "p".into(),
        purpose: "u".into(),
    };
    let policy = ReleasePolicy {
        trust_roots: vec!["sim".into(), "intel".into()],
        attestation_policies: vec!["app".into()],
        ..ReleasePolicy::default()
    };
    let now = 1_760_000_000;
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Jwks::from_json(text);
        let _ = authorize(text, &Jwks::default(), b"", b"", &key_id, &policy, now);
    }
    // The same bytes as the claims of a validly signed token.
    let Ok(key) = p256::ecdsa::SigningKey::from_slice(&[7u8; 32]) else {
        return;
    };
    let point = key.verifying_key().to_sec1_point(false);
    let (Some(x), Some(y)) = (point.x(), point.y()) else {
        return;
    };
    let jwks = format!(
        r#"{{"keys":[{{"kty":"EC","crv":"P-256","kid":"k","x":"{}","y":"{}"}}]}}"#,
        b64(x),
        b64(y)
    );
    let Ok(jwks) = Jwks::from_json(&jwks) else {
        return;
    };
    let signing_input = format!("{}.{}", b64(br#"{"alg":"ES256","kid":"k"}"#), b64(data));
    let sig: p256::ecdsa::Signature = key.sign(signing_input.as_bytes());
    let token = format!("{signing_input}.{}", b64(&sig.to_bytes()));
    let _ = authorize(&token, &jwks, data, data, &key_id, &policy, now);
}
