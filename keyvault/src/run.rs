//! The `keyvault` binary's work (the binary itself is a thin `main.rs`): load the config, resolve the attestation
//! service's JWKS (file, or URL with retries while the service starts, then refreshed
//! periodically and when a token names an unknown key), open the node and serve it.

use crate::app::{NodeApp, NodeConfig};
use crate::release::Jwks;
use anyhow::{Context, bail};
use std::path::Path;
use std::time::Duration;

/// A Phalanx gatekeeper node.
#[derive(Debug, clap::Parser)]
#[command(name = "keyvault", version)]
pub struct Cli {
    /// The node's TOML config. `{pod}` in it stands for `$POD_INDEX` (digits), so an
    /// enclave whose arguments are fixed in its manifest picks its own node's config
    /// among the measured ones.
    #[arg(long)]
    pub config: std::path::PathBuf,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The `keyvault` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Create the data directory, sealing key and identity key (if absent) and print
    /// `{"index", "identity_key"}` for the cluster CA to certify.
    Init,
    /// Serve the client and peer listeners until SIGTERM or Ctrl-C.
    Serve,
}

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
    let path = config_path(path, std::env::var("POD_INDEX").ok().as_deref())?;
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(NodeConfig::from_toml_with_env(&text, std::env::vars())?)
}

/// `path` with `{pod}` replaced by `pod` (which must be digits: it only picks among
/// files, never names another directory).
pub fn config_path(path: &Path, pod: Option<&str>) -> anyhow::Result<std::path::PathBuf> {
    let text = path.to_string_lossy();
    if !text.contains("{pod}") {
        return Ok(path.to_path_buf());
    }
    let pod = pod
        .filter(|p| !p.is_empty() && p.len() <= 4 && p.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| {
            anyhow::anyhow!("--config {text} needs POD_INDEX (digits) in the environment")
        })?;
    Ok(text.replace("{pod}", pod).into())
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
    let mut last = String::new();
    for attempt in 0..30 {
        match fetch_jwks(url).await {
            Ok(j) => return Ok(j),
            Err(e) => last = e.to_string(),
        }
        // Say what the node waits for (it listens only once it has the keys), at the
        // first failure and every ten seconds after.
        if attempt % 10 == 0 {
            tracing::warn!(%url, error = %last, "waiting for the attestation service's JWKS before serving (retrying for 30 s)");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    bail!("fetching the JWKS from {url}: {last}")
}

/// One fetch of the attestation service's JWKS (bounded in time and size).
async fn fetch_jwks(url: &str) -> anyhow::Result<Jwks> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let body = http
        .get(url)
        .send()
        .await?
        .error_for_status()?
        .bytes()
        .await?;
    if body.len() > 64 * 1024 {
        bail!("the JWKS at {url} is over 64 KiB");
    }
    Ok(Jwks::from_json(std::str::from_utf8(&body)?)?)
}

/// How often a gatekeeper refetches the attestation service's JWKS.
pub const JWKS_REFRESH: Duration = Duration::from_secs(600);
/// Least time between two refreshes prompted by tokens with an unknown key id.
pub const JWKS_MIN_INTERVAL: Duration = Duration::from_secs(30);

/// Keeps `node`'s JWKS current: every [`JWKS_REFRESH`], and soon after a token named a
/// key the JWKS lacks (the service rotated its key), at most every
/// [`JWKS_MIN_INTERVAL`]. A failed fetch keeps the keys held.
pub async fn refresh_jwks(node: std::sync::Arc<crate::node::Node>, url: String) {
    let mut last = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let due = last.elapsed() >= JWKS_REFRESH
            || (node.take_unknown_kid() && last.elapsed() >= JWKS_MIN_INTERVAL);
        if !due {
            continue;
        }
        last = tokio::time::Instant::now();
        match fetch_jwks(&url).await {
            Ok(j) => match node.set_jwks(j) {
                Ok(()) => tracing::info!(%url, "attestation service keys refreshed"),
                Err(e) => tracing::error!(error = %e, "installing the refreshed JWKS"),
            },
            Err(e) => {
                tracing::warn!(%url, error = %e, "JWKS refresh failed; keeping the keys held")
            }
        }
    }
}

/// `keyvault init`.
pub async fn init(path: &Path) -> anyhow::Result<()> {
    let config = load(path)?;
    let index = config.index;
    let app = NodeApp::open(config, Jwks::default())?;
    let account = chain::evm::identity_account(app.node.identity().signing_key())?;
    println!(
        "{}",
        serde_json::json!({
            "index": index,
            "identity_key": app.identity_hex(),
            "evm_account": account.signer.address().to_string(),
        })
    );
    Ok(())
}

/// Attests and registers the node on the registry `r`, makes its rounds follow it, and
/// keeps the registration from expiring (a renewal task, hourly: a no-op while the
/// registered evidence is younger than half the registry's limit).
async fn follow_registry(
    app: NodeApp,
    config: &NodeConfig,
    r: &crate::app::RegistryConfig,
) -> anyhow::Result<NodeApp> {
    use chain::registry_url::RegistryUrl;
    let evidence = if config.policy.dangerous_unattested_gatekeepers {
        crate::registry::Evidence::DangerousSkip
    } else {
        crate::registry::Evidence::Check(app.node.clone())
    };
    let app = match r.url.parse::<RegistryUrl>()? {
        RegistryUrl::Ledger { url } => follow_ledger(app, config, r, &url, evidence).await?,
        RegistryUrl::Evm { rpc, address } => {
            follow_evm(app, config, r, &rpc, address, evidence).await?
        }
    };
    tracing::info!(url = %chain::registry_url::redacted(&r.url), "following the registry: committee and master keys");
    Ok(app)
}

/// [`follow_registry`] on the embedded ledger at `url`, pinned to `r`'s genesis.
async fn follow_ledger(
    app: NodeApp,
    config: &NodeConfig,
    r: &crate::app::RegistryConfig,
    url: &str,
    evidence: crate::registry::Evidence,
) -> anyhow::Result<NodeApp> {
    anyhow::ensure!(
        r.evidence_roots.is_empty(),
        "registry.evidence_roots are for an EVM registry: the ledger's genesis names its roots"
    );
    let genesis = r
        .genesis()
        .context("registry.genesis: a ledger is pinned to its genesis hash (hex)")?;
    let genesis: [u8; 32] = hex::decode(genesis)?
        .try_into()
        .map_err(|_| anyhow::anyhow!("registry.genesis must be 32 bytes of hex"))?;
    let identity = app.node.identity().signing_key().clone();
    let hooks = crate::registry::RegistryHooks::new(url, genesis, identity, evidence)
        .with_checkpoint(
            &config.data_dir.join("registry-head"),
            !app.node.status()?.epochs.is_empty(),
        );
    let client = hooks.client().context("a ledger's hooks hold its client")?;
    app.attest_and_register(Some((client, app.node.identity().signing_key())))
        .await?;
    let app = app.with_hooks(std::sync::Arc::new(hooks));
    let registrar = app.registrar();
    let client = chain::grpc::LightClient::pinned(url, genesis);
    tokio::spawn(async move {
        let account = registrar.identity();
        renew(&registrar, &client, &account).await;
    });
    Ok(app)
}

/// [`follow_registry`] on the Solidity registry at `address` through the node at `rpc`,
/// from the node's derived account: registered with the endorsements of the set in
/// standing, or while approvals are open with governance's (the node writes its
/// registration for governance to check, and waits an hour).
async fn follow_evm(
    app: NodeApp,
    config: &NodeConfig,
    r: &crate::app::RegistryConfig,
    rpc: &str,
    address: [u8; 20],
    evidence: crate::registry::Evidence,
) -> anyhow::Result<NodeApp> {
    anyhow::ensure!(
        r.genesis().is_none(),
        "registry.genesis names a ledger's genesis: an EVM registry has none"
    );
    let identity = app.node.identity().signing_key().clone();
    let account = chain::evm::identity_account(&identity)?;
    tracing::info!(account = %account.signer.address(), "the node's Ethereum account (it pays for registrations, certificates and aborts)");
    let roots = r.roots()?;
    let approval = chain::evm::GovernanceApproval::new(
        roots.clone(),
        config.data_dir.join("registration.pending"),
        std::time::Duration::from_secs(3600),
    );
    let endorser = chain::evm::RemoteEndorser::new(Some(std::sync::Arc::new(approval)));
    let registry = chain::evm::EvmRegistry::at(rpc, address.into())?
        .with_endorser(std::sync::Arc::new(endorser));
    registry
        .wait_for_funds(
            account.signer.address(),
            std::time::Duration::from_secs(600),
        )
        .await?;
    app.attest_and_register(Some((&registry, &account))).await?;
    let hooks = crate::registry::RegistryHooks::evm(
        registry.clone(),
        account.clone(),
        identity,
        evidence,
        roots,
    );
    let app = app.with_hooks(std::sync::Arc::new(hooks));
    let registrar = app.registrar();
    tokio::spawn(async move { renew(&registrar, &registry, &account).await });
    Ok(app)
}

/// Renews the node's registration on `registry` as `account` before it expires (hourly
/// checks: a no-op while the registered evidence is younger than half its lifetime).
async fn renew<R: chain::registry::Registry>(
    registrar: &crate::app::Registrar,
    registry: &R,
    account: &R::Account,
) {
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
        if let Err(e) = registrar
            .attest_and_register(Some((registry, account)))
            .await
        {
            tracing::warn!(error = %e, "renewing the registration failed; retrying in an hour");
        }
    }
}

/// A node with no registry: refused in a real TEE (rounds would tolerate crashes only:
/// one participant that confirms to some members and aborts to others splits the
/// committee, review H2), loudly allowed on the simulated one.
async fn without_registry(app: NodeApp, config: &NodeConfig) -> anyhow::Result<NodeApp> {
    if config
        .tee
        .as_ref()
        .is_some_and(|t| t.backend != phalanx_tee::Backend::Sim)
    {
        anyhow::bail!(
            "a gatekeeper in a TEE needs [registry] (url, genesis): without it one participant can split a round's outcome"
        );
    }
    tracing::warn!(
        "NO REGISTRY: round outcomes are decided by the members alone (crash-tolerant only; one equivocating participant can split the committee), and no governance bounds thresholds or retirements; for development only"
    );
    app.attest_and_register::<chain::grpc::LightClient>(None)
        .await?;
    Ok(app)
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
    if let Some(admin) = &config.listen.admin {
        let listener = tokio::net::TcpListener::bind(admin)
            .await
            .with_context(|| format!("binding {admin}"))?;
        tracing::info!(admin = %listener.local_addr()?, "admin service on its own port");
        app = app.with_admin_listener(listener);
    }
    let app = match &config.registry {
        Some(r) => follow_registry(app, &config, r).await?,
        None => without_registry(app, &config).await?,
    };
    tracing::info!(
        index = config.index,
        client = %client.local_addr()?,
        peer = %peer.local_addr()?,
        identity = %app.identity_hex(),
        "gatekeeper serving"
    );
    let refresher = config
        .attestation
        .jwks_url
        .clone()
        .map(|url| tokio::spawn(refresh_jwks(app.node.clone(), url)));
    app.serve(
        client,
        peer,
        phalanx_types::unix_now,
        phalanx_types::shutdown::signal(),
    )
    .await?;
    if let Some(r) = refresher {
        r.abort();
    }
    tracing::info!("gatekeeper stopped");
    Ok(())
}

/// Runs a parsed `keyvault` command line to its exit code (the `keyvault` binary and
/// `phalanx gatekeeper` both call this).
pub fn main(cli: Cli) -> std::process::ExitCode {
    init_tracing();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("keyvault: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Init => init(&cli.config).await,
            Command::Serve => serve(&cli.config).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("keyvault: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// `{pod}` picks a node's config by `$POD_INDEX`, digits only.
    #[test]
    fn the_config_path_takes_the_pod_index() {
        let p = Path::new("/etc/phalanx/gatekeeper/gatekeeper-{pod}.toml");
        assert_eq!(
            config_path(p, Some("3")).unwrap(),
            Path::new("/etc/phalanx/gatekeeper/gatekeeper-3.toml")
        );
        for bad in [None, Some(""), Some("../x"), Some("1/2"), Some("12345")] {
            assert!(config_path(p, bad).is_err(), "{bad:?}");
        }
        let plain = Path::new("gatekeeper.toml");
        assert_eq!(config_path(plain, None).unwrap(), plain);
    }
}
