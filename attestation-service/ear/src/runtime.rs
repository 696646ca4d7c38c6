//! The runtime data a worker (or a gatekeeper) binds into its quote, through
//! [`crate::report_data`]: its identity key, the HPKE key that key releases are sealed
//! to, and the registry it registers on.
//!
//! ```text
//! runtime data = "phalanx/v1/worker-runtime-data"
//!                ‖ u16 len ‖ identity key (SEC1)
//!                ‖ u16 len ‖ HPKE key (SEC1 uncompressed, or empty)
//!                ‖ registry (32: the registry's chain id, the hash of its genesis;
//!                  zeros when the process serves no registry)
//! ```
//!
//! The registry field makes a registration unreplayable on another registry: the
//! registry checks that the quote names *its* chain id before it lists the worker.
//! Decoding is strict (one codec, bounded keys, no trailing bytes) and never panics.

use phalanx_types::codec::{Codec, DecodeError, Reader, Writer};

/// Longest key accepted (an uncompressed SEC1 P-521 point; ours are 33 and 65 bytes).
const MAX_KEY: usize = 133;

/// What a worker binds into its quote (see the module doc for the encoding).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerRuntimeData {
    /// The worker's identity (output-signing) key, SEC1.
    pub identity_key: Vec<u8>,
    /// The worker's HPKE public key, SEC1 uncompressed (empty for a gatekeeper).
    pub hpke_public_key: Vec<u8>,
    /// The chain id of the registry the worker registers on (zeros: none).
    pub registry: [u8; 32],
}

impl Codec for WorkerRuntimeData {
    const NAME: &'static str = "worker runtime data";
    type Error = DecodeError;

    fn encode(&self, w: &mut Writer) {
        w.raw(phalanx_types::tag::WORKER_RUNTIME_DATA);
        for part in [&self.identity_key, &self.hpke_public_key] {
            w.u16(part.len() as u16);
            w.raw(part);
        }
        w.raw(&self.registry);
    }

    /// Strict: the tag, two length-prefixed keys of at most 133 bytes each, the
    /// registry's 32 bytes.
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let tag = phalanx_types::tag::WORKER_RUNTIME_DATA;
        if r.take(tag.len(), "tag")? != tag {
            return Err(r.invalid("tag"));
        }
        let mut key = |field| -> Result<Vec<u8>, DecodeError> {
            let len = usize::from(r.u16(field)?);
            if len > MAX_KEY {
                return Err(DecodeError::TooLong {
                    what: Self::NAME,
                    field,
                    len,
                    max: MAX_KEY,
                });
            }
            Ok(r.take(len, field)?.to_vec())
        };
        let identity_key = key("identity key")?;
        let hpke_public_key = key("HPKE public key")?;
        Ok(Self {
            identity_key,
            hpke_public_key,
            registry: r.array("registry")?,
        })
    }
}

impl WorkerRuntimeData {
    /// The canonical encoding ([`Codec`]).
    pub fn encode(&self) -> Vec<u8> {
        self.to_bytes()
    }

    /// Strict decoding of exactly one [`WorkerRuntimeData`].
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        Self::from_bytes(bytes)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn sample() -> WorkerRuntimeData {
        WorkerRuntimeData {
            identity_key: vec![2; 33],
            hpke_public_key: vec![4; 65],
            registry: [7; 32],
        }
    }

    #[test]
    fn round_trips_and_refuses_every_truncation_and_trailing_byte() {
        let b = sample().encode();
        assert_eq!(WorkerRuntimeData::decode(&b).unwrap(), sample());
        for n in 0..b.len() {
            assert!(WorkerRuntimeData::decode(&b[..n]).is_err(), "prefix {n}");
        }
        let mut long = b.clone();
        long.push(0);
        assert!(WorkerRuntimeData::decode(&long).is_err());
        let mut other = sample();
        other.registry[0] ^= 1;
        assert_ne!(other.encode(), b, "the registry is bound");
    }

    #[test]
    fn refuses_oversized_keys_and_a_wrong_tag() {
        let mut big = sample();
        big.identity_key = vec![2; MAX_KEY + 1];
        assert!(WorkerRuntimeData::decode(&big.encode()).is_err());
        let mut b = sample().encode();
        b[0] ^= 1;
        assert!(WorkerRuntimeData::decode(&b).is_err());
    }
}
