//! Domain tags: every hash, KDF and proof input in this crate starts from one of these,
//! so no value computed for one purpose can be replayed as another.

/// Hash-to-curve DST for key ids (`P256_XMD:SHA-256_SSWU_RO_`, RFC 9380).
pub const KEY_ID_TO_CURVE: &[u8] = b"phalanx/v1/key-id/P256_XMD:SHA-256_SSWU_RO_";
/// Hash-to-scalar DST for the DLEQ challenge (RFC 9497 §2.2 structure).
pub const DLEQ_CHALLENGE: &[u8] = b"phalanx/v1/dleq-challenge";
/// HKDF salt for derived keys.
pub const DERIVE_SALT: &[u8] = b"phalanx/v1/derive-key";
/// Hash-to-curve DST for the Pedersen generator `H` (no one knows `log_G H`).
pub const PEDERSEN_H: &[u8] = b"phalanx/v1/pedersen-h/P256_XMD:SHA-256_SSWU_RO_";
/// Transcript hash of a DKG, refresh or reshare round.
pub const TRANSCRIPT: &[u8] = b"phalanx/v1/round-transcript";
/// HPKE `info` prefix of a sealed key release (followed by the request transcript hash).
pub const RELEASE_ENVELOPE: &[u8] = b"phalanx/v1/release-envelope";
/// Prefix of transparency-log entries (the entry's own encoding follows).
pub const LOG_ENTRY: &[u8] = b"phalanx/v1/log-entry";
/// Signed bytes of a transparency-log tree head.
pub const TREE_HEAD: &[u8] = b"phalanx/v1/tree-head";
/// Prefix of a worker's runtime data (its identity and HPKE keys), bound in its quote.
pub const WORKER_RUNTIME_DATA: &[u8] = b"phalanx/v1/worker-runtime-data";
/// Transcript hash of a key-release request (HPKE `info` and log record).
pub const RELEASE_REQUEST: &[u8] = b"phalanx/v1/release-request";
/// Associated-data prefix of records sealed at rest (followed by the record's slot).
pub const SEALED_RECORD: &[u8] = b"phalanx/v1/sealed-record";
/// Hash of a TEE identity into its tenant id ([`crate::tenant`]).
pub const TENANT: &[u8] = b"phalanx/v1/tenant";
