//! # keyvault
//!
//! Threshold cryptography for Phalanx's gatekeepers, as a sans-IO library: the master
//! secret exists only as Shamir shares over the P-256 scalar field, and keys are
//! derived from it without ever reassembling it.
//!
//! - [`share`]: polynomials, Feldman commitments, Lagrange interpolation at zero, the
//!   explicit one-time dealer import ([`share::dealer_split`]).
//! - [`dleq`]: Chaum–Pedersen DLEQ proofs with an RFC 9497 §2.2 challenge.
//! - [`derive`]: key ids hashed to the curve (RFC 9380), partial evaluations with
//!   proofs, verification that names lying members, Lagrange combination and HKDF.
//!
//! No function here does I/O, reads a clock or owns a random generator: randomness is
//! passed in (`&mut impl CryptoRng`). Secrets live in zeroize-on-drop types with
//! redacted `Debug`. Every hash carries a domain tag from [`tag`].
//!
//! ```
//! use keyvault::derive::{KeyId, combine, evaluate};
//! use keyvault::share::{SecretScalar, dealer_split};
//! # fn main() -> Result<(), keyvault::Error> {
//! let mut rng = rand::rng();
//! let secret = SecretScalar::new(p256::Scalar::from(42u64));
//! let (shares, public) = dealer_split(&secret, 3, 5, &mut rng)?;
//! let id = KeyId { epoch: 0, tenant: "app".into(), path: "db".into(), purpose: "aead".into() };
//! let partials: Vec<_> = shares[1..4].iter().map(|s| evaluate(s, &id, &mut rng)).collect::<Result<_, _>>()?;
//! let key = combine(&public, &id, &partials)?.key;
//! assert_eq!(key.expose().len(), 32);
//! # Ok(()) }
//! ```

pub mod derive;
pub mod dkg;
pub mod dleq;
pub mod envelope;
pub mod error;
pub mod identity;
pub mod lifecycle;
pub mod share;
pub mod tag;

pub use error::Error;
