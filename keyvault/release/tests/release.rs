//! Attestation-gated release, end to end with real artefacts: a simulated SGX quote
//! binding the worker's runtime data, verified and appraised by the attestation
//! service's library, signed into an EAR token; the gatekeeper's check accepts exactly
//! the right requests and names the reason for each refusal.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;
use phalanx_dcap_sim::{SgxEnclave, TdxTd};
use phalanx_ear::EarError;
use phalanx_release::envelope::RecipientKey;
use phalanx_release::release::{Grant, Jwks, ReleaseError, ReleasePolicy, authorize};
use phalanx_release::tenant::TeeIdentity;

struct World {
    token: String,
    jwks: Jwks,
    runtime_data: Vec<u8>,
    hpke: Vec<u8>,
    policy: ReleasePolicy,
}

/// A token for an enclave `mr` under an attestation policy allowing `allowed`.
fn world_for(mr: [u8; 32], allowed: [u8; 32], trust_root: &'static str) -> World {
    let w = worker(mr, allowed, trust_root);
    World {
        token: w.token,
        jwks: w.jwks,
        runtime_data: w.runtime_data,
        hpke: w.hpke,
        policy: sim_policy(),
    }
}

fn check(
    w: &World,
    tenant: &str,
    now: i64,
) -> Result<phalanx_release::release::Authorized, ReleaseError> {
    authorize(
        &w.token,
        &w.jwks,
        &w.runtime_data,
        &w.hpke,
        &key_id(0, tenant),
        &w.policy,
        now,
    )
}

#[test]
fn a_genuine_worker_gets_its_own_namespace_only() {
    let mut w = world_for(MR, MR, "sim");
    let own = sgx_tenant(MR);
    let a = check(&w, &own, NOW + 10).unwrap();
    assert_eq!(
        (
            a.tee.as_str(),
            a.measurement.as_str(),
            a.tenant.to_string().as_str()
        ),
        ("sgx", hex::encode(MR).as_str(), own.as_str())
    );
    assert_eq!(a.worker.hpke_public_key, w.hpke);
    assert_eq!(a.token_expires, NOW + TTL);
    assert!(matches!(
        check(&w, "someone-else", NOW),
        Err(ReleaseError::KeyIdNotAllowed { .. })
    ));
    w.policy.grants.push(Grant {
        tenant: own.to_uppercase().parse().unwrap(),
        tenants: vec!["shared".into()],
    });
    check(&w, "shared", NOW).unwrap();
    assert!(check(&w, "someone-else", NOW).is_err());
}

#[test]
fn time_issuer_status_and_root_are_enforced() {
    let mut w = world_for(MR, MR, "sim");
    let own = sgx_tenant(MR);
    assert_eq!(
        check(&w, &own, NOW + TTL),
        Err(ReleaseError::Expired { exp: NOW + TTL })
    );
    assert_eq!(
        check(&w, &own, NOW - 61),
        Err(ReleaseError::NotYetValid { iat: NOW })
    );
    w.policy.max_token_age_secs = 30;
    assert_eq!(
        check(&w, &own, NOW + 31),
        Err(ReleaseError::TooOld {
            iat: NOW,
            max_age: 30
        })
    );
    w.policy.max_token_age_secs = 3600;
    w.policy.issuer = Some("https://elsewhere".into());
    assert!(matches!(
        check(&w, &own, NOW),
        Err(ReleaseError::WrongIssuer(_))
    ));
    w.policy.issuer = None;
    // Production policy: the simulated root is refused.
    w.policy.trust_roots = ReleasePolicy::default().trust_roots;
    assert_eq!(
        check(&w, &own, NOW),
        Err(ReleaseError::TrustRootNotAccepted("sim".into()))
    );
    // A contraindicated appraisal (the attestation policy allows another enclave).
    let other = world_for(MR, [7; 32], "sim");
    assert_eq!(
        check(&other, &own, NOW),
        Err(ReleaseError::StatusNotAccepted("contraindicated".into()))
    );
}

#[test]
fn forged_tokens_and_unbound_keys_are_refused() {
    let w = world_for(MR, MR, "sim");
    let own = sgx_tenant(MR);
    // A flipped payload character.
    let mut forged = w.token.clone().into_bytes();
    let dot = forged.iter().position(|&b| b == b'.').unwrap();
    forged[dot + 5] = if forged[dot + 5] == b'A' { b'B' } else { b'A' };
    let forged = World {
        token: String::from_utf8(forged).unwrap(),
        ..world_ref(&w)
    };
    assert!(matches!(
        check(&forged, &own, NOW),
        Err(ReleaseError::Token(EarError::BadSignature))
    ));
    // Signed by a key the gatekeeper does not pin.
    let stranger = world_for(MR, MR, "sim");
    let mixed = World {
        token: stranger.token.clone(),
        ..world_ref(&w)
    };
    assert!(matches!(
        check(&mixed, &own, NOW),
        Err(ReleaseError::Token(EarError::UnknownSigningKey(_)))
    ));
    // `alg: none`.
    let parts: Vec<&str> = w.token.split('.').collect();
    let none = World {
        token: format!("eyJhbGciOiJub25lIn0.{}.", parts[1]),
        ..world_ref(&w)
    };
    assert!(matches!(
        check(&none, &own, NOW),
        Err(ReleaseError::Token(EarError::NotEs256(_)))
    ));
    // Runtime data other than the attested one.
    let mut rd = w.runtime_data.clone();
    let last = rd.len() - 1;
    rd[last] ^= 1;
    let other_rd = World {
        runtime_data: rd,
        ..world_ref(&w)
    };
    assert_eq!(
        check(&other_rd, &own, NOW),
        Err(ReleaseError::RuntimeDataMismatch)
    );
    // An HPKE key the attested runtime data does not name.
    let other_key = World {
        hpke: RecipientKey::generate(&mut rand::rng()).public_bytes(),
        ..world_ref(&w)
    };
    assert_eq!(
        check(&other_key, &own, NOW),
        Err(ReleaseError::HpkeKeyNotBound)
    );
}

fn world_ref(w: &World) -> World {
    World {
        token: w.token.clone(),
        jwks: w.jwks.clone(),
        runtime_data: w.runtime_data.clone(),
        hpke: w.hpke.clone(),
        policy: w.policy.clone(),
    }
}

/// A TD with firmware `mr_td` and RTMR0 `rtmr0`, appraised under a policy that pins
/// only MRTD (as the shipped `sim-demo` policy does).
fn td_world(mr_td: [u8; 48], rtmr0: u8) -> (World, TdxTd) {
    td_world_with(mr_td, rtmr0, phalanx_dcap_sim::SIM_TD_ATTRIBUTES)
}

/// [`td_world`] launched with `td_attributes`.
fn td_world_with(mr_td: [u8; 48], rtmr0: u8, td_attributes: [u8; 8]) -> (World, TdxTd) {
    let mut rtmr = [[0u8; 48]; 4];
    rtmr[0] = [rtmr0; 48];
    let td = TdxTd {
        mr_td,
        rtmr,
        td_attributes,
        ..TdxTd::default()
    };
    let w = attested(
        &Evidence::Tdx(td.clone()),
        &format!(
            "id = \"app\"\nversion = 1\n[[tdx]]\nmr_td = \"{}\"\n",
            hex::encode(mr_td)
        ),
        "sim",
    );
    let world = World {
        token: w.token,
        jwks: w.jwks,
        runtime_data: w.runtime_data,
        hpke: w.hpke,
        policy: sim_policy(),
    };
    (world, td)
}

fn td_tenant(td: &TdxTd) -> String {
    TeeIdentity::Tdx {
        mr_td: td.mr_td,
        rtmr: td.rtmr,
        mr_config_id: td.mr_config_id,
        mr_owner: [0; 48],
        mr_owner_config: [0; 48],
        td_attributes: td.td_attributes,
        xfam: phalanx_dcap_sim::SIM_XFAM,
    }
    .tenant_id()
    .to_string()
}

/// C2: two TDs on the same firmware (same MRTD) running different kernels or
/// applications (RTMR0 differs) are different tenants and cannot derive each other's
/// keys — neither under the other's tenant nor under the bare MRTD.
#[test]
fn attack_c2_tds_sharing_firmware_cannot_take_each_others_keys() {
    let firmware = [0x77; 48];
    let (a, td_a) = td_world(firmware, 1);
    let (b, td_b) = td_world(firmware, 2);
    let (tenant_a, tenant_b) = (td_tenant(&td_a), td_tenant(&td_b));
    assert_ne!(tenant_a, tenant_b);
    // The firmware measurement alone names nobody.
    assert!(matches!(
        check(&b, &hex::encode(firmware), NOW),
        Err(ReleaseError::KeyIdNotAllowed { .. })
    ));
    assert!(matches!(
        check(&b, &tenant_a, NOW),
        Err(ReleaseError::KeyIdNotAllowed { .. })
    ));
    assert!(matches!(
        check(&a, &tenant_b, NOW),
        Err(ReleaseError::KeyIdNotAllowed { .. })
    ));
    assert_eq!(
        check(&a, &tenant_a, NOW).unwrap().tenant.to_string(),
        tenant_a
    );
    assert_eq!(
        check(&b, &tenant_b, NOW).unwrap().tenant.to_string(),
        tenant_b
    );
}

/// NM7: the same TD image launched without `SEPT_VE_DISABLE` (EPT violations handed
/// to the guest, a known attack surface) is another tenant: it cannot derive the
/// hardened launch's keys.
#[test]
fn attack_nm7_td_attributes_are_part_of_the_tenant() {
    let firmware = [0x78; 48];
    let (hardened, td_h) = td_world(firmware, 1);
    let (loose, td_l) = td_world_with(firmware, 1, [0; 8]);
    let (tenant_h, tenant_l) = (td_tenant(&td_h), td_tenant(&td_l));
    assert_ne!(tenant_h, tenant_l);
    assert!(matches!(
        check(&loose, &tenant_h, NOW),
        Err(ReleaseError::KeyIdNotAllowed { .. })
    ));
    assert_eq!(
        check(&loose, &tenant_l, NOW).unwrap().tenant.to_string(),
        tenant_l
    );
    assert_eq!(
        check(&hardened, &tenant_h, NOW).unwrap().tenant.to_string(),
        tenant_h
    );
}

/// H1: the gatekeeper, not the worker, decides which attestation policy counts: a token
/// appraised under a policy the gatekeeper does not name is refused, however
/// `affirming` it is.
#[test]
fn attack_h1_a_weaker_attestation_policy_does_not_open_the_vault() {
    let lax = attested(
        &Evidence::Sgx(SgxEnclave {
            mr_enclave: MR,
            ..SgxEnclave::default()
        }),
        &format!(
            "id = \"lax-dev\"\nversion = 1\naccepted_tcb_statuses = [\"UpToDate\", \"OutOfDate\"]\n[[sgx]]\nmr_enclave = \"{}\"\n",
            hex::encode(MR)
        ),
        "sim",
    );
    let w = World {
        token: lax.token,
        jwks: lax.jwks,
        runtime_data: lax.runtime_data,
        hpke: lax.hpke,
        policy: sim_policy(),
    };
    assert_eq!(
        check(&w, &sgx_tenant(MR), NOW),
        Err(ReleaseError::PolicyNotAccepted("lax-dev".into()))
    );
    // Named by the gatekeeper, it is accepted.
    let mut named = world_ref(&w);
    named.policy.attestation_policies.push("lax-dev".into());
    check(&named, &sgx_tenant(MR), NOW).unwrap();
    // A gatekeeper that names no policy releases nothing.
    let mut none = world_ref(&w);
    none.policy.attestation_policies.clear();
    assert_eq!(
        check(&none, &sgx_tenant(MR), NOW),
        Err(ReleaseError::PolicyNotAccepted("lax-dev".into()))
    );
}

/// H1: a debug enclave (same MRENCLAVE, memory readable by the host) gets nothing, even
/// under an accepted policy that lets debug enclaves through with `affirming`.
#[test]
fn attack_h1_debug_enclaves_are_refused_whatever_the_appraisal() {
    let dbg = debug_worker(MR);
    let w = World {
        token: dbg.token,
        jwks: dbg.jwks,
        runtime_data: dbg.runtime_data,
        hpke: dbg.hpke,
        policy: sim_policy(),
    };
    assert_eq!(check(&w, &sgx_tenant(MR), NOW), Err(ReleaseError::DebugTee));
    // Same for a debug TD.
    let td = TdxTd {
        mr_td: [5; 48],
        debug: true,
        ..TdxTd::default()
    };
    let dbg_td = attested(
        &Evidence::Tdx(td.clone()),
        &format!(
            "id = \"app\"\nversion = 1\ndangerous_allow_debug = true\n[[tdx]]\nmr_td = \"{}\"\n",
            hex::encode([5u8; 48])
        ),
        "sim",
    );
    let w = World {
        token: dbg_td.token,
        jwks: dbg_td.jwks,
        runtime_data: dbg_td.runtime_data,
        hpke: dbg_td.hpke,
        policy: sim_policy(),
    };
    assert_eq!(check(&w, &td_tenant(&td), NOW), Err(ReleaseError::DebugTee));
}

#[test]
fn contract_keys_go_only_to_listed_runtimes_and_only_under_exact_contract_key_ids() {
    use phalanx_release::release::{contract_key_id, contract_of};
    use phalanx_types::Epoch;
    let mut w = world_for(MR, MR, "sim");
    let contract = [0x7c; 32];
    let id = contract_key_id(Epoch(0), &contract);
    assert_eq!(contract_of(&id), Some(contract));
    let ask = |w: &World, id: &phalanx_threshold::derive::KeyId| {
        authorize(
            &w.token,
            &w.jwks,
            &w.runtime_data,
            &w.hpke,
            id,
            &w.policy,
            NOW,
        )
    };
    // Not a listed runtime: refused.
    assert!(matches!(
        ask(&w, &id),
        Err(ReleaseError::KeyIdNotAllowed { .. })
    ));
    // Any tenant when the registry decides (the server checks the worker's standing).
    w.policy.contract_runtimes_from_registry = true;
    assert_eq!(ask(&w, &id).unwrap().contract, Some(contract));
    w.policy.contract_runtimes_from_registry = false;
    w.policy
        .contract_runtimes
        .push(sgx_tenant(MR).parse().unwrap());
    let a = ask(&w, &id).unwrap();
    assert_eq!(
        a.contract,
        Some(contract),
        "the server checks it on the registry"
    );
    // Anything but the exact contract key id (another path, purpose or tenant) is not
    // a contract key, and a runtime gets no other tenant by being listed.
    for bad in [
        phalanx_threshold::derive::KeyId {
            path: hex::encode([0x7d; 32]),
            ..id.clone()
        },
        phalanx_threshold::derive::KeyId {
            purpose: "aes".into(),
            ..id.clone()
        },
        phalanx_threshold::derive::KeyId {
            path: hex::encode(contract).to_uppercase(),
            ..id.clone()
        },
    ] {
        assert_eq!(contract_of(&bad), None);
        assert!(matches!(
            ask(&w, &bad),
            Err(ReleaseError::KeyIdNotAllowed { .. })
        ));
    }
    // The worker's own tenant still works, and is not a contract key.
    assert_eq!(check(&w, &sgx_tenant(MR), NOW).unwrap().contract, None);
}
