//! The crate's error type: variants name facts.

use crate::share::NodeIndex;
use phalanx_types::codec::DecodeError;

/// What can go wrong in threshold key operations.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Fewer valid contributions than the threshold.
    #[error("not enough shares: have {have}, need {need}")]
    NotEnoughShares {
        /// Valid contributions at hand.
        have: usize,
        /// The threshold.
        need: usize,
    },
    /// A node index of zero (index 0 is where the secret lives).
    #[error("node index 0 is not allowed")]
    ZeroIndex,
    /// The same node contributed twice.
    #[error("node {0} appears twice")]
    DuplicateIndex(NodeIndex),
    /// A node is not a member of the committee.
    #[error("node {0} is not a committee member")]
    UnknownNode(NodeIndex),
    /// A threshold outside 1..=n.
    #[error("threshold {threshold} is invalid for {members} members")]
    InvalidThreshold {
        /// t.
        threshold: usize,
        /// n.
        members: usize,
    },
    /// A partial evaluation whose DLEQ proof does not verify: the member lied.
    #[error("partial evaluation of node {0} has an invalid proof")]
    InvalidPartial(NodeIndex),
    /// A share that does not match the public commitments.
    #[error("share of node {0} does not match the commitments")]
    InvalidShare(NodeIndex),
    /// A round message whose signature, epoch or round is wrong: the sender is named.
    #[error("message from node {0} has a bad signature or belongs to another round")]
    BadSignature(NodeIndex),
    /// A key id that cannot be hashed (too long).
    #[error("key id too long: {0} bytes")]
    KeyIdTooLong(usize),
    /// Bytes that are not a valid encoding (which message, which field, what is wrong).
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// Bytes of the right shape that are not a valid key of that kind.
    #[error("{0} is not a valid key")]
    InvalidKey(&'static str),
    /// This member holds no share of the epoch a refresh or reshare starts from.
    #[error("this member holds no share of the current epoch")]
    NoShare,
    /// A log range, inclusion or consistency proof request outside the log.
    #[error("range outside the log ({size} entries)")]
    OutOfRange {
        /// Entries in the log (or the tree the request names).
        size: u64,
    },
    /// A Merkle proof that does not lead to the root it claims.
    #[error("{0} proof does not verify")]
    ProofFailed(LogProof),
    /// A signed tree head whose signature does not verify under the log's key.
    #[error("tree head signature does not verify")]
    BadHeadSignature,
    /// A signed tree head of another log than the one asked for.
    #[error("tree head names another log")]
    HeadOfAnotherLog,
    /// The HPKE envelope does not open: wrong key, wrong transcript, or tampered.
    #[error("HPKE envelope does not open (wrong key, transcript or tampered)")]
    EnvelopeOpen,
    /// Sealing an HPKE envelope failed (a local fault, not the peer's).
    #[error("HPKE seal failed")]
    EnvelopeSeal,
    /// A reshare whose result has another master public key than the epoch it reshares.
    #[error("reshare changed the master public key")]
    MasterKeyChanged,
    /// A refresh whose committee is not the epoch's.
    #[error("refresh committee differs from the epoch's")]
    CommitteeChanged,
    /// Reshare dealers present different old public key sets, or one that is not ours.
    #[error("reshare dealers disagree on the old public key set")]
    OldSetDisagreement,
    /// A commit certificate without exactly one confirmation per participant.
    #[error("commit certificate does not carry one confirmation per participant")]
    IncompleteCertificate,
    /// A member's answer carrying another member's partial evaluation.
    #[error("node {node} answered with a partial evaluation of node {claims}")]
    MisattributedPartial {
        /// The member that answered.
        node: NodeIndex,
        /// The index inside its partial evaluation.
        claims: NodeIndex,
    },
    /// A message for a round that has already finished.
    #[error("round already finished")]
    RoundFinished,
    /// A step that cannot fail for inputs that passed the earlier checks did (a zero
    /// denominator, a hash-to-field length limit): a bug, named by the step.
    #[error("internal error in {0}")]
    Internal(&'static str),
}

/// Which transparency-log proof failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogProof {
    /// An entry's inclusion in a tree head.
    Inclusion,
    /// An older tree head's consistency with a newer one.
    Consistency,
}

impl std::fmt::Display for LogProof {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Inclusion => "inclusion",
            Self::Consistency => "consistency",
        })
    }
}
