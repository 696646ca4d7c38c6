//! Chaum–Pedersen proof of discrete-log equality (DLEQ), with the Fiat–Shamir challenge
//! built as in RFC 9497 §2.2, sent in commitment form so that many proofs verify as one
//! batch.
//!
//! Statement: for public `A, B, M, Z`, the prover knows `k` with `B = k·A` and `Z = k·M`.
//! Proof `(T2, T3, s)`: pick random `r`, `T2 = r·A`, `T3 = r·M`, `c = H(B, M, Z, T2, T3)`,
//! `s = r − c·k`. Verification recomputes `c` and checks `s·A + c·B = T2` and
//! `s·M + c·Z = T3`. Elements are serialized compressed (SEC1, 33 bytes) with a 2-byte
//! length prefix, then the string `"Challenge"`, hashed to a scalar with `hash_to_field`
//! (expand_message_xmd, SHA-256, L = 48) under [`crate::tag::DLEQ_CHALLENGE`] plus the
//! caller's context (e.g. the key id and node index). Sound under the discrete-log
//! assumption in the random-oracle model; zero-knowledge for honest `r`.
//!
//! **Batches** ([`verify_batch`]): `n` proofs hold iff, for weights `ρ_i, ρ'_i` the prover
//! cannot predict, `Σ ρ_i(s_i·A_i + c_i·B_i − T2_i) + ρ'_i(s_i·M_i + c_i·Z_i − T3_i)` is
//! the identity: one multi-scalar multiplication instead of `2n` (a false proof passes
//! with probability about 2^-128). The weights are 128-bit, derived by hashing every
//! statement and proof of the batch under [`crate::tag::DLEQ_BATCH`] (no randomness
//! needed, and fixed only after the proofs are). A failed batch says only that some proof
//! is false: callers then check each alone to name it.
//!
//! Verification handles public values only (statements, proofs, weights), so it runs in
//! variable time; proving keeps `k` and `r` in constant-time arithmetic.

use crate::error::Error;
use crate::share::SecretScalar;
use p256::elliptic_curve::group::Curve;
use p256::elliptic_curve::group::Group as _;
use p256::elliptic_curve::ops::{LinearCombination, MulByGeneratorVartime};
use p256::elliptic_curve::sec1::ToSec1Point;
use p256::elliptic_curve::{Field, PrimeField as _};
use p256::hash2curve::{ExpandMsgXmd, hash_to_scalar};
use p256::{AffinePoint, NistP256, ProjectivePoint, Scalar};
use sha2::{Digest, Sha256};

/// A DLEQ proof, in commitment form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DleqProof {
    /// `T2 = r·A`.
    pub t2: ProjectivePoint,
    /// `T3 = r·M`.
    pub t3: ProjectivePoint,
    /// The response `s = r − c·k`.
    pub s: Scalar,
}

/// One statement with its proof and context, for [`verify_batch`].
#[derive(Debug, Clone, Copy)]
pub struct Claim<'a> {
    /// The context the challenge binds (e.g. key id and node index).
    pub context: &'a [u8],
    /// `A`.
    pub a: &'a ProjectivePoint,
    /// `B = k·A`.
    pub b: &'a ProjectivePoint,
    /// `M`.
    pub m: &'a ProjectivePoint,
    /// `Z = k·M`.
    pub z: &'a ProjectivePoint,
    /// The proof.
    pub proof: &'a DleqProof,
}

/// Compressed SEC1 encoding of a point (33 bytes; the identity encodes as one zero byte).
pub fn point_bytes(p: &ProjectivePoint) -> Vec<u8> {
    p.to_affine().to_sec1_point(true).as_bytes().to_vec()
}

/// [`point_bytes`] of every point, with one field inversion for all of them
/// (Montgomery's trick) where each encoding alone costs one.
pub fn points_bytes(points: &[ProjectivePoint]) -> Vec<Vec<u8>> {
    let mut affine = vec![AffinePoint::IDENTITY; points.len()];
    <ProjectivePoint as Curve>::batch_normalize(points, &mut affine);
    affine
        .iter()
        .map(|a| a.to_sec1_point(true).as_bytes().to_vec())
        .collect()
}

fn challenge(context: &[u8], points: [&ProjectivePoint; 5]) -> Result<Scalar, Error> {
    let [b, m, z, t2, t3] = points_bytes(&points.map(|p| *p))
        .try_into()
        .map_err(|_| Error::Internal("DLEQ point encoding"))?;
    challenge_of_encoded(context, [&b, &m, &z, &t2, &t3])
}

/// [`challenge`] of points already encoded by [`point_bytes`] (an encoding costs a field
/// inversion: a batch encodes each point once).
fn challenge_of_encoded(context: &[u8], points: [&[u8]; 5]) -> Result<Scalar, Error> {
    let mut transcript = Vec::with_capacity(5 * 35 + 9);
    for b in points {
        transcript.extend_from_slice(&(b.len() as u16).to_be_bytes());
        transcript.extend_from_slice(b);
    }
    transcript.extend_from_slice(b"Challenge");
    let ctx_len = u16::try_from(context.len())
        .map_err(|_| Error::Internal("DLEQ context length"))?
        .to_be_bytes();
    hash_to_scalar::<NistP256, ExpandMsgXmd<Sha256>, p256::elliptic_curve::consts::U48>(
        &[&transcript],
        &[crate::tag::DLEQ_CHALLENGE, &ctx_len, context],
    )
    .map_err(|_| Error::Internal("DLEQ challenge hash"))
}

impl DleqProof {
    /// Proves `B = k·A` and `Z = k·M` for the secret `k`.
    pub fn prove<R: rand_core::CryptoRng + ?Sized>(
        context: &[u8],
        k: &SecretScalar,
        a: &ProjectivePoint,
        b: &ProjectivePoint,
        m: &ProjectivePoint,
        z: &ProjectivePoint,
        rng: &mut R,
    ) -> Result<Self, Error> {
        let r = SecretScalar::new(Scalar::random(rng));
        // `A` is usually `G`: its precomputed table (constant time, as `r` is secret).
        let t2 = if *a == ProjectivePoint::GENERATOR {
            crate::share::mul_g(r.expose())
        } else {
            *a * r.expose()
        };
        let t3 = *m * r.expose();
        let c = challenge(context, [b, m, z, &t2, &t3])?;
        let s = *r.expose() - c * k.expose();
        Ok(Self { t2, t3, s })
    }

    /// Checks the proof for `(A, B, M, Z)` and `context`.
    pub fn verify(
        &self,
        context: &[u8],
        a: &ProjectivePoint,
        b: &ProjectivePoint,
        m: &ProjectivePoint,
        z: &ProjectivePoint,
    ) -> bool {
        let Ok(c) = challenge(context, [b, m, z, &self.t2, &self.t3]) else {
            return false;
        };
        let t2 = if *a == ProjectivePoint::GENERATOR {
            ProjectivePoint::mul_by_generator_and_mul_add_vartime(&self.s, &c, b)
        } else {
            ProjectivePoint::lincomb_vartime(&[(*a, self.s), (*b, c)])
        };
        t2 == self.t2 && ProjectivePoint::lincomb_vartime(&[(*m, self.s), (*z, c)]) == self.t3
    }
}

/// Checks every claim at once (see the module doc): `true` only if all hold, up to a
/// 2^-128 chance for a false one. An empty batch holds.
pub fn verify_batch(claims: &[Claim<'_>]) -> bool {
    // The weights: SHA-256 over every claim, then per claim two 128-bit scalars.
    let mut h = Sha256::new();
    h.update(crate::tag::DLEQ_BATCH);
    let mut challenges = Vec::with_capacity(claims.len());
    // Every point of the batch encoded at once (one field inversion).
    let points: Vec<ProjectivePoint> = claims
        .iter()
        .flat_map(|cl| [*cl.a, *cl.b, *cl.m, *cl.z, cl.proof.t2, cl.proof.t3])
        .collect();
    let encoded = points_bytes(&points);
    for (cl, e) in claims.iter().zip(encoded.chunks_exact(6)) {
        let [a, b, m, z, t2, t3] = e else {
            return false;
        };
        let Ok(c) = challenge_of_encoded(cl.context, [b, m, z, t2, t3]) else {
            return false;
        };
        challenges.push(c);
        h.update((cl.context.len() as u64).to_be_bytes());
        h.update(cl.context);
        for e in [a, b, m, z, t2, t3] {
            h.update(e);
        }
        h.update(cl.proof.s.to_bytes());
    }
    let seed = h.finalize();
    let weight = |i: usize, which: u8| -> Scalar {
        let d = Sha256::new()
            .chain_update(seed)
            .chain_update((i as u64).to_be_bytes())
            .chain_update([which])
            .finalize();
        let mut w = [0u8; 16];
        for (out, byte) in w.iter_mut().zip(d.iter()) {
            *out = *byte;
        }
        Scalar::from_u128(u128::from_be_bytes(w))
    };
    // Terms on `G` (and on one shared `M`, the usual case) are merged into one each.
    let mut g = Scalar::ZERO;
    let shared_m = claims.first().map(|c| *c.m);
    let mut m_coeff = Scalar::ZERO;
    let mut terms: Vec<(ProjectivePoint, Scalar)> = Vec::with_capacity(6 * claims.len());
    for (i, (cl, c)) in claims.iter().zip(&challenges).enumerate() {
        let (w2, w3) = (weight(i, 2), weight(i, 3));
        if *cl.a == ProjectivePoint::GENERATOR {
            g += w2 * cl.proof.s;
        } else {
            terms.push((*cl.a, w2 * cl.proof.s));
        }
        terms.push((*cl.b, w2 * c));
        terms.push((cl.proof.t2, -w2));
        if Some(*cl.m) == shared_m {
            m_coeff += w3 * cl.proof.s;
        } else {
            terms.push((*cl.m, w3 * cl.proof.s));
        }
        terms.push((*cl.z, w3 * c));
        terms.push((cl.proof.t3, -w3));
    }
    if let Some(m) = shared_m {
        terms.push((m, m_coeff));
    }
    let sum = ProjectivePoint::mul_by_generator_vartime(&g)
        + ProjectivePoint::lincomb_vartime(terms.as_slice());
    bool::from(sum.is_identity())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn statement(
        rng: &mut rand::rngs::StdRng,
        m: ProjectivePoint,
        ctx: u8,
    ) -> (Vec<u8>, ProjectivePoint, ProjectivePoint, DleqProof) {
        let k = SecretScalar::new(Scalar::random(&mut *rng));
        let b = ProjectivePoint::GENERATOR * k.expose();
        let z = m * k.expose();
        let context = vec![ctx; 3];
        let proof =
            DleqProof::prove(&context, &k, &ProjectivePoint::GENERATOR, &b, &m, &z, rng).unwrap();
        (context, b, z, proof)
    }

    /// A statement's context, `M`, `B`, `Z` and proof.
    type Item = (
        Vec<u8>,
        ProjectivePoint,
        ProjectivePoint,
        ProjectivePoint,
        DleqProof,
    );

    /// A batch holds exactly when every proof does: each possible lie (a response, a
    /// commitment, a statement, the context) in any position fails it, with a shared
    /// `M` or not.
    #[test]
    fn a_batch_holds_exactly_when_every_proof_does() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let g = ProjectivePoint::GENERATOR;
        let shared = g * Scalar::random(&mut rng);
        for distinct_m in [false, true] {
            let items: Vec<Item> = (0..4u8)
                .map(|i| {
                    let m = if distinct_m {
                        g * Scalar::random(&mut rng)
                    } else {
                        shared
                    };
                    let (ctx, b, z, proof) = statement(&mut rng, m, i);
                    (ctx, m, b, z, proof)
                })
                .collect();
            let check = |items: &[Item]| {
                let batch: Vec<Claim<'_>> = items
                    .iter()
                    .map(|(ctx, m, b, z, proof)| Claim {
                        context: ctx,
                        a: &g,
                        b,
                        m,
                        z,
                        proof,
                    })
                    .collect();
                let alone = items
                    .iter()
                    .all(|(ctx, m, b, z, proof)| proof.verify(ctx, &g, b, m, z));
                (verify_batch(&batch), alone)
            };
            assert_eq!(check(&items), (true, true));
            assert!(verify_batch(&[]));
            for i in 0..items.len() {
                for lie in 0..5 {
                    let mut bad = items.clone();
                    let it = &mut bad[i];
                    match lie {
                        0 => it.4.s += Scalar::ONE,
                        1 => it.4.t2 += g,
                        2 => it.4.t3 += g,
                        3 => it.3 += g,
                        _ => it.0.push(0),
                    }
                    assert_eq!(check(&bad), (false, false), "lie {lie} at {i}");
                }
            }
        }
    }
}
