//! `phalanx`: the command line over the Phalanx libraries. Parsing only; the work is
//! in [`phalanx_cli`].

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = phalanx_cli::Cli::parse();
    match phalanx_cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("phalanx: {}", phalanx_cli::causes(&e));
            ExitCode::from(phalanx_cli::EXIT_USAGE)
        }
    }
}
