//! Freshness: server-authenticated, short-lived nonces the service can check without
//! storing them, and the binding of nonce and runtime data into a quote's report data.
//!
//! A nonce is `base64url(version ‖ expiry ‖ random ‖ HMAC-SHA256(key, tag ‖ version ‖
//! expiry ‖ random))`: the MAC proves the service issued it, the embedded expiry bounds
//! its life, and a [`ReplayGuard`] remembers consumed nonces until they expire so each is
//! used once. The worker puts [`report_data`] of the nonce and its runtime data (e.g. its
//! public keys) into REPORTDATA, so the quote proves both freshness and the keys.

use base64::Engine as _;
use std::collections::HashMap;

/// HMAC domain tag of nonces.
pub const NONCE_TAG: &[u8] = phalanx_types::tag::ATTESTATION_NONCE;
/// Hash domain tag of report data.
pub const REPORT_DATA_TAG: &[u8] = phalanx_types::tag::REPORT_DATA;

const VERSION: u8 = 1;
const RANDOM_LEN: usize = 16;
const MAC_LEN: usize = 32;
const RAW_LEN: usize = 1 + 8 + RANDOM_LEN + MAC_LEN;

/// Why a nonce is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NonceError {
    /// Not a nonce of ours (bad encoding, version or MAC).
    #[error("nonce is malformed or was not issued by this service")]
    Invalid,
    /// Past its expiry.
    #[error("nonce expired at {0}")]
    Expired(i64),
    /// Already used.
    #[error("nonce was already used")]
    Replayed,
    /// Too many live nonces are remembered; try again later.
    #[error("too many nonces in use")]
    Busy,
}

/// The server's nonce key. Redacted in `Debug`.
pub struct NonceKey(ring::hmac::Key);

impl std::fmt::Debug for NonceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NonceKey(<redacted>)")
    }
}

/// A nonce whose MAC and expiry have been checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedNonce {
    /// The nonce's bytes (what goes into [`report_data`]).
    pub bytes: Vec<u8>,
    /// Its expiry, unix seconds.
    pub expires: i64,
    random: [u8; RANDOM_LEN],
}

impl CheckedNonce {
    /// The nonce's random part: what single use is recorded under.
    pub fn id(&self) -> &[u8; RANDOM_LEN] {
        &self.random
    }
}

impl NonceKey {
    /// A key from 32 secret bytes (from the TEE or a key file).
    pub fn new(secret: &[u8; 32]) -> Self {
        Self(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret))
    }

    fn mac_input(version: u8, expiry: i64, random: &[u8]) -> Vec<u8> {
        [NONCE_TAG, &[version], &expiry.to_be_bytes(), random].concat()
    }

    /// Issues a nonce valid for `ttl` seconds from `now`; `random` comes from the
    /// caller's CSPRNG.
    pub fn issue(&self, now: i64, ttl: u32, random: [u8; RANDOM_LEN]) -> String {
        let expiry = now.saturating_add(i64::from(ttl));
        let tag = ring::hmac::sign(&self.0, &Self::mac_input(VERSION, expiry, &random));
        let raw = [&[VERSION][..], &expiry.to_be_bytes(), &random, tag.as_ref()].concat();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    }

    /// Checks encoding, MAC (constant time) and expiry.
    pub fn check(&self, nonce: &str, now: i64) -> Result<CheckedNonce, NonceError> {
        if nonce.len() > 2 * RAW_LEN {
            return Err(NonceError::Invalid);
        }
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(nonce)
            .map_err(|_| NonceError::Invalid)?;
        if raw.len() != RAW_LEN || raw.first() != Some(&VERSION) {
            return Err(NonceError::Invalid);
        }
        let (head, mac) = raw.split_at(1 + 8 + RANDOM_LEN);
        let expiry_bytes: [u8; 8] = head
            .get(1..9)
            .and_then(|b| b.try_into().ok())
            .ok_or(NonceError::Invalid)?;
        let random: [u8; RANDOM_LEN] = head
            .get(9..)
            .and_then(|b| b.try_into().ok())
            .ok_or(NonceError::Invalid)?;
        let expiry = i64::from_be_bytes(expiry_bytes);
        ring::hmac::verify(&self.0, &Self::mac_input(VERSION, expiry, &random), mac)
            .map_err(|_| NonceError::Invalid)?;
        if now > expiry {
            return Err(NonceError::Expired(expiry));
        }
        Ok(CheckedNonce {
            bytes: raw,
            expires: expiry,
            random,
        })
    }
}

/// Remembers consumed nonces until they expire, so each is accepted once.
#[derive(Debug)]
pub struct ReplayGuard {
    seen: HashMap<[u8; RANDOM_LEN], i64>,
    capacity: usize,
}

impl ReplayGuard {
    /// A guard holding at most `capacity` live nonces.
    pub fn new(capacity: usize) -> Self {
        Self {
            seen: HashMap::new(),
            capacity,
        }
    }

    /// Marks `nonce` used at `now`; refuses a second use while it lives.
    pub fn consume(&mut self, nonce: &CheckedNonce, now: i64) -> Result<(), NonceError> {
        if self.seen.contains_key(&nonce.random) {
            return Err(NonceError::Replayed);
        }
        if self.seen.len() >= self.capacity {
            self.seen.retain(|_, expiry| *expiry >= now);
            if self.seen.len() >= self.capacity {
                return Err(NonceError::Busy);
            }
        }
        self.seen.insert(nonce.random, nonce.expires);
        Ok(())
    }
}

/// REPORTDATA binding a nonce and runtime data (defined once, in [`phalanx_ear`]).
pub use phalanx_ear::report_data;

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_760_000_000;

    #[test]
    fn issued_nonces_check_once_until_expiry() {
        let key = NonceKey::new(&[7; 32]);
        let n = key.issue(NOW, 60, [1; 16]);
        let checked = key.check(&n, NOW + 60).unwrap();
        assert_eq!(checked.expires, NOW + 60);
        assert_eq!(key.check(&n, NOW + 61), Err(NonceError::Expired(NOW + 60)));
        let mut guard = ReplayGuard::new(2);
        assert_eq!(guard.consume(&checked, NOW), Ok(()));
        assert_eq!(guard.consume(&checked, NOW), Err(NonceError::Replayed));
        let other = key.check(&key.issue(NOW, 60, [2; 16]), NOW).unwrap();
        guard.consume(&other, NOW).unwrap();
        let third = key.check(&key.issue(NOW, 60, [3; 16]), NOW).unwrap();
        assert_eq!(guard.consume(&third, NOW), Err(NonceError::Busy));
        // Once the first two expire, there is room again.
        assert_eq!(guard.consume(&third, NOW + 61), Ok(()));
    }

    #[test]
    fn forged_truncated_and_foreign_nonces_are_invalid() {
        let key = NonceKey::new(&[7; 32]);
        let n = key.issue(NOW, 60, [1; 16]);
        let other = NonceKey::new(&[8; 32]);
        assert_eq!(other.check(&n, NOW), Err(NonceError::Invalid));
        assert_eq!(key.check(&n[..n.len() - 2], NOW), Err(NonceError::Invalid));
        assert_eq!(key.check("", NOW), Err(NonceError::Invalid));
        assert_eq!(
            key.check(&"A".repeat(10_000), NOW),
            Err(NonceError::Invalid)
        );
        // Extending the expiry breaks the MAC.
        let mut raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&n)
            .unwrap();
        raw[8] ^= 1;
        let tampered = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
        assert_eq!(key.check(&tampered, NOW), Err(NonceError::Invalid));
        assert_eq!(format!("{key:?}"), "NonceKey(<redacted>)");
    }
}
