//! # phalanx-proto
//!
//! The protobuf definitions of Phalanx's gRPC services (`proto/`) and the code tonic
//! generates from them. No logic lives here. Code generation needs no `protoc`: the
//! build script compiles the `.proto` files with `protox` (pure Rust), so a fresh
//! machine builds this crate with cargo alone.
//!
//! **Must never depend on** any other crate of the workspace: generated message types
//! and tonic's client code only (the crates that serve enable tonic's server
//! themselves).

#![allow(missing_docs)]

/// Encoded `FileDescriptorSet` of `phalanx.attestation.v1` (for gRPC reflection).
pub const ATTESTATION_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/attestation_descriptor.bin"));
/// Encoded `FileDescriptorSet` of `phalanx.keyvault.v1`.
pub const KEYVAULT_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/keyvault_descriptor.bin"));
/// Encoded `FileDescriptorSet` of `phalanx.chain.v1`.
pub const CHAIN_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/chain_descriptor.bin"));

/// `phalanx.attestation.v1`: quote verification.
pub mod attestation {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("phalanx.attestation.v1");
    }
}

/// `phalanx.keyvault.v1`: gatekeeper key release and transparency log.
pub mod keyvault {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("phalanx.keyvault.v1");
    }
}

/// `phalanx.chain.v1`: the embedded ledger's node.
pub mod chain {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("phalanx.chain.v1");
    }
}
