//! # phalanx-pruntime
//!
//! pRuntime, the worker of Phalanx (after Phala's): it runs confidential contracts
//! inside a TEE, follows the registry, keeps its state sealed and signs what it answers.
//!
//! - [`tee`] (the crate `phalanx-tee`, shared with the gatekeepers): the TEE backends
//!   behind one trait: `sim` (default), `tdx` (configfs-tsm), `sgx-gramine`
//!   (`/dev/attestation`), with fake trees for tests; attestation against the service.
//! - [`seal`]: AES-256-GCM sealing at rest (identity, checkpoints), atomic files.
//! - [`protocol`]: contract keys, sealed commands, signed sealed queries, sealed answers
//!   with the worker's signed [`phalanx_types::statement::Statement`].
//! - [`executor`]: one served contract, sans-IO: commands from verified pages of its
//!   command feed in chain order, each leaving a receipt for its caller, read-only
//!   queries, sealed checkpoints.
//! - [`env`](mod@env): what a contract call may ask of the worker's keys: the contract's
//!   signature, keys derived per purpose (P-256, secp256k1), randomness every worker
//!   agrees on.
//! - [`worker`]: boot (sealed identity → quote → token → registration), contract keys
//!   from the gatekeepers the registry lists, following its contracts' command feeds,
//!   answering queries.
//! - [`registry`]: the registry a worker follows — the embedded ledger or a Solidity
//!   registry on an EVM chain — as facts proven at one block, and its writes.
//! - [`server`]: the HTTP API (`POST /v1/query`, `POST /v1/receipt`, `GET /v1/info`).
//! - [`cmd`]: the worker's command line (the `pruntime` binary and `phalanx pruntime`).
//! - [`initdata`]: a TD's trust configuration from a Confidential Containers initdata
//!   document, whose digest is the MRCONFIGID the worker then demands of itself.
//! - [`client`]: the user's side (send a command, query a worker by its registry keys).
//!
//! Contracts themselves run in [`phalanx_contract`] (wasmi, fuel, no floats).
//!
//! Trust: a worker takes gatekeepers, epoch public key sets, contracts, keys and commands
//! only from the registry ([`registry`]: the ledger through [`chain::grpc::LightClient`],
//! proofs against headers signed by the chain's authority from a pinned genesis, each
//! header extending the last one verified; or a Solidity registry, proofs against its
//! node's headers, each page linked to the contract's last position), never from an
//! endpoint's say-so; users take a worker's keys from
//! the registry too.
//!
//! **Must never depend on** a gatekeeper's store or server (`keyvault`), the
//! attestation service, rocksdb or a gRPC server; and in its production build, the
//! simulated TEE (feature `sim`).

pub mod client;
pub mod cmd;
pub mod env;
pub mod executor;
pub mod initdata;
pub mod protocol;
pub mod registry;
pub mod server;
pub mod state_root;
pub mod worker;

/// The TEE layer (backends, sealing), shared with the gatekeepers.
pub use phalanx_tee as tee;
/// Sealing at rest (identity, checkpoints).
pub use phalanx_tee::seal;
