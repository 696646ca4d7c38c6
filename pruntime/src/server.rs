//! The worker's HTTP API (axum): `POST /v1/query` (a [`Query`], answered with an
//! [`crate::protocol::Answer`]), `POST /v1/receipt` (a receipt request signed by the
//! command's caller, [`Query::receipt_request`], answered the same way with the encoded
//! `phalanx_types::receipt::Receipt`), `POST /v1/events` (a page of the contract's
//! events from a sequence on, for a reader the contract's `may_read_events` admits;
//! 403 `not_a_reader` otherwise), `GET /v1/info`, `GET /v1/evidence`, `GET
//! /v1/checkpoint/{contract}` (the committed checkpoint, sealed), `GET /healthz`. Bodies are bounded,
//! requests time out, concurrency is limited; contract calls run off the async threads.
//! Errors are `{"error": {"code", "message"}}`: 400 malformed, 403 bad signature or
//! envelope, 404 unknown contract, 413 too large, 409 the worker is behind the query's
//! height or the query (caller, nonce) was answered already, 404 also no receipt (yet)
//! for the command named, 422 the
//! contract refused or failed, 503 busy.

use crate::protocol::{MAX_QUERY_BYTES, ProtocolError, Purpose, Query};
use crate::worker::{QueryError, Worker};
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use std::sync::Arc;
use std::time::Duration;

fn error(status: StatusCode, code: &str, message: String) -> Response {
    (
        status,
        Json(serde_json::json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

fn query_error(e: QueryError) -> Response {
    let (status, code) = match &e {
        QueryError::UnknownContract(_) => (StatusCode::NOT_FOUND, "unknown_contract"),
        QueryError::TooMuchFuel { .. } => (StatusCode::BAD_REQUEST, "too_much_fuel"),
        QueryError::TooOld { .. } => (StatusCode::CONFLICT, "height_not_reached"),
        QueryError::Replayed => (StatusCode::CONFLICT, "replayed"),
        QueryError::NotReady => (StatusCode::SERVICE_UNAVAILABLE, "catching_up"),
        QueryError::Protocol(ProtocolError::Malformed(_)) => (StatusCode::BAD_REQUEST, "malformed"),
        QueryError::Protocol(ProtocolError::BadSignature) => {
            (StatusCode::FORBIDDEN, "bad_signature")
        }
        QueryError::Protocol(_) => (StatusCode::FORBIDDEN, "sealed_for_another"),
        QueryError::Contract(_) => (StatusCode::UNPROCESSABLE_ENTITY, "contract_failed"),
        QueryError::NoReceipt => (StatusCode::NOT_FOUND, "no_receipt"),
        QueryError::NotAReader => (StatusCode::FORBIDDEN, "not_a_reader"),
        QueryError::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
    };
    error(status, code, e.to_string())
}

async fn query(
    State(worker): State<Arc<Worker>>,
    body: Result<Json<Query>, JsonRejection>,
) -> Response {
    answer(worker, body, Purpose::Query).await
}

async fn receipt(
    State(worker): State<Arc<Worker>>,
    body: Result<Json<Query>, JsonRejection>,
) -> Response {
    answer(worker, body, Purpose::Receipt).await
}

async fn events(
    State(worker): State<Arc<Worker>>,
    body: Result<Json<Query>, JsonRejection>,
) -> Response {
    answer(worker, body, Purpose::Events).await
}

async fn answer(
    worker: Arc<Worker>,
    body: Result<Json<Query>, JsonRejection>,
    purpose: Purpose,
) -> Response {
    let q = match body {
        Ok(Json(q)) => q,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return error(e.status(), "too_large", e.body_text());
        }
        Err(e) => return error(StatusCode::BAD_REQUEST, "malformed", e.body_text()),
    };
    let run = move || match purpose {
        Purpose::Query => worker.query(&q),
        Purpose::Receipt => worker.receipt(&q),
        Purpose::Events => worker.events(&q),
    };
    match tokio::task::spawn_blocking(run).await {
        Ok(Ok(answer)) => Json(answer).into_response(),
        Ok(Err(e)) => query_error(e),
        Err(_) => query_error(QueryError::Internal),
    }
}

/// The contract's committed checkpoint (sealed under its keys: only its workers open
/// it), for a new worker to start from.
async fn checkpoint(
    State(worker): State<Arc<Worker>>,
    axum::extract::Path(contract): axum::extract::Path<String>,
) -> Response {
    let mut id = [0u8; 32];
    if hex::decode_to_slice(&contract, &mut id).is_err() {
        return error(
            StatusCode::BAD_REQUEST,
            "malformed",
            "a contract id is 64 hex characters".into(),
        );
    }
    match tokio::task::spawn_blocking(move || worker.committed_checkpoint(&id)).await {
        Ok(Some(sealed)) => (
            [(axum::http::header::CONTENT_TYPE, "application/octet-stream")],
            sealed,
        )
            .into_response(),
        _ => error(
            StatusCode::NOT_FOUND,
            "no_checkpoint",
            "no committed checkpoint of this contract here".into(),
        ),
    }
}

/// The router over `worker`.
pub fn router(worker: Arc<Worker>) -> Router {
    Router::new()
        .route("/v1/query", post(query))
        .route("/v1/receipt", post(receipt))
        .route("/v1/events", post(events))
        .route(
            "/v1/info",
            get(|State(w): State<Arc<Worker>>| async move { Json(w.info()) }),
        )
        .route(
            "/v1/evidence",
            get(|State(w): State<Arc<Worker>>| async move {
                match w.evidence() {
                    Some(e) => Json(e).into_response(),
                    None => query_error(QueryError::Internal),
                }
            }),
        )
        .route("/v1/checkpoint/{contract}", get(checkpoint))
        .route("/healthz", get(|| async { "ok" }))
        .layer(DefaultBodyLimit::max(2 * MAX_QUERY_BYTES))
        .layer(
            tower::ServiceBuilder::new()
                .layer(axum::error_handling::HandleErrorLayer::new(
                    |_: tower::BoxError| async {
                        error(
                            StatusCode::SERVICE_UNAVAILABLE,
                            "busy",
                            "the worker is busy or the request took too long".into(),
                        )
                    },
                ))
                .load_shed()
                .concurrency_limit(64)
                .timeout(Duration::from_secs(10)),
        )
        .with_state(worker)
}

/// Serves `worker` on `listener` until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    worker: Arc<Worker>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(worker))
        .with_graceful_shutdown(shutdown)
        .await
}
