//! One served contract, sans-IO: its compiled code, keys, state and chain position.
//! [`Executor::apply_commands`] runs a verified page of the contract's own command feed
//! (`chain::proof::CommandPage`: its commands in chain order, without the other
//! contracts' blocks); a command that does not open, traps, runs out of fuel or breaks
//! a bound is skipped with its reason and changes nothing. The executor keeps the
//! contract's command log position (count and head, `chain::types::command_log`), which
//! the next page must continue. [`Executor::query`] answers read-only calls at the current
//! position; checkpoints seal the state with a key derived from the contract's secret.

use crate::protocol::{ContractKeys, ProtocolError, open_command};
use crate::seal::{SealError, SealingKey};
use chain::proof::{CommandAt, VerifiedPage};
use chain::types::{SignedTx, Tx};
use phalanx_contract::{Call, Changes, Contract, ContractError, Entry, Outcome, Runtime, State};
use phalanx_types::Epoch;
use phalanx_types::codec::{DecodeError, Reader, Writer};
use std::collections::BTreeMap;

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
    root: [u8; 32],
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
            root: State::default().root(root_key),
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

    /// The keyed state root (cached: recomputed when a command changes the state).
    pub fn root(&self) -> [u8; 32] {
        self.root
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
        let mut out: Vec<Epoch> = commands
            .iter()
            .filter_map(|c| match &c.tx.tx {
                Tx::Command(c) if c.contract == self.id && !self.keys.contains_key(&c.epoch) => {
                    Some(c.epoch)
                }
                _ => None,
            })
            .collect();
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
        if page.count != self.log.0 + commands.len() as u64 || page.header.height < self.height {
            return Err(format!(
                "a page of {} commands ending at {} (height {}) does not continue this log at {} \
                 (height {})",
                commands.len(),
                page.count,
                page.header.height,
                self.log.0,
                self.height
            ));
        }
        // Every item a command of this contract, each sender's nonces only rising (the
        // registry's rule; an authority that signs the log must not replay one).
        let mut nonces = BTreeMap::new();
        for (i, c) in commands.iter().enumerate() {
            if !matches!(&c.tx.tx, Tx::Command(cmd) if cmd.contract == self.id) {
                return Err(format!("item {i} is not a command of this contract"));
            }
            let last = nonces
                .get(&c.tx.signer)
                .or_else(|| self.nonces.get(&c.tx.signer));
            if last.is_some_and(|n| c.tx.nonce <= *n) {
                return Err(format!(
                    "item {i} replays its sender's nonce {}",
                    c.tx.nonce
                ));
            }
            nonces.insert(c.tx.signer.clone(), c.tx.nonce);
        }
        let head = commands.iter().fold(self.log.1, |head, c| {
            chain::types::command_log(&head, c.height, c.timestamp, &c.tx.encode())
        });
        if head != page.head {
            return Err("the page's commands do not continue this log to its proven head".into());
        }
        let mut skipped = Vec::new();
        let before = self.executed;
        for c in commands {
            self.run(runtime, &c.tx, c.height, c.timestamp, &mut skipped);
        }
        self.height = page.header.height;
        self.block_hash = page.header.hash();
        if self.executed != before {
            self.root = self.state.root(&self.root_key);
        }
        Ok(skipped)
    }

    /// Runs one command of this contract (in block `height`, at `time`), advancing the
    /// command log whether it runs or is skipped.
    fn run(
        &mut self,
        runtime: &Runtime,
        t: &SignedTx,
        height: u64,
        time: i64,
        skipped: &mut Vec<Skipped>,
    ) {
        let Tx::Command(c) = &t.tx else { return };
        let sequence = self.log.0;
        self.nonces.insert(t.signer.clone(), t.nonce);
        self.log = (
            self.log.0 + 1,
            chain::types::command_log(&self.log.1, height, time, &t.encode()),
        );
        let run = || -> Result<Changes, Skip> {
            let keys = self
                .keys
                .get(&c.epoch)
                .ok_or(ProtocolError::Sealed("command (no key for its epoch)"))?;
            let input = open_command(keys, &self.id, &t.signer, t.nonce, &c.ciphertext)?;
            let out = runtime.call(
                &self.contract,
                &self.state,
                Call {
                    entry: Entry::Execute,
                    input: &input,
                    caller: phalanx_types::contract::caller_id(&t.signer),
                    height,
                },
            )?;
            Ok(out.changes)
        };
        match run() {
            Ok(changes) => {
                self.state.apply(&changes);
                self.executed += 1;
            }
            Err(reason) => skipped.push(Skipped {
                height,
                sequence,
                reason,
            }),
        }
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
        runtime.call_with_fuel(
            &self.contract,
            &self.state,
            Call {
                entry: Entry::Query,
                input,
                caller: phalanx_types::contract::caller_id(caller_key),
                height: self.height,
            },
            fuel,
        )
    }

    /// The statement of a query answered at the current position: by the worker with
    /// identity key `worker`, for the caller `caller_key` with `nonce`, of `input`
    /// (salted with the query's salt) answered with `output` (salted with the answer's).
    pub fn statement(
        &self,
        worker: &[u8],
        caller_key: &[u8],
        nonce: &[u8; 16],
        (query_salt, input): (&[u8; 32], &[u8]),
        (answer_salt, output): (&[u8; 32], &[u8]),
    ) -> phalanx_types::statement::Statement {
        use phalanx_types::statement::{Statement, answer_hash, query_hash};
        Statement {
            worker: hex::encode(worker),
            contract: self.id.into(),
            code_hash: self.code_hash().into(),
            height: self.height,
            block_hash: self.block_hash.into(),
            state_root: self.root.into(),
            query_hash: query_hash(caller_key, nonce, query_salt, input).into(),
            answer_hash: answer_hash(answer_salt, output).into(),
        }
    }

    fn checkpoint_key(&self, epoch: Epoch) -> Result<SealingKey, SealError> {
        let keys = self.keys.get(&epoch).ok_or(SealError::Seal)?;
        SealingKey::derive(
            keys.checkpoint_secret(),
            phalanx_types::tag::CHECKPOINT,
            &self.id,
        )
    }

    fn checkpoint_aad(&self) -> Vec<u8> {
        [phalanx_types::tag::CHECKPOINT, &self.id].concat()
    }

    /// The sealed checkpoint: `u64 epoch ‖ AES-256-GCM(height ‖ block hash ‖ executed ‖
    /// command count ‖ log head ‖ senders' last nonces ‖ entries)` under the key of
    /// `epoch` (one of the held epochs).
    pub fn checkpoint(&self, epoch: Epoch) -> Result<Vec<u8>, SealError> {
        let mut w = Writer::default();
        w.u64(self.height);
        w.raw(&self.block_hash);
        w.u64(self.executed);
        w.u64(self.log.0);
        w.raw(&self.log.1);
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
        let sealed = self
            .checkpoint_key(epoch)?
            .seal(&self.checkpoint_aad(), &w.0)?;
        Ok([epoch.0.to_be_bytes().as_slice(), &sealed].concat())
    }

    /// Restores a checkpoint sealed by [`Self::checkpoint`] (any worker holding the
    /// contract's keys opens it). An edited, truncated or foreign one is refused and
    /// nothing changes. The next feed page checks its command log against the chain.
    pub fn restore(&mut self, sealed: &[u8]) -> Result<(), CheckpointError> {
        let (epoch, rest) = sealed
            .split_first_chunk::<8>()
            .ok_or(CheckpointError::Seal(SealError::Open))?;
        let epoch = Epoch(u64::from_be_bytes(*epoch));
        let plain = self
            .checkpoint_key(epoch)
            .map_err(|_| CheckpointError::NoKeys(epoch))?
            .open(&self.checkpoint_aad(), rest)?;
        let mut r = Reader::new(&plain, "checkpoint");
        let height = r.u64("height")?;
        let block_hash = r.array("block hash")?;
        let executed = r.u64("executed")?;
        let log = (r.u64("command count")?, r.array("command log head")?);
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
        self.root = state.root(&self.root_key);
        (
            self.state,
            self.height,
            self.block_hash,
            self.executed,
            self.log,
            self.nonces,
        ) = (state, height, block_hash, executed, log, nonces);
        Ok(())
    }
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
}
