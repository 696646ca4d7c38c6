//! The `attestation-service` binary's command line and what it runs (the binary itself
//! is a thin `main.rs`; `phalanx attestation-service` runs the same); here so that
//! deployment files' command lines are checked by the same parser (`deploy/` tests).

use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// Phalanx attestation service: DCAP quote verification, policy, signed results.
#[derive(Debug, Parser)]
#[command(version)]
pub struct Cli {
    /// Configuration file (TOML); without it, the embedded defaults. Environment
    /// variables `PHALANX_AS__<section>__<field>` override it.
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve REST and gRPC until SIGTERM or Ctrl-C.
    Serve,
    /// Collateral cache administration (works on the data directory; stop the service first).
    #[command(subcommand)]
    Collateral(CollateralCommand),
}

/// `collateral …`.
#[derive(Debug, Subcommand)]
pub enum CollateralCommand {
    /// Verify a collateral bundle (JSON bundle format) and store it in the cache.
    Import {
        /// The bundle.
        file: PathBuf,
    },
    /// Print the cached collateral and its freshness.
    Status,
}

/// Runs a parsed command line: loads the config, sets up logging, opens the service and
/// serves (or administers the collateral cache).
pub fn run(cli: Cli) -> anyhow::Result<()> {
    use crate::app::App;
    use crate::config::Config;
    let config = Config::load(cli.config.as_deref())?;
    init_logging(&config);
    let app = App::open(config, crate::rest::system_now)?;
    match cli.command {
        Command::Serve => serve(app),
        Command::Collateral(CollateralCommand::Import { file }) => {
            let bytes = std::fs::read(&file)?;
            let c = crate::Collateral::from_bundle_json(&bytes)?;
            let entry = app
                .service
                .import_collateral(&c)
                .map_err(anyhow::Error::msg)?;
            println!("{}", serde_json::to_string_pretty(&entry)?);
            Ok(())
        }
        Command::Collateral(CollateralCommand::Status) => {
            let status = app
                .service
                .collateral_status()
                .map_err(anyhow::Error::msg)?;
            println!("{}", serde_json::to_string_pretty(&status)?);
            Ok(())
        }
    }
}

fn serve(app: crate::app::App) -> anyhow::Result<()> {
    tokio::runtime::Runtime::new()?.block_on(async move {
        let rest = tokio::net::TcpListener::bind(&app.config.listen.rest).await?;
        let grpc = tokio::net::TcpListener::bind(&app.config.listen.grpc).await?;
        tracing::info!(rest = %rest.local_addr()?, grpc = %grpc.local_addr()?, "listening");
        if let Some(p) = &app.admin_token_file {
            tracing::info!(file = %p.display(), "admin secret");
        }
        app.serve(rest, grpc, phalanx_types::shutdown::signal())
            .await?;
        Ok(())
    })
}

fn init_logging(config: &crate::config::Config) {
    use crate::config::LogFormat;
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log.filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour only on a terminal: files, pipes and journald get plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    // `try_init`: a process that already logs (e.g. `phalanx`) keeps its subscriber.
    let _ = match config.log.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
