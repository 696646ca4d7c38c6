//! The attestation token and JWKS parsers a gatekeeper runs on unauthenticated input:
//! any text is refused with a typed error (or, for a JWKS, parsed), never a panic.
#![no_main]

include!("../checks/release_token.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| check(data));
