//! Attestation results as JWTs signed with ES256 (RFC 7515/7519, ECDSA P-256 SHA-256),
//! claims shaped after the IETF RATS EAR (EAT Attestation Result,
//! draft-ietf-rats-ear): anyone holding the JWKS ([`Signer::jwks`]) can check a result
//! with any JWT library.
//!
//! Claims ([`Claims`]): `iss`; `iat`, `exp` (unix seconds); `eat_nonce` (the nonce the
//! evidence was bound to, base64url); `ear.status` (`affirming` / `warning` /
//! `contraindicated`, from the policy verdict); `ear.verifier_id`; `submods` with one
//! entry per TEE (`sgx` or `tdx`) carrying the measurements, TCB status, advisories,
//! FMSPC, TCB date, report data, the runtime-data hash, the policy id and version and
//! every policy reason.
//!
//! Keys: [`Signer`] holds the active key and retired public keys; each has a `kid`
//! (base64url SHA-256 of its uncompressed point). Retired keys stay in the JWKS until
//! the tokens they signed expire. Signing uses `ring` with its own RNG.

use crate::policy::Verdict;
use crate::verify::VerifiedQuote;
use base64::Engine as _;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde::Serialize;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// What can go wrong issuing tokens.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The key material is not a P-256 PKCS#8 key.
    #[error("invalid signing key")]
    InvalidKey,
    /// Signing failed.
    #[error("signing failed")]
    Signing,
}

/// One TEE's appraisal in the result.
#[derive(Debug, Clone, Serialize)]
pub struct Submodule<'a> {
    /// `ear.status` of this TEE.
    #[serde(rename = "ear.status")]
    pub status: crate::policy::Appraisal,
    /// The verified facts (measurements, TCB status, advisories, FMSPC, TCB date, …).
    #[serde(rename = "phalanx.evidence")]
    pub evidence: &'a VerifiedQuote,
    /// SHA-256 of the runtime data, base64url.
    #[serde(rename = "phalanx.runtime_data_hash")]
    pub runtime_data_hash: String,
    /// The policy verdict: id, version, reasons.
    #[serde(rename = "phalanx.policy")]
    pub policy: &'a Verdict,
    /// Set when the quote was verified with collateral past its `nextUpdate` (the
    /// service's `serve_stale` knob); the status is then at best `warning`.
    #[serde(
        rename = "phalanx.stale_collateral",
        skip_serializing_if = "Option::is_none"
    )]
    pub stale_collateral: Option<Stale>,
}

/// The warning carried by a result verified with collateral past its `nextUpdate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Stale {
    /// When the collateral expired (unix seconds).
    pub next_update: i64,
    /// How long before the verification, in seconds.
    pub stale_secs: i64,
}

/// The JWT claims.
#[derive(Debug, Clone, Serialize)]
pub struct Claims<'a> {
    /// Issuer.
    pub iss: &'a str,
    /// Issued at.
    pub iat: i64,
    /// Expiry.
    pub exp: i64,
    /// The nonce the evidence was bound to (base64url).
    pub eat_nonce: String,
    /// EAR profile.
    pub eat_profile: &'static str,
    /// Overall status.
    #[serde(rename = "ear.status")]
    pub status: crate::policy::Appraisal,
    /// Verifier identity.
    #[serde(rename = "ear.verifier_id")]
    pub verifier_id: VerifierId,
    /// Which root the evidence chained to: `intel`, `sim` or `file` (relying
    /// parties in production refuse anything but `intel`).
    #[serde(rename = "phalanx.trust_root")]
    pub trust_root: &'static str,
    /// One submodule per TEE, keyed `sgx` or `tdx`.
    pub submods: std::collections::BTreeMap<&'static str, Submodule<'a>>,
}

/// `ear.verifier_id`.
#[derive(Debug, Clone, Serialize)]
pub struct VerifierId {
    /// Who built the verifier.
    pub developer: &'static str,
    /// Its version.
    pub build: &'static str,
}

/// The EAR profile identifier this service emits.
pub const EAR_PROFILE: &str = "tag:phalanx,2026:ear/v1";

struct Key {
    pair: EcdsaKeyPair,
    kid: String,
}

/// A retired public key, kept in the JWKS until `until`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RetiredKey {
    /// Its key id.
    pub kid: String,
    /// The uncompressed SEC1 point, hex.
    #[serde(with = "hex::serde")]
    pub point: Vec<u8>,
    /// The latest `exp` of a token it signed.
    pub until: i64,
}

/// The result-signing keys. Redacted in `Debug`.
pub struct Signer {
    active: Key,
    retired: Vec<RetiredKey>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("kid", &self.active.kid)
            .finish_non_exhaustive()
    }
}

fn kid_of(point: &[u8]) -> String {
    b64(ring::digest::digest(&ring::digest::SHA256, point).as_ref())
}

fn load(pkcs8: &[u8]) -> Result<Key, TokenError> {
    let pair = EcdsaKeyPair::from_pkcs8(
        &ECDSA_P256_SHA256_FIXED_SIGNING,
        pkcs8,
        &ring::rand::SystemRandom::new(),
    )
    .map_err(|_| TokenError::InvalidKey)?;
    let kid = kid_of(pair.public_key().as_ref());
    Ok(Key { pair, kid })
}

/// A fresh PKCS#8 P-256 key (to be persisted sealed by the caller).
pub fn generate_key() -> Result<zeroize::Zeroizing<Vec<u8>>, TokenError> {
    EcdsaKeyPair::generate_pkcs8(
        &ECDSA_P256_SHA256_FIXED_SIGNING,
        &ring::rand::SystemRandom::new(),
    )
    .map(|d| zeroize::Zeroizing::new(d.as_ref().to_vec()))
    .map_err(|_| TokenError::InvalidKey)
}

impl Signer {
    /// A signer with `pkcs8` as its active key.
    pub fn new(pkcs8: &[u8]) -> Result<Self, TokenError> {
        Ok(Self {
            active: load(pkcs8)?,
            retired: Vec::new(),
        })
    }

    /// A signer restored from storage: the active key and the retired public keys.
    pub fn restore(pkcs8: &[u8], retired: Vec<RetiredKey>) -> Result<Self, TokenError> {
        Ok(Self {
            active: load(pkcs8)?,
            retired,
        })
    }

    /// The retired keys (to persist them).
    pub fn retired(&self) -> &[RetiredKey] {
        &self.retired
    }

    /// Forgets retired keys whose tokens have all expired by `now`.
    pub fn prune(&mut self, now: i64) {
        self.retired.retain(|r| r.until >= now);
    }

    /// The active key's public point (uncompressed SEC1).
    pub fn public_point(&self) -> &[u8] {
        self.active.pair.public_key().as_ref()
    }

    /// The active key's id.
    pub fn kid(&self) -> &str {
        &self.active.kid
    }

    /// Makes `pkcs8` the active key; the old one stays in the JWKS until
    /// `old_tokens_expire` (the latest `exp` it signed).
    pub fn rotate(&mut self, pkcs8: &[u8], old_tokens_expire: i64) -> Result<(), TokenError> {
        let new = load(pkcs8)?;
        let old = std::mem::replace(&mut self.active, new);
        self.retired.push(RetiredKey {
            kid: old.kid,
            point: old.pair.public_key().as_ref().to_vec(),
            until: old_tokens_expire,
        });
        Ok(())
    }

    /// The JWKS (RFC 7517) at `now`: the active key and unexpired retired keys.
    pub fn jwks(&self, now: i64) -> serde_json::Value {
        let jwk = |kid: &str, point: &[u8]| {
            let (x, y) = point
                .get(1..)
                .unwrap_or_default()
                .split_at(32.min(point.len().saturating_sub(1)));
            serde_json::json!({ "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": kid, "x": b64(x), "y": b64(y) })
        };
        let mut keys = vec![jwk(
            &self.active.kid,
            self.active.pair.public_key().as_ref(),
        )];
        keys.extend(
            self.retired
                .iter()
                .filter(|r| r.until >= now)
                .map(|r| jwk(&r.kid, &r.point)),
        );
        serde_json::json!({ "keys": keys })
    }

    /// Signs `claims` as a compact JWS with header `{"alg":"ES256","typ":"JWT","kid":…}`.
    pub fn sign(&self, claims: &Claims<'_>) -> Result<String, TokenError> {
        let header = serde_json::json!({ "alg": "ES256", "typ": "JWT", "kid": self.active.kid });
        let payload = serde_json::to_vec(claims).map_err(|_| TokenError::Signing)?;
        let signing_input = format!("{}.{}", b64(header.to_string().as_bytes()), b64(&payload));
        let sig = self
            .active
            .pair
            .sign(&ring::rand::SystemRandom::new(), signing_input.as_bytes())
            .map_err(|_| TokenError::Signing)?;
        Ok(format!("{signing_input}.{}", b64(sig.as_ref())))
    }
}

/// Builds the claims for one verified quote and its verdict.
pub fn claims<'a>(
    issuer: &'a str,
    now: i64,
    ttl: i64,
    nonce: &[u8],
    runtime_data: &[u8],
    quote: &'a VerifiedQuote,
    verdict: &'a Verdict,
) -> Claims<'a> {
    let tee = match quote.tee() {
        crate::TeeType::Sgx => "sgx",
        crate::TeeType::Tdx => "tdx",
    };
    let sub = Submodule {
        status: verdict.status,
        evidence: quote,
        runtime_data_hash: b64(ring::digest::digest(&ring::digest::SHA256, runtime_data).as_ref()),
        policy: verdict,
        stale_collateral: None,
    };
    Claims {
        iss: issuer,
        iat: now,
        exp: now.saturating_add(ttl),
        eat_nonce: b64(nonce),
        eat_profile: EAR_PROFILE,
        status: verdict.status,
        verifier_id: VerifierId {
            developer: "phalanx",
            build: env!("CARGO_PKG_VERSION"),
        },
        trust_root: "intel",
        submods: [(tee, sub)].into_iter().collect(),
    }
}
