//! The crate's error type: variants name facts.

use crate::share::NodeIndex;

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
    /// Bytes that are not a valid encoding.
    #[error("malformed {0}")]
    Malformed(&'static str),
}
