//! A contract's keyed state root, kept as commands apply: what workers commit on the
//! registry (`CommitState`), sign in every answer's statement, and check a restored
//! checkpoint against.
//!
//! The entries sit in a Jellyfish Merkle tree ([`chain::commit::Commitment`], tagged
//! [`tag::CONTRACT_ENTRIES`]) under keys and leaves keyed by the contract's state-root
//! key, so nobody without the contract's secret can test a guess of the state (a bid,
//! a balance) against a root:
//!
//! ```text
//! entry key  = HMAC(state key, "phalanx/v1/contract-entry-key"  ‖ key)
//! tree key   = SHA-256("phalanx/v1/contract-entries" ‖ entry key)
//! tree value = HMAC(state key, "phalanx/v1/contract-entry-leaf" ‖ u32 len ‖ key ‖ u32 len ‖ value)
//! state root = HMAC(state key, "phalanx/v1/contract-state" ‖ the tree's root)
//! ```
//!
//! Removing an entry that does not exist changes nothing (the tree is not asked to).
//!
//! A command's writes update the tree in O(log n) of the contract's entries: the root of
//! a large contract costs about what a small one's does (`benches/worker.rs`,
//! `state_root/*`). The root depends only on the entries, never on the order they were
//! written in, so a worker that restores a checkpoint ([`StateRoot::of`], one batch) and
//! one that replayed every command agree.

use chain::commit::{CommitError, Commitment};
use hmac::{KeyInit as _, Mac as _};
use phalanx_contract::{Changes, State};
use phalanx_types::tag;
use zeroize::Zeroizing;

type Hmac = hmac::Hmac<sha2::Sha256>;

/// A contract's state root under its state-root key, kept up to date with its entries.
pub struct StateRoot {
    key: Zeroizing<[u8; 32]>,
    tree: Commitment,
}

impl std::fmt::Debug for StateRoot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateRoot")
            .field("root", &hex::encode(self.root()))
            .finish_non_exhaustive()
    }
}

impl StateRoot {
    /// The root of an empty state under `key`.
    pub fn new(key: &[u8; 32]) -> Self {
        let mut tree = Commitment::tagged(tag::CONTRACT_ENTRIES);
        // Only the newest version is ever read: the store keeps nothing older.
        tree.keep_only(1);
        Self {
            key: Zeroizing::new(*key),
            tree,
        }
    }

    /// The root of `state` under `key`, computed in one batch (a restored checkpoint).
    pub fn of(state: &State, key: &[u8; 32]) -> Result<Self, CommitError> {
        let mut root = Self::new(key);
        let leaves: Vec<_> = state.iter().map(|(k, v)| root.leaf(k, Some(v))).collect();
        root.tree.update(leaves)?;
        Ok(root)
    }

    /// Applies a command's changes to the root of `before`, the state they apply to
    /// (call it before [`State::apply`]). A removal of an entry `before` does not hold
    /// is no change: the tree is not asked to remember it.
    pub fn apply(&mut self, before: &State, changes: &Changes) -> Result<(), CommitError> {
        let leaves: Vec<_> = changes
            .0
            .iter()
            .filter(|(k, v)| v.is_some() || before.get(k).is_some())
            .map(|(k, v)| self.leaf(k, v.as_deref()))
            .collect();
        self.tree.update(leaves)?;
        Ok(())
    }

    /// The state root: `HMAC(state key, tag ‖ the tree's root)`.
    pub fn root(&self) -> [u8; 32] {
        let mut h = self.hmac(tag::CONTRACT_STATE);
        h.update(&self.tree.root());
        h.finalize().into_bytes().into()
    }

    /// The tree's key and value for an entry (`None`: removed).
    fn leaf(&self, key: &[u8], value: Option<&[u8]>) -> (Vec<u8>, Option<Vec<u8>>) {
        let mut k = self.hmac(tag::CONTRACT_ENTRY_KEY);
        k.update(key);
        let value = value.map(|v| {
            let mut h = self.hmac(tag::CONTRACT_ENTRY_LEAF);
            // Bounded by the runtime's limits (keys 256 bytes, values 64 KiB).
            h.update(&(key.len() as u32).to_be_bytes());
            h.update(key);
            h.update(&(v.len() as u32).to_be_bytes());
            h.update(v);
            h.finalize().into_bytes().to_vec()
        });
        (k.finalize().into_bytes().to_vec(), value)
    }

    fn hmac(&self, tag: &[u8]) -> Hmac {
        // HMAC takes a key of any length: a 32-byte key never fails.
        let mut h = Hmac::new_from_slice(self.key.as_slice())
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        h.update(tag);
        h
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn changes(entries: &[(&[u8], Option<&[u8]>)]) -> Changes {
        let mut c = Changes::default();
        for (k, v) in entries {
            c.0.insert(k.to_vec(), v.map(<[u8]>::to_vec));
        }
        c
    }

    /// Kept command by command, or computed from the final state in one batch: the same
    /// root (a restored checkpoint agrees with a replay), whatever was written and
    /// removed on the way.
    #[test]
    fn the_root_is_the_states_not_its_history() {
        let key = [7; 32];
        let (mut state, mut kept) = (State::default(), StateRoot::new(&key));
        let steps = [
            changes(&[(b"a", Some(b"1")), (b"b", Some(b"2"))]),
            changes(&[(b"a", Some(b"3")), (b"c", Some(b"4"))]),
            changes(&[(b"b", None), (b"d", Some(b""))]),
        ];
        let mut roots = vec![kept.root()];
        for c in &steps {
            kept.apply(&state, c).unwrap();
            state.apply(c);
            assert_eq!(kept.root(), StateRoot::of(&state, &key).unwrap().root());
            roots.push(kept.root());
        }
        roots.dedup();
        assert_eq!(roots.len(), steps.len() + 1, "every change moved the root");
        // Undoing a write gives the earlier root back.
        kept.apply(&state, &changes(&[(b"d", None)])).unwrap();
        state.apply(&changes(&[(b"d", None)]));
        assert_eq!(kept.root(), StateRoot::of(&state, &key).unwrap().root());
        // An empty value is an entry, not an absence.
        assert_ne!(roots[3], kept.root());
        // Removing what is not there changes nothing, and leaves nothing behind.
        let (before, stored) = (kept.root(), kept.tree.stored());
        for _ in 0..100 {
            kept.apply(&state, &changes(&[(b"never", None), (b"d", None)]))
                .unwrap();
        }
        assert_eq!((kept.root(), kept.tree.stored()), (before, stored));
    }

    /// Keyed: another contract's key commits the same entries differently, and the
    /// empty state's root is the key's too.
    #[test]
    fn the_root_is_keyed() {
        let mut state = State::default();
        state.apply(&changes(&[(b"bid", Some(b"4242"))]));
        let root = |s: &State, k: [u8; 32]| StateRoot::of(s, &k).unwrap().root();
        assert_ne!(root(&state, [1; 32]), root(&state, [2; 32]));
        assert_ne!(
            root(&State::default(), [1; 32]),
            root(&State::default(), [2; 32])
        );
        assert_ne!(root(&state, [1; 32]), root(&State::default(), [1; 32]));
        assert_eq!(
            StateRoot::new(&[1; 32]).root(),
            root(&State::default(), [1; 32])
        );
        // A key's bytes and a value's bytes are told apart (lengths are committed).
        let (mut a, mut b) = (State::default(), State::default());
        a.apply(&changes(&[(b"ab", Some(b"c"))]));
        b.apply(&changes(&[(b"a", Some(b"bc"))]));
        assert_ne!(root(&a, [1; 32]), root(&b, [1; 32]));
    }
}
