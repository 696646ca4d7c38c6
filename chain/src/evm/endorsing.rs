//! Collecting and giving endorsements on the Solidity registry ([`crate::endorse`] is
//! the sans-IO half: the record, its digest, the signature).
//!
//! - [`EvmRegistry::endorsing`] reads, as facts proven at one block, what an endorser
//!   and a registrant both need: the registry's id, its TCB rule, the gatekeeper set
//!   with each member's standing, and the committee's threshold.
//! - [`endorse_as`] is a gatekeeper's side: it checks a registration's evidence itself
//!   and, if it is a member in standing, signs the record (the `Endorse` RPC of
//!   `phalanx.keyvault.v1.Gatekeeper` serves it).
//! - [`RemoteEndorser`] is a registrant's side: it asks the members in standing, at the
//!   client URLs the registry lists for them, checks each signature, and keeps the
//!   largest group that signed one same record.
//! - [`KeyEndorser`] signs with keys held in this process (tests, and governance's
//!   approvals while no set is in standing).

use super::{EndorseFuture, Endorsed, Endorser, EvmAccount, EvmRegistry};
use crate::endorse::{Endorsement, Record};
use crate::evidence::Roots;
use crate::facts::{self, Fact};
use crate::registry::{Registry as _, RegistryError};
use crate::state::RuleError;
use crate::types::{EvidenceRule, Gatekeeper, Registration, TcbRule};
use crate::view::GatekeeperSet;
use phalanx_proto::keyvault::v1 as pb;
use phalanx_types::codec::Codec as _;
use std::time::Duration;

/// What endorsing needs to know of the registry, proven at one block.
#[derive(Debug, Clone)]
pub struct Endorsing {
    /// The registry's id (registrations' quotes name it).
    pub registry_id: [u8; 32],
    /// Its TCB rule.
    pub rule: TcbRule,
    /// The gatekeeper set, each member with its standing at the time asked.
    pub set: GatekeeperSet,
    /// The committee's threshold: endorsements a registration needs.
    pub threshold: u16,
}

impl Endorsing {
    /// The members in standing.
    pub fn standing(&self) -> Vec<&Gatekeeper> {
        self.set
            .members
            .iter()
            .filter(|m| m.standing.is_ok())
            .map(|m| &m.gatekeeper)
            .collect()
    }

    /// Whether approvals are open: fewer than the threshold in standing (no set yet, or
    /// recovery), so governance approves registrations instead of endorsers.
    pub fn approvals_open(&self) -> bool {
        self.standing().len() < usize::from(self.threshold.max(1))
    }
}

impl EvmRegistry {
    /// [`Endorsing`] at the newest block, standing judged at `now`.
    pub async fn endorsing(&self, now: i64) -> Result<Endorsing, RegistryError> {
        let (all, set) = self.proven_gatekeeper_set(now, None).await?;
        let (threshold, _) = all
            .read(&Fact::Gatekeepers, facts::read_gatekeepers)?
            .unwrap_or_default();
        let rule = all
            .read(&Fact::TcbRule, facts::read_tcb_rule)?
            .ok_or_else(|| RegistryError::Unverified("the registry has no TCB rule".into()))?;
        Ok(Endorsing {
            registry_id: self.chain_id().await?,
            rule,
            set,
            threshold,
        })
    }
}

/// Why a gatekeeper did not endorse.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EndorseError {
    /// This gatekeeper follows no Solidity registry (the ledger checks evidence itself).
    #[error("this gatekeeper follows no Solidity registry")]
    NoRegistry,
    /// The evidence failed the check (the reason names the step).
    #[error("the evidence: {0}")]
    Evidence(crate::evidence::EvidenceError),
    /// This gatekeeper is not a member in standing, so its signature would not count.
    #[error("this gatekeeper is not a member in standing of the registry's set")]
    NotInStanding,
    /// Fewer than the threshold are in standing: governance approves registrations.
    #[error(
        "approvals are open on the registry (fewer than the threshold of gatekeepers in standing): governance approves registrations"
    )]
    ApprovalsOpen,
    /// The registry could not be read.
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

/// A gatekeeper with identity `key` endorses `reg` on `registry`: it checks the evidence
/// to `roots` (its own DCAP roots) under the registry's TCB rule at its clock `now`,
/// with the proposed `evidence_time`, and signs the record if it is a member in
/// standing.
pub async fn endorse_as(
    registry: &EvmRegistry,
    roots: &Roots,
    key: &p256::ecdsa::SigningKey,
    reg: &Registration,
    evidence_time: i64,
    now: i64,
) -> Result<(Record, Endorsement), EndorseError> {
    crate::endorse::check_time(evidence_time, now).map_err(EndorseError::Evidence)?;
    let view = registry.endorsing(now).await?;
    endorse_with(&view, roots, key, reg, evidence_time, now)
}

/// [`endorse_as`] with the registry already read (`view`: an endorser may keep one for
/// a few seconds, so that requests cost it no registry reads each). Sans-IO.
pub fn endorse_with(
    view: &Endorsing,
    roots: &Roots,
    key: &p256::ecdsa::SigningKey,
    reg: &Registration,
    evidence_time: i64,
    now: i64,
) -> Result<(Record, Endorsement), EndorseError> {
    crate::endorse::check_time(evidence_time, now).map_err(EndorseError::Evidence)?;
    let me = crate::types::public_key(key.verifying_key());
    let member = view
        .standing()
        .into_iter()
        .find(|g| g.identity_key == me)
        .map(|g| g.index)
        .ok_or(EndorseError::NotInStanding)?;
    if view.approvals_open() {
        return Err(EndorseError::ApprovalsOpen);
    }
    let rule = roots.rule.with_tcb(&view.rule);
    let record = crate::endorse::check(
        &roots.verifier,
        &rule,
        &view.registry_id,
        reg,
        evidence_time,
        now,
    )
    .map_err(EndorseError::Evidence)?;
    let endorsement = crate::endorse::sign(key, member, &view.registry_id, &record);
    Ok((record, endorsement))
}

/// Collects endorsements from the gatekeepers themselves: every member in standing is
/// asked at its registered client URL (in parallel, each bounded in time), each answer's
/// signature is checked against the member's key, and the largest group that signed the
/// same record is sent. While approvals are open it hands the registration to
/// `bootstrap` (if any: e.g. a [`KeyEndorser`] with governance's account, in the devnet).
#[derive(Debug, Clone, Default)]
pub struct RemoteEndorser {
    bootstrap: Option<std::sync::Arc<dyn Endorser>>,
}

/// How long one gatekeeper may take to endorse (it verifies a quote and reads the
/// registry): the gatekeeper's own server bound.
pub const ENDORSE_TIMEOUT: Duration = Duration::from_secs(10);

impl RemoteEndorser {
    /// Asks the registry's gatekeepers; while approvals are open, `bootstrap` endorses.
    pub fn new(bootstrap: Option<std::sync::Arc<dyn Endorser>>) -> Self {
        Self { bootstrap }
    }

    async fn endorse_now(
        &self,
        registry: &EvmRegistry,
        reg: &Registration,
    ) -> Result<Endorsed, RegistryError> {
        // The registrant's clock proposes the evidence time (the latest block's may lag
        // on a chain that mines on demand); endorsers and the contract each allow
        // `MAX_SKEW` from theirs.
        let now = phalanx_types::unix_now();
        let view = registry.endorsing(now).await?;
        if view.approvals_open() {
            return match &self.bootstrap {
                Some(b) => b.endorse(registry, reg).await,
                None => Err(RegistryError::Backend(format!(
                    "register-worker: approvals are open on the registry ({} of the threshold {} \
                     gatekeepers in standing): governance approves registrations until a set is",
                    view.standing().len(),
                    view.threshold.max(1)
                ))),
            };
        }
        let members: Vec<Gatekeeper> = view.standing().into_iter().cloned().collect();
        let mut asked = tokio::task::JoinSet::new();
        for (i, g) in members.iter().enumerate() {
            let (g, reg) = (g.clone(), reg.clone());
            asked.spawn(async move { (i, ask(&g, &reg, now).await) });
        }
        let mut answers: Vec<_> = asked.join_all().await;
        answers.sort_by_key(|(i, _)| *i);
        let answers = answers.into_iter().map(|(_, a)| a);
        chosen(&view, members.iter().zip(answers))
    }
}

/// Of the members' `answers`, the largest group that validly signed one record, cut to
/// the threshold — the members with the newest evidence first: the contract refuses the
/// whole registration if one signer's standing lapses before it is included. Too few:
/// [`RuleError::NotEndorsed`], the refusals logged.
fn chosen<'a>(
    view: &Endorsing,
    answers: impl Iterator<Item = (&'a Gatekeeper, Result<(Record, Endorsement), String>)>,
) -> Result<Endorsed, RegistryError> {
    let mut groups: Vec<(Record, Vec<Endorsement>)> = Vec::new();
    let mut refusals = Vec::new();
    for (g, answer) in answers {
        let (record, e) = match answer {
            Ok(r) => r,
            Err(why) => {
                refusals.push(format!("gatekeeper {}: {why}", g.index));
                continue;
            }
        };
        if e.index != g.index
            || !crate::endorse::verify(&g.identity_key, &view.registry_id, &record, &e)
        {
            refusals.push(format!(
                "gatekeeper {}: a signature that does not verify",
                g.index
            ));
            continue;
        }
        match groups.iter_mut().find(|(r, _)| *r == record) {
            Some((_, es)) => es.push(e),
            None => groups.push((record, vec![e])),
        }
    }
    let best = groups.into_iter().max_by_key(|(_, es)| es.len());
    let need = view.threshold.max(1);
    match best {
        Some((record, mut endorsements)) if endorsements.len() >= usize::from(need) => {
            let registered = |index: u16| {
                view.set
                    .members
                    .iter()
                    .find(|m| m.gatekeeper.index == index)
                    .and_then(|m| m.standing.as_ref().ok())
                    .map_or(i64::MIN, |w| w.registered_at)
            };
            endorsements.sort_by_key(|e| std::cmp::Reverse(registered(e.index)));
            endorsements.truncate(usize::from(need));
            Ok(Endorsed {
                record,
                endorsements,
            })
        }
        best => {
            let have = best.map_or(0, |(_, es)| es.len());
            tracing::warn!(have, need, refusals = ?refusals, "too few gatekeepers endorsed the registration");
            Err(RegistryError::Rule(RuleError::NotEndorsed {
                have: u16::try_from(have).unwrap_or(u16::MAX),
                need,
            }))
        }
    }
}

impl Endorser for RemoteEndorser {
    fn endorse<'a>(
        &'a self,
        registry: &'a EvmRegistry,
        registration: &'a Registration,
    ) -> EndorseFuture<'a> {
        Box::pin(self.endorse_now(registry, registration))
    }
}

/// Asks gatekeeper `g` to endorse `reg` with evidence time `time`: the record its answer
/// implies and its endorsement (unchecked).
async fn ask(
    g: &Gatekeeper,
    reg: &Registration,
    time: i64,
) -> Result<(Record, Endorsement), String> {
    let channel = tonic::transport::Endpoint::from_shared(g.url.clone())
        .map_err(|e| e.to_string())?
        .connect_timeout(Duration::from_secs(3))
        .timeout(ENDORSE_TIMEOUT)
        .connect()
        .await
        .map_err(|e| format!("{}: {e}", g.url))?;
    let mut client = pb::gatekeeper_client::GatekeeperClient::new(channel)
        .max_encoding_message_size(MAX_ENDORSE_MESSAGE)
        .max_decoding_message_size(MAX_ENDORSE_MESSAGE);
    let resp = client
        .endorse(pb::EndorseRequest {
            registration: reg.to_bytes(),
            evidence_time: time,
        })
        .await
        .map_err(|s| s.message().to_owned())?
        .into_inner();
    let record = Record {
        identity_key: reg.identity_key.clone(),
        hpke_key: reg.hpke_key.clone(),
        measurement: resp.measurement,
        attestation_hash: reg.attestation_hash,
        quote_hash: resp
            .quote_hash
            .try_into()
            .map_err(|_| "a quote hash that is not 32 bytes")?,
        tcb_status: u8::try_from(resp.tcb_status)
            .ok()
            .and_then(crate::types::status_from_code)
            .ok_or("an unknown TCB status")?,
        evidence_time: time,
    };
    let endorsement = Endorsement {
        index: u16::try_from(resp.index).map_err(|_| "an index over 65535")?,
        signature: resp
            .signature
            .try_into()
            .map_err(|_| "a signature that is not 64 bytes")?,
    };
    Ok((record, endorsement))
}

/// While approvals are open, has governance approve the registration: it writes the
/// registration with its proposed evidence time to `pending`
/// ([`crate::endorse::Pending`]), logs the command that approves it, and waits (at most
/// `wait`) until the registry logs governance's approval of its digest. Governance
/// checks the file with [`EvmRegistry::approve_pending`]
/// (`phalanx chain tx … approve-registration FILE`). A registrant that restarts attests
/// again and needs a new approval.
#[derive(Debug)]
pub struct GovernanceApproval {
    roots: std::sync::Arc<Roots>,
    pending: std::path::PathBuf,
    wait: Duration,
}

/// How often a registrant waiting for governance's approval looks for it.
const APPROVAL_POLL: Duration = Duration::from_secs(2);

impl GovernanceApproval {
    /// Writes pending registrations to `pending`, computing their record with `roots`
    /// (the registrant's own check: governance's approval covers the TCB status it
    /// finds), and waits up to `wait` for the approval.
    pub fn new(roots: std::sync::Arc<Roots>, pending: std::path::PathBuf, wait: Duration) -> Self {
        Self {
            roots,
            pending,
            wait,
        }
    }

    async fn approved(
        &self,
        registry: &EvmRegistry,
        reg: &Registration,
    ) -> Result<Endorsed, RegistryError> {
        use alloy::providers::Provider as _;
        use alloy::sol_types::SolEvent as _;
        let now = phalanx_types::unix_now();
        let view = registry.endorsing(now).await?;
        let pending = crate::endorse::Pending {
            registration: reg.clone(),
            evidence_time: now,
        };
        let record = pending
            .check(&self.roots, &view.rule, &view.registry_id, now)
            .map_err(|e| RegistryError::Rule(RuleError::Evidence(e)))?;
        let digest = crate::endorse::digest(&view.registry_id, &record);
        // Approvals are looked for from before the file exists: none can be missed.
        let provider = alloy::providers::ProviderBuilder::new().connect_http(registry.url.clone());
        let from = provider.get_block_number().await.map_err(super::backend)?;
        let tmp = self.pending.with_extension("tmp");
        std::fs::write(&tmp, pending.to_bytes())
            .and_then(|()| std::fs::rename(&tmp, &self.pending))
            .map_err(|e| RegistryError::Backend(format!("{}: {e}", self.pending.display())))?;
        tracing::warn!(
            digest = %crate::hex(&digest),
            file = %self.pending.display(),
            "approvals are open on the registry: governance checks and approves this registration with `phalanx chain tx --url <registry> --key <governance key> approve-registration {}`; waiting",
            self.pending.display()
        );
        let filter = alloy::rpc::types::Filter::new()
            .address(registry.address)
            .event_signature(super::abi::RegistryContract::BootstrapApproved::SIGNATURE_HASH)
            .from_block(from);
        let deadline = tokio::time::Instant::now() + self.wait;
        while tokio::time::Instant::now() < deadline {
            // A hint only: the registry itself decides when the registration is sent. A
            // node that fails to answer is asked again.
            match provider.get_logs(&filter).await {
                Ok(logs) if logs.iter().any(|l| l.data().data.as_ref() == digest) => {
                    let _ = std::fs::remove_file(&self.pending);
                    return Ok(Endorsed {
                        record,
                        endorsements: Vec::new(),
                    });
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "looking for governance's approval failed; retrying")
                }
            }
            tokio::time::sleep(APPROVAL_POLL).await;
        }
        Err(RegistryError::Backend(format!(
            "register-worker: governance did not approve the registration in {} (digest {}) within {:?}",
            self.pending.display(),
            crate::hex(&digest),
            self.wait
        )))
    }
}

impl Endorser for GovernanceApproval {
    fn endorse<'a>(
        &'a self,
        registry: &'a EvmRegistry,
        registration: &'a Registration,
    ) -> EndorseFuture<'a> {
        Box::pin(self.approved(registry, registration))
    }
}

impl EvmRegistry {
    /// The record `pending` proves, checked to `roots` under the registry's TCB rule at
    /// this clock ([`crate::endorse::Pending::check`]): what governance would approve.
    pub async fn pending_record(
        &self,
        roots: &Roots,
        pending: &crate::endorse::Pending,
    ) -> Result<Record, RegistryError> {
        let now = phalanx_types::unix_now();
        let view = self.endorsing(now).await?;
        pending
            .check(roots, &view.rule, &view.registry_id, now)
            .map_err(|e| RegistryError::Rule(RuleError::Evidence(e)))
    }

    /// Governance approves the pending registration `pending` (while approvals are
    /// open) after checking it ([`Self::pending_record`]); the record it approved.
    pub async fn approve_pending(
        &self,
        governance: &EvmAccount,
        roots: &Roots,
        pending: &crate::endorse::Pending,
    ) -> Result<(Record, u64), RegistryError> {
        let record = self.pending_record(roots, pending).await?;
        let view = self.endorsing(phalanx_types::unix_now()).await?;
        if !view.approvals_open() {
            return Err(RegistryError::Backend(
                "approvals are closed: the gatekeepers in standing endorse registrations now"
                    .into(),
            ));
        }
        let height = self
            .approve_bootstrap(
                governance,
                crate::endorse::digest(&view.registry_id, &record),
            )
            .await?;
        Ok((record, height))
    }
}

/// The largest endorsement request or response (a registration carries its quote and
/// collateral).
pub const MAX_ENDORSE_MESSAGE: usize = 256 * 1024;

/// Endorses with gatekeeper identity keys held in this process, each checking the
/// evidence itself ([`crate::endorse::check`]) to `roots` under the registry's TCB rule
/// at the chain's clock. While approvals are open (no set yet, or fewer than t members
/// in standing) it has `governance` (if given) approve the registration instead. A key
/// not in the set, or of a member not in standing, signs nothing.
pub struct KeyEndorser {
    roots: Roots,
    keys: Vec<p256::ecdsa::SigningKey>,
    governance: Option<EvmAccount>,
}

impl std::fmt::Debug for KeyEndorser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyEndorser")
            .field("roots", &self.roots)
            .field("keys", &self.keys.len())
            .field("governance", &self.governance.is_some())
            .finish()
    }
}

impl KeyEndorser {
    /// Endorses with `keys`, trusting the DCAP roots of `roots` (its TCB part is the
    /// registry's, read at each endorsement).
    pub fn new(
        roots: EvidenceRule,
        keys: Vec<p256::ecdsa::SigningKey>,
        governance: Option<EvmAccount>,
    ) -> Result<Self, phalanx_dcap::Error> {
        Ok(Self {
            roots: Roots::new(roots)?,
            keys,
            governance,
        })
    }

    async fn endorse_now(
        &self,
        registry: &EvmRegistry,
        reg: &Registration,
    ) -> Result<Endorsed, RegistryError> {
        // The chain's clock: the proposal and every check here.
        let now = registry.now().await?;
        let view = registry.endorsing(now).await?;
        let rule = self.roots.rule.with_tcb(&view.rule);
        let id = view.registry_id;
        let record = crate::endorse::check(&self.roots.verifier, &rule, &id, reg, now, now)
            .map_err(|e| RegistryError::Rule(RuleError::Evidence(e)))?;
        if view.approvals_open() {
            let governance =
                self.governance
                    .as_ref()
                    .ok_or(RegistryError::Rule(RuleError::NotEndorsed {
                        have: 0,
                        need: 1,
                    }))?;
            registry
                .approve_bootstrap(governance, crate::endorse::digest(&id, &record))
                .await?;
            return Ok(Endorsed {
                record,
                endorsements: Vec::new(),
            });
        }
        // Members in standing only: the contract refuses the whole registration for any
        // other's endorsement.
        let endorsements = view
            .standing()
            .into_iter()
            .filter_map(|g| {
                let key = self
                    .keys
                    .iter()
                    .find(|k| crate::types::public_key(k.verifying_key()) == g.identity_key)?;
                Some(crate::endorse::sign(key, g.index, &id, &record))
            })
            .collect();
        Ok(Endorsed {
            record,
            endorsements,
        })
    }
}

impl Endorser for KeyEndorser {
    fn endorse<'a>(
        &'a self,
        registry: &'a EvmRegistry,
        registration: &'a Registration,
    ) -> EndorseFuture<'a> {
        Box::pin(self.endorse_now(registry, registration))
    }
}
