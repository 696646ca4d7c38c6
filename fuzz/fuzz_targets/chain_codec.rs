//! The registry's transactions and blocks, as a light client reads them off the
//! network: any bytes decode or give a typed error, and what decodes re-encodes to the
//! same bytes (one encoding per value, so hashes and signatures are unambiguous).
#![no_main]

include!("../checks/chain_codec.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| check(data));
