//! Registrations from the simulated Intel PKI (feature `sim`, for the devnet and tests
//! only): a quote of a simulated SGX enclave whose report data binds a worker's keys and
//! the registry, with the simulated collateral, exactly as a worker on hardware sends
//! them. The registry accepts them only when its genesis names the simulated root.

use crate::types::{Evidence, EvidenceRule, Registration, public_key};
use phalanx_dcap_sim::{SgxEnclave, SimTee};
use phalanx_ear::runtime::WorkerRuntimeData;

/// The evidence rule of a chain that trusts `sim`'s root (and nothing else).
pub fn evidence_rule(sim: &SimTee) -> EvidenceRule {
    EvidenceRule::with_roots(
        phalanx_dcap::pki::split_chain(sim.root_pem().as_bytes(), "sim root").unwrap_or_default(),
    )
}

/// The tenant id of a simulated enclave (no KSS).
pub fn tenant(enclave: &SgxEnclave) -> [u8; 32] {
    phalanx_ear::tenant::TeeIdentity::Sgx {
        mr_enclave: enclave.mr_enclave,
        kss: None,
    }
    .digest()
}

/// A registration of `identity` with `hpke_key` on the registry `chain_id`, attested by
/// `enclave` on `sim`'s platform (nonce: random).
pub fn registration(
    sim: &SimTee,
    enclave: &SgxEnclave,
    identity: &p256::ecdsa::SigningKey,
    hpke_key: Vec<u8>,
    chain_id: [u8; 32],
) -> Result<Registration, phalanx_dcap_sim::SimError> {
    let identity_key = public_key(identity.verifying_key());
    let runtime_data = WorkerRuntimeData {
        identity_key: identity_key.clone(),
        hpke_public_key: hpke_key.clone(),
        registry: chain_id,
    }
    .encode();
    let nonce: [u8; 16] = rand::random();
    let quote = sim.sgx_quote(enclave, &phalanx_ear::report_data(&nonce, &runtime_data))?;
    let collateral = sim.collateral(phalanx_dcap::TeeType::Sgx)?;
    Ok(Registration {
        identity_key,
        hpke_key,
        measurement: tenant(enclave).to_vec(),
        attestation_hash: [0; 32],
        evidence: Evidence {
            quote,
            collateral: collateral.to_bundle_json().into_bytes(),
            nonce: nonce.to_vec(),
            runtime_data,
        },
    })
}

/// A simulated platform, `UpToDate`, its collateral valid for 30 days from `valid_from`.
pub fn platform(valid_from: i64) -> Result<SimTee, phalanx_dcap_sim::SimError> {
    SimTee::generate(phalanx_dcap_sim::SimConfig::up_to_date(valid_from))
}

/// A production (non-debug) simulated enclave with this MRENCLAVE.
pub fn enclave(mr_enclave: [u8; 32]) -> SgxEnclave {
    SgxEnclave {
        mr_enclave,
        ..SgxEnclave::default()
    }
}
