//! Rounds between gatekeeper processes (feature `node`): the peer service, the admin
//! service that starts rounds, and the driver that runs a [`round::Engine`] over the
//! network with timeouts and an atomic commit.
//!
//! **Transport.** Pull, over mutual TLS ([`crate::tls`]): each member publishes its
//! message for a phase and fetches every other participant's with `Peer.Fetch`,
//! retrying until the phase deadline. The caller is identified by its certificate's key,
//! which must be the identity key the spec lists; it receives the broadcast part and
//! only its own private part. Every message is signed by its sender's identity key
//! over the round id, phase, sender and recipient.
//!
//! **Commit.** After the last phase a member persists its result as *prepared*
//! (synced) and only then serves its confirmation (the digest of round id and new public
//! key set, signed, addressed to nobody: transferable). Every participant's
//! confirmation together is the round's commit certificate
//! ([`round::CommitCertificate`]). Before preparing, a member may give the round up
//! (timeout, bad message): it records the abort durably, then serves a signed abort, so
//! it will never confirm. A member restarted without any record of a round it is asked
//! to confirm has lost its state before preparing, so it aborts the round — durably, so
//! that it never confirms a rerun of it — but only a round it would have joined: with a
//! registry, one whose committee is the registry's gatekeeper set ([`RoundHooks::admit`]),
//! so a peer showing specs it made up (itself and this node) stores nothing here and
//! grows no log (review NL5). Without a registry every holder of a cluster-CA
//! certificate is a member, and such an abort is recorded.
//!
//! How a prepared member decides:
//! - **With a decider** ([`RoundHooks::orders_outcomes`]: the registry, in production)
//!   it proposes what it saw — the certificate once every participant confirmed, or an
//!   abort when one aborted or confirmed another digest — and installs or drops the
//!   round only as the decider says; the decider takes the first proposal that lands.
//!   So a malicious participant that confirms to some members and aborts to others
//!   cannot split the committee (review finding H2; `tests/equivocation.rs`).
//! - **Without one** it installs on holding every confirmation and aborts on any abort
//!   or different digest. That keeps members in agreement after any crash, but not
//!   against a participant that equivocates: run clusters with a registry.
//!
//! A prepared member whose peer is down waits, and says so in its status.
//!
//! **One round at a time.** A node refuses `StartRound` while a round runs or waits
//! for confirmations: rotations, refreshes and reshares never interleave.

use crate::node::{Node, NodeError};
use crate::round::{self, Engine, Incoming, Outgoing, RoundId, RoundKind, RoundSpec, Step};
use crate::share::NodeIndex;
use crate::store::RoundRecord;
use crate::tls::PeerTls;
use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{Signature, VerifyingKey};
use phalanx_proto::keyvault::v1 as pb;
use phalanx_types::Epoch;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tonic::{Request, Response, Status};
use zeroize::Zeroizing;

pub use crate::round::{CONFIRM, PEER_MESSAGE};

/// Largest peer message accepted.
pub const MAX_PEER_MESSAGE: usize = 1 << 20;

/// Timing of rounds.
#[derive(Debug, Clone, Copy)]
pub struct RoundTiming {
    /// How long a member waits for all messages of one phase before aborting.
    pub phase_timeout: Duration,
    /// How often it asks a peer again.
    pub poll_interval: Duration,
}

impl Default for RoundTiming {
    fn default() -> Self {
        Self {
            phase_timeout: Duration::from_secs(20),
            poll_interval: Duration::from_millis(100),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Stage {
    Running(u8),
    Prepared([u8; 32]),
    Committed([u8; 32]),
    Aborted(String),
}

struct Current {
    spec: RoundSpec,
    id: RoundId,
    outbox: BTreeMap<u8, Outgoing>,
    stage: Stage,
}

impl Current {
    /// Running, or prepared and waiting: no other round may start.
    fn in_progress(&self) -> bool {
        matches!(self.stage, Stage::Running(_) | Stage::Prepared(_))
    }
}

/// What a node consults and tells outside the cluster about its rounds: typically the
/// registry (the committee it must match, where the master key is published).
pub trait RoundHooks: Send + Sync + 'static {
    /// Before this node joins `spec`; an error refuses the round with that reason.
    fn admit<'a>(
        &'a self,
        spec: &'a RoundSpec,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send + 'a>>;
    /// Before this node erases its share of `epoch` (retirement); an error refuses it.
    /// A registry-following node retires only what governance retired on the registry.
    fn admit_retirement(
        &self,
        epoch: Epoch,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send + '_>> {
        let _ = epoch;
        Box::pin(async { Ok(()) })
    }
    /// After this node installed `spec`'s result, whose public key set is `public`,
    /// which every participant confirmed (`certificate`).
    fn committed<'a>(
        &'a self,
        spec: &'a RoundSpec,
        public: &'a crate::share::PublicKeySet,
        certificate: &'a round::CommitCertificate,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>>;
    /// Whether [`Self::decide`] orders outcomes. Then a prepared member installs or
    /// drops a round only as the decider says, which keeps every honest member in the
    /// same state even when a malicious participant confirms to some members and
    /// aborts to others. Without a decider, members decide from what they fetched,
    /// which is safe against crashes only.
    fn orders_outcomes(&self) -> bool {
        false
    }
    /// Proposes this member's view of `spec`'s outcome (or only asks) and returns the
    /// decision, if one was made.
    fn decide<'a>(
        &'a self,
        spec: &'a RoundSpec,
        proposal: Proposal<'a>,
    ) -> Boxed<'a, Result<Option<Decision>, String>> {
        let _ = (spec, proposal);
        Box::pin(async { Ok(None) })
    }
    /// Why contract `id`'s key may not go to the worker `identity_key` sealed to
    /// `hpke_key`, if it may not, read from one view of the registry: the contract must be
    /// deployed, and the worker a pRuntime the registry lists in standing (its quote
    /// verified by the registry itself, its evidence current) with exactly that HPKE key.
    /// Without a registry: an error, and no contract key is released.
    fn contract_release_refused<'a>(
        &'a self,
        id: [u8; 32],
        identity_key: &'a [u8],
        hpke_key: &'a [u8],
        now: i64,
    ) -> Boxed<'a, Result<Option<String>, String>> {
        let _ = (id, identity_key, hpke_key, now);
        Box::pin(async { Err("this gatekeeper follows no registry".to_owned()) })
    }
    /// Reports a participant's misbehaviour this member caught, with its evidence, to
    /// the registry, which checks it (the accused then loses its registration). Without
    /// a registry: an error (there is nobody to judge it).
    fn report(&self, evidence: chain::types::Misbehaviour) -> Boxed<'_, Result<(), String>> {
        let _ = evidence;
        Box::pin(async { Err("this gatekeeper follows no registry".to_owned()) })
    }
    /// Endorses `registration` with the proposed `evidence_time` on the Solidity registry
    /// this node follows ([`chain::evm::endorse_as`], at `now`): the record its evidence
    /// proves and this node's signature. Without one: [`chain::evm::EndorseError::NoRegistry`].
    fn endorse<'a>(
        &'a self,
        registration: &'a chain::types::Registration,
        evidence_time: i64,
        now: i64,
    ) -> Boxed<
        'a,
        Result<(chain::endorse::Record, chain::endorse::Endorsement), chain::evm::EndorseError>,
    > {
        let _ = (registration, evidence_time, now);
        Box::pin(async { Err(chain::evm::EndorseError::NoRegistry) })
    }
}

/// The confirmations in `confirms` (signed: `signatures`) of another outcome than
/// `digest`, each as evidence against its signer ([`chain::types::Fault::Confirmation`]).
fn other_confirmations(
    spec: &RoundSpec,
    id: &RoundId,
    digest: &[u8; 32],
    confirms: &BTreeMap<NodeIndex, Incoming>,
    signatures: &BTreeMap<NodeIndex, [u8; 64]>,
) -> Vec<chain::types::Misbehaviour> {
    confirms
        .iter()
        .filter(|(_, m)| m.public.as_slice() != digest.as_slice())
        .filter_map(|(index, m)| {
            let p = spec.participants.iter().find(|p| p.index == *index)?;
            Some(chain::types::Misbehaviour {
                accused: chain::types::public_key(&p.identity),
                fault: chain::types::Fault::Confirmation {
                    round: *id,
                    index: index.get(),
                    digest: <[u8; 32]>::try_from(m.public.as_slice()).ok()?,
                    signature: *signatures.get(index)?,
                },
            })
        })
        .collect()
}

/// Reports `evidence` caught in round `id` through `hooks`, logging the outcome: the
/// registry is the judge (it refuses what proves nothing, e.g. when this member's own
/// outcome was the odd one).
async fn report(hooks: &dyn RoundHooks, id: &RoundId, evidence: chain::types::Misbehaviour) {
    let accused = hex(&evidence.accused);
    let fault = evidence.fault.code();
    match hooks.report(evidence).await {
        Ok(()) => {
            tracing::warn!(round = %hex(id), %accused, fault, "a participant misbehaved; reported to the registry")
        }
        Err(e) => {
            tracing::warn!(round = %hex(id), %accused, fault, error = %e, "a participant looked faulty; the registry did not take the report")
        }
    }
}

/// A prepared member's view of a round's outcome, proposed to the decider.
#[derive(Debug)]
pub enum Proposal<'a> {
    /// Every participant confirmed `public`: here is the certificate.
    Commit {
        /// The round's public key set.
        public: &'a crate::share::PublicKeySet,
        /// Every participant's confirmation.
        certificate: &'a round::CommitCertificate,
    },
    /// A participant aborted, or confirmed another outcome.
    Abort,
    /// Nothing to propose; what was decided?
    Query,
}

/// What the decider settled for a round: every member follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Install the round.
    Commit,
    /// Drop it.
    Abort,
}

pub(crate) type Boxed<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// This node's side of all rounds. Share as `Arc<Rounds>`.
pub struct Rounds {
    hooks: Option<Arc<dyn RoundHooks>>,
    node: Arc<Node>,
    peer_url: String,
    tls: PeerTls,
    timing: RoundTiming,
    now: fn() -> i64,
    current: Mutex<Option<Current>>,
    channels: Mutex<HashMap<(NodeIndex, String), tonic::transport::Channel>>,
}

impl std::fmt::Debug for Rounds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rounds")
            .field("round", &self.describe().0)
            .finish()
    }
}

/// Why a round could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RoundError {
    /// Another round runs or waits for confirmations here (its id, hex).
    #[error("round {0} is in progress on this node")]
    Busy(String),
    /// This node is not a participant of the spec.
    #[error("node {0} is not a participant")]
    NotParticipant(NodeIndex),
    /// The spec lists another identity key for this node.
    #[error("the spec lists another identity key for node {0}")]
    WrongIdentity(NodeIndex),
    /// The round already ran (or was aborted) here.
    #[error("this round already ran here")]
    AlreadyRan,
    /// A DKG for an epoch that is not after every epoch held here.
    #[error("epoch {epoch} is not after every epoch held here ({held:?})")]
    EpochNotNew {
        /// The spec's epoch.
        epoch: Epoch,
        /// The epochs this node holds.
        held: Vec<Epoch>,
    },
    /// The round cannot start from this node's state (no share to refresh, ...).
    #[error(transparent)]
    Threshold(#[from] phalanx_threshold::Error),
    /// The node failed.
    #[error(transparent)]
    Node(#[from] NodeError),
}

use crate::round::peer_message_bytes as signed_bytes;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl Rounds {
    /// Rounds of `node`, reachable by peers at `peer_url`, talking to them with `tls`,
    /// consulting `hooks` if given.
    pub fn new(
        node: Arc<Node>,
        peer_url: String,
        tls: PeerTls,
        timing: RoundTiming,
        now: fn() -> i64,
        hooks: Option<Arc<dyn RoundHooks>>,
    ) -> Arc<Self> {
        Arc::new(Self {
            hooks,
            node,
            peer_url,
            tls,
            timing,
            now,
            current: Mutex::new(None),
            channels: Mutex::new(HashMap::new()),
        })
    }

    /// After a restart: waits out the round this node had prepared, if any (see the
    /// module doc). Call once, inside a tokio runtime.
    pub fn resume(self: &Arc<Self>) -> Result<(), NodeError> {
        for (id, rec) in self.node.rounds()? {
            if let RoundRecord::Prepared { spec, digest, .. } = rec {
                let spec = RoundSpec::decode(&spec)
                    .map_err(|_| NodeError::Inconsistent("stored round spec".into()))?;
                tracing::info!(round = %hex(&id), kind = spec.kind.name(), "resuming a prepared round");
                self.set_current(Current {
                    spec: spec.clone(),
                    id,
                    outbox: BTreeMap::new(),
                    stage: Stage::Prepared(digest),
                });
                let me = self.clone();
                tokio::spawn(async move { me.resolve(&spec, id, digest).await });
            }
        }
        Ok(())
    }

    fn set_current(&self, c: Current) {
        if let Ok(mut g) = self.current.lock() {
            *g = Some(c);
        }
    }

    fn with_current<T>(&self, id: &RoundId, f: impl FnOnce(&mut Current) -> T) -> Option<T> {
        let mut g = self.current.lock().ok()?;
        g.as_mut().filter(|c| &c.id == id).map(f)
    }

    /// Where peers reach this node.
    pub fn peer_url(&self) -> &str {
        &self.peer_url
    }

    /// Whether a round runs or waits for confirmations here (one at a time).
    pub fn in_progress(&self) -> bool {
        self.current
            .lock()
            .map(|g| g.as_ref().is_some_and(Current::in_progress))
            .unwrap_or(true)
    }

    /// What this node is doing: `"<kind> <stage>"` (or `"idle"`) and the round id.
    pub fn describe(&self) -> (String, Vec<u8>) {
        let Ok(g) = self.current.lock() else {
            return ("unknown".into(), Vec::new());
        };
        match g.as_ref() {
            None => ("idle".into(), Vec::new()),
            Some(c) => {
                let stage = match &c.stage {
                    Stage::Running(p) => format!("running phase {p}"),
                    Stage::Prepared(_) => "prepared, waiting for confirmations".into(),
                    Stage::Committed(_) => "committed".into(),
                    Stage::Aborted(r) => format!("aborted: {r}"),
                };
                (format!("{} {stage}", c.spec.kind.name()), c.id.to_vec())
            }
        }
    }

    /// Starts `spec` on this node (the admin call); the round runs in the background.
    pub fn start(self: &Arc<Self>, spec: RoundSpec) -> Result<RoundId, RoundError> {
        let id = spec.id();
        let me = self.node.index()?;
        let mine = spec.participant(me).ok_or(RoundError::NotParticipant(me))?;
        if mine.identity != self.node.identity().verifying_key() {
            return Err(RoundError::WrongIdentity(me));
        }
        if self.node.round(&id)?.is_some() {
            return Err(RoundError::AlreadyRan);
        }
        let epochs = self.node.status()?.epochs;
        let epoch = spec.kind.epoch();
        if let RoundKind::Dkg { .. } = spec.kind
            && epochs.iter().any(|&e| e >= epoch)
        {
            return Err(RoundError::EpochNotNew {
                epoch,
                held: epochs,
            });
        }
        let current = self.node.epoch_state(epoch)?;
        let (engine, out) = Engine::start(spec.clone(), me, current, &mut rand::rng())?;
        {
            let mut g = self
                .current
                .lock()
                .map_err(|_| NodeError::Inconsistent("lock poisoned".into()))?;
            if let Some(c) = g.as_ref().filter(|c| c.in_progress()) {
                return Err(RoundError::Busy(hex(&c.id)));
            }
            *g = Some(Current {
                spec,
                id,
                outbox: BTreeMap::from([(1, out)]),
                stage: Stage::Running(1),
            });
        }
        tracing::info!(round = %hex(&id), kind = engine.spec().kind.name(), %epoch, "round started");
        let me = self.clone();
        tokio::spawn(async move { me.drive(engine).await });
        Ok(id)
    }

    async fn drive(self: Arc<Self>, mut engine: Engine) {
        let id = engine.id();
        let spec = engine.spec().clone();
        let result = loop {
            let phase = engine.phase();
            let incoming = match self.collect(&spec, id, phase, true).await {
                Ok((m, signatures)) => {
                    if phase == 1 {
                        self.report_dealings(&spec, &id, &m, &signatures);
                    }
                    m
                }
                Err(reason) => return self.abort(&id, &reason),
            };
            match engine.advance(&incoming) {
                Ok(Step::Send(out)) => {
                    self.with_current(&id, |c| {
                        c.outbox.insert(phase + 1, out);
                        c.stage = Stage::Running(phase + 1);
                    });
                }
                Ok(Step::Done(r)) => break r,
                Err(e) => return self.abort(&id, &format!("phase {phase}: {e}")),
            }
        };
        if let Err(e) = self.node.prepare_round(&spec, &result) {
            return self.abort(&id, &format!("cannot persist the result: {e}"));
        }
        if !result.misbehaved.is_empty() {
            tracing::warn!(round = %hex(&id), misbehaved = ?result.misbehaved, "members misbehaved; their contributions were dropped");
        }
        self.with_current(&id, |c| c.stage = Stage::Prepared(result.digest));
        let digest = result.digest;
        drop(result);
        self.resolve(&spec, id, digest).await;
    }

    /// The commit certificate: the peers' confirmations and this node's own.
    fn certificate(
        &self,
        id: RoundId,
        digest: [u8; 32],
        mut confirmations: BTreeMap<NodeIndex, [u8; 64]>,
    ) -> round::CommitCertificate {
        if let Ok(me) = self.node.index() {
            let own: Signature = self
                .node
                .identity()
                .signing_key()
                .sign(&round::confirmation_bytes(&id, me, &digest));
            confirmations.insert(me, own.to_bytes().into());
        }
        round::CommitCertificate { confirmations }
    }

    /// With a decider: proposes what this member sees (the certificate once every
    /// participant confirmed, or an abort on any abort or other digest) and follows
    /// the decision, which it keeps asking for while it collects — another member may
    /// have settled the round already.
    async fn resolve_ordered(
        self: Arc<Self>,
        hooks: Arc<dyn RoundHooks>,
        spec: &RoundSpec,
        id: RoundId,
        digest: [u8; 32],
    ) {
        let ask = self.decided(hooks.as_ref(), spec, &id);
        // Confirmations of another outcome than this member's: evidence against their
        // signers if the registry publishes the round (with their confirmation of the
        // published outcome in its certificate).
        let mut others = None;
        let propose = async {
            let certificate = match self.collect(spec, id, CONFIRM, false).await {
                Ok((confirms, signatures)) if confirms.values().all(|m| m.public == digest) => {
                    others = Some(Vec::new());
                    Some(self.certificate(id, digest, signatures))
                }
                Ok((confirms, signatures)) => {
                    others = Some(other_confirmations(
                        spec,
                        &id,
                        &digest,
                        &confirms,
                        &signatures,
                    ));
                    None
                }
                Err(_) => None,
            };
            let prepared = match self.node.round(&id) {
                Ok(Some(RoundRecord::Prepared { state, .. })) => Some(state.public),
                _ => None,
            };
            if certificate.is_none() || prepared.is_none() {
                tracing::warn!(round = %hex(&id), "a participant aborted or disagreed; proposing to abort");
            }
            loop {
                let proposal = match (&certificate, &prepared) {
                    (Some(certificate), Some(public)) => Proposal::Commit {
                        public,
                        certificate,
                    },
                    _ => Proposal::Abort,
                };
                match hooks.decide(spec, proposal).await {
                    Ok(Some(d)) => return d,
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(round = %hex(&id), error = %e, "proposing an outcome; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
            std::future::pending::<Decision>().await
        };
        let decision = tokio::select! {
            d = ask => d,
            d = propose => d,
        };
        match decision {
            Decision::Commit => {
                self.commit_decided(spec, &id, digest);
                tokio::spawn(self.clone().report_confirmations(
                    hooks,
                    spec.clone(),
                    digest,
                    others,
                ));
            }
            Decision::Abort => self.abort(&id, "the decider aborted the round"),
        }
    }

    /// The decider's decision on the round, asked until it has one (another member may
    /// have settled the round already).
    async fn decided(&self, hooks: &dyn RoundHooks, spec: &RoundSpec, id: &RoundId) -> Decision {
        loop {
            match hooks.decide(spec, Proposal::Query).await {
                Ok(Some(d)) => return d,
                Ok(None) => {}
                Err(e) => tracing::warn!(round = %hex(id), error = %e, "asking the decider"),
            }
            tokio::time::sleep(self.timing.poll_interval.max(Duration::from_millis(500))).await;
        }
    }

    /// Commits a round the decider committed (a failure is retried on restart).
    fn commit_decided(&self, spec: &RoundSpec, id: &RoundId, digest: [u8; 32]) {
        match self.node.commit_round(id, (self.now)()) {
            Ok(()) => {
                tracing::info!(round = %hex(id), epoch = %spec.kind.epoch(), "round committed (decided)");
                self.with_current(id, |c| c.stage = Stage::Committed(digest));
            }
            Err(e) => {
                tracing::error!(round = %hex(id), error = %e, "commit failed; will retry on restart")
            }
        }
    }

    /// Waits (without deadline) for every participant's confirmation, then commits;
    /// aborts on any abort or different digest.
    async fn resolve(self: Arc<Self>, spec: &RoundSpec, id: RoundId, digest: [u8; 32]) {
        if let Some(hooks) = self.hooks.clone().filter(|h| h.orders_outcomes()) {
            return self.resolve_ordered(hooks, spec, id, digest).await;
        }
        match self.collect(spec, id, CONFIRM, false).await {
            Ok((confirms, signatures)) => {
                if let Some((i, _)) = confirms.iter().find(|(_, m)| m.public != digest) {
                    return self.abort(&id, &format!("node {i} confirmed a different outcome"));
                }
                match self.node.commit_round(&id, (self.now)()) {
                    Ok(()) => {
                        tracing::info!(round = %hex(&id), epoch = %spec.kind.epoch(), "round committed");
                        self.with_current(&id, |c| c.stage = Stage::Committed(digest));
                        if let (Some(hooks), Ok(Some(public))) =
                            (&self.hooks, self.node.public_key_set(spec.kind.epoch()))
                        {
                            let certificate = self.certificate(id, digest, signatures);
                            hooks.committed(spec, &public, &certificate).await;
                        }
                    }
                    Err(e) => {
                        tracing::error!(round = %hex(&id), error = %e, "commit failed; will retry on restart")
                    }
                }
            }
            Err(reason) => self.abort(&id, &reason),
        }
    }

    /// After a round committed with `digest`: reports the confirmations of another
    /// outcome this member holds (`others`), or — when the decision came before it held
    /// every confirmation (another member published first) — looks for them for a
    /// phase's time.
    async fn report_confirmations(
        self: Arc<Self>,
        hooks: Arc<dyn RoundHooks>,
        spec: RoundSpec,
        digest: [u8; 32],
        others: Option<Vec<chain::types::Misbehaviour>>,
    ) {
        let id = spec.id();
        let others = match others {
            Some(o) => o,
            None => match tokio::time::timeout(
                self.timing.phase_timeout,
                self.collect(&spec, id, CONFIRM, false),
            )
            .await
            {
                Ok(Ok((c, s))) => other_confirmations(&spec, &id, &digest, &c, &s),
                _ => Vec::new(),
            },
        };
        for evidence in others {
            report(hooks.as_ref(), &id, evidence).await;
        }
    }

    /// A DKG's deals addressed to this member that no honest dealer sends
    /// ([`round::dealing_fails`]), each with its dealer's signature, reported in the
    /// background (the round goes on: the protocol's complaints handle the dealer).
    fn report_dealings(
        &self,
        spec: &RoundSpec,
        id: &RoundId,
        incoming: &BTreeMap<NodeIndex, Incoming>,
        signatures: &BTreeMap<NodeIndex, [u8; 64]>,
    ) {
        let (Some(hooks), Ok(me)) = (self.hooks.clone(), self.node.index()) else {
            return;
        };
        for (from, m) in incoming.iter().filter(|(from, _)| **from != me) {
            let (Ok(true), Some(signature), Some(dealer)) = (
                round::dealing_fails(spec, *from, me, &m.public, &m.private),
                signatures.get(from),
                spec.participants.iter().find(|p| p.index == *from),
            ) else {
                continue;
            };
            let evidence = chain::types::Misbehaviour {
                accused: chain::types::public_key(&dealer.identity),
                fault: chain::types::Fault::Dealing {
                    spec: spec.encode(),
                    sender: from.get(),
                    recipient: me.get(),
                    public: m.public.clone(),
                    private: m.private.to_vec(),
                    signature: *signature,
                },
            };
            let (hooks, id) = (hooks.clone(), *id);
            tokio::spawn(async move { report(hooks.as_ref(), &id, evidence).await });
        }
    }

    fn abort(&self, id: &RoundId, reason: &str) {
        tracing::warn!(round = %hex(id), %reason, "round aborted");
        if let Err(e) = self.node.abort_round(id, reason, (self.now)()) {
            tracing::error!(round = %hex(id), error = %e, "cannot record the abort");
        }
        self.with_current(id, |c| c.stage = Stage::Aborted(reason.to_owned()));
    }

    fn channel(&self, p: &round::Participant) -> Result<tonic::transport::Channel, String> {
        let key = (p.index, p.url.clone());
        let mut g = self
            .channels
            .lock()
            .map_err(|_| "lock poisoned".to_owned())?;
        if let Some(c) = g.get(&key) {
            return Ok(c.clone());
        }
        let c = tonic::transport::Endpoint::from_shared(p.url.clone())
            .map_err(|e| e.to_string())?
            .tls_config(self.tls.client(p.index))
            .map_err(|e| e.to_string())?
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(5))
            .connect_lazy();
        g.insert(key, c.clone());
        Ok(c)
    }

    /// Every participant's message of `phase`, this node's own from its outbox. With
    /// `deadline`, gives up after the phase timeout; an abort from anyone ends it.
    ///
    /// Long on purpose: the phase loop (own message, peers' fetches, retries, abort,
    /// deadline) shares its state across the branches.
    async fn collect(
        &self,
        spec: &RoundSpec,
        id: RoundId,
        phase: u8,
        deadline: bool,
    ) -> Result<(BTreeMap<NodeIndex, Incoming>, BTreeMap<NodeIndex, [u8; 64]>), String> {
        let me = self.node.index().map_err(|e| e.to_string())?;
        let mut signatures = BTreeMap::new();
        let until = tokio::time::Instant::now() + self.timing.phase_timeout;
        let mut got = BTreeMap::new();
        if phase != CONFIRM {
            let own = self
                .with_current(&id, |c| c.outbox.get(&phase).cloned())
                .flatten()
                .ok_or("own message missing")?;
            got.insert(
                me,
                Incoming {
                    private: own.private.get(&me).cloned().unwrap_or_default(),
                    public: own.public,
                },
            );
        }
        let mut waiting_log = tokio::time::Instant::now();
        loop {
            let pending: Vec<&round::Participant> = spec
                .participants
                .iter()
                .filter(|p| p.index != me && !got.contains_key(&p.index))
                .collect();
            if pending.is_empty() {
                return Ok((got, signatures));
            }
            let mut calls = tokio::task::JoinSet::new();
            for p in pending.iter().copied() {
                let channel = self.channel(p);
                let (p, req) = (
                    p.clone(),
                    pb::PeerFetchRequest {
                        round_id: id.to_vec(),
                        phase: u32::from(phase),
                        spec: if phase == CONFIRM {
                            spec.encode()
                        } else {
                            Vec::new()
                        },
                    },
                );
                calls.spawn(async move {
                    let mut client = pb::peer_client::PeerClient::new(channel?)
                        .max_decoding_message_size(MAX_PEER_MESSAGE);
                    let m = client
                        .fetch(req)
                        .await
                        .map_err(|s| s.message().to_owned())?;
                    Ok::<_, String>((p, m.into_inner()))
                });
            }
            let mut last_errors = Vec::new();
            while let Some(joined) = calls.join_next().await {
                let Ok(outcome) = joined else { continue };
                match outcome {
                    Ok((p, m)) => {
                        let verified = verify(&id, phase, me, &p, &m)?;
                        if let Some(incoming) = verified {
                            if let Ok(sig) = <[u8; 64]>::try_from(m.signature.as_slice()) {
                                signatures.insert(p.index, sig);
                            }
                            got.insert(p.index, incoming);
                        }
                    }
                    Err(e) => last_errors.push(e),
                }
            }
            let now = tokio::time::Instant::now();
            if deadline && now >= until {
                let missing: Vec<NodeIndex> = spec
                    .participants
                    .iter()
                    .map(|p| p.index)
                    .filter(|i| !got.contains_key(i))
                    .collect();
                return Err(format!(
                    "phase {phase}: no message from nodes {missing:?} within {:?}",
                    self.timing.phase_timeout
                ));
            }
            if !deadline && now.duration_since(waiting_log) > Duration::from_secs(10) {
                waiting_log = now;
                tracing::warn!(round = %hex(&id), errors = ?last_errors, "prepared; still waiting for confirmations");
            }
            tokio::time::sleep(self.timing.poll_interval).await;
        }
    }

    /// `Peer.Fetch`: this node's message of `phase` for the caller.
    ///
    /// Long on purpose: every refusal of a peer's fetch (not a participant, wrong round,
    /// wrong phase, not yet ready) is one early return here, in the order a caller meets
    /// them.
    fn fetch(
        &self,
        id: RoundId,
        phase: u8,
        caller: Option<VerifyingKey>,
        asked_spec: &[u8],
    ) -> Result<pb::PeerMessage, FetchError> {
        let me = self.node.index()?;
        // Is the round current here, and what is its spec?
        let current = self
            .current
            .lock()
            .map_err(|_| FetchError::Poisoned)?
            .as_ref()
            .filter(|c| c.id == id)
            .map(|c| {
                (
                    c.spec.clone(),
                    c.stage.clone(),
                    c.outbox.get(&phase).cloned(),
                )
            });
        let stored = self.node.round(&id)?;
        let spec = match (&current, &stored) {
            (Some((spec, ..)), _) => Some(spec.clone()),
            (
                None,
                Some(RoundRecord::Prepared { spec, .. } | RoundRecord::Committed { spec, .. }),
            ) => RoundSpec::decode(spec).ok(),
            // No spec here: the caller's, if it is this round's.
            _ => RoundSpec::decode(asked_spec).ok().filter(|s| s.id() == id),
        };
        // Who asks: the participant whose identity key the caller's certificate carries.
        let recipient = match (&spec, caller) {
            (Some(spec), Some(key)) => spec
                .participants
                .iter()
                .find(|p| p.identity == key)
                .map(|p| p.index)
                .ok_or(FetchError::NotParticipant)?,
            (_, None) => return Err(FetchError::NoClientCertificate),
            (None, Some(_)) => return Err(FetchError::NotStarted),
        };
        let sign = |phase: u8, aborted: bool, public: Vec<u8>, private: Zeroizing<Vec<u8>>| {
            let to = if aborted || phase == CONFIRM {
                0
            } else {
                recipient.get()
            };
            let bytes = signed_bytes(&id, phase, me, to, aborted, &public, &private);
            let sig: Signature = self.node.identity().signing_key().sign(&bytes);
            pb::PeerMessage {
                sender: u32::from(me.get()),
                phase: u32::from(phase),
                public,
                private: private.to_vec(),
                aborted,
                signature: sig.to_bytes().to_vec(),
            }
        };
        let abort_msg = |reason: &str| {
            sign(
                phase,
                true,
                reason.as_bytes().to_vec(),
                Zeroizing::default(),
            )
        };
        if let Some((_, stage, out)) = current {
            return match (stage, phase) {
                (Stage::Aborted(r), _) => Ok(abort_msg(&r)),
                (Stage::Prepared(d) | Stage::Committed(d), CONFIRM) => {
                    Ok(sign(CONFIRM, false, d.to_vec(), Zeroizing::default()))
                }
                (_, CONFIRM) => Err(FetchError::NotPrepared),
                (_, _) => match out {
                    Some(o) => {
                        let private = o.private.get(&recipient).cloned().unwrap_or_default();
                        Ok(sign(phase, false, o.public, private))
                    }
                    None => Err(FetchError::PhaseNotReached),
                },
            };
        }
        match (stored, phase) {
            (Some(RoundRecord::Aborted { reason }), _) => Ok(abort_msg(&reason)),
            (
                Some(RoundRecord::Prepared { digest, .. } | RoundRecord::Committed { digest, .. }),
                CONFIRM,
            ) => Ok(sign(CONFIRM, false, digest.to_vec(), Zeroizing::default())),
            (Some(_), _) => Err(FetchError::Over),
            (None, CONFIRM)
                if spec.as_ref().is_some_and(|s| {
                    s.participant(me)
                        .is_some_and(|p| p.identity == self.node.identity().verifying_key())
                }) =>
            {
                // Asked, by a participant that showed the round's spec, to confirm a
                // round this node takes part in and has no record of: it lost its state
                // before preparing (a restart), or the round is made up. The caller
                // admits it first ([`Self::abort_unrecorded`]).
                Err(FetchError::Unrecorded(Box::new(
                    spec.clone().ok_or(FetchError::NotStarted)?,
                )))
            }
            (None, _) => Err(FetchError::NotStarted),
        }
    }
}

impl Rounds {
    /// A confirmation asked of a round this node has no record of ([`FetchError::
    /// Unrecorded`]): it lost its state before preparing, so it can never confirm. The
    /// abort is recorded (so it never confirms a rerun either) and served, but only for a
    /// round this node would have joined ([`RoundHooks::admit`]); a made-up one gets
    /// [`FetchError::NotStarted`] and leaves nothing behind.
    pub async fn abort_unrecorded(
        self: &Arc<Self>,
        spec: RoundSpec,
        phase: u8,
        caller: Option<VerifyingKey>,
    ) -> Result<pb::PeerMessage, FetchError> {
        if let Some(hooks) = &self.hooks
            && let Err(why) = hooks.admit(&spec).await
        {
            tracing::debug!(round = %hex(&spec.id()), %why, "asked to confirm a round this node would not join");
            return Err(FetchError::NotStarted);
        }
        let rounds = self.clone();
        tokio::task::spawn_blocking(move || {
            let id = spec.id();
            let reason = "no record of the round here (restarted before preparing)";
            rounds.node.abort_round(&id, reason, (rounds.now)())?;
            tracing::warn!(round = %hex(&id), "aborting a round this node lost in a restart");
            rounds.fetch(id, phase, caller, &spec.encode())
        })
        .await
        .map_err(|_| FetchError::Poisoned)?
    }
}

/// Why a peer's fetch gets no message (yet).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// Asked to confirm a round (this spec) that lists this node but has no record
    /// here: abort it if this node would have joined it ([`Rounds::abort_unrecorded`]).
    #[error("round not started here")]
    Unrecorded(Box<RoundSpec>),
    /// The caller's certificate names no participant of the round.
    #[error("caller is not a participant of this round")]
    NotParticipant,
    /// The caller showed no client certificate.
    #[error("a client certificate is required")]
    NoClientCertificate,
    /// This node has not started (or does not know) the round.
    #[error("round not started here")]
    NotStarted,
    /// Asked for a confirmation before this node prepared.
    #[error("not prepared yet")]
    NotPrepared,
    /// Asked for a phase this node has not reached.
    #[error("phase not reached yet")]
    PhaseNotReached,
    /// The round ended here; only its confirmation or abort is still served.
    #[error("round is over here")]
    Over,
    /// The node's state failed.
    #[error(transparent)]
    Node(#[from] NodeError),
    /// A lock was poisoned by a panic elsewhere.
    #[error("internal error")]
    Poisoned,
}

/// The peer service's one mapping from refusals to gRPC statuses: "not yet" is
/// `UNAVAILABLE` (the caller polls again), "never" is a refusal.
fn fetch_status(e: FetchError) -> Status {
    match e {
        FetchError::NotParticipant => Status::permission_denied(e.to_string()),
        FetchError::NoClientCertificate => Status::unauthenticated(e.to_string()),
        FetchError::NotStarted
        | FetchError::Unrecorded(_)
        | FetchError::NotPrepared
        | FetchError::PhaseNotReached => Status::unavailable(e.to_string()),
        FetchError::Over => Status::failed_precondition(e.to_string()),
        FetchError::Node(n) => crate::grpc::status(n),
        FetchError::Poisoned => Status::internal("internal error"),
    }
}

/// The admin service's one mapping from round failures to gRPC statuses.
fn round_status(e: RoundError) -> Status {
    match e {
        RoundError::Busy(_) | RoundError::AlreadyRan | RoundError::EpochNotNew { .. } => {
            Status::failed_precondition(e.to_string())
        }
        RoundError::NotParticipant(_) | RoundError::WrongIdentity(_) => {
            Status::invalid_argument(e.to_string())
        }
        RoundError::Threshold(t) => match t {
            phalanx_threshold::Error::Internal(_) => Status::internal("internal error"),
            other => Status::invalid_argument(other.to_string()),
        },
        RoundError::Node(n) => crate::grpc::status(n),
    }
}

/// Checks a peer's message: sender, phase, signature. `Ok(None)` for a message that is
/// not (yet) usable; `Err` ends the collection (an abort, or a forgery).
fn verify(
    id: &RoundId,
    phase: u8,
    me: NodeIndex,
    from: &round::Participant,
    m: &pb::PeerMessage,
) -> Result<Option<Incoming>, String> {
    let to = if m.aborted || phase == CONFIRM {
        0
    } else {
        me.get()
    };
    let bytes = signed_bytes(id, phase, from.index, to, m.aborted, &m.public, &m.private);
    let valid = m.sender == u32::from(from.index.get())
        && m.phase == u32::from(phase)
        && Signature::from_slice(&m.signature)
            .ok()
            .is_some_and(|s| from.identity.verify(&bytes, &s).is_ok());
    if !valid {
        return Err(format!(
            "node {} sent a message with a bad signature",
            from.index
        ));
    }
    if m.aborted {
        return Err(format!(
            "node {} aborted: {}",
            from.index,
            String::from_utf8_lossy(&m.public)
        ));
    }
    if phase == CONFIRM && m.public.len() != 32 {
        return Err(format!("node {} sent a malformed confirmation", from.index));
    }
    // Nothing larger than evidence against its sender can carry.
    if m.public.len() > round::MAX_PUBLIC_PART || m.private.len() > round::MAX_PRIVATE_PART {
        return Err(format!("node {} sent an oversized message", from.index));
    }
    Ok(Some(Incoming {
        public: m.public.clone(),
        private: Zeroizing::new(m.private.clone()),
    }))
}

/// The peer service.
#[derive(Debug, Clone)]
pub struct PeerGrpc(pub Arc<Rounds>);

impl PeerGrpc {
    /// As a tonic service with the message bound.
    pub fn into_server(self) -> pb::peer_server::PeerServer<Self> {
        pb::peer_server::PeerServer::new(self).max_decoding_message_size(64 * 1024)
    }
}

#[tonic::async_trait]
impl pb::peer_server::Peer for PeerGrpc {
    async fn fetch(
        &self,
        request: Request<pb::PeerFetchRequest>,
    ) -> Result<Response<pb::PeerMessage>, Status> {
        let caller = crate::tls::peer_identity(&request);
        let r = request.into_inner();
        let id: RoundId = r
            .round_id
            .as_slice()
            .try_into()
            .map_err(|_| Status::invalid_argument("round id must be 32 bytes"))?;
        let phase = u8::try_from(r.phase).map_err(|_| Status::invalid_argument("phase"))?;
        let rounds = self.0.clone();
        let fetched = tokio::task::spawn_blocking(move || rounds.fetch(id, phase, caller, &r.spec))
            .await
            .map_err(|_| Status::internal("internal error"))?;
        match fetched {
            Err(FetchError::Unrecorded(spec)) => {
                self.0.abort_unrecorded(*spec, phase, caller).await
            }
            other => other,
        }
        .map(Response::new)
        .map_err(fetch_status)
    }
}

/// The administrator's secret, compared in constant time.
pub struct AdminAuth {
    key: ring::hmac::Key,
    expected: ring::hmac::Tag,
}

impl std::fmt::Debug for AdminAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminAuth(<redacted>)")
    }
}

impl AdminAuth {
    /// Accepts `Bearer <secret>`.
    pub fn new(secret: &str) -> Result<Self, Status> {
        let rng = ring::rand::SystemRandom::new();
        let key = ring::hmac::Key::generate(ring::hmac::HMAC_SHA256, &rng)
            .map_err(|_| Status::internal("no randomness"))?;
        let expected = ring::hmac::sign(&key, secret.as_bytes());
        Ok(Self { key, expected })
    }

    /// Checks the request's `authorization` metadata.
    pub fn check<T>(&self, request: &Request<T>) -> Result<(), Status> {
        let presented = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| Status::unauthenticated("admin secret required"))?;
        ring::hmac::verify(&self.key, presented.as_bytes(), self.expected.as_ref())
            .map_err(|_| Status::permission_denied("wrong admin secret"))
    }
}

/// The admin service.
#[derive(Debug, Clone)]
pub struct AdminGrpc {
    rounds: Arc<Rounds>,
    auth: Arc<AdminAuth>,
}

impl AdminGrpc {
    /// Administers `rounds` for holders of the secret.
    pub fn new(rounds: Arc<Rounds>, auth: AdminAuth) -> Self {
        Self {
            rounds,
            auth: Arc::new(auth),
        }
    }

    /// As a tonic service with the message bound.
    pub fn into_server(self) -> pb::admin_server::AdminServer<Self> {
        pb::admin_server::AdminServer::new(self).max_decoding_message_size(64 * 1024)
    }
}

#[tonic::async_trait]
impl pb::admin_server::Admin for AdminGrpc {
    async fn start_round(
        &self,
        request: Request<pb::StartRoundRequest>,
    ) -> Result<Response<pb::StartRoundResponse>, Status> {
        self.auth.check(&request)?;
        let spec = RoundSpec::decode(&request.into_inner().spec)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        if let Some(hooks) = &self.rounds.hooks {
            hooks.admit(&spec).await.map_err(|e| {
                Status::failed_precondition(format!("refused by the registry check: {e}"))
            })?;
        }
        let id = self.rounds.start(spec).map_err(round_status)?;
        Ok(Response::new(pb::StartRoundResponse {
            round_id: id.to_vec(),
        }))
    }

    async fn retire_epoch(
        &self,
        request: Request<pb::RetireEpochRequest>,
    ) -> Result<Response<pb::RetireEpochResponse>, Status> {
        self.auth.check(&request)?;
        let epoch = request.into_inner().epoch;
        if self.rounds.in_progress() {
            let (round, _) = self.rounds.describe();
            return Err(Status::failed_precondition(format!(
                "a round is in progress: {round}"
            )));
        }
        if self
            .rounds
            .node
            .epoch_state(Epoch(epoch))
            .map_err(crate::grpc::status)?
            .is_none()
        {
            return Err(Status::not_found(format!("no share for epoch {epoch}")));
        }
        // NH2: the admin secret alone never erases an epoch; the registry decides.
        match &self.rounds.hooks {
            Some(hooks) => hooks
                .admit_retirement(Epoch(epoch))
                .await
                .map_err(Status::failed_precondition)?,
            None => tracing::warn!(
                %epoch,
                "retiring an epoch on the administrator's word alone: this node follows no registry"
            ),
        }
        self.rounds
            .node
            .retire_epoch(Epoch(epoch), (self.rounds.now)())
            .map_err(crate::grpc::status)?;
        tracing::warn!(%epoch, "epoch retired by the administrator");
        Ok(Response::new(pb::RetireEpochResponse {}))
    }
}

/// Serves the peer service of `rounds` on `listener` (see [`serve_peer_service`]).
pub async fn serve_peers(
    listener: tokio::net::TcpListener,
    rounds: Arc<Rounds>,
    tls: Arc<rustls::ServerConfig>,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    serve_peer_service(listener, tls, PeerGrpc(rounds).into_server(), shutdown).await
}

/// Serves a peer service on `listener` over TLS 1.3 only ([`PeerTls::server_tls13`]),
/// by our own acceptor (tonic's cannot switch TLS 1.2 off): each handshake runs in its
/// own task with a deadline, and only finished handshakes reach the server.
pub async fn serve_peer_service<T: pb::peer_server::Peer>(
    listener: tokio::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    service: pb::peer_server::PeerServer<T>,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<_, std::io::Error>>(64);
    let accept_loop = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            // Round messages are small request/response pairs: no Nagle delay.
            let _ = tcp.set_nodelay(true);
            let (acceptor, tx) = (acceptor.clone(), tx.clone());
            tokio::spawn(async move {
                let handshake = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp));
                if let Ok(Ok(tls)) = handshake.await {
                    let _ = tx.send(Ok(tls)).await;
                }
            });
        }
    });
    let served = tonic::transport::Server::builder()
        .timeout(Duration::from_secs(10))
        .concurrency_limit_per_connection(64)
        .add_service(service)
        .serve_with_incoming_shutdown(tokio_stream::wrappers::ReceiverStream::new(rx), shutdown)
        .await;
    accept_loop.abort();
    served
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn signed(
        key: &crate::identity::IdentityKey,
        id: &RoundId,
        phase: u8,
        sender: NodeIndex,
        recipient: u16,
        aborted: bool,
    ) -> pb::PeerMessage {
        let (public, private) = (vec![1, 2, 3], vec![4, 5]);
        let bytes = signed_bytes(id, phase, sender, recipient, aborted, &public, &private);
        let sig: Signature = key.signing_key().sign(&bytes);
        pb::PeerMessage {
            sender: u32::from(sender.get()),
            phase: u32::from(phase),
            public,
            private,
            aborted,
            signature: sig.to_bytes().to_vec(),
        }
    }

    #[test]
    fn peer_messages_verify_only_as_sent() {
        let key = crate::identity::IdentityKey::generate(&mut rand::rng());
        let (two, me) = (NodeIndex::new(2).unwrap(), NodeIndex::new(1).unwrap());
        let from = round::Participant {
            index: two,
            identity: key.verifying_key(),
            url: "https://x".into(),
        };
        let id = [7; 32];
        let good = signed(&key, &id, 3, two, me.get(), false);
        let got = verify(&id, 3, me, &from, &good).unwrap().unwrap();
        assert_eq!(
            (got.public.as_slice(), got.private.as_slice()),
            (&[1, 2, 3][..], &[4, 5][..])
        );
        // Any flipped bit, another phase, round or recipient, another sender index.
        let flips: [fn(&mut pb::PeerMessage); 6] = [
            |m| m.public[0] ^= 1,
            |m| m.private[1] ^= 1,
            |m| m.signature[10] ^= 1,
            |m| m.signature.truncate(63),
            |m| m.sender = 3,
            |m| m.aborted = true,
        ];
        for (i, f) in flips.iter().enumerate() {
            let mut m = good.clone();
            f(&mut m);
            assert!(verify(&id, 3, me, &from, &m).is_err(), "case {i}");
        }
        assert!(verify(&id, 4, me, &from, &good).is_err());
        assert!(verify(&[8; 32], 3, me, &from, &good).is_err());
        assert!(verify(&id, 3, NodeIndex::new(5).unwrap(), &from, &good).is_err());
        // A genuine abort ends the collection with the reason; so does a confirmation
        // that is not a 32-byte digest.
        let abort = signed(&key, &id, 3, two, 0, true);
        assert!(
            verify(&id, 3, me, &from, &abort)
                .unwrap_err()
                .contains("aborted")
        );
        let confirm = signed(&key, &id, CONFIRM, two, 0, false);
        assert!(
            verify(&id, CONFIRM, me, &from, &confirm)
                .unwrap_err()
                .contains("malformed")
        );
    }
}
