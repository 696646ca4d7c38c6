//! # phalanx-rocksdb
//!
//! rocksdb, re-exported, for every Phalanx store (the attestation service's cache, the
//! gatekeeper's sealed state, the ledger). Depending on it rather than on `rocksdb`
//! pins the features of librocksdb-sys's build cone (see this crate's `Cargo.toml`), so
//! its C++ is compiled once per machine whatever cargo command comes first.

pub use rocksdb::*;
