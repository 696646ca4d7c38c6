//! Domain tags: the one registry. Every hash, KDF, signature and MAC input in Phalanx
//! starts from one of these, so no value computed for one purpose can be replayed as
//! another. Add a tag here, never inline.

/// Hash-to-curve DST for key ids (`P256_XMD:SHA-256_SSWU_RO_`, RFC 9380).
pub const KEY_ID_TO_CURVE: &[u8] = b"phalanx/v1/key-id/P256_XMD:SHA-256_SSWU_RO_";
/// Hash-to-scalar DST for the DLEQ challenge (RFC 9497 §2.2 structure).
pub const DLEQ_CHALLENGE: &[u8] = b"phalanx/v1/dleq-challenge";
/// Seed of the weights of a batch of DLEQ proofs verified at once.
pub const DLEQ_BATCH: &[u8] = b"phalanx/v1/dleq-batch";
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
/// Hash of a TEE identity into its tenant id (the tenant module of `phalanx-release`).
pub const TENANT: &[u8] = b"phalanx/v1/tenant";

/// Nonces the attestation service issues (HMAC input).
pub const ATTESTATION_NONCE: &[u8] = b"phalanx/v1/attestation-nonce";
/// A quote's report data: `SHA-512(tag ‖ nonce ‖ runtime data)`.
pub const REPORT_DATA: &[u8] = b"phalanx/v1/report-data";
/// The digest of a collateral set (the verifier's cache key).
pub const COLLATERAL_DIGEST: &[u8] = b"phalanx/v1/collateral-digest";
/// The digest of a worker's trust configuration, bound in a TD's MRCONFIGID.
pub const WORKER_CONFIG: &[u8] = b"phalanx/v1/worker-config";
/// The hash of a quote the registry records for a worker.
pub const QUOTE_HASH: &[u8] = b"phalanx/v1/quote-hash";
/// The id of a round between gatekeepers.
pub const ROUND_ID: &[u8] = b"phalanx/v1/round-id";
/// The digest of a round's outcome.
pub const ROUND_DIGEST: &[u8] = b"phalanx/v1/round-digest";
/// A signed message between gatekeepers over the peer channel.
pub const PEER_MESSAGE: &[u8] = b"phalanx/v1/peer-message";
/// A signed round message (identity keys).
pub const ROUND_MESSAGE: &[u8] = b"phalanx/v1/round-message";
/// A signed registry transaction.
pub const CHAIN_TX: &[u8] = b"phalanx/v1/chain-tx";
/// A registry block's header (what its hash names and the authority signs).
pub const CHAIN_HEADER: &[u8] = b"phalanx/v1/chain-header";
/// A contract's command log: the hash chain of its ordered commands.
pub const COMMAND_LOG: &[u8] = b"phalanx/v1/command-log";
/// The registry's genesis parameters (hashed into the chain id).
pub const CHAIN_GENESIS: &[u8] = b"phalanx/v1/chain-genesis";
/// An EVM account's proof of possession of its P-256 identity.
pub const EVM_ACCOUNT: &[u8] = b"phalanx/v1/evm-account";
/// A gatekeeper's endorsement of a registration on the EVM registry (it checked the
/// evidence).
pub const EVM_ENDORSEMENT: &[u8] = b"phalanx/v1/evm-endorsement";
/// A process's Ethereum account key, derived from its identity key (never in a file).
pub const EVM_ACCOUNT_KEY: &[u8] = b"phalanx/v1/evm-derived-account";
/// A registration waiting for governance's approval on the EVM registry (the file a
/// registrant writes).
pub const EVM_PENDING: &[u8] = b"phalanx/v1/evm-pending-registration";
/// Where the EVM registry keeps a fact's value hash: storage slot
/// `Keccak-256(tag ‖ fact key)`.
pub const EVM_FACT_SLOT: &[u8] = b"phalanx/v1/evm-fact-slot";
/// What that slot holds: `Keccak-256(tag ‖ fact value)` (zero: absent).
pub const EVM_FACT_VALUE: &[u8] = b"phalanx/v1/evm-fact-value";
/// A command as the EVM registry logs it (hashed into its command log).
pub const EVM_COMMAND: &[u8] = b"phalanx/v1/evm-command";
/// The MAC of a light client's checkpoint (its last verified registry head).
pub const REGISTRY_CHECKPOINT: &[u8] = b"phalanx/v1/registry-checkpoint";
/// A registry fact's key in the state commitment: `SHA-256(tag ‖ fact key)`.
pub const STATE_FACT: &[u8] = b"phalanx/v1/state-fact";
/// A key of a block's transaction tree (its `tx_root`).
pub const BLOCK_TX: &[u8] = b"phalanx/v1/block-tx";
/// A contract's code hash: `SHA-256(tag ‖ wasm)`.
pub const CONTRACT_CODE: &[u8] = b"phalanx/v1/contract-code";
/// A contract's state root: `HMAC(state key, tag ‖ the root of its entries' tree)`.
pub const CONTRACT_STATE: &[u8] = b"phalanx/v1/contract-state";
/// The tree of a contract's entries: its keys are `SHA-256(tag ‖ entry key)`.
pub const CONTRACT_ENTRIES: &[u8] = b"phalanx/v1/contract-entries";
/// An entry's key in that tree: `HMAC(state key, tag ‖ key)`.
pub const CONTRACT_ENTRY_KEY: &[u8] = b"phalanx/v1/contract-entry-key";
/// An entry's value in that tree: `HMAC(state key, tag ‖ u32 len ‖ key ‖ u32 len ‖
/// value)`.
pub const CONTRACT_ENTRY_LEAF: &[u8] = b"phalanx/v1/contract-entry-leaf";

/// A contract's id: `SHA-256(tag ‖ deployer ‖ code hash ‖ salt)`.
pub const CONTRACT_ID: &[u8] = b"phalanx/v1/contract-id";
/// The tenant a contract's keys are derived under: `SHA-256(tag ‖ contract id)`.
pub const CONTRACT_TENANT: &[u8] = b"phalanx/v1/contract-tenant";
/// HKDF `info` prefix of a contract's key pairs, derived from its gatekeeper secret.
pub const CONTRACT_KEYS: &[u8] = b"phalanx/v1/contract-keys";
/// HPKE `info` prefix of a command sealed to a contract.
pub const COMMAND_ENVELOPE: &[u8] = b"phalanx/v1/command-envelope";
/// A command's caller on the EVM registry: its P-256 signature over the command (the
/// sending account, its nonce and input), inside the sealed envelope.
pub const EVM_COMMAND_CALLER: &[u8] = b"phalanx/v1/evm-caller-signature";
/// A contract caller's id: `SHA-256(tag ‖ the caller's public key)`.
pub const CALLER: &[u8] = b"phalanx/v1/caller";
/// The caller id a contract's component sees when another part of the same contract
/// calls it: `SHA-256(tag ‖ the calling module's code hash)`.
pub const COMPONENT_CALLER: &[u8] = b"phalanx/v1/component-caller";
/// A user's signature over a query.
pub const QUERY_SIGNATURE: &[u8] = b"phalanx/v1/query-signature";
/// HPKE `info` prefix of a query sealed to a worker.
pub const QUERY_ENVELOPE: &[u8] = b"phalanx/v1/query-envelope";
/// HPKE `info` prefix of an answer sealed to the user.
pub const ANSWER_ENVELOPE: &[u8] = b"phalanx/v1/answer-envelope";
/// A worker's signed statement about an answer.
pub const ANSWER_STATEMENT: &[u8] = b"phalanx/v1/answer-statement";
/// Hash of a query's or an answer's plaintext in a statement.
pub const ANSWER_HASH: &[u8] = b"phalanx/v1/answer-hash";
/// Associated data of a worker's sealed identity.
pub const WORKER_SEALED: &[u8] = b"phalanx/v1/worker-sealed";
/// Associated data and key derivation of a sealed contract checkpoint.
pub const CHECKPOINT: &[u8] = b"phalanx/v1/checkpoint";
/// HKDF salt of the keys an attestation-service cluster derives from its shared secret
/// (the `info` says which key: [`AS_CLUSTER_NONCE_KEY`], [`AS_CLUSTER_SIGNING_KEY`]).
pub const AS_CLUSTER: &[u8] = b"phalanx/v1/as-cluster-salt";
/// HKDF `info` of a cluster's nonce MAC key.
pub const AS_CLUSTER_NONCE_KEY: &[u8] = b"phalanx/v1/as-cluster-nonce-key";
/// HKDF `info` of a cluster's result-signing key.
pub const AS_CLUSTER_SIGNING_KEY: &[u8] = b"phalanx/v1/as-cluster-signing-key";

/// What a release record commits to besides the request: the key id, the public share
/// and the sealed partial (`phalanx_threshold::release_log::evaluation`).
pub const RELEASE_EVALUATION: &[u8] = b"phalanx/v1/release-evaluation";

/// What a caller signs to ask a worker for a command's receipt (as a query is signed,
/// under another purpose).
pub const RECEIPT_SIGNATURE: &[u8] = b"phalanx/v1/receipt-request-signature";

/// HPKE `info` prefix of a receipt request sealed to a worker.
pub const RECEIPT_ENVELOPE: &[u8] = b"phalanx/v1/receipt-request-envelope";

/// What a reader signs to ask a worker for a contract's events.
pub const EVENTS_SIGNATURE: &[u8] = b"phalanx/v1/events-request-signature";

/// HPKE `info` prefix of an events request sealed to a worker.
pub const EVENTS_ENVELOPE: &[u8] = b"phalanx/v1/events-request-envelope";

/// What a contract's signature (host function `sign`) is over: this tag, the contract
/// id, the message, hashed with SHA-256 — so no other use of the contract's key signs
/// the same digest.
pub const CONTRACT_SIGNATURE: &[u8] = b"phalanx/v1/contract-signature";

/// HKDF salt of a contract's keys derived per purpose (host function `derived_key`).
pub const CONTRACT_PURPOSE_KEY: &[u8] = b"phalanx/v1/contract-purpose-key";

/// HKDF salt of a command's random bytes (host function `random`).
pub const CONTRACT_RANDOMNESS: &[u8] = b"phalanx/v1/contract-randomness";

/// Every tag, for the uniqueness test and for audits.
pub const ALL: &[&[u8]] = &[
    KEY_ID_TO_CURVE,
    DLEQ_CHALLENGE,
    DLEQ_BATCH,
    DERIVE_SALT,
    PEDERSEN_H,
    TRANSCRIPT,
    RELEASE_ENVELOPE,
    LOG_ENTRY,
    TREE_HEAD,
    WORKER_RUNTIME_DATA,
    RELEASE_REQUEST,
    RELEASE_EVALUATION,
    SEALED_RECORD,
    TENANT,
    ATTESTATION_NONCE,
    REPORT_DATA,
    COLLATERAL_DIGEST,
    QUOTE_HASH,
    WORKER_CONFIG,
    ROUND_ID,
    ROUND_DIGEST,
    PEER_MESSAGE,
    ROUND_MESSAGE,
    CHAIN_TX,
    CHAIN_HEADER,
    COMMAND_LOG,
    CHAIN_GENESIS,
    EVM_ACCOUNT,
    EVM_ENDORSEMENT,
    EVM_ACCOUNT_KEY,
    EVM_PENDING,
    EVM_FACT_SLOT,
    EVM_FACT_VALUE,
    EVM_COMMAND,
    REGISTRY_CHECKPOINT,
    STATE_FACT,
    BLOCK_TX,
    CONTRACT_CODE,
    CONTRACT_STATE,
    CONTRACT_ENTRIES,
    CONTRACT_ENTRY_KEY,
    CONTRACT_ENTRY_LEAF,
    CONTRACT_ID,
    CONTRACT_TENANT,
    CONTRACT_KEYS,
    COMMAND_ENVELOPE,
    EVM_COMMAND_CALLER,
    CALLER,
    COMPONENT_CALLER,
    QUERY_SIGNATURE,
    RECEIPT_SIGNATURE,
    RECEIPT_ENVELOPE,
    EVENTS_SIGNATURE,
    EVENTS_ENVELOPE,
    CONTRACT_SIGNATURE,
    CONTRACT_PURPOSE_KEY,
    CONTRACT_RANDOMNESS,
    QUERY_ENVELOPE,
    ANSWER_ENVELOPE,
    ANSWER_STATEMENT,
    ANSWER_HASH,
    WORKER_SEALED,
    CHECKPOINT,
    AS_CLUSTER,
    AS_CLUSTER_NONCE_KEY,
    AS_CLUSTER_SIGNING_KEY,
];

#[cfg(test)]
mod tests {
    #[test]
    fn no_tag_is_another_or_a_prefix_of_another() {
        for (i, a) in super::ALL.iter().enumerate() {
            assert!(a.starts_with(b"phalanx/v1/"));
            for (j, b) in super::ALL.iter().enumerate() {
                if i != j {
                    assert!(
                        !b.starts_with(a),
                        "{:?} prefixes {:?}",
                        String::from_utf8_lossy(a),
                        String::from_utf8_lossy(b)
                    );
                }
            }
        }
    }
}
