//! The worker's command line, shared by the `pruntime` binary and `phalanx pruntime`:
//! boot (attest, register, fetch the served contracts' keys), follow the registry and
//! answer queries over HTTP until Ctrl-C or SIGTERM, then seal checkpoints.

use crate::worker::{Worker, WorkerConfig};
use anyhow::Context as _;
use std::path::PathBuf;

/// The backend without `--tee`: the simulated one only where it is built in.
const DEFAULT_TEE: &str = if cfg!(feature = "sim") { "sim" } else { "tdx" };

/// Which TEE backend.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Backend {
    /// Simulated SGX (quotes from a simulated Intel PKI): development only, and absent
    /// from production builds (built without the `sim` feature), which say so.
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
    /// The registry: the ledger node's gRPC URL (`http://…`), or a Solidity registry
    /// (`evm+http://NODE:8545#0xADDRESS`, with `--evm-chain-id` and `--confirmations`).
    #[arg(long)]
    pub registry_url: String,
    /// The ledger's genesis block hash (hex): the only chain accepted (from the
    /// initdata document with `--initdata`).
    #[arg(long, required_unless_present_any = ["initdata", "evm_chain_id"])]
    pub genesis: Option<String>,
    /// A Solidity registry: its chain's id, pinned with the URL's address (the registry
    /// id every quote of this worker names).
    #[arg(long)]
    pub evm_chain_id: Option<u64>,
    /// A Solidity registry: blocks a command's block must be below the node's newest
    /// before it runs; choose it from the chain's finality.
    #[arg(long)]
    pub confirmations: Option<u64>,
    /// A Confidential Containers initdata document (TOML) whose digest the TD was
    /// launched with as MRCONFIGID: the worker's trust configuration (genesis, policy,
    /// gatekeeper roots) comes from its entry `phalanx.toml` (`pruntime::initdata`).
    /// Flags given as well must agree with it.
    #[arg(long)]
    pub initdata: Option<PathBuf>,
    /// A contract to serve (hex id); repeat for more.
    #[arg(long = "contract")]
    pub contracts: Vec<String>,
    /// The URL users reach this worker at (`http://host:7400`): announced on the
    /// registry for each contract served, so `phalanx contract` finds the worker
    /// without `--worker`. Only where to knock: users seal to the keys the registry
    /// lists for this worker.
    #[arg(long)]
    pub public_url: Option<String>,
    /// Where to fetch a contract's committed checkpoint when the registry holds a state
    /// commitment newer than the local checkpoint (a new worker, or one behind a
    /// retired epoch): a peer worker's URL (`http://host:7400`) or a file or directory;
    /// repeat for more, tried in order. Untrusted: only the committed checkpoint is taken.
    #[arg(long = "checkpoint-from")]
    pub checkpoint_sources: Vec<String>,
    /// Seal a checkpoint every this many commands.
    #[arg(long, default_value_t = 64)]
    pub checkpoint_every: u64,
    /// Least seconds between two of this worker's state commitments to the registry
    /// for one contract (each is a transaction).
    #[arg(long, default_value_t = 60)]
    pub commit_every_secs: u64,
    /// Where to answer queries (7400, as in the deploy files; 7300 is the ledger's).
    #[arg(long, default_value = "127.0.0.1:7400")]
    pub listen: String,
    /// The TEE backend (the environment's `PHALANX_PRUNTIME_TEE`, which the container
    /// image's build argument sets, when the flag is absent).
    /// Without one: `sim` in a build with the simulated TEE (the devnet's), `tdx` in a
    /// production build.
    #[arg(long, value_enum, default_value = DEFAULT_TEE, env = "PHALANX_PRUNTIME_TEE")]
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
    /// An attestation policy the gatekeepers' own tokens may have been appraised under
    /// (the one that pins the gatekeepers' enclave); repeat for more.
    #[arg(long = "gatekeeper-policy", default_value = "gatekeeper")]
    pub gatekeeper_policies: Vec<String>,
    /// Ask gatekeepers for keys without checking that they run in a TEE: dangerous,
    /// refused outside the simulated TEE.
    #[arg(long)]
    pub dangerous_unattested_gatekeepers: bool,
    /// Print the MRCONFIGID a TD must be launched with to run this configuration (its
    /// trust digest, `WorkerConfig::trust_digest`) as JSON, and exit.
    #[arg(long)]
    pub print_config_id: bool,
    /// On a Solidity registry: print the worker's Ethereum account (derived from its
    /// sealed identity, created if absent) as JSON, to fund before it starts, and exit.
    #[arg(long)]
    pub print_account: bool,
}

fn hex32(s: &str, what: &str) -> anyhow::Result<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s.trim_start_matches("0x"), &mut out)
        .with_context(|| format!("{what} must be 64 hex characters"))?;
    Ok(out)
}

/// What a worker's trust rests on: from the flags, or from an initdata document.
struct Trust {
    genesis: [u8; 32],
    /// A Solidity registry's confirmation depth.
    confirmations: Option<u64>,
    policy: String,
    roots: Vec<String>,
    gatekeeper_policies: Vec<String>,
    initdata_config_id: Option<[u8; 48]>,
}

/// The trust configuration: the flags, or the initdata document (flags given as well
/// must agree with it: a host cannot pass one configuration and bind another).
fn trust(args: &Args) -> anyhow::Result<Trust> {
    let flags_genesis = args
        .genesis
        .as_deref()
        .map(|g| hex32(g, "--genesis"))
        .transpose()?;
    if let Some(path) = &args.initdata {
        return trust_initdata(args, path, flags_genesis);
    }
    let from_flags = |genesis, confirmations| Trust {
        genesis,
        confirmations,
        policy: args.policy.clone(),
        roots: args.gatekeeper_trust_roots.clone(),
        gatekeeper_policies: args.gatekeeper_policies.clone(),
        initdata_config_id: None,
    };
    match args.registry_url.parse()? {
        chain::registry_url::RegistryUrl::Evm { address, .. } => {
            anyhow::ensure!(
                flags_genesis.is_none(),
                "a Solidity registry is pinned with --evm-chain-id (--genesis names a ledger's)"
            );
            let chain_id = args
                .evm_chain_id
                .context("a Solidity registry needs --evm-chain-id")?;
            anyhow::ensure!(
                args.confirmations.is_some(),
                "a Solidity registry needs --confirmations (from the chain's finality)"
            );
            let pin = chain::evm_proof::registry_id(chain_id, &address);
            Ok(from_flags(pin, args.confirmations))
        }
        chain::registry_url::RegistryUrl::Ledger { .. } => {
            anyhow::ensure!(
                args.evm_chain_id.is_none() && args.confirmations.is_none(),
                "--evm-chain-id and --confirmations are for a Solidity registry (evm+http://…#0xADDRESS)"
            );
            let genesis = flags_genesis.context("--genesis is required without --initdata")?;
            Ok(from_flags(genesis, None))
        }
    }
}

/// The trust configuration of the initdata document at `path`, which every trust flag
/// given as well (and the registry URL's address) must agree with.
fn trust_initdata(
    args: &Args,
    path: &std::path::Path,
    flags_genesis: Option<[u8; 32]>,
) -> anyhow::Result<Trust> {
    let mut doc = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(
            std::fs::File::open(path).with_context(|| format!("--initdata {}", path.display()))?,
            crate::initdata::MAX_INITDATA as u64 + 1,
        ),
        &mut doc,
    )
    .with_context(|| format!("--initdata {}", path.display()))?;
    let i = crate::initdata::InitData::parse(&doc)?;
    let evm_address = match args.registry_url.parse()? {
        chain::registry_url::RegistryUrl::Evm { address, .. } => Some(address),
        chain::registry_url::RegistryUrl::Ledger { .. } => None,
    };
    let evm = |f: fn(&crate::initdata::EvmPin) -> u64| i.evm.as_ref().map(f);
    let disagreeing = [
        ("--registry-url", evm_address != i.evm.map(|e| e.address)),
        (
            "--evm-chain-id",
            args.evm_chain_id
                .is_some_and(|c| Some(c) != evm(|e| e.chain_id)),
        ),
        (
            "--confirmations",
            args.confirmations
                .is_some_and(|d| Some(d) != evm(|e| e.confirmations)),
        ),
        ("--genesis", flags_genesis.is_some_and(|g| g != i.genesis)),
        (
            "--policy",
            args.policy != "default" && args.policy != i.policy,
        ),
        (
            "--gatekeeper-trust-root",
            args.gatekeeper_trust_roots != ["intel"]
                && args.gatekeeper_trust_roots != i.gatekeeper_trust_roots,
        ),
        (
            "--gatekeeper-policy",
            args.gatekeeper_policies != ["gatekeeper"]
                && args.gatekeeper_policies != i.gatekeeper_policies,
        ),
    ];
    if let Some((flag, _)) = disagreeing.iter().find(|(_, d)| *d) {
        anyhow::bail!("{flag} disagrees with the initdata document");
    }
    anyhow::ensure!(
        !args.dangerous_unattested_gatekeepers,
        "--dangerous-unattested-gatekeepers with --initdata: a measured configuration has no dangerous options"
    );
    Ok(Trust {
        genesis: i.genesis,
        confirmations: i.evm.map(|e| e.confirmations),
        policy: i.policy,
        roots: i.gatekeeper_trust_roots,
        gatekeeper_policies: i.gatekeeper_policies,
        initdata_config_id: Some(i.mr_config_id),
    })
}

/// A development run that accepts the simulated root also verifies its own quotes to it
/// (the simulated PKI's root, from --sim-pki). Both are host arguments, so on real
/// hardware this would let the host choose the root its MRCONFIGID check trusts: a
/// release build (what a TD measures) never widens Intel's root except on the simulated
/// backend; debug builds (tests with a faked TDX kernel) may, loudly.
#[cfg(feature = "sim")]
fn sim_anchors(args: &Args, config: &mut WorkerConfig) -> anyhow::Result<()> {
    let dev_build = cfg!(debug_assertions);
    let Some(path) = &args.sim_pki else {
        return Ok(());
    };
    if !(dev_build || matches!(args.tee, Backend::Sim)) {
        return Ok(());
    }
    if !matches!(args.tee, Backend::Sim) {
        tracing::warn!(
            "DEBUG BUILD: this TD verifies its own quotes to the simulated root given by --sim-pki; a release build trusts Intel's root only"
        );
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("--sim-pki {}", path.display()))?;
    let sim = phalanx_dcap_sim::SimTee::from_json(&text)?;
    let mut roots = phalanx_dcap::pki::split_chain(sim.root_pem().as_bytes(), "sim root")?;
    roots.push(phalanx_dcap::pki::INTEL_SGX_ROOT_CA_DER.to_vec());
    let refs: Vec<&[u8]> = roots.iter().map(Vec::as_slice).collect();
    config.quote_anchors = phalanx_dcap::TrustAnchors::from_der_certs(&refs)?;
    Ok(())
}

/// A production build has no simulated PKI: trusting the `sim` root is refused, named.
#[cfg(not(feature = "sim"))]
fn sim_anchors(_: &Args, _: &mut WorkerConfig) -> anyhow::Result<()> {
    anyhow::bail!(
        "the gatekeeper trust root `sim` needs the simulated Intel PKI, which this build leaves out (production builds have no `sim` feature; the devnet and the dev image have it)"
    )
}

/// The configuration the arguments give (nothing opened yet).
fn config(args: &Args) -> anyhow::Result<WorkerConfig> {
    let trust = trust(args)?;
    let mut config = WorkerConfig::new(
        args.data_dir.clone(),
        args.attestation_url.clone(),
        args.registry_url.clone(),
        trust.genesis,
    );
    config.attestation_policy = trust.policy;
    config.gatekeeper_trust_roots = trust.roots;
    config.gatekeeper_policies = trust.gatekeeper_policies;
    config.initdata_config_id = trust.initdata_config_id;
    config.confirmations = trust.confirmations;
    config.dangerous_unattested_gatekeepers = args.dangerous_unattested_gatekeepers;
    if config.gatekeeper_trust_roots.iter().any(|r| r == "sim") {
        sim_anchors(args, &mut config)?;
    }
    config.contracts = args
        .contracts
        .iter()
        .map(|c| hex32(c, "--contract"))
        .collect::<anyhow::Result<_>>()?;
    if let Some(url) = &args.public_url
        && !chain::state::endpoint_ok(url)
    {
        anyhow::bail!(
            "--public-url is an http:// or https:// URL of at most {} bytes, without spaces",
            chain::types::MAX_ENDPOINT
        );
    }
    config.public_url = args.public_url.clone();
    config.checkpoint_sources = args.checkpoint_sources.clone();
    config.checkpoint_every = args.checkpoint_every.max(1);
    config.commit_every = std::time::Duration::from_secs(args.commit_every_secs);
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
    if args.print_account {
        let account = Worker::evm_account(&config, tee.as_ref()).await?;
        println!(
            "{}",
            serde_json::json!({ "evm_account": account.to_string() })
        );
        return Ok(());
    }
    // The address first: a worker that cannot serve must not register on the registry.
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("--listen {}", args.listen))?;
    let worker = Worker::boot(config, tee).await?;
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use clap::Parser as _;

    /// NC3 with Confidential Containers: the trust configuration comes from the initdata
    /// document the TD was launched with, its digest is the MRCONFIGID the worker
    /// demands, and host flags that disagree with it are refused.
    #[test]
    fn the_trust_configuration_comes_from_initdata() {
        let dir = tempfile::tempdir().unwrap();
        let genesis = "ab".repeat(32);
        let doc = format!(
            "version = \"0.1.0\"\nalgorithm = \"sha384\"\n[data]\n\"phalanx.toml\" = '''\ngenesis = \"{genesis}\"\npolicy = \"app\"\ngatekeeper_trust_roots = [\"intel\"]\n'''\n"
        );
        let path = dir.path().join("initdata.toml");
        std::fs::write(&path, &doc).unwrap();
        let args = |extra: &[&str]| {
            let mut argv = vec![
                "pruntime",
                "--data-dir",
                "d",
                "--attestation-url",
                "http://a",
                "--registry-url",
                "http://r",
                "--tee",
                "tdx",
                "--initdata",
                path.to_str().unwrap(),
            ];
            argv.extend_from_slice(extra);
            Cli::try_parse_from(argv).unwrap().args
        };
        let c = config(&args(&[])).unwrap();
        assert_eq!(c.genesis, [0xab; 32]);
        assert_eq!(c.attestation_policy, "app");
        assert_eq!(
            c.mr_config_id().as_slice(),
            <sha2::Sha384 as sha2::Digest>::digest(doc.as_bytes()).as_slice()
        );
        // Agreeing flags are fine; disagreeing ones are refused by name.
        config(&args(&["--genesis", &genesis, "--policy", "app"])).unwrap();
        for (flags, named) in [
            (vec!["--genesis", &"cd".repeat(32)], "--genesis"),
            (vec!["--policy", "other"], "--policy"),
            (
                vec!["--gatekeeper-trust-root", "sim"],
                "--gatekeeper-trust-root",
            ),
            (vec!["--dangerous-unattested-gatekeepers"], "dangerous"),
        ] {
            let e = config(&args(&flags)).unwrap_err().to_string();
            assert!(e.contains(named), "{e}");
        }
        // A document pinning a Solidity registry: the URL must name its address, and
        // the depth is the document's.
        let evm_doc = format!(
            "version = \"0.1.0\"\nalgorithm = \"sha384\"\n[data]\n\"phalanx.toml\" = '''\nevm_registry = \"7:0x{}\"\nconfirmations = 9\npolicy = \"app\"\ngatekeeper_trust_roots = [\"intel\"]\n'''\n",
            "cd".repeat(20)
        );
        let evm_path = dir.path().join("evm.toml");
        std::fs::write(&evm_path, &evm_doc).unwrap();
        let evm_args = |url: &str, extra: &[&str]| {
            let mut argv = vec![
                "pruntime",
                "--data-dir",
                "d",
                "--attestation-url",
                "http://a",
                "--registry-url",
                url,
                "--tee",
                "tdx",
                "--initdata",
                evm_path.to_str().unwrap(),
            ];
            argv.extend_from_slice(extra);
            config(&Cli::try_parse_from(argv).unwrap().args)
        };
        let good = format!("evm+http://node:8545#0x{}", "cd".repeat(20));
        let c = evm_args(&good, &[]).unwrap();
        assert_eq!(c.confirmations, Some(9));
        assert_eq!(c.genesis, chain::evm_proof::registry_id(7, &[0xcd; 20]));
        let other = format!("evm+http://node:8545#0x{}", "ef".repeat(20));
        for (url, extra, named) in [
            (other.as_str(), vec![], "--registry-url"),
            ("http://ledger:7300", vec![], "--registry-url"),
            (
                good.as_str(),
                vec!["--confirmations", "1"],
                "--confirmations",
            ),
            (good.as_str(), vec!["--evm-chain-id", "8"], "--evm-chain-id"),
        ] {
            let e = evm_args(url, &extra).unwrap_err().to_string();
            assert!(e.contains(named), "{e}");
        }
        // Without --initdata, --genesis is required.
        assert!(
            Cli::try_parse_from([
                "pruntime",
                "--data-dir",
                "d",
                "--attestation-url",
                "a",
                "--registry-url",
                "r"
            ])
            .is_err()
        );
    }
}
