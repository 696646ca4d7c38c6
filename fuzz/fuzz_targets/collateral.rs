//! Any bytes as a collateral bundle, TCB Info or QE Identity: a value or a typed error.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = phalanx_dcap::Collateral::from_bundle_json(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = phalanx_dcap::TcbInfo::parse(text);
        let _ = phalanx_dcap::QeIdentity::parse(text);
    }
    let _ = phalanx_dcap::pki::split_chain(data, "fuzz");
});
