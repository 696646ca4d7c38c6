//! The devnet's registry, either backend, and every step of the devnet that differs
//! between them — one place, each step a method with one arm per backend:
//!
//! - **ledger** (the default): the embedded ledger in `<dir>/chain` on loopback; it
//!   verifies registrations' quotes itself; the devnet holds its governance key.
//! - **anvil**: anvil started from `$ANVIL` or the `PATH` (`make devnet
//!   ARGS=--chain=anvil` installs the pinned npm package first), the Solidity registry
//!   deployed on it, governed by an account the devnet holds (its key written to
//!   `<dir>/chain/governance-eth.key` for `phalanx chain tx`); the gatekeepers'
//!   registrations approved by governance, later ones endorsed by the gatekeepers; every
//!   process's Ethereum account funded from anvil's. anvil keeps its chain in memory, so
//!   such a devnet starts afresh on each run.
//! - **an EVM node** (`--chain http://NODE:8545 --evm-key FILE`): the same on a chain
//!   that outlives the devnet, paid for and governed by the account in `FILE`: a new
//!   registry, or with `--registry 0xADDRESS` the one a devnet deployed there before
//!   (whose governance that account is), resumed from the directory it left.

use super::{Stop, Task, now, stopped};
use anyhow::Context as _;
use chain::evm::{EvmAccount, EvmRegistry};
use chain::ledger::Ledger;
use chain::registry::{ContractRegistry as _, Registry as _};
use chain::types::{Gatekeeper, Role, Rotation, public_key};
use keyvault::app::{NodeApp, RegistryConfig};
use keyvault::registry::RegistryHooks;
use phalanx_dcap_sim::SimTee;
use phalanx_types::Epoch;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Which chain the devnet's registry runs on (`--chain ledger | anvil | http://NODE`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum DevChain {
    /// The embedded ledger (no setup).
    #[default]
    Ledger,
    /// The Solidity registry on a local anvil (fresh on each run).
    Anvil,
    /// The Solidity registry on the EVM node at this JSON-RPC URL.
    Node(String),
}

impl std::str::FromStr for DevChain {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "ledger" => Ok(Self::Ledger),
            "anvil" => Ok(Self::Anvil),
            url if url.starts_with("http://") => Ok(Self::Node(url.to_owned())),
            other => Err(format!(
                "{other:?}: ledger, anvil, or an EVM node's http:// JSON-RPC URL"
            )),
        }
    }
}

/// On an EVM node: the devnet's account and the registry to join.
#[derive(Debug, Clone, Default)]
pub struct Joining {
    /// The key file of the account that pays and governs (`--evm-key`).
    pub key: Option<PathBuf>,
    /// A registry deployed before (`--registry`), else a new one.
    pub registry: Option<[u8; 20]>,
}

/// The devnet's registry (see the module doc).
pub(super) struct DevRegistry {
    backend: Backend,
    /// The pin: the ledger's genesis hash, or the Solidity registry's id.
    pub genesis: [u8; 32],
    /// The registry as configs name it.
    pub url: String,
    /// The governance key's file.
    pub governance_file: PathBuf,
    /// The ledger node's task.
    pub task: Option<Task>,
}

enum Backend {
    Ledger {
        ledger: Arc<Ledger>,
        /// The devnet holds the governance key itself (development only).
        governance: p256::ecdsa::SigningKey,
    },
    Evm(Box<Evm>),
}

struct Evm {
    /// Kept running while the devnet runs (on anvil).
    _anvil: Option<chain::evm::Anvil>,
    /// Pays for every process's gas (anvil's unlocked account when none).
    funder: Option<chain::evm::PrivateKeySigner>,
    rpc: String,
    registry: EvmRegistry,
    governance: EvmAccount,
    /// The user who deploys the counter and sends its commands.
    user: EvmAccount,
    /// The simulated root, as a rule (governance checks the gatekeepers' quotes to it).
    sim: chain::types::EvidenceRule,
    /// Its PEM file (the gatekeepers endorse to it).
    sim_root: PathBuf,
}

/// The confirmation depth of the devnet's pRuntime on anvil (each block is final: only
/// the devnet writes to the chain).
const ANVIL_CONFIRMATIONS: u64 = 0;

impl DevRegistry {
    /// Step 2: the registry (its node on loopback), trusting the devnet's simulated
    /// root, with the allowed measurements and their roles: the gatekeepers, pRuntime
    /// on SGX and TDX.
    pub async fn start(
        dir: &Path,
        sim: &SimTee,
        stop: &Stop,
        on: &DevChain,
        joining: &Joining,
    ) -> anyhow::Result<Self> {
        let chain_dir = dir.join("chain");
        std::fs::create_dir_all(&chain_dir)?;
        let r = match on {
            DevChain::Ledger => Self::start_ledger(dir, &chain_dir, sim, stop).await?,
            DevChain::Anvil => Self::start_evm(&chain_dir, sim, None, &Joining::default()).await?,
            DevChain::Node(rpc) => Self::start_evm(&chain_dir, sim, Some(rpc), joining).await?,
        };
        let td = super::pruntime_td(
            super::PRUNTIME_MR_TD,
            super::pruntime_td_config_id(r.genesis, r.confirmations()),
        );
        for (m, role) in [
            (super::gatekeeper_tenant().digest(), Role::Gatekeeper),
            (
                super::pruntime_tenant(super::pruntime_mr_enclave()?).digest(),
                Role::Runtime,
            ),
            (td.digest(), Role::Runtime),
        ] {
            r.allow(&m, role).await?;
        }
        Ok(r)
    }

    async fn start_ledger(
        dir: &Path,
        chain_dir: &Path,
        sim: &SimTee,
        stop: &Stop,
    ) -> anyhow::Result<Self> {
        let governance_file = chain_dir.join("governance.key");
        let governance = keyvault::registry::key_file(&governance_file)?;
        let ledger = Arc::new(
            Ledger::open(
                &chain_dir.join("ledger"),
                keyvault::registry::key_file(&chain_dir.join("authority.key"))?,
                public_key(governance.verifying_key()),
                chain::sim::evidence_rule(sim),
                now,
            )
            .with_context(|| {
                format!(
                    "the devnet's ledger in {} does not open (made by an older Phalanx, whose blocks this one no longer reads?): remove {} to start a fresh devnet",
                    chain_dir.display(),
                    dir.display()
                )
            })?,
        );
        let genesis = ledger
            .blocks(0, 1)?
            .first()
            .map(|b| b.hash())
            .context("ledger without genesis")?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let serve = chain::grpc::serve(listener, ledger.clone(), stopped(stop));
        let task = tokio::spawn(async move { serve.await.map_err(anyhow::Error::from) });
        Ok(Self {
            backend: Backend::Ledger { ledger, governance },
            genesis,
            url,
            governance_file,
            task: Some(task),
        })
    }

    /// The Solidity registry on anvil (`rpc` none: started here) or on the node at
    /// `rpc` (paid for and governed by `joining.key`'s account; `joining.registry`, or a
    /// new one).
    async fn start_evm(
        chain_dir: &Path,
        sim: &SimTee,
        rpc: Option<&str>,
        joining: &Joining,
    ) -> anyhow::Result<Self> {
        let mut governance_file = chain_dir.join("governance-eth.key");
        let (anvil, rpc, governance, funder) = match rpc {
            None => {
                let anvil = chain::evm::Anvil::start(None).await?.context(
                    "anvil is not installed: `make devnet ARGS=--chain=anvil` installs the pinned npm package (scripts/ensure-evm.sh), or set ANVIL",
                )?;
                let rpc = anvil.url().to_owned();
                tracing::warn!(%rpc, "devnet on anvil: a fresh chain in memory, forgotten when the devnet stops");
                let governance = chain::evm::funded(&rpc).await?;
                (Some(anvil), rpc, governance, None)
            }
            Some(rpc) => {
                let key = joining.key.as_ref().context(
                    "--chain http://… needs --evm-key: the account that pays for the devnet and governs its registry",
                )?;
                let signer = chain::evm::signer_file(key, false)?;
                // Named, not copied: the operator's key stays where it is.
                governance_file = key.clone();
                (None, rpc.to_owned(), signer.clone(), Some(signer))
            }
        };
        let governance = EvmAccount::plain(governance);
        if !governance_file.exists() {
            phalanx_types::secret_file::create(
                &governance_file,
                zeroize::Zeroizing::new(hex::encode(governance.signer.to_bytes())).as_bytes(),
            )?;
        }
        let registry = match joining.registry {
            Some(address) => EvmRegistry::at(&rpc, address.into())?,
            None => {
                EvmRegistry::deploy(&rpc, &governance.signer, governance.signer.address()).await?
            }
        };
        let user = EvmAccount::plain(chain::evm::signer_file(
            &chain_dir.join("user-eth.key"),
            true,
        )?);
        let sim_root = chain_dir.join("sim-root.pem");
        std::fs::write(&sim_root, sim.root_pem())?;
        let genesis = registry.chain_id().await?;
        let url = format!("evm+{rpc}#{}", registry.address());
        let r = Self {
            backend: Backend::Evm(Box::new(Evm {
                _anvil: anvil,
                funder,
                rpc,
                registry,
                governance,
                user,
                sim: chain::sim::evidence_rule(sim),
                sim_root,
            })),
            genesis,
            url,
            governance_file,
            task: None,
        };
        if let Backend::Evm(e) = &r.backend {
            r.fund(e.user.signer.address()).await?;
        }
        Ok(r)
    }

    /// Funds `to` when it holds less than a tenth of an ether (on an EVM chain; nothing
    /// on the ledger): a resumed devnet's accounts, derived from identities it keeps,
    /// are funded once.
    async fn fund(&self, to: chain::evm::Address) -> anyhow::Result<()> {
        let Backend::Evm(e) = &self.backend else {
            return Ok(());
        };
        let tenth = chain::evm::U256::from(10u64.pow(17));
        if e.registry.balance(to).await? >= tenth {
            return Ok(());
        }
        match &e.funder {
            None => chain::evm::fund(&e.rpc, to).await?,
            Some(funder) => {
                chain::evm::transfer(&e.rpc, funder, to, tenth * chain::evm::U256::from(5u64))
                    .await?;
            }
        }
        Ok(())
    }

    /// The pRuntime's confirmation depth (none on the ledger).
    pub fn confirmations(&self) -> Option<u64> {
        match self.backend {
            Backend::Ledger { .. } => None,
            Backend::Evm(_) => Some(ANVIL_CONFIRMATIONS),
        }
    }

    /// Allows `m` in `role` unless it is.
    async fn allow(&self, m: &[u8], role: Role) -> anyhow::Result<()> {
        match &self.backend {
            Backend::Ledger { ledger, governance } => {
                if !ledger
                    .allowed_measurements()
                    .await?
                    .iter()
                    .any(|a| a.measurement == m)
                {
                    ledger.add_measurement(governance, m, role).await?;
                }
            }
            Backend::Evm(e) => {
                if !e
                    .registry
                    .allowed_measurements()
                    .await?
                    .iter()
                    .any(|a| a.measurement == m)
                {
                    e.registry.add_measurement(&e.governance, m, role).await?;
                }
            }
        }
        Ok(())
    }

    /// A gatekeeper's `[registry]`.
    pub fn config(&self) -> RegistryConfig {
        match &self.backend {
            Backend::Ledger { .. } => RegistryConfig {
                url: self.url.clone(),
                genesis: Some(hex::encode(self.genesis)),
                evidence_roots: Vec::new(),
            },
            Backend::Evm(e) => RegistryConfig {
                url: self.url.clone(),
                genesis: None,
                evidence_roots: vec![e.sim_root.clone()],
            },
        }
    }

    /// Attests and registers gatekeeper `app` (once: a restart reuses it). On anvil its
    /// account is funded first and governance approves the registration (no set is in
    /// standing yet).
    pub async fn register_gatekeeper(&self, app: &NodeApp) -> anyhow::Result<()> {
        let identity = app.node.identity().signing_key();
        match &self.backend {
            Backend::Ledger { ledger, .. } => {
                app.attest_and_register(Some((ledger.as_ref(), identity)))
                    .await?;
            }
            Backend::Evm(e) => {
                let account = chain::evm::identity_account(identity)?;
                self.fund(account.signer.address()).await?;
                let approving = chain::evm::KeyEndorser::new(
                    e.sim.clone(),
                    Vec::new(),
                    Some(e.governance.clone()),
                )?;
                let registry = e.registry.clone().with_endorser(Arc::new(approving));
                app.attest_and_register(Some((&registry, &account))).await?;
            }
        }
        Ok(())
    }

    /// Gatekeeper `app`'s round hooks (its registry head kept in `gdir` on the ledger).
    pub fn hooks(&self, app: &NodeApp, gdir: &Path) -> anyhow::Result<RegistryHooks> {
        let identity = app.node.identity().signing_key().clone();
        let evidence = keyvault::registry::Evidence::Check(app.node.clone());
        Ok(match &self.backend {
            Backend::Ledger { .. } => {
                RegistryHooks::new(&self.url, self.genesis, identity, evidence).with_checkpoint(
                    &gdir.join("registry-head"),
                    !app.node.status()?.epochs.is_empty(),
                )
            }
            Backend::Evm(e) => RegistryHooks::evm(
                e.registry.clone(),
                chain::evm::identity_account(&identity)?,
                identity,
                evidence,
                self.config().roots()?,
            ),
        })
    }

    /// Makes `set` the gatekeeper set unless it is, keeping the threshold governance set
    /// last (a resumed devnet stays as an operator's reshare left it); `fresh` on a
    /// registry that has none yet.
    pub async fn set_gatekeepers(&self, set: &[Gatekeeper], fresh: u16) -> anyhow::Result<()> {
        let kept = |t: u16| if t == 0 { fresh } else { t };
        let listed = self.gatekeepers().await?;
        match &self.backend {
            Backend::Ledger { ledger, governance } => {
                let now = ledger.state()?.committee_threshold();
                if listed != set || now == 0 {
                    ledger.set_gatekeepers(governance, set, kept(now)).await?;
                }
            }
            Backend::Evm(e) => {
                let now = e
                    .registry
                    .endorsing(phalanx_types::unix_now())
                    .await?
                    .threshold;
                let threshold = kept(now);
                if listed != set || now == 0 {
                    e.registry
                        .set_gatekeepers(&e.governance, set, threshold)
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// The gatekeeper set governance named last (empty on a fresh registry).
    pub async fn gatekeepers(&self) -> anyhow::Result<Vec<Gatekeeper>> {
        Ok(match &self.backend {
            Backend::Ledger { ledger, .. } => ledger.gatekeepers().await?,
            Backend::Evm(e) => e.registry.gatekeepers().await?,
        })
    }

    /// Locks the rotation to epoch 0 unless it is.
    pub async fn lock_genesis(&self) -> anyhow::Result<()> {
        let locked = Rotation::Locked(Epoch(0));
        match &self.backend {
            Backend::Ledger { ledger, governance } => {
                if ledger.rotation().await? != locked {
                    ledger.lock_rotation(governance, Epoch(0)).await?;
                }
            }
            Backend::Evm(e) => {
                if e.registry.rotation().await? != locked {
                    e.registry.lock_rotation(&e.governance, Epoch(0)).await?;
                }
            }
        }
        Ok(())
    }

    /// The newest published epoch's keys, if any (epochs before may be retired).
    pub async fn newest_key(&self) -> anyhow::Result<Option<chain::types::EpochKey>> {
        let mut newest = None;
        for e in 0.. {
            let key = match &self.backend {
                Backend::Ledger { ledger, .. } => ledger.master_key(Epoch(e)).await?,
                Backend::Evm(x) => x.registry.master_key(Epoch(e)).await?,
            };
            match key {
                Some(k) => newest = Some(k),
                None => break,
            }
        }
        Ok(newest)
    }

    /// The gatekeeper set with each member's standing now, as workers read it.
    pub async fn gatekeeper_set(&self) -> anyhow::Result<chain::view::GatekeeperSet> {
        let now = phalanx_types::unix_now();
        Ok(match &self.backend {
            Backend::Ledger { .. } => {
                let state = chain::grpc::LightClient::pinned(&self.url, self.genesis)
                    .sync()
                    .await?;
                chain::view::GatekeeperSet::of_state(&state, now)
            }
            Backend::Evm(e) => e.registry.gatekeeper_set(now, None).await?,
        })
    }

    /// Deploys `code` (once, on the ledger) as the devnet's user (`dir/chain/user.key` on
    /// the ledger); its id.
    pub async fn deploy(&self, dir: &Path, code: &[u8]) -> anyhow::Result<[u8; 32]> {
        let salt = [0u8; 32];
        match &self.backend {
            Backend::Ledger { ledger, .. } => {
                let user = keyvault::registry::key_file(&dir.join("chain/user.key"))?;
                let id = phalanx_types::contract::contract_id(
                    &ledger.state()?.chain_id(),
                    &public_key(user.verifying_key()),
                    &phalanx_types::contract::code_hash(code),
                    &salt,
                );
                if ledger.contract(id).await?.is_none() {
                    ledger.deploy_contract(&user, code, salt).await?;
                }
                Ok(id)
            }
            Backend::Evm(e) => {
                let id = phalanx_types::contract::contract_id(
                    &self.genesis,
                    e.user.signer.address().as_slice(),
                    &phalanx_types::contract::code_hash(code),
                    &salt,
                );
                if e.registry.contract(id).await?.is_some() {
                    return Ok(id);
                }
                Ok(e.registry.deploy_contract(&e.user, code, salt).await?.1)
            }
        }
    }

    /// Funds the Ethereum account of the worker `config` configures on `tee` (on anvil).
    pub async fn fund_worker(
        &self,
        config: &pruntime::worker::WorkerConfig,
        tee: &dyn pruntime::tee::Tee,
    ) -> anyhow::Result<()> {
        if let Backend::Evm(_) = &self.backend {
            let account = pruntime::worker::Worker::evm_account(config, tee).await?;
            self.fund(account).await?;
        }
        Ok(())
    }

    /// The devnet's user sends `input` to `contract`; the block that orders it.
    pub async fn send(&self, dir: &Path, contract: [u8; 32], input: &[u8]) -> anyhow::Result<u64> {
        Ok(match &self.backend {
            Backend::Ledger { .. } => {
                let user = keyvault::registry::key_file(&dir.join("chain/user.key"))?;
                let client = chain::grpc::LightClient::pinned(&self.url, self.genesis);
                pruntime::client::send_command(&client, &user, contract, input).await?
            }
            Backend::Evm(e) => {
                let caller = keyvault::registry::key_file(&dir.join("chain/user.key"))?;
                pruntime::client::send_command_evm(&e.registry, &e.user, &caller, contract, input)
                    .await?
            }
        })
    }

    /// Queries the worker at `url` (identity `worker`) as the devnet's user.
    pub async fn query(
        &self,
        dir: &Path,
        url: &str,
        worker: &[u8],
        contract: [u8; 32],
        input: &[u8],
    ) -> anyhow::Result<pruntime::client::Asked> {
        let http = reqwest::Client::new();
        let user = keyvault::registry::key_file(&dir.join("chain/user.key"))?;
        Ok(match &self.backend {
            Backend::Ledger { .. } => {
                let client = chain::grpc::LightClient::pinned(&self.url, self.genesis);
                pruntime::client::query(&client, &http, url, worker, &user, contract, input).await?
            }
            Backend::Evm(e) => {
                pruntime::client::query_evm(&e.registry, &http, url, worker, &user, contract, input)
                    .await?
            }
        })
    }

    /// The registry's part of an answer's bundle: proofs at the answer's block of the
    /// facts it rests on.
    pub async fn answer_proof(
        &self,
        statement: &phalanx_types::statement::Statement,
    ) -> anyhow::Result<phalanx_verify::RegistryProof> {
        let height = statement.height;
        Ok(match &self.backend {
            Backend::Ledger { ledger, .. } => phalanx_verify::registry_proof(
                statement,
                |keys| ledger.prove(height, keys),
                |at| {
                    ledger.blocks(at, 1)?.into_iter().next().ok_or(
                        chain::ledger::LedgerError::Corrupt {
                            height: at,
                            what: "missing".into(),
                        },
                    )
                },
            )?,
            Backend::Evm(e) => tokio::task::block_in_place(|| {
                let rt = tokio::runtime::Handle::current();
                phalanx_verify::evm_registry_proof(statement, |facts| {
                    rt.block_on(e.registry.prove(facts, Some(height)))
                })
            })?,
        })
    }

    /// The `phalanx verify answer` arguments that pin this registry offline, for an
    /// answer at `block_hash`.
    pub async fn pin_args(&self, block_hash: &[u8; 32]) -> anyhow::Result<String> {
        Ok(match &self.backend {
            Backend::Ledger { .. } => format!("--genesis {}", hex::encode(self.genesis)),
            Backend::Evm(e) => format!(
                "--evm-registry {}:{} --evm-block {}",
                e.registry.evm_chain_id().await?,
                e.registry.address(),
                hex::encode(block_hash)
            ),
        })
    }
}
