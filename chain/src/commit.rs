//! State commitments, sans-IO: the registry's facts — key → value,
//! e.g. a worker's record under its identity key — in a Jellyfish Merkle tree (`jmt`,
//! Penumbra's fork of Diem's: a 256-bit sparse Merkle tree whose subtrees of zero or one
//! leaf collapse, so a proof carries about log₂(n) sibling hashes). One root per update;
//! a proof shows a fact's value, or its absence, against a root.
//!
//! Every block header carries the root after its transactions
//! ([`crate::types::Block::state_root`]; the facts: [`crate::state::State`]'s
//! `facts`), so one header proves any fact at its height. Measured by
//! `benches/commit.rs`.
//!
//! - Keys are domain-separated: the tree's key is `SHA-256(tag ‖ fact key)`, the tag
//!   [`phalanx_types::tag::STATE_FACT`] for the registry's state and
//!   [`phalanx_types::tag::BLOCK_TX`] for a block's transactions ([`tx_root`]), so a key
//!   of one tree never collides with one of the other, or with another use of SHA-256. Values are stored as given (the tree hashes them itself, under its
//!   own leaf and node prefixes).
//! - Versions are a dense counter of updates (the registry writes one per block: every
//!   block records its parent's hash). The node store is shared by every clone
//!   ([`Commitment`] is cheap to clone, as the registry's state is cloned per block); a
//!   clone keeps proving what it committed to, as long as only one successor of a
//!   version is kept (the registry's one chain): writing a version drops whatever a
//!   discarded copy wrote at it or after ([`Commitment::apply`]).
//! - A proof travels as bytes ([`Commitment::prove`]); [`verify`] decodes it strictly
//!   (at most [`MAX_PROOF`] bytes, no trailing bytes, at most 256 siblings) before it
//!   checks anything. The decoder is fuzzed (`fuzz/checks/commit_proof.rs`).

use jmt::storage::{LeafNode, Node, NodeKey, TreeReader};
use jmt::{KeyHash, OwnedValue, RootHash, Version};
use sha2::Digest as _;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

type Hasher = sha2_jmt::Sha256;
type Tree<'a> = jmt::JellyfishMerkleTree<'a, Store, Hasher>;
type SparseProof = jmt::proof::SparseMerkleProof<Hasher>;

/// Largest encoded proof [`verify`] reads: 256 siblings and a leaf, with room to spare.
pub const MAX_PROOF: usize = 9 * 1024;

/// Why a commitment could not be updated, proven or verified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommitError {
    /// The proof's bytes do not decode (or exceed [`MAX_PROOF`]).
    #[error("the proof does not decode: {0}")]
    Malformed(String),
    /// The proof does not show this value (or absence) for this key under this root.
    #[error("the proof does not hold: {0}")]
    Invalid(String),
    /// The tree failed (a node missing from the store: a bug, or a poisoned lock).
    #[error("state commitment: {0}")]
    Tree(String),
}

/// Where a commitment's versions live once persisted (the ledger's rocksdb: written in
/// the same batch as their block): read when memory no longer holds them.
pub trait Backing: Send + Sync {
    /// The node under `key`, if stored.
    fn node(&self, key: &NodeKey) -> Result<Option<Node>, String>;
    /// The latest value of `key` written at or before `max_version`: `Some(None)` when
    /// that was a removal, `None` when it was never written.
    fn value(
        &self,
        max_version: Version,
        key: &KeyHash,
    ) -> Result<Option<Option<OwnedValue>>, String>;
}

/// What one version wrote: its new nodes and its values (`None`: removed), what a
/// [`Backing`] stores.
pub type Written = (Vec<(NodeKey, Node)>, Vec<(KeyHash, Option<OwnedValue>)>);

/// Versions a persisted commitment keeps in memory besides its backing.
const CACHED_VERSIONS: Version = 64;

/// The nodes and values of every version in memory, and below them, when persisted, a
/// backing holding the older ones.
#[derive(Default)]
struct Store {
    nodes: HashMap<NodeKey, Node>,
    /// The nodes each version made (to hand a version to the backing, and forget it).
    made: BTreeMap<Version, Vec<NodeKey>>,
    /// Versions persisted and older ones: read through here once forgotten in memory.
    backing: Option<Arc<dyn Backing>>,
    /// The newest version the backing holds: no copy may write it or an older one again
    /// (its nodes would shadow the stored ones).
    stored_up_to: Option<Version>,
    values: HashMap<KeyHash, BTreeMap<Version, Option<OwnedValue>>>,
    /// The keys each version wrote a value for (to drop a discarded version's values).
    written: BTreeMap<Version, Vec<KeyHash>>,
    /// The nodes each version made stale (to forget old versions).
    stale: BTreeMap<Version, Vec<NodeKey>>,
    /// The values each version superseded: key and the version of its previous value.
    superseded: BTreeMap<Version, Vec<(KeyHash, Version)>>,
    /// How many versions back stay provable (none: all).
    keep: Option<u64>,
}

impl Store {
    /// Forgets what only versions before `oldest` need: the nodes they made stale by
    /// `oldest`, each key's values superseded by `oldest`, and a removed key's marker
    /// once nothing older is kept.
    fn forget_before(&mut self, oldest: Version) {
        let old: Vec<Version> = self.stale.range(..=oldest).map(|(v, _)| *v).collect();
        for v in old {
            for node in self.stale.remove(&v).unwrap_or_default() {
                self.nodes.remove(&node);
            }
        }
        let old: Vec<Version> = self.superseded.range(..=oldest).map(|(v, _)| *v).collect();
        for v in old {
            for (k, previous) in self.superseded.remove(&v).unwrap_or_default() {
                let Some(by_version) = self.values.get_mut(&k) else {
                    continue;
                };
                by_version.remove(&previous);
                // A removal that is all that is left of a key reads as the key's absence.
                if by_version.len() == 1 && by_version.get(&v).is_some_and(Option::is_none) {
                    self.values.remove(&k);
                }
            }
        }
        // Only versions still kept can be discarded and written again (the nodes they
        // made that are still live stay; only the bookkeeping goes).
        let old: Vec<Version> = self.written.range(..oldest).map(|(v, _)| *v).collect();
        for v in old {
            self.written.remove(&v);
        }
        let old: Vec<Version> = self.made.range(..oldest).map(|(v, _)| *v).collect();
        for v in old {
            self.made.remove(&v);
        }
    }

    /// How many values the store holds (all versions kept).
    fn value_count(&self) -> usize {
        self.values.values().map(BTreeMap::len).sum()
    }
}

impl TreeReader for Store {
    fn get_node_option(&self, node_key: &NodeKey) -> anyhow::Result<Option<Node>> {
        if let Some(n) = self.nodes.get(node_key) {
            return Ok(Some(n.clone()));
        }
        match &self.backing {
            Some(b) => b.node(node_key).map_err(anyhow::Error::msg),
            None => Ok(None),
        }
    }

    fn get_value_option(
        &self,
        max_version: Version,
        key_hash: KeyHash,
    ) -> anyhow::Result<Option<OwnedValue>> {
        // Memory holds every version after those it forgot, so its latest at or before
        // `max_version`, when it has one, is the latest there is.
        if let Some((_, value)) = self
            .values
            .get(&key_hash)
            .and_then(|v| v.range(..=max_version).next_back())
        {
            return Ok(value.clone());
        }
        match &self.backing {
            Some(b) => Ok(b
                .value(max_version, &key_hash)
                .map_err(anyhow::Error::msg)?
                .flatten()),
            None => Ok(None),
        }
    }

    /// Used only to restore a tree from a snapshot, which this store never does.
    fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(NodeKey, LeafNode)>> {
        Ok(None)
    }
}

/// A commitment to a set of facts; clones share the node store and each keeps its own
/// version.
#[derive(Clone)]
pub struct Commitment {
    store: Arc<RwLock<Store>>,
    /// The latest version this commitment stands at (none: empty).
    version: Option<Version>,
    /// Its root (kept: a copy reads it without the store, whose older versions may be
    /// gone with the ledger that kept them).
    root: [u8; 32],
    /// The domain tag of its keys.
    tag: &'static [u8],
}

impl Default for Commitment {
    fn default() -> Self {
        Self {
            store: Default::default(),
            version: None,
            root: empty_root(),
            tag: phalanx_types::tag::STATE_FACT,
        }
    }
}

impl std::fmt::Debug for Commitment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Commitment")
            .field("version", &self.version)
            .field("root", &crate::hex(&self.root()))
            .finish()
    }
}

/// The state tree's key for the fact `key`.
pub fn key_hash(key: &[u8]) -> KeyHash {
    tagged_key(phalanx_types::tag::STATE_FACT, key)
}

fn tagged_key(tag: &[u8], key: &[u8]) -> KeyHash {
    let mut h = sha2::Sha256::new();
    h.update(tag);
    h.update(key);
    KeyHash(h.finalize().into())
}

/// The root of a commitment to nothing.
pub fn empty_root() -> [u8; 32] {
    Tree::EMPTY_ROOT.0
}

fn tree_err(e: impl std::fmt::Display) -> CommitError {
    CommitError::Tree(e.to_string())
}

impl Commitment {
    /// A commitment to nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// A commitment to nothing whose tree keys are `SHA-256(tag ‖ key)`: another tree
    /// than the registry's facts (a block's transactions, a contract's state), whose
    /// keys never collide with theirs.
    pub fn tagged(tag: &'static [u8]) -> Self {
        Self {
            tag,
            ..Self::default()
        }
    }

    /// The current root.
    pub fn root(&self) -> [u8; 32] {
        self.root
    }

    /// Sets each `(key, value)` (`None`: removes the fact) and returns the new root.
    /// Applying the same facts in any order or batching gives the same root.
    pub fn update(
        &mut self,
        changes: impl IntoIterator<Item = (Vec<u8>, Option<Vec<u8>>)>,
    ) -> Result<[u8; 32], CommitError> {
        let pending = self.preview(changes)?;
        let root = pending.root;
        self.apply(pending)?;
        Ok(root)
    }

    /// What [`Self::update`] would make the root, written nowhere yet: a block's root is
    /// checked (or, by its producer, computed) before the block is accepted.
    pub fn preview(
        &self,
        changes: impl IntoIterator<Item = (Vec<u8>, Option<Vec<u8>>)>,
    ) -> Result<Pending, CommitError> {
        // The last write of a key in one batch wins (the tree wants each key once).
        let set: BTreeMap<KeyHash, Option<OwnedValue>> = changes
            .into_iter()
            .map(|(k, v)| (tagged_key(self.tag, &k), v))
            .collect();
        if set.is_empty() {
            return Ok(Pending {
                root: self.root(),
                version: self.version,
                batch: None,
                stale: Vec::new(),
            });
        }
        let version = self.version.map_or(0, |v| v + 1);
        let store = self.store.read().map_err(tree_err)?;
        let (root, batch) = Tree::new(&*store)
            .put_value_set(set, version)
            .map_err(tree_err)?;
        Ok(Pending {
            root: root.0,
            version: Some(version),
            stale: batch
                .stale_node_index_batch
                .into_iter()
                .map(|s| s.node_key)
                .collect(),
            batch: Some(batch.node_batch),
        })
    }

    /// Writes what [`Self::preview`] computed. A version is written by the latest copy
    /// that applies it: the registry keeps one chain, so of the copies of a state only
    /// one successor survives (what a discarded one wrote at that version or after is
    /// dropped).
    pub fn apply(&mut self, pending: Pending) -> Result<(), CommitError> {
        if let (Some(batch), Some(version)) = (pending.batch, pending.version) {
            let mut store = self.store.write().map_err(tree_err)?;
            if store.stored_up_to.is_some_and(|s| version <= s) {
                return Err(CommitError::Tree(format!(
                    "version {version} is stored already: a copy of an older state cannot \
                     write it again"
                )));
            }
            // A copy discarded after writing this version (or later) leaves values that
            // would shadow this one's: drop them. Its nodes are unreachable from any root
            // kept, and this batch's replace its nodes at this version.
            let stale: Vec<Version> = store.written.range(version..).map(|(v, _)| *v).collect();
            for v in stale {
                for k in store.written.remove(&v).unwrap_or_default() {
                    if let Some(by_version) = store.values.get_mut(&k) {
                        by_version.remove(&v);
                    }
                }
                for k in store.made.remove(&v).unwrap_or_default() {
                    store.nodes.remove(&k);
                }
                store.stale.remove(&v);
                store.superseded.remove(&v);
            }
            let mut made = Vec::new();
            for (k, n) in batch.nodes() {
                store.nodes.insert(k.clone(), n.clone());
                made.push(k.clone());
            }
            store.made.insert(version, made);
            let (mut keys, mut superseded) = (Vec::new(), Vec::new());
            for ((v, k), value) in batch.values() {
                let by_version = store.values.entry(*k).or_default();
                if let Some((previous, _)) = by_version.range(..*v).next_back() {
                    superseded.push((*k, *previous));
                }
                by_version.insert(*v, value.clone());
                keys.push(*k);
            }
            store.written.insert(version, keys);
            store.superseded.insert(version, superseded);
            store.stale.insert(version, pending.stale);
            if let Some(keep) = store.keep {
                store.forget_before(version.saturating_sub(keep));
            }
        }
        self.version = pending.version;
        self.root = pending.root;
        Ok(())
    }

    /// The value of fact `key` (or its absence) and a proof of it against [`Self::root`].
    pub fn prove(&self, key: &[u8]) -> Result<(Option<Vec<u8>>, Vec<u8>), CommitError> {
        self.prove_at(key, self.version)
    }

    /// From now on keep only the last `versions` versions provable (at least 1): what a
    /// light client, which never proves an old version, keeps. Memory then follows the
    /// number of facts, not the number of times they changed. (A copy of this
    /// commitment more than `versions` behind reads an empty root and proves nothing.)
    pub fn keep_only(&mut self, versions: u64) {
        if let Ok(mut store) = self.store.write() {
            store.keep = Some(versions.max(1));
        }
    }

    /// A commitment at `version` whose nodes and values are all in `backing` (a ledger
    /// reopened: nothing is recomputed).
    pub fn persisted_at(
        backing: Arc<dyn Backing>,
        version: Option<Version>,
    ) -> Result<Self, CommitError> {
        let store = Store {
            backing: Some(backing),
            stored_up_to: version,
            ..Store::default()
        };
        let root = match version {
            Some(v) => Tree::new(&store).get_root_hash(v).map_err(tree_err)?.0,
            None => empty_root(),
        };
        Ok(Self {
            store: Arc::new(RwLock::new(store)),
            version,
            root,
            tag: phalanx_types::tag::STATE_FACT,
        })
    }

    /// From now on read what memory forgot from `backing` (see [`Self::persisted`]).
    pub fn set_backing(&mut self, backing: Arc<dyn Backing>) {
        if let Ok(mut store) = self.store.write() {
            store.backing = Some(backing);
        }
    }

    /// What `version` wrote, for its [`Backing`] (none when it wrote nothing, or memory
    /// has forgotten it).
    pub fn written(&self, version: Version) -> Result<Written, CommitError> {
        let store = self.store.read().map_err(tree_err)?;
        let nodes = store
            .made
            .get(&version)
            .into_iter()
            .flatten()
            .filter_map(|k| store.nodes.get(k).map(|n| (k.clone(), n.clone())))
            .collect();
        let values = store
            .written
            .get(&version)
            .into_iter()
            .flatten()
            .filter_map(|k| {
                let v = store.values.get(k)?.get(&version)?;
                Some((*k, v.clone()))
            })
            .collect();
        Ok((nodes, values))
    }

    /// Says that the backing now holds every version up to `version`: memory forgets
    /// all but the last 64 of them (reads go to the backing), so it
    /// follows the recent changes, not the chain. Without a backing, nothing happens.
    pub fn persisted(&self, version: Version) {
        let Ok(mut store) = self.store.write() else {
            return;
        };
        if store.backing.is_none() {
            return;
        }
        store.stored_up_to = store.stored_up_to.max(Some(version));
        if version < CACHED_VERSIONS {
            return;
        }
        let before = version - CACHED_VERSIONS;
        let old: Vec<Version> = store.made.range(..before).map(|(v, _)| *v).collect();
        for v in old {
            for k in store.made.remove(&v).unwrap_or_default() {
                store.nodes.remove(&k);
            }
            for k in store.written.remove(&v).unwrap_or_default() {
                if let Some(by_version) = store.values.get_mut(&k) {
                    by_version.remove(&v);
                    if by_version.is_empty() {
                        store.values.remove(&k);
                    }
                }
            }
            store.stale.remove(&v);
            store.superseded.remove(&v);
        }
    }

    /// How many tree nodes and values the store holds (all versions kept).
    pub fn stored(&self) -> (usize, usize) {
        self.store
            .read()
            .map_or((0, 0), |s| (s.nodes.len(), s.value_count()))
    }

    /// The current value of fact `key` (`None`: absent).
    pub fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        let version = self.version?;
        let store = self.store.read().ok()?;
        store
            .get_value_option(version, tagged_key(self.tag, key))
            .ok()
            .flatten()
    }

    /// How many facts the tree holds at its current version (its root node's count).
    pub fn leaf_count(&self) -> Result<usize, CommitError> {
        let Some(version) = self.version else {
            return Ok(0);
        };
        let store = self.store.read().map_err(tree_err)?;
        Tree::new(&*store).get_leaf_count(version).map_err(tree_err)
    }

    /// The version this commitment stands at (none: empty).
    pub fn version(&self) -> Option<Version> {
        self.version
    }

    /// [`Self::prove`] as of an earlier `version` of this commitment (the store keeps
    /// every version its one chain wrote; none: the empty tree).
    pub fn prove_at(
        &self,
        key: &[u8],
        version: Option<Version>,
    ) -> Result<(Option<Vec<u8>>, Vec<u8>), CommitError> {
        if version > self.version {
            return Err(CommitError::Tree(format!(
                "version {version:?} is after this commitment's {:?}",
                self.version
            )));
        }
        let Some(version) = version else {
            // Nothing committed: the empty tree's proof (no leaf, no siblings).
            let proof = borsh::to_vec(&EMPTY_PROOF).map_err(tree_err)?;
            return Ok((None, proof));
        };
        let store = self.store.read().map_err(tree_err)?;
        // jmt unwraps a node read while it builds a proof: a backing that fails (a disk
        // error, a ledger closed under a copy of its state) must not take the caller down.
        let (value, proof) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            Tree::new(&*store).get_with_proof(tagged_key(self.tag, key), version)
        }))
        .map_err(|_| CommitError::Tree("the tree's store failed while proving".into()))?
        .map_err(tree_err)?;
        let bytes = borsh::to_vec(&proof).map_err(tree_err)?;
        Ok((value, bytes))
    }
}

/// The root of a block's transactions: the tree (keys tagged
/// [`phalanx_types::tag::BLOCK_TX`]) whose key `tx/` ‖ index (`u32`, big-endian) holds
/// the transaction's encoding, so [`prove_tx`]'s proof shows one transaction of a block
/// against its header ([`verify_tx`]).
pub fn tx_root<'a>(txs: impl IntoIterator<Item = &'a [u8]>) -> Result<[u8; 32], CommitError> {
    Ok(tx_tree().preview(tx_facts(txs))?.root)
}

fn tx_tree() -> Commitment {
    Commitment::tagged(phalanx_types::tag::BLOCK_TX)
}

fn tx_facts<'a>(
    txs: impl IntoIterator<Item = &'a [u8]>,
) -> impl Iterator<Item = (Vec<u8>, Option<Vec<u8>>)> {
    txs.into_iter()
        .enumerate()
        .map(|(i, tx)| (tx_key(i), Some(tx.to_vec())))
}

/// The key of a block's `index`th transaction.
pub fn tx_key(index: usize) -> Vec<u8> {
    [b"tx/".as_slice(), &(index as u32).to_be_bytes()].concat()
}

/// A proof that `txs[index]` is that transaction of the block whose [`tx_root`] is
/// built from `txs`.
pub fn prove_tx<'a>(
    txs: impl IntoIterator<Item = &'a [u8]>,
    index: usize,
) -> Result<Vec<u8>, CommitError> {
    let mut c = tx_tree();
    c.update(tx_facts(txs))?;
    Ok(c.prove(&tx_key(index))?.1)
}

/// Checks that `proof` shows `tx` as the `index`th transaction under `tx_root`.
pub fn verify_tx(
    tx_root: &[u8; 32],
    index: usize,
    tx: &[u8],
    proof: &[u8],
) -> Result<(), CommitError> {
    verify_tagged(
        phalanx_types::tag::BLOCK_TX,
        tx_root,
        &tx_key(index),
        Some(tx),
        proof,
    )
}

/// An update computed by [`Commitment::preview`], not yet written.
#[derive(Debug)]
pub struct Pending {
    /// The root it leads to.
    pub root: [u8; 32],
    version: Option<Version>,
    batch: Option<jmt::storage::NodeBatch>,
    /// The nodes this version makes stale.
    stale: Vec<NodeKey>,
}

/// The encoding of the empty tree's proof: no leaf (`0`), no siblings (`u32` 0).
const EMPTY_PROOF: (u8, u32) = (0, 0);

/// Checks that `proof` shows fact `key` with `value` (`None`: absent) under the state
/// root `root`.
pub fn verify(
    root: &[u8; 32],
    key: &[u8],
    value: Option<&[u8]>,
    proof: &[u8],
) -> Result<(), CommitError> {
    verify_tagged(phalanx_types::tag::STATE_FACT, root, key, value, proof)
}

fn verify_tagged(
    tag: &[u8],
    root: &[u8; 32],
    key: &[u8],
    value: Option<&[u8]>,
    proof: &[u8],
) -> Result<(), CommitError> {
    if proof.len() > MAX_PROOF {
        return Err(CommitError::Malformed(format!(
            "{} bytes, at most {MAX_PROOF}",
            proof.len()
        )));
    }
    let decoded: SparseProof =
        borsh::from_slice(proof).map_err(|e| CommitError::Malformed(e.to_string()))?;
    decoded
        .verify(RootHash(*root), tagged_key(tag, key), value)
        .map_err(|e| CommitError::Invalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn fact(i: u32) -> (Vec<u8>, Option<Vec<u8>>) {
        (
            format!("worker/{i}").into_bytes(),
            Some(format!("record {i}").into_bytes()),
        )
    }

    #[test]
    fn proofs_show_values_and_absences_and_nothing_else() {
        let mut c = Commitment::new();
        assert_eq!(c.root(), empty_root());
        let (none, p) = c.prove(b"worker/1").unwrap();
        assert!(none.is_none());
        verify(&c.root(), b"worker/1", None, &p).unwrap();
        let root = c.update((0..100).map(fact)).unwrap();
        assert_eq!(root, c.root());
        let (v, p) = c.prove(b"worker/7").unwrap();
        assert_eq!(v.as_deref(), Some(&b"record 7"[..]));
        verify(&root, b"worker/7", Some(b"record 7"), &p).unwrap();
        // Another value, another key, absence claimed where the fact exists.
        assert!(verify(&root, b"worker/7", Some(b"record 8"), &p).is_err());
        assert!(verify(&root, b"worker/8", Some(b"record 7"), &p).is_err());
        assert!(verify(&root, b"worker/7", None, &p).is_err());
        // Absence, proven, and not mistaken for a value.
        let (none, p) = c.prove(b"worker/1000").unwrap();
        assert!(none.is_none());
        verify(&root, b"worker/1000", None, &p).unwrap();
        assert!(verify(&root, b"worker/1000", Some(b"x"), &p).is_err());
        // Another root: refused.
        let mut other = Commitment::new();
        other.update([fact(7)]).unwrap();
        let (_, p) = c.prove(b"worker/7").unwrap();
        assert!(verify(&other.root(), b"worker/7", Some(b"record 7"), &p).is_err());
    }

    #[test]
    fn tampered_proofs_are_refused_without_panicking() {
        let mut c = Commitment::new();
        let root = c.update((0..1000).map(fact)).unwrap();
        let (_, p) = c.prove(b"worker/42").unwrap();
        for i in 0..p.len() {
            let mut bad = p.clone();
            bad[i] ^= 0x01;
            assert!(
                verify(&root, b"worker/42", Some(b"record 42"), &bad).is_err(),
                "byte {i} flipped"
            );
        }
        for cut in 0..p.len() {
            assert!(verify(&root, b"worker/42", Some(b"record 42"), &p[..cut]).is_err());
        }
        let long = [p.clone(), vec![0]].concat();
        assert!(matches!(
            verify(&root, b"worker/42", Some(b"record 42"), &long),
            Err(CommitError::Malformed(_))
        ));
        assert!(matches!(
            verify(&root, b"k", None, &vec![0; MAX_PROOF + 1]),
            Err(CommitError::Malformed(_))
        ));
    }

    #[test]
    fn the_root_depends_on_the_facts_only() {
        let mut one = Commitment::new();
        one.update((0..50).map(fact)).unwrap();
        let mut batches = Commitment::new();
        batches.update((25..50).rev().map(fact)).unwrap();
        batches.update((0..25).map(fact)).unwrap();
        assert_eq!(one.root(), batches.root());
        // Removing a fact is proven absent and restores the earlier root.
        let before = one.root();
        one.update([fact(999)]).unwrap();
        assert_ne!(one.root(), before);
        one.update([(b"worker/999".to_vec(), None)]).unwrap();
        assert_eq!(one.root(), before);
        let (v, p) = one.prove(b"worker/999").unwrap();
        assert!(v.is_none());
        verify(&before, b"worker/999", None, &p).unwrap();
    }

    #[test]
    fn a_discarded_successor_leaves_nothing_behind() {
        let mut kept = Commitment::new();
        kept.update((0..10).map(fact)).unwrap();
        // A copy writes version 1 (a block sealed, then not written), then is dropped.
        let mut discarded = kept.clone();
        discarded
            .update([(b"worker/77".to_vec(), Some(b"ghost".to_vec()))])
            .unwrap();
        drop(discarded);
        kept.update([fact(11)]).unwrap();
        let (v, p) = kept.prove(b"worker/77").unwrap();
        assert!(v.is_none(), "a discarded version's value shows through");
        verify(&kept.root(), b"worker/77", None, &p).unwrap();
        let (v, p) = kept.prove(b"worker/11").unwrap();
        verify(&kept.root(), b"worker/11", v.as_deref(), &p).unwrap();
    }

    #[test]
    fn a_commitment_keeping_few_versions_stays_small_and_proves_them() {
        let (mut all, mut few) = (Commitment::new(), Commitment::new());
        few.keep_only(4);
        for round in 0..300u32 {
            // The same 50 facts changed over and over, as a chain's state is.
            let changes: Vec<_> = (0..5)
                .map(|i| {
                    let k = format!("worker/{}", (round * 5 + i) % 50).into_bytes();
                    (k, Some(round.to_be_bytes().to_vec()))
                })
                .collect();
            all.update(changes.clone()).unwrap();
            few.update(changes).unwrap();
        }
        assert_eq!(all.root(), few.root());
        let ((few_nodes, few_values), (all_nodes, all_values)) = (few.stored(), all.stored());
        assert!(
            few_nodes * 10 < all_nodes && few_values * 10 < all_values,
            "{few_nodes} nodes and {few_values} values kept of {all_nodes} and {all_values}"
        );
        // Values: the 50 facts' latest and those of the 4 kept versions, no more.
        assert!(few_values <= 50 + 4 * 5, "{few_values} values");
        // The kept versions still prove every fact.
        let newest = few.version().unwrap();
        for v in newest - 3..=newest {
            for i in 0..50 {
                let key = format!("worker/{i}").into_bytes();
                let (value, proof) = few.prove_at(&key, Some(v)).unwrap();
                let (want, _) = all.prove_at(&key, Some(v)).unwrap();
                assert_eq!(value, want);
                let root = Tree::new(&*all.store.read().unwrap())
                    .get_root_hash(v)
                    .unwrap()
                    .0;
                verify(&root, &key, value.as_deref(), &proof).unwrap();
            }
        }
    }

    #[test]
    fn a_transaction_is_proven_in_its_block_and_nowhere_else() {
        let txs: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; 40]).collect();
        let root = tx_root(txs.iter().map(Vec::as_slice)).unwrap();
        let p = prove_tx(txs.iter().map(Vec::as_slice), 3).unwrap();
        verify_tx(&root, 3, &txs[3], &p).unwrap();
        assert!(verify_tx(&root, 2, &txs[3], &p).is_err());
        assert!(verify_tx(&root, 3, &txs[2], &p).is_err());
        // The state tree's keys are tagged apart: the same proof is no state proof.
        assert!(verify(&root, &tx_key(3), Some(&txs[3]), &p).is_err());
    }

    #[test]
    fn a_clone_keeps_proving_what_it_committed_to() {
        let mut a = Commitment::new();
        a.update((0..10).map(fact)).unwrap();
        let old = a.clone();
        let old_root = old.root();
        a.update([(b"worker/3".to_vec(), Some(b"changed".to_vec()))])
            .unwrap();
        assert_ne!(a.root(), old_root);
        let (v, p) = old.prove(b"worker/3").unwrap();
        assert_eq!(v.as_deref(), Some(&b"record 3"[..]));
        verify(&old_root, b"worker/3", Some(b"record 3"), &p).unwrap();
        // A preview writes nothing.
        let before = a.root();
        let pending = a.preview([fact(12)]).unwrap();
        assert_ne!(pending.root, before);
        assert_eq!(a.root(), before);
        a.apply(pending).unwrap();
        let (v, p) = a.prove(b"worker/12").unwrap();
        verify(&a.root(), b"worker/12", v.as_deref(), &p).unwrap();
    }
}
