//! `attestation-service`: serves quote verification over gRPC. Flags, trust anchors,
//! serve; the work is in the library.

use attestation_service::{TrustAnchors, Verifier, grpc};
use std::sync::Arc;

const USAGE: &str = "usage: attestation-service [--listen ADDR] [--trust-root PEM]
  --listen ADDR      address to serve gRPC on (default 127.0.0.1:50051)
  --trust-root PEM   trust this root instead of Intel's SGX Root CA (e.g. a simulated one)";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut listen = "127.0.0.1:50051".to_owned();
    let mut trust_root = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => listen = args.next().ok_or_else(|| anyhow::anyhow!(USAGE))?,
            "--trust-root" => trust_root = Some(args.next().ok_or_else(|| anyhow::anyhow!(USAGE))?),
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
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    eprintln!(
        "attestation-service: serving gRPC on {}",
        listener.local_addr()?
    );
    let shutdown = async {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { if let Some(t) = term.as_mut() { t.recv().await; } else { std::future::pending::<()>().await } } => {}
        }
        eprintln!("attestation-service: shutting down");
    };
    grpc::serve(listener, Arc::new(Verifier::new(anchors)), shutdown).await?;
    Ok(())
}
