//! # attestation-service
//!
//! Everything Phalanx knows about Intel DCAP evidence, as a sans-IO library: quote
//! parsing ([`quote`]), collateral types and loaders ([`collateral`]), X.509 chains and
//! CRLs checked by key and signature ([`pki`]), TCB level matching ([`tcb`]) and the
//! verifier ([`verify`](mod@verify)), plus the simulated TEE ([`sim`], feature `sim`, on by default)
//! that lets the rest of Phalanx run without SGX or TDX hardware.
//!
//! Verification is a pure function of `(quote bytes, collateral, now, trust anchors)`:
//! no clock, no network, no files. It follows Intel's Quote Verification Library step
//! by step (see [`verify`](mod@verify) for the numbered steps) and returns a [`VerifiedQuote`] —
//! which only the verifier can build — or an [`Error`] that names the failed [`Step`].
//!
//! ```
//! use attestation_service::{Collateral, TrustAnchors, Verifier};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/dcap/phala");
//! let quote = std::fs::read(format!("{dir}/sgx_quote"))?;
//! let collateral = Collateral::from_bundle_json(&std::fs::read(format!("{dir}/sgx_quote_collateral.json"))?)?;
//! let verifier = Verifier::new(TrustAnchors::intel());
//! let verified = verifier.verify(&quote, &collateral, 1_750_334_171)?;
//! assert_eq!(verified.status.as_str(), "ConfigurationAndSWHardeningNeeded");
//! # Ok(()) }
//! ```
//!
//! The service (feature `server`, on by default) is layered on top: [`config`] (one
//! TOML file with environment overrides), [`store`] (rocksdb), [`source`] (collateral
//! from an Intel PCS / PCCS or the simulated PKI, cached and refreshed before
//! `nextUpdate`), [`service`] (the transport-independent pipeline: nonce → collateral →
//! verify → report-data binding → [`policy`] → signed [`token`]), and two thin front
//! ends, [`rest`] (axum) and [`grpc`] (tonic), assembled and served by [`app`].
//!
//! Security notes: production pins Intel's SGX Root CA ([`TrustAnchors::intel`]); a
//! simulated root is only trusted when passed explicitly. Sizes are bounded before
//! parsing ([`quote::MAX_QUOTE_SIZE`], [`collateral::MAX_COLLATERAL_SIZE`]). ECDSA
//! verification uses `ring`.

#[cfg(feature = "server")]
pub mod app;
pub mod codec;
pub mod collateral;
#[cfg(feature = "server")]
pub mod config;
pub mod error;
#[cfg(feature = "server")]
pub mod grpc;
#[cfg(feature = "server")]
pub mod metrics;
pub mod nonce;
pub mod pck;
pub mod pki;
pub mod policy;
pub mod quote;
#[cfg(feature = "server")]
pub mod rest;
#[cfg(feature = "server")]
pub mod service;
#[cfg(feature = "sim")]
pub mod sim;
#[cfg(feature = "server")]
pub mod source;
#[cfg(feature = "server")]
pub mod store;
pub mod tcb;
pub mod token;
pub mod verify;

pub use collateral::{Collateral, PccsResponses, QeIdentity, TcbInfo};
pub use error::{Error, Step};
pub use pki::TrustAnchors;
pub use quote::{Quote, TeeType};
pub use tcb::TcbStatus;
pub use verify::{Measurements, VerifiedQuote, Verifier, verify};
