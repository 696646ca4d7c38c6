//! Hex in JSON: one helper for every fixed-size byte string Phalanx writes as text
//! (measurements, report data, FMSPC, keys).

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// `N` bytes, written as `2N` lower-case hex digits; read from hex of exactly that
/// length, with or without a `0x` prefix, either case.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Hex<const N: usize>(pub [u8; N]);

impl<const N: usize> Hex<N> {
    /// Parses `2N` hex digits (a `0x` prefix is allowed).
    pub fn parse(text: &str) -> Result<Self, HexError> {
        let digits = text.strip_prefix("0x").unwrap_or(text);
        let bytes = ::hex::decode(digits).map_err(|_| HexError::NotHex)?;
        let len = bytes.len();
        bytes
            .try_into()
            .map(Self)
            .map_err(|_| HexError::Length { got: len, want: N })
    }
}

impl<const N: usize> std::fmt::Debug for Hex<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&::hex::encode(self.0))
    }
}

impl<const N: usize> std::fmt::Display for Hex<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&::hex::encode(self.0))
    }
}

impl<const N: usize> From<[u8; N]> for Hex<N> {
    fn from(v: [u8; N]) -> Self {
        Self(v)
    }
}

/// Why a string is not the hex expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HexError {
    /// Not hex digits (or an odd number of them).
    NotHex,
    /// The wrong number of bytes.
    Length {
        /// Bytes found.
        got: usize,
        /// Bytes expected.
        want: usize,
    },
}

impl std::fmt::Display for HexError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HexError::NotHex => f.write_str("not hex"),
            HexError::Length { got, want } => write!(f, "{got} bytes, expected {want}"),
        }
    }
}

impl std::error::Error for HexError {}

impl<const N: usize> Serialize for Hex<N> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&::hex::encode(self.0))
    }
}

impl<'de, const N: usize> Deserialize<'de> for Hex<N> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_wrong_lengths() {
        let h = Hex([0xab, 0x01, 0xff]);
        let json = serde_json::to_string(&h).unwrap_or_default();
        assert_eq!(json, "\"ab01ff\"");
        assert_eq!(serde_json::from_str::<Hex<3>>(&json).ok(), Some(h));
        assert_eq!(Hex::<3>::parse("0xAB01FF"), Ok(h));
        assert_eq!(
            Hex::<3>::parse("ab01"),
            Err(HexError::Length { got: 2, want: 3 })
        );
        assert_eq!(Hex::<3>::parse("ab01f"), Err(HexError::NotHex));
        assert!(serde_json::from_str::<Hex<48>>("\"zz\"").is_err());
    }
}
