//! `keyvault`: one gatekeeper node. Thin: the node is `keyvault::app`, the command line
//! `keyvault::run` (also run by `phalanx gatekeeper`).
//!
//! ```text
//! keyvault --config node.toml init    # create the store and identity; print the identity key
//! keyvault --config node.toml serve   # serve until SIGTERM or Ctrl-C
//! ```

use clap::Parser as _;

fn main() -> std::process::ExitCode {
    keyvault::run::main(keyvault::run::Cli::parse())
}
