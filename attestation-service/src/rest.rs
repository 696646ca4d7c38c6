//! The REST front end (feature `server`): a thin adapter over [`Service`].
//!
//! | method | path | auth | body | answer |
//! |---|---|---|---|---|
//! | POST | `/v1/nonce` | – | – | `{"nonce", "expires"}` |
//! | POST | `/v1/attest` | – | `{"tee"?, "quote": b64, "collateral"?: bundle, "runtime_data": b64, "nonce", "policy"}` | `{"token", "verdict", "collateral": bundle}` |
//! | POST | `/v1/verify` | – | `{"quote": b64, "collateral"?: bundle}` | `{"quote", "stale_collateral"}` |
//! | GET | `/.well-known/jwks.json` | – | – | JWKS |
//! | GET | `/v1/policies` | admin | – | `[policy]` |
//! | GET / PUT / DELETE | `/v1/policies/{id}` | admin | PUT: policy (JSON) | policy / – |
//! | POST | `/v1/collateral` | admin | bundle | the stored entry |
//! | GET | `/v1/collateral` | – | – | `[entry status]` |
//! | POST | `/v1/admin/signing-key/rotate` | admin | – | `{"kid"}` |
//! | GET | `/metrics`, `/healthz`, `/readyz`, `/openapi.json` | – | – | text / JSON |
//!
//! Admin routes take `Authorization: Bearer <secret>`. Every failure is
//! `{"error": "<code>", "message": "..."}` with the status of its [`ErrorKind`]
//! ([`status`] is the one mapping): bad evidence is a 422 naming the failed step, never
//! a 500. The router is built by [`router`] so tests call it without a socket; bodies
//! are bounded, requests time out and excess concurrency is shed with a 503
//! ([`Limits`]). The OpenAPI document (`openapi.json`) describes exactly these routes;
//! a test checks both ways.

use crate::Collateral;
use crate::config::Limits;
use crate::policy::Policy;
use crate::service::{ApiError, AttestInput, ErrorKind, Service};
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use serde_json::value::RawValue;
use std::sync::Arc;
use std::time::Instant;

/// The OpenAPI 3.1 document of this API.
pub const OPENAPI: &str = include_str!("../openapi.json");

/// The shared state: the service.
pub type AppState = Arc<Service>;

/// The wall clock in unix seconds (the one clock, [`phalanx_types::unix_now`]).
pub use phalanx_types::unix_now as system_now;

/// The one mapping from error kinds to HTTP statuses.
pub fn status(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
        ErrorKind::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::Timeout => StatusCode::REQUEST_TIMEOUT,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// An [`ApiError`] as a response.
pub struct RestError(pub ApiError);

impl From<ApiError> for RestError {
    fn from(e: ApiError) -> Self {
        Self(e)
    }
}

impl IntoResponse for RestError {
    fn into_response(self) -> Response {
        let e = self.0;
        (
            status(e.kind()),
            Json(serde_json::json!({ "error": e.code(), "message": e.message() })),
        )
            .into_response()
    }
}

type Answer<T> = Result<Json<T>, RestError>;

/// Builds the router.
pub fn router(state: AppState, limits: &Limits) -> Router {
    Router::new()
        .route("/v1/nonce", post(nonce))
        .route("/v1/attest", post(attest))
        .route("/v1/verify", post(verify))
        .route("/.well-known/jwks.json", get(jwks))
        .route("/v1/policies", get(list_policies))
        .route(
            "/v1/policies/{id}",
            get(get_policy).put(put_policy).delete(delete_policy),
        )
        .route(
            "/v1/collateral",
            get(collateral_status).post(import_collateral),
        )
        .route("/v1/admin/signing-key/rotate", post(rotate_key))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .route("/openapi.json", get(openapi))
        .fallback(|| async { RestError(ApiError::NoRoute) })
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(
            tower::ServiceBuilder::new()
                .layer(axum::error_handling::HandleErrorLayer::new(
                    |e: tower::BoxError| async move {
                        RestError(if e.is::<tower::timeout::error::Elapsed>() {
                            ApiError::Timeout
                        } else {
                            ApiError::Overloaded
                        })
                    },
                ))
                .load_shed()
                .concurrency_limit(limits.max_in_flight)
                .timeout(std::time::Duration::from_millis(limits.request_timeout_ms)),
        )
        .with_state(state)
}

fn json_body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    match body {
        Ok(Json(t)) => Ok(t),
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(ApiError::TooLarge),
        Err(e) => Err(ApiError::BadRequest("bad_json", e.body_text())),
    }
}

/// JSON Schema's `integer` is any number without a fractional part, so `3.0` is one;
/// serde's integers are not. Rewrites such numbers (within `u64`/`i64`) as integers, so
/// the service accepts what its schema allows.
fn integral_numbers_as_integers(v: &mut serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::Number(n) => {
            if let Some(f) = n
                .as_f64()
                .filter(|f| !n.is_i64() && !n.is_u64() && f.fract() == 0.0)
            {
                // Exact: |f| < 2^63 and integral, so the cast neither rounds nor saturates.
                if (0.0..9.2e18).contains(&f) {
                    *v = Value::from(f as u64);
                } else if (-9.2e18..0.0).contains(&f) {
                    *v = Value::from(f as i64);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral_numbers_as_integers),
        Value::Object(map) => map.values_mut().for_each(integral_numbers_as_integers),
        _ => {}
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

fn b64(field: &'static str, s: &str) -> Result<Vec<u8>, ApiError> {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|_| ApiError::BadRequest("bad_base64", format!("{field} is not base64")))
}

/// A collateral bundle straight from the request's bytes (kept raw by serde, so the
/// signed JSON texts inside are read once and never re-serialised).
fn bundle(raw: &RawValue) -> Result<Collateral, ApiError> {
    Collateral::from_bundle_json(raw.get().as_bytes()).map_err(ApiError::Evidence)
}

async fn nonce(State(s): State<AppState>) -> Answer<crate::service::IssuedNonce> {
    let start = Instant::now();
    Ok(Json(s.observed("nonce", start, s.issue_nonce())?))
}

async fn jwks(State(s): State<AppState>) -> Answer<serde_json::Value> {
    Ok(Json(s.jwks()?))
}

/// The `attest` request.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttestRequest {
    /// `sgx` or `tdx`; checked against the quote when given.
    #[serde(default)]
    pub tee: Option<String>,
    /// The quote, base64.
    pub quote: String,
    /// A collateral bundle; when absent the service's collateral cache provides it.
    #[serde(default)]
    pub collateral: Option<Box<RawValue>>,
    /// Runtime data, base64 (e.g. the worker's public keys).
    pub runtime_data: String,
    /// A nonce from `/v1/nonce`.
    pub nonce: String,
    /// Policy id.
    pub policy: String,
}

async fn attest(
    State(s): State<AppState>,
    body: Result<Json<AttestRequest>, JsonRejection>,
) -> Answer<crate::service::AttestOutput> {
    let start = Instant::now();
    let run = async {
        let req = json_body(body)?;
        s.attest(AttestInput {
            tee: req.tee,
            quote: b64("quote", &req.quote)?,
            collateral: req.collateral.as_deref().map(bundle).transpose()?,
            runtime_data: b64("runtime_data", &req.runtime_data)?,
            nonce: req.nonce,
            policy: req.policy,
        })
        .await
    };
    let r = run.await;
    Ok(Json(s.observed("attest", start, r)?))
}

/// The `verify` request.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    /// The quote, base64.
    pub quote: String,
    /// A collateral bundle; when absent the service's collateral cache provides it.
    #[serde(default)]
    pub collateral: Option<Box<RawValue>>,
}

async fn verify(
    State(s): State<AppState>,
    body: Result<Json<VerifyRequest>, JsonRejection>,
) -> Answer<crate::service::VerifyOutput> {
    let start = Instant::now();
    let run = async {
        let req = json_body(body)?;
        s.verify(
            b64("quote", &req.quote)?,
            req.collateral.as_deref().map(bundle).transpose()?,
        )
        .await
    };
    let r = run.await;
    Ok(Json(s.observed("verify", start, r)?))
}

async fn list_policies(State(s): State<AppState>, h: HeaderMap) -> Answer<Vec<Policy>> {
    s.authorize(bearer(&h))?;
    Ok(Json(s.policies()?))
}

async fn get_policy(
    State(s): State<AppState>,
    h: HeaderMap,
    Path(id): Path<String>,
) -> Answer<Policy> {
    s.authorize(bearer(&h))?;
    Ok(Json(s.policy(&id)?))
}

async fn put_policy(
    State(s): State<AppState>,
    h: HeaderMap,
    Path(id): Path<String>,
    body: Result<Json<serde_json::Value>, JsonRejection>,
) -> Answer<Policy> {
    s.authorize(bearer(&h))?;
    let mut v = json_body(body)?;
    integral_numbers_as_integers(&mut v);
    let p: Policy =
        serde_json::from_value(v).map_err(|e| ApiError::BadRequest("bad_json", e.to_string()))?;
    if p.id != id {
        return Err(ApiError::PolicyIdMismatch {
            path: id.chars().take(64).collect(),
            body: p.id.chars().take(64).collect(),
        }
        .into());
    }
    Ok(Json(s.put_policy(p)?))
}

async fn delete_policy(
    State(s): State<AppState>,
    h: HeaderMap,
    Path(id): Path<String>,
) -> Result<StatusCode, RestError> {
    s.authorize(bearer(&h))?;
    s.delete_policy(&id)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn import_collateral(
    State(s): State<AppState>,
    h: HeaderMap,
    body: Result<Json<Box<RawValue>>, JsonRejection>,
) -> Answer<crate::source::CachedCollateral> {
    s.authorize(bearer(&h))?;
    let c = bundle(&json_body(body)?)?;
    Ok(Json(s.import_collateral(&c)?))
}

async fn collateral_status(State(s): State<AppState>) -> Answer<Vec<crate::source::EntryStatus>> {
    Ok(Json(s.collateral_status()?))
}

async fn rotate_key(State(s): State<AppState>, h: HeaderMap) -> Answer<serde_json::Value> {
    s.authorize(bearer(&h))?;
    Ok(Json(serde_json::json!({ "kid": s.rotate_signing_key()? })))
}

async fn metrics(State(s): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics().render(&s.gauges()),
    )
        .into_response()
}

async fn ready(State(s): State<AppState>) -> Result<&'static str, RestError> {
    s.jwks()?;
    s.collateral_status()?;
    Ok("ready")
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nonce::NonceError;

    #[test]
    fn integral_json_numbers_are_integers_as_json_schema_says() {
        let mut v = serde_json::json!({"a": 98972.0, "b": [3.0, 2.5, -4.0], "c": 7, "d": 1e300});
        integral_numbers_as_integers(&mut v);
        assert_eq!(
            v,
            serde_json::json!({"a": 98972, "b": [3, 2.5, -4], "c": 7, "d": 1e300})
        );
        assert!(v["a"].is_u64() && v["b"][2].is_i64() && v["d"].is_f64());
    }

    #[test]
    fn one_mapping_keeps_client_errors_client_errors() {
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
                ApiError::UnknownPolicy("x".into()),
                StatusCode::NOT_FOUND,
                "unknown_policy",
            ),
            (
                ApiError::PolicyVersion {
                    id: "x".into(),
                    stored: 2,
                },
                StatusCode::CONFLICT,
                "policy_version_conflict",
            ),
            (
                ApiError::Unauthorized,
                StatusCode::UNAUTHORIZED,
                "unauthorized",
            ),
            (
                ApiError::Internal,
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
            ),
        ];
        for (err, want_status, want_code) in cases {
            assert_eq!((status(err.kind()), err.code()), (want_status, want_code));
        }
        assert_eq!(ApiError::Internal.message(), "internal error");
        assert!(
            ApiError::Evidence(crate::Error::QuoteSignatureInvalid)
                .message()
                .starts_with("quote_signature: ")
        );
    }
}
