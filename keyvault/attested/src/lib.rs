//! # phalanx-attested
//!
//! What an attested Phalanx process — a pRuntime worker or a gatekeeper — does over the
//! network with its TEE ([`phalanx_tee`]): it attests against the attestation service
//! ([`attest`]: nonce, quote, token, checked against the service's keys), and before it
//! trusts a gatekeeper it checks that the registry lists it with TEE evidence it can
//! re-check itself ([`evidence`]).
//!
//! It sits above the TEE layer and beside the clients it uses (the release client, the
//! registry's light client, the verifier's evidence format); the TEE layer depends on
//! none of them, and nothing here runs a server or opens a store.
//!
//! **Must never depend on** a server, a store, the gatekeeper or the worker: both stand
//! on it (`scripts/check-deps.sh`).

pub mod attest;
pub mod evidence;
