//! The gRPC front end (`phalanx.attestation.v1.AttestationService`), feature `server`:
//! a thin adapter over [`Service`], plus the standard health and reflection services.
//!
//! `VerifyQuote` answers a rejected quote with a successful call carrying a typed
//! `Rejection` (code, step, message). Every other call fails with a gRPC status mapped
//! from the same [`ApiError`] as the REST statuses ([`status`] is the one mapping); its
//! message starts with the stable error code and the `x-phalanx-error` metadata holds
//! it. Admin calls read `authorization: Bearer <secret>` metadata. Request size and time
//! are bounded by [`serve`].

use crate::config::Limits;
use crate::service::{ApiError, AttestInput, ErrorKind, Service};
use crate::source::EntryStatus;
use crate::verify::{Measurements, VerifiedQuote};
use crate::{Collateral, Error, TeeType};
use phalanx_proto::attestation::v1 as pb;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tonic::{Code, Request, Response, Status};

/// The service over a shared [`Service`].
#[derive(Debug, Clone)]
pub struct AttestationGrpc {
    service: Arc<Service>,
}

impl AttestationGrpc {
    /// Serves `service`.
    pub fn new(service: Arc<Service>) -> Self {
        Self { service }
    }

    /// The tonic service, with the message size bound applied.
    pub fn into_server(
        self,
        max_message_bytes: usize,
    ) -> pb::attestation_service_server::AttestationServiceServer<Self> {
        pb::attestation_service_server::AttestationServiceServer::new(self)
            .max_decoding_message_size(max_message_bytes)
    }

    fn admin<T>(&self, req: &Request<T>) -> Result<(), Status> {
        let bearer = req
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        self.service.authorize(bearer).map_err(status)
    }
}

/// The one mapping from error kinds to gRPC codes.
pub fn code(kind: ErrorKind) -> Code {
    match kind {
        ErrorKind::BadRequest | ErrorKind::Unprocessable => Code::InvalidArgument,
        ErrorKind::Unauthenticated => Code::Unauthenticated,
        ErrorKind::NotFound => Code::NotFound,
        ErrorKind::Conflict => Code::FailedPrecondition,
        ErrorKind::Unavailable => Code::Unavailable,
        ErrorKind::TooLarge => Code::OutOfRange,
        ErrorKind::Timeout => Code::DeadlineExceeded,
        ErrorKind::Internal => Code::Internal,
    }
}

/// An [`ApiError`] as a gRPC status.
pub fn status(e: ApiError) -> Status {
    let mut s = Status::new(code(e.kind()), format!("{}: {}", e.code(), e.message()));
    if let Ok(v) = e.code().parse() {
        s.metadata_mut().insert("x-phalanx-error", v);
    }
    s
}

fn tee_from_pb(t: i32) -> Option<String> {
    match pb::Tee::try_from(t) {
        Ok(pb::Tee::Sgx) => Some("sgx".into()),
        Ok(pb::Tee::Tdx) => Some("tdx".into()),
        _ => None,
    }
}

fn tee_to_pb(t: TeeType) -> i32 {
    match t {
        TeeType::Sgx => pb::Tee::Sgx as i32,
        TeeType::Tdx => pb::Tee::Tdx as i32,
    }
}

fn entry_to_pb(e: &EntryStatus) -> pb::CollateralEntry {
    pb::CollateralEntry {
        tee: tee_to_pb(e.key.tee),
        fmspc: e.key.fmspc.to_vec(),
        ca: e.key.ca.as_str().into(),
        fetched_at: e.fetched_at,
        next_update: e.next_update,
        origin: e.origin.clone(),
        freshness: serde_json::to_value(e.freshness)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
    }
}

fn json<T: serde::Serialize>(v: &T) -> Result<String, Status> {
    serde_json::to_string(v).map_err(|_| status(ApiError::Internal))
}

fn policy_from_json(text: &str) -> Result<crate::policy::Policy, Status> {
    crate::policy::Policy::from_json(text)
        .map_err(|e| status(ApiError::BadRequest("bad_policy", e.to_string())))
}

/// Collateral from its wire form.
pub fn collateral_from_pb(c: pb::Collateral) -> Collateral {
    Collateral {
        pck_crl_issuer_chain: c.pck_crl_issuer_chain,
        root_ca_crl: c.root_ca_crl,
        pck_crl: c.pck_crl,
        tcb_info_issuer_chain: c.tcb_info_issuer_chain,
        tcb_info: c.tcb_info,
        tcb_info_signature: c.tcb_info_signature,
        qe_identity_issuer_chain: c.qe_identity_issuer_chain,
        qe_identity: c.qe_identity,
        qe_identity_signature: c.qe_identity_signature,
    }
}

/// Collateral to its wire form.
pub fn collateral_to_pb(c: Collateral) -> pb::Collateral {
    pb::Collateral {
        pck_crl_issuer_chain: c.pck_crl_issuer_chain,
        root_ca_crl: c.root_ca_crl,
        pck_crl: c.pck_crl,
        tcb_info_issuer_chain: c.tcb_info_issuer_chain,
        tcb_info: c.tcb_info,
        tcb_info_signature: c.tcb_info_signature,
        qe_identity_issuer_chain: c.qe_identity_issuer_chain,
        qe_identity: c.qe_identity,
        qe_identity_signature: c.qe_identity_signature,
    }
}

/// The one mapping from a verification outcome to the wire.
pub fn to_response(outcome: &Result<VerifiedQuote, Error>) -> pb::VerifyQuoteResponse {
    use pb::verify_quote_response::Verdict;
    let verdict = match outcome {
        Ok(v) => {
            let mut out = pb::VerifiedQuote {
                tee: tee_to_pb(v.tee()),
                status: v.status.as_str().to_owned(),
                advisory_ids: v.advisory_ids.clone(),
                fmspc: v.fmspc.to_vec(),
                report_data: v.report_data.to_vec(),
                debug: v.debug,
                collateral_expiry: v.collateral_expiry,
                ..pb::VerifiedQuote::default()
            };
            match &v.measurements {
                Measurements::Sgx {
                    mr_enclave,
                    mr_signer,
                    isv_prod_id,
                    isv_svn,
                    ..
                } => {
                    out.mr_enclave = mr_enclave.to_vec();
                    out.mr_signer = mr_signer.to_vec();
                    out.isv_prod_id = u32::from(*isv_prod_id);
                    out.isv_svn = u32::from(*isv_svn);
                }
                Measurements::Tdx { mr_td, rtmr, .. } => {
                    out.mr_td = mr_td.to_vec();
                    out.rtmr = rtmr.iter().map(|r| r.to_vec()).collect();
                }
            }
            Verdict::Verified(out)
        }
        Err(e) => Verdict::Rejected(pb::Rejection {
            code: e.code().to_owned(),
            step: e.step().as_str().to_owned(),
            message: e.to_string(),
        }),
    };
    pb::VerifyQuoteResponse {
        verdict: Some(verdict),
    }
}

#[tonic::async_trait]
impl pb::attestation_service_server::AttestationService for AttestationGrpc {
    async fn verify_quote(
        &self,
        request: Request<pb::VerifyQuoteRequest>,
    ) -> Result<Response<pb::VerifyQuoteResponse>, Status> {
        let start = Instant::now();
        let req = request.into_inner();
        let outcome = self
            .service
            .verify(req.quote, req.collateral.map(collateral_from_pb))
            .await;
        let outcome = self.service.observed("verify_quote", start, outcome);
        match outcome {
            Ok(v) => Ok(Response::new(to_response(&Ok(v.quote)))),
            Err(ApiError::Evidence(e)) => Ok(Response::new(to_response(&Err(e)))),
            Err(e) => Err(status(e)),
        }
    }

    async fn get_nonce(
        &self,
        _: Request<pb::GetNonceRequest>,
    ) -> Result<Response<pb::GetNonceResponse>, Status> {
        let start = Instant::now();
        let n = self
            .service
            .observed("nonce", start, self.service.issue_nonce())
            .map_err(status)?;
        Ok(Response::new(pb::GetNonceResponse {
            nonce: n.nonce,
            expires: n.expires,
        }))
    }

    async fn attest(
        &self,
        request: Request<pb::AttestRequest>,
    ) -> Result<Response<pb::AttestResponse>, Status> {
        let start = Instant::now();
        let req = request.into_inner();
        let out = self
            .service
            .attest(AttestInput {
                tee: tee_from_pb(req.tee),
                quote: req.quote,
                collateral: req.collateral.map(collateral_from_pb),
                runtime_data: req.runtime_data,
                nonce: req.nonce,
                policy: req.policy,
            })
            .await;
        let out = self
            .service
            .observed("attest", start, out)
            .map_err(status)?;
        Ok(Response::new(pb::AttestResponse {
            status: json(&out.verdict.status)?.trim_matches('"').to_owned(),
            verdict_json: json(&out.verdict)?,
            token: out.token,
        }))
    }

    async fn get_jwks(
        &self,
        _: Request<pb::GetJwksRequest>,
    ) -> Result<Response<pb::GetJwksResponse>, Status> {
        Ok(Response::new(pb::GetJwksResponse {
            jwks_json: json(&self.service.jwks().map_err(status)?)?,
        }))
    }

    async fn list_policies(
        &self,
        request: Request<pb::ListPoliciesRequest>,
    ) -> Result<Response<pb::ListPoliciesResponse>, Status> {
        self.admin(&request)?;
        let policies = self.service.policies().map_err(status)?;
        Ok(Response::new(pb::ListPoliciesResponse {
            policies_json: policies.iter().map(json).collect::<Result<_, _>>()?,
        }))
    }

    async fn get_policy(
        &self,
        request: Request<pb::GetPolicyRequest>,
    ) -> Result<Response<pb::PolicyResponse>, Status> {
        self.admin(&request)?;
        let p = self
            .service
            .policy(&request.into_inner().id)
            .map_err(status)?;
        Ok(Response::new(pb::PolicyResponse {
            policy_json: json(&p)?,
        }))
    }

    async fn put_policy(
        &self,
        request: Request<pb::PutPolicyRequest>,
    ) -> Result<Response<pb::PolicyResponse>, Status> {
        self.admin(&request)?;
        let p = policy_from_json(&request.into_inner().policy_json)?;
        let p = self.service.put_policy(p).map_err(status)?;
        Ok(Response::new(pb::PolicyResponse {
            policy_json: json(&p)?,
        }))
    }

    async fn delete_policy(
        &self,
        request: Request<pb::DeletePolicyRequest>,
    ) -> Result<Response<pb::DeletePolicyResponse>, Status> {
        self.admin(&request)?;
        self.service
            .delete_policy(&request.into_inner().id)
            .map_err(status)?;
        Ok(Response::new(pb::DeletePolicyResponse {}))
    }

    async fn import_collateral(
        &self,
        request: Request<pb::ImportCollateralRequest>,
    ) -> Result<Response<pb::ImportCollateralResponse>, Status> {
        self.admin(&request)?;
        let c = request.into_inner().collateral.ok_or_else(|| {
            status(ApiError::BadRequest(
                "missing_collateral",
                "collateral is required".into(),
            ))
        })?;
        let e = self
            .service
            .import_collateral(&collateral_from_pb(c))
            .map_err(status)?;
        let entry = Some(entry_to_pb(
            &self.service.collateral().status_of(&e, self.service.now()),
        ));
        Ok(Response::new(pb::ImportCollateralResponse { entry }))
    }

    async fn collateral_status(
        &self,
        _: Request<pb::CollateralStatusRequest>,
    ) -> Result<Response<pb::CollateralStatusResponse>, Status> {
        let entries = self.service.collateral_status().map_err(status)?;
        Ok(Response::new(pb::CollateralStatusResponse {
            entries: entries.iter().map(entry_to_pb).collect(),
        }))
    }

    async fn rotate_signing_key(
        &self,
        request: Request<pb::RotateSigningKeyRequest>,
    ) -> Result<Response<pb::RotateSigningKeyResponse>, Status> {
        self.admin(&request)?;
        Ok(Response::new(pb::RotateSigningKeyResponse {
            kid: self.service.rotate_signing_key().map_err(status)?,
        }))
    }
}

/// Serves the attestation, health and reflection services on `listener` until
/// `shutdown` resolves, with bounded message size, request time and per-connection
/// concurrency.
pub async fn serve(
    listener: tokio::net::TcpListener,
    service: Arc<Service>,
    limits: &Limits,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<pb::attestation_service_server::AttestationServiceServer<AttestationGrpc>>()
        .await;
    // Reflection lists exactly what this server serves (the attestation service and
    // health), in the current protocol and in v1alpha, which many clients still use.
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(phalanx_proto::ATTESTATION_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let unavailable = |e: tonic_reflection::server::Error| {
        tracing::error!(error = %e, "gRPC reflection unavailable");
    };
    let reflection_v1 = reflection().build_v1().map_err(unavailable).ok();
    let reflection_v1alpha = reflection().build_v1alpha().map_err(unavailable).ok();
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    tonic::transport::Server::builder()
        .timeout(Duration::from_millis(limits.request_timeout_ms))
        .concurrency_limit_per_connection(limits.max_in_flight)
        .add_service(health)
        .add_optional_service(reflection_v1)
        .add_optional_service(reflection_v1alpha)
        .add_service(AttestationGrpc::new(service).into_server(limits.max_body_bytes))
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
}
