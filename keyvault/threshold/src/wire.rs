//! The threshold scheme's values in the one codec of Phalanx ([`phalanx_types::codec`]):
//! points, scalars, node indices and public key sets, for round payloads between
//! gatekeepers, the sealed state and the registry. Decoding is strict: every length is
//! bounded before anything is allocated, points must be compressed SEC1 (or the one-byte
//! identity), scalars canonical, and trailing bytes are an error. Decoding untrusted
//! bytes never panics.

use crate::error::Error;
use crate::share::{Commitments, NodeIndex, PublicKeySet, SecretScalar};
use p256::elliptic_curve::PrimeField;
use p256::{ProjectivePoint, Scalar};
pub use phalanx_types::codec::{Codec, DecodeError, Reader, Writer};

/// Most items in one list (members, commitments, complaints): above any committee.
pub const MAX_ITEMS: usize = 1024;

/// Writes the threshold scheme's values with the one codec's [`Writer`].
pub trait WriteCurve {
    /// A node index (`u16`).
    fn index(&mut self, i: NodeIndex);
    /// `len (u8) ‖ compressed SEC1` (identity: one zero byte).
    fn point(&mut self, p: &ProjectivePoint);
    /// 32 bytes, big-endian.
    fn scalar(&mut self, s: &Scalar);
}

impl WriteCurve for Writer {
    fn index(&mut self, i: NodeIndex) {
        self.u16(i.get());
    }
    fn point(&mut self, p: &ProjectivePoint) {
        let b = crate::dleq::point_bytes(p);
        self.u8(b.len() as u8);
        self.raw(&b);
    }
    fn scalar(&mut self, s: &Scalar) {
        self.raw(&s.to_repr());
    }
}

/// Reads what [`WriteCurve`] wrote, strictly, with the one codec's [`Reader`].
pub trait ReadCurve {
    /// A non-zero node index.
    fn index(&mut self, field: &'static str) -> Result<NodeIndex, Error>;
    /// A point as [`WriteCurve::point`] wrote it: compressed SEC1 with tag 2 or 3, or
    /// the one-byte identity.
    fn point(&mut self, field: &'static str) -> Result<ProjectivePoint, Error>;
    /// A canonical scalar.
    fn scalar(&mut self, field: &'static str) -> Result<Scalar, Error>;
    /// A secret scalar.
    fn secret(&mut self, field: &'static str) -> Result<SecretScalar, Error> {
        self.scalar(field).map(SecretScalar::new)
    }
}

impl ReadCurve for Reader<'_> {
    fn index(&mut self, field: &'static str) -> Result<NodeIndex, Error> {
        NodeIndex::new(self.u16(field)?)
    }
    fn point(&mut self, field: &'static str) -> Result<ProjectivePoint, Error> {
        let len = usize::from(self.u8(field)?);
        let b = self.take(len, field)?;
        match b {
            [0] => Ok(ProjectivePoint::IDENTITY),
            // Tags 2 and 3 only: p256 also takes the "compact" tag 5, a second
            // encoding of the same point.
            [2 | 3, ..] if len == 33 => p256::PublicKey::from_sec1_bytes(b)
                .map(|p| p.to_projective())
                .map_err(|_| self.invalid(field).into()),
            _ => Err(self.invalid(field).into()),
        }
    }
    fn scalar(&mut self, field: &'static str) -> Result<Scalar, Error> {
        let repr = p256::FieldBytes::from(self.array::<32>(field)?);
        Option::from(Scalar::from_repr(repr)).ok_or_else(|| self.invalid(field).into())
    }
}

/// `count ‖ points` (commitments).
pub fn get_points(r: &mut Reader<'_>, field: &'static str) -> Result<Vec<ProjectivePoint>, Error> {
    r.list(field, MAX_ITEMS, |r| r.point(field))
}

/// `count ‖ node indices`.
pub fn get_indices(r: &mut Reader<'_>, field: &'static str) -> Result<Vec<NodeIndex>, Error> {
    r.list(field, MAX_ITEMS, |r| r.index(field))
}

/// `t ‖ commitments ‖ n ‖ members` of a public key set.
pub fn put_public_set(w: &mut Writer, public: &PublicKeySet) {
    w.list(&public.commitments().0, |w, p| w.point(p));
    let members: Vec<NodeIndex> = public.members().collect();
    w.list(&members, |w, m| w.index(*m));
}

/// Reads a public key set; the threshold must be in `1..=n` and members distinct.
pub fn get_public_set(r: &mut Reader<'_>) -> Result<PublicKeySet, Error> {
    let commitments = get_points(r, "commitments")?;
    let members = get_indices(r, "members")?;
    let t = commitments.len();
    if t == 0 || t > members.len() {
        return Err(Error::InvalidThreshold {
            threshold: t,
            members: members.len(),
        });
    }
    let mut sorted = members.clone();
    sorted.sort();
    for pair in sorted.windows(2) {
        if let [a, b] = pair
            && a == b
        {
            return Err(Error::DuplicateIndex(*a));
        }
    }
    Ok(PublicKeySet::new(Commitments(commitments), &members))
}

impl Codec for PublicKeySet {
    const NAME: &'static str = "public key set";
    type Error = Error;
    fn encode(&self, w: &mut Writer) {
        put_public_set(w, self);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, Error> {
        get_public_set(r)
    }
}

/// The public key set alone, as bytes (the digest input of round confirmations and the
/// `Status` answer).
pub fn public_set_bytes(public: &PublicKeySet) -> Vec<u8> {
    public.to_bytes()
}

/// Parses [`public_set_bytes`].
pub fn public_set_from_bytes(b: &[u8]) -> Result<PublicKeySet, Error> {
    PublicKeySet::from_bytes(b)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn public_sets_round_trip_and_reject_damage() {
        let secret = SecretScalar::new(Scalar::from(7u64));
        let (_, public) = crate::share::dealer_split(&secret, 2, 3, &mut rand::rng()).unwrap();
        let b = public_set_bytes(&public);
        assert_eq!(public_set_from_bytes(&b).unwrap(), public);
        for cut in 0..b.len() {
            assert!(public_set_from_bytes(&b[..cut]).is_err(), "cut {cut}");
        }
        let mut long = b.clone();
        long.push(0);
        assert!(public_set_from_bytes(&long).is_err());
        // A point with a bad tag, a threshold above n, a repeated member.
        for tag in [0, 4, 5, 7] {
            let mut bad = b.clone();
            bad[3] = tag;
            assert!(public_set_from_bytes(&bad).is_err(), "tag {tag}");
        }
        let mut w = Writer::default();
        w.list(&public.commitments().0, |w, p| w.point(p));
        w.list(&[NodeIndex::new(1).unwrap()], |w, m| w.index(*m));
        assert!(public_set_from_bytes(&w.0).is_err());
        let mut w = Writer::default();
        w.list(&public.commitments().0, |w, p| w.point(p));
        let one = NodeIndex::new(1).unwrap();
        w.list(&[one, one, one], |w, m| w.index(*m));
        assert!(public_set_from_bytes(&w.0).is_err());
    }

    #[test]
    fn identity_points_and_oversized_lists() {
        let mut w = Writer::default();
        w.point(&ProjectivePoint::IDENTITY);
        let mut r = Reader::new(&w.0, "p");
        assert_eq!(r.point("p").unwrap(), ProjectivePoint::IDENTITY);
        r.finish().unwrap();
        let mut w = Writer::default();
        w.u16(u16::MAX);
        assert!(get_points(&mut Reader::new(&w.0, "l"), "l").is_err());
    }
}
