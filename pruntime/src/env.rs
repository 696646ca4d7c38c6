//! The worker's keys as a contract call sees them ([`phalanx_contract::Env`]): the
//! contract's signature by its key the registry publishes, keys derived per purpose,
//! and randomness — each a function of the contract's secret and the call's position
//! only, so every worker serving the contract computes the same bytes.
//!
//! - **`sign`**: ECDSA P-256 (RFC 6979) by the signing key of the command's epoch,
//!   over `SHA-256(CONTRACT_SIGNATURE ‖ contract id ‖ message)`. Commands only: a
//!   query runs at whatever position the host holds its worker at, and a signature of
//!   stale state would be accepted elsewhere forever.
//!   Anyone checks it against the key the registry lists for the contract and epoch — an
//!   EVM contract with P256VERIFY — without trusting a relayer.
//! - **`derived_key`, `derived_sign`**: a P-256 or secp256k1 key per purpose (its
//!   signatures in commands only, as `sign`), from
//!   `HKDF-SHA256(salt = CONTRACT_PURPOSE_KEY, ikm = the contract's state-root key)`,
//!   `info = curve ‖ purpose`. That key is the contract's for its whole life (carried in
//!   checkpoints, the same under every epoch), so an address derived from it stays the
//!   contract's across rotations.
//! - **`random`**: `HKDF-SHA256(salt = CONTRACT_RANDOMNESS, ikm = the same key)`,
//!   `info = the command log's head before this command ‖ draw`: fixed by the chain's
//!   order, the same on every worker, unpredictable without the contract's secret (also
//!   to the sender: the head is known only once the command is ordered). Queries draw
//!   none. Not forward-secure: both come from the first epoch's secret (through the
//!   state-root key), so whoever learned that secret predicts them, rotations or not.

use p256::ecdsa::SigningKey;
use phalanx_contract::{Curve, Env};
use phalanx_types::{Epoch, tag};
use sha2::Sha256;
use zeroize::Zeroizing;

/// One call's keys.
pub struct CallEnv {
    contract: [u8; 32],
    signing: Option<(Epoch, SigningKey)>,
    root: Zeroizing<[u8; 32]>,
    /// The command log's head before the command (none: a query).
    position: Option<[u8; 32]>,
}

impl CallEnv {
    /// The keys of a call of `contract`: its signing key of `signing`'s epoch, its
    /// state-root key `root`, and for a command the log head before it.
    pub fn new(
        contract: [u8; 32],
        signing: Option<(Epoch, SigningKey)>,
        root: &[u8; 32],
        position: Option<[u8; 32]>,
    ) -> Self {
        Self {
            contract,
            signing,
            root: Zeroizing::new(*root),
            position,
        }
    }

    fn expand(&self, salt: &[u8], info: &[&[u8]]) -> Option<Zeroizing<[u8; 32]>> {
        let mut out = Zeroizing::new([0u8; 32]);
        hkdf::Hkdf::<Sha256>::new(Some(salt), self.root.as_slice())
            .expand_multi_info(info, out.as_mut_slice())
            .ok()?;
        Some(out)
    }

    fn secret(&self, curve: Curve, purpose: &[u8]) -> Option<Zeroizing<[u8; 32]>> {
        let code = match curve {
            Curve::P256 => [1u8],
            Curve::Secp256k1 => [2u8],
        };
        self.expand(tag::CONTRACT_PURPOSE_KEY, &[&code, purpose])
    }
}

/// The bytes a contract's `sign` signs (hashed with SHA-256 by ECDSA).
pub fn signed_message(contract: &[u8; 32], message: &[u8]) -> Vec<u8> {
    [tag::CONTRACT_SIGNATURE, contract, message].concat()
}

impl Env for CallEnv {
    fn sign(&self, message: &[u8]) -> Option<(u64, [u8; 64])> {
        use p256::ecdsa::signature::Signer as _;
        let (epoch, key) = self.signing.as_ref()?;
        let sig: p256::ecdsa::Signature = key.sign(&signed_message(&self.contract, message));
        Some((epoch.0, sig.to_bytes().into()))
    }

    fn derived_public(&self, curve: Curve, purpose: &[u8]) -> Option<[u8; 65]> {
        let secret = self.secret(curve, purpose)?;
        let point = match curve {
            Curve::P256 => SigningKey::from_slice(secret.as_slice())
                .ok()?
                .verifying_key()
                .to_sec1_point(false)
                .as_bytes()
                .to_vec(),
            Curve::Secp256k1 => k256::ecdsa::SigningKey::from_slice(secret.as_slice())
                .ok()?
                .verifying_key()
                .to_encoded_point(false)
                .as_bytes()
                .to_vec(),
        };
        point.try_into().ok()
    }

    fn derived_sign(&self, curve: Curve, purpose: &[u8], digest: &[u8; 32]) -> Option<Vec<u8>> {
        // Commands only (see the module doc).
        self.position?;
        let secret = self.secret(curve, purpose)?;
        match curve {
            Curve::P256 => {
                use p256::ecdsa::signature::hazmat::PrehashSigner as _;
                let key = SigningKey::from_slice(secret.as_slice()).ok()?;
                let sig: p256::ecdsa::Signature = key.sign_prehash(digest).ok()?;
                Some(sig.to_bytes().to_vec())
            }
            Curve::Secp256k1 => {
                let key = k256::ecdsa::SigningKey::from_slice(secret.as_slice()).ok()?;
                let (sig, recovery) = key.sign_prehash_recoverable(digest).ok()?;
                let mut out = sig.to_bytes().to_vec();
                out.push(recovery.to_byte());
                Some(out)
            }
        }
    }

    fn random(&self, draw: u64) -> Option<[u8; 32]> {
        let position = self.position?;
        let out = self.expand(
            tag::CONTRACT_RANDOMNESS,
            &[&self.contract, &position, &draw.to_be_bytes()],
        )?;
        Some(*out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn env(position: Option<[u8; 32]>) -> CallEnv {
        let key = SigningKey::from_slice(&[7; 32]).unwrap();
        CallEnv::new([1; 32], Some((Epoch(3), key)), &[9; 32], position)
    }

    /// The same inputs give the same bytes (every worker agrees); another purpose,
    /// curve, position or draw gives others; a signature verifies under the key it
    /// names; queries draw no randomness.
    #[test]
    fn keys_and_randomness_are_deterministic_and_separated() {
        let (a, b) = (env(Some([2; 32])), env(Some([2; 32])));
        assert_eq!(a.random(0), b.random(0));
        assert_ne!(a.random(0), a.random(1));
        assert_ne!(a.random(0), env(Some([3; 32])).random(0));
        assert_eq!(env(None).random(0), None);
        assert_eq!(
            env(None).derived_sign(Curve::P256, b"payout", &[0; 32]),
            None
        );
        let p = a.derived_public(Curve::P256, b"payout").unwrap();
        assert_eq!(Some(p), b.derived_public(Curve::P256, b"payout"));
        assert_ne!(Some(p), a.derived_public(Curve::P256, b"other"));
        let k = a.derived_public(Curve::Secp256k1, b"payout").unwrap();
        assert_ne!(p, k);

        let digest = [5u8; 32];
        let sig = a.derived_sign(Curve::P256, b"payout", &digest).unwrap();
        assert_eq!(
            Some(sig.clone()),
            b.derived_sign(Curve::P256, b"payout", &digest)
        );
        let vk = p256::ecdsa::VerifyingKey::from_sec1_bytes(&p).unwrap();
        let sig = p256::ecdsa::Signature::from_slice(&sig).unwrap();
        use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
        assert!(vk.verify_prehash(&digest, &sig).is_ok());

        let sig = a
            .derived_sign(Curve::Secp256k1, b"payout", &digest)
            .unwrap();
        assert_eq!(sig.len(), 65);
        let recovered = k256::ecdsa::VerifyingKey::recover_from_prehash(
            &digest,
            &k256::ecdsa::Signature::from_slice(&sig[..64]).unwrap(),
            k256::ecdsa::RecoveryId::from_byte(sig[64]).unwrap(),
        )
        .unwrap();
        assert_eq!(recovered.to_encoded_point(false).as_bytes(), k.as_slice());

        let (epoch, sig) = a.sign(b"winner").unwrap();
        assert_eq!(epoch, 3);
        let key = SigningKey::from_slice(&[7; 32]).unwrap();
        use p256::ecdsa::signature::Verifier as _;
        assert!(
            key.verifying_key()
                .verify(
                    &signed_message(&[1; 32], b"winner"),
                    &p256::ecdsa::Signature::from_slice(&sig).unwrap()
                )
                .is_ok()
        );
        assert_eq!(Some((epoch, sig)), b.sign(b"winner"));
    }
}
