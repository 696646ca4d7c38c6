//! The worker: boot (sealed identity, attestation, registration), contract keys from the
//! gatekeepers, following each served contract's command feed (verified pages of its
//! commands with proofs against the registry's headers — the ledger's signed ones, or an
//! EVM chain's linked from the contract's last position: [`Worker::step`]), and
//! answering queries with signed statements.
//!
//! Boot, in order: the sealing key (the TEE's, or on TDX one derived from the
//! gatekeepers under the worker's own tenant); the identity (a P-256 signing key and an
//! HPKE key, made inside the TEE and sealed; a restart unseals the same ones); a quote
//! whose report data binds both keys and a fresh nonce; the attestation token; the
//! registration on the registry (skipped when the registry already lists this identity
//! with the same HPKE key and measurement); then for each served contract its code from
//! the registry, its keys from `t` gatekeepers (every partial checked), and the public
//! keys published on the registry, or compared with the published ones: a worker that
//! derives other keys than the registry lists refuses to serve and says so.

use crate::executor::Executor;
use crate::protocol::{Answer, ContractKeys, ProtocolError, Purpose, Query, unb64};
use crate::registry::{EvmFollow, WorkerRegistry};
use crate::seal::{SealError, SealingKey, read_optional, write_atomic};
use crate::tee::{Tee, TeeError};
use chain::facts::Fact;
use chain::grpc::LightClient;
use chain::registry::RegistryError;
use chain::types::public_key;
use chain::view::GatekeeperSet;
use p256::ecdsa::SigningKey;
use phalanx_attested::attest::{AttestError, Attested, Service};
use phalanx_attested::evidence::{Checked, check_gatekeepers};
use phalanx_contract::{ContractError, Limits, Runtime};
use phalanx_release::client::{Endpoint, FetchError, fetch_key};
use phalanx_release::envelope::RecipientKey;
use phalanx_release::gatekeeper::ReleaseRequest;
use phalanx_release::release::{WorkerRuntimeData, contract_key_id};
use phalanx_threshold::derive::KeyId;
use phalanx_types::Epoch;
use phalanx_types::codec::Codec as _;
use sha2::Digest as _;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use zeroize::Zeroizing;

/// What a worker needs to know.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Where the sealed identity and checkpoints live.
    pub data_dir: PathBuf,
    /// The attestation service's REST base URL (`http://host:port`).
    pub attestation_url: String,
    /// The attestation policy to be appraised under.
    pub attestation_policy: String,
    /// The registry ([`chain::registry_url`]): the ledger node's gRPC URL
    /// (`ledger+http://…` or plain `http://…`), or `evm+http://NODE#0xADDRESS`.
    pub registry_url: String,
    /// The registry's pin: the ledger's genesis block hash, or the Solidity registry's
    /// id ([`chain::evm_proof::registry_id`] of its chain id and address).
    pub genesis: [u8; 32],
    /// On a Solidity registry: blocks a command's block must be below the node's newest
    /// before it runs (a reorganisation shallower than this changes nothing applied; a
    /// deeper one stops the worker). Covered by the trust digest.
    pub confirmations: Option<u64>,
    /// The contracts to serve.
    pub contracts: Vec<[u8; 32]>,
    /// The URL users reach this worker at, announced on the registry for each contract
    /// served (`Tx::Serve`); none: not announced (users name the worker themselves).
    /// Only where to knock, so not part of the trust digest.
    pub public_url: Option<String>,
    /// How often to ask the registry whether there are new commands.
    pub poll: Duration,
    /// Seal a checkpoint every this many commands run (and at shutdown, and when a new
    /// epoch's keys arrive).
    pub checkpoint_every: u64,
    /// Least time between two of this worker's commitments to a contract's state on
    /// the registry (each is a transaction; one per checkpoint at most).
    pub commit_every: Duration,
    /// Where a contract's committed checkpoint may be fetched when the registry holds a
    /// commitment newer than the local checkpoint: peer workers' base URLs
    /// (`http://host:port`, their `GET /v1/checkpoint/{id}`) or files and directories
    /// (any storage). Not trusted: a fetched checkpoint is taken only when it opens under
    /// the contract's keys and is the one committed on the registry (the local one,
    /// sealed by this worker, is taken when it opens).
    pub checkpoint_sources: Vec<String>,
    /// Contract limits.
    pub limits: Limits,
    /// The trust roots a gatekeeper's evidence may chain to (`intel` by default).
    pub gatekeeper_trust_roots: Vec<String>,
    /// The attestation policies the gatekeepers' own tokens must have been appraised
    /// under (`gatekeeper` by default).
    pub gatekeeper_policies: Vec<String>,
    /// Ask gatekeepers for keys without checking that they run in a TEE (a cluster
    /// outside any TEE): dangerous, logged loudly.
    pub dangerous_unattested_gatekeepers: bool,
    /// The roots the worker verifies its own quotes to (its MRCONFIGID check on TDX):
    /// Intel's; a development run that accepts the simulated root (`sim` among
    /// `gatekeeper_trust_roots`, which the trust digest covers) adds that root.
    pub quote_anchors: phalanx_dcap::TrustAnchors,
    /// The MRCONFIGID the TD was launched with when its configuration came in a
    /// Confidential Containers initdata document ([`crate::initdata`]: the document's
    /// digest); otherwise the trust digest's ([`Self::mr_config_id`]).
    pub initdata_config_id: Option<[u8; 48]>,
}

impl WorkerConfig {
    /// The digest of everything this worker's trust rests on — the registry it follows
    /// (pinned genesis: the registry itself verifies every registration's quote, so the
    /// gatekeepers and keys it lists follow from it), the attestation policy it asks to
    /// be appraised under, the roots it accepts for gatekeepers' evidence, and whether
    /// it skips that check, and the attestation policies their tokens must name:
    ///
    /// ```text
    /// SHA-256("phalanx/v1/worker-config" ‖ genesis (32) ‖ u32 len ‖ policy
    ///          ‖ u32 count ‖ (u32 len ‖ root)… ‖ u32 count ‖ (u32 len ‖ gatekeeper policy)…
    ///          ‖ dangerous (1) [‖ confirmations (u64), on a Solidity registry])
    /// ```
    ///
    /// On TDX the host binds it as MRCONFIGID (`digest ‖ 16 zero bytes`, see
    /// [`Self::mr_config_id`]) when it launches the TD, so it is part of the TD's tenant:
    /// a TD started with another registry or policy is another tenant, which no
    /// gatekeeper serves, and the worker refuses to start when its configuration is not
    /// the bound one. Addresses (URLs, ports, the data directory) are not trust: a host
    /// that moves them can only deny service.
    pub fn trust_digest(&self) -> [u8; 32] {
        use sha2::Digest as _;
        let mut h = sha2::Sha256::new();
        h.update(phalanx_types::tag::WORKER_CONFIG);
        h.update(self.genesis);
        let part = |h: &mut sha2::Sha256, b: &[u8]| {
            h.update((b.len() as u32).to_be_bytes());
            h.update(b);
        };
        part(&mut h, self.attestation_policy.as_bytes());
        for list in [&self.gatekeeper_trust_roots, &self.gatekeeper_policies] {
            h.update((list.len() as u32).to_be_bytes());
            for r in list {
                part(&mut h, r.as_bytes());
            }
        }
        h.update([u8::from(self.dangerous_unattested_gatekeepers)]);
        // A Solidity registry's depth (absent on the ledger: its digests are unchanged).
        if let Some(depth) = self.confirmations {
            h.update(depth.to_be_bytes());
        }
        h.finalize().into()
    }

    /// The MRCONFIGID a TD running this configuration must have been launched with: the
    /// initdata document's digest when the configuration came in one, else the trust
    /// digest followed by 16 zero bytes.
    pub fn mr_config_id(&self) -> [u8; 48] {
        if let Some(id) = self.initdata_config_id {
            return id;
        }
        let mut id = [0u8; 48];
        if let Some(head) = id.first_chunk_mut::<32>() {
            *head = self.trust_digest();
        }
        id
    }

    /// A config with the defaults for everything but the addresses.
    pub fn new(
        data_dir: PathBuf,
        attestation_url: String,
        registry_url: String,
        genesis: [u8; 32],
    ) -> Self {
        Self {
            data_dir,
            attestation_url,
            attestation_policy: "default".into(),
            registry_url,
            genesis,
            confirmations: None,
            contracts: Vec::new(),
            public_url: None,
            poll: Duration::from_millis(200),
            checkpoint_every: 64,
            commit_every: Duration::from_secs(60),
            checkpoint_sources: Vec::new(),
            limits: Limits::default(),
            gatekeeper_trust_roots: vec!["intel".into()],
            gatekeeper_policies: vec!["gatekeeper".into()],
            dangerous_unattested_gatekeepers: false,
            quote_anchors: phalanx_dcap::TrustAnchors::intel(),
            initdata_config_id: None,
        }
    }
}

/// Why the worker could not boot or serve.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkerError {
    /// The TEE failed.
    #[error(transparent)]
    Tee(#[from] TeeError),
    /// Sealed state could not be read or written.
    #[error(transparent)]
    Seal(#[from] SealError),
    /// The registry failed or refused.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The attestation service failed or refused (its answer, without secrets).
    #[error(transparent)]
    Attestation(#[from] AttestError),
    /// The gatekeepers did not release a key.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// A contract is not on the registry.
    #[error("contract {0} is not on the registry")]
    NoContract(String),
    /// The registry has no published epoch to derive keys under.
    #[error("the registry has no master key yet")]
    NoEpoch,
    /// The contract's code does not compile.
    #[error("contract code: {0}")]
    Code(#[from] ContractError),
    /// The keys this worker derived are not the ones the registry lists.
    #[error(
        "the keys derived for contract {contract} in epoch {epoch} differ from the published ones: refusing to serve it"
    )]
    KeyMismatch {
        /// The contract.
        contract: String,
        /// The epoch.
        epoch: Epoch,
    },
    /// A TD launched with another configuration than the one it was given (NC2).
    #[error(
        "this TD's MRCONFIGID is {bound}, but its configuration's digest is {expected}: the host must launch the TD with MRCONFIGID = the digest of the configuration it passes (`phalanx pruntime --print-config-id`)"
    )]
    ConfigNotBound {
        /// MRCONFIGID as the TD reports it (hex).
        bound: String,
        /// What this configuration needs (hex).
        expected: String,
    },
    /// A `dangerous_*` option on a real TEE.
    #[error("{0} is refused outside the simulated TEE")]
    DangerousOnHardware(&'static str),
    /// A verified page of a contract's feed that does not continue the executor's log.
    #[error("command feed: {0}")]
    Feed(String),
    /// Anything else, named.
    #[error("{0}")]
    Other(&'static str),
}

/// Why a query was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// This worker does not serve that contract.
    #[error("this worker does not serve contract {0}")]
    UnknownContract(String),
    /// The caller asked for more fuel than the worker allows.
    #[error("max_fuel {asked} exceeds this worker's limit {limit}")]
    TooMuchFuel {
        /// Asked.
        asked: u64,
        /// The limit.
        limit: u64,
    },
    /// This (caller, nonce) was answered already: a query is single use (a captured one
    /// replayed is no oracle).
    #[error("this query (caller and nonce) was already answered")]
    Replayed,
    /// The contract's position is not yet proven on the registry since the worker
    /// started (it is catching up): ask again shortly.
    #[error("this worker is catching up with the contract; ask again shortly")]
    NotReady,
    /// The worker has not reached the height the caller requires.
    #[error("this worker is at height {at}; the query requires at least {required}")]
    TooOld {
        /// The worker's height.
        at: u64,
        /// The query's minimum.
        required: u64,
    },
    /// The query's signature or envelope is bad.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// The contract refused or failed.
    #[error(transparent)]
    Contract(#[from] ContractError),
    /// The contract does not let this caller read its events.
    #[error("the contract does not let this caller read its events")]
    NotAReader,
    /// This worker holds no receipt for that command: it has not run it yet, ran it
    /// before it started (or from an older checkpoint), or forgot it.
    #[error("this worker holds no receipt for that command (not run here yet, or forgotten)")]
    NoReceipt,
    /// The worker failed.
    #[error("internal error")]
    Internal,
}

/// The worker's identity: made inside the TEE, sealed at rest.
struct Identity {
    signing: SigningKey,
    hpke: RecipientKey,
    /// The chain id of the registry its quotes name.
    registry: [u8; 32],
    /// What both keys derive from (kept to seal it again under a newer epoch).
    seed: Zeroizing<Vec<u8>>,
    /// On TDX, the epoch whose gatekeeper-derived key seals the identity file (0 where
    /// the TEE seals).
    sealed_under: Mutex<Epoch>,
}

/// The identity file: `IDENTITY_FILE ‖ u64 epoch ‖ sealed seed`, the sealing bound to the
/// epoch; a file without the prefix is an older Phalanx's (the sealed seed, epoch 0).
const IDENTITY_FILE: &[u8; 8] = b"phxid\x00\x00\x01";

/// The epoch an identity file is sealed under and its sealed part, and whether it is
/// an older Phalanx's.
fn identity_file(bytes: &[u8]) -> (Epoch, &[u8], bool) {
    match bytes
        .strip_prefix(IDENTITY_FILE.as_slice())
        .and_then(|rest| rest.split_first_chunk::<8>())
    {
        Some((epoch, sealed)) => (Epoch(u64::from_be_bytes(*epoch)), sealed, false),
        None => (Epoch::GENESIS, bytes, true),
    }
}

impl Identity {
    /// Opens the identity file's contents `file` (sealed under `epoch`), or makes a new
    /// identity and seals it at `path` under `epoch`.
    fn load_or_create(
        sealing: &SealingKey,
        path: &std::path::Path,
        file: Option<&[u8]>,
        epoch: Epoch,
        registry: [u8; 32],
    ) -> Result<Self, WorkerError> {
        let seed: Zeroizing<Vec<u8>> = match file {
            Some(bytes) => {
                let (_, sealed, older) = identity_file(bytes);
                let aad = match older {
                    true => phalanx_types::tag::WORKER_SEALED.to_vec(),
                    false => identity_aad(epoch),
                };
                sealing.open(&aad, sealed)?
            }
            None => {
                let mut seed = Zeroizing::new(vec![0u8; 64]);
                rand::fill(&mut seed[..]);
                write_identity(path, sealing, epoch, &seed)?;
                seed
            }
        };
        let (sk, ikm) = seed.split_at_checked(32).ok_or(SealError::Open)?;
        Ok(Self {
            signing: SigningKey::from_slice(sk).map_err(|_| SealError::Open)?,
            hpke: RecipientKey::derive(ikm),
            registry,
            seed,
            sealed_under: Mutex::new(epoch),
        })
    }

    fn runtime_data(&self) -> WorkerRuntimeData {
        WorkerRuntimeData {
            identity_key: public_key(self.signing.verifying_key()),
            hpke_public_key: self.hpke.public_bytes(),
            registry: self.registry,
        }
    }
}

/// The additional data an identity sealed under `epoch` is bound to.
fn identity_aad(epoch: Epoch) -> Vec<u8> {
    [phalanx_types::tag::WORKER_SEALED, &epoch.0.to_be_bytes()].concat()
}

/// Seals `seed` under `sealing` (of `epoch`) into the identity file at `path`, at once.
fn write_identity(
    path: &std::path::Path,
    sealing: &SealingKey,
    epoch: Epoch,
    seed: &[u8],
) -> Result<(), WorkerError> {
    let sealed = sealing.seal(&identity_aad(epoch), seed)?;
    let file = [IDENTITY_FILE.as_slice(), &epoch.0.to_be_bytes(), &sealed].concat();
    Ok(write_atomic(path, &file)?)
}

/// How long a worker on a Solidity registry waits for its account to be funded before
/// it registers.
const FUNDING_WAIT: Duration = Duration::from_secs(600);

/// Tokens older than this are renewed before a key fetch (gatekeepers take tokens up
/// to an hour old by default).
const TOKEN_RENEW: Duration = Duration::from_secs(30 * 60);

/// How long a key fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// A running worker.
pub struct Worker {
    config: WorkerConfig,
    tee: Arc<dyn Tee>,
    identity: Identity,
    attested: Mutex<Attested>,
    /// The evidence the registry verified and lists for this worker (its quote hash is
    /// the registered one): what `GET /v1/evidence` serves and users' bundles carry.
    registered: Mutex<Option<phalanx_verify::WorkerEvidence>>,
    runtime: Runtime,
    registry: WorkerRegistry,
    /// One step at a time; per served contract, how following it goes.
    following: tokio::sync::Mutex<BTreeMap<[u8; 32], Following>>,
    /// The contracts whose position a feed page has proven since boot: only those answer
    /// queries (a restored checkpoint is not yet shown to be on the registry's chain).
    ready: Mutex<std::collections::BTreeSet<[u8; 32]>>,
    executors: RwLock<BTreeMap<[u8; 32], Executor>>,
    http: reqwest::Client,
    /// Gatekeeper registrations whose evidence was checked.
    checked: Checked,
    /// The (caller, nonce) of queries answered, newest last.
    answered: Mutex<Answered>,
    /// When a registration renewal was last attempted (renewals back off).
    renewal_tried: Mutex<Option<std::time::Instant>>,
    /// When the registration was last looked at.
    renewal_checked: Mutex<Option<std::time::Instant>>,
    /// When the newest epoch was last looked at.
    epoch_checked: Mutex<Option<std::time::Instant>>,
    /// Per served contract, the checkpoint waiting to be committed on the registry.
    commits: Mutex<BTreeMap<[u8; 32], Commit>>,
    /// Whether the identity is sealed with a key from the gatekeepers (TDX): it is then
    /// sealed again under each new epoch, so no epoch stays needed for it.
    sealed_by_gatekeepers: bool,
}

/// A contract's state commitments from this worker.
#[derive(Default)]
struct Commit {
    /// The newest checkpoint sealed and not yet committed: what it commits to, and it.
    pending: Option<(chain::types::StateCommitment, Vec<u8>)>,
    /// When the last commitment was sent, and its epoch.
    sent: Option<(std::time::Instant, Epoch)>,
}

impl Commit {
    /// Whether the pending commitment goes out now: at most one per `every`, except the
    /// first under a newer epoch, which is what lets the epochs before retire.
    fn due(&self, every: Duration) -> bool {
        let newer = |epoch: Epoch| self.pending.as_ref().is_some_and(|(c, _)| c.epoch > epoch);
        self.sent
            .is_none_or(|(t, epoch)| t.elapsed() >= every || newer(epoch))
    }
}

/// Largest checkpoint fetched from a source.
const MAX_CHECKPOINT: u64 = 1 << 30;

/// Longest a state commitment's transaction is waited for.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest a checkpoint's fetch from a peer may take.
const CHECKPOINT_FETCH: Duration = Duration::from_secs(300);

/// How often a served contract's position is proven at the newest header when the
/// node's hint names a newer height but no new command (one lean proof, about a
/// kilobyte, per contract per period): how far behind that height an answer's may be.
/// A node that under-reports its height delays this, as it could withhold blocks.
const PROVEN_REFRESH: Duration = Duration::from_secs(5);

/// How following one contract goes.
#[derive(Debug, Default)]
struct Following {
    /// When a page last proved its position at the newest header.
    proven: Option<std::time::Instant>,
    /// After a failure: not before then.
    retry_at: Option<std::time::Instant>,
    /// The wait after the last failure (doubling, at most 64 × [`FEED_BACKOFF`]).
    backoff: Duration,
}

/// The first wait after a contract's feed failed.
const FEED_BACKOFF: Duration = Duration::from_secs(1);

/// Least time between two looks at the newest epoch (one small proof each).
const EPOCH_CHECK: Duration = Duration::from_secs(5);

/// Least time between two looks at whether the registration is due for renewal.
const RENEWAL_CHECK: Duration = Duration::from_secs(60);

/// Least time between two attempts to renew the registration.
const RENEWAL_BACKOFF: Duration = Duration::from_secs(600);

/// Most (caller, nonce) pairs remembered; beyond it the oldest are forgotten (a query
/// older than this many others could be answered twice: it learns nothing new, as the
/// state moved on or the answer is the same).
const MAX_ANSWERED: usize = 1 << 16;

/// The queries answered so far (bounded, first in first out).
#[derive(Default)]
struct Answered {
    seen: std::collections::HashSet<[u8; 32]>,
    order: std::collections::VecDeque<[u8; 32]>,
}

impl Answered {
    /// Records `(caller, nonce)`; false if it was recorded already.
    fn first_time(&mut self, caller: &[u8], nonce: &[u8; 16]) -> bool {
        use sha2::Digest as _;
        let id: [u8; 32] = sha2::Sha256::new()
            .chain_update((caller.len() as u32).to_be_bytes())
            .chain_update(caller)
            .chain_update(nonce)
            .finalize()
            .into();
        if !self.seen.insert(id) {
            return false;
        }
        self.order.push_back(id);
        if self.order.len() > MAX_ANSWERED
            && let Some(old) = self.order.pop_front()
        {
            self.seen.remove(&old);
        }
        true
    }
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("identity", &hex::encode(self.identity_key()))
            .field("tee", &self.tee)
            .finish_non_exhaustive()
    }
}

/// What `GET /v1/info` shows.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Info {
    /// The identity key (SEC1 compressed, hex): signs statements.
    pub identity_key: String,
    /// The HPKE key (SEC1 uncompressed, hex): queries are sealed to it. Users take it
    /// from the registry, not from here.
    pub hpke_key: String,
    /// `sgx` or `tdx`.
    pub tee: String,
    /// Whether the TEE is simulated.
    pub simulated: bool,
    /// The contracts served.
    pub contracts: Vec<ContractInfo>,
}

/// One served contract's position.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ContractInfo {
    /// Its id (hex).
    pub id: String,
    /// Its code hash (hex).
    pub code_hash: String,
    /// The height of the header its command log was last proven at. (No state root:
    /// even keyed, it would show anyone when the state changed; answers carry it,
    /// signed, to the caller.)
    pub height: u64,
    /// Whether it answers queries: a feed page has shown its position to be on the
    /// registry's chain since the worker started.
    #[serde(default)]
    pub ready: bool,
}

impl Worker {
    /// Boots a worker (see the module doc).
    pub async fn boot(config: WorkerConfig, tee: Arc<dyn Tee>) -> Result<Arc<Self>, WorkerError> {
        refuse_dangerous(&config, tee.as_ref())?;
        let Unsealed {
            http,
            identity,
            followed_before,
            bound,
        } = unseal(&config, tee.as_ref()).await?;
        let registry = open_registry(&config, Some(&identity), followed_before).await?;
        let attested = attest(&config, tee.as_ref(), &identity, &http).await?;
        if !bound {
            check_config_bound(
                &config,
                tee.as_ref(),
                &attested,
                &identity.runtime_data().encode(),
            )?;
        }
        let worker = Arc::new(Self {
            following: tokio::sync::Mutex::new(BTreeMap::new()),
            ready: Mutex::new(Default::default()),
            runtime: Runtime::new(config.limits),
            config,
            tee,
            identity,
            attested: Mutex::new(attested),
            registered: Mutex::new(None),
            registry,
            executors: RwLock::new(BTreeMap::new()),
            http,
            checked: Checked::default(),
            answered: Mutex::new(Answered::default()),
            renewal_tried: Mutex::new(None),
            renewal_checked: Mutex::new(None),
            epoch_checked: Mutex::new(None),
            commits: Mutex::new(BTreeMap::new()),
            sealed_by_gatekeepers: bound,
        });
        // On a Solidity registry its account (derived from the identity) pays for its
        // transactions: wait for it to be funded, naming it, before the first.
        if let WorkerRegistry::Evm(e) = &worker.registry {
            e.registry
                .wait_for_funds(e.account.signer.address(), FUNDING_WAIT)
                .await?;
        }
        worker.register().await?;
        for id in worker.config.contracts.clone() {
            worker.serve(id).await?;
        }
        Ok(worker)
    }

    /// The Ethereum account a worker with `config` on `tee` sends its transactions from
    /// on a Solidity registry (derived from its sealed identity, which this unseals or
    /// creates as [`Self::boot`] would): fund it before the worker registers.
    pub async fn evm_account(
        config: &WorkerConfig,
        tee: &dyn Tee,
    ) -> Result<chain::evm::Address, WorkerError> {
        // (Making the identity of a ledger worker here would also make its first boot
        // look like a restart that lost its registry head.)
        if matches!(
            config.registry_url.parse(),
            Ok(chain::registry_url::RegistryUrl::Ledger { .. })
        ) {
            return Err(WorkerError::Other(
                "a worker on the ledger has no Ethereum account",
            ));
        }
        let identity = unseal(config, tee).await?.identity;
        let account = chain::evm::identity_account(&identity.signing)
            .map_err(|_| WorkerError::Other("the identity derives no Ethereum key"))?;
        Ok(account.signer.address())
    }

    /// The identity key (SEC1 compressed).
    pub fn identity_key(&self) -> Vec<u8> {
        public_key(self.identity.signing.verifying_key())
    }

    /// The HPKE public key (SEC1 uncompressed).
    pub fn hpke_key(&self) -> Vec<u8> {
        self.identity.hpke.public_bytes()
    }

    fn attested(&self) -> Result<Attested, WorkerError> {
        self.attested
            .lock()
            .map(|a| a.clone())
            .map_err(|_| WorkerError::Other("poisoned lock"))
    }

    /// Registers on the registry with the evidence it attested with, unless the
    /// registry already lists this identity, HPKE key and measurement with the evidence
    /// kept in `<data dir>/evidence.json` (the last registered; public) and that
    /// evidence is younger than half the registry's limit. Evidence expires: a worker
    /// whose registration is older than the limit may no longer publish contract keys,
    /// and users refuse its answers; [`Self::step`] renews it in time.
    async fn register(&self) -> Result<(), WorkerError> {
        let me = self.identity_key();
        let (listed, lifetime) = self.registration().await?;
        let kept_path = self.config.data_dir.join("evidence.json");
        let kept: Option<phalanx_verify::WorkerEvidence> =
            read_optional(&kept_path)?.and_then(|b| serde_json::from_slice(&b).ok());
        let measurement = self.attested()?.tenant.as_bytes().to_vec();
        if let Some(kept) = kept
            && let Some(w) = listed
            && w.hpke_key == self.hpke_key()
            && w.measurement == measurement
            && kept
                .registry_evidence()
                .is_ok_and(|e| chain::types::Evidence::quote_hash(&e.quote) == w.quote_hash)
            && !renew_due(lifetime, w.registered_at)
        {
            tracing::info!("already registered with this identity and current evidence");
            *self
                .registered
                .lock()
                .map_err(|_| WorkerError::Other("poisoned lock"))? = Some(kept);
            return Ok(());
        }
        let attested = self.attested()?;
        let registration = chain::types::Registration {
            identity_key: me.clone(),
            hpke_key: self.hpke_key(),
            measurement,
            attestation_hash: sha2::Sha256::digest(attested.token.as_bytes()).into(),
            evidence: attested
                .evidence
                .registry_evidence()
                .map_err(|_| WorkerError::Other("the evidence kept does not decode"))?,
        };
        let (height, proven) = self
            .registry
            .register(&self.identity.signing, &registration)
            .await?;
        // The registry's record is what the registration carried (the node's word that
        // it included it is not taken).
        let quote_hash = chain::types::Evidence::quote_hash(&registration.evidence.quote);
        if !proven.worker(&me).map_err(unproven)?.is_some_and(|w| {
            w.hpke_key == registration.hpke_key
                && w.attestation_hash == registration.attestation_hash
                && w.quote_hash == quote_hash
        }) {
            return Err(WorkerError::Other(
                "the registry does not list the registration it says it included",
            ));
        }
        let json = serde_json::to_vec(&attested.evidence)
            .map_err(|_| WorkerError::Other("evidence does not encode"))?;
        write_atomic(&kept_path, &json)?;
        *self
            .registered
            .lock()
            .map_err(|_| WorkerError::Other("poisoned lock"))? = Some(attested.evidence);
        tracing::info!(height, "registered on the registry with its evidence");
        Ok(())
    }

    /// The registry's record of this worker and how long evidence counts, proven at its
    /// newest block (one small proof, not the chain).
    async fn registration(&self) -> Result<(Option<chain::types::Worker>, u64), WorkerError> {
        let me = self.identity_key();
        let (lifetime, proven) = self
            .registry
            .lifetime_with(&[Fact::Worker(me.clone())])
            .await?;
        Ok((proven.worker(&me).map_err(unproven)?, lifetime))
    }

    /// Re-attests and registers again when the registered evidence is past half the
    /// registry's limit. Looks at most every [`RENEWAL_CHECK`], and tries at most every
    /// [`RENEWAL_BACKOFF`].
    async fn renew_registration(&self) -> Result<(), WorkerError> {
        {
            let mut checked = self
                .renewal_checked
                .lock()
                .map_err(|_| WorkerError::Other("poisoned lock"))?;
            if checked.is_some_and(|t| t.elapsed() < RENEWAL_CHECK) {
                return Ok(());
            }
            *checked = Some(std::time::Instant::now());
        }
        let (Some(w), lifetime) = self.registration().await? else {
            return Ok(());
        };
        if !renew_due(lifetime, w.registered_at) {
            return Ok(());
        }
        {
            let mut tried = self
                .renewal_tried
                .lock()
                .map_err(|_| WorkerError::Other("poisoned lock"))?;
            if tried.is_some_and(|t| t.elapsed() < RENEWAL_BACKOFF) {
                return Ok(());
            }
            *tried = Some(std::time::Instant::now());
        }
        let renewed = attest(&self.config, self.tee.as_ref(), &self.identity, &self.http).await?;
        if let Ok(mut a) = self.attested.lock() {
            *a = renewed;
        }
        self.register().await
    }

    /// A fresh token when the one held is old.
    async fn fresh_token(&self) -> Result<Attested, WorkerError> {
        let current = self.attested()?;
        if current.at.elapsed() < TOKEN_RENEW {
            return Ok(current);
        }
        let renewed = attest(&self.config, self.tee.as_ref(), &self.identity, &self.http).await?;
        if let Ok(mut a) = self.attested.lock() {
            *a = renewed.clone();
        }
        Ok(renewed)
    }

    /// Fetches the contract's secret of `epoch` from the gatekeepers the registry lists
    /// (proven at its newest header, with each one's standing) and derives its key
    /// pairs; returns them with the keys the registry lists for that epoch at that
    /// header, if published — which they must equal ([`WorkerError::KeyMismatch`]).
    async fn contract_keys(
        &self,
        id: [u8; 32],
        epoch: Epoch,
    ) -> Result<(ContractKeys, Option<chain::types::ContractKey>), WorkerError> {
        let attested = self.fresh_token().await?;
        let (set, proven) = self
            .registry
            .gatekeeper_set(
                &[Fact::Epoch(epoch), Fact::ContractKey(id, epoch)],
                phalanx_types::unix_now(),
            )
            .await?;
        let epoch_key = proven
            .epoch(epoch)
            .map_err(unproven)?
            .ok_or(WorkerError::NoEpoch)?;
        let listed = proven.contract_key(&id, epoch).map_err(unproven)?;
        let (secret, evidence) = fetch_secret(
            &self.config,
            &self.checked,
            &set,
            &epoch_key,
            contract_key_id(epoch, &id),
            &attested,
            &self.identity,
        )
        .await?;
        // A gatekeeper whose own log commits to a bad partial: reported (bounded in
        // time: the key was fetched from the others).
        for e in evidence {
            let accused = hex::encode(&e.accused);
            let report = self
                .registry
                .report_misbehaviour(&self.identity.signing, &e);
            match tokio::time::timeout(COMMIT_TIMEOUT, report).await {
                Ok(Ok(height)) => {
                    tracing::warn!(%accused, height, "reported a gatekeeper's bad partial to the registry")
                }
                Ok(Err(err)) => {
                    tracing::warn!(%accused, error = %err, "the registry did not take the report")
                }
                Err(_) => tracing::warn!(%accused, "reporting timed out; the evidence file stays"),
            }
        }
        let keys = ContractKeys::derive(&secret)
            .map_err(|_| WorkerError::Other("contract key derivation"))?;
        if let Some(listed) = &listed {
            same_keys(id, epoch, listed, &keys.published(id, epoch))?;
        }
        Ok((keys, listed))
    }

    /// [`Self::contract_keys`] for an epoch whose keys the registry must list.
    async fn listed_keys(&self, id: [u8; 32], epoch: Epoch) -> Result<ContractKeys, WorkerError> {
        match self.contract_keys(id, epoch).await? {
            (keys, Some(_)) => Ok(keys),
            (_, None) => Err(WorkerError::Other(
                "the registry lists no keys of the contract for an epoch that has them",
            )),
        }
    }

    /// Publishes this worker's keys of contract `id` for `epoch`, unless another worker
    /// was first: either way the keys the registry then lists must equal `keys`.
    async fn publish_keys(
        &self,
        id: [u8; 32],
        epoch: Epoch,
        keys: &ContractKeys,
    ) -> Result<(), WorkerError> {
        let mine = keys.published(id, epoch);
        let fact = Fact::ContractKey(id, epoch);
        let proven = match self
            .registry
            .publish_contract_key(&self.identity.signing, &mine)
            .await
        {
            Ok((height, proven)) => {
                tracing::info!(contract = %hex::encode(id), %epoch, height, "published the contract's keys");
                proven
            }
            // Another worker may have been first: what stands is what the registry lists.
            Err(e) => {
                tracing::info!(contract = %hex::encode(id), %epoch, error = %e, "publishing the contract's keys failed; reading the registry's");
                let proven = self.registry.facts(std::slice::from_ref(&fact)).await?;
                if proven.contract_key(&id, epoch).map_err(unproven)?.is_none() {
                    // Nobody's keys stand: the refusal is the reason.
                    return Err(e.into());
                }
                proven
            }
        };
        let listed =
            proven
                .contract_key(&id, epoch)
                .map_err(unproven)?
                .ok_or(WorkerError::Other(
                    "the registry lists no keys of the contract for the epoch",
                ))?;
        same_keys(id, epoch, &listed, &mine)
    }

    /// Starts serving contract `id`: code, keys (published or compared), then its state:
    /// a checkpoint at least as far as the registry's newest state commitment (the local
    /// one, or one fetched from [`WorkerConfig::checkpoint_sources`] that is exactly the
    /// committed one), else the local checkpoint, else the empty state — each read as
    /// proofs at the registry's newest header, never the chain.
    async fn serve(&self, id: [u8; 32]) -> Result<(), WorkerError> {
        let proven = self
            .registry
            .facts(&[Fact::Contract(id), Fact::State(id)])
            .await?;
        let deployed_at = proven
            .contract(&id)
            .map_err(unproven)?
            .ok_or_else(|| WorkerError::NoContract(hex::encode(id)))?
            .deployed_at;
        let committed = proven.state(&id).map_err(unproven)?;
        let code = self.registry.contract_code(&proven, &id).await?;
        let epochs = self.registry.epochs(&proven).await?;
        let epoch = epochs.last().map(|k| k.epoch).ok_or(WorkerError::NoEpoch)?;
        let (keys, listed) = self.contract_keys(id, epoch).await?;
        if listed.is_none() {
            self.publish_keys(id, epoch, &keys).await?;
        }
        let held = BTreeMap::from([(epoch, keys)]);
        let mut executor = match self
            .start_from_checkpoint(id, &code, &held, committed.as_ref())
            .await?
        {
            Some(e) => e,
            None => self.start_from_genesis(id, &code, &epochs, &held).await?,
        };
        for (epoch, keys) in held {
            executor.add_keys(epoch, keys);
        }
        // On a Solidity registry the contract's feed starts after the block before its
        // deployment (unless a checkpoint moved it on).
        if let WorkerRegistry::Evm(e) = &self.registry {
            let deployed = deployed_at.saturating_sub(1);
            let hash = e
                .registry
                .block_hash(deployed)
                .await?
                .ok_or(WorkerError::Other(
                    "the node has no block before the contract's deployment",
                ))?;
            executor.start_at(deployed, hash);
        }
        self.executors
            .write()
            .map_err(|_| WorkerError::Other("poisoned lock"))?
            .insert(id, executor);
        self.announce(id).await;
        Ok(())
    }

    /// Announces on the registry where this worker serves contract `id`
    /// ([`WorkerConfig::public_url`]), unless it is listed so already. A failure is
    /// logged, not fatal: users can still name the worker.
    async fn announce(&self, id: [u8; 32]) {
        let Some(url) = &self.config.public_url else {
            return;
        };
        match self
            .registry
            .announce(&self.identity.signing, id, url)
            .await
        {
            Ok(true) => {
                tracing::info!(contract = %hex::encode(id), %url, "announced where this worker serves the contract")
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(contract = %hex::encode(id), error = %e, "announcing where this worker serves the contract failed")
            }
        }
    }

    /// Contract `id` at its empty state, its root keyed by its first published epoch's
    /// keys (every worker of the contract computes the same root whenever it joined;
    /// from `held` if there). Other epochs' keys are fetched when a command needs them. When
    /// that epoch is retired its keys are gone: such a contract starts from a checkpoint.
    async fn start_from_genesis(
        &self,
        id: [u8; 32],
        code: &[u8],
        epochs: &[chain::types::EpochKey],
        held: &BTreeMap<Epoch, ContractKeys>,
    ) -> Result<Executor, WorkerError> {
        let published: Vec<Fact> = epochs
            .iter()
            .flat_map(|k| [Fact::ContractKey(id, k.epoch), Fact::Retired(k.epoch)])
            .collect();
        let proven = self.registry.facts(&published).await?;
        let mut first = None;
        for k in epochs {
            if proven
                .contract_key(&id, k.epoch)
                .map_err(unproven)?
                .is_some()
            {
                first = Some(k.epoch);
                break;
            }
        }
        let first = first.ok_or(WorkerError::Other("published keys vanished"))?;
        // Replaying needs every epoch the contract had keys of: a retired one's are gone.
        for k in epochs {
            let had = proven
                .contract_key(&id, k.epoch)
                .map_err(unproven)?
                .is_some();
            if had
                && proven
                    .fact(&Fact::Retired(k.epoch))
                    .map_err(unproven)?
                    .is_some()
            {
                tracing::error!(contract = %hex::encode(id), epoch = %k.epoch, "an epoch the contract's commands were sealed to is retired: its state is only in checkpoints now; start this worker with --checkpoint-from a peer worker or a copy of a committed checkpoint");
                return Err(WorkerError::Other(
                    "an epoch the contract used is retired and no committed checkpoint was found",
                ));
            }
        }
        let compiled = self.runtime.compile(code)?;
        Ok(match held.get(&first) {
            Some(keys) => Executor::new(id, compiled, keys.state_root_key()),
            None => {
                let first_keys = self.listed_keys(id, first).await?;
                let mut e = Executor::new(id, compiled, first_keys.state_root_key());
                e.add_keys(first, first_keys);
                e
            }
        })
    }

    /// Contract `id` from a checkpoint: the local one when it is at least as far as
    /// `committed`; else the first source's that is exactly `committed` (count, log
    /// head, state root: another is refused by name); else the local one, behind;
    /// `None` without any. Its command log is checked by the first feed page, which must
    /// continue it ([`Self::follow`]): a checkpoint from another chain stops the worker
    /// there.
    async fn start_from_checkpoint(
        &self,
        id: [u8; 32],
        code: &[u8],
        held: &BTreeMap<Epoch, ContractKeys>,
        committed: Option<&chain::types::StateCommitment>,
    ) -> Result<Option<Executor>, WorkerError> {
        let local = match read_optional(&self.checkpoint_path(&id))? {
            Some(sealed) => match self.open_checkpoint(id, code, held, &sealed).await {
                Ok(e) => Some(e),
                Err(e) => {
                    tracing::error!(contract = %hex::encode(id), error = %e, "refusing the checkpoint kept here");
                    None
                }
            },
            None => None,
        };
        let behind = |e: &Executor| committed.is_some_and(|c| e.log().0 < c.count);
        if let Some(e) = local.as_ref().filter(|e| !behind(e)) {
            tracing::info!(contract = %hex::encode(id), commands = e.log().0, "restored the sealed checkpoint kept here");
            return Ok(local);
        }
        if let Some(c) = committed {
            for source in &self.config.checkpoint_sources {
                match self.committed_from(id, code, held, source, c).await {
                    Ok((e, fetched)) => {
                        tracing::info!(contract = %hex::encode(id), %source, commands = e.log().0, "started from the committed checkpoint");
                        // Kept as this worker's checkpoint, and served as committed
                        // (with its height) until it commits one of its own.
                        let sealed = fetched.get(8..).unwrap_or_default();
                        write_atomic(&self.checkpoint_path(&id), sealed)?;
                        write_atomic(&self.config.data_dir.join(committed_name(&id)), &fetched)?;
                        return Ok(Some(e));
                    }
                    Err(e) => {
                        tracing::error!(contract = %hex::encode(id), %source, error = %e, "refusing the checkpoint")
                    }
                }
            }
        }
        if let Some(e) = &local {
            tracing::info!(contract = %hex::encode(id), commands = e.log().0, "restored the sealed checkpoint kept here, behind the registry's newest commitment");
        }
        Ok(local)
    }

    /// Contract `id` from the committed checkpoint at `source` ([`Self::fetch_checkpoint`]:
    /// the registry height its commitment stood at, then the sealed checkpoint), and that
    /// checkpoint: it must be exactly the registry's newest commitment `newest`, or the
    /// one the registry held at that height (proven there: on EVM the node must keep
    /// that block's state) — the feed from it is checked against the command log as
    /// any. Returns what the source gave.
    async fn committed_from(
        &self,
        id: [u8; 32],
        code: &[u8],
        held: &BTreeMap<Epoch, ContractKeys>,
        source: &str,
        newest: &chain::types::StateCommitment,
    ) -> Result<(Executor, Vec<u8>), WorkerError> {
        let fetched = self
            .fetch_checkpoint(source, &id)
            .await
            .map_err(|e| WorkerError::Feed(format!("no checkpoint from this source: {e}")))?;
        let (height, sealed) = fetched.split_first_chunk::<8>().ok_or(WorkerError::Other(
            "a committed checkpoint without its height",
        ))?;
        let height = u64::from_be_bytes(*height);
        let e = self.open_checkpoint(id, code, held, sealed).await?;
        let is = |c: &chain::types::StateCommitment| {
            e.log() == (c.count, c.log_head) && e.root() == c.state_root
        };
        if is(newest) {
            return Ok((e, fetched));
        }
        let proven = self
            .registry
            .facts_at_height(height, &[Fact::State(id)])
            .await?;
        let c = proven.state(&id).map_err(unproven)?.ok_or_else(|| {
            WorkerError::Feed(format!(
                "the registry held no commitment at height {height}"
            ))
        })?;
        if !is(&c) {
            return Err(WorkerError::Feed(format!(
                "it is not the one committed on the registry at height {height} ({} commands; it has {})",
                c.count,
                e.log().0
            )));
        }
        Ok((e, fetched))
    }

    /// An executor from `sealed`, with the keys of the epoch it is sealed under (from
    /// `held`, or the gatekeepers: then held by it).
    async fn open_checkpoint(
        &self,
        id: [u8; 32],
        code: &[u8],
        held: &BTreeMap<Epoch, ContractKeys>,
        sealed: &[u8],
    ) -> Result<Executor, WorkerError> {
        let epoch = Executor::checkpoint_epoch(sealed)
            .ok_or(WorkerError::Other("a checkpoint without its epoch"))?;
        let compiled = self.runtime.compile(code)?;
        let refused = |e| WorkerError::Feed(format!("the checkpoint does not open: {e}"));
        if let Some(keys) = held.get(&epoch) {
            return Executor::from_checkpoint(id, compiled, keys, sealed).map_err(refused);
        }
        let keys = self.listed_keys(id, epoch).await?;
        let mut e = Executor::from_checkpoint(id, compiled, &keys, sealed).map_err(refused)?;
        e.add_keys(epoch, keys);
        Ok(e)
    }

    /// The committed checkpoint of contract `id` at `source` (`u64` registry height its
    /// commitment stood at ‖ the sealed checkpoint): a peer worker's base URL (`GET
    /// /v1/checkpoint/{id}`), or a file (a directory: its committed checkpoint of the
    /// contract). At most [`MAX_CHECKPOINT`] bytes.
    async fn fetch_checkpoint(&self, source: &str, id: &[u8; 32]) -> Result<Vec<u8>, String> {
        if source.starts_with("http://") || source.starts_with("https://") {
            let url = format!(
                "{}/v1/checkpoint/{}",
                source.trim_end_matches('/'),
                hex::encode(id)
            );
            // Its own client: a checkpoint may take longer than an API call.
            let client = reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(5))
                .timeout(CHECKPOINT_FETCH)
                .build()
                .map_err(|e| e.to_string())?;
            let mut response = client.get(&url).send().await.map_err(|e| e.to_string())?;
            if !response.status().is_success() {
                return Err(format!("HTTP {}", response.status()));
            }
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
                body.extend_from_slice(&chunk);
                if body.len() as u64 > MAX_CHECKPOINT {
                    return Err(format!("larger than {MAX_CHECKPOINT} bytes"));
                }
            }
            return Ok(body);
        }
        let mut path = PathBuf::from(source);
        if path.is_dir() {
            path = path.join(committed_name(id));
        }
        tokio::task::spawn_blocking(move || {
            let size = std::fs::metadata(&path).map_err(|e| e.to_string())?.len();
            if size > MAX_CHECKPOINT {
                return Err(format!("larger than {MAX_CHECKPOINT} bytes"));
            }
            std::fs::read(&path).map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())?
    }

    /// The checkpoint of contract `id` whose commitment this worker saw on the registry
    /// (what `GET /v1/checkpoint/{id}` serves: the height it stood at, then the sealed
    /// checkpoint), if it has one.
    pub fn committed_checkpoint(&self, id: &[u8; 32]) -> Option<Vec<u8>> {
        std::fs::read(self.config.data_dir.join(committed_name(id))).ok()
    }

    fn checkpoint_path(&self, id: &[u8; 32]) -> PathBuf {
        self.config
            .data_dir
            .join(format!("checkpoint-{}.sealed", hex::encode(id)))
    }

    /// Follows the registry once. The node's unproven hint (`Head`: its newest height
    /// and each served contract's command count, a few bytes) says which contracts have
    /// new commands; for those, and for any whose proven position is older than
    /// five seconds (`PROVEN_REFRESH`), the worker fetches verified pages of the contract's feed
    /// (`chain::proof::CommandPage`: the commands and a proof of the contract's command
    /// log at a signed header, so the node can leave none out, add none and reorder
    /// none) and runs them. A node that lies in the hint only delays its own commands
    /// (which it could withhold anyway). Only the served contracts' commands travel,
    /// never other contracts' or whole blocks. Then the registration is renewed when
    /// due. Returns the commands applied (run or skipped). A page whose commands need
    /// keys the gatekeepers do not give now is not applied and is fetched again at the
    /// next step, never skipped. On a Solidity registry the hint is the node's newest
    /// block (one call per step): a contract's feed is asked only when a block past its
    /// position is past the confirmation depth.
    pub async fn step(&self) -> Result<usize, WorkerError> {
        // Renewal first, whatever the feeds do: a contract whose feed keeps failing must
        // not let the registration expire (gatekeepers then refuse every key). A failed
        // renewal (the attestation service down, a TCB level the registry no longer
        // accepts) does not stop the worker either: it is retried, and the registry says
        // when the evidence expires.
        if let Err(e) = self.renew_registration().await {
            tracing::warn!(error = %e, "renewing the registration failed; retrying");
        }
        let mut following = self.following.lock().await;
        let ids: Vec<[u8; 32]> = self
            .executors
            .read()
            .map_err(|_| WorkerError::Other("poisoned lock"))?
            .keys()
            .copied()
            .collect();
        // The node's hint: on the ledger its height and each contract's command count; on
        // EVM the newest block past the confirmation depth (one call for all contracts).
        let (height, counts) = match &self.registry {
            WorkerRegistry::Ledger(c) => c.head(&ids).await?,
            WorkerRegistry::Evm(e) => {
                let tip = e.registry.newest_block().await?;
                (tip.saturating_sub(e.confirmations), Vec::new())
            }
        };
        let evm = matches!(self.registry, WorkerRegistry::Evm(_));
        let (mut applied, mut failed) = (0, None);
        for (i, id) in ids.into_iter().enumerate() {
            let ((have, _), (at, _)) = self.executor(&id, |e| (e.log(), e.position()))?;
            let f = following.entry(id).or_default();
            if f.retry_at.is_some_and(|t| t > std::time::Instant::now()) {
                continue;
            }
            // Every contract's position is proven once after boot (a restored checkpoint
            // may already sit at the node's height); then on the ledger when there are new
            // commands, or a newer height and the last proof is old; on EVM when a block
            // past its position is confirmed (its commands are in the contract's logs).
            let stale = f.proven.is_none_or(|t| t.elapsed() >= PROVEN_REFRESH);
            let count = counts.get(i).copied().unwrap_or_default();
            let idle = match evm {
                true => height <= at,
                false => count <= have && (height <= at || !stale),
            };
            if f.proven.is_some() && idle {
                continue;
            }
            // Each contract on its own: one whose feed fails waits (longer each time)
            // and the others go on.
            match self.follow(id).await {
                Ok(n) => {
                    applied += n;
                    *f = Following {
                        proven: Some(std::time::Instant::now()),
                        ..Following::default()
                    };
                }
                Err(e) => {
                    f.backoff = (f.backoff * 2).clamp(FEED_BACKOFF, FEED_BACKOFF * 64);
                    f.retry_at = Some(std::time::Instant::now() + f.backoff);
                    tracing::warn!(contract = %hex::encode(id), error = %e, retry_in = ?f.backoff, "following the contract failed");
                    failed.get_or_insert(e);
                }
            }
        }
        drop(following);
        // A new epoch reaches the running contracts: its keys are derived, published (or
        // compared with the published ones) and held, so commands sealed to it open.
        if let Err(e) = self.adopt_new_epoch().await {
            tracing::warn!(error = %e, "taking up the newest epoch failed; retrying");
        }
        self.commit_states().await;
        match failed {
            Some(e) => Err(e),
            None => Ok(applied),
        }
    }

    /// At most every [`EPOCH_CHECK`]: the newest published epoch, and for each served
    /// contract whose keys of it this worker does not hold, the keys from the
    /// gatekeepers, published when no worker has yet (the registry takes them only from
    /// a pRuntime with current evidence) and equal to the published ones otherwise.
    async fn adopt_new_epoch(&self) -> Result<(), WorkerError> {
        {
            let mut checked = self
                .epoch_checked
                .lock()
                .map_err(|_| WorkerError::Other("poisoned lock"))?;
            if checked.is_some_and(|t| t.elapsed() < EPOCH_CHECK) {
                return Ok(());
            }
            *checked = Some(std::time::Instant::now());
        }
        let proven = self.registry.facts(&[]).await?;
        let Some(newest) = self.registry.epochs(&proven).await?.last().map(|k| k.epoch) else {
            return Ok(());
        };
        if let Err(e) = self.reseal_identity(newest).await {
            tracing::warn!(error = %e, %newest, "sealing the identity under the newest epoch failed; retrying");
        }
        let behind: Vec<[u8; 32]> = self
            .executors
            .read()
            .map_err(|_| WorkerError::Other("poisoned lock"))?
            .iter()
            .filter(|(_, e)| e.keys(newest).is_none())
            .map(|(id, _)| *id)
            .collect();
        for id in behind {
            let (keys, listed) = self.contract_keys(id, newest).await?;
            if listed.is_none() {
                self.publish_keys(id, newest, &keys).await?;
            }
            tracing::info!(contract = %hex::encode(id), epoch = %newest, "holding the contract's keys of the newest epoch");
            // Sealed and committed under the new keys: the older epochs can retire.
            self.executor(&id, |e| {
                e.add_keys(newest, keys);
                self.write_checkpoint(e);
            })?;
        }
        Ok(())
    }

    /// On TDX, seals the identity again under `newest` when it is sealed under an older
    /// epoch (an identity sealed under a retired epoch would be lost: the gatekeepers no
    /// longer derive its key), with the same salt and tenant; one write replaces the file.
    async fn reseal_identity(&self, newest: Epoch) -> Result<(), WorkerError> {
        let current = *self
            .identity
            .sealed_under
            .lock()
            .map_err(|_| WorkerError::Other("poisoned lock"))?;
        if !self.sealed_by_gatekeepers || current >= newest {
            return Ok(());
        }
        let (secret, epoch) = sealing_from_gatekeepers(
            &self.config,
            self.tee.as_ref(),
            &self.registry,
            self.identity.registry,
            &self.http,
            Some(newest),
        )
        .await?;
        write_identity(
            &self.config.data_dir.join("identity.sealed"),
            &identity_sealing(&secret)?,
            epoch,
            &self.identity.seed,
        )?;
        if let Ok(mut under) = self.identity.sealed_under.lock() {
            *under = epoch;
        }
        tracing::info!(%epoch, "sealed the identity again under the newest epoch");
        Ok(())
    }

    /// Applies contract `id`'s feed pages until one is empty; returns the commands
    /// applied.
    async fn follow(&self, id: [u8; 32]) -> Result<usize, WorkerError> {
        match &self.registry {
            WorkerRegistry::Ledger(c) => self.follow_ledger(c, id).await,
            WorkerRegistry::Evm(e) => self.follow_evm(e, id).await,
        }
    }

    /// [`Self::follow`] on the ledger: pages of the contract's commands from its log's
    /// position, each proven at a signed header.
    async fn follow_ledger(
        &self,
        client: &LightClient,
        id: [u8; 32],
    ) -> Result<usize, WorkerError> {
        let mut applied = 0;
        loop {
            let (from, head) = self.executor(&id, |e| e.log())?;
            let (commands, page) = client
                .commands(&id, from, &head, chain::proof::MAX_PAGE_COMMANDS as u32)
                .await?;
            let missing = self.executor(&id, |e| e.missing_keys_of(&commands))?;
            self.hold_keys(id, missing).await?;
            self.apply_page(id, |e| e.apply_commands(&self.runtime, &commands, &page))?;
            if commands.is_empty() {
                return Ok(applied);
            }
            applied += commands.len();
        }
    }

    /// [`Self::follow`] on a Solidity registry: pages of the blocks after the executor's
    /// position, as far as the confirmation depth, each linked to the one before and
    /// its commands checked against the contract's command log proven at its last block
    /// (`chain::evm_proof::EvmPage::verify`); a block the position names that the node
    /// no longer has — a reorganisation deeper than the depth — stops the contract by
    /// name. With nothing new, a position not yet shown since boot is proven where it
    /// stands.
    async fn follow_evm(&self, e: &EvmFollow, id: [u8; 32]) -> Result<usize, WorkerError> {
        use chain::evm_proof::EvmCheckpoint;
        let mut applied = 0;
        loop {
            let ((count, head), (number, hash)) =
                self.executor(&id, |x| (x.log(), x.position()))?;
            let from = EvmCheckpoint { number, hash };
            let Some(page) = e.registry.command_page(&id, &from, e.confirmations).await? else {
                if !self.is_ready(&id) {
                    self.prove_evm_position(e, id, from, (count, head)).await?;
                }
                return Ok(applied);
            };
            let verified = match page.verify(&from, &self.config.genesis, &id, count, &head) {
                Ok(v) => v,
                Err(err @ chain::proof::ProofError::Reorg { .. }) => {
                    // The block this contract's state stands on is gone: nothing here
                    // answers from it again.
                    if let Ok(mut ready) = self.ready.lock() {
                        ready.remove(&id);
                    }
                    tracing::error!(contract = %hex::encode(id), error = %err, confirmations = e.confirmations, "a reorganisation deeper than the confirmation depth: this contract no longer answers; check the node, then restart the worker from a checkpoint before the fork (or a fresh data directory)");
                    return Err(WorkerError::Feed(err.to_string()));
                }
                Err(err) => return Err(unproven(err)),
            };
            let missing = self.executor(&id, |x| x.missing_keys_of_evm(&page.commands))?;
            self.hold_keys(id, missing).await?;
            self.apply_page(id, |x| {
                x.apply_evm_commands(&self.runtime, &page.commands, &verified)
            })?;
            applied += page.commands.len();
        }
    }

    /// Shows contract `id`'s position `at` on the registry: its command log proven at
    /// that block (absent before the contract's deployment: no commands) is `log`.
    async fn prove_evm_position(
        &self,
        e: &EvmFollow,
        id: [u8; 32],
        at: chain::evm_proof::EvmCheckpoint,
        log: (u64, [u8; 32]),
    ) -> Result<(), WorkerError> {
        let fact = Fact::Commands(id);
        let proven = e
            .registry
            .proven(std::slice::from_ref(&fact), Some(at.number))
            .await?;
        let proven_log = proven
            .read(&fact, chain::facts::read_commands)
            .map_err(unproven)?
            .unwrap_or((0, [0; 32]));
        if proven.block.hash != at.hash || proven_log != log {
            return Err(WorkerError::Feed(format!(
                "the contract's position (block {}, {} commands) is not on the node's chain",
                at.number, log.0
            )));
        }
        if let Ok(mut ready) = self.ready.lock() {
            ready.insert(id);
        }
        Ok(())
    }

    /// Whether contract `id`'s position was shown on the registry since boot.
    fn is_ready(&self, id: &[u8; 32]) -> bool {
        self.ready.lock().is_ok_and(|r| r.contains(id))
    }

    /// Fetches and holds contract `id`'s keys of `epochs` (a page's commands need
    /// them). Rare: the registry orders a command sealed to an epoch only once the
    /// epoch's keys are published, so they must be listed, and equal: a command is
    /// opened only with those.
    async fn hold_keys(&self, id: [u8; 32], epochs: Vec<Epoch>) -> Result<(), WorkerError> {
        for epoch in epochs {
            let keys = self.listed_keys(id, epoch).await?;
            self.executor(&id, |e| e.add_keys(epoch, keys))?;
        }
        Ok(())
    }

    /// Applies one verified page to contract `id` (`apply`), marks the contract ready,
    /// seals a checkpoint every [`WorkerConfig::checkpoint_every`] commands run, and logs
    /// the commands skipped.
    fn apply_page(
        &self,
        id: [u8; 32],
        apply: impl FnOnce(&mut Executor) -> Result<Vec<crate::executor::Skipped>, String>,
    ) -> Result<(), WorkerError> {
        let every = self.config.checkpoint_every.max(1);
        let skipped = self
            .executor(&id, |e| {
                let before = e.executed();
                let skipped = apply(e)?;
                // The page continued this worker's log on the registry's chain: the
                // contract answers queries from here on (marked while the executor
                // is held, so a query that sees the new position sees this too).
                if let Ok(mut ready) = self.ready.lock() {
                    ready.insert(id);
                }
                if e.executed() / every != before / every {
                    self.write_checkpoint(e);
                }
                Ok(skipped)
            })?
            .map_err(WorkerError::Feed)?;
        for s in skipped {
            tracing::warn!(contract = %hex::encode(id), height = s.height, sequence = s.sequence, reason = %s.reason, "command skipped");
        }
        Ok(())
    }

    /// Runs `f` on the executor of contract `id`.
    fn executor<T>(
        &self,
        id: &[u8; 32],
        f: impl FnOnce(&mut Executor) -> T,
    ) -> Result<T, WorkerError> {
        let mut executors = self
            .executors
            .write()
            .map_err(|_| WorkerError::Other("poisoned lock"))?;
        let e = executors
            .get_mut(id)
            .ok_or_else(|| WorkerError::NoContract(hex::encode(id)))?;
        Ok(f(e))
    }

    /// Seals a checkpoint of `executor` under its newest keys, writes it, and queues its
    /// commitment for the registry ([`Self::commit_states`]) when a feed page has shown
    /// its position on the registry's chain since boot (a restored checkpoint from
    /// another chain, or one a deep reorganisation left, is never committed).
    fn write_checkpoint(&self, executor: &Executor) {
        let Some(epoch) = executor.newest_epoch() else {
            return;
        };
        // A halted contract's root is not sure to be its state's: never sealed or
        // committed (the last good checkpoint stays).
        if executor.halted().is_some() {
            return;
        }
        let sealed = match executor.checkpoint(epoch) {
            Ok(sealed) => sealed,
            Err(e) => return tracing::error!(error = %e, "sealing a checkpoint failed"),
        };
        if let Err(e) = write_atomic(&self.checkpoint_path(&executor.id()), &sealed) {
            return tracing::error!(error = %e, "writing a checkpoint failed");
        }
        let (count, log_head) = executor.log();
        let commitment = chain::types::StateCommitment {
            contract: executor.id(),
            count,
            log_head,
            state_root: executor.root(),
            epoch,
            committed_at: 0,
        };
        if self.is_ready(&executor.id())
            && let Ok(mut commits) = self.commits.lock()
        {
            commits.entry(executor.id()).or_default().pending = Some((commitment, sealed));
        }
    }

    /// Commits the checkpoints queued by [`Self::write_checkpoint`] on the registry, at
    /// most one per contract per [`WorkerConfig::commit_every`] (the first under a newer
    /// epoch at once); a committed one is kept
    /// as the contract's committed checkpoint, which peers may fetch. When another worker
    /// committed the same state first, this worker's copy is as good and kept too.
    async fn commit_states(&self) {
        let due: Vec<(chain::types::StateCommitment, Vec<u8>)> = match self.commits.lock() {
            Ok(mut commits) => commits
                .values_mut()
                .filter(|c| c.due(self.config.commit_every))
                .filter_map(|c| {
                    let due = c.pending.take()?;
                    c.sent = Some((std::time::Instant::now(), due.0.epoch));
                    Some(due)
                })
                .collect(),
            Err(_) => return,
        };
        for (commitment, sealed) in due {
            self.commit_state(commitment, sealed).await;
        }
    }

    /// Sends one state commitment unless the registry's is as new already (workers of a
    /// contract seal the same states); keeps `sealed` as the committed checkpoint when the
    /// registry then holds its state, whoever committed it. Sent again at the next step
    /// after a failure no rule decided (the node, the network), unless a newer one is
    /// queued: an idle contract's commitment under a new epoch is not lost.
    async fn commit_state(&self, commitment: chain::types::StateCommitment, sealed: Vec<u8>) {
        let id = commitment.contract;
        let standing = async || {
            let proven = self.registry.facts(&[Fact::State(id)]).await.ok()?;
            proven.state(&id).ok().flatten()
        };
        let mut stands = standing().await;
        let ahead = |s: &chain::types::StateCommitment| {
            (s.count, s.epoch) >= (commitment.count, commitment.epoch)
        };
        if !stands.as_ref().is_some_and(ahead) {
            // Bounded: a step that waits on a transaction the chain dropped would stop
            // following (and seeing a reorganisation) meanwhile.
            let sent = tokio::time::timeout(
                COMMIT_TIMEOUT,
                self.registry
                    .commit_state(&self.identity.signing, &commitment),
            )
            .await
            .unwrap_or_else(|_| {
                Err(RegistryError::Backend(
                    "the commitment was not included in time".into(),
                ))
            });
            match sent {
                Ok((height, proven)) => {
                    tracing::info!(contract = %hex::encode(id), commands = commitment.count, epoch = %commitment.epoch, height, "committed the contract's state");
                    stands = proven.state(&id).ok().flatten();
                }
                Err(e) => {
                    tracing::info!(contract = %hex::encode(id), commands = commitment.count, error = %e, "committing the contract's state failed");
                    if !matches!(e, RegistryError::Rule(_))
                        && let Ok(mut commits) = self.commits.lock()
                    {
                        // (Again after `commit_every`: a refusal the node reports as a
                        // failure is not retried at every step.)
                        let c = commits.entry(id).or_default();
                        if c.pending.is_none() {
                            c.pending = Some((commitment.clone(), sealed.clone()));
                        }
                    }
                    stands = standing().await;
                }
            }
        }
        let same = stands.filter(|s| {
            (s.count, s.log_head, s.state_root, s.epoch)
                == (
                    commitment.count,
                    commitment.log_head,
                    commitment.state_root,
                    commitment.epoch,
                )
        });
        // Kept with the height its commitment stood at, where a peer proves it.
        if let Some(s) = same {
            let file = [s.committed_at.to_be_bytes().as_slice(), &sealed].concat();
            if let Err(e) = write_atomic(&self.config.data_dir.join(committed_name(&id)), &file) {
                tracing::error!(error = %e, "writing the committed checkpoint failed");
            }
        }
    }

    /// Seals a checkpoint of every served contract now.
    pub fn checkpoint_all(&self) {
        if let Ok(executors) = self.executors.read() {
            for e in executors.values() {
                self.write_checkpoint(e);
            }
        }
    }

    /// Follows the registry ([`Self::step`]) until `shutdown`, then seals checkpoints.
    pub async fn run(self: Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            if let Err(e) = self.step().await {
                tracing::warn!(error = %e, "following the registry failed; retrying");
            }
            tokio::select! {
                _ = &mut shutdown => break,
                _ = tokio::time::sleep(self.config.poll) => {}
            }
        }
        self.checkpoint_all();
    }

    /// The worker's attestation evidence (`GET /v1/evidence`): the quote binding its
    /// identity and HPKE keys, the nonce and runtime data, the collateral it was verified
    /// with. Not trusted by anyone: users check it against Intel's root
    /// (`phalanx-verify`).
    pub fn evidence(&self) -> Option<phalanx_verify::WorkerEvidence> {
        self.registered.lock().ok().and_then(|e| e.clone())
    }

    /// What `GET /v1/info` shows.
    pub fn info(&self) -> Info {
        let ready = self.ready.lock().map(|r| r.clone()).unwrap_or_default();
        let contracts = self
            .executors
            .read()
            .map(|m| {
                m.values()
                    .map(|e| ContractInfo {
                        id: hex::encode(e.id()),
                        code_hash: hex::encode(e.code_hash()),
                        height: e.position().0,
                        ready: ready.contains(&e.id()),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Info {
            identity_key: hex::encode(self.identity_key()),
            hpke_key: hex::encode(self.hpke_key()),
            tee: self.tee.kind().as_str().into(),
            simulated: self.tee.simulated(),
            contracts,
        }
    }

    /// Answers a query (see [`crate::protocol`]): checks, decrypts, runs read-only at
    /// the current position, signs the statement, seals the output.
    pub fn query(&self, q: &Query) -> Result<Answer, QueryError> {
        self.answer(Purpose::Query, q)
    }

    /// Answers an events request (a [`Query`] of [`Purpose::Events`]): a page of the
    /// contract's events from the sequence it names, sealed to the reader, under a
    /// statement at the current position — if the contract's `may_read_events` admits
    /// the reader.
    pub fn events(&self, q: &Query) -> Result<Answer, QueryError> {
        self.answer(Purpose::Events, q)
    }

    /// Answers a receipt request ([`Query::receipt_request`]): the receipt of the
    /// command its caller sent with the nonce it names, sealed to the caller, under a
    /// statement at the current position. Only the command's caller can ask: the
    /// request is signed by the key that sent it.
    pub fn receipt(&self, q: &Query) -> Result<Answer, QueryError> {
        self.answer(Purpose::Receipt, q)
    }

    fn answer(&self, purpose: Purpose, q: &Query) -> Result<Answer, QueryError> {
        let me = self.identity_key();
        // The signature first: no field of the query is acted on before it verifies.
        let opened = q.open_as(purpose, &me, &self.identity.hpke)?;
        let limit = self.config.limits.fuel;
        let fuel = q.max_fuel.unwrap_or(limit);
        if fuel > limit {
            return Err(QueryError::TooMuchFuel { asked: fuel, limit });
        }
        let executors = self.executors.read().map_err(|_| QueryError::Internal)?;
        let executor = executors
            .get(&q.contract.0)
            .ok_or_else(|| QueryError::UnknownContract(q.contract.to_string()))?;
        if executor.halted().is_some() {
            return Err(QueryError::Internal);
        }
        if !self
            .ready
            .lock()
            .map_err(|_| QueryError::Internal)?
            .contains(&q.contract.0)
        {
            return Err(QueryError::NotReady);
        }
        let (height, _) = executor.position();
        if let Some(required) = q.min_height
            && height < required
        {
            return Err(QueryError::TooOld {
                at: height,
                required,
            });
        }
        // The reply key first: a request the answer cannot be sealed to is malformed,
        // and is refused before any contract code runs.
        let reply = unb64(&q.reply_key, "reply key")
            .ok()
            .filter(|k| k.len() == 65 && p256::PublicKey::from_sec1_bytes(k).is_ok())
            .ok_or(ProtocolError::Malformed("reply key"))?;
        // A receipt or an events page is made before the request is spent: asking
        // again until the command has run, or once admitted, costs nothing.
        let prepared = self.prepared(purpose, executor, &opened, fuel)?;
        // Single use, recorded only once the query is sure to run: a refusal above
        // (too old, too much fuel, a bad reply key) can be retried as it was.
        let fresh = self
            .answered
            .lock()
            .map_err(|_| QueryError::Internal)?
            .first_time(&opened.caller, &q.nonce.0);
        if !fresh {
            return Err(QueryError::Replayed);
        }
        let output = match prepared {
            Some(r) => r,
            None => Zeroizing::new(
                executor
                    .query(&self.runtime, &opened.caller, &opened.input, fuel)?
                    .output,
            ),
        };
        let answer_salt: [u8; 32] = rand::random();
        let statement = executor.statement(
            purpose,
            &me,
            &opened.caller,
            &q.nonce.0,
            (&opened.salt, &opened.input),
            (&answer_salt, &output),
        );
        Ok(Answer::new(
            statement,
            &self.identity.signing,
            &reply,
            &answer_salt,
            &output,
        )?)
    }
}

impl Worker {
    /// What a receipt or events request answers (a query: `None`, it runs later): the
    /// encoded receipt of the caller's command, or a page of the contract's events if
    /// the contract admits the caller (its `may_read_events`, with at most `fuel`).
    fn prepared(
        &self,
        purpose: Purpose,
        executor: &Executor,
        opened: &crate::protocol::Opened,
        fuel: u64,
    ) -> Result<Option<Zeroizing<Vec<u8>>>, QueryError> {
        let from = || {
            phalanx_types::receipt::parse_request(&opened.input)
                .ok_or(ProtocolError::Malformed("receipt or events request"))
        };
        Ok(match purpose {
            Purpose::Query => None,
            Purpose::Receipt => {
                let r = executor
                    .receipt(&opened.caller, from()?)
                    .ok_or(QueryError::NoReceipt)?;
                Some(Zeroizing::new(r.to_bytes()))
            }
            Purpose::Events => {
                let from = from()?;
                if !executor.may_read_events(&self.runtime, &opened.caller, fuel) {
                    return Err(QueryError::NotAReader);
                }
                Some(Zeroizing::new(executor.events_from(from).to_bytes()))
            }
        })
    }
}

/// On TDX: the configuration must be the one the host bound in MRCONFIGID at launch,
/// so whatever the host passes on the command line, the TD is the tenant of exactly
/// this configuration. MRCONFIGID is read from a quote the worker verifies itself — to
/// `config.quote_anchors` (Intel's root, compiled in; a release build widens it only on
/// the simulated backend) with the collateral that came back with it, and binding this
/// attestation's runtime data, i.e. keys the worker holds (at the first check, the
/// ephemeral keys made for this boot) — never from quote bytes taken on faith: on TDX
/// the host's quoting service writes them, and could otherwise show a made-up
/// MRCONFIGID. SGX binds its configuration in the Gramine manifest (MRENCLAVE) instead;
/// the simulated TEE binds nothing.
fn check_config_bound(
    config: &WorkerConfig,
    tee: &dyn Tee,
    attested: &Attested,
    runtime_data: &[u8],
) -> Result<(), WorkerError> {
    if tee.kind() != crate::tee::TeeKind::Tdx {
        return Ok(());
    }
    let e = attested
        .evidence
        .registry_evidence()
        .map_err(|_| WorkerError::Other("the TD's evidence does not decode"))?;
    let collateral = phalanx_dcap::collateral::Collateral::from_bundle_json(&e.collateral)
        .map_err(|_| WorkerError::Other("the TD's collateral does not parse"))?;
    let verified = phalanx_dcap::Verifier::new(config.quote_anchors.clone())
        .verify(&e.quote, &collateral, phalanx_types::unix_now())
        .map_err(|_| WorkerError::Other("the TD's own quote does not verify to its trust roots"))?;
    if e.runtime_data != runtime_data
        || verified.report_data != phalanx_ear::report_data(&e.nonce, runtime_data)
    {
        return Err(WorkerError::Other(
            "the TD's own quote does not bind this attestation (a replayed quote)",
        ));
    }
    let phalanx_dcap::verify::Measurements::Tdx { mr_config_id, .. } = verified.measurements else {
        return Err(WorkerError::Other("the TD's quote is not a TD's"));
    };
    let expected = config.mr_config_id();
    if mr_config_id != expected {
        return Err(WorkerError::ConfigNotBound {
            bound: hex::encode(mr_config_id),
            expected: hex::encode(expected),
        });
    }
    Ok(())
}

/// Says loudly that the TEE is simulated; refuses `dangerous_*` options on a real one.
fn refuse_dangerous(config: &WorkerConfig, tee: &dyn Tee) -> Result<(), WorkerError> {
    check_limits(&config.limits)?;
    if config.confirmations == Some(0) {
        tracing::warn!(
            "--confirmations 0: a command runs as soon as its block exists, and any reorganisation stops the worker; for development chains only"
        );
    }
    if tee.simulated() {
        tracing::warn!(
            "pRuntime runs on the SIMULATED TEE: its quotes chain to a test root, not Intel's; for development only"
        );
    }
    if config.dangerous_unattested_gatekeepers {
        if !tee.simulated() {
            return Err(WorkerError::DangerousOnHardware(
                "--dangerous-unattested-gatekeepers",
            ));
        }
        tracing::warn!(
            "dangerous_unattested_gatekeepers: asking gatekeepers for keys WITHOUT checking that they run in a TEE"
        );
    }
    Ok(())
}

/// Limits whose outputs and events a receipt or an events page can carry
/// (`phalanx_types::receipt`'s bounds): a worker allowing more would answer with
/// receipts nobody can decode.
fn check_limits(limits: &Limits) -> Result<(), WorkerError> {
    use phalanx_types::receipt as r;
    if limits.max_output > r::MAX_OUTPUT
        || limits.max_events > r::MAX_EVENTS
        || limits.max_event > r::MAX_EVENT
    {
        return Err(WorkerError::Other(
            "the contract limits allow larger outputs or more or larger events than a receipt carries",
        ));
    }
    Ok(())
}

/// The key the identity is sealed under: the TEE's own, or on TDX one from the
/// gatekeepers under the worker's tenant and `epoch` (the identity file's; a new one's:
/// the newest) — then also whether the configuration was checked bound on the way —
/// and the epoch.
async fn sealing_key(
    config: &WorkerConfig,
    tee: &dyn Tee,
    registry: &WorkerRegistry,
    chain_id: [u8; 32],
    http: &reqwest::Client,
    epoch: Option<Epoch>,
) -> Result<(SealingKey, bool, Epoch), WorkerError> {
    let (secret, bound, epoch) = match tee.sealing_key()? {
        // The TEE's own key: the file's epoch is only a name (0 for a new one).
        Some(k) => (k, false, epoch.unwrap_or(Epoch::GENESIS)),
        None => {
            let (k, epoch) =
                sealing_from_gatekeepers(config, tee, registry, chain_id, http, epoch).await?;
            (k, true, epoch)
        }
    };
    Ok((identity_sealing(&secret)?, bound, epoch))
}

/// The key an identity is sealed with, from the sealing secret.
fn identity_sealing(secret: &[u8; 32]) -> Result<SealingKey, WorkerError> {
    Ok(SealingKey::derive(
        &secret[..],
        phalanx_types::tag::WORKER_SEALED,
        b"identity",
    )?)
}

/// A worker's identity, unsealed (made and sealed on first start), with what unsealing
/// it learnt.
struct Unsealed {
    http: reqwest::Client,
    identity: Identity,
    /// Whether the identity existed before: the worker followed the registry before.
    followed_before: bool,
    /// Whether its configuration was checked bound on the way (TDX).
    bound: bool,
}

/// Unseals (or makes and seals) the identity of the worker `config` configures on `tee`:
/// until then a registry client without a checkpoint gives the registry's id, which
/// every quote of this worker names (so its registration counts on this registry only),
/// and on TDX the sealing key's gatekeepers. The configuration check (TDX) runs once, on
/// the first attestation: in the sealing path, before any secret is asked for, when
/// there is one.
async fn unseal(config: &WorkerConfig, tee: &dyn Tee) -> Result<Unsealed, WorkerError> {
    std::fs::create_dir_all(&config.data_dir).map_err(|e| SealError::Io {
        path: config.data_dir.clone(),
        source: e,
    })?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|_| WorkerError::Other("HTTP client"))?;
    let probe = open_registry(config, None, false).await?;
    let chain_id = probe.id().await?;
    let identity_path = config.data_dir.join("identity.sealed");
    let file = read_optional(&identity_path)?;
    let followed_before = file.is_some();
    let epoch = file.as_deref().map(|f| identity_file(f).0);
    let (sealing, bound, epoch) = sealing_key(config, tee, &probe, chain_id, &http, epoch).await?;
    let identity =
        Identity::load_or_create(&sealing, &identity_path, file.as_deref(), epoch, chain_id)?;
    Ok(Unsealed {
        http,
        identity,
        followed_before,
        bound,
    })
}

/// The worker's registry (`identity`: the unsealed one; `None` for a probe before it).
///
/// On the ledger, a light client that keeps the head it verified last in a file only
/// `identity` can write: a restarted worker refuses a registry that forked or rolled back
/// since (M2), and one that `followed_before` refuses to start over when the file is
/// gone. A worker that an older Phalanx ran (its heads unsealed) starts its sealed one
/// now, trusting the registry's newest header once as that version did; the old files go
/// once the new one is written.
///
/// On a Solidity registry, the contract at the URL's address, whose id (chain id and
/// address) must be the pinned one; registrations are endorsed by the gatekeepers in
/// standing, and transactions sent from the account derived from `identity`. Each
/// contract's position is its executor's (block number and hash, sealed in its
/// checkpoint), which every page must extend.
async fn open_registry(
    config: &WorkerConfig,
    identity: Option<&Identity>,
    followed_before: bool,
) -> Result<WorkerRegistry, WorkerError> {
    use chain::registry_url::RegistryUrl;
    let url: RegistryUrl =
        config
            .registry_url
            .parse()
            .map_err(|e: chain::registry_url::RegistryUrlError| {
                RegistryError::Backend(e.to_string())
            })?;
    match url {
        RegistryUrl::Ledger { url } => {
            let Some(identity) = identity else {
                return Ok(WorkerRegistry::Ledger(Box::new(LightClient::pinned(
                    &url,
                    config.genesis,
                ))));
            };
            let legacy = ["registry-head", "follower-head"].map(|f| config.data_dir.join(f));
            let upgrading = legacy.iter().any(|f| f.exists());
            let registry = LightClient::pinned(&url, config.genesis).with_identity_checkpoint(
                &config.data_dir.join("registry-head.sealed"),
                &identity.signing,
                followed_before && !upgrading,
            );
            if upgrading {
                tracing::warn!(
                    "this worker's registry head was written by an older Phalanx: starting a sealed one"
                );
                registry.facts(&[]).await?;
                for f in &legacy {
                    let _ = std::fs::remove_file(f);
                }
            }
            Ok(WorkerRegistry::Ledger(Box::new(registry)))
        }
        RegistryUrl::Evm { rpc, address } => {
            let confirmations = config.confirmations.ok_or(WorkerError::Other(
                "a Solidity registry needs a confirmation depth",
            ))?;
            let registry = chain::evm::EvmRegistry::at(&rpc, address.into())?
                .with_endorser(Arc::new(chain::evm::RemoteEndorser::new(None)));
            let account = match identity {
                Some(i) => chain::evm::identity_account(&i.signing)
                    .map_err(|_| WorkerError::Other("the identity derives no Ethereum key"))?,
                // A probe sends nothing.
                None => chain::evm::EvmAccount::plain(chain::evm::PrivateKeySigner::random()),
            };
            let id = chain::registry::Registry::chain_id(&registry).await?;
            if id != config.genesis {
                return Err(RegistryError::Unverified(format!(
                    "the node serves chain {}, where the registry {} is not the pinned one (check --evm-chain-id)",
                    registry.evm_chain_id().await?,
                    registry.address()
                ))
                .into());
            }
            Ok(WorkerRegistry::Evm(Box::new(EvmFollow {
                registry,
                account,
                confirmations,
            })))
        }
    }
}

/// The file name of contract `id`'s committed checkpoint.
fn committed_name(id: &[u8; 32]) -> String {
    format!("committed-{}.sealed", hex::encode(id))
}

/// A proof that does not read as its facts should.
fn unproven(e: chain::proof::ProofError) -> WorkerError {
    RegistryError::from(e).into()
}

/// Whether evidence registered at `registered_at` is due for renewal now (the rule is
/// [`chain::types::renewal_due`], against the registry's evidence `lifetime` in force).
fn renew_due(lifetime: u64, registered_at: i64) -> bool {
    chain::types::renewal_due(lifetime, registered_at, phalanx_types::unix_now())
}

/// Refuses keys derived for `contract` in `epoch` that differ from the published ones.
fn same_keys(
    contract: [u8; 32],
    epoch: Epoch,
    listed: &chain::types::ContractKey,
    mine: &chain::types::ContractKey,
) -> Result<(), WorkerError> {
    if listed.encryption_key != mine.encryption_key || listed.signing_key != mine.signing_key {
        tracing::error!(contract = %hex::encode(contract), %epoch, "derived contract keys differ from the registry's: not serving");
        return Err(WorkerError::KeyMismatch {
            contract: hex::encode(contract),
            epoch,
        });
    }
    Ok(())
}

// Evidence of a bad partial carries the partial whole: whatever a gatekeeper's answer
// can hold fits.
const _: () = assert!(chain::types::MAX_EVIDENCE_PART >= phalanx_release::client::MAX_MESSAGE);

/// Asks the gatekeepers the registry lists for `key_id`, checked against the epoch's
/// public key set on the registry — only those whose registration is backed by valid
/// TEE evidence (unless `dangerous_unattested_gatekeepers`); the others are named in the
/// log and not asked, so fewer than `t` attested gatekeepers means no key. A gatekeeper
/// whose own signed log commits to a bad partial leaves evidence, written to the data
/// directory (`misbehaviour-*.evidence`) and returned for reporting.
async fn fetch_secret(
    config: &WorkerConfig,
    checked: &Checked,
    set: &GatekeeperSet,
    epoch_key: &chain::types::EpochKey,
    key_id: KeyId,
    attested: &Attested,
    identity: &Identity,
) -> Result<(Zeroizing<[u8; 32]>, Vec<chain::types::Misbehaviour>), WorkerError> {
    let public = phalanx_threshold::wire::public_set_from_bytes(&epoch_key.public_key_set)
        .map_err(|_| WorkerError::Other("the registry's public key set does not decode"))?;
    let refused = if config.dangerous_unattested_gatekeepers {
        Vec::new()
    } else {
        let policy = phalanx_release::release::ReleasePolicy {
            trust_roots: config.gatekeeper_trust_roots.clone(),
            gatekeeper_policies: config.gatekeeper_policies.clone(),
            ..Default::default()
        };
        check_gatekeepers(set, &attested.jwks, &policy, checked, FETCH_TIMEOUT).await
    };
    for r in &refused {
        tracing::warn!(gatekeeper = r.index, reason = %r.reason, "not asking a gatekeeper without valid TEE evidence");
    }
    let endpoints: Vec<Endpoint> = set
        .members
        .iter()
        .map(|m| &m.gatekeeper)
        .filter(|g| !refused.iter().any(|r| r.index == g.index))
        .filter_map(|g| {
            Some(Endpoint {
                index: phalanx_threshold::share::NodeIndex::new(g.index).ok()?,
                url: g.url.clone(),
                identity: p256::ecdsa::VerifyingKey::from_sec1_bytes(&g.identity_key).ok()?,
            })
        })
        .collect();
    let runtime_data = identity.runtime_data();
    let request = ReleaseRequest {
        token: attested.token.clone(),
        runtime_data: runtime_data.encode(),
        key_id,
        hpke_public_key: runtime_data.hpke_public_key,
    };
    let fetched = fetch_key(&endpoints, &request, &identity.hpke, &public, FETCH_TIMEOUT).await?;
    if !fetched.faulty.is_empty() {
        tracing::warn!(faulty = ?fetched.faulty, "gatekeepers answered with invalid partials");
    }
    let evidence: Vec<chain::types::Misbehaviour> = fetched
        .evidence
        .iter()
        .map(|f| chain::types::Misbehaviour::partial(&f.identity, &f.head, f.release.clone()))
        .collect();
    for (f, e) in fetched.evidence.iter().zip(&evidence) {
        let file = config.data_dir.join(format!(
            "misbehaviour-{}-{}.evidence",
            f.release.node, f.release.log_index
        ));
        match e.write_file(&file) {
            Ok(()) => {
                tracing::warn!(gatekeeper = %f.release.node, file = %file.display(), "a gatekeeper's own log commits to a bad partial: evidence written")
            }
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(err) => tracing::warn!(error = %err, "cannot write the evidence"),
        }
    }
    Ok((Zeroizing::new(*fetched.key.expose()), evidence))
}

/// Attests `identity` (its runtime data bound in the quote).
async fn attest(
    config: &WorkerConfig,
    tee: &dyn Tee,
    identity: &Identity,
    http: &reqwest::Client,
) -> Result<Attested, WorkerError> {
    let service = Service {
        url: config.attestation_url.clone(),
        policy: config.attestation_policy.clone(),
    };
    let rd = identity.runtime_data().encode();
    Ok(phalanx_attested::attest::attest(http, &service, tee, &rd).await?)
}

/// TDX has no sealing key: one is derived by the gatekeepers under the worker's own
/// tenant (only the same TD measurement gets it back). An ephemeral identity attests
/// for the fetch; the sealed identity is then unsealed with the result.
async fn sealing_from_gatekeepers(
    config: &WorkerConfig,
    tee: &dyn Tee,
    registry: &WorkerRegistry,
    chain_id: [u8; 32],
    http: &reqwest::Client,
    epoch: Option<Epoch>,
) -> Result<(Zeroizing<[u8; 32]>, Epoch), WorkerError> {
    let ephemeral = Identity {
        signing: chain::random_key(),
        hpke: RecipientKey::generate(&mut rand::rng()),
        registry: chain_id,
        seed: Zeroizing::new(Vec::new()),
        sealed_under: Mutex::new(Epoch::GENESIS),
    };
    let attested = attest(config, tee, &ephemeral, http).await?;
    // Before any secret is asked for: the TD runs the configuration it was launched for.
    check_config_bound(config, tee, &attested, &ephemeral.runtime_data().encode())?;
    // The epoch the identity is sealed under (a new one: the newest), and the
    // gatekeepers, proven at the registry's newest header.
    let epoch = match epoch {
        Some(e) => e,
        None => {
            let proven = registry.facts(&[]).await?;
            let epochs = registry.epochs(&proven).await?;
            epochs.last().map(|k| k.epoch).ok_or(WorkerError::NoEpoch)?
        }
    };
    let (set, proven) = registry
        .gatekeeper_set(
            &[Fact::Epoch(epoch), Fact::Retired(epoch)],
            phalanx_types::unix_now(),
        )
        .await?;
    if proven
        .fact(&Fact::Retired(epoch))
        .map_err(unproven)?
        .is_some()
    {
        tracing::error!(%epoch, "this worker's identity is sealed under a retired epoch, whose key the gatekeepers no longer derive: it is lost. Start the worker with an empty data directory: it registers anew and takes its contracts' state from --checkpoint-from");
        return Err(WorkerError::Other(
            "the identity is sealed under a retired epoch",
        ));
    }
    let first = proven
        .epoch(epoch)
        .map_err(unproven)?
        .ok_or(WorkerError::NoEpoch)?;
    let key_id = KeyId {
        epoch,
        tenant: attested.tenant.to_string(),
        path: format!("pruntime/sealing/{}", sealing_salt(config)?),
        purpose: "sealing".into(),
    };
    // (Evidence is written by `fetch_secret`: no registration yet to report it with.)
    let (secret, _) = fetch_secret(
        config,
        &Checked::default(),
        &set,
        &first,
        key_id,
        &attested,
        &ephemeral,
    )
    .await?;
    Ok((secret, epoch))
}

/// A salt of this worker's own (public, kept beside the sealed identity as
/// `sealing-salt`, made on first use): every TD of a tenant seals under its own key, so
/// one leaked sealing key opens no other worker's identity (review NC2). Anyone who
/// could ask under the tenant could ask for any salt; what the salt buys is that a key,
/// once out, is one worker's.
fn sealing_salt(config: &WorkerConfig) -> Result<String, WorkerError> {
    let salt_path = config.data_dir.join("sealing-salt");
    Ok(match read_optional(&salt_path)? {
        Some(s) => String::from_utf8(s)
            .ok()
            .filter(|s| s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or(WorkerError::Other("sealing-salt is not 32 hex characters"))?,
        None => {
            let salt = hex::encode(rand::random::<[u8; 16]>());
            write_atomic(&salt_path, salt.as_bytes())?;
            salt
        }
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    /// A worker whose contract limits exceed what a receipt carries does not boot.
    #[test]
    fn limits_beyond_what_a_receipt_carries_are_refused() {
        assert!(check_limits(&Limits::default()).is_ok());
        for l in [
            Limits {
                max_output: phalanx_types::receipt::MAX_OUTPUT + 1,
                ..Limits::default()
            },
            Limits {
                max_events: phalanx_types::receipt::MAX_EVENTS + 1,
                ..Limits::default()
            },
            Limits {
                max_event: phalanx_types::receipt::MAX_EVENT + 1,
                ..Limits::default()
            },
        ] {
            assert!(check_limits(&l).is_err());
        }
    }

    /// The identity file: written under an epoch, it reads back the same identity only
    /// under that epoch's key and with its own epoch; an older Phalanx's file (no
    /// prefix, epoch 0) still opens; a changed epoch, another key or a cut file does not.
    #[test]
    fn identity_files_open_only_as_sealed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("identity.sealed");
        let key = |secret: u8| identity_sealing(&[secret; 32]).unwrap();
        let made = Identity::load_or_create(&key(1), &path, None, Epoch(3), [9; 32]).unwrap();
        let file = std::fs::read(&path).unwrap();
        let (epoch, _, older) = identity_file(&file);
        assert_eq!((epoch, older), (Epoch(3), false));
        let again = Identity::load_or_create(&key(1), &path, Some(&file), epoch, [9; 32]).unwrap();
        assert_eq!(again.signing.to_bytes(), made.signing.to_bytes());
        assert!(Identity::load_or_create(&key(2), &path, Some(&file), epoch, [9; 32]).is_err());
        // A host that rewrites the epoch gets nothing: the epoch is bound to the sealing.
        let mut moved = file.clone();
        moved[IDENTITY_FILE.len() + 7] ^= 1;
        let (moved_epoch, _, _) = identity_file(&moved);
        assert!(
            Identity::load_or_create(&key(1), &path, Some(&moved), moved_epoch, [9; 32]).is_err()
        );
        assert!(
            Identity::load_or_create(
                &key(1),
                &path,
                Some(&file[..file.len() - 1]),
                epoch,
                [9; 32]
            )
            .is_err()
        );
        // An older Phalanx's file: the sealed seed alone, under the tag alone.
        let older = key(1)
            .seal(phalanx_types::tag::WORKER_SEALED, &made.seed)
            .unwrap();
        let (epoch, _, is_older) = identity_file(&older);
        assert_eq!((epoch, is_older), (Epoch::GENESIS, true));
        let read = Identity::load_or_create(&key(1), &path, Some(&older), epoch, [9; 32]).unwrap();
        assert_eq!(read.signing.to_bytes(), made.signing.to_bytes());
    }
}
