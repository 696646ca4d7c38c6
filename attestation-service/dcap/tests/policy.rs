//! Policy: one test per rule, on quotes from the simulated TEE.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use phalanx_dcap::policy::{Appraisal, Policy, Reason, appraise};
use phalanx_dcap::{TcbStatus, TeeType, VerifiedQuote, verify};
use phalanx_dcap_sim::{SgxEnclave, SimConfig, SimTcbLevel, SimTee, TdxTd};

const T0: i64 = 1_760_000_000;
const DAY: i64 = 86_400;

fn enclave() -> SgxEnclave {
    SgxEnclave {
        mr_enclave: [0xaa; 32],
        mr_signer: [0xbb; 32],
        isv_prod_id: 3,
        isv_svn: 5,
        debug: false,
    }
}

fn sgx(sim: &SimTee, e: &SgxEnclave, now: i64) -> VerifiedQuote {
    let q = sim.sgx_quote(e, &[0; 64]).unwrap();
    verify(
        &q,
        &sim.collateral(TeeType::Sgx).unwrap(),
        now,
        &sim.trust_anchors(),
    )
    .unwrap()
}

fn policy(extra: &str) -> Policy {
    Policy::from_toml(&format!(
        "id = \"app\"\nversion = 1\n{extra}\n[[sgx]]\nmr_enclave = \"{}\"\n",
        hex::encode([0xaa; 32])
    ))
    .unwrap()
}

#[test]
fn allowed_measurements_affirm_and_others_are_refused() {
    let sim = SimTee::generate(SimConfig::up_to_date(T0)).unwrap();
    let v = appraise(&policy(""), &sgx(&sim, &enclave(), T0 + 60), T0 + 60);
    assert_eq!(
        (v.status, v.reasons.as_slice()),
        (Appraisal::Affirming, &[][..])
    );
    let other = SgxEnclave {
        mr_enclave: [1; 32],
        ..enclave()
    };
    let v = appraise(&policy(""), &sgx(&sim, &other, T0 + 60), T0 + 60);
    assert_eq!(
        (v.status, v.reasons),
        (
            Appraisal::Contraindicated,
            vec![Reason::MeasurementNotAllowed]
        )
    );
}

#[test]
fn mrsigner_rules_check_product_and_minimum_svn() {
    let sim = SimTee::generate(SimConfig::up_to_date(T0)).unwrap();
    let p = |min: u16| {
        Policy::from_json(&format!(
            r#"{{"id":"s","version":2,"sgx":[{{"mr_signer":"{}","isv_prod_id":3,"min_isv_svn":{min}}}]}}"#,
            hex::encode([0xbb; 32])
        ))
        .unwrap()
    };
    let q = sgx(&sim, &enclave(), T0 + 60);
    assert_eq!(appraise(&p(5), &q, T0 + 60).status, Appraisal::Affirming);
    assert_eq!(
        appraise(&p(6), &q, T0 + 60).reasons,
        vec![Reason::MeasurementNotAllowed]
    );
}

#[test]
fn tdx_rules_check_mrtd_and_given_rtmrs() {
    let sim = SimTee::generate(SimConfig::up_to_date(T0)).unwrap();
    let mut td = TdxTd {
        mr_td: [0x11; 48],
        ..TdxTd::default()
    };
    td.rtmr[2] = [0x22; 48];
    let q = sim.tdx_quote(&td, &[0; 64]).unwrap();
    let v = verify(
        &q,
        &sim.collateral(TeeType::Tdx).unwrap(),
        T0 + 60,
        &sim.trust_anchors(),
    )
    .unwrap();
    let p = |rtmr2: u8| {
        Policy::from_toml(&format!(
            "id = \"td\"\nversion = 1\n[[tdx]]\nmr_td = \"{}\"\nrtmr = [\"{}\", \"{}\", \"{}\", \"{}\"]\n",
            hex::encode([0x11; 48]),
            hex::encode([0; 48]),
            hex::encode([0; 48]),
            hex::encode([rtmr2; 48]),
            hex::encode([0; 48]),
        ))
        .unwrap()
    };
    assert_eq!(appraise(&p(0x22), &v, T0 + 60).status, Appraisal::Affirming);
    assert_eq!(
        appraise(&p(0x23), &v, T0 + 60).reasons,
        vec![Reason::MeasurementNotAllowed]
    );
    // An SGX-only policy refuses any TD.
    assert_eq!(
        appraise(&policy(""), &v, T0 + 60).reasons,
        vec![Reason::MeasurementNotAllowed]
    );
}

#[test]
fn statuses_and_advisories() {
    let sim = SimTee::generate(SimConfig::with_status(T0, TcbStatus::SWHardeningNeeded)).unwrap();
    let q = sgx(&sim, &enclave(), T0 + 60);
    let v = appraise(&policy(""), &q, T0 + 60);
    assert_eq!(v.status, Appraisal::Contraindicated);
    assert_eq!(
        v.reasons,
        vec![
            Reason::TcbStatusNotAccepted {
                status: TcbStatus::SWHardeningNeeded
            },
            Reason::AdvisoryNotAllowed {
                id: "INTEL-SA-00999".into()
            },
        ]
    );
    let lenient = policy(
        "accepted_tcb_statuses = [\"UpToDate\", \"SWHardeningNeeded\"]\nallowed_advisories = [\"INTEL-SA-00999\"]",
    );
    let v = appraise(&lenient, &q, T0 + 60);
    assert_eq!(v.status, Appraisal::Warning);
    assert_eq!(
        v.reasons,
        vec![Reason::TcbNotUpToDate {
            status: TcbStatus::SWHardeningNeeded
        }]
    );
}

#[test]
fn grace_counts_from_the_superseding_level() {
    let mut config = SimConfig::up_to_date(T0);
    config.collateral_lifetime = 90 * DAY;
    let level = |c: u8, status| SimTcbLevel {
        sgx_components: [c; 16],
        pce_svn: 13,
        tdx_components: [c; 16],
        status,
        advisory_ids: vec![],
    };
    config.tcb_levels = vec![
        level(6, TcbStatus::UpToDate),
        level(5, TcbStatus::OutOfDate),
    ];
    let sim = SimTee::generate(config).unwrap();
    let p = policy("grace = [{ status = \"OutOfDate\", days = 10 }]");
    let early = sgx(&sim, &enclave(), T0 + 5 * DAY);
    assert_eq!(early.superseded_at, Some(T0));
    let v = appraise(&p, &early, T0 + 5 * DAY);
    assert_eq!(v.status, Appraisal::Warning);
    assert_eq!(
        v.reasons,
        vec![Reason::InGracePeriod {
            status: TcbStatus::OutOfDate,
            until: T0 + 10 * DAY
        }]
    );
    let late = sgx(&sim, &enclave(), T0 + 20 * DAY);
    let v = appraise(&p, &late, T0 + 20 * DAY);
    assert_eq!(
        v.reasons,
        vec![Reason::GraceExpired {
            status: TcbStatus::OutOfDate,
            until: T0 + 10 * DAY
        }]
    );
    assert_eq!(v.status, Appraisal::Contraindicated);
}

#[test]
fn collateral_age_is_bounded() {
    let mut config = SimConfig::up_to_date(T0);
    config.collateral_lifetime = 30 * DAY;
    let sim = SimTee::generate(config).unwrap();
    let p = policy("max_collateral_age_days = 2");
    assert_eq!(
        appraise(&p, &sgx(&sim, &enclave(), T0 + DAY), T0 + DAY).status,
        Appraisal::Affirming
    );
    let v = appraise(&p, &sgx(&sim, &enclave(), T0 + 3 * DAY), T0 + 3 * DAY);
    assert_eq!(v.reasons, vec![Reason::CollateralTooOld { age_days: 3 }]);
}

#[test]
fn debug_is_refused_unless_dangerously_allowed() {
    let sim = SimTee::generate(SimConfig::up_to_date(T0)).unwrap();
    let q = sgx(
        &sim,
        &SgxEnclave {
            debug: true,
            ..enclave()
        },
        T0 + 60,
    );
    assert_eq!(
        appraise(&policy(""), &q, T0 + 60).reasons,
        vec![Reason::DebugNotAllowed]
    );
    assert_eq!(
        appraise(&policy("dangerous_allow_debug = true"), &q, T0 + 60).status,
        Appraisal::Affirming
    );
}

#[test]
fn policy_files_are_strict() {
    assert!(Policy::from_toml("id = \"x\"\nversion = 1\nunknown = true\n").is_err());
    assert!(
        Policy::from_toml("id = \"x\"\nversion = 1\n[[sgx]]\nmr_enclave = \"abcd\"\n").is_err()
    );
    assert!(
        Policy::from_toml("id = \"x\"\nversion = 1\naccepted_tcb_statuses = [\"Fine\"]\n").is_err()
    );
    let p = Policy::from_toml("id = \"x\"\nversion = 1\n").unwrap();
    assert_eq!(p.accepted_tcb_statuses, vec![TcbStatus::UpToDate]);
    assert!(!p.dangerous_allow_debug && !p.allow_service_td);
}

/// M1: a policy can require collateral from after a TCB recovery.
#[test]
fn a_minimum_tcb_evaluation_data_number_refuses_older_collateral() {
    let sim = SimTee::generate(SimConfig::up_to_date(T0)).unwrap();
    let q = sgx(&sim, &enclave(), T0 + 60);
    assert_eq!(q.tcb_evaluation_data_number, 1);
    let ok = appraise(&policy("min_tcb_evaluation_data_number = 1"), &q, T0 + 60);
    assert_eq!(ok.status, Appraisal::Affirming);
    let v = appraise(&policy("min_tcb_evaluation_data_number = 2"), &q, T0 + 60);
    assert_eq!(
        (v.status, v.reasons),
        (
            Appraisal::Contraindicated,
            vec![Reason::TcbEvaluationTooOld { number: 1, min: 2 }]
        )
    );
}
