//! The gatekeeper's gRPC service (`phalanx.keyvault.v1.Gatekeeper`, feature `node`) and
//! the worker's client, [`fetch_key`].
//!
//! The server is a thin adapter over [`Node`]: refusals ([`GatekeeperError::Refused`])
//! are `PERMISSION_DENIED` with the reason, an unknown epoch is `NOT_FOUND`, malformed
//! requests are `INVALID_ARGUMENT`, our own failures `INTERNAL` (details logged only).
//! Messages are bounded ([`MAX_MESSAGE`]) and requests time out.
//!
//! [`audit`] is the auditor's check of a gatekeeper's log between two visits.
//!
//! [`fetch_key`] asks every gatekeeper at once, each call bounded by a timeout, and
//! assembles the key as soon as the answers in hand contain `t` valid partials (see
//! [`assemble`]): up to `n − t` gatekeepers may be down, slow, refusing or lying. Liars
//! (bad log proof, envelope or DLEQ proof) are named in [`Fetched::faulty`], the others
//! in [`Fetched::unavailable`].

use crate::derive::{DerivedKey, KeyId};
use crate::envelope::{RecipientKey, Sealed};
use crate::error::Error;
use crate::gatekeeper::{GatekeeperError, ReleaseRequest, ReleaseResponse, assemble, check_answer};
use crate::node::{Node, NodeError};
use crate::share::{NodeIndex, PublicKeySet};
use crate::translog::{Hash, SignedTreeHead, TreeHead};
use p256::ecdsa::{Signature, VerifyingKey};
use phalanx_proto::keyvault::v1 as pb;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tonic::{Request, Response, Status};

/// Largest gRPC message accepted.
pub const MAX_MESSAGE: usize = 256 * 1024;

/// The service over a shared node.
#[derive(Debug, Clone)]
pub struct GatekeeperGrpc {
    node: Arc<Node>,
    now: fn() -> i64,
    rounds: Option<Arc<crate::peer::Rounds>>,
}

impl GatekeeperGrpc {
    /// Serves `node` with clock `now`.
    pub fn new(node: Arc<Node>, now: fn() -> i64) -> Self {
        Self {
            node,
            now,
            rounds: None,
        }
    }

    /// Reports `rounds` (peer address, round in progress) in `Status`.
    pub fn with_rounds(mut self, rounds: Arc<crate::peer::Rounds>) -> Self {
        self.rounds = Some(rounds);
        self
    }

    /// The tonic service with the message bound applied.
    pub fn into_server(self) -> pb::gatekeeper_server::GatekeeperServer<Self> {
        pb::gatekeeper_server::GatekeeperServer::new(self).max_decoding_message_size(MAX_MESSAGE)
    }
}

/// The one mapping from node failures to gRPC statuses.
pub fn status(e: NodeError) -> Status {
    match e {
        NodeError::Release(GatekeeperError::Refused(r)) => Status::permission_denied(r.to_string()),
        NodeError::Release(e @ (GatekeeperError::TokenOverused(_) | GatekeeperError::Busy)) => {
            Status::resource_exhausted(e.to_string())
        }
        NodeError::Release(GatekeeperError::UnknownEpoch(ep)) => {
            Status::not_found(format!("no share for epoch {ep}"))
        }
        NodeError::Release(GatekeeperError::Crypto(Error::Malformed(what))) => {
            Status::invalid_argument(format!("malformed {what}"))
        }
        other => {
            tracing::error!(error = %other, "gatekeeper failure");
            Status::internal("internal error")
        }
    }
}

fn hash(b: &[u8]) -> Result<Hash, Error> {
    b.try_into().map_err(|_| Error::Malformed("hash"))
}

fn head_to_pb(h: &SignedTreeHead) -> pb::TreeHead {
    pb::TreeHead {
        log_id: h.head.log_id.to_vec(),
        size: h.head.size,
        root: h.head.root.to_vec(),
        timestamp: h.head.timestamp,
        signature: h.signature.to_bytes().to_vec(),
    }
}

fn head_from_pb(h: &pb::TreeHead) -> Result<SignedTreeHead, Error> {
    Ok(SignedTreeHead {
        head: TreeHead {
            log_id: hash(&h.log_id)?,
            size: h.size,
            root: hash(&h.root)?,
            timestamp: h.timestamp,
        },
        signature: Signature::from_slice(&h.signature)
            .map_err(|_| Error::Malformed("tree head signature"))?,
    })
}

/// A request to its wire form.
pub fn request_to_pb(r: &ReleaseRequest) -> pb::ReleaseRequest {
    pb::ReleaseRequest {
        token: r.token.clone(),
        runtime_data: r.runtime_data.clone(),
        key_id: Some(pb::KeyId {
            epoch: r.key_id.epoch,
            tenant: r.key_id.tenant.clone(),
            path: r.key_id.path.clone(),
            purpose: r.key_id.purpose.clone(),
        }),
        hpke_public_key: r.hpke_public_key.clone(),
    }
}

fn request_from_pb(r: pb::ReleaseRequest) -> Result<ReleaseRequest, Status> {
    let k = r
        .key_id
        .ok_or_else(|| Status::invalid_argument("key_id is required"))?;
    Ok(ReleaseRequest {
        token: r.token,
        runtime_data: r.runtime_data,
        key_id: KeyId {
            epoch: k.epoch,
            tenant: k.tenant,
            path: k.path,
            purpose: k.purpose,
        },
        hpke_public_key: r.hpke_public_key,
    })
}

fn response_to_pb(r: &ReleaseResponse) -> pb::ReleaseResponse {
    pb::ReleaseResponse {
        node: u32::from(r.node.get()),
        enc: r.sealed.enc.clone(),
        ciphertext: r.sealed.ciphertext.clone(),
        logged_at: r.logged_at,
        log_index: r.log_index,
        inclusion_proof: r.inclusion_proof.iter().map(|h| h.to_vec()).collect(),
        tree_head: Some(head_to_pb(&r.tree_head)),
    }
}

/// A response from its wire form (strict: every hash 32 bytes, a signature, a node).
pub fn response_from_pb(r: &pb::ReleaseResponse) -> Result<ReleaseResponse, Error> {
    let node = NodeIndex::new(u16::try_from(r.node).map_err(|_| Error::Malformed("node"))?)?;
    if r.inclusion_proof.len() > crate::translog::MAX_PROOF_LEN {
        return Err(Error::Malformed("inclusion proof length"));
    }
    Ok(ReleaseResponse {
        node,
        sealed: Sealed {
            enc: r.enc.clone(),
            ciphertext: r.ciphertext.clone(),
        },
        logged_at: r.logged_at,
        log_index: r.log_index,
        inclusion_proof: r
            .inclusion_proof
            .iter()
            .map(|h| hash(h))
            .collect::<Result<_, _>>()?,
        tree_head: head_from_pb(r.tree_head.as_ref().ok_or(Error::Malformed("tree head"))?)?,
    })
}

#[tonic::async_trait]
impl pb::gatekeeper_server::Gatekeeper for GatekeeperGrpc {
    async fn release(
        &self,
        request: Request<pb::ReleaseRequest>,
    ) -> Result<Response<pb::ReleaseResponse>, Status> {
        let req = request_from_pb(request.into_inner())?;
        let (node, now) = (self.node.clone(), (self.now)());
        let resp = tokio::task::spawn_blocking(move || node.release(&req, now, &mut rand::rng()))
            .await
            .map_err(|_| Status::internal("internal error"))?
            .map_err(status)?;
        Ok(Response::new(response_to_pb(&resp)))
    }

    async fn status(
        &self,
        _: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusResponse>, Status> {
        let s = self.node.status().map_err(status)?;
        let mut epoch_info = Vec::new();
        for &epoch in &s.epochs {
            if let Some(public) = self.node.public_key_set(epoch).map_err(status)? {
                epoch_info.push(pb::EpochInfo {
                    epoch,
                    public_key_set: crate::wire::public_set_bytes(&public),
                });
            }
        }
        let (round, round_id) = self
            .rounds
            .as_ref()
            .map(|r| r.describe())
            .unwrap_or_else(|| ("idle".into(), Vec::new()));
        Ok(Response::new(pb::StatusResponse {
            node: u32::from(s.index.get()),
            identity_key: s.identity_key,
            epochs: s.epochs,
            log_size: s.log_size,
            epoch_info,
            peer_url: self
                .rounds
                .as_ref()
                .map(|r| r.peer_url().to_owned())
                .unwrap_or_default(),
            round,
            round_id,
        }))
    }

    async fn get_tree_head(
        &self,
        _: Request<pb::TreeHeadRequest>,
    ) -> Result<Response<pb::TreeHead>, Status> {
        let h = self.node.tree_head((self.now)()).map_err(status)?;
        Ok(Response::new(head_to_pb(&h)))
    }

    async fn get_consistency_proof(
        &self,
        request: Request<pb::ConsistencyRequest>,
    ) -> Result<Response<pb::ConsistencyResponse>, Status> {
        let r = request.into_inner();
        let proof = self
            .node
            .consistency_proof(r.old_size, r.new_size)
            .map_err(status)?;
        Ok(Response::new(pb::ConsistencyResponse {
            proof: proof.iter().map(|h| h.to_vec()).collect(),
        }))
    }
}

/// Serves `node` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    node: Arc<Node>,
    now: fn() -> i64,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    serve_client(listener, GatekeeperGrpc::new(node, now), None, shutdown).await
}

/// Serves the client listener: key release and status, and administration if `admin`
/// is given. Plain HTTP/2: releases are sealed to the worker and signed, and admin
/// calls carry the admin secret (put a TLS terminator in front beyond loopback).
pub async fn serve_client(
    listener: tokio::net::TcpListener,
    gatekeeper: GatekeeperGrpc,
    admin: Option<crate::peer::AdminGrpc>,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    tonic::transport::Server::builder()
        .timeout(Duration::from_secs(10))
        .concurrency_limit_per_connection(64)
        .add_service(gatekeeper.into_server())
        .add_optional_service(admin.map(crate::peer::AdminGrpc::into_server))
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(listener),
            shutdown,
        )
        .await
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
}

/// Audits a gatekeeper's log: fetches its signed tree head, checks the signature under
/// `identity`, and — given an earlier head — that the new one extends it (consistency
/// proof). Returns the new head, to keep for the next audit.
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
    let head = client
        .get_tree_head(pb::TreeHeadRequest {})
        .await
        .map_err(|s| unavailable(s.message().to_owned()))?;
    let head = head_from_pb(head.get_ref()).map_err(|_| AuditError::BadHead)?;
    head.verify(identity).map_err(|_| AuditError::BadHead)?;
    if let Some(prev) = previous {
        let (old, new) = (prev.head.size, head.head.size);
        if new < old {
            return Err(AuditError::Shrunk { old, new });
        }
        if old > 0 {
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
                .map(|h| hash(h))
                .collect::<Result<_, _>>()
                .map_err(|_| AuditError::Inconsistent { old, new })?;
            crate::translog::verify_consistency(old, new, &prev.head.root, &head.head.root, &proof)
                .map_err(|_| AuditError::Inconsistent { old, new })?;
        }
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

async fn ask(
    ep: Endpoint,
    req: pb::ReleaseRequest,
    timeout: Duration,
) -> Result<ReleaseResponse, String> {
    let call = async {
        let channel = tonic::transport::Endpoint::from_shared(ep.url.clone())
            .map_err(|e| e.to_string())?
            .connect_timeout(timeout)
            .connect()
            .await
            .map_err(|e| e.to_string())?;
        let mut client = pb::gatekeeper_client::GatekeeperClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE);
        let resp = client
            .release(req)
            .await
            .map_err(|s| format!("{:?}: {}", s.code(), s.message()))?;
        response_from_pb(resp.get_ref()).map_err(|e| e.to_string())
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
        let key = crate::identity::IdentityKey::generate(&mut rand::rng());
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
        let bad: [fn(&mut pb::ReleaseResponse); 7] = [
            |r| r.node = 0,
            |r| r.node = 70_000,
            |r| r.inclusion_proof[0].truncate(31),
            |r| r.inclusion_proof = vec![vec![0; 32]; crate::translog::MAX_PROOF_LEN + 1],
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
