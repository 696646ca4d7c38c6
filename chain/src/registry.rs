//! The [`Registry`] trait: what Phalanx needs from a chain, whatever the backend.
//!
//! Every mutation is signed by an account; every query answers from state the caller
//! can trust (the embedded ledger's own verified state, or a light client's state
//! rebuilt from verified blocks). [`SignedLedger`] is the bridge for backends that take
//! this crate's signed transactions ([`crate::ledger::Ledger`] in-process and
//! [`crate::grpc::LightClient`] over the network): it signs with the account's next
//! sequence number and submits, so one implementation of [`Registry`] serves both.

use crate::state::{RuleError, State};
use crate::types::{
    Allowed, Command, Contract, ContractKey, EpochCertificate, EpochKey, Event, Gatekeeper,
    Misbehaviour, PublicKey, Registration, Role, Rotation, RoundDecision, SignedTx,
    StateCommitment, Tx, Worker, public_key,
};
use p256::ecdsa::SigningKey;
use phalanx_types::Epoch;
use std::future::Future;

/// Why a registry call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// A rule refused the change (the message names it).
    #[error(transparent)]
    Rule(RuleError),
    /// Data from the backend failed verification.
    #[error("unverifiable chain data: {0}")]
    Unverified(String),
    /// The backend could not be reached or failed.
    #[error("registry backend: {0}")]
    Backend(String),
}

impl From<crate::proof::ProofError> for RegistryError {
    fn from(e: crate::proof::ProofError) -> Self {
        Self::Unverified(e.to_string())
    }
}

#[cfg(feature = "ledger")]
impl From<crate::ledger::LedgerError> for RegistryError {
    fn from(e: crate::ledger::LedgerError) -> Self {
        use crate::ledger::LedgerError;
        match e {
            LedgerError::Rule(r) => Self::Rule(r),
            LedgerError::Corrupt { .. } => Self::Unverified(e.to_string()),
            other => Self::Backend(other.to_string()),
        }
    }
}

/// Every published epoch's keys, in order: the epochs from 0 until the first one proven
/// absent, read eight at a time by `read` (which proves the facts it is given, all at
/// one block, so the list is one block's).
pub async fn published_epochs<P, Fut>(
    mut read: impl FnMut(Vec<crate::facts::Fact>) -> Fut,
) -> Result<Vec<EpochKey>, RegistryError>
where
    Fut: Future<Output = Result<P, RegistryError>>,
    P: std::ops::Deref<Target = crate::proof::ProvenFacts>,
{
    const BATCH: u64 = 8;
    let mut out = Vec::new();
    loop {
        let next = out.len() as u64;
        let batch = (next..next + BATCH)
            .map(|e| crate::facts::Fact::Epoch(Epoch(e)))
            .collect();
        let v = read(batch).await?;
        for e in next..next + BATCH {
            match v.epoch(Epoch(e))? {
                Some(k) => out.push(k),
                None => return Ok(out),
            }
        }
    }
}

/// The registry: workers, allowed measurements, gatekeepers, master keys per epoch,
/// the rotation lock, and the events. Mutations return the height (block number) that
/// includes them.
pub trait Registry: Send + Sync {
    /// Who signs.
    type Account: Send + Sync;

    /// Registers (or refreshes) a worker with its evidence, signed by the worker's own
    /// account. The embedded ledger checks the evidence itself
    /// ([`crate::evidence::check`]); see each backend for what it checks.
    fn register_worker(
        &self,
        by: &Self::Account,
        registration: &Registration,
    ) -> impl Future<Output = Result<u64, RegistryError>> + Send;
    /// Governance: allows a measurement in a role.
    fn add_measurement(
        &self,
        by: &Self::Account,
        m: &[u8],
        role: Role,
    ) -> impl Future<Output = Result<u64, RegistryError>> + Send;
    /// Governance: disallows a measurement.
    fn remove_measurement(
        &self,
        by: &Self::Account,
        m: &[u8],
    ) -> impl Future<Output = Result<u64, RegistryError>> + Send;
    /// Governance: sets the TCB part of the evidence rule (accepted statuses, evidence
    /// lifetime, collateral floor); the roots stay the genesis's (on EVM, the endorsers').
    fn set_tcb_rule(
        &self,
        by: &Self::Account,
        rule: &crate::types::TcbRule,
    ) -> impl Future<Output = Result<u64, RegistryError>> + Send;
    /// Governance: replaces the gatekeeper set and sets the committee's threshold.
    fn set_gatekeepers(
        &self,
        by: &Self::Account,
        set: &[Gatekeeper],
        threshold: u16,
    ) -> impl Future<Output = Result<u64, RegistryError>> + Send;
    /// Governance: retires an epoch (not the newest; none a contract still needs).
    fn retire_epoch(
        &self,
        by: &Self::Account,
        epoch: Epoch,
    ) -> impl Future<Output = Result<u64, RegistryError>> + Send;
    /// Governance: locks a rotation to `epoch` (the next epoch).
    fn lock_rotation(
        &self,
        by: &Self::Account,
        epoch: Epoch,
    ) -> impl Future<Output = Result<u64, RegistryError>> + Send;
    /// Governance or a gatekeeper: publishes an epoch's keys with the whole
    /// committee's certificate ([`EpochCertificate`]).
    fn publish_master_key(
        &self,
        by: &Self::Account,
        certificate: &EpochCertificate,
    ) -> impl Future<Output = Result<u64, RegistryError>> + Send;
    /// Governance or a gatekeeper: decides round `id` aborted, unless its certificate
    /// was published first.
    fn abort_round(
        &self,
        by: &Self::Account,
        id: [u8; 32],
    ) -> impl Future<Output = Result<u64, RegistryError>> + Send;
    /// What the registry decided for round `id`.
    fn round_decision(
        &self,
        id: [u8; 32],
    ) -> impl Future<Output = Result<Option<RoundDecision>, RegistryError>> + Send;
    /// Anyone reports a gatekeeper's misbehaviour with its evidence ([`Misbehaviour`]);
    /// the registry checks it and takes the accused's registration away.
    fn report_misbehaviour(
        &self,
        by: &Self::Account,
        evidence: &Misbehaviour,
    ) -> impl Future<Output = Result<u64, RegistryError>> + Send;
    /// Governance: aborts the locked rotation.
    fn abort_rotation(
        &self,
        by: &Self::Account,
        epoch: Epoch,
    ) -> impl Future<Output = Result<u64, RegistryError>> + Send;

    /// The registry's identity, which every registration's quote names: the embedded
    /// ledger's chain id (the hash of its genesis); for EVM, a hash of the chain id and
    /// the contract's address.
    fn chain_id(&self) -> impl Future<Output = Result<[u8; 32], RegistryError>> + Send;
    /// How long a registration's evidence counts, seconds (the embedded ledger's
    /// genesis rule; `u64::MAX` where the backend does not check evidence).
    fn max_evidence_age(&self) -> impl Future<Output = Result<u64, RegistryError>> + Send;
    /// A registered worker by identity key.
    fn worker(
        &self,
        identity_key: &[u8],
    ) -> impl Future<Output = Result<Option<Worker>, RegistryError>> + Send;
    /// The allowed measurements.
    fn allowed_measurements(
        &self,
    ) -> impl Future<Output = Result<Vec<Allowed>, RegistryError>> + Send;
    /// The gatekeeper set.
    fn gatekeepers(&self) -> impl Future<Output = Result<Vec<Gatekeeper>, RegistryError>> + Send;
    /// An epoch's master key.
    fn master_key(
        &self,
        epoch: Epoch,
    ) -> impl Future<Output = Result<Option<EpochKey>, RegistryError>> + Send;
    /// The rotation lock.
    fn rotation(&self) -> impl Future<Output = Result<Rotation, RegistryError>> + Send;
    /// Events from `height` on.
    fn events(
        &self,
        from: u64,
    ) -> impl Future<Output = Result<Vec<(u64, Event)>, RegistryError>> + Send;
}

/// Confidential contracts on the registry: deployment, the keys workers publish, and
/// the commands the chain orders. Implemented by every backend that takes this crate's
/// signed transactions (the embedded ledger, in-process or through a light client).
pub trait ContractRegistry: Registry {
    /// Deploys `code` under `salt`; the height and the contract id.
    fn deploy_contract(
        &self,
        by: &Self::Account,
        code: &[u8],
        salt: [u8; 32],
    ) -> impl Future<Output = Result<(u64, [u8; 32]), RegistryError>> + Send;
    /// A worker publishes a contract's public keys for an epoch (the first stands).
    fn publish_contract_key(
        &self,
        by: &Self::Account,
        key: &ContractKey,
    ) -> impl Future<Output = Result<u64, RegistryError>> + Send;
    /// Submits a sealed command; the height that orders it.
    fn submit_command(
        &self,
        by: &Self::Account,
        command: &Command,
    ) -> impl Future<Output = Result<u64, RegistryError>> + Send;
    /// A worker commits to a contract's state ([`StateCommitment`]: each newer than the
    /// last, sealed under the contract's newest keys).
    fn commit_state(
        &self,
        by: &Self::Account,
        commitment: &StateCommitment,
    ) -> impl Future<Output = Result<u64, RegistryError>> + Send;
    /// A deployed contract, with its published keys.
    fn contract(
        &self,
        id: [u8; 32],
    ) -> impl Future<Output = Result<Option<Contract>, RegistryError>> + Send;
    /// A pRuntime announces where it serves `contract` ([`Tx::Serve`]).
    fn serve(
        &self,
        by: &Self::Account,
        contract: [u8; 32],
        endpoint: &str,
    ) -> impl Future<Output = Result<u64, RegistryError>> + Send;
    /// The workers that announced serving `contract`, with their URLs (the newest
    /// announcement of each; a URL is only where to knock, so each worker's standing
    /// and keys are the caller's to check).
    fn serving(
        &self,
        contract: [u8; 32],
    ) -> impl Future<Output = Result<Vec<(PublicKey, String)>, RegistryError>> + Send;
}

/// The newest announced URL of each worker serving `contract`, from the registry's
/// events in order; a URL the registry's rule would refuse is left out.
pub fn served(contract: [u8; 32], events: Vec<(u64, Event)>) -> Vec<(PublicKey, String)> {
    let mut out = std::collections::BTreeMap::new();
    for (_, e) in events {
        if let Event::Serving {
            contract: c,
            worker,
            endpoint,
        } = e
            && c == contract
            && crate::state::endpoint_ok(&endpoint)
        {
            out.insert(worker, endpoint);
        }
    }
    out.into_iter().collect()
}

/// A backend that takes this crate's signed transactions and yields verified state.
pub trait SignedLedger: Send + Sync {
    /// Submits a signed transaction; the height that includes it.
    fn submit_tx(&self, tx: SignedTx) -> impl Future<Output = Result<u64, RegistryError>> + Send;
    /// The verified state, at least as new as every earlier submission's block.
    fn verified_state(&self) -> impl Future<Output = Result<State, RegistryError>> + Send;
    /// The events from block `from` on: the verified state's (a ledger reads its stored
    /// ones: its state keeps only the newest block's).
    fn events_from(
        &self,
        from: u64,
    ) -> impl Future<Output = Result<Vec<(u64, Event)>, RegistryError>> + Send {
        async move { Ok(self.verified_state().await?.events_from(from)) }
    }
}

/// Signs `tx` as `by` with its next sequence number on `l`'s verified state and submits
/// it; the height that includes it. (Every [`Registry`] call of these backends goes
/// through it; transactions with no trait method, such as [`Tx::SetTcbRule`], too.)
pub async fn signed<L: SignedLedger>(l: &L, by: &SigningKey, tx: Tx) -> Result<u64, RegistryError> {
    let state = l.verified_state().await?;
    let nonce = state.nonce(&public_key(by.verifying_key()));
    l.submit_tx(SignedTx::sign(by, &state.chain_id(), nonce, tx))
        .await
}

impl<L: SignedLedger> Registry for L {
    type Account = SigningKey;

    async fn register_worker(
        &self,
        by: &SigningKey,
        registration: &Registration,
    ) -> Result<u64, RegistryError> {
        signed(self, by, Tx::RegisterWorker(registration.clone())).await
    }
    async fn add_measurement(
        &self,
        by: &SigningKey,
        m: &[u8],
        role: Role,
    ) -> Result<u64, RegistryError> {
        let tx = Tx::AddMeasurement {
            measurement: m.to_vec(),
            role,
        };
        signed(self, by, tx).await
    }
    async fn remove_measurement(&self, by: &SigningKey, m: &[u8]) -> Result<u64, RegistryError> {
        signed(self, by, Tx::RemoveMeasurement(m.to_vec())).await
    }
    async fn set_tcb_rule(
        &self,
        by: &SigningKey,
        rule: &crate::types::TcbRule,
    ) -> Result<u64, RegistryError> {
        signed(self, by, Tx::SetTcbRule(rule.clone())).await
    }
    async fn set_gatekeepers(
        &self,
        by: &SigningKey,
        set: &[Gatekeeper],
        threshold: u16,
    ) -> Result<u64, RegistryError> {
        let tx = Tx::SetGatekeepers {
            set: set.to_vec(),
            threshold,
        };
        signed(self, by, tx).await
    }
    async fn retire_epoch(&self, by: &SigningKey, epoch: Epoch) -> Result<u64, RegistryError> {
        signed(self, by, Tx::RetireEpoch(epoch)).await
    }
    async fn lock_rotation(&self, by: &SigningKey, epoch: Epoch) -> Result<u64, RegistryError> {
        signed(self, by, Tx::LockRotation(epoch)).await
    }
    async fn publish_master_key(
        &self,
        by: &SigningKey,
        certificate: &EpochCertificate,
    ) -> Result<u64, RegistryError> {
        signed(self, by, Tx::PublishMasterKey(certificate.clone())).await
    }
    async fn report_misbehaviour(
        &self,
        by: &SigningKey,
        evidence: &Misbehaviour,
    ) -> Result<u64, RegistryError> {
        signed(self, by, Tx::ReportMisbehaviour(evidence.clone())).await
    }

    async fn abort_rotation(&self, by: &SigningKey, epoch: Epoch) -> Result<u64, RegistryError> {
        signed(self, by, Tx::AbortRotation(epoch)).await
    }
    async fn abort_round(&self, by: &SigningKey, id: [u8; 32]) -> Result<u64, RegistryError> {
        signed(self, by, Tx::AbortRound(id)).await
    }
    async fn round_decision(&self, id: [u8; 32]) -> Result<Option<RoundDecision>, RegistryError> {
        Ok(self.verified_state().await?.round_decision(&id))
    }

    async fn chain_id(&self) -> Result<[u8; 32], RegistryError> {
        Ok(self.verified_state().await?.chain_id())
    }
    async fn max_evidence_age(&self) -> Result<u64, RegistryError> {
        Ok(self
            .verified_state()
            .await?
            .evidence_rule()
            .max_evidence_age)
    }
    async fn worker(&self, identity_key: &[u8]) -> Result<Option<Worker>, RegistryError> {
        Ok(self.verified_state().await?.worker(identity_key).cloned())
    }
    async fn allowed_measurements(&self) -> Result<Vec<Allowed>, RegistryError> {
        Ok(self.verified_state().await?.allowed())
    }
    async fn gatekeepers(&self) -> Result<Vec<Gatekeeper>, RegistryError> {
        Ok(self.verified_state().await?.gatekeepers().to_vec())
    }
    async fn master_key(&self, epoch: Epoch) -> Result<Option<EpochKey>, RegistryError> {
        Ok(self.verified_state().await?.master_key(epoch).cloned())
    }
    async fn rotation(&self) -> Result<Rotation, RegistryError> {
        Ok(self.verified_state().await?.rotation())
    }
    async fn events(&self, from: u64) -> Result<Vec<(u64, Event)>, RegistryError> {
        self.events_from(from).await
    }
}

impl<L: SignedLedger> ContractRegistry for L {
    async fn deploy_contract(
        &self,
        by: &SigningKey,
        code: &[u8],
        salt: [u8; 32],
    ) -> Result<(u64, [u8; 32]), RegistryError> {
        let deployer = public_key(by.verifying_key());
        let id = phalanx_types::contract::contract_id(
            &self.verified_state().await?.chain_id(),
            &deployer,
            &phalanx_types::contract::code_hash(code),
            &salt,
        );
        let tx = Tx::DeployContract {
            code: code.to_vec(),
            salt,
        };
        Ok((signed(self, by, tx).await?, id))
    }
    async fn publish_contract_key(
        &self,
        by: &SigningKey,
        key: &ContractKey,
    ) -> Result<u64, RegistryError> {
        signed(self, by, Tx::PublishContractKey(key.clone())).await
    }
    async fn submit_command(
        &self,
        by: &SigningKey,
        command: &Command,
    ) -> Result<u64, RegistryError> {
        signed(self, by, Tx::Command(command.clone())).await
    }
    async fn commit_state(
        &self,
        by: &SigningKey,
        commitment: &StateCommitment,
    ) -> Result<u64, RegistryError> {
        signed(self, by, Tx::CommitState(commitment.clone())).await
    }
    async fn contract(&self, id: [u8; 32]) -> Result<Option<Contract>, RegistryError> {
        Ok(self.verified_state().await?.contract(&id).cloned())
    }
    async fn serve(
        &self,
        by: &SigningKey,
        contract: [u8; 32],
        endpoint: &str,
    ) -> Result<u64, RegistryError> {
        let tx = Tx::Serve {
            contract,
            endpoint: endpoint.to_owned(),
        };
        signed(self, by, tx).await
    }
    async fn serving(&self, contract: [u8; 32]) -> Result<Vec<(PublicKey, String)>, RegistryError> {
        Ok(self.verified_state().await?.serving(&contract))
    }
}

#[cfg(feature = "ledger")]
impl SignedLedger for crate::ledger::Ledger {
    async fn submit_tx(&self, tx: SignedTx) -> Result<u64, RegistryError> {
        Ok(self.submit(tx)?)
    }
    async fn verified_state(&self) -> Result<State, RegistryError> {
        Ok(self.state()?)
    }
    async fn events_from(&self, from: u64) -> Result<Vec<(u64, Event)>, RegistryError> {
        Ok(self.events(from)?)
    }
}

impl<L: SignedLedger> SignedLedger for std::sync::Arc<L> {
    async fn submit_tx(&self, tx: SignedTx) -> Result<u64, RegistryError> {
        (**self).submit_tx(tx).await
    }
    async fn verified_state(&self) -> Result<State, RegistryError> {
        (**self).verified_state().await
    }
    async fn events_from(&self, from: u64) -> Result<Vec<(u64, Event)>, RegistryError> {
        (**self).events_from(from).await
    }
}
