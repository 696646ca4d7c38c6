//! The Confidential Containers initdata parser a TD worker runs on a document its host
//! mounts: any bytes are refused with a named error (or parsed), never a panic.
#![no_main]

include!("../checks/initdata.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| check(data));
