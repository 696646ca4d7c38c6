//! Dealerless genesis: distributed key generation after Gennaro, Jarecki, Krawczyk and
//! Rabin, "Secure Distributed Key Generation for Discrete-Log Based Cryptosystems"
//! (J. Cryptology 2007), with `t` = shares needed to reconstruct (so at most `t − 1`
//! corrupt members are tolerated, and `n ≥ 2t − 1` keeps the honest members able to
//! finish).
//!
//! Rounds (all messages but the private shares are broadcast; the transport must give
//! every member the same broadcast view and deliver the private shares confidentially
//! and authentically — synchrony of rounds is assumed):
//!
//! 1. **Deal** — member `i` picks random `f_i` (its secret `z_i = f_i(0)`) and `f'_i` of
//!    degree `t − 1`, broadcasts Pedersen commitments `C_ik = a_ik·G + b_ik·H`
//!    ([`Deal`]) and sends `(f_i(j), f'_i(j))` privately to each `j` ([`PrivateShare`]).
//! 2. **Complain** — `j` checks `s·G + s'·H = Σ C_ik·j^k` and accuses dealers whose share
//!    is missing or wrong ([`Complaint`]).
//! 3. **Answer** — an accused dealer reveals the disputed shares ([`Answer`]). A dealer
//!    with `t` or more complaints, an unanswered complaint, or a revealed share that
//!    fails the check is disqualified; the rest form QUAL.
//! 4. **Extract** — each dealer in QUAL broadcasts Feldman commitments `A_ik = a_ik·G`
//!    ([`Extraction`]). `j` checks `s·G = Σ A_ik·j^k`; on failure it publishes the share
//!    that passed the Pedersen check ([`ExtractionComplaint`]), which proves the dealer
//!    lied. Members then reveal their Pedersen-checked shares of that dealer
//!    ([`ReconstructionShare`]) and everyone interpolates its polynomial publicly, so the
//!    liar's contribution is fixed rather than dropped (dropping it here would let it
//!    bias the key).
//!
//! Output ([`DkgOutput`]): `s_j = Σ_{i∈QUAL} f_i(j)`, the Feldman commitments
//! `Σ_{i∈QUAL} A_i` (so every `S_j` and `MPK = Σ A_i0`), QUAL, and a transcript hash
//! over every broadcast message that all honest members agree on. The master secret
//! `Σ z_i` never exists anywhere. Pedersen commitments hide `z_i` unconditionally until
//! QUAL is fixed, which is what keeps a rushing adversary from biasing `MPK`.

use crate::error::Error;
use crate::share::{
    Commitments, KeyShare, NodeIndex, Polynomial, PublicKeySet, SecretScalar, lagrange_at_zero,
};
use p256::elliptic_curve::Field;
use p256::hash2curve::GroupDigest;
use p256::{NistP256, ProjectivePoint, Scalar};
use phalanx_types::Epoch;
use std::collections::{BTreeMap, BTreeSet};

/// The Pedersen generator `H = H2C(tag)`.
pub fn pedersen_h() -> ProjectivePoint {
    // The DST and message are constants within hash_to_curve's limits: this cannot fail.
    NistP256::hash_from_bytes(&[b"H"], &[crate::tag::PEDERSEN_H])
        .unwrap_or(ProjectivePoint::GENERATOR)
}

/// Who takes part, with what threshold, in which epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DkgParams {
    /// The master-secret epoch this DKG opens.
    pub epoch: Epoch,
    /// Shares needed to reconstruct.
    pub threshold: usize,
    /// The committee, sorted and distinct.
    pub members: Vec<NodeIndex>,
}

impl DkgParams {
    /// Checks `1 ≤ t ≤ n` and distinct members.
    pub fn new(epoch: Epoch, threshold: usize, members: &[NodeIndex]) -> Result<Self, Error> {
        let mut set = BTreeSet::new();
        for m in members {
            if !set.insert(*m) {
                return Err(Error::DuplicateIndex(*m));
            }
        }
        if threshold == 0 || threshold > members.len() {
            return Err(Error::InvalidThreshold {
                threshold,
                members: members.len(),
            });
        }
        Ok(Self {
            epoch,
            threshold,
            members: set.into_iter().collect(),
        })
    }

    fn check_member(&self, i: NodeIndex) -> Result<(), Error> {
        if self.members.contains(&i) {
            Ok(())
        } else {
            Err(Error::UnknownNode(i))
        }
    }
}

/// Round 1 broadcast: Pedersen commitments of a dealer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deal {
    /// The dealer.
    pub dealer: NodeIndex,
    /// `C_ik = a_ik·G + b_ik·H`, `k = 0..t`.
    pub commitments: Vec<ProjectivePoint>,
}

/// Round 1 private message: a dealer's share for one recipient.
#[derive(Clone, PartialEq, Eq)]
pub struct PrivateShare {
    /// The dealer.
    pub dealer: NodeIndex,
    /// The recipient.
    pub recipient: NodeIndex,
    /// `f_i(j)`.
    pub s: SecretScalar,
    /// `f'_i(j)`.
    pub s_prime: SecretScalar,
}

impl std::fmt::Debug for PrivateShare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "PrivateShare({} -> {}, <redacted>)",
            self.dealer, self.recipient
        )
    }
}

/// Round 2 broadcast: `accuser` says `accused` sent no share or a bad one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Complaint {
    /// Who complains.
    pub accuser: NodeIndex,
    /// Against whom.
    pub accused: NodeIndex,
}

/// Round 3 broadcast: a dealer reveals the share it was accused over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The revealed share (public from now on).
    pub share: PrivateShare,
}

/// Round 4 broadcast: Feldman commitments `A_ik = a_ik·G` of a qualified dealer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extraction {
    /// The dealer.
    pub dealer: NodeIndex,
    /// `A_ik`.
    pub commitments: Vec<ProjectivePoint>,
}

/// Round 4 broadcast: the share a dealer sent, which passes its Pedersen commitments but
/// not its Feldman commitments — a proof that the dealer lied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtractionComplaint {
    /// The share received (revealed).
    pub share: PrivateShare,
}

/// Round 5 broadcast: a member's Pedersen-checked share of a dealer being reconstructed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconstructionShare {
    /// The share (revealed; it only concerns the cheating dealer's polynomial).
    pub share: PrivateShare,
}

/// What a member knows at the end.
#[derive(Debug, Clone)]
pub struct DkgOutput {
    /// The epoch.
    pub epoch: Epoch,
    /// This member's share.
    pub share: KeyShare,
    /// Threshold, public shares and MPK.
    pub public: PublicKeySet,
    /// The qualified dealers.
    pub qualified: Vec<NodeIndex>,
    /// Dealers excluded or whose secret was reconstructed publicly.
    pub misbehaved: Vec<NodeIndex>,
    /// SHA-256 over every broadcast message, in round order.
    pub transcript: [u8; 32],
}

/// Whether `share` is consistent with its dealer's Pedersen commitments in `deal`:
/// `s·G + s'·H = Σ recipientᵏ·Cₖ`.
pub fn pedersen_ok(deal: &Deal, share: &PrivateShare, h: &ProjectivePoint) -> bool {
    crate::share::mul_g(share.s.expose()) + *h * share.s_prime.expose()
        == crate::share::evaluate_points(&deal.commitments, share.recipient)
}

/// Member state after dealing (round 1 done).
#[derive(Debug)]
pub struct Dealt {
    params: DkgParams,
    me: NodeIndex,
    f: Polynomial,
    f_prime: Polynomial,
    h: ProjectivePoint,
}

/// Member state after complaining (round 2 done).
#[derive(Debug)]
pub struct Complained {
    params: DkgParams,
    me: NodeIndex,
    f: Polynomial,
    f_prime: Polynomial,
    h: ProjectivePoint,
    deals: BTreeMap<NodeIndex, Deal>,
    received: BTreeMap<NodeIndex, PrivateShare>,
}

/// Member state after QUAL is fixed (round 3 done).
#[derive(Debug)]
pub struct Qualified {
    params: DkgParams,
    me: NodeIndex,
    f: Polynomial,
    h: ProjectivePoint,
    deals: BTreeMap<NodeIndex, Deal>,
    received: BTreeMap<NodeIndex, PrivateShare>,
    qualified: Vec<NodeIndex>,
    disqualified: Vec<NodeIndex>,
    transcript: Vec<u8>,
}

/// Member state after extraction complaints (round 4 done).
#[derive(Debug)]
pub struct Extracting {
    params: DkgParams,
    me: NodeIndex,
    h: ProjectivePoint,
    deals: BTreeMap<NodeIndex, Deal>,
    received: BTreeMap<NodeIndex, PrivateShare>,
    qualified: Vec<NodeIndex>,
    disqualified: Vec<NodeIndex>,
    extractions: BTreeMap<NodeIndex, Extraction>,
    cheaters: BTreeSet<NodeIndex>,
    transcript: Vec<u8>,
}

fn point_bytes(p: &ProjectivePoint) -> Vec<u8> {
    crate::dleq::point_bytes(p)
}

/// Round 1: deal. Returns the state, the broadcast [`Deal`] and one [`PrivateShare`] per
/// other member (this member's own share is kept).
pub fn deal<R: rand_core::CryptoRng + ?Sized>(
    params: &DkgParams,
    me: NodeIndex,
    rng: &mut R,
) -> Result<(Dealt, Deal, Vec<PrivateShare>), Error> {
    params.check_member(me)?;
    let t = params.threshold;
    let f = Polynomial::random(t, Scalar::random(&mut *rng), &mut *rng);
    let f_prime = Polynomial::random(t, Scalar::random(&mut *rng), &mut *rng);
    let h = pedersen_h();
    let commitments = f
        .commit()
        .0
        .iter()
        .zip(f_prime.coefficients())
        .map(|(ag, bk)| *ag + h * bk)
        .collect();
    let shares = params
        .members
        .iter()
        .map(|&j| PrivateShare {
            dealer: me,
            recipient: j,
            s: f.evaluate(j),
            s_prime: f_prime.evaluate(j),
        })
        .collect();
    Ok((
        Dealt {
            params: params.clone(),
            me,
            f,
            f_prime,
            h,
        },
        Deal {
            dealer: me,
            commitments,
        },
        shares,
    ))
}

impl Dealt {
    /// Round 2: check the deals and the private shares addressed to this member
    /// (including its own), and complain about the bad or missing ones.
    pub fn complain(
        self,
        deals: &[Deal],
        shares: &[PrivateShare],
    ) -> Result<(Complained, Vec<Complaint>), Error> {
        let t = self.params.threshold;
        let mut by_dealer = BTreeMap::new();
        for d in deals {
            self.params.check_member(d.dealer)?;
            if d.commitments.len() == t {
                by_dealer.insert(d.dealer, d.clone());
            }
        }
        let mut received = BTreeMap::new();
        for s in shares.iter().filter(|s| s.recipient == self.me) {
            received.insert(s.dealer, s.clone());
        }
        let mut complaints = Vec::new();
        for &i in &self.params.members {
            let ok = match (by_dealer.get(&i), received.get(&i)) {
                (Some(d), Some(s)) => pedersen_ok(d, s, &self.h),
                _ => false,
            };
            if !ok {
                received.remove(&i);
                complaints.push(Complaint {
                    accuser: self.me,
                    accused: i,
                });
            }
        }
        Ok((
            Complained {
                params: self.params,
                me: self.me,
                f: self.f,
                f_prime: self.f_prime,
                h: self.h,
                deals: by_dealer,
                received,
            },
            complaints,
        ))
    }
}

impl Complained {
    /// Round 3 (as dealer): the shares this member reveals, one per complaint against it.
    pub fn answers(&self, complaints: &[Complaint]) -> Vec<Answer> {
        complaints
            .iter()
            .filter(|c| c.accused == self.me && self.params.members.contains(&c.accuser))
            .map(|c| Answer {
                share: PrivateShare {
                    dealer: self.me,
                    recipient: c.accuser,
                    s: self.f.evaluate(c.accuser),
                    s_prime: self.f_prime.evaluate(c.accuser),
                },
            })
            .collect()
    }

    /// Round 3 (as everyone): apply the complaints and answers and fix QUAL.
    ///
    /// Long on purpose: GJKR's complaint resolution is one rule applied per dealer;
    /// splitting it would scatter the rule.
    pub fn qualify(
        mut self,
        complaints: &[Complaint],
        answers: &[Answer],
    ) -> Result<Qualified, Error> {
        let t = self.params.threshold;
        let mut disqualified = BTreeSet::new();
        // No deal of the right shape: out.
        for &i in &self.params.members {
            if !self.deals.contains_key(&i) {
                disqualified.insert(i);
            }
        }
        let mut against: BTreeMap<NodeIndex, BTreeSet<NodeIndex>> = BTreeMap::new();
        for c in complaints {
            self.params.check_member(c.accuser)?;
            self.params.check_member(c.accused)?;
            against.entry(c.accused).or_default().insert(c.accuser);
        }
        for (accused, accusers) in &against {
            if accusers.len() >= t {
                disqualified.insert(*accused);
                continue;
            }
            let Some(deal) = self.deals.get(accused) else {
                continue;
            };
            for accuser in accusers {
                let answer = answers
                    .iter()
                    .find(|a| a.share.dealer == *accused && a.share.recipient == *accuser);
                match answer {
                    Some(a) if pedersen_ok(deal, &a.share, &self.h) => {
                        if *accuser == self.me {
                            self.received.insert(*accused, a.share.clone());
                        }
                    }
                    _ => {
                        disqualified.insert(*accused);
                    }
                }
            }
        }
        let qualified: Vec<NodeIndex> = self
            .params
            .members
            .iter()
            .copied()
            .filter(|i| !disqualified.contains(i))
            .collect();
        if qualified.len() < t {
            return Err(Error::NotEnoughShares {
                have: qualified.len(),
                need: t,
            });
        }
        // Transcript so far: params, deals, complaints, answers (public parts).
        let mut transcript = Vec::new();
        transcript.extend_from_slice(&self.params.epoch.0.to_be_bytes());
        transcript.extend_from_slice(&(t as u64).to_be_bytes());
        for m in &self.params.members {
            transcript.extend_from_slice(&m.get().to_be_bytes());
        }
        for d in self.deals.values() {
            transcript.extend_from_slice(&d.dealer.get().to_be_bytes());
            for c in &d.commitments {
                transcript.extend_from_slice(&point_bytes(c));
            }
        }
        let mut sorted_complaints = complaints.to_vec();
        sorted_complaints.sort();
        sorted_complaints.dedup();
        for c in &sorted_complaints {
            transcript.extend_from_slice(&c.accuser.get().to_be_bytes());
            transcript.extend_from_slice(&c.accused.get().to_be_bytes());
        }
        for q in &qualified {
            transcript.extend_from_slice(&q.get().to_be_bytes());
        }
        Ok(Qualified {
            params: self.params,
            me: self.me,
            f: self.f,
            h: self.h,
            deals: self.deals,
            received: self.received,
            qualified,
            disqualified: disqualified.into_iter().collect(),
            transcript,
        })
    }
}

impl Qualified {
    /// The qualified dealers.
    pub fn qualified(&self) -> &[NodeIndex] {
        &self.qualified
    }

    /// Round 4 (as dealer): this member's Feldman commitments, if it is qualified.
    pub fn extraction(&self) -> Option<Extraction> {
        self.qualified.contains(&self.me).then(|| Extraction {
            dealer: self.me,
            commitments: self.f.commit().0,
        })
    }

    /// Round 4 (as everyone): check each qualified dealer's Feldman commitments against
    /// the share received, and complain with the share where they disagree.
    pub fn check_extractions(
        self,
        extractions: &[Extraction],
    ) -> (Extracting, Vec<ExtractionComplaint>) {
        let t = self.params.threshold;
        let mut by_dealer = BTreeMap::new();
        for e in extractions {
            if self.qualified.contains(&e.dealer) && e.commitments.len() == t {
                by_dealer.insert(e.dealer, e.clone());
            }
        }
        let mut complaints = Vec::new();
        for &i in &self.qualified {
            let Some(share) = self.received.get(&i) else {
                continue;
            };
            let ok = by_dealer.get(&i).is_some_and(|e| {
                Commitments(e.commitments.clone()).verify_share(self.me, &share.s)
            });
            if !ok {
                complaints.push(ExtractionComplaint {
                    share: share.clone(),
                });
            }
        }
        (
            Extracting {
                params: self.params,
                me: self.me,
                h: self.h,
                deals: self.deals,
                received: self.received,
                qualified: self.qualified,
                disqualified: self.disqualified,
                extractions: by_dealer,
                cheaters: BTreeSet::new(),
                transcript: self.transcript,
            },
            complaints,
        )
    }
}

impl Extracting {
    /// Round 5: which dealers must be reconstructed publicly (a valid extraction
    /// complaint, or no Feldman commitments at all), and this member's shares of them.
    pub fn reconstruction_shares(
        &mut self,
        complaints: &[ExtractionComplaint],
    ) -> Vec<ReconstructionShare> {
        for &i in &self.qualified {
            if !self.extractions.contains_key(&i) {
                self.cheaters.insert(i);
            }
        }
        for c in complaints {
            let s = &c.share;
            let (Some(deal), Some(ext)) =
                (self.deals.get(&s.dealer), self.extractions.get(&s.dealer))
            else {
                continue;
            };
            // A valid complaint: Pedersen holds, Feldman does not.
            if pedersen_ok(deal, s, &self.h)
                && !Commitments(ext.commitments.clone()).verify_share(s.recipient, &s.s)
            {
                self.cheaters.insert(s.dealer);
            }
        }
        self.cheaters
            .iter()
            .filter_map(|i| self.received.get(i).cloned())
            .map(|share| ReconstructionShare { share })
            .collect()
    }

    /// Finish: reconstruct cheating dealers' polynomials from revealed shares, sum the
    /// qualified contributions, and hash the transcript.
    pub fn finish(mut self, revealed: &[ReconstructionShare]) -> Result<DkgOutput, Error> {
        let t = self.params.threshold;
        let mut total = Commitments(vec![ProjectivePoint::IDENTITY; t]);
        let mut my_share = Scalar::ZERO;
        for &i in &self.qualified {
            let commitments = if self.cheaters.contains(&i) {
                let Some(deal) = self.deals.get(&i) else {
                    continue;
                };
                let points: Vec<(NodeIndex, Scalar)> = revealed
                    .iter()
                    .map(|r| &r.share)
                    .filter(|s| s.dealer == i && pedersen_ok(deal, s, &self.h))
                    .map(|s| (s.recipient, *s.s.expose()))
                    .collect();
                let coeffs = interpolate_coefficients(&points, t)?;
                // Our own share of a reconstructed dealer: f_i(me).
                let me = self.me.scalar();
                let mine = coeffs
                    .iter()
                    .rev()
                    .fold(Scalar::ZERO, |acc, c| acc * me + c);
                self.received.insert(
                    i,
                    PrivateShare {
                        dealer: i,
                        recipient: self.me,
                        s: SecretScalar::new(mine),
                        s_prime: SecretScalar::new(Scalar::ZERO),
                    },
                );
                Commitments(coeffs.iter().map(crate::share::mul_g).collect())
            } else {
                match self.extractions.get(&i) {
                    Some(e) => Commitments(e.commitments.clone()),
                    None => continue,
                }
            };
            let share = self.received.get(&i).ok_or(Error::InvalidShare(i))?;
            my_share += share.s.expose();
            total = total.add(&commitments);
            for c in &commitments.0 {
                self.transcript.extend_from_slice(&point_bytes(c));
            }
        }
        let public = PublicKeySet::new(total, &self.params.members);
        let share = KeyShare {
            index: self.me,
            secret: SecretScalar::new(my_share),
        };
        if crate::share::mul_g(share.secret.expose()) != public.public_share(self.me)? {
            return Err(Error::InvalidShare(self.me));
        }
        let mut misbehaved: BTreeSet<NodeIndex> = self.disqualified.iter().copied().collect();
        misbehaved.extend(self.cheaters.iter().copied());
        Ok(DkgOutput {
            epoch: self.params.epoch,
            share,
            public,
            qualified: self.qualified,
            misbehaved: misbehaved.into_iter().collect(),
            transcript: transcript_hash(&self.transcript),
        })
    }
}

/// SHA-256 of a round transcript under [`crate::tag::TRANSCRIPT`].
pub fn transcript_hash(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(crate::tag::TRANSCRIPT);
    h.update((bytes.len() as u64).to_be_bytes());
    h.update(bytes);
    h.finalize().into()
}

/// The coefficients of the unique polynomial of degree `< t` through `t` of `points`.
pub fn interpolate_coefficients(
    points: &[(NodeIndex, Scalar)],
    t: usize,
) -> Result<Vec<Scalar>, Error> {
    let pts = points.get(..t).ok_or(Error::NotEnoughShares {
        have: points.len(),
        need: t,
    })?;
    let xs: Vec<NodeIndex> = pts.iter().map(|(x, _)| *x).collect();
    let mut coeffs = vec![Scalar::ZERO; t];
    for (xi, yi) in pts {
        // Basis polynomial L_i(x) = Π_{j≠i} (x − x_j) / (x_i − x_j), expanded.
        let mut basis = vec![Scalar::ONE];
        let mut denom = Scalar::ONE;
        for xj in xs.iter().filter(|x| *x != xi) {
            let mut next = vec![Scalar::ZERO; basis.len() + 1];
            for (k, b) in basis.iter().enumerate() {
                if let Some(n) = next.get_mut(k + 1) {
                    *n += b;
                }
                if let Some(n) = next.get_mut(k) {
                    *n -= *b * xj.scalar();
                }
            }
            basis = next;
            denom *= xi.scalar() - xj.scalar();
        }
        let inv = Option::<Scalar>::from(denom.invert())
            .ok_or(Error::Internal("interpolation (repeated points)"))?;
        for (c, b) in coeffs.iter_mut().zip(&basis) {
            *c += *b * inv * yi;
        }
    }
    // Sanity: the constant term equals Lagrange at zero.
    let mut at_zero = Scalar::ZERO;
    for (x, y) in pts {
        at_zero += *y * lagrange_at_zero(&xs, *x)?;
    }
    if coeffs.first() != Some(&at_zero) {
        return Err(Error::Internal("interpolation check"));
    }
    Ok(coeffs)
}

/// Runs every round for all members in one process, everyone honest: for tests,
/// benchmarks and single-machine development setups. Returns each member's output.
pub fn run_in_memory<R: rand_core::CryptoRng + ?Sized>(
    params: &DkgParams,
    rng: &mut R,
) -> Result<Vec<DkgOutput>, Error> {
    let mut states = Vec::new();
    let mut deals = Vec::new();
    let mut shares = Vec::new();
    for &m in &params.members {
        let (state, d, s) = deal(params, m, rng)?;
        states.push(state);
        deals.push(d);
        shares.extend(s);
    }
    let mut complained = Vec::new();
    let mut complaints = Vec::new();
    for state in states {
        let (c, mine) = state.complain(&deals, &shares)?;
        complaints.extend(mine);
        complained.push(c);
    }
    let answers: Vec<Answer> = complained
        .iter()
        .flat_map(|c| c.answers(&complaints))
        .collect();
    let qualified = complained
        .into_iter()
        .map(|c| c.qualify(&complaints, &answers))
        .collect::<Result<Vec<_>, _>>()?;
    let extractions: Vec<Extraction> = qualified.iter().filter_map(Qualified::extraction).collect();
    let mut extracting = Vec::new();
    let mut extraction_complaints = Vec::new();
    for q in qualified {
        let (x, c) = q.check_extractions(&extractions);
        extraction_complaints.extend(c);
        extracting.push(x);
    }
    let revealed: Vec<ReconstructionShare> = extracting
        .iter_mut()
        .flat_map(|x| x.reconstruction_shares(&extraction_complaints))
        .collect();
    extracting
        .into_iter()
        .map(|x| x.finish(&revealed))
        .collect()
}
