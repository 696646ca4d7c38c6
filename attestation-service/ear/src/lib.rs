//! # phalanx-ear
//!
//! What crosses between a worker, the attestation service and everyone who relies on
//! its results (gatekeepers, pRuntime, users), defined once:
//!
//! - [`report_data`]: the 64 bytes a worker puts in its quote's REPORTDATA to bind the
//!   service's nonce and its own runtime data.
//! - [`Claims`]: the attestation result, an EAR (IETF RATS EAT Attestation Result,
//!   draft-ietf-rats-ear) with Phalanx's extensions. The service signs exactly this
//!   type; relying parties read exactly this type. Its JSON is pinned by a golden test
//!   (`tests/golden.rs`).
//! - [`Jwks`] and [`verify_token`]: the service's public keys (RFC 7517) and the check
//!   of a compact ES256 JWS (RFC 7515) against them, returning the typed claims. Time,
//!   issuer and policy checks are the relying party's; [`Claims`] gives them typed
//!   fields to compare.
//!
//! - [`runtime::WorkerRuntimeData`]: what a worker binds into that report data (its
//!   identity key, its HPKE key, the registry it registers on).
//! - [`tenant`]: the one derivation of a tenant id from a TEE's whole identity.
//!
//! Signing stays in the attestation service (its keys never leave it); this crate only
//! verifies, with `ring` (through `phalanx_types::ecdsa`). No I/O, no async runtime.
//!
//! **Must never depend on** a server, a store, the registry, the key release or the TEE
//! layer: it is the one definition of the claims that the signer and every checker
//! share.

mod claims;
mod jws;
pub mod runtime;
pub mod tenant;

pub use claims::{
    Claims, EAR_PROFILE, Evidence, EvidenceMeasurements, Stale, Submodule, TrustRoot, VerifierId,
};
pub use jws::{EarError, Jwks, MAX_TOKEN, verify_token};
pub use phalanx_dcap::TeeType;
pub use phalanx_dcap::policy::{Appraisal, Reason, Verdict};

use sha2::{Digest, Sha512};

/// REPORTDATA binding a nonce and runtime data:
/// `SHA-512(tag ‖ len(nonce) ‖ nonce ‖ len(runtime_data) ‖ runtime_data)` (lengths as
/// big-endian u64), exactly the 64 bytes of SGX and TDX REPORTDATA.
pub fn report_data(nonce: &[u8], runtime_data: &[u8]) -> [u8; 64] {
    let mut h = Sha512::new();
    h.update(phalanx_types::tag::REPORT_DATA);
    h.update((nonce.len() as u64).to_be_bytes());
    h.update(nonce);
    h.update((runtime_data.len() as u64).to_be_bytes());
    h.update(runtime_data);
    h.finalize().into()
}

/// SHA-256 of runtime data, base64url: the token's `phalanx.runtime_data_hash`.
pub fn runtime_data_hash(runtime_data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(runtime_data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_data_is_injective_in_its_parts() {
        assert_ne!(report_data(b"ab", b"c"), report_data(b"a", b"bc"));
        assert_ne!(report_data(b"n", b"k1"), report_data(b"n", b"k2"));
        assert_eq!(report_data(b"n", b"k"), report_data(b"n", b"k"));
    }
}
