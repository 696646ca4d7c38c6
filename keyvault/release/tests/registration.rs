//! A registration backed by evidence: the token whose hash the registry holds, verified
//! under the service's keys, binding the registered identity and HPKE keys and hashing to
//! the registered measurement. Each way a registration can lack evidence is named.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;
use phalanx_release::release::{
    Registered, ReleaseError, ReleasePolicy, WorkerRuntimeData, check_registration,
};
use phalanx_release::tenant::TeeIdentity;
use sha2::Digest as _;

struct Record {
    identity_key: Vec<u8>,
    hpke_key: Vec<u8>,
    measurement: Vec<u8>,
    attestation_hash: [u8; 32],
    registry: [u8; 32],
}

impl Record {
    fn of(w: &Worker, mr: [u8; 32]) -> Self {
        let rd = WorkerRuntimeData::decode(&w.runtime_data).unwrap();
        Self {
            identity_key: rd.identity_key,
            hpke_key: rd.hpke_public_key,
            measurement: TeeIdentity::Sgx {
                mr_enclave: mr,
                kss: None,
            }
            .digest()
            .to_vec(),
            attestation_hash: sha2::Sha256::digest(w.token.as_bytes()).into(),
            registry: rd.registry,
        }
    }
    fn view(&self) -> Registered<'_> {
        Registered {
            identity_key: &self.identity_key,
            hpke_key: &self.hpke_key,
            measurement: &self.measurement,
            attestation_hash: &self.attestation_hash,
            registry: &self.registry,
        }
    }
}

fn check(w: &Worker, r: &Record, policy: &ReleasePolicy) -> Result<String, ReleaseError> {
    check_registration(&w.token, &w.jwks, r.view(), policy).map(|(tee, m)| format!("{tee:?}:{m}"))
}

#[test]
fn a_registration_with_its_own_evidence_is_accepted() {
    let w = worker(MR, MR, "sim");
    let r = Record::of(&w, MR);
    assert_eq!(
        check(&w, &r, &sim_policy()).unwrap(),
        format!("Sgx:{}", hex::encode(MR))
    );
}

/// NM4: a gatekeeper's registration counts only if its token was appraised under a
/// policy that pins gatekeepers, not under whatever policy (`app`, here, which
/// accepts other code) the attestation service also runs.
#[test]
fn attack_nm4_a_registration_appraised_under_another_policy_is_refused() {
    let w = worker(MR, MR, "sim");
    let r = Record::of(&w, MR);
    let policy = ReleasePolicy {
        gatekeeper_policies: vec!["gatekeeper".into()],
        ..sim_policy()
    };
    assert!(matches!(
        check(&w, &r, &policy),
        Err(ReleaseError::PolicyNotAccepted(p)) if p == "app"
    ));
    // By default only `gatekeeper` counts.
    assert_eq!(ReleasePolicy::default().gatekeeper_policies, ["gatekeeper"]);
}

#[test]
fn every_gap_in_the_evidence_is_named() {
    let w = worker(MR, MR, "sim");
    let policy = sim_policy();
    // Another token than the registered one (even a genuine one of another worker).
    let other = worker(MR, MR, "sim");
    let r = Record::of(&w, MR);
    assert!(matches!(
        check_registration(&other.token, &other.jwks, r.view(), &policy),
        Err(ReleaseError::NotRegisteredToken)
    ));
    // A token under keys the checker does not trust.
    assert!(matches!(
        check_registration(&w.token, &other.jwks, r.view(), &policy),
        Err(ReleaseError::Token(_))
    ));
    // Registered with another identity key or HPKE key than the quote bound.
    let mut r = Record::of(&w, MR);
    r.identity_key = Record::of(&other, MR).identity_key;
    assert!(matches!(
        check(&w, &r, &policy),
        Err(ReleaseError::RuntimeDataMismatch)
    ));
    let mut r = Record::of(&w, MR);
    r.hpke_key.clear();
    assert!(matches!(
        check(&w, &r, &policy),
        Err(ReleaseError::RuntimeDataMismatch)
    ));
    // Registered under another measurement than the TEE's.
    let r = Record::of(&w, [0x43; 32]);
    assert!(matches!(
        check(&w, &r, &policy),
        Err(ReleaseError::MeasurementNotRegistered { .. })
    ));
    // The simulated root outside dev mode (Intel's only, the default).
    let r = Record::of(&w, MR);
    assert!(matches!(
        check(&w, &r, &ReleasePolicy::default()),
        Err(ReleaseError::TrustRootNotAccepted(_))
    ));
    // Not affirmed: the attestation policy did not allow this enclave.
    let w = worker(MR, [0x43; 32], "sim");
    let r = Record::of(&w, MR);
    assert!(matches!(
        check(&w, &r, &policy),
        Err(ReleaseError::StatusNotAccepted(_))
    ));
}

#[test]
fn a_debug_enclave_is_no_evidence() {
    let w = debug_worker(MR);
    let r = Record::of(&w, MR);
    assert!(matches!(
        check(&w, &r, &sim_policy()),
        Err(ReleaseError::DebugTee)
    ));
}
