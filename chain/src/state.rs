//! The registry state and its rules, sans-IO: the ledger checks a transaction with
//! [`State::apply`] before it includes it, and every reader (the ledger reopening its
//! store, a light client in another process) re-applies every block from genesis with
//! [`State::apply_block`], trusting nothing it did not check.

use crate::evidence::EvidenceError;
use crate::facts::{self, Fact};
use crate::types::{
    Allowed, Block, Command, Contract, ContractKey, EpochCertificate, EpochKey, Event, Gatekeeper,
    Genesis, MAX_CODE, MAX_MEASUREMENT, PublicKey, Registration, Role, Rotation, SignedTx,
    StateCommitment, Tx, Worker,
};
use imbl::OrdMap;
use phalanx_types::Epoch;
use std::collections::BTreeMap;

/// Why a transaction or block is refused. Each names the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RuleError {
    /// The signature does not verify.
    #[error("{0}: bad signature")]
    BadSignature(&'static str),
    /// The sequence number is not the signer's next one (a replay, or a gap).
    #[error("{tx}: nonce {got}, expected {expected}")]
    Nonce {
        /// The transaction.
        tx: &'static str,
        /// What it carried.
        got: u64,
        /// What the signer's next is.
        expected: u64,
    },
    /// Only governance may do this.
    #[error("{0}: only governance may do this")]
    NotGovernance(&'static str),
    /// Only governance or a gatekeeper may do this.
    #[error("{0}: only governance or a gatekeeper may do this")]
    NotGovernanceOrGatekeeper(&'static str),
    /// A worker registration signed by another key than the one registered.
    #[error("register-worker: must be signed by the worker's identity key")]
    NotSelf,
    /// The worker's measurement is not allowed.
    #[error("register-worker: measurement {0} is not allowed")]
    MeasurementNotAllowed(String),
    /// A gatekeeper that is not a registered worker.
    #[error("set-gatekeepers: {0} is not a registered worker")]
    GatekeeperNotWorker(String),
    /// A registration whose evidence the registry refused.
    #[error("register-worker: evidence refused: {0}")]
    Evidence(EvidenceError),
    /// A registration without enough endorsements (EVM registry: fewer distinct
    /// gatekeepers in standing signed it than the committee's threshold; before any set
    /// exists, governance did not approve it).
    #[error("register-worker: endorsed by {have} gatekeepers, {need} needed")]
    NotEndorsed {
        /// Valid endorsements.
        have: u16,
        /// The threshold (1 at bootstrap: governance's approval).
        need: u16,
    },
    /// An endorsement that is not a valid signature of a gatekeeper in standing, or a
    /// gatekeeper's second.
    #[error("register-worker: the endorsement of gatekeeper {0} is invalid")]
    BadEndorsement(u16),
    /// Governance approves registrations only before a gatekeeper set exists.
    #[error("approve-bootstrap: a gatekeeper set exists; registrations need its endorsements")]
    BootstrapOver,
    /// A worker whose measurement is not allowed (now) in the role the transaction needs.
    #[error("{tx}: worker {worker} is not a registered {need} (its role: {have})")]
    WrongRole {
        /// The transaction.
        tx: &'static str,
        /// The worker (hex identity key).
        worker: String,
        /// The role needed.
        need: Role,
        /// Its role now (`none`: not registered, or its measurement is not allowed).
        have: &'static str,
    },
    /// A worker whose registered evidence is older than the registry's limit: it must
    /// attest and register again.
    #[error("{tx}: worker {worker}'s evidence is {age} s old (at most {max})")]
    EvidenceExpired {
        /// The transaction.
        tx: &'static str,
        /// The worker (hex identity key).
        worker: String,
        /// Its evidence's age, seconds.
        age: i64,
        /// The registry's limit.
        max: u64,
    },
    /// A gatekeeper set with a repeated index or key, index 0, no members, or a
    /// threshold outside 1..=n.
    #[error("set-gatekeepers: {0}")]
    BadGatekeeperSet(&'static str),
    /// A DKG or reshare whose threshold is not the one governance set for the committee.
    #[error(
        "publish-master-key: the round's threshold {got} is not the committee's threshold {governed}, which governance sets"
    )]
    ThresholdNotGoverned {
        /// The round's.
        got: u16,
        /// Governance's (0: none set).
        governed: u16,
    },
    /// An epoch that cannot be retired (named why), or one already retired.
    #[error("retire-epoch: epoch {epoch} {why}")]
    CannotRetire {
        /// The epoch.
        epoch: Epoch,
        /// Why not.
        why: &'static str,
    },
    /// Another rotation holds the lock.
    #[error("{tx}: rotation to epoch {locked} is in progress")]
    RotationLocked {
        /// The transaction.
        tx: &'static str,
        /// The epoch being created.
        locked: Epoch,
    },
    /// No rotation to this epoch is in progress.
    #[error("{tx}: epoch {epoch} is not locked for rotation")]
    NotLocked {
        /// The transaction.
        tx: &'static str,
        /// The epoch named.
        epoch: Epoch,
    },
    /// Epochs are created in order: 0, then each the latest + 1.
    #[error("lock-rotation: epoch {epoch} is not the next epoch {next}")]
    EpochNotNext {
        /// The epoch named.
        epoch: Epoch,
        /// The next one.
        next: Epoch,
    },
    /// A certificate whose round's committee is not the registry's gatekeeper set.
    #[error("publish-master-key: the round's committee is not the gatekeeper set")]
    CommitteeMismatch,
    /// A certificate without a valid confirmation of this gatekeeper.
    #[error("publish-master-key: no valid confirmation from gatekeeper {0}")]
    MissingConfirmation(u16),
    /// A refresh or reshare of an epoch not published, or whose set does not keep the
    /// epoch's master public key.
    #[error("publish-master-key: {0}")]
    EpochMismatch(&'static str),
    /// The round's certificate was already published.
    #[error("round already published")]
    RoundAlreadyPublished,
    /// The round was already decided aborted.
    #[error("round already aborted")]
    RoundAborted,
    /// A field of the wrong shape (empty or over-long measurement, bad key).
    #[error("{tx}: malformed {what}")]
    Malformed {
        /// The transaction.
        tx: &'static str,
        /// The field.
        what: &'static str,
    },
    /// The measurement is already allowed, or not allowed (for removal).
    #[error("{tx}: measurement {measurement} {what}")]
    Measurement {
        /// The transaction.
        tx: &'static str,
        /// The measurement (hex).
        measurement: String,
        /// What is wrong.
        what: &'static str,
    },
    /// A contract deployed twice (same deployer, code and salt).
    #[error("deploy-contract: contract {0} exists")]
    ContractExists(String),
    /// A contract that does not exist.
    #[error("{tx}: no contract {contract}")]
    NoContract {
        /// The transaction.
        tx: &'static str,
        /// The contract id (hex).
        contract: String,
    },
    /// An epoch that has no published master key.
    #[error("{tx}: epoch {epoch} has no master key")]
    NoEpoch {
        /// The transaction.
        tx: &'static str,
        /// The epoch.
        epoch: Epoch,
    },
    /// The contract's keys of this epoch are already published (the first stands).
    #[error("publish-contract-key: the keys of epoch {0} are already published")]
    ContractKeyPublished(Epoch),
    /// A command sealed to an epoch whose contract keys are not published.
    #[error("command: the contract has no key for epoch {0}")]
    NoContractKey(Epoch),
    /// Keys of, a command sealed to, or a state commitment sealed under an epoch older
    /// than the contract's newest keys (seal to those: `newest`).
    #[error("{tx}: epoch {epoch} is not the contract's newest keys (epoch {newest})")]
    SupersededKey {
        /// The transaction.
        tx: &'static str,
        /// The epoch named.
        epoch: Epoch,
        /// The contract's newest keys' epoch.
        newest: Epoch,
    },
    /// A state commitment past the contract's commands, off its command log, or not
    /// newer than the one standing.
    #[error("commit-state: the commitment {0}")]
    StateCommitment(&'static str),
    /// Evidence of misbehaviour that proves nothing ([`NOT_MISBEHAVIOUR`] names why).
    #[error("report-misbehaviour: {0}")]
    NotMisbehaviour(&'static str),
    /// A gatekeeper proven to have broken the protocol may not register again.
    #[error("register-worker: this identity key was proven to have broken the protocol")]
    Faulty,
    /// A block that does not extend the chain: height, link, time, signature, genesis.
    #[error("block {height}: {what}")]
    Block {
        /// Its height.
        height: u64,
        /// What is wrong.
        what: String,
    },
}

type Pending = crate::commit::Pending;

/// What [`State::seal_batch`] made of a batch of transactions.
#[derive(Debug)]
pub struct Batch {
    /// The block of the accepted ones and the state after it (none accepted: none).
    pub sealed: Option<(Block, State)>,
    /// Each transaction's outcome, in order.
    pub outcomes: Vec<Result<(), RuleError>>,
}

/// The rule of [`State::standing`], on what it reads: the worker registered under
/// `identity_key` with the role its measurement is allowed in, if any. A client that
/// read these from proofs ([`crate::view`]) applies the same rule.
pub fn standing(
    tx: &'static str,
    identity_key: &[u8],
    registered: Option<(&Worker, Option<Role>)>,
    need: Role,
    max_evidence_age: u64,
    now: i64,
) -> Result<(), RuleError> {
    let have = registered.and_then(|(_, role)| role);
    let w = match registered {
        Some((w, Some(role))) if role == need => w,
        _ => {
            return Err(RuleError::WrongRole {
                tx,
                worker: crate::hex(identity_key),
                need,
                have: have.map_or("none", Role::name),
            });
        }
    };
    let age = now.saturating_sub(w.registered_at);
    if age > i64::try_from(max_evidence_age).unwrap_or(i64::MAX) {
        return Err(RuleError::EvidenceExpired {
            tx,
            worker: crate::hex(identity_key),
            age,
            max: max_evidence_age,
        });
    }
    Ok(())
}

/// The registry as of some block.
#[derive(Debug, Clone)]
pub struct State {
    genesis: Genesis,
    chain_id: [u8; 32],
    /// The evidence rule in force: the genesis's roots, governance's TCB part.
    rule: crate::types::EvidenceRule,
    /// Quotes verified to the genesis's roots, with caches shared by every copy.
    verifier: std::sync::Arc<phalanx_dcap::Verifier>,
    /// Next block height.
    height: u64,
    last_hash: [u8; 32],
    last_time: i64,
    // The maps that grow with the chain are persistent (`imbl`): the state is cloned for
    // every block, and a clone shares them, copying only the paths a block changes.
    nonces: OrdMap<PublicKey, u64>,
    workers: OrdMap<PublicKey, Worker>,
    allowed: OrdMap<Vec<u8>, Allowed>,
    gatekeepers: Vec<Gatekeeper>,
    /// The committee's threshold as governance set it (0: no committee yet).
    threshold: u16,
    epochs: BTreeMap<Epoch, EpochKey>,
    retired: std::collections::BTreeSet<Epoch>,
    /// Each published round's outcome (the digest its members confirmed).
    published_rounds: imbl::OrdMap<[u8; 32], [u8; 32]>,
    aborted_rounds: imbl::OrdSet<[u8; 32]>,
    /// Where pRuntimes serve contracts (`Tx::Serve`): (contract, worker) → URL.
    served: imbl::OrdMap<([u8; 32], PublicKey), String>,
    /// Gatekeepers proven to have broken the protocol.
    faulty: OrdMap<PublicKey, facts::FaultRecord>,
    rotation: Rotation,
    contracts: OrdMap<[u8; 32], Contract>,
    events: EventLog,
    /// The commitment to the facts ([`crate::facts`]) as of this state.
    commit: crate::commit::Commitment,
}

/// The events so far, append-only, in chunks shared between copies of the state: the
/// state is cloned for every block and trial transaction, and a chain of many commands
/// has many events, so a clone copies one pointer per chunk and an append at most one
/// chunk, never the whole history.
#[derive(Debug, Clone, Default)]
struct EventLog {
    chunks: Vec<std::sync::Arc<Vec<(u64, Event)>>>,
}

/// Events per chunk of an [`EventLog`].
const EVENT_CHUNK: usize = 1024;

impl EventLog {
    fn push(&mut self, e: (u64, Event)) {
        match self.chunks.last_mut() {
            Some(last) if last.len() < EVENT_CHUNK => std::sync::Arc::make_mut(last).push(e),
            _ => self.chunks.push(std::sync::Arc::new(vec![e])),
        }
    }

    fn iter(&self) -> impl Iterator<Item = &(u64, Event)> {
        self.chunks.iter().flat_map(|c| c.iter())
    }

    /// Forgets the events of blocks before `height` (whole chunks: some older ones may
    /// stay).
    fn forget_before(&mut self, height: u64) {
        self.chunks
            .retain(|c| c.last().is_some_and(|(h, _)| *h >= height));
    }

    /// The events of block `height`, the newest: read from the end.
    fn of_last(&self, height: u64) -> Vec<Event> {
        let mut out: Vec<Event> = self
            .chunks
            .iter()
            .rev()
            .flat_map(|c| c.iter().rev())
            .take_while(|(h, _)| *h >= height)
            .filter(|(h, _)| *h == height)
            .map(|(_, e)| e.clone())
            .collect();
        out.reverse();
        out
    }
}

/// Records read back into a state ([`State::restore`]): a contract's parts wait here
/// until all are in.
#[derive(Default)]
struct Restoring {
    deployed: BTreeMap<[u8; 32], facts::ContractFact>,
    codes: BTreeMap<[u8; 32], Vec<u8>>,
    keys: BTreeMap<[u8; 32], BTreeMap<Epoch, crate::types::ContractKey>>,
    logs: BTreeMap<[u8; 32], (u64, [u8; 32])>,
    states: BTreeMap<[u8; 32], StateCommitment>,
    /// The facts recorded (key, value), checked against the tree at the end.
    recorded: Vec<(Vec<u8>, Vec<u8>)>,
}

/// A persisted record's key: its kind, then its own key.
pub(crate) fn record(kind: u8, key: &[u8]) -> Vec<u8> {
    [&[kind][..], key].concat()
}

/// A compressed SEC1 P-256 point (tag 2 or 3; p256 also accepts the "compact" tag 5,
/// which would give one key two encodings).
/// A measurement (tenant id) of a sane size.
fn check_measurement(name: &'static str, m: &[u8]) -> Result<(), RuleError> {
    if m.is_empty() || m.len() > MAX_MEASUREMENT {
        Err(RuleError::Malformed {
            tx: name,
            what: "measurement",
        })
    } else {
        Ok(())
    }
}

/// A compressed P-256 point on the curve (decompressed through the cache the signature
/// checks use, so a key checked here is not decompressed again to verify with).
fn key_ok(k: &[u8]) -> bool {
    k.len() == 33 && matches!(k.first(), Some(2 | 3)) && crate::types::p256_point(k).is_some()
}

impl State {
    /// The state after the genesis block `block` (checked: height 0, no parent, its
    /// own authority's signature, no transactions).
    pub fn from_genesis(block: &Block) -> Result<Self, RuleError> {
        Self::genesis_state(block, true)
    }

    /// [`State::from_genesis`] for a light client that pinned the genesis block's hash:
    /// fails unless `block` hashes to `pinned`, and then leaves out the authority's
    /// signature, which covers exactly the bytes the hash does (the pin vouches for them
    /// more strongly than a key the block itself names).
    pub fn from_pinned_genesis(block: &Block, pinned: &[u8; 32]) -> Result<Self, RuleError> {
        if block.hash() != *pinned {
            return Err(RuleError::Block {
                height: block.height,
                what: "not the pinned genesis".into(),
            });
        }
        Self::genesis_state(block, false)
    }

    fn genesis_state(block: &Block, check_signature: bool) -> Result<Self, RuleError> {
        let bad = |what: &str| RuleError::Block {
            height: block.height,
            what: what.into(),
        };
        let g = block
            .genesis
            .clone()
            .ok_or_else(|| bad("genesis parameters missing"))?;
        if block.height != 0 || block.prev != [0; 32] || !block.txs.is_empty() {
            return Err(bad("not a genesis block"));
        }
        if block.chain_id != g.chain_id() {
            return Err(bad("its chain id is not its parameters' hash"));
        }
        if block.tx_root != crate::commit::empty_root() {
            return Err(bad("its transaction root is not the empty tree's"));
        }
        if !key_ok(&g.authority) || !key_ok(&g.governance) {
            return Err(bad("genesis keys are not compressed P-256 keys"));
        }
        if check_signature && !block.verify_signature(&g.authority) {
            return Err(bad("bad authority signature"));
        }
        let anchors = match crate::evidence::anchors(&g.evidence) {
            Ok(a) if !g.evidence.trust_roots.is_empty() => a,
            _ => return Err(bad("genesis trust roots are missing or not certificates")),
        };
        let commit = {
            let mut c = crate::commit::Commitment::new();
            let pending = c
                .preview(Self::genesis_facts(&g))
                .map_err(|e| bad(&e.to_string()))?;
            if pending.root != block.state_root {
                return Err(bad("the genesis state root is not its facts'"));
            }
            c.apply(pending).map_err(|e| bad(&e.to_string()))?;
            c
        };
        Ok(Self {
            rule: g.evidence.clone(),
            chain_id: g.chain_id(),
            verifier: std::sync::Arc::new(phalanx_dcap::Verifier::new(anchors)),
            height: 1,
            last_hash: block.hash(),
            last_time: block.timestamp,
            genesis: g,
            nonces: OrdMap::new(),
            workers: OrdMap::new(),
            allowed: OrdMap::new(),
            gatekeepers: Vec::new(),
            threshold: 0,
            epochs: BTreeMap::new(),
            retired: Default::default(),
            published_rounds: Default::default(),
            aborted_rounds: Default::default(),
            served: Default::default(),
            faulty: Default::default(),
            rotation: Rotation::Idle,
            contracts: OrdMap::new(),
            events: EventLog::default(),
            commit,
        })
    }

    /// The facts a genesis starts with: the evidence rule.
    fn genesis_facts(g: &Genesis) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        vec![(Fact::Rule.key(), Some(facts::rule(&g.evidence)))]
    }

    /// The state root a genesis block with parameters `g` carries.
    pub fn genesis_root(g: &Genesis) -> [u8; 32] {
        crate::commit::Commitment::new()
            .preview(Self::genesis_facts(g))
            .map_or([0; 32], |p| p.root)
    }

    /// What a ledger stores beside `block` so that it reopens without replaying the
    /// chain ([`Self::restore`]), as `(key, value)` (`None`: delete): each fact the
    /// block changed but the history (`f` ‖ fact key), each signer's next sequence
    /// number (`n` ‖ account), rounds newly published or aborted (`p` / `a` ‖ round id),
    /// deployed modules (`c` ‖ contract id), where workers serve (`s` ‖ contract id ‖
    /// worker key) and the block's events (`e` ‖ height ‖ index). `self` is the state after `block`, `parent` the one before it.
    pub fn block_records(&self, parent: &State, block: &Block) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        let events = self.events.of_last(block.height);
        let touched: std::collections::BTreeSet<Fact> =
            events.iter().flat_map(Fact::of_event).collect();
        let mut out: Vec<(Vec<u8>, Option<Vec<u8>>)> = touched
            .into_iter()
            .map(|f| (record(b'f', &f.key()), self.fact(&f)))
            .collect();
        for t in &block.txs {
            let next = self.nonce(&t.signer).to_be_bytes().to_vec();
            out.push((record(b'n', &t.signer), Some(next)));
        }
        // The sets only grow: a block that added nothing costs nothing here.
        if self.published_rounds.len() != parent.published_rounds.len() {
            for (id, digest) in self
                .published_rounds
                .iter()
                .filter(|(id, _)| !parent.published_rounds.contains_key(*id))
            {
                out.push((record(b'p', id), Some(digest.to_vec())));
            }
        }
        if self.aborted_rounds.len() != parent.aborted_rounds.len() {
            for id in self
                .aborted_rounds
                .iter()
                .filter(|id| !parent.aborted_rounds.contains(*id))
            {
                out.push((record(b'a', id), Some(Vec::new())));
            }
        }
        for (i, e) in events.iter().enumerate() {
            if let Event::ContractDeployed { contract, .. } = e
                && let Some(c) = self.contracts.get(contract)
            {
                out.push((record(b'c', contract), Some(c.code.to_vec())));
            }
            if let Event::Serving {
                contract,
                worker,
                endpoint,
            } = e
            {
                let key = [contract.as_slice(), worker].concat();
                out.push((record(b's', &key), Some(endpoint.as_bytes().to_vec())));
            }
            let mut key = block.height.to_be_bytes().to_vec();
            key.extend_from_slice(&(i as u32).to_be_bytes());
            out.push((record(b'e', &key), Some(e.encode())));
        }
        out
    }

    /// The state after `tip`, from what [`Self::block_records`] stored for every block
    /// up to it (`records`: each key's latest value, in key order) and the commitment
    /// `commit` at `tip` (its nodes in the ledger's store): no block is replayed. The
    /// facts must be the signed chain's: the tree's root is `tip`'s state root (`tip`
    /// signed by the genesis's authority), every fact recorded is proven under it with
    /// that value, the tree holds no fact beyond them and the history, and a module must
    /// hash to its contract's code hash. Sequence numbers, round decisions and events
    /// are not in the commitment: they are the node's own records, as its blocks are
    /// (the auditor's full check is a replay: `ledger::Ledger::verify_dir`).
    pub fn restore(
        genesis: &Block,
        tip: &Block,
        records: impl IntoIterator<Item = (Vec<u8>, Vec<u8>)>,
        commit: crate::commit::Commitment,
    ) -> Result<Self, RuleError> {
        let mut s = Self::genesis_state(genesis, true)?;
        let bad = |what: String| RuleError::Block {
            height: tip.height,
            what: format!("stored state: {what}"),
        };
        if tip.chain_id != s.chain_id || !tip.verify_signature(&s.genesis.authority) {
            return Err(bad("the last block is not the chain's".into()));
        }
        let mut r = Restoring::default();
        for (k, v) in records {
            s.take_record(&mut r, &k, v).map_err(bad)?;
        }
        s.take_contracts(&mut r).map_err(bad)?;
        (s.height, s.last_hash, s.last_time, s.commit) =
            (tip.height + 1, tip.hash(), tip.timestamp, commit);
        s.check_tree(tip, &r.recorded).map_err(bad)?;
        Ok(s)
    }

    /// One stored record into this state (a contract's parts wait in `r`).
    fn take_record(&mut self, r: &mut Restoring, k: &[u8], v: Vec<u8>) -> Result<(), String> {
        let (kind, key) = k.split_first().ok_or("an empty key")?;
        let id32 = |b: &[u8]| <[u8; 32]>::try_from(b).map_err(|_| "a malformed key".to_owned());
        match kind {
            b'f' => {
                let fact = Fact::from_key(key)
                    .filter(|f| !matches!(f, Fact::Header(_) | Fact::TcbRule))
                    .ok_or_else(|| format!("fact {}", crate::proof::printable(key)))?;
                self.take_fact(r, &fact, &v)
                    .map_err(|e| format!("fact {}: {e}", crate::proof::printable(key)))?;
                r.recorded.push((key.to_vec(), v));
            }
            b'n' => {
                let n =
                    <[u8; 8]>::try_from(v.as_slice()).map_err(|_| "a malformed sequence number")?;
                self.nonces.insert(key.to_vec(), u64::from_be_bytes(n));
            }
            b'p' => {
                // (A store from before outcomes were kept is migrated on opening.)
                self.published_rounds.insert(id32(key)?, id32(&v)?);
            }
            b'a' => {
                self.aborted_rounds.insert(id32(key)?);
            }
            b'c' => {
                r.codes.insert(id32(key)?, v);
            }
            b's' => {
                let (contract, worker) = key.split_at_checked(32).ok_or("a malformed key")?;
                let endpoint = String::from_utf8(v).map_err(|_| "a malformed endpoint")?;
                self.served
                    .insert((id32(contract)?, worker.to_vec()), endpoint);
            }
            // Events stay on disk (the ledger serves them from there).
            b'e' => {}
            _ => return Err(format!("a record of unknown kind {kind}")),
        }
        Ok(())
    }

    /// One recorded fact into this state.
    fn take_fact(
        &mut self,
        r: &mut Restoring,
        fact: &Fact,
        v: &[u8],
    ) -> Result<(), crate::types::DecodeError> {
        match fact {
            Fact::Rule => self.rule = facts::read_rule(v)?,
            Fact::Worker(id) => {
                self.workers.insert(id.clone(), facts::read_worker(id, v)?);
            }
            Fact::Allowed(m) => {
                self.allowed.insert(m.clone(), facts::read_allowed(m, v)?);
            }
            Fact::Gatekeepers => (self.threshold, self.gatekeepers) = facts::read_gatekeepers(v)?,
            Fact::Rotation => self.rotation = facts::read_rotation(v)?,
            Fact::Epoch(e) => {
                self.epochs.insert(*e, facts::read_epoch(*e, v)?);
            }
            Fact::Retired(e) => {
                self.retired.insert(*e);
            }
            Fact::Contract(id) => {
                r.deployed.insert(*id, facts::read_contract(v)?);
            }
            Fact::ContractKey(id, e) => {
                let k = facts::read_contract_key(*id, *e, v)?;
                r.keys.entry(*id).or_default().insert(*e, k);
            }
            Fact::Commands(id) => {
                r.logs.insert(*id, facts::read_commands(v)?);
            }
            Fact::State(id) => {
                r.states.insert(*id, facts::read_state(*id, v)?);
            }
            Fact::Fault(k) => {
                self.faulty.insert(k.clone(), facts::read_fault(v)?);
            }
            // The history is the tree's alone, the TCB rule the EVM registry's: never
            // recorded (refused by the caller).
            Fact::Header(_) | Fact::TcbRule => {}
        }
        Ok(())
    }

    /// The contracts from their parts: each deployed one with its module (which must
    /// hash to its code hash), keys and command log; no part without its contract.
    fn take_contracts(&mut self, r: &mut Restoring) -> Result<(), String> {
        for (id, f) in std::mem::take(&mut r.deployed) {
            let code = r
                .codes
                .remove(&id)
                .ok_or_else(|| format!("contract {} has no module", crate::hex(&id)))?;
            if phalanx_types::contract::code_hash(&code) != f.code_hash {
                return Err(format!(
                    "contract {}'s module is not its code",
                    crate::hex(&id)
                ));
            }
            let (commands, command_log) = r.logs.remove(&id).unwrap_or((0, [0; 32]));
            let contract = Contract {
                id,
                deployer: f.deployer,
                code_hash: f.code_hash,
                code: std::sync::Arc::new(code),
                salt: f.salt,
                deployed_at: f.deployed_at,
                keys: r.keys.remove(&id).unwrap_or_default(),
                commands,
                command_log,
                state: r.states.remove(&id),
            };
            self.contracts.insert(id, contract);
        }
        if !r.codes.is_empty() || !r.keys.is_empty() || !r.logs.is_empty() || !r.states.is_empty() {
            return Err("records of a contract that is not deployed".into());
        }
        Ok(())
    }

    /// The tree is the signed chain's and the records': its root is `tip`'s, each
    /// recorded fact is proven under it, and it holds no other fact than those, the
    /// history (a leaf per block) and the rule when it never changed.
    fn check_tree(&self, tip: &Block, recorded: &[(Vec<u8>, Vec<u8>)]) -> Result<(), String> {
        if self.commit.root() != tip.state_root {
            return Err("the stored tree's root is not the last block's".into());
        }
        let rule_leaf = usize::from(!recorded.iter().any(|(k, _)| *k == Fact::Rule.key()));
        let expected = recorded.len() + tip.height as usize + rule_leaf;
        let leaves = self.commit.leaf_count().map_err(|e| e.to_string())?;
        if leaves != expected {
            return Err(format!(
                "{expected} facts recorded, the tree holds {leaves}"
            ));
        }
        for (key, value) in recorded {
            let proven = self.commit.prove(key).ok().filter(|(v, p)| {
                v.as_ref() == Some(value)
                    && crate::commit::verify(&tip.state_root, key, Some(value), p).is_ok()
            });
            if proven.is_none() {
                return Err(format!(
                    "fact {} is not the tree's",
                    crate::proof::printable(key)
                ));
            }
        }
        Ok(())
    }

    /// What the state tree's current version wrote: a ledger stores it with the block
    /// ([`crate::commit::Commitment::written`]).
    pub fn tree_written(&self) -> Result<crate::commit::Written, crate::commit::CommitError> {
        match self.commit.version() {
            Some(v) => self.commit.written(v),
            None => Ok(Default::default()),
        }
    }

    /// What the state tree's `version` wrote, while memory holds it (a ledger migrating
    /// to stored state writes every version).
    pub fn tree_at(
        &self,
        version: u64,
    ) -> Result<crate::commit::Written, crate::commit::CommitError> {
        self.commit.written(version)
    }

    /// The tree's versions up to this state's are stored in the backing: memory keeps
    /// only recent ones ([`crate::commit::Commitment::persisted`]).
    pub fn tree_persisted(&self) {
        if let Some(v) = self.commit.version() {
            self.commit.persisted(v);
        }
    }

    /// Forgets the events of blocks before `height` (a ledger, which stores them with
    /// their blocks and serves them from there: `ledger::Ledger::events`), so memory
    /// does not grow with the chain's events. [`Self::events_from`] then starts there.
    pub fn forget_events_before(&mut self, height: u64) {
        self.events.forget_before(height);
    }

    /// The state tree's version (a block's height: genesis writes 0).
    pub fn tree_version(&self) -> Option<u64> {
        self.commit.version()
    }

    /// How many tree nodes and values memory holds ([`crate::commit::Commitment::stored`]).
    pub fn tree_stored(&self) -> (usize, usize) {
        self.commit.stored()
    }

    /// Reads the tree's forgotten versions from `backing` (shared with every copy).
    pub fn set_tree_backing(&mut self, backing: std::sync::Arc<dyn crate::commit::Backing>) {
        self.commit.set_backing(backing);
    }

    /// The value of `fact` now (`None`: absent).
    pub fn fact(&self, fact: &Fact) -> Option<Vec<u8>> {
        match fact {
            Fact::Rule => Some(facts::rule(&self.rule)),
            Fact::Worker(k) => self.workers.get(k).map(facts::worker),
            Fact::Allowed(m) => self.allowed.get(m).map(facts::allowed),
            Fact::Gatekeepers => Some(facts::gatekeepers(self.threshold, &self.gatekeepers)),
            Fact::Rotation => Some(facts::rotation(&self.rotation)),
            Fact::Epoch(e) => self.epochs.get(e).map(facts::epoch),
            Fact::Retired(e) => self.retired.contains(e).then(|| vec![1]),
            Fact::Contract(id) => self.contracts.get(id).map(facts::contract),
            Fact::ContractKey(id, e) => self
                .contracts
                .get(id)
                .and_then(|c| c.keys.get(e))
                .map(facts::contract_key),
            Fact::Header(_) => self.commit.get(&fact.key()),
            Fact::TcbRule => None,
            Fact::Commands(id) => self.contracts.get(id).map(facts::commands),
            Fact::State(id) => self
                .contracts
                .get(id)
                .and_then(|c| c.state.as_ref())
                .map(facts::state),
            Fact::Fault(k) => self.faulty.get(k).map(facts::fault),
        }
    }

    /// From now on keep only the last `blocks` blocks' facts provable (a light client:
    /// it checks each block's root and never proves an old one), so its memory follows
    /// the registry's facts — each fact once, not once per change; the history adds one
    /// small leaf per block — not every version of them. Shared with every copy.
    pub fn keep_only(&mut self, blocks: u64) {
        self.commit.keep_only(blocks);
    }

    /// The root of the commitment to this state's facts: the last block's `state_root`.
    pub fn state_root(&self) -> [u8; 32] {
        self.commit.root()
    }

    /// `fact`'s value (or absence) and its proof against [`Self::state_root`].
    pub fn prove(
        &self,
        fact: &Fact,
    ) -> Result<(Option<Vec<u8>>, Vec<u8>), crate::commit::CommitError> {
        self.commit.prove(&fact.key())
    }

    /// Fact `key`'s value and proof as of the block at `height` (at most the last block's): against
    /// that block's `state_root`. Every block writes one version of the commitment (its
    /// parent's hash at least), so block `h`'s is version `h`.
    pub fn prove_at(
        &self,
        key: &[u8],
        height: u64,
    ) -> Result<(Option<Vec<u8>>, Vec<u8>), crate::commit::CommitError> {
        if height >= self.height {
            return Err(crate::commit::CommitError::Tree(format!(
                "no block {height} yet (the last is {})",
                self.height.saturating_sub(1)
            )));
        }
        self.commit.prove_at(key, Some(height))
    }

    /// The state root a block carrying `txs` at `height` and `timestamp` must name (what
    /// a block producer seals). Refused as the block itself would be.
    pub fn next_state_root(
        &self,
        txs: &[SignedTx],
        height: u64,
        timestamp: i64,
    ) -> Result<[u8; 32], RuleError> {
        Ok(self.after(txs, height, timestamp)?.1)
    }

    /// This state with `txs` applied (the commitment not yet advanced), the root they
    /// lead to, and the commitment's update to it.
    fn after(
        &self,
        txs: &[SignedTx],
        height: u64,
        timestamp: i64,
    ) -> Result<(State, [u8; 32], Pending), RuleError> {
        let mut next = self.clone();
        let mut events = Vec::new();
        for tx in txs {
            events.extend(next.apply(tx, height, timestamp)?);
        }
        let pending = next
            .commit
            .preview(next.changes(&events))
            .map_err(|e| RuleError::Block {
                height,
                what: e.to_string(),
            })?;
        Ok((next, pending.root, pending))
    }

    /// The next block: `txs` at `timestamp`, its roots computed, sealed by `authority`
    /// (what a block producer — the ledger, a test — makes).
    pub fn seal_next(
        &self,
        txs: Vec<SignedTx>,
        timestamp: i64,
        authority: &p256::ecdsa::SigningKey,
    ) -> Result<Block, RuleError> {
        Ok(self.seal_and_advance(txs, timestamp, authority)?.0)
    }

    /// [`Self::seal_next`] and the state after that block, from one application of its
    /// transactions (the ledger's path: a block it made itself needs no second check).
    pub fn seal_and_advance(
        &self,
        txs: Vec<SignedTx>,
        timestamp: i64,
        authority: &p256::ecdsa::SigningKey,
    ) -> Result<(Block, State), RuleError> {
        let timestamp = timestamp.max(self.last_time);
        let (mut next, state_root, pending) = self.after(&txs, self.height, timestamp)?;
        let block = self.block(txs, timestamp, state_root)?.seal(authority);
        next.commit.apply(pending).map_err(|e| RuleError::Block {
            height: block.height,
            what: e.to_string(),
        })?;
        next.height += 1;
        next.last_hash = block.hash();
        next.last_time = block.timestamp;
        Ok((block, next))
    }

    /// The next block made of those of `txs` the rules accept, in order, at
    /// `timestamp`, sealed by `authority`, and the state after it; with each
    /// transaction's outcome (a refused one is left out of the block and changes
    /// nothing). No block when none is accepted. What a ledger seals from a batch of
    /// concurrent submissions, applying each transaction once.
    pub fn seal_batch(
        &self,
        txs: Vec<SignedTx>,
        timestamp: i64,
        authority: &p256::ecdsa::SigningKey,
    ) -> Result<Batch, RuleError> {
        let timestamp = timestamp.max(self.last_time);
        let mut next = self.clone();
        let mut events = Vec::new();
        let mut outcomes = Vec::with_capacity(txs.len());
        let mut accepted = Vec::with_capacity(txs.len());
        for tx in txs {
            match next.apply(&tx, self.height, timestamp) {
                Ok(e) => {
                    events.extend(e);
                    accepted.push(tx);
                    outcomes.push(Ok(()));
                }
                Err(e) => outcomes.push(Err(e)),
            }
        }
        if accepted.is_empty() {
            return Ok(Batch {
                sealed: None,
                outcomes,
            });
        }
        let bad = |e: crate::commit::CommitError| RuleError::Block {
            height: self.height,
            what: e.to_string(),
        };
        let pending = next.commit.preview(next.changes(&events)).map_err(bad)?;
        let block = self
            .block(accepted, timestamp, pending.root)?
            .seal(authority);
        next.commit.apply(pending).map_err(bad)?;
        next.height += 1;
        next.last_hash = block.hash();
        next.last_time = block.timestamp;
        Ok(Batch {
            sealed: Some((block, next)),
            outcomes,
        })
    }

    /// The unsealed next block.
    fn block(
        &self,
        txs: Vec<SignedTx>,
        timestamp: i64,
        state_root: [u8; 32],
    ) -> Result<Block, RuleError> {
        let mut block = Block {
            chain_id: self.chain_id,
            height: self.height,
            prev: self.last_hash,
            timestamp,
            genesis: None,
            tx_root: [0; 32],
            state_root,
            txs,
            signature: Vec::new(),
        };
        block.tx_root = block.computed_tx_root().map_err(|e| RuleError::Block {
            height: self.height,
            what: e.to_string(),
        })?;
        Ok(block)
    }

    /// The genesis block with parameters `g`, sealed by `authority` (the ledger's first
    /// block).
    pub fn genesis_block(g: Genesis, authority: &p256::ecdsa::SigningKey) -> Block {
        Block {
            chain_id: g.chain_id(),
            height: 0,
            prev: [0; 32],
            timestamp: g.timestamp,
            state_root: Self::genesis_root(&g),
            genesis: Some(g),
            tx_root: crate::commit::empty_root(),
            txs: Vec::new(),
            signature: Vec::new(),
        }
        .seal(authority)
    }

    /// The facts a block at this state's next height changes, given its transactions'
    /// `events`: those the events name, with their values now, and the parent's header
    /// hash (the history: every block adds one, so block `h` writes version `h`).
    fn changes(&self, events: &[Event]) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        let touched: std::collections::BTreeSet<Fact> =
            events.iter().flat_map(Fact::of_event).collect();
        let parent = self.height.saturating_sub(1);
        touched
            .into_iter()
            .map(|f| (f.key(), self.fact(&f)))
            .chain([(Fact::Header(parent).key(), Some(self.last_hash.to_vec()))])
            .collect()
    }

    /// The chain id every signature is bound to.
    pub fn chain_id(&self) -> [u8; 32] {
        self.chain_id
    }

    /// The genesis parameters.
    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    /// The next block's height.
    pub fn height(&self) -> u64 {
        self.height
    }

    /// The last block's hash.
    pub fn last_hash(&self) -> [u8; 32] {
        self.last_hash
    }

    /// The last block's time.
    pub fn last_time(&self) -> i64 {
        self.last_time
    }

    /// An account's next sequence number.
    pub fn nonce(&self, account: &[u8]) -> u64 {
        self.nonces.get(account).copied().unwrap_or(0)
    }

    /// A registered worker.
    pub fn worker(&self, identity_key: &[u8]) -> Option<&Worker> {
        self.workers.get(identity_key)
    }

    /// Every registered worker.
    pub fn workers(&self) -> impl Iterator<Item = &Worker> {
        self.workers.values()
    }

    /// A registered worker's role now: its measurement's, while that is allowed.
    pub fn role_of(&self, identity_key: &[u8]) -> Option<Role> {
        let w = self.workers.get(identity_key)?;
        self.allowed.get(&w.measurement).map(|a| a.role)
    }

    /// A worker that may act in `role` at time `now`: registered, its measurement
    /// allowed in that role, its evidence younger than the genesis's limit.
    pub fn standing(
        &self,
        tx: &'static str,
        identity_key: &[u8],
        role: Role,
        now: i64,
    ) -> Result<&Worker, RuleError> {
        let w = self.workers.get(identity_key);
        standing(
            tx,
            identity_key,
            w.map(|w| (w, self.allowed.get(&w.measurement).map(|a| a.role))),
            role,
            self.rule.max_evidence_age,
            now,
        )?;
        w.ok_or(RuleError::WrongRole {
            tx,
            worker: crate::hex(identity_key),
            need: role,
            have: "none",
        })
    }

    /// The allowed measurements.
    pub fn allowed(&self) -> Vec<Allowed> {
        self.allowed.values().cloned().collect()
    }

    /// The gatekeeper set.
    pub fn gatekeepers(&self) -> &[Gatekeeper] {
        &self.gatekeepers
    }

    /// The committee's threshold as governance set it (0: none yet). Every DKG and
    /// reshare the registry accepts produces exactly this threshold.
    pub fn committee_threshold(&self) -> u16 {
        self.threshold
    }

    /// The evidence rule in force (the genesis's roots; the TCB part as governance last
    /// set it).
    pub fn evidence_rule(&self) -> &crate::types::EvidenceRule {
        &self.rule
    }

    /// Whether governance retired `epoch`.
    pub fn is_retired(&self, epoch: Epoch) -> bool {
        self.retired.contains(&epoch)
    }

    /// An epoch's master key.
    pub fn master_key(&self, epoch: Epoch) -> Option<&EpochKey> {
        self.epochs.get(&epoch)
    }

    /// Every published epoch.
    pub fn epochs(&self) -> Vec<EpochKey> {
        self.epochs.values().cloned().collect()
    }

    /// The epoch a rotation may lock next: 0, or the latest published + 1.
    pub fn next_epoch(&self) -> Epoch {
        self.epochs
            .last_key_value()
            .map_or(Epoch::GENESIS, |(&e, _)| e.next().unwrap_or(e))
    }

    /// Checks an epoch certificate against the registry: the round's committee is the
    /// gatekeeper set (index, identity key, peer URL, in order); every member
    /// confirmed the same public key set; a DKG creates the locked epoch with the
    /// spec's threshold; a refresh or reshare keeps a published epoch's master public
    /// key. What a single gatekeeper, or any group short of the whole committee,
    /// cannot produce.
    ///
    /// Long on purpose: the certificate rules are one list, checked in order (committee,
    /// epoch and kind, signatures), each with its own error.
    pub fn check_certificate(
        &self,
        cert: &crate::types::EpochCertificate,
        now: i64,
    ) -> Result<EpochKey, RuleError> {
        use phalanx_threshold::round::{CommitCertificate, RoundKind, RoundSpec};
        let malformed = |what| RuleError::Malformed {
            tx: "publish-master-key",
            what,
        };
        let spec = RoundSpec::decode(&cert.spec).map_err(|_| malformed("round spec"))?;
        let public = phalanx_threshold::wire::public_set_from_bytes(&cert.public_key_set)
            .map_err(|_| malformed("public key set"))?;
        let id = spec.id();
        if self.published_rounds.contains_key(&id) {
            return Err(RuleError::RoundAlreadyPublished);
        }
        if self.aborted_rounds.contains(&id) {
            return Err(RuleError::RoundAborted);
        }
        let epoch = spec.kind.epoch();
        let mpk = phalanx_threshold::dleq::point_bytes(&public.master_public_key());
        // A DKG creates the locked epoch; a refresh or reshare keeps a published
        // epoch's master key (a refresh also its threshold).
        let existing = || {
            let current = self
                .epochs
                .get(&epoch)
                .ok_or(RuleError::EpochMismatch("the epoch is not published"))?;
            if current.master_public_key != mpk {
                return Err(RuleError::EpochMismatch(
                    "the new set changes the epoch's master public key",
                ));
            }
            Ok(current)
        };
        let governed = |t: u16| {
            if t == self.threshold {
                Ok(t)
            } else {
                Err(RuleError::ThresholdNotGoverned {
                    got: t,
                    governed: self.threshold,
                })
            }
        };
        let threshold = match &spec.kind {
            RoundKind::Dkg { threshold, .. } => {
                if self.rotation != Rotation::Locked(epoch) {
                    return Err(RuleError::NotLocked {
                        tx: "publish-master-key",
                        epoch,
                    });
                }
                governed(*threshold)?
            }
            RoundKind::Refresh { .. } => existing()?.threshold,
            RoundKind::Reshare { new_threshold, .. } => {
                existing()?;
                governed(*new_threshold)?
            }
        };
        if self.retired.contains(&epoch) {
            return Err(RuleError::EpochMismatch("the epoch is retired"));
        }
        // The committee is the registry's gatekeeper set, and the set is theirs.
        let committee: Vec<(u16, PublicKey, &str)> = spec
            .participants
            .iter()
            .map(|p| {
                (
                    p.index.get(),
                    crate::types::public_key(&p.identity),
                    p.url.as_str(),
                )
            })
            .collect();
        let registered: Vec<(u16, PublicKey, &str)> = self
            .gatekeepers
            .iter()
            .map(|g| (g.index, g.identity_key.clone(), g.peer_url.as_str()))
            .collect();
        if committee != registered {
            return Err(RuleError::CommitteeMismatch);
        }
        let members: Vec<u16> = public.members().map(|m| m.get()).collect();
        let indices: Vec<u16> = committee.iter().map(|c| c.0).collect();
        if members != indices || public.threshold() != usize::from(threshold) {
            return Err(malformed("public key set"));
        }
        // Every member's confirmation of that set.
        if cert.signatures.len() != spec.participants.len() {
            return Err(malformed("confirmations"));
        }
        let confirmations = spec
            .participants
            .iter()
            .zip(&cert.signatures)
            .map(|(p, s)| (p.index, *s))
            .collect();
        CommitCertificate { confirmations }
            .verify(&spec, &public)
            .map_err(|e| match e {
                phalanx_threshold::Error::BadSignature(i) => {
                    RuleError::MissingConfirmation(i.get())
                }
                _ => malformed("confirmations"),
            })?;
        Ok(EpochKey {
            epoch,
            master_public_key: mpk,
            threshold,
            public_key_set: cert.public_key_set.clone(),
            round_id: id,
            published_at: now,
        })
    }

    /// Every published round's outcome (round id, the digest its members confirmed), in
    /// id order.
    pub fn round_outcomes(&self) -> Vec<([u8; 32], [u8; 32])> {
        self.published_rounds
            .iter()
            .map(|(id, d)| (*id, *d))
            .collect()
    }

    /// What was decided for round `id`, if anything.
    pub fn round_decision(&self, id: &[u8; 32]) -> Option<crate::types::RoundDecision> {
        if self.published_rounds.contains_key(id) {
            Some(crate::types::RoundDecision::Committed)
        } else if self.aborted_rounds.contains(id) {
            Some(crate::types::RoundDecision::Aborted)
        } else {
            None
        }
    }

    /// A deployed contract.
    pub fn contract(&self, id: &[u8; 32]) -> Option<&Contract> {
        self.contracts.get(id)
    }

    /// The pRuntimes that announced serving contract `id`, with their URLs (in
    /// identity-key order; the caller checks each one's standing).
    pub fn serving(&self, id: &[u8; 32]) -> Vec<(PublicKey, String)> {
        self.served
            .range((*id, Vec::new())..)
            .take_while(|((c, _), _)| c == id)
            .map(|((_, w), url)| (w.clone(), url.clone()))
            .collect()
    }

    /// A pRuntime in standing announces where it serves a deployed contract: an
    /// `http://` or `https://` URL without spaces, at most [`crate::types::MAX_ENDPOINT`]
    /// bytes; at most [`crate::types::MAX_SERVERS`] workers per contract (one listed
    /// already may move).
    fn serve(
        &mut self,
        signer: &PublicKey,
        contract: [u8; 32],
        endpoint: &str,
        now: i64,
    ) -> Result<Event, RuleError> {
        const TX: &str = "serve";
        self.standing(TX, signer, Role::Runtime, now)?;
        if !self.contracts.contains_key(&contract) {
            return Err(RuleError::NoContract {
                tx: TX,
                contract: crate::hex(&contract),
            });
        }
        if !endpoint_ok(endpoint) {
            return Err(RuleError::Malformed {
                tx: TX,
                what: "endpoint",
            });
        }
        let key = (contract, signer.clone());
        if !self.served.contains_key(&key)
            && self.serving(&contract).len() >= crate::types::MAX_SERVERS
        {
            // Full: a worker no longer in standing gives its place up (decided at the
            // block's time, so every node and light client agrees); none: refused.
            let lapsed = self
                .serving(&contract)
                .into_iter()
                .find(|(w, _)| self.standing(TX, w, Role::Runtime, now).is_err())
                .ok_or(RuleError::Malformed {
                    tx: TX,
                    what: "endpoint (the contract lists as many workers in standing as it may)",
                })?;
            self.served.remove(&(contract, lapsed.0));
        }
        self.served.insert(key, endpoint.to_owned());
        Ok(Event::Serving {
            contract,
            worker: signer.clone(),
            endpoint: endpoint.to_owned(),
        })
    }

    /// The deployed contracts, by id.
    pub fn contracts(&self) -> impl Iterator<Item = &Contract> {
        self.contracts.values()
    }

    /// The rotation lock.
    pub fn rotation(&self) -> Rotation {
        self.rotation
    }

    /// Events at or after `height`.
    pub fn events_from(&self, height: u64) -> Vec<(u64, Event)> {
        self.events
            .iter()
            .filter(|(h, _)| *h >= height)
            .cloned()
            .collect()
    }

    /// Checks `block` against the chain so far (chain id, height, link, time, authority
    /// signature, every transaction, both roots) and applies it.
    pub fn apply_block(&mut self, block: &Block) -> Result<(), RuleError> {
        let bad = |what: String| RuleError::Block {
            height: block.height,
            what,
        };
        if block.chain_id != self.chain_id {
            return Err(bad("belongs to another chain".into()));
        }
        if block.height != self.height {
            return Err(bad(format!("expected height {}", self.height)));
        }
        if block.prev != self.last_hash {
            return Err(bad("does not link to its parent".into()));
        }
        if block.timestamp < self.last_time {
            return Err(bad("goes back in time".into()));
        }
        if block.genesis.is_some() {
            return Err(bad("a second genesis".into()));
        }
        if !block.verify_signature(&self.genesis.authority) {
            return Err(bad("bad authority signature".into()));
        }
        if block.computed_tx_root().map_err(|e| bad(e.to_string()))? != block.tx_root {
            return Err(bad("its transaction root is not its transactions'".into()));
        }
        let mut next = self.clone();
        let mut events = Vec::new();
        for (i, tx) in block.txs.iter().enumerate() {
            events.extend(
                next.apply(tx, block.height, block.timestamp)
                    .map_err(|e| bad(format!("transaction {i}: {e}")))?,
            );
        }
        // The header's commitment is to exactly the facts these transactions left.
        let pending = next
            .commit
            .preview(next.changes(&events))
            .map_err(|e| bad(e.to_string()))?;
        if pending.root != block.state_root {
            return Err(bad("its state root is not its transactions' outcome".into()));
        }
        next.commit.apply(pending).map_err(|e| bad(e.to_string()))?;
        next.height += 1;
        next.last_hash = block.hash();
        next.last_time = block.timestamp;
        *self = next;
        Ok(())
    }

    /// Checks one transaction against the rules and applies it (in a block at
    /// `height`, time `now`). On error nothing changes. Long on purpose: one arm per
    /// transaction kind, each a call to its rule.
    pub fn apply(&mut self, t: &SignedTx, height: u64, now: i64) -> Result<Vec<Event>, RuleError> {
        let name = t.tx.name();
        if !t.verify(&self.chain_id) {
            return Err(RuleError::BadSignature(name));
        }
        let expected = self.nonce(&t.signer);
        if t.nonce != expected {
            return Err(RuleError::Nonce {
                tx: name,
                got: t.nonce,
                expected,
            });
        }
        let governance = t.signer == self.genesis.governance;
        // A member proven faulty no longer speaks for the committee (it could otherwise
        // abort every round that reshares the committee without it).
        let gatekeeper = self.gatekeepers.iter().any(|g| g.identity_key == t.signer)
            && !self.faulty.contains_key(&t.signer);
        let need_governance = || match governance {
            true => Ok(()),
            false => Err(RuleError::NotGovernance(name)),
        };
        let need_governance_or_gatekeeper = || match governance || gatekeeper {
            true => Ok(()),
            false => Err(RuleError::NotGovernanceOrGatekeeper(name)),
        };
        // Each rule checks everything before it changes anything: a refused transaction
        // leaves the state as it was.
        let event = match &t.tx {
            Tx::RegisterWorker(w) => self.register_worker(name, &t.signer, w, now)?,
            Tx::AddMeasurement { measurement, role } => {
                need_governance()?;
                self.add_measurement(name, measurement, *role, now, height)?
            }
            Tx::RemoveMeasurement(m) => {
                need_governance()?;
                self.remove_measurement(name, m)?
            }
            Tx::SetGatekeepers { set, threshold } => {
                need_governance()?;
                self.set_gatekeepers(set, *threshold, now)?
            }
            Tx::RetireEpoch(epoch) => {
                need_governance()?;
                self.retire_epoch(*epoch)?
            }
            Tx::SetTcbRule(tcb) => {
                need_governance()?;
                self.set_tcb_rule(name, tcb)?
            }
            Tx::LockRotation(epoch) => {
                need_governance()?;
                self.lock_rotation(name, *epoch)?
            }
            Tx::PublishMasterKey(cert) => {
                need_governance_or_gatekeeper()?;
                self.publish_master_key(cert, now)?
            }
            Tx::AbortRotation(epoch) => {
                need_governance()?;
                self.abort_rotation(name, *epoch)?
            }
            Tx::AbortRound(id) => {
                need_governance_or_gatekeeper()?;
                self.abort_round(id)?
            }
            Tx::DeployContract { code, salt } => {
                self.deploy_contract(&t.signer, code, salt, height)?
            }
            Tx::PublishContractKey(key) => {
                self.publish_contract_key(&t.signer, key, height, now)?
            }
            Tx::Command(c) => self.command(c, t, height, now)?,
            Tx::CommitState(c) => self.commit_state(&t.signer, c, height, now)?,
            Tx::ReportMisbehaviour(m) => self.report_misbehaviour(m, height)?,
            Tx::Serve { contract, endpoint } => self.serve(&t.signer, *contract, endpoint, now)?,
        };
        self.nonces.insert(t.signer.clone(), expected + 1);
        self.events.push((height, event.clone()));
        Ok(vec![event])
    }

    /// A worker registers itself (signed by its own identity key) with evidence the
    /// registry checks ([`crate::evidence::check`]) and an allowed measurement; the
    /// record is what the evidence proved, at the block's time.
    fn register_worker(
        &mut self,
        name: &'static str,
        signer: &PublicKey,
        r: &Registration,
        now: i64,
    ) -> Result<Event, RuleError> {
        if &r.identity_key != signer {
            return Err(RuleError::NotSelf);
        }
        if self.faulty.contains_key(&r.identity_key) {
            return Err(RuleError::Faulty);
        }
        if !key_ok(&r.identity_key) {
            return Err(RuleError::Malformed {
                tx: name,
                what: "key",
            });
        }
        check_measurement(name, &r.measurement)?;
        if !self.allowed.contains_key(&r.measurement) {
            return Err(RuleError::MeasurementNotAllowed(crate::hex(&r.measurement)));
        }
        let proven = crate::evidence::check(&self.verifier, &self.rule, &self.chain_id, r, now)
            .map_err(RuleError::Evidence)?;
        let w = Worker {
            identity_key: r.identity_key.clone(),
            hpke_key: r.hpke_key.clone(),
            measurement: proven.tenant.to_vec(),
            attestation_hash: r.attestation_hash,
            registered_at: now,
            quote_hash: proven.quote_hash,
            tcb_status: Some(proven.tcb_status),
        };
        let e = Event::WorkerRegistered {
            identity_key: w.identity_key.clone(),
            measurement: w.measurement.clone(),
        };
        self.workers.insert(w.identity_key.clone(), w);
        Ok(e)
    }

    fn add_measurement(
        &mut self,
        name: &'static str,
        m: &[u8],
        role: Role,
        now: i64,
        height: u64,
    ) -> Result<Event, RuleError> {
        check_measurement(name, m)?;
        if self.allowed.contains_key(m) {
            return Err(RuleError::Measurement {
                tx: name,
                measurement: crate::hex(m),
                what: "is already allowed",
            });
        }
        self.allowed.insert(
            m.to_vec(),
            Allowed {
                measurement: m.to_vec(),
                role,
                added_at: now,
                added_in: height,
            },
        );
        Ok(Event::MeasurementAdded {
            measurement: m.to_vec(),
            role,
        })
    }

    fn remove_measurement(&mut self, name: &'static str, m: &[u8]) -> Result<Event, RuleError> {
        if self.allowed.remove(m).is_none() {
            return Err(RuleError::Measurement {
                tx: name,
                measurement: crate::hex(m),
                what: "is not allowed",
            });
        }
        Ok(Event::MeasurementRemoved(m.to_vec()))
    }

    /// A new gatekeeper set: distinct non-zero indices and keys, every member a
    /// registered worker in the gatekeeper role with current evidence; and its
    /// threshold, 1 ≤ t ≤ n.
    fn set_gatekeepers(
        &mut self,
        set: &[Gatekeeper],
        threshold: u16,
        now: i64,
    ) -> Result<Event, RuleError> {
        if set.is_empty() {
            return Err(RuleError::BadGatekeeperSet("no members"));
        }
        let mut indices: Vec<u16> = set.iter().map(|g| g.index).collect();
        indices.sort();
        indices.dedup();
        let mut keys: Vec<&PublicKey> = set.iter().map(|g| &g.identity_key).collect();
        keys.sort();
        keys.dedup();
        if indices.len() != set.len() || keys.len() != set.len() {
            return Err(RuleError::BadGatekeeperSet("a repeated index or key"));
        }
        if indices.first() == Some(&0) {
            return Err(RuleError::BadGatekeeperSet("index 0"));
        }
        if threshold == 0 || usize::from(threshold) > set.len() {
            return Err(RuleError::BadGatekeeperSet("a threshold outside 1..=n"));
        }
        // What a reader of the set's fact takes (facts::read_gatekeepers).
        if set
            .iter()
            .any(|g| g.url.len() > facts::MAX_URL || g.peer_url.len() > facts::MAX_URL)
        {
            return Err(RuleError::BadGatekeeperSet("a URL over 2048 bytes"));
        }
        if let Some(g) = set
            .iter()
            .find(|g| !self.workers.contains_key(&g.identity_key))
        {
            return Err(RuleError::GatekeeperNotWorker(crate::hex(&g.identity_key)));
        }
        for g in set {
            self.standing("set-gatekeepers", &g.identity_key, Role::Gatekeeper, now)?;
        }
        let mut set = set.to_vec();
        set.sort_by_key(|g| g.index);
        self.gatekeepers = set;
        self.threshold = threshold;
        Ok(Event::GatekeepersChanged(indices))
    }

    /// One rotation at a time, and only to the next epoch.
    fn lock_rotation(&mut self, name: &'static str, epoch: Epoch) -> Result<Event, RuleError> {
        if let Rotation::Locked(locked) = self.rotation {
            return Err(RuleError::RotationLocked { tx: name, locked });
        }
        let next = self.next_epoch();
        if epoch != next {
            return Err(RuleError::EpochNotNext { epoch, next });
        }
        self.rotation = Rotation::Locked(epoch);
        Ok(Event::RotationLocked(epoch))
    }

    /// An epoch's keys, only with the committee's certificate; a DKG's publication
    /// releases the rotation lock.
    fn publish_master_key(
        &mut self,
        cert: &EpochCertificate,
        now: i64,
    ) -> Result<Event, RuleError> {
        let key = self.check_certificate(cert, now)?;
        let epoch = key.epoch;
        let dkg = !self.epochs.contains_key(&epoch);
        if dkg {
            self.rotation = Rotation::Idle;
        }
        let public =
            phalanx_threshold::wire::public_set_from_bytes(&key.public_key_set).map_err(|_| {
                RuleError::Malformed {
                    tx: "publish-master-key",
                    what: "public key set",
                }
            })?;
        let digest = phalanx_threshold::round::digest(&key.round_id, &public);
        self.published_rounds.insert(key.round_id, digest);
        self.epochs.insert(epoch, key);
        Ok(if dkg {
            Event::MasterKeyPublished(epoch)
        } else {
            Event::PublicKeySetUpdated(epoch)
        })
    }

    /// Governance retires a published epoch that nothing needs any more, once: not the
    /// newest one (TDX workers seal their identity under the newest, again at each new
    /// one), and none a contract's state still needs ([`checkpointed_past`]: its commands sealed
    /// to it are all behind a state commitment sealed under a newer epoch, from which a
    /// new worker starts — the gatekeepers forget the retired epoch's shares).
    fn retire_epoch(&mut self, epoch: Epoch) -> Result<Event, RuleError> {
        let refuse = |why| Err(RuleError::CannotRetire { epoch, why });
        if !self.epochs.contains_key(&epoch) {
            return refuse("is not published");
        }
        if self.retired.contains(&epoch) {
            return refuse("is already retired");
        }
        if self.epochs.keys().next_back() == Some(&epoch) {
            return refuse("is the newest epoch");
        }
        if !self.contracts.values().all(|c| checkpointed_past(c, epoch)) {
            return refuse("is still needed by a contract's state");
        }
        self.retired.insert(epoch);
        Ok(Event::EpochRetired(epoch))
    }

    /// Governance's TCB part of the evidence rule: some status other than `Revoked`, and
    /// a lifetime renewals can keep up with ([`crate::types::MIN_EVIDENCE_AGE`]).
    fn set_tcb_rule(
        &mut self,
        name: &'static str,
        tcb: &crate::types::TcbRule,
    ) -> Result<Event, RuleError> {
        let revoked = tcb
            .tcb_statuses
            .contains(&phalanx_dcap::tcb::TcbStatus::Revoked);
        if tcb.tcb_statuses.is_empty()
            || revoked
            || tcb.max_evidence_age < crate::types::MIN_EVIDENCE_AGE
            || tcb.max_evidence_age > crate::types::MAX_EVIDENCE_AGE
        {
            return Err(RuleError::Malformed {
                tx: name,
                what: "TCB rule",
            });
        }
        self.rule = self.rule.with_tcb(tcb);
        Ok(Event::TcbRuleChanged)
    }

    fn abort_rotation(&mut self, name: &'static str, epoch: Epoch) -> Result<Event, RuleError> {
        if self.rotation != Rotation::Locked(epoch) {
            return Err(RuleError::NotLocked { tx: name, epoch });
        }
        self.rotation = Rotation::Idle;
        Ok(Event::RotationAborted(epoch))
    }

    /// A round's abort decision: only for a round not published, and only once.
    fn abort_round(&mut self, id: &[u8; 32]) -> Result<Event, RuleError> {
        if self.published_rounds.contains_key(id) {
            return Err(RuleError::RoundAlreadyPublished);
        }
        if self.aborted_rounds.insert(*id).is_some() {
            return Err(RuleError::RoundAborted);
        }
        Ok(Event::RoundAborted(*id))
    }

    /// Anyone deploys a module of a bounded size; its id is fixed by deployer, code
    /// hash and salt, so the same triple deploys once.
    fn deploy_contract(
        &mut self,
        deployer: &PublicKey,
        code: &[u8],
        salt: &[u8; 32],
        height: u64,
    ) -> Result<Event, RuleError> {
        if code.is_empty() || code.len() > MAX_CODE {
            return Err(RuleError::Malformed {
                tx: "deploy-contract",
                what: "code",
            });
        }
        let code_hash = phalanx_types::contract::code_hash(code);
        let id = phalanx_types::contract::contract_id(&self.chain_id, deployer, &code_hash, salt);
        if self.contracts.contains_key(&id) {
            return Err(RuleError::ContractExists(crate::hex(&id)));
        }
        self.contracts.insert(
            id,
            Contract {
                id,
                deployer: deployer.clone(),
                code_hash,
                code: std::sync::Arc::new(code.to_vec()),
                salt: *salt,
                deployed_at: height,
                keys: BTreeMap::new(),
                commands: 0,
                command_log: [0; 32],
                state: None,
            },
        );
        Ok(Event::ContractDeployed {
            contract: id,
            code_hash,
        })
    }

    /// A registered pRuntime (its measurement allowed now in the pRuntime role, its
    /// evidence current) publishes a contract's keys for a published epoch; the first
    /// publication stands.
    fn publish_contract_key(
        &mut self,
        signer: &PublicKey,
        key: &ContractKey,
        height: u64,
        now: i64,
    ) -> Result<Event, RuleError> {
        const TX: &str = "publish-contract-key";
        self.standing(TX, signer, Role::Runtime, now)?;
        if !self.epochs.contains_key(&key.epoch) || self.retired.contains(&key.epoch) {
            return Err(RuleError::NoEpoch {
                tx: TX,
                epoch: key.epoch,
            });
        }
        let hpke_ok = key.encryption_key.len() == 65
            && key.encryption_key.first() == Some(&4)
            && p256::PublicKey::from_sec1_bytes(&key.encryption_key).is_ok();
        if !hpke_ok || !key_ok(&key.signing_key) {
            return Err(RuleError::Malformed {
                tx: TX,
                what: "key",
            });
        }
        let contract =
            self.contracts
                .get_mut(&key.contract)
                .ok_or_else(|| RuleError::NoContract {
                    tx: TX,
                    contract: crate::hex(&key.contract),
                })?;
        if contract.keys.contains_key(&key.epoch) {
            return Err(RuleError::ContractKeyPublished(key.epoch));
        }
        if let Some(&newest) = contract.keys.keys().next_back()
            && key.epoch < newest
        {
            return Err(RuleError::SupersededKey {
                tx: TX,
                epoch: key.epoch,
                newest,
            });
        }
        let mut key = key.clone();
        key.published_by = signer.clone();
        key.published_at = height;
        key.commands_before = contract.commands;
        contract.keys.insert(key.epoch, key.clone());
        Ok(Event::ContractKeyPublished {
            contract: key.contract,
            epoch: key.epoch,
        })
    }

    /// Anyone sends a command `c` (carried by `t`) to a contract, sealed to a key
    /// published for its epoch; the registry only orders it (it cannot read it): the next
    /// in the contract's sequence and its command log.
    fn command(
        &mut self,
        c: &Command,
        t: &SignedTx,
        height: u64,
        now: i64,
    ) -> Result<Event, RuleError> {
        if c.ciphertext.is_empty() {
            return Err(RuleError::Malformed {
                tx: "command",
                what: "ciphertext",
            });
        }
        let contract =
            self.contracts
                .get_mut(&c.contract)
                .ok_or_else(|| RuleError::NoContract {
                    tx: "command",
                    contract: crate::hex(&c.contract),
                })?;
        if !contract.keys.contains_key(&c.epoch) {
            return Err(RuleError::NoContractKey(c.epoch));
        }
        newest_keys("command", contract, c.epoch)?;
        let sequence = contract.commands;
        contract.commands += 1;
        contract.command_log =
            crate::types::command_log(&contract.command_log, height, now, &t.encode());
        Ok(Event::CommandSubmitted {
            contract: c.contract,
            sequence,
        })
    }

    /// Anyone's evidence ([`check_misbehaviour`]): the accused loses its registration
    /// and may not register again; its fact records the fault.
    fn report_misbehaviour(
        &mut self,
        m: &crate::types::Misbehaviour,
        height: u64,
    ) -> Result<Event, RuleError> {
        if self.faulty.contains_key(&m.accused) {
            return Err(not_misbehaviour(1));
        }
        check_misbehaviour(m, |round| self.published_rounds.get(round).copied())?;
        let record = facts::FaultRecord {
            fault: m.fault.code(),
            reported_at: height,
        };
        self.faulty.insert(m.accused.clone(), record);
        self.workers.remove(&m.accused);
        Ok(Event::Misbehaved {
            identity_key: m.accused.clone(),
            fault: record.fault,
        })
    }

    /// A registered pRuntime (as for [`Self::publish_contract_key`]) commits to contract
    /// `c.contract`'s state after `c.count` of its commands, sealed under its newest
    /// keys: at most its command count (at that count, on its command log's head), and
    /// newer than the commitment standing. The registry cannot read the state: the
    /// worker's attestation is what vouches for the root; a worker that restores a
    /// checkpoint checks it against this, and the contract's feed from there against the
    /// command log.
    fn commit_state(
        &mut self,
        signer: &PublicKey,
        c: &StateCommitment,
        height: u64,
        now: i64,
    ) -> Result<Event, RuleError> {
        const TX: &str = "commit-state";
        self.standing(TX, signer, Role::Runtime, now)?;
        let contract =
            self.contracts
                .get_mut(&c.contract)
                .ok_or_else(|| RuleError::NoContract {
                    tx: TX,
                    contract: crate::hex(&c.contract),
                })?;
        newest_keys(TX, contract, c.epoch)?;
        if c.count > contract.commands {
            return Err(RuleError::StateCommitment(
                "names more commands than the contract has",
            ));
        }
        if c.count == contract.commands && c.log_head != contract.command_log {
            return Err(RuleError::StateCommitment(
                "is not on the contract's command log",
            ));
        }
        // Newer: past more commands, or as far sealed under newer keys (an idle contract
        // is committed again under a new epoch, so the old one can retire).
        if contract
            .state
            .as_ref()
            .is_some_and(|s| (s.count, s.epoch) >= (c.count, c.epoch))
        {
            return Err(RuleError::StateCommitment(
                "is not newer than the one standing",
            ));
        }
        let mut c = c.clone();
        c.committed_at = height;
        let count = c.count;
        contract.state = Some(c);
        Ok(Event::StateCommitted {
            contract: contract.id,
            count,
        })
    }
}

/// Why evidence of misbehaviour proves nothing, by the EVM registry's code (1-based:
/// `NotMisbehaviour(code)`), so both backends refuse with the same words.
pub const NOT_MISBEHAVIOUR: [&str; 12] = [
    "the accused is already reported",
    "the key is not a P-256 point",
    "the round was not published",
    "the outcome is the one the registry published",
    "a signature does not verify under the accused's key",
    // Equal roots are one log, signed twice.
    "the two heads have the same root",
    "the release is not in the accused's signed log",
    "the partial's proof holds: an honest gatekeeper's",
    // The Solidity registry has no P-256 arithmetic to check a DLEQ proof with.
    "this registry cannot check a partial's proof or a dealing: report it on a ledger or to governance",
    "the round is no DKG, or a party is not in it",
    "the accused is not that round's dealer",
    "the dealing is consistent: an honest dealer's",
];

/// The refusal of evidence of code `code` (from 1, as the EVM registry's
/// `NotMisbehaviour(code)`).
pub fn not_misbehaviour(code: u8) -> RuleError {
    RuleError::NotMisbehaviour(
        usize::from(code)
            .checked_sub(1)
            .and_then(|i| NOT_MISBEHAVIOUR.get(i))
            .copied()
            .unwrap_or("the evidence proves nothing"),
    )
}

/// Checks evidence of misbehaviour (sans-IO, on what the registry keeps): `Ok` only if
/// the accused's key signed what `fault` says. `published` is the outcome the registry
/// published for a round. One function per fault below.
pub fn check_misbehaviour(
    m: &crate::types::Misbehaviour,
    published: impl FnOnce(&[u8; 32]) -> Option<[u8; 32]>,
) -> Result<(), RuleError> {
    use crate::types::Fault;
    let key = Accused::new(&m.accused)?;
    match &m.fault {
        Fault::Confirmation {
            round,
            index,
            digest,
            signature,
        } => key.confirmed_another_outcome(published(round), round, *index, digest, signature),
        Fault::ForkedLog {
            size,
            first,
            second,
        } => key.forked_its_log(*size, first, second),
        Fault::Partial {
            size,
            head,
            release,
        } => key.logged_a_bad_partial(*size, head, release),
        Fault::Dealing {
            spec,
            sender,
            recipient,
            public,
            private,
            signature,
        } => key.dealt_badly(spec, (*sender, *recipient), (public, private), signature),
    }
}

/// Refusal `i` (0-based) of [`NOT_MISBEHAVIOUR`].
fn not_evidence(i: u8) -> RuleError {
    not_misbehaviour(i + 1)
}

/// The accused's key, as the checks of [`check_misbehaviour`] use it.
struct Accused {
    key: p256::ecdsa::VerifyingKey,
    point: [u8; 65],
}

impl Accused {
    /// A registered identity key's encoding (compressed SEC1, on the curve).
    fn new(accused: &[u8]) -> Result<Self, RuleError> {
        let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(accused)
            .ok()
            .filter(|_| key_ok(accused))
            .ok_or(not_evidence(1))?;
        let point = p256::elliptic_curve::sec1::ToSec1Point::to_sec1_point(key.as_affine(), false)
            .as_bytes()
            .try_into()
            .map_err(|_| not_evidence(1))?;
        Ok(Self { key, point })
    }

    /// Whether it signed `bytes` (`signature`: r ‖ s).
    fn signed(&self, bytes: &[u8], signature: &[u8; 64]) -> Result<(), RuleError> {
        match phalanx_types::ecdsa::verify_p256_point(&self.point, bytes, signature) {
            true => Ok(()),
            false => Err(not_evidence(4)),
        }
    }

    /// Whether it signed a head of its own log of `size` with `head`'s root and time.
    fn signed_head(&self, size: u64, head: &crate::types::LogHead) -> Result<(), RuleError> {
        let signed = phalanx_threshold::translog::TreeHead {
            log_id: phalanx_threshold::translog::log_id(&self.key),
            size,
            root: head.root,
            timestamp: head.timestamp,
        };
        self.signed(&signed.signed_bytes(), &head.signature)
    }

    /// Fault 1: a confirmation of round `round` with an outcome other than `outcome`,
    /// the one the registry published.
    fn confirmed_another_outcome(
        &self,
        outcome: Option<[u8; 32]>,
        round: &[u8; 32],
        index: u16,
        digest: &[u8; 32],
        signature: &[u8; 64],
    ) -> Result<(), RuleError> {
        let outcome = outcome.ok_or(not_evidence(2))?;
        if &outcome == digest {
            return Err(not_evidence(3));
        }
        let index = phalanx_threshold::share::NodeIndex::new(index).map_err(|_| not_evidence(4))?;
        self.signed(
            &phalanx_threshold::round::confirmation_bytes(round, index, digest),
            signature,
        )
    }

    /// Fault 2: two heads of one size with different roots.
    fn forked_its_log(
        &self,
        size: u64,
        first: &crate::types::LogHead,
        second: &crate::types::LogHead,
    ) -> Result<(), RuleError> {
        if first.root == second.root {
            return Err(not_evidence(5));
        }
        self.signed_head(size, first)?;
        self.signed_head(size, second)
    }

    /// Fault 3: a release its signed log holds whose partial is no honest one.
    fn logged_a_bad_partial(
        &self,
        size: u64,
        head: &crate::types::LogHead,
        release: &phalanx_threshold::release_log::CommittedRelease,
    ) -> Result<(), RuleError> {
        self.signed_head(size, head)?;
        release
            .included(size, &head.root)
            .map_err(|_| not_evidence(6))?;
        match phalanx_threshold::release_log::committed_partial_fails(release) {
            Ok(true) => Ok(()),
            // A key id that hashes to no point is no honest release's either, but it
            // proves nothing about the partial: refused like an honest one.
            Ok(false) | Err(_) => Err(not_evidence(7)),
        }
    }

    /// Fault 4: a signed DKG deal (from `sender` to `recipient`) no honest dealer sends.
    fn dealt_badly(
        &self,
        spec: &[u8],
        (sender, recipient): (u16, u16),
        (public, private): (&[u8], &[u8]),
        signature: &[u8; 64],
    ) -> Result<(), RuleError> {
        use phalanx_threshold::round::{self, RoundSpec};
        use phalanx_threshold::share::NodeIndex;
        let spec = RoundSpec::decode(spec).map_err(|_| not_evidence(9))?;
        let (sender, recipient) = (
            NodeIndex::new(sender).map_err(|_| not_evidence(9))?,
            NodeIndex::new(recipient).map_err(|_| not_evidence(9))?,
        );
        let dealer = spec
            .participants
            .iter()
            .find(|p| p.index == sender)
            .ok_or(not_evidence(9))?;
        if dealer.identity != self.key {
            return Err(not_evidence(10));
        }
        let bytes = round::peer_message_bytes(
            &spec.id(),
            1,
            sender,
            recipient.get(),
            false,
            public,
            private,
        );
        self.signed(&bytes, signature)?;
        match round::dealing_fails(&spec, sender, recipient, public, private) {
            Ok(true) => Ok(()),
            Ok(false) => Err(not_evidence(11)),
            Err(_) => Err(not_evidence(9)),
        }
    }
}

/// `epoch` is `contract`'s newest keys' (commands are sealed to them, checkpoints sealed
/// under them), or `tx` is refused.
fn newest_keys(tx: &'static str, contract: &Contract, epoch: Epoch) -> Result<(), RuleError> {
    match contract.keys.keys().next_back() {
        Some(&newest) if newest == epoch => Ok(()),
        Some(&newest) if contract.keys.contains_key(&epoch) => {
            Err(RuleError::SupersededKey { tx, epoch, newest })
        }
        _ => Err(RuleError::NoContractKey(epoch)),
    }
}

/// Whether `endpoint` is a worker's URL as a registry lists it: `http://` or `https://`,
/// a host after it, printable ASCII only, at most [`crate::types::MAX_ENDPOINT`] bytes.
/// (The Solidity registry checks only the scheme and the length; clients list only what
/// passes this.)
pub fn endpoint_ok(endpoint: &str) -> bool {
    let rest = endpoint
        .strip_prefix("https://")
        .or_else(|| endpoint.strip_prefix("http://"));
    endpoint.len() <= crate::types::MAX_ENDPOINT
        && rest.is_some_and(|r| !r.is_empty())
        // Printable ASCII only: no spaces, controls or invisible formatting that would
        // show a user one URL and mean another.
        && endpoint.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

/// Whether `contract`'s state no longer needs its keys of `epoch`: keys of a newer epoch
/// are published (every command since is sealed to those or newer) and a state
/// commitment sealed under a newer epoch covers every command before them. A contract
/// without keys of `epoch` never needed them.
pub fn checkpointed_past(contract: &Contract, epoch: Epoch) -> bool {
    if !contract.keys.contains_key(&epoch) {
        return true;
    }
    let next = contract
        .keys
        .range(Epoch(epoch.0.saturating_add(1))..)
        .next();
    match (next, &contract.state) {
        (Some((_, k)), Some(s)) => s.epoch > epoch && s.count >= k.commands_before,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    /// A worker's URL: http(s), a host, printable ASCII, bounded; nothing that would
    /// show a user one URL and mean another.
    #[test]
    fn endpoints_are_printable_web_urls() {
        for ok in ["http://127.0.0.1:7400", "https://w.example/x?y=1"] {
            assert!(endpoint_ok(ok), "{ok}");
        }
        let long = format!("http://{}", "a".repeat(250));
        for bad in [
            "http://",
            "https://",
            "ftp://x",
            "http://a b",
            "http://a\nb",
            "http://a\u{202e}b",
            "http://\u{e9}",
            long.as_str(),
        ] {
            assert!(!endpoint_ok(bad), "{bad:?}");
        }
    }

    #[test]
    fn the_event_log_keeps_order_across_chunks_and_copies_stay_apart() {
        let mut log = EventLog::default();
        for h in 0..(2 * EVENT_CHUNK as u64 + 5) {
            log.push((h, Event::RoundAborted([h as u8; 32])));
        }
        let copy = log.clone();
        log.push((9999, Event::RoundAborted([0; 32])));
        let heights: Vec<u64> = copy.iter().map(|(h, _)| *h).collect();
        assert_eq!(
            heights,
            (0..(2 * EVENT_CHUNK as u64 + 5)).collect::<Vec<_>>()
        );
        assert_eq!(log.iter().count(), copy.iter().count() + 1);
        assert_eq!(copy.chunks.len(), 3);
    }
}
