//! Shamir sharing over the P-256 scalar field with Feldman commitments.
//!
//! A degree `t-1` polynomial `f(x) = a_0 + a_1 x + … + a_{t-1} x^{t-1}` shares `s = a_0`:
//! node `i` (a non-zero [`NodeIndex`]) holds `s_i = f(i)`. The Feldman commitments
//! `C_k = a_k·G` let anyone compute the public share `S_i = s_i·G = Σ C_k·i^k` and check
//! a share against it; `C_0 = s·G` is the master public key. Any `t` shares recover
//! `f(0)` by Lagrange interpolation; fewer reveal nothing about it (information-
//! theoretically, for the shares; the commitments hide `s` only computationally, under
//! the discrete-log assumption).
//!
//! Why not `vsss-rs`: what we need is the polynomial, Feldman commitments and
//! Lagrange-at-zero over `p256` scalars — a few lines each on top of `p256`'s
//! arithmetic, which is the audited part — and our own zeroizing types around them.

use crate::error::Error;
use p256::elliptic_curve::Field;
use p256::elliptic_curve::group::Group as _;
use p256::elliptic_curve::ops::LinearCombination as _;
use p256::{ProjectivePoint, Scalar};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// A committee member's x-coordinate: 1, 2, … (never 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeIndex(u16);

impl NodeIndex {
    /// A node index; zero is refused.
    pub fn new(i: u16) -> Result<Self, Error> {
        if i == 0 {
            Err(Error::ZeroIndex)
        } else {
            Ok(Self(i))
        }
    }

    /// The index as a number.
    pub fn get(self) -> u16 {
        self.0
    }

    /// The index as a scalar.
    pub fn scalar(self) -> Scalar {
        Scalar::from(u64::from(self.0))
    }
}

impl std::fmt::Display for NodeIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A secret scalar: zeroized on drop, redacted in `Debug`.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SecretScalar(Scalar);

impl SecretScalar {
    /// Wraps a scalar.
    pub fn new(s: Scalar) -> Self {
        Self(s)
    }

    /// The scalar. Callers must not copy it into unzeroized storage.
    pub fn expose(&self) -> &Scalar {
        &self.0
    }
}

/// Constant-time comparison.
impl PartialEq for SecretScalar {
    fn eq(&self, other: &Self) -> bool {
        use p256::elliptic_curve::subtle::ConstantTimeEq;
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for SecretScalar {}

impl std::fmt::Debug for SecretScalar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretScalar(<redacted>)")
    }
}

/// A secret polynomial; its coefficients are zeroized on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Polynomial {
    coeffs: Vec<Scalar>,
}

impl std::fmt::Debug for Polynomial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Polynomial(degree {}, <redacted>)",
            self.coeffs.len().saturating_sub(1)
        )
    }
}

impl Polynomial {
    /// A random polynomial of degree `threshold - 1` with constant term `constant`.
    pub fn random<R: rand_core::CryptoRng + ?Sized>(
        threshold: usize,
        constant: Scalar,
        rng: &mut R,
    ) -> Self {
        let mut coeffs = Vec::with_capacity(threshold.max(1));
        coeffs.push(constant);
        for _ in 1..threshold {
            coeffs.push(Scalar::random(rng));
        }
        Self { coeffs }
    }

    /// `f(x)` by Horner's rule (constant time in the coefficients).
    pub fn evaluate(&self, x: NodeIndex) -> SecretScalar {
        let x = x.scalar();
        let mut acc = Scalar::ZERO;
        for c in self.coeffs.iter().rev() {
            acc = acc * x + c;
        }
        SecretScalar(acc)
    }

    /// The coefficients `a_0, …, a_{t-1}` (secret).
    pub(crate) fn coefficients(&self) -> &[Scalar] {
        &self.coeffs
    }

    /// Feldman commitments `C_k = a_k·G`.
    pub fn commit(&self) -> Commitments {
        Commitments(self.coeffs.iter().map(mul_g).collect())
    }
}

/// Feldman commitments to a polynomial: `C_k = a_k·G`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commitments(pub Vec<ProjectivePoint>);

impl Commitments {
    /// The threshold these commitments describe (number of coefficients).
    pub fn threshold(&self) -> usize {
        self.0.len()
    }

    /// `C_0`: the committed constant term times G (the master public key).
    pub fn constant(&self) -> ProjectivePoint {
        self.0.first().copied().unwrap_or(ProjectivePoint::IDENTITY)
    }

    /// `Σ C_k·x^k = f(x)·G`: the public share of node `x`.
    pub fn evaluate(&self, x: NodeIndex) -> ProjectivePoint {
        evaluate_points(&self.0, x)
    }

    /// Whether `share` is `f(x)` for the committed polynomial.
    pub fn verify_share(&self, x: NodeIndex, share: &SecretScalar) -> bool {
        mul_g(share.expose()) == self.evaluate(x)
    }

    /// The commitments of the sum of two polynomials.
    pub fn add(&self, other: &Commitments) -> Commitments {
        let n = self.0.len().max(other.0.len());
        Commitments(
            (0..n)
                .map(|k| {
                    let a = self.0.get(k).copied().unwrap_or(ProjectivePoint::IDENTITY);
                    let b = other.0.get(k).copied().unwrap_or(ProjectivePoint::IDENTITY);
                    a + b
                })
                .collect(),
        )
    }
}

/// `Σ P_k·x^k` for committed coefficients `P_k` (Feldman or Pedersen): one
/// multi-scalar multiplication, whose doublings all terms share.
///
/// Variable time: the points are published commitments and the scalars powers of a
/// public node index, so the timing depends on public data only.
pub fn evaluate_points(points: &[ProjectivePoint], x: NodeIndex) -> ProjectivePoint {
    let x = x.scalar();
    let mut power = Scalar::ONE;
    let terms: Vec<(ProjectivePoint, Scalar)> = points
        .iter()
        .map(|p| {
            let term = (*p, power);
            power *= x;
            term
        })
        .collect();
    ProjectivePoint::lincomb_vartime(terms.as_slice())
}

/// `k·G` by the precomputed table of `G` (constant time: `k` may be secret).
pub fn mul_g(k: &Scalar) -> ProjectivePoint {
    ProjectivePoint::mul_by_generator(k)
}

/// The Lagrange coefficient of `i` for interpolation at zero over `set`:
/// `λ_i = Π_{j∈set, j≠i} j / (j - i)`.
pub fn lagrange_at_zero(set: &[NodeIndex], i: NodeIndex) -> Result<Scalar, Error> {
    let mut seen = std::collections::BTreeSet::new();
    for j in set {
        if !seen.insert(*j) {
            return Err(Error::DuplicateIndex(*j));
        }
    }
    if !seen.contains(&i) {
        return Err(Error::UnknownNode(i));
    }
    let xi = i.scalar();
    let mut num = Scalar::ONE;
    let mut den = Scalar::ONE;
    for j in set.iter().filter(|j| **j != i) {
        let xj = j.scalar();
        num *= xj;
        den *= xj - xi;
    }
    // den is non-zero: indices are distinct and non-zero, and far below the group order.
    Option::<Scalar>::from(den.invert())
        .map(|inv| num * inv)
        .ok_or(Error::Internal("Lagrange denominator"))
}

/// A member's share of the master secret.
#[derive(Debug, Clone)]
pub struct KeyShare {
    /// Whose share.
    pub index: NodeIndex,
    /// `s_i`.
    pub secret: SecretScalar,
}

/// Everything public about a sharing: threshold, public shares, master public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKeySet {
    commitments: Commitments,
    /// `(i, S_i)` for every member, computed once from the commitments.
    public_shares: Vec<(NodeIndex, ProjectivePoint)>,
}

impl PublicKeySet {
    /// The public side of a sharing among `members` with these commitments.
    pub fn new(commitments: Commitments, members: &[NodeIndex]) -> Self {
        let public_shares = members
            .iter()
            .map(|&i| (i, commitments.evaluate(i)))
            .collect();
        Self {
            commitments,
            public_shares,
        }
    }

    /// The Feldman commitments (their length is the threshold).
    pub fn commitments(&self) -> &Commitments {
        &self.commitments
    }

    /// The committee.
    pub fn members(&self) -> impl Iterator<Item = NodeIndex> + '_ {
        self.public_shares.iter().map(|(i, _)| *i)
    }

    /// The threshold t.
    pub fn threshold(&self) -> usize {
        self.commitments.threshold()
    }

    /// The master public key `MPK = s·G`.
    pub fn master_public_key(&self) -> ProjectivePoint {
        self.commitments.constant()
    }

    /// `S_i = s_i·G` for a member.
    pub fn public_share(&self, i: NodeIndex) -> Result<ProjectivePoint, Error> {
        self.public_shares
            .iter()
            .find(|(j, _)| *j == i)
            .map(|(_, s)| *s)
            .ok_or(Error::UnknownNode(i))
    }
}

/// What a member holds for one epoch: its share and the committee's public key set.
#[derive(Debug, Clone)]
pub struct EpochState {
    /// This member's share.
    pub share: KeyShare,
    /// The committee's public key set (commitments, members).
    pub public: PublicKeySet,
}

/// The explicit one-time dealer: splits an existing `secret` into `n` shares with
/// threshold `t`. The secret exists in one place while this runs; genesis without a
/// dealer is the DKG. Callers must log this as an admin action.
pub fn dealer_split<R: rand_core::CryptoRng + ?Sized>(
    secret: &SecretScalar,
    threshold: usize,
    members: usize,
    rng: &mut R,
) -> Result<(Vec<KeyShare>, PublicKeySet), Error> {
    if threshold == 0 || threshold > members || members > usize::from(u16::MAX) {
        return Err(Error::InvalidThreshold { threshold, members });
    }
    let poly = Polynomial::random(threshold, *secret.expose(), rng);
    let indices = (1..=members)
        .map(|i| {
            NodeIndex::new(
                u16::try_from(i).map_err(|_| Error::InvalidThreshold { threshold, members })?,
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    let shares = indices
        .iter()
        .map(|&index| KeyShare {
            index,
            secret: poly.evaluate(index),
        })
        .collect();
    Ok((shares, PublicKeySet::new(poly.commit(), &indices)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// The multi-scalar evaluation and the generator table agree with the plain
    /// constant-time arithmetic they replace (Horner's rule, `G·k`).
    #[test]
    fn fast_evaluations_agree_with_plain_arithmetic() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        for t in [1usize, 2, 3, 7, 11, 20] {
            let points: Vec<ProjectivePoint> = (0..t)
                .map(|_| ProjectivePoint::GENERATOR * Scalar::random(&mut rng))
                .collect();
            for x in [1u16, 2, 5, 20, 65535] {
                let x = NodeIndex::new(x).unwrap();
                let horner = points
                    .iter()
                    .rev()
                    .fold(ProjectivePoint::IDENTITY, |acc, c| acc * x.scalar() + c);
                assert_eq!(evaluate_points(&points, x), horner, "t = {t}, x = {x:?}");
            }
            let k = Scalar::random(&mut rng);
            assert_eq!(mul_g(&k), ProjectivePoint::GENERATOR * k);
        }
        assert_eq!(
            evaluate_points(&[], NodeIndex::new(3).unwrap()),
            ProjectivePoint::IDENTITY
        );
    }
}
