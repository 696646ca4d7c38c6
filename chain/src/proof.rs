//! A header and proofs: what stands for the whole registry in an answer's verification
//! bundle. Sans-IO.
//!
//! A [`HeaderProof`] carries the genesis block (its parameters; no transactions), one
//! later block's header with the authority's signature, and proofs of a few facts
//! ([`crate::facts`]) against that header's state root. [`HeaderProof::verify`] checks,
//! in order, and trusting only a pinned genesis hash:
//!
//! 1. the genesis block hashes to the pin, at height 0, with parameters whose hash is
//!    its chain id: this names the authority key;
//! 2. the header belongs to that chain (its chain id), and the authority signed it;
//! 3. each fact's proof shows its value — or its absence — under the header's state
//!    root, for exactly the key it names.
//!
//! What it proves is a [`Verified`]: the facts at that height, read back through the
//! strict decoders of [`crate::facts`]; asking for a fact the proof did not carry is an
//! error ([`ProofError::Missing`]), never an absence. Its cost does not grow with the
//! chain: one signature and a few proofs of about log₂(facts) hashes each, whatever the
//! height (`pruntime/verify/benches/registry.rs` measures it).

use crate::commit::{self, CommitError};
use crate::facts::{self, ContractFact, Fact};
use crate::state::State;
use crate::types::{
    Allowed, Block, ContractKey, EpochKey, EvidenceRule, Gatekeeper, Genesis, Header, SignedHeader,
    SignedTx, Worker,
};
use phalanx_types::Epoch;
use phalanx_types::codec::{Codec, DecodeError, Reader, Writer};
use std::collections::BTreeMap;

/// Most facts one proof carries.
pub const MAX_FACTS: usize = 64;

/// The height that asks a node for proofs at its newest block.
pub const LATEST: u64 = u64::MAX;
/// Largest fact key or value carried (a gatekeeper set of the most members fits).
const MAX_FACT_BYTES: usize = 2 * 1024 * 1024;
/// Largest genesis block carried (its trust roots are a few certificates).
const MAX_GENESIS: usize = 64 * 1024;

/// Why a header proof was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    /// The genesis block is not the pinned one, or not a genesis.
    #[error("genesis: {0}")]
    Genesis(String),
    /// The header names another chain.
    #[error("the header belongs to chain {header}, not to the pinned genesis's {pinned}")]
    OtherChain {
        /// The header's chain id (hex).
        header: String,
        /// The pinned chain's (hex).
        pinned: String,
    },
    /// The authority did not sign the header.
    #[error("the header at height {0} does not carry the chain authority's signature")]
    BadSignature(u64),
    /// A fact's proof does not hold under the header's state root.
    #[error("the proof of fact {fact} does not hold: {why}")]
    BadFact {
        /// The fact's key (printable).
        fact: String,
        /// Why.
        why: CommitError,
    },
    /// A fact the check needs is not proven here.
    #[error("no proof of fact {0} in the bundle")]
    Missing(String),
    /// Proofs at two headers read as one.
    #[error("proofs at two headers (heights {0} and {1}) cannot be read as one")]
    TwoHeaders(u64, u64),
    /// A command feed does not make the proven command log.
    #[error("command feed: {0}")]
    Feed(String),
    /// An EVM block header does not read.
    #[error("EVM block header: {0}")]
    EvmHeader(String),
    /// The EVM block is not the one the caller trusts.
    #[error("EVM block {number} is {hash}, not the trusted {trusted}")]
    UntrustedBlock {
        /// The header's number.
        number: u64,
        /// Its hash (hex).
        hash: String,
        /// The trusted hash (hex).
        trusted: String,
    },
    /// The registry account's proof does not hold under the EVM block's state root.
    #[error("the registry account's proof does not hold: {0}")]
    EvmAccount(String),
    /// The account at the registry's address runs other code than this release's
    /// registry contract with that governance.
    #[error(
        "the contract at 0x{address} is not this release's registry governed by 0x{governance} \
         (its code differs)"
    )]
    NotTheRegistry {
        /// The address (hex).
        address: String,
        /// The governance the proof names (hex).
        governance: String,
    },
    /// A fact's storage proof does not hold under the registry's storage root.
    #[error("the storage proof of fact {fact} does not hold: {why}")]
    BadEvmFact {
        /// The fact's key (printable).
        fact: String,
        /// Why.
        why: String,
    },
    /// The block a follower applied is no longer in the node's chain.
    #[error(
        "EVM block {number} ({hash}), already applied, is no longer in the node's chain: a \
         reorganisation deeper than the confirmation depth, or a node lying or out of sync \
         (stopped rather than diverge)"
    )]
    Reorg {
        /// The applied block's number.
        number: u64,
        /// Its hash (hex).
        hash: String,
    },
    /// A proven fact's value does not decode.
    #[error("fact {fact} does not decode: {why}")]
    BadValue {
        /// The fact's key (printable).
        fact: String,
        /// Why.
        why: DecodeError,
    },
}

/// A fact key as people read it: its ASCII prefix, then hex.
pub fn printable(key: &[u8]) -> String {
    let split = key
        .iter()
        .position(|b| *b == b'/')
        .map_or(key.len(), |i| i + 1);
    let (name, rest) = key.split_at(split);
    format!("{}{}", String::from_utf8_lossy(name), crate::hex(rest))
}

/// One fact's value (`None`: absent) and its proof against a state root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactProof {
    /// The fact's key ([`Fact::key`]).
    pub key: Vec<u8>,
    /// Its value, or `None` for a proof of absence.
    pub value: Option<Vec<u8>>,
    /// The proof ([`commit::verify`]).
    pub proof: Vec<u8>,
}

impl Codec for FactProof {
    const NAME: &'static str = "fact proof";
    type Error = DecodeError;

    fn encode(&self, w: &mut Writer) {
        w.bytes(&self.key);
        match &self.value {
            Some(v) => {
                w.u8(1);
                w.bytes(v);
            }
            None => w.u8(0),
        }
        w.bytes(&self.proof);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let key = r.bytes("fact key", MAX_FACT_BYTES)?.to_vec();
        let value = match r.u8("fact presence")? {
            0 => None,
            1 => Some(r.bytes("fact value", MAX_FACT_BYTES)?.to_vec()),
            _ => return Err(r.invalid("fact presence")),
        };
        let proof = r.bytes("fact proof", commit::MAX_PROOF)?.to_vec();
        Ok(Self { key, value, proof })
    }
}

/// The genesis, one signed header, and proofs of facts at it (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderProof {
    /// The genesis block (parameters, no transactions).
    pub genesis: Block,
    /// The header the facts are proven at, signed by the authority.
    pub header: SignedHeader,
    /// The facts.
    pub facts: Vec<FactProof>,
}

impl Codec for HeaderProof {
    const NAME: &'static str = "header proof";
    type Error = DecodeError;

    fn encode(&self, w: &mut Writer) {
        self.put(w, true);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Self::take(r, None)
    }
}

/// The lean encoding of what carries a [`HeaderProof`]: the same bytes with the genesis
/// block left empty, for a client that holds the pinned genesis (about a kilobyte less a
/// proof). Decoding fills in the client's copy, which the check still compares with the
/// pin.
pub trait Lean: Codec<Error = DecodeError> {
    /// Encodes it, the genesis block as empty bytes unless `with_genesis`.
    fn put(&self, w: &mut Writer, with_genesis: bool);

    /// Decodes either form; the lean one takes `genesis`.
    fn take(r: &mut Reader<'_>, genesis: Option<&Block>) -> Result<Self, DecodeError>;

    /// The lean encoding when `lean`, else the full one.
    fn to_wire(&self, lean: bool) -> Vec<u8> {
        let mut w = Writer::default();
        self.put(&mut w, !lean);
        w.0
    }

    /// Decodes either encoding; the lean one needs the client's `genesis`.
    fn from_wire(bytes: &[u8], genesis: Option<&Block>) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, Self::NAME);
        let out = Self::take(&mut r, genesis)?;
        r.finish()?;
        Ok(out)
    }

    /// The lean encoding.
    fn to_lean_bytes(&self) -> Vec<u8> {
        self.to_wire(true)
    }

    /// Decodes the lean encoding (or the full one), with the client's `genesis`.
    fn from_lean_bytes(bytes: &[u8], genesis: &Block) -> Result<Self, DecodeError> {
        Self::from_wire(bytes, Some(genesis))
    }
}

impl Lean for HeaderProof {
    fn put(&self, w: &mut Writer, with_genesis: bool) {
        match with_genesis {
            true => w.bytes(&self.genesis.encode()),
            false => w.bytes(&[]),
        }
        Codec::encode(&self.header, w);
        w.list(&self.facts, |w, f| Codec::encode(f, w));
    }

    fn take(r: &mut Reader<'_>, genesis: Option<&Block>) -> Result<Self, DecodeError> {
        let bytes = r.bytes("genesis block", MAX_GENESIS)?;
        let genesis = match (bytes.is_empty(), genesis) {
            (true, Some(g)) => g.clone(),
            _ => Block::decode(bytes)?,
        };
        let header = SignedHeader::read(r)?;
        let facts = r.list("facts", MAX_FACTS, FactProof::read)?;
        Ok(Self {
            genesis,
            header,
            facts,
        })
    }
}

impl HeaderProof {
    /// Proofs of the facts `keys` ([`Fact::key`]) at `block` (a block of `state`'s
    /// chain, at most its height), with the chain's `genesis` block: what a bundle's
    /// producer — the ledger's node, the devnet — makes.
    pub fn at(
        state: &State,
        genesis: &Block,
        block: &Block,
        keys: &[Vec<u8>],
    ) -> Result<Self, CommitError> {
        if keys.len() > MAX_FACTS {
            return Err(CommitError::Tree(format!(
                "{} facts asked, at most {MAX_FACTS}",
                keys.len()
            )));
        }
        let facts = keys
            .iter()
            .map(|key| {
                let (value, proof) = state.prove_at(key, block.height)?;
                Ok(FactProof {
                    key: key.clone(),
                    value,
                    proof,
                })
            })
            .collect::<Result<Vec<_>, CommitError>>()?;
        Ok(Self {
            genesis: genesis.clone(),
            header: block.signed_header(),
            facts,
        })
    }

    /// Checks the proof against the pinned genesis hash (see the module doc).
    pub fn verify(&self, pinned: &[u8; 32]) -> Result<Verified, ProofError> {
        // The pin covers the genesis header; its chain id, the parameters. Nothing else
        // of the genesis is read here (its own state root and trust roots are the
        // registry's business: the facts read below are proven at the later header).
        let g = &self.genesis;
        let hash = g.hash();
        if hash != *pinned {
            return Err(ProofError::Genesis(format!(
                "block {} is not the pinned genesis {}",
                crate::hex(&hash),
                crate::hex(pinned)
            )));
        }
        let params = match &g.genesis {
            Some(p) if g.height == 0 && g.txs.is_empty() && g.chain_id == p.chain_id() => p,
            _ => return Err(ProofError::Genesis("not a genesis block".into())),
        };
        let h = &self.header.header;
        if h.chain_id != g.chain_id {
            return Err(ProofError::OtherChain {
                header: crate::hex(&h.chain_id),
                pinned: crate::hex(&g.chain_id),
            });
        }
        if !h.verify_signature(&params.authority, &self.header.signature) {
            return Err(ProofError::BadSignature(h.height));
        }
        let mut proven = BTreeMap::new();
        for f in &self.facts {
            commit::verify(&h.state_root, &f.key, f.value.as_deref(), &f.proof).map_err(|why| {
                ProofError::BadFact {
                    fact: printable(&f.key),
                    why,
                }
            })?;
            proven.insert(f.key.clone(), f.value.clone());
        }
        Ok(Verified {
            genesis: params.clone(),
            header: h.clone(),
            facts: ProvenFacts(proven),
        })
    }
}

/// What a checked [`HeaderProof`] proves: a header of the pinned chain and facts at it
/// (read through [`ProvenFacts`], which it dereferences to).
#[derive(Debug, Clone)]
pub struct Verified {
    /// The chain's genesis parameters.
    pub genesis: Genesis,
    /// The header the facts hold at.
    pub header: Header,
    facts: ProvenFacts,
}

impl std::ops::Deref for Verified {
    type Target = ProvenFacts;

    fn deref(&self) -> &ProvenFacts {
        &self.facts
    }
}

impl Verified {
    /// The facts of `other` added to these: both must be proven at the same header.
    pub fn merge(&mut self, other: Verified) -> Result<(), ProofError> {
        if other.header != self.header {
            return Err(ProofError::TwoHeaders(
                self.header.height,
                other.header.height,
            ));
        }
        self.facts.0.extend(other.facts.0);
        Ok(())
    }
}

/// Facts proven at one header, whatever the backend ([`Verified`] on the embedded
/// ledger, [`crate::evm_proof::EvmVerified`] on an EVM chain), read back through the
/// strict decoders of [`crate::facts`].
#[derive(Debug, Clone, Default)]
pub struct ProvenFacts(pub(crate) BTreeMap<Vec<u8>, Option<Vec<u8>>>);

impl ProvenFacts {
    /// `fact`'s proven value (`Ok(None)`: proven absent).
    pub fn fact(&self, fact: &Fact) -> Result<Option<&[u8]>, ProofError> {
        let key = fact.key();
        self.0
            .get(&key)
            .map(Option::as_deref)
            .ok_or_else(|| ProofError::Missing(printable(&key)))
    }

    /// `fact`'s proven value read by `decode` (`Ok(None)`: proven absent).
    pub fn read<T>(
        &self,
        fact: &Fact,
        decode: impl FnOnce(&[u8]) -> Result<T, DecodeError>,
    ) -> Result<Option<T>, ProofError> {
        self.fact(fact)?
            .map(|v| {
                decode(v).map_err(|why| ProofError::BadValue {
                    fact: printable(&fact.key()),
                    why,
                })
            })
            .transpose()
    }

    /// The newest commitment to contract `id`'s state, if any.
    pub fn state(
        &self,
        id: &[u8; 32],
    ) -> Result<Option<crate::types::StateCommitment>, ProofError> {
        self.read(&Fact::State(*id), |v| facts::read_state(*id, v))
    }

    /// The worker registered under `identity_key`, if any.
    pub fn worker(&self, identity_key: &[u8]) -> Result<Option<Worker>, ProofError> {
        self.read(&Fact::Worker(identity_key.to_vec()), |v| {
            facts::read_worker(identity_key, v)
        })
    }

    /// The allow-list entry of `measurement`, if allowed.
    pub fn allowed(&self, measurement: &[u8]) -> Result<Option<Allowed>, ProofError> {
        self.read(&Fact::Allowed(measurement.to_vec()), |v| {
            facts::read_allowed(measurement, v)
        })
    }

    /// The contract `id`, if deployed.
    pub fn contract(&self, id: &[u8; 32]) -> Result<Option<ContractFact>, ProofError> {
        self.read(&Fact::Contract(*id), facts::read_contract)
    }

    /// The gatekeeper set (proven absent before governance names one: empty).
    pub fn gatekeepers(&self) -> Result<Vec<Gatekeeper>, ProofError> {
        Ok(self
            .read(&Fact::Gatekeepers, facts::read_gatekeepers)?
            .map(|(_, set)| set)
            .unwrap_or_default())
    }

    /// The keys of `epoch`, if published.
    pub fn epoch(&self, epoch: Epoch) -> Result<Option<EpochKey>, ProofError> {
        self.read(&Fact::Epoch(epoch), |v| facts::read_epoch(epoch, v))
    }

    /// Contract `id`'s keys of `epoch`, if published.
    pub fn contract_key(
        &self,
        id: &[u8; 32],
        epoch: Epoch,
    ) -> Result<Option<ContractKey>, ProofError> {
        self.read(&Fact::ContractKey(*id, epoch), |v| {
            facts::read_contract_key(*id, epoch, v)
        })
    }

    /// The evidence rule in force (always present).
    pub fn rule(&self) -> Result<EvidenceRule, ProofError> {
        self.read(&Fact::Rule, facts::read_rule)?
            .ok_or_else(|| ProofError::Missing("rule (proven absent)".into()))
    }
}

/// Most commands one [`CommandPage`] carries.
pub const MAX_PAGE_COMMANDS: usize = 4096;

/// A command as the registry ordered it: its block's height and time, and the signed
/// transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandAt {
    /// The block that ordered it.
    pub height: u64,
    /// That block's time.
    pub timestamp: i64,
    /// The signed transaction (a `Tx::Command`).
    pub tx: SignedTx,
}

/// One contract's commands from some sequence number on, ending at a block boundary,
/// with a proof of the contract's command count and log head
/// ([`crate::types::command_log`]) at the block of the last one (or, when there are
/// none, at the latest block): what a worker serving one contract fetches instead of
/// every block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandPage {
    /// The commands, in order.
    pub commands: Vec<CommandAt>,
    /// The proof of [`Fact::Commands`] at the header it ends at.
    pub proof: HeaderProof,
}

impl Codec for CommandPage {
    const NAME: &'static str = "command page";
    type Error = DecodeError;

    fn encode(&self, w: &mut Writer) {
        self.put(w, true);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Self::take(r, None)
    }
}

impl Lean for CommandPage {
    fn put(&self, w: &mut Writer, with_genesis: bool) {
        w.list(&self.commands, |w, c| {
            w.u64(c.height);
            w.u64(c.timestamp as u64);
            Codec::encode(&c.tx, w);
        });
        self.proof.put(w, with_genesis);
    }

    fn take(r: &mut Reader<'_>, genesis: Option<&Block>) -> Result<Self, DecodeError> {
        let commands = r.list("commands", MAX_PAGE_COMMANDS, |r| {
            Ok(CommandAt {
                height: r.u64("height")?,
                timestamp: r.u64("timestamp")? as i64,
                tx: SignedTx::read(r)?,
            })
        })?;
        Ok(Self {
            commands,
            proof: HeaderProof::take(r, genesis)?,
        })
    }
}

/// What a checked [`CommandPage`] proves.
#[derive(Debug, Clone)]
pub struct VerifiedPage {
    /// The contract's command count after the page (the next page starts here).
    pub count: u64,
    /// Its command log head after the page.
    pub head: [u8; 32],
    /// The header the count and head are proven at.
    pub header: Header,
    /// Each sender's last nonce in the page.
    pub nonces: BTreeMap<Vec<u8>, u64>,
}

impl CommandPage {
    /// Checks the page against the pinned genesis, for `contract`'s commands from
    /// sequence `from`, whose log head there is `head` (zeros at 0): the proof holds, every
    /// command is one of `contract`'s, in order of blocks no later than the proof's, and
    /// the log they extend `head` into is exactly the proven one, with the proven count
    /// — so nothing was left out, added, changed or reordered.
    pub fn verify(
        &self,
        pinned: &[u8; 32],
        contract: &[u8; 32],
        from: u64,
        head: &[u8; 32],
    ) -> Result<VerifiedPage, ProofError> {
        self.check(&self.proof.verify(pinned)?, contract, from, head)
    }

    /// [`Self::verify`] with the page's proof already checked (`proven`: what
    /// [`HeaderProof::verify`] made of [`Self::proof`]).
    pub fn check(
        &self,
        proven: &Verified,
        contract: &[u8; 32],
        from: u64,
        head: &[u8; 32],
    ) -> Result<VerifiedPage, ProofError> {
        let fact = Fact::Commands(*contract);
        // Proven absent: no command yet. The log is empty (its head zeros) if the
        // contract is deployed (its record proven present), so a page from 0 with no
        // commands holds and any other does not; no contract, no feed.
        let (count, log) = match proven.read(&fact, facts::read_commands)? {
            Some(log) => log,
            None if proven.fact(&Fact::Contract(*contract))?.is_some() => (0, [0; 32]),
            None => {
                return Err(ProofError::Feed("the contract has no command log".into()));
            }
        };
        let feed = |what: String| ProofError::Feed(what);
        let mut at = 0u64;
        let mut next = *head;
        // Each sender's commands in this page, by nonce: signed, and never replayed (a
        // follower carries `VerifiedPage::nonces` on to the next page).
        let mut nonces: BTreeMap<Vec<u8>, u64> = BTreeMap::new();
        for (i, c) in self.commands.iter().enumerate() {
            match &c.tx.tx {
                crate::types::Tx::Command(cmd) if cmd.contract == *contract => {}
                _ => return Err(feed(format!("item {i} is not a command of the contract"))),
            }
            if !c.tx.verify(&proven.header.chain_id) {
                return Err(feed(format!("item {i} is not signed by its sender")));
            }
            if nonces.get(&c.tx.signer).is_some_and(|n| c.tx.nonce <= *n) {
                return Err(feed(format!("item {i} replays its sender's nonce")));
            }
            nonces.insert(c.tx.signer.clone(), c.tx.nonce);
            if c.height < at || c.height > proven.header.height {
                return Err(feed(format!("item {i} is out of block order")));
            }
            at = c.height;
            next = crate::types::command_log(&next, c.height, c.timestamp, &c.tx.encode());
        }
        let n = self.commands.len() as u64;
        if from.checked_add(n) != Some(count) || next != log {
            return Err(feed(format!(
                "{n} commands from {from} do not make the proven log of {count} commands at \
                 height {}",
                proven.header.height
            )));
        }
        Ok(VerifiedPage {
            count,
            head: log,
            header: proven.header.clone(),
            nonces,
        })
    }
}
