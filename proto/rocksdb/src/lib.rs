//! # phalanx-rocksdb
//!
//! rocksdb, re-exported, for every Phalanx store (the attestation service's cache, the
//! gatekeeper's sealed state, the ledger). Depending on it rather than on `rocksdb`
//! pins the features of librocksdb-sys's build cone (see this crate's `Cargo.toml`), so
//! its C++ is compiled once per machine whatever cargo command comes first.
//!
//! **Must never depend on** any other crate of the workspace; and only crates that
//! store data depend on it — never a verifier, a client or the worker (`scripts/check-
//! deps.sh`).

pub use rocksdb::*;
