//! How TCB levels, QE Identity and the TDX module are evaluated, rule by rule as
//! Intel's QVL does it (`../shared/research/intel-qvl-tcb-evaluation.md`, with file and
//! line of Intel's source), on simulated quotes and collateral.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use phalanx_dcap::{Error, TcbStatus, TeeType, VerifiedQuote, verify};
use phalanx_dcap_sim::{SgxEnclave, SimConfig, SimTee, TdxTd};

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

/// A TD 1.5 on an out-of-date TDX module (ISVSVN 2 < 3), SGX TCB and QE current.
fn relaunch_sim(status: TcbStatus) -> SimTee {
    let mut s = SimTee::generate(SimConfig::up_to_date(T0)).unwrap();
    let c = s.config_mut();
    c.tee_tcb_svn[0] = 2;
    c.tcb_levels[0].status = status;
    s
}

fn td15(sim: &SimTee, svn2: [u8; 16]) -> Result<VerifiedQuote, Error> {
    let quote = sim.tdx15_quote(&TdxTd::default(), svn2, &[0; 64]).unwrap();
    verify(
        &quote,
        &sim.collateral(TeeType::Tdx).unwrap(),
        NOW,
        &sim.trust_anchors(),
    )
}

fn svn2(module_svn: u8, module_version: u8, rest: u8) -> [u8; 16] {
    let mut s = [rest; 16];
    s[0] = module_svn;
    s[1] = module_version;
    s
}

/// Item 11: the TD relaunch check of TD 1.5 quotes, each outcome.
#[test]
fn td15_relaunch_is_advised_as_intel_advises_it() {
    let s = relaunch_sim(TcbStatus::UpToDate);
    // The TD 1.0 quote of the same platform: the out-of-date module makes it OutOfDate.
    assert_eq!(run(&s, TeeType::Tdx).unwrap().status, TcbStatus::OutOfDate);
    // TEE_TCB_SVN2 names the latest module (TDX_01, ISVSVN 3): relaunch advised.
    let v = td15(&s, svn2(3, 1, 5)).unwrap();
    assert_eq!(v.status, TcbStatus::TDRelaunchAdvised);
    assert_eq!(v.tdx_module_status, Some(TcbStatus::OutOfDate));
    // A relaunch would not reach the latest module, or the latest TDX components:
    // nothing to advise.
    assert_eq!(
        td15(&s, svn2(2, 1, 5)).unwrap().status,
        TcbStatus::OutOfDate
    );
    assert_eq!(
        td15(&s, svn2(3, 1, 4)).unwrap().status,
        TcbStatus::OutOfDate
    );
    // Module version 0 in TEE_TCB_SVN2: compared with the latest level's component 0.
    assert_eq!(
        td15(&s, svn2(5, 0, 5)).unwrap().status,
        TcbStatus::TDRelaunchAdvised
    );
    assert_eq!(
        td15(&s, svn2(4, 0, 5)).unwrap().status,
        TcbStatus::OutOfDate
    );
    // A module version the TCB Info does not know.
    assert_eq!(
        td15(&s, svn2(3, 2, 5)).unwrap_err().code(),
        "tdx_module_identity_not_found"
    );
    // Configuration needed on the platform: the configuration form.
    let c = relaunch_sim(TcbStatus::ConfigurationNeeded);
    assert_eq!(
        td15(&c, svn2(3, 1, 5)).unwrap().status,
        TcbStatus::TDRelaunchAdvisedConfigurationNeeded
    );
    // An out-of-date QE: no relaunch advice, the QE makes it OutOfDate.
    let mut q = relaunch_sim(TcbStatus::UpToDate);
    q.config_mut().qe_levels[0].1 = TcbStatus::OutOfDate;
    assert_eq!(
        td15(&q, svn2(3, 1, 5)).unwrap().status,
        TcbStatus::OutOfDate
    );
    // A current module: nothing to relaunch for.
    let mut up = relaunch_sim(TcbStatus::UpToDate);
    up.config_mut().tee_tcb_svn[0] = 3;
    assert_eq!(
        td15(&up, svn2(3, 1, 5)).unwrap().status,
        TcbStatus::UpToDate
    );
}

/// The relaunch statuses are results, never accepted in collateral.
#[test]
fn relaunch_statuses_are_not_tcb_info_statuses() {
    assert!(TcbStatus::parse("TDRelaunchAdvised").is_err());
    assert_eq!(TcbStatus::TDRelaunchAdvised.as_str(), "TDRelaunchAdvised");
}
