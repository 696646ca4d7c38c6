//! The `keyvault` node binary's work: load the config, resolve the attestation
//! service's JWKS (file, or URL with retries while the service starts), open the node
//! and serve it.

use anyhow::{Context, bail};
use keyvault::app::{NodeApp, NodeConfig};
use keyvault::release::Jwks;
use std::path::Path;
use std::time::Duration;

/// Logs to stderr, filtered by `RUST_LOG` (default `info`).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

fn load(path: &Path) -> anyhow::Result<NodeConfig> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(NodeConfig::from_toml(&text)?)
}

/// Fetches or reads the JWKS the config names.
pub async fn jwks(config: &NodeConfig) -> anyhow::Result<Jwks> {
    if let Some(file) = &config.attestation.jwks_file {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        return Ok(Jwks::from_json(&text)?);
    }
    let Some(url) = &config.attestation.jwks_url else {
        bail!("no JWKS source configured");
    };
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let mut last = String::new();
    for _ in 0..30 {
        match http
            .get(url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
        {
            Ok(r) => return Ok(Jwks::from_json(&r.text().await?)?),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    bail!("fetching the JWKS from {url}: {last}")
}

/// `keyvault init`.
pub async fn init(path: &Path) -> anyhow::Result<()> {
    let config = load(path)?;
    let index = config.index;
    let app = NodeApp::open(config, Jwks::default())?;
    println!(
        "{}",
        serde_json::json!({"index": index, "identity_key": app.identity_hex()})
    );
    Ok(())
}

/// `keyvault serve`.
pub async fn serve(path: &Path) -> anyhow::Result<()> {
    let config = load(path)?;
    let jwks = jwks(&config).await?;
    let client = tokio::net::TcpListener::bind(&config.listen.client)
        .await
        .with_context(|| format!("binding {}", config.listen.client))?;
    let peer = tokio::net::TcpListener::bind(&config.listen.peer)
        .await
        .with_context(|| format!("binding {}", config.listen.peer))?;
    let mut app = NodeApp::open(config.clone(), jwks)?;
    if let Some(r) = &config.registry {
        let genesis: [u8; 32] = hex::decode(&r.genesis)?
            .try_into()
            .map_err(|_| anyhow::anyhow!("registry.genesis must be 32 bytes of hex"))?;
        let hooks = crate::registry::RegistryHooks::new(
            &r.url,
            genesis,
            app.node.identity().signing_key().clone(),
        )
        .with_checkpoint(&config.data_dir.join("registry-head"));
        app = app.with_hooks(std::sync::Arc::new(hooks));
        tracing::info!(url = %r.url, "following the registry: committee and master keys");
    }
    tracing::info!(
        index = config.index,
        client = %client.local_addr()?,
        peer = %peer.local_addr()?,
        identity = %app.identity_hex(),
        "gatekeeper serving"
    );
    app.serve(
        client,
        peer,
        attestation_service::rest::system_now,
        shutdown(),
    )
    .await?;
    tracing::info!("gatekeeper stopped");
    Ok(())
}

async fn shutdown() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
