//! # attestation-service
//!
//! The attestation service: it takes a worker's quote and a nonce it issued, verifies
//! the quote with the sans-IO verifier of [`phalanx_dcap`] against collateral it fetches
//! and caches, appraises it under a named [`policy`], and answers with a signed EAR
//! result ([`token`], claims defined once in [`phalanx_ear`]).
//!
//! The verifier's modules are re-exported here (`attestation_service::{verify, quote,
//! collateral, …}`), so existing paths keep working; new code should depend on
//! `phalanx-dcap` directly.
//!
//! The service (feature `server`, on by default) is layered on top: [`config`] (one
//! TOML file with environment overrides), [`store`] (rocksdb), [`source`] (collateral
//! from an Intel PCS / PCCS or the simulated PKI, cached and refreshed before
//! `nextUpdate`), [`service`] (the transport-independent pipeline: nonce → collateral →
//! verify → report-data binding → [`policy`] → signed [`token`]), and two thin front
//! ends, [`rest`] (axum) and [`grpc`] (tonic), assembled and served by [`app`].
//!
//! Feature `sim` (off by default) links the simulated Intel PKI (`phalanx-dcap-sim`,
//! re-exported as `sim`) so that `trust.root = "sim"` works: development builds and
//! `phalanx devnet` turn it on; a production build of the binary does not contain it.
//! Without a configuration the service trusts Intel's root.
//!
//! **Must never depend on** the gatekeeper, the registry, the TEE layer or the worker:
//! it verifies evidence and signs results; its production build carries no simulated
//! PKI (feature `sim`).

#[cfg(feature = "server")]
pub mod app;
#[cfg(feature = "server")]
pub mod cli;
#[cfg(feature = "server")]
pub mod cluster;
#[cfg(feature = "server")]
pub mod config;
#[cfg(feature = "server")]
pub mod grpc;
#[cfg(feature = "server")]
pub mod metrics;
pub mod nonce;
#[cfg(feature = "server")]
pub mod rest;
#[cfg(feature = "server")]
pub mod service;
#[cfg(feature = "sim")]
pub use phalanx_dcap_sim as sim;
#[cfg(feature = "server")]
pub mod source;
#[cfg(feature = "server")]
pub mod store;
pub mod token;

pub use phalanx_dcap::{
    Collateral, Error, Measurements, PccsResponses, QeIdentity, Quote, Step, TcbInfo, TcbStatus,
    TeeType, TrustAnchors, VerifiedQuote, Verifier, codec, collateral, error, pck, pki, policy,
    quote, tcb, verify,
};
