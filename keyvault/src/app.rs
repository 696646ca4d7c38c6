//! A gatekeeper process (feature `node`): its TOML config, its start-up, and its two
//! listeners. The `keyvault` binary (in `phalanx-cli`) and `phalanx devnet` both run
//! nodes through this module.
//!
//! The commented example is `keyvault/config/node.toml` (a test parses it).
//!
//! The data directory holds the sealing key file (`sealing.key`, 0600: the sim TEE's, or
//! the store's own outside any TEE; none under SGX), the rocksdb store
//! (`db/`) and, unless the config names one, the admin secret (`admin.secret`, 0600,
//! generated on first start). `keyvault init` opens the store once, creating the
//! identity key, and prints its public half for the CA to certify.

use crate::grpc::GatekeeperGrpc;
use crate::node::Node;
use crate::peer::{AdminAuth, AdminGrpc, RoundTiming, Rounds};
use crate::release::{Jwks, ReleasePolicy};
use crate::share::NodeIndex;
use crate::store::{NodeStore, SealingKey};
use crate::tls::PeerTls;
use phalanx_types::secret_file;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use zeroize::Zeroizing;

/// A gatekeeper's configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// This node's index in the committee (1..).
    pub index: u16,
    /// Where its state lives.
    pub data_dir: PathBuf,
    /// Listen addresses.
    #[serde(default)]
    pub listen: Listen,
    /// How peers reach the peer listener; default `https://<listen.peer>`.
    #[serde(default)]
    pub peer_url: Option<String>,
    /// TLS material for the peer listener.
    pub tls: TlsFiles,
    /// Whose attestation tokens to accept.
    pub attestation: AttestationTrust,
    /// The release policy.
    #[serde(default)]
    pub policy: ReleasePolicy,
    /// Round timing.
    #[serde(default)]
    pub rounds: RoundsConfig,
    /// The admin secret's file; default `<data_dir>/admin.secret` (created if absent).
    #[serde(default)]
    pub admin_secret_file: Option<PathBuf>,
    /// The registry this node follows (committee, master keys), if any.
    #[serde(default)]
    pub registry: Option<RegistryConfig>,
    /// The TEE this node runs in (`backend = "sim" | "sgx-gramine"`; see
    /// [`phalanx_tee::Settings`]). With it the node seals its store under the TEE's
    /// sealing key, attests at start with its identity key bound, and registers with
    /// that evidence. Without it the node runs outside any TEE (a key file seals the
    /// store, peers refuse it unless `dangerous_unattested_gatekeepers`), said loudly.
    #[serde(default)]
    pub tee: Option<phalanx_tee::Settings>,
}

/// Where the registry is: the embedded ledger (a light client pinned to its genesis) or
/// the Solidity registry (facts proven at its node's blocks, transactions from the
/// node's Ethereum account, whose key is derived from its sealed identity:
/// [`chain::evm::identity_account`]; `keyvault init` prints its address to fund).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    /// `ledger+http://HOST:PORT` (or plain `http://…`: the ledger node's gRPC URL), or
    /// `evm+http://HOST:PORT#0xADDRESS` (a JSON-RPC node and the registry contract):
    /// [`chain::registry_url`].
    pub url: String,
    /// The ledger: its genesis block hash (hex), the only chain accepted. Required for
    /// a ledger, refused for an EVM registry; empty is absent (so the environment can
    /// switch a ledger's config file to an EVM registry: `PHALANX_GK__registry__genesis=""`).
    #[serde(default)]
    pub genesis: Option<String>,
    /// An EVM registry: the DCAP root certificates (PEM files) this node checks other
    /// registrations' quotes against when it endorses them (the contract holds no
    /// roots). Default: Intel's SGX root, built in; any other root is logged loudly.
    #[serde(default)]
    pub evidence_roots: Vec<PathBuf>,
}

impl RegistryConfig {
    /// [`Self::genesis`], when not empty.
    pub fn genesis(&self) -> Option<&str> {
        self.genesis.as_deref().filter(|g| !g.trim().is_empty())
    }

    /// The DCAP roots [`Self::evidence_roots`] names (Intel's when none).
    pub fn roots(&self) -> Result<std::sync::Arc<chain::evidence::Roots>, AppError> {
        let roots = if self.evidence_roots.is_empty() {
            chain::evidence::Roots::new(chain::types::EvidenceRule::intel())
        } else {
            let pems = self
                .evidence_roots
                .iter()
                .map(|p| std::fs::read(p).map_err(io(p)))
                .collect::<Result<Vec<_>, _>>()?;
            chain::evidence::Roots::from_pems(&pems)
        }
        .map_err(|_| AppError::Config("registry.evidence_roots: not PEM root certificates"))?;
        if !roots.rule.is_intel() {
            tracing::warn!(
                roots = ?self.evidence_roots,
                "endorsing registrations whose quotes chain to a NON-INTEL root: for development only"
            );
        }
        Ok(std::sync::Arc::new(roots))
    }
}

/// Listen addresses.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listen {
    /// Key release and status (and admin, unless `admin` is set).
    pub client: String,
    /// Rounds between gatekeepers (mutual TLS).
    pub peer: String,
    /// When set, the admin service listens here only (with the whole client API —
    /// status, release — so `phalanx keyvault` commands take these URLs), and the
    /// client port serves no admin: a network policy can keep this port to the
    /// operators' hosts.
    #[serde(default)]
    pub admin: Option<String>,
}

impl Default for Listen {
    fn default() -> Self {
        Self {
            client: "127.0.0.1:7101".into(),
            peer: "127.0.0.1:7201".into(),
            admin: None,
        }
    }
}

/// TLS files.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// The cluster CA certificate (PEM).
    pub ca_cert: PathBuf,
    /// This node's certificate (PEM) for its identity key.
    pub cert: PathBuf,
}

/// The attestation service's signing keys: fetched from a URL or pinned in a file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttestationTrust {
    /// `GET` this JWKS at start-up.
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// Or read it from this file (pinned keys).
    #[serde(default)]
    pub jwks_file: Option<PathBuf>,
    /// Where this node attests itself (the service's REST base URL); required with
    /// `[tee]`.
    #[serde(default)]
    pub service_url: Option<String>,
    /// The attestation policy this node is appraised under; default `default`.
    #[serde(default)]
    pub policy: Option<String>,
}

/// Round timing, in milliseconds.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoundsConfig {
    /// Wait for one phase's messages this long before aborting.
    pub phase_timeout_ms: u64,
    /// Ask peers again this often.
    pub poll_interval_ms: u64,
}

impl Default for RoundsConfig {
    fn default() -> Self {
        let t = RoundTiming::default();
        Self {
            phase_timeout_ms: t.phase_timeout.as_millis() as u64,
            poll_interval_ms: t.poll_interval.as_millis() as u64,
        }
    }
}

/// Why a node could not start or stopped serving.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppError {
    /// The config is not TOML of the expected shape.
    #[error("config: {0}")]
    ConfigSyntax(#[from] toml::de::Error),
    /// The config parses but is not usable (the reason names the key).
    #[error("config: {0}")]
    Config(&'static str),
    /// `jwks_url` is neither https nor loopback http.
    #[error("config: jwks_url {0:?} must be https (plain http only to a loopback address)")]
    InsecureJwksUrl(String),
    /// A file or directory could not be read, created or restricted.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// What the file system said.
        #[source]
        source: std::io::Error,
    },
    /// A secret file (the admin secret) could not be made or read.
    #[error(transparent)]
    Secret(#[from] secret_file::SecretFileError),
    /// The sealed store could not be opened.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The node's state could not be loaded.
    #[error(transparent)]
    Node(#[from] crate::node::NodeError),
    /// The node's identity or share does not fit.
    #[error(transparent)]
    Threshold(#[from] phalanx_threshold::Error),
    /// The peer TLS material is unusable.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// No randomness for the admin authenticator.
    #[error("no randomness")]
    NoRandomness,
    /// A listener failed while serving.
    #[error("{listener} listener: {source}")]
    Serve {
        /// `client` or `peer`.
        listener: &'static str,
        /// tonic's reason.
        #[source]
        source: tonic::transport::Error,
    },
    /// A listener's task panicked or was cancelled.
    #[error("{0} listener task failed")]
    Task(&'static str),
    /// The TEE failed.
    #[error(transparent)]
    Tee(#[from] phalanx_tee::TeeError),
    /// The node could not attest itself.
    #[error(transparent)]
    Attest(#[from] phalanx_attested::attest::AttestError),
    /// The kept evidence could not be written.
    #[error(transparent)]
    Seal(#[from] phalanx_tee::seal::SealError),
    /// An environment override does not apply (the message names the variable).
    #[error("{0}")]
    Env(String),
    /// The registry refused or failed the node's registration.
    #[error("registering the node: {0}")]
    Register(#[from] chain::registry::RegistryError),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> AppError + '_ {
    |source| AppError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Prefix of a gatekeeper's environment overrides (`PHALANX_GK__registry__genesis=…`;
/// the rule is [`phalanx_types::env_config`]'s).
pub const ENV_PREFIX: &str = "PHALANX_GK__";

impl NodeConfig {
    /// Reads `~/…` paths against the user's home ([`phalanx_types::home::expand`]).
    /// Refused in a TEE: `$HOME` is the host's to set, and would move what the
    /// measured configuration names.
    fn expand_home(&mut self, in_tee: bool) -> Result<(), AppError> {
        let mut paths: Vec<&mut PathBuf> = vec![
            &mut self.data_dir,
            &mut self.tls.ca_cert,
            &mut self.tls.cert,
        ];
        paths.extend(self.attestation.jwks_file.as_mut());
        paths.extend(self.admin_secret_file.as_mut());
        if let Some(r) = self.registry.as_mut() {
            paths.extend(r.evidence_roots.iter_mut());
        }
        if !paths.iter().any(|p| p.starts_with("~")) {
            return Ok(());
        }
        if in_tee {
            return Err(AppError::Config(
                "a path under ~ is refused in a TEE: the home directory is the host's to choose; write it in full",
            ));
        }
        for p in paths {
            *p = phalanx_types::home::expand(p);
        }
        Ok(())
    }

    /// Parses a TOML config.
    pub fn from_toml(text: &str) -> Result<Self, AppError> {
        Self::from_toml_with_env(text, [])
    }

    /// Parses a TOML config, then applies the overrides among `env` named
    /// [`ENV_PREFIX`]`<section>__<field>` (e.g. the registry's genesis, known only once
    /// the ledger has started).
    pub fn from_toml_with_env(
        text: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, AppError> {
        let mut table: toml::Table = toml::from_str(text)?;
        // Whether the file itself puts the node in a TEE: decided before any override,
        // so an override cannot switch this check off.
        let file_in_tee = table
            .get("tee")
            .and_then(|t| t.get("backend"))
            .and_then(toml::Value::as_str)
            .is_some_and(|b| b != "sim");
        let env: Vec<(String, String)> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with(ENV_PREFIX))
            .collect();
        let overridden = !env.is_empty();
        phalanx_types::env_config::apply(&mut table, ENV_PREFIX, env)
            .map_err(|e| AppError::Env(e.to_string()))?;
        let mut c = Self::deserialize(table)?;
        // In an enclave the config is measured (the Gramine manifest's trusted files):
        // an override from the host's environment would change it unmeasured (NM6).
        let in_tee = c
            .tee
            .as_ref()
            .is_some_and(|t| t.backend != phalanx_tee::Backend::Sim);
        if in_tee && c.attestation.jwks_url.is_some() {
            return Err(AppError::Config(
                "[attestation] jwks_url is refused in a TEE: the attestation service's keys are part of the measured configuration (jwks_file, a trusted file)",
            ));
        }
        if overridden && (file_in_tee || in_tee) {
            return Err(AppError::Config(
                "environment overrides (PHALANX_GK__…) are refused in a TEE: the configuration is measured; change the file and the measurement",
            ));
        }
        c.expand_home(in_tee || file_in_tee)?;
        NodeIndex::new(c.index).map_err(|_| AppError::Config("index must be 1 or more"))?;
        if c.attestation.jwks_url.is_some() == c.attestation.jwks_file.is_some() {
            return Err(AppError::Config(
                "[attestation] needs exactly one of jwks_url, jwks_file",
            ));
        }
        if let Some(url) = &c.attestation.jwks_url
            && !jwks_url_ok(url)
        {
            return Err(AppError::InsecureJwksUrl(url.clone()));
        }
        if c.tee.is_some() && c.attestation.service_url.is_none() {
            return Err(AppError::Config(
                "[tee] needs [attestation] service_url (where the node attests)",
            ));
        }
        let real_tee = c
            .tee
            .as_ref()
            .is_some_and(|t| t.backend != phalanx_tee::Backend::Sim);
        if real_tee && c.policy.dangerous_unattested_gatekeepers {
            return Err(AppError::Config(
                "[policy] dangerous_unattested_gatekeepers is refused outside the simulated TEE",
            ));
        }
        #[cfg(not(feature = "sim"))]
        if c.policy.trust_roots.iter().any(|r| r == "sim") {
            return Err(AppError::Config(
                "[policy] trust_roots \"sim\": this build has no simulated TEE (production builds leave it out; the devnet, tests and the dev image have it), so it trusts no simulated root",
            ));
        }
        if c.tee.as_ref().map(|t| t.backend) == Some(phalanx_tee::Backend::Tdx) {
            return Err(AppError::Config(
                "[tee] backend tdx: TDX has no sealing key, and a gatekeeper cannot derive one from its own committee; run gatekeepers under sgx-gramine (or sim for development)",
            ));
        }
        Ok(c)
    }

    /// The URL peers use.
    pub fn peer_url(&self) -> String {
        self.peer_url
            .clone()
            .unwrap_or_else(|| format!("https://{}", self.listen.peer))
    }
}

/// Whether the attestation service's keys may be fetched from `url`: over https, or
/// over plain http only from this machine (a JWKS read off the network in the clear
/// lets anyone on the path choose which tokens the gatekeeper trusts).
pub fn jwks_url_ok(url: &str) -> bool {
    if url.starts_with("https://") {
        return true;
    }
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

pub use secret_file::MIN_ADMIN_SECRET;

/// Reads the admin secret at `path`, creating a random one (0600) if absent.
pub fn admin_secret(path: &Path) -> Result<Zeroizing<String>, AppError> {
    Ok(secret_file::admin_secret(path, |b| {
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), b).is_ok()
    })?)
}

/// Reads an existing admin secret (surrounding whitespace trimmed), refusing one shorter
/// than [`MIN_ADMIN_SECRET`]: an empty or short secret file must not open the admin
/// service. Used by the node and by the administrator's tools.
pub fn read_admin_secret(path: &Path) -> Result<Zeroizing<String>, AppError> {
    Ok(secret_file::read_text(path, MIN_ADMIN_SECRET)?)
}

/// An opened gatekeeper, not yet serving.
#[derive(Debug)]
pub struct NodeApp {
    /// The node.
    pub node: Arc<Node>,
    config: NodeConfig,
    hooks: Option<Arc<dyn crate::peer::RoundHooks>>,
    tee: Option<Arc<dyn phalanx_tee::Tee>>,
    admin: Option<tokio::net::TcpListener>,
}

impl std::fmt::Debug for dyn crate::peer::RoundHooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RoundHooks")
    }
}

/// What a node needs to attest and register itself, apart from the node's servers: a
/// renewal task keeps one ([`NodeApp::registrar`]) and calls
/// [`Registrar::attest_and_register`] again before its registration expires.
#[derive(Clone)]
pub struct Registrar {
    node: Arc<Node>,
    config: NodeConfig,
    tee: Option<Arc<dyn phalanx_tee::Tee>>,
}

impl std::fmt::Debug for Registrar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registrar").finish_non_exhaustive()
    }
}

impl Registrar {
    /// The node's identity key: its account on the embedded ledger.
    pub fn identity(&self) -> p256::ecdsa::SigningKey {
        self.node.identity().signing_key().clone()
    }

    /// Attests the node in its TEE and registers it with that evidence: the quote binds
    /// its identity key (runtime data `{identity key, no HPKE key}`), the token is kept in
    /// `<data_dir>/evidence.token` and served on `Status`, and the registry (if given)
    /// lists the node with measurement = its tenant and attestation hash = SHA-256 of the
    /// token. A restart whose kept token is the one the registry lists, for the same
    /// measurement, reuses it and does not register again while that registration is
    /// younger than half the registry's evidence lifetime; past it the node attests and
    /// registers again (the registry refuses expired evidence). Outside any TEE: nothing
    /// (the node serves no evidence).
    pub async fn attest_and_register<R: chain::registry::Registry + ?Sized>(
        &self,
        registry: Option<(&R, &R::Account)>,
    ) -> Result<(), AppError> {
        use sha2::Digest as _;
        let Some(tee) = &self.tee else {
            return Ok(());
        };
        let c = &self.config;
        let identity = self.node.identity();
        let me = chain::types::public_key(&identity.verifying_key());
        let kept_path = c.data_dir.join("evidence.token");
        let listed = match registry {
            Some((r, _)) => r.worker(&me).await?,
            None => None,
        };
        let lifetime = match registry {
            Some((r, _)) => r.max_evidence_age().await?,
            None => u64::MAX,
        };
        if let (Some(w), Ok(kept)) = (&listed, std::fs::read_to_string(&kept_path))
            && w.attestation_hash == <[u8; 32]>::from(sha2::Sha256::digest(kept.as_bytes()))
            && !chain::types::renewal_due(lifetime, w.registered_at, phalanx_types::unix_now())
        {
            tracing::info!("already registered with this evidence");
            self.node.set_evidence(kept);
            return Ok(());
        }
        let registry_id = match registry {
            Some((r, _)) => r.chain_id().await?,
            None => [0; 32],
        };
        let runtime_data = crate::release::WorkerRuntimeData {
            identity_key: me.clone(),
            hpke_public_key: Vec::new(),
            registry: registry_id,
        }
        .encode();
        let service = phalanx_attested::attest::Service {
            url: c.attestation.service_url.clone().unwrap_or_default(),
            policy: c
                .attestation
                .policy
                .clone()
                .unwrap_or_else(|| "default".into()),
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|_| AppError::Config("no HTTP client"))?;
        let attested =
            phalanx_attested::attest::attest(&http, &service, tee.as_ref(), &runtime_data).await?;
        phalanx_tee::seal::write_atomic(&kept_path, attested.token.as_bytes())?;
        if let Some((r, account)) = registry {
            let registration = chain::types::Registration {
                identity_key: me,
                hpke_key: Vec::new(),
                measurement: attested.tenant.as_bytes().to_vec(),
                attestation_hash: sha2::Sha256::digest(attested.token.as_bytes()).into(),
                evidence: attested
                    .evidence
                    .registry_evidence()
                    .map_err(|_| AppError::Config("the attestation's evidence does not decode"))?,
            };
            let height = r.register_worker(account, &registration).await?;
            tracing::info!(height, tenant = %attested.tenant, "attested and registered on the registry");
        } else {
            tracing::info!(tenant = %attested.tenant, "attested (no registry to register on)");
        }
        self.node.set_evidence(attested.token);
        Ok(())
    }
}

impl NodeApp {
    /// Opens the node's store (creating data dir, sealing key and identity on first
    /// start) with `jwks` as the attestation service's keys.
    pub fn open(config: NodeConfig, jwks: Jwks) -> Result<Self, AppError> {
        let dir = &config.data_dir;
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .map_err(io(dir))?;
        }
        let (key, tee) = match &config.tee {
            Some(settings) => {
                let tee = settings.open(&dir.join("sealing.key"))?;
                if tee.simulated() {
                    tracing::warn!(
                        "gatekeeper runs on the SIMULATED TEE: its quotes chain to a test root, not Intel's, and its sealing key is a file; for development only"
                    );
                }
                let secret = tee.sealing_key()?.ok_or(AppError::Config(
                    "the TEE has no sealing key for the gatekeeper's store",
                ))?;
                (SealingKey::derive(&secret[..])?, Some(tee))
            }
            None => {
                tracing::warn!(
                    "gatekeeper runs OUTSIDE ANY TEE: a key file next to the store seals it and peers that check evidence refuse it; for development only"
                );
                (SealingKey::load_or_create(&dir.join("sealing.key"))?, None)
            }
        };
        let store = NodeStore::open(&dir.join("db"), key)?;
        let index = NodeIndex::new(config.index)?;
        let node = Node::open(store, index, jwks, config.policy.clone(), &mut rand::rng())?;
        if config.policy.trust_roots.iter().any(|r| r != "intel") {
            tracing::warn!(
                roots = ?config.policy.trust_roots,
                "releasing keys to workers attested under a NON-INTEL trust root: for development only"
            );
        }
        Ok(Self {
            node: Arc::new(node),
            config,
            hooks: None,
            tee,
            admin: None,
        })
    }

    /// Serves the admin service on `admin` alone (with the client API), not on the
    /// client port.
    pub fn with_admin_listener(mut self, admin: tokio::net::TcpListener) -> Self {
        self.admin = Some(admin);
        self
    }

    /// Consults `hooks` (the registry) before joining rounds and after committing.
    pub fn with_hooks(mut self, hooks: Arc<dyn crate::peer::RoundHooks>) -> Self {
        self.hooks = Some(hooks);
        self
    }

    /// The TEE it runs in, if any.
    pub fn tee(&self) -> Option<&Arc<dyn phalanx_tee::Tee>> {
        self.tee.as_ref()
    }

    /// What attests and registers this node (for a renewal task).
    pub fn registrar(&self) -> Registrar {
        Registrar {
            node: self.node.clone(),
            config: self.config.clone(),
            tee: self.tee.clone(),
        }
    }

    /// [`Registrar::attest_and_register`] for this node.
    pub async fn attest_and_register<R: chain::registry::Registry + ?Sized>(
        &self,
        registry: Option<(&R, &R::Account)>,
    ) -> Result<(), AppError> {
        self.registrar().attest_and_register(registry).await
    }

    /// The config it was opened with.
    pub fn config(&self) -> &NodeConfig {
        &self.config
    }

    /// The identity key (SEC1 compressed, hex), for the CA.
    pub fn identity_hex(&self) -> String {
        self.node
            .identity()
            .verifying_key()
            .to_sec1_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Serves both listeners until `shutdown` resolves. Resumes a prepared round.
    pub async fn serve(
        self,
        client: tokio::net::TcpListener,
        peer: tokio::net::TcpListener,
        now: fn() -> i64,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), AppError> {
        let (rounds, peer_tls, auth) = self.rounds(now)?;
        let (stop_tx, _) = tokio::sync::broadcast::channel::<()>(1);
        let stopped = |mut rx: tokio::sync::broadcast::Receiver<()>| async move {
            let _ = rx.recv().await;
        };
        let gatekeeper = GatekeeperGrpc::new(self.node.clone(), now)
            .with_rounds(rounds.clone())
            .with_hooks(self.hooks.clone());
        let admin = AdminGrpc::new(rounds.clone(), auth);
        let mut tasks = Vec::new();
        let client_admin = match self.admin {
            Some(listener) => {
                tasks.push((
                    "admin",
                    tokio::spawn(crate::grpc::serve_client(
                        listener,
                        gatekeeper.clone(),
                        Some(admin),
                        stopped(stop_tx.subscribe()),
                    )),
                ));
                None
            }
            None => Some(admin),
        };
        tasks.push((
            "client",
            tokio::spawn(crate::grpc::serve_client(
                client,
                gatekeeper,
                client_admin,
                stopped(stop_tx.subscribe()),
            )),
        ));
        tasks.push((
            "peer",
            tokio::spawn(crate::peer::serve_peers(
                peer,
                rounds,
                peer_tls,
                stopped(stop_tx.subscribe()),
            )),
        ));
        shutdown.await;
        let _ = stop_tx.send(());
        for (name, t) in tasks {
            t.await
                .map_err(|_| AppError::Task(name))?
                .map_err(|source| AppError::Serve {
                    listener: name,
                    source,
                })?;
        }
        Ok(())
    }

    /// The node's rounds (resumed), its peer listener's TLS 1.3 and its admin secret:
    /// what [`Self::serve`] serves.
    fn rounds(
        &self,
        now: fn() -> i64,
    ) -> Result<(Arc<Rounds>, Arc<rustls::ServerConfig>, AdminAuth), AppError> {
        let c = &self.config;
        let read = |p: &Path| std::fs::read_to_string(p).map_err(io(p));
        let tls = PeerTls::new(
            read(&c.tls.ca_cert)?,
            read(&c.tls.cert)?,
            self.node.identity(),
        )?;
        let peer_tls = tls.server_tls13()?;
        let secret_path = c
            .admin_secret_file
            .clone()
            .unwrap_or_else(|| c.data_dir.join("admin.secret"));
        let auth =
            AdminAuth::new(&admin_secret(&secret_path)?).map_err(|_| AppError::NoRandomness)?;
        let timing = RoundTiming {
            phase_timeout: Duration::from_millis(c.rounds.phase_timeout_ms),
            poll_interval: Duration::from_millis(c.rounds.poll_interval_ms.max(10)),
        };
        let rounds = Rounds::new(
            self.node.clone(),
            c.peer_url(),
            tls,
            timing,
            now,
            self.hooks.clone(),
        );
        rounds.resume()?;
        Ok((rounds, peer_tls, auth))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn home_paths_expand_outside_a_tee_and_are_refused_in_one() {
        let text = "index = 1\ndata_dir = \"~/.phalanx/gk\"\n[tls]\nca_cert = \"ca.pem\"\n\
                    cert = \"~/c.pem\"\n[attestation]\njwks_file = \"j.json\"\n\
                    service_url = \"http://127.0.0.1:8080\"\n";
        let c = NodeConfig::from_toml(text).unwrap();
        let home = std::env::var_os("HOME").unwrap();
        assert_eq!(c.data_dir, Path::new(&home).join(".phalanx/gk"));
        assert_eq!(c.tls.cert, Path::new(&home).join("c.pem"));
        assert_eq!(
            c.tls.ca_cert,
            Path::new("ca.pem"),
            "relative paths stay as written"
        );
        let in_tee = NodeConfig::from_toml(&format!("{text}[tee]\nbackend = \"sgx-gramine\"\n"));
        assert!(matches!(in_tee, Err(AppError::Config(m)) if m.contains("under ~")));
    }

    #[test]
    fn configs_parse_strictly() {
        let base = "index = 2\ndata_dir = \"d\"\n[tls]\nca_cert = \"ca.pem\"\ncert = \"c.pem\"\n";
        let c = NodeConfig::from_toml(&format!("{base}[attestation]\njwks_file = \"j.json\"\n"))
            .unwrap();
        assert_eq!(c.peer_url(), "https://127.0.0.1:7201");
        assert_eq!(c.policy, ReleasePolicy::default());
        // Neither or both JWKS sources, index 0, an unknown field.
        assert!(NodeConfig::from_toml(&format!("{base}[attestation]\n")).is_err());
        assert!(
            NodeConfig::from_toml(&format!(
                "{base}[attestation]\njwks_file = \"j\"\njwks_url = \"http://x\"\n"
            ))
            .is_err()
        );
        assert!(
            NodeConfig::from_toml(&format!(
                "{}[attestation]\njwks_file = \"j\"\n",
                base.replace("index = 2", "index = 0")
            ))
            .is_err()
        );
        assert!(
            NodeConfig::from_toml(&format!(
                "{base}colour = 1\n[attestation]\njwks_file = \"j\"\n"
            ))
            .is_err()
        );
        // [tee]: where to attest is required; TDX (no sealing key) is refused by name.
        let att = "[attestation]\njwks_file = \"j\"\n";
        let with = |tee: &str, extra: &str| {
            NodeConfig::from_toml(&format!("{base}{att}{extra}[tee]\nbackend = \"{tee}\"\n"))
        };
        let svc = "service_url = \"http://127.0.0.1:8080\"\n";
        let att_svc = format!("{att}{svc}");
        let c = NodeConfig::from_toml(&format!(
            "{base}{att_svc}[tee]\nbackend = \"sgx-gramine\"\n"
        ))
        .unwrap();
        assert_eq!(c.tee.unwrap().backend, phalanx_tee::Backend::SgxGramine);
        assert!(matches!(with("sim", ""), Err(AppError::Config(m)) if m.contains("service_url")));
        let tdx = NodeConfig::from_toml(&format!("{base}{att_svc}[tee]\nbackend = \"tdx\"\n"));
        assert!(matches!(tdx, Err(AppError::Config(m)) if m.contains("no sealing key")));
        assert!(with("sev", "").is_err());
        // A dangerous_ option is refused on a real TEE (allowed, loudly, on the sim).
        let dangerous = format!(
            "{base}{att_svc}[policy]\ndangerous_unattested_gatekeepers = true\n[tee]\nbackend = \"sgx-gramine\"\n"
        );
        assert!(
            matches!(NodeConfig::from_toml(&dangerous), Err(AppError::Config(m)) if m.contains("simulated TEE"))
        );
        // NM6: in an enclave the config is measured; the host's environment cannot
        // override it (a development node on the sim may be overridden).
        let issuer = || {
            [(
                "PHALANX_GK__policy__issuer".to_owned(),
                "https://evil".to_owned(),
            )]
        };
        let gramine = format!("{base}{att_svc}[tee]\nbackend = \"sgx-gramine\"\n");
        assert!(matches!(
            NodeConfig::from_toml_with_env(&gramine, issuer()),
            Err(AppError::Config(m)) if m.contains("measured")
        ));
        let sim = format!("{base}{att_svc}[tee]\nbackend = \"sim\"\nsim_pki = \"p\"\n");
        let c = NodeConfig::from_toml_with_env(&sim, issuer()).unwrap();
        assert_eq!(c.policy.issuer.as_deref(), Some("https://evil"));
        // Nor can an override take the node out of the TEE to get past that.
        let out = [("PHALANX_GK__tee__backend".to_owned(), "sim".to_owned())];
        assert!(matches!(
            NodeConfig::from_toml_with_env(&gramine, out),
            Err(AppError::Config(m)) if m.contains("measured")
        ));
        // In a TEE the JWKS is a (measured) file, never a URL.
        let by_url = format!(
            "{base}[attestation]\njwks_url = \"https://a/.well-known/jwks.json\"\nservice_url = \"http://s\"\n[tee]\nbackend = \"sgx-gramine\"\n"
        );
        assert!(matches!(
            NodeConfig::from_toml(&by_url),
            Err(AppError::Config(m)) if m.contains("jwks_url")
        ));
        // Variables without the prefix are no overrides.
        NodeConfig::from_toml_with_env(&gramine, [("HOME".to_owned(), "/".to_owned())]).unwrap();
    }

    /// Item 12: under SGX (Gramine) the store is sealed with the enclave's sealing key,
    /// no key file is written next to it, and another enclave's key does not open it.
    #[test]
    fn a_gramine_gatekeeper_seals_its_store_with_the_enclave_key() {
        let dir = tempfile::tempdir().unwrap();
        let opened = std::cell::Cell::new(0);
        let open = |key: [u8; 16]| {
            opened.set(opened.get() + 1);
            let root = dir.path().join(format!("attestation-{}", opened.get()));
            let _fake = phalanx_tee::fake::gramine(&root, "dcap", key, |_| Vec::new()).unwrap();
            let config = NodeConfig::from_toml(&format!(
                "index = 1\ndata_dir = \"{}\"\n[tls]\nca_cert = \"ca.pem\"\ncert = \"c.pem\"\n\
                 [attestation]\njwks_file = \"j\"\nservice_url = \"http://127.0.0.1:1\"\n\
                 [tee]\nbackend = \"sgx-gramine\"\nroot = \"{}\"\n",
                dir.path().join("node").display(),
                root.display()
            ))
            .unwrap();
            NodeApp::open(config, Jwks::default()).map(|app| app.identity_hex())
        };
        let first = open([1; 16]).unwrap();
        assert_eq!(
            open([1; 16]).unwrap(),
            first,
            "the same enclave reopens its store"
        );
        assert!(!dir.path().join("node/sealing.key").exists());
        let other = open([2; 16]);
        assert!(
            matches!(&other, Err(e) if e.to_string().contains("meta/identity")),
            "another enclave's key opened the store: {other:?}"
        );
    }

    #[test]
    fn the_example_config_parses_with_secure_defaults() {
        let c = NodeConfig::from_toml(include_str!("../config/node.toml")).unwrap();
        assert_eq!(c.index, 1);
        assert_eq!(c.policy.trust_roots, vec!["intel".to_owned()]);
        assert!(!c.policy.allow_warning);
        assert!(!c.policy.dangerous_unattested_gatekeepers);
        assert_eq!(c.policy.attestation_policies, vec!["app".to_owned()]);
        // L4: the attestation service serves its keys at the RFC 8615 well-known path.
        assert!(
            c.attestation
                .jwks_url
                .as_deref()
                .is_some_and(|u| u.ends_with("/.well-known/jwks.json"))
        );
    }

    /// The example's commented EVM registry parses; its roots default to Intel's, and a
    /// file that holds no certificate is refused by name.
    #[test]
    fn an_evm_registry_config_parses_with_intel_roots_by_default() {
        let example = include_str!("../config/node.toml");
        let evm: String = example
            .lines()
            .skip_while(|l| !l.contains("Or the Solidity registry"))
            .filter_map(|l| l.strip_prefix("# "))
            .filter(|l| l.starts_with('[') || l.contains(" = "))
            .collect::<Vec<_>>()
            .join("\n")
            .replace("<40 hex: the contract's address>", &"ab".repeat(20));
        let c = NodeConfig::from_toml(&format!("{example}\n{evm}\n")).unwrap();
        let r = c.registry.unwrap();
        assert!(r.url.parse::<chain::registry_url::RegistryUrl>().is_ok());
        assert!(r.genesis.is_none());
        assert!(r.roots().unwrap().rule.is_intel());
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("root.pem");
        std::fs::write(&junk, "not a certificate").unwrap();
        let bad = RegistryConfig {
            evidence_roots: vec![junk],
            ..r
        };
        assert!(
            bad.roots()
                .unwrap_err()
                .to_string()
                .contains("evidence_roots")
        );
    }

    #[test]
    fn attack_l4_jwks_over_plain_http_only_on_loopback() {
        for ok in [
            "https://as.example/.well-known/jwks.json",
            "http://127.0.0.1:8080/.well-known/jwks.json",
            "http://localhost:8080/x",
            "http://[::1]:8080/x",
        ] {
            assert!(jwks_url_ok(ok), "{ok}");
        }
        for bad in [
            "http://as.example/.well-known/jwks.json",
            "http://10.0.0.1:8080/x",
            "http://127.0.0.1.evil.example/x",
            "http://localhost.evil.example/x",
            "ftp://127.0.0.1/x",
            "127.0.0.1:8080",
        ] {
            assert!(!jwks_url_ok(bad), "{bad}");
        }
    }

    #[test]
    fn attack_l6_short_or_empty_admin_secrets_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        for (name, content) in [
            ("empty", ""),
            ("blank", "  \n"),
            ("short", "0123456789abcde"),
        ] {
            let p = dir.path().join(name);
            std::fs::write(&p, content).unwrap();
            assert!(admin_secret(&p).is_err(), "{name}");
            assert!(read_admin_secret(&p).is_err(), "{name}");
        }
        let p = dir.path().join("ok");
        std::fs::write(&p, "0123456789abcdef\n").unwrap();
        assert_eq!(*read_admin_secret(&p).unwrap(), "0123456789abcdef");
    }

    #[test]
    fn the_admin_secret_is_created_once_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("admin.secret");
        let a = admin_secret(&p).unwrap();
        assert_eq!(a.len(), 64);
        assert_eq!(*admin_secret(&p).unwrap(), *a);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
    }
}
