//! Loading the real DCAP vectors of `testdata/dcap` (a copy of `shared/testdata/dcap`).
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use phalanx_dcap::{Collateral, PccsResponses};
use std::path::PathBuf;

/// The vectors live with the verifier; the service's tests include this module too.
pub fn dir() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let own = here.join("testdata/dcap");
    if own.is_dir() {
        own
    } else {
        here.join("dcap/testdata/dcap")
    }
}

pub fn read(rel: &str) -> Vec<u8> {
    std::fs::read(dir().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

#[derive(Debug, Clone)]
pub struct Vector {
    pub name: String,
    pub quote: Vec<u8>,
    pub collateral: Collateral,
    pub now: i64,
    pub debug: bool,
    pub expected: String,
    pub advisories: Vec<String>,
}

pub fn load_quote(rel: &str, encoding: &str) -> Vec<u8> {
    let raw = read(rel);
    match encoding {
        "bin" => raw,
        "hex" => {
            let text = String::from_utf8(raw).unwrap();
            let t = text.trim();
            hex::decode(t.strip_prefix("0x").unwrap_or(t)).unwrap()
        }
        other => panic!("encoding {other}"),
    }
}

pub fn google_pccs() -> Collateral {
    let tcb = read("google/sample_tcbInfo_response");
    let tcb_chain = read("google/tcbInfoIssuerChain.pem");
    let qe = read("google/sample_qeIdentity_response");
    let qe_chain = read("google/qeIdentityIssuerChain.pem");
    let pck_crl = read("google/pckcrl");
    let pck_chain = read("google/pckCrlIssuerChain.pem");
    let root_crl = read("google/rootcrl.der");
    Collateral::from_pccs(&PccsResponses {
        tcb_info: &tcb,
        tcb_info_issuer_chain: &tcb_chain,
        qe_identity: &qe,
        qe_identity_issuer_chain: &qe_chain,
        pck_crl: &pck_crl,
        pck_crl_issuer_chain: &pck_chain,
        root_ca_crl: &root_crl,
    })
    .unwrap()
}

pub fn vectors() -> Vec<Vector> {
    let tsv = String::from_utf8(read("vectors.tsv")).unwrap();
    tsv.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            let collateral = if f[3] == "pccs:google" {
                google_pccs()
            } else {
                Collateral::from_bundle_json(&read(f[3])).unwrap()
            };
            Vector {
                name: f[0].to_string(),
                quote: load_quote(f[1], f[2]),
                collateral,
                now: f[4].parse().unwrap(),
                debug: f[5].contains("debug"),
                expected: f[6].to_string(),
                advisories: f
                    .get(7)
                    .map(|a| {
                        a.split(',')
                            .filter(|s| !s.is_empty())
                            .map(String::from)
                            .collect()
                    })
                    .unwrap_or_default(),
            }
        })
        .collect()
}

/// The same collateral in the `dcap-qvl` crate's type (for the differential test and
/// the benchmark).
pub fn to_dcap_qvl(c: &Collateral) -> dcap_qvl::QuoteCollateralV3 {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    dcap_qvl::QuoteCollateralV3 {
        pck_crl_issuer_chain: text(&c.pck_crl_issuer_chain),
        root_ca_crl: c.root_ca_crl.clone(),
        pck_crl: c.pck_crl.clone(),
        tcb_info_issuer_chain: text(&c.tcb_info_issuer_chain),
        tcb_info: c.tcb_info.clone(),
        tcb_info_signature: c.tcb_info_signature.clone(),
        qe_identity_issuer_chain: text(&c.qe_identity_issuer_chain),
        qe_identity: c.qe_identity.clone(),
        qe_identity_signature: c.qe_identity_signature.clone(),
        pck_certificate_chain: None,
    }
}
