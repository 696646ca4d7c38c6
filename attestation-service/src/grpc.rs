//! The gRPC front end (`phalanx.attestation.v1.AttestationService`), feature `server`.
//!
//! A thin adapter: it decodes the request, runs the sans-IO [`Verifier`] on a blocking
//! thread with the wall clock as `now`, and maps the outcome in one place
//! ([`to_response`]). A rejected quote is a successful call carrying a `Rejection`
//! (code, step, message); gRPC errors are kept for unusable requests
//! (`invalid_argument`) and for our own failures (`internal`, details only in the
//! server log). Request size and time are bounded by [`serve`].

use crate::verify::{Measurements, VerifiedQuote, Verifier};
use crate::{Collateral, Error, TeeType};
use phalanx_proto::attestation::v1 as pb;
use std::sync::Arc;
use std::time::Duration;

/// Largest request accepted (a quote plus a collateral bundle is ~30 KiB).
pub const MAX_REQUEST_BYTES: usize = 1024 * 1024;
/// Longest a request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The service: a shared verifier.
#[derive(Debug, Clone)]
pub struct AttestationGrpc {
    verifier: Arc<Verifier>,
}

impl AttestationGrpc {
    /// Serves with `verifier`.
    pub fn new(verifier: Arc<Verifier>) -> Self {
        Self { verifier }
    }

    /// The tonic service, with the request size bound applied.
    pub fn into_server(self) -> pb::attestation_service_server::AttestationServiceServer<Self> {
        pb::attestation_service_server::AttestationServiceServer::new(self)
            .max_decoding_message_size(MAX_REQUEST_BYTES)
    }
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
                tee: match v.tee() {
                    TeeType::Sgx => pb::Tee::Sgx,
                    TeeType::Tdx => pb::Tee::Tdx,
                } as i32,
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
        request: tonic::Request<pb::VerifyQuoteRequest>,
    ) -> Result<tonic::Response<pb::VerifyQuoteResponse>, tonic::Status> {
        let req = request.into_inner();
        let collateral = req.collateral.map(collateral_from_pb).ok_or_else(|| {
            tonic::Status::invalid_argument(
                "collateral is required (no collateral source configured)",
            )
        })?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|_| tonic::Status::internal("clock"))?
            .as_secs();
        let now = i64::try_from(now).map_err(|_| tonic::Status::internal("clock"))?;
        let verifier = self.verifier.clone();
        let outcome =
            tokio::task::spawn_blocking(move || verifier.verify(&req.quote, &collateral, now))
                .await
                .map_err(|e| {
                    eprintln!("attestation-service: verification task failed: {e}");
                    tonic::Status::internal("internal error")
                })?;
        Ok(tonic::Response::new(to_response(&outcome)))
    }
}

/// Serves on `listener` until `shutdown` resolves, with bounded request time and size.
pub async fn serve(
    listener: tokio::net::TcpListener,
    verifier: Arc<Verifier>,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    tonic::transport::Server::builder()
        .timeout(REQUEST_TIMEOUT)
        .concurrency_limit_per_connection(64)
        .add_service(AttestationGrpc::new(verifier).into_server())
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
}
