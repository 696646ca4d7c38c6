//! # phalanx-threshold
//!
//! Threshold cryptography for Phalanx's gatekeepers, as a sans-IO library: the master
//! secret exists only as Shamir shares over the P-256 scalar field, from its birth on,
//! and keys are derived from it without ever reassembling it.
//!
//! - [`share`]: polynomials, Feldman commitments, Lagrange interpolation at zero, and the
//!   explicit one-time dealer import of an existing secret ([`share::dealer_split`]).
//! - [`dkg`]: dealerless genesis after Gennaro–Jarecki–Krawczyk–Rabin (Pedersen
//!   commitments, complaints, QUAL, Feldman extraction with public reconstruction of
//!   cheaters). Rotation to a new master secret is a fresh DKG with `epoch + 1`; keeping
//!   old epochs derivable and locking rotation while a round runs is the node's job.
//! - [`lifecycle`]: proactive refresh (same secret, new shares) and resharing to a new
//!   committee and threshold (same `MPK`), both checked against commitments.
//! - [`dleq`]: Chaum–Pedersen DLEQ proofs with an RFC 9497 §2.2 challenge.
//! - [`derive`](mod@derive): key ids hashed to the curve (RFC 9380 `P256_XMD:SHA-256_SSWU_RO_`),
//!   partial evaluations with proofs, verification that names lying members, Lagrange
//!   combination and HKDF-SHA256 (RFC 5869).
//! - [`identity`]: round messages signed with ECDSA P-256 identity keys, bound to
//!   sender, epoch and round.
//! - [`round`]: rounds between gatekeepers over a network, sans-IO: a spec (kind,
//!   epoch, committee, nonce), an engine that turns each phase's messages into the
//!   next, for the DKG, refresh and reshare, and the commit certificate (every
//!   member's signed confirmation) that the registry checks before it publishes an
//!   epoch's keys; [`wire`]: the strict codec they and the sealed state use.
//! - [`translog`]: the transparency log of releases and rounds, an RFC 9162 Merkle tree
//!   with inclusion and consistency proofs and signed tree heads; [`release_log`]: what
//!   a gatekeeper records in it, and the check that makes a committed bad partial
//!   evidence.
//!
//! **Security model.** With threshold `t`, any `t − 1` members learn nothing about the
//! master secret or any derived key; `t` honest members can always derive, refresh and
//! reshare (so `n ≥ 2t − 1`). Rounds are synchronous; broadcasts reach every member
//! identically; private shares travel over confidential, authenticated channels (mutual
//! TLS between nodes). A malicious member can refuse to take part, send bad shares or
//! commitments, or lie in a partial evaluation: each is detected, attributed by index
//! and excluded (or, in the DKG's extraction phase, its contribution reconstructed). It
//! cannot bias the master key beyond what GJKR allows, learn other shares, or make a
//! worker accept a wrong key. Secrets live in zeroize-on-drop types with redacted
//! `Debug`; secret-dependent arithmetic is `p256`'s constant-time field arithmetic.
//! No function here does I/O, reads a clock or owns a random generator: randomness is
//! passed in (`&mut impl CryptoRng`). Every hash carries a domain tag from [`tag`].
//!
//! ```
//! use phalanx_threshold::derive::{KeyId, combine, evaluate};
//! use phalanx_threshold::share::{SecretScalar, dealer_split};
//! # fn main() -> Result<(), phalanx_threshold::Error> {
//! let mut rng = rand::rng();
//! let secret = SecretScalar::new(p256::Scalar::from(42u64));
//! let (shares, public) = dealer_split(&secret, 3, 5, &mut rng)?;
//! let id = KeyId { epoch: phalanx_threshold::Epoch::GENESIS, tenant: "app".into(), path: "db".into(), purpose: "aead".into() };
//! let partials: Vec<_> = shares[1..4].iter().map(|s| evaluate(s, &id, &mut rng)).collect::<Result<_, _>>()?;
//! let key = combine(&public, &id, &partials)?.key;
//! assert_eq!(key.expose().len(), 32);
//! # Ok(()) }
//! ```
//!
//! **Must never depend on** any I/O, store, network or async crate: sans-IO
//! cryptography over `phalanx-types` only.

pub mod derive;
pub mod dkg;
pub mod dleq;
pub mod error;
pub mod identity;
pub mod lifecycle;
pub mod release_log;
pub mod round;
pub mod share;
pub mod tag;
pub mod translog;
pub mod wire;

pub use error::{Error, LogProof};
/// The key epoch (from `phalanx-types`), re-exported for users of this crate alone.
pub use phalanx_types::Epoch;
