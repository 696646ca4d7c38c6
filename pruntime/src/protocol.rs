//! What travels between users and workers, both halves, sans-IO:
//!
//! - **Contract keys** ([`ContractKeys::derive`]): from the contract's secret (derived by
//!   the gatekeepers under [`phalanx_release::release::contract_key_id`]), HKDF-SHA256
//!   gives an HPKE key pair (commands are sealed to it), an ECDSA P-256 key pair, the
//!   checkpoint key and the state root's key.
//! - **Commands** ([`seal_command`], [`open_command`]): HPKE to the contract's published
//!   key, `info = COMMAND_ENVELOPE ‖ contract ‖ u32 len ‖ sender ‖ sender's nonce`: the
//!   sender's account and its sequence number on the registry, so a command opens only as
//!   the transaction that carries it (a copy under another account or nonce does not).
//! - **Queries** ([`Query`]): the input sealed to the worker's HPKE key as the registry
//!   lists it, signed by the user's P-256 key over the worker, contract, reply key, nonce
//!   and ciphertext; the contract sees the caller.
//! - **Answers** ([`Answer`]): the output sealed to the user's reply key, and the worker's
//!   signed [`Statement`] (format in [`phalanx_types::statement`]).

use base64::Engine as _;
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use phalanx_release::envelope::{self, RecipientKey, Sealed};
use phalanx_types::hex::Hex;
use phalanx_types::statement::{SALT_LEN, Statement};
use phalanx_types::tag;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// Why a message was refused. Never carries plaintext.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A field is not what its type needs (named).
    #[error("malformed {0}")]
    Malformed(&'static str),
    /// The user's signature does not verify.
    #[error("a signature does not verify")]
    BadSignature,
    /// An envelope does not open (wrong key, or sealed for something else).
    #[error("the {0} does not open")]
    Sealed(&'static str),
    /// Sealing failed.
    #[error("sealing failed")]
    Seal,
    /// A command's nonce is not above the last one run from its caller (sent again).
    #[error("the command's nonce is not above its caller's last: sent again")]
    Replayed,
}

/// Standard base64, the encoding of binary fields in the JSON messages.
pub(crate) fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// Parses [`b64`]; a failure names the field.
pub(crate) fn unb64(s: &str, field: &'static str) -> Result<Vec<u8>, ProtocolError> {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|_| ProtocolError::Malformed(field))
}

/// A contract's key pairs. Private halves zeroized on drop.
pub struct ContractKeys {
    /// Commands are sealed to it.
    pub encryption: RecipientKey,
    /// The contract's own signatures.
    pub signing: SigningKey,
    checkpoint: Zeroizing<[u8; 32]>,
    state_root: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for ContractKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContractKeys")
            .field("encryption", &self.encryption)
            .finish_non_exhaustive()
    }
}

impl ContractKeys {
    /// The key pairs of the contract whose gatekeeper-derived secret is `secret`.
    pub fn derive(secret: &[u8; 32]) -> Result<Self, ProtocolError> {
        let hk = hkdf::Hkdf::<Sha256>::new(Some(tag::CONTRACT_KEYS), secret);
        let part = |label: &[u8]| -> Result<Zeroizing<[u8; 32]>, ProtocolError> {
            let mut out = Zeroizing::new([0u8; 32]);
            hk.expand(label, &mut out[..])
                .map_err(|_| ProtocolError::Seal)?;
            Ok(out)
        };
        let encryption = RecipientKey::derive(&part(b"encryption")?[..]);
        // A uniform 32-byte string is a valid scalar except with probability ~2^-128.
        let signing = SigningKey::from_slice(&part(b"signing")?[..])
            .map_err(|_| ProtocolError::Malformed("derived signing key"))?;
        Ok(Self {
            encryption,
            signing,
            checkpoint: part(b"checkpoint")?,
            state_root: part(b"state-root")?,
        })
    }

    /// The key the contract's checkpoints are sealed with.
    pub fn checkpoint_secret(&self) -> &[u8; 32] {
        &self.checkpoint
    }

    /// The key of the contract's state root ([`crate::state_root`]): every
    /// worker holding the contract's secret computes the same root; nobody else can test
    /// a guess against it.
    pub fn state_root_key(&self) -> &[u8; 32] {
        &self.state_root
    }

    /// The public halves as the registry lists them.
    pub fn published(
        &self,
        contract: [u8; 32],
        epoch: phalanx_types::Epoch,
    ) -> chain::types::ContractKey {
        chain::types::ContractKey {
            contract,
            epoch,
            encryption_key: self.encryption.public_bytes(),
            signing_key: chain::types::public_key(self.signing.verifying_key()),
            published_by: Vec::new(),
            published_at: 0,
            commands_before: 0,
        }
    }
}

fn command_info(contract: &[u8; 32], sender: &[u8], nonce: u64) -> Vec<u8> {
    let mut info = tag::COMMAND_ENVELOPE.to_vec();
    info.extend_from_slice(contract);
    info.extend_from_slice(&(sender.len() as u32).to_be_bytes());
    info.extend_from_slice(sender);
    info.extend_from_slice(&nonce.to_be_bytes());
    info
}

/// Seals a command's `input` to the contract's published `encryption_key`, as sent by
/// account `sender` with registry sequence number `nonce`.
pub fn seal_command(
    encryption_key: &[u8],
    contract: &[u8; 32],
    sender: &[u8],
    nonce: u64,
    input: &[u8],
) -> Result<Vec<u8>, ProtocolError> {
    envelope::seal_with_info(
        encryption_key,
        &command_info(contract, sender, nonce),
        input,
    )
    .map(|s| s.to_bytes())
    .map_err(|_| ProtocolError::Seal)
}

/// Opens a command carried by a transaction of `sender` with sequence number `nonce`.
pub fn open_command(
    keys: &ContractKeys,
    contract: &[u8; 32],
    sender: &[u8],
    nonce: u64,
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>, ProtocolError> {
    let sealed = Sealed::from_bytes(ciphertext).ok_or(ProtocolError::Malformed("command"))?;
    envelope::open_with_info(
        &keys.encryption,
        &command_info(contract, sender, nonce),
        &sealed,
    )
    .map_err(|_| ProtocolError::Sealed("command"))
}

/// A command on the Solidity registry, opened: who calls, with which nonce, what.
#[derive(Debug)]
pub struct EvmCall {
    /// The caller's P-256 key (SEC1 compressed): the contract sees its caller id, as a
    /// query by the same key does.
    pub caller: Vec<u8>,
    /// The caller's nonce: each command's must exceed the last one run from that caller
    /// (the executor's rule), so a ciphertext sent again runs once.
    pub nonce: u64,
    /// The input.
    pub input: Zeroizing<Vec<u8>>,
}

/// The bytes an EVM command's caller signs: the tag, the contract, the sending
/// account, the nonce and the input.
fn evm_call_signed(contract: &[u8; 32], sender: &[u8; 20], nonce: u64, input: &[u8]) -> Vec<u8> {
    [
        tag::EVM_COMMAND_CALLER,
        contract,
        sender,
        &nonce.to_be_bytes(),
        input,
    ]
    .concat()
}

/// Seals a command for the Solidity registry, sent by the account `sender`: `caller`
/// signs it (the contract, the account, `nonce`, `input`), and the sealed body is
/// `caller key (33) ‖ nonce (u64) ‖ signature (64) ‖ input`, the envelope binding the
/// contract and the account (with nonce 0: the chain orders the account's
/// transactions). Another account cannot send the ciphertext as its own, and the caller
/// is the same P-256 identity its queries name.
pub fn seal_evm_command(
    encryption_key: &[u8],
    contract: &[u8; 32],
    sender: &[u8; 20],
    caller: &p256::ecdsa::SigningKey,
    nonce: u64,
    input: &[u8],
) -> Result<Vec<u8>, ProtocolError> {
    let key = chain::types::public_key(caller.verifying_key());
    let sig: p256::ecdsa::Signature = p256::ecdsa::signature::Signer::sign(
        caller,
        &evm_call_signed(contract, sender, nonce, input),
    );
    let body = Zeroizing::new([&key[..], &nonce.to_be_bytes(), &sig.to_bytes(), input].concat());
    seal_command(encryption_key, contract, sender, 0, &body)
}

/// Opens a command of the account `sender` on the Solidity registry
/// ([`seal_evm_command`]) and checks its caller's signature.
pub fn open_evm_command(
    keys: &ContractKeys,
    contract: &[u8; 32],
    sender: &[u8; 20],
    ciphertext: &[u8],
) -> Result<EvmCall, ProtocolError> {
    let body = open_command(keys, contract, sender, 0, ciphertext)?;
    let malformed = || ProtocolError::Malformed("command body");
    let (caller, rest) = body.split_at_checked(33).ok_or_else(malformed)?;
    let (nonce, rest) = rest.split_first_chunk::<8>().ok_or_else(malformed)?;
    let (signature, input) = rest.split_at_checked(64).ok_or_else(malformed)?;
    let nonce = u64::from_be_bytes(*nonce);
    verify_p256(
        caller,
        &evm_call_signed(contract, sender, nonce, input),
        signature,
    )?;
    Ok(EvmCall {
        caller: caller.to_vec(),
        nonce,
        input: Zeroizing::new(input.to_vec()),
    })
}

/// A query as sent to a worker (JSON; binary fields in standard base64, ids in hex).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Query {
    /// The contract.
    pub contract: Hex<32>,
    /// The user's P-256 key (SEC1 compressed, base64): signs the query; the contract
    /// sees its caller id.
    pub caller_key: String,
    /// The HPKE key (SEC1 uncompressed, base64) the answer is sealed to.
    pub reply_key: String,
    /// Fresh per query.
    pub nonce: Hex<16>,
    /// The input, HPKE-sealed to the worker's key as listed on the registry (base64).
    pub sealed_input: String,
    /// Fuel the user allows (at most the worker's limit).
    #[serde(default)]
    pub max_fuel: Option<u64>,
    /// The lowest chain height the answer may be computed at (a worker behind it
    /// refuses rather than answer from older state).
    #[serde(default)]
    pub min_height: Option<u64>,
    /// ECDSA P-256 (r ‖ s, base64) over [`Query::signed_bytes`].
    pub signature: String,
}

/// What a user bounds a query by (both signed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bounds {
    /// Fuel allowed (the worker's limit when `None`).
    pub max_fuel: Option<u64>,
    /// The lowest height the answer may come from.
    pub min_height: Option<u64>,
}

/// Largest query input, sealed answer or field a worker reads.
pub const MAX_QUERY_BYTES: usize = 96 * 1024;

/// What a signed request to a worker asks for: a query of the contract, or the receipt
/// of one of the caller's commands. The two are signed and sealed under different tags,
/// so neither can be sent as the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// `POST /v1/query`: the input runs as a read-only call.
    Query,
    /// `POST /v1/receipt`: the input names a command by its nonce
    /// ([`phalanx_types::receipt::request`]).
    Receipt,
    /// `POST /v1/events`: the input names the first command sequence wanted
    /// ([`phalanx_types::receipt::events_request`]).
    Events,
}

impl Purpose {
    fn signature_tag(self) -> &'static [u8] {
        match self {
            Self::Query => tag::QUERY_SIGNATURE,
            Self::Receipt => tag::RECEIPT_SIGNATURE,
            Self::Events => tag::EVENTS_SIGNATURE,
        }
    }

    fn envelope_tag(self) -> &'static [u8] {
        match self {
            Self::Query => tag::QUERY_ENVELOPE,
            Self::Receipt => tag::RECEIPT_ENVELOPE,
            Self::Events => tag::EVENTS_ENVELOPE,
        }
    }

    /// The statement's commitment to the request (domain-separated by purpose).
    pub fn request_hash(
        self,
        caller_key: &[u8],
        nonce: &[u8; 16],
        salt: &[u8; SALT_LEN],
        input: &[u8],
    ) -> [u8; 32] {
        match self {
            Self::Query => phalanx_types::statement::query_hash(caller_key, nonce, salt, input),
            Self::Receipt => phalanx_types::receipt::request_hash(caller_key, nonce, salt, input),
            Self::Events => {
                phalanx_types::receipt::events_request_hash(caller_key, nonce, salt, input)
            }
        }
    }
}

impl Query {
    /// What the user signs: the worker it is for, the contract, the reply key, the
    /// nonce, the fuel and height bounds (each with a presence flag) and the hash of the
    /// sealed input.
    pub fn signed_bytes(&self, worker: &[u8]) -> Result<Vec<u8>, ProtocolError> {
        self.signed_bytes_as(worker, Purpose::Query)
    }

    /// [`Self::signed_bytes`] for a request of `purpose`.
    pub fn signed_bytes_as(
        &self,
        worker: &[u8],
        purpose: Purpose,
    ) -> Result<Vec<u8>, ProtocolError> {
        let mut out = purpose.signature_tag().to_vec();
        for part in [
            worker,
            &unb64(&self.caller_key, "caller key")?,
            &unb64(&self.reply_key, "reply key")?,
        ] {
            out.extend_from_slice(&(part.len() as u32).to_be_bytes());
            out.extend_from_slice(part);
        }
        out.extend_from_slice(&self.contract.0);
        out.extend_from_slice(&self.nonce.0);
        // A flag before each bound: `None` and `Some(0)` sign differently.
        for bound in [self.max_fuel, self.min_height] {
            match bound {
                None => out.push(0),
                Some(v) => {
                    out.push(1);
                    out.extend_from_slice(&v.to_be_bytes());
                }
            }
        }
        out.extend_from_slice(&Sha256::digest(unb64(&self.sealed_input, "sealed input")?));
        Ok(out)
    }

    fn info(
        purpose: Purpose,
        worker: &[u8],
        contract: &[u8; 32],
        caller: &[u8],
        nonce: &[u8; 16],
    ) -> Vec<u8> {
        let mut info = purpose.envelope_tag().to_vec();
        for part in [worker, caller] {
            info.extend_from_slice(&(part.len() as u32).to_be_bytes());
            info.extend_from_slice(part);
        }
        info.extend_from_slice(contract);
        info.extend_from_slice(nonce);
        info
    }

    /// A signed query of `input` for `contract` on the worker with identity key
    /// `worker` and HPKE key `worker_hpke` (both as the registry lists them), and the
    /// query's salt. The sealed plaintext is `salt (32) ‖ input`: the salt keys the
    /// statement's commitment to the query; keep it (and the reply key) to open the
    /// answer and to reveal the query in a bundle.
    pub fn new(
        user: &SigningKey,
        reply: &RecipientKey,
        worker: &[u8],
        worker_hpke: &[u8],
        contract: [u8; 32],
        input: &[u8],
        bounds: Bounds,
    ) -> Result<(Self, [u8; SALT_LEN]), ProtocolError> {
        Self::new_as(
            Purpose::Query,
            user,
            reply,
            (worker, worker_hpke),
            contract,
            input,
            bounds,
        )
    }

    /// A signed request for the receipt of the command `user` sent to `contract` with
    /// `command_nonce` (its registry sequence number on the ledger, its signed nonce on
    /// a Solidity registry), as [`Self::new`] makes a query.
    pub fn receipt_request(
        user: &SigningKey,
        reply: &RecipientKey,
        (worker, worker_hpke): (&[u8], &[u8]),
        contract: [u8; 32],
        command_nonce: u64,
    ) -> Result<(Self, [u8; SALT_LEN]), ProtocolError> {
        Self::new_as(
            Purpose::Receipt,
            user,
            reply,
            (worker, worker_hpke),
            contract,
            &phalanx_types::receipt::request(command_nonce),
            Bounds::default(),
        )
    }

    /// A signed request of `purpose` with plaintext `input`, as [`Self::new`] makes a
    /// query.
    pub fn new_as(
        purpose: Purpose,
        user: &SigningKey,
        reply: &RecipientKey,
        (worker, worker_hpke): (&[u8], &[u8]),
        contract: [u8; 32],
        input: &[u8],
        bounds: Bounds,
    ) -> Result<(Self, [u8; SALT_LEN]), ProtocolError> {
        let caller = chain::types::public_key(user.verifying_key());
        let nonce: [u8; 16] = rand::random();
        let salt: [u8; SALT_LEN] = rand::random();
        let plain = Zeroizing::new([salt.as_slice(), input].concat());
        let sealed = envelope::seal_with_info(
            worker_hpke,
            &Self::info(purpose, worker, &contract, &caller, &nonce),
            &plain,
        )
        .map_err(|_| ProtocolError::Seal)?;
        let mut q = Self {
            contract: Hex(contract),
            caller_key: b64(&caller),
            reply_key: b64(&reply.public_bytes()),
            nonce: Hex(nonce),
            sealed_input: b64(&sealed.to_bytes()),
            max_fuel: bounds.max_fuel,
            min_height: bounds.min_height,
            signature: String::new(),
        };
        let sig: Signature = user.sign(&q.signed_bytes_as(worker, purpose)?);
        q.signature = b64(&sig.to_bytes());
        Ok((q, salt))
    }

    /// The worker's check and decryption: the signature under the caller's key, then the
    /// envelope under `worker_hpke` (this worker's key, identity `worker`). Returns the
    /// caller's key, the query's salt and the input.
    pub fn open(&self, worker: &[u8], worker_hpke: &RecipientKey) -> Result<Opened, ProtocolError> {
        self.open_as(Purpose::Query, worker, worker_hpke)
    }

    /// [`Self::open`] for a request of `purpose`.
    pub fn open_as(
        &self,
        purpose: Purpose,
        worker: &[u8],
        worker_hpke: &RecipientKey,
    ) -> Result<Opened, ProtocolError> {
        let caller = unb64(&self.caller_key, "caller key")?;
        verify_p256(
            &caller,
            &self.signed_bytes_as(worker, purpose)?,
            &unb64(&self.signature, "signature")?,
        )?;
        let sealed = Sealed::from_bytes(&unb64(&self.sealed_input, "sealed input")?)
            .ok_or(ProtocolError::Malformed("sealed input"))?;
        let plain = envelope::open_with_info(
            worker_hpke,
            &Self::info(purpose, worker, &self.contract.0, &caller, &self.nonce.0),
            &sealed,
        )
        .map_err(|_| ProtocolError::Sealed("query"))?;
        let (salt, input) = split_salt(&plain).ok_or(ProtocolError::Malformed("query salt"))?;
        Ok(Opened {
            caller,
            salt,
            input: Zeroizing::new(input.to_vec()),
        })
    }
}

/// A query the worker opened (`Debug` shows the caller only).
pub struct Opened {
    /// The caller's key (SEC1).
    pub caller: Vec<u8>,
    /// The query's salt.
    pub salt: [u8; SALT_LEN],
    /// The input.
    pub input: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for Opened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opened")
            .field("caller", &hex::encode(&self.caller))
            .finish_non_exhaustive()
    }
}

/// `salt (32) ‖ rest` → the salt and the rest.
fn split_salt(plain: &[u8]) -> Option<([u8; SALT_LEN], &[u8])> {
    let (salt, rest) = plain.split_first_chunk::<SALT_LEN>()?;
    Some((*salt, rest))
}

/// A worker's answer (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Answer {
    /// What the worker states.
    pub statement: Statement,
    /// ECDSA P-256 by the worker's identity key over the statement's signed bytes
    /// (r ‖ s, base64).
    pub signature: String,
    /// The answer's salt and the output (`salt (32) ‖ output`), HPKE-sealed to the
    /// query's reply key with `info = ANSWER_ENVELOPE ‖ SHA-256(statement's signed
    /// bytes)` (base64).
    pub sealed_output: String,
}

/// What a user learns from an answer: the output and the salt of its commitment (kept
/// to reveal the answer in a bundle). `Debug` shows neither.
pub struct Opening {
    /// The answer's salt.
    pub salt: [u8; SALT_LEN],
    /// The output.
    pub output: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for Opening {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opening").finish_non_exhaustive()
    }
}

fn answer_info(statement: &[u8]) -> Vec<u8> {
    [tag::ANSWER_ENVELOPE, Sha256::digest(statement).as_slice()].concat()
}

impl Answer {
    /// The worker's side: signs `statement` (whose answer hash is salted with `salt`)
    /// with `identity` and seals `salt ‖ output` to the query's reply key.
    pub fn new(
        statement: Statement,
        identity: &SigningKey,
        reply_key: &[u8],
        salt: &[u8; SALT_LEN],
        output: &[u8],
    ) -> Result<Self, ProtocolError> {
        let bytes = statement
            .signed_bytes()
            .map_err(|_| ProtocolError::Malformed("statement"))?;
        let sig: Signature = identity.sign(&bytes);
        let plain = Zeroizing::new([salt.as_slice(), output].concat());
        let sealed = envelope::seal_with_info(reply_key, &answer_info(&bytes), &plain)
            .map_err(|_| ProtocolError::Seal)?;
        Ok(Self {
            statement,
            signature: b64(&sig.to_bytes()),
            sealed_output: b64(&sealed.to_bytes()),
        })
    }

    /// The user's side: checks the signature under `worker` (the identity key the user
    /// sealed the query to, from the registry), opens the output with `reply`, and
    /// checks that the statement names this query (`input` under `query_salt`) and this
    /// output.
    pub fn open(
        &self,
        worker: &[u8],
        reply: &RecipientKey,
        query: &Query,
        query_salt: &[u8; SALT_LEN],
        input: &[u8],
    ) -> Result<Opening, ProtocolError> {
        self.open_as(Purpose::Query, worker, reply, query, (query_salt, input))
    }

    /// [`Self::open`] for the answer to a request of `purpose` (a receipt's output is
    /// the encoded [`phalanx_types::receipt::Receipt`]).
    pub fn open_as(
        &self,
        purpose: Purpose,
        worker: &[u8],
        reply: &RecipientKey,
        query: &Query,
        (query_salt, input): (&[u8; SALT_LEN], &[u8]),
    ) -> Result<Opening, ProtocolError> {
        let bytes = self
            .statement
            .signed_bytes()
            .map_err(|_| ProtocolError::Malformed("statement"))?;
        verify_statement(&self.statement, &self.signature, worker)?;
        let sealed = Sealed::from_bytes(&unb64(&self.sealed_output, "sealed output")?)
            .ok_or(ProtocolError::Malformed("sealed output"))?;
        let plain = envelope::open_with_info(reply, &answer_info(&bytes), &sealed)
            .map_err(|_| ProtocolError::Sealed("answer"))?;
        let (salt, output) = split_salt(&plain).ok_or(ProtocolError::Malformed("answer salt"))?;
        let caller = unb64(&query.caller_key, "caller key")?;
        let q = purpose.request_hash(&caller, &query.nonce.0, query_salt, input);
        let a = phalanx_types::statement::answer_hash(&salt, output);
        if self.statement.query_hash.0 != q
            || self.statement.answer_hash.0 != a
            || self.statement.contract != query.contract
        {
            return Err(ProtocolError::Malformed(
                "statement (names another query or answer)",
            ));
        }
        Ok(Opening {
            salt,
            output: Zeroizing::new(output.to_vec()),
        })
    }
}

/// Checks a statement's signature (base64 r ‖ s) under the worker key `worker`, which
/// must also be the key the statement names.
pub fn verify_statement(
    statement: &Statement,
    signature: &str,
    worker: &[u8],
) -> Result<(), ProtocolError> {
    let named = statement
        .worker_key()
        .map_err(|_| ProtocolError::Malformed("statement worker"))?;
    if named != worker {
        return Err(ProtocolError::BadSignature);
    }
    let bytes = statement
        .signed_bytes()
        .map_err(|_| ProtocolError::Malformed("statement"))?;
    verify_p256(worker, &bytes, &unb64(signature, "signature")?)
}

/// ECDSA P-256 / SHA-256 (`r ‖ s`) under a SEC1 key (the registry's helpers: the key
/// decompressed once, `ring` verifies).
fn verify_p256(key: &[u8], message: &[u8], signature: &[u8]) -> Result<(), ProtocolError> {
    let point = chain::types::p256_point(key).ok_or(ProtocolError::Malformed("public key"))?;
    if chain::types::verify_p256_point(&point, message, signature) {
        Ok(())
    } else {
        Err(ProtocolError::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// An EVM command opens only whole and as sealed: its caller, nonce and input come
    /// back; a truncated body, a flipped byte of the ciphertext, another sending account
    /// or a signature over other bytes is refused.
    #[test]
    fn evm_commands_open_whole_or_not_at_all() {
        let keys = ContractKeys::derive(&[0x5e; 32]).unwrap();
        let k = keys.published([1; 32], phalanx_types::Epoch(0));
        let caller = chain::random_key();
        let (contract, sender) = ([1; 32], [0xa1; 20]);
        let sealed =
            seal_evm_command(&k.encryption_key, &contract, &sender, &caller, 7, b"bump").unwrap();
        let call = open_evm_command(&keys, &contract, &sender, &sealed).unwrap();
        assert_eq!(
            call.caller,
            chain::types::public_key(caller.verifying_key())
        );
        assert_eq!((call.nonce, call.input.as_slice()), (7, &b"bump"[..]));
        let mut flipped = sealed.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(open_evm_command(&keys, &contract, &sender, &flipped).is_err());
        assert!(open_evm_command(&keys, &contract, &[0xa2; 20], &sealed).is_err());
        assert!(open_evm_command(&keys, &contract, &sender, &sealed[..sealed.len() / 2]).is_err());
        // A body too short to carry a caller, nonce and signature.
        let short = seal_command(&k.encryption_key, &contract, &sender, 0, &[2; 90]).unwrap();
        assert_eq!(
            open_evm_command(&keys, &contract, &sender, &short).unwrap_err(),
            ProtocolError::Malformed("command body")
        );
        // A well-formed body whose signature is over other bytes.
        let key = chain::types::public_key(caller.verifying_key());
        let body = [&key[..], &7u64.to_be_bytes(), &[0u8; 64], b"bump"].concat();
        let forged = seal_command(&k.encryption_key, &contract, &sender, 0, &body).unwrap();
        assert!(open_evm_command(&keys, &contract, &sender, &forged).is_err());
    }
}
