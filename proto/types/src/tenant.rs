//! [`TenantId`]: the name a worker's keys are derived under, computed from its whole TEE
//! identity (`phalanx-release`'s `TeeIdentity` is the one derivation). The registry lists
//! it as the worker's measurement; key ids carry it as lower-case hex.

use crate::hex::Hex;

/// A tenant id: 32 bytes, shown and parsed as 64 lower-case hex characters.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct TenantId(pub Hex<32>);

impl TenantId {
    /// A tenant id from its digest.
    pub fn new(digest: [u8; 32]) -> Self {
        Self(Hex(digest))
    }

    /// The 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0.0
    }
}

impl std::fmt::Display for TenantId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex::encode(self.as_bytes()))
    }
}

impl std::str::FromStr for TenantId {
    type Err = hex::FromHexError;
    /// Exactly 64 hex characters (either case; no `0x`). Key ids name tenants in
    /// lower case ([`TenantId`]'s `Display`), and only that spelling is the tenant's own.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out)?;
        Ok(Self::new(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenants_are_64_hex_characters_either_case() {
        let t = TenantId::new([0xab; 32]);
        let text = t.to_string();
        assert_eq!(text.len(), 64);
        assert_eq!(text.parse::<TenantId>(), Ok(t));
        assert_eq!(text.to_uppercase().parse::<TenantId>(), Ok(t));
        assert!("ab".parse::<TenantId>().is_err());
        assert!(format!("0x{text}").parse::<TenantId>().is_err());
        assert!("zz".repeat(32).parse::<TenantId>().is_err());
        assert_eq!(
            serde_json::to_value(t).ok(),
            Some(serde_json::Value::String(text))
        );
    }
}
