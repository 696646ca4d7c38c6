//! The keyvault's strict codec, as peers, workers and the registry feed it: round
//! specs, commit certificates, public key sets, worker runtime data and partial
//! evaluations. Any bytes decode or give a typed error; canonical encodings round-trip.
#![no_main]

include!("../checks/keyvault_wire.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| check(data));
