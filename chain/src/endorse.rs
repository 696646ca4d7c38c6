//! Endorsements: how a registry that cannot afford to verify DCAP itself (the Solidity
//! registry: about 4–5 M gas per quote) still holds only verified identities. Sans-IO.
//!
//! Each gatekeeper checks a registration's evidence itself — [`crate::evidence::check`],
//! the embedded ledger's own steps, to the DCAP roots of *its* measured configuration,
//! under the registry's TCB rule (its collateral floor included, which the contract
//! cannot see), at its clock, with the evidence time the registrant proposes within
//! [`MAX_SKEW`] of that clock — and signs the record the evidence
//! proved ([`Record`]: keys, tenant, token hash, quote hash, TCB status, evidence time)
//! under [`tag::EVM_ENDORSEMENT`] and the registry's id. The registry accepts a
//! registration with at least the committee's threshold of distinct endorsements by
//! gatekeepers in standing. Whom that trusts: any t gatekeepers — the same t that could
//! release every key anyway. Before any gatekeeper set exists (the first gatekeepers'
//! own registrations), and while fewer than t members are in standing (recovery after
//! an outage longer than the evidence lifetime), governance approves each
//! registration's [`digest`] instead: then governance is trusted to have checked it.
//!
//! The digest is the Solidity registry's `endorsementDigest`, byte for byte:
//! `SHA-256(tag ‖ registry id ‖ SHA-256(identity key) ‖ SHA-256(HPKE key) ‖
//! SHA-256(tenant) ‖ token hash ‖ quote hash ‖ TCB status code (1 byte) ‖ evidence time
//! (i64, big-endian))`.

use crate::evidence::EvidenceError;
use crate::types::{EvidenceRule, Registration, status_code};
use p256::ecdsa::SigningKey;
use phalanx_dcap::tcb::TcbStatus;
use phalanx_types::tag;
use sha2::{Digest as _, Sha256};

/// A registration as its evidence proved it: what an endorsement signs and the registry
/// records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The worker's identity key (compressed SEC1).
    pub identity_key: Vec<u8>,
    /// Its HPKE key.
    pub hpke_key: Vec<u8>,
    /// The tenant the quote proves.
    pub measurement: Vec<u8>,
    /// SHA-256 of its attestation token (for gatekeepers' peers).
    pub attestation_hash: [u8; 32],
    /// [`crate::types::Evidence::quote_hash`].
    pub quote_hash: [u8; 32],
    /// The TCB status when the endorser checked.
    pub tcb_status: TcbStatus,
    /// When the endorser checked (unix seconds): the registration's age counts from it.
    pub evidence_time: i64,
}

/// One gatekeeper's endorsement: its committee index and its identity key's signature
/// (r ‖ s) over [`digest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endorsement {
    /// The gatekeeper's index in the set.
    pub index: u16,
    /// ECDSA P-256 / SHA-256, fixed-size r ‖ s.
    pub signature: [u8; 64],
}

/// How far (seconds) a proposed evidence time may be from an endorser's clock:
/// endorsers sign the *same* record, so the registrant proposes the time and each
/// endorser checks it against its own.
pub const MAX_SKEW: i64 = 300;

/// Checks `reg`'s evidence for the registry `registry_id` under `rule` (roots: the
/// endorser's own) at the endorser's clock `now`, with the proposed `evidence_time`
/// (within [`MAX_SKEW`] of `now`); the record it proves.
pub fn check(
    verifier: &phalanx_dcap::Verifier,
    rule: &EvidenceRule,
    registry_id: &[u8; 32],
    reg: &Registration,
    evidence_time: i64,
    now: i64,
) -> Result<Record, EvidenceError> {
    if evidence_time.abs_diff(now) > MAX_SKEW.unsigned_abs() {
        return Err(EvidenceError::Skew {
            proposed: evidence_time,
            now,
        });
    }
    let proven = crate::evidence::check(verifier, rule, registry_id, reg, now)?;
    Ok(Record {
        identity_key: reg.identity_key.clone(),
        hpke_key: reg.hpke_key.clone(),
        measurement: proven.tenant.to_vec(),
        attestation_hash: reg.attestation_hash,
        quote_hash: proven.quote_hash,
        tcb_status: proven.tcb_status,
        evidence_time,
    })
}

/// What endorsers sign for `record` on the registry `registry_id`, before hashing.
fn preimage(registry_id: &[u8; 32], record: &Record) -> Vec<u8> {
    let mut m = Vec::with_capacity(tag::EVM_ENDORSEMENT.len() + 6 * 32 + 9);
    m.extend_from_slice(tag::EVM_ENDORSEMENT);
    m.extend_from_slice(registry_id);
    m.extend_from_slice(&Sha256::digest(&record.identity_key));
    m.extend_from_slice(&Sha256::digest(&record.hpke_key));
    m.extend_from_slice(&Sha256::digest(&record.measurement));
    m.extend_from_slice(&record.attestation_hash);
    m.extend_from_slice(&record.quote_hash);
    m.push(status_code(record.tcb_status));
    m.extend_from_slice(&record.evidence_time.to_be_bytes());
    m
}

/// The digest endorsers sign (module doc), which governance approves at bootstrap.
pub fn digest(registry_id: &[u8; 32], record: &Record) -> [u8; 32] {
    Sha256::digest(preimage(registry_id, record)).into()
}

/// Gatekeeper `index` endorses `record` with its identity key (ECDSA over SHA-256 of
/// the preimage, which is [`digest`]: what the registry's P256VERIFY checks).
pub fn sign(key: &SigningKey, index: u16, registry_id: &[u8; 32], record: &Record) -> Endorsement {
    let sig: p256::ecdsa::Signature =
        p256::ecdsa::signature::Signer::sign(key, &preimage(registry_id, record));
    Endorsement {
        index,
        signature: sig.to_bytes().into(),
    }
}

/// Whether `endorsement` is the gatekeeper with `identity_key`'s signature over
/// `record` on the registry `registry_id` (a registrant checks each endorsement it
/// collects: the registry refuses the whole registration for one bad signature).
pub fn verify(
    identity_key: &[u8],
    registry_id: &[u8; 32],
    record: &Record,
    endorsement: &Endorsement,
) -> bool {
    crate::types::verify_p256(
        identity_key,
        &preimage(registry_id, record),
        &endorsement.signature,
    )
}
