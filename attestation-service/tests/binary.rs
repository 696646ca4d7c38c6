//! The `attestation-service` binary as a real process on loopback: it starts from a
//! config file, answers the nonce → attest round trip over HTTP, and exits cleanly on
//! SIGTERM.
#![cfg(feature = "server")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use support::*;

#[tokio::test]
async fn serves_from_a_config_file_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("app.toml"), policy_toml("app", 1)).unwrap();
    let config = dir.path().join("service.toml");
    std::fs::write(
        &config,
        "data_dir = \"data\"\npolicies = [\"app.toml\"]\n[trust]\nroot = \"sim\"\n[listen]\nrest = \"127.0.0.1:0\"\ngrpc = \"127.0.0.1:0\"\n[log]\nformat = \"json\"\n",
    )
    .unwrap();
    let service = Process::start(&config);
    let rest = service.rest.clone();

    let http = reqwest::Client::new();
    let n: serde_json::Value = http
        .post(format!("http://{rest}/v1/nonce"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let nonce = n["nonce"].as_str().unwrap();
    let sim = phalanx_dcap_sim::SimTee::from_json(
        &std::fs::read_to_string(dir.path().join("data/sim/sim.json")).unwrap(),
    )
    .unwrap();
    let r = http
        .post(format!("http://{rest}/v1/attest"))
        .json(&serde_json::json!({
            "quote": b64(&quote_for(&sim, nonce, b"rt")), "runtime_data": b64(b"rt"),
            "nonce": nonce, "policy": "app",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r: serde_json::Value = r.json().await.unwrap();
    let jwks: serde_json::Value = http
        .get(format!("http://{rest}/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        check_token(r["token"].as_str().unwrap(), &jwks)["ear.status"],
        "affirming"
    );

    let (status, log) = service.stop("-TERM");
    assert!(status.success(), "{status:?}");
    assert!(log.contains("shutting down"), "{log}");
    // The admin secret never reaches the log.
    assert!(!log.contains(ADMIN));
}
