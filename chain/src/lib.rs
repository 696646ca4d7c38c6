//! # chain
//!
//! The registry, where identities become public facts: which workers are genuine
//! (identity key, HPKE key, tenant, TCB status, quote hash, evidence time), which
//! measurements are allowed and in which role, who the gatekeepers are and their
//! threshold, the master public key of each epoch, which epochs are retired, and whether
//! a rotation is under way. **The registry holds only verified identities**: a
//! registration carries its quote and collateral, and the rules verify them themselves
//! ([`evidence`]) against the DCAP roots the genesis names — not the attestation
//! service's word, not the worker's.
//!
//! - [`types`]: records, signed transactions, blocks, events, and their strict
//!   encodings. Every signature is ECDSA P-256 over a domain tag and the chain id (the
//!   hash of the genesis parameters).
//! - [`evidence`]: the registry's own check of a registration (quote to the genesis's
//!   roots at the block's time, TCB status, report data binding the keys and this chain).
//! - [`commit`]: state commitments — the registry's facts in a Jellyfish Merkle tree,
//!   with inclusion and absence proofs against a root. Every block header carries the
//!   root of the state after it (every earlier header's hash included) and of its
//!   transactions, so a header and a few proofs stand for the whole chain.
//! - [`facts`]: what the state commitment holds, each fact's key and value encoding.
//! - [`proof`]: a header and proofs of facts, checked against a pinned genesis: what an
//!   answer's verification bundle carries instead of blocks.
//! - [`evm_proof`]: the same facts on an EVM chain, proven by `eth_getProof` against a
//!   block header the caller trusts (sans-IO; the `evm` backend fetches them).
//! - [`endorse`]: the same check made by each gatekeeper for a registry that cannot
//!   afford DCAP itself (the Solidity registry), and the endorsement it signs.
//! - [`state`]: the rules, sans-IO. A worker registers itself (signed by its identity
//!   key, with evidence) with an allowed measurement; every measurement has a role
//!   (pRuntime, gatekeeper, app): only a pRuntime with current evidence publishes
//!   contract keys, only a gatekeeper joins the set; only governance changes the
//!   allow-list, the gatekeeper set and its threshold (every DKG and reshare must produce
//!   it) and retires epochs; only governance locks a
//!   rotation, one at a time and to the next epoch only; an epoch's keys are published
//!   only with the committee's certificate ([`types::EpochCertificate`]: every
//!   member's confirmation of the round's public key set, checked against the
//!   gatekeeper set by [`state::State::check_certificate`]); per-account sequence
//!   numbers stop replays.
//! - [`ledger`]: the embedded ledger (the default backend): an append-only chain of
//!   blocks in rocksdb, each hash-linked and signed by the ledger's authority key, the
//!   whole chain re-verified on open.
//! - [`registry_url`]: how configs and commands name a registry (`ledger+http://…`,
//!   `evm+http://…#0xADDRESS`).
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
//! ledger.add_measurement(&governance, &[0xd3; 32], chain::types::Role::Runtime).await?;
//! assert_eq!(ledger.allowed_measurements().await?.len(), 1);
//! # Ok(()) }
//! # }
//! ```
//!
//! **Must never depend on** the gatekeeper, the worker, the key release, the TEE layer
//! or the verifier: the registry sits below all of them; rocksdb only with feature
//! `ledger`.

pub mod commit;
pub mod endorse;
pub mod evidence;
#[cfg(feature = "evm")]
pub mod evm;
pub mod evm_proof;
pub mod facts;
#[cfg(feature = "client")]
pub mod grpc;
#[cfg(feature = "ledger")]
pub mod ledger;
pub mod proof;
pub mod registry;
pub mod registry_url;
#[cfg(feature = "sim")]
pub mod sim;
pub mod state;
pub mod types;
pub mod view;

/// Lower-case hex of `b`, for messages and debug output.
pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A fresh P-256 signing key (an account, or the authority's key).
pub fn random_key() -> p256::ecdsa::SigningKey {
    use p256::elliptic_curve::Generate;
    p256::ecdsa::SigningKey::generate_from_rng(&mut rand::rng())
}

/// A 32-byte secret derived from a process's identity key (which only its sealed store
/// holds) for one purpose, named by the domain tag `info`: HKDF-SHA256, no salt.
pub fn derive_from_identity(
    identity: &p256::ecdsa::SigningKey,
    info: &[u8],
) -> zeroize::Zeroizing<[u8; 32]> {
    let secret = zeroize::Zeroizing::new(identity.to_bytes());
    let mut key = zeroize::Zeroizing::new([0u8; 32]);
    // 32 bytes is HKDF-SHA256's own length, so expanding cannot fail.
    let info = [info];
    if let Ok(okm) = ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, &[])
        .extract(secret.as_slice())
        .expand(&info, ring::hkdf::HKDF_SHA256)
    {
        let _ = okm.fill(key.as_mut_slice());
    }
    key
}
