//! Rounds between gatekeepers over a network, sans-IO: what one member sends in each
//! phase and what it makes of what the others sent.
//!
//! A round is fixed by its [`RoundSpec`] (kind, epoch, committee, a fresh nonce from the
//! administrator); its id is the hash of the spec, so every message and confirmation is
//! bound to exactly one round. The kinds:
//!
//! | kind | phases | what comes out |
//! |---|---|---|
//! | [`RoundKind::Dkg`] (genesis, rotation) | deal, complaint, answer, extraction, extraction complaint, reconstruction | a new master secret for `epoch` |
//! | [`RoundKind::Refresh`] | deal, complaint, answer | fresh shares of `epoch`, same `MPK` |
//! | [`RoundKind::Reshare`] | deal, complaint, answer | shares of `epoch` for a new committee and threshold, same `MPK` |
//!
//! In every phase every participant sends one message: a public part (the broadcast,
//! identical for all) and, in deal phases, a private part per recipient. An
//! [`Engine`] turns the messages of phase `p` from every participant into its own
//! message for phase `p + 1`, and after the last phase into a [`RoundResult`] whose
//! [`RoundResult::digest`] (round id and the new public key set) the members confirm
//! to each other before anyone installs anything; the driver (`peer`) does the I/O,
//! the timeouts and the atomic commit.
//!
//! Malformed items from a sender are dropped, which the protocols treat as that
//! sender's misbehaviour (a complaint, disqualification). A participant that does not
//! answer at all aborts the round: the driver needs a message from everyone.

use crate::dkg::{self, DkgParams};
use crate::error::Error;
use crate::lifecycle::{self, SubComplaint, SubDeal, SubDealing, SubShare};
use crate::share::EpochState;
use crate::share::{KeyShare, NodeIndex, PublicKeySet};
use crate::wire::{
    DecodeError, MAX_ITEMS, ReadCurve, Reader, WriteCurve, Writer, get_indices, get_points,
    get_public_set, put_public_set,
};
use p256::ecdsa::VerifyingKey;
use phalanx_types::Epoch;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use zeroize::Zeroizing;

/// Domain tag of round ids.
pub const ROUND_ID: &[u8] = crate::tag::ROUND_ID;
/// Domain tag of the digest members confirm.
pub const ROUND_DIGEST: &[u8] = crate::tag::ROUND_DIGEST;

/// A round id: SHA-256 of the spec.
pub type RoundId = [u8; 32];

/// What a round does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoundKind {
    /// A new master secret for `epoch` among all participants with `threshold`:
    /// genesis, or rotation to `epoch + 1`.
    Dkg {
        /// The epoch it opens.
        epoch: Epoch,
        /// t.
        threshold: u16,
    },
    /// Fresh shares of `epoch` for the same committee.
    Refresh {
        /// The epoch.
        epoch: Epoch,
    },
    /// `dealers` (old members, at least the old t, all staying) share `epoch` to all
    /// participants with `new_threshold`.
    Reshare {
        /// The epoch.
        epoch: Epoch,
        /// Old members that deal; each must also be a participant.
        dealers: Vec<NodeIndex>,
        /// t′.
        new_threshold: u16,
    },
}

impl RoundKind {
    /// The epoch the round writes.
    pub fn epoch(&self) -> Epoch {
        match self {
            Self::Dkg { epoch, .. } | Self::Refresh { epoch } | Self::Reshare { epoch, .. } => {
                *epoch
            }
        }
    }

    /// Its name, for logs and errors.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Dkg { .. } => "dkg",
            Self::Refresh { .. } => "refresh",
            Self::Reshare { .. } => "reshare",
        }
    }

    /// Protocol phases before the confirmation.
    pub fn phases(&self) -> u8 {
        match self {
            Self::Dkg { .. } => 6,
            _ => 3,
        }
    }
}

/// A member taking part: its index, identity key and peer address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Participant {
    /// Its index.
    pub index: NodeIndex,
    /// Its identity key: signs its messages, and its TLS certificate carries it.
    pub identity: VerifyingKey,
    /// Its peer endpoint, `https://host:port`.
    pub url: String,
}

/// Everything that fixes a round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoundSpec {
    /// Fresh per round (from the administrator), so a repeated command is a new round.
    pub nonce: [u8; 16],
    /// What it does.
    pub kind: RoundKind,
    /// The committee after the round, sorted by index.
    pub participants: Vec<Participant>,
}

impl RoundSpec {
    /// Checks the spec's shape: distinct participants, thresholds in range, reshare
    /// dealers among the participants.
    pub fn new(
        nonce: [u8; 16],
        kind: RoundKind,
        mut participants: Vec<Participant>,
    ) -> Result<Self, Error> {
        participants.sort_by_key(|p| p.index);
        let members: Vec<NodeIndex> = participants.iter().map(|p| p.index).collect();
        for pair in members.windows(2) {
            if let [a, b] = pair
                && a == b
            {
                return Err(Error::DuplicateIndex(*a));
            }
        }
        let n = members.len();
        let check_t = |t: u16| {
            if t == 0 || usize::from(t) > n {
                Err(Error::InvalidThreshold {
                    threshold: usize::from(t),
                    members: n,
                })
            } else {
                Ok(())
            }
        };
        match &kind {
            RoundKind::Dkg { threshold, .. } => check_t(*threshold)?,
            RoundKind::Refresh { .. } => check_t(1)?,
            RoundKind::Reshare {
                dealers,
                new_threshold,
                ..
            } => {
                check_t(*new_threshold)?;
                if dealers.is_empty() {
                    return Err(Error::NotEnoughShares { have: 0, need: 1 });
                }
                if let Some(d) = dealers.iter().find(|d| !members.contains(d)) {
                    return Err(Error::UnknownNode(*d));
                }
            }
        }
        Ok(Self {
            nonce,
            kind,
            participants,
        })
    }

    /// The canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.raw(&self.nonce);
        match &self.kind {
            RoundKind::Dkg { epoch, threshold } => {
                w.u8(1);
                w.u64(epoch.0);
                w.u16(*threshold);
            }
            RoundKind::Refresh { epoch } => {
                w.u8(2);
                w.u64(epoch.0);
            }
            RoundKind::Reshare {
                epoch,
                dealers,
                new_threshold,
            } => {
                w.u8(3);
                w.u64(epoch.0);
                w.list(dealers, |w, d| w.index(*d));
                w.u16(*new_threshold);
            }
        }
        w.list(&self.participants, |w, p| {
            w.index(p.index);
            w.bytes(&p.identity.to_sec1_bytes());
            w.bytes(p.url.as_bytes());
        });
        w.0
    }

    /// Parses [`RoundSpec::encode`] and checks it like [`RoundSpec::new`].
    pub fn decode(b: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(b, "round spec");
        let nonce = r.array::<16>("nonce")?;
        let kind = match r.u8("round kind")? {
            1 => RoundKind::Dkg {
                epoch: Epoch(r.u64("epoch")?),
                threshold: r.u16("threshold")?,
            },
            2 => RoundKind::Refresh {
                epoch: Epoch(r.u64("epoch")?),
            },
            3 => RoundKind::Reshare {
                epoch: Epoch(r.u64("epoch")?),
                dealers: get_indices(&mut r, "dealers")?,
                new_threshold: r.u16("new threshold")?,
            },
            _ => return Err(r.invalid("round kind").into()),
        };
        let participants = r.list("participants", MAX_ITEMS, |r| {
            let index = r.index("participant index")?;
            let identity = VerifyingKey::from_sec1_bytes(r.bytes("participant identity", 65)?)
                .map_err(|_| r.invalid("participant identity"))?;
            let url = String::from_utf8(r.bytes("participant url", 512)?.to_vec())
                .map_err(|_| r.invalid("participant url"))?;
            Ok::<_, Error>(Participant {
                index,
                identity,
                url,
            })
        })?;
        r.finish()?;
        let spec = Self::new(nonce, kind, participants)?;
        if spec.encode() != b {
            return Err(DecodeError::Invalid {
                what: "round spec",
                field: "encoding (not canonical)",
            }
            .into());
        }
        Ok(spec)
    }

    /// The round id.
    pub fn id(&self) -> RoundId {
        let mut h = Sha256::new();
        h.update(ROUND_ID);
        h.update(self.encode());
        h.finalize().into()
    }

    /// The participants' indices.
    pub fn members(&self) -> Vec<NodeIndex> {
        self.participants.iter().map(|p| p.index).collect()
    }

    /// A participant.
    pub fn participant(&self, i: NodeIndex) -> Option<&Participant> {
        self.participants.iter().find(|p| p.index == i)
    }
}

/// One participant's message of one phase.
#[derive(Debug, Default, Clone)]
pub struct Outgoing {
    /// The broadcast part.
    pub public: Vec<u8>,
    /// The private part per recipient (deal phases only).
    pub private: BTreeMap<NodeIndex, Zeroizing<Vec<u8>>>,
}

/// What this member received from one sender in one phase.
#[derive(Debug, Default, Clone)]
pub struct Incoming {
    /// The sender's broadcast.
    pub public: Vec<u8>,
    /// The private part addressed to this member (empty if none).
    pub private: Zeroizing<Vec<u8>>,
}

/// What a round leaves this member with.
#[derive(Debug, Clone)]
pub struct RoundResult {
    /// The epoch written.
    pub epoch: Epoch,
    /// This member's new share and the new public key set.
    pub state: EpochState,
    /// Members whose contributions were dropped (disqualified, or reconstructed).
    pub misbehaved: Vec<NodeIndex>,
    /// What members confirm to each other: `H(tag ‖ round id ‖ public key set)`.
    pub digest: [u8; 32],
}

/// The next step of an [`Engine`].
#[derive(Debug)]
pub enum Step {
    /// Send this as the next phase's message.
    Send(Outgoing),
    /// The round is over for this member.
    Done(Box<RoundResult>),
}

/// The digest members confirm for a round's outcome.
pub fn digest(id: &RoundId, public: &PublicKeySet) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(ROUND_DIGEST);
    h.update(id);
    h.update(crate::wire::public_set_bytes(public));
    h.finalize().into()
}

/// Largest public part of a peer message a member accepts (a reshare's deal with the
/// old public key set, or the answers of a DKG with a thousand members, fit easily):
/// anything a member accepts also fits in evidence against its sender.
pub const MAX_PUBLIC_PART: usize = 256 * 1024;
/// Largest private part of a peer message (a share is under 100 bytes).
pub const MAX_PRIVATE_PART: usize = 4096;

/// Domain tag of signed peer messages (protocol messages, aborts, confirmations).
pub const PEER_MESSAGE: &[u8] = crate::tag::PEER_MESSAGE;
/// The confirmation's phase number.
pub const CONFIRM: u8 = u8::MAX;

/// The bytes a member signs for a peer message: tag ‖ round id ‖ phase ‖ sender ‖
/// recipient (0 for broadcasts, aborts and confirmations) ‖ aborted ‖ public ‖ private.
pub fn peer_message_bytes(
    id: &RoundId,
    phase: u8,
    sender: NodeIndex,
    recipient: u16,
    aborted: bool,
    public: &[u8],
    private: &[u8],
) -> Vec<u8> {
    let mut w = Writer::default();
    w.raw(PEER_MESSAGE);
    w.raw(id);
    w.u8(phase);
    w.index(sender);
    w.u16(recipient);
    w.u8(u8::from(aborted));
    w.bytes(public);
    w.bytes(private);
    w.0
}

/// What `sender` signs to confirm that round `id` ended, for it, with `digest`
/// ([`digest`]). Addressed to nobody, so anyone can check and pass it on.
pub fn confirmation_bytes(id: &RoundId, sender: NodeIndex, digest: &[u8; 32]) -> Vec<u8> {
    peer_message_bytes(id, CONFIRM, sender, 0, false, digest, &[])
}

/// A commit certificate: every participant's signed confirmation of the same outcome.
/// It proves that the whole committee holds the new public key set, so it is what the
/// registry accepts before it publishes an epoch's keys, and what a member needs to
/// install a round.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CommitCertificate {
    /// ECDSA P-256 signatures (r ‖ s) over [`confirmation_bytes`], by index.
    pub confirmations: BTreeMap<NodeIndex, [u8; 64]>,
}

impl CommitCertificate {
    /// Checks that every participant of `spec`, and nobody else, confirmed that the
    /// round ended with `public`.
    pub fn verify(&self, spec: &RoundSpec, public: &PublicKeySet) -> Result<(), Error> {
        use p256::ecdsa::signature::Verifier as _;
        let id = spec.id();
        let d = digest(&id, public);
        if self.confirmations.len() != spec.participants.len() {
            return Err(Error::IncompleteCertificate);
        }
        for p in &spec.participants {
            let sig = self
                .confirmations
                .get(&p.index)
                .and_then(|s| p256::ecdsa::Signature::from_slice(s).ok())
                .ok_or(Error::BadSignature(p.index))?;
            p.identity
                .verify(&confirmation_bytes(&id, p.index, &d), &sig)
                .map_err(|_| Error::BadSignature(p.index))?;
        }
        Ok(())
    }

    /// Canonical encoding: a list of (index, signature).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        let items: Vec<(&NodeIndex, &[u8; 64])> = self.confirmations.iter().collect();
        w.list(&items, |w, (i, s)| {
            w.index(**i);
            w.bytes(&s[..]);
        });
        w.0
    }

    /// Strict decoding of [`Self::encode`]: indices strictly increasing, 64-byte
    /// signatures, nothing after.
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(bytes, "commit certificate");
        let items = r.list("confirmations", MAX_ITEMS, |r| {
            let i = r.index("confirmation index")?;
            let s: [u8; 64] = r
                .bytes("confirmation signature", 64)?
                .try_into()
                .map_err(|_| r.invalid("confirmation signature"))?;
            Ok::<_, Error>((i, s))
        })?;
        r.finish()?;
        let mut confirmations = BTreeMap::new();
        let mut last = None;
        for (i, s) in items {
            if last.is_some_and(|l| l >= i) {
                return Err(DecodeError::Invalid {
                    what: "commit certificate",
                    field: "confirmation indices (not increasing)",
                }
                .into());
            }
            last = Some(i);
            confirmations.insert(i, s);
        }
        Ok(Self { confirmations })
    }
}

enum State {
    Dkg1(dkg::Dealt),
    Dkg2(dkg::Complained),
    Dkg3(dkg::Complained, Vec<dkg::Complaint>),
    Dkg4(dkg::Qualified),
    Dkg5(dkg::Extracting),
    Dkg6(dkg::Extracting),
    Sub1(Sub),
    Sub2(Sub),
    Sub3(Sub, Vec<SubComplaint>),
    Done,
}

/// What a member carries through a refresh or reshare.
struct Sub {
    dealing: Option<SubDealing>,
    /// Its share before the round (dealers).
    old: Option<EpochState>,
    /// The old public key set (own, or agreed by all dealers).
    old_public: Option<PublicKeySet>,
    deals: Vec<SubDeal>,
    shares: Vec<SubShare>,
}

/// One member's side of a round. See the module doc.
pub struct Engine {
    spec: RoundSpec,
    id: RoundId,
    me: NodeIndex,
    phase: u8,
    state: State,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("round", &self.spec.kind.name())
            .field("me", &self.me)
            .field("phase", &self.phase)
            .finish_non_exhaustive()
    }
}

fn put_share(w: &mut Writer, dealer: NodeIndex, recipient: NodeIndex, values: &[&p256::Scalar]) {
    w.index(dealer);
    w.index(recipient);
    for v in values {
        w.scalar(v);
    }
}

fn get_dkg_share(r: &mut Reader<'_>) -> Result<dkg::PrivateShare, Error> {
    Ok(dkg::PrivateShare {
        dealer: r.index("dealer")?,
        recipient: r.index("recipient")?,
        s: r.secret("share")?,
        s_prime: r.secret("blinding share")?,
    })
}

fn put_dkg_share(w: &mut Writer, s: &dkg::PrivateShare) {
    put_share(
        w,
        s.dealer,
        s.recipient,
        &[s.s.expose(), s.s_prime.expose()],
    );
}

fn get_sub_share(r: &mut Reader<'_>) -> Result<SubShare, Error> {
    Ok(SubShare {
        dealer: r.index("dealer")?,
        recipient: r.index("recipient")?,
        value: r.secret("share")?,
    })
}

fn put_pairs(w: &mut Writer, pairs: &[(NodeIndex, NodeIndex)]) {
    w.list(pairs, |w, (a, b)| {
        w.index(*a);
        w.index(*b);
    });
}

fn get_pairs(r: &mut Reader<'_>) -> Result<Vec<(NodeIndex, NodeIndex)>, Error> {
    r.list("pairs", MAX_ITEMS, |r| {
        Ok::<_, Error>((r.index("accuser")?, r.index("accused")?))
    })
}

/// Every sender's public message of a phase, with what it should hold (for errors).
fn publics<'a>(
    incoming: &'a BTreeMap<NodeIndex, Incoming>,
    what: &'static str,
) -> impl Iterator<Item = (NodeIndex, &'a [u8], &'static str)> + 'a {
    incoming
        .iter()
        .map(move |(&from, m)| (from, m.public.as_slice(), what))
}

/// DKG phase 1: take every dealer's commitments and our private shares; broadcast
/// complaints.
fn dkg_complain(
    me: NodeIndex,
    dealt: dkg::Dealt,
    incoming: &BTreeMap<NodeIndex, Incoming>,
    w: &mut Writer,
) -> Result<dkg::Complained, Error> {
    let mut deals = Vec::new();
    let mut shares = Vec::new();
    for (&from, m) in incoming {
        if let Some(commitments) = parse(&m.public, "deal", |r| get_points(r, "commitments")) {
            deals.push(dkg::Deal {
                dealer: from,
                commitments,
            });
        }
        if let Some(s) = parse(&m.private, "private share", get_dkg_share)
            && s.dealer == from
            && s.recipient == me
        {
            shares.push(s);
        }
    }
    let (complained, complaints) = dealt.complain(&deals, &shares)?;
    let pairs: Vec<_> = complaints.iter().map(|c| (c.accuser, c.accused)).collect();
    put_pairs(w, &pairs);
    Ok(complained)
}

/// DKG phase 2: take everyone's complaints (each by its sender); broadcast our answers.
fn dkg_answer(
    complained: &dkg::Complained,
    incoming: &BTreeMap<NodeIndex, Incoming>,
    w: &mut Writer,
) -> Vec<dkg::Complaint> {
    let mut complaints = Vec::new();
    for (from, b, what) in publics(incoming, "complaints") {
        for (accuser, accused) in parse(b, what, get_pairs).unwrap_or_default() {
            if accuser == from {
                complaints.push(dkg::Complaint { accuser, accused });
            }
        }
    }
    let answers = complained.answers(&complaints);
    w.list(&answers, |w, a| put_dkg_share(w, &a.share));
    complaints
}

/// DKG phase 3: take the answers, fix the qualified set; broadcast our Feldman
/// commitments for extraction.
fn dkg_qualify(
    complained: dkg::Complained,
    complaints: &[dkg::Complaint],
    incoming: &BTreeMap<NodeIndex, Incoming>,
    w: &mut Writer,
) -> Result<dkg::Qualified, Error> {
    let mut answers = Vec::new();
    for (from, b, what) in publics(incoming, "answers") {
        for share in
            parse(b, what, |r| r.list("shares", MAX_ITEMS, get_dkg_share)).unwrap_or_default()
        {
            if share.dealer == from {
                answers.push(dkg::Answer { share });
            }
        }
    }
    let qualified = complained.qualify(complaints, &answers)?;
    let commitments = qualified
        .extraction()
        .map(|e| e.commitments)
        .unwrap_or_default();
    w.list(&commitments, |w, p| w.point(p));
    Ok(qualified)
}

/// DKG phase 4: check the extraction commitments; broadcast complaints against them.
fn dkg_extract(
    qualified: dkg::Qualified,
    incoming: &BTreeMap<NodeIndex, Incoming>,
    w: &mut Writer,
) -> dkg::Extracting {
    let mut extractions = Vec::new();
    for (from, b, what) in publics(incoming, "extraction") {
        if let Some(commitments) = parse(b, what, |r| get_points(r, "commitments"))
            && !commitments.is_empty()
        {
            extractions.push(dkg::Extraction {
                dealer: from,
                commitments,
            });
        }
    }
    let (extracting, complaints) = qualified.check_extractions(&extractions);
    w.list(&complaints, |w, c| put_dkg_share(w, &c.share));
    extracting
}

/// DKG phase 5: take the extraction complaints; broadcast the shares that reconstruct
/// the accused dealers' contributions.
fn dkg_reveal(
    mut extracting: dkg::Extracting,
    incoming: &BTreeMap<NodeIndex, Incoming>,
    w: &mut Writer,
) -> dkg::Extracting {
    let mut complaints = Vec::new();
    for (from, b, what) in publics(incoming, "extraction complaints") {
        for share in
            parse(b, what, |r| r.list("shares", MAX_ITEMS, get_dkg_share)).unwrap_or_default()
        {
            if share.recipient == from {
                complaints.push(dkg::ExtractionComplaint { share });
            }
        }
    }
    let revealed = extracting.reconstruction_shares(&complaints);
    w.list(&revealed, |w, c| put_dkg_share(w, &c.share));
    extracting
}

/// DKG phase 6: the revealed reconstruction shares (each by its recipient).
fn dkg_revealed(incoming: &BTreeMap<NodeIndex, Incoming>) -> Vec<dkg::ReconstructionShare> {
    let mut revealed = Vec::new();
    for (from, b, what) in publics(incoming, "reconstruction") {
        for share in
            parse(b, what, |r| r.list("shares", MAX_ITEMS, get_dkg_share)).unwrap_or_default()
        {
            if share.recipient == from {
                revealed.push(dkg::ReconstructionShare { share });
            }
        }
    }
    revealed
}

/// Refresh/reshare phase 2: take everyone's complaints; broadcast our answers (dealers).
fn sub_answer(
    sub: &Sub,
    incoming: &BTreeMap<NodeIndex, Incoming>,
    w: &mut Writer,
) -> Vec<SubComplaint> {
    let mut complaints = Vec::new();
    for (from, b, what) in publics(incoming, "complaints") {
        for (accuser, accused) in parse(b, what, get_pairs).unwrap_or_default() {
            if accuser == from {
                complaints.push(SubComplaint { accuser, accused });
            }
        }
    }
    let answers = sub
        .dealing
        .as_ref()
        .map(|d| d.answers(&complaints))
        .unwrap_or_default();
    w.list(&answers, |w, a| {
        put_share(
            w,
            a.share.dealer,
            a.share.recipient,
            &[a.share.value.expose()],
        );
    });
    complaints
}

/// A DKG deal message's public part: the dealer's commitments.
pub fn dkg_deal_public(deal: &dkg::Deal) -> Vec<u8> {
    let mut w = Writer::default();
    w.list(&deal.commitments, |w, p| w.point(p));
    w.0
}

/// A DKG deal message's private part for `share`'s recipient.
pub fn dkg_deal_private(share: &dkg::PrivateShare) -> Zeroizing<Vec<u8>> {
    let mut w = Writer::default();
    put_dkg_share(&mut w, share);
    Zeroizing::new(w.0)
}

/// Whether a DKG dealing is no honest dealer's (`Ok(true)`): the deal message `sender`
/// addressed to `recipient` in phase 1 of the DKG `spec` (its commitments `public`,
/// the recipient's share `private`) does not decode as one, has other than `t`
/// commitments, names other parties, or its share does not match its commitments.
/// `Err`: `spec` is no DKG, or either party is not a participant. No honest dealer
/// signs a message this returns `Ok(true)` for, so with the dealer's signature it is
/// evidence (the share revealed is worth nothing: a dealer complained about must reveal
/// the share anyway, and one that does not is disqualified).
pub fn dealing_fails(
    spec: &RoundSpec,
    sender: NodeIndex,
    recipient: NodeIndex,
    public: &[u8],
    private: &[u8],
) -> Result<bool, Error> {
    let RoundKind::Dkg { threshold, .. } = spec.kind else {
        return Err(Error::Internal("not a DKG round"));
    };
    for who in [sender, recipient] {
        if !spec.participants.iter().any(|p| p.index == who) {
            return Err(Error::UnknownNode(who));
        }
    }
    let Some(commitments) = parse(public, "deal", |r| get_points(r, "commitments")) else {
        return Ok(true);
    };
    let Some(share) = parse(private, "private share", get_dkg_share) else {
        return Ok(true);
    };
    if commitments.len() != usize::from(threshold)
        || share.dealer != sender
        || share.recipient != recipient
    {
        return Ok(true);
    }
    let deal = dkg::Deal {
        dealer: sender,
        commitments,
    };
    Ok(!dkg::pedersen_ok(&deal, &share, &dkg::pedersen_h()))
}

/// Parses one sender's part with `f`, dropping it (an empty result) if it is malformed.
fn parse<T>(
    bytes: &[u8],
    what: &'static str,
    f: impl FnOnce(&mut Reader<'_>) -> Result<T, Error>,
) -> Option<T> {
    let mut r = Reader::new(bytes, what);
    let v = f(&mut r).ok()?;
    r.finish().ok()?;
    Some(v)
}

impl Engine {
    /// Starts the round as member `me`, holding `current` (its state of the round's
    /// epoch, if any). Returns the engine and the first phase's message.
    ///
    /// Long on purpose: one arm per round kind builds that kind's first phase.
    pub fn start<R: rand_core::CryptoRng + ?Sized>(
        spec: RoundSpec,
        me: NodeIndex,
        current: Option<EpochState>,
        rng: &mut R,
    ) -> Result<(Self, Outgoing), Error> {
        let members = spec.members();
        if !members.contains(&me) {
            return Err(Error::UnknownNode(me));
        }
        let id = spec.id();
        let mut out = Outgoing::default();
        let state = match &spec.kind {
            RoundKind::Dkg { epoch, threshold } => {
                let params = DkgParams::new(*epoch, usize::from(*threshold), &members)?;
                let (dealt, deal, shares) = dkg::deal(&params, me, rng)?;
                out.public = dkg_deal_public(&deal);
                for s in &shares {
                    out.private.insert(s.recipient, dkg_deal_private(s));
                }
                State::Dkg1(dealt)
            }
            RoundKind::Refresh { .. } => {
                let cur = current.ok_or(Error::NoShare)?;
                if cur.public.members().collect::<Vec<_>>() != members {
                    return Err(Error::CommitteeChanged);
                }
                let (dealing, deal, shares) = lifecycle::refresh_deal(&cur.public, me, rng)?;
                Self::sub_deal(&mut out, None, &deal, &shares);
                State::Sub1(Sub {
                    dealing: Some(dealing),
                    old_public: Some(cur.public.clone()),
                    old: Some(cur),
                    deals: Vec::new(),
                    shares: Vec::new(),
                })
            }
            RoundKind::Reshare {
                dealers,
                new_threshold,
                ..
            } => {
                let mut sub = Sub {
                    dealing: None,
                    old_public: current.as_ref().map(|c| c.public.clone()),
                    old: None,
                    deals: Vec::new(),
                    shares: Vec::new(),
                };
                if dealers.contains(&me) {
                    let cur = current.ok_or(Error::NoShare)?;
                    let (dealing, deal, shares) = lifecycle::reshare_deal(
                        &cur.share,
                        &members,
                        usize::from(*new_threshold),
                        rng,
                    )?;
                    Self::sub_deal(&mut out, Some(&cur.public), &deal, &shares);
                    sub.dealing = Some(dealing);
                    sub.old = Some(cur);
                }
                State::Sub1(sub)
            }
        };
        Ok((
            Self {
                spec,
                id,
                me,
                phase: 1,
                state,
            },
            out,
        ))
    }

    /// `[old public set] ‖ commitments`, and each recipient's point.
    fn sub_deal(
        out: &mut Outgoing,
        old: Option<&PublicKeySet>,
        deal: &SubDeal,
        shares: &[SubShare],
    ) {
        let mut w = Writer::default();
        if let Some(p) = old {
            put_public_set(&mut w, p);
        }
        w.list(&deal.commitments.0, |w, p| w.point(p));
        out.public = w.0;
        for s in shares {
            let mut w = Writer::default();
            put_share(&mut w, s.dealer, s.recipient, &[s.value.expose()]);
            out.private.insert(s.recipient, Zeroizing::new(w.0));
        }
    }

    /// The round's id.
    pub fn id(&self) -> RoundId {
        self.id
    }

    /// The spec.
    pub fn spec(&self) -> &RoundSpec {
        &self.spec
    }

    /// The phase whose messages [`Engine::advance`] expects next (1-based).
    pub fn phase(&self) -> u8 {
        self.phase
    }

    /// Consumes the messages of the current phase from every participant (a missing
    /// sender counts as having sent nothing) and returns the next step. One function
    /// per phase below; each reads what its phase's senders may send and writes this
    /// member's broadcast for the next phase.
    pub fn advance(&mut self, incoming: &BTreeMap<NodeIndex, Incoming>) -> Result<Step, Error> {
        let mut w = Writer::default();
        let state = std::mem::replace(&mut self.state, State::Done);
        self.state = match state {
            State::Dkg1(dealt) => State::Dkg2(dkg_complain(self.me, dealt, incoming, &mut w)?),
            State::Dkg2(complained) => {
                let complaints = dkg_answer(&complained, incoming, &mut w);
                State::Dkg3(complained, complaints)
            }
            State::Dkg3(complained, complaints) => {
                State::Dkg4(dkg_qualify(complained, &complaints, incoming, &mut w)?)
            }
            State::Dkg4(qualified) => State::Dkg5(dkg_extract(qualified, incoming, &mut w)),
            State::Dkg5(extracting) => State::Dkg6(dkg_reveal(extracting, incoming, &mut w)),
            State::Dkg6(extracting) => {
                let output = extracting.finish(&dkg_revealed(incoming))?;
                return Ok(self.done(output.share, output.public, output.misbehaved));
            }
            State::Sub1(sub) => State::Sub2(self.sub_complain(sub, incoming, &mut w)?),
            State::Sub2(sub) => {
                let complaints = sub_answer(&sub, incoming, &mut w);
                State::Sub3(sub, complaints)
            }
            State::Sub3(sub, complaints) => return self.sub_finish(&sub, &complaints, incoming),
            State::Done => return Err(Error::RoundFinished),
        };
        self.phase += 1;
        Ok(Step::Send(Outgoing {
            public: w.0,
            ..Outgoing::default()
        }))
    }

    /// Refresh/reshare phase 1: take the dealers' sub-deals (a reshare's dealers must
    /// all present the same old public key set, ours if we hold one) and our
    /// sub-shares; broadcast complaints.
    fn sub_complain(
        &self,
        mut sub: Sub,
        incoming: &BTreeMap<NodeIndex, Incoming>,
        w: &mut Writer,
    ) -> Result<Sub, Error> {
        let dealers = self.dealers();
        let reshare = matches!(self.spec.kind, RoundKind::Reshare { .. });
        let mut agreed_old: Option<Vec<u8>> = None;
        for (&from, m) in incoming.iter().filter(|(f, _)| dealers.contains(f)) {
            let parsed = parse(&m.public, "sub-deal", |r| {
                let old = if reshare {
                    Some(get_public_set(r)?)
                } else {
                    None
                };
                Ok((old, get_points(r, "commitments")?))
            });
            let Some((old, commitments)) = parsed else {
                continue;
            };
            if let Some(old) = old {
                // Every dealer must present the same old public key set, and the
                // one this member holds, if it holds one.
                let bytes = crate::wire::public_set_bytes(&old);
                if agreed_old.get_or_insert_with(|| bytes.clone()) != &bytes {
                    return Err(Error::OldSetDisagreement);
                }
                match &sub.old_public {
                    Some(mine) if mine != &old => {
                        return Err(Error::OldSetDisagreement);
                    }
                    Some(_) => {}
                    None => sub.old_public = Some(old),
                }
            }
            sub.deals.push(SubDeal {
                dealer: from,
                commitments: crate::share::Commitments(commitments),
            });
            if let Some(s) = parse(&m.private, "sub-share", get_sub_share)
                && s.dealer == from
                && s.recipient == self.me
            {
                sub.shares.push(s);
            }
        }
        let complaints = lifecycle::complaints(self.me, &sub.deals, &sub.shares);
        let pairs: Vec<_> = complaints.iter().map(|c| (c.accuser, c.accused)).collect();
        put_pairs(w, &pairs);
        Ok(sub)
    }

    /// Refresh/reshare phase 3: take the dealers' answers and compute the new share
    /// (refresh: same secret; reshare: the new committee and threshold).
    fn sub_finish(
        &mut self,
        sub: &Sub,
        complaints: &[SubComplaint],
        incoming: &BTreeMap<NodeIndex, Incoming>,
    ) -> Result<Step, Error> {
        let mut answers = Vec::new();
        for (from, b, what) in publics(incoming, "answers") {
            for share in
                parse(b, what, |r| r.list("shares", MAX_ITEMS, get_sub_share)).unwrap_or_default()
            {
                if share.dealer == from {
                    answers.push(lifecycle::SubAnswer { share });
                }
            }
        }
        let old_public = sub.old_public.as_ref().ok_or(Error::OldSetDisagreement)?;
        let output = match &self.spec.kind {
            RoundKind::Reshare { new_threshold, .. } => lifecycle::reshare_finish(
                self.me,
                old_public,
                &self.spec.members(),
                usize::from(*new_threshold),
                &sub.deals,
                &sub.shares,
                complaints,
                &answers,
            )?,
            _ => {
                let old = sub.old.as_ref().ok_or(Error::NoShare)?;
                lifecycle::refresh_finish(
                    &old.share,
                    old_public,
                    &sub.deals,
                    &sub.shares,
                    complaints,
                    &answers,
                )?
            }
        };
        let misbehaved = self
            .dealers()
            .into_iter()
            .filter(|d| !output.dealers.contains(d))
            .collect();
        Ok(self.done(output.share, output.public, misbehaved))
    }

    fn dealers(&self) -> Vec<NodeIndex> {
        match &self.spec.kind {
            RoundKind::Reshare { dealers, .. } => dealers.clone(),
            _ => self.spec.members(),
        }
    }

    fn done(&mut self, share: KeyShare, public: PublicKeySet, misbehaved: Vec<NodeIndex>) -> Step {
        self.state = State::Done;
        self.phase = u8::MAX;
        Step::Done(Box::new(RoundResult {
            epoch: self.spec.kind.epoch(),
            digest: digest(&self.id, &public),
            state: EpochState { share, public },
            misbehaved,
        }))
    }
}
