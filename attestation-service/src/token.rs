//! Attestation results as JWTs signed with ES256 (RFC 7515/7519, ECDSA P-256 SHA-256),
//! claims shaped after the IETF RATS EAR (EAT Attestation Result,
//! draft-ietf-rats-ear): anyone holding the JWKS ([`Signer::jwks`]) can check a result
//! with any JWT library.
//!
//! Claims ([`Claims`], defined once in [`phalanx_ear`] for signer and relying parties): `iss`; `iat`, `exp` (unix seconds); `eat_nonce` (the nonce the
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

pub use phalanx_ear::{Claims, EAR_PROFILE, Evidence, Stale, Submodule, TrustRoot, VerifierId};

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

    /// A signer whose active key is the P-256 scalar `private` (32 bytes, big-endian)
    /// with its uncompressed public point `public` (a key derived, not generated).
    pub fn from_key_pair(private: &[u8], public: &[u8]) -> Result<Self, TokenError> {
        let pair = EcdsaKeyPair::from_private_key_and_public_key(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            private,
            public,
            &ring::rand::SystemRandom::new(),
        )
        .map_err(|_| TokenError::InvalidKey)?;
        let kid = kid_of(pair.public_key().as_ref());
        Ok(Self {
            active: Key { pair, kid },
            retired: Vec::new(),
        })
    }

    /// Publishes `other`'s active public key in this signer's JWKS until `until`
    /// (without its private key: this signer never signs with it).
    pub fn keep_public(&mut self, other: &Signer, until: i64) {
        self.retired.push(RetiredKey {
            kid: other.kid().to_owned(),
            point: other.public_point().to_vec(),
            until,
        });
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
    pub fn sign(&self, claims: &Claims) -> Result<String, TokenError> {
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

/// Builds the claims for one verified quote and its verdict (trust root `intel`; the
/// service sets its own).
pub fn claims(
    issuer: &str,
    now: i64,
    ttl: i64,
    nonce: &[u8],
    runtime_data: &[u8],
    quote: &VerifiedQuote,
    verdict: &Verdict,
) -> Claims {
    let sub = Submodule {
        status: verdict.status,
        evidence: Evidence::from(quote),
        runtime_data_hash: phalanx_ear::runtime_data_hash(runtime_data),
        policy: verdict.clone(),
        stale_collateral: None,
    };
    Claims {
        iss: issuer.to_owned(),
        iat: now,
        exp: now.saturating_add(ttl),
        eat_nonce: b64(nonce),
        eat_profile: EAR_PROFILE.to_owned(),
        status: verdict.status,
        verifier_id: VerifierId {
            developer: "phalanx".to_owned(),
            build: env!("CARGO_PKG_VERSION").to_owned(),
        },
        trust_root: TrustRoot::Intel,
        submods: [(quote.tee().as_str().to_owned(), sub)]
            .into_iter()
            .collect(),
    }
}
