//! The byte encoding of round payloads between gatekeepers and of public key sets, with
//! a strict decoder: every length is bounded before anything is allocated, points must
//! be compressed SEC1 (or the one-byte identity), scalars canonical, and trailing bytes
//! are an error. Decoding untrusted bytes never panics.

use crate::error::Error;
use crate::share::{Commitments, NodeIndex, PublicKeySet, SecretScalar};
use p256::elliptic_curve::PrimeField;
use p256::{ProjectivePoint, Scalar};

/// Most items in one list (members, commitments, complaints): above any committee.
pub const MAX_ITEMS: usize = 1024;

/// Appends big-endian integers, points, scalars and lists.
#[derive(Debug, Default)]
pub struct Writer(pub Vec<u8>);

impl Writer {
    /// `u8`.
    pub fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    /// `u16` BE.
    pub fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    /// `u64` BE.
    pub fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    /// A node index.
    pub fn index(&mut self, i: NodeIndex) {
        self.u16(i.get());
    }
    /// `len (u8) ‖ compressed SEC1` (identity: one zero byte).
    pub fn point(&mut self, p: &ProjectivePoint) {
        let b = crate::dleq::point_bytes(p);
        self.0.push(b.len() as u8);
        self.0.extend_from_slice(&b);
    }
    /// 32 bytes, big-endian.
    pub fn scalar(&mut self, s: &Scalar) {
        self.0.extend_from_slice(&s.to_repr());
    }
    /// `len (u32) ‖ bytes`.
    pub fn bytes(&mut self, b: &[u8]) {
        self.0.extend_from_slice(&(b.len() as u32).to_be_bytes());
        self.0.extend_from_slice(b);
    }
    /// `count (u16) ‖ items`.
    pub fn list<T>(&mut self, items: &[T], mut each: impl FnMut(&mut Self, &T)) {
        self.u16(items.len() as u16);
        for i in items {
            each(self, i);
        }
    }
}

/// Reads what [`Writer`] wrote; every method fails on short input.
#[derive(Debug)]
pub struct Reader<'a> {
    rest: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// A reader over `bytes`; errors say `malformed {what}`.
    pub fn new(bytes: &'a [u8], what: &'static str) -> Self {
        Self { rest: bytes, what }
    }
    fn bad(&self) -> Error {
        Error::Malformed(self.what)
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        if self.rest.len() < n {
            return Err(self.bad());
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }
    /// Exactly `N` bytes.
    pub fn fixed<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        let bad = self.bad();
        self.take(N)?.try_into().map_err(|_| bad)
    }
    /// `u8`.
    pub fn u8(&mut self) -> Result<u8, Error> {
        Ok(self.fixed::<1>()?[0])
    }
    /// `u16` BE.
    pub fn u16(&mut self) -> Result<u16, Error> {
        Ok(u16::from_be_bytes(self.fixed()?))
    }
    /// `u64` BE.
    pub fn u64(&mut self) -> Result<u64, Error> {
        Ok(u64::from_be_bytes(self.fixed()?))
    }
    /// A non-zero node index.
    pub fn index(&mut self) -> Result<NodeIndex, Error> {
        NodeIndex::new(self.u16()?)
    }
    /// A point as [`Writer::point`] wrote it.
    pub fn point(&mut self) -> Result<ProjectivePoint, Error> {
        let len = usize::from(self.u8()?);
        let b = self.take(len)?;
        match b {
            [0] => Ok(ProjectivePoint::IDENTITY),
            // Tags 2 and 3 only: p256 also takes the "compact" tag 5, a second
            // encoding of the same point.
            [2 | 3, ..] if len == 33 => p256::PublicKey::from_sec1_bytes(b)
                .map(|p| p.to_projective())
                .map_err(|_| self.bad()),
            _ => Err(self.bad()),
        }
    }
    /// A canonical scalar.
    pub fn scalar(&mut self) -> Result<Scalar, Error> {
        let repr = p256::FieldBytes::from(self.fixed::<32>()?);
        Option::from(Scalar::from_repr(repr)).ok_or_else(|| self.bad())
    }
    /// A secret scalar.
    pub fn secret(&mut self) -> Result<SecretScalar, Error> {
        self.scalar().map(SecretScalar::new)
    }
    /// `len (u32) ‖ bytes`, at most `max` bytes.
    pub fn bytes(&mut self, max: usize) -> Result<&'a [u8], Error> {
        let len = u32::from_be_bytes(self.fixed()?) as usize;
        if len > max {
            return Err(self.bad());
        }
        self.take(len)
    }
    /// `count (u16) ‖ items`, at most [`MAX_ITEMS`].
    pub fn list<T>(
        &mut self,
        mut each: impl FnMut(&mut Self) -> Result<T, Error>,
    ) -> Result<Vec<T>, Error> {
        let n = usize::from(self.u16()?);
        if n > MAX_ITEMS {
            return Err(self.bad());
        }
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(each(self)?);
        }
        Ok(out)
    }
    /// Fails unless everything was read.
    pub fn finish(self) -> Result<(), Error> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(self.bad())
        }
    }
}

/// `t ‖ commitments ‖ n ‖ members` of a public key set.
pub fn put_public_set(w: &mut Writer, public: &PublicKeySet) {
    w.list(&public.commitments().0, |w, p| w.point(p));
    let members: Vec<NodeIndex> = public.members().collect();
    w.list(&members, |w, m| w.index(*m));
}

/// Reads a public key set; the threshold must be in `1..=n` and members distinct.
pub fn get_public_set(r: &mut Reader<'_>) -> Result<PublicKeySet, Error> {
    let commitments = r.list(Reader::point)?;
    let members = r.list(Reader::index)?;
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

/// The public key set alone, as bytes (the digest input of round confirmations and the
/// `Status` answer).
pub fn public_set_bytes(public: &PublicKeySet) -> Vec<u8> {
    let mut w = Writer::default();
    put_public_set(&mut w, public);
    w.0
}

/// Parses [`public_set_bytes`].
pub fn public_set_from_bytes(b: &[u8]) -> Result<PublicKeySet, Error> {
    let mut r = Reader::new(b, "public key set");
    let p = get_public_set(&mut r)?;
    r.finish()?;
    Ok(p)
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
        assert_eq!(r.point().unwrap(), ProjectivePoint::IDENTITY);
        r.finish().unwrap();
        let mut w = Writer::default();
        w.u16(u16::MAX);
        assert!(Reader::new(&w.0, "l").list(Reader::u8).is_err());
        let mut w = Writer::default();
        w.bytes(&[1; 10]);
        assert!(Reader::new(&w.0, "b").bytes(9).is_err());
    }
}
