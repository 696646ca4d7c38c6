//! `phalanx devnet`: the whole system on loopback with embedded defaults, under one
//! directory.
//!
//! 1. The attestation service (simulated trust root) from `<dir>/attestation`, with the
//!    devnet policy allowing the gatekeepers' and pRuntime's enclaves.
//! 2. Five gatekeepers (threshold 3), each a `keyvault::app` node with its own sealed
//!    rocksdb store in `<dir>/gatekeeper-<i>`, a client listener and a peer listener
//!    (mutual TLS; the devnet CA in `<dir>/ca` certifies each node's identity key),
//!    trusting the service's JWKS and the simulated root. One admin secret for all,
//!    in `<dir>/admin.secret`.
//! 3. Genesis, when no gatekeeper holds epoch 0 yet: a GJKR DKG among the five over
//!    their peer listeners, started through their admin services exactly as
//!    `phalanx keyvault genesis` does. On later runs the gatekeepers resume from disk
//!    with the same master public key. (The five nodes share this process, so this is
//!    a development network: a real cluster runs one `keyvault` process per machine.)
//! 4. A pRuntime worker — the one worker path: the devnet keeps no second copy of it (`<dir>/pruntime`, simulated TEE, MRENCLAVE = SHA-256 of this
//!    binary, allowed by the devnet's attestation policy, registry and gatekeepers for
//!    contract keys; a simulated TD with MRTD [`PRUNTIME_MR_TD`] is allowed too, for
//!    workers started with `--tee tdx`): it boots, registers, serves the example counter contract (deployed
//!    by the devnet's user account in `<dir>/chain/user.key`), follows the registry;
//!    the devnet sends it a sealed command through the registry and a signed sealed
//!    query, and writes the signed answer with its plaintext query and answer to
//!    `<dir>/demo/answer.json`.
//!
//! Then it prints every address and serves until Ctrl-C (or returns at once with
//! `--once`, which tests use).
//!
//! The registry is the embedded ledger unless `--chain` names anvil or an EVM node
//! ([`DevChain`]; `registry` is the one place where the steps differ): then the
//! devnet runs in `<dir>/anvil` (afresh each run: anvil keeps its chain in memory) or
//! `<dir>/evm` (resumed when `--registry` names the registry it deployed before).

mod registry;

use registry::DevRegistry;
pub use registry::{DevChain, Joining};

use anyhow::{Context, bail};
use attestation_service::app::App;
use attestation_service::config::Config;
use base64::Engine as _;
use chain::types::{Gatekeeper, public_key};
use keyvault::admin::{self, NodeInfo, Outcome};
use keyvault::app::{AttestationTrust, Listen, NodeApp, NodeConfig, RoundsConfig, TlsFiles};
use keyvault::grpc::Endpoint;
use keyvault::release::{Jwks, ReleasePolicy};
use keyvault::round::RoundKind;
use keyvault::share::NodeIndex;
use keyvault::tls::ClusterCa;
use phalanx_dcap_sim::SimTee;
use phalanx_types::Epoch;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Gatekeepers in the devnet.
pub const MEMBERS: u16 = 5;
/// Threshold.
pub const THRESHOLD: u16 = 3;
/// MRENCLAVE of the devnet's gatekeepers (on the simulated TEE).
pub const GATEKEEPER_MR_ENCLAVE: [u8; 32] = [0x6b; 32];

/// The devnet gatekeepers' TEE identity: its digest is the measurement they register
/// with, from their own attestation.
pub fn gatekeeper_tenant() -> keyvault::tenant::TeeIdentity {
    keyvault::tenant::TeeIdentity::Sgx {
        mr_enclave: GATEKEEPER_MR_ENCLAVE,
        kss: None,
    }
}

fn now() -> i64 {
    attestation_service::rest::system_now()
}

/// What a devnet run did (also printed).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    /// The attestation service's REST URL (`--attestation-url` takes it as it is).
    pub attestation_rest: String,
    /// The attestation service's gRPC URL.
    pub attestation_grpc: String,
    /// Gatekeeper client gRPC URLs (release, status, admin) by index.
    pub gatekeepers: Vec<String>,
    /// The same, as `--nodes` takes them (comma-separated).
    pub nodes: String,
    /// Gatekeeper peer URLs (mutual TLS, devnet CA in `<dir>/ca`) by index.
    pub gatekeeper_peers: Vec<String>,
    /// The admin secret's file (for `phalanx keyvault ... --admin-secret-file`).
    pub admin_secret_file: String,
    /// The registry: the ledger node (gRPC), or `evm+http://ANVIL#0xADDRESS`.
    pub chain: String,
    /// The ledger's genesis hash (pin it with `phalanx chain status --genesis`), or
    /// the Solidity registry's id.
    pub chain_genesis: String,
    /// The governance key's file (`phalanx chain tx … --key`): thresholds, committees,
    /// rotations and retirements are registry transactions it signs.
    pub governance_key_file: String,
    /// Whether this run performed genesis.
    pub genesis: bool,
    /// The master public key of the newest epoch (SEC1 compressed, hex).
    pub master_public_key: String,
    /// The pRuntime worker's query URL.
    pub pruntime: String,
    /// Its identity key (hex), as registered.
    pub pruntime_identity: String,
    /// Its (simulated) MRENCLAVE, which the devnet allows (hex): give it to other
    /// workers with `--mr-enclave`.
    pub pruntime_mr_enclave: String,
    /// The example contract the demo uses (hex id): the counter.
    pub contract: String,
    /// Every example contract it serves, by name (hex ids): `counter`, `auction` (whose
    /// signed result an EVM contract settles, `chain/contracts/AuctionSettlement.sol`),
    /// `vote` and `vault` (typed, `pruntime/guest/contracts`).
    pub examples: std::collections::BTreeMap<String, String>,
    /// The demo's signed answer, with its plaintext query and answer.
    pub answer_file: String,
    /// The height the answer was computed at.
    pub answer_height: u64,
    /// The answer's verification bundle (statement, revealed query and answer, the
    /// worker's quote and collateral, the registry's signed header and fact proofs at its height).
    pub bundle_file: String,
    /// The command that checks it offline, against the devnet's genesis and its
    /// simulated root (`phalanx verify answer`).
    pub verify_command: String,
}

/// The example contract of the demo (the guest crate's committed build).
pub const COUNTER_WASM: &[u8] = include_bytes!("../../pruntime/guest/wasm/counter.wasm");
/// The examples the devnet deploys and serves, by name (the guest crate's committed
/// builds): the demo's counter first.
pub const EXAMPLES: [(&str, &[u8]); 4] = [
    ("counter", COUNTER_WASM),
    (
        "auction",
        include_bytes!("../../pruntime/guest/wasm/auction.wasm"),
    ),
    (
        "vote",
        include_bytes!("../../pruntime/guest/wasm/vote.wasm"),
    ),
    (
        "vault",
        include_bytes!("../../pruntime/guest/wasm/vault.wasm"),
    ),
];
/// The market's own module: an auction paid in tokens, carrying the token.
pub const MARKET_WASM: &[u8] = include_bytes!("../../pruntime/guest/wasm/market.wasm");
/// The token the market carries as its component `token`.
pub const TOKEN_WASM: &[u8] = include_bytes!("../../pruntime/guest/wasm/token.wasm");

/// Every example the devnet deploys, as deployed: [`EXAMPLES`], then `market` (the
/// market with its token bundled: one contract whose code calls another's).
pub fn examples() -> anyhow::Result<Vec<(&'static str, Vec<u8>)>> {
    let mut all: Vec<(&'static str, Vec<u8>)> =
        EXAMPLES.iter().map(|(n, c)| (*n, c.to_vec())).collect();
    let market = phalanx_contract::bundle(MARKET_WASM, &[("token", TOKEN_WASM)])
        .context("bundling the market with its token")?;
    all.push(("market", market));
    Ok(all)
}

/// MRTD of the devnet's simulated TDX pRuntime (a worker started with `--tee tdx`
/// against a configfs-tsm that answers with the devnet's simulated TDX quotes).
pub const PRUNTIME_MR_TD: [u8; 48] = [0x7d; 48];

/// The MRCONFIGID of the devnet's TD pRuntime: the trust digest of a worker following
/// the registry `genesis`, appraised under the `devnet` policy, accepting gatekeepers
/// on the simulated root under the `devnet` policy (`phalanx pruntime … --policy devnet
/// --gatekeeper-trust-root sim --gatekeeper-policy devnet --print-config-id`). Another configuration is another tenant.
pub fn pruntime_td_config_id(genesis: [u8; 32], confirmations: Option<u64>) -> [u8; 48] {
    let mut config = pruntime::worker::WorkerConfig::new(
        std::path::PathBuf::new(),
        String::new(),
        String::new(),
        genesis,
    );
    config.confirmations = confirmations;
    config.attestation_policy = "devnet".into();
    config.gatekeeper_trust_roots = vec!["sim".into()];
    config.gatekeeper_policies = vec!["devnet".into()];
    config.mr_config_id()
}

/// The TEE identity of a simulated TD with MRTD `mr_td`, launched with `mr_config_id`
/// (everything else zero).
pub fn pruntime_td(mr_td: [u8; 48], mr_config_id: [u8; 48]) -> keyvault::tenant::TeeIdentity {
    keyvault::tenant::TeeIdentity::Tdx {
        mr_td,
        rtmr: [[0; 48]; 4],
        mr_config_id,
        mr_owner: [0; 48],
        mr_owner_config: [0; 48],
        td_attributes: phalanx_dcap_sim::SIM_TD_ATTRIBUTES,
        xfam: phalanx_dcap_sim::SIM_XFAM,
    }
}

/// The devnet pRuntime's TEE identity, for MRENCLAVE `mr_enclave`.
pub fn pruntime_tenant(mr_enclave: [u8; 32]) -> keyvault::tenant::TeeIdentity {
    keyvault::tenant::TeeIdentity::Sgx {
        mr_enclave,
        kss: None,
    }
}

/// The devnet's attestation service, running.
#[derive(Debug)]
pub struct Attestation {
    /// REST address.
    pub rest: std::net::SocketAddr,
    /// gRPC address.
    pub grpc: std::net::SocketAddr,
    /// Its JWKS.
    pub jwks: Jwks,
    /// Its JWKS document (for a pinned `jwks_file`).
    pub jwks_json: String,
    /// The release policy gatekeepers use with it (its issuer, the simulated root).
    pub release_policy: ReleasePolicy,
    /// The simulated TEE whose root it trusts.
    pub sim: SimTee,
    /// Its file (`sim.json`), for the processes that quote on it.
    pub sim_pki: std::path::PathBuf,
    /// The server task.
    pub task: tokio::task::JoinHandle<Result<(), attestation_service::app::StartError>>,
}

/// Starts the attestation service (simulated root, the devnet's policy) with
/// data in `<dir>/attestation`, serving until `stop` resolves.
pub async fn attestation(
    dir: &Path,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<Attestation> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let policy = dir.join("devnet-policy.toml");
    std::fs::write(
        &policy,
        format!(
            "# The devnet's attestation policy: the gatekeepers' and the pRuntime's enclaves, and the pRuntime's TD, UpToDate only.\nid = \"devnet\"\nversion = 1\n[[sgx]]\nmr_enclave = \"{}\"\n[[sgx]]\nmr_enclave = \"{}\"\n[[tdx]]\nmr_td = \"{}\"\n",
            hex::encode(GATEKEEPER_MR_ENCLAVE),
            hex::encode(pruntime_mr_enclave()?),
            hex::encode(PRUNTIME_MR_TD),
        ),
    )?;
    let mut config = Config {
        data_dir: dir.join("attestation"),
        policies: vec![policy],
        ..Config::default()
    };
    config.trust.root = attestation_service::config::RootKind::Sim;
    config.listen.rest = "127.0.0.1:0".into();
    config.listen.grpc = "127.0.0.1:0".into();
    let rest = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let (rest_addr, grpc_addr) = (rest.local_addr()?, grpc.local_addr()?);
    config.token.issuer = Some(format!("http://{rest_addr}"));
    let app = App::open(config, now)?;
    let service = app.service.clone();
    let task = tokio::spawn(app.serve(rest, grpc, stop));
    let jwks_json = service.jwks().map_err(anyhow::Error::msg)?.to_string();
    let sim_pki = dir.join("attestation/sim/sim.json");
    let sim = SimTee::from_json(&std::fs::read_to_string(&sim_pki)?)?;
    Ok(Attestation {
        rest: rest_addr,
        grpc: grpc_addr,
        jwks: Jwks::from_json(&jwks_json)?,
        jwks_json,
        release_policy: ReleasePolicy {
            issuer: Some(format!("http://{rest_addr}")),
            trust_roots: vec!["sim".into()],
            attestation_policies: vec!["devnet".into()],
            // The devnet's gatekeepers are appraised under its one policy too.
            gatekeeper_policies: vec!["devnet".into()],
            // (and the TD's, once the registry's genesis fixes its configuration)
            contract_runtimes: vec![pruntime_tenant(pruntime_mr_enclave()?).tenant_id()],
            // Governance upgrades pRuntime on the registry: any pRuntime in standing.
            contract_runtimes_from_registry: true,
            ..ReleasePolicy::default()
        },
        sim,
        sim_pki,
        task,
    })
}

/// A background task of the devnet, its error type erased.
type Task = tokio::task::JoinHandle<anyhow::Result<()>>;

/// The shutdown broadcast every devnet task waits on.
type Stop = tokio::sync::broadcast::Sender<()>;

/// A future that resolves when `stop` fires.
fn stopped(stop: &Stop) -> impl std::future::Future<Output = ()> + Send + 'static {
    let mut rx = stop.subscribe();
    async move {
        let _ = rx.recv().await;
    }
}

/// The running committee.
struct Committee {
    urls: Vec<String>,
    admin_file: std::path::PathBuf,
    admin_secret: zeroize::Zeroizing<String>,
    /// Each gatekeeper's task and its own stop (index `i` at `i - 1`; `None` for one
    /// not in the committee).
    members: Vec<Option<Member>>,
}

/// One running gatekeeper of the devnet.
struct Member {
    task: Task,
    stop: tokio::sync::oneshot::Sender<()>,
}

/// Step 3: the gatekeepers, from disk: each with both listeners, its certificate from
/// the devnet CA for its identity key, the devnet's admin secret, and the registry (it
/// joins only rounds whose committee is the registry's gatekeeper set); each is
/// registered as a worker and the set as the registry's gatekeepers. A fresh devnet
/// runs all [`MEMBERS`]; a resumed one the members of the committee governance named
/// last (a reshare may have removed some since) whose directory holds the listed
/// identity key. The set's other members (joined with `--add`, say) stay listed as they
/// are; the devnet neither starts nor asks them.
///
/// Long on purpose: choosing the members, then one node's whole setup (listeners,
/// certificate, registration, hooks) in one loop body.
async fn start_gatekeepers(
    dir: &Path,
    registry: &DevRegistry,
    att: &Attestation,
    stop: &Stop,
) -> anyhow::Result<Committee> {
    let ca_dir = dir.join("ca");
    std::fs::create_dir_all(&ca_dir)?;
    let ca = ClusterCa::load_or_create(&ca_dir)?;
    let admin_file = dir.join("admin.secret");
    let admin_secret = keyvault::app::admin_secret(&admin_file)?;
    tracing::warn!(
        "devnet gatekeepers run on the SIMULATED TEE (quotes from a test root; peers and workers accept that root only because the devnet says so): development only"
    );
    let listed = registry.gatekeepers().await?;
    let ours = |i: u16| (1..=MEMBERS).contains(&i) && dir.join(format!("gatekeeper-{i}")).is_dir();
    let candidates: Vec<u16> = match listed.is_empty() {
        true => (1..=MEMBERS).collect(),
        false => listed
            .iter()
            .map(|g| g.index)
            .filter(|&i| ours(i))
            .collect(),
    };
    let mut apps = Vec::new();
    let mut gatekeepers = Vec::new();
    for i in candidates {
        let gdir = dir.join(format!("gatekeeper-{i}"));
        let client = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let peer = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let config = node_config(
            i,
            &gdir,
            (client.local_addr()?, peer.local_addr()?),
            &ca_dir,
            &admin_file,
            registry,
            att,
        );
        let app = NodeApp::open(config, att.jwks.clone())?;
        let identity = app.node.identity().clone();
        // A listed member is this directory's node only by its identity key (a node
        // that joined later may hold a removed member's index).
        if listed
            .iter()
            .any(|g| g.index == i && g.identity_key != public_key(&identity.verifying_key()))
        {
            continue;
        }
        std::fs::write(
            gdir.join("cert.pem"),
            ca.issue(NodeIndex::new(i)?, &identity.verifying_key())?,
        )?;
        // Attested on the simulated TEE and registered with that evidence (once: a
        // restart reuses it), then listed as a gatekeeper below.
        registry.register_gatekeeper(&app).await?;
        gatekeepers.push(Gatekeeper {
            index: i,
            identity_key: public_key(&identity.verifying_key()),
            url: format!("http://{}", client.local_addr()?),
            peer_url: app.config().peer_url(),
        });
        let hooks = registry.hooks(&app, &gdir)?;
        apps.push((i, app.with_hooks(Arc::new(hooks)), client, peer));
    }
    if gatekeepers.is_empty() {
        bail!(
            "the registry's gatekeeper set names none of the gatekeepers in {}",
            dir.display()
        );
    }
    // The committee, with this run's addresses, and its threshold (governance's: no
    // round can publish another). Listed members it does not run stay as listed.
    let urls: Vec<String> = gatekeepers.iter().map(|g| g.url.clone()).collect();
    let ran: Vec<u16> = gatekeepers.iter().map(|g| g.index).collect();
    gatekeepers.extend(listed.into_iter().filter(|g| !ran.contains(&g.index)));
    registry.set_gatekeepers(&gatekeepers, THRESHOLD).await?;
    let members = serve_members(apps, stop);
    Ok(Committee {
        urls,
        admin_file,
        admin_secret,
        members,
    })
}

/// Gatekeeper `i`'s config: its directory, listeners, the devnet CA, admin secret and
/// registry, the attestation service's keys and policy, the simulated TEE.
fn node_config(
    i: u16,
    gdir: &Path,
    (client, peer): (std::net::SocketAddr, std::net::SocketAddr),
    ca_dir: &Path,
    admin_file: &Path,
    registry: &DevRegistry,
    att: &Attestation,
) -> NodeConfig {
    NodeConfig {
        index: i,
        data_dir: gdir.to_owned(),
        listen: Listen {
            client: client.to_string(),
            peer: peer.to_string(),
            admin: None,
        },
        peer_url: None,
        tls: TlsFiles {
            ca_cert: ca_dir.join("ca.pem"),
            cert: gdir.join("cert.pem"),
        },
        attestation: AttestationTrust {
            jwks_url: Some(format!("http://{}/.well-known/jwks.json", att.rest)),
            jwks_file: None,
            service_url: Some(format!("http://{}", att.rest)),
            policy: Some("devnet".into()),
        },
        policy: att.release_policy.clone(),
        rounds: RoundsConfig::default(),
        admin_secret_file: Some(admin_file.to_owned()),
        registry: Some(registry.config()),
        tee: Some(phalanx_tee::Settings {
            backend: phalanx_tee::Backend::Sim,
            root: None,
            sim_pki: Some(att.sim_pki.clone()),
            mr_enclave: Some(hex::encode(GATEKEEPER_MR_ENCLAVE)),
        }),
    }
}

/// Serves each gatekeeper until the devnet stops or it is stopped alone; its task and
/// stop at index `i - 1`.
fn serve_members(
    apps: Vec<(
        u16,
        NodeApp,
        tokio::net::TcpListener,
        tokio::net::TcpListener,
    )>,
    stop: &Stop,
) -> Vec<Option<Member>> {
    let mut members: Vec<Option<Member>> = (1..=MEMBERS).map(|_| None).collect();
    for (i, app, client, peer) in apps {
        let (own, own_rx) = tokio::sync::oneshot::channel::<()>();
        let all = stopped(stop);
        let serve = app.serve(client, peer, now, async move {
            tokio::select! {
                () = all => {}
                _ = own_rx => {}
            }
        });
        if let Some(slot) = usize::from(i)
            .checked_sub(1)
            .and_then(|k| members.get_mut(k))
        {
            *slot = Some(Member {
                task: tokio::spawn(async move { serve.await.map_err(anyhow::Error::from) }),
                stop: own,
            });
        }
    }
    members
}

/// Step 4: genesis over the network when no gatekeeper holds an epoch (the registry
/// locks the rotation first; the members publish the certificate), or resume. Returns
/// whether genesis ran.
async fn genesis_or_resume(
    dir: &Path,
    registry: &DevRegistry,
    committee: &Committee,
) -> anyhow::Result<bool> {
    let urls = &committee.urls;
    let infos: Vec<NodeInfo> = admin::cluster_status(urls)
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    // Holding any epoch: the devnet ran before (epoch 0 may be retired since).
    let holding = infos.iter().filter(|i| !i.epochs.is_empty()).count();
    if holding == infos.len() {
        return Ok(false);
    }
    if holding > 0 {
        bail!(
            "some gatekeepers in {} hold epochs and some do not",
            dir.display()
        );
    }
    eprintln!(
        "phalanx devnet: genesis: GJKR DKG among {MEMBERS} gatekeepers (threshold {THRESHOLD}) over their peer listeners (mutual TLS)"
    );
    registry.lock_genesis().await?;
    let spec = admin::spec(
        RoundKind::Dkg {
            epoch: Epoch(0),
            threshold: THRESHOLD,
        },
        &infos,
    )?;
    let id = admin::start_round(urls, &committee.admin_secret, &spec).await?;
    match admin::wait_round(urls, &id, Duration::from_secs(120)).await? {
        Outcome::Committed => Ok(true),
        Outcome::Aborted(why) => bail!("genesis aborted: {why:?}"),
    }
}

/// The newest epoch and its public key set as the registry has them (the members
/// publish its certificate after committing): workers take it from there, where only
/// the whole committee's certificate puts it — never from the gatekeepers' own status.
async fn published_key_set(
    registry: &DevRegistry,
) -> anyhow::Result<(Epoch, keyvault::share::PublicKeySet)> {
    let mut on_chain = None;
    for _ in 0..100 {
        on_chain = registry.newest_key().await?;
        if on_chain.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let on_chain = on_chain.context("the registry has no master key")?;
    Ok((
        on_chain.epoch,
        keyvault::wire::public_set_from_bytes(&on_chain.public_key_set)?,
    ))
}

/// The devnet pRuntime's MRENCLAVE: the SHA-256 of this binary (it runs in-process).
fn pruntime_mr_enclave() -> anyhow::Result<[u8; 32]> {
    Ok(pruntime::tee::own_measurement()?)
}

/// The devnet's pRuntime, running.
struct DevWorker {
    worker: Arc<pruntime::worker::Worker>,
    url: String,
    tasks: Vec<Task>,
}

/// Step 6: deploys the example contracts (once), boots a worker serving them, and starts
/// its chain-following loop and its HTTP server; the examples' ids, the counter's first.
async fn start_pruntime(
    dir: &Path,
    registry: &DevRegistry,
    att: &Attestation,
    stop: &Stop,
) -> anyhow::Result<(DevWorker, Vec<[u8; 32]>)> {
    let mut ids = Vec::new();
    for (_, code) in examples()? {
        ids.push(registry.deploy(dir, &code).await?);
    }
    let wdir = dir.join("pruntime");
    let tee = pruntime::tee::SimTee::new(
        SimTee::from_json(&att.sim.to_json())?,
        pruntime_mr_enclave()?,
        &wdir.join("sim-sealing.key"),
    );
    let mut config = pruntime::worker::WorkerConfig::new(
        wdir,
        format!("http://{}", att.rest),
        registry.url.clone(),
        registry.genesis,
    );
    config.attestation_policy = "devnet".into();
    // The devnet's gatekeepers attest on the simulated TEE too.
    config.gatekeeper_trust_roots = vec!["sim".into()];
    config.gatekeeper_policies = vec!["devnet".into()];
    config.contracts = ids.clone();
    config.poll = Duration::from_millis(50);
    config.confirmations = registry.confirmations();
    // Bound first, so the worker announces where it serves on the registry.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    config.public_url = Some(url.clone());
    registry.fund_worker(&config, &tee).await?;
    let worker = pruntime::worker::Worker::boot(config, Arc::new(tee)).await?;
    let serve = pruntime::server::serve(listener, worker.clone(), stopped(stop));
    let follow = worker.clone().run(stopped(stop));
    let tasks: Vec<Task> = vec![
        tokio::spawn(async move { serve.await.map_err(anyhow::Error::from) }),
        tokio::spawn(async move {
            follow.await;
            Ok(())
        }),
    ];
    Ok((DevWorker { worker, url, tasks }, ids))
}

/// The demo's command and query: the devnet's user bumps the counter through the
/// registry, waits until the worker has applied that block, queries it, and writes the
/// signed answer with its plaintext to `<dir>/demo/answer.json`. Returns the file and
/// the answer's height.
async fn pruntime_demo(
    dir: &Path,
    registry: &DevRegistry,
    att: &Attestation,
    dev: &DevWorker,
    contract: [u8; 32],
) -> anyhow::Result<DemoAnswer> {
    let height = registry.send(dir, contract, b"bump").await?;
    for _ in 0..200 {
        let at = dev
            .worker
            .info()
            .contracts
            .iter()
            .find(|c| c.id == hex::encode(contract))
            .map_or(0, |c| c.height);
        if at >= height {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let input = b"read";
    let asked = registry
        .query(dir, &dev.url, &dev.worker.identity_key(), contract, input)
        .await?;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let demo = dir.join("demo");
    std::fs::create_dir_all(&demo)?;
    let file = demo.join("answer.json");
    let doc = serde_json::json!({
        "about": "A pRuntime answer: the worker's signed statement, the query as sent, and the plaintext query and answer with their salts (revealed by the user) whose salted commitments the statement names.",
        "worker": dev.url,
        "statement": asked.answer.statement,
        "signature": asked.answer.signature,
        "query": asked.query,
        "plaintext_query": b64(input),
        "query_salt": hex::encode(asked.query_salt),
        "plaintext_answer": b64(&asked.output),
        "answer_salt": hex::encode(asked.answer_salt),
        "command_height": height,
    });
    std::fs::write(&file, serde_json::to_string_pretty(&doc)?)?;

    // The verification bundle: what the user reveals, the worker's evidence, and the
    // registry's header at the answer's height with proofs of the facts it rests on.
    let height = asked.answer.statement.height;
    let registry_proof = registry.answer_proof(&asked.answer.statement).await?;
    let bundle = phalanx_verify::Bundle::new(
        pruntime::client::answer_proof(&asked, input),
        dev.worker
            .evidence()
            .context("the worker holds no attestation evidence")?,
        registry_proof,
    );
    let bundle_file = demo.join("bundle.json");
    std::fs::write(&bundle_file, serde_json::to_string_pretty(&bundle)?)?;
    let root = demo.join("sim-root.pem");
    std::fs::write(&root, att.sim.root_pem())?;
    let verify_command = format!(
        "{} verify answer {} {} --trust-root {}",
        program(),
        bundle_file.display(),
        registry
            .pin_args(&asked.answer.statement.block_hash.0)
            .await?,
        root.display()
    );
    Ok(DemoAnswer {
        file,
        height,
        bundle_file,
        verify_command,
    })
}

/// How to run this very `phalanx` from the current directory: `phalanx` when that is
/// what the `PATH` finds, else its path (`target/debug/phalanx` after `make devnet`), so
/// a printed command runs as printed.
fn program() -> String {
    let Ok(me) = std::env::current_exe().and_then(std::fs::canonicalize) else {
        return "phalanx".into();
    };
    let on_path = std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths)
            .filter_map(|d| std::fs::canonicalize(d.join("phalanx")).ok())
            .next()
            .is_some_and(|found| found == me)
    });
    if on_path {
        return "phalanx".into();
    }
    let shown = std::env::current_dir()
        .ok()
        .and_then(|cwd| me.strip_prefix(cwd).ok().map(std::path::Path::to_path_buf))
        .unwrap_or_else(|| me.clone());
    shown.display().to_string()
}

/// What the pRuntime demo wrote.
struct DemoAnswer {
    file: std::path::PathBuf,
    height: u64,
    bundle_file: std::path::PathBuf,
    verify_command: String,
}

/// Runs the devnet in `dir`; with `once`, returns after the demo instead of serving.
pub async fn run(
    dir: &Path,
    once: bool,
    on: &DevChain,
    joining: &Joining,
) -> anyhow::Result<Summary> {
    let devnet = start_on(dir, on, joining).await?;
    println!("{}", serde_json::to_string_pretty(&devnet.summary)?);
    eprintln!(
        "phalanx devnet: the pRuntime's signed answer is in {}: its statement is signed by the worker's identity key ({}, registered on the registry with the quote the registry verified) and names salted SHA-256 commitments to plaintext_query and plaintext_answer (the salts, which only the user holds, are beside them); the exact bytes are in docs/ARCHITECTURE.md, \"The answer statement\"",
        devnet.summary.answer_file, devnet.summary.pruntime_identity
    );
    eprintln!(
        "phalanx devnet: verify that answer offline (trusting only the registry's pin and the simulated root):\n  {}",
        devnet.summary.verify_command
    );
    if !once {
        eprintln!("phalanx devnet: running; Ctrl-C (or SIGTERM) to stop");
        phalanx_types::shutdown::signal().await;
    }
    devnet.stop().await
}

/// A running devnet (see [`start`]).
pub struct Devnet {
    /// What it did.
    pub summary: Summary,
    /// Its pRuntime worker.
    pub worker: Arc<pruntime::worker::Worker>,
    stop: Stop,
    tasks: Vec<Task>,
    att_task: tokio::task::JoinHandle<Result<(), attestation_service::app::StartError>>,
    /// Its gatekeepers, each until stopped on its own ([`Devnet::stop_gatekeeper`]).
    gatekeepers: Vec<Option<Member>>,
    /// The registry (on anvil, the chain's process lives as long as this).
    _registry: DevRegistry,
}

impl std::fmt::Debug for Devnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Devnet")
            .field("summary", &self.summary)
            .finish_non_exhaustive()
    }
}

impl Devnet {
    /// Stops gatekeeper `index` (1..) alone and waits until it has stopped serving: its
    /// listeners closed, its store closed (a fault, for tests of what the others and the
    /// workers do without it). Stopping one already stopped does nothing.
    pub async fn stop_gatekeeper(&mut self, index: u16) -> anyhow::Result<()> {
        let slot = usize::from(index)
            .checked_sub(1)
            .and_then(|i| self.gatekeepers.get_mut(i))
            .with_context(|| format!("the devnet has no gatekeeper {index}"))?;
        if let Some(m) = slot.take() {
            let _ = m.stop.send(());
            m.task.await??;
        }
        Ok(())
    }

    /// Stops every part and waits for it.
    pub async fn stop(self) -> anyhow::Result<Summary> {
        let _ = self.stop.send(());
        for t in self
            .tasks
            .into_iter()
            .chain(self.gatekeepers.into_iter().flatten().map(|m| m.task))
        {
            t.await??;
        }
        self.att_task.await??;
        Ok(self.summary)
    }
}

/// Starts the devnet in `dir` on the embedded ledger and runs its demos; it serves
/// until [`Devnet::stop`].
pub async fn start(dir: &Path) -> anyhow::Result<Devnet> {
    start_on(dir, &DevChain::Ledger, &Joining::default()).await
}

/// [`start`] with the registry on `on` (`joining`: the account and registry on an EVM
/// node). On anvil the devnet runs in `<dir>/anvil`, emptied first (anvil's chain lives
/// in memory: nothing there could resume); on an EVM node in `<dir>/evm`, which a run
/// joining the registry a devnet deployed there resumes (a new registry empties it).
///
/// Long on purpose: the devnet's steps read top to bottom as they run.
pub async fn start_on(dir: &Path, on: &DevChain, joining: &Joining) -> anyhow::Result<Devnet> {
    let evm_dir;
    let dir = match on {
        DevChain::Ledger => dir,
        DevChain::Anvil | DevChain::Node(_) => {
            let fresh = matches!(on, DevChain::Anvil) || joining.registry.is_none();
            evm_dir = dir.join(match on {
                DevChain::Anvil => "anvil",
                _ => "evm",
            });
            if fresh && evm_dir.exists() {
                std::fs::remove_dir_all(&evm_dir)
                    .with_context(|| format!("emptying {}", evm_dir.display()))?;
            }
            &evm_dir
        }
    };
    let (stop, _) = tokio::sync::broadcast::channel::<()>(1);
    // 1. The attestation service.
    let mut att = attestation(dir, stopped(&stop)).await?;
    // 2. The registry.
    let mut registry = DevRegistry::start(dir, &att.sim, &stop, on, joining).await?;
    att.release_policy.contract_runtimes.push(
        pruntime_td(
            PRUNTIME_MR_TD,
            pruntime_td_config_id(registry.genesis, registry.confirmations()),
        )
        .tenant_id(),
    );
    // 3. The gatekeepers.
    let committee = start_gatekeepers(dir, &registry, &att, &stop).await?;
    // 4. Genesis, or resume.
    let genesis = genesis_or_resume(dir, &registry, &committee).await?;
    let (_, public) = published_key_set(&registry).await?;
    let infos: Vec<NodeInfo> = admin::cluster_status(&committee.urls)
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    let endpoints: Vec<Endpoint> = infos.iter().map(NodeInfo::endpoint).collect();
    // Every gatekeeper the registry lists shows valid TEE evidence (here: rooted in the
    // simulated PKI, which the devnet's policy accepts), as workers check before asking.
    let refused = phalanx_attested::evidence::check_gatekeepers(
        &registry.gatekeeper_set().await?,
        &att.jwks,
        &att.release_policy,
        &phalanx_attested::evidence::Checked::default(),
        Duration::from_secs(10),
    )
    .await;
    if !refused.is_empty() {
        let why: Vec<String> = refused.iter().map(ToString::to_string).collect();
        bail!("gatekeepers without valid TEE evidence: {}", why.join("; "));
    }

    // 5. The pRuntime worker, the contract, a command and a query.
    let (dev, ids) = start_pruntime(dir, &registry, &att, &stop).await?;
    let contract = ids.first().copied().context("no example deployed")?;
    let answered = pruntime_demo(dir, &registry, &att, &dev, contract).await?;
    let summary = Summary {
        attestation_rest: format!("http://{}", att.rest),
        attestation_grpc: format!("http://{}", att.grpc),
        gatekeepers: endpoints.iter().map(|e| e.url.clone()).collect(),
        nodes: endpoints
            .iter()
            .map(|e| e.url.as_str())
            .collect::<Vec<_>>()
            .join(","),
        gatekeeper_peers: infos.iter().map(|i| i.peer_url.clone()).collect(),
        admin_secret_file: committee.admin_file.display().to_string(),
        chain: registry.url.clone(),
        chain_genesis: hex::encode(registry.genesis),
        governance_key_file: registry.governance_file.display().to_string(),
        genesis,
        master_public_key: hex::encode(keyvault::dleq::point_bytes(&public.master_public_key())),
        pruntime: dev.url.clone(),
        pruntime_identity: hex::encode(dev.worker.identity_key()),
        pruntime_mr_enclave: hex::encode(pruntime_mr_enclave()?),
        contract: hex::encode(contract),
        examples: examples()?
            .iter()
            .zip(&ids)
            .map(|((name, _), id)| ((*name).to_owned(), hex::encode(id)))
            .collect(),
        answer_file: answered.file.display().to_string(),
        answer_height: answered.height,
        bundle_file: answered.bundle_file.display().to_string(),
        verify_command: answered.verify_command,
    };
    let mut tasks = dev.tasks;
    tasks.extend(registry.task.take());
    Ok(Devnet {
        summary,
        worker: dev.worker,
        stop,
        tasks,
        gatekeepers: committee.members,
        att_task: att.task,
        _registry: registry,
    })
}
