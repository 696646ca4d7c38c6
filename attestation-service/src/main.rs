//! `attestation-service`: flags, config, logging, serve. The work is in the library
//! ([`attestation_service::app`]).

use attestation_service::app::App;
use attestation_service::cli::{Cli, CollateralCommand, Command};
use attestation_service::config::{Config, LogFormat};
use attestation_service::rest::system_now;
use clap::Parser;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = Config::load(cli.config.as_deref())?;
    init_logging(&config);
    let app = App::open(config, system_now)?;
    match cli.command {
        Command::Serve => serve(app),
        Command::Collateral(CollateralCommand::Import { file }) => {
            let bytes = std::fs::read(&file)?;
            let c = attestation_service::Collateral::from_bundle_json(&bytes)?;
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

fn serve(app: App) -> anyhow::Result<()> {
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

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log.filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour only on a terminal: files, pipes and journald get plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match config.log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}
