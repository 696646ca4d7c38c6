//! What a gatekeeper's transparency log ([`crate::translog`]) records, sans-IO, and the
//! check that turns a committed partial evaluation into evidence.
//!
//! A record is `LOG_ENTRY ‖ kind ‖ node ‖ logged_at ‖ detail`. A release's detail is
//! the request transcript and the *evaluation*, `SHA-256(RELEASE_EVALUATION ‖ len ‖ key
//! id point input ‖ S_i ‖ partial)`: the gatekeeper commits, in the log whose heads it
//! signs, to the public share `S_i` it evaluated under and to the partial (with its DLEQ
//! proof) it sealed to the worker. A partial whose proof fails against the public share
//! its own log commits to is then provable to anyone who is shown the record, its
//! inclusion proof and the signed head ([`committed_partial_fails`]): no honest
//! gatekeeper logs such a partial.

use crate::derive::PartialEvaluation;
use crate::error::Error;
use crate::share::NodeIndex;
use crate::translog::{Hash, leaf_hash, verify_inclusion};
use p256::ProjectivePoint;
use sha2::{Digest, Sha256};

/// What a transparency-log record is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum RecordKind {
    /// A key release; the detail is the request transcript and the evaluation
    /// ([`evaluation`]).
    Release = 1,
    /// A share of an epoch installed (genesis, rotation, refresh, reshare); the detail is
    /// `SHA-256(epoch ‖ MPK ‖ commitments)`.
    EpochInstalled = 2,
    /// An epoch retired; the detail is `SHA-256(epoch)`.
    EpochRetired = 3,
    /// A network round committed; the detail is the digest every participant confirmed
    /// (round id and new public key set).
    RoundCommitted = 4,
    /// A network round aborted; the detail is the round id.
    RoundAborted = 5,
}

/// A transparency-log record: `LOG_ENTRY ‖ kind ‖ node ‖ logged_at ‖ detail`.
pub fn record(kind: RecordKind, node: NodeIndex, logged_at: i64, detail: &[u8]) -> Vec<u8> {
    let mut out = crate::tag::LOG_ENTRY.to_vec();
    out.push(kind as u8);
    out.extend_from_slice(&node.get().to_be_bytes());
    out.extend_from_slice(&logged_at.to_be_bytes());
    out.extend_from_slice(detail);
    out
}

/// What a release commits to besides its request: the key id's point input, the public
/// share `S_i` (SEC1 uncompressed) the gatekeeper evaluated under, and the partial it
/// sealed (its [`PartialEvaluation`] encoding, proof included).
pub fn evaluation(point_input: &[u8], public_share: &[u8; 65], partial: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update(crate::tag::RELEASE_EVALUATION);
    for part in [point_input, public_share.as_slice(), partial] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    h.finalize().into()
}

/// The record of one release: its request `transcript` and [`evaluation`].
pub fn release_record(
    node: NodeIndex,
    logged_at: i64,
    transcript: &Hash,
    evaluation: &Hash,
) -> Vec<u8> {
    record(
        RecordKind::Release,
        node,
        logged_at,
        &[transcript.as_slice(), evaluation.as_slice()].concat(),
    )
}

/// A release as its log committed it: enough to recompute the record and check it
/// against a signed head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedRelease {
    /// The answering member.
    pub node: NodeIndex,
    /// When it logged the release.
    pub logged_at: i64,
    /// The request transcript.
    pub transcript: Hash,
    /// The key id's point input (`KeyId::encode_point_input`).
    pub point_input: Vec<u8>,
    /// The public share it evaluated under (SEC1 uncompressed).
    pub public_share: [u8; 65],
    /// The partial it sealed (encoding).
    pub partial: Vec<u8>,
    /// The record's place in the log.
    pub log_index: u64,
    /// Its inclusion proof in the tree of `size` entries.
    pub inclusion_proof: Vec<Hash>,
}

impl CommittedRelease {
    /// Whether the log whose tree of `size` entries has `root` holds this release.
    pub fn included(&self, size: u64, root: &Hash) -> Result<(), Error> {
        let evaluation = evaluation(&self.point_input, &self.public_share, &self.partial);
        let leaf = leaf_hash(&release_record(
            self.node,
            self.logged_at,
            &self.transcript,
            &evaluation,
        ));
        verify_inclusion(&leaf, self.log_index, size, &self.inclusion_proof, root)
    }
}

/// Whether the committed partial is no honest gatekeeper's (`Ok(true)`): it does not
/// decode, it claims another member, or its DLEQ proof fails against the public share
/// committed with it. A fault only once the caller has checked that the accused's log
/// holds it ([`CommittedRelease::included`]). `Err`: the key id's point input is no
/// key id's.
pub fn committed_partial_fails(c: &CommittedRelease) -> Result<bool, Error> {
    let point = crate::derive::point_of_input(&c.point_input)?;
    let Ok(partial) = PartialEvaluation::from_bytes(&c.partial) else {
        return Ok(true);
    };
    let Ok(share) = p256::PublicKey::from_sec1_bytes(&c.public_share) else {
        return Ok(true);
    };
    Ok(partial.index != c.node
        || !crate::derive::proof_holds(&c.point_input, &point, &share.to_projective(), &partial))
}

/// `S_i` as a release commits to it (SEC1 uncompressed; zeros for the identity, which
/// no share has).
pub fn share_bytes(public_share: &ProjectivePoint) -> [u8; 65] {
    use p256::elliptic_curve::sec1::ToSec1Point as _;
    <[u8; 65]>::try_from(public_share.to_affine().to_sec1_point(false).as_bytes())
        .unwrap_or([0; 65])
}
