//! Gatekeepers and the registry: the [`RegistryHooks`] a `keyvault` node uses when
//! its config names a registry — the embedded ledger through a verifying light client of
//! `chain`, or the Solidity registry through facts proven at its node's newest block
//! ([`RegistryHooks::evm`]).
//!
//! A node with a registry refuses a round whose committee is not the registry's
//! gatekeeper set (index, identity key, peer URL), and a DKG for an epoch the registry
//! has not locked for rotation; after any round it committed, every member submits the
//! round's certificate (all members' confirmations of the new public key set), which
//! the registry checks against its gatekeeper set before it publishes the epoch's keys
//! (and, for a DKG, releases the rotation lock).

use crate::peer::Boxed;
use crate::peer::RoundHooks;
use crate::peer::{Decision, Proposal};
use crate::round::{CommitCertificate, RoundKind, RoundSpec};
use crate::share::PublicKeySet;
use chain::grpc::LightClient;
use chain::registry::Registry;
use chain::registry::RegistryError;
use chain::state::RuleError;
use chain::types::{EpochCertificate, RoundDecision};
use chain::types::{Rotation, public_key};
use p256::ecdsa::SigningKey;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;

/// Whether the other members' evidence is checked before a round.
#[derive(Debug, Clone)]
pub enum Evidence {
    /// Check it with this node's JWKS and release policy (trust roots, appraisal):
    /// every other member of the round must serve the token it registered with, and
    /// [`phalanx_release::release::check_registration`] must hold for it.
    Check(std::sync::Arc<crate::node::Node>),
    /// Do not (`dangerous_unattested_gatekeepers`: a cluster run outside any TEE).
    DangerousSkip,
}

/// How long a member may take to show its evidence.
const EVIDENCE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Round hooks backed by the registry.
#[derive(Debug)]
pub struct RegistryHooks {
    follow: Follow,
    identity: SigningKey,
    evidence: Evidence,
    checked: phalanx_attested::evidence::Checked,
}

/// The registry the hooks follow.
#[derive(Debug)]
enum Follow {
    /// The embedded ledger, through a verifying light client. (Both boxed: each is
    /// large, a client's synced state, an account's keys.)
    Ledger(Box<LightClient>),
    /// The Solidity registry, through proofs at its node's newest block, acting from the
    /// node's Ethereum account.
    Evm(Box<EvmFollow>),
}

/// The Solidity registry and the node's account on it.
#[derive(Debug)]
struct EvmFollow {
    registry: chain::evm::EvmRegistry,
    account: chain::evm::EvmAccount,
    /// The DCAP roots it checks registrations' evidence against when it endorses them.
    roots: std::sync::Arc<chain::evidence::Roots>,
    /// The registry as endorsing reads it, and when: kept [`ENDORSING_VIEW`] so that
    /// endorsement requests (anyone may send them) cost no registry reads each; one
    /// read at a time, shared by the requests waiting on it.
    view: tokio::sync::Mutex<Option<(std::time::Instant, chain::evm::Endorsing)>>,
}

/// How long an endorser keeps its view of the registry (the set, standing, TCB rule).
const ENDORSING_VIEW: std::time::Duration = std::time::Duration::from_secs(5);

impl EvmFollow {
    /// The registry as endorsing reads it, at most [`ENDORSING_VIEW`] old.
    async fn endorsing(&self, now: i64) -> Result<chain::evm::Endorsing, RegistryError> {
        let mut view = self.view.lock().await;
        if let Some((at, v)) = view.as_ref()
            && at.elapsed() < ENDORSING_VIEW
        {
            return Ok(v.clone());
        }
        let v = self.registry.endorsing(now).await?;
        *view = Some((std::time::Instant::now(), v.clone()));
        Ok(v)
    }
}

/// What a round's check reads of the registry.
struct Committee {
    /// The gatekeeper set, as listed.
    gatekeepers: Vec<chain::types::Gatekeeper>,
    /// Governance's threshold.
    threshold: u16,
    rotation: Rotation,
    /// The set with each member's standing at the check's time.
    standing: chain::view::GatekeeperSet,
    /// Whether the epoch of a DKG being checked is published already.
    epoch_published: bool,
    /// The next epoch a rotation would lock (known on the ledger).
    next_epoch: Option<phalanx_types::Epoch>,
}

impl Follow {
    /// The committee and, for a DKG of `dkg`, whether that epoch exists.
    async fn committee(
        &self,
        now: i64,
        dkg: Option<phalanx_types::Epoch>,
    ) -> Result<Committee, String> {
        match self {
            Self::Ledger(client) => {
                let state = client.sync().await.map_err(|e| e.to_string())?;
                Ok(Committee {
                    gatekeepers: state.gatekeepers().to_vec(),
                    threshold: state.committee_threshold(),
                    rotation: state.rotation(),
                    standing: chain::view::GatekeeperSet::of_state(&state, now),
                    epoch_published: dkg.is_some_and(|e| state.master_key(e).is_some()),
                    next_epoch: Some(state.next_epoch()),
                })
            }
            Self::Evm(evm) => {
                use chain::facts::{self, Fact};
                let registry = &evm.registry;
                let mut asked = vec![Fact::Gatekeepers, Fact::Rotation];
                asked.extend(dkg.map(Fact::Epoch));
                let v = registry
                    .proven(&asked, None)
                    .await
                    .map_err(|e| e.to_string())?;
                // The members' standing at that same block.
                let standing = registry
                    .gatekeeper_set(now, Some(v.block.number))
                    .await
                    .map_err(|e| e.to_string())?;
                let read = |e: chain::proof::ProofError| e.to_string();
                let (threshold, gatekeepers) = v
                    .read(&Fact::Gatekeepers, facts::read_gatekeepers)
                    .map_err(read)?
                    .unwrap_or_default();
                Ok(Committee {
                    gatekeepers,
                    threshold,
                    rotation: v
                        .read(&Fact::Rotation, facts::read_rotation)
                        .map_err(read)?
                        .unwrap_or(Rotation::Idle),
                    standing,
                    epoch_published: match dkg {
                        Some(e) => v.epoch(e).map_err(read)?.is_some(),
                        None => false,
                    },
                    next_epoch: None,
                })
            }
        }
    }

    /// Whether the registry retired `epoch`.
    async fn retired(&self, epoch: phalanx_types::Epoch) -> Result<bool, String> {
        match self {
            Self::Ledger(client) => {
                let state = client.sync().await.map_err(|e| e.to_string())?;
                Ok(state.is_retired(epoch))
            }
            Self::Evm(evm) => {
                let registry = &evm.registry;
                let fact = chain::facts::Fact::Retired(epoch);
                let v = registry
                    .proven(std::slice::from_ref(&fact), None)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(v.fact(&fact).map_err(|e| e.to_string())?.is_some())
            }
        }
    }

    /// Whether contract `id` is deployed, and the standing of the pRuntime
    /// `identity_key` at `now`.
    async fn runtime(
        &self,
        id: [u8; 32],
        identity_key: &[u8],
        now: i64,
    ) -> Result<(bool, Result<chain::types::Worker, RuleError>), String> {
        match self {
            Self::Ledger(client) => {
                let state = client.sync().await.map_err(|e| e.to_string())?;
                let standing = state
                    .standing("release", identity_key, chain::types::Role::Runtime, now)
                    .cloned();
                Ok((state.contract(&id).is_some(), standing))
            }
            Self::Evm(evm) => {
                let contract = chain::facts::Fact::Contract(id);
                let (v, standing) = evm
                    .registry
                    .standing(
                        "release",
                        identity_key,
                        chain::types::Role::Runtime,
                        now,
                        std::slice::from_ref(&contract),
                    )
                    .await
                    .map_err(|e| e.to_string())?;
                let deployed = v.contract(&id).map_err(|e| e.to_string())?.is_some();
                Ok((deployed, standing))
            }
        }
    }

    async fn publish_master_key(
        &self,
        identity: &SigningKey,
        cert: &EpochCertificate,
    ) -> Result<u64, RegistryError> {
        match self {
            Self::Ledger(client) => client.publish_master_key(identity, cert).await,
            Self::Evm(evm) => evm.registry.publish_master_key(&evm.account, cert).await,
        }
    }

    async fn abort_round(&self, identity: &SigningKey, id: [u8; 32]) -> Result<u64, RegistryError> {
        match self {
            Self::Ledger(client) => client.abort_round(identity, id).await,
            Self::Evm(evm) => evm.registry.abort_round(&evm.account, id).await,
        }
    }

    async fn round_decision(&self, id: [u8; 32]) -> Result<Option<RoundDecision>, RegistryError> {
        match self {
            Self::Ledger(client) => client.round_decision(id).await,
            Self::Evm(evm) => evm.registry.round_decision(id).await,
        }
    }

    async fn report_misbehaviour(
        &self,
        identity: &SigningKey,
        evidence: &chain::types::Misbehaviour,
    ) -> Result<u64, RegistryError> {
        match self {
            Self::Ledger(client) => client.report_misbehaviour(identity, evidence).await,
            Self::Evm(evm) => {
                evm.registry
                    .report_misbehaviour(&evm.account, evidence)
                    .await
            }
        }
    }
}

impl RegistryHooks {
    /// Hooks for a node with `identity`, following the chain at `url` whose genesis
    /// hashes to `genesis`, checking the other members' evidence as `evidence` says.
    pub fn new(url: &str, genesis: [u8; 32], identity: SigningKey, evidence: Evidence) -> Self {
        if matches!(evidence, Evidence::DangerousSkip) {
            tracing::warn!(
                "dangerous_unattested_gatekeepers: joining rounds with gatekeepers WITHOUT checking that they run in a TEE"
            );
        }
        Self {
            follow: Follow::Ledger(Box::new(LightClient::pinned(url, genesis))),
            identity,
            evidence,
            checked: Default::default(),
        }
    }

    /// Hooks for a node with `identity` on the Solidity `registry`, whose transactions
    /// (certificates, aborts) it sends from `account` (its registered worker account).
    /// Every read is a fact proven at the registry node's newest block. It endorses
    /// registrations ([`RoundHooks::endorse`]) whose quotes chain to `roots`' DCAP roots
    /// (its own configuration's: the registry holds none).
    pub fn evm(
        registry: chain::evm::EvmRegistry,
        account: chain::evm::EvmAccount,
        identity: SigningKey,
        evidence: Evidence,
        roots: std::sync::Arc<chain::evidence::Roots>,
    ) -> Self {
        Self {
            follow: Follow::Evm(Box::new(EvmFollow {
                registry,
                account,
                roots,
                view: Default::default(),
            })),
            identity,
            evidence,
            checked: Default::default(),
        }
    }

    /// The ledger's light client (to register the node with), when the registry is the
    /// ledger.
    pub fn client(&self) -> Option<&LightClient> {
        match &self.follow {
            Follow::Ledger(client) => Some(client),
            Follow::Evm(_) => None,
        }
    }

    /// The same, remembering the last verified head in `checkpoint` so a restarted
    /// node refuses a registry that forked or rolled back (see [`LightClient`]). The file
    /// is authenticated with a key derived from the node's identity (which only its
    /// sealed store holds), so its host cannot forge a head; once the node `holds_shares`
    /// a missing file is refused (its host deleting it would make the node trust the
    /// first history shown).
    pub fn with_checkpoint(mut self, checkpoint: &Path, holds_shares: bool) -> Self {
        if let Follow::Ledger(client) = self.follow {
            self.follow = Follow::Ledger(Box::new(client.with_identity_checkpoint(
                checkpoint,
                &self.identity,
                holds_shares,
            )));
        }
        self
    }

    async fn check(&self, spec: &RoundSpec) -> Result<(), String> {
        let dkg = match spec.kind {
            RoundKind::Dkg { epoch, .. } => Some(epoch),
            _ => None,
        };
        let committee = self
            .follow
            .committee(phalanx_types::unix_now(), dkg)
            .await?;
        let on_chain: Vec<(u16, Vec<u8>, String)> = committee
            .gatekeepers
            .iter()
            .map(|g| (g.index, g.identity_key.clone(), g.peer_url.clone()))
            .collect();
        let spec_set: Vec<(u16, Vec<u8>, String)> = spec
            .participants
            .iter()
            .map(|p| (p.index.get(), public_key(&p.identity), p.url.clone()))
            .collect();
        if on_chain != spec_set {
            return Err("the round's committee is not the registry's gatekeeper set".into());
        }
        if let Evidence::Check(node) = &self.evidence {
            let trust = node.trust().map_err(|e| e.to_string())?;
            let me = public_key(self.identity.verifying_key());
            let others = committee.standing.clone().without(&me);
            let refused = phalanx_attested::evidence::check_gatekeepers(
                &others,
                &trust.jwks,
                &trust.policy,
                &self.checked,
                EVIDENCE_TIMEOUT,
            )
            .await;
            if !refused.is_empty() {
                let why: Vec<String> = refused.iter().map(ToString::to_string).collect();
                return Err(format!(
                    "members without valid TEE evidence: {}",
                    why.join("; ")
                ));
            }
        }
        if let RoundKind::Dkg { epoch, .. } = spec.kind
            && committee.rotation != Rotation::Locked(epoch)
        {
            // Name the real cause: an epoch that exists already (a genesis run twice),
            // or a rotation nobody locked.
            if committee.epoch_published {
                let next = committee
                    .next_epoch
                    .map_or("the next one".to_owned(), |n| n.to_string());
                return Err(format!(
                    "epoch {epoch} is already published on the registry: a new epoch is \
                     epoch {next} (`phalanx chain tx ... lock-rotation {next}`, then \
                     `phalanx keyvault rotate`)"
                ));
            }
            return Err(format!(
                "the registry has not locked a rotation to epoch {epoch} \
                 (`phalanx chain tx ... lock-rotation {epoch}`)"
            ));
        }
        // The threshold is governance's: an administrator cannot lower it (NH2).
        let threshold = match &spec.kind {
            RoundKind::Dkg { threshold, .. } => Some(*threshold),
            RoundKind::Reshare { new_threshold, .. } => Some(*new_threshold),
            RoundKind::Refresh { .. } => None,
        };
        if let Some(t) = threshold
            && t != committee.threshold
        {
            return Err(format!(
                "the round's threshold {t} is not the committee's threshold {}, which \
                 governance sets (`phalanx chain tx ... set-gatekeepers --threshold T`)",
                committee.threshold
            ));
        }
        Ok(())
    }

    /// Whether the registry retired `epoch` (a node forgets an epoch's share only then).
    async fn retired(&self, epoch: phalanx_types::Epoch) -> Result<(), String> {
        if self.follow.retired(epoch).await? {
            Ok(())
        } else {
            Err(format!(
                "the registry has not retired epoch {epoch} (`phalanx chain tx ... retire-epoch {epoch}`, governance's)"
            ))
        }
    }

    /// Publishes the round's certificate. Every member does (the first to land wins;
    /// the others are refused as already decided), so no single member can withhold
    /// an epoch's keys from the registry. `Ok(false)`: the registry refused it by a
    /// rule (it will never take it).
    async fn publish(
        &self,
        spec: &RoundSpec,
        public: &PublicKeySet,
        certificate: &CommitCertificate,
    ) -> Result<bool, String> {
        let cert = EpochCertificate::new(spec, public, certificate);
        let r = self.follow.publish_master_key(&self.identity, &cert).await;
        if let Ok(height) = r {
            tracing::info!(
                epoch = %spec.kind.epoch(),
                kind = spec.kind.name(),
                height,
                "epoch keys published to the registry"
            );
        }
        settled(r)
    }

    /// Submits `proposal` for `spec` (a certificate, or an abort — also when the
    /// registry refuses the certificate, e.g. a DKG whose rotation governance gave up),
    /// then reads the registry's decision. Refusals because the round is already
    /// decided are expected: the first proposal to land decides.
    async fn decide_on(
        &self,
        spec: &RoundSpec,
        proposal: Proposal<'_>,
    ) -> Result<Option<Decision>, String> {
        let id = spec.id();
        let abort = match proposal {
            Proposal::Commit {
                public,
                certificate,
            } => !self.publish(spec, public, certificate).await?,
            Proposal::Abort => true,
            Proposal::Query => false,
        };
        if abort {
            settled(self.follow.abort_round(&self.identity, id).await)?;
        }
        let decision = self
            .follow
            .round_decision(id)
            .await
            .map_err(|e| e.to_string())?;
        Ok(decision.map(|d| match d {
            RoundDecision::Committed => Decision::Commit,
            RoundDecision::Aborted => Decision::Abort,
        }))
    }
}

/// Whether a proposal to the registry is settled: taken, or refused because the round
/// is already decided (`Ok(true)`); refused by another rule (`Ok(false)`); or the
/// registry was not reached (`Err`, try again).
fn settled(r: Result<u64, RegistryError>) -> Result<bool, String> {
    match r {
        Ok(_)
        | Err(RegistryError::Rule(RuleError::RoundAlreadyPublished | RuleError::RoundAborted)) => {
            Ok(true)
        }
        Err(RegistryError::Rule(e)) => {
            tracing::warn!(error = %e, "the registry refused the proposal");
            Ok(false)
        }
        Err(e) => Err(e.to_string()),
    }
}

impl RoundHooks for RegistryHooks {
    fn admit<'a>(
        &'a self,
        spec: &'a RoundSpec,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>> {
        Box::pin(self.check(spec))
    }
    fn admit_retirement(
        &self,
        epoch: phalanx_types::Epoch,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + '_>> {
        Box::pin(self.retired(epoch))
    }
    fn committed<'a>(
        &'a self,
        spec: &'a RoundSpec,
        public: &'a PublicKeySet,
        certificate: &'a CommitCertificate,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        // Only reached without a decider (never, for these hooks, which order outcomes
        // and publish the certificate as their proposal); kept correct regardless.
        Box::pin(async move {
            if let Err(e) = self.publish(spec, public, certificate).await {
                tracing::error!(error = %e, "publishing the epoch keys failed");
            }
        })
    }
    fn orders_outcomes(&self) -> bool {
        true
    }
    fn decide<'a>(
        &'a self,
        spec: &'a RoundSpec,
        proposal: Proposal<'a>,
    ) -> Pin<Box<dyn Future<Output = Result<Option<Decision>, String>> + Send + 'a>> {
        Box::pin(self.decide_on(spec, proposal))
    }
    fn report(&self, evidence: chain::types::Misbehaviour) -> Boxed<'_, Result<(), String>> {
        Box::pin(async move {
            // Tried again while another of this node's transactions took its sequence
            // number (two reports at once, or one beside a round's proposal).
            let mut tries = 0;
            loop {
                match self
                    .follow
                    .report_misbehaviour(&self.identity, &evidence)
                    .await
                {
                    Ok(height) => {
                        tracing::info!(height, "the registry took the evidence");
                        return Ok(());
                    }
                    Err(RegistryError::Rule(RuleError::Nonce { .. })) if tries < 5 => {
                        tries += 1;
                        tokio::time::sleep(std::time::Duration::from_millis(200 * tries)).await;
                    }
                    Err(e) => return Err(e.to_string()),
                }
            }
        })
    }
    fn endorse<'a>(
        &'a self,
        registration: &'a chain::types::Registration,
        evidence_time: i64,
        now: i64,
    ) -> Boxed<
        'a,
        Result<(chain::endorse::Record, chain::endorse::Endorsement), chain::evm::EndorseError>,
    > {
        Box::pin(async move {
            let Follow::Evm(evm) = &self.follow else {
                return Err(chain::evm::EndorseError::NoRegistry);
            };
            chain::endorse::check_time(evidence_time, now)
                .map_err(chain::evm::EndorseError::Evidence)?;
            let view = evm.endorsing(now).await?;
            chain::evm::endorse_with(
                &view,
                &evm.roots,
                &self.identity,
                registration,
                evidence_time,
                now,
            )
        })
    }
    fn contract_release_refused<'a>(
        &'a self,
        id: [u8; 32],
        identity_key: &'a [u8],
        hpke_key: &'a [u8],
        now: i64,
    ) -> Pin<Box<dyn Future<Output = Result<Option<String>, String>> + Send + 'a>> {
        Box::pin(async move {
            let (deployed, standing) = self.follow.runtime(id, identity_key, now).await?;
            if !deployed {
                return Ok(Some(format!(
                    "no contract {} on the registry",
                    hex::encode(id)
                )));
            }
            let verified = "contract keys go only to a pRuntime the registry verified";
            Ok(match standing {
                Err(e) => Some(format!("{verified}: {e}")),
                Ok(w) if w.hpke_key != hpke_key => Some(format!(
                    "{verified}: the HPKE key is not the one the registry lists for this worker"
                )),
                Ok(_) => None,
            })
        })
    }
}

/// Loads a P-256 key file (32 secret bytes, hex), creating it (0600) if absent.
pub fn key_file(path: &Path) -> anyhow::Result<SigningKey> {
    if !path.exists() {
        let key = chain::random_key();
        let hex = zeroize::Zeroizing::new(hex::encode(key.to_bytes()));
        phalanx_types::secret_file::create(path, hex.as_bytes())?;
    }
    let raw = phalanx_types::secret_file::read_key32(path)?;
    SigningKey::from_slice(raw.as_slice())
        .map_err(|_| anyhow::anyhow!("{} is not a P-256 key", path.display()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::round::Participant;
    use crate::share::NodeIndex;
    use chain::types::{Gatekeeper, Role};
    use phalanx_types::Epoch;

    fn now() -> i64 {
        1_760_000_000
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn nodes_join_only_rounds_the_registry_backs() {
        let dir = tempfile::tempdir().unwrap();
        let governance = chain::random_key();
        let sim = chain::sim::platform(now() - 1000).unwrap();
        let enclave = chain::sim::enclave([1; 32]);
        let ledger = std::sync::Arc::new(
            chain::ledger::Ledger::open(
                dir.path(),
                chain::random_key(),
                public_key(governance.verifying_key()),
                chain::sim::evidence_rule(&sim),
                now,
            )
            .unwrap(),
        );
        let genesis = ledger.blocks(0, 1).unwrap()[0].hash();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(chain::grpc::serve(
            listener,
            ledger.clone(),
            std::future::pending(),
        ));
        ledger
            .add_measurement(&governance, &chain::sim::tenant(&enclave), Role::Gatekeeper)
            .await
            .unwrap();
        let chain_id = ledger.state().unwrap().chain_id();
        let keys: Vec<SigningKey> = (0..2).map(|_| chain::random_key()).collect();
        let mut set = Vec::new();
        let mut participants = Vec::new();
        for (i, k) in (1u16..).zip(&keys) {
            let w = chain::sim::registration(&sim, &enclave, k, Vec::new(), chain_id).unwrap();
            ledger.register_worker(k, &w).await.unwrap();
            let (g, p) = member(i, k);
            set.push(g);
            participants.push(p);
        }
        ledger.set_gatekeepers(&governance, &set, 2).await.unwrap();
        let hooks = RegistryHooks::new(&url, genesis, keys[0].clone(), Evidence::DangerousSkip);
        hooks_follow_the_registry(
            &hooks,
            &*ledger,
            &governance,
            &set,
            &participants,
            &keys,
            true,
        )
        .await;
    }

    /// The same on the Solidity registry (anvil; skipped without one unless
    /// `PHALANX_REQUIRE_ANVIL` is set): every read a proven fact at the node's newest
    /// block, the certificate and aborts sent from the node's Ethereum account; and a
    /// contract's keys refused to a worker the registry does not list.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn on_the_solidity_registry_nodes_join_only_rounds_it_backs() {
        use chain::evm::{Anvil, EvmAccount, EvmRegistry, KeyEndorser, funded};
        use chain::registry::ContractRegistry as _;
        let Some(anvil) = Anvil::start(None).await.unwrap() else {
            assert!(
                std::env::var_os("PHALANX_REQUIRE_ANVIL").is_none(),
                "no anvil"
            );
            return;
        };
        let url = anvil.url();
        let sim = chain::sim::platform(phalanx_types::unix_now() - 60).unwrap();
        let enclave = chain::sim::enclave([1; 32]);
        let governance = EvmAccount::plain(funded(url).await.unwrap());
        // Before any set exists, governance approves each registration.
        let endorser = KeyEndorser::new(
            chain::sim::evidence_rule(&sim),
            Vec::new(),
            Some(governance.clone()),
        )
        .unwrap();
        let registry = EvmRegistry::deploy(
            url,
            &funded(url).await.unwrap(),
            governance.signer.address(),
        )
        .await
        .unwrap()
        .with_endorser(std::sync::Arc::new(endorser));
        registry
            .add_measurement(&governance, &chain::sim::tenant(&enclave), Role::Gatekeeper)
            .await
            .unwrap();
        let chain_id = registry.chain_id().await.unwrap();
        let keys: Vec<SigningKey> = (0..2).map(|_| chain::random_key()).collect();
        let (mut set, mut participants, mut accounts) = (Vec::new(), Vec::new(), Vec::new());
        for (i, k) in (1u16..).zip(&keys) {
            let w = chain::sim::registration(&sim, &enclave, k, Vec::new(), chain_id).unwrap();
            let account = EvmAccount {
                signer: funded(url).await.unwrap(),
                identity: Some(k.clone()),
            };
            registry.register_worker(&account, &w).await.unwrap();
            accounts.push(account);
            let (g, p) = member(i, k);
            set.push(g);
            participants.push(p);
        }
        registry
            .set_gatekeepers(&governance, &set, 2)
            .await
            .unwrap();
        let hooks = RegistryHooks::evm(
            registry.clone(),
            accounts[0].clone(),
            keys[0].clone(),
            Evidence::DangerousSkip,
            std::sync::Arc::new(
                chain::evidence::Roots::new(chain::sim::evidence_rule(&sim)).unwrap(),
            ),
        );
        assert!(hooks.client().is_none());
        hooks_follow_the_registry(
            &hooks,
            &registry,
            &governance,
            &set,
            &participants,
            &keys,
            false,
        )
        .await;
        // A contract's keys go only to a pRuntime the registry lists.
        let (_, id) = registry
            .deploy_contract(&governance, b"\0asm\x01\0\0\0", [0; 32])
            .await
            .unwrap();
        let stranger = chain::types::public_key(chain::random_key().verifying_key());
        let refused = hooks
            .contract_release_refused(id, &stranger, &[4; 65], phalanx_types::unix_now())
            .await
            .unwrap()
            .unwrap();
        assert!(refused.contains("registry verified"), "{refused}");
        let missing = hooks
            .contract_release_refused([9; 32], &stranger, &[4; 65], phalanx_types::unix_now())
            .await
            .unwrap()
            .unwrap();
        assert!(missing.contains("no contract"), "{missing}");
    }

    /// Gatekeeper `i` with identity key `k`: as the registry lists it, and as a round
    /// names it.
    fn member(i: u16, k: &SigningKey) -> (Gatekeeper, Participant) {
        (
            Gatekeeper {
                index: i,
                identity_key: public_key(k.verifying_key()),
                url: format!("http://g{i}"),
                peer_url: format!("https://g{i}"),
            },
            Participant {
                index: NodeIndex::new(i).unwrap(),
                identity: *k.verifying_key(),
                url: format!("https://g{i}"),
            },
        )
    }

    /// The checks every node makes before it joins a round, against registry `r`
    /// (governed by `governance`, gatekeepers `set` with these `keys`, threshold 2): a
    /// DKG needs the rotation lock, another committee is refused, the certificate needs
    /// every confirmation, the threshold is governance's, no unretired epoch is erased.
    async fn hooks_follow_the_registry<R: Registry>(
        hooks: &RegistryHooks,
        r: &R,
        governance: &R::Account,
        set: &[Gatekeeper],
        participants: &[Participant],
        keys: &[SigningKey],
        names_next_epoch: bool,
    ) {
        let participants = participants.to_vec();
        let dkg = RoundSpec::new(
            [0; 16],
            RoundKind::Dkg {
                epoch: Epoch(0),
                threshold: 2,
            },
            participants.clone(),
        )
        .unwrap();
        // A DKG needs the registry's rotation lock.
        assert!(hooks.check(&dkg).await.unwrap_err().contains("not locked"));
        r.lock_rotation(governance, Epoch(0)).await.unwrap();
        hooks.check(&dkg).await.unwrap();
        // Another committee (a peer URL the registry does not list) is refused.
        let mut other = participants.clone();
        other[1].url = "https://elsewhere".into();
        let spec = RoundSpec::new([0; 16], RoundKind::Refresh { epoch: Epoch(0) }, other).unwrap();
        assert!(
            hooks
                .check(&spec)
                .await
                .unwrap_err()
                .contains("gatekeeper set")
        );
        // After the DKG, a member publishes the committee's certificate (which unlocks).
        let secret = crate::share::SecretScalar::new(p256::Scalar::from(5u64));
        let (_, public) = crate::share::dealer_split(&secret, 2, 2, &mut rand::rng()).unwrap();
        let digest = crate::round::digest(&dkg.id(), &public);
        let mut certificate = CommitCertificate::default();
        for (p, k) in participants.iter().zip(keys) {
            let sig: p256::ecdsa::Signature = p256::ecdsa::signature::Signer::sign(
                k,
                &crate::round::confirmation_bytes(&dkg.id(), p.index, &digest),
            );
            certificate
                .confirmations
                .insert(p.index, sig.to_bytes().into());
        }
        // Without one member's confirmation nothing is published.
        let mut partial = certificate.clone();
        partial.confirmations.remove(&NodeIndex::new(2).unwrap());
        hooks.publish(&dkg, &public, &partial).await.unwrap();
        assert!(r.master_key(Epoch(0)).await.unwrap().is_none());
        hooks.publish(&dkg, &public, &certificate).await.unwrap();
        let key = r.master_key(Epoch(0)).await.unwrap().unwrap();
        assert_eq!(
            key.master_public_key,
            crate::dleq::point_bytes(&public.master_public_key())
        );
        assert_eq!(r.rotation().await.unwrap(), Rotation::Idle);
        // A second genesis DKG is told that epoch 0 exists and which epoch comes next
        // (newcomer review: it was told to lock epoch 0, which the registry refuses).
        let again = hooks.check(&dkg).await.unwrap_err();
        assert!(again.contains("already published"), "{again}");
        assert!(
            !names_next_epoch || again.contains("lock-rotation 1"),
            "{again}"
        );

        // NH2: whoever holds the admin secret starts rounds, but a reshare of the live
        // epoch to t = 1 is refused by every node before it joins (and by the registry
        // if a certificate were made): the threshold is governance's.
        let dealers = vec![NodeIndex::new(1).unwrap(), NodeIndex::new(2).unwrap()];
        let lower = |t| {
            RoundSpec::new(
                [7; 16],
                RoundKind::Reshare {
                    epoch: Epoch(0),
                    dealers: dealers.clone(),
                    new_threshold: t,
                },
                participants.clone(),
            )
            .unwrap()
        };
        let refused = hooks.check(&lower(1)).await.unwrap_err();
        assert!(refused.contains("governance"), "{refused}");
        hooks.check(&lower(2)).await.unwrap();
        // Governance lowers it on the registry: then the same reshare is admitted.
        r.set_gatekeepers(governance, set, 1).await.unwrap();
        hooks.check(&lower(1)).await.unwrap();
        // And no node erases an epoch the registry has not retired (here the newest,
        // which the registry refuses to retire at all).
        let refused = hooks.admit_retirement(Epoch(0)).await.unwrap_err();
        assert!(refused.contains("has not retired"), "{refused}");
        assert!(r.retire_epoch(governance, Epoch(0)).await.is_err());
    }
}
