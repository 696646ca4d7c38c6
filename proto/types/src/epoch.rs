//! [`Epoch`]: which sharing of the master key a share, a key id or a registry entry
//! belongs to. Epoch 0 is the genesis DKG; each refresh or reshare makes the next.

use crate::codec::{Codec, DecodeError, Reader, Writer};

/// A key epoch. No invariant beyond being a number, so the field is public; the type
/// keeps epochs from being mixed up with heights, sizes or indices.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(transparent)]
pub struct Epoch(pub u64);

impl Epoch {
    /// The genesis epoch.
    pub const GENESIS: Self = Self(0);

    /// The epoch after this one (`None` at `u64::MAX`).
    pub fn next(self) -> Option<Self> {
        self.0.checked_add(1).map(Self)
    }
}

impl std::fmt::Display for Epoch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::str::FromStr for Epoch {
    type Err = std::num::ParseIntError;
    /// A decimal number (command lines, configs).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(Self)
    }
}

impl From<u64> for Epoch {
    fn from(e: u64) -> Self {
        Self(e)
    }
}

impl From<Epoch> for u64 {
    fn from(e: Epoch) -> Self {
        e.0
    }
}

impl Codec for Epoch {
    const NAME: &'static str = "epoch";
    type Error = DecodeError;
    /// Eight bytes, big-endian.
    fn encode(&self, w: &mut Writer) {
        w.u64(self.0);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.u64("epoch").map(Self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_order_count_and_encode_as_plain_numbers() {
        assert_eq!(Epoch::GENESIS.next(), Some(Epoch(1)));
        assert_eq!(Epoch(u64::MAX).next(), None);
        assert!(Epoch(1) < Epoch(2));
        assert_eq!(Epoch(7).to_bytes(), 7u64.to_be_bytes());
        assert_eq!(Epoch::from_bytes(&[0, 0, 0, 0, 0, 0, 1, 0]), Ok(Epoch(256)));
        assert_eq!(serde_json::to_string(&Epoch(3)).ok().as_deref(), Some("3"));
    }
}
