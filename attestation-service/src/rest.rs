//! The REST front end (feature `server`): nonce → attest → signed result, and the JWKS.
//!
//! | method | path | body | answer |
//! |---|---|---|---|
//! | POST | `/v1/nonce` | – | `{"nonce", "expires"}` |
//! | POST | `/v1/attest` | `{"quote": b64, "collateral": bundle, "runtime_data": b64, "nonce", "policy"}` | `{"token", "verdict"}` |
//! | GET | `/.well-known/jwks.json` | – | JWKS |
//!
//! `attest` checks the nonce (MAC, expiry, single use), verifies the quote, requires
//! `REPORTDATA = nonce::report_data(nonce, runtime_data)`, appraises it under the named
//! policy and signs an EAR token — also for a contraindicated verdict, so relying parties
//! see why. Errors are `{"error": "<code>", "message": "..."}` from one mapping
//! ([`ApiError`]): bad evidence is a 4xx naming the failed step, never a 500. The router
//! is built by [`router`] so tests call it without a socket; bodies are bounded
//! ([`MAX_BODY`]), requests time out ([`REQUEST_TIMEOUT`]) and excess concurrency is shed
//! with a 503 ([`MAX_IN_FLIGHT`]).

use crate::nonce::{NonceError, NonceKey, ReplayGuard, report_data};
use crate::policy::{Policy, appraise};
use crate::token::Signer;
use crate::{Collateral, Verifier};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Largest request body accepted.
pub const MAX_BODY: usize = 512 * 1024;
/// Longest a request may take.
pub const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// Requests in flight at once; more are refused with 503 rather than queued.
pub const MAX_IN_FLIGHT: usize = 256;

/// Shared state: cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The verifier (trust anchors and caches).
    pub verifier: Arc<Verifier>,
    /// Policies by id.
    pub policies: Arc<HashMap<String, Policy>>,
    /// Result-signing keys.
    pub signer: Arc<Signer>,
    /// Nonce MAC key.
    pub nonce_key: Arc<NonceKey>,
    /// Consumed nonces.
    pub replay: Arc<Mutex<ReplayGuard>>,
    /// `iss` of result tokens.
    pub issuer: String,
    /// Nonce lifetime, seconds.
    pub nonce_ttl: u32,
    /// Token lifetime, seconds.
    pub token_ttl: i64,
    /// The clock (unix seconds); tests pin it.
    pub now: fn() -> i64,
}

/// The wall clock in unix seconds.
pub fn system_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The one mapping from failures to HTTP.
#[derive(Debug)]
pub enum ApiError {
    /// The request is malformed.
    BadRequest(&'static str, String),
    /// The nonce is not acceptable.
    Nonce(NonceError),
    /// The evidence failed verification.
    Evidence(crate::Error),
    /// No such policy.
    UnknownPolicy,
    /// The request took longer than [`REQUEST_TIMEOUT`].
    Timeout,
    /// More than [`MAX_IN_FLIGHT`] requests at once.
    Overloaded,
    /// Our own failure (details logged, not returned).
    Internal,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message) = match self {
            ApiError::BadRequest(code, m) => (StatusCode::BAD_REQUEST, code.to_owned(), m),
            ApiError::Nonce(NonceError::Busy) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "busy".into(),
                NonceError::Busy.to_string(),
            ),
            ApiError::Nonce(e) => (StatusCode::UNAUTHORIZED, "bad_nonce".into(), e.to_string()),
            ApiError::Evidence(e) => {
                let step = e.step().as_str();
                (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    e.code().to_owned(),
                    format!("{step}: {e}"),
                )
            }
            ApiError::UnknownPolicy => (
                StatusCode::NOT_FOUND,
                "unknown_policy".into(),
                "no such policy".into(),
            ),
            ApiError::Timeout => (
                StatusCode::REQUEST_TIMEOUT,
                "timeout".into(),
                "request took too long".into(),
            ),
            ApiError::Overloaded => (
                StatusCode::SERVICE_UNAVAILABLE,
                "overloaded".into(),
                "too many requests in flight".into(),
            ),
            ApiError::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal".into(),
                "internal error".into(),
            ),
        };
        (
            status,
            Json(serde_json::json!({ "error": code, "message": message })),
        )
            .into_response()
    }
}

/// Builds the router.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/nonce", post(nonce))
        .route("/v1/attest", post(attest))
        .route("/.well-known/jwks.json", get(jwks))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(
            tower::ServiceBuilder::new()
                .layer(axum::error_handling::HandleErrorLayer::new(
                    |e: tower::BoxError| async move {
                        if e.is::<tower::timeout::error::Elapsed>() {
                            ApiError::Timeout
                        } else {
                            ApiError::Overloaded
                        }
                    },
                ))
                .load_shed()
                .concurrency_limit(MAX_IN_FLIGHT)
                .timeout(REQUEST_TIMEOUT),
        )
        .with_state(state)
}

async fn nonce(State(s): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let mut random = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut random)
        .map_err(|_| ApiError::Internal)?;
    let now = (s.now)();
    Ok(Json(serde_json::json!({
        "nonce": s.nonce_key.issue(now, s.nonce_ttl, random),
        "expires": now.saturating_add(i64::from(s.nonce_ttl)),
    })))
}

async fn jwks(State(s): State<AppState>) -> Json<serde_json::Value> {
    Json(s.signer.jwks((s.now)()))
}

/// The `attest` request.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttestRequest {
    /// The quote, base64.
    pub quote: String,
    /// A collateral bundle (the JSON bundle format).
    pub collateral: serde_json::Value,
    /// Runtime data, base64 (e.g. the worker's public keys).
    pub runtime_data: String,
    /// A nonce from `/v1/nonce`.
    pub nonce: String,
    /// Policy id.
    pub policy: String,
}

fn b64(field: &'static str, s: &str) -> Result<Vec<u8>, ApiError> {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|_| ApiError::BadRequest("bad_base64", format!("{field} is not base64")))
}

async fn attest(
    State(s): State<AppState>,
    Json(req): Json<AttestRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let now = (s.now)();
    let quote = b64("quote", &req.quote)?;
    let runtime = b64("runtime_data", &req.runtime_data)?;
    let policy = s
        .policies
        .get(&req.policy)
        .ok_or(ApiError::UnknownPolicy)?
        .clone();
    let collateral_bytes = serde_json::to_vec(&req.collateral).map_err(|_| ApiError::Internal)?;
    let collateral = Collateral::from_bundle_json(&collateral_bytes).map_err(ApiError::Evidence)?;
    let nonce = s
        .nonce_key
        .check(&req.nonce, now)
        .map_err(ApiError::Nonce)?;
    s.replay
        .lock()
        .map_err(|_| ApiError::Internal)?
        .consume(&nonce, now)
        .map_err(ApiError::Nonce)?;
    let verifier = s.verifier.clone();
    let verified = tokio::task::spawn_blocking(move || verifier.verify(&quote, &collateral, now))
        .await
        .map_err(|_| ApiError::Internal)?
        .map_err(ApiError::Evidence)?;
    if verified.report_data != report_data(&nonce.bytes, &runtime) {
        return Err(ApiError::BadRequest(
            "report_data_mismatch",
            "REPORTDATA is not report_data(nonce, runtime_data)".into(),
        ));
    }
    let verdict = appraise(&policy, &verified, now);
    let claims = crate::token::claims(
        &s.issuer,
        now,
        s.token_ttl,
        &nonce.bytes,
        &runtime,
        &verified,
        &verdict,
    );
    let token = s.signer.sign(&claims).map_err(|_| ApiError::Internal)?;
    Ok(Json(
        serde_json::json!({ "token": token, "verdict": verdict }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn render(e: ApiError) -> (StatusCode, serde_json::Value) {
        let resp = e.into_response();
        let status = resp.status();
        let body = axum::body::to_bytes(resp.into_body(), 4096).await.unwrap();
        (status, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn one_mapping_keeps_client_errors_client_errors() {
        let cases = [
            (ApiError::Timeout, StatusCode::REQUEST_TIMEOUT, "timeout"),
            (
                ApiError::Overloaded,
                StatusCode::SERVICE_UNAVAILABLE,
                "overloaded",
            ),
            (
                ApiError::Nonce(NonceError::Replayed),
                StatusCode::UNAUTHORIZED,
                "bad_nonce",
            ),
            (
                ApiError::Nonce(NonceError::Busy),
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
            ),
            (
                ApiError::Evidence(crate::Error::QuoteSignatureInvalid),
                StatusCode::UNPROCESSABLE_ENTITY,
                "quote_signature_invalid",
            ),
            (
                ApiError::UnknownPolicy,
                StatusCode::NOT_FOUND,
                "unknown_policy",
            ),
            (
                ApiError::Internal,
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
            ),
        ];
        for (err, status, code) in cases {
            let (s, body) = render(err).await;
            assert_eq!((s, body["error"].as_str().unwrap()), (status, code));
        }
        assert_eq!(
            render(ApiError::Internal).await.1["message"],
            "internal error"
        );
    }
}
