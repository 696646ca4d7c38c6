//! The registry a worker follows, either backend, behind the few reads and writes the
//! worker makes — every read a set of facts proven at one block:
//!
//! - the embedded ledger, through [`chain::grpc::LightClient`] (proofs against headers
//!   signed by the chain's authority, from a pinned genesis, each header extending the
//!   last one verified);
//! - the Solidity registry, through [`chain::evm::EvmRegistry`] (`eth_getProof` proofs
//!   against its node's block headers; the registry's id — chain id and address — is
//!   pinned; transactions from the worker's own Ethereum account; registrations
//!   endorsed by the gatekeepers in standing).
//!
//! A contract's commands come as verified pages of its own feed: the ledger's
//! [`chain::proof::CommandPage`], or on EVM an [`chain::evm_proof::EvmPage`] of the
//! blocks after the executor's position, only as far as the confirmation depth.

use chain::evm::{EvmAccount, EvmRegistry};
use chain::evm_proof::EvmVerified;
use chain::facts::Fact;
use chain::grpc::LightClient;
use chain::proof::{ProvenFacts, Verified};
use chain::registry::{ContractRegistry as _, Registry as _, RegistryError};
use chain::types::{ContractKey, EpochKey, Registration};
use chain::view::GatekeeperSet;

/// The registry a worker follows.
#[derive(Debug)]
pub enum WorkerRegistry {
    /// The embedded ledger.
    Ledger(Box<LightClient>),
    /// A Solidity registry.
    Evm(Box<EvmFollow>),
}

/// A Solidity registry as a worker follows it.
#[derive(Debug)]
pub struct EvmFollow {
    /// The contract (with the gatekeepers' endorsements for registrations).
    pub registry: EvmRegistry,
    /// The worker's account: its Ethereum key, and its identity key it proves.
    pub account: EvmAccount,
    /// Blocks a command's block must be below the node's newest before it runs.
    pub confirmations: u64,
}

/// Facts proven at one block of either registry (read through [`ProvenFacts`]).
#[derive(Debug, Clone)]
pub enum Proven {
    /// At a ledger header.
    Ledger(Verified),
    /// At an EVM block.
    Evm(EvmVerified),
}

impl std::ops::Deref for Proven {
    type Target = ProvenFacts;

    fn deref(&self) -> &ProvenFacts {
        match self {
            Self::Ledger(v) => v,
            Self::Evm(v) => v,
        }
    }
}

impl Proven {
    /// The block the facts hold at.
    pub fn height(&self) -> u64 {
        match self {
            Self::Ledger(v) => v.header.height,
            Self::Evm(v) => v.block.number,
        }
    }
}

impl WorkerRegistry {
    /// The registry's id, which every quote of this worker names: the ledger's chain
    /// id (the hash of its genesis), or the EVM registry's (its chain id and address).
    pub async fn id(&self) -> Result<[u8; 32], RegistryError> {
        match self {
            Self::Ledger(c) => Ok(c.facts(&[]).await?.header.chain_id),
            Self::Evm(e) => e.registry.chain_id().await,
        }
    }

    /// `facts`, proven at the registry's newest block.
    pub async fn facts(&self, facts: &[Fact]) -> Result<Proven, RegistryError> {
        match self {
            Self::Ledger(c) => Ok(Proven::Ledger(c.facts(facts).await?)),
            Self::Evm(e) => Ok(Proven::Evm(e.registry.proven(facts, None).await?)),
        }
    }

    /// `facts` proven at the block at `height` (on EVM its node must keep that state).
    pub async fn facts_at_height(
        &self,
        height: u64,
        facts: &[Fact],
    ) -> Result<Proven, RegistryError> {
        match self {
            Self::Ledger(c) => Ok(Proven::Ledger(c.facts_in_history(height, facts).await?)),
            Self::Evm(e) => Ok(Proven::Evm(e.registry.proven(facts, Some(height)).await?)),
        }
    }

    /// `facts` at the block `at` holds at.
    async fn facts_at(&self, at: &Proven, facts: &[Fact]) -> Result<Proven, RegistryError> {
        match self {
            Self::Ledger(c) => Ok(Proven::Ledger(c.facts_at(at.height(), facts).await?)),
            Self::Evm(e) => Ok(Proven::Evm(
                e.registry.proven(facts, Some(at.height())).await?,
            )),
        }
    }

    /// How long a registration's evidence counts (seconds), proven with `facts`.
    pub async fn lifetime_with(&self, facts: &[Fact]) -> Result<(u64, Proven), RegistryError> {
        let bad = |e: chain::proof::ProofError| RegistryError::Unverified(e.to_string());
        match self {
            Self::Ledger(_) => {
                let p = self.facts(&[facts, &[Fact::Rule]].concat()).await?;
                Ok((p.rule().map_err(bad)?.max_evidence_age, p))
            }
            Self::Evm(_) => {
                let p = self.facts(&[facts, &[Fact::TcbRule]].concat()).await?;
                let rule = p
                    .read(&Fact::TcbRule, chain::facts::read_tcb_rule)
                    .map_err(bad)?
                    .ok_or_else(|| RegistryError::Unverified("no TCB rule".into()))?;
                Ok((rule.max_evidence_age, p))
            }
        }
    }

    /// The gatekeeper set with each member's standing at `now`, and `extra` facts, all
    /// proven at one block.
    pub async fn gatekeeper_set(
        &self,
        extra: &[Fact],
        now: i64,
    ) -> Result<(GatekeeperSet, Proven), RegistryError> {
        match self {
            Self::Ledger(c) => {
                let (set, v) = c.gatekeeper_set(extra, now).await?;
                Ok((set, Proven::Ledger(v)))
            }
            Self::Evm(e) => {
                let latest = e.registry.proven(&[], None).await?;
                let at = Some(latest.block.number);
                let set = e.registry.gatekeeper_set(now, at).await?;
                Ok((set, Proven::Evm(e.registry.proven(extra, at).await?)))
            }
        }
    }

    /// Every published epoch's keys, in order, at the block `proven` holds at.
    pub async fn epochs(&self, proven: &Proven) -> Result<Vec<EpochKey>, RegistryError> {
        if let (Self::Ledger(c), Proven::Ledger(v)) = (self, proven) {
            return c.epochs(v).await;
        }
        chain::registry::published_epochs(
            |batch| async move { self.facts_at(proven, &batch).await },
        )
        .await
    }

    /// Contract `id`'s module, checked against what `proven` says of it: on the ledger
    /// its deploying block; on EVM its deployment log, whose code must hash to the
    /// proven code hash, which with the proven deployer and salt must make the id.
    pub async fn contract_code(
        &self,
        proven: &Proven,
        id: &[u8; 32],
    ) -> Result<Vec<u8>, RegistryError> {
        let unverified = RegistryError::Unverified;
        match (self, proven) {
            (Self::Ledger(c), Proven::Ledger(v)) => c.contract_code(v, id).await,
            (Self::Evm(e), Proven::Evm(v)) => {
                let fact = v.contract(id)?.ok_or_else(|| {
                    unverified(format!("contract {} is not deployed", hex::encode(id)))
                })?;
                let named = phalanx_types::contract::contract_id(
                    &v.registry_id,
                    &fact.deployer,
                    &fact.code_hash,
                    &fact.salt,
                );
                let code = e
                    .registry
                    .contract(*id)
                    .await?
                    .map(|c| c.code.to_vec())
                    .ok_or_else(|| {
                        unverified(format!(
                            "the node shows no deployment of contract {}",
                            hex::encode(id)
                        ))
                    })?;
                if named != *id || phalanx_types::contract::code_hash(&code) != fact.code_hash {
                    return Err(unverified(format!(
                        "the module the node gives for contract {} is not the deployed one",
                        hex::encode(id)
                    )));
                }
                Ok(code)
            }
            _ => Err(unverified("facts of another registry".into())),
        }
    }

    /// Registers the worker (`identity` signs on the ledger; on EVM its account sends,
    /// with the gatekeepers' endorsements); the height and the worker's fact, proven at
    /// or after it.
    pub async fn register(
        &self,
        identity: &p256::ecdsa::SigningKey,
        registration: &Registration,
    ) -> Result<(u64, Proven), RegistryError> {
        let effect = [Fact::Worker(registration.identity_key.clone())];
        match self {
            Self::Ledger(c) => {
                let tx = chain::types::Tx::RegisterWorker(registration.clone());
                let (h, v) = c.submit_proven(identity, tx, &effect).await?;
                Ok((h, Proven::Ledger(v)))
            }
            Self::Evm(e) => {
                let h = e.registry.register_worker(&e.account, registration).await?;
                Ok((h, self.facts_after(h, &effect).await?))
            }
        }
    }

    /// Publishes contract keys `key` (as on [`Self::register`]); the height and the
    /// key's fact.
    pub async fn publish_contract_key(
        &self,
        identity: &p256::ecdsa::SigningKey,
        key: &ContractKey,
    ) -> Result<(u64, Proven), RegistryError> {
        let effect = [Fact::ContractKey(key.contract, key.epoch)];
        match self {
            Self::Ledger(c) => {
                let tx = chain::types::Tx::PublishContractKey(key.clone());
                let (h, v) = c.submit_proven(identity, tx, &effect).await?;
                Ok((h, Proven::Ledger(v)))
            }
            Self::Evm(e) => {
                let h = e.registry.publish_contract_key(&e.account, key).await?;
                Ok((h, self.facts_after(h, &effect).await?))
            }
        }
    }

    /// Announces that this worker (`identity`) serves `contract` at `endpoint`, unless
    /// the registry lists exactly that already; whether it sent the announcement.
    pub async fn announce(
        &self,
        identity: &p256::ecdsa::SigningKey,
        contract: [u8; 32],
        endpoint: &str,
    ) -> Result<bool, RegistryError> {
        let me = chain::types::public_key(identity.verifying_key());
        let listed = match self {
            Self::Ledger(c) => c.serving(contract).await?,
            Self::Evm(e) => e.registry.serving(contract).await?,
        };
        if listed.iter().any(|(w, url)| *w == me && url == endpoint) {
            return Ok(false);
        }
        match self {
            Self::Ledger(c) => c.serve(identity, contract, endpoint).await?,
            Self::Evm(e) => e.registry.serve(&e.account, contract, endpoint).await?,
        };
        Ok(true)
    }

    /// Commits to a contract's state (as on [`Self::register`]); the height and the
    /// contract's state fact.
    pub async fn commit_state(
        &self,
        identity: &p256::ecdsa::SigningKey,
        commitment: &chain::types::StateCommitment,
    ) -> Result<(u64, Proven), RegistryError> {
        let effect = [Fact::State(commitment.contract)];
        match self {
            Self::Ledger(c) => {
                let tx = chain::types::Tx::CommitState(commitment.clone());
                let (h, v) = c.submit_proven(identity, tx, &effect).await?;
                Ok((h, Proven::Ledger(v)))
            }
            Self::Evm(e) => {
                let h = e.registry.commit_state(&e.account, commitment).await?;
                Ok((h, self.facts_after(h, &effect).await?))
            }
        }
    }

    /// Reports a gatekeeper's misbehaviour with its evidence (signed by the worker's
    /// identity on a ledger, its account on EVM); the height that took it.
    pub async fn report_misbehaviour(
        &self,
        identity: &p256::ecdsa::SigningKey,
        evidence: &chain::types::Misbehaviour,
    ) -> Result<u64, RegistryError> {
        use chain::registry::Registry as _;
        match self {
            Self::Ledger(c) => c.report_misbehaviour(identity, evidence).await,
            Self::Evm(e) => e.registry.report_misbehaviour(&e.account, evidence).await,
        }
    }

    /// `facts` proven at the newest block, which must be at least `height` (a node that
    /// says it included a transaction must show its effect).
    async fn facts_after(&self, height: u64, facts: &[Fact]) -> Result<Proven, RegistryError> {
        let proven = self.facts(facts).await?;
        if proven.height() < height {
            return Err(RegistryError::Unverified(format!(
                "block {height} was not served"
            )));
        }
        Ok(proven)
    }
}
