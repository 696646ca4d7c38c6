//! The worker's command line, shared by the `pruntime` binary and `phalanx pruntime`:
//! boot (attest, register, fetch the served contracts' keys), follow the registry and
//! answer queries over HTTP until Ctrl-C or SIGTERM, then seal checkpoints.

use crate::worker::{Worker, WorkerConfig};
use anyhow::Context as _;
use std::path::PathBuf;

/// Which TEE backend.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Backend {
    /// Simulated SGX (quotes from a simulated Intel PKI): development only.
    Sim,
    /// Intel TDX through Linux configfs-tsm.
    Tdx,
    /// Intel SGX under Gramine (`/dev/attestation`).
    SgxGramine,
}

/// The `pruntime` binary's command line.
#[derive(Debug, clap::Parser)]
#[command(
    name = "pruntime",
    version,
    about = "pRuntime: the Phalanx worker that runs confidential contracts"
)]
pub struct Cli {
    /// The worker's arguments.
    #[command(flatten)]
    pub args: Args,
}

/// The worker's arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Sealed identity and checkpoints.
    #[arg(long)]
    pub data_dir: PathBuf,
    /// The attestation service's REST URL.
    #[arg(long)]
    pub attestation_url: String,
    /// The attestation policy to be appraised under.
    #[arg(long, default_value = "default")]
    pub policy: String,
    /// The registry node's gRPC URL.
    #[arg(long)]
    pub registry_url: String,
    /// The registry's genesis block hash (hex): the only chain accepted.
    #[arg(long)]
    pub genesis: String,
    /// A contract to serve (hex id); repeat for more.
    #[arg(long = "contract")]
    pub contracts: Vec<String>,
    /// Where to answer queries.
    #[arg(long, default_value = "127.0.0.1:7300")]
    pub listen: String,
    /// The TEE backend (the environment's `PHALANX_PRUNTIME_TEE`, which the container
    /// image's build argument sets, when the flag is absent).
    #[arg(long, value_enum, default_value = "sim", env = "PHALANX_PRUNTIME_TEE")]
    pub tee: Backend,
    /// The root of the TEE's interface (configfs-tsm's report dir, Gramine's
    /// /dev/attestation); the real path by default.
    #[arg(long)]
    pub tee_root: Option<PathBuf>,
    /// sim: the simulated PKI (`sim.json` of the attestation service's sim dir).
    #[arg(long)]
    pub sim_pki: Option<PathBuf>,
    /// sim: MRENCLAVE (hex); by default the SHA-256 of this binary.
    #[arg(long)]
    pub mr_enclave: Option<String>,
    /// A trust root the gatekeepers' evidence may chain to (`intel`, or `sim` for
    /// development); repeat for more.
    #[arg(long = "gatekeeper-trust-root", default_value = "intel")]
    pub gatekeeper_trust_roots: Vec<String>,
    /// Ask gatekeepers for keys without checking that they run in a TEE: dangerous,
    /// refused outside the simulated TEE.
    #[arg(long)]
    pub dangerous_unattested_gatekeepers: bool,
    /// Print the MRCONFIGID a TD must be launched with to run this configuration (its
    /// trust digest, `WorkerConfig::trust_digest`) as JSON, and exit.
    #[arg(long)]
    pub print_config_id: bool,
}

fn hex32(s: &str, what: &str) -> anyhow::Result<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s.trim_start_matches("0x"), &mut out)
        .with_context(|| format!("{what} must be 64 hex characters"))?;
    Ok(out)
}

/// The configuration the arguments give (nothing opened yet).
fn config(args: &Args) -> anyhow::Result<WorkerConfig> {
    let mut config = WorkerConfig::new(
        args.data_dir.clone(),
        args.attestation_url.clone(),
        args.registry_url.clone(),
        hex32(&args.genesis, "--genesis")?,
    );
    config.attestation_policy = args.policy.clone();
    config.gatekeeper_trust_roots = args.gatekeeper_trust_roots.clone();
    config.dangerous_unattested_gatekeepers = args.dangerous_unattested_gatekeepers;
    // A development run that accepts the simulated root also verifies its own quotes to
    // it (the simulated PKI's root, from --sim-pki). Both are host arguments, so on real
    // hardware this would let the host choose the root its MRCONFIGID check trusts: a
    // release build (what a TD measures) never widens Intel's root except on the
    // simulated backend; debug builds (tests with a faked TDX kernel) may, loudly.
    let dev_build = cfg!(debug_assertions);
    if args.gatekeeper_trust_roots.iter().any(|r| r == "sim")
        && let Some(path) = &args.sim_pki
        && (dev_build || matches!(args.tee, Backend::Sim))
    {
        if !matches!(args.tee, Backend::Sim) {
            tracing::warn!(
                "DEBUG BUILD: this TD verifies its own quotes to the simulated root given by --sim-pki; a release build trusts Intel's root only"
            );
        }
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("--sim-pki {}", path.display()))?;
        let sim = phalanx_dcap_sim::SimTee::from_json(&text)?;
        let mut roots = phalanx_dcap::pki::split_chain(sim.root_pem().as_bytes(), "sim root")?;
        roots.push(phalanx_dcap::pki::INTEL_SGX_ROOT_CA_DER.to_vec());
        let refs: Vec<&[u8]> = roots.iter().map(Vec::as_slice).collect();
        config.quote_anchors = phalanx_dcap::TrustAnchors::from_der_certs(&refs)?;
    }
    config.contracts = args
        .contracts
        .iter()
        .map(|c| hex32(c, "--contract"))
        .collect::<anyhow::Result<_>>()?;
    Ok(config)
}

/// Runs the worker until Ctrl-C or SIGTERM.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let config = config(&args)?;
    if args.print_config_id {
        println!(
            "{}",
            serde_json::json!({
                "mr_config_id": hex::encode(config.mr_config_id()),
                "trust_digest": hex::encode(config.trust_digest()),
            })
        );
        return Ok(());
    }
    let settings = crate::tee::Settings {
        backend: match args.tee {
            Backend::Sim => crate::tee::Backend::Sim,
            Backend::Tdx => crate::tee::Backend::Tdx,
            Backend::SgxGramine => crate::tee::Backend::SgxGramine,
        },
        root: args.tee_root.clone(),
        sim_pki: args.sim_pki.clone(),
        mr_enclave: args.mr_enclave.clone(),
    };
    let tee = settings.open(&args.data_dir.join("sim-sealing.key"))?;
    let worker = Worker::boot(config, tee).await?;
    let listener = tokio::net::TcpListener::bind(&args.listen).await?;
    tracing::info!(listen = %listener.local_addr()?, identity = %hex::encode(worker.identity_key()), "serving queries");
    let (stop, _) = tokio::sync::broadcast::channel::<()>(1);
    let mut rx = stop.subscribe();
    let server = tokio::spawn(crate::server::serve(listener, worker.clone(), async move {
        let _ = rx.recv().await;
    }));
    let mut rx = stop.subscribe();
    let follow = tokio::spawn(worker.run(async move {
        let _ = rx.recv().await;
    }));
    phalanx_types::shutdown::signal().await;
    let _ = stop.send(());
    follow.await?;
    server.await??;
    Ok(())
}
