//! Proactive refresh and resharing: the life cycle after genesis.
//!
//! Both are one round of *sub-sharing*: each dealer shares a chosen constant with a
//! fresh random polynomial, broadcasts its Feldman commitments ([`SubDeal`]) and sends
//! each recipient its point privately ([`SubShare`]); recipients check their points and
//! complain ([`SubComplaint`]); an accused dealer reveals the disputed point
//! ([`SubAnswer`]). A dealer is used only if its commitments have the required constant
//! term and every complaint against it was answered with a point that matches them.
//!
//! - **Refresh** (Herzberg et al., "Proactive Secret Sharing", CRYPTO '95): the constant
//!   is 0, so `s'_j = s_j + Σ g_i(j)` shares the same secret with fresh shares; the
//!   commitments add, `MPK` is unchanged. Shares stolen before a refresh do not combine
//!   with shares after it. Old shares must be erased by the caller (the node).
//! - **Reshare** (Desmedt–Jajodia; Wong–Wang–Wing verifiable variant): at least `t` old
//!   members share their own `s_i` to the new committee with a new threshold `t'`; the
//!   constant term of each dealer's commitments must equal its old public share `S_i`.
//!   New member `j` takes the first `t` valid dealers `D` and sets
//!   `s'_j = Σ_{i∈D} λ_i·h_i(j)`; the new commitments are `Σ λ_i·E_i`, so
//!   `MPK' = Σ λ_i·S_i = MPK`.
//!
//! Assumptions as for the DKG: broadcast with a consistent view, private authenticated
//! channels, synchronous rounds, fewer than `t` corrupt dealers.

use crate::error::Error;
use crate::share::{
    Commitments, KeyShare, NodeIndex, Polynomial, PublicKeySet, SecretScalar, lagrange_at_zero,
};
use p256::elliptic_curve::ops::LinearCombination;
use p256::{ProjectivePoint, Scalar};
use std::collections::BTreeSet;

/// A dealer's secret state for one sub-sharing round.
#[derive(Debug)]
pub struct SubDealing {
    dealer: NodeIndex,
    poly: Polynomial,
}

/// Broadcast: a dealer's Feldman commitments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubDeal {
    /// The dealer (an old member).
    pub dealer: NodeIndex,
    /// Commitments to its sub-sharing polynomial.
    pub commitments: Commitments,
}

/// Private: a dealer's point for one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubShare {
    /// The dealer.
    pub dealer: NodeIndex,
    /// The recipient.
    pub recipient: NodeIndex,
    /// The point.
    pub value: SecretScalar,
}

/// Broadcast: `accuser` got no point or a bad one from `accused`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct SubComplaint {
    /// Who complains.
    pub accuser: NodeIndex,
    /// Against whom.
    pub accused: NodeIndex,
}

/// Broadcast: the disputed point, revealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubAnswer {
    /// The point.
    pub share: SubShare,
}

/// What a member holds after a refresh or reshare.
#[derive(Debug, Clone)]
pub struct RoundOutput {
    /// The new share.
    pub share: KeyShare,
    /// The new public key set (same MPK).
    pub public: PublicKeySet,
    /// The dealers whose contributions were used.
    pub dealers: Vec<NodeIndex>,
    /// SHA-256 over the round's public messages.
    pub transcript: [u8; 32],
}

impl SubDealing {
    fn new<R: rand_core::CryptoRng + ?Sized>(
        dealer: NodeIndex,
        constant: Scalar,
        threshold: usize,
        recipients: &[NodeIndex],
        rng: &mut R,
    ) -> (Self, SubDeal, Vec<SubShare>) {
        let poly = Polynomial::random(threshold, constant, rng);
        let deal = SubDeal {
            dealer,
            commitments: poly.commit(),
        };
        let shares = recipients
            .iter()
            .map(|&j| SubShare {
                dealer,
                recipient: j,
                value: poly.evaluate(j),
            })
            .collect();
        (Self { dealer, poly }, deal, shares)
    }

    /// The points this dealer reveals, one per complaint against it.
    pub fn answers(&self, complaints: &[SubComplaint]) -> Vec<SubAnswer> {
        complaints
            .iter()
            .filter(|c| c.accused == self.dealer)
            .map(|c| SubAnswer {
                share: SubShare {
                    dealer: self.dealer,
                    recipient: c.accuser,
                    value: self.poly.evaluate(c.accuser),
                },
            })
            .collect()
    }
}

/// Recipient `me` checks the points addressed to it against each dealer's commitments
/// and complains about missing or bad ones.
pub fn complaints(me: NodeIndex, deals: &[SubDeal], shares: &[SubShare]) -> Vec<SubComplaint> {
    deals
        .iter()
        .filter(|d| {
            !shares.iter().any(|s| {
                s.dealer == d.dealer
                    && s.recipient == me
                    && d.commitments.verify_share(me, &s.value)
            })
        })
        .map(|d| SubComplaint {
            accuser: me,
            accused: d.dealer,
        })
        .collect()
}

/// Dealers whose deal has `threshold` commitments with the expected constant term and
/// whose every complaint was answered correctly, in index order.
fn valid_dealers(
    deals: &[SubDeal],
    complaints: &[SubComplaint],
    answers: &[SubAnswer],
    threshold: usize,
    expected_constant: impl Fn(NodeIndex) -> Option<ProjectivePoint>,
) -> Vec<NodeIndex> {
    let mut out = BTreeSet::new();
    for d in deals {
        if d.commitments.threshold() != threshold
            || expected_constant(d.dealer) != Some(d.commitments.constant())
        {
            continue;
        }
        let all_answered = complaints
            .iter()
            .filter(|c| c.accused == d.dealer)
            .all(|c| {
                answers.iter().any(|a| {
                    a.share.dealer == d.dealer
                        && a.share.recipient == c.accuser
                        && d.commitments.verify_share(c.accuser, &a.share.value)
                })
            });
        if all_answered {
            out.insert(d.dealer);
        }
    }
    out.into_iter().collect()
}

/// `me`'s point from `dealer`: received privately and valid, or revealed in an answer.
fn point_for(
    me: NodeIndex,
    deal: &SubDeal,
    shares: &[SubShare],
    answers: &[SubAnswer],
) -> Result<Scalar, Error> {
    shares
        .iter()
        .chain(answers.iter().map(|a| &a.share))
        .find(|s| {
            s.dealer == deal.dealer
                && s.recipient == me
                && deal.commitments.verify_share(me, &s.value)
        })
        .map(|s| *s.value.expose())
        .ok_or(Error::InvalidShare(deal.dealer))
}

fn transcript(
    tag: &[u8],
    deals: &[&SubDeal],
    complaints: &[SubComplaint],
    extra: &[u8],
) -> [u8; 32] {
    let mut bytes = tag.to_vec();
    bytes.extend_from_slice(extra);
    for d in deals {
        bytes.extend_from_slice(&d.dealer.get().to_be_bytes());
        for c in &d.commitments.0 {
            bytes.extend_from_slice(&crate::dleq::point_bytes(c));
        }
    }
    let mut cs = complaints.to_vec();
    cs.sort();
    cs.dedup();
    for c in cs {
        bytes.extend_from_slice(&c.accuser.get().to_be_bytes());
        bytes.extend_from_slice(&c.accused.get().to_be_bytes());
    }
    crate::dkg::transcript_hash(&bytes)
}

/// Refresh, dealer side: share zero among the same committee.
pub fn refresh_deal<R: rand_core::CryptoRng + ?Sized>(
    public: &PublicKeySet,
    me: NodeIndex,
    rng: &mut R,
) -> Result<(SubDealing, SubDeal, Vec<SubShare>), Error> {
    public.public_share(me)?;
    let members: Vec<NodeIndex> = public.members().collect();
    Ok(SubDealing::new(
        me,
        Scalar::ZERO,
        public.threshold(),
        &members,
        rng,
    ))
}

/// Refresh, everyone: the new share and public set. Needs at least `t` valid dealers,
/// so at least one honest member's randomness is in every new share.
pub fn refresh_finish(
    share: &KeyShare,
    public: &PublicKeySet,
    deals: &[SubDeal],
    shares: &[SubShare],
    complaints: &[SubComplaint],
    answers: &[SubAnswer],
) -> Result<RoundOutput, Error> {
    let t = public.threshold();
    let valid = valid_dealers(deals, complaints, answers, t, |i| {
        public
            .public_share(i)
            .ok()
            .map(|_| ProjectivePoint::IDENTITY)
    });
    if valid.len() < t {
        return Err(Error::NotEnoughShares {
            have: valid.len(),
            need: t,
        });
    }
    let used: Vec<&SubDeal> = deals.iter().filter(|d| valid.contains(&d.dealer)).collect();
    let mut new = *share.secret.expose();
    let mut commitments = public.commitments().clone();
    for d in &used {
        new += point_for(share.index, d, shares, answers)?;
        commitments = commitments.add(&d.commitments);
    }
    let members: Vec<NodeIndex> = public.members().collect();
    let new_public = PublicKeySet::new(commitments, &members);
    let new_share = KeyShare {
        index: share.index,
        secret: SecretScalar::new(new),
    };
    if crate::share::mul_g(new_share.secret.expose()) != new_public.public_share(share.index)? {
        return Err(Error::InvalidShare(share.index));
    }
    Ok(RoundOutput {
        share: new_share,
        public: new_public,
        dealers: valid,
        transcript: transcript(b"refresh", &used, complaints, &[]),
    })
}

/// Reshare, old member side: share its own share to the new committee with threshold
/// `new_threshold`.
pub fn reshare_deal<R: rand_core::CryptoRng + ?Sized>(
    share: &KeyShare,
    new_members: &[NodeIndex],
    new_threshold: usize,
    rng: &mut R,
) -> Result<(SubDealing, SubDeal, Vec<SubShare>), Error> {
    if new_threshold == 0 || new_threshold > new_members.len() {
        return Err(Error::InvalidThreshold {
            threshold: new_threshold,
            members: new_members.len(),
        });
    }
    Ok(SubDealing::new(
        share.index,
        *share.secret.expose(),
        new_threshold,
        new_members,
        rng,
    ))
}

/// Reshare, new member `me`: combine the first `t` (old threshold) valid dealers.
#[allow(clippy::too_many_arguments)]
pub fn reshare_finish(
    me: NodeIndex,
    old_public: &PublicKeySet,
    new_members: &[NodeIndex],
    new_threshold: usize,
    deals: &[SubDeal],
    shares: &[SubShare],
    complaints: &[SubComplaint],
    answers: &[SubAnswer],
) -> Result<RoundOutput, Error> {
    if !new_members.contains(&me) {
        return Err(Error::UnknownNode(me));
    }
    let t = old_public.threshold();
    let valid = valid_dealers(deals, complaints, answers, new_threshold, |i| {
        old_public.public_share(i).ok()
    });
    let chosen: Vec<NodeIndex> = valid.into_iter().take(t).collect();
    if chosen.len() < t {
        return Err(Error::NotEnoughShares {
            have: chosen.len(),
            need: t,
        });
    }
    let used: Vec<&SubDeal> = chosen
        .iter()
        .filter_map(|i| deals.iter().find(|d| d.dealer == *i))
        .collect();
    let mut new = Scalar::ZERO;
    let mut columns: Vec<Vec<(ProjectivePoint, Scalar)>> =
        vec![Vec::with_capacity(t); new_threshold];
    for d in &used {
        let lambda = lagrange_at_zero(&chosen, d.dealer)?;
        new += lambda * point_for(me, d, shares, answers)?;
        for (col, c) in columns.iter_mut().zip(&d.commitments.0) {
            col.push((*c, lambda));
        }
    }
    let commitments = Commitments(
        columns
            .iter()
            // Published commitments and public Lagrange coefficients: variable time.
            .map(|col| ProjectivePoint::lincomb_vartime(col.as_slice()))
            .collect(),
    );
    if commitments.constant() != old_public.master_public_key() {
        return Err(Error::MasterKeyChanged);
    }
    let new_public = PublicKeySet::new(commitments, new_members);
    let new_share = KeyShare {
        index: me,
        secret: SecretScalar::new(new),
    };
    if crate::share::mul_g(new_share.secret.expose()) != new_public.public_share(me)? {
        return Err(Error::InvalidShare(me));
    }
    let mut extra = (new_threshold as u64).to_be_bytes().to_vec();
    for m in new_members {
        extra.extend_from_slice(&m.get().to_be_bytes());
    }
    Ok(RoundOutput {
        share: new_share,
        public: new_public,
        dealers: chosen,
        transcript: transcript(b"reshare", &used, complaints, &extra),
    })
}

/// Runs a refresh for all members in one process, everyone honest (tests, benchmarks).
pub fn refresh_in_memory<R: rand_core::CryptoRng + ?Sized>(
    shares: &[KeyShare],
    public: &PublicKeySet,
    rng: &mut R,
) -> Result<Vec<RoundOutput>, Error> {
    let mut deals = Vec::new();
    let mut sent = Vec::new();
    for s in shares {
        let (_, d, ss) = refresh_deal(public, s.index, rng)?;
        deals.push(d);
        sent.extend(ss);
    }
    let complaints: Vec<SubComplaint> = shares
        .iter()
        .flat_map(|s| complaints(s.index, &deals, &sent))
        .collect();
    shares
        .iter()
        .map(|s| refresh_finish(s, public, &deals, &sent, &complaints, &[]))
        .collect()
}

/// Runs a reshare from `shares` to `new_members` with `new_threshold` in one process,
/// everyone honest (tests, benchmarks).
pub fn reshare_in_memory<R: rand_core::CryptoRng + ?Sized>(
    shares: &[KeyShare],
    public: &PublicKeySet,
    new_members: &[NodeIndex],
    new_threshold: usize,
    rng: &mut R,
) -> Result<Vec<RoundOutput>, Error> {
    let mut deals = Vec::new();
    let mut sent = Vec::new();
    for s in shares {
        let (_, d, ss) = reshare_deal(s, new_members, new_threshold, rng)?;
        deals.push(d);
        sent.extend(ss);
    }
    let complaints: Vec<SubComplaint> = new_members
        .iter()
        .flat_map(|&m| complaints(m, &deals, &sent))
        .collect();
    new_members
        .iter()
        .map(|&m| {
            reshare_finish(
                m,
                public,
                new_members,
                new_threshold,
                &deals,
                &sent,
                &complaints,
                &[],
            )
        })
        .collect()
}
