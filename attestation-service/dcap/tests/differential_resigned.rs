//! A differential test that reaches past the signature checks: TCB Info and QE
//! Identity of a simulated PKI are mutated and *re-signed* — with the TCB Signing key,
//! and with every other key of the PKI — then verified by us and by dcap-qvl (with the
//! simulated root). Our answer must be Intel's QVL's answer (the rules of
//! `../shared/research/intel-qvl-tcb-evaluation.md`, encoded below per mutation);
//! where dcap-qvl differs from Intel, the mutation must be one of the documented
//! differences, and everywhere else the two verifiers must agree.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use phalanx_dcap::{Collateral, TcbStatus, TeeType, verify};
use phalanx_dcap_sim::{SgxEnclave, SimConfig, SimRole, SimTee, TdxTd};
use serde_json::Value;

const T0: i64 = 1_760_000_000;
const NOW: i64 = T0 + 3600;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    Accept(String),
    Reject,
}

/// Where dcap-qvl 0.7.1 is known to answer otherwise than Intel's QVL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// Both must agree (and agree with Intel).
    Agree,
    /// Documented difference: only Intel's answer is required of us.
    DcapQvlDiffers,
}

struct Mutation {
    name: String,
    tee: TeeType,
    tcb_info: Option<Value>,
    qe_identity: Option<Value>,
    intel: Verdict,
    class: Class,
}

fn status(s: TcbStatus) -> Verdict {
    Verdict::Accept(s.as_str().into())
}

fn mutations(c_sgx: &Collateral, c_tdx: &Collateral) -> Vec<Mutation> {
    let mut out = Vec::new();
    for (tee, c) in [(TeeType::Sgx, c_sgx), (TeeType::Tdx, c_tdx)] {
        let ti: Value = serde_json::from_str(&c.tcb_info).unwrap();
        let qi: Value = serde_json::from_str(&c.qe_identity).unwrap();
        let t = |name: &str, v: Value, intel: Verdict, class: Class| Mutation {
            name: format!("{tee:?}: {name}"),
            tee,
            tcb_info: Some(v),
            qe_identity: None,
            intel,
            class,
        };
        out.push(t(
            "unchanged",
            ti.clone(),
            status(TcbStatus::UpToDate),
            Class::Agree,
        ));
        // Levels listed lowest first: Intel sorts them by TCB.
        let mut v = ti.clone();
        v["tcbLevels"].as_array_mut().unwrap().reverse();
        out.push(t(
            "levels reversed",
            v,
            status(TcbStatus::UpToDate),
            Class::DcapQvlDiffers,
        ));
        // The top level twice, the copy OutOfDate: Intel refuses duplicates.
        let mut v = ti.clone();
        let mut twin = v["tcbLevels"][0].clone();
        twin["tcbStatus"] = "OutOfDate".into();
        v["tcbLevels"].as_array_mut().unwrap().push(twin);
        out.push(t(
            "duplicated level",
            v,
            Verdict::Reject,
            Class::DcapQvlDiffers,
        ));
        // The matched level's status, each of them. Intel reports Revoked as a result
        // (SGX_QL_QV_RESULT_REVOKED, for policy to refuse); dcap-qvl fails instead.
        for s in TcbStatus::ALL {
            let mut v = ti.clone();
            v["tcbLevels"][0]["tcbStatus"] = s.as_str().into();
            out.push(t(
                &format!("platform level {s}"),
                v,
                status(s),
                if s == TcbStatus::Revoked {
                    Class::DcapQvlDiffers
                } else {
                    Class::Agree
                },
            ));
        }
        // The matched level removed: the next one (OutOfDate) matches.
        let mut v = ti.clone();
        v["tcbLevels"].as_array_mut().unwrap().remove(0);
        out.push(t(
            "top level removed",
            v,
            status(TcbStatus::OutOfDate),
            Class::Agree,
        ));
        // The QE's level status, each of them (Intel's table, §2 and §4).
        for s in TcbStatus::ALL {
            let mut v = qi.clone();
            v["tcbLevels"][0]["tcbStatus"] = s.as_str().into();
            use TcbStatus::*;
            let intel = match s {
                SWHardeningNeeded | ConfigurationAndSWHardeningNeeded => Verdict::Reject,
                UpToDate => status(UpToDate),
                Revoked => status(Revoked),
                _ => status(OutOfDate),
            };
            out.push(Mutation {
                name: format!("{tee:?}: QE level {s}"),
                tee,
                tcb_info: None,
                qe_identity: Some(v),
                intel,
                class: Class::DcapQvlDiffers,
            });
        }
        if tee == TeeType::Tdx {
            // The matched module level's status (§2: three are recognized).
            for s in TcbStatus::ALL {
                let mut v = ti.clone();
                v["tdxModuleIdentities"][0]["tcbLevels"][0]["tcbStatus"] = s.as_str().into();
                use TcbStatus::*;
                let intel = match s {
                    UpToDate => status(UpToDate),
                    OutOfDate => status(OutOfDate),
                    Revoked => status(Revoked),
                    _ => Verdict::Reject,
                };
                out.push(t(
                    &format!("module level {s}"),
                    v,
                    intel,
                    Class::DcapQvlDiffers,
                ));
            }
            // tdxModule's MRSIGNER changed while the quote's module version selects an
            // identity entry: Intel does not compare tdxModule then (§3).
            let mut v = ti.clone();
            v["tdxModule"]["mrsigner"] = "ff".repeat(48).into();
            out.push(t(
                "tdxModule MRSIGNER changed",
                v,
                status(TcbStatus::UpToDate),
                Class::DcapQvlDiffers,
            ));
            // The identity's own MRSIGNER changed: refused by all.
            let mut v = ti.clone();
            v["tdxModuleIdentities"][0]["mrsigner"] = "ff".repeat(48).into();
            out.push(t(
                "module identity MRSIGNER changed",
                v,
                Verdict::Reject,
                Class::Agree,
            ));
        }
    }
    out
}

fn resign(sim: &SimTee, base: &Collateral, m: &Mutation, key: SimRole) -> Collateral {
    let mut c = base.clone();
    let chain = |k: SimRole| {
        format!("{}{}", sim.cert_pem(k).unwrap_or_default(), sim.root_pem()).into_bytes()
    };
    if let Some(v) = &m.tcb_info {
        c.tcb_info = serde_json::to_string(v).unwrap();
        c.tcb_info_signature = sim.sign_as(key, c.tcb_info.as_bytes()).unwrap().to_vec();
        c.tcb_info_issuer_chain = chain(key);
    }
    if let Some(v) = &m.qe_identity {
        c.qe_identity = serde_json::to_string(v).unwrap();
        c.qe_identity_signature = sim.sign_as(key, c.qe_identity.as_bytes()).unwrap().to_vec();
        c.qe_identity_issuer_chain = chain(key);
    }
    c
}

fn root_der(sim: &SimTee) -> Vec<u8> {
    let pem = sim.root_pem();
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64).unwrap()
}

#[test]
fn re_signed_tcb_info_and_qe_identity_mutations_get_intels_answer() {
    let sim = SimTee::generate(SimConfig::up_to_date(T0)).unwrap();
    let quotes = [
        (
            TeeType::Sgx,
            sim.sgx_quote(&SgxEnclave::default(), &[0; 64]).unwrap(),
        ),
        (
            TeeType::Tdx,
            sim.tdx_quote(&TdxTd::default(), &[0; 64]).unwrap(),
        ),
    ];
    let base = |tee| sim.collateral(tee).unwrap();
    let (c_sgx, c_tdx) = (base(TeeType::Sgx), base(TeeType::Tdx));
    let theirs_verifier = dcap_qvl::verify::QuoteVerifier::new(root_der(&sim));
    let (mut agreed, mut differed, mut failures) = (0, Vec::new(), Vec::new());
    for m in mutations(&c_sgx, &c_tdx) {
        let quote = &quotes.iter().find(|(t, _)| *t == m.tee).unwrap().1;
        let original = if m.tee == TeeType::Sgx {
            &c_sgx
        } else {
            &c_tdx
        };
        for key in [
            SimRole::TcbSigning,
            SimRole::Pck,
            SimRole::PckCa,
            SimRole::Root,
            SimRole::Attestation,
        ] {
            let c = resign(&sim, original, &m, key);
            let ours = match verify(quote, &c, NOW, &sim.trust_anchors()) {
                Ok(v) => Verdict::Accept(v.status.as_str().into()),
                Err(_) => Verdict::Reject,
            };
            let theirs = match theirs_verifier.verify(quote, &common::to_dcap_qvl(&c), NOW as u64) {
                Ok(r) => Verdict::Accept(r.status),
                Err(_) => Verdict::Reject,
            };
            // Intel: only the TCB Signing key may sign collateral.
            let intel = if key == SimRole::TcbSigning {
                m.intel.clone()
            } else {
                Verdict::Reject
            };
            if ours != intel {
                failures.push(format!(
                    "{} signed by {key:?}: ours {ours:?}, Intel {intel:?}",
                    m.name
                ));
            }
            if ours == theirs {
                agreed += 1;
            } else if m.class == Class::DcapQvlDiffers && key == SimRole::TcbSigning {
                differed.push(format!("{}: dcap-qvl {theirs:?}", m.name));
            } else {
                failures.push(format!(
                    "{} signed by {key:?}: ours {ours:?}, dcap-qvl {theirs:?} (not a documented difference)",
                    m.name
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    eprintln!(
        "re-signed mutations: {agreed} agree with dcap-qvl; {} documented differences:\n{}",
        differed.len(),
        differed.join("\n")
    );
}
