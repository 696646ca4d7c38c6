//! ECDSA P-256 / SHA-256 verification (feature `p256`), defined once for every verifier
//! of public signatures in Phalanx: registry blocks and transactions, attestation tokens
//! (ES256), gatekeepers' signed tree heads, workers' statements. `p256` parses and
//! decompresses keys, `ring` verifies (about five times faster here than `p256`'s own
//! verification). Everything verified here is public, so nothing secret meets
//! variable-time code.

/// ECDSA P-256 / SHA-256 (`r ‖ s`, 64 bytes) under a SEC1 key (compressed or not).
/// Decompressing a key costs a field square root, a fifth of a verification; the same
/// few keys sign most of a chain (the authority every block), so decompressed keys are
/// remembered per thread (public data; at most [`POINT_CACHE`] of them).
pub fn verify_p256(key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    p256_point(key).is_some_and(|point| verify_p256_point(&point, message, signature))
}

/// [`verify_p256`] under a key already decompressed by [`p256_point`] (for callers that
/// tell a malformed key from a bad signature).
pub fn verify_p256_point(point: &[u8; 65], message: &[u8], signature: &[u8]) -> bool {
    ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, &point[..])
        .verify(message, signature)
        .is_ok()
}

/// Decompressed keys remembered per thread by [`p256_point`].
pub const POINT_CACHE: usize = 1024;

/// A SEC1 P-256 key (compressed or not) as the uncompressed point `ring` takes; `None`
/// when it is not a point of the curve. Compressed keys are decompressed once per thread.
pub fn p256_point(key: &[u8]) -> Option<[u8; 65]> {
    use p256::elliptic_curve::sec1::ToSec1Point as _;
    use std::cell::RefCell;
    use std::collections::HashMap;
    thread_local! {
        static POINTS: RefCell<HashMap<[u8; 33], [u8; 65]>> = RefCell::new(HashMap::new());
    }
    let compressed: Option<[u8; 33]> = key.try_into().ok();
    if let Some(c) = compressed
        && let Some(p) = POINTS.with(|m| m.borrow().get(&c).copied())
    {
        return Some(p);
    }
    let point: [u8; 65] = p256::PublicKey::from_sec1_bytes(key)
        .ok()?
        .to_sec1_point(false)
        .as_bytes()
        .try_into()
        .ok()?;
    if let Some(c) = compressed {
        POINTS.with(|m| {
            let mut m = m.borrow_mut();
            if m.len() >= POINT_CACHE {
                m.clear();
            }
            m.insert(c, point);
        });
    }
    Some(point)
}
