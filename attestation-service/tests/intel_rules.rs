//! How TCB levels, QE Identity and the TDX module are evaluated, rule by rule as
//! Intel's QVL does it (`../shared/research/intel-qvl-tcb-evaluation.md`, with file and
//! line of Intel's source), on simulated quotes and collateral.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use attestation_service::sim::{SgxEnclave, SimConfig, SimTee, TdxTd};
use attestation_service::{Error, TcbStatus, TeeType, VerifiedQuote, verify};

const T0: i64 = 1_760_000_000;
const NOW: i64 = T0 + 3600;

fn run(sim: &SimTee, tee: TeeType) -> Result<VerifiedQuote, Error> {
    let quote = match tee {
        TeeType::Sgx => sim.sgx_quote(&SgxEnclave::default(), &[0; 64]).unwrap(),
        TeeType::Tdx => sim.tdx_quote(&TdxTd::default(), &[0; 64]).unwrap(),
    };
    let collateral = sim.collateral(tee).unwrap();
    verify(&quote, &collateral, NOW, &sim.trust_anchors())
}

fn sim(edit: impl FnOnce(&mut SimConfig)) -> SimTee {
    let mut s = SimTee::generate(SimConfig::up_to_date(T0)).unwrap();
    edit(s.config_mut());
    s
}

/// Levels are evaluated in TCB order (highest first), not in JSON order.
#[test]
fn tcb_levels_are_matched_in_tcb_order_not_json_order() {
    for tee in [TeeType::Sgx, TeeType::Tdx] {
        let listed_low_first = sim(|c| c.tcb_levels.reverse());
        assert_eq!(
            run(&listed_low_first, tee).unwrap().status,
            TcbStatus::UpToDate,
            "{tee:?}"
        );
    }
}

/// Two levels with the same TCB are refused, even with different statuses.
#[test]
fn duplicated_tcb_levels_are_refused() {
    let dup = sim(|c| {
        let mut twin = c.tcb_levels[0].clone();
        twin.status = TcbStatus::OutOfDate;
        c.tcb_levels.push(twin);
    });
    for tee in [TeeType::Sgx, TeeType::Tdx] {
        let e = run(&dup, tee).unwrap_err();
        assert_eq!(e.code(), "malformed_collateral", "{tee:?}: {e}");
    }
    // Duplicated TDX module identity levels too.
    let dup = sim(|c| c.tdx_module_levels.push((3, TcbStatus::OutOfDate)));
    assert_eq!(
        run(&dup, TeeType::Tdx).unwrap_err().code(),
        "malformed_collateral"
    );
}

/// A QE Identity level may carry only UpToDate, ConfigurationNeeded, OutOfDate,
/// OutOfDateConfigurationNeeded or Revoked.
#[test]
fn qe_identity_levels_refuse_platform_only_statuses() {
    for bad in [
        TcbStatus::SWHardeningNeeded,
        TcbStatus::ConfigurationAndSWHardeningNeeded,
    ] {
        let s = sim(|c| c.qe_levels[0].1 = bad);
        assert_eq!(
            run(&s, TeeType::Sgx).unwrap_err().code(),
            "malformed_collateral",
            "{bad}"
        );
    }
}

/// Any QE status but UpToDate and Revoked makes an UpToDate platform OutOfDate (and a
/// ConfigurationNeeded one OutOfDateConfigurationNeeded).
#[test]
fn qe_statuses_converge_as_intel_converges_them() {
    for qe in [
        TcbStatus::ConfigurationNeeded,
        TcbStatus::OutOfDateConfigurationNeeded,
        TcbStatus::OutOfDate,
    ] {
        let s = sim(|c| c.qe_levels[0].1 = qe);
        let v = run(&s, TeeType::Sgx).unwrap();
        assert_eq!((v.status, v.qe_status), (TcbStatus::OutOfDate, qe));
        let mut s =
            SimTee::generate(SimConfig::with_status(T0, TcbStatus::ConfigurationNeeded)).unwrap();
        s.config_mut().qe_levels[0].1 = qe;
        assert_eq!(
            run(&s, TeeType::Sgx).unwrap().status,
            TcbStatus::OutOfDateConfigurationNeeded
        );
    }
}

/// The matched TDX module level may only be UpToDate, OutOfDate or Revoked.
#[test]
fn tdx_module_levels_recognize_three_statuses() {
    let s = sim(|c| c.tdx_module_levels[0].1 = TcbStatus::SWHardeningNeeded);
    assert_eq!(
        run(&s, TeeType::Tdx).unwrap_err().code(),
        "tcb_status_unrecognized"
    );
    // Not matched (the module's ISVSVN is above it): no effect.
    let s = sim(|c| c.tdx_module_levels[1].1 = TcbStatus::ConfigurationNeeded);
    assert_eq!(run(&s, TeeType::Tdx).unwrap().status, TcbStatus::UpToDate);
    // OutOfDate module: platform OutOfDate.
    let s = sim(|c| c.tdx_module_levels[0].1 = TcbStatus::OutOfDate);
    assert_eq!(run(&s, TeeType::Tdx).unwrap().status, TcbStatus::OutOfDate);
}

/// Advisories are those of the matched TCB Info level only.
#[test]
fn advisories_come_from_the_matched_tcb_level() {
    let s = SimTee::generate(SimConfig::with_status(T0, TcbStatus::SWHardeningNeeded)).unwrap();
    for tee in [TeeType::Sgx, TeeType::Tdx] {
        let v = run(&s, tee).unwrap();
        assert_eq!(v.advisory_ids, vec!["INTEL-SA-00999".to_owned()], "{tee:?}");
    }
}
