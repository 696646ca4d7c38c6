//! The key-release exchange between a worker and the gatekeepers, both halves, sans-IO.
//!
//! **Gatekeeper** ([`Gatekeeper::release`]): [`authorize`] the request (attestation
//! token, runtime data, HPKE key, tenant), evaluate its share of the key id's epoch at
//! `H2C(key id)` with a DLEQ proof, seal the partial to the worker's HPKE key
//! with the request transcript as HPKE `info`, append a release record to its
//! [`MerkleLog`], and answer with the sealed partial, its public share `S_i`, the
//! record's inclusion proof and a freshly signed tree head. The record is `LOG_ENTRY ‖
//! 1 ‖ node ‖ logged_at ‖ transcript ‖ evaluation`, the evaluation a hash of the key
//! id, `S_i` and the partial ([`phalanx_threshold::release_log`]): everything in it the
//! worker knows once it opened the envelope, so it can recompute the leaf, and a
//! partial whose proof fails against the `S_i` the log commits to is evidence
//! ([`PartialFault`]).
//!
//! **Worker** ([`assemble`]): for each answer, check the tree head's signature under
//! the gatekeeper's identity key, open the envelope, recompute the record and check its
//! inclusion, decode the partial and check it comes from that gatekeeper; then
//! [`combine`] verifies every DLEQ proof and combines `t` valid partials. Every
//! gatekeeper whose answer failed any step is named in [`Assembled::faulty`]; `n − t`
//! silent or lying gatekeepers are tolerated. One whose logged partial fails its proof
//! against the `S_i` it committed to leaves evidence ([`Assembled::evidence`]).
//!
//! The request transcript is `SHA-256(RELEASE_REQUEST ‖ len ‖ token ‖ len ‖ runtime
//! data ‖ key id encoding ‖ len ‖ purpose ‖ len ‖ HPKE key)`: a sealed partial opens
//! only for the request it answers.

use crate::envelope::{RecipientKey, Sealed, open, seal};
use crate::release::{Authorized, Jwks, ReleaseError, ReleasePolicy, authorize};
use p256::ProjectivePoint;
use p256::ecdsa::VerifyingKey;
use phalanx_threshold::derive::{KeyId, PartialEvaluation, combine, evaluate_for};
use phalanx_threshold::error::Error;
use phalanx_threshold::identity::IdentityKey;
use phalanx_threshold::share::{KeyShare, NodeIndex, PublicKeySet};
use phalanx_threshold::translog::{Hash, MerkleLog, SignedTreeHead, TreeHead};
use phalanx_types::Epoch;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A worker's request to one gatekeeper.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseRequest {
    /// The attestation result (ES256 EAR token).
    pub token: String,
    /// The runtime data the token binds ([`crate::release::WorkerRuntimeData`]).
    pub runtime_data: Vec<u8>,
    /// Which key.
    pub key_id: KeyId,
    /// Where to seal the partial (SEC1 uncompressed P-256).
    pub hpke_public_key: Vec<u8>,
}

fn put(h: &mut Sha256, bytes: &[u8]) {
    h.update((bytes.len() as u64).to_be_bytes());
    h.update(bytes);
}

impl ReleaseRequest {
    /// The request transcript (see the module doc).
    pub fn transcript(&self) -> Result<Hash, Error> {
        let mut h = Sha256::new();
        h.update(phalanx_threshold::tag::RELEASE_REQUEST);
        put(&mut h, self.token.as_bytes());
        put(&mut h, &self.runtime_data);
        h.update(self.key_id.encode_point_input()?);
        put(&mut h, self.key_id.purpose.as_bytes());
        put(&mut h, &self.hpke_public_key);
        Ok(h.finalize().into())
    }
}

pub use phalanx_threshold::release_log::{RecordKind, record, release_record};

/// A gatekeeper's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseResponse {
    /// Who answers.
    pub node: NodeIndex,
    /// The partial evaluation, sealed to the request's HPKE key.
    pub sealed: Sealed,
    /// The public share `S_i` it evaluated under (SEC1 uncompressed), as its log
    /// record commits to it.
    pub public_share: [u8; 65],
    /// When the release was logged.
    pub logged_at: i64,
    /// The record's position in the log.
    pub log_index: u64,
    /// Its inclusion proof in the tree of `tree_head.head.size` entries.
    pub inclusion_proof: Vec<Hash>,
    /// The log's signed tree head after the release.
    pub tree_head: SignedTreeHead,
}

/// Why a gatekeeper did not release.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GatekeeperError {
    /// The request is not authorized (the reason is safe to return to the caller).
    #[error("release refused: {0}")]
    Refused(#[from] ReleaseError),
    /// This gatekeeper holds no share of that epoch (unknown, or retired).
    #[error("no share for epoch {0}")]
    UnknownEpoch(Epoch),
    /// A cryptographic step failed.
    #[error(transparent)]
    Crypto(#[from] Error),
    /// This token was used for more releases than a worker needs.
    #[error("too many releases for one attestation token ({0}); attest again")]
    TokenOverused(u32),
    /// Too many distinct tokens are in use at once.
    #[error("too many attestation tokens in use; try again later")]
    Busy,
}

/// One gatekeeper's release state: its shares by epoch, its identity, its log.
#[derive(Debug)]
pub struct Gatekeeper {
    index: NodeIndex,
    identity: IdentityKey,
    /// Each share with its public share `s_i·G` (and its encoding), computed once when
    /// the share arrives.
    shares: BTreeMap<Epoch, (KeyShare, ProjectivePoint, [u8; 65])>,
    log: MerkleLog,
    log_id: Hash,
    trust: Arc<ReleaseTrust>,
}

/// A share with its public share, `s_i·G` (constant time: the table of `G`), and its
/// encoding.
fn with_public(share: KeyShare) -> (KeyShare, ProjectivePoint, [u8; 65]) {
    let public = phalanx_threshold::share::mul_g(share.secret.expose());
    let bytes = phalanx_threshold::release_log::share_bytes(&public);
    (share, public, bytes)
}

/// What release authorization reads: the attestation service's keys and the release
/// policy. Shared, so a caller can authorize outside the gatekeeper's lock.
#[derive(Debug, Clone)]
pub struct ReleaseTrust {
    /// The attestation service's signing keys.
    pub jwks: Jwks,
    /// What is released to whom.
    pub policy: ReleasePolicy,
}

impl Gatekeeper {
    /// A gatekeeper with the given identity and shares (epoch → share), trusting
    /// `jwks` for attestation results and releasing under `policy`; `log` is its log
    /// so far (empty on genesis).
    pub fn new(
        identity: IdentityKey,
        index: NodeIndex,
        shares: BTreeMap<Epoch, KeyShare>,
        log: MerkleLog,
        jwks: Jwks,
        policy: ReleasePolicy,
    ) -> Self {
        let log_id = phalanx_threshold::translog::log_id(&identity.verifying_key());
        Self {
            index,
            identity,
            shares: shares
                .into_iter()
                .map(|(epoch, share)| (epoch, with_public(share)))
                .collect(),
            log,
            log_id,
            trust: Arc::new(ReleaseTrust { jwks, policy }),
        }
    }

    /// The log (to persist its leaves, serve heads and consistency proofs).
    pub fn log(&self) -> &MerkleLog {
        &self.log
    }

    /// Drops every record from `size` on: the caller could not persist them (no head is
    /// signed over a record the store lacks, so a restart never forks the log).
    pub fn truncate_log(&mut self, size: u64) {
        self.log.truncate(size);
    }

    /// This gatekeeper's index.
    pub fn index(&self) -> NodeIndex {
        self.index
    }

    /// Its identity (public) key.
    pub fn identity_key(&self) -> VerifyingKey {
        self.identity.verifying_key()
    }

    /// The epochs it holds a share of.
    pub fn epochs(&self) -> impl Iterator<Item = Epoch> + '_ {
        self.shares.keys().copied()
    }

    /// Adds (or replaces) its share of `epoch`.
    pub fn insert_share(&mut self, epoch: Epoch, share: KeyShare) {
        self.shares.insert(epoch, with_public(share));
    }

    /// Forgets its share of `epoch`.
    pub fn remove_share(&mut self, epoch: Epoch) {
        self.shares.remove(&epoch);
    }

    /// Appends an event record to the log; returns its index and leaf hash.
    pub fn log_event(&mut self, kind: RecordKind, at: i64, detail: &[u8]) -> (u64, Hash) {
        self.log.append(&record(kind, self.index, at, detail))
    }

    /// Signs the current tree head.
    pub fn tree_head(&self, now: i64) -> SignedTreeHead {
        TreeHead {
            log_id: self.log_id,
            size: self.log.size(),
            root: self.log.root(),
            timestamp: now,
        }
        .sign(&self.identity)
    }

    /// A signed head of the log as it stood at `size` entries (an auditor's check that
    /// an earlier head it holds is still this log's); refused past the log's size.
    pub fn tree_head_at(
        &self,
        size: u64,
        now: i64,
    ) -> Result<SignedTreeHead, phalanx_threshold::Error> {
        Ok(TreeHead {
            log_id: self.log_id,
            size,
            root: self.log.root_at(size)?,
            timestamp: now,
        }
        .sign(&self.identity))
    }

    /// Handles one release request at `now` (see the module doc). On success the log
    /// has grown by one record, which the caller persists before answering.
    pub fn release<R: rand_core::CryptoRng + ?Sized>(
        &mut self,
        req: &ReleaseRequest,
        now: i64,
        rng: &mut R,
    ) -> Result<(ReleaseResponse, Authorized), GatekeeperError> {
        let authorized = self.trust.authorize(req, now)?;
        let resp = self.release_authorized(req, now, rng)?;
        Ok((resp, authorized))
    }

    /// The part of [`Self::release`] after [`authorize`] accepted `req` (which a caller
    /// may run outside its lock): evaluate, seal, log.
    pub fn release_authorized<R: rand_core::CryptoRng + ?Sized>(
        &mut self,
        req: &ReleaseRequest,
        now: i64,
        rng: &mut R,
    ) -> Result<ReleaseResponse, GatekeeperError> {
        let (share, public_share, share_bytes) = self
            .shares
            .get(&req.key_id.epoch)
            .ok_or(GatekeeperError::UnknownEpoch(req.key_id.epoch))?;
        let partial = evaluate_for(share, public_share, &req.key_id, rng)?.to_bytes();
        let transcript = req.transcript()?;
        let sealed = seal(&req.hpke_public_key, &transcript, &partial)?;
        let evaluation = phalanx_threshold::release_log::evaluation(
            &req.key_id.encode_point_input()?,
            share_bytes,
            &partial,
        );
        let public_share = *share_bytes;
        let (log_index, _) =
            self.log
                .append(&release_record(self.index, now, &transcript, &evaluation));
        let size = self.log.size();
        let inclusion_proof = self.log.inclusion_proof(log_index, size)?;
        Ok(ReleaseResponse {
            node: self.index,
            sealed,
            public_share,
            logged_at: now,
            log_index,
            inclusion_proof,
            tree_head: self.tree_head(now),
        })
    }

    /// What authorization reads (cheap to clone: shared).
    pub fn trust(&self) -> Arc<ReleaseTrust> {
        self.trust.clone()
    }

    /// Replaces the attestation service's keys (after a JWKS refresh).
    pub fn set_jwks(&mut self, jwks: Jwks) {
        self.trust = Arc::new(ReleaseTrust {
            jwks,
            policy: self.trust.policy.clone(),
        });
    }
}

impl ReleaseTrust {
    /// [`authorize`]s `req` at `now`.
    pub fn authorize(&self, req: &ReleaseRequest, now: i64) -> Result<Authorized, ReleaseError> {
        authorize(
            &req.token,
            &self.jwks,
            &req.runtime_data,
            &req.hpke_public_key,
            &req.key_id,
            &self.policy,
            now,
        )
    }
}

/// What a worker gets from the answers.
#[derive(Debug)]
pub struct Assembled {
    /// The derived key.
    pub key: phalanx_threshold::derive::DerivedKey,
    /// Gatekeepers whose answer failed a check (log proof, envelope, or partial proof).
    pub faulty: Vec<NodeIndex>,
    /// Of those, the ones whose own log commits to a partial no honest gatekeeper
    /// sends: evidence for the registry.
    pub evidence: Vec<PartialFault>,
}

/// Evidence that a gatekeeper sent a partial no honest one sends: its signed head, and
/// the release its log holds under it, whose partial fails its proof against the
/// public share committed with it (`release_log::committed_partial_fails`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartialFault {
    /// The gatekeeper's identity key.
    pub identity: VerifyingKey,
    /// Its signed tree head that holds the release.
    pub head: SignedTreeHead,
    /// The release as its log committed it.
    pub release: phalanx_threshold::release_log::CommittedRelease,
}

/// One answer with its log proof checked and its envelope opened: what its log
/// commits to, and the partial (if it decodes as this gatekeeper's).
struct Opened {
    committed: phalanx_threshold::release_log::CommittedRelease,
    head: SignedTreeHead,
    partial: Result<PartialEvaluation, Error>,
}

impl Opened {
    /// Evidence, if the log commits to a partial no honest gatekeeper sends.
    fn evidence(&self, identity: &VerifyingKey) -> Option<PartialFault> {
        phalanx_threshold::release_log::committed_partial_fails(&self.committed)
            .ok()
            .filter(|fails| *fails)
            .map(|_| PartialFault {
                identity: *identity,
                head: self.head,
                release: self.committed.clone(),
            })
    }
}

/// Checks one answer's head, opens its envelope and checks that the log holds what it
/// opened (a partial committed by the log is the gatekeeper's word, for better or worse).
fn open_one(
    transcript: &Hash,
    point_input: &[u8],
    recipient: &RecipientKey,
    identity: &VerifyingKey,
    r: &ReleaseResponse,
) -> Result<Opened, Error> {
    let head = r.tree_head.verify(identity)?;
    let plain = open(recipient, transcript, &r.sealed)?;
    let committed = phalanx_threshold::release_log::CommittedRelease {
        node: r.node,
        logged_at: r.logged_at,
        transcript: *transcript,
        point_input: point_input.to_vec(),
        public_share: r.public_share,
        partial: plain.to_vec(),
        log_index: r.log_index,
        inclusion_proof: r.inclusion_proof.clone(),
    };
    committed.included(head.size, &head.root)?;
    let partial = PartialEvaluation::from_bytes(&plain).and_then(|p| match p.index == r.node {
        true => Ok(p),
        false => Err(Error::MisattributedPartial {
            node: r.node,
            claims: p.index,
        }),
    });
    Ok(Opened {
        committed,
        head: r.tree_head,
        partial,
    })
}

/// Worker side, one answer: its log proof, envelope and DLEQ proof (to name a liar
/// when too few answers arrived to combine).
pub fn check_answer(
    request: &ReleaseRequest,
    recipient: &RecipientKey,
    public: &PublicKeySet,
    identities: &BTreeMap<NodeIndex, VerifyingKey>,
    response: &ReleaseResponse,
) -> Result<PartialEvaluation, Error> {
    let transcript = request.transcript()?;
    let id = identities
        .get(&response.node)
        .ok_or(Error::UnknownNode(response.node))?;
    let input = request.key_id.encode_point_input()?;
    let partial = open_one(&transcript, &input, recipient, id, response)?.partial?;
    phalanx_threshold::derive::verify_partial(public, &request.key_id, &partial)?;
    Ok(partial)
}

/// Worker side: checks every answer and derives the key from `t` valid partials (see
/// the module doc). `identities` are the gatekeepers' identity keys (from the
/// registry); answers from unknown gatekeepers count as faulty.
pub fn assemble(
    request: &ReleaseRequest,
    recipient: &RecipientKey,
    public: &PublicKeySet,
    identities: &BTreeMap<NodeIndex, VerifyingKey>,
    responses: &[ReleaseResponse],
) -> Result<Assembled, Error> {
    let transcript = request.transcript()?;
    let input = request.key_id.encode_point_input()?;
    let open = |r: &ReleaseResponse| {
        identities
            .get(&r.node)
            .ok_or(Error::UnknownNode(r.node))
            .and_then(|id| open_one(&transcript, &input, recipient, id, r))
    };
    // Each envelope is opened on a thread of its own: an HPKE open (a P-256 DH) and the
    // signed head's check are most of a fetch's work after the proofs.
    let opened: Vec<(NodeIndex, Result<Opened, Error>)> = match responses {
        [] | [_] => responses.iter().map(|r| (r.node, open(r))).collect(),
        [first, rest @ ..] => std::thread::scope(|scope| {
            let others: Vec<_> = rest
                .iter()
                .map(|r| (r.node, scope.spawn(move || open(r))))
                .collect();
            std::iter::once((first.node, open(first)))
                .chain(others.into_iter().map(|(node, h)| {
                    (
                        node,
                        h.join()
                            .unwrap_or(Err(Error::Internal("opening an envelope panicked"))),
                    )
                }))
                .collect()
        }),
    };
    let mut faulty = Vec::new();
    let mut partials = Vec::new();
    let mut logged = BTreeMap::new();
    for (node, o) in opened {
        match o {
            Ok(o) => {
                if let Ok(p) = &o.partial {
                    partials.push(*p);
                } else {
                    faulty.push(node);
                }
                logged.insert(node, o);
            }
            Err(_) => faulty.push(node),
        }
    }
    let combined = combine(public, &request.key_id, &partials)?;
    faulty.extend(combined.faulty);
    faulty.sort();
    faulty.dedup();
    // Only for the liars (the honest path never pays for it): is the lie provable?
    let evidence = faulty
        .iter()
        .filter_map(|node| logged.get(node)?.evidence(identities.get(node)?))
        .collect();
    Ok(Assembled {
        key: combined.key,
        faulty,
        evidence,
    })
}
