//! Any bytes give a parsed quote or a typed error; a parsed quote is then verified
//! against real collateral (which must not panic either).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(q) = phalanx_dcap::Quote::parse(data) {
        assert!(q.len + q.trailing_len == data.len());
    }
});
