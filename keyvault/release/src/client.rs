//! The worker's side of key release over gRPC (feature `client`): [`fetch_key`] and
//! the auditor's [`audit`], plus the protobuf conversions the gatekeeper's server
//! shares.
//!
//! [`fetch_key`] asks every gatekeeper at once, each call bounded by a timeout, and
//! assembles the key as soon as the answers in hand contain `t` valid partials (see
//! [`assemble`]): up to `n − t` gatekeepers may be down, slow, refusing or lying. Liars
//! (bad log proof, envelope or DLEQ proof) are named in [`Fetched::faulty`], the others
//! in [`Fetched::unavailable`].
//!
//! Connections are kept between fetches (one per gatekeeper URL, at most
//! [`MAX_KEPT`]): a worker fetching a key per contract pays one handshake per
//! gatekeeper, not one per key. A kept connection whose call fails as a connection
//! does, or times out, is dropped (the call made once more on a new connection, but
//! for a timeout).
//!
//! [`audit`] is the auditor's check of a gatekeeper's log between two visits.

use crate::envelope::{RecipientKey, Sealed};
use crate::gatekeeper::{ReleaseRequest, ReleaseResponse, assemble, check_answer};
use p256::ecdsa::{Signature, VerifyingKey};
use phalanx_proto::keyvault::v1 as pb;
use phalanx_threshold::Error;
use phalanx_threshold::derive::{DerivedKey, KeyId};
use phalanx_threshold::share::{NodeIndex, PublicKeySet};
use phalanx_threshold::translog::{Hash, SignedTreeHead, TreeHead};
use phalanx_threshold::wire::DecodeError;
use phalanx_types::Epoch;
use std::collections::BTreeMap;
use std::time::Duration;
use tonic::Status;

/// Largest gRPC message accepted.
pub const MAX_MESSAGE: usize = 256 * 1024;

/// A field of a gRPC message that does not hold what its type needs.
fn bad(what: &'static str, field: &'static str) -> Error {
    DecodeError::Invalid { what, field }.into()
}

fn hash(b: &[u8], what: &'static str) -> Result<Hash, Error> {
    b.try_into().map_err(|_| bad(what, "hash"))
}

/// A signed tree head as sent.
pub fn head_to_pb(h: &SignedTreeHead) -> pb::TreeHead {
    pb::TreeHead {
        log_id: h.head.log_id.to_vec(),
        size: h.head.size,
        root: h.head.root.to_vec(),
        timestamp: h.head.timestamp,
        signature: h.signature.to_bytes().to_vec(),
    }
}

/// A signed tree head as received (strict).
pub fn head_from_pb(h: &pb::TreeHead) -> Result<SignedTreeHead, Error> {
    Ok(SignedTreeHead {
        head: TreeHead {
            log_id: hash(&h.log_id, "tree head")?,
            size: h.size,
            root: hash(&h.root, "tree head")?,
            timestamp: h.timestamp,
        },
        signature: Signature::from_slice(&h.signature)
            .map_err(|_| bad("tree head", "signature"))?,
    })
}

/// A request to its wire form.
pub fn request_to_pb(r: &ReleaseRequest) -> pb::ReleaseRequest {
    pb::ReleaseRequest {
        token: r.token.clone(),
        runtime_data: r.runtime_data.clone(),
        key_id: Some(pb::KeyId {
            epoch: r.key_id.epoch.into(),
            tenant: r.key_id.tenant.clone(),
            path: r.key_id.path.clone(),
            purpose: r.key_id.purpose.clone(),
        }),
        hpke_public_key: r.hpke_public_key.clone(),
    }
}

/// A release request as received (strict).
pub fn request_from_pb(r: pb::ReleaseRequest) -> Result<ReleaseRequest, Status> {
    let k = r
        .key_id
        .ok_or_else(|| Status::invalid_argument("key_id is required"))?;
    Ok(ReleaseRequest {
        token: r.token,
        runtime_data: r.runtime_data,
        key_id: KeyId {
            epoch: Epoch(k.epoch),
            tenant: k.tenant,
            path: k.path,
            purpose: k.purpose,
        },
        hpke_public_key: r.hpke_public_key,
    })
}

/// A release response as sent.
pub fn response_to_pb(r: &ReleaseResponse) -> pb::ReleaseResponse {
    pb::ReleaseResponse {
        node: u32::from(r.node.get()),
        enc: r.sealed.enc.clone(),
        ciphertext: r.sealed.ciphertext.clone(),
        public_share: r.public_share.to_vec(),
        logged_at: r.logged_at,
        log_index: r.log_index,
        inclusion_proof: r.inclusion_proof.iter().map(|h| h.to_vec()).collect(),
        tree_head: Some(head_to_pb(&r.tree_head)),
    }
}

/// A response from its wire form (strict: every hash 32 bytes, a signature, a node).
pub fn response_from_pb(r: &pb::ReleaseResponse) -> Result<ReleaseResponse, Error> {
    const WHAT: &str = "release response";
    let node = NodeIndex::new(u16::try_from(r.node).map_err(|_| bad(WHAT, "node"))?)?;
    let max = phalanx_threshold::translog::MAX_PROOF_LEN;
    if r.inclusion_proof.len() > max {
        return Err(DecodeError::TooLong {
            what: WHAT,
            field: "inclusion proof",
            len: r.inclusion_proof.len(),
            max,
        }
        .into());
    }
    Ok(ReleaseResponse {
        node,
        sealed: Sealed {
            enc: r.enc.clone(),
            ciphertext: r.ciphertext.clone(),
        },
        public_share: r
            .public_share
            .as_slice()
            .try_into()
            .map_err(|_| bad(WHAT, "public share"))?,
        logged_at: r.logged_at,
        log_index: r.log_index,
        inclusion_proof: r
            .inclusion_proof
            .iter()
            .map(|h| hash(h, WHAT))
            .collect::<Result<_, _>>()?,
        tree_head: head_from_pb(r.tree_head.as_ref().ok_or(bad(WHAT, "tree head"))?)?,
    })
}

/// Why an audit of a gatekeeper's log failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// The gatekeeper could not be asked.
    #[error("gatekeeper unavailable: {0}")]
    Unavailable(String),
    /// Its tree head is not signed by its identity key.
    #[error("tree head signature does not verify under the gatekeeper's identity key")]
    BadHead,
    /// The log shrank.
    #[error("the log shrank from {old} to {new} entries")]
    Shrunk {
        /// The earlier size.
        old: u64,
        /// The new size.
        new: u64,
    },
    /// The new head does not extend the earlier one: history was rewritten.
    #[error("the log of {new} entries does not extend the earlier head of {old} entries")]
    Inconsistent {
        /// The earlier size.
        old: u64,
        /// The new size.
        new: u64,
    },
    /// The gatekeeper signed two heads of one size with different roots: the earlier
    /// head and the one it signs for that size now. Evidence anyone can check
    /// (`chain::types::Fault::ForkedLog`): report it to the registry.
    #[error("the gatekeeper signed two different logs of {} entries", earlier.head.size)]
    Forked {
        /// The head seen before.
        earlier: Box<SignedTreeHead>,
        /// Its head of the same size now.
        now: Box<SignedTreeHead>,
    },
}

/// Audits a gatekeeper's log: fetches its signed tree head, checks the signature under
/// `identity`, and — given an earlier head — that the new one extends it (consistency
/// proof). Returns the new head, to keep for the next audit. When it does not extend
/// it, asks for the head of the earlier size: a signed one with another root is
/// [`AuditError::Forked`], evidence.
pub async fn audit(
    url: &str,
    identity: &VerifyingKey,
    previous: Option<&SignedTreeHead>,
) -> Result<SignedTreeHead, AuditError> {
    let unavailable = |e: String| AuditError::Unavailable(e);
    let channel = tonic::transport::Endpoint::from_shared(url.to_owned())
        .map_err(|e| unavailable(e.to_string()))?
        .connect()
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    let mut client = pb::gatekeeper_client::GatekeeperClient::new(channel);
    let head = signed_head(&mut client, identity, 0).await?;
    if let Some(prev) = previous {
        let (old, new) = (prev.head.size, head.head.size);
        if new < old {
            return Err(AuditError::Shrunk { old, new });
        }
        if old > 0 {
            let forked = async |client: &mut pb::gatekeeper_client::GatekeeperClient<_>| {
                let then = signed_head(client, identity, old).await?;
                match then.head.root == prev.head.root {
                    true => Ok(AuditError::Inconsistent { old, new }),
                    false => Ok(AuditError::Forked {
                        earlier: Box::new(*prev),
                        now: Box::new(then),
                    }),
                }
            };
            if new == old && head.head.root != prev.head.root {
                return Err(forked(&mut client).await?);
            }
            let proof = client
                .get_consistency_proof(pb::ConsistencyRequest {
                    old_size: old,
                    new_size: new,
                })
                .await
                .map_err(|s| unavailable(s.message().to_owned()))?;
            let proof: Vec<Hash> = proof
                .get_ref()
                .proof
                .iter()
                .map(|h| hash(h, "consistency proof"))
                .collect::<Result<_, _>>()
                .map_err(|_| AuditError::Inconsistent { old, new })?;
            if phalanx_threshold::translog::verify_consistency(
                old,
                new,
                &prev.head.root,
                &head.head.root,
                &proof,
            )
            .is_err()
            {
                return Err(forked(&mut client).await?);
            }
        }
    }
    Ok(head)
}

/// The gatekeeper's signed head (`size` 0: now; else of that size), checked under
/// `identity`.
async fn signed_head(
    client: &mut pb::gatekeeper_client::GatekeeperClient<tonic::transport::Channel>,
    identity: &VerifyingKey,
    size: u64,
) -> Result<SignedTreeHead, AuditError> {
    let head = client
        .get_tree_head(pb::TreeHeadRequest { size })
        .await
        .map_err(|s| AuditError::Unavailable(s.message().to_owned()))?;
    let head = head_from_pb(head.get_ref()).map_err(|_| AuditError::BadHead)?;
    head.verify(identity).map_err(|_| AuditError::BadHead)?;
    if size != 0 && head.head.size != size {
        return Err(AuditError::BadHead);
    }
    Ok(head)
}

/// One gatekeeper as the worker knows it (from the registry).
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Its index.
    pub index: NodeIndex,
    /// `http://host:port`.
    pub url: String,
    /// Its identity key (signs its log's tree heads).
    pub identity: VerifyingKey,
}

/// A fetched key.
#[derive(Debug)]
pub struct Fetched {
    /// The key.
    pub key: DerivedKey,
    /// Gatekeepers whose answers failed verification (liars).
    pub faulty: Vec<NodeIndex>,
    /// Of those, the ones whose own signed log commits to a partial no honest
    /// gatekeeper sends: evidence to report to the registry.
    pub evidence: Vec<crate::gatekeeper::PartialFault>,
    /// Gatekeepers that did not answer in time or refused, with the reason.
    pub unavailable: Vec<(NodeIndex, String)>,
}

/// Why a key could not be fetched.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// Fewer than `t` valid answers.
    #[error(
        "not enough gatekeepers: {valid} valid answers, need {need}; unavailable: {unavailable:?}, faulty: {faulty:?}"
    )]
    NotEnough {
        /// Valid answers.
        valid: usize,
        /// The threshold.
        need: usize,
        /// Who did not answer, and why.
        unavailable: Vec<(NodeIndex, String)>,
        /// Who lied.
        faulty: Vec<NodeIndex>,
    },
    /// The request itself is unusable.
    #[error(transparent)]
    Request(Error),
}

/// Longest wait for a gatekeeper to accept a connection. A reachable host answers in
/// milliseconds (one lost SYN costs a second); waiting the whole request timeout for a
/// host that is down only delays the answers of the others.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// A new connection to the gatekeeper at `url` (its client listener).
async fn open(url: &str, timeout: Duration) -> Result<tonic::transport::Channel, String> {
    tonic::transport::Endpoint::from_shared(url.to_owned())
        .map_err(|e| e.to_string())?
        .connect_timeout(timeout.min(CONNECT_TIMEOUT))
        .connect()
        .await
        .map_err(|e| e.to_string())
}

fn client_on(
    channel: tonic::transport::Channel,
) -> pb::gatekeeper_client::GatekeeperClient<tonic::transport::Channel> {
    pb::gatekeeper_client::GatekeeperClient::new(channel).max_decoding_message_size(MAX_MESSAGE)
}

/// Most gatekeeper connections [`fetch_key`] keeps open (a worker knows one committee).
pub const MAX_KEPT: usize = 64;

/// The connections [`fetch_key`] keeps, by URL: a worker fetching several keys (one per
/// contract, and again after each rotation) pays one TCP and HTTP/2 handshake per
/// gatekeeper, not one per key and gatekeeper. Nothing here is trusted: every answer is
/// checked whatever connection carried it.
static KEPT: std::sync::LazyLock<
    std::sync::Mutex<std::collections::HashMap<String, tonic::transport::Channel>>,
> = std::sync::LazyLock::new(Default::default);

/// A kept connection to `url`, if any.
fn kept(url: &str) -> Option<tonic::transport::Channel> {
    KEPT.lock().ok()?.get(url).cloned()
}

/// Keeps `channel` for `url` (all are dropped when the table is full), or forgets `url`'s.
fn keep(url: &str, channel: Option<tonic::transport::Channel>) {
    let Ok(mut kept) = KEPT.lock() else { return };
    match channel {
        Some(c) => {
            if kept.len() >= MAX_KEPT && !kept.contains_key(url) {
                kept.clear();
            }
            kept.insert(url.to_owned(), c);
        }
        None => {
            kept.remove(url);
        }
    }
}

/// One `release` call on `channel`.
async fn release_on(
    channel: tonic::transport::Channel,
    req: pb::ReleaseRequest,
) -> Result<ReleaseResponse, Status> {
    let resp = client_on(channel).release(req).await?;
    response_from_pb(resp.get_ref()).map_err(|e| Status::invalid_argument(e.to_string()))
}

/// Whether a call's failure may be its connection's rather than the gatekeeper's
/// answer: refused or broken (`Unavailable`), or the task that drove the connection is
/// gone (`Unknown`, `Cancelled`: e.g. the runtime that opened it was dropped).
fn connection_failed(s: &Status) -> bool {
    matches!(
        s.code(),
        tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled
    )
}

/// Asks `ep` to release, on the connection kept for it if there is one. A kept
/// connection whose call fails as a connection does ([`connection_failed`]) is
/// forgotten and the call made once more on a new connection, which is kept when it
/// answers; one that times out is forgotten too. (A call retried so may have reached
/// the gatekeeper the first time: it then logs two releases, and counts the token
/// twice.)
async fn ask(
    ep: Endpoint,
    req: pb::ReleaseRequest,
    timeout: Duration,
) -> Result<ReleaseResponse, String> {
    let describe = |s: Status| format!("{:?}: {}", s.code(), s.message());
    let call = async {
        if let Some(channel) = kept(&ep.url) {
            match release_on(channel, req.clone()).await {
                Err(s) if connection_failed(&s) => keep(&ep.url, None),
                other => return other.map_err(describe),
            }
        }
        let channel = open(&ep.url, timeout).await?;
        let answer = release_on(channel.clone(), req).await.map_err(describe)?;
        keep(&ep.url, Some(channel));
        Ok(answer)
    };
    tokio::time::timeout(timeout, call)
        .await
        .unwrap_or_else(|_| {
            keep(&ep.url, None);
            Err("timed out".to_owned())
        })
}

/// Asks the gatekeeper at `url` (its client listener) for the attestation token it
/// registered with (its `Status`); empty when it runs outside any TEE. The caller checks
/// it ([`crate::release::check_registration`]): nothing here is trusted.
pub async fn registered_token(url: &str, timeout: Duration) -> Result<String, String> {
    let call = async {
        let mut client = client_on(open(url, timeout).await?);
        let status = client
            .status(pb::StatusRequest {})
            .await
            .map_err(|s| format!("{:?}: {}", s.code(), s.message()))?;
        Ok(status.into_inner().attestation_token)
    };
    tokio::time::timeout(timeout, call)
        .await
        .map_err(|_| "timed out".to_owned())?
}

/// Asks every gatekeeper in `endpoints` in parallel and assembles the key from the
/// first answers that contain `t` valid partials (see the module doc).
pub async fn fetch_key(
    endpoints: &[Endpoint],
    request: &ReleaseRequest,
    recipient: &RecipientKey,
    public: &PublicKeySet,
    timeout: Duration,
) -> Result<Fetched, FetchError> {
    request.transcript().map_err(FetchError::Request)?;
    let identities: BTreeMap<NodeIndex, VerifyingKey> =
        endpoints.iter().map(|e| (e.index, e.identity)).collect();
    let wire = request_to_pb(request);
    let mut set = tokio::task::JoinSet::new();
    for ep in endpoints {
        let (ep, wire) = (ep.clone(), wire.clone());
        set.spawn(async move { (ep.index, ask(ep, wire, timeout).await) });
    }
    let mut answers = Vec::new();
    let mut unavailable = Vec::new();
    let mut last_faulty = Vec::new();
    while let Some(joined) = set.join_next().await {
        let Ok((index, outcome)) = joined else {
            continue;
        };
        match outcome {
            Ok(r) if r.node == index => answers.push(r),
            Ok(_) => last_faulty.push(index),
            Err(reason) => unavailable.push((index, reason)),
        }
        if answers.len() >= public.threshold()
            && let Ok(a) = assemble(request, recipient, public, &identities, &answers)
        {
            set.abort_all();
            let mut faulty = a.faulty;
            faulty.extend(last_faulty);
            faulty.sort();
            return Ok(Fetched {
                key: a.key,
                faulty,
                evidence: a.evidence,
                unavailable,
            });
        }
    }
    // Not enough: say who lied among the answers we did get.
    let liars: Vec<NodeIndex> = answers
        .iter()
        .filter(|r| check_answer(request, recipient, public, &identities, r).is_err())
        .map(|r| r.node)
        .collect();
    let valid = answers.len() - liars.len();
    let mut faulty = last_faulty;
    faulty.extend(liars);
    faulty.sort();
    Err(FetchError::NotEnough {
        valid,
        need: public.threshold(),
        unavailable,
        faulty,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn good() -> pb::ReleaseResponse {
        let key = phalanx_threshold::identity::IdentityKey::generate(&mut rand::rng());
        let head = TreeHead {
            log_id: [1; 32],
            size: 2,
            root: [2; 32],
            timestamp: 3,
        }
        .sign(&key);
        pb::ReleaseResponse {
            node: 1,
            enc: vec![4; 65],
            ciphertext: vec![5; 115],
            public_share: vec![4; 65],
            logged_at: 3,
            log_index: 1,
            inclusion_proof: vec![vec![6; 32]],
            tree_head: Some(head_to_pb(&head)),
        }
    }

    #[test]
    fn responses_decode_strictly() {
        let g = good();
        assert_eq!(response_to_pb(&response_from_pb(&g).unwrap()), g);
        let bad: [fn(&mut pb::ReleaseResponse); 8] = [
            |r| r.node = 0,
            |r| r.public_share.truncate(64),
            |r| r.node = 70_000,
            |r| r.inclusion_proof[0].truncate(31),
            |r| {
                r.inclusion_proof =
                    vec![vec![0; 32]; phalanx_threshold::translog::MAX_PROOF_LEN + 1]
            },
            |r| r.tree_head = None,
            |r| r.tree_head.as_mut().unwrap().root.push(0),
            |r| r.tree_head.as_mut().unwrap().signature.truncate(63),
        ];
        for (i, f) in bad.iter().enumerate() {
            let mut r = g.clone();
            f(&mut r);
            assert!(response_from_pb(&r).is_err(), "case {i}");
        }
    }
}
