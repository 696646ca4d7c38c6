//! Chaum–Pedersen proof of discrete-log equality (DLEQ), with the Fiat–Shamir challenge
//! built as in RFC 9497 §2.2 (`GenerateProof` / `VerifyProof` for one pair).
//!
//! Statement: for public `A, B, M, Z`, the prover knows `k` with `B = k·A` and `Z = k·M`.
//! Proof `(c, s)`: pick random `r`, `t2 = r·A`, `t3 = r·M`, `c = H(B, M, Z, t2, t3)`,
//! `s = r − c·k`. Verification recomputes `t2 = s·A + c·B`, `t3 = s·M + c·Z` and the
//! challenge. Elements are serialized compressed (SEC1, 33 bytes) with a 2-byte length
//! prefix, then the string `"Challenge"`, hashed to a scalar with
//! `hash_to_field` (expand_message_xmd, SHA-256, L = 48) under [`crate::tag::DLEQ_CHALLENGE`]
//! plus the caller's context (e.g. the key id and node index). Sound under the
//! discrete-log assumption in the random-oracle model; zero-knowledge for honest `r`.

use crate::error::Error;
use crate::share::SecretScalar;
use p256::elliptic_curve::Field;
use p256::elliptic_curve::ops::{LinearCombination, MulByGeneratorVartime};
use p256::elliptic_curve::sec1::ToSec1Point;
use p256::hash2curve::{ExpandMsgXmd, hash_to_scalar};
use p256::{NistP256, ProjectivePoint, Scalar};
use sha2::Sha256;

/// A DLEQ proof.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DleqProof {
    /// The challenge.
    pub c: Scalar,
    /// The response.
    pub s: Scalar,
}

/// Compressed SEC1 encoding of a point (33 bytes; the identity encodes as one zero byte).
pub fn point_bytes(p: &ProjectivePoint) -> Vec<u8> {
    p.to_affine().to_sec1_point(true).as_bytes().to_vec()
}

fn challenge(context: &[u8], points: [&ProjectivePoint; 5]) -> Result<Scalar, Error> {
    let mut transcript = Vec::with_capacity(5 * 35 + 9);
    for p in points {
        let b = point_bytes(p);
        transcript.extend_from_slice(&(b.len() as u16).to_be_bytes());
        transcript.extend_from_slice(&b);
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
        Ok(Self { c, s })
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
        // Everything here is public (the statement and the proof), so variable-time
        // arithmetic leaks nothing: `s·G + c·B` by the generator's table, and two-term
        // combinations sharing their doublings.
        let t2 = if *a == ProjectivePoint::GENERATOR {
            ProjectivePoint::mul_by_generator_and_mul_add_vartime(&self.s, &self.c, b)
        } else {
            ProjectivePoint::lincomb_vartime(&[(*a, self.s), (*b, self.c)])
        };
        let t3 = ProjectivePoint::lincomb_vartime(&[(*m, self.s), (*z, self.c)]);
        challenge(context, [b, m, z, &t2, &t3]).is_ok_and(|c| c == self.c)
    }
}
