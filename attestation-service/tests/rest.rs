//! The REST API of a whole service (sim mode, rocksdb store in a temporary directory),
//! called through its router without a socket: nonce → attest → token checked by an
//! independent JWT library, admin policy CRUD, collateral, key rotation, persistence,
//! health, metrics and the OpenAPI document.
#![cfg(feature = "server")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use attestation_service::TeeType;
use attestation_service::rest::router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use support::*;
use tower::ServiceExt;

async fn call_with(
    app: &axum::Router,
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
    bearer: Option<&str>,
) -> (StatusCode, serde_json::Value) {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json");
    if let Some(b) = bearer {
        req = req.header("authorization", format!("Bearer {b}"));
    }
    let req = req
        .body(body.map_or(Body::empty(), |b| Body::from(b.to_string())))
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 22)
        .await
        .unwrap();
    let json = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
        serde_json::Value::String(String::from_utf8_lossy(&bytes).into_owned())
    });
    (status, json)
}

async fn call(
    app: &axum::Router,
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> (StatusCode, serde_json::Value) {
    call_with(app, method, path, body, None).await
}

async fn admin(
    app: &axum::Router,
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> (StatusCode, serde_json::Value) {
    call_with(app, method, path, body, Some(ADMIN)).await
}

async fn fresh_nonce(app: &axum::Router) -> String {
    let (status, n) = call(app, "POST", "/v1/nonce", None).await;
    assert_eq!(status, StatusCode::OK);
    n["nonce"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn nonce_attest_token_round_trip_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (a, sim) = open(config(dir.path()));
    let app = router(a.service.clone(), &a.config.limits);
    let runtime = b"worker keys";

    // No collateral in the request: the service's cache (minted by the sim PKI) serves.
    let nonce = fresh_nonce(&app).await;
    let quote = quote_for(&sim, &nonce, runtime);
    let body = serde_json::json!({
        "tee": "sgx", "quote": b64(&quote), "runtime_data": b64(runtime), "nonce": nonce, "policy": "app",
    });
    let (status, r) = call(&app, "POST", "/v1/attest", Some(body.clone())).await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert_eq!(r["verdict"]["status"], "affirming");
    let (_, jwks) = call(&app, "GET", "/.well-known/jwks.json", None).await;
    let claims = check_token(r["token"].as_str().unwrap(), &jwks);
    assert_eq!(claims["ear.status"], "affirming");
    assert_eq!(claims["phalanx.trust_root"], "sim");
    assert_eq!(claims["eat_nonce"], nonce);
    let sub = &claims["submods"]["sgx"];
    assert_eq!(sub["phalanx.evidence"]["status"], "UpToDate");
    assert_eq!(sub["phalanx.policy"]["policy_id"], "app");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        3600
    );

    // The same nonce again: refused.
    let (status, r) = call(&app, "POST", "/v1/attest", Some(body.clone())).await;
    assert_eq!(
        (status, r["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("bad_nonce"))
    );

    // A fresh nonce that the quote does not bind.
    let mut other = body.clone();
    other["nonce"] = fresh_nonce(&app).await.into();
    let (status, r) = call(&app, "POST", "/v1/attest", Some(other.clone())).await;
    assert_eq!(
        (status, r["error"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("report_data_mismatch")
        )
    );
    // ... and the rejection did not burn that nonce: a quote binding it succeeds.
    let n2 = other["nonce"].as_str().unwrap().to_owned();
    other["quote"] = b64(&quote_for(&sim, &n2, runtime)).into();
    assert_eq!(
        call(&app, "POST", "/v1/attest", Some(other)).await.0,
        StatusCode::OK
    );

    // The claimed TEE must be the quote's.
    let n3 = fresh_nonce(&app).await;
    let mut wrong_tee = body.clone();
    wrong_tee["nonce"] = n3.clone().into();
    wrong_tee["quote"] = b64(&quote_for(&sim, &n3, runtime)).into();
    wrong_tee["tee"] = "tdx".into();
    let (status, r) = call(&app, "POST", "/v1/attest", Some(wrong_tee)).await;
    assert_eq!(
        (status, r["error"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("tee_mismatch"))
    );

    // Damaged evidence: a 4xx naming the step, never a 500.
    let n4 = fresh_nonce(&app).await;
    let mut bad = quote_for(&sim, &n4, runtime);
    bad[100] ^= 1;
    let mut damaged = body.clone();
    damaged["nonce"] = n4.into();
    damaged["quote"] = b64(&bad).into();
    let (status, r) = call(&app, "POST", "/v1/attest", Some(damaged)).await;
    assert_eq!(
        (status, r["error"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("quote_signature_invalid")
        )
    );
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .starts_with("quote_signature: ")
    );
    // A truncated quote.
    let mut truncated = body.clone();
    truncated["quote"] = b64(&quote[..200]).into();
    truncated["nonce"] = fresh_nonce(&app).await.into();
    let (status, r) = call(&app, "POST", "/v1/attest", Some(truncated)).await;
    assert_eq!(
        (status, r["error"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("quote_truncated"))
    );

    // Explicit collateral in the request is used as given.
    let n5 = fresh_nonce(&app).await;
    let mut explicit = body.clone();
    explicit["nonce"] = n5.clone().into();
    explicit["quote"] = b64(&quote_for(&sim, &n5, runtime)).into();
    explicit["collateral"] =
        serde_json::from_str(&sim.collateral(TeeType::Sgx).unwrap().to_bundle_json()).unwrap();
    assert_eq!(
        call(&app, "POST", "/v1/attest", Some(explicit.clone()))
            .await
            .0,
        StatusCode::OK
    );

    // Unknown policy, bad base64, unknown fields, bad JSON, oversized bodies, no route.
    let mut unknown = body.clone();
    unknown["policy"] = "nope".into();
    let (status, r) = call(&app, "POST", "/v1/attest", Some(unknown)).await;
    assert_eq!(
        (status, r["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("unknown_policy"))
    );
    let mut garbled = body.clone();
    garbled["quote"] = "***".into();
    assert_eq!(
        call(&app, "POST", "/v1/attest", Some(garbled)).await.1["error"],
        "bad_base64"
    );
    let mut extra = body.clone();
    extra["surprise"] = 1.into();
    let (status, r) = call(&app, "POST", "/v1/attest", Some(extra)).await;
    assert_eq!(
        (status, r["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_json"))
    );
    let mut huge = body.clone();
    huge["runtime_data"] = "A".repeat(a.config.limits.max_body_bytes).into();
    let (status, r) = call(&app, "POST", "/v1/attest", Some(huge)).await;
    assert_eq!(
        (status, r["error"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("too_large"))
    );
    let (status, r) = call(&app, "GET", "/v1/nothing", None).await;
    assert_eq!(
        (status, r["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );

    // Verification only.
    let (status, r) = call(
        &app,
        "POST",
        "/v1/verify",
        Some(serde_json::json!({"quote": b64(&quote)})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert_eq!(r["quote"]["status"], "UpToDate");

    // Metrics count what happened.
    let (status, text) = call(&app, "GET", "/metrics", None).await;
    assert_eq!(status, StatusCode::OK);
    let text = text.as_str().unwrap();
    assert!(
        text.contains("phalanx_as_requests_total{op=\"attest\",outcome=\"ok\"} 3"),
        "{text}"
    );
    assert!(text.contains("outcome=\"quote_signature_invalid\"} 1"));
    assert!(text.contains("phalanx_as_collateral_entries 1"));
}

#[tokio::test]
async fn admin_policies_collateral_and_keys_persist() {
    let dir = tempfile::tempdir().unwrap();
    let (a, sim) = open(config(dir.path()));
    let app = router(a.service.clone(), &a.config.limits);

    // Admin routes need the secret.
    for secret in [None, Some("wrong-secret-wrong-secret")] {
        let (status, r) = call_with(&app, "GET", "/v1/policies", None, secret).await;
        assert_eq!(
            (status, r["error"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("unauthorized"))
        );
    }
    let (status, list) = admin(&app, "GET", "/v1/policies", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 1);

    // Put: versions must increase; the path names the id.
    let p2: serde_json::Value = serde_json::to_value(
        attestation_service::policy::Policy::from_toml(&policy_toml("app", 2)).unwrap(),
    )
    .unwrap();
    assert_eq!(
        admin(&app, "PUT", "/v1/policies/app", Some(p2.clone()))
            .await
            .0,
        StatusCode::OK
    );
    let (status, r) = admin(&app, "PUT", "/v1/policies/app", Some(p2.clone())).await;
    assert_eq!(
        (status, r["error"].as_str()),
        (StatusCode::CONFLICT, Some("policy_version_conflict"))
    );
    // Well-formed, but the body contradicts the path: refused on content (422).
    let (status, r) = admin(&app, "PUT", "/v1/policies/other", Some(p2.clone())).await;
    assert_eq!(
        (status, r["error"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("policy_id_mismatch"))
    );
    let mut p_new = p2.clone();
    p_new["id"] = "second".into();
    p_new["surprise"] = true.into();
    assert_eq!(
        admin(&app, "PUT", "/v1/policies/second", Some(p_new.clone()))
            .await
            .0,
        StatusCode::BAD_REQUEST
    );
    p_new.as_object_mut().unwrap().remove("surprise");
    assert_eq!(
        admin(&app, "PUT", "/v1/policies/second", Some(p_new))
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        admin(&app, "GET", "/v1/policies/app", None).await.1["version"],
        2
    );
    assert_eq!(
        admin(&app, "DELETE", "/v1/policies/second", None).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        admin(&app, "DELETE", "/v1/policies/second", None).await.0,
        StatusCode::NOT_FOUND
    );

    // Collateral import (admin) verifies before storing; status is public.
    let bundle: serde_json::Value =
        serde_json::from_str(&sim.collateral(TeeType::Tdx).unwrap().to_bundle_json()).unwrap();
    assert_eq!(
        call(&app, "POST", "/v1/collateral", Some(bundle.clone()))
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    let (status, e) = admin(&app, "POST", "/v1/collateral", Some(bundle.clone())).await;
    assert_eq!(status, StatusCode::OK, "{e}");
    assert_eq!(e["key"]["tee"], "tdx");
    let mut forged = bundle.clone();
    forged["tcb_info"] = forged["tcb_info"]
        .as_str()
        .unwrap()
        .replace("UpToDate", "UpToDatf")
        .into();
    let (status, r) = admin(&app, "POST", "/v1/collateral", Some(forged)).await;
    assert_eq!(
        (status, r["error"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("collateral_signature_invalid")
        )
    );
    let (status, entries) = call(&app, "GET", "/v1/collateral", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(entries[0]["freshness"], "fresh");

    // A token signed before a rotation still verifies with the JWKS after it.
    let nonce = fresh_nonce(&app).await;
    let body = serde_json::json!({
        "quote": b64(&quote_for(&sim, &nonce, b"k")), "runtime_data": b64(b"k"), "nonce": nonce, "policy": "app",
    });
    let (status, r) = call(&app, "POST", "/v1/attest", Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{r}");
    let old_token = r["token"].as_str().unwrap().to_owned();
    let (_, before) = call(&app, "GET", "/.well-known/jwks.json", None).await;
    assert_eq!(
        call(&app, "POST", "/v1/admin/signing-key/rotate", None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    let (status, rotated) = admin(&app, "POST", "/v1/admin/signing-key/rotate", None).await;
    assert_eq!(status, StatusCode::OK);
    let (_, after) = call(&app, "GET", "/.well-known/jwks.json", None).await;
    assert_eq!(after["keys"].as_array().unwrap().len(), 2);
    assert_eq!(after["keys"][0]["kid"], rotated["kid"]);
    assert_ne!(before["keys"][0]["kid"], rotated["kid"]);
    check_token(&old_token, &after);

    // Everything survives a restart on the same directory (the TDX import and the SGX
    // collateral the sim source minted for the attest above).
    let config = a.config.clone();
    drop(app);
    drop(a);
    let (b, _) = open(config);
    let app = router(b.service.clone(), &b.config.limits);
    let (_, again) = call(&app, "GET", "/.well-known/jwks.json", None).await;
    assert_eq!(again, after);
    assert_eq!(
        admin(&app, "GET", "/v1/policies/app", None).await.1["version"],
        2
    );
    assert_eq!(
        admin(&app, "GET", "/v1/policies/second", None).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(&app, "GET", "/v1/collateral", None)
            .await
            .1
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // The start-up policy file (version 1) does not downgrade the stored version 2.
    assert_eq!(
        admin(&app, "GET", "/v1/policies", None)
            .await
            .1
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn health_and_openapi_describe_exactly_the_routes() {
    let dir = tempfile::tempdir().unwrap();
    let (a, _) = open(config(dir.path()));
    let app = router(a.service.clone(), &a.config.limits);
    assert_eq!(call(&app, "GET", "/healthz", None).await.0, StatusCode::OK);
    assert_eq!(call(&app, "GET", "/readyz", None).await.0, StatusCode::OK);
    let (status, doc) = call(&app, "GET", "/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let mut documented = Vec::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops
            .as_object()
            .unwrap()
            .keys()
            .filter(|m| *m != "parameters")
        {
            documented.push((method.to_uppercase(), path.replace("{id}", "app")));
        }
    }
    documented.sort();
    // Every documented operation is routed (not the 404 fallback, not 405)...
    for (method, path) in &documented {
        let (status, r) = admin(&app, method, path, Some(serde_json::json!({}))).await;
        assert!(
            status != StatusCode::METHOD_NOT_ALLOWED && r["error"] != "not_found",
            "{method} {path}: {status} {r}"
        );
    }
    // ... and every route is documented.
    let mut routed: Vec<(String, String)> = [
        ("POST", "/v1/nonce"),
        ("POST", "/v1/attest"),
        ("POST", "/v1/verify"),
        ("GET", "/.well-known/jwks.json"),
        ("GET", "/v1/policies"),
        ("GET", "/v1/policies/app"),
        ("PUT", "/v1/policies/app"),
        ("DELETE", "/v1/policies/app"),
        ("GET", "/v1/collateral"),
        ("POST", "/v1/collateral"),
        ("POST", "/v1/admin/signing-key/rotate"),
        ("GET", "/metrics"),
        ("GET", "/healthz"),
        ("GET", "/readyz"),
        ("GET", "/openapi.json"),
    ]
    .iter()
    .map(|(m, p)| (m.to_string(), p.to_string()))
    .collect();
    routed.sort();
    assert_eq!(documented, routed);
}
