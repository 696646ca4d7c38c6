//! # phalanx-dcap
//!
//! Everything Phalanx knows about Intel DCAP evidence, as a sans-IO library: quote
//! parsing ([`quote`]), collateral types and loaders ([`collateral`]), X.509 chains and
//! CRLs checked by key and signature ([`pki`]), the PCK certificate's SGX extension
//! ([`pck`]), TCB level matching ([`tcb`]), the verifier ([`verify`](mod@verify)) and
//! the appraisal of a verified quote against a [`policy`].
//!
//! Verification is a pure function of `(quote bytes, collateral, now, trust anchors)`:
//! no clock, no network, no files, no async runtime. It follows Intel's Quote
//! Verification Library step by step (see [`verify`](mod@verify) for the numbered
//! steps) and returns a [`VerifiedQuote`] — which only the verifier can build — or an
//! [`Error`] that names the failed [`Step`].
//!
//! ```
//! use phalanx_dcap::{Collateral, TrustAnchors, Verifier};
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
//! ## Feature flags
//!
//! None by default: the line for an offline verifier is
//! `phalanx-dcap = { path = "attestation-service/dcap" }` (no tokio, no HTTP, no
//! storage). Feature `pccs` adds [`pccs::PcsClient`], a client of Intel's PCS or a
//! PCCS (reqwest), for callers that fetch collateral themselves; the attestation
//! service layers its cache on top of it. The simulated Intel PKI is a separate crate,
//! `phalanx-dcap-sim`, for development and tests only.
//!
//! Security notes: production pins Intel's SGX Root CA ([`TrustAnchors::intel`]); a
//! simulated root is only trusted when passed explicitly. Sizes are bounded before
//! parsing ([`quote::MAX_QUOTE_SIZE`], [`collateral::MAX_COLLATERAL_SIZE`]). ECDSA
//! verification uses `ring`.
//!
//! **Must never depend on** a store, a server, or any crate of the workspace but
//! `phalanx-types`: it is the sans-IO verifier everyone links (the `pccs` feature adds
//! only an HTTP client).

/// The one binary codec (`phalanx-types`), whose little-endian reads parse quotes.
pub use phalanx_types::codec;
pub mod collateral;
pub mod error;
pub mod pccs;
pub mod pck;
pub mod pki;
pub mod policy;
pub mod quote;
pub mod tcb;
pub mod verify;

pub use collateral::{Collateral, PccsResponses, QeIdentity, TcbInfo};
pub use error::{Error, Step};
pub use pccs::CollateralKey;
pub use pki::TrustAnchors;
pub use quote::{Quote, TeeType};
pub use tcb::TcbStatus;
pub use verify::{Measurements, VerifiedQuote, Verifier, verify};
