//! The attestation result's claims, as the service signs them and relying parties read
//! them.

use phalanx_dcap::policy::{Appraisal, Verdict};
use phalanx_dcap::{Measurements, TcbStatus, TeeType, VerifiedQuote};
use phalanx_types::hex::Hex;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The EAR profile identifier Phalanx emits.
pub const EAR_PROFILE: &str = "tag:phalanx,2026:ear/v1";

/// Which root the evidence chained to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrustRoot {
    /// Intel's SGX Root CA: the only root production relying parties accept.
    Intel,
    /// The simulated Intel PKI (development).
    Sim,
    /// A root read from a file the operator configured.
    File,
}

impl TrustRoot {
    /// As it appears in tokens and configs.
    pub fn as_str(self) -> &'static str {
        match self {
            TrustRoot::Intel => "intel",
            TrustRoot::Sim => "sim",
            TrustRoot::File => "file",
        }
    }
}

/// `ear.verifier_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifierId {
    /// Who built the verifier.
    pub developer: String,
    /// Its version.
    pub build: String,
}

/// The warning carried by a result verified with collateral past its `nextUpdate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stale {
    /// When the collateral expired (unix seconds).
    pub next_update: i64,
    /// How long before the verification, in seconds.
    pub stale_secs: i64,
}

/// The measurements of the attested enclave or TD, by TEE.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "tee", rename_all = "lowercase")]
#[allow(clippy::large_enum_variant)]
pub enum EvidenceMeasurements {
    /// An SGX enclave.
    Sgx {
        /// MRENCLAVE.
        mr_enclave: Hex<32>,
        /// MRSIGNER.
        mr_signer: Hex<32>,
        /// ISVPRODID.
        isv_prod_id: u16,
        /// ISVSVN.
        isv_svn: u16,
        /// ATTRIBUTES.
        attributes: Hex<16>,
        /// MISCSELECT.
        misc_select: u32,
        /// CONFIGID.
        config_id: Hex<64>,
        /// CONFIGSVN.
        config_svn: u16,
    },
    /// A TDX trust domain.
    Tdx {
        /// MRTD.
        mr_td: Hex<48>,
        /// RTMR0..3.
        rtmr: [Hex<48>; 4],
        /// MRSEAM.
        mr_seam: Hex<48>,
        /// MRSIGNERSEAM.
        mr_signer_seam: Hex<48>,
        /// TDATTRIBUTES.
        td_attributes: Hex<8>,
        /// XFAM.
        xfam: Hex<8>,
        /// MRCONFIGID.
        mr_config_id: Hex<48>,
        /// MROWNER.
        mr_owner: Hex<48>,
        /// MROWNERCONFIG.
        mr_owner_config: Hex<48>,
        /// TEE_TCB_SVN.
        tee_tcb_svn: Hex<16>,
        /// MRSERVICETD (zero when none is bound).
        mr_service_td: Hex<48>,
    },
}

impl EvidenceMeasurements {
    /// SGX or TDX.
    pub fn tee(&self) -> TeeType {
        match self {
            EvidenceMeasurements::Sgx { .. } => TeeType::Sgx,
            EvidenceMeasurements::Tdx { .. } => TeeType::Tdx,
        }
    }
}

/// What the verifier established about the quote (`phalanx.evidence`): a verified
/// quote's facts, as data a relying party can read back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// Quote format version.
    pub quote_version: u16,
    /// The overall TCB status (platform converged with QE and TDX module).
    pub status: TcbStatus,
    /// Advisory IDs of the matched levels.
    pub advisory_ids: Vec<String>,
    /// The platform TCB level's status alone.
    pub platform_status: TcbStatus,
    /// The QE TCB level's status.
    pub qe_status: TcbStatus,
    /// The TDX module TCB level's status (TDX with a module version only).
    pub tdx_module_status: Option<TcbStatus>,
    /// `tcbDate` of the matched level, unix seconds.
    pub tcb_date: i64,
    /// `tcbEvaluationDataNumber` of the TCB Info used.
    pub tcb_evaluation_data_number: u32,
    /// When the platform's TCB was superseded, if it matched an older level.
    pub superseded_at: Option<i64>,
    /// `issueDate` of the TCB Info used.
    pub tcb_info_issue_date: i64,
    /// FMSPC of the platform.
    pub fmspc: Hex<6>,
    /// PCE ID.
    pub pce_id: Hex<2>,
    /// The measurements (with the `tee` tag).
    #[serde(flatten)]
    pub measurements: EvidenceMeasurements,
    /// REPORTDATA.
    pub report_data: Hex<64>,
    /// The enclave or TD runs in debug mode.
    pub debug: bool,
    /// A service TD is bound.
    pub service_td: bool,
    /// The earliest expiry among the collateral and certificates used.
    pub collateral_expiry: i64,
    /// The latest start of validity among them.
    pub collateral_valid_from: i64,
    /// Bytes that followed the quote and were ignored.
    pub trailing_bytes: usize,
}

impl From<&VerifiedQuote> for Evidence {
    fn from(q: &VerifiedQuote) -> Self {
        let measurements = match &q.measurements {
            Measurements::Sgx {
                mr_enclave,
                mr_signer,
                isv_prod_id,
                isv_svn,
                attributes,
                misc_select,
                config_id,
                config_svn,
            } => EvidenceMeasurements::Sgx {
                mr_enclave: Hex(*mr_enclave),
                mr_signer: Hex(*mr_signer),
                isv_prod_id: *isv_prod_id,
                isv_svn: *isv_svn,
                attributes: Hex(*attributes),
                misc_select: *misc_select,
                config_id: Hex(*config_id),
                config_svn: *config_svn,
            },
            Measurements::Tdx {
                mr_td,
                rtmr,
                mr_seam,
                mr_signer_seam,
                td_attributes,
                xfam,
                mr_config_id,
                mr_owner,
                mr_owner_config,
                tee_tcb_svn,
                mr_service_td,
            } => EvidenceMeasurements::Tdx {
                mr_td: Hex(*mr_td),
                rtmr: rtmr.map(Hex),
                mr_seam: Hex(*mr_seam),
                mr_signer_seam: Hex(*mr_signer_seam),
                td_attributes: Hex(*td_attributes),
                xfam: Hex(*xfam),
                mr_config_id: Hex(*mr_config_id),
                mr_owner: Hex(*mr_owner),
                mr_owner_config: Hex(*mr_owner_config),
                tee_tcb_svn: Hex(*tee_tcb_svn),
                mr_service_td: Hex(*mr_service_td),
            },
        };
        Self {
            quote_version: q.quote_version,
            status: q.status,
            advisory_ids: q.advisory_ids.clone(),
            platform_status: q.platform_status,
            qe_status: q.qe_status,
            tdx_module_status: q.tdx_module_status,
            tcb_date: q.tcb_date,
            tcb_evaluation_data_number: q.tcb_evaluation_data_number,
            superseded_at: q.superseded_at,
            tcb_info_issue_date: q.tcb_info_issue_date,
            fmspc: Hex(q.fmspc),
            pce_id: Hex(q.pce_id),
            measurements,
            report_data: Hex(q.report_data),
            debug: q.debug,
            service_td: q.service_td,
            collateral_expiry: q.collateral_expiry,
            collateral_valid_from: q.collateral_valid_from,
            trailing_bytes: q.trailing_bytes,
        }
    }
}

/// One TEE's appraisal in the result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Submodule {
    /// `ear.status` of this TEE.
    #[serde(rename = "ear.status")]
    pub status: Appraisal,
    /// The verified facts.
    #[serde(rename = "phalanx.evidence")]
    pub evidence: Evidence,
    /// SHA-256 of the runtime data, base64url ([`crate::runtime_data_hash`]).
    #[serde(rename = "phalanx.runtime_data_hash")]
    pub runtime_data_hash: String,
    /// The policy verdict: id, version, reasons.
    #[serde(rename = "phalanx.policy")]
    pub policy: Verdict,
    /// Set when the quote was verified with collateral past its `nextUpdate`; the
    /// status is then at best `warning`.
    #[serde(
        rename = "phalanx.stale_collateral",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub stale_collateral: Option<Stale>,
}

/// The JWT claims of an attestation result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer.
    pub iss: String,
    /// Issued at (unix seconds).
    pub iat: i64,
    /// Expiry (unix seconds).
    pub exp: i64,
    /// The nonce the evidence was bound to (base64url).
    pub eat_nonce: String,
    /// EAR profile ([`EAR_PROFILE`]).
    pub eat_profile: String,
    /// Overall status.
    #[serde(rename = "ear.status")]
    pub status: Appraisal,
    /// Verifier identity.
    #[serde(rename = "ear.verifier_id")]
    pub verifier_id: VerifierId,
    /// Which root the evidence chained to.
    #[serde(rename = "phalanx.trust_root")]
    pub trust_root: TrustRoot,
    /// One submodule per TEE, keyed `sgx` or `tdx`.
    pub submods: BTreeMap<String, Submodule>,
}

impl Claims {
    /// The one TEE submodule a worker's result carries, with its key; `None` when there
    /// are none or several.
    pub fn only_submodule(&self) -> Option<(&str, &Submodule)> {
        let mut it = self.submods.iter();
        match (it.next(), it.next()) {
            (Some((k, v)), None) => Some((k.as_str(), v)),
            _ => None,
        }
    }
}
