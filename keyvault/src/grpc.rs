//! The gatekeeper's gRPC service (`phalanx.keyvault.v1.Gatekeeper`). The worker's
//! client ([`fetch_key`]) and the auditor's check ([`audit`]) live in
//! `phalanx-release` (feature `client`) and are re-exported here.
//!
//! The server is a thin adapter over [`Node`]: refusals ([`GatekeeperError::Refused`])
//! are `PERMISSION_DENIED` with the reason, an unknown epoch is `NOT_FOUND`, malformed
//! requests are `INVALID_ARGUMENT`, our own failures `INTERNAL` (details logged only).
//! Messages are bounded ([`MAX_MESSAGE`]) and requests time out.

use crate::error::Error;
use crate::gatekeeper::{GatekeeperError, ReleaseRequest};
use crate::node::{Node, NodeError};
use phalanx_proto::keyvault::v1 as pb;
use std::sync::Arc;
use std::time::Duration;
use tonic::{Request, Response, Status};

pub use phalanx_release::client::{
    AuditError, Endpoint, FetchError, Fetched, MAX_MESSAGE, audit, fetch_key, request_to_pb,
    response_from_pb,
};
use phalanx_release::client::{head_to_pb, request_from_pb, response_to_pb};

/// The service over a shared node.
#[derive(Debug, Clone)]
pub struct GatekeeperGrpc {
    node: Arc<Node>,
    now: fn() -> i64,
    rounds: Option<Arc<crate::peer::Rounds>>,
    hooks: Option<Arc<dyn crate::peer::RoundHooks>>,
    /// Endorsements in progress: each verifies a quote and reads the registry (tens of
    /// JSON-RPC calls), so anyone's requests are bounded here, beyond which they are
    /// refused as `RESOURCE_EXHAUSTED`.
    endorsing: Arc<tokio::sync::Semaphore>,
}

/// Most endorsements a gatekeeper works on at once.
pub const MAX_ENDORSING: usize = 4;

impl GatekeeperGrpc {
    /// Serves `node` with clock `now`.
    pub fn new(node: Arc<Node>, now: fn() -> i64) -> Self {
        Self {
            node,
            now,
            rounds: None,
            hooks: None,
            endorsing: Arc::new(tokio::sync::Semaphore::new(MAX_ENDORSING)),
        }
    }

    /// Checks contract keys against the registry `hooks` follow; without hooks, no
    /// contract key is released.
    pub fn with_hooks(mut self, hooks: Option<Arc<dyn crate::peer::RoundHooks>>) -> Self {
        self.hooks = hooks;
        self
    }

    /// A contract key is released only for a contract the registry lists (the policy's
    /// `contract_runtimes` decides which tenants may ask; this decides for what), and
    /// only to a pRuntime the registry itself verified: the worker the runtime data names
    /// is registered in standing as a pRuntime with the very HPKE key the release is
    /// sealed to. So the attestation service's token alone — which whoever holds its
    /// signing key could mint — never obtains a contract key (review NM6).
    async fn check_contract(&self, req: &ReleaseRequest) -> Result<(), Status> {
        let key_id = &req.key_id;
        let Some(id) = phalanx_release::release::contract_of(key_id) else {
            return Ok(());
        };
        let Some(hooks) = &self.hooks else {
            return Err(Status::permission_denied(
                "contract keys are released only by a gatekeeper that follows a registry",
            ));
        };
        let worker = phalanx_release::release::WorkerRuntimeData::decode(&req.runtime_data)
            .map_err(|_| Status::invalid_argument("runtime data does not decode"))?;
        match hooks
            .contract_release_refused(id, &worker.identity_key, &req.hpke_public_key, (self.now)())
            .await
        {
            Ok(None) => Ok(()),
            Ok(Some(why)) => Err(Status::permission_denied(why)),
            Err(e) => {
                tracing::warn!(error = %e, "the registry could not be read");
                Err(Status::unavailable("the registry could not be read"))
            }
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
        // What the worker sent does not decode or is not a valid key: its fault.
        NodeError::Release(GatekeeperError::Crypto(
            e @ (Error::Decode(_) | Error::KeyIdTooLong(_) | Error::InvalidKey(_)),
        )) => Status::invalid_argument(e.to_string()),
        // A head or proof of a size the log never had.
        NodeError::Release(GatekeeperError::Crypto(e @ Error::OutOfRange { .. })) => {
            Status::out_of_range(e.to_string())
        }
        other => {
            tracing::error!(error = %other, "gatekeeper failure");
            Status::internal("internal error")
        }
    }
}

#[tonic::async_trait]
impl pb::gatekeeper_server::Gatekeeper for GatekeeperGrpc {
    async fn release(
        &self,
        request: Request<pb::ReleaseRequest>,
    ) -> Result<Response<pb::ReleaseResponse>, Status> {
        let req = request_from_pb(request.into_inner())?;
        self.check_contract(&req).await?;
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
                    epoch: epoch.0,
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
            epochs: s.epochs.iter().map(|e| e.0).collect(),
            log_size: s.log_size,
            epoch_info,
            peer_url: self
                .rounds
                .as_ref()
                .map(|r| r.peer_url().to_owned())
                .unwrap_or_default(),
            round,
            round_id,
            attestation_token: self.node.evidence(),
        }))
    }

    async fn get_tree_head(
        &self,
        request: Request<pb::TreeHeadRequest>,
    ) -> Result<Response<pb::TreeHead>, Status> {
        let size = request.get_ref().size;
        let h = self.node.tree_head(size, (self.now)()).map_err(status)?;
        Ok(Response::new(head_to_pb(&h)))
    }

    async fn endorse(
        &self,
        request: Request<pb::EndorseRequest>,
    ) -> Result<Response<pb::EndorseResponse>, Status> {
        use chain::evm::EndorseError;
        use phalanx_types::codec::Codec as _;
        let r = request.into_inner();
        let registration = chain::types::Registration::from_bytes(&r.registration)
            .map_err(|e| Status::invalid_argument(format!("the registration: {e}")))?;
        let Some(hooks) = &self.hooks else {
            return Err(Status::failed_precondition(
                EndorseError::NoRegistry.to_string(),
            ));
        };
        let _slot = self.endorsing.try_acquire().map_err(|_| {
            Status::resource_exhausted("this gatekeeper is endorsing other registrations")
        })?;
        let (record, e) = hooks
            .endorse(&registration, r.evidence_time, (self.now)())
            .await
            .map_err(|e| match e {
                EndorseError::Evidence(_) => Status::permission_denied(e.to_string()),
                EndorseError::Registry(_) => {
                    tracing::warn!(error = %e, "the registry could not be read");
                    Status::unavailable("the registry could not be read")
                }
                other => Status::failed_precondition(other.to_string()),
            })?;
        Ok(Response::new(pb::EndorseResponse {
            index: u32::from(e.index),
            signature: e.signature.to_vec(),
            measurement: record.measurement,
            quote_hash: record.quote_hash.to_vec(),
            tcb_status: u32::from(chain::types::status_code(record.tcb_status)),
        }))
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
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown,
        )
        .await
}
