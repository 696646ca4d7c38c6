//! The simulated TEE: a complete fake Intel PKI, its signed collateral, and quotes in
//! the exact DCAP binary format (SGX v3, TDX v4), for development and tests.
//!
//! Everything [`SimTee`] makes is real cryptography under a freshly generated root: the
//! verifier in [`phalanx_dcap::verify`](mod@phalanx_dcap::verify) accepts its quotes when, and only when, that root is
//! configured as a trust anchor ([`SimTee::trust_anchors`]); against Intel's root they
//! fail at the PCK chain (`UntrustedRoot`). Nothing here is trusted by default.
//!
//! What it builds: root CA, PCK Processor CA, TCB signing certificate; PCK leaf
//! certificates carrying Intel's SGX extension (PPID, TCB components, PCE SVN, CPUSVN,
//! PCE ID, FMSPC, SGX type); root and PCK CRLs (optionally listing the PCK); TCB Info v3
//! (SGX or TDX with `tdxModule` and `tdxModuleIdentities`) and QE Identity v2 (QE or
//! TD_QE), signed over their exact JSON text; and quotes signed by an attestation key
//! that a simulated QE report binds. The TCB levels are chosen by the caller
//! ([`SimConfig`]), so tests can produce every [`TcbStatus`].
//!
//! Keys come from the operating system's RNG (through `ring`); a [`SimTee`] can be saved
//! to and loaded from JSON ([`SimTee::to_json`]) so command-line steps can share one PKI.
//! The JSON holds private keys: it is a development artefact, never a production one.
//!
//! **Must never depend on** being a normal dependency of a production binary: it holds
//! the private keys of a fake Intel PKI (the devnet, tests and the dev image only,
//! behind `sim` features).

use phalanx_dcap::collateral::Collateral;
use phalanx_dcap::quote::{ATT_KEY_TYPE_ECDSA_P256, INTEL_QE_VENDOR_ID, TeeType};
use phalanx_dcap::tcb::TcbStatus;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CustomExtension,
    DistinguishedName, DnType, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    RevokedCertParams, SerialNumber,
};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use serde::{Deserialize, Serialize};

/// What can go wrong building simulated evidence.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// Certificate or CRL generation failed.
    #[error("certificate generation failed: {0}")]
    Certificate(#[from] rcgen::Error),
    /// A key could not be generated or loaded.
    #[error("key generation or loading failed")]
    Key,
    /// A saved simulation state is malformed.
    #[error("malformed simulation state: {0}")]
    State(String),
    /// A time is outside what certificates can encode.
    #[error("time {0} cannot be encoded")]
    Time(i64),
}

/// A P-256 signing key usable both by rcgen (certificates) and ring (raw signatures).
struct SimKey {
    pkcs8: Vec<u8>,
    rcgen: KeyPair,
    ring: EcdsaKeyPair,
}

impl SimKey {
    fn generate() -> Result<Self, SimError> {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| SimError::Key)?;
        Self::from_pkcs8(pkcs8.as_ref())
    }

    fn from_pkcs8(pkcs8: &[u8]) -> Result<Self, SimError> {
        let rng = SystemRandom::new();
        let ring = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8, &rng)
            .map_err(|_| SimError::Key)?;
        let rcgen = KeyPair::try_from(pkcs8).map_err(|_| SimError::Key)?;
        Ok(Self {
            pkcs8: pkcs8.to_vec(),
            rcgen,
            ring,
        })
    }

    /// ECDSA P-256 SHA-256, r ‖ s.
    fn sign(&self, msg: &[u8]) -> Result<[u8; 64], SimError> {
        let sig = self
            .ring
            .sign(&SystemRandom::new(), msg)
            .map_err(|_| SimError::Key)?;
        sig.as_ref().try_into().map_err(|_| SimError::Key)
    }

    /// The public key as x ‖ y.
    fn public_raw(&self) -> [u8; 64] {
        let mut out = [0u8; 64];
        if let Some(xy) = self.ring.public_key().as_ref().get(1..65) {
            out.copy_from_slice(xy);
        }
        out
    }
}

/// A TCB level to publish in the simulated TCB Info.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimTcbLevel {
    /// Minimum SGX TCB components.
    pub sgx_components: [u8; 16],
    /// Minimum PCE SVN.
    pub pce_svn: u16,
    /// Minimum TDX TCB components (used in TDX TCB Info).
    pub tdx_components: [u8; 16],
    /// The status of the level.
    pub status: TcbStatus,
    /// Advisories.
    pub advisory_ids: Vec<String>,
}

/// What the simulated platform is and what the simulated Intel says about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimConfig {
    /// FMSPC of the platform.
    pub fmspc: [u8; 6],
    /// PCE ID.
    pub pce_id: [u8; 2],
    /// The platform's SGX TCB components (in its PCK certificate).
    pub sgx_components: [u8; 16],
    /// The platform's PCE SVN.
    pub pce_svn: u16,
    /// TEE_TCB_SVN of TDX quotes: byte 0 module ISVSVN, byte 1 module version.
    pub tee_tcb_svn: [u8; 16],
    /// The QE's ISVSVN.
    pub qe_isv_svn: u16,
    /// Platform TCB levels, highest first.
    pub tcb_levels: Vec<SimTcbLevel>,
    /// QE Identity levels (ISVSVN, status), highest first.
    pub qe_levels: Vec<(u16, TcbStatus)>,
    /// TDX module levels for `TDX_01` (ISVSVN, status), highest first.
    pub tdx_module_levels: Vec<(u8, TcbStatus)>,
    /// Serial numbers the PCK CRL lists; see [`SimTee::revoke_pck`].
    pub revoked_pck_serials: Vec<Vec<u8>>,
    /// Start of every validity window (unix seconds).
    pub valid_from: i64,
    /// Collateral (TCB Info, QE Identity, CRL) lifetime in seconds.
    pub collateral_lifetime: i64,
}

/// The MRSIGNER of the simulated quoting enclaves.
pub const SIM_QE_MRSIGNER: [u8; 32] = *b"phalanx/v1/sim-quoting-enclave!!";

impl SimConfig {
    /// A platform that is `UpToDate`, valid for 30 days of collateral from `valid_from`.
    pub fn up_to_date(valid_from: i64) -> Self {
        let level = |c: u8, status| SimTcbLevel {
            sgx_components: [c; 16],
            pce_svn: 13,
            tdx_components: [c; 16],
            status,
            advisory_ids: if status == TcbStatus::UpToDate {
                vec![]
            } else {
                vec!["INTEL-SA-00000".into()]
            },
        };
        Self {
            fmspc: [0x00, 0x50, 0x48, 0x4c, 0x00, 0x00],
            pce_id: [0, 0],
            sgx_components: [5; 16],
            pce_svn: 13,
            tee_tcb_svn: {
                let mut t = [5u8; 16];
                t[0] = 3;
                t[1] = 1;
                t
            },
            qe_isv_svn: 8,
            tcb_levels: vec![
                level(5, TcbStatus::UpToDate),
                level(2, TcbStatus::OutOfDate),
            ],
            qe_levels: vec![(8, TcbStatus::UpToDate), (0, TcbStatus::OutOfDate)],
            tdx_module_levels: vec![(3, TcbStatus::UpToDate), (0, TcbStatus::OutOfDate)],
            revoked_pck_serials: vec![],
            valid_from,
            collateral_lifetime: 30 * 86_400,
        }
    }

    /// The same platform, matched by a single level of the given status (with an
    /// advisory unless `UpToDate`), for tests of every status.
    pub fn with_status(valid_from: i64, status: TcbStatus) -> Self {
        let mut c = Self::up_to_date(valid_from);
        c.tcb_levels = vec![SimTcbLevel {
            sgx_components: [5; 16],
            pce_svn: 13,
            tdx_components: [5; 16],
            status,
            advisory_ids: if status == TcbStatus::UpToDate {
                vec![]
            } else {
                vec!["INTEL-SA-00999".into()]
            },
        }];
        c
    }
}

/// The measurements and data of a simulated SGX enclave.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SgxEnclave {
    /// MRENCLAVE.
    pub mr_enclave: [u8; 32],
    /// MRSIGNER.
    pub mr_signer: [u8; 32],
    /// ISVPRODID.
    pub isv_prod_id: u16,
    /// ISVSVN.
    pub isv_svn: u16,
    /// Debug enclave.
    pub debug: bool,
}

/// The measurements of a simulated TD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TdxTd {
    /// MRTD.
    pub mr_td: [u8; 48],
    /// RTMR0..3.
    pub rtmr: [[u8; 48]; 4],
    /// Debug TD.
    pub debug: bool,
    /// MRCONFIGID: what the host bound at launch (a digest of the TD's configuration).
    pub mr_config_id: [u8; 48],
    /// TDATTRIBUTES as launched (the DEBUG bit is set from `debug`); by default
    /// [`SIM_TD_ATTRIBUTES`].
    pub td_attributes: [u8; 8],
}

/// The simulated TD's default TDATTRIBUTES: `SEPT_VE_DISABLE` (bit 28) only.
pub const SIM_TD_ATTRIBUTES: [u8; 8] = [0, 0, 0, 0x10, 0, 0, 0, 0];
/// The simulated TD's XFAM.
pub const SIM_XFAM: [u8; 8] = 0x0000_0000_0006_1be7u64.to_le_bytes();

impl Default for TdxTd {
    fn default() -> Self {
        Self {
            mr_td: [0; 48],
            rtmr: [[0; 48]; 4],
            debug: false,
            mr_config_id: [0; 48],
            td_attributes: SIM_TD_ATTRIBUTES,
        }
    }
}

/// The keys of a simulated PKI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimRole {
    /// The root CA.
    Root,
    /// The PCK Processor CA.
    PckCa,
    /// The TCB Signing key (TCB Info, QE Identity).
    TcbSigning,
    /// The platform's PCK key (signs QE reports).
    Pck,
    /// The quoting enclave's attestation key (signs quotes).
    Attestation,
}

/// A simulated Intel PKI with one platform and its quoting enclaves.
pub struct SimTee {
    config: SimConfig,
    root_key: SimKey,
    root_params: CertificateParams,
    root_der: Vec<u8>,
    pck_ca_key: SimKey,
    pck_ca_params: CertificateParams,
    pck_ca_der: Vec<u8>,
    tcb_key: SimKey,
    tcb_der: Vec<u8>,
    pck_key: SimKey,
    pck_der: Vec<u8>,
    pck_serial: Vec<u8>,
    attestation_key: SimKey,
}

impl std::fmt::Debug for SimTee {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimTee")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn name(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn.push(DnType::OrganizationName, "Phalanx Simulated TEE");
    dn.push(DnType::CountryName, "ZZ");
    dn
}

fn odt(t: i64) -> Result<time::OffsetDateTime, SimError> {
    time::OffsetDateTime::from_unix_timestamp(t).map_err(|_| SimError::Time(t))
}

fn rfc3339(t: i64) -> Result<String, SimError> {
    odt(t)?
        .format(&time::format_description::well_known::Rfc3339)
        .map_err(|_| SimError::Time(t))
}

const CERT_LIFETIME: i64 = 10 * 365 * 86_400;

fn ca_params(cn: &str, serial: u8, from: i64) -> Result<CertificateParams, SimError> {
    let mut p = CertificateParams::default();
    p.distinguished_name = name(cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(1));
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.not_before = odt(from)?;
    p.not_after = odt(from + CERT_LIFETIME)?;
    p.serial_number = Some(SerialNumber::from_slice(&[0x51, serial]));
    p.key_identifier_method = KeyIdMethod::Sha256;
    Ok(p)
}

fn leaf_params(cn: &str, serial: &[u8], from: i64) -> Result<CertificateParams, SimError> {
    let mut p = CertificateParams::default();
    p.distinguished_name = name(cn);
    p.is_ca = IsCa::ExplicitNoCa;
    p.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::ContentCommitment,
    ];
    p.not_before = odt(from)?;
    p.not_after = odt(from + CERT_LIFETIME)?;
    p.serial_number = Some(SerialNumber::from_slice(serial));
    Ok(p)
}

/// DER of Intel's SGX extension for a PCK certificate.
fn sgx_extension(c: &SimConfig) -> Vec<u8> {
    use yasna::models::ObjectIdentifier;
    let oid = |tail: &[u64]| {
        let mut v = vec![1, 2, 840, 113_741, 1, 13, 1];
        v.extend_from_slice(tail);
        ObjectIdentifier::from_slice(&v)
    };
    yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next().write_sequence(|w| {
                w.next().write_oid(&oid(&[1]));
                w.next().write_bytes(&[0x11; 16]);
            });
            w.next().write_sequence(|w| {
                w.next().write_oid(&oid(&[2]));
                w.next().write_sequence(|w| {
                    for (i, svn) in c.sgx_components.iter().enumerate() {
                        w.next().write_sequence(|w| {
                            w.next().write_oid(&oid(&[2, i as u64 + 1]));
                            w.next().write_u8(*svn);
                        });
                    }
                    w.next().write_sequence(|w| {
                        w.next().write_oid(&oid(&[2, 17]));
                        w.next().write_u16(c.pce_svn);
                    });
                    w.next().write_sequence(|w| {
                        w.next().write_oid(&oid(&[2, 18]));
                        w.next().write_bytes(&c.sgx_components);
                    });
                });
            });
            w.next().write_sequence(|w| {
                w.next().write_oid(&oid(&[3]));
                w.next().write_bytes(&c.pce_id);
            });
            w.next().write_sequence(|w| {
                w.next().write_oid(&oid(&[4]));
                w.next().write_bytes(&c.fmspc);
            });
            w.next().write_sequence(|w| {
                w.next().write_oid(&oid(&[5]));
                w.next().write_enum(0);
            });
        })
    })
}

#[derive(Serialize, Deserialize)]
struct SavedState {
    config: SimConfig,
    root_key: String,
    pck_ca_key: String,
    tcb_key: String,
    pck_key: String,
    attestation_key: String,
}

impl SimTee {
    /// A fresh PKI, platform and quoting enclave for `config`.
    pub fn generate(config: SimConfig) -> Result<Self, SimError> {
        Self::build(
            config,
            [
                SimKey::generate()?,
                SimKey::generate()?,
                SimKey::generate()?,
                SimKey::generate()?,
                SimKey::generate()?,
            ],
        )
    }

    fn build(config: SimConfig, keys: [SimKey; 5]) -> Result<Self, SimError> {
        let [root_key, pck_ca_key, tcb_key, pck_key, attestation_key] = keys;
        let from = config.valid_from;
        let root_params = ca_params(phalanx_dcap::pki::CN_ROOT, 1, from)?;
        let root_der = root_params.self_signed(&root_key.rcgen)?.der().to_vec();
        let root_issuer = Issuer::from_params(&root_params, &root_key.rcgen);
        let pck_ca_params = ca_params(phalanx_dcap::pki::CN_PCK_CAS[0], 2, from)?;
        let pck_ca_der = pck_ca_params
            .signed_by(&pck_ca_key.rcgen, &root_issuer)?
            .der()
            .to_vec();
        let tcb_der = leaf_params(phalanx_dcap::pki::CN_TCB_SIGNING, &[0x51, 3], from)?
            .signed_by(&tcb_key.rcgen, &root_issuer)?
            .der()
            .to_vec();
        let pck_serial = {
            let pk = pck_key.public_raw();
            let d = ring::digest::digest(&ring::digest::SHA256, &pk);
            let mut s = d.as_ref().get(..16).unwrap_or_default().to_vec();
            if let Some(first) = s.first_mut() {
                *first &= 0x7f; // positive INTEGER
                *first |= 0x01; // no leading zero to strip
            }
            s
        };
        let mut pck_params = leaf_params(phalanx_dcap::pki::CN_PCK, &pck_serial, from)?;
        pck_params.custom_extensions = vec![CustomExtension::from_oid_content(
            &[1, 2, 840, 113_741, 1, 13, 1],
            sgx_extension(&config),
        )];
        let pck_der = pck_params
            .signed_by(
                &pck_key.rcgen,
                &Issuer::from_params(&pck_ca_params, &pck_ca_key.rcgen),
            )?
            .der()
            .to_vec();
        Ok(Self {
            config,
            root_key,
            root_params,
            root_der,
            pck_ca_key,
            pck_ca_params,
            pck_ca_der,
            tcb_key,
            tcb_der,
            pck_key,
            pck_der,
            pck_serial,
            attestation_key,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    /// Replaces the TCB levels, statuses and CRL contents the collateral publishes
    /// (the PKI and platform stay). Changing platform fields has no effect on the PCK
    /// certificate already issued.
    pub fn config_mut(&mut self) -> &mut SimConfig {
        &mut self.config
    }

    /// Lists the platform's PCK certificate in the PCK CRL.
    pub fn revoke_pck(&mut self) {
        self.config
            .revoked_pck_serials
            .push(self.pck_serial.clone());
    }

    /// Signs `msg` (ECDSA P-256 SHA-256, r ‖ s) with one key of the simulated PKI: for
    /// tests that forge a structure and re-sign it, so a verifier's answer is decided
    /// by the checks behind the signature (roles, shapes, contents).
    pub fn sign_as(&self, key: SimRole, msg: &[u8]) -> Result<[u8; 64], SimError> {
        self.key(key).sign(msg)
    }

    /// The certificate (PEM) of one key of the simulated PKI (the attestation key has
    /// none: its certificate is the QE report).
    pub fn cert_pem(&self, key: SimRole) -> Option<String> {
        match key {
            SimRole::Root => Some(&self.root_der),
            SimRole::PckCa => Some(&self.pck_ca_der),
            SimRole::TcbSigning => Some(&self.tcb_der),
            SimRole::Pck => Some(&self.pck_der),
            SimRole::Attestation => None,
        }
        .map(|der| pem_cert(der))
    }

    fn key(&self, key: SimRole) -> &SimKey {
        match key {
            SimRole::Root => &self.root_key,
            SimRole::PckCa => &self.pck_ca_key,
            SimRole::TcbSigning => &self.tcb_key,
            SimRole::Pck => &self.pck_key,
            SimRole::Attestation => &self.attestation_key,
        }
    }

    /// The simulated root as the only trust anchor.
    pub fn trust_anchors(&self) -> phalanx_dcap::TrustAnchors {
        phalanx_dcap::TrustAnchors::from_der_certs(&[&self.root_der])
            .unwrap_or_else(|_| phalanx_dcap::TrustAnchors::none())
    }

    /// The simulated root certificate, PEM.
    pub fn root_pem(&self) -> String {
        pem_cert(&self.root_der)
    }

    fn chain_pem(&self, leaf: &[u8], ca: &[u8]) -> String {
        format!("{}{}", pem_cert(leaf), pem_cert(ca)) + &pem_cert(&self.root_der)
    }

    /// Collateral for quotes of `tee` from this platform, signed by the simulated PKI.
    pub fn collateral(&self, tee: TeeType) -> Result<Collateral, SimError> {
        let c = &self.config;
        let (from, until) = (c.valid_from, c.valid_from + c.collateral_lifetime);
        let root_issuer = Issuer::from_params(&self.root_params, &self.root_key.rcgen);
        let crl =
            |issuer: &Issuer<'_, &KeyPair>, revoked: &[Vec<u8>]| -> Result<Vec<u8>, SimError> {
                Ok(CertificateRevocationListParams {
                    this_update: odt(from)?,
                    next_update: odt(until)?,
                    crl_number: SerialNumber::from_slice(&[1]),
                    issuing_distribution_point: None,
                    revoked_certs: revoked
                        .iter()
                        .map(|s| {
                            Ok(RevokedCertParams {
                                serial_number: SerialNumber::from_slice(s),
                                revocation_time: odt(from)?,
                                reason_code: None,
                                invalidity_date: None,
                            })
                        })
                        .collect::<Result<_, SimError>>()?,
                    key_identifier_method: KeyIdMethod::Sha256,
                }
                .signed_by(issuer)?
                .der()
                .to_vec())
            };
        let root_crl = crl(&root_issuer, &[])?;
        let pck_crl = crl(
            &Issuer::from_params(&self.pck_ca_params, &self.pck_ca_key.rcgen),
            &c.revoked_pck_serials,
        )?;
        let tcb_info = self.tcb_info_json(tee, from, until)?;
        let qe_identity = self.qe_identity_json(tee, from, until)?;
        let tcb_chain = format!("{}{}", pem_cert(&self.tcb_der), pem_cert(&self.root_der));
        Ok(Collateral {
            pck_crl_issuer_chain: format!(
                "{}{}",
                pem_cert(&self.pck_ca_der),
                pem_cert(&self.root_der)
            )
            .into_bytes(),
            root_ca_crl: root_crl,
            pck_crl,
            tcb_info_issuer_chain: tcb_chain.clone().into_bytes(),
            tcb_info_signature: self.tcb_key.sign(tcb_info.as_bytes())?.to_vec(),
            tcb_info,
            qe_identity_issuer_chain: tcb_chain.into_bytes(),
            qe_identity_signature: self.tcb_key.sign(qe_identity.as_bytes())?.to_vec(),
            qe_identity,
        })
    }

    fn tcb_info_json(&self, tee: TeeType, from: i64, until: i64) -> Result<String, SimError> {
        let c = &self.config;
        let comps = |v: &[u8; 16]| {
            v.iter()
                .map(|s| serde_json::json!({ "svn": s }))
                .collect::<Vec<_>>()
        };
        let levels = c
            .tcb_levels
            .iter()
            .map(|l| {
                let mut tcb = serde_json::json!({ "sgxtcbcomponents": comps(&l.sgx_components), "pcesvn": l.pce_svn });
                if tee == TeeType::Tdx {
                    insert(&mut tcb, "tdxtcbcomponents", comps(&l.tdx_components).into());
                }
                Ok(serde_json::json!({
                    "tcb": tcb,
                    "tcbDate": rfc3339(from)?,
                    "tcbStatus": l.status.as_str(),
                    "advisoryIDs": l.advisory_ids,
                }))
            })
            .collect::<Result<Vec<_>, SimError>>()?;
        let mut info = serde_json::json!({
            "id": match tee { TeeType::Sgx => "SGX", TeeType::Tdx => "TDX" },
            "version": 3,
            "issueDate": rfc3339(from)?,
            "nextUpdate": rfc3339(until)?,
            "fmspc": hex::encode(c.fmspc),
            "pceId": hex::encode(c.pce_id),
            "tcbType": 0,
            "tcbEvaluationDataNumber": 1,
            "tcbLevels": levels,
        });
        if tee == TeeType::Tdx {
            let zero48 = hex::encode([0u8; 48]);
            insert(
                &mut info,
                "tdxModule",
                serde_json::json!({
                    "mrsigner": zero48, "attributes": "0000000000000000", "attributesMask": "FFFFFFFFFFFFFFFF"
                }),
            );
            let module_levels = c
                .tdx_module_levels
                .iter()
                .map(|(svn, status)| {
                    Ok(serde_json::json!({
                        "tcb": { "isvsvn": svn }, "tcbDate": rfc3339(from)?, "tcbStatus": status.as_str(),
                    }))
                })
                .collect::<Result<Vec<_>, SimError>>()?;
            insert(
                &mut info,
                "tdxModuleIdentities",
                serde_json::json!([{
                    "id": "TDX_01", "mrsigner": zero48, "attributes": "0000000000000000",
                    "attributesMask": "FFFFFFFFFFFFFFFF", "tcbLevels": module_levels,
                }]),
            );
        }
        Ok(info.to_string())
    }

    fn qe_identity_json(&self, tee: TeeType, from: i64, until: i64) -> Result<String, SimError> {
        let levels = self
            .config
            .qe_levels
            .iter()
            .map(|(svn, status)| {
                Ok(serde_json::json!({
                    "tcb": { "isvsvn": svn }, "tcbDate": rfc3339(from)?, "tcbStatus": status.as_str(),
                }))
            })
            .collect::<Result<Vec<_>, SimError>>()?;
        let (id, prod) = match tee {
            TeeType::Sgx => ("QE", 1),
            TeeType::Tdx => ("TD_QE", 2),
        };
        Ok(serde_json::json!({
            "id": id, "version": 2,
            "issueDate": rfc3339(from)?, "nextUpdate": rfc3339(until)?,
            "tcbEvaluationDataNumber": 1,
            "miscselect": "00000000", "miscselectMask": "FFFFFFFF",
            "attributes": "11000000000000000000000000000000",
            "attributesMask": "FBFFFFFFFFFFFFFF0000000000000000",
            "mrsigner": hex::encode(SIM_QE_MRSIGNER),
            "isvprodid": prod,
            "tcbLevels": levels,
        })
        .to_string())
    }

    fn header(&self, version: u16, tee: TeeType) -> Vec<u8> {
        let mut h = Vec::with_capacity(48);
        h.extend_from_slice(&version.to_le_bytes());
        h.extend_from_slice(&ATT_KEY_TYPE_ECDSA_P256.to_le_bytes());
        h.extend_from_slice(&tee.to_u32().to_le_bytes());
        h.extend_from_slice(&self.config.qe_isv_svn.to_le_bytes());
        h.extend_from_slice(&self.config.pce_svn.to_le_bytes());
        h.extend_from_slice(&INTEL_QE_VENDOR_ID);
        h.extend_from_slice(&[0u8; 20]);
        h
    }

    /// The QE report: an SGX report of the simulated QE binding the attestation key.
    fn qe_report(&self, tee: TeeType, auth_data: &[u8]) -> Vec<u8> {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        ctx.update(&self.attestation_key.public_raw());
        ctx.update(auth_data);
        let mut report_data = [0u8; 64];
        if let Some(dst) = report_data.get_mut(..32) {
            dst.copy_from_slice(ctx.finish().as_ref());
        }
        let mut attributes = [0u8; 16];
        attributes[0] = 0x11;
        let prod = match tee {
            TeeType::Sgx => 1,
            TeeType::Tdx => 2,
        };
        enclave_report(
            &self.config.sgx_components,
            &attributes,
            &[0x22; 32],
            &SIM_QE_MRSIGNER,
            prod,
            self.config.qe_isv_svn,
            &report_data,
        )
    }

    fn finish(&self, tee: TeeType, mut signed: Vec<u8>) -> Result<Vec<u8>, SimError> {
        let version = if tee == TeeType::Sgx { 3 } else { 4 };
        let auth_data: Vec<u8> = (0u8..32).collect();
        let qe_report = self.qe_report(tee, &auth_data);
        let qe_sig = self.pck_key.sign(&qe_report)?;
        let chain = self.chain_pem(&self.pck_der, &self.pck_ca_der).into_bytes();
        let mut qe_block = Vec::new();
        qe_block.extend_from_slice(&qe_report);
        qe_block.extend_from_slice(&qe_sig);
        qe_block.extend_from_slice(&(auth_data.len() as u16).to_le_bytes());
        qe_block.extend_from_slice(&auth_data);
        qe_block.extend_from_slice(&5u16.to_le_bytes());
        qe_block.extend_from_slice(&(chain.len() as u32).to_le_bytes());
        qe_block.extend_from_slice(&chain);
        let mut sig_data = Vec::new();
        sig_data.extend_from_slice(&self.attestation_key.sign(&signed)?);
        sig_data.extend_from_slice(&self.attestation_key.public_raw());
        if version == 3 {
            sig_data.extend_from_slice(&qe_block);
        } else {
            sig_data.extend_from_slice(&6u16.to_le_bytes());
            sig_data.extend_from_slice(&(qe_block.len() as u32).to_le_bytes());
            sig_data.extend_from_slice(&qe_block);
        }
        signed.extend_from_slice(&(sig_data.len() as u32).to_le_bytes());
        signed.extend_from_slice(&sig_data);
        Ok(signed)
    }

    /// An SGX quote (v3) from `enclave` with `report_data`.
    pub fn sgx_quote(
        &self,
        enclave: &SgxEnclave,
        report_data: &[u8; 64],
    ) -> Result<Vec<u8>, SimError> {
        let mut q = self.header(3, TeeType::Sgx);
        let mut attributes = [0u8; 16];
        attributes[0] = if enclave.debug { 0x07 } else { 0x05 };
        attributes[8] = 0x03;
        q.extend_from_slice(&enclave_report(
            &self.config.sgx_components,
            &attributes,
            &enclave.mr_enclave,
            &enclave.mr_signer,
            enclave.isv_prod_id,
            enclave.isv_svn,
            report_data,
        ));
        self.finish(TeeType::Sgx, q)
    }

    /// A TDX quote (v4, TD 1.0 body) from `td` with `report_data`.
    pub fn tdx_quote(&self, td: &TdxTd, report_data: &[u8; 64]) -> Result<Vec<u8>, SimError> {
        let mut q = self.header(4, TeeType::Tdx);
        q.extend_from_slice(&self.td10_body(td, report_data));
        self.finish(TeeType::Tdx, q)
    }

    /// A TDX quote v5 with a TD 1.5 body (type 3): the TD 1.0 report, then
    /// TEE_TCB_SVN2 (the module a relaunch would run) and a zero MRSERVICETD.
    pub fn tdx15_quote(
        &self,
        td: &TdxTd,
        tee_tcb_svn2: [u8; 16],
        report_data: &[u8; 64],
    ) -> Result<Vec<u8>, SimError> {
        let mut q = self.header(5, TeeType::Tdx);
        q.extend_from_slice(&3u16.to_le_bytes());
        q.extend_from_slice(&(phalanx_dcap::quote::TD15_REPORT_SIZE as u32).to_le_bytes());
        q.extend_from_slice(&self.td10_body(td, report_data));
        q.extend_from_slice(&tee_tcb_svn2);
        q.extend_from_slice(&[0u8; 48]); // MRSERVICETD
        self.finish(TeeType::Tdx, q)
    }

    fn td10_body(&self, td: &TdxTd, report_data: &[u8; 64]) -> Vec<u8> {
        let mut q = Vec::with_capacity(phalanx_dcap::quote::TD10_REPORT_SIZE);
        q.extend_from_slice(&self.config.tee_tcb_svn);
        q.extend_from_slice(&[0x33; 48]); // MRSEAM
        q.extend_from_slice(&[0u8; 48]); // MRSIGNERSEAM (Intel's module: zero)
        q.extend_from_slice(&[0u8; 8]); // SEAMATTRIBUTES
        let mut td_attributes = td.td_attributes;
        td_attributes[0] |= u8::from(td.debug);
        q.extend_from_slice(&td_attributes);
        q.extend_from_slice(&SIM_XFAM);
        q.extend_from_slice(&td.mr_td);
        q.extend_from_slice(&td.mr_config_id);
        q.extend_from_slice(&[0u8; 48 * 2]); // MROWNER, MROWNERCONFIG
        for r in &td.rtmr {
            q.extend_from_slice(r);
        }
        q.extend_from_slice(report_data);
        q
    }

    /// Saves the whole simulation, private keys included (development only).
    pub fn to_json(&self) -> String {
        let state = SavedState {
            config: self.config.clone(),
            root_key: hex::encode(&self.root_key.pkcs8),
            pck_ca_key: hex::encode(&self.pck_ca_key.pkcs8),
            tcb_key: hex::encode(&self.tcb_key.pkcs8),
            pck_key: hex::encode(&self.pck_key.pkcs8),
            attestation_key: hex::encode(&self.attestation_key.pkcs8),
        };
        serde_json::to_string_pretty(&state).unwrap_or_default()
    }

    /// Loads a simulation saved by [`SimTee::to_json`]. Certificates are re-issued from
    /// the saved keys and configuration, so the trust anchor key stays the same.
    pub fn from_json(json: &str) -> Result<Self, SimError> {
        let s: SavedState =
            serde_json::from_str(json).map_err(|e| SimError::State(e.to_string()))?;
        let key = |h: &str| -> Result<SimKey, SimError> {
            SimKey::from_pkcs8(&hex::decode(h).map_err(|e| SimError::State(e.to_string()))?)
        };
        Self::build(
            s.config,
            [
                key(&s.root_key)?,
                key(&s.pck_ca_key)?,
                key(&s.tcb_key)?,
                key(&s.pck_key)?,
                key(&s.attestation_key)?,
            ],
        )
    }
}

/// Sets `key` of a JSON object (a no-op on anything else).
fn insert(obj: &mut serde_json::Value, key: &str, value: serde_json::Value) {
    if let Some(map) = obj.as_object_mut() {
        map.insert(key.to_owned(), value);
    }
}

fn pem_cert(der: &[u8]) -> String {
    pem::encode(&pem::Pem::new("CERTIFICATE", der.to_vec()))
}

fn enclave_report(
    cpu_svn: &[u8; 16],
    attributes: &[u8; 16],
    mr_enclave: &[u8; 32],
    mr_signer: &[u8; 32],
    isv_prod_id: u16,
    isv_svn: u16,
    report_data: &[u8; 64],
) -> Vec<u8> {
    let mut r = Vec::with_capacity(384);
    r.extend_from_slice(cpu_svn);
    r.extend_from_slice(&0u32.to_le_bytes()); // MISCSELECT
    r.extend_from_slice(&[0u8; 28]); // reserved1 + ISVEXTPRODID
    r.extend_from_slice(attributes);
    r.extend_from_slice(mr_enclave);
    r.extend_from_slice(&[0u8; 32]);
    r.extend_from_slice(mr_signer);
    r.extend_from_slice(&[0u8; 32 + 64]); // reserved3, CONFIGID
    r.extend_from_slice(&isv_prod_id.to_le_bytes());
    r.extend_from_slice(&isv_svn.to_le_bytes());
    r.extend_from_slice(&0u16.to_le_bytes()); // CONFIGSVN
    r.extend_from_slice(&[0u8; 42 + 16]); // reserved4, ISVFAMILYID
    r.extend_from_slice(report_data);
    r
}
