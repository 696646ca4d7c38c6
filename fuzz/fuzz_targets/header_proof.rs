//! A bundle's registry part (header proof and fact values) from an untrusted bundle:
//! refused or checked, never a panic.
#![no_main]

include!("../checks/header_proof.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| check(data));
