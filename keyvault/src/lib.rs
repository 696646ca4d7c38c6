//! # keyvault
//!
//! The gatekeeper node: one member of the committee that holds Phalanx's master secret
//! as Shamir shares and releases derived keys only to attested workers. The mathematics
//! is [`phalanx_threshold`] and the release exchange [`phalanx_release`], both sans-IO;
//! this crate adds what makes a running node:
//!
//! - [`store`]: the gatekeeper's rocksdb state, secrets sealed with AES-256-GCM, synced
//!   batches, the transparency log, round records;
//! - [`node`]: the durable node (release under a lock, the log synced before the answer,
//!   one sync shared by the releases that arrive together);
//! - [`grpc`]: the release service (`phalanx.keyvault.v1.Gatekeeper`);
//! - [`peer`]: rounds between processes over mutual TLS (prepared/commit/abort) and the
//!   admin service;
//! - [`tls`]: the cluster CA (certificates carry the identity key);
//! - [`registry`]: the hooks that tie rounds to the registry (only rounds the registry
//!   locked; outcomes ordered and published there);
//! - [`app`]: the node's TOML config and its two listeners, run by the `keyvault`
//!   binary; with `[tee]` the node runs in a TEE ([`phalanx_tee`]): its store sealed
//!   under the TEE's key, attested at start with its identity key bound, registered with
//!   that evidence, which peers check before rounds ([`registry::Evidence`]);
//!   [`admin`]: the administrator's and worker's view of a cluster.
//!
//! The modules of the two sans-IO crates are re-exported (`keyvault::{share, dkg,
//! derive, release, gatekeeper, …}`) so existing paths keep working.
//!
//! **Security model.** With threshold `t`, any `t − 1` members learn nothing about the
//! master secret or any derived key; `t` honest members can always derive, refresh and
//! reshare (so `n ≥ 2t − 1`). See [`phalanx_threshold`] for the round assumptions.
//!
//! **Must never depend on** the worker (`phalanx-pruntime`), the attestation service or
//! the CLI; and in its production build, the simulated TEE.

pub use phalanx_release::{envelope, gatekeeper, release, tenant};
pub use phalanx_threshold::{
    Error, derive, dkg, dleq, error, identity, lifecycle, round, share, tag, translog, wire,
};

pub mod admin;
pub mod app;
pub mod grpc;
pub mod node;
pub mod peer;
pub mod registry;
pub mod run;
pub mod store;
pub mod tls;
