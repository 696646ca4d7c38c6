//! The registry's facts: what its state commitment ([`crate::commit`]) holds, each a key
//! and a canonical encoding of its value, so a header's root proves any of them. A block
//! changes exactly the facts its events name ([`Fact::of_event`]); nonces, round
//! decisions, command counts and events themselves are not facts (they prove nothing a
//! verifier checks). Every encoding is [`phalanx_types::codec::Writer`]'s: fixed-width
//! integers big-endian, byte strings with a `u32` length.
//!
//! | key | value |
//! |---|---|
//! | `rule` | the evidence rule: DCAP roots, TCB statuses, evidence lifetime, collateral floor |
//! | `worker/` ‖ identity key | HPKE key, tenant, token hash, evidence time, quote hash, TCB status |
//! | `allowed/` ‖ tenant | role, when allowed |
//! | `gatekeepers` | threshold, then each member's index, identity key, URLs |
//! | `rotation` | idle, or the locked epoch |
//! | `epoch/` ‖ epoch | master public key, threshold, public key set, round, publication time |
//! | `retired/` ‖ epoch | (present when retired) |
//! | `contract/` ‖ id | deployer, code hash, salt, deploying block |
//! | `contract-key/` ‖ id ‖ epoch | encryption key, signing key, publisher, publishing block |

use crate::types::{
    Allowed, Contract, ContractKey, EpochKey, Event, EvidenceRule, Gatekeeper, PublicKey, Rotation,
    Worker, status_code,
};
use phalanx_types::Epoch;
use phalanx_types::codec::Writer;

/// A fact's name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fact {
    /// The evidence rule in force.
    Rule,
    /// A registered worker.
    Worker(PublicKey),
    /// An allowed measurement.
    Allowed(Vec<u8>),
    /// The gatekeeper set and its threshold.
    Gatekeepers,
    /// The rotation lock.
    Rotation,
    /// An epoch's published keys.
    Epoch(Epoch),
    /// A retired epoch.
    Retired(Epoch),
    /// A deployed contract.
    Contract([u8; 32]),
    /// A contract's keys for an epoch.
    ContractKey([u8; 32], Epoch),
}

impl Fact {
    /// Its key in the commitment.
    pub fn key(&self) -> Vec<u8> {
        let with = |prefix: &[u8], tail: &[u8]| [prefix, tail].concat();
        match self {
            Self::Rule => b"rule".to_vec(),
            Self::Worker(k) => with(b"worker/", k),
            Self::Allowed(m) => with(b"allowed/", m),
            Self::Gatekeepers => b"gatekeepers".to_vec(),
            Self::Rotation => b"rotation".to_vec(),
            Self::Epoch(e) => with(b"epoch/", &e.0.to_be_bytes()),
            Self::Retired(e) => with(b"retired/", &e.0.to_be_bytes()),
            Self::Contract(id) => with(b"contract/", id),
            Self::ContractKey(id, e) => {
                [b"contract-key/".as_slice(), id, &e.0.to_be_bytes()].concat()
            }
        }
    }

    /// The facts an event changes.
    pub fn of_event(e: &Event) -> Vec<Fact> {
        match e {
            Event::WorkerRegistered { identity_key, .. } => {
                vec![Self::Worker(identity_key.clone())]
            }
            Event::MeasurementAdded { measurement, .. } => vec![Self::Allowed(measurement.clone())],
            Event::MeasurementRemoved(m) => vec![Self::Allowed(m.clone())],
            Event::GatekeepersChanged(_) => vec![Self::Gatekeepers],
            Event::RotationLocked(_) | Event::RotationAborted(_) => vec![Self::Rotation],
            Event::MasterKeyPublished(epoch) | Event::PublicKeySetUpdated(epoch) => {
                vec![Self::Epoch(*epoch), Self::Rotation]
            }
            Event::EpochRetired(epoch) => vec![Self::Retired(*epoch)],
            Event::TcbRuleChanged => vec![Self::Rule],
            Event::ContractDeployed { contract, .. } => vec![Self::Contract(*contract)],
            Event::ContractKeyPublished { contract, epoch } => {
                vec![Self::ContractKey(*contract, *epoch)]
            }
            Event::RoundAborted(_) | Event::CommandSubmitted { .. } => Vec::new(),
        }
    }
}

fn done(f: impl FnOnce(&mut Writer)) -> Vec<u8> {
    let mut w = Writer::default();
    f(&mut w);
    w.0
}

/// The value of [`Fact::Rule`].
pub fn rule(r: &EvidenceRule) -> Vec<u8> {
    done(|w| r.put(w))
}

/// The value of [`Fact::Worker`].
pub fn worker(x: &Worker) -> Vec<u8> {
    done(|w| {
        w.bytes(&x.hpke_key);
        w.bytes(&x.measurement);
        w.raw(&x.attestation_hash);
        w.u64(x.registered_at as u64);
        w.raw(&x.quote_hash);
        w.u8(x.tcb_status.map_or(0, status_code));
    })
}

/// The value of [`Fact::Allowed`].
pub fn allowed(a: &Allowed) -> Vec<u8> {
    done(|w| {
        w.u8(a.role.code());
        w.u64(a.added_at as u64);
    })
}

/// The value of [`Fact::Gatekeepers`].
pub fn gatekeepers(threshold: u16, set: &[Gatekeeper]) -> Vec<u8> {
    done(|w| {
        w.u16(threshold);
        w.list(set, |w, g| {
            w.u16(g.index);
            w.bytes(&g.identity_key);
            w.bytes(g.url.as_bytes());
            w.bytes(g.peer_url.as_bytes());
        });
    })
}

/// The value of [`Fact::Rotation`].
pub fn rotation(r: &Rotation) -> Vec<u8> {
    done(|w| match r {
        Rotation::Idle => w.u8(0),
        Rotation::Locked(e) => {
            w.u8(1);
            w.u64(e.0);
        }
    })
}

/// The value of [`Fact::Epoch`].
pub fn epoch(k: &EpochKey) -> Vec<u8> {
    done(|w| {
        w.bytes(&k.master_public_key);
        w.u16(k.threshold);
        w.bytes(&k.public_key_set);
        w.raw(&k.round_id);
        w.u64(k.published_at as u64);
    })
}

/// The value of [`Fact::Contract`].
pub fn contract(c: &Contract) -> Vec<u8> {
    done(|w| {
        w.bytes(&c.deployer);
        w.raw(&c.code_hash);
        w.raw(&c.salt);
        w.u64(c.deployed_at);
    })
}

/// The value of [`Fact::ContractKey`].
pub fn contract_key(k: &ContractKey) -> Vec<u8> {
    done(|w| {
        w.bytes(&k.encryption_key);
        w.bytes(&k.signing_key);
        w.bytes(&k.published_by);
        w.u64(k.published_at);
    })
}
