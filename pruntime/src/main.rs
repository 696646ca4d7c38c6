//! `pruntime`: the worker binary, a thin shell over [`pruntime::cmd`].

use clap::Parser as _;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    // Logs on stderr (stdout stays for what a command prints), coloured only on a
    // terminal: a log redirected to a file carries no escape codes.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match pruntime::cmd::run(pruntime::cmd::Cli::parse().args).await {
        Ok(()) => ExitCode::SUCCESS,
        // The cause chain once, on one line: no backtrace (even with RUST_BACKTRACE set),
        // as `phalanx` and `keyvault` print theirs.
        Err(e) => {
            eprintln!("pruntime: {}", phalanx_types::causes(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}
