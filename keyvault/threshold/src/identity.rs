//! Round messages signed by their sender's identity key (ECDSA P-256, RFC 6979
//! deterministic nonces via the `p256` crate), bound to the epoch and the round, so a
//! message cannot be replayed into another round, epoch or protocol, or attributed to
//! another member.
//!
//! The signed bytes are `tag ‖ sender ‖ epoch ‖ round ‖ len(payload) ‖ payload`, where
//! the payload is the message's canonical encoding ([`Encode`]). A receiver verifies by
//! re-encoding the typed message it received, so two encodings of one message cannot
//! both carry a valid signature.

use crate::error::Error;
use crate::share::NodeIndex;
use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use phalanx_types::Epoch;

/// Domain tag of signed round messages.
pub const ROUND_MESSAGE: &[u8] = crate::tag::ROUND_MESSAGE;

/// Which round a message belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Round {
    /// DKG round 1 broadcast.
    DkgDeal = 1,
    /// DKG round 2.
    DkgComplaint = 2,
    /// DKG round 3.
    DkgAnswer = 3,
    /// DKG round 4 broadcast.
    DkgExtraction = 4,
    /// DKG round 4 complaint.
    DkgExtractionComplaint = 5,
    /// DKG round 5.
    DkgReconstruction = 6,
    /// Refresh deal.
    RefreshDeal = 10,
    /// Reshare deal.
    ReshareDeal = 11,
    /// Refresh or reshare complaint.
    SubComplaint = 12,
    /// Refresh or reshare answer.
    SubAnswer = 13,
}

/// A canonical byte encoding of a protocol message.
pub trait Encode {
    /// The encoding (injective for the message type).
    fn encode(&self) -> Vec<u8>;
}

/// A member's long-term identity key. Zeroized on drop by `p256`.
#[derive(Clone)]
pub struct IdentityKey(SigningKey);

impl std::fmt::Debug for IdentityKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("IdentityKey")
            .field(&self.verifying_key())
            .finish()
    }
}

impl IdentityKey {
    /// A fresh key.
    pub fn generate<R: rand_core::CryptoRng + ?Sized>(rng: &mut R) -> Self {
        use p256::elliptic_curve::Generate;
        Self(SigningKey::generate_from_rng(rng))
    }

    /// The signing key, for other signed structures (round messages, tree heads, the
    /// registry's transactions): each must put its own domain tag in the signed bytes.
    pub fn signing_key(&self) -> &SigningKey {
        &self.0
    }

    /// The secret scalar, big-endian (to seal it at rest).
    pub fn to_bytes(&self) -> zeroize::Zeroizing<Vec<u8>> {
        zeroize::Zeroizing::new(self.0.to_bytes().to_vec())
    }

    /// A key from its secret scalar (as [`IdentityKey::to_bytes`] writes it).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        SigningKey::from_slice(bytes)
            .map(Self)
            .map_err(|_| Error::InvalidKey("identity key"))
    }

    /// The public key.
    pub fn verifying_key(&self) -> VerifyingKey {
        *self.0.verifying_key()
    }

    /// Signs `message` as `sender` for `epoch` and `round`.
    pub fn sign<T: Encode + Clone>(
        &self,
        sender: NodeIndex,
        epoch: Epoch,
        round: Round,
        message: &T,
    ) -> Signed<T> {
        let signature = self
            .0
            .sign(&signed_bytes(sender, epoch, round, &message.encode()));
        Signed {
            sender,
            epoch,
            round,
            message: message.clone(),
            signature,
        }
    }
}

fn signed_bytes(sender: NodeIndex, epoch: Epoch, round: Round, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(ROUND_MESSAGE.len() + 19 + payload.len());
    out.extend_from_slice(ROUND_MESSAGE);
    out.extend_from_slice(&sender.get().to_be_bytes());
    out.extend_from_slice(&epoch.0.to_be_bytes());
    out.push(round as u8);
    out.extend_from_slice(&(payload.len() as u64).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// A message with its sender, epoch, round and signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed<T> {
    /// The sender.
    pub sender: NodeIndex,
    /// The epoch.
    pub epoch: Epoch,
    /// The round.
    pub round: Round,
    /// The message.
    pub message: T,
    /// ECDSA P-256 signature.
    pub signature: Signature,
}

impl<T: Encode> Signed<T> {
    /// Verifies the signature under `key` and that epoch and round are the expected
    /// ones; returns the message. A failure names the sender.
    pub fn verify(&self, key: &VerifyingKey, epoch: Epoch, round: Round) -> Result<&T, Error> {
        if self.epoch != epoch || self.round != round {
            return Err(Error::BadSignature(self.sender));
        }
        key.verify(
            &signed_bytes(self.sender, self.epoch, self.round, &self.message.encode()),
            &self.signature,
        )
        .map_err(|_| Error::BadSignature(self.sender))?;
        Ok(&self.message)
    }
}

fn put_point(out: &mut Vec<u8>, p: &p256::ProjectivePoint) {
    let b = crate::dleq::point_bytes(p);
    out.push(b.len() as u8);
    out.extend_from_slice(&b);
}

/// `dealer ‖ count ‖ (len ‖ SEC1 point)*`.
fn encode_commitments(dealer: NodeIndex, points: &[p256::ProjectivePoint]) -> Vec<u8> {
    let mut out = dealer.get().to_be_bytes().to_vec();
    out.extend_from_slice(&(points.len() as u32).to_be_bytes());
    points.iter().for_each(|c| put_point(&mut out, c));
    out
}

impl Encode for crate::dkg::Deal {
    fn encode(&self) -> Vec<u8> {
        encode_commitments(self.dealer, &self.commitments)
    }
}

impl Encode for crate::dkg::Extraction {
    fn encode(&self) -> Vec<u8> {
        encode_commitments(self.dealer, &self.commitments)
    }
}

impl Encode for crate::dkg::Complaint {
    fn encode(&self) -> Vec<u8> {
        [
            self.accuser.get().to_be_bytes(),
            self.accused.get().to_be_bytes(),
        ]
        .concat()
    }
}

impl Encode for crate::lifecycle::SubDeal {
    fn encode(&self) -> Vec<u8> {
        encode_commitments(self.dealer, &self.commitments.0)
    }
}

impl Encode for crate::lifecycle::SubComplaint {
    fn encode(&self) -> Vec<u8> {
        [
            self.accuser.get().to_be_bytes(),
            self.accused.get().to_be_bytes(),
        ]
        .concat()
    }
}

fn put_share(
    out: &mut Vec<u8>,
    dealer: NodeIndex,
    recipient: NodeIndex,
    values: &[&crate::share::SecretScalar],
) {
    use p256::elliptic_curve::PrimeField;
    out.extend_from_slice(&dealer.get().to_be_bytes());
    out.extend_from_slice(&recipient.get().to_be_bytes());
    for v in values {
        out.extend_from_slice(&v.expose().to_repr());
    }
}

impl Encode for crate::dkg::PrivateShare {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        put_share(
            &mut out,
            self.dealer,
            self.recipient,
            &[&self.s, &self.s_prime],
        );
        out
    }
}

/// The DKG's public reveals are a [`crate::dkg::PrivateShare`] made public; the round
/// they belong to is in the signature, not the payload.
macro_rules! encode_revealed_share {
    ($($t:ty),*) => {$(
        impl Encode for $t {
            fn encode(&self) -> Vec<u8> {
                self.share.encode()
            }
        }
    )*};
}

encode_revealed_share!(
    crate::dkg::Answer,
    crate::dkg::ExtractionComplaint,
    crate::dkg::ReconstructionShare
);

impl Encode for crate::lifecycle::SubAnswer {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        put_share(
            &mut out,
            self.share.dealer,
            self.share.recipient,
            &[&self.share.value],
        );
        out
    }
}
