//! JWKS (RFC 7517) and compact ES256 JWS (RFC 7515) verification.

use crate::Claims;
use base64::Engine as _;
use serde::Deserialize;
use std::collections::BTreeMap;

/// Largest token accepted.
pub const MAX_TOKEN: usize = 64 * 1024;

/// Why a token or a key set is refused. Untrusted text in messages is truncated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EarError {
    /// Longer than [`MAX_TOKEN`].
    #[error("attestation token is too large: {0} bytes")]
    TooLarge(usize),
    /// Not three base64url parts separated by dots.
    #[error("attestation token is not a compact JWS")]
    NotCompactJws,
    /// A part that is not base64url without padding.
    #[error("attestation token is not base64url")]
    NotBase64,
    /// A protected header that is not a JSON object with `alg`.
    #[error("attestation token header is malformed")]
    BadHeader,
    /// A header naming another algorithm than ES256.
    #[error("attestation token algorithm is {0:?}, not ES256")]
    NotEs256(String),
    /// A signed payload that is not EAR claims.
    #[error("attestation token claims are malformed: {0}")]
    BadClaims(String),
    /// A JWKS document that is not a JWK set.
    #[error("JWKS is not a JWK set")]
    NotJwkSet,
    /// An EC P-256 JWK whose coordinates are not a point on the curve.
    #[error("JWK {0:?} is not a P-256 public key")]
    BadJwk(String),
    /// The token's `kid` is not in the key set.
    #[error("attestation token signed by unknown key {0:?}")]
    UnknownSigningKey(String),
    /// The signature does not verify.
    #[error("attestation token signature is invalid")]
    BadSignature,
}

/// A JWK set of ES256 public keys, by `kid` (each kept as the uncompressed point `ring`
/// verifies under, checked on the curve when parsed).
#[derive(Debug, Clone, Default)]
pub struct Jwks(BTreeMap<String, [u8; 65]>);

fn b64(s: &str) -> Result<Vec<u8>, EarError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| EarError::NotBase64)
}

impl Jwks {
    /// Parses a JWKS document, keeping the EC P-256 keys that have a `kid`.
    pub fn from_json(text: &str) -> Result<Self, EarError> {
        #[derive(Deserialize)]
        struct Set {
            keys: Vec<Jwk>,
        }
        #[derive(Deserialize)]
        struct Jwk {
            kty: String,
            crv: Option<String>,
            kid: Option<String>,
            x: Option<String>,
            y: Option<String>,
        }
        let set: Set = serde_json::from_str(text).map_err(|_| EarError::NotJwkSet)?;
        let mut out = BTreeMap::new();
        for k in set.keys {
            let (Some(kid), Some(x), Some(y)) = (k.kid, k.x, k.y) else {
                continue;
            };
            if k.kty != "EC" || k.crv.as_deref() != Some("P-256") {
                continue;
            }
            let bad = || EarError::BadJwk(kid.chars().take(64).collect());
            let (x, y) = (b64(&x)?, b64(&y)?);
            if x.len() != 32 || y.len() != 32 {
                return Err(bad());
            }
            // On the curve, or refused: the same parse every signature check relies on.
            let point =
                phalanx_types::ecdsa::p256_point(&[&[4u8][..], &x, &y].concat()).ok_or_else(bad)?;
            out.insert(kid, point);
        }
        Ok(Self(out))
    }

    /// Whether a key id is in the set.
    pub fn contains(&self, kid: &str) -> bool {
        self.0.contains_key(kid)
    }

    /// How many keys the set holds.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
}

/// Checks a compact JWS: at most [`MAX_TOKEN`] bytes, three parts, `alg` ES256, a `kid`
/// in `jwks`, a valid signature (r ‖ s over `header.payload`); then parses the
/// [`Claims`]. Times, issuer and appraisal are the caller's to judge.
pub fn verify_token(token: &str, jwks: &Jwks) -> Result<Claims, EarError> {
    if token.len() > MAX_TOKEN {
        return Err(EarError::TooLarge(token.len()));
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(EarError::NotCompactJws);
    };
    let header: Header = serde_json::from_slice(&b64(h)?).map_err(|_| EarError::BadHeader)?;
    if header.alg != "ES256" {
        return Err(EarError::NotEs256(header.alg.chars().take(16).collect()));
    }
    let kid = header.kid.unwrap_or_default();
    let key = jwks
        .0
        .get(&kid)
        .ok_or_else(|| EarError::UnknownSigningKey(kid.chars().take(64).collect()))?;
    let sig = b64(s)?;
    let signing_input = token
        .get(..h.len() + 1 + p.len())
        .ok_or(EarError::NotCompactJws)?;
    // `r ‖ s`, 64 bytes, each in [1, n-1]: ring checks all of it.
    if !phalanx_types::ecdsa::verify_p256_point(key, signing_input.as_bytes(), &sig) {
        return Err(EarError::BadSignature);
    }
    serde_json::from_slice(&b64(p)?).map_err(|e| {
        // serde's message names the field and the position, never the value.
        EarError::BadClaims(e.to_string().chars().take(120).collect())
    })
}
