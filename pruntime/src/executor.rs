//! One served contract, sans-IO: its compiled code, keys, state and chain position.
//! [`Executor::apply_commands`] runs a verified page of the contract's own command feed
//! (`chain::proof::CommandPage`: its commands in chain order, without the other
//! contracts' blocks); a command that does not open, traps, runs out of fuel or breaks
//! a bound is skipped with its reason and changes nothing. The executor keeps the
//! contract's command log position (count and head, `chain::types::command_log`), which
//! the next page must continue. [`Executor::query`] answers read-only calls at the current
//! position; checkpoints seal the state with a key derived from the contract's secret.

use crate::env::CallEnv;
use crate::protocol::{ContractKeys, ProtocolError, Purpose, open_command, open_evm_command};
use crate::seal::{SealError, SealingKey};
use crate::state_root::StateRoot;
use chain::evm_proof::{EvmCommand, VerifiedEvmPage};
use chain::proof::{CommandAt, VerifiedPage};
use chain::types::Tx;
use phalanx_contract::Env;
use phalanx_contract::{Call, Changes, Contract, ContractError, Entry, Outcome, Runtime, State};
use phalanx_types::Epoch;
use phalanx_types::codec::{DecodeError, Reader, Writer};
use phalanx_types::receipt::{Event, EventPage, Receipt, Status};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Why a command was skipped (logged; the chain goes on).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Skip {
    /// It does not open (wrong key, nonce or sender, or malformed).
    #[error(transparent)]
    Envelope(#[from] ProtocolError),
    /// The contract refused or failed (trap, fuel, bound, abort): nothing changed.
    #[error(transparent)]
    Contract(#[from] ContractError),
}

/// A skipped command: where, and why.
#[derive(Debug)]
pub struct Skipped {
    /// The block that ordered it.
    pub height: u64,
    /// Its place in the contract's command log (0 for the first command ever).
    pub sequence: u64,
    /// Why.
    pub reason: Skip,
}

/// A command as either registry ordered it: what the executor runs and hashes into the
/// contract's command log.
struct Ordered<'a> {
    /// The block that ordered it, and its time.
    height: u64,
    time: i64,
    /// Who sent it: a P-256 key on the ledger (its transaction's signer), an Ethereum
    /// account's 20-byte address on EVM. The contract sees its caller id.
    sender: &'a [u8],
    /// The ledger: its transaction's nonce (each sender's only rise; the envelope binds
    /// it). EVM: none — the chain authenticates and orders the sender's transactions,
    /// and the envelope binds the sender (with nonce 0).
    nonce: Option<u64>,
    epoch: Epoch,
    ciphertext: &'a [u8],
    /// The bytes its log entry hashes ([`chain::types::command_log`]).
    record: Vec<u8>,
}

impl<'a> Ordered<'a> {
    fn ledger(c: &'a CommandAt) -> Option<Self> {
        let Tx::Command(cmd) = &c.tx.tx else {
            return None;
        };
        Some(Self {
            height: c.height,
            time: c.timestamp,
            sender: &c.tx.signer,
            nonce: Some(c.tx.nonce),
            epoch: cmd.epoch,
            ciphertext: &cmd.ciphertext,
            record: c.tx.encode(),
        })
    }

    fn evm(contract: &[u8; 32], c: &'a EvmCommand, time: i64) -> Self {
        Self {
            height: c.block,
            time,
            sender: &c.sender,
            nonce: None,
            epoch: c.epoch,
            ciphertext: &c.ciphertext,
            record: chain::evm_proof::command_record(
                contract,
                c.epoch,
                &c.sender,
                c.sequence,
                &c.ciphertext,
            ),
        }
    }
}

/// A contract this worker serves.
pub struct Executor {
    id: [u8; 32],
    contract: Contract,
    keys: BTreeMap<Epoch, ContractKeys>,
    state: State,
    height: u64,
    block_hash: [u8; 32],
    executed: u64,
    /// The contract's command log position: commands ordered so far, and the log head.
    log: (u64, [u8; 32]),
    /// Each sender's last command nonce seen: a feed page cannot replay one.
    nonces: BTreeMap<Vec<u8>, u64>,
    root_key: zeroize::Zeroizing<[u8; 32]>,
    /// The state's keyed root, updated with each command's writes (O(log n) each).
    tree: StateRoot,
    /// Why this contract stopped (its state root could not be kept: a bug). A halted
    /// contract runs no more commands, and the worker neither answers for it nor
    /// commits it; the worker's other contracts go on.
    halted: Option<String>,
    /// What became of each command, for its caller (kept in memory only).
    receipts: Receipts,
    /// The events of the commands run, for the readers the contract admits.
    events: Events,
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor")
            .field("contract", &hex::encode(self.id))
            .field("height", &self.height)
            .finish_non_exhaustive()
    }
}

impl Executor {
    /// A contract at its empty state, before any block. `root_key` keys its state root
    /// ([`ContractKeys::state_root_key`] of the contract's first published epoch: every
    /// worker serving the contract derives the same one).
    pub fn new(id: [u8; 32], contract: Contract, root_key: &[u8; 32]) -> Self {
        Self {
            id,
            contract,
            keys: BTreeMap::new(),
            state: State::default(),
            height: 0,
            block_hash: [0; 32],
            executed: 0,
            log: (0, [0; 32]),
            nonces: BTreeMap::new(),
            root_key: zeroize::Zeroizing::new(*root_key),
            tree: StateRoot::new(root_key),
            halted: None,
            receipts: Receipts::default(),
            events: Events::default(),
        }
    }

    /// Starts the feed after block `height` with hash `hash` (a Solidity registry's:
    /// the block before the contract's deployment). Only before any page applied.
    pub fn start_at(&mut self, height: u64, hash: [u8; 32]) {
        if self.log.0 == 0 && self.height == 0 {
            (self.height, self.block_hash) = (height, hash);
        }
    }

    /// The contract id.
    pub fn id(&self) -> [u8; 32] {
        self.id
    }

    /// Its code hash.
    pub fn code_hash(&self) -> [u8; 32] {
        self.contract.code_hash()
    }

    /// The header its command log was last proven at: height and hash.
    pub fn position(&self) -> (u64, [u8; 32]) {
        (self.height, self.block_hash)
    }

    /// The contract's command log position: commands the chain ordered so far (run or
    /// skipped) and the log's head — where the next feed page starts.
    pub fn log(&self) -> (u64, [u8; 32]) {
        self.log
    }

    /// The state.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// The keyed state root ([`crate::state_root`]) of the state it holds.
    pub fn root(&self) -> [u8; 32] {
        self.tree.root()
    }

    /// Why the contract halted, if it did ([`Self::apply_commands`] refuses every page
    /// after; the worker answers nothing for it and commits nothing).
    pub fn halted(&self) -> Option<&str> {
        self.halted.as_deref()
    }

    /// The newest epoch whose keys are held (checkpoints are sealed under it).
    pub fn newest_epoch(&self) -> Option<Epoch> {
        self.keys.keys().next_back().copied()
    }

    /// Commands executed successfully so far (since start or checkpoint).
    pub fn executed(&self) -> u64 {
        self.executed
    }

    /// Holds the contract's keys of `epoch`.
    pub fn add_keys(&mut self, epoch: Epoch, keys: ContractKeys) {
        self.keys.insert(epoch, keys);
    }

    /// The keys of `epoch`, if held.
    pub fn keys(&self, epoch: Epoch) -> Option<&ContractKeys> {
        self.keys.get(&epoch)
    }

    /// The epochs of a feed page's commands whose keys are not held: the caller fetches
    /// them before [`Self::apply_commands`].
    pub fn missing_keys_of(&self, commands: &[CommandAt]) -> Vec<Epoch> {
        self.missing(commands.iter().filter_map(|c| match &c.tx.tx {
            Tx::Command(c) if c.contract == self.id => Some(c.epoch),
            _ => None,
        }))
    }

    /// [`Self::missing_keys_of`] for a page from a Solidity registry.
    pub fn missing_keys_of_evm(&self, commands: &[EvmCommand]) -> Vec<Epoch> {
        self.missing(commands.iter().map(|c| c.epoch))
    }

    fn missing(&self, epochs: impl Iterator<Item = Epoch>) -> Vec<Epoch> {
        let mut out: Vec<Epoch> = epochs.filter(|e| !self.keys.contains_key(e)).collect();
        out.sort();
        out.dedup();
        out
    }

    /// Applies a page of this contract's command feed that the caller verified from
    /// [`Self::log`] (`chain::proof::CommandPage::verify`, giving `page`): every command
    /// runs in order, and the position moves to the page's header. A page that does not
    /// continue this log is refused whole (an error naming both positions), so nothing
    /// runs twice or out of order.
    pub fn apply_commands(
        &mut self,
        runtime: &Runtime,
        commands: &[CommandAt],
        page: &VerifiedPage,
    ) -> Result<Vec<Skipped>, String> {
        // Every item a command of this contract, each sender's nonces only rising (the
        // registry's rule; an authority that signs the log must not replay one).
        let mut ordered = Vec::with_capacity(commands.len());
        let mut nonces = BTreeMap::new();
        for (i, c) in commands.iter().enumerate() {
            let o = Ordered::ledger(c)
                .filter(|_| matches!(&c.tx.tx, Tx::Command(cmd) if cmd.contract == self.id))
                .ok_or_else(|| format!("item {i} is not a command of this contract"))?;
            let nonce = c.tx.nonce;
            let last = nonces.get(o.sender).or_else(|| self.nonces.get(o.sender));
            if last.is_some_and(|n| nonce <= *n) {
                return Err(format!("item {i} replays its sender's nonce {nonce}"));
            }
            nonces.insert(o.sender.to_vec(), nonce);
            ordered.push(o);
        }
        let to = (
            page.count,
            page.head,
            page.header.height,
            page.header.hash(),
        );
        self.apply(runtime, &ordered, to)
    }

    /// Applies a page of the contract's feed from a Solidity registry that the caller
    /// verified from [`Self::log`] and [`Self::position`]
    /// (`chain::evm_proof::EvmPage::verify`, giving `page`), as
    /// [`Self::apply_commands`] does: a command's caller is the P-256 key that signed its
    /// sealed body ([`crate::protocol::seal_evm_command`]), whose nonce must rise.
    pub fn apply_evm_commands(
        &mut self,
        runtime: &Runtime,
        commands: &[EvmCommand],
        page: &VerifiedEvmPage,
    ) -> Result<Vec<Skipped>, String> {
        if page.times.len() != commands.len() {
            return Err("a page whose commands' block times are not all known".into());
        }
        let ordered: Vec<Ordered<'_>> = commands
            .iter()
            .zip(&page.times)
            .map(|(c, t)| Ordered::evm(&self.id, c, *t))
            .collect();
        let to = (
            page.count,
            page.head,
            page.checkpoint.number,
            page.checkpoint.hash,
        );
        self.apply(runtime, &ordered, to)
    }

    /// Runs `commands`, which must take this log to `(count, head)`, and moves to block
    /// `(height, hash)`.
    fn apply(
        &mut self,
        runtime: &Runtime,
        commands: &[Ordered<'_>],
        (count, head, height, hash): (u64, [u8; 32], u64, [u8; 32]),
    ) -> Result<Vec<Skipped>, String> {
        if let Some(why) = &self.halted {
            return Err(format!("the contract halted: {why}"));
        }
        if count != self.log.0 + commands.len() as u64 || height < self.height {
            return Err(format!(
                "a page of {} commands ending at {count} (height {height}) does not continue \
                 this log at {} (height {})",
                commands.len(),
                self.log.0,
                self.height
            ));
        }
        let extended = commands.iter().fold(self.log.1, |h, c| {
            chain::types::command_log(&h, c.height, c.time, &c.record)
        });
        if extended != head {
            return Err("the page's commands do not continue this log to its proven head".into());
        }
        let mut skipped = Vec::new();
        for c in commands {
            self.run(runtime, c, &mut skipped);
        }
        self.height = height;
        self.block_hash = hash;
        Ok(skipped)
    }

    /// Runs one command of this contract (in block `height`, at `time`), advancing the
    /// command log whether it runs or is skipped.
    fn run(&mut self, runtime: &Runtime, c: &Ordered<'_>, skipped: &mut Vec<Skipped>) {
        let (sequence, height, before) = (self.log.0, c.height, self.log.1);
        if let Some(nonce) = c.nonce {
            self.nonces.insert(c.sender.to_vec(), nonce);
        }
        self.log = (
            self.log.0 + 1,
            chain::types::command_log(&self.log.1, height, c.time, &c.record),
        );
        // Who the receipt is for: on the ledger the transaction's signer and nonce,
        // known even if the command does not open; on EVM the key that signed the
        // sealed body, known only once it opens.
        let mut receipt_for = c.nonce.map(|n| (c.sender.to_vec(), n));
        let mut fuel_used = 0;
        let result = self.open(c).and_then(|(input, caller, evm_nonce)| {
            if self.halted.is_some() {
                return Err(Skip::Contract(ContractError::HostRule(
                    "the contract halted",
                )));
            }
            if let Some(n) = evm_nonce {
                receipt_for = Some((caller.clone(), n));
            }
            let metered = self.execute(runtime, c, (&input, &caller), before);
            fuel_used = metered.fuel_used;
            Ok(metered.result?)
        });
        // The root's tree moves first: a contract whose root cannot be kept halts here,
        // its state as it was.
        let result = result.and_then(|outcome| match self.update_root(&outcome.changes) {
            true => Ok(outcome),
            false => Err(Skip::Contract(ContractError::HostRule(
                "the contract halted",
            ))),
        });
        let receipt = receipt(sequence, height, fuel_used, &result);
        match result {
            Ok(outcome) => {
                self.state.apply(&outcome.changes);
                self.executed += 1;
                for data in outcome.events {
                    self.events.keep(Event {
                        sequence,
                        height,
                        data,
                    });
                }
            }
            Err(reason) => skipped.push(Skipped {
                height,
                sequence,
                reason,
            }),
        }
        if let Some(key) = receipt_for {
            self.receipts.keep(key, receipt);
        }
    }

    /// Moves the state root's tree with a command's changes, before the state takes
    /// them; whether it did. The tree is memory only and fails only on a bug: then it is
    /// rebuilt from the state the changes make. Should that fail too, the contract
    /// halts with its state and root as they were, rather than sign or commit a root
    /// that is not its state's; the worker's other contracts go on.
    fn update_root(&mut self, changes: &Changes) -> bool {
        let Err(e) = self.tree.apply(&self.state, changes) else {
            return true;
        };
        tracing::error!(contract = %hex::encode(self.id), error = %e, "state root update failed; rebuilding it from the state");
        let mut after = self.state.clone();
        after.apply(changes);
        match StateRoot::of(&after, &self.root_key) {
            Ok(t) => {
                self.tree = t;
                true
            }
            Err(e) => {
                tracing::error!(contract = %hex::encode(self.id), error = %e, "state root rebuild failed: this contract halts");
                self.halted = Some(format!("its state root could not be kept: {e}"));
                false
            }
        }
    }

    /// Opens command `c`: its input, its caller and (on EVM) the caller's signed nonce.
    /// The caller: on the ledger the transaction's signer; on EVM the P-256 key that
    /// signed the sealed body, whose nonce must rise (a ciphertext sent again, by its
    /// account or through a forwarder, runs once; the first keeps its receipt).
    fn open(&mut self, c: &Ordered<'_>) -> Result<Opening, Skip> {
        let keys = self
            .keys
            .get(&c.epoch)
            .ok_or(ProtocolError::Sealed("command (no key for its epoch)"))?;
        match (c.nonce, <&[u8; 20]>::try_from(c.sender)) {
            (None, Ok(account)) => {
                let call = open_evm_command(keys, &self.id, account, c.ciphertext)?;
                if self
                    .nonces
                    .get(&call.caller)
                    .is_some_and(|n| call.nonce <= *n)
                {
                    return Err(ProtocolError::Replayed.into());
                }
                self.nonces.insert(call.caller.clone(), call.nonce);
                Ok((call.input, call.caller, Some(call.nonce)))
            }
            _ => {
                let nonce = c.nonce.unwrap_or(0);
                let input = open_command(keys, &self.id, c.sender, nonce, c.ciphertext)?;
                Ok((input, c.sender.to_vec(), None))
            }
        }
    }

    /// Runs an opened command of `caller` with the keys of its epoch; `before`: the
    /// command log's head before it (its randomness's position).
    fn execute(
        &self,
        runtime: &Runtime,
        c: &Ordered<'_>,
        (input, caller): (&[u8], &[u8]),
        before: [u8; 32],
    ) -> phalanx_contract::Metered {
        let signing = self
            .keys
            .get(&c.epoch)
            .map(|k| (c.epoch, k.signing.clone()));
        let env: Arc<dyn Env> =
            Arc::new(CallEnv::new(self.id, signing, &self.root_key, Some(before)));
        runtime.metered(
            &self.contract,
            &self.state,
            Call {
                env: Some(&env),
                entry: Entry::Execute,
                input,
                caller: phalanx_types::contract::caller_id(caller),
                height: c.height,
            },
            runtime.limits().fuel,
        )
    }

    /// The contract's events of commands from `from` on, at most
    /// [`phalanx_types::receipt::MAX_PAGE_EVENTS`] and whole commands (a command's
    /// events are never split between pages), with where to ask next. Events older
    /// than the log's bound ([`MAX_LOGGED_EVENTS`]) are forgotten; `oldest` says from
    /// where the worker holds them.
    pub fn events_from(&self, from: u64) -> EventPage {
        let max = phalanx_types::receipt::MAX_PAGE_EVENTS;
        let held = &self.events.log;
        let mut at = held.partition_point(|e| e.sequence < from);
        let mut events: Vec<Event> = Vec::new();
        let mut next = from.max(self.events.oldest);
        while let Some(first) = held.get(at) {
            // One command's events together (at most the runtime's 64 per command).
            let n = held
                .iter()
                .skip(at)
                .take_while(|e| e.sequence == first.sequence)
                .count();
            if events.len() + n > max {
                break;
            }
            events.extend(held.iter().skip(at).take(n).cloned());
            next = first.sequence + 1;
            at += n;
        }
        if at >= held.len() {
            // Every event held was given: the next page starts after the log.
            next = next.max(self.log.0);
        }
        EventPage {
            events,
            next,
            oldest: self.events.oldest,
        }
    }

    /// Whether the holder of `caller_key` may read the contract's events: the
    /// contract's own `may_read_events` says so (output `[1]`, within `fuel`); without
    /// it, nobody.
    pub fn may_read_events(&self, runtime: &Runtime, caller_key: &[u8], fuel: u64) -> bool {
        let call = Call {
            env: None,
            entry: Entry::ReadEvents,
            input: &[],
            caller: phalanx_types::contract::caller_id(caller_key),
            height: self.height,
        };
        runtime
            .call_with_fuel(&self.contract, &self.state, call, fuel)
            .is_ok_and(|o| o.output == [1])
    }

    /// The receipt of the command `caller_key` sent with `nonce`, if this worker ran it
    /// and still holds it ([`MAX_RECEIPTS`] per contract, oldest forgotten first).
    pub fn receipt(&self, caller_key: &[u8], nonce: u64) -> Option<&Receipt> {
        self.receipts.map.get(&(caller_key.to_vec(), nonce))
    }

    /// A read-only call at the current position by the holder of `caller_key`, with at
    /// most `fuel`.
    pub fn query(
        &self,
        runtime: &Runtime,
        caller_key: &[u8],
        input: &[u8],
        fuel: u64,
    ) -> Result<Outcome, ContractError> {
        // No signing key in a query: a signature must be of state the chain ordered
        // (a command's, returned in its receipt or kept in the state), never of
        // whatever position a host holds this worker at.
        let env: Arc<dyn Env> = Arc::new(CallEnv::new(self.id, None, &self.root_key, None));
        runtime.call_with_fuel(
            &self.contract,
            &self.state,
            Call {
                env: Some(&env),
                entry: Entry::Query,
                input,
                caller: phalanx_types::contract::caller_id(caller_key),
                height: self.height,
            },
            fuel,
        )
    }

    /// The statement of a request of `purpose` (a query, or a receipt request) answered
    /// at the current position: by the worker with identity key `worker`, for the caller
    /// `caller_key` with `nonce`, of `input` (salted with the request's salt) answered
    /// with `output` (salted with the answer's).
    pub fn statement(
        &self,
        purpose: Purpose,
        worker: &[u8],
        caller_key: &[u8],
        nonce: &[u8; 16],
        (query_salt, input): (&[u8; 32], &[u8]),
        (answer_salt, output): (&[u8; 32], &[u8]),
    ) -> phalanx_types::statement::Statement {
        use phalanx_types::statement::{Statement, answer_hash};
        Statement {
            worker: hex::encode(worker),
            contract: self.id.into(),
            code_hash: self.code_hash().into(),
            height: self.height,
            block_hash: self.block_hash.into(),
            state_root: self.tree.root().into(),
            query_hash: purpose
                .request_hash(caller_key, nonce, query_salt, input)
                .into(),
            answer_hash: answer_hash(answer_salt, output).into(),
        }
    }

    /// The sealed checkpoint: `u64 epoch ‖ AES-256-GCM(height ‖ block hash ‖ executed ‖
    /// command count ‖ log head ‖ state root key ‖ senders' last nonces ‖ entries)` under
    /// the key of `epoch` (one of the held epochs). It carries the key its state root is
    /// keyed with, so a worker that starts from it needs no older epoch's keys: the
    /// epochs before can retire.
    pub fn checkpoint(&self, epoch: Epoch) -> Result<Vec<u8>, SealError> {
        let mut w = Writer::default();
        w.u64(self.height);
        w.raw(&self.block_hash);
        w.u64(self.executed);
        w.u64(self.log.0);
        w.raw(&self.log.1);
        w.raw(self.root_key.as_slice());
        w.u32(self.nonces.len() as u32);
        for (sender, nonce) in &self.nonces {
            w.bytes(sender);
            w.u64(*nonce);
        }
        w.u32(self.state.len() as u32);
        for (k, v) in self.state.iter() {
            w.bytes(k);
            w.bytes(v);
        }
        let w = zeroize::Zeroizing::new(w.0);
        let keys = self.keys.get(&epoch).ok_or(SealError::Seal)?;
        let sealed = checkpoint_key(keys, &self.id)?.seal(&checkpoint_aad(&self.id), &w)?;
        Ok([epoch.0.to_be_bytes().as_slice(), &sealed].concat())
    }

    /// The epoch whose keys sealed `sealed` (its clear prefix), if it has one.
    pub fn checkpoint_epoch(sealed: &[u8]) -> Option<Epoch> {
        sealed
            .first_chunk::<8>()
            .map(|e| Epoch(u64::from_be_bytes(*e)))
    }

    /// A contract started from a checkpoint sealed by [`Self::checkpoint`] (by any worker
    /// holding the contract's keys), keyed by the root key it carries; `sealing` are the
    /// keys of the epoch it is sealed under ([`Self::checkpoint_epoch`]), which it does
    /// not hold yet ([`Self::add_keys`]). The next feed page checks its command log
    /// against the chain.
    pub fn from_checkpoint(
        id: [u8; 32],
        contract: Contract,
        sealing: &ContractKeys,
        sealed: &[u8],
    ) -> Result<Self, CheckpointError> {
        let epoch = Self::checkpoint_epoch(sealed).ok_or(CheckpointError::Seal(SealError::Open))?;
        let opened = open_checkpoint(|e| (e == epoch).then_some(sealing), &id, sealed)?;
        let mut e = Self::new(id, contract, &opened.root_key);
        e.take(opened)?;
        Ok(e)
    }

    /// Restores a checkpoint sealed by [`Self::checkpoint`] (any worker holding the
    /// contract's keys opens it). An edited, truncated or foreign one, or one keyed
    /// otherwise than this contract's state, is refused and nothing changes. The next
    /// feed page checks its command log against the chain.
    pub fn restore(&mut self, sealed: &[u8]) -> Result<(), CheckpointError> {
        let opened = open_checkpoint(|e| self.keys.get(&e), &self.id, sealed)?;
        if opened.root_key != self.root_key {
            return Err(CheckpointError::OtherRootKey);
        }
        self.take(opened)
    }

    fn take(&mut self, o: Opened) -> Result<(), CheckpointError> {
        self.tree = StateRoot::of(&o.state, &o.root_key)
            .map_err(|e| CheckpointError::Root(e.to_string()))?;
        // Events of the commands before the checkpoint are not in it.
        self.events = Events {
            oldest: o.log.0,
            ..Events::default()
        };
        (
            self.state,
            self.height,
            self.block_hash,
            self.executed,
            self.log,
            self.nonces,
            self.root_key,
        ) = (
            o.state,
            o.height,
            o.block_hash,
            o.executed,
            o.log,
            o.nonces,
            o.root_key,
        );
        Ok(())
    }
}

/// An opened command: its input, its caller's key, and (on EVM) the caller's nonce.
type Opening = (zeroize::Zeroizing<Vec<u8>>, Vec<u8>, Option<u64>);

/// The receipt of a command run (or skipped) at `sequence`, in block `height`.
fn receipt(sequence: u64, height: u64, fuel_used: u64, result: &Result<Outcome, Skip>) -> Receipt {
    let (status, message) = match result {
        Ok(_) => (Status::Applied, String::new()),
        Err(Skip::Envelope(e)) => (Status::Unopened, e.to_string()),
        Err(Skip::Contract(ContractError::Aborted(m))) => (Status::Refused, m.clone()),
        Err(Skip::Contract(ContractError::OutOfFuel)) => (Status::OutOfFuel, String::new()),
        Err(Skip::Contract(e)) => (Status::Failed, e.to_string()),
    };
    let (output, events) = match result {
        Ok(o) => (o.output.clone(), o.events.clone()),
        Err(_) => (Vec::new(), Vec::new()),
    };
    Receipt {
        sequence,
        height,
        status,
        fuel_used,
        output,
        events,
        message: message
            .chars()
            .take(phalanx_types::receipt::MAX_MESSAGE / 4)
            .collect(),
    }
}

/// Most receipts a worker keeps per contract; beyond it, or beyond
/// [`MAX_RECEIPT_BYTES`], the oldest are forgotten (the caller asks another worker, or
/// too late).
pub const MAX_RECEIPTS: usize = 1 << 16;
/// Most bytes of receipts (outputs, events, messages) kept per contract.
pub const MAX_RECEIPT_BYTES: usize = 64 << 20;

/// Most receipts kept per caller: one sender's flood forgets its own receipts first
/// (many senders can still flush them all: there are no fees).
pub const MAX_RECEIPTS_PER_CALLER: usize = 4096;

/// The receipts of one contract, by (caller key, command nonce), oldest first out.
#[derive(Default)]
struct Receipts {
    map: std::collections::HashMap<(Vec<u8>, u64), Receipt>,
    order: std::collections::VecDeque<(Vec<u8>, u64)>,
    /// Each caller's nonces kept, oldest first.
    callers: std::collections::HashMap<Vec<u8>, std::collections::VecDeque<u64>>,
    bytes: usize,
}

impl Receipts {
    fn size(r: &Receipt) -> usize {
        r.output.len() + r.events.iter().map(Vec::len).sum::<usize>() + r.message.len() + 64
    }

    /// Keeps `receipt` unless one is kept under `key` already (the first command under
    /// a nonce keeps its receipt).
    fn keep(&mut self, key: (Vec<u8>, u64), receipt: Receipt) {
        if self.map.contains_key(&key) {
            return;
        }
        self.bytes += Self::size(&receipt);
        self.order.push_back(key.clone());
        let mine = self.callers.entry(key.0.clone()).or_default();
        mine.push_back(key.1);
        let own_oldest = (mine.len() > MAX_RECEIPTS_PER_CALLER)
            .then(|| mine.pop_front())
            .flatten();
        let caller = key.0.clone();
        self.map.insert(key, receipt);
        if let Some(nonce) = own_oldest {
            self.forget(&(caller, nonce));
        }
        // The global order may name receipts forgotten already (their caller's own
        // oldest): those pop without freeing anything.
        while self.order.len() > MAX_RECEIPTS || self.bytes > MAX_RECEIPT_BYTES {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            if let Some(mine) = self.callers.get_mut(&old.0) {
                mine.retain(|n| *n != old.1);
                if mine.is_empty() {
                    self.callers.remove(&old.0);
                }
            }
            self.forget(&old);
        }
    }

    fn forget(&mut self, key: &(Vec<u8>, u64)) {
        if let Some(r) = self.map.remove(key) {
            self.bytes = self.bytes.saturating_sub(Self::size(&r));
        }
    }
}

/// Most events a worker keeps per contract (beyond it, or beyond [`MAX_EVENT_BYTES`],
/// the oldest are forgotten).
pub const MAX_LOGGED_EVENTS: usize = 1 << 16;
/// Most bytes of events kept per contract.
pub const MAX_EVENT_BYTES: usize = 32 << 20;

/// The contract's events, oldest first (in memory only).
#[derive(Default)]
struct Events {
    log: std::collections::VecDeque<Event>,
    bytes: usize,
    /// The first sequence whose events are all still held.
    oldest: u64,
}

impl Events {
    fn keep(&mut self, e: Event) {
        self.bytes += e.data.len() + 16;
        self.log.push_back(e);
        while self.log.len() > MAX_LOGGED_EVENTS || self.bytes > MAX_EVENT_BYTES {
            let Some(old) = self.log.pop_front() else {
                break;
            };
            self.bytes = self.bytes.saturating_sub(old.data.len() + 16);
            self.oldest = self.oldest.max(old.sequence + 1);
            // A command's events go together: a page never holds part of one.
            while self.log.front().is_some_and(|e| e.sequence == old.sequence) {
                if let Some(e) = self.log.pop_front() {
                    self.bytes = self.bytes.saturating_sub(e.data.len() + 16);
                }
            }
        }
    }
}

/// What a checkpoint holds, opened.
struct Opened {
    height: u64,
    block_hash: [u8; 32],
    executed: u64,
    log: (u64, [u8; 32]),
    root_key: zeroize::Zeroizing<[u8; 32]>,
    nonces: BTreeMap<Vec<u8>, u64>,
    state: State,
}

fn checkpoint_key(keys: &ContractKeys, id: &[u8; 32]) -> Result<SealingKey, SealError> {
    SealingKey::derive(keys.checkpoint_secret(), phalanx_types::tag::CHECKPOINT, id)
}

fn checkpoint_aad(id: &[u8; 32]) -> Vec<u8> {
    [phalanx_types::tag::CHECKPOINT, id].concat()
}

/// Opens and decodes a sealed checkpoint of contract `id` with the keys `keys` gives
/// for its epoch.
fn open_checkpoint<'k>(
    keys: impl FnOnce(Epoch) -> Option<&'k ContractKeys>,
    id: &[u8; 32],
    sealed: &[u8],
) -> Result<Opened, CheckpointError> {
    let (epoch, rest) = sealed
        .split_first_chunk::<8>()
        .ok_or(CheckpointError::Seal(SealError::Open))?;
    let epoch = Epoch(u64::from_be_bytes(*epoch));
    let keys = keys(epoch).ok_or(CheckpointError::NoKeys(epoch))?;
    let plain = zeroize::Zeroizing::new(checkpoint_key(keys, id)?.open(&checkpoint_aad(id), rest)?);
    let mut r = Reader::new(&plain, "checkpoint");
    let height = r.u64("height")?;
    let block_hash = r.array("block hash")?;
    let executed = r.u64("executed")?;
    let log = (r.u64("command count")?, r.array("command log head")?);
    let root_key = zeroize::Zeroizing::new(r.array("state root key")?);
    let mut nonces = BTreeMap::new();
    for _ in 0..r.u32("senders")? {
        let sender = r.bytes("sender", 512)?.to_vec();
        nonces.insert(sender, r.u64("nonce")?);
    }
    let n = r.u32("entries")?;
    let mut changes = Changes::default();
    for _ in 0..n {
        let k = r.bytes("key", 1 << 20)?.to_vec();
        let v = r.bytes("value", 1 << 24)?.to_vec();
        changes.0.insert(k, Some(v));
    }
    r.finish()?;
    let mut state = State::default();
    state.apply(&changes);
    Ok(Opened {
        height,
        block_hash,
        executed,
        log,
        root_key,
        nonces,
        state,
    })
}

/// Why a checkpoint was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// It does not open: edited, truncated, or another contract's.
    #[error(transparent)]
    Seal(#[from] SealError),
    /// Sealed under an epoch whose keys this worker does not hold.
    #[error("sealed under epoch {0}, whose keys this worker does not hold")]
    NoKeys(Epoch),
    /// It opened but does not decode.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// Its state root is keyed otherwise than this contract's (another contract's
    /// state under the same keys cannot be, so it was not made by a genuine worker).
    #[error("its state root key is not this contract's")]
    OtherRootKey,
    /// Its state's root could not be computed (a bug of the tree; nothing changed).
    #[error("its state root: {0}")]
    Root(String),
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn receipt(sequence: u64) -> Receipt {
        Receipt {
            sequence,
            height: 1,
            status: Status::Applied,
            fuel_used: 1,
            output: Vec::new(),
            events: Vec::new(),
            message: String::new(),
        }
    }

    /// A caller past its cap forgets its own oldest receipt, not another's; a second
    /// receipt under a kept nonce does not replace the first.
    #[test]
    fn a_flooding_caller_forgets_its_own_receipts_first() {
        let mut r = Receipts::default();
        r.keep((b"alice".to_vec(), 0), receipt(0));
        for n in 0..=MAX_RECEIPTS_PER_CALLER as u64 {
            r.keep((b"mallory".to_vec(), n), receipt(n + 1));
        }
        assert!(r.map.contains_key(&(b"alice".to_vec(), 0)));
        assert!(!r.map.contains_key(&(b"mallory".to_vec(), 0)));
        assert!(
            r.map
                .contains_key(&(b"mallory".to_vec(), MAX_RECEIPTS_PER_CALLER as u64))
        );
        r.keep((b"alice".to_vec(), 0), receipt(99));
        assert_eq!(r.map[&(b"alice".to_vec(), 0)].sequence, 0);
    }

    /// Events are forgotten a whole command at a time, and `oldest` moves past it.
    #[test]
    fn events_are_forgotten_whole_commands_at_a_time() {
        let mut e = Events::default();
        for i in 0..=MAX_LOGGED_EVENTS as u64 {
            // Command 0 has two events; every later one, one.
            e.keep(Event {
                sequence: i.saturating_sub(1),
                height: 1,
                data: vec![],
            });
        }
        assert_eq!(e.oldest, 1);
        assert!(e.log.iter().all(|x| x.sequence >= 1));
    }
}
