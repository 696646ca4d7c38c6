//! The TEE backends against fake trees that behave like the kernel's configfs-tsm and
//! Gramine's /dev/attestation: each quote carries exactly the report data written, the
//! interface's checks (provider, generation, attestation type) refuse what they must,
//! and sealing keys are stable.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use phalanx_dcap::quote::{Body, Quote};
use phalanx_dcap_sim::{SimConfig, SimTee as SimPki, TdxTd};
use phalanx_tee::{GramineTee, SimTee, TdxTee, Tee, TeeError, TeeKind, fake};
use std::sync::Arc;

fn pki() -> Arc<SimPki> {
    Arc::new(SimPki::generate(SimConfig::up_to_date(1_700_000_000)).unwrap())
}

fn report_data(seed: u8) -> [u8; 64] {
    let mut rd = [0u8; 64];
    for (i, b) in rd.iter_mut().enumerate() {
        *b = seed.wrapping_add(i as u8);
    }
    rd
}

#[test]
fn tdx_configfs_tsm_quotes_carry_the_report_data_written() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("report");
    let sim = pki();
    let s = sim.clone();
    let _fake = fake::configfs_tsm(&root, "tdx_guest", move |rd| {
        s.tdx_quote(&TdxTd::default(), rd).unwrap()
    })
    .unwrap();
    let tee = TdxTee::new(&root);
    assert_eq!(tee.kind(), TeeKind::Tdx);
    for seed in [1u8, 2, 3] {
        let quote = tee.quote(&report_data(seed)).unwrap();
        let parsed = Quote::parse(&quote).unwrap();
        assert!(matches!(parsed.body, Body::Td10(_)));
        assert_eq!(parsed.body.report_data(), &report_data(seed));
    }
    // TDX has no sealing key: the worker derives one from the gatekeepers.
    assert!(tee.sealing_key().unwrap().is_none());
}

#[test]
fn tdx_refuses_another_provider() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("report");
    let _fake = fake::configfs_tsm(&root, "sev_guest", |_| vec![1; 100]).unwrap();
    let e = TdxTee::new(&root).quote(&report_data(0)).unwrap_err();
    assert!(
        matches!(e, TeeError::NotTdx(ref p) if p == "sev_guest"),
        "{e}"
    );
}

#[test]
fn tdx_catches_a_concurrent_writer() {
    // A kernel whose generation moves by two for one write: someone else wrote too.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("report");
    std::fs::create_dir_all(&root).unwrap();
    let r = root.clone();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let s = stop.clone();
    let t = std::thread::spawn(move || {
        while !s.load(std::sync::atomic::Ordering::Relaxed) {
            for e in std::fs::read_dir(&r).unwrap().flatten() {
                let d = e.path();
                if !d.join("provider").exists() {
                    std::fs::write(d.join("generation"), "4\n").unwrap();
                    std::fs::write(d.join("provider"), "tdx_guest\n").unwrap();
                }
                if d.join("inblob").exists() {
                    std::fs::remove_file(d.join("inblob")).unwrap();
                    std::fs::write(d.join("generation"), "6\n").unwrap();
                    std::fs::write(d.join("outblob"), [9u8; 64]).unwrap();
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    });
    let e = TdxTee::new(&root).quote(&report_data(0)).unwrap_err();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    t.join().unwrap();
    assert!(
        matches!(
            e,
            TeeError::ConcurrentWriter {
                before: 4,
                after: 6
            }
        ),
        "{e}"
    );
}

#[test]
fn tdx_without_configfs_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let e = TdxTee::new(&dir.path().join("absent"))
        .quote(&report_data(0))
        .unwrap_err();
    assert!(matches!(e, TeeError::Io { .. }), "{e}");
}

#[test]
fn gramine_quotes_each_report_data_and_seals_with_a_stable_key() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("attestation");
    let sim = pki();
    let s = sim.clone();
    let _fake = fake::gramine(&root, "dcap", [7; 16], move |rd| {
        s.sgx_quote(&Default::default(), rd).unwrap()
    })
    .unwrap();
    let tee = GramineTee::new(&root);
    assert_eq!(tee.kind(), TeeKind::Sgx);
    // Each read answers the report data written just before it, never a stale one.
    for seed in [5u8, 6, 7] {
        let quote = tee.quote(&report_data(seed)).unwrap();
        let parsed = Quote::parse(&quote).unwrap();
        assert!(matches!(parsed.body, Body::Sgx(_)));
        assert_eq!(parsed.body.report_data(), &report_data(seed));
    }
    let k1 = tee.sealing_key().unwrap().unwrap();
    let k2 = tee.sealing_key().unwrap().unwrap();
    assert_eq!(*k1, *k2);
    assert_ne!(&k1[..16], &[7u8; 16][..], "widened, not copied");
}

#[test]
fn gramine_refuses_epid_and_a_short_sealing_key() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("attestation");
    let _fake = fake::gramine(&root, "epid", [7; 16], |_| vec![1; 10]).unwrap();
    let tee = GramineTee::new(&root);
    let e = tee.quote(&report_data(0)).unwrap_err();
    assert!(matches!(e, TeeError::NotDcap(ref k) if k == "epid"), "{e}");
    std::fs::write(root.join("keys/_sgx_mrenclave"), [1u8; 8]).unwrap();
    assert!(matches!(
        tee.sealing_key().unwrap_err(),
        TeeError::Unusable(_)
    ));
}

#[test]
fn sim_quotes_carry_the_configured_enclave_and_the_key_file_is_stable() {
    let dir = tempfile::tempdir().unwrap();
    let pki = SimPki::generate(SimConfig::up_to_date(1_700_000_000)).unwrap();
    let tee = SimTee::new(pki, [0x42; 32], &dir.path().join("sealing.key"));
    assert!(tee.simulated());
    let quote = tee.quote(&report_data(3)).unwrap();
    let parsed = Quote::parse(&quote).unwrap();
    match &parsed.body {
        Body::Sgx(e) => assert_eq!(e.mr_enclave, [0x42; 32]),
        other => panic!("{other:?}"),
    }
    assert_eq!(parsed.body.report_data(), &report_data(3));
    let k1 = tee.sealing_key().unwrap().unwrap();
    assert_eq!(*k1, *tee.sealing_key().unwrap().unwrap());
    // The key file is private.
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(dir.path().join("sealing.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0);
    // The default measurement is this binary's hash.
    assert_ne!(phalanx_tee::own_measurement().unwrap(), [0; 32]);
}
