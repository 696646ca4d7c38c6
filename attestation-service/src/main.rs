//! `attestation-service`: serves quote verification over gRPC and the nonce → attest →
//! token flow over REST. Flags, keys, policies, serve; the work is in the library.

use attestation_service::nonce::{NonceKey, ReplayGuard};
use attestation_service::policy::Policy;
use attestation_service::rest::{AppState, router, system_now};
use attestation_service::token::{Signer, generate_key};
use attestation_service::{TrustAnchors, Verifier, grpc};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

const USAGE: &str = "usage: attestation-service [--listen ADDR] [--rest ADDR] [--trust-root PEM] [--policy FILE.toml]...
  --listen ADDR      gRPC address (default 127.0.0.1:50051)
  --rest ADDR        REST address (default 127.0.0.1:8080)
  --trust-root PEM   trust this root instead of Intel's SGX Root CA (e.g. a simulated one)
  --policy FILE      a policy (TOML); may be repeated";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (mut grpc_addr, mut rest_addr) =
        ("127.0.0.1:50051".to_owned(), "127.0.0.1:8080".to_owned());
    let (mut trust_root, mut policies) = (None, HashMap::new());
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| anyhow::anyhow!(USAGE));
        match arg.as_str() {
            "--listen" => grpc_addr = value()?,
            "--rest" => rest_addr = value()?,
            "--trust-root" => trust_root = Some(value()?),
            "--policy" => {
                let p = Policy::from_toml(&std::fs::read_to_string(value()?)?)
                    .map_err(anyhow::Error::msg)?;
                policies.insert(p.id.clone(), p);
            }
            _ => anyhow::bail!("{USAGE}"),
        }
    }
    let anchors = match &trust_root {
        Some(path) => {
            eprintln!(
                "attestation-service: WARNING: trusting {path} instead of Intel's SGX Root CA"
            );
            TrustAnchors::from_pem(&std::fs::read(path)?)?
        }
        None => TrustAnchors::intel(),
    };
    let verifier = Arc::new(Verifier::new(anchors));
    let mut nonce_secret = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut nonce_secret)
        .map_err(|_| anyhow::anyhow!("no randomness"))?;
    // Keys live for this process: tokens outlive a restart only in the relying parties'
    // caches of the JWKS (persisted, rotatable keys come with the service config).
    let state = AppState {
        verifier: verifier.clone(),
        policies: Arc::new(policies),
        signer: Arc::new(Signer::new(&generate_key()?)?),
        nonce_key: Arc::new(NonceKey::new(&nonce_secret)),
        replay: Arc::new(Mutex::new(ReplayGuard::new(100_000))),
        issuer: format!("http://{rest_addr}"),
        nonce_ttl: 300,
        token_ttl: 3600,
        now: system_now,
    };
    let grpc_listener = tokio::net::TcpListener::bind(&grpc_addr).await?;
    let rest_listener = tokio::net::TcpListener::bind(&rest_addr).await?;
    eprintln!(
        "attestation-service: gRPC on {}, REST on {}",
        grpc_listener.local_addr()?,
        rest_listener.local_addr()?
    );
    let (stop, _) = tokio::sync::broadcast::channel::<()>(1);
    let (mut g, mut r) = (stop.subscribe(), stop.subscribe());
    let grpc = grpc::serve(grpc_listener, verifier, async move {
        let _ = g.recv().await;
    });
    let rest = axum::serve(rest_listener, router(state)).with_graceful_shutdown(async move {
        let _ = r.recv().await;
    });
    let signals = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! { _ = tokio::signal::ctrl_c() => {}, _ = term.recv() => {} }
        eprintln!("attestation-service: shutting down");
        let _ = stop.send(());
        anyhow::Ok(())
    };
    let (a, b, c) = tokio::join!(grpc, rest, signals);
    a?;
    b?;
    c
}
