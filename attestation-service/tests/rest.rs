//! The REST router, called without a socket: nonce → attest → token, and its errors.
#![cfg(feature = "server")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use attestation_service::nonce::{NonceKey, ReplayGuard, report_data};
use attestation_service::policy::Policy;
use attestation_service::rest::{AppState, router};
use attestation_service::sim::{SgxEnclave, SimConfig, SimTee};
use attestation_service::token::{Signer, generate_key};
use attestation_service::{TeeType, Verifier};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine as _;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tower::ServiceExt;

const NOW: i64 = 1_760_003_600;

fn now() -> i64 {
    NOW
}

fn setup() -> (SimTee, axum::Router) {
    let sim = SimTee::generate(SimConfig::up_to_date(NOW - 3600)).unwrap();
    let policy = Policy::from_toml(&format!(
        "id = \"app\"\nversion = 1\n[[sgx]]\nmr_enclave = \"{}\"\n",
        hex::encode([0x42; 32])
    ))
    .unwrap();
    let state = AppState {
        verifier: Arc::new(Verifier::new(sim.trust_anchors())),
        policies: Arc::new(HashMap::from([("app".to_string(), policy)])),
        signer: Arc::new(Signer::new(&generate_key().unwrap()).unwrap()),
        nonce_key: Arc::new(NonceKey::new(&[3; 32])),
        replay: Arc::new(Mutex::new(ReplayGuard::new(1000))),
        issuer: "test".into(),
        nonce_ttl: 300,
        token_ttl: 600,
        now,
    };
    (sim, router(state))
}

async fn call(
    app: &axum::Router,
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> (StatusCode, serde_json::Value) {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .body(body.map_or(Body::empty(), |b| Body::from(b.to_string())))
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

#[tokio::test]
async fn nonce_attest_token_round_trip_and_errors() {
    let (sim, app) = setup();
    let (status, n) = call(&app, "POST", "/v1/nonce", None).await;
    assert_eq!(status, StatusCode::OK);
    let nonce = n["nonce"].as_str().unwrap().to_string();
    let nonce_bytes = NonceKey::new(&[3; 32]).check(&nonce, NOW).unwrap().bytes;
    let runtime = b"worker keys";
    let quote = sim
        .sgx_quote(
            &SgxEnclave {
                mr_enclave: [0x42; 32],
                ..SgxEnclave::default()
            },
            &report_data(&nonce_bytes, runtime),
        )
        .unwrap();
    let collateral: serde_json::Value =
        serde_json::from_str(&sim.collateral(TeeType::Sgx).unwrap().to_bundle_json()).unwrap();
    let body = serde_json::json!({
        "quote": b64(&quote), "collateral": collateral, "runtime_data": b64(runtime), "nonce": nonce, "policy": "app",
    });
    let (status, r) = call(&app, "POST", "/v1/attest", Some(body.clone())).await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert_eq!(r["verdict"]["status"], "affirming");
    assert_eq!(r["token"].as_str().unwrap().split('.').count(), 3);

    // The same nonce again: refused.
    let (status, r) = call(&app, "POST", "/v1/attest", Some(body.clone())).await;
    assert_eq!(
        (status, &r["error"]),
        (StatusCode::UNAUTHORIZED, &"bad_nonce".into())
    );

    // A fresh nonce that the quote does not bind.
    let (_, n2) = call(&app, "POST", "/v1/nonce", None).await;
    let mut other = body.clone();
    other["nonce"] = n2["nonce"].clone();
    let (status, r) = call(&app, "POST", "/v1/attest", Some(other)).await;
    assert_eq!(
        (status, &r["error"]),
        (StatusCode::BAD_REQUEST, &"report_data_mismatch".into())
    );

    // Damaged evidence: a 4xx naming the step, never a 500.
    let (_, n3) = call(&app, "POST", "/v1/nonce", None).await;
    let mut bad = quote.clone();
    bad[100] ^= 1;
    let mut damaged = body.clone();
    damaged["nonce"] = n3["nonce"].clone();
    damaged["quote"] = b64(&bad).into();
    let (status, r) = call(&app, "POST", "/v1/attest", Some(damaged)).await;
    assert_eq!(
        (status, &r["error"]),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            &"quote_signature_invalid".into()
        )
    );
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .starts_with("quote_signature")
    );

    // Unknown policy, bad base64, unknown fields, oversized bodies.
    let mut unknown = body.clone();
    unknown["policy"] = "nope".into();
    assert_eq!(
        call(&app, "POST", "/v1/attest", Some(unknown)).await.0,
        StatusCode::NOT_FOUND
    );
    let mut garbled = body.clone();
    garbled["quote"] = "***".into();
    assert_eq!(
        call(&app, "POST", "/v1/attest", Some(garbled)).await.1["error"],
        "bad_base64"
    );
    let mut extra = body.clone();
    extra["surprise"] = 1.into();
    assert!(
        call(&app, "POST", "/v1/attest", Some(extra))
            .await
            .0
            .is_client_error()
    );
    let mut huge = body.clone();
    huge["runtime_data"] = "A".repeat(attestation_service::rest::MAX_BODY).into();
    assert_eq!(
        call(&app, "POST", "/v1/attest", Some(huge)).await.0,
        StatusCode::PAYLOAD_TOO_LARGE
    );

    let (status, jwks) = call(&app, "GET", "/.well-known/jwks.json", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(jwks["keys"][0]["alg"], "ES256");
}
