//! `keyvault`: one gatekeeper node. Thin: the node is `keyvault::app`.
//!
//! ```text
//! keyvault --config node.toml init    # create the store and identity; print the identity key
//! keyvault --config node.toml serve   # serve until SIGTERM or Ctrl-C
//! ```

use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;

/// A Phalanx gatekeeper node.
#[derive(Debug, Parser)]
#[command(name = "keyvault", version)]
struct Cli {
    /// The node's TOML config.
    #[arg(long)]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Create the data directory, sealing key and identity key (if absent) and print
    /// `{"index", "identity_key"}` for the cluster CA to certify.
    Init,
    /// Serve the client and peer listeners until SIGTERM or Ctrl-C.
    Serve,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    phalanx_cli::node::init_tracing();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("keyvault: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Init => phalanx_cli::node::init(&cli.config).await,
            Command::Serve => phalanx_cli::node::serve(&cli.config).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("keyvault: {e:#}");
            ExitCode::FAILURE
        }
    }
}
