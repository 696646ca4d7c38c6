//! The simulated TEE against the real verifier.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use attestation_service::error::CertRole;
use attestation_service::{Error, Measurements, TcbStatus, TeeType, TrustAnchors, verify};
use phalanx_dcap_sim::{SgxEnclave, SimConfig, SimTee, TdxTd};

const T0: i64 = 1_760_000_000;
const NOW: i64 = T0 + 3600;

fn report_data() -> [u8; 64] {
    let mut r = [0u8; 64];
    r[..8].copy_from_slice(b"phalanx!");
    r[63] = 0x42;
    r
}

fn enclave() -> SgxEnclave {
    SgxEnclave {
        mr_enclave: [0xab; 32],
        mr_signer: [0xcd; 32],
        isv_prod_id: 7,
        isv_svn: 3,
        debug: false,
    }
}

fn both(sim: &SimTee) -> [(TeeType, Vec<u8>); 2] {
    [
        (
            TeeType::Sgx,
            sim.sgx_quote(&enclave(), &report_data()).unwrap(),
        ),
        (
            TeeType::Tdx,
            sim.tdx_quote(
                &TdxTd {
                    mr_td: [0x77; 48],
                    ..TdxTd::default()
                },
                &report_data(),
            )
            .unwrap(),
        ),
    ]
}

#[test]
fn every_tcb_status_is_reported() {
    for status in TcbStatus::ALL {
        let sim = SimTee::generate(SimConfig::with_status(T0, status)).unwrap();
        for (tee, quote) in both(&sim) {
            let c = sim.collateral(tee).unwrap();
            let v = verify(&quote, &c, NOW, &sim.trust_anchors())
                .unwrap_or_else(|e| panic!("{status} {tee:?}: {e:?}"));
            assert_eq!(v.status, status, "{tee:?}");
            assert_eq!(v.tee(), tee);
            let want: Vec<String> = if status == TcbStatus::UpToDate {
                vec![]
            } else {
                vec!["INTEL-SA-00999".into()]
            };
            assert_eq!(v.advisory_ids, want);
        }
    }
}

#[test]
fn measurements_and_report_data_come_through() {
    let sim = SimTee::generate(SimConfig::up_to_date(T0)).unwrap();
    let [(_, sgx), (_, tdx)] = both(&sim);
    let v = verify(
        &sgx,
        &sim.collateral(TeeType::Sgx).unwrap(),
        NOW,
        &sim.trust_anchors(),
    )
    .unwrap();
    assert_eq!(v.report_data, report_data());
    assert!(!v.debug);
    match v.measurements {
        Measurements::Sgx {
            mr_enclave,
            mr_signer,
            isv_prod_id,
            isv_svn,
            ..
        } => {
            assert_eq!(
                (mr_enclave, mr_signer, isv_prod_id, isv_svn),
                ([0xab; 32], [0xcd; 32], 7, 3)
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(v.fmspc, sim.config().fmspc);
    let v = verify(
        &tdx,
        &sim.collateral(TeeType::Tdx).unwrap(),
        NOW,
        &sim.trust_anchors(),
    )
    .unwrap();
    assert_eq!(v.status, TcbStatus::UpToDate);
    assert_eq!(v.tdx_module_status, Some(TcbStatus::UpToDate));
    match v.measurements {
        Measurements::Tdx { mr_td, .. } => assert_eq!(mr_td, [0x77; 48]),
        other => panic!("{other:?}"),
    }
}

#[test]
fn debug_enclaves_and_tds_are_reported_not_refused() {
    let sim = SimTee::generate(SimConfig::up_to_date(T0)).unwrap();
    let q = sim
        .sgx_quote(
            &SgxEnclave {
                debug: true,
                ..enclave()
            },
            &report_data(),
        )
        .unwrap();
    let v = verify(
        &q,
        &sim.collateral(TeeType::Sgx).unwrap(),
        NOW,
        &sim.trust_anchors(),
    )
    .unwrap();
    assert!(v.debug);
    let q = sim
        .tdx_quote(
            &TdxTd {
                debug: true,
                ..TdxTd::default()
            },
            &report_data(),
        )
        .unwrap();
    let v = verify(
        &q,
        &sim.collateral(TeeType::Tdx).unwrap(),
        NOW,
        &sim.trust_anchors(),
    )
    .unwrap();
    assert!(v.debug);
}

#[test]
fn only_the_simulated_root_trusts_simulated_quotes() {
    let sim = SimTee::generate(SimConfig::up_to_date(T0)).unwrap();
    let other = SimTee::generate(SimConfig::up_to_date(T0)).unwrap();
    for (tee, q) in both(&sim) {
        let c = sim.collateral(tee).unwrap();
        assert!(matches!(
            verify(&q, &c, NOW, &TrustAnchors::intel()),
            Err(Error::UntrustedRoot { .. })
        ));
        assert!(matches!(
            verify(&q, &c, NOW, &other.trust_anchors()),
            Err(Error::UntrustedRoot { .. })
        ));
        assert!(verify(&q, &c, NOW, &sim.trust_anchors()).is_ok());
    }
}

#[test]
fn a_revoked_pck_certificate_is_refused() {
    let mut sim = SimTee::generate(SimConfig::up_to_date(T0)).unwrap();
    sim.revoke_pck();
    for (tee, q) in both(&sim) {
        let c = sim.collateral(tee).unwrap();
        assert_eq!(
            verify(&q, &c, NOW, &sim.trust_anchors()),
            Err(Error::CertificateRevoked {
                role: CertRole::PckLeaf
            })
        );
    }
}

#[test]
fn qe_and_module_statuses_converge() {
    let mut sim =
        SimTee::generate(SimConfig::with_status(T0, TcbStatus::ConfigurationNeeded)).unwrap();
    sim.config_mut().qe_levels = vec![(9, TcbStatus::UpToDate), (0, TcbStatus::OutOfDate)];
    for (tee, q) in both(&sim) {
        let v = verify(&q, &sim.collateral(tee).unwrap(), NOW, &sim.trust_anchors()).unwrap();
        assert_eq!(v.qe_status, TcbStatus::OutOfDate);
        assert_eq!(v.status, TcbStatus::OutOfDateConfigurationNeeded, "{tee:?}");
    }
    let mut sim = SimTee::generate(SimConfig::up_to_date(T0)).unwrap();
    sim.config_mut().tdx_module_levels = vec![(4, TcbStatus::UpToDate), (0, TcbStatus::OutOfDate)];
    let [_, (_, tdx)] = both(&sim);
    let v = verify(
        &tdx,
        &sim.collateral(TeeType::Tdx).unwrap(),
        NOW,
        &sim.trust_anchors(),
    )
    .unwrap();
    assert_eq!(
        (v.tdx_module_status, v.status),
        (Some(TcbStatus::OutOfDate), TcbStatus::OutOfDate)
    );
}

#[test]
fn a_platform_below_every_level_matches_none() {
    let mut sim = SimTee::generate(SimConfig::up_to_date(T0)).unwrap();
    for l in &mut sim.config_mut().tcb_levels {
        l.sgx_components[15] = 6;
    }
    for (tee, q) in both(&sim) {
        assert_eq!(
            verify(&q, &sim.collateral(tee).unwrap(), NOW, &sim.trust_anchors()),
            Err(Error::TcbLevelNotFound)
        );
    }
}

#[test]
fn saved_state_reloads_the_same_pki() {
    let sim = SimTee::generate(SimConfig::up_to_date(T0)).unwrap();
    let loaded = SimTee::from_json(&sim.to_json()).unwrap();
    let q = loaded.sgx_quote(&enclave(), &report_data()).unwrap();
    assert!(
        verify(
            &q,
            &loaded.collateral(TeeType::Sgx).unwrap(),
            NOW,
            &sim.trust_anchors()
        )
        .is_ok()
    );
    assert!(SimTee::from_json("{").is_err());
}

#[test]
fn collateral_windows_are_enforced() {
    let sim = SimTee::generate(SimConfig::up_to_date(T0)).unwrap();
    let [(tee, q), _] = both(&sim);
    let c = sim.collateral(tee).unwrap();
    assert!(verify(&q, &c, T0 - 1, &sim.trust_anchors()).is_err());
    assert!(verify(&q, &c, T0 + 30 * 86_400 + 1, &sim.trust_anchors()).is_err());
}

#[test]
fn report_data_binds_a_fresh_nonce_and_runtime_data() {
    use attestation_service::nonce::{NonceKey, ReplayGuard, report_data};
    let sim = SimTee::generate(SimConfig::up_to_date(T0)).unwrap();
    let key = NonceKey::new(&[9; 32]);
    let nonce = key.issue(NOW, 300, [4; 16]);
    let checked = key.check(&nonce, NOW + 10).unwrap();
    let runtime = b"worker public keys";
    let q = sim
        .sgx_quote(&enclave(), &report_data(&checked.bytes, runtime))
        .unwrap();
    let v = verify(
        &q,
        &sim.collateral(TeeType::Sgx).unwrap(),
        NOW + 10,
        &sim.trust_anchors(),
    )
    .unwrap();
    assert_eq!(v.report_data, report_data(&checked.bytes, runtime));
    assert_ne!(v.report_data, report_data(&checked.bytes, b"other keys"));
    let mut guard = ReplayGuard::new(16);
    guard.consume(&checked, NOW + 10).unwrap();
    assert!(guard.consume(&checked, NOW + 11).is_err());
}

/// H3: a platform whose TCB is OutOfDate, with its own PCK private key in hand, forges
/// a TCB Info (and a QE Identity) that says UpToDate, signs them with the PCK key and
/// ships the issuer chain [PCK leaf, PCK CA] — a chain that does lead to the root.
/// Refused: only the TCB Signing certificate the root issued directly may sign them.
#[test]
fn attack_h3_collateral_signed_with_a_pck_key_is_refused() {
    use phalanx_dcap_sim::SimRole;
    let sim = SimTee::generate(SimConfig::with_status(T0, TcbStatus::OutOfDate)).unwrap();
    let quote = sim.sgx_quote(&enclave(), &report_data()).unwrap();
    let honest = sim.collateral(TeeType::Sgx).unwrap();
    assert_eq!(
        verify(&quote, &honest, NOW, &sim.trust_anchors())
            .unwrap()
            .status,
        TcbStatus::OutOfDate
    );
    let pck_chain = format!(
        "{}{}",
        sim.cert_pem(SimRole::Pck).unwrap(),
        sim.cert_pem(SimRole::PckCa).unwrap()
    )
    .into_bytes();
    let mut forged = honest.clone();
    forged.tcb_info = honest.tcb_info.replace("OutOfDate", "UpToDate");
    assert_ne!(forged.tcb_info, honest.tcb_info);
    forged.tcb_info_signature = sim
        .sign_as(SimRole::Pck, forged.tcb_info.as_bytes())
        .unwrap()
        .to_vec();
    forged.tcb_info_issuer_chain = pck_chain.clone();
    let err = verify(&quote, &forged, NOW, &sim.trust_anchors()).unwrap_err();
    assert!(
        matches!(err, Error::WrongChainShape { .. }),
        "forged TCB Info accepted or refused for another reason: {err:?}"
    );
    // The same with the root appended (one certificate too many for the chain), and
    // for the QE Identity.
    let mut with_root = forged.clone();
    with_root.tcb_info_issuer_chain = [pck_chain.clone(), sim.root_pem().into_bytes()].concat();
    assert!(verify(&quote, &with_root, NOW, &sim.trust_anchors()).is_err());
    let mut qe = honest.clone();
    qe.qe_identity_signature = sim
        .sign_as(SimRole::Pck, qe.qe_identity.as_bytes())
        .unwrap()
        .to_vec();
    qe.qe_identity_issuer_chain = pck_chain;
    assert!(matches!(
        verify(&quote, &qe, NOW, &sim.trust_anchors()),
        Err(Error::WrongChainShape { .. })
    ));
    // The TCB Signing key cannot stand in for a PCK CA in the PCK CRL's chain.
    let mut crl = honest.clone();
    crl.pck_crl_issuer_chain = format!(
        "{}{}",
        sim.cert_pem(SimRole::TcbSigning).unwrap(),
        sim.root_pem()
    )
    .into_bytes();
    assert!(verify(&quote, &crl, NOW, &sim.trust_anchors()).is_err());
}
