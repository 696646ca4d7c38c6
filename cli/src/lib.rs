//! The `phalanx` command line: `devnet` (the whole system on loopback, see
//! [`devnet`]), quote verification and the simulated TEE.
//!
//! Exit codes: `0` success, `1` the evidence was rejected (the JSON says why),
//! `2` unusable arguments or unreadable files.
//!
//! `phalanx quote verify` prints one JSON object. On success:
//! `{"ok": true, "status": "<TcbStatus>", "advisory_ids": [...], "tee": "sgx"|"tdx", ...}`
//! with every measurement hex-encoded; on rejection:
//! `{"ok": false, "error": {"code": "<stable_snake_case>", "step": "<step>", "message": "..."}}`.
//! The codes are those of [`attestation_service::Error::code`], listed in the README.
//!
//! It is the top layer: no crate's normal dependencies include it (keyvault's tests
//! drive its devnet). Its default feature `sim` (the devnet, `phalanx sim`, the
//! simulated TEE for `pruntime` and `gatekeeper`) is for development, tests and the dev
//! image; the production ledger's `phalanx` is built with `--no-default-features`.
//!
//! **Must never**, without `sim`, **depend on** the simulated PKI or TEE
//! (`scripts/check-deps.sh`).

pub mod answer;
pub mod audit;
pub mod chain_cmd;
pub mod cluster;
pub mod contract;
#[cfg(feature = "sim")]
pub mod devnet;
pub mod probe;
#[cfg(feature = "sim")]
mod sim;

use anyhow::{Context, bail};
use attestation_service::{Collateral, TrustAnchors, Verifier};
use clap::{Args, Parser, Subcommand, ValueEnum};
use phalanx_types::{Epoch, home};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Exit code for a rejected quote.
pub const EXIT_REJECTED: u8 = 1;
/// Exit code for unusable arguments or unreadable files.
pub const EXIT_USAGE: u8 = 2;

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "phalanx",
    version,
    about = "Phalanx: remote attestation and threshold key management"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    #[cfg(feature = "sim")]
    /// Run the attestation service, five gatekeepers (threshold 3) and a pRuntime worker on
    /// loopback, with data under DIR; resumes the same cluster when DIR exists.
    Devnet {
        /// Data directory [default: $PHALANX_HOME/devnet, where PHALANX_HOME defaults
        /// to ~/.phalanx].
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Run the demo and stop instead of serving until Ctrl-C.
        #[arg(long)]
        once: bool,
        /// The registry's chain: `ledger` (embedded), `anvil` (the Solidity registry on
        /// a fresh local anvil; `make devnet ARGS=--chain=anvil` installs anvil first),
        /// or an EVM node's `http://` JSON-RPC URL (with `--evm-key`).
        #[arg(long, default_value = "ledger")]
        chain: devnet::DevChain,
        /// On an EVM node: the key file of the account that pays for the devnet and
        /// governs its registry.
        #[arg(long)]
        evm_key: Option<PathBuf>,
        /// On an EVM node: the registry a devnet deployed there before (0x…), resumed
        /// from the devnet's directory; without it a new registry is deployed.
        #[arg(long)]
        registry: Option<String>,
    },
    /// Gatekeepers.
    #[command(subcommand)]
    Keyvault(KeyvaultCommand),
    /// The registry's embedded ledger.
    #[command(subcommand)]
    Chain(ChainCommand),
    /// Use confidential contracts: deploy one, send it commands, query it, fetch your
    /// commands' receipts.
    #[command(subcommand)]
    Contract(contract::ContractCommand),
    /// DCAP quotes.
    #[command(subcommand)]
    Quote(QuoteCommand),
    /// The simulated TEE (a fake Intel PKI for development).
    #[cfg(feature = "sim")]
    #[command(subcommand)]
    Sim(SimCommand),
    /// Run a pRuntime worker (the same as the `pruntime` binary).
    Pruntime(pruntime::cmd::Args),
    /// Run the attestation service (the same as the `attestation-service` binary, with
    /// the simulated root available).
    AttestationService(attestation_service::cli::Cli),
    /// Run a gatekeeper node (the same as the `keyvault` binary).
    Gatekeeper(keyvault::run::Cli),
    /// Health check of a service (for containers): exit 0 healthy, 1 not.
    Probe {
        /// What to ask.
        #[command(subcommand)]
        probe: probe::Probe,
        /// Seconds to wait for the answer.
        #[arg(long, default_value_t = 3, global = true)]
        timeout: u64,
    },
    /// Verify what workers produce, offline.
    #[command(subcommand)]
    Verify(VerifyCommand),
}

#[derive(Debug, Subcommand)]
enum VerifyCommand {
    /// Check a pRuntime answer's verification bundle against a pinned registry genesis
    /// and Intel's root (or --trust-root), trusting neither the attestation service nor
    /// the worker; prints one verdict JSON. Exit 0 accepted, 1 refused, 2 unusable input.
    Answer(answer::AnswerArgs),
}

#[derive(Debug, Subcommand)]
enum KeyvaultCommand {
    /// Audit a gatekeeper's transparency log: check its signed tree head under its
    /// identity key and that it extends the head seen last time (kept in STATE; the
    /// identity key is pinned there on first use). Exit 1 if the check fails.
    Audit {
        /// The gatekeeper, e.g. http://127.0.0.1:7101.
        #[arg(long)]
        url: String,
        /// State file (JSON): the pinned identity key and the last head seen.
        #[arg(long)]
        state: PathBuf,
    },
    /// Every node's status (epochs, round, log) and the public key sets they agree on.
    Status(Nodes),
    /// Certify a node's identity key with the cluster CA (created in CA_DIR on first
    /// use: `ca.pem` for every node's `tls.ca_cert`, `ca.key` mode 0600): writes the
    /// node's `tls.cert`. The identity key is what `keyvault --config F init` printed.
    Certify {
        /// The CA's directory.
        #[arg(long)]
        ca_dir: PathBuf,
        /// The node's index in the committee.
        #[arg(long)]
        index: u16,
        /// The node's identity key (SEC1, hex).
        #[arg(long)]
        identity_key: String,
        /// Where to write the node's certificate (PEM).
        #[arg(long)]
        out: PathBuf,
    },
    /// The tenant (registry measurement, `contract_runtimes` entry) of an SGX enclave
    /// without KSS, from its MRENCLAVE.
    Tenant {
        /// MRENCLAVE, hex.
        #[arg(long)]
        mr_enclave: String,
    },
    /// The first DKG among the nodes: epoch 0.
    Genesis {
        #[command(flatten)]
        admin: Admin,
        /// Threshold t.
        #[arg(long)]
        threshold: u16,
    },
    /// A new master secret at the next epoch (old epochs stay derivable until retired).
    Rotate {
        #[command(flatten)]
        admin: Admin,
        /// Threshold t (default: the latest epoch's).
        #[arg(long)]
        threshold: Option<u16>,
    },
    /// Fresh shares of an epoch, same master key: shares stolen before are useless.
    Refresh {
        #[command(flatten)]
        admin: Admin,
        /// The epoch (default: the latest).
        #[arg(long)]
        epoch: Option<Epoch>,
    },
    /// Move an epoch to a new committee and threshold, same master key.
    Reshare {
        #[command(flatten)]
        admin: Admin,
        /// The epoch (default: the latest).
        #[arg(long)]
        epoch: Option<Epoch>,
        /// A node joining (its client URL); repeatable.
        #[arg(long)]
        add: Vec<String>,
        /// A member leaving (its index); repeatable.
        #[arg(long)]
        remove: Vec<u16>,
        /// The new threshold.
        #[arg(long)]
        threshold: u16,
    },
    /// Erase every node's share of an epoch (keys under it can no longer be derived).
    RetireEpoch {
        #[command(flatten)]
        admin: Admin,
        /// The epoch.
        #[arg(long)]
        epoch: Epoch,
    },
}

#[derive(Debug, Subcommand)]
enum ChainCommand {
    /// Create a P-256 key file (0600) and print its public key (e.g. the governance key).
    Keygen {
        /// The key file to create.
        #[arg(long)]
        out: PathBuf,
    },
    /// Run the ledger node: blocks in DIR/ledger, signed with DIR/authority.key
    /// (created on first run), gRPC on LISTEN; prints its URL and genesis hash.
    Serve {
        /// Data directory [default: $PHALANX_HOME/chain, where PHALANX_HOME defaults to
        /// ~/.phalanx].
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Listen address.
        #[arg(long, default_value = "127.0.0.1:7300")]
        listen: String,
        /// The governance public key (hex, compressed SEC1); fixed at genesis.
        #[arg(long)]
        governance: String,
        /// The DCAP root(s) registrations' quotes must chain to (PEM), fixed at genesis;
        /// default Intel's SGX Root CA. Any other root (a simulated one) is for
        /// development only and is logged as such.
        #[arg(long)]
        trust_root: Option<PathBuf>,
    },
    /// Submit one signed registry change through a verifying light client.
    Tx {
        /// The registry: a ledger node (`http://…` or `ledger+http://…`), or the
        /// Solidity registry `evm+http://NODE#0xADDRESS`.
        #[arg(long)]
        url: String,
        /// A ledger's genesis hash (hex); only that chain is accepted.
        #[arg(long)]
        genesis: Option<String>,
        /// The signing account's key file (governance, or a gatekeeper's): P-256 on the
        /// ledger (`phalanx chain keygen`), an Ethereum account on EVM
        /// (`phalanx chain evm-keygen`).
        #[arg(long)]
        key: PathBuf,
        #[command(subcommand)]
        change: ChainChange,
    },
    /// Create an Ethereum account's key file (0600) and print its address (fund it before
    /// it sends transactions).
    EvmKeygen {
        /// The key file to create.
        #[arg(long)]
        out: PathBuf,
    },
    /// Deploy the Solidity registry (`chain/contracts/Registry.sol`) on an EVM chain,
    /// governed by GOVERNANCE, paid by the account in KEY; prints the registry's URL
    /// (`evm+RPC#0xADDRESS`, what configs name), its address and chain id, and the pin
    /// verifiers give (`CHAIN_ID:0xADDRESS`).
    EvmDeploy {
        /// The chain's JSON-RPC endpoint.
        #[arg(long)]
        rpc: String,
        /// The paying account's key file (`phalanx chain evm-keygen`).
        #[arg(long)]
        key: PathBuf,
        /// The governance account's address (0x…): it alone allows measurements, names
        /// the gatekeepers, locks rotations and approves the first registrations.
        #[arg(long)]
        governance: String,
    },
    /// Send ether from the account in KEY to ADDRESS (to fund a gatekeeper's or a
    /// pRuntime's account: `keyvault init` and `pruntime --print-account` print them).
    EvmFund {
        /// The chain's JSON-RPC endpoint.
        #[arg(long)]
        rpc: String,
        /// The paying account's key file.
        #[arg(long)]
        key: PathBuf,
        /// The address to fund (0x…).
        #[arg(long)]
        to: String,
        /// How much, in milli-ether.
        #[arg(long, default_value_t = 1000)]
        milli_ether: u64,
    },
    /// Rebuild the registry from the node's blocks, verifying each, and print it.
    Status {
        /// The registry: a ledger node (`http://…`), or `evm+http://NODE#0xADDRESS`
        /// (its facts proven at the node's newest block).
        #[arg(long)]
        url: String,
        /// Accept only the chain with this genesis hash (hex).
        #[arg(long)]
        genesis: Option<String>,
    },
}

/// A registry change (`phalanx chain tx`).
#[derive(Debug, Subcommand)]
pub enum ChainChange {
    /// Allow a measurement (a tenant id, hex) in a role.
    AddMeasurement {
        /// The tenant id (64 hex characters: `phalanx quote verify` and
        /// `phalanx tenant` print it), not a bare MRENCLAVE or MRTD.
        measurement: String,
        /// What it may be: `pruntime` (publishes contract keys, answers users),
        /// `gatekeeper` (joins the committee) or `app` (derives its own keys).
        #[arg(long)]
        role: chain::types::Role,
    },
    /// Disallow a measurement (a tenant id, hex).
    RemoveMeasurement {
        /// The tenant id (64 hex characters).
        measurement: String,
    },
    /// Make the gatekeepers at these client URLs the gatekeeper set (their index,
    /// identity key and addresses as they report them; each must be a registered
    /// gatekeeper) with threshold T: every DKG and reshare must produce exactly T.
    SetGatekeepers {
        /// Client URLs, comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        nodes: Vec<String>,
        /// The committee's threshold (1..=n).
        #[arg(long)]
        threshold: u16,
    },
    /// The TCB rule registrations are judged by (the genesis's roots stay): accepted
    /// statuses, the evidence lifetime, the collateral floor.
    SetTcbRule {
        /// An accepted TCB status (repeat), e.g. UpToDate.
        #[arg(long = "tcb-status", required = true)]
        tcb_statuses: Vec<String>,
        /// Seconds a registration's evidence counts.
        #[arg(long, default_value_t = chain::types::DEFAULT_MAX_EVIDENCE_AGE)]
        max_evidence_age: u64,
        /// The lowest tcbEvaluationDataNumber a registration's collateral may have.
        #[arg(long, default_value_t = 0)]
        min_tcb_evaluation_data_number: u32,
    },
    /// Retire EPOCH (not the newest, none a contract's state still needs:
    /// its keys superseded and its state committed under newer ones); the
    /// gatekeepers then erase its shares (`phalanx keyvault retire-epoch`).
    RetireEpoch {
        /// The epoch.
        epoch: Epoch,
    },
    /// Lock a rotation to EPOCH (before `phalanx keyvault rotate` or `genesis`).
    LockRotation {
        /// The epoch being created.
        epoch: Epoch,
    },
    /// Give up the locked rotation to EPOCH.
    AbortRotation {
        /// The locked epoch.
        epoch: Epoch,
    },
    /// On an EVM registry while approvals are open (before the gatekeeper set is in
    /// standing): check a pending registration's evidence (the file a gatekeeper or
    /// worker wrote and logged) and approve it as governance; prints what it proved.
    ApproveRegistration {
        /// The pending registration file.
        file: PathBuf,
        /// The DCAP root certificate (PEM) its quote must chain to; default Intel's.
        #[arg(long)]
        trust_root: Option<PathBuf>,
        /// Check and print what it proves (identity key, tenant, TCB status) without
        /// approving.
        #[arg(long)]
        dry_run: bool,
    },
    /// Anyone: report a gatekeeper's misbehaviour with its evidence file (what a
    /// gatekeeper or worker wrote when it caught one: `*.misbehaviour`). The registry
    /// checks the signatures itself and takes the accused's registration away.
    ReportMisbehaviour {
        /// The evidence file.
        file: PathBuf,
    },
    /// Deploy a contract (a WebAssembly module, checked first as pRuntime would load
    /// it); prints its id, which pRuntime serves with `--contract`.
    Deploy {
        /// The module file.
        #[arg(long)]
        module: PathBuf,
        /// Salt (32 bytes, hex): another salt, another contract of the same code.
        #[arg(
            long,
            default_value = "0000000000000000000000000000000000000000000000000000000000000000"
        )]
        salt: String,
    },
}

/// The nodes to talk to.
#[derive(Debug, Args)]
struct Nodes {
    /// Client URLs of the gatekeepers, comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    nodes: Vec<String>,
}

/// Nodes plus the admin secret and how long to follow a round.
#[derive(Debug, Args)]
struct Admin {
    #[command(flatten)]
    nodes: Nodes,
    /// File holding the admin secret.
    #[arg(long)]
    admin_secret_file: PathBuf,
    /// Give up following the round after this many seconds.
    #[arg(long, default_value_t = 120)]
    timeout: u64,
}

#[derive(Debug, Subcommand)]
enum QuoteCommand {
    /// Verify a quote against collateral at a given time.
    Verify(VerifyArgs),
}

#[derive(Debug, Args)]
struct VerifyArgs {
    /// The quote file (raw bytes, or hex text with --hex).
    #[arg(long)]
    quote: PathBuf,
    /// The quote file is hex text.
    #[arg(long)]
    hex: bool,
    /// A collateral bundle (JSON, the format of shared/testdata/dcap).
    #[arg(long, conflicts_with_all = ["tcb_info", "qe_identity"])]
    collateral: Option<PathBuf>,
    /// Raw PCCS TCB Info response body.
    #[arg(long, requires_all = ["tcb_info_chain", "qe_identity", "qe_identity_chain", "pck_crl", "pck_crl_chain", "root_crl"])]
    tcb_info: Option<PathBuf>,
    /// TCB Info issuer chain (PEM or URL-encoded header value).
    #[arg(long)]
    tcb_info_chain: Option<PathBuf>,
    /// Raw PCCS QE Identity response body.
    #[arg(long)]
    qe_identity: Option<PathBuf>,
    /// QE Identity issuer chain.
    #[arg(long)]
    qe_identity_chain: Option<PathBuf>,
    /// PCK CRL (DER, PEM or hex).
    #[arg(long)]
    pck_crl: Option<PathBuf>,
    /// PCK CRL issuer chain.
    #[arg(long)]
    pck_crl_chain: Option<PathBuf>,
    /// Root CA CRL (DER, PEM or hex).
    #[arg(long)]
    root_crl: Option<PathBuf>,
    /// Verification time, unix seconds.
    #[arg(long)]
    now: i64,
    /// Trust this root (PEM) instead of Intel's SGX Root CA.
    #[arg(long)]
    trust_root: Option<PathBuf>,
    /// Compact JSON on one line (the default is pretty-printed JSON).
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Tee {
    Sgx,
    Tdx,
}

#[cfg(feature = "sim")]
#[derive(Debug, Subcommand)]
enum SimCommand {
    /// Run the whole simulated attestation path in memory: a fresh fake Intel PKI, an
    /// SGX and a TDX quote, both verified against the simulated root. Prints the
    /// verdicts as JSON.
    Demo,
    /// Create a simulated PKI and platform in DIR: sim.json (with private keys),
    /// root.pem, collateral-sgx.json, collateral-tdx.json.
    Init {
        /// Output directory.
        #[arg(long)]
        dir: PathBuf,
        /// Start of all validity windows (unix seconds); collateral lasts 30 days.
        #[arg(long)]
        valid_from: i64,
    },
    /// Make a quote from the simulated platform in DIR.
    Quote {
        /// Directory made by `sim init`.
        #[arg(long)]
        dir: PathBuf,
        /// SGX (quote v3) or TDX (quote v4).
        #[arg(long, value_enum)]
        tee: Tee,
        /// MRENCLAVE (SGX) or MRTD (TDX), hex.
        #[arg(long)]
        measurement: Option<String>,
        /// REPORTDATA, hex, up to 64 bytes (zero-padded).
        #[arg(long, conflicts_with = "nonce")]
        report_data: Option<String>,
        /// A nonce from the attestation service: REPORTDATA becomes the service's
        /// binding of this nonce and `--runtime-data`.
        #[arg(long)]
        nonce: Option<String>,
        /// Runtime data (base64) bound with `--nonce`.
        #[arg(long, requires = "nonce", default_value = "")]
        runtime_data: String,
        /// Mark the enclave or TD as debug.
        #[arg(long)]
        debug: bool,
        /// Output file (raw quote bytes).
        #[arg(long)]
        out: PathBuf,
    },
}

fn round_command(admin: Admin, action: cluster::Action) -> anyhow::Result<ExitCode> {
    tokio::runtime::Runtime::new()?.block_on(cluster::round(
        &admin.nodes.nodes,
        &admin.admin_secret_file,
        action,
        std::time::Duration::from_secs(admin.timeout),
    ))
}

/// An error and its causes on one line, each once ([`phalanx_types::causes`]).
pub fn causes(e: &anyhow::Error) -> String {
    phalanx_types::causes(e.as_ref())
}

/// Runs a parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        #[cfg(feature = "sim")]
        Command::Devnet {
            dir,
            once,
            chain,
            evm_key,
            registry,
        } => {
            keyvault::run::init_tracing();
            let registry = registry
                .map(|r| {
                    chain::evm_proof::parse_address(&r)
                        .context("--registry is an address: 0x and 40 hex digits")
                })
                .transpose()?;
            let joining = devnet::Joining {
                key: evm_key,
                registry,
            };
            let dir = dir.map_or_else(|| home::data_dir("devnet"), |d| home::expand(&d));
            tokio::runtime::Runtime::new()?.block_on(devnet::run(&dir, once, &chain, &joining))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Pruntime(args) => {
            keyvault::run::init_tracing();
            tokio::runtime::Runtime::new()?.block_on(pruntime::cmd::run(args))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::AttestationService(cli) => {
            attestation_service::cli::run(cli)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Gatekeeper(cli) => Ok(keyvault::run::main(cli)),
        Command::Probe { probe, timeout } => Ok(tokio::runtime::Runtime::new()?
            .block_on(probe::run(&probe, std::time::Duration::from_secs(timeout)))),
        Command::Verify(VerifyCommand::Answer(args)) => answer::run(&args),
        Command::Keyvault(c) => run_keyvault(c),
        Command::Chain(c) => run_chain(c).map(|()| ExitCode::SUCCESS),
        Command::Contract(c) => tokio::runtime::Runtime::new()?
            .block_on(contract::run(c))
            .map(|()| ExitCode::SUCCESS),
        Command::Quote(QuoteCommand::Verify(args)) => verify(&args),
        #[cfg(feature = "sim")]
        Command::Sim(SimCommand::Demo) => sim::demo(),
        #[cfg(feature = "sim")]
        Command::Sim(SimCommand::Init { dir, valid_from }) => {
            sim::sim_init(&dir, valid_from)?;
            Ok(ExitCode::SUCCESS)
        }
        #[cfg(feature = "sim")]
        Command::Sim(SimCommand::Quote {
            dir,
            tee,
            measurement,
            report_data,
            nonce,
            runtime_data,
            debug,
            out,
        }) => {
            let rd = match nonce {
                Some(n) => sim::sim_report_data(&n, &runtime_data)?,
                None => {
                    sim::fixed_hex::<64>(report_data.as_deref().unwrap_or(""), "--report-data")?
                }
            };
            let measurement = measurement.as_deref().unwrap_or("");
            sim::sim_quote(&dir, tee, measurement, debug, &rd, &out)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `phalanx keyvault …`.
fn run_keyvault(command: KeyvaultCommand) -> anyhow::Result<ExitCode> {
    let rt = || tokio::runtime::Runtime::new();
    match command {
        KeyvaultCommand::Audit { url, state } => rt()?.block_on(audit::audit(&url, &state)),
        KeyvaultCommand::Certify {
            ca_dir,
            index,
            identity_key,
            out,
        } => {
            cluster::certify(&ca_dir, index, &identity_key, &out)?;
            Ok(ExitCode::SUCCESS)
        }
        KeyvaultCommand::Tenant { mr_enclave } => {
            let mr_enclave: [u8; 32] = hex::decode(&mr_enclave)
                .ok()
                .and_then(|b| b.try_into().ok())
                .context("--mr-enclave is 32 bytes of hex")?;
            let tenant = keyvault::tenant::TeeIdentity::Sgx {
                mr_enclave,
                kss: None,
            }
            .digest();
            println!("{}", serde_json::json!({ "tenant": hex::encode(tenant) }));
            Ok(ExitCode::SUCCESS)
        }
        KeyvaultCommand::Status(n) => rt()?.block_on(cluster::status(&n.nodes)),
        KeyvaultCommand::RetireEpoch { admin, epoch } => rt()?.block_on(cluster::retire(
            &admin.nodes.nodes,
            &admin.admin_secret_file,
            epoch,
        )),
        KeyvaultCommand::Genesis { admin, threshold } => {
            round_command(admin, cluster::Action::Genesis { threshold })
        }
        KeyvaultCommand::Rotate { admin, threshold } => {
            round_command(admin, cluster::Action::Rotate { threshold })
        }
        KeyvaultCommand::Refresh { admin, epoch } => {
            round_command(admin, cluster::Action::Refresh { epoch })
        }
        KeyvaultCommand::Reshare {
            admin,
            epoch,
            add,
            remove,
            threshold,
        } => round_command(
            admin,
            cluster::Action::Reshare {
                epoch,
                add,
                remove,
                threshold,
            },
        ),
    }
}

/// `phalanx chain …`.
fn run_chain(command: ChainCommand) -> anyhow::Result<()> {
    let rt = || tokio::runtime::Runtime::new();
    match command {
        ChainCommand::Keygen { out } => chain_cmd::keygen(&out),
        ChainCommand::Serve {
            dir,
            listen,
            governance,
            trust_root,
        } => rt()?.block_on(chain_cmd::serve(
            &dir.map_or_else(|| home::data_dir("chain"), |d| home::expand(&d)),
            &listen,
            &governance,
            trust_root.as_deref(),
        )),
        ChainCommand::Tx {
            url,
            genesis,
            key,
            change,
        } => rt()?.block_on(chain_cmd::tx(&url, genesis.as_deref(), &key, change)),
        ChainCommand::EvmKeygen { out } => chain_cmd::evm_keygen(&out),
        ChainCommand::EvmDeploy {
            rpc,
            key,
            governance,
        } => rt()?.block_on(chain_cmd::evm_deploy(&rpc, &key, &governance)),
        ChainCommand::EvmFund {
            rpc,
            key,
            to,
            milli_ether,
        } => rt()?.block_on(chain_cmd::evm_fund(&rpc, &key, &to, milli_ether)),
        ChainCommand::Status { url, genesis } => {
            rt()?.block_on(chain_cmd::status(&url, genesis.as_deref()))
        }
    }
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    // Bound what we read: no collateral or quote is anywhere near this.
    const MAX: u64 = 8 * 1024 * 1024;
    let len = std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    if len > MAX {
        bail!("{} is {len} bytes, more than {MAX}", path.display());
    }
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

fn required<'a>(p: &'a Option<PathBuf>, flag: &str) -> anyhow::Result<&'a Path> {
    p.as_deref().with_context(|| format!("{flag} is required"))
}

/// Reads the quote and collateral named by `args`; errors here are usage errors.
fn load(
    args: &VerifyArgs,
) -> anyhow::Result<(
    Vec<u8>,
    Result<Collateral, attestation_service::Error>,
    TrustAnchors,
)> {
    let raw = read(&args.quote)?;
    let quote = if args.hex {
        let text = String::from_utf8(raw).context("--hex quote is not text")?;
        let t = text.trim();
        hex::decode(t.strip_prefix("0x").unwrap_or(t)).context("--hex quote is not valid hex")?
    } else {
        raw
    };
    let collateral = match (&args.collateral, &args.tcb_info) {
        (Some(bundle), _) => Collateral::from_bundle_json(&read(bundle)?),
        (None, Some(tcb_info)) => {
            let files = [
                read(tcb_info)?,
                read(required(&args.tcb_info_chain, "--tcb-info-chain")?)?,
                read(required(&args.qe_identity, "--qe-identity")?)?,
                read(required(&args.qe_identity_chain, "--qe-identity-chain")?)?,
                read(required(&args.pck_crl, "--pck-crl")?)?,
                read(required(&args.pck_crl_chain, "--pck-crl-chain")?)?,
                read(required(&args.root_crl, "--root-crl")?)?,
            ];
            Collateral::from_pccs(&attestation_service::PccsResponses {
                tcb_info: &files[0],
                tcb_info_issuer_chain: &files[1],
                qe_identity: &files[2],
                qe_identity_issuer_chain: &files[3],
                pck_crl: &files[4],
                pck_crl_issuer_chain: &files[5],
                root_ca_crl: &files[6],
            })
        }
        (None, None) => bail!("give --collateral BUNDLE.json or the PCCS pieces (--tcb-info ...)"),
    };
    let anchors = match &args.trust_root {
        Some(p) => {
            eprintln!(
                "phalanx: trusting {} instead of Intel's SGX Root CA",
                p.display()
            );
            TrustAnchors::from_pem(&read(p)?).context("--trust-root")?
        }
        None => TrustAnchors::intel(),
    };
    Ok((quote, collateral, anchors))
}

fn verify(args: &VerifyArgs) -> anyhow::Result<ExitCode> {
    let (quote, collateral, anchors) = load(args)?;
    let verdict = collateral.and_then(|c| Verifier::new(anchors).verify(&quote, &c, args.now));
    let (json, code) = verdict_json(&verdict);
    let text = if args.json {
        serde_json::to_string(&json)
    } else {
        serde_json::to_string_pretty(&json)
    }?;
    println!("{text}");
    Ok(code)
}

/// The TEE identity of verified measurements, from which the tenant id its keys are
/// derived under follows ([`keyvault::tenant`]; the one conversion, in `phalanx-ear`).
pub fn tee_identity(
    m: &attestation_service::verify::Measurements,
) -> keyvault::tenant::TeeIdentity {
    keyvault::tenant::TeeIdentity::of(m)
}

/// The JSON object and exit code for a verification outcome.
pub fn verdict_json(
    verdict: &Result<attestation_service::VerifiedQuote, attestation_service::Error>,
) -> (serde_json::Value, ExitCode) {
    match verdict {
        Ok(v) => {
            let mut json = serde_json::to_value(v).unwrap_or_default();
            if let Some(obj) = json.as_object_mut() {
                obj.insert("ok".into(), true.into());
                let identity = tee_identity(&v.measurements);
                obj.insert("tenant".into(), identity.tenant_id().to_string().into());
            }
            (json, ExitCode::SUCCESS)
        }
        Err(e) => (
            serde_json::json!({
                "ok": false,
                "error": { "code": e.code(), "step": e.step(), "message": e.to_string() },
            }),
            ExitCode::from(EXIT_REJECTED),
        ),
    }
}
