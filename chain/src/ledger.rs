//! The embedded ledger: an append-only chain of signed blocks in rocksdb (table
//! `blocks`, key = height big-endian, value = the block's encoding), one synced write
//! per block. In the same write as its block go: the contracts' command index (table
//! `commands`, key = contract id ‖ sequence, value = height ‖ position in the block, for
//! [`Ledger::commands`]), the state tree's new version (tables `tree-nodes` and
//! `tree-values`: the Jellyfish Merkle tree's nodes and values, so a proof at any height
//! is read from disk and memory keeps only recent versions) and the registry's records
//! that block changed (table `records`, [`State::block_records`]). A crash at any point
//! leaves the old chain and its state, or the new ones. Table `meta` names the data's
//! format ([`FORMAT`]): format 3 (before the stored state) is migrated on opening —
//! replayed once, then stored; older ones are refused by name, never misread.
//!
//! Opening reads the stored state ([`State::restore`]): nothing is replayed, and what is
//! read is checked — the tree's root is the last block's state root, signed by the
//! authority, and every recorded fact is the tree's. [`Ledger::verify_dir`] is the
//! auditor's check: it re-verifies the whole chain from genesis with
//! [`State::apply_block`] (every key its block's height, no gaps or reordering, every
//! block linked to its parent, signed by the authority, with only valid transactions),
//! and a block edited, removed or reordered on disk fails it with its height.
//!
//! [`Ledger::submit`] checks a transaction against the current state, seals it into the
//! next block (time never going back), persists the block, and only then updates the
//! state (the state commitment's shared store may hold the unwritten block's version
//! until the next block replaces it: `chain::commit` drops what a discarded version
//! wrote). Concurrent submissions
//! share blocks (group commit): whoever finds no block being written seals everything
//! waiting — up to [`MAX_BATCH_BYTES`] and `MAX_TXS` transactions, each checked on its
//! own, a refused one left out with its error — in one block and one synced write, and
//! hands every submitter its outcome. One submitter alone still gets a block of one
//! at once; under load, blocks grow instead of queues (`benches/ledger.rs`).

use crate::state::{RuleError, State};
use crate::types::{Block, Genesis, PublicKey, SignedTx, Tx, public_key};
use p256::ecdsa::SigningKey;
use std::path::Path;
use std::sync::Mutex;

/// Why the ledger failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    /// A rule refused the transaction.
    #[error(transparent)]
    Rule(#[from] RuleError),
    /// The stored chain does not verify at this height.
    #[error("stored chain is invalid at height {height}: {what}")]
    Corrupt {
        /// The first bad height.
        height: u64,
        /// What is wrong.
        what: String,
    },
    /// rocksdb failed.
    #[error("storage: {0}")]
    Db(#[from] rocksdb::Error),
    /// The database has no blocks table.
    #[error("storage: missing blocks table")]
    MissingTable,
    /// A stored block does not decode.
    #[error("stored block: {0}")]
    Decode(#[from] crate::types::DecodeError),
    /// The state lock was poisoned by a panic elsewhere.
    #[error("ledger state lock poisoned")]
    Poisoned,
    /// A block could not be written; the transaction may be submitted again.
    #[error("storage: the block was not written: {0}")]
    Write(String),
    /// The data was written in another format.
    #[error(
        "this ledger's data is in format {found}, this node reads format {FORMAT} \
         and migrates 3 (1: blocks before headers committed to the registry's state; 2: \
         before the command logs); \
         start a new chain in an empty directory, or run the Phalanx that wrote it"
    )]
    Format {
        /// The format found.
        found: u32,
    },
}

/// The format of the data this ledger writes (3: headers with chain id, transaction
/// root and a state root that includes the history and the contracts' command logs; a
/// per-contract command index. 4: the state tree and the registry's records stored with
/// each block, so opening replays nothing. 5: each published round's record holds its
/// outcome, the digest its members confirmed, which evidence of misbehaviour is checked
/// against). Formats 3 and 4 are migrated on opening: every node then holds the same
/// outcomes, whether it replayed its chain or reopened its store.
pub const FORMAT: u32 = 5;
const META: &str = "meta";
const COMMANDS: &str = "commands";
/// The state tree's nodes (borsh of the node key → borsh of the node).
const TREE_NODES: &str = "tree-nodes";
/// The state tree's values (key hash ‖ version, big-endian → 0, or 1 ‖ value).
const TREE_VALUES: &str = "tree-values";
/// The registry's records ([`State::block_records`]).
const RECORDS: &str = "records";
const TABLES: [&str; 6] = [BLOCKS, META, COMMANDS, TREE_NODES, TREE_VALUES, RECORDS];
const FORMAT_KEY: &[u8] = b"format";

/// The ledger, with its authority key. Share as `Arc<Ledger>`.
pub struct Ledger {
    db: std::sync::Arc<rocksdb::DB>,
    authority: SigningKey,
    state: Mutex<State>,
    now: fn() -> i64,
    /// Submissions waiting for a block, and outcomes not yet collected.
    queue: Mutex<Queue>,
    /// Signalled when a block's outcomes are posted.
    posted: std::sync::Condvar,
}

/// Most encoded transaction bytes one block takes from the queue (below the gRPC
/// message bound, so any block can be served alone; a single larger transaction still
/// gets a block of its own).
pub const MAX_BATCH_BYTES: usize = 2 * 1024 * 1024;

/// One submitter's turn at sealing: on drop (done, or unwinding from a panic) posts the
/// batch's outcomes — an error for any missing — and ends the turn.
struct Turn<'a> {
    ledger: &'a Ledger,
    ids: Vec<u64>,
    outcomes: Vec<(u64, Result<u64, LedgerError>)>,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        let mut q = self
            .ledger
            .queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let posted = std::mem::take(&mut self.outcomes);
        for id in &self.ids {
            if !posted.iter().any(|(p, _)| p == id) {
                q.outcomes.insert(
                    *id,
                    Err(LedgerError::Write("sealing the block failed".into())),
                );
            }
        }
        q.outcomes.extend(posted);
        q.sealing = false;
        self.ledger.posted.notify_all();
    }
}

/// Most commands a page takes before finishing the block it is in (which may add up
/// to `MAX_TXS` more: the page stays within [`crate::proof::MAX_PAGE_COMMANDS`]).
pub const MAX_PAGE_START: usize = crate::proof::MAX_PAGE_COMMANDS - crate::types::MAX_TXS;
/// Command bytes after which a page finishes its block (which adds at most
/// [`MAX_BATCH_BYTES`]: the page stays within one gRPC message).
const MAX_PAGE_BYTES: usize = 1024 * 1024;
/// Block bytes one page may read before it finishes its block (a contract with one
/// command in each of many large blocks costs the node this much per request, not more).
const MAX_READ_BYTES: usize = 16 * 1024 * 1024;

/// The group commit's queue.
#[derive(Default)]
struct Queue {
    next_id: u64,
    waiting: std::collections::VecDeque<(u64, SignedTx)>,
    outcomes: std::collections::HashMap<u64, Result<u64, LedgerError>>,
    /// Whether a submitter is sealing a block now.
    sealing: bool,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("path", &self.db.path())
            .finish()
    }
}

const BLOCKS: &str = "blocks";

/// Opens (`write`: or creates) the database in `dir`. Data of format 1 (blocks and no
/// format table) is refused before anything is created in it, so the Phalanx that wrote
/// it still opens it.
fn open_db(dir: &Path, write: bool) -> Result<rocksdb::DB, LedgerError> {
    let mut opts = rocksdb::Options::default();
    if let Ok(tables) = rocksdb::DB::list_cf(&opts, dir)
        && tables.iter().any(|t| t == BLOCKS)
    {
        if !tables.iter().any(|t| t == META) {
            return Err(LedgerError::Format { found: 1 });
        }
        // Read the format with the tables as they are, before adding any.
        let existing = rocksdb::DB::open_cf_for_read_only(&opts, dir, &tables, false)?;
        check_format(&existing)?;
    }
    if !write {
        let tables: Vec<String> = rocksdb::DB::list_cf(&opts, dir)?;
        return Ok(rocksdb::DB::open_cf_for_read_only(
            &opts, dir, &tables, false,
        )?);
    }
    opts.create_if_missing(true);
    opts.create_missing_column_families(true);
    opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
    Ok(rocksdb::DB::open_cf(&opts, dir, TABLES)?)
}

/// The format the data is in (none: a new, empty ledger), refusing any other than this
/// one and format 3 (which opening migrates): blocks with no format named are format 1.
fn check_format(db: &rocksdb::DB) -> Result<Option<u32>, LedgerError> {
    let meta = db.cf_handle(META).ok_or(LedgerError::MissingTable)?;
    let found = match db.get_cf(meta, FORMAT_KEY)? {
        Some(v) => v
            .as_slice()
            .try_into()
            .map(u32::from_be_bytes)
            .unwrap_or(u32::MAX),
        None => {
            let empty = db
                .iterator_cf(cf(db)?, rocksdb::IteratorMode::Start)
                .next()
                .is_none();
            if empty {
                return Ok(None);
            }
            1
        }
    };
    if found == FORMAT || found == 3 || found == 4 {
        Ok(Some(found))
    } else {
        Err(LedgerError::Format { found })
    }
}

fn table<'a>(db: &'a rocksdb::DB, name: &str) -> Result<&'a rocksdb::ColumnFamily, LedgerError> {
    db.cf_handle(name).ok_or(LedgerError::MissingTable)
}

/// The state tree's versions as stored in the ledger's tables. Weak: copies of the state
/// handed out do not keep the database open once the ledger is dropped (they then read
/// only what memory holds).
struct StoredTree(std::sync::Weak<rocksdb::DB>);

impl StoredTree {
    fn of(db: &std::sync::Arc<rocksdb::DB>) -> std::sync::Arc<Self> {
        std::sync::Arc::new(Self(std::sync::Arc::downgrade(db)))
    }

    fn db(&self) -> Result<std::sync::Arc<rocksdb::DB>, String> {
        self.0
            .upgrade()
            .ok_or_else(|| "the ledger is closed".into())
    }
}

impl crate::commit::Backing for StoredTree {
    fn node(&self, key: &jmt::storage::NodeKey) -> Result<Option<jmt::storage::Node>, String> {
        let db = self.db()?;
        let cf = table(&db, TREE_NODES).map_err(|e| e.to_string())?;
        let k = borsh::to_vec(key).map_err(|e| e.to_string())?;
        match db.get_cf(cf, k).map_err(|e| e.to_string())? {
            Some(v) => borsh::from_slice(&v).map(Some).map_err(|e| e.to_string()),
            None => Ok(None),
        }
    }

    fn value(
        &self,
        max_version: jmt::Version,
        key: &jmt::KeyHash,
    ) -> Result<Option<Option<jmt::OwnedValue>>, String> {
        let db = self.db()?;
        let cf = table(&db, TREE_VALUES).map_err(|e| e.to_string())?;
        let from = [key.0.as_slice(), &max_version.to_be_bytes()].concat();
        let mut it = db.iterator_cf(
            cf,
            rocksdb::IteratorMode::From(&from, rocksdb::Direction::Reverse),
        );
        match it.next() {
            Some(Ok((k, v))) if k.starts_with(&key.0) => match v.split_first() {
                Some((0, [])) => Ok(Some(None)),
                Some((1, value)) => Ok(Some(Some(value.to_vec()))),
                _ => Err("a malformed tree value".into()),
            },
            Some(Err(e)) => Err(e.to_string()),
            _ => Ok(None),
        }
    }
}

/// Adds to `batch` what `written` (a version of the state tree) and `records` (the
/// registry's, [`State::block_records`]) store.
fn put_state(
    db: &rocksdb::DB,
    batch: &mut rocksdb::WriteBatch,
    (nodes, values): &crate::commit::Written,
    version: jmt::Version,
    records: &[(Vec<u8>, Option<Vec<u8>>)],
) -> Result<(), LedgerError> {
    let bad = |e: std::io::Error| LedgerError::Write(e.to_string());
    let cf = table(db, TREE_NODES)?;
    for (k, n) in nodes {
        batch.put_cf(
            cf,
            borsh::to_vec(k).map_err(bad)?,
            borsh::to_vec(n).map_err(bad)?,
        );
    }
    let cf = table(db, TREE_VALUES)?;
    for (k, v) in values {
        let key = [k.0.as_slice(), &version.to_be_bytes()].concat();
        match v {
            Some(v) => batch.put_cf(cf, key, [&[1u8][..], v].concat()),
            None => batch.put_cf(cf, key, [0u8]),
        }
    }
    let cf = table(db, RECORDS)?;
    for (k, v) in records {
        match v {
            Some(v) => batch.put_cf(cf, k, v),
            None => batch.delete_cf(cf, k),
        }
    }
    Ok(())
}

fn cf(db: &rocksdb::DB) -> Result<&rocksdb::ColumnFamily, LedgerError> {
    db.cf_handle(BLOCKS).ok_or(LedgerError::MissingTable)
}

/// The command index's entries of `block`, applied to `before` (the state it extends).
fn command_entries(before: &State, block: &Block) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut next: std::collections::BTreeMap<[u8; 32], u64> = Default::default();
    let mut out = Vec::new();
    for (i, tx) in block.txs.iter().enumerate() {
        if let crate::types::Tx::Command(c) = &tx.tx {
            let seq = next
                .entry(c.contract)
                .or_insert_with(|| before.contract(&c.contract).map_or(0, |k| k.commands));
            out.push((
                [c.contract.as_slice(), &seq.to_be_bytes()].concat(),
                [
                    block.height.to_be_bytes().as_slice(),
                    &(i as u32).to_be_bytes(),
                ]
                .concat(),
            ));
            *seq += 1;
        }
    }
    out
}

/// Writes `block` with its command index entries and the state it leaves (`after`,
/// which follows `before`), in one synced write.
fn put_block(
    db: &rocksdb::DB,
    block: &Block,
    before: Option<&State>,
    after: &State,
) -> Result<(), LedgerError> {
    if after.tree_version() != Some(block.height) {
        return Err(LedgerError::Write(format!(
            "the state tree stands at version {:?}, not at block {}",
            after.tree_version(),
            block.height
        )));
    }
    let mut batch = rocksdb::WriteBatch::default();
    let commands = before.map_or_else(Vec::new, |b| command_entries(b, block));
    let records = before.map_or_else(Vec::new, |b| after.block_records(b, block));
    let written = after
        .tree_written()
        .map_err(|e| LedgerError::Write(e.to_string()))?;
    put_state(db, &mut batch, &written, block.height, &records)?;
    let index = db.cf_handle(COMMANDS).ok_or(LedgerError::MissingTable)?;
    for (k, v) in &commands {
        batch.put_cf(index, k, v);
    }
    if block.height == 0 {
        // With the genesis, in one write: a ledger's blocks are never without a format.
        let meta = db.cf_handle(META).ok_or(LedgerError::MissingTable)?;
        batch.put_cf(meta, FORMAT_KEY, FORMAT.to_be_bytes());
    }
    batch.put_cf(cf(db)?, block.height.to_be_bytes(), block.encode());
    let mut o = rocksdb::WriteOptions::default();
    o.set_sync(true);
    Ok(db.write_opt(batch, &o)?)
}

/// The next block's worth of `waiting`: in order, at most `MAX_TXS` transactions and
/// [`MAX_BATCH_BYTES`] of them (the first always).
fn take_batch(waiting: &mut std::collections::VecDeque<(u64, SignedTx)>) -> Vec<(u64, SignedTx)> {
    let mut bytes = 0usize;
    let mut batch = Vec::new();
    while let Some((_, tx)) = waiting.front() {
        let size = phalanx_types::codec::Codec::to_bytes(tx).len();
        if !batch.is_empty()
            && (batch.len() >= crate::types::MAX_TXS || bytes + size > MAX_BATCH_BYTES)
        {
            break;
        }
        bytes += size;
        batch.extend(waiting.pop_front());
    }
    batch
}

/// Each record's last value (`None`: deleted), by key.
type Records = std::collections::BTreeMap<Vec<u8>, Option<Vec<u8>>>;

/// Every stored block, verified from genesis; the state they build, and (`collect`: to
/// migrate) the records each block left ([`State::block_records`], each key's last).
fn replay(db: &rocksdb::DB, collect: bool) -> Result<Option<(State, Records)>, LedgerError> {
    check_format(db)?;
    let mut state: Option<State> = None;
    let mut records = std::collections::BTreeMap::new();
    for (expected, item) in (0u64..).zip(db.iterator_cf(cf(db)?, rocksdb::IteratorMode::Start)) {
        let (k, v) = item?;
        let corrupt = |what: String| LedgerError::Corrupt {
            height: expected,
            what,
        };
        let key: [u8; 8] = k
            .as_ref()
            .try_into()
            .map_err(|_| corrupt("bad key".into()))?;
        if u64::from_be_bytes(key) != expected {
            return Err(corrupt("missing".into()));
        }
        let block = Block::decode(&v).map_err(|e| corrupt(e.to_string()))?;
        if block.height != expected {
            return Err(corrupt(format!("holds block {}", block.height)));
        }
        match &mut state {
            None => state = Some(State::from_genesis(&block).map_err(|e| corrupt(e.to_string()))?),
            Some(s) if collect => {
                let before = s.clone();
                s.apply_block(&block).map_err(|e| corrupt(e.to_string()))?;
                records.extend(s.block_records(&before, &block));
            }
            Some(s) => s.apply_block(&block).map_err(|e| corrupt(e.to_string()))?,
        }
    }
    Ok(state.map(|s| (s, records)))
}

/// The state stored with the last block (format 4), without replaying: `None` when there
/// is no block.
fn restore(db: &std::sync::Arc<rocksdb::DB>) -> Result<Option<State>, LedgerError> {
    let blocks = cf(db)?;
    let read = |mode: rocksdb::IteratorMode<'_>| -> Result<Option<Block>, LedgerError> {
        match db.iterator_cf(blocks, mode).next() {
            Some(item) => Ok(Some(Block::decode(&item?.1)?)),
            None => Ok(None),
        }
    };
    let (Some(genesis), Some(tip)) = (
        read(rocksdb::IteratorMode::Start)?,
        read(rocksdb::IteratorMode::End)?,
    ) else {
        return Ok(None);
    };
    // Every record but the events (`e`…), which stay on disk: what restoring reads
    // follows the state, not the chain.
    let cf = table(db, RECORDS)?;
    let before_events = db
        .iterator_cf(cf, rocksdb::IteratorMode::Start)
        .take_while(|item| item.as_ref().map_or(true, |(k, _)| k.first() < Some(&b'e')));
    let after_events = db.iterator_cf(
        cf,
        rocksdb::IteratorMode::From(b"f", rocksdb::Direction::Forward),
    );
    let records = before_events
        .chain(after_events)
        .map(|item| item.map(|(k, v)| (k.to_vec(), v.to_vec())))
        .collect::<Result<Vec<_>, _>>()?;
    let tree = crate::commit::Commitment::persisted_at(StoredTree::of(db), Some(tip.height))
        .map_err(|e| LedgerError::Corrupt {
            height: tip.height,
            what: format!("stored state tree: {e}"),
        })?;
    State::restore(&genesis, &tip, records, tree)
        .map(Some)
        .map_err(|e| LedgerError::Corrupt {
            height: tip.height,
            what: e.to_string(),
        })
}

/// The ledger's state: stored (format 4), or replayed from its blocks (format 3, then
/// migrated: every version of the tree and the records stored, in one write — memory
/// holds the replayed tree's every version meanwhile, fine for the format-3 chains that
/// exist; the new tables are created before, so the Phalanx that wrote format 3 no longer
/// opens the directory read-write).
fn load(db: &std::sync::Arc<rocksdb::DB>) -> Result<Option<State>, LedgerError> {
    match check_format(db)? {
        Some(FORMAT) => return restore(db),
        Some(4) => {
            migrate_round_outcomes(db)?;
            return restore(db);
        }
        _ => {}
    }
    let Some((state, records)) = replay(db, true)? else {
        return Ok(None);
    };
    let mut batch = rocksdb::WriteBatch::default();
    let records: Vec<_> = records.into_iter().collect();
    let tip = state.height() - 1;
    for version in 0..=tip {
        let written = state
            .tree_at(version)
            .map_err(|e| LedgerError::Write(e.to_string()))?;
        let none: &[(Vec<u8>, Option<Vec<u8>>)] = &[];
        put_state(
            db,
            &mut batch,
            &written,
            version,
            if version == tip { &records } else { none },
        )?;
    }
    batch.put_cf(table(db, META)?, FORMAT_KEY, FORMAT.to_be_bytes());
    let mut o = rocksdb::WriteOptions::default();
    o.set_sync(true);
    db.write_opt(batch, &o)?;
    Ok(Some(state))
}

/// Format 4 → 5: each published round's record gains its outcome, from the certificate
/// its block holds (blocks hold only accepted transactions), in one synced write.
fn migrate_round_outcomes(db: &rocksdb::DB) -> Result<(), LedgerError> {
    use phalanx_threshold::round::{RoundSpec, digest};
    let records = table(db, RECORDS)?;
    let mut batch = rocksdb::WriteBatch::default();
    for item in db.iterator_cf(cf(db)?, rocksdb::IteratorMode::Start) {
        let (height, bytes) = item?;
        let corrupt = |what: String| LedgerError::Corrupt {
            height: height
                .as_ref()
                .try_into()
                .map(u64::from_be_bytes)
                .unwrap_or(u64::MAX),
            what,
        };
        let block = Block::decode(&bytes).map_err(|e| corrupt(e.to_string()))?;
        for t in &block.txs {
            let Tx::PublishMasterKey(cert) = &t.tx else {
                continue;
            };
            let (Ok(spec), Ok(public)) = (
                RoundSpec::decode(&cert.spec),
                phalanx_threshold::wire::public_set_from_bytes(&cert.public_key_set),
            ) else {
                return Err(corrupt(
                    "an accepted certificate that does not decode".into(),
                ));
            };
            let id = spec.id();
            let key = crate::state::record(b'p', &id);
            if db.get_cf(records, &key)?.is_some() {
                batch.put_cf(records, key, digest(&id, &public));
            }
        }
    }
    batch.put_cf(table(db, META)?, FORMAT_KEY, FORMAT.to_be_bytes());
    let mut o = rocksdb::WriteOptions::default();
    o.set_sync(true);
    db.write_opt(batch, &o)?;
    Ok(())
}

/// Most encoded block bytes in one [`Ledger::blocks`] answer (below the gRPC message
/// bound, [`crate::grpc::MAX_MESSAGE`]; one block is at most a contract module and its
/// framing).
pub const MAX_SERVED_BYTES: usize = 3 * 1024 * 1024;

impl Ledger {
    /// Opens the ledger in `dir` from its stored state (see the module doc; format 3 is
    /// migrated, replayed once); on first use writes a genesis
    /// block naming `authority` (which signs blocks), `governance`, and the evidence
    /// registrations need (`evidence`; on reopening, the genesis's own rule stands).
    pub fn open(
        dir: &Path,
        authority: SigningKey,
        governance: PublicKey,
        evidence: crate::types::EvidenceRule,
        now: fn() -> i64,
    ) -> Result<Self, LedgerError> {
        let db = std::sync::Arc::new(open_db(dir, true)?);
        let mut state = match load(&db)? {
            Some(s) => s,
            None => {
                let params = Genesis {
                    authority: public_key(authority.verifying_key()),
                    governance,
                    timestamp: now(),
                    evidence,
                };
                let genesis = State::genesis_block(params, &authority);
                let state = State::from_genesis(&genesis)?;
                put_block(&db, &genesis, None, &state)?;
                state
            }
        };
        // From here on the tree's older versions are read from the store.
        state.set_tree_backing(StoredTree::of(&db));
        state.tree_persisted();
        state.forget_events_before(state.height().saturating_sub(1));
        if state.genesis().authority != public_key(authority.verifying_key()) {
            return Err(LedgerError::Corrupt {
                height: 0,
                what: "the chain's authority is another key".into(),
            });
        }
        Ok(Self {
            db,
            authority,
            state: Mutex::new(state),
            now,
            queue: Mutex::new(Queue::default()),
            posted: std::sync::Condvar::new(),
        })
    }

    /// Verifies the chain stored in `dir` without writing (an auditor's check).
    pub fn verify_dir(dir: &Path) -> Result<State, LedgerError> {
        let db = open_db(dir, false)?;
        replay(&db, false)?
            .map(|(s, _)| s)
            .ok_or(LedgerError::Corrupt {
                height: 0,
                what: "no genesis".into(),
            })
    }

    fn locked(&self) -> Result<std::sync::MutexGuard<'_, State>, LedgerError> {
        self.state.lock().map_err(|_| LedgerError::Poisoned)
    }

    /// The current state (a copy).
    pub fn state(&self) -> Result<State, LedgerError> {
        Ok(self.locked()?.clone())
    }

    /// Checks `tx`, seals it into the next block and persists it; returns the height.
    /// Concurrent calls share blocks (see the module doc).
    pub fn submit(&self, tx: SignedTx) -> Result<u64, LedgerError> {
        // The queue's contents stay consistent whatever panicked while it was held.
        let lock = || {
            self.queue
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        let mut q = lock();
        let id = q.next_id;
        q.next_id += 1;
        q.waiting.push_back((id, tx));
        loop {
            if let Some(outcome) = q.outcomes.remove(&id) {
                return outcome;
            }
            if q.sealing {
                q = self
                    .posted
                    .wait(q)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                continue;
            }
            // Nobody is sealing: this submitter seals what waits (its own included). If
            // sealing panics, the guard still posts an outcome for the batch and hands
            // the turn on, so no submitter waits forever.
            q.sealing = true;
            let batch = take_batch(&mut q.waiting);
            drop(q);
            let mut turn = Turn {
                ledger: self,
                ids: batch.iter().map(|(id, _)| *id).collect(),
                outcomes: Vec::new(),
            };
            turn.outcomes = self.seal(batch);
            drop(turn);
            q = lock();
        }
    }

    /// Seals `batch` into one block and writes it: each submission's outcome.
    fn seal(&self, batch: Vec<(u64, SignedTx)>) -> Vec<(u64, Result<u64, LedgerError>)> {
        let (ids, txs): (Vec<u64>, Vec<SignedTx>) = batch.into_iter().unzip();
        let all = |e: &dyn std::fmt::Display| {
            ids.iter()
                .map(|id| (*id, Err(LedgerError::Write(e.to_string()))))
                .collect::<Vec<_>>()
        };
        // A panic while sealing leaves the state as it was (sealing works on a copy).
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (height, timestamp) = (state.height(), (self.now)().max(state.last_time()));
        let batch = match state.seal_batch(txs, timestamp, &self.authority) {
            Ok(b) => b,
            Err(e) => return all(&e),
        };
        if let Some((block, mut next)) = batch.sealed {
            if let Err(e) = put_block(&self.db, &block, Some(&state), &next) {
                return all(&e);
            }
            next.tree_persisted();
            next.forget_events_before(block.height);
            *state = next;
        }
        ids.into_iter()
            .zip(batch.outcomes)
            .map(|(id, o)| (id, o.map(|()| height).map_err(LedgerError::Rule)))
            .collect()
    }

    /// The events of the blocks from `from` on, in chain order, as stored with them
    /// ([`State::block_records`]; the state in memory keeps only the newest block's).
    pub fn events(&self, from: u64) -> Result<Vec<(u64, crate::types::Event)>, LedgerError> {
        let start = [b"e".as_slice(), &from.to_be_bytes()].concat();
        let mut out = Vec::new();
        for item in self.db.iterator_cf(
            table(&self.db, RECORDS)?,
            rocksdb::IteratorMode::From(&start, rocksdb::Direction::Forward),
        ) {
            let (k, v) = item?;
            let Some(height) = k
                .strip_prefix(b"e")
                .and_then(|k| k.first_chunk::<8>())
                .map(|h| u64::from_be_bytes(*h))
            else {
                break;
            };
            out.push((height, crate::types::Event::decode(&v)?));
        }
        Ok(out)
    }

    /// The genesis, the header at `height` ([`crate::proof::LATEST`]: the newest block)
    /// and proofs of the facts `keys` at it ([`crate::proof::HeaderProof`]).
    pub fn prove(
        &self,
        height: u64,
        keys: &[Vec<u8>],
    ) -> Result<crate::proof::HeaderProof, LedgerError> {
        let state = self.state()?;
        let height = match height {
            crate::proof::LATEST => state.height().saturating_sub(1),
            h => h,
        };
        let block = |h: u64| -> Result<Block, LedgerError> {
            self.blocks(h, 1)?
                .into_iter()
                .next()
                .filter(|b| b.height == h)
                .ok_or_else(|| {
                    LedgerError::Rule(RuleError::Block {
                        height: h,
                        what: "no such block yet".into(),
                    })
                })
        };
        let (genesis, at) = (block(0)?, block(height)?);
        crate::proof::HeaderProof::at(&state, &genesis, &at, keys).map_err(|e| {
            LedgerError::Rule(RuleError::Block {
                height,
                what: e.to_string(),
            })
        })
    }

    /// `contract`'s commands from sequence `from` on — `limit` of them when there are
    /// that many (at most [`MAX_PAGE_START`]), then to the end of the last one's block,
    /// and fewer when their bytes, or the bytes of the blocks read for them, pass their
    /// bounds — with the proof of its command log at that block (none: at the latest
    /// block). A page always fits what a client decodes
    /// ([`crate::proof::MAX_PAGE_COMMANDS`], one gRPC message). A client that verified
    /// blocks up to `since` (exclusive; 0 for none) gets with it the proof of block
    /// `since - 1`'s hash at the page's header when that header is later, so it can tell
    /// that the page's header extends what it verified
    /// (`grpc::LightClient::commands`).
    pub fn commands(
        &self,
        contract: &[u8; 32],
        from: u64,
        limit: usize,
        since: u64,
    ) -> Result<crate::proof::CommandPage, LedgerError> {
        let state = self.state()?;
        let index = self
            .db
            .cf_handle(COMMANDS)
            .ok_or(LedgerError::MissingTable)?;
        let start = [contract.as_slice(), &from.to_be_bytes()].concat();
        let mut commands: Vec<crate::proof::CommandAt> = Vec::new();
        let mut block: Option<Block> = None;
        let (mut bytes, mut read) = (0usize, 0usize);
        let corrupt = |what: &str| LedgerError::Corrupt {
            height: state.height(),
            what: format!(
                "command index of {}: {what}",
                crate::proof::printable(contract)
            ),
        };
        for item in self.db.iterator_cf(
            index,
            rocksdb::IteratorMode::From(&start, rocksdb::Direction::Forward),
        ) {
            let (k, v) = item?;
            if !k.starts_with(contract) {
                break;
            }
            let (height, position) = command_entry(&v).ok_or_else(|| corrupt("bad entry"))?;
            // Only blocks the state (taken above) has applied: one written since is for
            // the next page.
            if height >= state.height() {
                break;
            }
            // A page ends at a block: once full, only the rest of the last block's
            // commands join it, so the bounds leave room for one block's worth (at most
            // MAX_TXS commands and MAX_BATCH_BYTES) within what a client decodes.
            let last = commands.last().map(|c| c.height);
            let full = commands.len() >= limit.clamp(1, MAX_PAGE_START)
                || bytes > MAX_PAGE_BYTES
                || read > MAX_READ_BYTES;
            if full && last != Some(height) {
                break;
            }
            if block.as_ref().map(|b| b.height) != Some(height) {
                let raw = self
                    .db
                    .get_cf(cf(&self.db)?, height.to_be_bytes())?
                    .ok_or_else(|| corrupt("no block"))?;
                read = read.saturating_add(raw.len());
                block = Some(Block::decode(&raw)?);
            }
            let b = block
                .as_ref()
                .filter(|b| b.height == height)
                .ok_or_else(|| corrupt("no block"))?;
            let tx = b
                .txs
                .get(position)
                .ok_or_else(|| corrupt("no transaction"))?;
            bytes = bytes.saturating_add(tx.encode().len());
            commands.push(crate::proof::CommandAt {
                height,
                timestamp: b.timestamp,
                tx: tx.clone(),
            });
        }
        let at = commands.last().map_or(state.height() - 1, |c| c.height);
        let proof = self.command_page_proof(contract, at, since)?;
        Ok(crate::proof::CommandPage { commands, proof })
    }

    /// The proof a command page carries at block `at`: the contract's command log, its
    /// record (a contract without commands yet has no log fact, and its record shows
    /// that its log is empty rather than that it does not exist), and block `since -
    /// 1`'s hash when the client verified blocks up to `since` and `at` is later.
    fn command_page_proof(
        &self,
        contract: &[u8; 32],
        at: u64,
        since: u64,
    ) -> Result<crate::proof::HeaderProof, LedgerError> {
        let mut keys = vec![
            crate::facts::Fact::Commands(*contract).key(),
            crate::facts::Fact::Contract(*contract).key(),
        ];
        if since > 1 && at >= since {
            keys.push(crate::facts::Fact::Header(since - 1).key());
        }
        self.prove(at, &keys)
    }

    /// Up to `limit` blocks from `from` on, and no more than [`MAX_SERVED_BYTES`] of
    /// encoded blocks (always at least one block, when there is one), so an answer fits
    /// one gRPC message.
    pub fn blocks(&self, from: u64, limit: usize) -> Result<Vec<Block>, LedgerError> {
        let mut out = Vec::new();
        let mut bytes = 0usize;
        let start = from.to_be_bytes();
        for item in self.db.iterator_cf(
            cf(&self.db)?,
            rocksdb::IteratorMode::From(&start, rocksdb::Direction::Forward),
        ) {
            if out.len() >= limit {
                break;
            }
            let (_, v) = item?;
            bytes = bytes.saturating_add(v.len());
            if bytes > MAX_SERVED_BYTES && !out.is_empty() {
                break;
            }
            out.push(Block::decode(&v)?);
        }
        Ok(out)
    }
}

/// A command index entry: the block's height (u64) and the transaction's position in it
/// (u32), big-endian.
fn command_entry(v: &[u8]) -> Option<(u64, usize)> {
    let height = u64::from_be_bytes(v.get(..8)?.try_into().ok()?);
    let position = u32::from_be_bytes(v.get(8..12)?.try_into().ok()?);
    Some((height, position as usize))
}
