//! Proofs of the registry's facts at a block ([`EvmRegistry::prove`]): `eth_getProof`
//! for the slots ([`crate::evm_proof`]), and the contract's views at the same block for
//! the values, encoded by [`crate::facts`] — so a value the contract commits in any other
//! form fails the proof instead of passing unnoticed.

use super::{EvmRegistry, backend};
use crate::evm_proof::{AccountProof, EvmProof, EvmVerified, MAX_FACTS, SlotProof, fact_slot};
use crate::facts::{self, ContractFact, Fact};
use crate::proof::printable;
use crate::registry::RegistryError;
use alloy::eips::BlockId;
use alloy::primitives::{B256, FixedBytes, keccak256};
use alloy::providers::{Provider, ProviderBuilder};

impl EvmRegistry {
    /// Proofs of `facts` at block `at` (`None`: the node's newest block), as the node
    /// answers; nothing here is checked but that the header hashes to the node's hash of
    /// it ([`EvmProof::verify`] is the check).
    pub async fn prove(&self, facts: &[Fact], at: Option<u64>) -> Result<EvmProof, RegistryError> {
        if facts.len() > MAX_FACTS {
            return Err(RegistryError::Backend(format!(
                "{} facts asked, at most {MAX_FACTS}",
                facts.len()
            )));
        }
        let provider = ProviderBuilder::new().connect_http(self.url.clone());
        let number = match at {
            Some(n) => n,
            None => provider.get_block_number().await.map_err(backend)?,
        };
        let block = provider
            .get_block_by_number(number.into())
            .await
            .map_err(backend)?
            .ok_or_else(|| RegistryError::Backend(format!("the node has no block {number}")))?;
        let header = alloy_rlp::encode(&block.header.inner);
        if keccak256(&header) != block.header.hash {
            return Err(RegistryError::Unverified(format!(
                "block {number}'s header does not hash to the node's hash of it"
            )));
        }
        let keys: Vec<Vec<u8>> = facts.iter().map(Fact::key).collect();
        let slots: Vec<B256> = keys.iter().map(|k| B256::from(fact_slot(k))).collect();
        // By hash (EIP-1898): the proof and the values are of that very block, even if
        // the number names another one by the next call.
        let at = BlockId::hash(block.header.hash);
        let proof = provider
            .get_proof(self.address, slots.clone())
            .block_id(at)
            .await
            .map_err(backend)?;
        if proof.storage_proof.len() != slots.len()
            || proof
                .storage_proof
                .iter()
                .zip(&slots)
                .any(|(p, s)| p.key.as_b256() != *s)
        {
            return Err(RegistryError::Unverified(
                "the node proved other slots than asked".into(),
            ));
        }
        let mut out = Vec::with_capacity(facts.len());
        for ((fact, key), slot) in facts.iter().zip(keys).zip(proof.storage_proof) {
            let value = match slot.value.is_zero() {
                true => None,
                false => Some(self.fact_value(fact, at, number).await?),
            };
            out.push(SlotProof {
                key,
                value,
                nodes: slot.proof.iter().map(|n| n.to_vec()).collect(),
            });
        }
        let governance = self
            .reader()
            .governance()
            .block(at)
            .call()
            .await
            .map_err(backend)?;
        Ok(EvmProof {
            chain_id: provider.get_chain_id().await.map_err(backend)?,
            registry: self.address.0.0,
            governance: governance.0.0,
            header,
            account: AccountProof {
                nonce: proof.nonce,
                balance: proof.balance.to_be_bytes(),
                storage_root: proof.storage_hash.0,
                code_hash: proof.code_hash.0,
                nodes: proof.account_proof.iter().map(|n| n.to_vec()).collect(),
            },
            facts: out,
        })
    }

    /// `facts` (any number) proven at block `at` (`None`: the newest) and checked
    /// against the hash this node gives that block: every value and the contract's code
    /// proven against that header. The node names the block, so this is what the node's
    /// chain says — as good as the user's own node (a follower links headers from its
    /// checkpoint instead: [`crate::evm_proof::EvmPage`]).
    pub async fn proven(
        &self,
        facts: &[Fact],
        at: Option<u64>,
    ) -> Result<EvmVerified, RegistryError> {
        // At the newest block, a node that mines while it answers may pair a proof with
        // another block's state (anvil does, now and then): asked again at its newest
        // block, at most twice more. A proof that does not hold is never taken.
        let mut tries = if at.is_none() { 3 } else { 1 };
        loop {
            match self.proven_once(facts, at).await {
                Err(RegistryError::Unverified(why)) if tries > 1 => {
                    tries -= 1;
                    tracing::warn!(%why, "the node's proof did not hold; asking again");
                }
                other => return other,
            }
        }
    }

    async fn proven_once(
        &self,
        facts: &[Fact],
        at: Option<u64>,
    ) -> Result<EvmVerified, RegistryError> {
        let mut out: Option<EvmVerified> = None;
        let mut at = at;
        for chunk in facts
            .chunks(MAX_FACTS)
            .chain(facts.is_empty().then_some(&[][..]))
        {
            let proof = self.prove(chunk, at).await?;
            let block = proof.block()?;
            let trusted = self.block_hash(block.number).await?.ok_or_else(|| {
                RegistryError::Backend(format!("the node has no block {}", block.number))
            })?;
            let verified = proof.verify(&trusted)?;
            at = Some(block.number);
            match out.as_mut() {
                Some(o) => o.merge(verified)?,
                None => out = Some(verified),
            }
        }
        out.ok_or_else(|| RegistryError::Backend("nothing proven".into()))
    }

    /// The standing of the worker `identity_key` in `role` at `now` by the ledger's one
    /// rule ([`crate::state::standing`], named for `tx`), with `extra` facts, all proven
    /// at the newest block (two rounds: the worker, the TCB rule and `extra`; then its
    /// measurement's entry).
    pub async fn standing(
        &self,
        tx: &'static str,
        identity_key: &[u8],
        role: crate::types::Role,
        now: i64,
        extra: &[Fact],
    ) -> Result<
        (
            crate::evm_proof::EvmVerified,
            Result<crate::types::Worker, crate::state::RuleError>,
        ),
        RegistryError,
    > {
        let first = [
            &[Fact::Worker(identity_key.to_vec()), Fact::TcbRule][..],
            extra,
        ]
        .concat();
        let mut v = self.proven(&first, None).await?;
        let worker = v.worker(identity_key)?;
        let role_held = match &worker {
            Some(w) => {
                let m = Fact::Allowed(w.measurement.clone());
                v.merge(self.proven(&[m], Some(v.block.number)).await?)?;
                v.allowed(&w.measurement)?.map(|a| a.role)
            }
            None => None,
        };
        let lifetime = v
            .read(&Fact::TcbRule, crate::facts::read_tcb_rule)?
            .map_or(0, |r| r.max_evidence_age);
        let standing = crate::state::standing(
            tx,
            identity_key,
            worker.as_ref().map(|w| (w, role_held)),
            role,
            lifetime,
            now,
        )
        .and_then(|()| {
            worker.ok_or_else(|| crate::state::RuleError::WrongRole {
                tx,
                worker: crate::hex(identity_key),
                need: role,
                have: "none",
            })
        });
        Ok((v, standing))
    }

    /// The gatekeeper set at block `at` (`None`: the newest), each member with its
    /// standing at `now`, proven as [`EvmRegistry::proven`] proves (three rounds: the
    /// set and the TCB rule, the members' registrations, their measurements' entries).
    pub async fn gatekeeper_set(
        &self,
        now: i64,
        at: Option<u64>,
    ) -> Result<crate::view::GatekeeperSet, RegistryError> {
        Ok(self.proven_gatekeeper_set(now, at).await?.1)
    }

    /// The same, with the facts it was judged from (the set's and the TCB rule's
    /// among them).
    pub(super) async fn proven_gatekeeper_set(
        &self,
        now: i64,
        at: Option<u64>,
    ) -> Result<(crate::evm_proof::EvmVerified, crate::view::GatekeeperSet), RegistryError> {
        use crate::view::GatekeeperSet;
        let mut all = self.proven(&[Fact::Gatekeepers, Fact::TcbRule], at).await?;
        let at = Some(all.block.number);
        let set = all.gatekeepers()?;
        if !set.is_empty() {
            all.merge(self.proven(&GatekeeperSet::worker_facts(&set), at).await?)?;
        }
        // Each measurement once: members usually share one.
        let mut allowed = std::collections::BTreeSet::new();
        for g in &set {
            if let Some(w) = all.worker(&g.identity_key)? {
                allowed.insert(Fact::Allowed(w.measurement));
            }
        }
        if !allowed.is_empty() {
            let allowed: Vec<Fact> = allowed.into_iter().collect();
            all.merge(self.proven(&allowed, at).await?)?;
        }
        let set = GatekeeperSet::from_evm(&all, now)?;
        Ok((all, set))
    }

    /// The value of `fact`, present at block `at`, read from the contract's views.
    ///
    /// Long on purpose: one arm per kind of fact, the one place each is read back.
    async fn fact_value(
        &self,
        fact: &Fact,
        at: BlockId,
        number: u64,
    ) -> Result<Vec<u8>, RegistryError> {
        let gone = || {
            RegistryError::Unverified(format!(
                "fact {} has a value but the contract shows no record of it",
                printable(&fact.key())
            ))
        };
        let c = self.reader();
        Ok(match fact {
            Fact::Worker(k) => facts::worker(&self.worker_at(k, at).await?.ok_or_else(gone)?),
            Fact::Allowed(m) => facts::allowed(
                self.allowed_at(at)
                    .await?
                    .iter()
                    .find(|a| a.measurement == *m)
                    .ok_or_else(gone)?,
            ),
            Fact::Gatekeepers => {
                let (threshold, set) = self.gatekeepers_at(at).await?;
                facts::gatekeepers(threshold, &set)
            }
            Fact::Rotation => facts::rotation(&self.rotation_at(at).await?),
            Fact::Epoch(e) => facts::epoch(&self.master_key_at(*e, at).await?.ok_or_else(gone)?),
            Fact::Retired(_) => vec![1],
            Fact::TcbRule => facts::tcb_rule(&self.tcb_rule_at(at).await?),
            Fact::Contract(id) | Fact::Commands(id) => {
                let info = c
                    .contractInfo(FixedBytes(*id))
                    .block(at)
                    .call()
                    .await
                    .map_err(backend)?;
                if !info.found {
                    return Err(gone());
                }
                match fact {
                    Fact::Contract(_) => facts::contract_fact(&ContractFact {
                        deployer: info.deployer.as_slice().to_vec(),
                        code_hash: info.codeHash.0,
                        salt: info.salt.0,
                        deployed_at: info.deployedAt,
                    }),
                    _ => facts::command_count(info.commands, &info.commandLog.0),
                }
            }
            Fact::ContractKey(id, e) => {
                facts::contract_key(&self.contract_key_at(*id, *e, at).await?.ok_or_else(gone)?)
            }
            Fact::State(id) => {
                let deployed = c
                    .contractInfo(FixedBytes(*id))
                    .block(at)
                    .call()
                    .await
                    .map_err(backend)?
                    .deployedAt;
                facts::state(
                    &self
                        .state_at(*id, deployed, number)
                        .await?
                        .ok_or_else(gone)?,
                )
            }
            Fact::Fault(k) => {
                let packed = c
                    .faultOf(alloy::primitives::keccak256(k))
                    .block(at)
                    .call()
                    .await
                    .map_err(backend)?;
                // fault << 64 | the reporting block.
                let fault = u8::try_from(packed >> 64).map_err(|_| gone())?;
                if fault == 0 {
                    return Err(gone());
                }
                facts::fault(&facts::FaultRecord {
                    fault,
                    reported_at: u64::try_from(packed & alloy::primitives::U256::from(u64::MAX))
                        .map_err(|_| gone())?,
                })
            }
            // Not kept on this backend (its evidence rule is the TCB rule; its history,
            // the chain's own).
            Fact::Rule | Fact::Header(_) => return Err(gone()),
        })
    }
}
