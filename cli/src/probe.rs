//! `phalanx probe`: health checks for containers and service managers, which have no
//! curl or grpcurl in a minimal image. Each probe asks the service's real interface
//! (the attestation service's `/readyz`, pRuntime's `/healthz`, a gatekeeper's `Status`
//! RPC, the ledger's genesis block) within a timeout; exit 0 healthy, 1 not, the reason
//! on stderr.

use std::process::ExitCode;
use std::time::Duration;

/// What to probe.
#[derive(Debug, clap::Subcommand)]
pub enum Probe {
    /// An HTTP endpoint answers 2xx (e.g. `http://attestation:8080/readyz`); its body
    /// goes to stdout (a health check ignores it; a script can keep it, e.g. the JWKS).
    Http {
        /// The URL.
        url: String,
    },
    /// A gatekeeper answers `Status` on its client listener.
    Gatekeeper {
        /// Its client URL.
        url: String,
    },
    /// A ledger node serves its genesis block.
    Ledger {
        /// Its gRPC URL.
        url: String,
    },
}

async fn check(p: &Probe) -> anyhow::Result<()> {
    match p {
        Probe::Http { url } => {
            let r = reqwest::get(url).await?;
            anyhow::ensure!(r.status().is_success(), "{url}: {}", r.status());
            print!("{}", r.text().await?);
        }
        Probe::Gatekeeper { url } => {
            keyvault::admin::node_status(url).await?;
        }
        Probe::Ledger { url } => {
            chain::grpc::LightClient::new(url).raw_block(0).await?;
        }
    }
    Ok(())
}

/// Runs `probe`, giving up after `timeout`.
pub async fn run(probe: &Probe, timeout: Duration) -> ExitCode {
    match tokio::time::timeout(timeout, check(probe)).await {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprintln!("unhealthy: {e:#}");
            ExitCode::FAILURE
        }
        Err(_) => {
            eprintln!("unhealthy: no answer within {timeout:?}");
            ExitCode::FAILURE
        }
    }
}
