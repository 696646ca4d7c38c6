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
use phalanx_types::codec::{Codec, DecodeError, Reader, Writer};
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
    within(evidence_time, now, MAX_SKEW)?;
    record_at(verifier, rule, registry_id, reg, evidence_time, now)
}

/// Whether a proposed `evidence_time` is within [`MAX_SKEW`] of the endorser's clock
/// `now` ([`check`]'s first step, cheap: an endorser makes it before anything else).
pub fn check_time(evidence_time: i64, now: i64) -> Result<(), EvidenceError> {
    within(evidence_time, now, MAX_SKEW)
}

/// `evidence_time` no later than `now + MAX_SKEW` and no earlier than `now - past`.
fn within(evidence_time: i64, now: i64, past: i64) -> Result<(), EvidenceError> {
    let early = now.saturating_sub(past);
    let late = now.saturating_add(MAX_SKEW);
    if evidence_time < early || evidence_time > late {
        return Err(EvidenceError::Skew {
            proposed: evidence_time,
            now,
        });
    }
    Ok(())
}

/// The record `reg`'s evidence proves when checked at `now`, with `evidence_time`.
fn record_at(
    verifier: &phalanx_dcap::Verifier,
    rule: &EvidenceRule,
    registry_id: &[u8; 32],
    reg: &Registration,
    evidence_time: i64,
    now: i64,
) -> Result<Record, EvidenceError> {
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

/// A registration waiting for governance's approval (while approvals are open): what a
/// registrant writes for governance to check and approve
/// (`phalanx chain tx … approve-registration FILE`). Its evidence time is fixed here, as
/// the approved digest covers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// The registration, evidence included.
    pub registration: Registration,
    /// The evidence time the registrant proposes (unix seconds).
    pub evidence_time: i64,
}

impl Codec for Pending {
    const NAME: &'static str = "pending registration";
    type Error = DecodeError;

    fn encode(&self, w: &mut Writer) {
        w.bytes(tag::EVM_PENDING);
        self.registration.encode(w);
        w.u64(self.evidence_time.cast_unsigned());
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, Self::Error> {
        if r.bytes("tag", 64)? != tag::EVM_PENDING {
            return Err(r.invalid("tag"));
        }
        Ok(Self {
            registration: Registration::read(r)?,
            evidence_time: r.u64("evidence time")?.cast_signed(),
        })
    }
}

/// How old a pending registration may be when governance approves it (seconds): a
/// registrant waits an hour for the approval.
pub const MAX_PENDING_AGE: i64 = 3600;

impl Pending {
    /// Checks the pending registration's evidence to `roots` under the registry's TCB
    /// rule `tcb` at the checker's clock `now` — the collateral valid now, so nothing
    /// revoked or superseded since the registrant wrote it passes — with an evidence
    /// time no older than [`MAX_PENDING_AGE`] and no later than [`MAX_SKEW`] ahead: the
    /// record governance approves (and the registrant proposes, at its own clock).
    pub fn check(
        &self,
        roots: &crate::evidence::Roots,
        tcb: &crate::types::TcbRule,
        registry_id: &[u8; 32],
        now: i64,
    ) -> Result<Record, EvidenceError> {
        within(self.evidence_time, now, MAX_PENDING_AGE + MAX_SKEW)?;
        record_at(
            &roots.verifier,
            &roots.rule.with_tcb(tcb),
            registry_id,
            &self.registration,
            self.evidence_time,
            now,
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::types::Evidence;

    fn pending() -> Pending {
        Pending {
            registration: Registration {
                identity_key: vec![2; 33],
                hpke_key: vec![4; 65],
                measurement: vec![7; 32],
                attestation_hash: [9; 32],
                evidence: Evidence {
                    quote: vec![1; 600],
                    collateral: b"{}".to_vec(),
                    nonce: vec![3; 32],
                    runtime_data: vec![5; 40],
                },
            },
            evidence_time: -5,
        }
    }

    /// A pending registration reads back exactly; a cut, a trailing byte or another
    /// file's tag is refused.
    #[test]
    fn a_pending_registration_round_trips_and_refuses_damage() {
        let p = pending();
        let bytes = p.to_bytes();
        assert_eq!(Pending::from_bytes(&bytes).unwrap(), p);
        for cut in [0, 1, 10, bytes.len() - 1] {
            assert!(Pending::from_bytes(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut long = bytes.clone();
        long.push(0);
        assert!(Pending::from_bytes(&long).is_err());
        let mut other = bytes;
        other[8] ^= 1; // in the tag itself (after its length)
        assert!(Pending::from_bytes(&other).is_err());
    }

    /// An endorsement verifies under its signer's key for its record and registry only.
    #[test]
    fn an_endorsement_verifies_for_its_record_registry_and_key_only() {
        let key = crate::random_key();
        let me = crate::types::public_key(key.verifying_key());
        let record = Record {
            identity_key: vec![2; 33],
            hpke_key: Vec::new(),
            measurement: vec![7; 32],
            attestation_hash: [1; 32],
            quote_hash: [2; 32],
            tcb_status: TcbStatus::UpToDate,
            evidence_time: 1_700_000_000,
        };
        let e = sign(&key, 3, &[8; 32], &record);
        assert!(verify(&me, &[8; 32], &record, &e));
        assert!(!verify(&me, &[9; 32], &record, &e));
        let later = Record {
            evidence_time: record.evidence_time + 1,
            ..record.clone()
        };
        assert!(!verify(&me, &[8; 32], &later, &e));
        let other = crate::types::public_key(crate::random_key().verifying_key());
        assert!(!verify(&other, &[8; 32], &record, &e));
    }
}
