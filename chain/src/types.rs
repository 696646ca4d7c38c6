//! What the registry holds and the transactions and blocks that change it, with their
//! canonical encodings (the one codec of Phalanx, [`phalanx_types::codec`]: bounded,
//! strict, encoder and decoder side by side in each [`Codec`] impl) and
//! their signatures (ECDSA P-256 over a domain tag, the chain id and the encoding).

use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use phalanx_types::Epoch;
pub use phalanx_types::codec::DecodeError;
use phalanx_types::codec::{Codec, Reader, Writer};
use sha2::{Digest, Sha256};

/// Domain tag of signed transactions.
pub const TX_TAG: &[u8] = phalanx_types::tag::CHAIN_TX;
/// Domain tag of block (header) hashes.
pub const HEADER_TAG: &[u8] = phalanx_types::tag::CHAIN_HEADER;
/// Largest measurement (MRENCLAVE is 32 bytes, MRTD 48).
pub const MAX_MEASUREMENT: usize = 64;
/// Largest key or URL field.
const MAX_FIELD: usize = 512;
/// Most gatekeepers (and certificate confirmations) in one transaction: the threshold
/// codec's bound on any committee.
pub const MAX_GATEKEEPERS: usize = phalanx_threshold::wire::MAX_ITEMS;
/// Most transactions in one block.
pub const MAX_TXS: usize = 1024;

/// A P-256 public key, SEC1 compressed (33 bytes): an account or an identity key.
pub type PublicKey = Vec<u8>;

// ECDSA P-256 verification by ring, keys decompressed once per thread: defined once, in
// `phalanx_types::ecdsa`, for the registry, the tokens and the gatekeepers' tree heads.
pub use phalanx_types::ecdsa::{POINT_CACHE, p256_point, verify_p256, verify_p256_point};

/// The compressed SEC1 encoding of `key`.
pub fn public_key(key: &VerifyingKey) -> PublicKey {
    key.to_sec1_point(true).as_bytes().to_vec()
}

/// A worker as registered: what its evidence proved when the registry checked it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Worker {
    /// Its identity (signing) key, compressed SEC1: also the account that registers it.
    pub identity_key: PublicKey,
    /// Its HPKE public key (SEC1); empty for a worker that receives no sealed keys
    /// (a gatekeeper).
    pub hpke_key: Vec<u8>,
    /// Its tenant id ([`phalanx_ear::tenant`]): the hash of its whole TEE identity, as
    /// computed from the quote.
    pub measurement: Vec<u8>,
    /// SHA-256 of its attestation result (the token the attestation service issued).
    pub attestation_hash: [u8; 32],
    /// When its evidence was checked: the block's timestamp (the ledger verified the
    /// quote at that time; on EVM, the time its endorsers checked it). Evidence ages
    /// from here.
    pub registered_at: i64,
    /// SHA-256 of the registered quote ([`Evidence::quote_hash`]; on EVM, as the
    /// endorsers found it).
    pub quote_hash: [u8; 32],
    /// The TCB status the registry (on EVM: its endorsers) found (`None` for a record
    /// with no known status).
    pub tcb_status: Option<phalanx_dcap::tcb::TcbStatus>,
}

/// What a measurement may be. Every allowed measurement carries exactly one role, and
/// the registry lets each do only its own part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// A pRuntime worker: publishes contract keys, answers users.
    Runtime,
    /// A gatekeeper: joins committees.
    Gatekeeper,
    /// An application tenant: derives its own keys, nothing on the registry.
    App,
}

impl Role {
    /// Its code on the wire (and in the Solidity registry).
    pub fn code(self) -> u8 {
        match self {
            Self::Runtime => 1,
            Self::Gatekeeper => 2,
            Self::App => 3,
        }
    }

    /// The role of a code.
    pub fn from_code(c: u8) -> Option<Self> {
        match c {
            1 => Some(Self::Runtime),
            2 => Some(Self::Gatekeeper),
            3 => Some(Self::App),
            _ => None,
        }
    }

    /// Its name (`pruntime`, `gatekeeper`, `app`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Runtime => "pruntime",
            Self::Gatekeeper => "gatekeeper",
            Self::App => "app",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        [Self::Runtime, Self::Gatekeeper, Self::App]
            .into_iter()
            .find(|r| r.name() == s)
            .ok_or_else(|| format!("role {s:?}: expected pruntime, gatekeeper or app"))
    }
}

/// An allowed measurement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allowed {
    /// The tenant id.
    pub measurement: Vec<u8>,
    /// What it may be.
    pub role: Role,
    /// When governance added it.
    pub added_at: i64,
    /// The block whose governance transaction added it (so a verifier can check that
    /// transaction's signature, not only the authority's word; 0 on EVM, which keeps
    /// its own log).
    pub added_in: u64,
}

/// Largest quote in a registration (a TDX quote with its PCK chain is about 5 KB).
pub const MAX_QUOTE: usize = 16 * 1024;
/// Largest collateral in a registration (the JSON bundle: chains, CRLs, TCB Info, QE
/// Identity; Intel's are about 20 KB).
pub const MAX_COLLATERAL: usize = 128 * 1024;

/// A worker's hardware evidence as the registry checks it: the quote, the collateral
/// it verifies with (the JSON bundle format of `phalanx_dcap::collateral`), and the
/// attestation nonce and runtime data whose binding is the quote's REPORTDATA
/// ([`phalanx_ear::report_data`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    /// The DCAP quote.
    pub quote: Vec<u8>,
    /// The collateral, JSON bundle.
    pub collateral: Vec<u8>,
    /// The attestation service's nonce the quote binds.
    pub nonce: Vec<u8>,
    /// [`phalanx_ear::runtime::WorkerRuntimeData`], encoded.
    pub runtime_data: Vec<u8>,
}

impl Evidence {
    /// SHA-256 of the quote, under its own tag: what the registry records, and what a
    /// verifier compares the quote of a bundle with.
    pub fn quote_hash(quote: &[u8]) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(phalanx_types::tag::QUOTE_HASH);
        h.update(quote);
        h.finalize().into()
    }

    fn put(&self, w: &mut Writer) {
        w.bytes(&self.quote);
        w.bytes(&self.collateral);
        w.bytes(&self.nonce);
        w.bytes(&self.runtime_data);
    }

    fn get(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            quote: r.bytes("quote", MAX_QUOTE)?.to_vec(),
            collateral: r.bytes("collateral", MAX_COLLATERAL)?.to_vec(),
            nonce: r.bytes("attestation nonce", MAX_FIELD)?.to_vec(),
            runtime_data: r.bytes("runtime data", MAX_FIELD)?.to_vec(),
        })
    }
}

/// A registration: what the worker claims (checked against the evidence by the
/// embedded ledger; taken as is by a backend that cannot check evidence) and the
/// evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// The identity key the runtime data names (the signer).
    pub identity_key: PublicKey,
    /// The HPKE key the runtime data names.
    pub hpke_key: Vec<u8>,
    /// The tenant id the quote's TEE identity hashes to.
    pub measurement: Vec<u8>,
    /// SHA-256 of the worker's attestation token (for gatekeepers' peers).
    pub attestation_hash: [u8; 32],
    /// The evidence.
    pub evidence: Evidence,
}

/// The encoding a registration-worker transaction carries (and a gatekeeper's
/// endorsement request).
impl Codec for Registration {
    const NAME: &'static str = "registration";
    type Error = DecodeError;

    fn encode(&self, w: &mut Writer) {
        w.bytes(&self.identity_key);
        w.bytes(&self.hpke_key);
        w.bytes(&self.measurement);
        w.raw(&self.attestation_hash);
        self.evidence.put(w);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            identity_key: r.bytes("identity key", MAX_FIELD)?.to_vec(),
            hpke_key: r.bytes("HPKE key", MAX_FIELD)?.to_vec(),
            measurement: r.bytes("measurement", MAX_MEASUREMENT)?.to_vec(),
            attestation_hash: r.array("attestation hash")?,
            evidence: Evidence::get(r)?,
        })
    }
}

/// A gatekeeper: a registered worker with its index and addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gatekeeper {
    /// Its committee index.
    pub index: u16,
    /// Its identity key (a registered worker's).
    pub identity_key: PublicKey,
    /// Client gRPC URL (release, status).
    pub url: String,
    /// Peer URL (rounds, mutual TLS).
    pub peer_url: String,
}

/// The keys of one epoch as its committee certified them: the master public key, the
/// threshold and the whole public key set (the committee's public shares) that
/// workers check gatekeepers' answers against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpochKey {
    /// The epoch.
    pub epoch: Epoch,
    /// `MPK`, compressed SEC1.
    pub master_public_key: Vec<u8>,
    /// `t`.
    pub threshold: u16,
    /// The public key set ([`phalanx_threshold::wire::public_set_bytes`]).
    pub public_key_set: Vec<u8>,
    /// The round that produced it (its DKG, or the last refresh or reshare).
    pub round_id: [u8; 32],
    /// When it was (last) published.
    pub published_at: i64,
}

/// What a committee signs to put an epoch's keys on the registry: the round's spec,
/// the public key set it ended with, and every participant's confirmation signature
/// (ECDSA P-256 r ‖ s over [`phalanx_threshold::round::confirmation_bytes`]), in the spec's
/// participant order. The same confirmations the members exchange before they install
/// the round: nobody can publish keys the whole committee did not confirm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpochCertificate {
    /// [`phalanx_threshold::round::RoundSpec::encode`].
    pub spec: Vec<u8>,
    /// [`phalanx_threshold::wire::public_set_bytes`].
    pub public_key_set: Vec<u8>,
    /// One signature per participant, in the spec's order.
    pub signatures: Vec<[u8; 64]>,
}

impl EpochCertificate {
    /// The certificate of a round that ended with `public`, from its members'
    /// confirmations (in the spec's participant order; a missing one is left zero and
    /// fails verification).
    pub fn new(
        spec: &phalanx_threshold::round::RoundSpec,
        public: &phalanx_threshold::share::PublicKeySet,
        confirmations: &phalanx_threshold::round::CommitCertificate,
    ) -> Self {
        Self {
            spec: spec.encode(),
            public_key_set: phalanx_threshold::wire::public_set_bytes(public),
            signatures: spec
                .participants
                .iter()
                .map(|p| {
                    confirmations
                        .confirmations
                        .get(&p.index)
                        .copied()
                        .unwrap_or([0; 64])
                })
                .collect(),
        }
    }
}

/// Largest contract module (the runtime's own bound).
pub const MAX_CODE: usize = 512 * 1024;
/// Largest sealed command (HPKE encapsulated key and ciphertext).
pub const MAX_COMMAND: usize = 64 * 1024;

/// A contract as deployed: its code, who deployed it, and the keys workers published
/// for it per epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contract {
    /// [`phalanx_types::contract::contract_id`] of deployer, code hash and salt.
    pub id: [u8; 32],
    /// The deploying account (compressed SEC1).
    pub deployer: PublicKey,
    /// [`phalanx_types::contract::code_hash`] of the module.
    pub code_hash: [u8; 32],
    /// The WebAssembly module (shared: the state is cloned per block).
    pub code: std::sync::Arc<Vec<u8>>,
    /// The deployer's salt.
    pub salt: [u8; 32],
    /// The block that deployed it.
    pub deployed_at: u64,
    /// The keys published per epoch (first publication stands).
    pub keys: std::collections::BTreeMap<Epoch, ContractKey>,
    /// Commands submitted so far.
    pub commands: u64,
    /// The head of its command log ([`command_log`] on the ledger, the contract's own
    /// hash chain on EVM; zeros before the first command).
    pub command_log: [u8; 32],
    /// The newest commitment to its state, if any.
    pub state: Option<StateCommitment>,
}

/// The command log's next head: `SHA-256(COMMAND_LOG ‖ head ‖ height ‖ time ‖
/// SHA-256(the command's signed transaction))`. A worker that holds a contract's log
/// head at some sequence checks a feed of its later commands against the head a header
/// proves ([`crate::facts::Fact::Commands`]): none left out, none added, none reordered.
pub fn command_log(head: &[u8; 32], height: u64, time: i64, tx: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(phalanx_types::tag::COMMAND_LOG);
    h.update(head);
    h.update(height.to_be_bytes());
    h.update(time.to_be_bytes());
    h.update(Sha256::digest(tx));
    h.finalize().into()
}

/// A contract's public keys for one epoch, published by the first worker that derived
/// them from the gatekeepers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContractKey {
    /// The contract.
    pub contract: [u8; 32],
    /// The epoch of the master secret they were derived under.
    pub epoch: Epoch,
    /// HPKE public key (SEC1 uncompressed, 65 bytes): commands are sealed to it.
    pub encryption_key: Vec<u8>,
    /// ECDSA P-256 public key (SEC1 compressed, 33 bytes): the contract's own signatures.
    pub signing_key: PublicKey,
    /// The worker that published them (its identity key); set by the registry.
    pub published_by: PublicKey,
    /// The block that published them; set by the registry.
    pub published_at: u64,
    /// The contract's command count when they were published; set by the registry.
    /// Every command before it is sealed to an older epoch, every one after to this or a
    /// newer one (a command must be sealed to the contract's newest keys).
    pub commands_before: u64,
}

/// A worker's commitment to a contract's state at a point of its command log: what a
/// sealed checkpoint holds, so a new worker can start from one (fetched from anyone)
/// and check it against this, and an epoch can be retired once every contract's state
/// is committed under a newer one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateCommitment {
    /// The contract.
    pub contract: [u8; 32],
    /// Commands applied (run or skipped): the checkpoint's place in the command log.
    pub count: u64,
    /// The command log's head after them.
    pub log_head: [u8; 32],
    /// The keyed state root there (keyed: it shows nothing of the state to anyone
    /// without the contract's secret).
    pub state_root: [u8; 32],
    /// The epoch whose contract keys seal the checkpoint: the contract's newest.
    pub epoch: Epoch,
    /// The block that committed it; set by the registry.
    pub committed_at: u64,
}

/// Evidence that a gatekeeper broke the protocol: statements it signed that no honest
/// gatekeeper signs together. Anyone may submit it (`Tx::ReportMisbehaviour`): the
/// registry checks the signatures itself, then takes the accused's registration away
/// for good (it no longer stands as a gatekeeper, endorses, joins a set or decides a
/// round). Governance then sets the committee without it and the members reshare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Misbehaviour {
    /// The accused gatekeeper's identity key (compressed SEC1, as registered).
    pub accused: PublicKey,
    /// What it signed.
    pub fault: Fault,
}

/// A provable fault (see [`Misbehaviour`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// A confirmation of round `round` (`keyvault::round::confirmation_bytes`) with an
    /// outcome other than the one the registry published for it. The published
    /// certificate holds every participant's confirmation of the published outcome, and
    /// an honest member confirms only the one outcome it prepared, so the accused
    /// confirmed two.
    Confirmation {
        /// The round.
        round: [u8; 32],
        /// The participant index the confirmation names.
        index: u16,
        /// The outcome it confirmed.
        digest: [u8; 32],
        /// Its signature (r ‖ s).
        signature: [u8; 64],
    },
    /// Two heads of the accused's release log (`keyvault::translog::TreeHead`) of the
    /// same size with different roots: it showed two different logs.
    ForkedLog {
        /// The size both heads state.
        size: u64,
        /// One head.
        first: LogHead,
        /// The other.
        second: LogHead,
    },
    /// A release its own signed log holds whose partial no honest gatekeeper sends: its
    /// DLEQ proof fails against the public share committed with it
    /// (`phalanx_threshold::release_log::committed_partial_fails`). The worker it was
    /// sealed to reveals it; a failed partial is worth nothing to anyone.
    Partial {
        /// The size of the log the head states.
        size: u64,
        /// The accused's signed head holding the release.
        head: LogHead,
        /// The release as the log committed it.
        release: phalanx_threshold::release_log::CommittedRelease,
    },
    /// A DKG dealing no honest dealer sends (`keyvault::round::dealing_fails`): the
    /// accused's signed phase-1 message to `recipient`, whose share does not match its
    /// commitments (or which does not decode as a dealing). The recipient reveals it; a
    /// dealer complained about reveals the share anyway.
    Dealing {
        /// The round's spec (its id is the hash of it; it names the dealer's key).
        spec: Vec<u8>,
        /// The dealer's index.
        sender: u16,
        /// The recipient's index.
        recipient: u16,
        /// The message's public part (the commitments).
        public: Vec<u8>,
        /// Its private part (the recipient's share).
        private: Vec<u8>,
        /// The dealer's signature over the message (`round::peer_message_bytes`).
        signature: [u8; 64],
    },
}

impl Fault {
    /// Its code: 1 a confirmation of another outcome, 2 a forked log, 3 a bad partial,
    /// 4 a bad dealing (also the EVM registry's).
    pub fn code(&self) -> u8 {
        match self {
            Self::Confirmation { .. } => 1,
            Self::ForkedLog { .. } => 2,
            Self::Partial { .. } => 3,
            Self::Dealing { .. } => 4,
        }
    }
}

/// A signed tree head of a gatekeeper's release log, without the parts a
/// [`Fault::ForkedLog`] shares (the log, named by its key, and the size).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogHead {
    /// The root.
    pub root: [u8; 32],
    /// When it was signed (unix seconds).
    pub timestamp: i64,
    /// The signature (r ‖ s).
    pub signature: [u8; 64],
}

fn put_head(w: &mut Writer, h: &LogHead) {
    w.raw(&h.root);
    w.u64(h.timestamp as u64);
    w.raw(&h.signature);
}

impl Misbehaviour {
    /// Evidence of a bad partial ([`Fault::Partial`]) from what a worker holds: the
    /// gatekeeper's identity key, its signed head and the release its log committed.
    pub fn partial(
        identity: &VerifyingKey,
        head: &phalanx_threshold::translog::SignedTreeHead,
        release: phalanx_threshold::release_log::CommittedRelease,
    ) -> Self {
        Self {
            accused: public_key(identity),
            fault: Fault::Partial {
                size: head.head.size,
                head: LogHead {
                    root: head.head.root,
                    timestamp: head.head.timestamp,
                    signature: head.signature.to_bytes().into(),
                },
                release,
            },
        }
    }

    fn put(&self, w: &mut Writer) {
        w.bytes(&self.accused);
        w.u8(self.fault.code());
        match &self.fault {
            Fault::Confirmation {
                round,
                index,
                digest,
                signature,
            } => {
                w.raw(round);
                w.u16(*index);
                w.raw(digest);
                w.raw(signature);
            }
            Fault::ForkedLog {
                size,
                first,
                second,
            } => {
                w.u64(*size);
                for h in [first, second] {
                    put_head(w, h);
                }
            }
            Fault::Partial {
                size,
                head,
                release: c,
            } => {
                w.u64(*size);
                put_head(w, head);
                w.u16(c.node.get());
                w.u64(c.logged_at as u64);
                w.raw(&c.transcript);
                w.bytes(&c.point_input);
                w.raw(&c.public_share);
                w.bytes(&c.partial);
                w.u64(c.log_index);
                w.list(&c.inclusion_proof, |w, h| w.raw(h));
            }
            Fault::Dealing {
                spec,
                sender,
                recipient,
                public,
                private,
                signature,
            } => {
                w.bytes(spec);
                w.u16(*sender);
                w.u16(*recipient);
                w.bytes(public);
                w.bytes(private);
                w.raw(signature);
            }
        }
    }

    fn get(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let accused = r.bytes("accused key", MAX_FIELD)?.to_vec();
        let head = |r: &mut Reader<'_>| {
            Ok::<_, DecodeError>(LogHead {
                root: r.array("log root")?,
                timestamp: r.u64("head time")? as i64,
                signature: r.array("head signature")?,
            })
        };
        let fault = match r.u8("fault kind")? {
            1 => Fault::Confirmation {
                round: r.array("round id")?,
                index: r.u16("participant index")?,
                digest: r.array("confirmed outcome")?,
                signature: r.array("confirmation signature")?,
            },
            2 => Fault::ForkedLog {
                size: r.u64("log size")?,
                first: head(r)?,
                second: head(r)?,
            },
            3 => Fault::Partial {
                size: r.u64("log size")?,
                head: head(r)?,
                release: phalanx_threshold::release_log::CommittedRelease {
                    node: phalanx_threshold::share::NodeIndex::new(r.u16("node")?)
                        .map_err(|_| r.invalid("node"))?,
                    logged_at: r.u64("logged at")? as i64,
                    transcript: r.array("request transcript")?,
                    point_input: r
                        .bytes("key id", phalanx_threshold::derive::MAX_KEY_ID)?
                        .to_vec(),
                    public_share: r.array("public share")?,
                    partial: r.bytes("partial", MAX_EVIDENCE_PART)?.to_vec(),
                    log_index: r.u64("log index")?,
                    inclusion_proof: r.list(
                        "inclusion proof",
                        phalanx_threshold::translog::MAX_PROOF_LEN,
                        |r| r.array("proof hash"),
                    )?,
                },
            },
            4 => Fault::Dealing {
                spec: r.bytes("round spec", MAX_CERTIFICATE_FIELD)?.to_vec(),
                sender: r.u16("dealer")?,
                recipient: r.u16("recipient")?,
                public: r
                    .bytes("commitments", phalanx_threshold::round::MAX_PUBLIC_PART)?
                    .to_vec(),
                private: r
                    .bytes("share", phalanx_threshold::round::MAX_PRIVATE_PART)?
                    .to_vec(),
                signature: r.array("dealer signature")?,
            },
            _ => return Err(r.invalid("fault kind")),
        };
        Ok(Self { accused, fault })
    }

    /// Its encoding (what `phalanx chain tx report-misbehaviour` reads from a file).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        self.put(&mut w);
        w.0
    }

    /// Largest evidence file: more than any evidence takes (a dealing's carries a round
    /// spec, up to 64 KiB, and a public part, up to 256 KiB; a partial's, up to 256 KiB).
    pub const MAX_FILE: u64 = 1024 * 1024;

    /// Writes the evidence to `path` (created new: evidence is never overwritten).
    pub fn write_file(&self, path: &std::path::Path) -> std::io::Result<()> {
        use std::io::Write as _;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)?;
        f.write_all(&self.encode())?;
        f.sync_all()
    }

    /// Reads evidence [`Self::write_file`] wrote; an over-long or malformed file is
    /// refused by name.
    pub fn read_file(path: &std::path::Path) -> Result<Self, std::io::Error> {
        use std::io::Read as _;
        let mut b = Vec::new();
        std::fs::File::open(path)?
            .take(Self::MAX_FILE + 1)
            .read_to_end(&mut b)?;
        if b.len() as u64 > Self::MAX_FILE {
            return Err(std::io::Error::other(format!(
                "{}: over {} bytes: no evidence file",
                path.display(),
                Self::MAX_FILE
            )));
        }
        Self::decode(&b).map_err(|e| std::io::Error::other(format!("{}: {e}", path.display())))
    }

    /// Reads [`Self::encode`] back, exactly.
    pub fn decode(b: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(b, "misbehaviour");
        let m = Self::get(&mut r)?;
        r.finish()?;
        Ok(m)
    }
}

/// Largest partial in evidence: whatever a worker accepts in a gatekeeper's answer
/// (`phalanx_release::client::MAX_MESSAGE`), so no partial too large escapes evidence.
pub const MAX_EVIDENCE_PART: usize = 256 * 1024;

/// A command as the chain orders it: sealed to the contract's key of `epoch`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// The contract.
    pub contract: [u8; 32],
    /// Whose contract key it is sealed to.
    pub epoch: Epoch,
    /// HPKE encapsulated key ‖ AES-256-GCM ciphertext.
    pub ciphertext: Vec<u8>,
}

/// Largest round spec or public key set in a certificate.
pub const MAX_CERTIFICATE_FIELD: usize = 64 * 1024;

/// Whether a rotation (a new epoch's DKG) is under way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    /// None.
    Idle,
    /// Epoch `0` is being created; nothing else may lock until it is published or aborted.
    Locked(Epoch),
}

/// A state change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tx {
    /// Register (or refresh) the signer as a worker, with its evidence. Signed by
    /// `identity_key`.
    RegisterWorker(Registration),
    /// Governance: allow a measurement in a role.
    AddMeasurement {
        /// The tenant id.
        measurement: Vec<u8>,
        /// What it may be.
        role: Role,
    },
    /// Governance: disallow a measurement.
    RemoveMeasurement(Vec<u8>),
    /// Governance: replace the gatekeeper set (each a registered gatekeeper) and set the
    /// committee's threshold: every DKG and reshare must produce exactly this `t`.
    SetGatekeepers {
        /// The members.
        set: Vec<Gatekeeper>,
        /// The threshold `t` (1 ≤ t ≤ n).
        threshold: u16,
    },
    /// Governance: retire an epoch (the gatekeepers then forget its shares). Refused for
    /// the newest epoch and any epoch a contract's state still needs
    /// (`state::checkpointed_past`).
    RetireEpoch(Epoch),
    /// Governance: the TCB statuses and collateral floor new registrations are judged
    /// by, and the evidence lifetime (which also bounds every registration's standing);
    /// the genesis's roots stay.
    SetTcbRule(TcbRule),
    /// Governance: start creating `epoch` (the next one: 0, or the latest + 1).
    LockRotation(Epoch),
    /// Governance or a gatekeeper, with the whole committee's certificate: publish the
    /// keys a DKG created for the locked epoch (unlocks), or the new public key set a
    /// refresh or reshare gave an existing epoch.
    PublishMasterKey(EpochCertificate),
    /// Governance: give the locked epoch up (unlocks).
    AbortRotation(Epoch),
    /// Governance or a gatekeeper: decide that a round (by id) is aborted, unless its
    /// certificate was published first. The registry orders the two, so every member
    /// of a round installs it or none does, whatever one participant tells each.
    AbortRound([u8; 32]),
    /// Anyone: deploy a contract module (its id: deployer, code hash, salt).
    DeployContract {
        /// The module (at most [`MAX_CODE`] bytes).
        code: Vec<u8>,
        /// Chosen by the deployer: the same code deploys again under another salt.
        salt: [u8; 32],
    },
    /// A registered worker with an allowed measurement: publish the public keys it
    /// derived for a contract and epoch. The first publication stands.
    PublishContractKey(ContractKey),
    /// Anyone: a command for a contract, sealed to its newest published key.
    Command(Command),
    /// A registered pRuntime: commit to a contract's state at a point of its command
    /// log, sealed under the contract's newest keys; each commitment is newer than the
    /// last.
    CommitState(StateCommitment),
    /// Anyone: evidence that a gatekeeper broke the protocol ([`Misbehaviour`]).
    ReportMisbehaviour(Misbehaviour),
    /// A pRuntime in standing: where it serves a contract (an `http(s)://` URL, at most
    /// [`MAX_ENDPOINT`] bytes), so users find the contract's workers on the registry.
    /// Only where to knock: users seal to the worker's keys as the registry lists them.
    Serve {
        /// The contract.
        contract: [u8; 32],
        /// The worker's URL.
        endpoint: String,
    },
}

/// Longest endpoint a worker announces ([`Tx::Serve`]).
pub const MAX_ENDPOINT: usize = 256;

/// Most workers listed per contract ([`Tx::Serve`]; one already listed may move).
pub const MAX_SERVERS: usize = 64;

/// What the registry decided for a round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoundDecision {
    /// Its certificate was published: every member installs it.
    Committed,
    /// It was aborted first: no member installs it.
    Aborted,
}

impl Tx {
    /// Its name, for errors and events.
    pub fn name(&self) -> &'static str {
        match self {
            Self::RegisterWorker(_) => "register-worker",
            Self::AddMeasurement { .. } => "add-measurement",
            Self::RemoveMeasurement(_) => "remove-measurement",
            Self::SetGatekeepers { .. } => "set-gatekeepers",
            Self::RetireEpoch(_) => "retire-epoch",
            Self::SetTcbRule(_) => "set-tcb-rule",
            Self::LockRotation(_) => "lock-rotation",
            Self::PublishMasterKey { .. } => "publish-master-key",
            Self::AbortRotation(_) => "abort-rotation",
            Self::AbortRound(_) => "abort-round",
            Self::DeployContract { .. } => "deploy-contract",
            Self::PublishContractKey(_) => "publish-contract-key",
            Self::Command(_) => "command",
            Self::CommitState(_) => "commit-state",
            Self::ReportMisbehaviour(_) => "report-misbehaviour",
            Self::Serve { .. } => "serve",
        }
    }

    /// Long on purpose: one arm per transaction kind, its tag beside its fields.
    fn put(&self, w: &mut Writer) {
        match self {
            Self::RegisterWorker(r) => {
                w.u8(1);
                r.encode(w);
            }
            Self::AddMeasurement { measurement, role } => {
                w.u8(2);
                w.bytes(measurement);
                w.u8(role.code());
            }
            Self::RemoveMeasurement(m) => {
                w.u8(3);
                w.bytes(m);
            }
            Self::SetGatekeepers { set, threshold } => {
                w.u8(4);
                w.list(set, |w, g| {
                    w.u16(g.index);
                    w.bytes(&g.identity_key);
                    w.bytes(g.url.as_bytes());
                    w.bytes(g.peer_url.as_bytes());
                });
                w.u16(*threshold);
            }
            Self::RetireEpoch(e) => {
                w.u8(12);
                w.u64((*e).into());
            }
            Self::SetTcbRule(t) => {
                w.u8(13);
                EvidenceRule::with_roots(Vec::new()).with_tcb(t).put_tcb(w);
            }
            Self::LockRotation(e) => {
                w.u8(5);
                w.u64((*e).into());
            }
            Self::PublishMasterKey(c) => {
                w.u8(6);
                w.bytes(&c.spec);
                w.bytes(&c.public_key_set);
                w.list(&c.signatures, |w, s| w.raw(s));
            }
            Self::AbortRotation(e) => {
                w.u8(7);
                w.u64((*e).into());
            }
            Self::AbortRound(id) => {
                w.u8(8);
                w.raw(id);
            }
            Self::DeployContract { code, salt } => {
                w.u8(9);
                w.bytes(code);
                w.raw(salt);
            }
            Self::PublishContractKey(k) => {
                w.u8(10);
                w.raw(&k.contract);
                w.u64(k.epoch.into());
                w.bytes(&k.encryption_key);
                w.bytes(&k.signing_key);
            }
            Self::Command(c) => {
                w.u8(11);
                w.raw(&c.contract);
                w.u64(c.epoch.into());
                w.bytes(&c.ciphertext);
            }
            Self::CommitState(c) => {
                w.u8(14);
                w.raw(&c.contract);
                w.u64(c.count);
                w.raw(&c.log_head);
                w.raw(&c.state_root);
                w.u64(c.epoch.into());
            }
            Self::ReportMisbehaviour(m) => {
                w.u8(15);
                m.put(w);
            }
            Self::Serve { contract, endpoint } => {
                w.u8(16);
                w.raw(contract);
                w.bytes(endpoint.as_bytes());
            }
        }
    }

    fn get(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        fn text(r: &mut Reader<'_>, field: &'static str) -> Result<String, DecodeError> {
            let b = r.bytes(field, MAX_FIELD)?;
            String::from_utf8(b.to_vec()).map_err(|_| r.invalid(field))
        }
        Ok(match r.u8("transaction kind")? {
            1 => Self::RegisterWorker(Registration::read(r)?),
            2 => Self::AddMeasurement {
                measurement: r.bytes("measurement", MAX_MEASUREMENT)?.to_vec(),
                role: Role::from_code(r.u8("role")?).ok_or_else(|| r.invalid("role"))?,
            },
            3 => Self::RemoveMeasurement(r.bytes("measurement", MAX_MEASUREMENT)?.to_vec()),
            4 => Self::SetGatekeepers {
                set: r.list("gatekeepers", MAX_GATEKEEPERS, |r| {
                    Ok::<_, DecodeError>(Gatekeeper {
                        index: r.u16("gatekeeper index")?,
                        identity_key: r.bytes("gatekeeper identity key", MAX_FIELD)?.to_vec(),
                        url: text(r, "gatekeeper url")?,
                        peer_url: text(r, "gatekeeper peer url")?,
                    })
                })?,
                threshold: r.u16("threshold")?,
            },
            12 => Self::RetireEpoch(Epoch(r.u64("epoch")?)),
            13 => Self::SetTcbRule(EvidenceRule::get_tcb(r)?),
            5 => Self::LockRotation(Epoch(r.u64("epoch")?)),
            6 => Self::PublishMasterKey(EpochCertificate {
                spec: r.bytes("round spec", MAX_CERTIFICATE_FIELD)?.to_vec(),
                public_key_set: r.bytes("public key set", MAX_CERTIFICATE_FIELD)?.to_vec(),
                signatures: r.list("confirmations", MAX_GATEKEEPERS, |r| {
                    r.array::<64>("confirmation")
                })?,
            }),
            7 => Self::AbortRotation(Epoch(r.u64("epoch")?)),
            8 => Self::AbortRound(r.array("round id")?),
            9 => Self::DeployContract {
                code: r.bytes("contract code", MAX_CODE)?.to_vec(),
                salt: r.array("salt")?,
            },
            10 => Self::PublishContractKey(ContractKey {
                contract: r.array("contract id")?,
                epoch: Epoch(r.u64("epoch")?),
                encryption_key: r.bytes("encryption key", MAX_FIELD)?.to_vec(),
                signing_key: r.bytes("signing key", MAX_FIELD)?.to_vec(),
                published_by: Vec::new(),
                published_at: 0,
                commands_before: 0,
            }),
            11 => Self::Command(Command {
                contract: r.array("contract id")?,
                epoch: Epoch(r.u64("epoch")?),
                ciphertext: r.bytes("command", MAX_COMMAND)?.to_vec(),
            }),
            14 => Self::CommitState(StateCommitment {
                contract: r.array("contract id")?,
                count: r.u64("command count")?,
                log_head: r.array("command log head")?,
                state_root: r.array("state root")?,
                epoch: Epoch(r.u64("epoch")?),
                committed_at: 0,
            }),
            15 => Self::ReportMisbehaviour(Misbehaviour::get(r)?),
            16 => Self::Serve {
                contract: r.array("contract id")?,
                endpoint: {
                    let b = r.bytes("endpoint", MAX_ENDPOINT)?;
                    String::from_utf8(b.to_vec()).map_err(|_| r.invalid("endpoint"))?
                },
            },
            _ => return Err(r.invalid("transaction kind")),
        })
    }
}

/// A transaction signed by an account, with the account's sequence number (so a
/// transaction cannot be replayed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedTx {
    /// The signing account (compressed SEC1).
    pub signer: PublicKey,
    /// The account's next sequence number.
    pub nonce: u64,
    /// The change.
    pub tx: Tx,
    /// ECDSA P-256 over `TX_TAG ‖ chain id ‖ signer ‖ nonce ‖ tx`.
    pub signature: Vec<u8>,
}

fn tx_signed_bytes(chain_id: &[u8; 32], signer: &[u8], nonce: u64, tx: &Tx) -> Vec<u8> {
    let mut w = Writer::default();
    w.raw(TX_TAG);
    w.raw(chain_id);
    w.bytes(signer);
    w.u64(nonce);
    tx.put(&mut w);
    w.0
}

impl SignedTx {
    /// Signs `tx` as `key` with sequence number `nonce` for chain `chain_id`.
    pub fn sign(key: &SigningKey, chain_id: &[u8; 32], nonce: u64, tx: Tx) -> Self {
        let signer = public_key(key.verifying_key());
        let sig: Signature = key.sign(&tx_signed_bytes(chain_id, &signer, nonce, &tx));
        Self {
            signer,
            nonce,
            tx,
            signature: sig.to_bytes().to_vec(),
        }
    }

    /// Checks the signature under `signer`.
    pub fn verify(&self, chain_id: &[u8; 32]) -> bool {
        verify_p256(
            &self.signer,
            &tx_signed_bytes(chain_id, &self.signer, self.nonce, &self.tx),
            &self.signature,
        )
    }

    /// The canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        self.to_bytes()
    }

    /// Parses [`SignedTx::encode`].
    pub fn decode(b: &[u8]) -> Result<Self, DecodeError> {
        Self::from_bytes(b)
    }
}

impl Codec for SignedTx {
    const NAME: &'static str = "transaction";
    type Error = DecodeError;

    fn encode(&self, w: &mut Writer) {
        w.bytes(&self.signer);
        w.u64(self.nonce);
        self.tx.put(w);
        w.bytes(&self.signature);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            signer: r.bytes("signer", MAX_FIELD)?.to_vec(),
            nonce: r.u64("nonce")?,
            tx: Tx::get(r)?,
            signature: r.bytes("signature", MAX_FIELD)?.to_vec(),
        })
    }
}

/// Most trust roots a genesis names.
pub const MAX_TRUST_ROOTS: usize = 8;
/// Largest trust root certificate (DER).
pub const MAX_ROOT_CERT: usize = 4096;

/// What evidence the registry accepts, fixed in its genesis: the DCAP trust roots
/// quotes must chain to (Intel's in production; a development chain may name a
/// simulated root), the TCB statuses it accepts, and how long a registration's
/// evidence counts before the worker must attest and register again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidenceRule {
    /// DER certificates of the DCAP roots.
    pub trust_roots: Vec<Vec<u8>>,
    /// The TCB statuses a registration may have.
    pub tcb_statuses: Vec<phalanx_dcap::tcb::TcbStatus>,
    /// Seconds a registration's evidence counts.
    pub max_evidence_age: u64,
    /// The lowest `tcbEvaluationDataNumber` a registration's collateral may have (Intel
    /// raises it with every TCB recovery; collateral from before one says nothing about
    /// the platform today).
    pub min_tcb_evaluation_data_number: u32,
}

/// Shortest evidence lifetime governance may set: a day (gatekeepers renew hourly,
/// workers at half the lifetime).
pub const MIN_EVIDENCE_AGE: u64 = 24 * 3600;
/// Longest evidence lifetime governance may set: a year (evidence older than that says
/// little about a platform today; and the EVM registry computes ages in `int64`).
pub const MAX_EVIDENCE_AGE: u64 = 365 * 24 * 3600;

/// Whether a registration made at `registered_at` should be renewed at `now`: past half
/// of the registry's evidence lifetime `max_evidence_age` (workers and gatekeepers both
/// renew then, so a failed attempt has the other half to succeed).
pub fn renewal_due(max_evidence_age: u64, registered_at: i64, now: i64) -> bool {
    let half = i64::try_from(max_evidence_age / 2).unwrap_or(i64::MAX);
    now.saturating_sub(registered_at) >= half
}

/// Default evidence lifetime: 7 days.
pub const DEFAULT_MAX_EVIDENCE_AGE: u64 = 7 * 24 * 3600;

impl EvidenceRule {
    /// Intel's root, `UpToDate` only, evidence for 7 days: production.
    pub fn intel() -> Self {
        Self::with_roots(vec![phalanx_dcap::pki::INTEL_SGX_ROOT_CA_DER.to_vec()])
    }

    /// These roots (DER), `UpToDate` only, evidence for 7 days.
    pub fn with_roots(trust_roots: Vec<Vec<u8>>) -> Self {
        Self {
            trust_roots,
            tcb_statuses: vec![phalanx_dcap::tcb::TcbStatus::UpToDate],
            max_evidence_age: DEFAULT_MAX_EVIDENCE_AGE,
            min_tcb_evaluation_data_number: 0,
        }
    }

    /// The roots in `pem` (one or more certificates), `UpToDate` only, evidence for 7
    /// days.
    pub fn from_pem(pem: &[u8]) -> Result<Self, phalanx_dcap::Error> {
        let roots = phalanx_dcap::pki::split_chain(pem, "trust root PEM")?;
        phalanx_dcap::TrustAnchors::from_pem(pem)?;
        Ok(Self::with_roots(roots))
    }

    /// Whether Intel's root is the only root.
    pub fn is_intel(&self) -> bool {
        self.trust_roots == [phalanx_dcap::pki::INTEL_SGX_ROOT_CA_DER.to_vec()]
    }

    pub(crate) fn put(&self, w: &mut Writer) {
        w.list(&self.trust_roots, |w, r| w.bytes(r));
        self.put_tcb(w);
    }

    /// The part governance may change ([`Tx::SetTcbRule`]): statuses, lifetime, floor.
    fn put_tcb(&self, w: &mut Writer) {
        w.list(&self.tcb_statuses, |w, s| w.u8(status_code(*s)));
        w.u64(self.max_evidence_age);
        w.u32(self.min_tcb_evaluation_data_number);
    }

    fn get_tcb(r: &mut Reader<'_>) -> Result<TcbRule, DecodeError> {
        Ok(TcbRule {
            tcb_statuses: r.list("TCB statuses", STATUSES.len(), |r| {
                let c = r.u8("TCB status")?;
                status_from_code(c).ok_or_else(|| r.invalid("TCB status"))
            })?,
            max_evidence_age: r.u64("max evidence age")?,
            min_tcb_evaluation_data_number: r.u32("min TCB evaluation data number")?,
        })
    }

    /// This rule with governance's TCB part.
    pub fn with_tcb(&self, tcb: &TcbRule) -> Self {
        Self {
            trust_roots: self.trust_roots.clone(),
            tcb_statuses: tcb.tcb_statuses.clone(),
            max_evidence_age: tcb.max_evidence_age,
            min_tcb_evaluation_data_number: tcb.min_tcb_evaluation_data_number,
        }
    }

    pub(crate) fn get(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let trust_roots = r.list("trust roots", MAX_TRUST_ROOTS, |r| {
            Ok::<_, DecodeError>(r.bytes("trust root", MAX_ROOT_CERT)?.to_vec())
        })?;
        Ok(Self::with_roots(trust_roots).with_tcb(&Self::get_tcb(r)?))
    }
}

/// What governance may change of the evidence rule (the roots stay the genesis's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcbRule {
    /// The TCB statuses a registration may have (not empty, never `Revoked`).
    pub tcb_statuses: Vec<phalanx_dcap::tcb::TcbStatus>,
    /// Seconds a registration's evidence counts ([`MIN_EVIDENCE_AGE`] to
    /// [`MAX_EVIDENCE_AGE`]).
    pub max_evidence_age: u64,
    /// The lowest `tcbEvaluationDataNumber` of a registration's collateral.
    pub min_tcb_evaluation_data_number: u32,
}

/// The TCB statuses in their wire order (code = index + 1).
const STATUSES: [phalanx_dcap::tcb::TcbStatus; 9] = {
    use phalanx_dcap::tcb::TcbStatus as S;
    [
        S::UpToDate,
        S::SWHardeningNeeded,
        S::ConfigurationNeeded,
        S::ConfigurationAndSWHardeningNeeded,
        S::OutOfDate,
        S::OutOfDateConfigurationNeeded,
        S::Revoked,
        S::TDRelaunchAdvised,
        S::TDRelaunchAdvisedConfigurationNeeded,
    ]
};

/// A TCB status's wire code.
pub fn status_code(s: phalanx_dcap::tcb::TcbStatus) -> u8 {
    STATUSES
        .iter()
        .position(|x| *x == s)
        .map_or(0, |i| i as u8 + 1)
}

/// The TCB status of a wire code.
pub fn status_from_code(c: u8) -> Option<phalanx_dcap::tcb::TcbStatus> {
    STATUSES.get(usize::from(c).checked_sub(1)?).copied()
}

/// The first block's content: who may do what on this chain, and what evidence counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Genesis {
    /// Signs blocks.
    pub authority: PublicKey,
    /// Signs governance transactions.
    pub governance: PublicKey,
    /// When the chain began.
    pub timestamp: i64,
    /// What evidence a registration needs.
    pub evidence: EvidenceRule,
}

impl Genesis {
    /// The chain id: SHA-256 of the genesis encoding. Every signature is bound to it,
    /// and every worker's quote names it.
    pub fn chain_id(&self) -> [u8; 32] {
        let mut w = Writer::default();
        w.raw(phalanx_types::tag::CHAIN_GENESIS);
        self.put(&mut w);
        Sha256::digest(&w.0).into()
    }

    fn put(&self, w: &mut Writer) {
        w.bytes(&self.authority);
        w.bytes(&self.governance);
        w.u64(self.timestamp as u64);
        self.evidence.put(w);
    }

    fn get(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            authority: r.bytes("authority", MAX_FIELD)?.to_vec(),
            governance: r.bytes("governance", MAX_FIELD)?.to_vec(),
            timestamp: r.u64("genesis timestamp")? as i64,
            evidence: EvidenceRule::get(r)?,
        })
    }
}

/// A block's header: what its hash names and the authority signs. The transactions and
/// (at genesis) the parameters are bound through it — `tx_root` commits to the
/// transactions, `chain_id` is the hash of the genesis parameters — so a header alone,
/// with its signature, proves the block's place in one chain, and proofs against its
/// roots prove the rest ([`crate::proof`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The chain's id: the hash of its genesis parameters ([`Genesis::chain_id`]).
    pub chain_id: [u8; 32],
    /// 0 for genesis.
    pub height: u64,
    /// The parent's hash (zeros for genesis).
    pub prev: [u8; 32],
    /// Unix seconds; never decreases.
    pub timestamp: i64,
    /// The root of the block's transactions ([`crate::commit::tx_root`]).
    pub tx_root: [u8; 32],
    /// The root of the registry's state commitment after this block's transactions
    /// ([`crate::commit`]; the facts: [`crate::facts`], the hashes of every earlier
    /// header included), so one header proves any fact and any earlier header at its
    /// height.
    pub state_root: [u8; 32],
}

impl Header {
    /// `SHA-256(HEADER_TAG ‖ encoding)`: the block's hash.
    pub fn hash(&self) -> [u8; 32] {
        let mut w = Writer::default();
        w.raw(HEADER_TAG);
        Codec::encode(self, &mut w);
        Sha256::digest(&w.0).into()
    }

    /// Checks `signature`, the authority's over this header's hash.
    pub fn verify_signature(&self, authority: &[u8], signature: &[u8]) -> bool {
        verify_p256(authority, &self.hash(), signature)
    }
}

impl Codec for Header {
    const NAME: &'static str = "header";
    type Error = DecodeError;

    fn encode(&self, w: &mut Writer) {
        w.raw(&self.chain_id);
        w.u64(self.height);
        w.raw(&self.prev);
        w.u64(self.timestamp as u64);
        w.raw(&self.tx_root);
        w.raw(&self.state_root);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            chain_id: r.array("chain id")?,
            height: r.u64("height")?,
            prev: r.array("parent hash")?,
            timestamp: r.u64("timestamp")? as i64,
            tx_root: r.array("transaction root")?,
            state_root: r.array("state root")?,
        })
    }
}

/// A header and the authority's signature over its hash: a block without its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeader {
    /// The header.
    pub header: Header,
    /// ECDSA P-256 by the authority over [`Header::hash`].
    pub signature: Vec<u8>,
}

impl Codec for SignedHeader {
    const NAME: &'static str = "signed header";
    type Error = DecodeError;

    fn encode(&self, w: &mut Writer) {
        Codec::encode(&self.header, w);
        w.bytes(&self.signature);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            header: Header::read(r)?,
            signature: r.bytes("signature", MAX_FIELD)?.to_vec(),
        })
    }
}

/// A block: its header's fields, the genesis parameters (height 0 only), the
/// transactions, and the authority's signature over the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// The chain's id ([`Header::chain_id`]).
    pub chain_id: [u8; 32],
    /// 0 for genesis.
    pub height: u64,
    /// The parent's hash (zeros for genesis).
    pub prev: [u8; 32],
    /// Unix seconds; never decreases.
    pub timestamp: i64,
    /// The genesis parameters (height 0 only; bound by `chain_id`).
    pub genesis: Option<Genesis>,
    /// The root of `txs` ([`crate::commit::tx_root`]; checked when the block is
    /// applied).
    pub tx_root: [u8; 32],
    /// The root of the registry's state commitment after this block
    /// ([`Header::state_root`]).
    pub state_root: [u8; 32],
    /// The transactions, applied in order.
    pub txs: Vec<SignedTx>,
    /// ECDSA P-256 by the authority over the block hash ([`Header::hash`]).
    pub signature: Vec<u8>,
}

impl Block {
    /// The header.
    pub fn header(&self) -> Header {
        Header {
            chain_id: self.chain_id,
            height: self.height,
            prev: self.prev,
            timestamp: self.timestamp,
            tx_root: self.tx_root,
            state_root: self.state_root,
        }
    }

    /// The header and the authority's signature.
    pub fn signed_header(&self) -> SignedHeader {
        SignedHeader {
            header: self.header(),
            signature: self.signature.clone(),
        }
    }

    /// The block's hash: its header's.
    pub fn hash(&self) -> [u8; 32] {
        self.header().hash()
    }

    /// The root its transactions make (what `tx_root` must be).
    pub fn computed_tx_root(&self) -> Result<[u8; 32], crate::commit::CommitError> {
        let encoded: Vec<Vec<u8>> = self.txs.iter().map(Codec::to_bytes).collect();
        crate::commit::tx_root(encoded.iter().map(Vec::as_slice))
    }

    /// Signs the block as the authority.
    pub fn seal(mut self, authority: &SigningKey) -> Self {
        let sig: Signature = authority.sign(&self.hash());
        self.signature = sig.to_bytes().to_vec();
        self
    }

    /// Checks the authority's signature.
    pub fn verify_signature(&self, authority: &[u8]) -> bool {
        verify_p256(authority, &self.hash(), &self.signature)
    }

    /// The canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        self.to_bytes()
    }

    /// Parses [`Block::encode`].
    pub fn decode(b: &[u8]) -> Result<Self, DecodeError> {
        Self::from_bytes(b)
    }
}

impl Codec for Block {
    const NAME: &'static str = "block";
    type Error = DecodeError;

    fn encode(&self, w: &mut Writer) {
        Codec::encode(&self.header(), w);
        match &self.genesis {
            Some(g) => {
                w.u8(1);
                g.put(w);
            }
            None => w.u8(0),
        }
        w.list(&self.txs, |w, t| Codec::encode(t, w));
        w.bytes(&self.signature);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let h = Header::read(r)?;
        let genesis = match r.u8("genesis flag")? {
            0 => None,
            1 => Some(Genesis::get(r)?),
            _ => return Err(r.invalid("genesis flag")),
        };
        let txs = r.list("transactions", MAX_TXS, SignedTx::read)?;
        let signature = r.bytes("signature", MAX_FIELD)?.to_vec();
        Ok(Self {
            chain_id: h.chain_id,
            height: h.height,
            prev: h.prev,
            timestamp: h.timestamp,
            genesis,
            tx_root: h.tx_root,
            state_root: h.state_root,
            txs,
            signature,
        })
    }
}

/// What happened, as the stream of events shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A worker registered (or refreshed its registration).
    WorkerRegistered {
        /// Its identity key.
        identity_key: PublicKey,
        /// Its measurement.
        measurement: Vec<u8>,
    },
    /// A measurement became allowed.
    MeasurementAdded {
        /// The tenant id.
        measurement: Vec<u8>,
        /// Its role.
        role: Role,
    },
    /// A measurement was disallowed.
    MeasurementRemoved(Vec<u8>),
    /// The gatekeeper set changed: the new indices.
    GatekeepersChanged(Vec<u16>),
    /// A rotation to this epoch began.
    RotationLocked(Epoch),
    /// An epoch's master key was published.
    MasterKeyPublished(Epoch),
    /// A refresh or reshare gave an epoch a new public key set (same master key).
    PublicKeySetUpdated(Epoch),
    /// A rotation was given up.
    RotationAborted(Epoch),
    /// A round was decided aborted.
    RoundAborted([u8; 32]),
    /// Governance retired an epoch.
    EpochRetired(Epoch),
    /// Governance changed the TCB rule.
    TcbRuleChanged,
    /// A contract was deployed.
    ContractDeployed {
        /// Its id.
        contract: [u8; 32],
        /// Its code hash.
        code_hash: [u8; 32],
    },
    /// A contract's keys for an epoch were published.
    ContractKeyPublished {
        /// The contract.
        contract: [u8; 32],
        /// The epoch.
        epoch: Epoch,
    },
    /// A command was ordered: the contract's `sequence`-th (from 0).
    CommandSubmitted {
        /// The contract.
        contract: [u8; 32],
        /// Its position among the contract's commands.
        sequence: u64,
    },
    /// A pRuntime announced where it serves a contract.
    Serving {
        /// The contract.
        contract: [u8; 32],
        /// The worker's identity key.
        worker: PublicKey,
        /// Its URL.
        endpoint: String,
    },
    /// A worker committed to a contract's state after `count` commands.
    StateCommitted {
        /// The contract.
        contract: [u8; 32],
        /// The commitment's place in the command log.
        count: u64,
    },
    /// A gatekeeper was proven to have broken the protocol and lost its registration.
    Misbehaved {
        /// Its identity key.
        identity_key: PublicKey,
        /// The fault's code ([`Fault::code`]).
        fault: u8,
    },
}

impl Event {
    /// Its encoding (what a ledger stores with its block). Long on purpose: one arm per
    /// event kind, its tag beside its fields.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        let epoch = |w: &mut Writer, tag: u8, e: &Epoch| {
            w.u8(tag);
            w.u64(e.0);
        };
        match self {
            Self::WorkerRegistered {
                identity_key,
                measurement,
            } => {
                w.u8(0);
                w.bytes(identity_key);
                w.bytes(measurement);
            }
            Self::MeasurementAdded { measurement, role } => {
                w.u8(1);
                w.bytes(measurement);
                w.u8(role.code());
            }
            Self::MeasurementRemoved(m) => {
                w.u8(2);
                w.bytes(m);
            }
            Self::GatekeepersChanged(set) => {
                w.u8(3);
                w.list(set, |w, i| w.u16(*i));
            }
            Self::RotationLocked(e) => epoch(&mut w, 4, e),
            Self::MasterKeyPublished(e) => epoch(&mut w, 5, e),
            Self::PublicKeySetUpdated(e) => epoch(&mut w, 6, e),
            Self::RotationAborted(e) => epoch(&mut w, 7, e),
            Self::RoundAborted(id) => {
                w.u8(8);
                w.raw(id);
            }
            Self::EpochRetired(e) => epoch(&mut w, 9, e),
            Self::TcbRuleChanged => w.u8(10),
            Self::ContractDeployed {
                contract,
                code_hash,
            } => {
                w.u8(11);
                w.raw(contract);
                w.raw(code_hash);
            }
            Self::ContractKeyPublished { contract, epoch } => {
                w.u8(12);
                w.raw(contract);
                w.u64(epoch.0);
            }
            Self::CommandSubmitted { contract, sequence } => {
                w.u8(13);
                w.raw(contract);
                w.u64(*sequence);
            }
            Self::StateCommitted { contract, count } => {
                w.u8(14);
                w.raw(contract);
                w.u64(*count);
            }
            Self::Serving {
                contract,
                worker,
                endpoint,
            } => {
                w.u8(16);
                w.raw(contract);
                w.bytes(worker);
                w.bytes(endpoint.as_bytes());
            }
            Self::Misbehaved {
                identity_key,
                fault,
            } => {
                w.u8(15);
                w.bytes(identity_key);
                w.u8(*fault);
            }
        }
        w.0
    }

    /// Reads [`Self::encode`] back, exactly.
    pub fn decode(b: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(b, "event");
        let epoch = |r: &mut Reader<'_>| Ok::<_, DecodeError>(Epoch(r.u64("epoch")?));
        let e = match r.u8("event")? {
            0 => Self::WorkerRegistered {
                identity_key: r.bytes("identity key", 512)?.to_vec(),
                measurement: r.bytes("measurement", 512)?.to_vec(),
            },
            1 => Self::MeasurementAdded {
                measurement: r.bytes("measurement", 512)?.to_vec(),
                role: Role::from_code(r.u8("role")?).ok_or_else(|| r.invalid("role"))?,
            },
            2 => Self::MeasurementRemoved(r.bytes("measurement", 512)?.to_vec()),
            3 => Self::GatekeepersChanged(r.list("gatekeepers", 1024, |r| r.u16("index"))?),
            4 => Self::RotationLocked(epoch(&mut r)?),
            5 => Self::MasterKeyPublished(epoch(&mut r)?),
            6 => Self::PublicKeySetUpdated(epoch(&mut r)?),
            7 => Self::RotationAborted(epoch(&mut r)?),
            8 => Self::RoundAborted(r.array("round id")?),
            9 => Self::EpochRetired(epoch(&mut r)?),
            10 => Self::TcbRuleChanged,
            11 => Self::ContractDeployed {
                contract: r.array("contract")?,
                code_hash: r.array("code hash")?,
            },
            12 => Self::ContractKeyPublished {
                contract: r.array("contract")?,
                epoch: epoch(&mut r)?,
            },
            13 => Self::CommandSubmitted {
                contract: r.array("contract")?,
                sequence: r.u64("sequence")?,
            },
            14 => Self::StateCommitted {
                contract: r.array("contract")?,
                count: r.u64("command count")?,
            },
            15 => Self::Misbehaved {
                identity_key: r.bytes("identity key", 512)?.to_vec(),
                fault: r.u8("fault")?,
            },
            16 => Self::Serving {
                contract: r.array("contract")?,
                worker: r.bytes("worker", 512)?.to_vec(),
                endpoint: {
                    let b = r.bytes("endpoint", MAX_ENDPOINT)?;
                    String::from_utf8(b.to_vec()).map_err(|_| r.invalid("endpoint"))?
                },
            },
            _ => return Err(r.invalid("event")),
        };
        r.finish()?;
        Ok(e)
    }
}
