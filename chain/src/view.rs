//! What a client reads of the registry before it asks gatekeepers for a key: the
//! gatekeeper set at one header, each member with its standing (registered, its
//! measurement allowed in the gatekeeper role, its evidence younger than the registry's
//! limit). The same whether the client holds the whole state (a gatekeeper, the devnet:
//! [`GatekeeperSet::of_state`]) or proofs of a few facts at one signed header (a pRuntime
//! worker, which never downloads the chain: [`GatekeeperSet::from_proofs`], fetched by
//! `grpc::LightClient::gatekeeper_set`; on the Solidity registry
//! [`GatekeeperSet::from_evm`], fetched by `evm::EvmRegistry::gatekeeper_set`), and
//! judged by the one rule ([`crate::state::standing`]).

use crate::evm_proof::EvmVerified;
use crate::facts::Fact;
use crate::proof::{ProofError, ProvenFacts, Verified};
use crate::state::{RuleError, State, standing};
use crate::types::{Gatekeeper, Role, Worker};

/// A listed gatekeeper and whether it may act as one now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// As the registry lists it.
    pub gatekeeper: Gatekeeper,
    /// Its registration, when it stands in the gatekeeper role; otherwise why not.
    pub standing: Result<Worker, RuleError>,
}

/// The gatekeeper set at one header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatekeeperSet {
    /// The registry's chain id (registrations name it).
    pub chain_id: [u8; 32],
    /// The members, in the registry's order.
    pub members: Vec<Member>,
}

/// What the standing is judged for (named in refusals).
const TX: &str = "release";

impl GatekeeperSet {
    /// The set in `state`, judged at `now`.
    pub fn of_state(state: &State, now: i64) -> Self {
        let members = state
            .gatekeepers()
            .iter()
            .map(|g| Member {
                gatekeeper: g.clone(),
                standing: state
                    .standing(TX, &g.identity_key, Role::Gatekeeper, now)
                    .cloned(),
            })
            .collect();
        Self {
            chain_id: state.chain_id(),
            members,
        }
    }

    /// The facts [`Self::from_proofs`] reads after `set` (the members' registrations).
    pub fn worker_facts(set: &[Gatekeeper]) -> Vec<Fact> {
        set.iter()
            .map(|g| Fact::Worker(g.identity_key.clone()))
            .collect()
    }

    /// The set as proven: [`Fact::Gatekeepers`], [`Fact::Rule`], each member's
    /// [`Fact::Worker`] and the [`Fact::Allowed`] of each registered member's
    /// measurement, all at one header, judged at `now`. A fact it needs and `proven` does
    /// not carry is an error, never an absence.
    pub fn from_proofs(proven: &Verified, now: i64) -> Result<Self, ProofError> {
        let rule = proven.rule()?;
        Self::from_facts(proven, proven.header.chain_id, rule.max_evidence_age, now)
    }

    /// The same on the Solidity registry: [`Fact::TcbRule`] gives the evidence lifetime
    /// in place of [`Fact::Rule`].
    pub fn from_evm(proven: &EvmVerified, now: i64) -> Result<Self, ProofError> {
        let rule = proven
            .read(&Fact::TcbRule, crate::facts::read_tcb_rule)?
            .ok_or_else(|| ProofError::Missing("tcb-rule (proven absent)".into()))?;
        Self::from_facts(proven, proven.registry_id, rule.max_evidence_age, now)
    }

    /// The set `proven` shows, on the registry `chain_id` whose registrations count for
    /// `max_evidence_age` seconds, judged at `now`.
    fn from_facts(
        proven: &ProvenFacts,
        chain_id: [u8; 32],
        max_evidence_age: u64,
        now: i64,
    ) -> Result<Self, ProofError> {
        let set = proven.gatekeepers()?;
        let mut members = Vec::with_capacity(set.len());
        for g in set {
            let worker = proven.worker(&g.identity_key)?;
            let role = match &worker {
                Some(w) => proven.allowed(&w.measurement)?.map(|a| a.role),
                None => None,
            };
            let standing = standing(
                TX,
                &g.identity_key,
                worker.as_ref().map(|w| (w, role)),
                Role::Gatekeeper,
                max_evidence_age,
                now,
            )
            .and_then(|()| {
                worker.ok_or_else(|| RuleError::WrongRole {
                    tx: TX,
                    worker: crate::hex(&g.identity_key),
                    need: Role::Gatekeeper,
                    have: "none",
                })
            });
            members.push(Member {
                gatekeeper: g,
                standing,
            });
        }
        Ok(Self { chain_id, members })
    }

    /// The members whose identity key is not `key` (a gatekeeper checks its peers).
    pub fn without(mut self, key: &[u8]) -> Self {
        self.members.retain(|m| m.gatekeeper.identity_key != key);
        self
    }
}
