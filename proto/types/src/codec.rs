//! The one binary codec of Phalanx: a bounds-checked [`Reader`], a [`Writer`], and the
//! [`Codec`] trait that puts a type's encoder and decoder side by side.
//!
//! Phalanx's own messages (round payloads, public key sets, registry transactions,
//! worker runtime data) are big-endian with explicit length prefixes, every length
//! bounded before anything is allocated. Intel's structures (quotes, reports) are
//! little-endian; the same reader reads them with the `_le` methods.
//!
//! Every read names the field it reads, and fails with a [`DecodeError`] saying which
//! message, which field and what was wrong. A failed read consumes nothing. Decoding
//! untrusted bytes never panics and never allocates more than the input could hold.
//! A decode error is about bytes only; what the bytes *mean* (a bad signature, a
//! threshold above n) is the caller's own error type.

/// Why bytes are not a valid encoding. `what` names the message, `field` the part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// A field did not fit in what was left of the input.
    #[error("malformed {what}: {field} needs {need} bytes, {have} left")]
    Truncated {
        /// The message being decoded.
        what: &'static str,
        /// The field being read.
        field: &'static str,
        /// Bytes the field needs.
        need: usize,
        /// Bytes that were left.
        have: usize,
    },
    /// Bytes left over after the message.
    #[error("malformed {what}: {extra} bytes after the end")]
    Trailing {
        /// The message being decoded.
        what: &'static str,
        /// How many bytes were left.
        extra: usize,
    },
    /// A length or count above its bound.
    #[error("malformed {what}: {field} has length {len}, at most {max} allowed")]
    TooLong {
        /// The message being decoded.
        what: &'static str,
        /// The field being read.
        field: &'static str,
        /// The length found.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// A value that is not a valid encoding of its type (a point off the curve, a
    /// non-canonical scalar, an unknown tag).
    #[error("malformed {what}: {field} is not a valid encoding")]
    Invalid {
        /// The message being decoded.
        what: &'static str,
        /// The field being read.
        field: &'static str,
    },
}

/// A bounds-checked cursor over borrowed bytes.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`, decoding the message called `what`.
    pub fn new(buf: &'a [u8], what: &'static str) -> Self {
        Self { buf, pos: 0, what }
    }

    /// The message being decoded.
    pub fn what(&self) -> &'static str {
        self.what
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Bytes not yet consumed.
    pub fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or_default()
    }

    /// Whether every byte has been consumed.
    pub fn is_empty(&self) -> bool {
        self.rest().is_empty()
    }

    /// The error for a `field` whose bytes are not a valid encoding.
    pub fn invalid(&self, field: &'static str) -> DecodeError {
        DecodeError::Invalid {
            what: self.what,
            field,
        }
    }

    /// Takes the next `n` bytes.
    pub fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        let rest = self.rest();
        let out = rest.get(..n).ok_or(DecodeError::Truncated {
            what: self.what,
            field,
            need: n,
            have: rest.len(),
        })?;
        self.pos += n;
        Ok(out)
    }

    /// Takes the next `N` bytes as an array.
    pub fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, field)?);
        Ok(out)
    }

    /// Takes the next `n` bytes as a reader of their own (same message name).
    pub fn sub(&mut self, n: usize, field: &'static str) -> Result<Reader<'a>, DecodeError> {
        let what = self.what;
        self.take(n, field).map(|b| Reader::new(b, what))
    }

    /// A `u8`.
    pub fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        self.array::<1>(field).map(|[b]| b)
    }

    /// A big-endian `u16`.
    pub fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        self.array(field).map(u16::from_be_bytes)
    }

    /// A big-endian `u32`.
    pub fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        self.array(field).map(u32::from_be_bytes)
    }

    /// A big-endian `u64`.
    pub fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        self.array(field).map(u64::from_be_bytes)
    }

    /// A little-endian `u16` (Intel's structures).
    pub fn u16_le(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        self.array(field).map(u16::from_le_bytes)
    }

    /// A little-endian `u32` (Intel's structures).
    pub fn u32_le(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        self.array(field).map(u32::from_le_bytes)
    }

    /// A little-endian `u64` (Intel's structures).
    pub fn u64_le(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        self.array(field).map(u64::from_le_bytes)
    }

    /// A boolean written as one byte 0 or 1; anything else is invalid.
    pub fn bool(&mut self, field: &'static str) -> Result<bool, DecodeError> {
        match self.u8(field)? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(self.invalid(field)),
        }
    }

    /// `len (u32 BE) ‖ bytes`, at most `max` bytes (checked before reading them).
    pub fn bytes(&mut self, field: &'static str, max: usize) -> Result<&'a [u8], DecodeError> {
        let len = usize::try_from(self.u32(field)?).unwrap_or(usize::MAX);
        self.bounded(field, len, max)?;
        self.take(len, field)
    }

    /// `count (u16 BE) ‖ items`, at most `max` items (checked before anything is
    /// allocated).
    pub fn list<T, E: From<DecodeError>>(
        &mut self,
        field: &'static str,
        max: usize,
        mut each: impl FnMut(&mut Self) -> Result<T, E>,
    ) -> Result<Vec<T>, E> {
        let n = usize::from(self.u16(field)?);
        self.bounded(field, n, max)?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(each(self)?);
        }
        Ok(out)
    }

    fn bounded(&self, field: &'static str, len: usize, max: usize) -> Result<(), DecodeError> {
        if len > max {
            return Err(DecodeError::TooLong {
                what: self.what,
                field,
                len,
                max,
            });
        }
        Ok(())
    }

    /// Fails unless every byte was read.
    pub fn finish(self) -> Result<(), DecodeError> {
        match self.rest().len() {
            0 => Ok(()),
            extra => Err(DecodeError::Trailing {
                what: self.what,
                extra,
            }),
        }
    }
}

/// Appends big-endian integers and length-prefixed byte strings and lists: the
/// counterpart of [`Reader`]. Callers keep lengths within their decoder's bounds (a
/// byte string under 4 GiB, a list under 65,536 items), which the decoder enforces.
#[derive(Debug, Default, Clone)]
pub struct Writer(pub Vec<u8>);

impl Writer {
    /// Raw bytes, no prefix (fixed-size fields).
    pub fn raw(&mut self, b: &[u8]) {
        self.0.extend_from_slice(b);
    }
    /// A `u8`.
    pub fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    /// A big-endian `u16`.
    pub fn u16(&mut self, v: u16) {
        self.raw(&v.to_be_bytes());
    }
    /// A big-endian `u32`.
    pub fn u32(&mut self, v: u32) {
        self.raw(&v.to_be_bytes());
    }
    /// A big-endian `u64`.
    pub fn u64(&mut self, v: u64) {
        self.raw(&v.to_be_bytes());
    }
    /// A boolean as one byte 0 or 1.
    pub fn bool(&mut self, v: bool) {
        self.u8(u8::from(v));
    }
    /// `len (u32 BE) ‖ bytes`.
    pub fn bytes(&mut self, b: &[u8]) {
        self.u32(u32::try_from(b.len()).unwrap_or(u32::MAX));
        self.raw(b);
    }
    /// `count (u16 BE) ‖ items`.
    pub fn list<T>(&mut self, items: &[T], mut each: impl FnMut(&mut Self, &T)) {
        self.u16(u16::try_from(items.len()).unwrap_or(u16::MAX));
        for i in items {
            each(self, i);
        }
    }
}

/// A type with one encoding: its encoder and decoder side by side, so they cannot drift.
pub trait Codec: Sized {
    /// The message name in decode errors.
    const NAME: &'static str;
    /// What decoding fails with: [`DecodeError`], or the type's own error when valid
    /// bytes can still mean an invalid value.
    type Error: From<DecodeError>;
    /// Appends the encoding.
    fn encode(&self, w: &mut Writer);
    /// Reads one value, leaving the reader after it.
    fn read(r: &mut Reader<'_>) -> Result<Self, Self::Error>;

    /// The encoding alone.
    fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::default();
        self.encode(&mut w);
        w.0
    }
    /// Decodes exactly one value: trailing bytes are an error.
    fn from_bytes(b: &[u8]) -> Result<Self, Self::Error> {
        let mut r = Reader::new(b, Self::NAME);
        let v = Self::read(&mut r)?;
        r.finish()?;
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_byte_orders_and_names_what_failed() {
        let mut r = Reader::new(&[0, 1, 2, 0, 0, 0, 9], "t");
        assert_eq!(r.u16("a"), Ok(1));
        assert_eq!(r.u32_le("b"), Ok(2));
        assert_eq!(
            r.u16("c"),
            Err(DecodeError::Truncated {
                what: "t",
                field: "c",
                need: 2,
                have: 1
            })
        );
        // A failed read consumes nothing.
        assert_eq!(r.rest(), &[9]);
        assert!(r.take(usize::MAX, "huge").is_err());
        assert_eq!(
            r.clone().finish(),
            Err(DecodeError::Trailing {
                what: "t",
                extra: 1
            })
        );
        assert_eq!(r.u8("d"), Ok(9));
        r.finish().unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn lengths_are_bounded_before_allocation() {
        let mut w = Writer::default();
        w.u16(u16::MAX);
        let e = Reader::new(&w.0, "l").list::<u8, DecodeError>("items", 10, |r| r.u8("x"));
        assert!(matches!(
            e,
            Err(DecodeError::TooLong {
                len: 65535,
                max: 10,
                ..
            })
        ));
        let mut w = Writer::default();
        w.bytes(&[1; 10]);
        assert!(Reader::new(&w.0, "b").bytes("blob", 9).is_err());
        assert_eq!(Reader::new(&w.0, "b").bytes("blob", 10), Ok(&[1u8; 10][..]));
        assert!(Reader::new(&[2], "b").bool("flag").is_err());
    }

    #[derive(Debug, PartialEq)]
    struct Pair(u64, Vec<u8>);
    impl Codec for Pair {
        const NAME: &'static str = "pair";
        type Error = DecodeError;
        fn encode(&self, w: &mut Writer) {
            w.u64(self.0);
            w.bytes(&self.1);
        }
        fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
            Ok(Pair(r.u64("n")?, r.bytes("b", 16)?.to_vec()))
        }
    }

    #[test]
    fn codec_round_trips_and_refuses_every_truncation_and_extension() {
        let p = Pair(7, vec![1, 2, 3]);
        let b = p.to_bytes();
        assert_eq!(Pair::from_bytes(&b), Ok(p));
        for cut in 0..b.len() {
            assert!(Pair::from_bytes(b.get(..cut).unwrap_or_default()).is_err());
        }
        let mut long = b.clone();
        long.push(0);
        assert_eq!(
            Pair::from_bytes(&long),
            Err(DecodeError::Trailing {
                what: "pair",
                extra: 1
            })
        );
    }
}
