//! What the runtime's tests share: modules from WebAssembly text, a call of a fixed
//! caller and height, and stand-in keys.
#![allow(clippy::unwrap_used, dead_code)]

use phalanx_contract::{Call, Curve, Entry, Env};

/// The module `text` (WebAssembly text) assembles to.
pub fn wasm(text: &str) -> Vec<u8> {
    wat::parse_str(text).unwrap()
}

/// A call of `entry` on `input`, from caller `[7; 32]` at height 42, with no keys.
pub fn call(entry: Entry, input: &[u8]) -> Call<'_> {
    Call {
        env: None,
        entry,
        input,
        caller: [7; 32],
        height: 42,
    }
}

/// Stand-in keys: commands sign with a fixed pattern and draw counted bytes (the
/// worker's real ones are `pruntime::env`'s, tested there).
pub struct FakeKeys;

impl Env for FakeKeys {
    fn sign(&self, message: &[u8]) -> Option<(u64, [u8; 64])> {
        Some((7, [message.len() as u8; 64]))
    }
    fn derived_public(&self, _: Curve, _: &[u8]) -> Option<[u8; 65]> {
        Some([4; 65])
    }
    fn derived_sign(&self, _: Curve, _: &[u8], _: &[u8; 32]) -> Option<Vec<u8>> {
        Some(vec![1; 64])
    }
    fn random(&self, draw: u64) -> Option<[u8; 32]> {
        Some([draw as u8; 32])
    }
}
