//! A gatekeeper node (feature `node`): the [`Gatekeeper`] over its [`NodeStore`], so
//! every release is durable before it is answered, and the node restarts from disk
//! into the same state (shares, identity, log).
//!
//! Installing and retiring epochs are logged too ([`RecordKind`]), so the log records
//! every change of what the node can derive, not only releases.
//!
//! Ordering of a release: authorize and evaluate in memory, append the record to the
//! in-memory log and write its leaf to the store (in log order, under the gatekeeper's
//! lock), then wait until the store is synced through that leaf, then answer. If the
//! write fails the in-memory record is dropped and the request fails; if the sync fails
//! the request fails. The sync happens outside the lock and covers every record
//! written before it, so releases that arrive together share one sync (group commit)
//! instead of paying one each, one after the other. An answer's inclusion proof and
//! signed head cover durable records only, and so does every head or consistency
//! proof the node serves otherwise ([`Node::tree_head`] syncs through its size first).

use crate::gatekeeper::{Gatekeeper, GatekeeperError, RecordKind, ReleaseRequest, ReleaseResponse};
use crate::identity::IdentityKey;
use crate::release::{Jwks, ReleasePolicy};
use crate::round::{RoundId, RoundResult, RoundSpec};
use crate::share::NodeIndex;
use crate::store::{EpochState, NodeStore, RoundRecord, StoreError};
use crate::translog::{Hash, SignedTreeHead};
use phalanx_types::{Epoch, TenantId};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

/// Why a node operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// The release was refused or failed.
    #[error(transparent)]
    Release(#[from] GatekeeperError),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The node's state does not fit together (e.g. a share of another index).
    #[error("inconsistent node state: {0}")]
    Inconsistent(String),
}

/// What a node reports about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStatus {
    /// Its index.
    pub index: NodeIndex,
    /// Its identity key, SEC1 compressed.
    pub identity_key: Vec<u8>,
    /// Epochs it holds a share of.
    pub epochs: Vec<Epoch>,
    /// Entries in its transparency log.
    pub log_size: u64,
}

/// A gatekeeper with durable state. Share as `Arc<Node>`.
#[derive(Debug)]
pub struct Node {
    gatekeeper: Mutex<Gatekeeper>,
    store: NodeStore,
    identity: IdentityKey,
    /// Releases per token, until the token expires.
    uses: Mutex<TokenUses>,
    /// Set when a token names a signing key the JWKS lacks (a refresh may help).
    unknown_kid: std::sync::atomic::AtomicBool,
    /// The attestation token this node registered with (served on `Status`).
    evidence: std::sync::RwLock<String>,
    /// Log size written to the store (advanced under the gatekeeper's lock).
    log_written: std::sync::atomic::AtomicU64,
    /// Log size known durable; held while syncing, so releases that wait for the same
    /// sync share it (group commit).
    log_synced: Mutex<u64>,
}

/// Most releases one attestation token may obtain from one node: a worker needs a few
/// key ids per attestation, a replaying attacker many.
pub const MAX_RELEASES_PER_TOKEN: u32 = 256;
/// Most distinct live tokens tracked per tenant.
pub const MAX_TRACKED_TOKENS: usize = 16_384;
/// Most tenants tracked at once (a release policy allows a handful).
pub const MAX_TRACKED_TENANTS: usize = 256;

/// How many releases each live token obtained, per tenant, bounded (sans-IO). A full
/// table of live tokens refuses new tokens of *that tenant* only: a tenant that mints
/// tokens by the thousand (a misbehaving allowed worker, or its attestation service)
/// fills its own share, never locks others out (review NL6). The tenants the release
/// policy names (grants, contract runtimes) always have a share; the others — any TEE
/// may fetch its own tenant's keys, and tenants are cheap to make — compete for at most
/// `tenants` shares. Expired entries are dropped when a table is full. (Within one
/// tenant, a worker of that very code that floods it locks out its peers: allowed code
/// that misbehaves is out of this bound's reach.)
#[derive(Debug)]
pub struct TokenUses {
    per_tenant: usize,
    tenants: usize,
    reserved: std::collections::HashSet<TenantId>,
    table: HashMap<TenantId, HashMap<[u8; 32], (u32, i64)>>,
}

impl TokenUses {
    /// At most `per_tenant` live tokens for each of the `reserved` tenants and of at
    /// most `tenants` others.
    pub fn new(
        per_tenant: usize,
        tenants: usize,
        reserved: std::collections::HashSet<TenantId>,
    ) -> Self {
        Self {
            per_tenant,
            tenants,
            reserved,
            table: HashMap::new(),
        }
    }

    /// Tenants with a table now, reserved ones aside.
    fn others(&self) -> usize {
        self.table
            .keys()
            .filter(|t| !self.reserved.contains(t))
            .count()
    }

    /// Counts one release of `token` (valid until `expires`) for `tenant` at `now`,
    /// refusing past [`MAX_RELEASES_PER_TOKEN`], and `Busy` when the tenant's share (or
    /// the tenant table) is full of live tokens.
    pub fn count(
        &mut self,
        tenant: TenantId,
        token: &str,
        expires: i64,
        now: i64,
    ) -> Result<(), GatekeeperError> {
        if !self.table.contains_key(&tenant)
            && !self.reserved.contains(&tenant)
            && self.others() >= self.tenants
        {
            self.table.retain(|_, t| {
                t.retain(|_, (_, until)| *until > now);
                !t.is_empty()
            });
            if self.others() >= self.tenants {
                return Err(GatekeeperError::Busy);
            }
        }
        let tokens = self.table.entry(tenant).or_default();
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if !tokens.contains_key(&key) && tokens.len() >= self.per_tenant {
            tokens.retain(|_, (_, until)| *until > now);
            if tokens.len() >= self.per_tenant {
                return Err(GatekeeperError::Busy);
            }
        }
        let entry = tokens.entry(key).or_insert((0, expires));
        if entry.0 >= MAX_RELEASES_PER_TOKEN {
            return Err(GatekeeperError::TokenOverused(MAX_RELEASES_PER_TOKEN));
        }
        entry.0 += 1;
        Ok(())
    }
}

impl Node {
    /// Loads the node at `index` from `store` (generating its identity on first start).
    pub fn open<R: rand_core::CryptoRng + ?Sized>(
        store: NodeStore,
        index: NodeIndex,
        jwks: Jwks,
        policy: ReleasePolicy,
        rng: &mut R,
    ) -> Result<Self, NodeError> {
        let identity = store.identity(rng)?;
        let mut shares = BTreeMap::new();
        for (epoch, st) in store.epochs()? {
            if st.share.index != index {
                return Err(NodeError::Inconsistent(format!(
                    "epoch {epoch} holds the share of node {}",
                    st.share.index
                )));
            }
            shares.insert(epoch, st.share);
        }
        let log = store.log()?;
        // What a crashed process wrote may still be only in the page cache: make it
        // durable before any head over it is signed again.
        store.sync()?;
        let size = log.size();
        // The tenants the policy names keep a table of their own whatever others do.
        let reserved = policy
            .grants
            .iter()
            .map(|g| g.tenant)
            .chain(policy.contract_runtimes.iter().copied())
            .collect();
        Ok(Self {
            gatekeeper: Mutex::new(Gatekeeper::new(
                identity.clone(),
                index,
                shares,
                log,
                jwks,
                policy,
            )),
            store,
            identity,
            uses: Mutex::new(TokenUses::new(
                MAX_TRACKED_TOKENS,
                MAX_TRACKED_TENANTS,
                reserved,
            )),
            unknown_kid: std::sync::atomic::AtomicBool::new(false),
            evidence: std::sync::RwLock::new(String::new()),
            log_written: std::sync::atomic::AtomicU64::new(size),
            log_synced: Mutex::new(size),
        })
    }

    fn gk(&self) -> Result<std::sync::MutexGuard<'_, Gatekeeper>, NodeError> {
        self.gatekeeper
            .lock()
            .map_err(|_| NodeError::Inconsistent("lock poisoned".into()))
    }

    /// Installs this node's share of `epoch` (genesis, rotation, refresh), durably, and
    /// logs the event (epoch, MPK and commitments hashed into the record).
    pub fn install_epoch(
        &self,
        epoch: Epoch,
        state: &EpochState,
        now: i64,
    ) -> Result<(), NodeError> {
        let mut gk = self.gk()?;
        if state.share.index != gk.index() {
            return Err(NodeError::Inconsistent("a share of another node".into()));
        }
        self.store.put_epoch(epoch, state)?;
        gk.insert_share(epoch, state.share.clone());
        let mut h = Sha256::new();
        h.update(epoch.0.to_be_bytes());
        for c in &state.public.commitments().0 {
            h.update(crate::dleq::point_bytes(c));
        }
        self.log_event(
            &mut gk,
            RecordKind::EpochInstalled,
            now,
            &h.finalize().into(),
        )
    }

    /// Retires `epoch`: its share is erased (store compacted) and the event logged.
    pub fn retire_epoch(&self, epoch: Epoch, now: i64) -> Result<(), NodeError> {
        let mut gk = self.gk()?;
        self.store.remove_epoch(epoch)?;
        gk.remove_share(epoch);
        let detail: Hash = Sha256::digest(epoch.0.to_be_bytes()).into();
        self.log_event(&mut gk, RecordKind::EpochRetired, now, &detail)
    }

    fn log_event(
        &self,
        gk: &mut Gatekeeper,
        kind: RecordKind,
        now: i64,
        detail: &Hash,
    ) -> Result<(), NodeError> {
        let (index, leaf) = gk.log_event(kind, now, detail);
        if let Err(e) = self.store.append_log(index, &leaf) {
            gk.truncate_log(index);
            return Err(e.into());
        }
        self.synced_through(index + 1)
    }

    /// Notes that a synced write made the log's first `size` records durable (the
    /// write-ahead log is one sequence: a sync covers every record written before).
    /// Called under the gatekeeper's lock, which is always taken before `log_synced`.
    fn synced_through(&self, size: u64) -> Result<(), NodeError> {
        self.log_written
            .fetch_max(size, std::sync::atomic::Ordering::Release);
        let mut synced = self
            .log_synced
            .lock()
            .map_err(|_| NodeError::Inconsistent("lock poisoned".into()))?;
        *synced = (*synced).max(size);
        Ok(())
    }

    /// This node's identity key (signs its round messages; its TLS certificate carries
    /// the public half).
    pub fn identity(&self) -> &IdentityKey {
        &self.identity
    }

    /// This node's index.
    pub fn index(&self) -> Result<NodeIndex, NodeError> {
        Ok(self.gk()?.index())
    }

    /// This node's state of `epoch`, if it holds one.
    pub fn epoch_state(&self, epoch: Epoch) -> Result<Option<EpochState>, NodeError> {
        Ok(self.store.epochs()?.remove(&epoch))
    }

    /// Every round this node took part in.
    pub fn rounds(&self) -> Result<BTreeMap<RoundId, RoundRecord>, NodeError> {
        Ok(self.store.rounds()?)
    }

    /// This node's record of round `id`, if any.
    pub fn round(&self, id: &RoundId) -> Result<Option<RoundRecord>, NodeError> {
        Ok(self.store.round(id)?)
    }

    /// Durably records that this node computed `result` for `spec` (before it confirms
    /// the digest to anyone).
    pub fn prepare_round(&self, spec: &RoundSpec, result: &RoundResult) -> Result<(), NodeError> {
        let _gk = self.gk()?;
        self.store.put_round(
            &spec.id(),
            &RoundRecord::Prepared {
                spec: spec.encode(),
                digest: result.digest,
                state: result.state.clone(),
            },
        )?;
        Ok(())
    }

    /// Installs prepared round `id` (every participant confirmed): the new state, the
    /// committed record and a log entry, in one synced batch.
    pub fn commit_round(&self, id: &RoundId, now: i64) -> Result<(), NodeError> {
        let mut gk = self.gk()?;
        let Some(RoundRecord::Prepared {
            spec,
            digest,
            state,
        }) = self.store.round(id)?
        else {
            return Err(NodeError::Inconsistent(
                "commit of a round not prepared".into(),
            ));
        };
        let epoch = RoundSpec::decode(&spec)
            .map_err(|_| NodeError::Inconsistent("stored round spec".into()))?
            .kind
            .epoch();
        if state.share.index != gk.index() {
            return Err(NodeError::Inconsistent("a share of another node".into()));
        }
        let (index, leaf) = gk.log_event(RecordKind::RoundCommitted, now, &digest);
        let record = RoundRecord::Committed { spec, digest };
        if let Err(e) = self
            .store
            .finish_round(id, &record, Some((epoch, &state)), index, &leaf)
        {
            gk.truncate_log(index);
            return Err(e.into());
        }
        gk.insert_share(epoch, state.share);
        self.synced_through(index + 1)
    }

    /// Gives round `id` up for good (a prepared state is dropped), logged.
    pub fn abort_round(&self, id: &RoundId, reason: &str, now: i64) -> Result<(), NodeError> {
        let mut gk = self.gk()?;
        match self.store.round(id)? {
            Some(RoundRecord::Committed { .. }) => {
                return Err(NodeError::Inconsistent("abort of a committed round".into()));
            }
            Some(RoundRecord::Aborted { .. }) => return Ok(()),
            _ => {}
        }
        let (index, leaf) = gk.log_event(RecordKind::RoundAborted, now, id);
        let record = RoundRecord::Aborted {
            reason: reason.to_owned(),
        };
        if let Err(e) = self.store.finish_round(id, &record, None, index, &leaf) {
            gk.truncate_log(index);
            return Err(e.into());
        }
        self.synced_through(index + 1)
    }

    /// Releases (see the module doc for the ordering).
    pub fn release<R: rand_core::CryptoRng + ?Sized>(
        &self,
        req: &ReleaseRequest,
        now: i64,
        rng: &mut R,
    ) -> Result<ReleaseResponse, NodeError> {
        // The token's signature and claims are checked without the node's lock: an
        // unauthenticated caller costs a verification, never a wait for others.
        let trust = self.gk()?.trust();
        let authorized = trust
            .authorize(req, now)
            .inspect_err(|e| {
                if matches!(
                    e,
                    crate::release::ReleaseError::Token(phalanx_ear::EarError::UnknownSigningKey(
                        _
                    ))
                ) {
                    self.unknown_kid
                        .store(true, std::sync::atomic::Ordering::Relaxed);
                }
            })
            .map_err(GatekeeperError::Refused)?;
        self.uses
            .lock()
            .map_err(|_| NodeError::Inconsistent("lock poisoned".into()))?
            .count(authorized.tenant, &req.token, authorized.token_expires, now)?;
        let resp = {
            let mut gk = self.gk()?;
            let resp = gk.release_authorized(req, now, rng)?;
            let leaf = gk
                .log()
                .leaf(resp.log_index)
                .ok_or_else(|| NodeError::Inconsistent("log entry vanished".into()))?;
            if let Err(e) = self.store.append_log_unsynced(resp.log_index, &leaf) {
                gk.truncate_log(resp.log_index);
                return Err(e.into());
            }
            self.log_written
                .fetch_max(resp.log_index + 1, std::sync::atomic::Ordering::Release);
            resp
        };
        self.sync_log(resp.log_index + 1)?;
        Ok(resp)
    }

    /// Returns once the log's first `size` records are durable: one sync covers every
    /// record written before it, so concurrent releases share syncs (group commit)
    /// instead of paying one each under the gatekeeper's lock. A release whose sync
    /// fails is not answered; its record stays in the store, and a later answer covers
    /// it only once a later sync has succeeded.
    fn sync_log(&self, size: u64) -> Result<(), NodeError> {
        let mut synced = self
            .log_synced
            .lock()
            .map_err(|_| NodeError::Inconsistent("lock poisoned".into()))?;
        if *synced >= size {
            return Ok(());
        }
        // Only what was written before the sync becomes durable by it (a size asked for
        // beyond the log is not: its head is refused after).
        let written = self.log_written.load(std::sync::atomic::Ordering::Acquire);
        self.store.sync()?;
        *synced = (*synced).max(written);
        Ok(())
    }

    /// Replaces the attestation service's keys (a JWKS refresh).
    pub fn set_jwks(&self, jwks: Jwks) -> Result<(), NodeError> {
        self.gk()?.set_jwks(jwks);
        Ok(())
    }

    /// The attestation service's keys and the release policy in force.
    pub fn trust(
        &self,
    ) -> Result<std::sync::Arc<phalanx_release::gatekeeper::ReleaseTrust>, NodeError> {
        Ok(self.gk()?.trust())
    }

    /// Sets the attestation token this node registered with.
    pub fn set_evidence(&self, token: String) {
        if let Ok(mut e) = self.evidence.write() {
            *e = token;
        }
    }

    /// The attestation token this node registered with; empty outside any TEE.
    pub fn evidence(&self) -> String {
        self.evidence.read().map(|e| e.clone()).unwrap_or_default()
    }

    /// Whether a release named a signing key the JWKS lacks since the last call: the
    /// attestation service may have rotated its key, so refresh the JWKS.
    pub fn take_unknown_kid(&self) -> bool {
        self.unknown_kid
            .swap(false, std::sync::atomic::Ordering::Relaxed)
    }

    /// The committee's public key set of `epoch`, if this node holds that epoch.
    pub fn public_key_set(
        &self,
        epoch: Epoch,
    ) -> Result<Option<crate::share::PublicKeySet>, NodeError> {
        Ok(self.store.epochs()?.remove(&epoch).map(|st| st.public))
    }

    /// The node's status.
    pub fn status(&self) -> Result<NodeStatus, NodeError> {
        let gk = self.gk()?;
        Ok(NodeStatus {
            index: gk.index(),
            identity_key: gk.identity_key().to_sec1_bytes().to_vec(),
            epochs: gk.epochs().collect(),
            log_size: gk.log().size(),
        })
    }

    /// A signed head of the current log, or (`size` > 0) of the log as it stood at
    /// `size` entries. Signed only over durable records: the log is synced through the
    /// head's size first (a release in flight may have written a record not yet
    /// synced), so no head a crash could contradict ever leaves the node.
    pub fn tree_head(&self, size: u64, now: i64) -> Result<SignedTreeHead, NodeError> {
        let size = match size {
            0 => self.gk()?.log().size(),
            n => n,
        };
        self.sync_log(size)?;
        self.gk()?
            .tree_head_at(size, now)
            .map_err(|e| NodeError::Release(GatekeeperError::Crypto(e)))
    }

    /// A consistency proof between two sizes of the log (synced through `new` first,
    /// as for [`Self::tree_head`]).
    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>, NodeError> {
        self.sync_log(new)?;
        self.gk()?
            .log()
            .consistency_proof(old, new)
            .map_err(|e| NodeError::Release(GatekeeperError::Crypto(e)))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// NL6: one tenant filling its share of the token table refuses its own new tokens,
    /// never another tenant's; expired tokens make room.
    #[test]
    fn attack_nl6_a_full_token_table_refuses_only_the_flooding_tenant() {
        let (flood, other) = (TenantId::new([1; 32]), TenantId::new([2; 32]));
        let runtime = TenantId::new([9; 32]);
        let mut uses = TokenUses::new(100, 2, [runtime].into_iter().collect());
        for i in 0..100 {
            uses.count(flood, &format!("t{i}"), 1_000, 10).unwrap();
        }
        assert!(matches!(
            uses.count(flood, "one more", 1_000, 10),
            Err(GatekeeperError::Busy)
        ));
        // A token already counted still counts; another tenant is served.
        uses.count(flood, "t7", 1_000, 10).unwrap();
        uses.count(other, "mine", 1_000, 10).unwrap();
        // The tenant table is bounded too, and live tenants keep their place ...
        assert!(matches!(
            uses.count(TenantId::new([3; 32]), "x", 1_000, 10),
            Err(GatekeeperError::Busy)
        ));
        // ... but a tenant the policy names is always served.
        uses.count(runtime, "worker", 1_000, 10).unwrap();
        // ... until their tokens expire.
        uses.count(flood, "after", 2_000, 1_001).unwrap();
        uses.count(TenantId::new([3; 32]), "x", 2_000, 1_001)
            .unwrap();
        // The per-token limit stands.
        for _ in 1..MAX_RELEASES_PER_TOKEN {
            uses.count(TenantId::new([3; 32]), "x", 2_000, 1_001)
                .unwrap();
        }
        assert!(matches!(
            uses.count(TenantId::new([3; 32]), "x", 2_000, 1_001),
            Err(GatekeeperError::TokenOverused(_))
        ));
    }
}
