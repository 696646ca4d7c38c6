//! # phalanx-release
//!
//! The key-release exchange between a worker and the gatekeepers, both halves, without
//! a gatekeeper's storage or server:
//!
//! - [`release`]: what a gatekeeper checks before releasing a partial to a worker: the
//!   attestation token (ES256 against the service's JWKS, claims from
//!   [`phalanx_ear`]), its age, the attestation policy it was appraised under (one the
//!   gatekeeper names), no debug or service-TD worker, the runtime data binding the
//!   HPKE key, and which tenants the worker may derive under.
//! - [`tenant`]: the one derivation of a tenant id from a TEE's whole identity (TDX:
//!   MRTD, RTMR0–3, MRCONFIGID, MROWNER, MROWNERCONFIG; SGX: MRENCLAVE, plus CONFIGID
//!   and CONFIGSVN under KSS).
//! - [`envelope`]: HPKE (RFC 9180) base mode, DHKEM(P-256, HKDF-SHA256), HKDF-SHA256,
//!   AES-256-GCM, sealing a partial to the worker with the request transcript as `info`.
//! - [`gatekeeper`]: a gatekeeper authorizes, evaluates, seals and logs; a worker checks
//!   log proofs, opens, verifies and combines ([`gatekeeper::assemble`]).
//! - `client` (feature `client`): the worker's [`client::fetch_key`] over gRPC (all
//!   gatekeepers in parallel, the first `t` valid answers combined, liars named) and the
//!   auditor's [`client::audit`]. It needs tonic's client only: no rocksdb, no rcgen,
//!   no gRPC server.
//!
//! The threshold mathematics underneath is [`phalanx_threshold`].
//!
//! **Must never depend on** a server, a store, the registry or the TEE layer: the
//! exchange's two halves and (feature `client`) its gRPC client only.

#[cfg(feature = "client")]
pub mod client;
pub mod envelope;
pub mod gatekeeper;
pub mod release;
/// Tenant ids (defined in [`phalanx_ear::tenant`], where the registry reads them too).
pub use phalanx_ear::tenant;
