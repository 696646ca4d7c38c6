//! `attestation-service`: flags, then [`attestation_service::cli::run`]. The work is in
//! the library ([`attestation_service::app`]).

use clap::Parser as _;

fn main() -> anyhow::Result<()> {
    attestation_service::cli::run(attestation_service::cli::Cli::parse())
}
