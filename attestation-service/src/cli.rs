//! The `attestation-service` binary's command line (the binary itself is a thin
//! `main.rs`); here so that deployment files' command lines are checked by the same
//! parser (`deploy/` tests).

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
