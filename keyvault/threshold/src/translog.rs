//! The transparency log: an append-only Merkle tree after RFC 9162 (Certificate
//! Transparency 2.0) §2.1, with inclusion and consistency proofs and signed tree heads.
//!
//! Every key release, admin action and round outcome of a gatekeeper is one entry; a
//! release response carries the entry's inclusion proof against a signed tree head, so
//! a worker (or an auditor) can check that the release was recorded, and auditors check
//! with consistency proofs that a later head extends an earlier one — nothing was
//! quietly removed or rewritten.
//!
//! Hashing is RFC 9162's: `leaf = SHA-256(0x00 ‖ entry)`, `node = SHA-256(0x01 ‖ left ‖
//! right)`, the empty tree's root is `SHA-256("")`. Entries themselves start with
//! their own domain tag (the caller's encoding, e.g. [`crate::tag::LOG_ENTRY`]), and a
//! tree head is signed over [`crate::tag::TREE_HEAD`] ‖ log id ‖ size ‖ root ‖
//! timestamp, so neither can be confused with anything else this crate hashes or signs.
//!
//! [`MerkleLog`] keeps every complete subtree's hash (about `2n` hashes), so appends
//! cost `O(log n)` amortised and proofs `O(log² n)` lookups; it is rebuilt from the
//! leaf hashes a node stores ([`MerkleLog::from_leaf_hashes`]). The verification
//! functions need nothing but the proof, sizes and roots. Nothing here is secret.

use crate::error::{Error, LogProof};
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, VerifyingKey};
use sha2::{Digest, Sha256};

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// Longest proof accepted (a tree of 2^64 leaves needs at most 64 hashes per side).
pub const MAX_PROOF_LEN: usize = 128;

/// `SHA-256(0x00 ‖ entry)`.
pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(entry);
    h.finalize().into()
}

/// `SHA-256(0x01 ‖ left ‖ right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of the empty tree, `SHA-256("")`.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The largest power of two strictly below `n` (`n ≥ 2`).
fn split(n: u64) -> u64 {
    1u64 << (63 - (n - 1).leading_zeros())
}

/// An append-only Merkle tree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MerkleLog {
    /// `levels[i][j]` is the hash of the complete subtree of `2^i` leaves starting at
    /// leaf `j · 2^i`.
    levels: Vec<Vec<Hash>>,
}

impl MerkleLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// A log holding these leaf hashes, in order.
    pub fn from_leaf_hashes(leaves: impl IntoIterator<Item = Hash>) -> Self {
        let mut log = Self::new();
        for l in leaves {
            log.push_leaf_hash(l);
        }
        log
    }

    /// Keeps the first `size` entries (a record whose write failed is dropped, so no
    /// head is ever signed over it).
    pub fn truncate(&mut self, size: u64) {
        if size < self.size()
            && let Some(leaves) = self.levels.first()
        {
            let keep = usize::try_from(size).unwrap_or(usize::MAX);
            *self = Self::from_leaf_hashes(leaves.iter().take(keep).copied().collect::<Vec<_>>());
        }
    }

    /// Number of entries.
    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    /// Appends `entry`; returns its index and its leaf hash.
    pub fn append(&mut self, entry: &[u8]) -> (u64, Hash) {
        let h = leaf_hash(entry);
        (self.push_leaf_hash(h), h)
    }

    fn push_leaf_hash(&mut self, h: Hash) -> u64 {
        let index = self.size();
        let mut carry = h;
        let mut level = 0;
        loop {
            if self.levels.len() <= level {
                self.levels.push(Vec::new());
            }
            let Some(row) = self.levels.get_mut(level) else {
                break;
            };
            row.push(carry);
            if !row.len().is_multiple_of(2) {
                break;
            }
            let (Some(l), Some(r)) = (row.get(row.len() - 2), row.last()) else {
                break;
            };
            carry = node_hash(l, r);
            level += 1;
        }
        index
    }

    /// The leaf hash at `index`.
    pub fn leaf(&self, index: u64) -> Option<Hash> {
        self.levels
            .first()?
            .get(usize::try_from(index).ok()?)
            .copied()
    }

    /// The hash of leaves `[start, start + size)`, `size ≥ 1`, within the tree.
    fn subtree(&self, start: u64, size: u64) -> Result<Hash, Error> {
        let out_of_range = Error::OutOfRange { size: self.size() };
        let end = start.checked_add(size).ok_or(out_of_range.clone())?;
        if size == 0 || end > self.size() {
            return Err(out_of_range);
        }
        if size.is_power_of_two() && start.is_multiple_of(size) {
            let level = size.trailing_zeros() as usize;
            return self
                .levels
                .get(level)
                .and_then(|row| row.get(usize::try_from(start >> level).ok()?))
                .copied()
                .ok_or(out_of_range);
        }
        let k = split(size);
        Ok(node_hash(
            &self.subtree(start, k)?,
            &self.subtree(start + k, size - k)?,
        ))
    }

    /// The root of the tree of the first `size` entries (`MTH(D[0:size])`).
    pub fn root_at(&self, size: u64) -> Result<Hash, Error> {
        if size == 0 {
            return Ok(empty_root());
        }
        self.subtree(0, size)
    }

    /// The current root.
    pub fn root(&self) -> Hash {
        self.root_at(self.size()).unwrap_or_else(|_| empty_root())
    }

    /// The inclusion proof of entry `index` in the tree of the first `size` entries
    /// (RFC 9162 §2.1.3.1), leaf side first.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, Error> {
        if index >= size || size > self.size() {
            return Err(Error::OutOfRange { size: self.size() });
        }
        let (mut start, mut n, mut m) = (0u64, size, index);
        let mut path = Vec::new();
        while n > 1 {
            let k = split(n);
            if m < k {
                path.push(self.subtree(start + k, n - k)?);
                n = k;
            } else {
                path.push(self.subtree(start, k)?);
                start += k;
                m -= k;
                n -= k;
            }
        }
        path.reverse();
        Ok(path)
    }

    /// The consistency proof between the trees of the first `old` and `new` entries
    /// (RFC 9162 §2.1.4.1).
    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>, Error> {
        if old == 0 || old > new || new > self.size() {
            return Err(Error::OutOfRange { size: self.size() });
        }
        let mut proof = Vec::new();
        // SUBPROOF(m, D[start:start+n], b), unrolled.
        let (mut start, mut n, mut m, mut b) = (0u64, new, old, true);
        while m != n {
            let k = split(n);
            if m <= k {
                proof.push(self.subtree(start + k, n - k)?);
                n = k;
            } else {
                proof.push(self.subtree(start, k)?);
                start += k;
                m -= k;
                n -= k;
                b = false;
            }
        }
        if !b {
            proof.push(self.subtree(start, n)?);
        }
        proof.reverse();
        Ok(proof)
    }
}

/// Checks that `leaf` is entry `index` of the tree of `size` entries with root `root`
/// (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), Error> {
    let bad = Err(Error::ProofFailed(LogProof::Inclusion));
    if index >= size || proof.len() > MAX_PROOF_LEN {
        return bad;
    }
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if sn == 0 {
            return bad;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn == 0 && &r == root { Ok(()) } else { bad }
}

/// Checks that the tree of `new_size` entries with root `new_root` extends the tree of
/// `old_size` entries with root `old_root` (RFC 9162 §2.1.4.2).
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), Error> {
    let bad = Err(Error::ProofFailed(LogProof::Consistency));
    if old_size > new_size || proof.len() > MAX_PROOF_LEN {
        return bad;
    }
    if old_size == new_size {
        return if proof.is_empty() && old_root == new_root {
            Ok(())
        } else {
            bad
        };
    }
    if old_size == 0 {
        return if proof.is_empty() { Ok(()) } else { bad };
    }
    let mut path: Vec<Hash> = proof.to_vec();
    if old_size.is_power_of_two() {
        path.insert(0, *old_root);
    }
    let (mut fn_, mut sn) = (old_size - 1, new_size - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let Some((first, rest)) = path.split_first() else {
        return bad;
    };
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if sn == 0 {
            return bad;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn == 0 && &fr == old_root && &sr == new_root {
        Ok(())
    } else {
        bad
    }
}

/// What a signed tree head says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeHead {
    /// Which log (e.g. a hash of the node's identity key).
    pub log_id: Hash,
    /// Number of entries.
    pub size: u64,
    /// Root of the tree of those entries.
    pub root: Hash,
    /// When it was signed (unix seconds).
    pub timestamp: i64,
}

impl TreeHead {
    /// The signed bytes: tag ‖ log id ‖ size ‖ root ‖ timestamp.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(crate::tag::TREE_HEAD.len() + 80);
        out.extend_from_slice(crate::tag::TREE_HEAD);
        out.extend_from_slice(&self.log_id);
        out.extend_from_slice(&self.size.to_be_bytes());
        out.extend_from_slice(&self.root);
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out
    }

    /// Signs this head with the log's identity key.
    pub fn sign(&self, key: &crate::identity::IdentityKey) -> SignedTreeHead {
        SignedTreeHead {
            head: *self,
            signature: key.signing_key().sign(&self.signed_bytes()),
        }
    }
}

/// A tree head with the log's signature (ECDSA P-256, SHA-256).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedTreeHead {
    /// The head.
    pub head: TreeHead,
    /// The signature over [`TreeHead::signed_bytes`].
    pub signature: Signature,
}

/// The log id of the log kept under `key`: SHA-256 of its SEC1 encoding.
pub fn log_id(key: &VerifyingKey) -> Hash {
    Sha256::digest(key.to_sec1_bytes()).into()
}

impl SignedTreeHead {
    /// Checks that the head names the log of `key` ([`log_id`]) and that `key` signed
    /// it. Both, always: a signature alone is not enough, since a key that also signs
    /// other 100-byte messages could be made to sign bytes that parse as a head of
    /// some other log.
    pub fn verify(&self, key: &VerifyingKey) -> Result<&TreeHead, Error> {
        if self.head.log_id != log_id(key) {
            return Err(Error::HeadOfAnotherLog);
        }
        // Public data: ring's verification (five times `p256`'s here).
        let point: [u8; 65] =
            p256::elliptic_curve::sec1::ToSec1Point::to_sec1_point(key.as_affine(), false)
                .as_bytes()
                .try_into()
                .map_err(|_| Error::BadHeadSignature)?;
        if !phalanx_types::ecdsa::verify_p256_point(
            &point,
            &self.head.signed_bytes(),
            &self.signature.to_bytes(),
        ) {
            return Err(Error::BadHeadSignature);
        }
        Ok(&self.head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// MTH straight from RFC 9162's recursive definition.
    fn reference_root(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = split(n as u64) as usize;
                node_hash(&reference_root(&leaves[..k]), &reference_root(&leaves[k..]))
            }
        }
    }

    #[test]
    fn roots_match_the_recursive_definition() {
        let mut log = MerkleLog::new();
        let mut leaves = Vec::new();
        assert_eq!(log.root(), empty_root());
        for i in 0..70u32 {
            let (index, h) = log.append(&i.to_be_bytes());
            assert_eq!(index, u64::from(i));
            leaves.push(h);
            assert_eq!(log.root(), reference_root(&leaves), "size {}", i + 1);
            for old in 0..=leaves.len() {
                assert_eq!(
                    log.root_at(old as u64).unwrap(),
                    reference_root(&leaves[..old])
                );
            }
        }
        assert_eq!(MerkleLog::from_leaf_hashes(leaves.clone()), log);
    }
}
