//! A state-commitment proof from an untrusted bundle: refused or verified, never a
//! panic, and never verifying a false claim.
#![no_main]

include!("../checks/commit_proof.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| check(data));
