//! `pruntime`: the worker binary, a thin shell over [`pruntime::cmd`].

use clap::Parser as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    pruntime::cmd::run(pruntime::cmd::Cli::parse().args).await
}
