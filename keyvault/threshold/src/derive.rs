//! Key derivation without reconstruction (threshold OPRF-style evaluation).
//!
//! For a [`KeyId`] `k`: `P = H2C(k)` (RFC 9380 `P256_XMD:SHA-256_SSWU_RO_` under
//! [`crate::tag::KEY_ID_TO_CURVE`]). Member `i` returns `Y_i = s_i·P` with a DLEQ proof
//! that `log_G S_i = log_P Y_i` ([`evaluate`]). The requester checks every proof
//! ([`combine`]), combines any `t` valid partials with Lagrange coefficients to
//! `Y = Σ λ_i·Y_i = s·P`, and derives `key = HKDF-SHA256(salt = tag, IKM = Y, info =
//! k ‖ purpose)`. No member learns `Y`; a member that lies is named
//! ([`Error::InvalidPartial`]) and skipped. Security: `Y` is a DDH-based PRF of `k` under
//! `s`; fewer than `t` colluding members learn nothing about keys they did not get.

use crate::dleq::{DleqProof, point_bytes};
use crate::error::Error;
use crate::share::{KeyShare, NodeIndex, PublicKeySet, lagrange_at_zero};
use crate::wire::{Codec, ReadCurve, Reader, WriteCurve, Writer};
use p256::elliptic_curve::ops::LinearCombination;
use p256::hash2curve::GroupDigest;
use p256::{NistP256, ProjectivePoint};
use phalanx_types::Epoch;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Longest encoded key id.
pub const MAX_KEY_ID: usize = 4096;

/// What a key is for: epoch of the master secret, tenant, path and purpose.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyId {
    /// Master-secret epoch.
    pub epoch: Epoch,
    /// Tenant (e.g. an app's measurement).
    pub tenant: String,
    /// Path within the tenant.
    pub path: String,
    /// Purpose (goes into HKDF info, not the curve point: one evaluation, many keys).
    pub purpose: String,
}

impl KeyId {
    /// Injective encoding of (epoch, tenant, path): each field length-prefixed.
    pub fn encode_point_input(&self) -> Result<Vec<u8>, Error> {
        let mut out = Vec::with_capacity(16 + self.tenant.len() + self.path.len());
        out.extend_from_slice(&self.epoch.0.to_be_bytes());
        for part in [&self.tenant, &self.path] {
            let len = u32::try_from(part.len()).map_err(|_| Error::KeyIdTooLong(part.len()))?;
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(part.as_bytes());
        }
        if out.len() > MAX_KEY_ID {
            return Err(Error::KeyIdTooLong(out.len()));
        }
        Ok(out)
    }

    /// `P = H2C(epoch ‖ tenant ‖ path)`.
    pub fn point(&self) -> Result<ProjectivePoint, Error> {
        point_of_input(&self.encode_point_input()?)
    }
}

/// `H2C` of a key id's point input ([`KeyId::encode_point_input`]).
pub fn point_of_input(input: &[u8]) -> Result<ProjectivePoint, Error> {
    if input.len() > MAX_KEY_ID {
        return Err(Error::KeyIdTooLong(input.len()));
    }
    NistP256::hash_from_bytes(&[input], &[crate::tag::KEY_ID_TO_CURVE])
        .map_err(|_| Error::Internal("hash to curve of the key id"))
}

/// A member's partial evaluation with its proof.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartialEvaluation {
    /// The member.
    pub index: NodeIndex,
    /// `Y_i = s_i·P`.
    pub value: ProjectivePoint,
    /// DLEQ proof that `log_G S_i = log_P Y_i`.
    pub proof: DleqProof,
}

/// The DLEQ context binding a proof to the key id and the member.
fn context(point_input: &[u8], index: NodeIndex) -> Vec<u8> {
    let mut c = point_input.to_vec();
    c.extend_from_slice(&index.get().to_be_bytes());
    c
}

/// Member side: evaluates its share at the key id's point and proves it.
pub fn evaluate<R: rand_core::CryptoRng + ?Sized>(
    share: &KeyShare,
    key_id: &KeyId,
    rng: &mut R,
) -> Result<PartialEvaluation, Error> {
    evaluate_for(
        share,
        &crate::share::mul_g(share.secret.expose()),
        key_id,
        rng,
    )
}

/// [`evaluate`] with the member's public share `S_i = s_i·G` computed once by the
/// caller (a gatekeeper, once per epoch rather than once per release). A `public_share`
/// that is not `s_i·G` only makes the proof fail to verify.
pub fn evaluate_for<R: rand_core::CryptoRng + ?Sized>(
    share: &KeyShare,
    public_share: &ProjectivePoint,
    key_id: &KeyId,
    rng: &mut R,
) -> Result<PartialEvaluation, Error> {
    let input = key_id.encode_point_input()?;
    let p = key_id.point()?;
    let value = p * share.secret.expose();
    let proof = DleqProof::prove(
        &context(&input, share.index),
        &share.secret,
        &ProjectivePoint::GENERATOR,
        public_share,
        &p,
        &value,
        rng,
    )?;
    Ok(PartialEvaluation {
        index: share.index,
        value,
        proof,
    })
}

/// Checks one partial against the member's public share.
pub fn verify_partial(
    public: &PublicKeySet,
    key_id: &KeyId,
    partial: &PartialEvaluation,
) -> Result<(), Error> {
    check_partial(
        public,
        &key_id.encode_point_input()?,
        &key_id.point()?,
        partial,
    )
}

/// [`verify_partial`] with the key id's encoding and point computed once by the caller.
fn check_partial(
    public: &PublicKeySet,
    input: &[u8],
    p: &ProjectivePoint,
    partial: &PartialEvaluation,
) -> Result<(), Error> {
    let s_i = public.public_share(partial.index)?;
    if proof_holds(input, p, &s_i, partial) {
        Ok(())
    } else {
        Err(Error::InvalidPartial(partial.index))
    }
}

/// Whether `partial`'s DLEQ proof shows `log_G S_i = log_P Y_i` for the public share
/// `s_i` (`input`: the key id's point input, `p` its point).
pub fn proof_holds(
    input: &[u8],
    p: &ProjectivePoint,
    s_i: &ProjectivePoint,
    partial: &PartialEvaluation,
) -> bool {
    partial.proof.verify(
        &context(input, partial.index),
        &ProjectivePoint::GENERATOR,
        s_i,
        p,
        &partial.value,
    )
}

/// Whether every partial's proof holds, checked as one batch (false also when a member
/// is unknown to `public`).
fn batch_ok(
    public: &PublicKeySet,
    input: &[u8],
    p: &ProjectivePoint,
    partials: &[&PartialEvaluation],
) -> bool {
    let mut shares = Vec::with_capacity(partials.len());
    let mut contexts = Vec::with_capacity(partials.len());
    for partial in partials {
        let Ok(s_i) = public.public_share(partial.index) else {
            return false;
        };
        shares.push(s_i);
        contexts.push(context(input, partial.index));
    }
    let claims: Vec<crate::dleq::Claim<'_>> = partials
        .iter()
        .zip(&shares)
        .zip(&contexts)
        .map(|((partial, s_i), ctx)| crate::dleq::Claim {
            context: ctx,
            a: &ProjectivePoint::GENERATOR,
            b: s_i,
            m: p,
            z: &partial.value,
            proof: &partial.proof,
        })
        .collect();
    crate::dleq::verify_batch(&claims)
}

/// A derived key: 32 bytes, zeroized on drop, redacted in `Debug`.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct DerivedKey([u8; 32]);

impl DerivedKey {
    /// The key bytes.
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for DerivedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DerivedKey(<redacted>)")
    }
}

/// The outcome of combining: the key, and the members whose partials were refused.
#[derive(Debug)]
pub struct Combined {
    /// The derived key.
    pub key: DerivedKey,
    /// Members that sent a partial with an invalid proof (or were not members).
    pub faulty: Vec<NodeIndex>,
}

/// Requester side: verifies every partial, names the liars, combines `t` valid ones and
/// derives the key. Fails with [`Error::NotEnoughShares`] if fewer than `t` are valid.
pub fn combine(
    public: &PublicKeySet,
    key_id: &KeyId,
    partials: &[PartialEvaluation],
) -> Result<Combined, Error> {
    let need = public.threshold();
    let input = key_id.encode_point_input()?;
    let point = key_id.point()?;
    // One partial per member (the first), then every proof checked in one batch; only
    // when the batch fails is each checked alone, to name the liars.
    let mut candidates: Vec<&PartialEvaluation> = Vec::with_capacity(partials.len());
    for p in partials {
        if !candidates.iter().any(|v| v.index == p.index) {
            candidates.push(p);
        }
    }
    let mut valid: Vec<&PartialEvaluation> = Vec::with_capacity(need);
    let mut faulty = Vec::new();
    if batch_ok(public, &input, &point, &candidates) {
        valid.extend(candidates.iter().take(need));
    } else {
        for p in candidates {
            match check_partial(public, &input, &point, p) {
                Ok(()) if valid.len() < need => valid.push(p),
                Ok(()) => {}
                Err(_) => faulty.push(p.index),
            }
        }
    }
    if valid.len() < need {
        return Err(Error::NotEnoughShares {
            have: valid.len(),
            need,
        });
    }
    let set: Vec<NodeIndex> = valid.iter().map(|p| p.index).collect();
    let terms = valid
        .iter()
        .map(|p| Ok((p.value, lagrange_at_zero(&set, p.index)?)))
        .collect::<Result<Vec<_>, Error>>()?;
    // Variable time in the scalars only, which are public Lagrange coefficients.
    let y = ProjectivePoint::lincomb_vartime(terms.as_slice());
    Ok(Combined {
        key: hkdf_key(&y, key_id)?,
        faulty,
    })
}

/// `HKDF-SHA256(salt = DERIVE_SALT, IKM = SEC1(Y), info = key-id encoding ‖ purpose)`.
pub fn hkdf_key(y: &ProjectivePoint, key_id: &KeyId) -> Result<DerivedKey, Error> {
    let mut ikm = point_bytes(y);
    let mut info = key_id.encode_point_input()?;
    let purpose_len = u32::try_from(key_id.purpose.len())
        .map_err(|_| Error::KeyIdTooLong(key_id.purpose.len()))?;
    info.extend_from_slice(&purpose_len.to_be_bytes());
    info.extend_from_slice(key_id.purpose.as_bytes());
    let hk = hkdf::Hkdf::<sha2::Sha256>::new(Some(crate::tag::DERIVE_SALT), &ikm);
    ikm.zeroize();
    let mut out = [0u8; 32];
    hk.expand(&info, &mut out)
        .map_err(|_| Error::Internal("HKDF output length"))?;
    Ok(DerivedKey(out))
}

/// Length of an encoded [`PartialEvaluation`]: index, three uncompressed points (the
/// value and the proof's commitments), one scalar.
pub const PARTIAL_LEN: usize = 2 + 65 + 65 + 65 + 32;

/// Uncompressed SEC1 encodings (65 bytes each): checking one is on the curve costs a few
/// field multiplications, where a compressed point costs a square root to decode. All
/// normalized with one field inversion.
fn uncompressed<const N: usize>(points: [ProjectivePoint; N]) -> [Vec<u8>; N] {
    use p256::elliptic_curve::{BatchNormalize as _, sec1::ToSec1Point as _};
    ProjectivePoint::batch_normalize(&points).map(|a| a.to_sec1_point(false).as_bytes().to_vec())
}

impl Codec for PartialEvaluation {
    const NAME: &'static str = "partial evaluation";
    type Error = Error;

    /// `index ‖ Y ‖ T2 ‖ T3 (each SEC1-uncompressed, 65 bytes) ‖ s`.
    fn encode(&self, w: &mut Writer) {
        w.index(self.index);
        for point in uncompressed([self.value, self.proof.t2, self.proof.t3]) {
            w.raw(&point);
        }
        w.scalar(&self.proof.s);
    }

    /// Strict: non-zero index, valid non-identity points, a canonical scalar.
    fn read(r: &mut Reader<'_>) -> Result<Self, Error> {
        // An uncompressed public key: on the curve and not the identity.
        fn point(r: &mut Reader<'_>, what: &'static str) -> Result<ProjectivePoint, Error> {
            let bytes = r.array::<65>(what)?;
            if bytes.first() != Some(&0x04) {
                return Err(r.invalid(what).into());
            }
            p256::PublicKey::from_sec1_bytes(&bytes)
                .map(|pk| pk.to_projective())
                .map_err(|_| r.invalid(what).into())
        }
        let index = r.index("index")?;
        let value = point(r, "value")?;
        let t2 = point(r, "proof commitment T2")?;
        let t3 = point(r, "proof commitment T3")?;
        Ok(Self {
            index,
            value,
            proof: crate::dleq::DleqProof {
                t2,
                t3,
                s: r.scalar("proof response")?,
            },
        })
    }
}

impl PartialEvaluation {
    /// The [`Codec`] encoding ([`PARTIAL_LEN`] bytes).
    pub fn to_bytes(&self) -> Vec<u8> {
        Codec::to_bytes(self)
    }

    /// Strict decoding of exactly one [`PartialEvaluation`].
    pub fn from_bytes(b: &[u8]) -> Result<Self, Error> {
        <Self as Codec>::from_bytes(b)
    }
}
