//! # phalanx-verify
//!
//! Checks a pRuntime answer offline, from one self-contained [`Bundle`], trusting only a
//! pinned registry genesis and a DCAP trust root (Intel's by default) — not the
//! attestation service, not the worker's endpoint. Sans-IO: no async runtime, no
//! storage, no server; [`verify`] is a pure function of the bundle and the [`Options`].
//!
//! ## The bundle (JSON, `version` 2)
//!
//! - `answer`: the worker's [`Statement`] and its signature, and what the user reveals:
//!   the caller key and nonce of the query, the plaintext query and answer;
//! - `evidence`: the worker's attestation as it happened — the TEE, the quote, the
//!   attestation nonce and runtime data whose hash the quote's report data binds, and the
//!   collateral the quote was verified with (JSON bundle format);
//! - `registry` ([`RegistryProof`]): the registry's genesis block, the header of the
//!   statement's block with the authority's signature, and proofs of exactly the facts
//!   the checks read, against that header's state root (`chain::proof`): the worker's
//!   registration, its measurement's allow-list entry and role, the contract, and the
//!   evidence rule. No block bodies: its size and cost do not grow with the chain (about
//!   5 KB, a few hundred bytes per proof).
//!
//! Version 1 bundles carried every block from genesis; this verifier refuses them by
//! name (`phalanx verify answer --chain URL` fetches the proofs for a bundle whose
//! `registry` is empty).
//!
//! On a Solidity registry (an EVM chain) the `registry` part is instead `evm`
//! (`chain::evm_proof`): the statement's block header and `eth_getProof`'s proofs of the
//! same facts (the TCB rule in place of the evidence rule) against its state root. What
//! anchors it is the registry's chain id and address and the hash of that block as the
//! user trusts it — pinned, or their own node's ([`Pin::Evm`]); no header carries a
//! signature to check instead. Governance's allow-list transaction is the contract's
//! own rule there (only its governance account may add a measurement), so no
//! transaction travels with it.
//!
//! **Must never depend on** rocksdb, a server, an async runtime, the worker or the
//! gatekeeper: a pure function from a bundle to a verdict, also built to WebAssembly.

//! ## The checks ([`verify`]), in order; the first failure is the verdict
//!
//! | check | what | anchor |
//! |---|---|---|
//! | `registry` | the genesis hashes to the pin; the header is of that chain, signed by its authority, and is the statement's block (height and hash); every fact's proof holds under its state root | the genesis hash |
//! | `statement_signature` | ECDSA P-256 by the statement's worker key over its signed bytes | the worker's key |
//! | `query_hash`, `answer_hash` | the statement's salted commitments to the revealed query and answer (salts revealed with them); for a receipt (`kind: "receipt"`), to the receipt request (the command's nonce) and the encoded receipt, under the receipt's own domain | the plaintext |
//! | `worker_registered` | at that height the registry lists the worker's identity key (the registry verified its quote itself when it listed it) | the registry |
//! | `worker_role` | its measurement is allowed as a pRuntime at that height (and is one of `runtimes`, when pinned): not a gatekeeper, not an application; governance's own signed `AddMeasurement` (in the bundle, proven in the block the entry names) says so, not the authority alone | the registry and the governance key |
//! | `code_hash` | at that height the contract exists with the statement's code hash, and its record (deployer, code hash, salt) hashes to the contract's id | the registry and the id |
//! | `quote` | the quote is the one the registry recorded for the worker, and it and its collateral verify to the trust root at the statement's block time (or `at`) | the trust root |
//! | `report_data` | the quote's report data binds (nonce, runtime data); the runtime data names the statement's worker key, this registry and the registered HPKE key | the quote |
//! | `measurement` | the quote's TEE identity hashes to the registered measurement | the quote and the registry |
//! | `measurement_allowed` | that measurement was allowed at the height | the registry |
//! | `debug` | neither a debug enclave / TD nor a bound service TD | the quote |
//! | `tcb_status` | a status the policy accepts (default `UpToDate`, and `SWHardeningNeeded` that names advisories, all listed), from collateral at least as new as `min_tcb_evaluation_data_number` | the collateral |
//! | `evidence_age` | the registry verified this very quote at most `max_evidence_age` (default: the registry's own lifetime at that height) before the statement | the registry |

use base64::Engine as _;
use chain::evm_proof::{EvmProof, EvmVerified};
use chain::facts::Fact;
use chain::proof::{HeaderProof, ProofError, ProvenFacts, Verified};
use chain::types::SignedHeader;
use phalanx_dcap::collateral::Collateral;
/// The DCAP trust anchors and TCB statuses the options name.
pub use phalanx_dcap::pki::TrustAnchors;
pub use phalanx_dcap::tcb::TcbStatus;
use phalanx_dcap::verify::VerifiedQuote;
use phalanx_types::codec::Codec as _;
use phalanx_types::hex::Hex;
use phalanx_types::statement::{Statement, answer_hash, query_hash};
use serde::{Deserialize, Serialize};

/// The bundle format's version.
pub const VERSION: u32 = 2;
/// Largest bundle accepted (bytes of JSON): quote, collateral and a few proofs.
pub const MAX_BUNDLE: usize = 1024 * 1024;
/// Largest input [`parse`] reads: enough to name an old (version 1, every block)
/// bundle's version rather than only its size.
pub const MAX_INPUT: usize = 64 * 1024 * 1024;

/// Everything needed to check one answer offline (see the crate doc).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bundle {
    /// [`VERSION`].
    pub version: u32,
    /// The statement and what the user reveals.
    pub answer: AnswerProof,
    /// The worker's attestation evidence.
    pub evidence: WorkerEvidence,
    /// The registry's header and proofs.
    pub registry: RegistryProof,
}

impl Bundle {
    /// A bundle from its parts (`registry`: [`RegistryProof::default`] for a verifier
    /// online to fetch).
    pub fn new(answer: AnswerProof, evidence: WorkerEvidence, registry: RegistryProof) -> Self {
        Self {
            version: VERSION,
            answer,
            evidence,
            registry,
        }
    }
}

/// The registry's part of a bundle: a [`HeaderProof`] as JSON, each part base64 of its
/// canonical encoding. Empty (the default): to be fetched (`--chain`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryProof {
    /// The genesis block (`chain::types::Block`, base64).
    pub genesis: String,
    /// The statement's block header and the authority's signature
    /// (`chain::types::SignedHeader`, base64).
    pub header: String,
    /// Each fact's key, value (absent: `null`) and proof.
    pub facts: Vec<FactJson>,
    /// The governance transaction that allowed the worker's measurement (the evidence
    /// of its role beyond the authority's word).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_by: Option<TxJson>,
    /// On an EVM registry, instead of all the above: the statement's block header and
    /// the proofs of the facts (`chain::evm_proof::EvmProof`, base64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evm: Option<String>,
}

/// A transaction of an earlier block: that block's header (its hash is a fact of the
/// statement's header, `header/` ‖ height, or the statement's own), the transaction's
/// position and encoding, and its proof against the header's `tx_root`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TxJson {
    /// The block's header (`chain::types::Header`, base64).
    pub header: String,
    /// The transaction's position in the block.
    pub index: u32,
    /// The signed transaction (`chain::types::SignedTx`, base64).
    pub tx: String,
    /// Its proof against the header's transaction root (base64).
    pub proof: String,
}

impl TxJson {
    /// `block`'s `index`th transaction with its proof.
    pub fn of(block: &chain::types::Block, index: usize) -> Option<Self> {
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        let tx = block.txs.get(index)?;
        let encoded: Vec<Vec<u8>> = block.txs.iter().map(|t| t.encode()).collect();
        let proof = chain::commit::prove_tx(encoded.iter().map(Vec::as_slice), index).ok()?;
        Some(Self {
            header: b64(&block.header().to_bytes()),
            index: u32::try_from(index).ok()?,
            tx: b64(&tx.encode()),
            proof: b64(&proof),
        })
    }
}

/// One fact of a [`RegistryProof`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FactJson {
    /// The fact's key (`chain::facts::Fact::key`, base64).
    pub key: String,
    /// Its value (base64), or `null` where the proof shows it absent.
    pub value: Option<String>,
    /// The proof (`chain::commit`, base64).
    pub proof: String,
}

impl RegistryProof {
    /// The JSON form of `proof`.
    pub fn of(proof: &HeaderProof) -> Self {
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        Self {
            genesis: b64(&proof.genesis.encode()),
            header: b64(&proof.header.to_bytes()),
            facts: proof
                .facts
                .iter()
                .map(|f| FactJson {
                    key: b64(&f.key),
                    value: f.value.as_deref().map(b64),
                    proof: b64(&f.proof),
                })
                .collect(),
            allowed_by: None,
            evm: None,
        }
    }

    /// The JSON form of an EVM registry's `proof`.
    pub fn of_evm(proof: &EvmProof) -> Self {
        Self {
            evm: Some(base64::engine::general_purpose::STANDARD.encode(proof.to_bytes())),
            ..Self::default()
        }
    }

    /// Whether it is empty (to be fetched).
    pub fn is_empty(&self) -> bool {
        self.genesis.is_empty()
            && self.header.is_empty()
            && self.facts.is_empty()
            && self.evm.is_none()
    }

    /// The proof it carries, decoded (not yet checked); unusable input is `malformed`.
    pub fn decode(&self) -> Result<HeaderProof, Refusal> {
        const CHECK: &str = "registry";
        if self.is_empty() {
            return Err(refuse(
                CHECK,
                "registry_incomplete",
                "the bundle carries no registry proof (fetch it: --chain URL)",
            ));
        }
        if self.facts.len() > chain::proof::MAX_FACTS {
            return Err(malformed(CHECK, "too many facts"));
        }
        let genesis = chain::types::Block::decode(&b64(CHECK, "genesis", &self.genesis)?)
            .map_err(|e| malformed(CHECK, format!("genesis: {e}")))?;
        let header = SignedHeader::from_bytes(&b64(CHECK, "header", &self.header)?)
            .map_err(|e| malformed(CHECK, format!("header: {e}")))?;
        let facts = self
            .facts
            .iter()
            .map(|f| {
                Ok(chain::proof::FactProof {
                    key: b64(CHECK, "a fact's key", &f.key)?,
                    value: f
                        .value
                        .as_deref()
                        .map(|v| b64(CHECK, "a fact's value", v))
                        .transpose()?,
                    proof: b64(CHECK, "a fact's proof", &f.proof)?,
                })
            })
            .collect::<Result<Vec<_>, Refusal>>()?;
        Ok(HeaderProof {
            genesis,
            header,
            facts,
        })
    }
}

/// The facts the checks read for `statement` on a registry whose evidence rule is
/// `rule` ([`Fact::Rule`] on the ledger, [`Fact::TcbRule`] on EVM): the rule, the
/// worker, the contract, and — once known, from a first proof — the worker's
/// measurement's allow-list entry.
pub fn answer_facts(statement: &Statement, rule: Fact, measurement: Option<&[u8]>) -> Vec<Fact> {
    let worker = statement.worker_key().unwrap_or_default();
    let mut facts = vec![
        rule,
        Fact::Worker(worker),
        Fact::Contract(statement.contract.0),
    ];
    facts.extend(measurement.map(|m| Fact::Allowed(m.to_vec())));
    facts
}

/// The keys of [`answer_facts`] on the embedded ledger.
pub fn fact_keys(statement: &Statement, measurement: Option<&[u8]>) -> Vec<Vec<u8>> {
    answer_facts(statement, Fact::Rule, measurement)
        .iter()
        .map(Fact::key)
        .collect()
}

/// The registry part of a bundle for `statement` on an EVM registry, from `prove` (facts
/// → an `eth_getProof` proof at the statement's block): a first proof for the worker's
/// record, then one with its measurement's allow-list entry. Nothing here is trusted.
pub fn evm_registry_proof<E>(
    statement: &Statement,
    mut prove: impl FnMut(&[Fact]) -> Result<EvmProof, E>,
) -> Result<RegistryProof, E> {
    let first = prove(&answer_facts(statement, Fact::TcbRule, None))?;
    let key = Fact::Worker(statement.worker_key().unwrap_or_default()).key();
    let measurement = first
        .facts
        .iter()
        .find(|f| f.key == key)
        .and_then(|f| f.value.as_deref())
        .and_then(|v| chain::facts::read_worker(&[], v).ok())
        .map(|w| w.measurement);
    let proof = match measurement {
        Some(m) => prove(&answer_facts(statement, Fact::TcbRule, Some(&m)))?,
        None => first,
    };
    Ok(RegistryProof::of_evm(&proof))
}

/// The registry part of a bundle for `statement`, from `prove` (the facts' keys → a
/// proof at the statement's height: a ledger node's `Prove`, or a state at hand) and
/// `block` (a block by height): a first proof for the worker's record, a second with
/// its measurement's allow-list entry, then that entry's block and the proof of its
/// header, with the governance transaction that allowed it. Nothing here is trusted —
/// the verifier checks what `prove` and `block` return.
pub fn registry_proof<E>(
    statement: &Statement,
    mut prove: impl FnMut(&[Vec<u8>]) -> Result<HeaderProof, E>,
    mut block: impl FnMut(u64) -> Result<chain::types::Block, E>,
) -> Result<RegistryProof, E> {
    let value = |p: &HeaderProof, f: &Fact| {
        let key = f.key();
        p.facts
            .iter()
            .find(|x| x.key == key)
            .and_then(|x| x.value.clone())
    };
    let first = prove(&fact_keys(statement, None))?;
    let worker = Fact::Worker(statement.worker_key().unwrap_or_default());
    let Some(m) = value(&first, &worker)
        .and_then(|v| chain::facts::read_worker(&[], &v).ok())
        .map(|w| w.measurement)
    else {
        return Ok(RegistryProof::of(&first));
    };
    let mut keys = fact_keys(statement, Some(&m));
    let second = prove(&keys)?;
    let Some(allowed) = value(&second, &Fact::Allowed(m.clone()))
        .and_then(|v| chain::facts::read_allowed(&m, &v).ok())
    else {
        return Ok(RegistryProof::of(&second));
    };
    let proof = if allowed.added_in < statement.height {
        keys.push(Fact::Header(allowed.added_in).key());
        prove(&keys)?
    } else {
        second
    };
    let added = block(allowed.added_in)?;
    // The last one of the block that allows it as a pRuntime (one block may add, remove
    // and add again).
    let index = added.txs.iter().rposition(|t| {
        matches!(&t.tx, chain::types::Tx::AddMeasurement { measurement, role }
            if *measurement == m && *role == chain::types::Role::Runtime)
    });
    let mut out = RegistryProof::of(&proof);
    out.allowed_by = index.and_then(|i| TxJson::of(&added, i));
    Ok(out)
}

/// The governance transaction `by` allowed `allowed` as a pRuntime: it is the
/// `AddMeasurement` of that measurement in that role, signed by the genesis's governance
/// key for this chain, in the block the entry names, whose header is the statement's
/// chain's (its hash proven at the statement's header).
fn allowed_by_governance(
    reg: &Verified,
    allowed: &chain::types::Allowed,
    by: Option<&TxJson>,
) -> Result<(), Refusal> {
    const CHECK: &str = "worker_role";
    let by = by.ok_or_else(|| {
        refuse(
            CHECK,
            "registry_incomplete",
            "the bundle does not carry the governance transaction that allowed the measurement",
        )
    })?;
    let header = chain::types::Header::from_bytes(&b64(CHECK, "allowed_by.header", &by.header)?)
        .map_err(|e| malformed(CHECK, format!("allowed_by.header: {e}")))?;
    let tx_bytes = b64(CHECK, "allowed_by.tx", &by.tx)?;
    let tx = chain::types::SignedTx::from_bytes(&tx_bytes)
        .map_err(|e| malformed(CHECK, format!("allowed_by.tx: {e}")))?;
    let proof = b64(CHECK, "allowed_by.proof", &by.proof)?;
    let not = |why: String| refuse(CHECK, "allowed_not_by_governance", why);
    if header.height != allowed.added_in {
        return Err(not(format!(
            "the transaction's block is {}, the entry names block {}",
            header.height, allowed.added_in
        )));
    }
    let in_chain = if header.height == reg.header.height {
        header == reg.header
    } else {
        fact(CHECK, reg.fact(&Fact::Header(header.height)))?
            .is_some_and(|h| h == header.hash().as_slice())
    };
    if !in_chain {
        return Err(not(format!(
            "block {} is not the statement's chain's",
            header.height
        )));
    }
    chain::commit::verify_tx(&header.tx_root, by.index as usize, &tx_bytes, &proof).map_err(
        |e| {
            not(format!(
                "the transaction is not in block {}: {e}",
                header.height
            ))
        },
    )?;
    let genesis = &reg.genesis;
    if tx.signer != genesis.governance || !tx.verify(&genesis.chain_id()) {
        return Err(not("the transaction is not signed by governance".into()));
    }
    match &tx.tx {
        chain::types::Tx::AddMeasurement { measurement, role }
            if *measurement == allowed.measurement && *role == chain::types::Role::Runtime =>
        {
            Ok(())
        }
        _ => Err(not(
            "governance's transaction does not allow this measurement as a pRuntime".into(),
        )),
    }
}

/// The signed statement and the revealed query and answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnswerProof {
    /// What was answered: a query (the default, and what older bundles hold) or a
    /// command's receipt (its query is the receipt request, its answer the encoded
    /// `phalanx_types::receipt::Receipt`).
    #[serde(default, skip_serializing_if = "AnswerKind::is_query")]
    pub kind: AnswerKind,
    /// What the worker states.
    pub statement: Statement,
    /// Its signature (r ‖ s, base64).
    pub signature: String,
    /// The user's key that signed the query (SEC1, base64), as in the query.
    pub caller_key: String,
    /// The query's nonce.
    pub nonce: Hex<16>,
    /// The query's salt (sealed inside the query; revealed here).
    pub query_salt: Hex<32>,
    /// The plaintext query (base64).
    pub query: String,
    /// The answer's salt (sealed inside the answer; revealed here).
    pub answer_salt: Hex<32>,
    /// The plaintext answer (base64).
    pub answer: String,
}

/// What a statement answers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnswerKind {
    /// A contract query.
    #[default]
    Query,
    /// A command's receipt.
    Receipt,
    /// A page of a contract's events.
    Events,
}

impl AnswerKind {
    fn is_query(&self) -> bool {
        *self == Self::Query
    }
}

/// A worker's attestation evidence, kept by the worker as it attested.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerEvidence {
    /// `sgx` or `tdx`.
    pub tee: String,
    /// The DCAP quote (base64).
    pub quote: String,
    /// The attestation service's nonce (raw bytes, base64).
    pub nonce: String,
    /// The runtime data (base64): `phalanx_release::release::WorkerRuntimeData`.
    pub runtime_data: String,
    /// The collateral the quote was verified with (the JSON bundle format).
    pub collateral: String,
}

impl WorkerEvidence {
    /// The evidence as a registration carries it to the registry (which verifies it
    /// itself): the decoded quote, collateral, nonce and runtime data.
    pub fn registry_evidence(&self) -> Result<chain::types::Evidence, Refusal> {
        const CHECK: &str = "evidence";
        Ok(chain::types::Evidence {
            quote: b64(CHECK, "quote", &self.quote)?,
            collateral: self.collateral.as_bytes().to_vec(),
            nonce: b64(CHECK, "nonce", &self.nonce)?,
            runtime_data: b64(CHECK, "runtime_data", &self.runtime_data)?,
        })
    }
}

/// Which TCB statuses are accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcbPolicy {
    /// Accepted outright.
    pub statuses: Vec<TcbStatus>,
    /// `SWHardeningNeeded` is accepted when it names advisories and each is listed here
    /// (with none named, only when listed in `statuses`).
    pub advisories: Vec<String>,
    /// The lowest `tcbEvaluationDataNumber` of the collateral accepted: collateral from
    /// before a TCB recovery (an older number) proves nothing about today.
    pub min_tcb_evaluation_data_number: u32,
}

impl Default for TcbPolicy {
    fn default() -> Self {
        Self {
            statuses: vec![TcbStatus::UpToDate],
            advisories: Vec::new(),
            min_tcb_evaluation_data_number: 0,
        }
    }
}

/// What names the registry an answer must come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pin {
    /// The embedded ledger: its genesis block hash.
    Ledger {
        /// The genesis block's hash.
        genesis: [u8; 32],
    },
    /// A Solidity registry on an EVM chain.
    Evm {
        /// The chain's id.
        chain_id: u64,
        /// The registry contract's address.
        registry: [u8; 20],
        /// The hash of the statement's block as the user trusts it (pinned, or their
        /// own node's); without it an EVM bundle is refused (`evm_block_untrusted`).
        block: Option<[u8; 32]>,
    },
}

impl Pin {
    /// What the verdict names as the registry's anchor.
    fn anchor(&self) -> String {
        match self {
            Self::Ledger { genesis } => format!("genesis {}", hex::encode(genesis)),
            Self::Evm {
                chain_id,
                registry,
                block,
            } => format!(
                "registry 0x{} on chain {chain_id} at trusted block {}",
                hex::encode(registry),
                block.map(hex::encode).unwrap_or_default()
            ),
        }
    }
}

/// What the verifier trusts and accepts.
#[derive(Debug, Clone)]
pub struct Options {
    /// The registry.
    pub pin: Pin,
    /// The DCAP trust root(s).
    pub anchors: TrustAnchors,
    /// A name for the trust root in the verdict (`intel`, or the PEM file's).
    pub root_name: String,
    /// Verify the quote at this instant instead of the statement's block time.
    pub at: Option<i64>,
    /// Accepted TCB statuses.
    pub tcb: TcbPolicy,
    /// Largest age of the worker's evidence at the statement, seconds; `None`: the
    /// registry's own evidence lifetime at that height (what governance set).
    pub max_evidence_age: Option<i64>,
    /// When not empty, the only pRuntime tenants (measurements) accepted, whatever the
    /// registry allows.
    pub runtimes: Vec<[u8; 32]>,
}

impl Options {
    /// Intel's root, the default TCB policy and evidence age, pinned to the ledger
    /// whose genesis block hashes to `genesis`.
    pub fn intel(genesis: [u8; 32]) -> Self {
        Self::intel_at(Pin::Ledger { genesis })
    }

    /// Intel's root, the default TCB policy and evidence age, pinned to `pin`.
    pub fn intel_at(pin: Pin) -> Self {
        Self {
            pin,
            anchors: TrustAnchors::intel(),
            root_name: "intel".into(),
            at: None,
            tcb: TcbPolicy::default(),
            max_evidence_age: None,
            runtimes: Vec::new(),
        }
    }
}

/// [`Options`] as people and pages give them: hex, PEM text, status names. The CLI and
/// the browser page both build their options through this one conversion.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptionsSpec {
    /// The embedded ledger's genesis hash (hex, `0x` allowed); or empty, with
    /// `evm_registry`.
    #[serde(default)]
    pub genesis: String,
    /// An EVM registry instead: `CHAIN_ID:0xADDRESS`.
    #[serde(default)]
    pub evm_registry: Option<String>,
    /// With `evm_registry`: the hash of the statement's block as the user trusts it
    /// (hex).
    #[serde(default)]
    pub evm_block: Option<String>,
    /// A DCAP root (PEM) instead of Intel's; empty means Intel's.
    #[serde(default)]
    pub trust_root_pem: Option<String>,
    /// What to call that root in the verdict and errors (default "the given root").
    #[serde(default)]
    pub root_name: Option<String>,
    /// Verify the quote at this instant instead of the answer's block time.
    #[serde(default)]
    pub at: Option<i64>,
    /// Accepted TCB statuses (default `UpToDate`).
    #[serde(default)]
    pub tcb_statuses: Vec<TcbStatus>,
    /// Advisories accepted with `SWHardeningNeeded`.
    #[serde(default)]
    pub advisories: Vec<String>,
    /// Largest evidence age, seconds (default: the registry's own evidence lifetime).
    #[serde(default)]
    pub max_evidence_age: Option<i64>,
    /// The lowest `tcbEvaluationDataNumber` of the collateral accepted (default 0).
    #[serde(default)]
    pub min_tcb_evaluation_data_number: Option<u32>,
    /// The only pRuntime measurements (tenant ids, hex) accepted; empty: any the
    /// registry allows as a pRuntime.
    #[serde(default)]
    pub runtimes: Vec<String>,
}

impl OptionsSpec {
    /// The options; a bad genesis or root is an unusable-input refusal (check `options`).
    pub fn options(&self) -> Result<Options, Refusal> {
        let hash = |s: &str, what: &str| {
            let mut h = [0u8; 32];
            hex::decode_to_slice(s.trim().trim_start_matches("0x"), &mut h)
                .map_err(|_| malformed("options", format!("{what} must be 64 hex characters")))?;
            Ok::<_, Refusal>(h)
        };
        let pin = match (self.genesis.trim().is_empty(), &self.evm_registry) {
            (false, None) => Pin::Ledger {
                genesis: hash(&self.genesis, "genesis")?,
            },
            (true, Some(r)) => {
                let (chain_id, registry) =
                    chain::evm_proof::parse_registry_pin(r).map_err(|e| malformed("options", e))?;
                let block = self
                    .evm_block
                    .as_deref()
                    .map(|b| hash(b, "the EVM block hash"))
                    .transpose()?;
                Pin::Evm {
                    chain_id,
                    registry,
                    block,
                }
            }
            _ => {
                return Err(malformed(
                    "options",
                    "name the registry once: a ledger genesis or an EVM registry",
                ));
            }
        };
        let mut o = Options::intel_at(pin);
        if let Some(pem) = self
            .trust_root_pem
            .as_deref()
            .filter(|s| !s.trim().is_empty())
        {
            let name = self.root_name.as_deref().unwrap_or("the given root");
            o.anchors = TrustAnchors::from_pem(pem.as_bytes())
                .map_err(|e| malformed("options", format!("{name}: {e}")))?;
            o.root_name = name.to_owned();
        }
        o.at = self.at;
        if !self.tcb_statuses.is_empty() {
            o.tcb.statuses = self.tcb_statuses.clone();
        }
        o.tcb.advisories = self.advisories.clone();
        if let Some(n) = self.min_tcb_evaluation_data_number {
            o.tcb.min_tcb_evaluation_data_number = n;
        }
        o.max_evidence_age = self.max_evidence_age;
        for r in &self.runtimes {
            let mut m = [0u8; 32];
            hex::decode_to_slice(r.trim().trim_start_matches("0x"), &mut m).map_err(|_| {
                malformed(
                    "options",
                    "a pRuntime measurement must be 64 hex characters",
                )
            })?;
            o.runtimes.push(m);
        }
        Ok(o)
    }
}

/// One check passed, and what it rests on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Passed {
    /// The check's name.
    pub check: String,
    /// What it was checked against.
    pub anchor: String,
}

/// What an accepted answer proves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accepted {
    /// The contract id (hex).
    pub contract: String,
    /// Its code hash (hex).
    pub code_hash: String,
    /// The worker's identity key (hex).
    pub worker: String,
    /// `sgx` or `tdx`.
    pub tee: String,
    /// MRENCLAVE or MRTD (hex).
    pub measurement: String,
    /// The quote's TCB status.
    pub tcb_status: String,
    /// The statement's height.
    pub height: u64,
    /// Every check, in order.
    pub checks: Vec<Passed>,
}

/// Why an answer was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    /// A stable code (`malformed` when the input is unusable).
    pub code: String,
    /// The check that failed.
    pub check: String,
    /// What failed, for people.
    pub message: String,
}

/// The verdict: `{"ok": true, …}` with what the answer proves, or `{"ok": false,
/// "error": …}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// Accepted.
    pub ok: bool,
    /// What it proves, when accepted.
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub accepted: Option<Accepted>,
    /// Why not, when refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Refusal>,
}

impl Verdict {
    /// A refusal.
    pub fn refused(error: Refusal) -> Self {
        Self {
            ok: false,
            accepted: None,
            error: Some(error),
        }
    }

    /// Whether the input itself was unusable (as opposed to a refused answer).
    pub fn unusable(&self) -> bool {
        self.error.as_ref().is_some_and(|e| e.code == "malformed")
    }
}

fn refuse(check: &str, code: &str, message: impl Into<String>) -> Refusal {
    Refusal {
        code: code.into(),
        check: check.into(),
        message: message.into(),
    }
}

/// An unusable-input refusal (code `malformed`) naming `check`.
pub fn malformed(check: &str, message: impl Into<String>) -> Refusal {
    refuse(check, "malformed", message)
}

fn b64(check: &str, field: &str, s: &str) -> Result<Vec<u8>, Refusal> {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|_| malformed(check, format!("{field} is not base64")))
}

/// Parses a bundle (bounded by [`MAX_BUNDLE`]); a failure is an unusable-input refusal
/// (code `malformed`, check `bundle`).
pub fn parse(json: &[u8]) -> Result<Bundle, Refusal> {
    if json.len() > MAX_INPUT {
        return Err(malformed("bundle", format!("over {MAX_BUNDLE} bytes")));
    }
    // The version first, so an old bundle is named as such, not as a bad shape or size.
    #[derive(Deserialize)]
    struct Versioned {
        version: u32,
    }
    let version = serde_json::from_slice::<Versioned>(json)
        .map_err(|e| malformed("bundle", format!("not a bundle: {e}")))?
        .version;
    if version == 1 {
        return Err(malformed(
            "bundle",
            format!(
                "version 1 (every registry block from genesis) is no longer read: this \
                 verifier reads version {VERSION} (a header and proofs); make the bundle \
                 again with this release"
            ),
        ));
    }
    if version != VERSION {
        return Err(malformed(
            "bundle",
            format!("version {version} (this verifier reads {VERSION})"),
        ));
    }
    if json.len() > MAX_BUNDLE {
        return Err(malformed("bundle", format!("over {MAX_BUNDLE} bytes")));
    }
    serde_json::from_slice(json).map_err(|e| malformed("bundle", format!("not a bundle: {e}")))
}

/// Checks `bundle` under `options` (see the crate doc for the checks), cold: every
/// signature of the quote and its collateral is verified.
pub fn verify(bundle: &Bundle, options: &Options) -> Verdict {
    Checker::new(options.clone()).verify(bundle)
}

/// A verifier that keeps what it verified once — collateral by its exact bytes, PCK
/// chains — for the next bundles (a page or a service checking many answers of the same
/// workers). The verdicts are the same as [`verify`]'s.
#[derive(Debug)]
pub struct Checker {
    options: Options,
    quotes: phalanx_dcap::Verifier,
}

impl Checker {
    /// A checker under `options`.
    pub fn new(options: Options) -> Self {
        let quotes = phalanx_dcap::Verifier::new(options.anchors.clone());
        Self { options, quotes }
    }

    /// Checks `bundle`.
    pub fn verify(&self, bundle: &Bundle) -> Verdict {
        match run(bundle, &self.options, &self.quotes) {
            Ok(accepted) => Verdict {
                ok: true,
                accepted: Some(accepted),
                error: None,
            },
            Err(e) => Verdict::refused(e),
        }
    }
}

/// The registry's facts at the statement's block, from either backend.
enum Reg {
    Ledger(Verified),
    Evm(EvmVerified),
}

impl std::ops::Deref for Reg {
    type Target = ProvenFacts;

    fn deref(&self) -> &ProvenFacts {
        match self {
            Self::Ledger(v) => v,
            Self::Evm(v) => v,
        }
    }
}

impl Reg {
    /// The registry's id: what contract ids and workers' evidence bind.
    fn registry_id(&self) -> [u8; 32] {
        match self {
            Self::Ledger(v) => v.header.chain_id,
            Self::Evm(v) => v.registry_id,
        }
    }

    /// The block's time.
    fn time(&self) -> i64 {
        match self {
            Self::Ledger(v) => v.header.timestamp,
            Self::Evm(v) => i64::try_from(v.block.timestamp).unwrap_or(i64::MAX),
        }
    }

    /// The registry's evidence lifetime at the block, seconds (`None`: proven to keep
    /// none, which no Phalanx registry does).
    fn max_evidence_age(&self) -> Result<Option<u64>, ProofError> {
        match self {
            Self::Ledger(v) => Ok(Some(v.rule()?.max_evidence_age)),
            Self::Evm(v) => Ok(v
                .read(&Fact::TcbRule, chain::facts::read_tcb_rule)?
                .map(|r| r.max_evidence_age)),
        }
    }
}

/// The registry's part checked against the pin, at the statement's block.
fn registry(proof: &RegistryProof, pin: &Pin, st: &Statement) -> Result<Reg, Refusal> {
    const CHECK: &str = "registry";
    let other = |why: &str| refuse(CHECK, "other_chain", why);
    match (pin, &proof.evm) {
        (Pin::Ledger { genesis }, None) => ledger_registry(proof, genesis, st).map(Reg::Ledger),
        (
            Pin::Evm {
                chain_id,
                registry,
                block,
            },
            Some(evm),
        ) => evm_registry(evm, (*chain_id, registry), block.as_ref(), st).map(Reg::Evm),
        (Pin::Ledger { .. }, Some(_)) => Err(other(
            "the bundle is of an EVM registry, the pin names a ledger's genesis",
        )),
        (Pin::Evm { .. }, None) if proof.is_empty() => Err(refuse(
            CHECK,
            "registry_incomplete",
            "the bundle carries no registry proof (fetch it: --chain URL)",
        )),
        (Pin::Evm { .. }, None) => Err(other(
            "the bundle is of the embedded ledger, the pin names an EVM registry",
        )),
    }
}

/// An EVM registry's proof: of the pinned registry, at the statement's block, whose hash
/// is the trusted one.
fn evm_registry(
    evm: &str,
    (chain_id, registry): (u64, &[u8; 20]),
    trusted: Option<&[u8; 32]>,
    st: &Statement,
) -> Result<EvmVerified, Refusal> {
    const CHECK: &str = "registry";
    let proof = EvmProof::from_bytes(&b64(CHECK, "evm", evm)?)
        .map_err(|e| malformed(CHECK, format!("evm: {e}")))?;
    if proof.chain_id != chain_id || proof.registry != *registry {
        return Err(refuse(
            CHECK,
            "other_chain",
            format!(
                "the proof is of registry 0x{} on chain {}, the pin names 0x{} on chain \
                 {chain_id}",
                hex::encode(proof.registry),
                proof.chain_id,
                hex::encode(registry)
            ),
        ));
    }
    let block = proof.block().map_err(|e| malformed(CHECK, e.to_string()))?;
    if block.number != st.height || block.hash != st.block_hash.0 {
        return Err(refuse(
            CHECK,
            "block_hash_mismatch",
            format!(
                "the header is block {} at height {}, the statement names {} at height {}",
                hex::encode(block.hash),
                block.number,
                st.block_hash,
                st.height
            ),
        ));
    }
    let trusted = trusted.ok_or_else(|| {
        refuse(
            CHECK,
            "evm_block_untrusted",
            format!(
                "nothing says EVM block {} is {}: pin its hash (--evm-block) or ask your own \
                 node (--chain)",
                block.number,
                hex::encode(block.hash)
            ),
        )
    })?;
    proof.verify(trusted).map_err(|e| {
        let code = match &e {
            ProofError::UntrustedBlock { .. } => "evm_block_untrusted",
            ProofError::NotTheRegistry { .. } => "not_the_registry",
            _ => "bad_fact_proof",
        };
        refuse(CHECK, code, e.to_string())
    })
}

/// The ledger's part checked against the pinned genesis, at the statement's block.
fn ledger_registry(
    proof: &RegistryProof,
    genesis: &[u8; 32],
    st: &Statement,
) -> Result<Verified, Refusal> {
    const CHECK: &str = "registry";
    let verified = proof.decode()?.verify(genesis).map_err(|e| {
        let code = match &e {
            ProofError::Genesis(_) => "wrong_genesis",
            ProofError::OtherChain { .. } => "other_chain",
            ProofError::BadSignature(_) => "bad_header_signature",
            _ => "bad_fact_proof",
        };
        refuse(CHECK, code, e.to_string())
    })?;
    let h = &verified.header;
    if h.height != st.height || h.hash() != st.block_hash.0 {
        return Err(refuse(
            CHECK,
            "block_hash_mismatch",
            format!(
                "the header is block {} at height {}, the statement names {} at height {}",
                hex::encode(h.hash()),
                h.height,
                st.block_hash,
                st.height
            ),
        ));
    }
    Ok(verified)
}

/// A fact the check reads: a missing proof is the bundle's gap (`registry_incomplete`),
/// an undecodable value is unusable input.
fn fact<T>(check: &str, read: Result<T, ProofError>) -> Result<T, Refusal> {
    read.map_err(|e| match e {
        ProofError::Missing(_) => refuse(check, "registry_incomplete", e.to_string()),
        other => malformed(check, other.to_string()),
    })
}

/// The checks top to bottom, in the order of the crate doc's table: each step below
/// runs one group of them and notes each check it passes.
fn run(bundle: &Bundle, o: &Options, quotes: &phalanx_dcap::Verifier) -> Result<Accepted, Refusal> {
    let st = &bundle.answer.statement;
    let mut checks = Vec::new();
    let reg = registry(&bundle.registry, &o.pin, st)?;
    let anchor = match &reg {
        Reg::Ledger(_) => o.pin.anchor(),
        Reg::Evm(v) => format!(
            "{}, this release's registry contract governed by 0x{}",
            o.pin.anchor(),
            hex::encode(v.governance)
        ),
    };
    pass(&mut checks, "registry", anchor);
    let worker = answer_checks(&bundle.answer, &mut checks)?;
    let (registered, allowed) = worker_checks(bundle, &reg, &worker, o, &mut checks)?;
    contract_checks(&reg, st, &mut checks)?;
    let (verified, tee) = quote_checks(
        &bundle.evidence,
        &registered,
        o,
        reg.time(),
        quotes,
        &mut checks,
    )?;
    binding_checks(
        &bundle.evidence,
        &verified,
        &worker,
        &reg,
        &registered,
        &mut checks,
    )?;
    let measurement =
        measurement_checks(&verified, &registered, allowed.is_some(), st, &mut checks)?;
    tcb_checks(&verified, o, &mut checks)?;
    age_check(&reg, &registered, o, st, &mut checks)?;
    Ok(Accepted {
        contract: st.contract.to_string(),
        code_hash: st.code_hash.to_string(),
        worker: st.worker.clone(),
        tee: tee.into(),
        measurement,
        tcb_status: format!("{:?}", verified.status),
        height: st.height,
        checks,
    })
}

/// Notes a passed check and what it rests on.
fn pass(checks: &mut Vec<Passed>, check: &str, anchor: impl Into<String>) {
    checks.push(Passed {
        check: check.into(),
        anchor: anchor.into(),
    });
}

fn at_height(st: &Statement) -> String {
    format!("registry at height {}", st.height)
}

/// `statement_signature`, `query_hash`, `answer_hash`; the worker's key.
fn answer_checks(a: &AnswerProof, checks: &mut Vec<Passed>) -> Result<Vec<u8>, Refusal> {
    let st = &a.statement;
    // statement_signature
    let worker = st
        .worker_key()
        .map_err(|_| malformed("statement_signature", "the statement's worker key"))?;
    let signed = st
        .signed_bytes()
        .map_err(|_| malformed("statement_signature", "the statement"))?;
    let signature = b64("statement_signature", "signature", &a.signature)?;
    if !chain::types::verify_p256(&worker, &signed, &signature) {
        return Err(refuse(
            "statement_signature",
            "bad_signature",
            "the statement's signature does not verify under its worker key",
        ));
    }
    pass(
        checks,
        "statement_signature",
        format!("worker key {}", st.worker),
    );

    // query_hash, answer_hash
    let caller = b64("query_hash", "caller_key", &a.caller_key)?;
    let query = b64("query_hash", "query", &a.query)?;
    let hash = match a.kind {
        AnswerKind::Query => query_hash(&caller, &a.nonce.0, &a.query_salt.0, &query),
        AnswerKind::Receipt => {
            phalanx_types::receipt::request_hash(&caller, &a.nonce.0, &a.query_salt.0, &query)
        }
        AnswerKind::Events => phalanx_types::receipt::events_request_hash(
            &caller,
            &a.nonce.0,
            &a.query_salt.0,
            &query,
        ),
    };
    if hash != st.query_hash.0 {
        return Err(refuse(
            "query_hash",
            "query_mismatch",
            "the revealed query (with its caller key and nonce) is not the one the statement names",
        ));
    }
    let what = match a.kind {
        AnswerKind::Query => "the revealed query",
        AnswerKind::Receipt => "the revealed receipt request (a command's receipt)",
        AnswerKind::Events => "the revealed events request (a page of the contract's events)",
    };
    pass(checks, "query_hash", what);
    let answer = b64("answer_hash", "answer", &a.answer)?;
    if answer_hash(&a.answer_salt.0, &answer) != st.answer_hash.0 {
        return Err(refuse(
            "answer_hash",
            "answer_mismatch",
            "the revealed answer is not the one the statement names",
        ));
    }
    pass(checks, "answer_hash", "the revealed answer");

    Ok(worker)
}

/// `worker_registered`, `worker_role`: the worker's record and its measurement's entry.
fn worker_checks(
    bundle: &Bundle,
    reg: &Reg,
    worker: &[u8],
    o: &Options,
    checks: &mut Vec<Passed>,
) -> Result<(chain::types::Worker, Option<chain::types::Allowed>), Refusal> {
    let st = &bundle.answer.statement;
    let at_height = at_height(st);
    // worker_registered
    let registered = fact("worker_registered", reg.worker(worker))?.ok_or_else(|| {
        refuse(
            "worker_registered",
            "worker_not_registered",
            format!(
                "the registry does not list worker {} at height {}",
                st.worker, st.height
            ),
        )
    })?;
    pass(checks, "worker_registered", at_height.clone());

    // worker_role
    let allowed = fact("worker_role", reg.allowed(&registered.measurement))?;
    match allowed.as_ref().map(|a| a.role) {
        Some(chain::types::Role::Runtime) => {}
        other => {
            return Err(refuse(
                "worker_role",
                "not_a_runtime",
                format!(
                    "worker {} is registered as {} at height {}, not as a pRuntime",
                    st.worker,
                    other.map_or("nothing allowed", chain::types::Role::name),
                    st.height
                ),
            ));
        }
    }
    // On EVM only the contract's governance account adds a measurement: its rule.
    if let (Some(entry), Reg::Ledger(ledger)) = (&allowed, reg) {
        allowed_by_governance(ledger, entry, bundle.registry.allowed_by.as_ref())?;
    }
    if !o.runtimes.is_empty()
        && !o
            .runtimes
            .iter()
            .any(|m| m.as_slice() == registered.measurement.as_slice())
    {
        return Err(refuse(
            "worker_role",
            "runtime_not_pinned",
            format!(
                "the worker's measurement {} is not one of the pinned pRuntimes",
                hex::encode(&registered.measurement)
            ),
        ));
    }
    let by = match reg {
        Reg::Ledger(_) => "governance's allow-list transaction",
        Reg::Evm(_) => "the registry contract's governance rule",
    };
    pass(checks, "worker_role", format!("{at_height} and {by}"));

    Ok((registered, allowed))
}

/// `code_hash`.
fn contract_checks(reg: &Reg, st: &Statement, checks: &mut Vec<Passed>) -> Result<(), Refusal> {
    // code_hash
    let contract = fact("code_hash", reg.contract(&st.contract.0))?.ok_or_else(|| {
        refuse(
            "code_hash",
            "no_contract",
            format!("no contract {} at height {}", st.contract, st.height),
        )
    })?;
    // The id the user addressed is the hash of deployer, code hash and salt: the
    // registry's record of the contract cannot pair it with other code.
    let id = phalanx_types::contract::contract_id(
        &reg.registry_id(),
        &contract.deployer,
        &contract.code_hash,
        &contract.salt,
    );
    if id != st.contract.0 {
        return Err(refuse(
            "code_hash",
            "contract_id_mismatch",
            "the registry's record of the contract does not hash to its id",
        ));
    }
    if contract.code_hash != st.code_hash.0 {
        return Err(refuse(
            "code_hash",
            "code_hash_mismatch",
            format!(
                "the contract's code hash is {}, the statement names {}",
                hex::encode(contract.code_hash),
                st.code_hash
            ),
        ));
    }
    pass(checks, "code_hash", at_height(st));

    Ok(())
}

/// `quote`: the registered quote, verified to the trust root; it and its TEE.
fn quote_checks(
    e: &WorkerEvidence,
    registered: &chain::types::Worker,
    o: &Options,
    time: i64,
    quotes: &phalanx_dcap::Verifier,
    checks: &mut Vec<Passed>,
) -> Result<(VerifiedQuote, &'static str), Refusal> {
    // quote
    let quote = b64("quote", "quote", &e.quote)?;
    if chain::types::Evidence::quote_hash(&quote) != registered.quote_hash {
        return Err(refuse(
            "quote",
            "quote_not_registered",
            "the bundle's quote is not the one the registry verified for this worker",
        ));
    }
    let collateral = Collateral::from_bundle_json(e.collateral.as_bytes())
        .map_err(|err| malformed("quote", format!("collateral: {err}")))?;
    let at = o.at.unwrap_or(time);
    let verified: VerifiedQuote = quotes
        .verify(&quote, &collateral, at)
        .map_err(|err| refuse("quote", "quote_invalid", err.to_string()))?;
    let tee = match verified.tee() {
        phalanx_dcap::quote::TeeType::Sgx => "sgx",
        phalanx_dcap::quote::TeeType::Tdx => "tdx",
    };
    if e.tee != tee {
        return Err(refuse(
            "quote",
            "tee_mismatch",
            format!("the bundle says {}, the quote is {tee}", e.tee),
        ));
    }
    pass(
        checks,
        "quote",
        format!("trust root {} at {at}", o.root_name),
    );

    Ok((verified, tee))
}

/// `report_data`: the quote binds the worker's keys and this registry.
fn binding_checks(
    e: &WorkerEvidence,
    verified: &VerifiedQuote,
    worker: &[u8],
    reg: &Reg,
    registered: &chain::types::Worker,
    checks: &mut Vec<Passed>,
) -> Result<(), Refusal> {
    // report_data
    let nonce = b64("report_data", "evidence nonce", &e.nonce)?;
    let runtime_data = b64("report_data", "runtime_data", &e.runtime_data)?;
    if verified.report_data != phalanx_ear::report_data(&nonce, &runtime_data) {
        return Err(refuse(
            "report_data",
            "report_data_mismatch",
            "the quote's report data does not bind this nonce and runtime data",
        ));
    }
    let rd = phalanx_release::release::WorkerRuntimeData::decode(&runtime_data)
        .map_err(|err| refuse("report_data", "runtime_data_invalid", err.to_string()))?;
    if rd.identity_key != worker {
        return Err(refuse(
            "report_data",
            "worker_key_not_attested",
            "the attested identity key is not the statement's worker key",
        ));
    }
    if rd.registry != reg.registry_id() {
        return Err(refuse(
            "report_data",
            "registry_not_attested",
            "the quote binds the worker to another registry",
        ));
    }
    if rd.hpke_public_key != registered.hpke_key {
        return Err(refuse(
            "report_data",
            "hpke_key_not_attested",
            "the attested HPKE key is not the registered one",
        ));
    }
    pass(checks, "report_data", "the quote");

    Ok(())
}

/// `measurement`, `measurement_allowed`: the quote's TEE identity is the registered,
/// allowed one; its measurement (hex).
fn measurement_checks(
    verified: &VerifiedQuote,
    registered: &chain::types::Worker,
    allowed: bool,
    st: &Statement,
    checks: &mut Vec<Passed>,
) -> Result<String, Refusal> {
    // measurement
    let evidence = phalanx_ear::Evidence::from(verified);
    let (identity, measurement) = phalanx_release::release::identity_of(&evidence);
    let tenant = identity.digest();
    if registered.measurement != tenant {
        return Err(refuse(
            "measurement",
            "measurement_mismatch",
            format!(
                "the quote's TEE identity hashes to {}, the registry lists {}",
                hex::encode(tenant),
                hex::encode(&registered.measurement)
            ),
        ));
    }
    pass(checks, "measurement", "the quote and the registry");

    // measurement_allowed (the entry worker_role read: the registered measurement's,
    // which is now the quote's)
    if !allowed {
        return Err(refuse(
            "measurement_allowed",
            "measurement_not_allowed",
            format!(
                "measurement {} was not allowed at height {}",
                hex::encode(tenant),
                st.height
            ),
        ));
    }
    pass(checks, "measurement_allowed", at_height(st));

    Ok(measurement)
}

/// `debug`, `tcb_status`.
fn tcb_checks(
    verified: &VerifiedQuote,
    o: &Options,
    checks: &mut Vec<Passed>,
) -> Result<(), Refusal> {
    // debug
    if verified.debug || verified.service_td {
        return Err(refuse(
            "debug",
            if verified.debug {
                "debug_tee"
            } else {
                "service_td"
            },
            "the worker's memory is open to the host or a service TD",
        ));
    }
    pass(checks, "debug", "the quote");

    // tcb_status
    let status = verified.status;
    // SWHardeningNeeded names what to harden against: with no advisory named there is
    // nothing to check the allow-list against, so it passes only if listed outright.
    let hardening_ok = status == TcbStatus::SWHardeningNeeded
        && !verified.advisory_ids.is_empty()
        && verified
            .advisory_ids
            .iter()
            .all(|id| o.tcb.advisories.contains(id));
    if !o.tcb.statuses.contains(&status) && !hardening_ok {
        return Err(refuse(
            "tcb_status",
            "tcb_status_not_accepted",
            format!(
                "TCB status {status:?} (advisories {:?}) is not accepted",
                verified.advisory_ids
            ),
        ));
    }
    if verified.tcb_evaluation_data_number < o.tcb.min_tcb_evaluation_data_number {
        return Err(refuse(
            "tcb_status",
            "collateral_too_old",
            format!(
                "the collateral's TCB evaluation data number is {}, at least {} is required",
                verified.tcb_evaluation_data_number, o.tcb.min_tcb_evaluation_data_number
            ),
        ));
    }
    pass(checks, "tcb_status", "the collateral");

    Ok(())
}

/// `evidence_age`.
fn age_check(
    reg: &Reg,
    registered: &chain::types::Worker,
    o: &Options,
    st: &Statement,
    checks: &mut Vec<Passed>,
) -> Result<(), Refusal> {
    let time = reg.time();
    // evidence_age
    let age = time.saturating_sub(registered.registered_at);
    let max = match o.max_evidence_age {
        Some(max) => max,
        None => {
            let lifetime = fact("evidence_age", reg.max_evidence_age())?.ok_or_else(|| {
                refuse(
                    "evidence_age",
                    "not_a_registry",
                    "the contract at the pinned address keeps no TCB rule: it is no Phalanx \
                     registry",
                )
            })?;
            i64::try_from(lifetime).unwrap_or(i64::MAX)
        }
    };
    if age > max {
        return Err(refuse(
            "evidence_age",
            "evidence_too_old",
            format!(
                "the worker registered this evidence {age} s before the statement (at most {max})"
            ),
        ));
    }
    pass(checks, "evidence_age", at_height(st));

    Ok(())
}
