//! The EVM backend (feature `evm`): the Solidity `Registry` contract
//! (`contracts/Registry.sol`, compiled into the committed `contracts/Registry.json`)
//! through alloy. The contract enforces the same rules as [`crate::state`]; its custom
//! errors map onto the same [`RuleError`]s, so one conformance suite checks both
//! backends.
//!
//! Accounts are Ethereum accounts ([`EvmAccount`]: a [`PrivateKeySigner`], plus the
//! P-256 identity key a worker registers). An account owns an identity key only by
//! proving it: registration carries a P-256 signature by the identity key over
//! `"phalanx/v1/evm-account" ‖ chain id ‖ contract ‖ account`, which the contract
//! checks with the P256VERIFY precompile (EIP-7951 / RIP-7212, address `0x100`), so
//! nobody can front-run a gatekeeper's registration of its public key. Only the owning
//! account may refresh it ([`RuleError::NotSelf`]). An epoch's keys are published with
//! the committee's certificate, whose confirmations the contract verifies with the same
//! precompile. Heights are block numbers; replays are stopped by the chain's own nonces.
//! The node must offer P256VERIFY (anvil does; so do chains with Osaka or RIP-7212).
//!
//! Roles are the ledger's (an allowed measurement's role decides who publishes contract
//! keys and who joins the gatekeeper set). Evidence: the contract cannot afford DCAP
//! (4–5 M gas a quote), so a registration carries **endorsements** ([`crate::endorse`]):
//! at least the committee's threshold of gatekeepers in standing each checked the quote
//! themselves and signed the record it proves (tenant, keys, quote hash, TCB status,
//! evidence time); before any set exists, and while fewer than t members are in
//! standing (recovery), governance approves each registration (`approveBootstrap`). The contract checks the signatures with P256VERIFY, the TCB
//! status against its rule ([`EvmRegistry::set_tcb_rule`]) and the evidence's age; a
//! worker's standing lapses with its evidence, as on the ledger. Who collects the
//! endorsements is an [`Endorser`] the registry is built with: [`RemoteEndorser`] asks
//! the gatekeepers at the URLs the registry lists (their `Endorse` RPC, which
//! [`endorse_as`] serves); [`KeyEndorser`] holds keys in this process (tests, and
//! governance's approvals in the devnet).
//! [`EvmRegistry::prove`] fetches proofs of the registry's facts at a block, which
//! [`crate::evm_proof`] checks against the block's header.
//! The CLI (`phalanx chain …`, `phalanx verify answer`), the gatekeepers (config,
//! registration, round hooks: `keyvault::registry::RegistryHooks::evm`) and pRuntime
//! (`pruntime::registry::WorkerRegistry`) use this backend.

use crate::endorse::{Endorsement, Record};
use crate::registry::{ContractRegistry, Registry, RegistryError, served};
use crate::state::RuleError;
use crate::state::not_misbehaviour;
use crate::types::TcbRule;
use crate::types::{
    Allowed, Command, Contract, ContractKey, EpochCertificate, EpochKey, Event, Fault, Gatekeeper,
    Misbehaviour, PublicKey, Registration, Role, Rotation, RoundDecision, StateCommitment, Worker,
};
use alloy::eips::BlockId;
use alloy::primitives::{Bytes, FixedBytes};
use alloy::providers::{Provider, ProviderBuilder};
use alloy::rpc::types::Filter;
use alloy::sol_types::SolEventInterface;
use phalanx_types::Epoch;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub use alloy::primitives::{Address, U256};
pub use alloy::signers::local::PrivateKeySigner;

/// Domain tag of the proof that an Ethereum account holds a P-256 identity key.
pub const ACCOUNT_TAG: &[u8] = phalanx_types::tag::EVM_ACCOUNT;

/// Loads an Ethereum account's key file — 32 secret bytes as hex, mode 0600, like every
/// key file here — creating it with a fresh key if `create` and it is absent.
pub fn signer_file(path: &std::path::Path, create: bool) -> anyhow::Result<PrivateKeySigner> {
    if create && !path.exists() {
        let key = PrivateKeySigner::random();
        let hex = zeroize::Zeroizing::new(crate::hex(key.to_bytes().as_slice()));
        phalanx_types::secret_file::create(path, hex.as_bytes())?;
    }
    let raw = phalanx_types::secret_file::read_key32(path)?;
    PrivateKeySigner::from_slice(raw.as_slice())
        .map_err(|_| anyhow::anyhow!("{} is not a secp256k1 key", path.display()))
}

/// The Ethereum account of the process whose identity key is `identity`: its key is
/// derived from the identity ([`crate::derive_from_identity`] under
/// [`phalanx_types::tag::EVM_ACCOUNT_KEY`]), so it lives wherever the identity lives —
/// sealed in a TEE — and never in a file its host could read. Fund its address.
pub fn identity_account(identity: &p256::ecdsa::SigningKey) -> anyhow::Result<EvmAccount> {
    let secret = crate::derive_from_identity(identity, phalanx_types::tag::EVM_ACCOUNT_KEY);
    let signer = PrivateKeySigner::from_slice(secret.as_slice())
        .map_err(|_| anyhow::anyhow!("the identity derives no secp256k1 key"))?;
    Ok(EvmAccount {
        signer,
        identity: Some(identity.clone()),
    })
}

/// An Ethereum account, with the P-256 identity key it registers as a worker (none
/// for governance).
#[derive(Debug, Clone)]
pub struct EvmAccount {
    /// Signs the Ethereum transactions.
    pub signer: PrivateKeySigner,
    /// The worker's identity key, which proves the account owns it.
    pub identity: Option<p256::ecdsa::SigningKey>,
}

impl EvmAccount {
    /// An account that registers no worker (governance, a deployer).
    pub fn plain(signer: PrivateKeySigner) -> Self {
        Self {
            signer,
            identity: None,
        }
    }
}

mod anvil;
mod endorsing;
mod feed;
mod prove;

pub use anvil::{Anvil, fund, funded, transfer};
pub use endorsing::{
    ENDORSE_TIMEOUT, EndorseError, Endorsing, GovernanceApproval, KeyEndorser, MAX_ENDORSE_MESSAGE,
    RemoteEndorser, endorse_as, endorse_with,
};

/// The contract's bindings, generated from the committed artifact.
#[allow(missing_docs, clippy::too_many_arguments)]
pub mod abi {
    alloy::sol!(
        #[sol(rpc)]
        #[derive(Debug)]
        RegistryContract,
        "contracts/Registry.json"
    );
}

/// The registry's evidence checker (`contracts/Registry.sol`'s `Judge`, created with
/// each registry at the address its `judge()` names), as far as this crate calls it.
#[allow(clippy::too_many_arguments)]
pub mod judge_abi {
    alloy::sol!(
        #[sol(rpc)]
        #[derive(Debug)]
        JudgeContract,
        r#"[
            {"type":"error","name":"NotMisbehaviour","inputs":[{"name":"why","type":"uint8"}]},
            {"type":"function","name":"reportConfirmation","stateMutability":"nonpayable","outputs":[],"inputs":[
                {"name":"key","type":"bytes"},{"name":"point","type":"bytes"},{"name":"roundId","type":"bytes32"},
                {"name":"index","type":"uint16"},{"name":"digest","type":"bytes32"},{"name":"r","type":"bytes32"},
                {"name":"sv","type":"bytes32"}]},
            {"type":"function","name":"reportForkedLog","stateMutability":"nonpayable","outputs":[],"inputs":[
                {"name":"key","type":"bytes"},{"name":"point","type":"bytes"},{"name":"size","type":"uint64"},
                {"name":"roots","type":"bytes32[2]"},{"name":"times","type":"int64[2]"},{"name":"sigs","type":"bytes32[4]"}]}
        ]"#
    );
}

use abi::RegistryContract;
use abi::RegistryContract::{RegistryContractErrors as E, RegistryContractEvents as Ev};

/// The registry contract at `address` on the chain at `url`.
#[derive(Debug, Clone)]
pub struct EvmRegistry {
    url: alloy::transports::http::reqwest::Url,
    address: Address,
    endorser: Option<Arc<dyn Endorser>>,
}

/// A registration's endorsements as the contract takes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endorsed {
    /// What the evidence proved.
    pub record: Record,
    /// The gatekeepers' signatures (none at bootstrap, where governance approved).
    pub endorsements: Vec<Endorsement>,
}

/// What [`Endorser::endorse`] returns.
pub type EndorseFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Endorsed, RegistryError>> + Send + 'a>>;

/// Collects the endorsements a registration needs on `registry`.
pub trait Endorser: Send + Sync + std::fmt::Debug {
    /// Endorses `registration` (each endorser checks its evidence first).
    fn endorse<'a>(
        &'a self,
        registry: &'a EvmRegistry,
        registration: &'a Registration,
    ) -> EndorseFuture<'a>;
}

/// A node or transport failure, its text free of the node's URL beyond its host (the
/// client quotes the URL it failed on, whose path or query may carry an API key).
fn backend(e: impl std::fmt::Display) -> RegistryError {
    RegistryError::Backend(crate::registry_url::scrub_urls(&e.to_string()))
}

/// What the contract's `Malformed(code)` names, from code 1 (its revert strings are
/// codes: text costs code size the contract no longer has).
pub const MALFORMED: [&str; 11] = [
    "measurement",
    "round spec",
    "public key set",
    "confirmations",
    "code",
    "ciphertext",
    "role",
    "TCB rule",
    "evidence time",
    "key",
    "endpoint",
];
/// `BadGatekeeperSet(code)`, from 1.
pub const BAD_SET: [&str; 5] = [
    "no members",
    "index 0",
    "a repeated index or key",
    "a threshold outside 1..=n",
    "a URL over 2048 bytes",
];
/// `EpochMismatch(code)`, from 1.
pub const EPOCH_MISMATCH: [&str; 3] = [
    "the epoch is not published",
    "the new set changes the epoch's master public key",
    "the epoch is retired",
];
/// `CannotRetire(epoch, code)`, from 1.
pub const CANNOT_RETIRE: [&str; 4] = [
    "is not published",
    "is already retired",
    "is the newest epoch",
    "is still needed by a contract's state",
];
/// `MeasurementState(measurement, code)`, from 1.
pub const MEASUREMENT_STATE: [&str; 2] = ["is already allowed", "is not allowed"];

/// Entry `code - 1` of `table`; a code outside it (a contract this crate does not know)
/// reads as its last entry.
fn coded<const N: usize>(table: &[&'static str; N], code: u8) -> &'static str {
    usize::from(code)
        .checked_sub(1)
        .and_then(|i| table.get(i))
        .or(table.last())
        .copied()
        .unwrap_or("")
}

/// The rule behind a revert, named as the embedded ledger names it. Long on purpose: one
/// arm per contract error, the one place they map onto the ledger's rule errors.
fn rule(tx: &'static str, e: &alloy::contract::Error) -> RegistryError {
    let Some(err) = e.as_decoded_interface_error::<E>() else {
        return backend(e);
    };
    RegistryError::Rule(match err {
        E::NotGovernance(_) => RuleError::NotGovernance(tx),
        E::NotGovernanceOrGatekeeper(_) => RuleError::NotGovernanceOrGatekeeper(tx),
        E::NotSelf(_) => RuleError::NotSelf,
        E::MeasurementNotAllowed(m) => RuleError::MeasurementNotAllowed(crate::hex(&m.measurement)),
        E::GatekeeperNotWorker(g) => RuleError::GatekeeperNotWorker(crate::hex(&g.identityKey)),
        E::BadGatekeeperSet(b) => RuleError::BadGatekeeperSet(coded(&BAD_SET, b.what)),
        E::ThresholdNotGoverned(t) => RuleError::ThresholdNotGoverned {
            got: t.got,
            governed: t.governed,
        },
        E::CannotRetire(c) => RuleError::CannotRetire {
            epoch: Epoch(c.epoch),
            why: coded(&CANNOT_RETIRE, c.why),
        },
        E::RotationLocked(l) => RuleError::RotationLocked {
            tx,
            locked: Epoch(l.locked),
        },
        E::NotLocked(n) => RuleError::NotLocked {
            tx,
            epoch: Epoch(n.epoch),
        },
        E::EpochNotNext(x) => RuleError::EpochNotNext {
            epoch: Epoch(x.epoch),
            next: Epoch(x.next),
        },
        E::CommitteeMismatch(_) => RuleError::CommitteeMismatch,
        E::MissingConfirmation(m) => RuleError::MissingConfirmation(m.index),
        E::EpochMismatch(m) => RuleError::EpochMismatch(coded(&EPOCH_MISMATCH, m.what)),
        E::RoundAlreadyPublished(_) => RuleError::RoundAlreadyPublished,
        E::RoundAborted(_) => RuleError::RoundAborted,
        E::Malformed(m) => RuleError::Malformed {
            tx,
            what: coded(&MALFORMED, m.what),
        },
        E::ContractExists(c) => RuleError::ContractExists(crate::hex(&c.contractId.0)),
        E::NoContract(c) => RuleError::NoContract {
            tx,
            contract: crate::hex(&c.contractId.0),
        },
        E::WrongRole(w) => RuleError::WrongRole {
            tx,
            worker: crate::hex(&w.identityKey),
            need: Role::from_code(w.need).unwrap_or(Role::App),
            have: Role::from_code(w.have).map_or("none", Role::name),
        },
        E::NoEpoch(e) => RuleError::NoEpoch {
            tx,
            epoch: Epoch(e.epoch),
        },
        E::ContractKeyPublished(e) => RuleError::ContractKeyPublished(Epoch(e.epoch)),
        E::NoContractKey(e) => RuleError::NoContractKey(Epoch(e.epoch)),
        E::SupersededKey(e) => RuleError::SupersededKey {
            tx,
            epoch: Epoch(e.epoch),
            newest: Epoch(e.newest),
        },
        E::StateRefused(s) => RuleError::StateCommitment(match s.why {
            1 => "names more commands than the contract has",
            2 => "is not on the contract's command log",
            _ => "is not newer than the one standing",
        }),
        E::NotEndorsed(n) => RuleError::NotEndorsed {
            have: n.have,
            need: n.need,
        },
        E::BadEndorsement(b) => RuleError::BadEndorsement(b.index),
        E::BootstrapOver(_) => RuleError::BootstrapOver,
        E::TcbNotAccepted(t) => RuleError::Evidence(crate::evidence::EvidenceError::TcbStatus(
            crate::types::status_from_code(t.status)
                .unwrap_or(phalanx_dcap::tcb::TcbStatus::Revoked),
        )),
        E::EvidenceExpired(x) => RuleError::EvidenceExpired {
            tx,
            worker: String::new(),
            age: x.age,
            max: x.max,
        },
        E::MeasurementState(m) => RuleError::Measurement {
            tx,
            measurement: crate::hex(&m.measurement),
            what: coded(&MEASUREMENT_STATE, m.what),
        },
        E::Faulty(_) => RuleError::Faulty,
    })
}

/// Sends a contract call and waits for its receipt; a revert becomes its rule. The
/// gas limit is the node's estimate plus a fifth: an exact estimate leaves the P256VERIFY
/// precompile call (given 63/64 of what remains) no margin, and a transaction that
/// passed estimation could still run out in the block.
/// The rule behind a revert of the registry's `Judge`: its own refusal, or the
/// registry's (a call the Judge made to it).
fn judged(tx: &'static str, e: &alloy::contract::Error) -> RegistryError {
    use judge_abi::JudgeContract::JudgeContractErrors as J;
    match e.as_decoded_interface_error::<J>() {
        Some(J::NotMisbehaviour(n)) => RegistryError::Rule(not_misbehaviour(n.why)),
        None => rule(tx, e),
    }
}

/// Half `i` of a signature (0: r, 1: s) as the contract takes it.
fn signature_half(s: &[u8; 64], i: usize) -> FixedBytes<32> {
    FixedBytes(
        <[u8; 32]>::try_from(s.get(32 * i..32 * (i + 1)).unwrap_or_default()).unwrap_or_default(),
    )
}

/// `transact!(tx, call)` maps reverts with [`rule`]; `transact!(tx, call, map)` with
/// `map` (a contract with other errors).
macro_rules! transact {
    ($tx:expr, $call:expr) => {
        transact!($tx, $call, |e: &alloy::contract::Error| rule($tx, e))
    };
    ($tx:expr, $call:expr, $map:expr) => {{
        let call = $call;
        let map = $map;
        let gas = call.estimate_gas().await.map_err(|e| map(&e))?;
        let pending = call
            .gas(gas.saturating_add(gas / 5))
            .send()
            .await
            .map_err(|e| map(&e))?;
        // A transaction the chain dropped (a reorganisation, a node restart) is not
        // waited for forever.
        let receipt = pending
            .with_timeout(Some(TX_TIMEOUT))
            .get_receipt()
            .await
            .map_err(backend)?;
        if !receipt.status() {
            return Err(RegistryError::Backend(format!(
                "{}: transaction reverted (gas used {} of {})",
                $tx,
                receipt.gas_used,
                gas.saturating_add(gas / 5)
            )));
        }
        receipt
            .block_number
            .ok_or_else(|| RegistryError::Backend("receipt without a block".into()))
    }};
}

impl EvmRegistry {
    /// Deploys a new registry governed by `governance`, paid by `deployer`.
    pub async fn deploy(
        url: &str,
        deployer: &PrivateKeySigner,
        governance: Address,
    ) -> Result<Self, RegistryError> {
        let url: alloy::transports::http::reqwest::Url = url.parse().map_err(backend)?;
        let provider = ProviderBuilder::new()
            .wallet(deployer.clone())
            .connect_http(url.clone());
        let c = RegistryContract::deploy(provider, governance)
            .await
            .map_err(backend)?;
        Ok(Self {
            url,
            address: *c.address(),
            endorser: None,
        })
    }

    /// The registry already deployed at `address`.
    pub fn at(url: &str, address: Address) -> Result<Self, RegistryError> {
        Ok(Self {
            url: url.parse().map_err(backend)?,
            address,
            endorser: None,
        })
    }

    /// This registry, collecting registrations' endorsements with `endorser` (without
    /// one, [`Registry::register_worker`] refuses).
    #[must_use]
    pub fn with_endorser(mut self, endorser: Arc<dyn Endorser>) -> Self {
        self.endorser = Some(endorser);
        self
    }

    /// The TCB rule in force.
    pub async fn tcb_rule(&self) -> Result<TcbRule, RegistryError> {
        self.tcb_rule_at(BlockId::latest()).await
    }

    /// The TCB rule at block `at`.
    async fn tcb_rule_at(&self, at: BlockId) -> Result<TcbRule, RegistryError> {
        let r = self
            .reader()
            .tcbRule()
            .block(at)
            .call()
            .await
            .map_err(backend)?;
        Ok(TcbRule {
            tcb_statuses: (1..16u8)
                .filter(|c| r.statusMask >> c & 1 == 1)
                .filter_map(crate::types::status_from_code)
                .collect(),
            max_evidence_age: r.maxAge,
            min_tcb_evaluation_data_number: r.minEvaluationDataNumber,
        })
    }

    /// Governance: approves one registration (its [`crate::endorse::digest`]) while no
    /// gatekeeper set exists — the first gatekeepers' own — or while fewer than the
    /// threshold of members are in standing (recovery). Governance checks the evidence
    /// first, as a gatekeeper would ([`KeyEndorser`] does).
    pub async fn approve_bootstrap(
        &self,
        by: &EvmAccount,
        digest: [u8; 32],
    ) -> Result<u64, RegistryError> {
        let c = self.writer(&by.signer);
        transact!("approve-bootstrap", c.approveBootstrap(FixedBytes(digest)))
    }

    /// The latest block's timestamp: the contract's clock.
    pub async fn now(&self) -> Result<i64, RegistryError> {
        let block = ProviderBuilder::new()
            .connect_http(self.url.clone())
            .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
            .await
            .map_err(backend)?
            .ok_or_else(|| RegistryError::Backend("no latest block".into()))?;
        i64::try_from(block.header.timestamp).map_err(backend)
    }

    /// Registers `w` as `by` with `endorsed` (what [`Registry::register_worker`] does
    /// after its [`Endorser`]).
    pub async fn register_endorsed(
        &self,
        by: &EvmAccount,
        endorsed: &Endorsed,
    ) -> Result<u64, RegistryError> {
        let w = &endorsed.record;
        // The proof of possession, when `by` holds the key it registers (without it
        // the contract refuses: NotSelf).
        let xy = point_xy(&w.identity_key).unwrap_or_default();
        let proof = match &by.identity {
            Some(k) if crate::types::public_key(k.verifying_key()) == w.identity_key => {
                let chain_id = ProviderBuilder::new()
                    .connect_http(self.url.clone())
                    .get_chain_id()
                    .await
                    .map_err(backend)?;
                let mut msg = ACCOUNT_TAG.to_vec();
                msg.extend_from_slice(&alloy::primitives::U256::from(chain_id).to_be_bytes::<32>());
                msg.extend_from_slice(self.address.as_slice());
                msg.extend_from_slice(by.signer.address().as_slice());
                let sig: p256::ecdsa::Signature = p256::ecdsa::signature::Signer::sign(k, &msg);
                sig.to_bytes().to_vec()
            }
            _ => vec![0; 64],
        };
        let registration = abi::Registry::Registration {
            identityKey: Bytes::copy_from_slice(&w.identity_key),
            hpkeKey: Bytes::copy_from_slice(&w.hpke_key),
            measurement: Bytes::copy_from_slice(&w.measurement),
            attestationHash: FixedBytes(w.attestation_hash),
            quoteHash: FixedBytes(w.quote_hash),
            tcbStatus: crate::types::status_code(w.tcb_status),
            evidenceTime: w.evidence_time,
        };
        // The contract takes each endorser's key as a point (checked against the set).
        let set = if endorsed.endorsements.is_empty() {
            Vec::new()
        } else {
            self.gatekeepers().await?
        };
        let ends = endorsed
            .endorsements
            .iter()
            .map(|e| {
                let xy: [u8; 64] = set
                    .iter()
                    .find(|g| g.index == e.index)
                    .and_then(|g| point_xy(&g.identity_key)?.try_into().ok())
                    .unwrap_or([0; 64]);
                let word = |b: &[u8]| FixedBytes::<32>::from_slice(b);
                abi::Registry::Endorsement {
                    index: e.index,
                    x: word(&xy[..32]),
                    y: word(&xy[32..]),
                    r: word(&e.signature[..32]),
                    s: word(&e.signature[32..]),
                }
            })
            .collect::<Vec<_>>();
        let c = self.writer(&by.signer);
        transact!(
            "register-worker",
            c.registerWorker(registration, Bytes::from(xy), Bytes::from(proof), ends)
        )
    }

    /// The contract's address.
    pub fn address(&self) -> Address {
        self.address
    }

    /// Waits (at most `wait`) until `account` holds some ether to pay for gas, saying
    /// once which address to fund: a process whose account is derived from its sealed
    /// identity ([`identity_account`]) learns its address only when it starts.
    pub async fn wait_for_funds(
        &self,
        account: alloy::primitives::Address,
        wait: std::time::Duration,
    ) -> Result<(), RegistryError> {
        let provider = ProviderBuilder::new().connect_http(self.url.clone());
        let deadline = tokio::time::Instant::now() + wait;
        let mut said = false;
        loop {
            if !provider
                .get_balance(account)
                .await
                .map_err(backend)?
                .is_zero()
            {
                return Ok(());
            }
            if !said {
                tracing::warn!(%account, "the account holds no ether for gas: fund it (waiting)");
                said = true;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(RegistryError::Backend(format!(
                    "the account {account} holds no ether for gas: fund it"
                )));
            }
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    }

    /// The node's chain id.
    pub async fn evm_chain_id(&self) -> Result<u64, RegistryError> {
        ProviderBuilder::new()
            .connect_http(self.url.clone())
            .get_chain_id()
            .await
            .map_err(backend)
    }

    /// `account`'s balance (wei), as the node says.
    pub async fn balance(
        &self,
        account: alloy::primitives::Address,
    ) -> Result<alloy::primitives::U256, RegistryError> {
        ProviderBuilder::new()
            .connect_http(self.url.clone())
            .get_balance(account)
            .await
            .map_err(backend)
    }

    /// The node's newest block number.
    pub async fn newest_block(&self) -> Result<u64, RegistryError> {
        ProviderBuilder::new()
            .connect_http(self.url.clone())
            .get_block_number()
            .await
            .map_err(backend)
    }

    /// The hash the node gives block `number` (`None`: it has no such block).
    pub async fn block_hash(&self, number: u64) -> Result<Option<[u8; 32]>, RegistryError> {
        Ok(ProviderBuilder::new()
            .connect_http(self.url.clone())
            .get_block_by_number(number.into())
            .await
            .map_err(backend)?
            .map(|b| b.header.hash.0))
    }

    /// The worker registered under `identity_key` at block `at`.
    async fn worker_at(
        &self,
        identity_key: &[u8],
        at: BlockId,
    ) -> Result<Option<Worker>, RegistryError> {
        let r = self
            .reader()
            .worker(Bytes::copy_from_slice(identity_key))
            .block(at)
            .call()
            .await
            .map_err(backend)?;
        Ok(r.found.then(|| Worker {
            identity_key: identity_key.to_vec(),
            hpke_key: r.hpkeKey.to_vec(),
            measurement: r.measurement.to_vec(),
            attestation_hash: r.attestationHash.0,
            registered_at: r.registeredAt,
            quote_hash: r.quoteHash.0,
            tcb_status: crate::types::status_from_code(r.tcbStatus),
        }))
    }

    /// The allow-list at block `at`.
    async fn allowed_at(&self, at: BlockId) -> Result<Vec<Allowed>, RegistryError> {
        let r = self
            .reader()
            .allowedMeasurements()
            .block(at)
            .call()
            .await
            .map_err(backend)?;
        let mut out = Vec::new();
        let entries = r.measurements.iter().zip(&r.addedAt).zip(&r.roles);
        for (((m, at), role), in_block) in entries.zip(&r.addedIn) {
            out.push(Allowed {
                measurement: m.to_vec(),
                role: Role::from_code(*role)
                    .ok_or_else(|| RegistryError::Unverified(format!("role {role}")))?,
                added_at: *at,
                added_in: *in_block,
            });
        }
        out.sort_by(|a, b| a.measurement.cmp(&b.measurement));
        Ok(out)
    }

    /// The committee's threshold and the gatekeeper set at block `at`.
    async fn gatekeepers_at(&self, at: BlockId) -> Result<(u16, Vec<Gatekeeper>), RegistryError> {
        let c = self.reader();
        let threshold = c
            .committeeThreshold()
            .block(at)
            .call()
            .await
            .map_err(backend)?;
        let r = c.gatekeepers().block(at).call().await.map_err(backend)?;
        let set = r
            .into_iter()
            .map(|g| Gatekeeper {
                index: g.index,
                identity_key: g.identityKey.to_vec(),
                url: g.url,
                peer_url: g.peerUrl,
            })
            .collect();
        Ok((threshold, set))
    }

    /// The keys of `epoch` at block `at`.
    async fn master_key_at(
        &self,
        epoch: Epoch,
        at: BlockId,
    ) -> Result<Option<EpochKey>, RegistryError> {
        let r = self
            .reader()
            .masterKey(epoch.0)
            .block(at)
            .call()
            .await
            .map_err(backend)?;
        Ok(r.found.then(|| EpochKey {
            epoch,
            master_public_key: r.masterPublicKey.to_vec(),
            threshold: r.threshold,
            public_key_set: r.publicKeySet.to_vec(),
            round_id: r.roundId.0,
            published_at: r.publishedAt,
        }))
    }

    /// Contract `id`'s keys of `epoch` at block `at`.
    async fn contract_key_at(
        &self,
        id: [u8; 32],
        epoch: Epoch,
        at: BlockId,
    ) -> Result<Option<ContractKey>, RegistryError> {
        let k = self
            .reader()
            .contractKey(FixedBytes(id), epoch.0)
            .block(at)
            .call()
            .await
            .map_err(backend)?;
        Ok(k.published.then(|| ContractKey {
            contract: id,
            epoch,
            encryption_key: k.encryptionKey.to_vec(),
            signing_key: k.signingKey.to_vec(),
            published_by: k.publishedBy.to_vec(),
            published_at: k.publishedAt,
            commands_before: k.commandsBefore,
        }))
    }

    /// The newest commitment to contract `id`'s state as of block `number`: its last
    /// `StateCommitted` log from its deploying block on (the contract keeps only the
    /// count, and the fact's hash, which a proof checks this against), looked for
    /// backwards [`LOG_WINDOW`] blocks at a time (nodes bound a log query's range; a
    /// served contract's newest commitment is usually recent).
    async fn state_at(
        &self,
        id: [u8; 32],
        deployed: u64,
        number: u64,
    ) -> Result<Option<StateCommitment>, RegistryError> {
        let provider = ProviderBuilder::new().connect_http(self.url.clone());
        let mut to = number;
        let log = loop {
            let from = to.saturating_sub(LOG_WINDOW - 1).max(deployed);
            let logs = provider
                .get_logs(
                    &Filter::new()
                        .address(self.address)
                        .event_signature(
                            <abi::RegistryContract::StateCommitted as alloy::sol_types::SolEvent>::SIGNATURE_HASH,
                        )
                        .topic1(FixedBytes(id))
                        .from_block(from)
                        .to_block(to),
                )
                .await
                .map_err(backend)?;
            if let Some(log) = logs.into_iter().last() {
                break log;
            }
            if from <= deployed {
                return Ok(None);
            }
            to = from - 1;
        };
        let Ok(Ev::StateCommitted(e)) = Ev::decode_raw_log(log.topics(), &log.data().data) else {
            return Err(RegistryError::Unverified(
                "a state commitment's log does not decode".into(),
            ));
        };
        Ok(Some(StateCommitment {
            contract: id,
            count: e.count,
            log_head: e.logHead.0,
            state_root: e.stateRoot.0,
            epoch: Epoch(e.epoch),
            committed_at: log
                .block_number
                .ok_or_else(|| RegistryError::Backend("log without a block".into()))?,
        }))
    }

    /// The rotation lock at block `at`.
    async fn rotation_at(&self, at: BlockId) -> Result<Rotation, RegistryError> {
        let r = self
            .reader()
            .rotation()
            .block(at)
            .call()
            .await
            .map_err(backend)?;
        Ok(if r.isLocked {
            Rotation::Locked(Epoch(r.epoch))
        } else {
            Rotation::Idle
        })
    }

    fn reader(&self) -> RegistryContract::RegistryContractInstance<impl Provider + use<>> {
        RegistryContract::new(
            self.address,
            ProviderBuilder::new().connect_http(self.url.clone()),
        )
    }

    fn writer(
        &self,
        by: &PrivateKeySigner,
    ) -> RegistryContract::RegistryContractInstance<impl Provider + use<>> {
        RegistryContract::new(
            self.address,
            ProviderBuilder::new()
                .wallet(by.clone())
                .connect_http(self.url.clone()),
        )
    }
}

/// Longest wait for a sent transaction's receipt.
const TX_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Blocks one log query spans at most.
const LOG_WINDOW: u64 = 5_000;

/// The uncompressed point (x ‖ y) of a compressed SEC1 key, if it is one.
fn point_xy(key: &[u8]) -> Option<Vec<u8>> {
    let point = p256::PublicKey::from_sec1_bytes(key).ok()?;
    let bytes = p256::elliptic_curve::sec1::ToSec1Point::to_sec1_point(&point, false);
    bytes.as_bytes().get(1..65).map(<[u8]>::to_vec)
}

impl Registry for EvmRegistry {
    type Account = EvmAccount;

    async fn register_worker(
        &self,
        by: &EvmAccount,
        w: &Registration,
    ) -> Result<u64, RegistryError> {
        let endorser = self.endorser.as_ref().ok_or_else(|| {
            RegistryError::Backend(
                "register-worker: this EVM registry has no endorser (registrations need gatekeepers' endorsements)".into(),
            )
        })?;
        let endorsed = endorser.endorse(self, w).await?;
        self.register_endorsed(by, &endorsed).await
    }

    async fn add_measurement(
        &self,
        by: &EvmAccount,
        m: &[u8],
        role: Role,
    ) -> Result<u64, RegistryError> {
        let c = self.writer(&by.signer);
        transact!(
            "add-measurement",
            c.addMeasurement(Bytes::copy_from_slice(m), role.code())
        )
    }

    async fn remove_measurement(&self, by: &EvmAccount, m: &[u8]) -> Result<u64, RegistryError> {
        let c = self.writer(&by.signer);
        transact!(
            "remove-measurement",
            c.removeMeasurement(Bytes::copy_from_slice(m))
        )
    }

    async fn set_gatekeepers(
        &self,
        by: &EvmAccount,
        set: &[Gatekeeper],
        threshold: u16,
    ) -> Result<u64, RegistryError> {
        let c = self.writer(&by.signer);
        // The contract takes the set sorted by index (it stores it so).
        let mut sorted: Vec<&Gatekeeper> = set.iter().collect();
        sorted.sort_by_key(|g| g.index);
        let set: Vec<abi::Registry::Gatekeeper> = sorted
            .into_iter()
            .map(|g| abi::Registry::Gatekeeper {
                index: g.index,
                identityKey: Bytes::copy_from_slice(&g.identity_key),
                url: g.url.clone(),
                peerUrl: g.peer_url.clone(),
            })
            .collect();
        transact!("set-gatekeepers", c.setGatekeepers(set, threshold))
    }

    async fn retire_epoch(&self, by: &EvmAccount, epoch: Epoch) -> Result<u64, RegistryError> {
        let c = self.writer(&by.signer);
        transact!("retire-epoch", c.retireEpoch(epoch.0))
    }

    async fn lock_rotation(&self, by: &EvmAccount, epoch: Epoch) -> Result<u64, RegistryError> {
        let c = self.writer(&by.signer);
        transact!("lock-rotation", c.lockRotation(epoch.0))
    }

    async fn publish_master_key(
        &self,
        by: &EvmAccount,
        cert: &EpochCertificate,
    ) -> Result<u64, RegistryError> {
        let c = self.writer(&by.signer);
        transact!(
            "publish-master-key",
            c.publishMasterKey(
                Bytes::copy_from_slice(&cert.spec),
                Bytes::copy_from_slice(&cert.public_key_set),
                Bytes::from(cert.signatures.concat()),
            )
        )
    }

    async fn abort_round(&self, by: &EvmAccount, id: [u8; 32]) -> Result<u64, RegistryError> {
        let c = self.writer(&by.signer);
        transact!("abort-round", c.abortRound(FixedBytes(id)))
    }

    async fn round_decision(&self, id: [u8; 32]) -> Result<Option<RoundDecision>, RegistryError> {
        let d = self
            .reader()
            .roundDecision(FixedBytes(id))
            .call()
            .await
            .map_err(backend)?;
        Ok(match d {
            1 => Some(RoundDecision::Committed),
            2 => Some(RoundDecision::Aborted),
            _ => None,
        })
    }

    async fn set_tcb_rule(&self, by: &EvmAccount, tcb: &TcbRule) -> Result<u64, RegistryError> {
        let mask = tcb
            .tcb_statuses
            .iter()
            .fold(0u16, |m, s| m | (1 << crate::types::status_code(*s)));
        let c = self.writer(&by.signer);
        transact!(
            "set-tcb-rule",
            c.setTcbRule(
                mask,
                tcb.max_evidence_age,
                tcb.min_tcb_evaluation_data_number
            )
        )
    }

    async fn report_misbehaviour(
        &self,
        by: &EvmAccount,
        m: &Misbehaviour,
    ) -> Result<u64, RegistryError> {
        const TX: &str = "report-misbehaviour";
        let point = p256::ecdsa::VerifyingKey::from_sec1_bytes(&m.accused)
            .ok()
            .filter(|_| m.accused.len() == 33)
            .and_then(|k| {
                let p =
                    p256::elliptic_curve::sec1::ToSec1Point::to_sec1_point(k.as_affine(), false);
                p.as_bytes().get(1..).map(Bytes::copy_from_slice)
            })
            .ok_or_else(|| RegistryError::Rule(not_misbehaviour(2)))?;
        let address = self.reader().judge().call().await.map_err(backend)?;
        let judge = judge_abi::JudgeContract::new(
            address,
            ProviderBuilder::new()
                .wallet(by.signer.clone())
                .connect_http(self.url.clone()),
        );
        let key = Bytes::copy_from_slice(&m.accused);
        let (half, judged) = (signature_half, |e: &alloy::contract::Error| judged(TX, e));
        match &m.fault {
            Fault::Confirmation {
                round,
                index,
                digest,
                signature,
            } => transact!(
                TX,
                judge.reportConfirmation(
                    key,
                    point,
                    FixedBytes(*round),
                    *index,
                    FixedBytes(*digest),
                    half(signature, 0),
                    half(signature, 1),
                ),
                judged
            ),
            // No P-256 arithmetic on EVM: the Judge cannot check a DLEQ proof or a
            // Pedersen commitment.
            Fault::Partial { .. } | Fault::Dealing { .. } => {
                Err(RegistryError::Rule(not_misbehaviour(9)))
            }
            Fault::ForkedLog {
                size,
                first,
                second,
            } => transact!(
                TX,
                judge.reportForkedLog(
                    key,
                    point,
                    *size,
                    [FixedBytes(first.root), FixedBytes(second.root)],
                    [first.timestamp, second.timestamp],
                    [
                        half(&first.signature, 0),
                        half(&first.signature, 1),
                        half(&second.signature, 0),
                        half(&second.signature, 1),
                    ],
                ),
                judged
            ),
        }
    }

    async fn abort_rotation(&self, by: &EvmAccount, epoch: Epoch) -> Result<u64, RegistryError> {
        let c = self.writer(&by.signer);
        transact!("abort-rotation", c.abortRotation(epoch.0))
    }

    async fn chain_id(&self) -> Result<[u8; 32], RegistryError> {
        let chain = ProviderBuilder::new()
            .connect_http(self.url.clone())
            .get_chain_id()
            .await
            .map_err(backend)?;
        Ok(crate::evm_proof::registry_id(chain, &self.address.0.0))
    }

    async fn max_evidence_age(&self) -> Result<u64, RegistryError> {
        Ok(self.tcb_rule().await?.max_evidence_age)
    }

    async fn worker(&self, identity_key: &[u8]) -> Result<Option<Worker>, RegistryError> {
        self.worker_at(identity_key, BlockId::latest()).await
    }

    async fn allowed_measurements(&self) -> Result<Vec<Allowed>, RegistryError> {
        self.allowed_at(BlockId::latest()).await
    }

    async fn gatekeepers(&self) -> Result<Vec<Gatekeeper>, RegistryError> {
        Ok(self.gatekeepers_at(BlockId::latest()).await?.1)
    }

    async fn master_key(&self, epoch: Epoch) -> Result<Option<EpochKey>, RegistryError> {
        self.master_key_at(epoch, BlockId::latest()).await
    }

    async fn rotation(&self) -> Result<Rotation, RegistryError> {
        self.rotation_at(BlockId::latest()).await
    }
    // Long on purpose: one arm per registry log, in 5,000-block windows.
    async fn events(&self, from: u64) -> Result<Vec<(u64, Event)>, RegistryError> {
        let provider = ProviderBuilder::new().connect_http(self.url.clone());
        // In windows of [`LOG_WINDOW`] blocks up to the newest (nodes bound a log
        // query's range).
        let newest = self.newest_block().await?;
        let mut logs = Vec::new();
        let mut start = from;
        while start <= newest {
            let end = start.saturating_add(LOG_WINDOW - 1).min(newest);
            logs.extend(
                provider
                    .get_logs(
                        &Filter::new()
                            .address(self.address)
                            .from_block(start)
                            .to_block(end),
                    )
                    .await
                    .map_err(backend)?,
            );
            if end == newest {
                break;
            }
            start = end + 1;
        }
        let mut out = Vec::new();
        for log in logs {
            let height = log
                .block_number
                .ok_or_else(|| RegistryError::Backend("log without a block".into()))?;
            let decoded = Ev::decode_raw_log(log.topics(), &log.data().data)
                .map_err(|e| RegistryError::Unverified(e.to_string()))?;
            out.push((
                height,
                match decoded {
                    Ev::WorkerRegistered(e) => Event::WorkerRegistered {
                        identity_key: e.identityKey.to_vec(),
                        measurement: e.measurement.to_vec(),
                    },
                    Ev::MeasurementAdded(e) => Event::MeasurementAdded {
                        measurement: e.measurement.to_vec(),
                        role: Role::from_code(e.role)
                            .ok_or_else(|| RegistryError::Unverified(format!("role {}", e.role)))?,
                    },
                    Ev::MeasurementRemoved(e) => Event::MeasurementRemoved(e.measurement.to_vec()),
                    Ev::GatekeepersChanged(e) => Event::GatekeepersChanged(e.indices),
                    Ev::RotationLockedEvent(e) => Event::RotationLocked(Epoch(e.epoch)),
                    Ev::MasterKeyPublished(e) => Event::MasterKeyPublished(Epoch(e.epoch)),
                    Ev::PublicKeySetUpdated(e) => Event::PublicKeySetUpdated(Epoch(e.epoch)),
                    Ev::RotationAborted(e) => Event::RotationAborted(Epoch(e.epoch)),
                    Ev::RoundAbortedEvent(e) => Event::RoundAborted(e.roundId.0),
                    Ev::EpochRetired(e) => Event::EpochRetired(Epoch(e.epoch)),
                    Ev::ContractDeployed(e) => Event::ContractDeployed {
                        contract: e.contractId.0,
                        code_hash: e.codeHash.0,
                    },
                    Ev::ContractKeyPublishedEvent(e) => Event::ContractKeyPublished {
                        contract: e.contractId.0,
                        epoch: Epoch(e.epoch),
                    },
                    Ev::CommandSubmitted(e) => Event::CommandSubmitted {
                        contract: e.contractId.0,
                        sequence: e.sequence,
                    },
                    Ev::StateCommitted(e) => Event::StateCommitted {
                        contract: e.contractId.0,
                        count: e.count,
                    },
                    Ev::Misbehaved(e) => Event::Misbehaved {
                        identity_key: e.identityKey.to_vec(),
                        fault: e.fault,
                    },
                    Ev::Served(e) => Event::Serving {
                        contract: e.contractId.0,
                        worker: e.identityKey.to_vec(),
                        endpoint: e.endpoint,
                    },
                    Ev::TcbRuleSet(_) => Event::TcbRuleChanged,
                    // An approval is no fact of the registry until the registration
                    // that uses it (WorkerRegistered).
                    Ev::BootstrapApproved(_) => continue,
                },
            ));
        }
        Ok(out)
    }
}

/// On this backend a contract's module travels in its `ContractDeployed` log (the
/// contract stores only the hash, which the code read back is checked against), the
/// deployer in the contract id is the 20-byte account, and a command's envelope binds
/// the sending account and its transaction nonce.
impl ContractRegistry for EvmRegistry {
    async fn deploy_contract(
        &self,
        by: &EvmAccount,
        code: &[u8],
        salt: [u8; 32],
    ) -> Result<(u64, [u8; 32]), RegistryError> {
        let c = self.writer(&by.signer);
        let height = transact!(
            "deploy-contract",
            c.deployContract(Bytes::copy_from_slice(code), FixedBytes(salt))
        )?;
        let id = phalanx_types::contract::contract_id(
            &self.chain_id().await?,
            by.signer.address().as_slice(),
            &phalanx_types::contract::code_hash(code),
            &salt,
        );
        Ok((height, id))
    }

    async fn publish_contract_key(
        &self,
        by: &EvmAccount,
        key: &ContractKey,
    ) -> Result<u64, RegistryError> {
        let c = self.writer(&by.signer);
        transact!(
            "publish-contract-key",
            c.publishContractKey(
                FixedBytes(key.contract),
                key.epoch.0,
                Bytes::copy_from_slice(&key.encryption_key),
                Bytes::copy_from_slice(&key.signing_key),
            )
        )
    }

    async fn submit_command(
        &self,
        by: &EvmAccount,
        command: &Command,
    ) -> Result<u64, RegistryError> {
        let c = self.writer(&by.signer);
        transact!(
            "command",
            c.command(
                FixedBytes(command.contract),
                command.epoch.0,
                Bytes::copy_from_slice(&command.ciphertext),
            )
        )
    }

    async fn commit_state(
        &self,
        by: &EvmAccount,
        s: &StateCommitment,
    ) -> Result<u64, RegistryError> {
        let c = self.writer(&by.signer);
        transact!(
            "commit-state",
            c.commitState(
                FixedBytes(s.contract),
                s.count,
                FixedBytes(s.log_head),
                FixedBytes(s.state_root),
                s.epoch.0,
            )
        )
    }

    async fn serve(
        &self,
        by: &EvmAccount,
        contract: [u8; 32],
        endpoint: &str,
    ) -> Result<u64, RegistryError> {
        let c = self.writer(&by.signer);
        transact!("serve", c.serve(FixedBytes(contract), endpoint.to_owned()))
    }

    async fn serving(&self, contract: [u8; 32]) -> Result<Vec<(PublicKey, String)>, RegistryError> {
        // Only this contract's `Served` logs, from its deployment on, [`LOG_WINDOW`]
        // blocks at a time (nodes bound a log query's range).
        let number = self.newest_block().await?;
        let info = self
            .reader()
            .contractInfo(FixedBytes(contract))
            .block(BlockId::number(number))
            .call()
            .await
            .map_err(backend)?;
        if !info.found {
            return Ok(Vec::new());
        }
        let provider = ProviderBuilder::new().connect_http(self.url.clone());
        let mut events = Vec::new();
        let mut from = info.deployedAt;
        while from <= number {
            let to = from.saturating_add(LOG_WINDOW - 1).min(number);
            let logs = provider
                .get_logs(
                    &Filter::new()
                        .address(self.address)
                        .event_signature(
                            <abi::RegistryContract::Served as alloy::sol_types::SolEvent>::SIGNATURE_HASH,
                        )
                        .topic1(FixedBytes(contract))
                        .from_block(from)
                        .to_block(to),
                )
                .await
                .map_err(backend)?;
            for log in logs {
                let e = log
                    .log_decode::<abi::RegistryContract::Served>()
                    .map_err(backend)?
                    .inner
                    .data;
                events.push((
                    0,
                    Event::Serving {
                        contract,
                        worker: e.identityKey.to_vec(),
                        endpoint: e.endpoint,
                    },
                ));
            }
            from = to + 1;
        }
        Ok(served(contract, events))
    }

    async fn contract(&self, id: [u8; 32]) -> Result<Option<Contract>, RegistryError> {
        let reader = self.reader();
        // Everything read at one block.
        let number = self.newest_block().await?;
        let info = reader
            .contractInfo(FixedBytes(id))
            .block(BlockId::number(number))
            .call()
            .await
            .map_err(backend)?;
        if !info.found {
            return Ok(None);
        }
        // The module, from its deployment log, checked against the stored hash.
        let provider = ProviderBuilder::new().connect_http(self.url.clone());
        let logs = provider
            .get_logs(
                &Filter::new()
                    .address(self.address)
                    .event_signature(
                        <abi::RegistryContract::ContractDeployed as alloy::sol_types::SolEvent>::SIGNATURE_HASH,
                    )
                    .topic1(FixedBytes(id))
                    .from_block(info.deployedAt)
                    .to_block(info.deployedAt),
            )
            .await
            .map_err(backend)?;
        let code = logs
            .iter()
            .find_map(
                |log| match Ev::decode_raw_log(log.topics(), &log.data().data) {
                    Ok(Ev::ContractDeployed(e)) if e.contractId.0 == id => Some(e.code.to_vec()),
                    _ => None,
                },
            )
            .ok_or_else(|| {
                RegistryError::Unverified("the contract's deployment log is missing".into())
            })?;
        if phalanx_types::contract::code_hash(&code) != info.codeHash.0 {
            return Err(RegistryError::Unverified(
                "the deployment log's code does not match the stored hash".into(),
            ));
        }
        let at = BlockId::number(number);
        let mut keys = std::collections::BTreeMap::new();
        for e in reader
            .contractKeyEpochs(FixedBytes(id))
            .block(at)
            .call()
            .await
            .map_err(backend)?
        {
            let key = self
                .contract_key_at(id, Epoch(e), at)
                .await?
                .ok_or_else(|| {
                    RegistryError::Unverified("the contract lists keys it has not".into())
                })?;
            keys.insert(Epoch(e), key);
        }
        let state = self.state_at(id, info.deployedAt, number).await?;
        Ok(Some(Contract {
            id,
            deployer: info.deployer.as_slice().to_vec(),
            code_hash: info.codeHash.0,
            code: std::sync::Arc::new(code),
            salt: info.salt.0,
            deployed_at: info.deployedAt,
            keys,
            commands: info.commands,
            command_log: info.commandLog.0,
            state,
        }))
    }
}
