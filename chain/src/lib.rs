//! # chain
//!
//! The registry, where identities become public facts: which workers are genuine
//! (identity key, HPKE key, measurement, hash of the attestation result, registered-at),
//! which measurements are allowed, who the gatekeepers are, the master public key of
//! each epoch, and whether a rotation is under way. Evidence is verified off chain (by
//! the attestation service); the chain records the result.
//!
//! - [`types`]: records, signed transactions, blocks, events, and their strict
//!   encodings. Every signature is ECDSA P-256 over a domain tag and the chain id (the
//!   hash of the genesis parameters).
//! - [`state`]: the rules, sans-IO. A worker registers itself (signed by its identity
//!   key) with an allowed measurement; only governance changes the allow-list and the
//!   gatekeeper set; a gatekeeper must be a registered worker; only governance locks a
//!   rotation, one at a time and to the next epoch only; an epoch's keys are published
//!   only with the committee's certificate ([`types::EpochCertificate`]: every
//!   member's confirmation of the round's public key set, checked against the
//!   gatekeeper set by [`state::State::check_certificate`]); per-account sequence
//!   numbers stop replays.
//! - [`ledger`]: the embedded ledger (the default backend): an append-only chain of
//!   blocks in rocksdb, each hash-linked and signed by the ledger's authority key, the
//!   whole chain re-verified on open.
//! - [`registry`]: the [`registry::Registry`] trait every backend implements, and its
//!   implementation for backends that take this crate's signed transactions.
//! - [`grpc`]: the ledger's node (`phalanx chain serve`) and the [`grpc::LightClient`],
//!   which verifies every block's link, signature and transactions and rebuilds the
//!   state itself, trusting no server.
//!
//! ```
//! # #[cfg(feature = "ledger")] {
//! use chain::registry::Registry;
//! # fn now() -> i64 { 1_760_000_000 }
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let (authority, governance) = (chain::random_key(), chain::random_key());
//! let ledger = chain::ledger::Ledger::open(dir.path(), authority, chain::types::public_key(governance.verifying_key()), chain::types::EvidenceRule::intel(), now)?;
//! ledger.add_measurement(&governance, &[0xd3; 32], chain::types::Role::App).await?;
//! assert_eq!(ledger.allowed_measurements().await?.len(), 1);
//! # Ok(()) }
//! # }
//! ```

pub mod evidence;
#[cfg(feature = "evm")]
pub mod evm;
#[cfg(feature = "client")]
pub mod grpc;
#[cfg(feature = "ledger")]
pub mod ledger;
pub mod registry;
#[cfg(feature = "sim")]
pub mod sim;
pub mod state;
pub mod types;

/// A fresh P-256 signing key (an account, or the authority's key).
pub fn random_key() -> p256::ecdsa::SigningKey {
    use p256::elliptic_curve::Generate;
    p256::ecdsa::SigningKey::generate_from_rng(&mut rand::rng())
}
