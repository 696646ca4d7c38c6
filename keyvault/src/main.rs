//! `keyvault`: one gatekeeper node. Thin: the node is `keyvault::app`.
//!
//! ```text
//! keyvault --config node.toml init    # create the store and identity; print the identity key
//! keyvault --config node.toml serve   # serve until SIGTERM or Ctrl-C
//! ```

use clap::Parser;
use keyvault::run::{Cli, Command};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    keyvault::run::init_tracing();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("keyvault: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Init => keyvault::run::init(&cli.config).await,
            Command::Serve => keyvault::run::serve(&cli.config).await,
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
