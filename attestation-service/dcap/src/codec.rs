//! The one byte-level reader every binary parser in this crate goes through.
//!
//! A [`Reader`] is a cursor over a borrowed slice. Every read is bounds-checked and
//! returns a [`Truncated`] error naming the field that did not fit, so no parser can
//! index past the end of its input or panic on malformed data.

/// A field did not fit in what was left of the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("truncated: {field} needs {need} bytes, {have} left")]
pub struct Truncated {
    /// The field being read.
    pub field: &'static str,
    /// Bytes the field needs.
    pub need: usize,
    /// Bytes that were left.
    pub have: usize,
}

/// A bounds-checked little-endian cursor.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Bytes not yet consumed.
    pub fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or_default()
    }

    /// Takes the next `n` bytes.
    pub fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], Truncated> {
        let rest = self.rest();
        let out = rest.get(..n).ok_or(Truncated {
            field,
            need: n,
            have: rest.len(),
        })?;
        self.pos += n;
        Ok(out)
    }

    /// Takes the next `N` bytes as an array.
    pub fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], Truncated> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, field)?);
        Ok(out)
    }

    /// Takes the next `n` bytes as a sub-reader.
    pub fn sub(&mut self, n: usize, field: &'static str) -> Result<Reader<'a>, Truncated> {
        self.take(n, field).map(Reader::new)
    }

    /// A little-endian `u16`.
    pub fn u16(&mut self, field: &'static str) -> Result<u16, Truncated> {
        self.array::<2>(field).map(u16::from_le_bytes)
    }

    /// A little-endian `u32`.
    pub fn u32(&mut self, field: &'static str) -> Result<u32, Truncated> {
        self.array::<4>(field).map(u32::from_le_bytes)
    }

    /// A little-endian `u64`.
    pub fn u64(&mut self, field: &'static str) -> Result<u64, Truncated> {
        self.array::<8>(field).map(u64::from_le_bytes)
    }

    /// Whether every byte has been consumed.
    pub fn is_empty(&self) -> bool {
        self.rest().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_in_order_and_reports_truncation() {
        let mut r = Reader::new(&[1, 0, 2, 0, 0, 0, 9]);
        assert_eq!(r.u16("a"), Ok(1));
        assert_eq!(r.u32("b"), Ok(2));
        assert_eq!(
            r.u16("c"),
            Err(Truncated {
                field: "c",
                need: 2,
                have: 1
            })
        );
        // A failed read consumes nothing.
        assert_eq!(r.rest(), &[9]);
        assert_eq!(
            r.take(usize::MAX, "huge").map(|_| ()),
            Err(Truncated {
                field: "huge",
                need: usize::MAX,
                have: 1
            })
        );
    }
}
