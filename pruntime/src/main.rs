//! `pruntime`: the worker binary, a thin shell over [`pruntime::cmd`].

use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    version,
    about = "pRuntime: the Phalanx worker that runs confidential contracts"
)]
struct Cli {
    #[command(flatten)]
    args: pruntime::cmd::Args,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    pruntime::cmd::run(Cli::parse().args).await
}
