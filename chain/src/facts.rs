//! The registry's facts: what its state commitment ([`crate::commit`]) holds, each a key
//! and a canonical encoding of its value, so a header's root proves any of them. A block
//! changes exactly the facts its events name ([`Fact::of_event`]) and the history;
//! nonces, round decisions and events themselves are not facts (they prove nothing a
//! verifier or a worker checks). Every encoding is [`phalanx_types::codec::Writer`]'s: fixed-width
//! integers big-endian, byte strings with a `u32` length.
//!
//! | key | value |
//! |---|---|
//! | `rule` | the evidence rule: DCAP roots, TCB statuses, evidence lifetime, collateral floor |
//! | `worker/` ‖ identity key | HPKE key, tenant, token hash, evidence time, quote hash, TCB status |
//! | `allowed/` ‖ tenant | role, when allowed, the block that allowed it |
//! | `gatekeepers` | threshold, then each member's index, identity key, URLs |
//! | `rotation` | idle, or the locked epoch |
//! | `epoch/` ‖ epoch | master public key, threshold, public key set, round, publication time |
//! | `retired/` ‖ epoch | (present when retired) |
//! | `contract/` ‖ id | deployer, code hash, salt, deploying block |
//! | `contract-key/` ‖ id ‖ epoch | encryption key, signing key, publisher, publishing block, the contract's command count then |
//! | `header/` ‖ height | that block's hash (written by the next block: the history) |
//! | `commands/` ‖ id | the contract's command count and command log head ([`crate::types::command_log`]) |
//! | `state/` ‖ id | the newest commitment to the contract's state: command count, log head, keyed state root, sealing epoch, committing block |
//! | `tcb-rule` | the EVM registry only (the ledger's is part of `rule`): TCB status mask, evidence lifetime, collateral floor |
//!
//! The verifier reads the facts it checks back with the strict decoders here
//! ([`read_worker`], [`read_allowed`], [`read_contract`], [`read_rule`]): a value that
//! does not decode exactly is refused, never guessed at.

use crate::types::{
    Allowed, Contract, ContractKey, EpochKey, Event, EvidenceRule, Gatekeeper, PublicKey, Rotation,
    StateCommitment, Worker, status_code,
};
use crate::types::{DecodeError, Role, status_from_code};
use phalanx_types::Epoch;
use phalanx_types::codec::{Reader, Writer};

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
    /// The hash of the block at a height (a fact from the next block on).
    Header(u64),
    /// A contract's command count and log head.
    Commands([u8; 32]),
    /// The newest commitment to a contract's state.
    State([u8; 32]),
    /// The EVM registry's TCB rule (its evidence rule without roots: the endorsers hold
    /// those).
    TcbRule,
    /// A gatekeeper proven to have broken the protocol ([`crate::types::Misbehaviour`]).
    Fault(PublicKey),
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
            Self::Header(h) => with(b"header/", &h.to_be_bytes()),
            Self::Commands(id) => with(b"commands/", id),
            Self::State(id) => with(b"state/", id),
            Self::TcbRule => b"tcb-rule".to_vec(),
            Self::Fault(k) => with(b"fault/", k),
        }
    }

    /// The fact a key names ([`Self::key`] read back); `None` for any other bytes.
    pub fn from_key(key: &[u8]) -> Option<Fact> {
        let epoch = |b: &[u8]| Some(Epoch(u64::from_be_bytes(b.try_into().ok()?)));
        let id = |b: &[u8]| <[u8; 32]>::try_from(b).ok();
        Some(match key {
            b"rule" => Self::Rule,
            b"gatekeepers" => Self::Gatekeepers,
            b"rotation" => Self::Rotation,
            b"tcb-rule" => Self::TcbRule,
            _ => {
                if let Some(k) = key.strip_prefix(b"worker/") {
                    Self::Worker(k.to_vec())
                } else if let Some(m) = key.strip_prefix(b"allowed/") {
                    Self::Allowed(m.to_vec())
                } else if let Some(e) = key.strip_prefix(b"epoch/") {
                    Self::Epoch(epoch(e)?)
                } else if let Some(e) = key.strip_prefix(b"retired/") {
                    Self::Retired(epoch(e)?)
                } else if let Some(c) = key.strip_prefix(b"contract/") {
                    Self::Contract(id(c)?)
                } else if let Some(k) = key.strip_prefix(b"contract-key/") {
                    let (c, e) = k.split_at_checked(32)?;
                    Self::ContractKey(id(c)?, epoch(e)?)
                } else if let Some(h) = key.strip_prefix(b"header/") {
                    Self::Header(u64::from_be_bytes(h.try_into().ok()?))
                } else if let Some(c) = key.strip_prefix(b"commands/") {
                    Self::Commands(id(c)?)
                } else if let Some(c) = key.strip_prefix(b"state/") {
                    Self::State(id(c)?)
                } else if let Some(k) = key.strip_prefix(b"fault/") {
                    Self::Fault(k.to_vec())
                } else {
                    return None;
                }
            }
        })
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
            Event::CommandSubmitted { contract, .. } => vec![Self::Commands(*contract)],
            Event::StateCommitted { contract, .. } => vec![Self::State(*contract)],
            // Where a worker serves is only where to knock: no fact proves it.
            Event::RoundAborted(_) | Event::Serving { .. } => Vec::new(),
            Event::Misbehaved { identity_key, .. } => vec![
                Self::Worker(identity_key.clone()),
                Self::Fault(identity_key.clone()),
            ],
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

/// The value of [`Fact::TcbRule`]: the accepted statuses as a mask (bit c: status code
/// c), the evidence lifetime, the collateral floor.
pub fn tcb_rule(r: &crate::types::TcbRule) -> Vec<u8> {
    let mask = r
        .tcb_statuses
        .iter()
        .fold(0u16, |m, s| m | (1 << status_code(*s)));
    done(|w| {
        w.u16(mask);
        w.u64(r.max_evidence_age);
        w.u32(r.min_tcb_evaluation_data_number);
    })
}

/// [`Fact::TcbRule`]'s value.
pub fn read_tcb_rule(value: &[u8]) -> Result<crate::types::TcbRule, DecodeError> {
    read(value, "TCB rule fact", |r| {
        let mask = r.u16("status mask")?;
        // As the contract's setTcbRule: codes 1..=9, at least one, never Revoked (7).
        if mask == 0 || mask & 1 != 0 || mask >> 10 != 0 || mask & (1 << 7) != 0 {
            return Err(r.invalid("status mask"));
        }
        Ok(crate::types::TcbRule {
            tcb_statuses: (1..10u8)
                .filter(|c| mask >> c & 1 == 1)
                .filter_map(status_from_code)
                .collect(),
            max_evidence_age: r.u64("evidence lifetime")?,
            min_tcb_evaluation_data_number: r.u32("collateral floor")?,
        })
    })
}

/// The value of [`Fact::Allowed`].
pub fn allowed(a: &Allowed) -> Vec<u8> {
    done(|w| {
        w.u8(a.role.code());
        w.u64(a.added_at as u64);
        w.u64(a.added_in);
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

/// [`Fact::Rotation`]'s value.
pub fn read_rotation(value: &[u8]) -> Result<Rotation, DecodeError> {
    read(value, "rotation fact", |r| match r.u8("rotation")? {
        0 => Ok(Rotation::Idle),
        1 => Ok(Rotation::Locked(Epoch(r.u64("locked epoch")?))),
        _ => Err(r.invalid("rotation")),
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
    contract_fact(&ContractFact {
        deployer: c.deployer.clone(),
        code_hash: c.code_hash,
        salt: c.salt,
        deployed_at: c.deployed_at,
    })
}

/// The value of [`Fact::Contract`] from what it records.
pub fn contract_fact(c: &ContractFact) -> Vec<u8> {
    done(|w| {
        w.bytes(&c.deployer);
        w.raw(&c.code_hash);
        w.raw(&c.salt);
        w.u64(c.deployed_at);
    })
}

/// The value of [`Fact::Commands`].
pub fn commands(c: &Contract) -> Vec<u8> {
    command_count(c.commands, &c.command_log)
}

/// The value of [`Fact::Commands`]: `count` commands, the log's `head`.
pub fn command_count(count: u64, head: &[u8; 32]) -> Vec<u8> {
    done(|w| {
        w.u64(count);
        w.raw(head);
    })
}

/// [`Fact::Commands`]'s value: the command count and the log head.
pub fn read_commands(value: &[u8]) -> Result<(u64, [u8; 32]), DecodeError> {
    read(value, "commands fact", |r| {
        Ok((r.u64("command count")?, r.array("command log head")?))
    })
}

/// The value of [`Fact::ContractKey`].
pub fn contract_key(k: &ContractKey) -> Vec<u8> {
    done(|w| {
        w.bytes(&k.encryption_key);
        w.bytes(&k.signing_key);
        w.bytes(&k.published_by);
        w.u64(k.published_at);
        w.u64(k.commands_before);
    })
}

/// The value of [`Fact::State`].
pub fn state(c: &StateCommitment) -> Vec<u8> {
    done(|w| {
        w.u64(c.count);
        w.raw(&c.log_head);
        w.raw(&c.state_root);
        w.u64(c.epoch.0);
        w.u64(c.committed_at);
    })
}

/// [`Fact::State`]'s value as the commitment (`contract` is the fact's key).
pub fn read_state(contract: [u8; 32], value: &[u8]) -> Result<StateCommitment, DecodeError> {
    read(value, "state fact", |r| {
        Ok(StateCommitment {
            contract,
            count: r.u64("command count")?,
            log_head: r.array("command log head")?,
            state_root: r.array("state root")?,
            epoch: Epoch(r.u64("epoch")?),
            committed_at: r.u64("committing block")?,
        })
    })
}

/// A proven fault as the registry keeps it: its code ([`crate::types::Fault::code`])
/// and the block that took it in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultRecord {
    /// The fault's code.
    pub fault: u8,
    /// The block that took the evidence in.
    pub reported_at: u64,
}

/// The value of [`Fact::Fault`].
pub fn fault(f: &FaultRecord) -> Vec<u8> {
    done(|w| {
        w.u8(f.fault);
        w.u64(f.reported_at);
    })
}

/// [`Fact::Fault`]'s value.
pub fn read_fault(value: &[u8]) -> Result<FaultRecord, DecodeError> {
    read(value, "fault fact", |r| {
        let fault = r.u8("fault")?;
        if !(1..=4).contains(&fault) {
            return Err(r.invalid("fault"));
        }
        Ok(FaultRecord {
            fault,
            reported_at: r.u64("reporting block")?,
        })
    })
}

/// Runs `f` over all of `value` (named `what` in errors): nothing may remain.
fn read<T>(
    value: &[u8],
    what: &'static str,
    f: impl FnOnce(&mut Reader<'_>) -> Result<T, DecodeError>,
) -> Result<T, DecodeError> {
    let mut r = Reader::new(value, what);
    let out = f(&mut r)?;
    r.finish()?;
    Ok(out)
}

/// Largest key or measurement field in a fact value.
const MAX_FACT_FIELD: usize = 512;

/// [`Fact::Worker`]'s value as its record (`identity_key` is the fact's key).
pub fn read_worker(identity_key: &[u8], value: &[u8]) -> Result<Worker, DecodeError> {
    read(value, "worker fact", |r| {
        Ok(Worker {
            identity_key: identity_key.to_vec(),
            hpke_key: r.bytes("HPKE key", MAX_FACT_FIELD)?.to_vec(),
            measurement: r.bytes("measurement", MAX_FACT_FIELD)?.to_vec(),
            attestation_hash: r.array("attestation hash")?,
            registered_at: i64::try_from(r.u64("registration time")?)
                .map_err(|_| r.invalid("registration time"))?,
            quote_hash: r.array("quote hash")?,
            tcb_status: match r.u8("TCB status")? {
                0 => None,
                c => Some(status_from_code(c).ok_or_else(|| r.invalid("TCB status"))?),
            },
        })
    })
}

/// [`Fact::Allowed`]'s value as its entry (`measurement` is the fact's key).
pub fn read_allowed(measurement: &[u8], value: &[u8]) -> Result<Allowed, DecodeError> {
    read(value, "allowed fact", |r| {
        let role = Role::from_code(r.u8("role")?).ok_or_else(|| r.invalid("role"))?;
        let added_at = i64::try_from(r.u64("added at")?).map_err(|_| r.invalid("added at"))?;
        Ok(Allowed {
            measurement: measurement.to_vec(),
            role,
            added_at,
            added_in: r.u64("added in")?,
        })
    })
}

/// What [`Fact::Contract`] records of a contract (its code and keys are other facts or
/// none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContractFact {
    /// The deploying account.
    pub deployer: PublicKey,
    /// The module's code hash.
    pub code_hash: [u8; 32],
    /// The deployer's salt.
    pub salt: [u8; 32],
    /// The block that deployed it.
    pub deployed_at: u64,
}

/// [`Fact::Contract`]'s value.
pub fn read_contract(value: &[u8]) -> Result<ContractFact, DecodeError> {
    read(value, "contract fact", |r| {
        Ok(ContractFact {
            deployer: r.bytes("deployer", MAX_FACT_FIELD)?.to_vec(),
            code_hash: r.array("code hash")?,
            salt: r.array("salt")?,
            deployed_at: r.u64("deploying block")?,
        })
    })
}

/// [`Fact::Rule`]'s value.
pub fn read_rule(value: &[u8]) -> Result<EvidenceRule, DecodeError> {
    read(value, "rule fact", EvidenceRule::get)
}

/// Most gatekeepers a [`Fact::Gatekeepers`] value lists.
const MAX_GATEKEEPERS: usize = 1024;

/// Largest URL in a [`Fact::Gatekeepers`] value.
pub const MAX_URL: usize = 2048;

/// [`Fact::Gatekeepers`]'s value: the threshold and the members.
pub fn read_gatekeepers(value: &[u8]) -> Result<(u16, Vec<Gatekeeper>), DecodeError> {
    read(value, "gatekeepers fact", |r| {
        let threshold = r.u16("threshold")?;
        let url = |r: &mut Reader<'_>, what: &'static str| {
            String::from_utf8(r.bytes(what, MAX_URL)?.to_vec()).map_err(|_| r.invalid(what))
        };
        let set = r.list("gatekeepers", MAX_GATEKEEPERS, |r| {
            Ok(Gatekeeper {
                index: r.u16("index")?,
                identity_key: r.bytes("identity key", MAX_FACT_FIELD)?.to_vec(),
                url: url(r, "URL")?,
                peer_url: url(r, "peer URL")?,
            })
        })?;
        Ok((threshold, set))
    })
}

/// [`Fact::Epoch`]'s value as the epoch's keys (`epoch` is the fact's key).
pub fn read_epoch(epoch: Epoch, value: &[u8]) -> Result<EpochKey, DecodeError> {
    read(value, "epoch fact", |r| {
        Ok(EpochKey {
            epoch,
            master_public_key: r.bytes("master public key", MAX_FACT_FIELD)?.to_vec(),
            threshold: r.u16("threshold")?,
            public_key_set: r.bytes("public key set", 1 << 20)?.to_vec(),
            round_id: r.array("round id")?,
            published_at: i64::try_from(r.u64("publication time")?)
                .map_err(|_| r.invalid("publication time"))?,
        })
    })
}

/// [`Fact::ContractKey`]'s value as the keys (`contract` and `epoch` are the fact's
/// key).
pub fn read_contract_key(
    contract: [u8; 32],
    epoch: Epoch,
    value: &[u8],
) -> Result<ContractKey, DecodeError> {
    read(value, "contract key fact", |r| {
        Ok(ContractKey {
            contract,
            epoch,
            encryption_key: r.bytes("encryption key", MAX_FACT_FIELD)?.to_vec(),
            signing_key: r.bytes("signing key", MAX_FACT_FIELD)?.to_vec(),
            published_by: r.bytes("publisher", MAX_FACT_FIELD)?.to_vec(),
            published_at: r.u64("publishing block")?,
            commands_before: r.u64("command count")?,
        })
    })
}

/// [`Fact::Header`]'s value: a block hash.
pub fn read_header_hash(value: &[u8]) -> Result<[u8; 32], DecodeError> {
    read(value, "header fact", |r| r.array("block hash"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn values_read_back_exactly_and_nothing_else() {
        let w = Worker {
            identity_key: vec![2; 33],
            hpke_key: vec![4; 65],
            measurement: vec![9; 32],
            attestation_hash: [1; 32],
            registered_at: 1_760_000_000,
            quote_hash: [3; 32],
            tcb_status: Some(phalanx_dcap::tcb::TcbStatus::UpToDate),
        };
        let v = worker(&w);
        assert_eq!(read_worker(&w.identity_key, &v).unwrap(), w);
        let a = Allowed {
            measurement: vec![9; 32],
            role: Role::Runtime,
            added_at: 5,
            added_in: 2,
        };
        assert_eq!(read_allowed(&a.measurement, &allowed(&a)).unwrap(), a);
        let rule = EvidenceRule::intel();
        assert_eq!(read_rule(&super::rule(&rule)).unwrap(), rule);
        // Every truncation and any trailing byte is refused.
        type Check = Box<dyn Fn(&[u8]) -> bool>;
        let (k, m) = (w.identity_key.clone(), a.measurement.clone());
        let checks: [(Vec<u8>, Check); 3] = [
            (v.clone(), Box::new(move |b| read_worker(&k, b).is_ok())),
            (allowed(&a), Box::new(move |b| read_allowed(&m, b).is_ok())),
            (super::rule(&rule), Box::new(|b| read_rule(b).is_ok())),
        ];
        for (value, ok) in &checks {
            assert!(ok(value));
            assert!((0..value.len()).all(|cut| !ok(&value[..cut])));
            assert!(!ok(&[value.as_slice(), &[0]].concat()));
        }
        assert!(read_allowed(&a.measurement, &[9, 0, 0, 0, 0, 0, 0, 0, 0]).is_err());
    }

    #[test]
    fn gatekeepers_epochs_and_contract_keys_read_back_exactly_and_nothing_else() {
        let set = vec![
            Gatekeeper {
                index: 1,
                identity_key: vec![2; 33],
                url: "http://a:1".into(),
                peer_url: "https://a:2".into(),
            },
            Gatekeeper {
                index: 2,
                identity_key: vec![3; 33],
                url: "http://b:1".into(),
                peer_url: "https://b:2".into(),
            },
        ];
        let k = EpochKey {
            epoch: Epoch(3),
            master_public_key: vec![2; 33],
            threshold: 2,
            public_key_set: vec![7; 100],
            round_id: [5; 32],
            published_at: 1_760_000_000,
        };
        let c = ContractKey {
            contract: [8; 32],
            epoch: Epoch(3),
            encryption_key: vec![4; 65],
            signing_key: vec![2; 33],
            published_by: vec![3; 33],
            published_at: 12,
            commands_before: 40,
        };
        let st = StateCommitment {
            contract: [8; 32],
            count: 41,
            log_head: [1; 32],
            state_root: [2; 32],
            epoch: Epoch(3),
            committed_at: 14,
        };
        assert_eq!(read_state([8; 32], &state(&st)).unwrap(), st);
        assert_eq!(
            read_gatekeepers(&gatekeepers(2, &set)).unwrap(),
            (2, set.clone())
        );
        assert_eq!(read_epoch(Epoch(3), &epoch(&k)).unwrap(), k);
        assert_eq!(
            read_contract_key([8; 32], Epoch(3), &contract_key(&c)).unwrap(),
            c
        );
        type Check = Box<dyn Fn(&[u8]) -> bool>;
        let checks: [(Vec<u8>, Check); 4] = [
            (
                gatekeepers(2, &set),
                Box::new(|b| read_gatekeepers(b).is_ok()),
            ),
            (epoch(&k), Box::new(|b| read_epoch(Epoch(3), b).is_ok())),
            (
                contract_key(&c),
                Box::new(|b| read_contract_key([8; 32], Epoch(3), b).is_ok()),
            ),
            (state(&st), Box::new(|b| read_state([8; 32], b).is_ok())),
        ];
        for (value, ok) in &checks {
            assert!(ok(value));
            assert!((0..value.len()).all(|cut| !ok(&value[..cut])));
            assert!(!ok(&[value.as_slice(), &[0]].concat()));
        }
        // A URL that is not UTF-8 is refused.
        let mut bad = set.clone();
        bad[0].url = "x".into();
        let mut v = gatekeepers(2, &bad);
        let at = v.iter().position(|b| *b == b'x').unwrap();
        v[at] = 0xff;
        assert!(read_gatekeepers(&v).is_err());
    }

    #[test]
    fn tcb_rules_read_back_exactly_and_refuse_what_set_tcb_rule_refuses() {
        use phalanx_dcap::tcb::TcbStatus;
        let rule = crate::types::TcbRule {
            tcb_statuses: vec![TcbStatus::UpToDate, TcbStatus::SWHardeningNeeded],
            max_evidence_age: 86_400,
            min_tcb_evaluation_data_number: 17,
        };
        let v = tcb_rule(&rule);
        assert_eq!(read_tcb_rule(&v).unwrap(), rule);
        for cut in 0..v.len() {
            assert!(read_tcb_rule(&v[..cut]).is_err(), "cut at {cut}");
        }
        assert!(read_tcb_rule(&[v.as_slice(), &[0]].concat()).is_err());
        // No status; status code 0; Revoked (7); codes past 9.
        for mask in [0u16, 1 | 2, (1 << 7) | 2, 1 << 10] {
            let mut bad = v.clone();
            bad[..2].copy_from_slice(&mask.to_be_bytes());
            assert!(read_tcb_rule(&bad).is_err(), "mask {mask:#x}");
        }
    }

    #[test]
    fn fact_keys_rotations_and_events_read_back_exactly_and_nothing_else() {
        let id = [9u8; 32];
        let all = [
            Fact::Rule,
            Fact::Worker(vec![2; 33]),
            Fact::Allowed(vec![7; 32]),
            Fact::Gatekeepers,
            Fact::Rotation,
            Fact::Epoch(Epoch(3)),
            Fact::Retired(Epoch(1)),
            Fact::Contract(id),
            Fact::ContractKey(id, Epoch(2)),
            Fact::Header(41),
            Fact::Commands(id),
            Fact::State(id),
            Fact::TcbRule,
        ];
        for f in &all {
            assert_eq!(Fact::from_key(&f.key()).as_ref(), Some(f));
        }
        // A fixed-width key cut or lengthened, or an unknown prefix: no fact.
        for f in &all[5..] {
            let k = f.key();
            assert_eq!(Fact::from_key(&k[..k.len() - 1]), None, "{f:?}");
            assert_eq!(
                Fact::from_key(&[k.as_slice(), &[0]].concat()),
                None,
                "{f:?}"
            );
        }
        for bad in [&b""[..], b"rul", b"rules", b"nothing/1", b"contract-key/"] {
            assert_eq!(Fact::from_key(bad), None);
        }

        for r in [Rotation::Idle, Rotation::Locked(Epoch(4))] {
            let v = rotation(&r);
            assert_eq!(read_rotation(&v).unwrap(), r);
            assert!((0..v.len()).all(|cut| read_rotation(&v[..cut]).is_err()));
            assert!(read_rotation(&[v.as_slice(), &[0]].concat()).is_err());
        }
        assert!(read_rotation(&[2]).is_err());

        let events = [
            Event::WorkerRegistered {
                identity_key: vec![2; 33],
                measurement: vec![7; 32],
            },
            Event::MeasurementAdded {
                measurement: vec![7; 32],
                role: Role::Gatekeeper,
            },
            Event::MeasurementRemoved(vec![7; 32]),
            Event::GatekeepersChanged(vec![1, 2, 3]),
            Event::RotationLocked(Epoch(1)),
            Event::MasterKeyPublished(Epoch(1)),
            Event::PublicKeySetUpdated(Epoch(1)),
            Event::RotationAborted(Epoch(1)),
            Event::RoundAborted([5; 32]),
            Event::EpochRetired(Epoch(0)),
            Event::TcbRuleChanged,
            Event::ContractDeployed {
                contract: id,
                code_hash: [6; 32],
            },
            Event::ContractKeyPublished {
                contract: id,
                epoch: Epoch(2),
            },
            Event::CommandSubmitted {
                contract: id,
                sequence: 77,
            },
            Event::StateCommitted {
                contract: id,
                count: 78,
            },
            Event::Misbehaved {
                identity_key: vec![3; 33],
                fault: 2,
            },
        ];
        for e in &events {
            let b = e.encode();
            assert_eq!(&Event::decode(&b).unwrap(), e);
            assert!(
                (0..b.len()).all(|cut| Event::decode(&b[..cut]).is_err()),
                "{e:?}"
            );
            assert!(
                Event::decode(&[b.as_slice(), &[0]].concat()).is_err(),
                "{e:?}"
            );
        }
        assert!(Event::decode(&[16]).is_err());
        let f = FaultRecord {
            fault: 1,
            reported_at: 9,
        };
        let v = fault(&f);
        assert_eq!(read_fault(&v).unwrap(), f);
        assert!((0..v.len()).all(|cut| read_fault(&v[..cut]).is_err()));
        assert!(read_fault(&[5, 0, 0, 0, 0, 0, 0, 0, 9]).is_err());
        assert!(read_fault(&[0, 0, 0, 0, 0, 0, 0, 0, 9]).is_err());
        // A role code that names no role.
        let mut b = events[1].encode();
        *b.last_mut().unwrap() = 0xee;
        assert!(Event::decode(&b).is_err());
    }
}
