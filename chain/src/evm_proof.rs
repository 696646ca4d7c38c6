//! The EVM registry's facts proven against an Ethereum block: sans-IO, so the answer
//! verifier (and its WebAssembly build) checks them as it checks the embedded ledger's
//! [`crate::proof`], and reads them through the same [`ProvenFacts`].
//!
//! The Solidity registry (`contracts/Registry.sol`) keeps every fact of
//! [`crate::facts`] but the evidence rule and the block history — the same key, the
//! same value bytes — as a hash in a storage slot of its own: slot [`fact_slot`]`(key)`
//! holds [`fact_value_hash`]`(value)`, zero when absent. An [`EvmProof`] carries one
//! block's header (RLP), the registry account's proof against that header's state root
//! and each fact's storage proof against the account's storage root: what
//! `eth_getProof` answers, with the fact values beside it. [`EvmProof::verify`] checks,
//! in order, trusting only a block hash the caller trusts (one it pinned, or its own
//! node's hash of that block number, read with [`EvmProof::block`] first):
//!
//! 1. the header hashes to that block hash, and is well-formed RLP;
//! 2. the registry's account (nonce, balance, storage root, code hash) is in the
//!    header's state trie under the registry's address, and its code is this release's
//!    registry contract governed by the account the proof names
//!    ([`registry_code_hash`]) — not a look-alike that writes the same slots;
//! 3. each fact's value — or its absence — is in the account's storage trie at its slot.
//!
//! What the proof cannot show is the chain id (no header carries it): the proof names
//! it, and [`EvmVerified::registry_id`] — what workers bind their evidence to — is
//! derived from it and the address, so a wrong one fails the caller's comparison with
//! the registry it expects.
//!
//! The Merkle-Patricia proofs are checked by `alloy-trie`, the RLP read by `alloy-rlp`.
//! Commands are hash-chained on this backend too ([`command_record`] is what the
//! contract logs and hashes into [`crate::types::command_log`]).

use crate::facts::Fact;
use crate::proof::{ProofError, ProvenFacts, printable};
use alloy_primitives::{B256, Bytes, U256, keccak256};
use alloy_trie::proof::verify_proof;
use alloy_trie::{Nibbles, TrieAccount};
use phalanx_types::Epoch;
use phalanx_types::codec::{Codec, DecodeError, Reader, Writer};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Most facts one proof carries (as [`crate::proof::MAX_FACTS`]).
pub const MAX_FACTS: usize = crate::proof::MAX_FACTS;
/// Most nodes in one trie proof (a path of 64 nibbles, with room for extensions).
const MAX_NODES: usize = 80;
/// Largest trie node (a full branch node is 532 bytes).
const MAX_NODE: usize = 1024;
/// Largest block header (about 600 bytes on Ethereum today).
const MAX_HEADER: usize = 4096;
/// Largest fact key or value carried.
const MAX_FACT_BYTES: usize = 2 * 1024 * 1024;

/// The storage slot of the fact `key`: `Keccak-256(EVM_FACT_SLOT ‖ key)`.
pub fn fact_slot(key: &[u8]) -> [u8; 32] {
    keccak256([phalanx_types::tag::EVM_FACT_SLOT, key].concat()).0
}

/// What the slot of a fact with `value` holds: `Keccak-256(EVM_FACT_VALUE ‖ value)`.
pub fn fact_value_hash(value: &[u8]) -> [u8; 32] {
    keccak256([phalanx_types::tag::EVM_FACT_VALUE, value].concat()).0
}

/// This release's registry contract as deployed: the offsets of its `governance`
/// immutable, then its runtime code with zeros there (`contracts/build.sh` writes it).
const RUNTIME: &str = include_str!("../contracts/Registry.runtime");

/// [`RUNTIME`] read: the immutable's offsets and the code. Strict: the build writes it,
/// and a broken artifact must fail every check rather than match empty code.
fn runtime() -> Result<&'static (Vec<usize>, Vec<u8>), ProofError> {
    static CODE: std::sync::OnceLock<Option<(Vec<usize>, Vec<u8>)>> = std::sync::OnceLock::new();
    CODE.get_or_init(|| {
        let mut lines = RUNTIME.lines();
        let offsets = lines
            .next()?
            .split(',')
            .map(|o| o.trim().parse().ok())
            .collect::<Option<Vec<usize>>>()?;
        let code = alloy_primitives::hex::decode(lines.next()?.trim()).ok()?;
        let placeholders = offsets.iter().all(|&at| {
            code.get(at..at + 32)
                .is_some_and(|w| w.iter().all(|b| *b == 0))
        });
        (!offsets.is_empty() && !code.is_empty() && placeholders && lines.next().is_none())
            .then_some((offsets, code))
    })
    .as_ref()
    .ok_or_else(|| ProofError::EvmAccount("this build's registry artifact does not read".into()))
}

/// The code hash of this release's registry contract deployed with `governance`: what
/// the account at a registry's address holds.
pub fn registry_code_hash(governance: &[u8; 20]) -> Result<[u8; 32], ProofError> {
    let (offsets, code) = runtime()?;
    let mut code = code.clone();
    for &at in offsets {
        // An address in a 32-byte word: twelve zeros, then its twenty bytes (in range:
        // `runtime` checked every placeholder).
        if let Some(word) = code.get_mut(at + 12..at + 32) {
            word.copy_from_slice(governance);
        }
    }
    Ok(keccak256(&code).0)
}

/// The registry id of the contract at `address` on chain `chain_id`: what contract ids
/// and workers' evidence carry, as the embedded ledger's chain id does.
pub fn registry_id(chain_id: u64, address: &[u8; 20]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(phalanx_types::tag::CHAIN_GENESIS);
    h.update(b"evm");
    h.update(chain_id.to_be_bytes());
    h.update(address);
    h.finalize().into()
}

/// Reads an EVM registry as people pin it: `CHAIN_ID:0xADDRESS` (decimal chain id, 20
/// bytes of hex).
pub fn parse_registry_pin(s: &str) -> Result<(u64, [u8; 20]), String> {
    let bad = || format!("an EVM registry is CHAIN_ID:0xADDRESS, not {s:?}");
    let (chain, address) = s.trim().split_once(':').ok_or_else(bad)?;
    let chain_id = chain.parse::<u64>().map_err(|_| bad())?;
    Ok((chain_id, parse_address(address).ok_or_else(bad)?))
}

/// An address as 40 hex digits, `0x` optional.
pub fn parse_address(s: &str) -> Option<[u8; 20]> {
    let hex = s.trim().strip_prefix("0x").unwrap_or(s.trim());
    if hex.len() != 40 {
        return None;
    }
    let mut out = [0u8; 20];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// A command as the EVM registry orders it, the bytes its command log hashes
/// ([`crate::types::command_log`]'s `tx`): `EVM_COMMAND ‖ contract ‖ epoch ‖ sender ‖
/// sequence ‖ ciphertext`.
pub fn command_record(
    contract: &[u8; 32],
    epoch: Epoch,
    sender: &[u8; 20],
    sequence: u64,
    ciphertext: &[u8],
) -> Vec<u8> {
    [
        phalanx_types::tag::EVM_COMMAND,
        contract,
        &epoch.0.to_be_bytes(),
        sender,
        &sequence.to_be_bytes(),
        ciphertext,
    ]
    .concat()
}

/// What a verifier reads of an Ethereum block header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvmBlock {
    /// Keccak-256 of the header's RLP.
    pub hash: [u8; 32],
    /// The parent block's hash.
    pub parent_hash: [u8; 32],
    /// The root of the state trie after the block.
    pub state_root: [u8; 32],
    /// The block number.
    pub number: u64,
    /// The block's time (Unix seconds).
    pub timestamp: u64,
}

impl EvmBlock {
    /// Reads a header's RLP: a list whose items 0, 3, 8 and 11 are the parent hash, the
    /// state root, the number and the time (every fork's header starts so); the rest
    /// must be well-formed items and nothing may follow the list.
    pub fn decode(rlp: &[u8]) -> Result<Self, ProofError> {
        let bad = |why: &str| ProofError::EvmHeader(why.to_owned());
        if rlp.len() > MAX_HEADER {
            return Err(bad("longer than any block header"));
        }
        let mut buf = rlp;
        let list = alloy_rlp::Header::decode(&mut buf).map_err(|e| bad(&e.to_string()))?;
        if !list.list || list.payload_length != buf.len() {
            return Err(bad("not one RLP list"));
        }
        let mut items = Vec::new();
        while !buf.is_empty() {
            let start = buf;
            let h = alloy_rlp::Header::decode(&mut buf).map_err(|e| bad(&e.to_string()))?;
            let taken = start.len() - buf.len() + h.payload_length;
            let item = start.get(..taken).ok_or_else(|| bad("an item overruns"))?;
            buf = start.get(taken..).ok_or_else(|| bad("an item overruns"))?;
            items.push(item);
        }
        if items.len() < 15 {
            return Err(bad("fewer than 15 fields"));
        }
        let hash32 = |i: usize, what: &str| -> Result<[u8; 32], ProofError> {
            let mut item = items.get(i).copied().unwrap_or_default();
            let v = <B256 as alloy_rlp::Decodable>::decode(&mut item)
                .map_err(|e| bad(&format!("{what}: {e}")))?;
            Ok(v.0)
        };
        let int = |i: usize, what: &str| -> Result<u64, ProofError> {
            let mut item = items.get(i).copied().unwrap_or_default();
            <u64 as alloy_rlp::Decodable>::decode(&mut item)
                .map_err(|e| bad(&format!("{what}: {e}")))
        };
        Ok(Self {
            hash: keccak256(rlp).0,
            parent_hash: hash32(0, "parent hash")?,
            state_root: hash32(3, "state root")?,
            number: int(8, "number")?,
            timestamp: int(11, "timestamp")?,
        })
    }
}

/// The registry account as the state trie holds it, and its proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountProof {
    /// The account's nonce.
    pub nonce: u64,
    /// Its balance (big-endian).
    pub balance: [u8; 32],
    /// The root of its storage trie.
    pub storage_root: [u8; 32],
    /// The hash of its code.
    pub code_hash: [u8; 32],
    /// The trie nodes from the state root to the account.
    pub nodes: Vec<Vec<u8>>,
}

/// One fact's value (`None`: absent) and its storage proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotProof {
    /// The fact's key ([`Fact::key`]).
    pub key: Vec<u8>,
    /// Its value, or `None` for a proof of absence.
    pub value: Option<Vec<u8>>,
    /// The trie nodes from the storage root to the slot.
    pub nodes: Vec<Vec<u8>>,
}

/// A block header and proofs of the registry's facts at it (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvmProof {
    /// The chain id the proof claims (see the module doc).
    pub chain_id: u64,
    /// The registry contract's address.
    pub registry: [u8; 20],
    /// Its governance account (an immutable of its code, which the proof checks).
    pub governance: [u8; 20],
    /// The block header, RLP.
    pub header: Vec<u8>,
    /// The registry account at that block.
    pub account: AccountProof,
    /// The facts.
    pub facts: Vec<SlotProof>,
}

/// What a checked [`EvmProof`] proves: facts of the registry at a block (read through
/// [`ProvenFacts`], which it dereferences to).
#[derive(Debug, Clone)]
pub struct EvmVerified {
    /// The block the facts hold at.
    pub block: EvmBlock,
    /// The registry's id ([`registry_id`] of the proof's chain id and address).
    pub registry_id: [u8; 32],
    /// Its governance account.
    pub governance: [u8; 20],
    facts: ProvenFacts,
}

impl EvmVerified {
    /// The facts of `other` added to these: both must be proven at the same block.
    pub fn merge(&mut self, other: EvmVerified) -> Result<(), ProofError> {
        if other.block != self.block || other.registry_id != self.registry_id {
            return Err(ProofError::TwoHeaders(
                self.block.number,
                other.block.number,
            ));
        }
        self.facts.0.extend(other.facts.0);
        Ok(())
    }
}

impl std::ops::Deref for EvmVerified {
    type Target = ProvenFacts;

    fn deref(&self) -> &ProvenFacts {
        &self.facts
    }
}

fn nodes(ns: &[Vec<u8>]) -> Vec<Bytes> {
    ns.iter().map(|n| Bytes::copy_from_slice(n)).collect()
}

impl EvmProof {
    /// The block the proof claims to be at, unverified: a caller that trusts its own node
    /// asks it for this number's hash, then [`Self::verify`]s with that.
    pub fn block(&self) -> Result<EvmBlock, ProofError> {
        EvmBlock::decode(&self.header)
    }

    /// Checks the proof against `trusted`, the hash of a block the caller trusts (see the
    /// module doc).
    pub fn verify(&self, trusted: &[u8; 32]) -> Result<EvmVerified, ProofError> {
        let block = self.block()?;
        if block.hash != *trusted {
            return Err(ProofError::UntrustedBlock {
                number: block.number,
                hash: crate::hex(&block.hash),
                trusted: crate::hex(trusted),
            });
        }
        let a = &self.account;
        let account = TrieAccount::new(
            a.nonce,
            U256::from_be_bytes(a.balance),
            B256::from(a.storage_root),
            B256::from(a.code_hash),
        );
        let path = Nibbles::unpack(keccak256(self.registry));
        let state_root = B256::from(block.state_root);
        verify_proof(
            state_root,
            path,
            Some(alloy_rlp::encode(account)),
            &nodes(&a.nodes),
        )
        .map_err(|e| {
            let address = crate::hex(&self.registry);
            ProofError::EvmAccount(
                match verify_proof(state_root, path, None, &nodes(&a.nodes)) {
                    Ok(()) => format!("there is no account 0x{address} at block {}", block.number),
                    Err(_) => format!("0x{address}: {e}"),
                },
            )
        })?;
        if a.code_hash != registry_code_hash(&self.governance)? {
            return Err(ProofError::NotTheRegistry {
                address: crate::hex(&self.registry),
                governance: crate::hex(&self.governance),
            });
        }
        let mut proven = BTreeMap::new();
        for f in &self.facts {
            let slot = fact_slot(&f.key);
            let expected = f
                .value
                .as_deref()
                .map(|v| alloy_rlp::encode(U256::from_be_bytes(fact_value_hash(v))));
            let path = Nibbles::unpack(keccak256(slot));
            let root = B256::from(a.storage_root);
            verify_proof(root, path, expected, &nodes(&f.nodes))
                .or_else(|e| match f.value {
                    // A slot set to zero is absent to the EVM either way: some nodes
                    // (anvil) keep it in the trie as a zero leaf (RLP 0x80) rather than
                    // removing it.
                    None => {
                        verify_proof(root, path, Some(vec![0x80]), &nodes(&f.nodes)).map_err(|_| e)
                    }
                    Some(_) => Err(e),
                })
                .map_err(|e| ProofError::BadEvmFact {
                    fact: printable(&f.key),
                    why: e.to_string(),
                })?;
            proven.insert(f.key.clone(), f.value.clone());
        }
        Ok(EvmVerified {
            block,
            registry_id: registry_id(self.chain_id, &self.registry),
            governance: self.governance,
            facts: ProvenFacts(proven),
        })
    }
}

/// Most blocks one [`EvmPage`] spans.
pub const MAX_PAGE_BLOCKS: u64 = 256;

/// The last block a follower applied: its number and hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EvmCheckpoint {
    /// The block number.
    pub number: u64,
    /// Its hash.
    pub hash: [u8; 32],
}

/// A command as the EVM registry logged it (its `CommandSubmitted` log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvmCommand {
    /// The block that ordered it.
    pub block: u64,
    /// That block's hash, as the log names it.
    pub block_hash: [u8; 32],
    /// The log's index in the block.
    pub log_index: u64,
    /// Whose contract key it is sealed to.
    pub epoch: Epoch,
    /// The sending account.
    pub sender: [u8; 20],
    /// Its sequence number in the contract's log.
    pub sequence: u64,
    /// HPKE encapsulated key ‖ AES-256-GCM ciphertext.
    pub ciphertext: Vec<u8>,
}

/// One contract's commands in the blocks after a checkpoint: the headers of those blocks
/// (each the parent of the next), the commands their logs hold, and a proof of the
/// contract's command count and log head at the last block. What a worker following an
/// EVM registry fetches, only as far as its confirmation depth.
///
/// What it does not prove: that these headers are the chain's. An Ethereum header
/// carries no signature a client could check without following consensus (a beacon
/// light client, not here), so a follower believes its node about which blocks exist —
/// and about how deep they are. Against an honest node the depth keeps shallow
/// reorganisations out and the checkpoint catches deep ones; against a lying node it
/// does not. Its logs, though, are checked: the commands of the blocks it names must be
/// exactly the proven log. A worker fed an invented chain answers at blocks that no
/// user's own node knows, and verifiers, which check the answer's block against their
/// own node or pin ([`EvmProof::verify`]), refuse those answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvmPage {
    /// The blocks after the checkpoint, RLP, in order.
    pub headers: Vec<Vec<u8>>,
    /// The contract's commands in them, in (block, log index) order.
    pub commands: Vec<EvmCommand>,
    /// [`Fact::Commands`] at the last block.
    pub proof: EvmProof,
}

/// What a checked [`EvmPage`] proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedEvmPage {
    /// The page's last block: the next page starts after it.
    pub checkpoint: EvmCheckpoint,
    /// Its time.
    pub timestamp: u64,
    /// The contract's command count after the page.
    pub count: u64,
    /// Its command log head after the page.
    pub head: [u8; 32],
    /// Each command's block time, in order (the log hashes it in).
    pub times: Vec<i64>,
}

impl EvmPage {
    /// Checks the page for `contract`'s commands on the registry `registry_id`, after
    /// `from`, where the contract's count was `count` and its log head `head`:
    ///
    /// 1. the first header is the child of `from` — else the block `from` names is no
    ///    longer in the node's chain, a reorganisation deeper than the follower's
    ///    confirmation depth ([`ProofError::Reorg`]), which it must not paper over —
    ///    and each next header the child of the one before;
    /// 2. the proof holds at the last header, for this registry;
    /// 3. every command lies in one of these blocks (the log's block hash is the
    ///    header's), in (block, log index) order, with the next sequence number, and the
    ///    log they extend `head` into ([`crate::types::command_log`] over
    ///    [`command_record`]) is exactly the proven one — so a node that leaves a log
    ///    out, adds one, alters or reorders one is caught.
    pub fn verify(
        &self,
        from: &EvmCheckpoint,
        registry_id: &[u8; 32],
        contract: &[u8; 32],
        count: u64,
        head: &[u8; 32],
    ) -> Result<VerifiedEvmPage, ProofError> {
        let feed = |what: String| ProofError::Feed(what);
        if self.headers.is_empty() || self.headers.len() as u64 > MAX_PAGE_BLOCKS {
            return Err(feed(format!(
                "a page spans 1 to {MAX_PAGE_BLOCKS} blocks, not {}",
                self.headers.len()
            )));
        }
        let mut blocks: Vec<EvmBlock> = Vec::with_capacity(self.headers.len());
        for rlp in &self.headers {
            let b = EvmBlock::decode(rlp)?;
            let parent = blocks.last().map_or(*from, |p| EvmCheckpoint {
                number: p.number,
                hash: p.hash,
            });
            if b.parent_hash != parent.hash || Some(b.number) != parent.number.checked_add(1) {
                return Err(match blocks.is_empty() {
                    true => ProofError::Reorg {
                        number: from.number,
                        hash: crate::hex(&from.hash),
                    },
                    false => feed(format!(
                        "block {} is not the child of the one before",
                        b.number
                    )),
                });
            }
            blocks.push(b);
        }
        let Some(last) = blocks.last() else {
            return Err(feed("an empty page".into()));
        };
        let proven = self.proof.verify(&last.hash)?;
        if proven.registry_id != *registry_id {
            return Err(feed(format!(
                "the proof is of registry {}, not {}",
                crate::hex(&proven.registry_id),
                crate::hex(registry_id)
            )));
        }
        let (proven_count, proven_head) = proven
            .read(&Fact::Commands(*contract), crate::facts::read_commands)?
            .ok_or_else(|| feed("the contract has no command log".into()))?;
        let mut next = (count, *head);
        let mut at = (from.number, 0u64);
        let mut times = Vec::with_capacity(self.commands.len());
        for (i, c) in self.commands.iter().enumerate() {
            let block = c
                .block
                .checked_sub(from.number + 1)
                .and_then(|k| blocks.get(usize::try_from(k).ok()?))
                .filter(|b| b.hash == c.block_hash)
                .ok_or_else(|| feed(format!("command {i} is not in the page's blocks")))?;
            if (c.block, c.log_index) <= at || c.sequence != next.0 {
                return Err(feed(format!("command {i} is out of order")));
            }
            at = (c.block, c.log_index);
            let record = command_record(contract, c.epoch, &c.sender, c.sequence, &c.ciphertext);
            let time = i64::try_from(block.timestamp).map_err(|_| feed("a block time".into()))?;
            times.push(time);
            next = (
                next.0
                    .checked_add(1)
                    .ok_or_else(|| feed("the command count overflows".into()))?,
                crate::types::command_log(&next.1, block.number, time, &record),
            );
        }
        if next != (proven_count, proven_head) {
            return Err(feed(format!(
                "{} commands from {count} do not make the proven log of {proven_count} \
                 commands at block {}",
                self.commands.len(),
                last.number
            )));
        }
        Ok(VerifiedEvmPage {
            checkpoint: EvmCheckpoint {
                number: last.number,
                hash: last.hash,
            },
            timestamp: last.timestamp,
            count: proven_count,
            head: proven_head,
            times,
        })
    }
}

fn put_nodes(w: &mut Writer, ns: &[Vec<u8>]) {
    w.list(ns, |w, n| w.bytes(n));
}

fn take_nodes(r: &mut Reader<'_>) -> Result<Vec<Vec<u8>>, DecodeError> {
    r.list("trie nodes", MAX_NODES, |r| {
        Ok::<_, DecodeError>(r.bytes("trie node", MAX_NODE)?.to_vec())
    })
}

impl Codec for EvmProof {
    const NAME: &'static str = "EVM proof";
    type Error = DecodeError;

    fn encode(&self, w: &mut Writer) {
        w.u64(self.chain_id);
        w.raw(&self.registry);
        w.raw(&self.governance);
        w.bytes(&self.header);
        let a = &self.account;
        w.u64(a.nonce);
        w.raw(&a.balance);
        w.raw(&a.storage_root);
        w.raw(&a.code_hash);
        put_nodes(w, &a.nodes);
        w.list(&self.facts, |w, f| {
            w.bytes(&f.key);
            match &f.value {
                Some(v) => {
                    w.u8(1);
                    w.bytes(v);
                }
                None => w.u8(0),
            }
            put_nodes(w, &f.nodes);
        });
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let chain_id = r.u64("chain id")?;
        let registry = r.array("registry address")?;
        let governance = r.array("governance address")?;
        let header = r.bytes("block header", MAX_HEADER)?.to_vec();
        let account = AccountProof {
            nonce: r.u64("account nonce")?,
            balance: r.array("account balance")?,
            storage_root: r.array("storage root")?,
            code_hash: r.array("code hash")?,
            nodes: take_nodes(r)?,
        };
        let facts = r.list("facts", MAX_FACTS, |r| {
            let key = r.bytes("fact key", MAX_FACT_BYTES)?.to_vec();
            let value = match r.u8("fact presence")? {
                0 => None,
                1 => Some(r.bytes("fact value", MAX_FACT_BYTES)?.to_vec()),
                _ => return Err(r.invalid("fact presence")),
            };
            Ok(SlotProof {
                key,
                value,
                nodes: take_nodes(r)?,
            })
        })?;
        Ok(Self {
            chain_id,
            registry,
            governance,
            header,
            account,
            facts,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use alloy_rlp::Encodable;

    /// A header's RLP with `fields` items: the parent hash, three hashes, the number 7 at
    /// item 8 and the time 1,700,000,000 at item 11, empty strings elsewhere.
    fn header(fields: usize) -> Vec<u8> {
        let mut payload = Vec::new();
        for i in 0..fields {
            match i {
                0 => B256::repeat_byte(1).encode(&mut payload),
                3 => B256::repeat_byte(3).encode(&mut payload),
                8 => 7u64.encode(&mut payload),
                11 => 1_700_000_000u64.encode(&mut payload),
                _ => Bytes::new().encode(&mut payload),
            }
        }
        let mut out = Vec::new();
        alloy_rlp::Header {
            list: true,
            payload_length: payload.len(),
        }
        .encode(&mut out);
        out.extend(payload);
        out
    }

    #[test]
    fn a_header_reads_its_fields_and_hash() {
        let rlp = header(20);
        let b = EvmBlock::decode(&rlp).unwrap();
        assert_eq!(b.parent_hash, [1; 32]);
        assert_eq!(b.state_root, [3; 32]);
        assert_eq!((b.number, b.timestamp), (7, 1_700_000_000));
        assert_eq!(b.hash, keccak256(&rlp).0);
    }

    #[test]
    fn malformed_headers_are_refused_without_panicking() {
        let rlp = header(16);
        for cut in 0..rlp.len() {
            assert!(EvmBlock::decode(&rlp[..cut]).is_err(), "cut at {cut}");
        }
        assert!(EvmBlock::decode(&[rlp.as_slice(), &[0x80]].concat()).is_err());
        assert!(EvmBlock::decode(&header(14)).is_err(), "too few fields");
        assert!(EvmBlock::decode(&header(5000)).is_err(), "too long");
        // A string, not a list; a state root of 31 bytes.
        assert!(EvmBlock::decode(&alloy_rlp::encode(Bytes::from(vec![0; 40]))).is_err());
        let mut short = rlp.clone();
        let at = short
            .windows(33)
            .position(|w| w == [[0xa0].as_slice(), &[3; 32]].concat())
            .unwrap();
        short[at] = 0x9f;
        short.remove(at + 1);
        assert!(EvmBlock::decode(&short).is_err());
        for i in 0..rlp.len() {
            let mut b = rlp.clone();
            b[i] ^= 0xff;
            let _ = EvmBlock::decode(&b);
        }
    }

    #[test]
    fn the_registry_artifact_reads_and_governance_changes_the_code() {
        let (offsets, code) = runtime().unwrap();
        assert_eq!(offsets.len(), 3);
        assert!(
            code.len() > 20_000 && code.len() <= 24_576,
            "{}",
            code.len()
        );
        let (a, b) = (
            registry_code_hash(&[1; 20]).unwrap(),
            registry_code_hash(&[2; 20]).unwrap(),
        );
        assert_ne!(a, b);
        assert_eq!(a, registry_code_hash(&[1; 20]).unwrap());
    }

    #[test]
    fn registry_pins_read_exactly() {
        let addr = "0x5FbDB2315678afecb367f032d93F642f64180aa3";
        let (chain, a) = parse_registry_pin(&format!("31337:{addr}")).unwrap();
        assert_eq!((chain, a[0], a[19]), (31337, 0x5f, 0xa3));
        for bad in [
            "",
            "31337",
            "x:0x5FbDB2315678afecb367f032d93F642f64180aa3",
            "31337:0x5FbDB2315678afecb367f032d93F642f64180a",
            "31337:0x5FbDB2315678afecb367f032d93F642f64180aa3aa",
            "31337:0xzFbDB2315678afecb367f032d93F642f64180aa3",
            "-1:0x5FbDB2315678afecb367f032d93F642f64180aa3",
            "31337:0x5FbDB2315678afecb367f032d93F642f64180aé",
        ] {
            assert!(parse_registry_pin(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn slots_and_records_are_domain_separated() {
        assert_ne!(fact_slot(b"rule"), fact_value_hash(b"rule"));
        assert_ne!(fact_slot(b"worker/a"), fact_slot(b"worker/b"));
        let r = command_record(&[1; 32], Epoch(2), &[3; 20], 4, b"sealed");
        assert!(r.starts_with(phalanx_types::tag::EVM_COMMAND));
        assert_eq!(
            r.len(),
            phalanx_types::tag::EVM_COMMAND.len() + 32 + 8 + 20 + 8 + 6
        );
        assert_ne!(registry_id(1, &[0; 20]), registry_id(2, &[0; 20]));
    }
}
