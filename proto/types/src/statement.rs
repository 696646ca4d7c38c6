//! The statement a pRuntime worker signs with its identity key for every query answer:
//! which worker, at which chain position, under which contract code and state, answered
//! which query with which answer. Whoever is shown the plaintext query and answer can
//! recompute both hashes and check the statement; a verifier then ties the worker's
//! identity key to its attestation and registration (the verification issue).
//!
//! Signed bytes ([`Statement::signed_bytes`], all integers big-endian):
//!
//! ```text
//! ANSWER_STATEMENT tag ‖ u32 len ‖ worker identity key (SEC1 compressed)
//!   ‖ contract id (32) ‖ code hash (32) ‖ height (u64) ‖ block hash (32)
//!   ‖ state root (32) ‖ query hash (32) ‖ answer hash (32)
//! ```
//!
//! The signature is ECDSA P-256 with SHA-256 over those bytes, `r ‖ s` (64 bytes).
//! `height` is the number of the last block the worker applied and `block hash` its hash;
//! `state root` is the contract's state after that block.
//!
//! ```text
//! query hash  = SHA-256(ANSWER_HASH ‖ 0x01 ‖ u32 len ‖ caller key ‖ nonce (16)
//!                       ‖ query salt (32) ‖ query)
//! answer hash = SHA-256(ANSWER_HASH ‖ 0x02 ‖ answer salt (32) ‖ answer)
//! ```
//!
//! The caller key is the user's P-256 key that signed the query (the contract saw its
//! [`crate::contract::caller_id`]), the nonce the user's. The hashes are salted
//! commitments: the statement travels in clear, and an unsalted hash of a low-entropy
//! query or answer (a bid, a balance) would let anyone who sees it try every value. The
//! query salt is chosen by the user and travels sealed inside the query; the answer salt
//! is chosen by the worker and travels sealed inside the answer; both are revealed only
//! with the plaintext, in a verification bundle.

use crate::codec::{Codec, DecodeError, Reader, Writer};
use crate::hex::Hex;
use crate::tag;
use sha2::{Digest, Sha256};

/// Largest identity key accepted in a statement.
const MAX_KEY: usize = 133;

/// What a worker states about one answer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Statement {
    /// The worker's identity key (SEC1 compressed, hex).
    pub worker: String,
    /// The contract id.
    pub contract: Hex<32>,
    /// The contract's code hash.
    pub code_hash: Hex<32>,
    /// The last block applied.
    pub height: u64,
    /// That block's hash.
    pub block_hash: Hex<32>,
    /// The contract's state root after it.
    pub state_root: Hex<32>,
    /// [`query_hash`] of the query.
    pub query_hash: Hex<32>,
    /// [`answer_hash`] of the answer.
    pub answer_hash: Hex<32>,
}

impl Statement {
    /// The bytes the worker signs ([`Codec::encode`], after checking the worker key).
    pub fn signed_bytes(&self) -> Result<Vec<u8>, DecodeError> {
        let worker = self.worker_key()?;
        let mut w = Writer::default();
        self.put(&mut w, &worker);
        Ok(w.0)
    }

    fn put(&self, w: &mut Writer, worker: &[u8]) {
        w.raw(tag::ANSWER_STATEMENT);
        w.bytes(worker);
        w.raw(&self.contract.0);
        w.raw(&self.code_hash.0);
        w.u64(self.height);
        for h in [
            &self.block_hash,
            &self.state_root,
            &self.query_hash,
            &self.answer_hash,
        ] {
            w.raw(&h.0);
        }
    }

    /// The worker's identity key bytes.
    pub fn worker_key(&self) -> Result<Vec<u8>, DecodeError> {
        let bad = DecodeError::Invalid {
            what: "statement",
            field: "worker",
        };
        let key = hex::decode(&self.worker).map_err(|_| bad)?;
        if key.is_empty() || key.len() > MAX_KEY {
            return Err(bad);
        }
        Ok(key)
    }
}

impl Codec for Statement {
    const NAME: &'static str = "statement";
    type Error = DecodeError;

    /// The signed bytes (an unusable worker key writes an empty one, which does not
    /// decode: use [`Statement::signed_bytes`] to be told).
    fn encode(&self, w: &mut Writer) {
        self.put(w, &self.worker_key().unwrap_or_default());
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        if r.take(tag::ANSWER_STATEMENT.len(), "tag")? != tag::ANSWER_STATEMENT {
            return Err(r.invalid("tag"));
        }
        let worker = r.bytes("worker", MAX_KEY)?;
        if worker.is_empty() {
            return Err(r.invalid("worker"));
        }
        Ok(Self {
            worker: hex::encode(worker),
            contract: Hex(r.array("contract")?),
            code_hash: Hex(r.array("code hash")?),
            height: r.u64("height")?,
            block_hash: Hex(r.array("block hash")?),
            state_root: Hex(r.array("state root")?),
            query_hash: Hex(r.array("query hash")?),
            answer_hash: Hex(r.array("answer hash")?),
        })
    }
}

/// Length of a query's or an answer's salt.
pub const SALT_LEN: usize = 32;

/// The salted commitment to a query as a statement names it.
pub fn query_hash(
    caller_key: &[u8],
    nonce: &[u8; 16],
    salt: &[u8; SALT_LEN],
    query: &[u8],
) -> [u8; 32] {
    request_hash(1, caller_key, nonce, salt, query)
}

/// The salted commitment to a signed request of `kind` (1 a query, 3 a receipt
/// request, 4 an events request: `crate::receipt`): one layout, the kind byte apart.
pub(crate) fn request_hash(
    kind: u8,
    caller_key: &[u8],
    nonce: &[u8; 16],
    salt: &[u8; SALT_LEN],
    query: &[u8],
) -> [u8; 32] {
    Sha256::new()
        .chain_update(tag::ANSWER_HASH)
        .chain_update([kind])
        .chain_update((caller_key.len() as u32).to_be_bytes())
        .chain_update(caller_key)
        .chain_update(nonce)
        .chain_update(salt)
        .chain_update(query)
        .finalize()
        .into()
}

/// The salted commitment to an answer as a statement names it.
pub fn answer_hash(salt: &[u8; SALT_LEN], answer: &[u8]) -> [u8; 32] {
    Sha256::new()
        .chain_update(tag::ANSWER_HASH)
        .chain_update([2])
        .chain_update(salt)
        .chain_update(answer)
        .finalize()
        .into()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sample() -> Statement {
        Statement {
            worker: hex::encode([2u8; 33]),
            contract: Hex([1; 32]),
            code_hash: Hex([2; 32]),
            height: 7,
            block_hash: Hex([3; 32]),
            state_root: Hex([4; 32]),
            query_hash: Hex(query_hash(b"key", &[0; 16], &[1; 32], b"q")),
            answer_hash: Hex(answer_hash(&[2; 32], b"a")),
        }
    }

    #[test]
    fn signed_bytes_round_trip_and_every_cut_is_refused() {
        let s = sample();
        let bytes = s.signed_bytes().unwrap();
        assert_eq!(bytes, s.to_bytes());
        assert_eq!(Statement::from_bytes(&bytes).unwrap(), s);
        for cut in 0..bytes.len() {
            assert!(Statement::from_bytes(&bytes[..cut]).is_err(), "cut {cut}");
        }
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<Statement>(&json).unwrap(), s);
    }

    #[test]
    fn query_and_answer_hashes_never_collide() {
        // The same bytes as query and as answer hash differently; the caller and nonce
        // are bound.
        let z = [0; 32];
        assert_ne!(query_hash(b"", &[0; 16], &z, b"x"), answer_hash(&z, b"x"));
        assert_ne!(
            query_hash(b"a", &[0; 16], &z, b"x"),
            query_hash(b"b", &[0; 16], &z, b"x")
        );
        assert_ne!(
            query_hash(b"a", &[0; 16], &z, b"x"),
            query_hash(b"a", &[1; 16], &z, b"x")
        );
        assert_ne!(
            query_hash(b"ab", &[0; 16], &z, b""),
            query_hash(b"a", &[0; 16], &z, b"b")
        );
        // The salt is bound: the same plaintext under another salt is another commitment.
        assert_ne!(
            query_hash(b"a", &[0; 16], &z, b"x"),
            query_hash(b"a", &[0; 16], &[1; 32], b"x")
        );
        assert_ne!(answer_hash(&z, b"x"), answer_hash(&[1; 32], b"x"));
    }
}
