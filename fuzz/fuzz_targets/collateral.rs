//! Any bytes as a collateral bundle, TCB Info or QE Identity: a value or a typed error.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = attestation_service::Collateral::from_bundle_json(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = attestation_service::TcbInfo::parse(text);
        let _ = attestation_service::QeIdentity::parse(text);
    }
    let _ = attestation_service::pki::split_chain(data, "fuzz");
});
