//! Collateral: the Intel-signed documents a quote is verified against, and loaders
//! for the formats they arrive in.
//!
//! [`Collateral`] holds the raw pieces exactly as Intel signed them. TCB Info and QE
//! Identity bodies are kept as the exact text of their JSON value (`tcbInfo` /
//! `enclaveIdentity`): their ECDSA signatures cover those bytes, so they are never
//! re-serialised. [`TcbInfo`] and [`QeIdentity`] are the typed, parsed forms (TCB Info
//! v3 for SGX and TDX with `tdxModule` and `tdxModuleIdentities`; QE Identity v2 for
//! QE, QVE and TD_QE).
//!
//! Loaders: [`Collateral::from_bundle_json`] (the JSON bundle of `shared/testdata/dcap`,
//! as used by the `dcap-qvl` crate) and [`Collateral::from_pccs`] (raw Intel PCS /
//! PCCS API v4 responses, piece by piece). A `CollateralSource` trait for fetching
//! belongs to the service layer; this crate only takes bytes.

use crate::error::{Doc, Error};
use crate::tcb::TcbStatus;
use serde::Deserialize;
use serde_json::value::RawValue;

/// Largest collateral document (JSON bundle or PCCS response) accepted.
pub const MAX_COLLATERAL_SIZE: usize = 2 * 1024 * 1024;

/// One complete set of collateral for a quote, as raw signed bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Collateral {
    /// Issuer chain of the PCK CRL (PEM: PCK CA, root).
    pub pck_crl_issuer_chain: Vec<u8>,
    /// Root CA CRL (DER).
    pub root_ca_crl: Vec<u8>,
    /// PCK CRL (DER) of the Processor or Platform CA.
    pub pck_crl: Vec<u8>,
    /// Issuer chain of the TCB Info (PEM: TCB signing, root).
    pub tcb_info_issuer_chain: Vec<u8>,
    /// The exact text of the signed `tcbInfo` JSON value.
    pub tcb_info: String,
    /// ECDSA signature (r ‖ s) over `tcb_info`.
    pub tcb_info_signature: Vec<u8>,
    /// Issuer chain of the QE Identity (PEM: TCB signing, root).
    pub qe_identity_issuer_chain: Vec<u8>,
    /// The exact text of the signed `enclaveIdentity` JSON value.
    pub qe_identity: String,
    /// ECDSA signature (r ‖ s) over `qe_identity`.
    pub qe_identity_signature: Vec<u8>,
}

#[derive(Deserialize)]
struct Bundle {
    pck_crl_issuer_chain: String,
    root_ca_crl: String,
    pck_crl: String,
    tcb_info_issuer_chain: String,
    tcb_info: String,
    tcb_info_signature: String,
    qe_identity_issuer_chain: String,
    qe_identity: String,
    qe_identity_signature: String,
}

/// Raw Intel PCS / PCCS (API v4) responses, as fetched piece by piece.
#[derive(Debug, Clone, Copy)]
pub struct PccsResponses<'a> {
    /// Body of `GET …/certification/v4/tcb?fmspc=…` (`{"tcbInfo":…,"signature":…}`).
    pub tcb_info: &'a [u8],
    /// Its `TCB-Info-Issuer-Chain` header (URL-encoded PEM) or the PEM itself.
    pub tcb_info_issuer_chain: &'a [u8],
    /// Body of `GET …/certification/v4/qe/identity` (`{"enclaveIdentity":…,"signature":…}`).
    pub qe_identity: &'a [u8],
    /// Its `SGX-Enclave-Identity-Issuer-Chain` header or the PEM itself.
    pub qe_identity_issuer_chain: &'a [u8],
    /// Body of `GET …/pckcrl?ca=…` (DER, PEM or hex).
    pub pck_crl: &'a [u8],
    /// Its `SGX-PCK-CRL-Issuer-Chain` header or the PEM itself.
    pub pck_crl_issuer_chain: &'a [u8],
    /// The root CA CRL (DER, PEM or hex).
    pub root_ca_crl: &'a [u8],
}

impl Collateral {
    /// Loads the JSON bundle format (hex CRLs and signatures, PEM chains, signed JSON
    /// bodies as strings).
    pub fn from_bundle_json(bytes: &[u8]) -> Result<Self, Error> {
        check_size(bytes, "collateral bundle")?;
        let b: Bundle = serde_json::from_slice(bytes).map_err(|e| Error::MalformedCollateral {
            what: "collateral bundle",
            reason: e.to_string(),
        })?;
        Ok(Self {
            pck_crl_issuer_chain: b.pck_crl_issuer_chain.into_bytes(),
            root_ca_crl: decode_hex(&b.root_ca_crl, "root CA CRL")?,
            pck_crl: decode_hex(&b.pck_crl, "PCK CRL")?,
            tcb_info_issuer_chain: b.tcb_info_issuer_chain.into_bytes(),
            tcb_info: b.tcb_info,
            tcb_info_signature: decode_hex(&b.tcb_info_signature, "TCB Info signature")?,
            qe_identity_issuer_chain: b.qe_identity_issuer_chain.into_bytes(),
            qe_identity: b.qe_identity,
            qe_identity_signature: decode_hex(&b.qe_identity_signature, "QE Identity signature")?,
        })
    }

    /// Assembles collateral from raw PCCS responses, keeping the signed bodies'
    /// exact bytes.
    pub fn from_pccs(r: &PccsResponses<'_>) -> Result<Self, Error> {
        let (tcb_info, tcb_info_signature) =
            split_signed(r.tcb_info, "tcbInfo", "TCB Info response")?;
        let (qe_identity, qe_identity_signature) =
            split_signed(r.qe_identity, "enclaveIdentity", "QE Identity response")?;
        Ok(Self {
            pck_crl_issuer_chain: decode_chain_header(
                r.pck_crl_issuer_chain,
                "PCK CRL issuer chain",
            )?,
            root_ca_crl: decode_crl(r.root_ca_crl, "root CA CRL")?,
            pck_crl: decode_crl(r.pck_crl, "PCK CRL")?,
            tcb_info_issuer_chain: decode_chain_header(
                r.tcb_info_issuer_chain,
                "TCB Info issuer chain",
            )?,
            tcb_info,
            tcb_info_signature,
            qe_identity_issuer_chain: decode_chain_header(
                r.qe_identity_issuer_chain,
                "QE Identity issuer chain",
            )?,
            qe_identity,
            qe_identity_signature,
        })
    }

    /// Writes the JSON bundle format (the inverse of [`Collateral::from_bundle_json`]).
    pub fn to_bundle_json(&self) -> String {
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        serde_json::json!({
            "pck_crl_issuer_chain": text(&self.pck_crl_issuer_chain),
            "root_ca_crl": hex::encode(&self.root_ca_crl),
            "pck_crl": hex::encode(&self.pck_crl),
            "tcb_info_issuer_chain": text(&self.tcb_info_issuer_chain),
            "tcb_info": self.tcb_info,
            "tcb_info_signature": hex::encode(&self.tcb_info_signature),
            "qe_identity_issuer_chain": text(&self.qe_identity_issuer_chain),
            "qe_identity": self.qe_identity,
            "qe_identity_signature": hex::encode(&self.qe_identity_signature),
        })
        .to_string()
    }

    /// SHA-256 over every piece, length-prefixed: a cache key for "exactly these bytes".
    pub fn digest(&self) -> [u8; 32] {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        ctx.update(phalanx_types::tag::COLLATERAL_DIGEST);
        for piece in [
            &self.pck_crl_issuer_chain[..],
            &self.root_ca_crl,
            &self.pck_crl,
            &self.tcb_info_issuer_chain,
            self.tcb_info.as_bytes(),
            &self.tcb_info_signature,
            &self.qe_identity_issuer_chain,
            self.qe_identity.as_bytes(),
            &self.qe_identity_signature,
        ] {
            ctx.update(&(piece.len() as u64).to_le_bytes());
            ctx.update(piece);
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.finish().as_ref());
        out
    }
}

fn check_size(bytes: &[u8], what: &'static str) -> Result<(), Error> {
    if bytes.len() > MAX_COLLATERAL_SIZE {
        return Err(Error::CollateralTooLarge {
            what,
            size: bytes.len(),
            max: MAX_COLLATERAL_SIZE,
        });
    }
    Ok(())
}

fn malformed(what: &'static str, reason: impl ToString) -> Error {
    Error::MalformedCollateral {
        what,
        reason: reason.to_string(),
    }
}

fn decode_hex(s: &str, what: &'static str) -> Result<Vec<u8>, Error> {
    let s = s.trim();
    hex::decode(s.strip_prefix("0x").unwrap_or(s)).map_err(|e| malformed(what, e))
}

fn split_signed(body: &[u8], key: &str, what: &'static str) -> Result<(String, Vec<u8>), Error> {
    check_size(body, what)?;
    let map: std::collections::BTreeMap<String, &RawValue> =
        serde_json::from_slice(body).map_err(|e| malformed(what, e))?;
    let signed = map
        .get(key)
        .ok_or_else(|| malformed(what, format!("no {key}")))?;
    let sig = map
        .get("signature")
        .ok_or_else(|| malformed(what, "no signature"))?;
    let sig: String = serde_json::from_str(sig.get()).map_err(|e| malformed(what, e))?;
    Ok((signed.get().to_owned(), decode_hex(&sig, what)?))
}

fn decode_chain_header(bytes: &[u8], what: &'static str) -> Result<Vec<u8>, Error> {
    check_size(bytes, what)?;
    let text = std::str::from_utf8(bytes)
        .map_err(|e| malformed(what, e))?
        .trim();
    if text.contains('%') {
        let decoded = percent_encoding::percent_decode_str(text)
            .decode_utf8()
            .map_err(|e| malformed(what, e))?;
        return Ok(decoded.into_owned().into_bytes());
    }
    Ok(text.as_bytes().to_vec())
}

/// A CRL given as DER, PEM (`X509 CRL`) or hex text.
fn decode_crl(bytes: &[u8], what: &'static str) -> Result<Vec<u8>, Error> {
    check_size(bytes, what)?;
    if bytes.first() == Some(&0x30) {
        return Ok(bytes.to_vec());
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|e| malformed(what, e))?
        .trim();
    if text.starts_with("-----BEGIN") {
        let block = pem::parse(text).map_err(|e| malformed(what, e))?;
        if block.tag() != "X509 CRL" {
            return Err(malformed(
                what,
                format!("unexpected PEM block {:?}", block.tag()),
            ));
        }
        return Ok(block.into_contents());
    }
    decode_hex(text, what)
}

/// Parses an RFC 3339 date to unix seconds.
pub(crate) fn parse_date(s: &str, what: &'static str) -> Result<i64, Error> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp())
        .map_err(|e| malformed(what, format!("date {s:?}: {e}")))
}

fn hex_array<const N: usize>(s: &str, what: &'static str) -> Result<[u8; N], Error> {
    let v = decode_hex(s, what)?;
    v.try_into()
        .map_err(|v: Vec<u8>| malformed(what, format!("{} bytes, expected {N}", v.len())))
}

/// `id` of a TCB Info.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum TcbInfoId {
    /// SGX platform TCB.
    Sgx,
    /// TDX platform TCB.
    Tdx,
}

/// One TCB level of a TCB Info.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcbLevel {
    /// Minimum SGX TCB component SVNs (`sgxtcbcomponents`).
    pub sgx_components: [u8; 16],
    /// Minimum PCE SVN.
    pub pce_svn: u16,
    /// Minimum TDX TCB component SVNs (`tdxtcbcomponents`, TDX only).
    pub tdx_components: Option<[u8; 16]>,
    /// `tcbDate`, unix seconds.
    pub tcb_date: i64,
    /// `tcbStatus`.
    pub tcb_status: TcbStatus,
    /// `advisoryIDs`.
    pub advisory_ids: Vec<String>,
}

/// `tdxModule` of a TDX TCB Info.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TdxModule {
    /// Expected MRSIGNERSEAM.
    pub mrsigner: [u8; 48],
    /// Expected SEAMATTRIBUTES.
    pub attributes: [u8; 8],
    /// Mask applied to SEAMATTRIBUTES before comparing.
    pub attributes_mask: [u8; 8],
}

/// A TCB level of a TDX module identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TdxModuleTcbLevel {
    /// Minimum module ISVSVN (TEE_TCB_SVN byte 0).
    pub isv_svn: u8,
    /// `tcbDate`, unix seconds.
    pub tcb_date: i64,
    /// `tcbStatus`.
    pub tcb_status: TcbStatus,
    /// `advisoryIDs`.
    pub advisory_ids: Vec<String>,
}

/// An entry of `tdxModuleIdentities`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TdxModuleIdentity {
    /// `TDX_xx`, xx the module major version in hex.
    pub id: String,
    /// The module (MRSIGNERSEAM, SEAMATTRIBUTES) expected.
    pub module: TdxModule,
    /// Levels, highest first.
    pub tcb_levels: Vec<TdxModuleTcbLevel>,
}

/// A parsed TCB Info (version 3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcbInfo {
    /// SGX or TDX.
    pub id: TcbInfoId,
    /// Version (3).
    pub version: u32,
    /// `issueDate`, unix seconds.
    pub issue_date: i64,
    /// `nextUpdate`, unix seconds.
    pub next_update: i64,
    /// FMSPC.
    pub fmspc: [u8; 6],
    /// PCE ID.
    pub pce_id: [u8; 2],
    /// `tcbType`.
    pub tcb_type: u32,
    /// `tcbEvaluationDataNumber`.
    pub tcb_evaluation_data_number: u32,
    /// `tdxModule` (TDX).
    pub tdx_module: Option<TdxModule>,
    /// `tdxModuleIdentities` (TDX).
    pub tdx_module_identities: Vec<TdxModuleIdentity>,
    /// TCB levels, in Intel's order (highest first).
    pub tcb_levels: Vec<TcbLevel>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawTcbInfo {
    id: Option<String>,
    version: u32,
    issue_date: String,
    next_update: String,
    fmspc: String,
    pce_id: String,
    #[serde(default)]
    tcb_type: u32,
    #[serde(default)]
    tcb_evaluation_data_number: u32,
    tdx_module: Option<RawTdxModule>,
    #[serde(default)]
    tdx_module_identities: Vec<RawTdxModuleIdentity>,
    tcb_levels: Vec<RawTcbLevel>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawTdxModule {
    mrsigner: String,
    attributes: String,
    attributes_mask: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawTdxModuleIdentity {
    id: String,
    mrsigner: String,
    attributes: String,
    attributes_mask: String,
    tcb_levels: Vec<RawIsvLevel>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawIsvLevel {
    tcb: RawIsvTcb,
    tcb_date: String,
    tcb_status: String,
    #[serde(default, rename = "advisoryIDs")]
    advisory_ids: Vec<String>,
}

#[derive(Deserialize)]
struct RawIsvTcb {
    isvsvn: u16,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawTcbLevel {
    tcb: RawTcb,
    tcb_date: String,
    tcb_status: String,
    #[serde(default, rename = "advisoryIDs")]
    advisory_ids: Vec<String>,
}

#[derive(Deserialize)]
struct RawTcb {
    sgxtcbcomponents: Vec<RawComponent>,
    pcesvn: u16,
    #[serde(default)]
    tdxtcbcomponents: Option<Vec<RawComponent>>,
}

#[derive(Deserialize)]
struct RawComponent {
    svn: u8,
}

fn components(c: &[RawComponent], what: &'static str) -> Result<[u8; 16], Error> {
    let v: Vec<u8> = c.iter().map(|c| c.svn).collect();
    v.try_into()
        .map_err(|v: Vec<u8>| malformed(what, format!("{} TCB components, expected 16", v.len())))
}

impl TcbInfo {
    /// Parses the text of a `tcbInfo` value. Only version 3 is supported.
    ///
    /// Long on purpose: one strict pass over Intel's TCB Info v3 schema, field by field, so
    /// every refusal names its field.
    pub fn parse(json: &str) -> Result<Self, Error> {
        const W: &str = "TCB Info";
        check_size(json.as_bytes(), W)?;
        let raw: RawTcbInfo = serde_json::from_str(json).map_err(|e| malformed(W, e))?;
        if raw.version != 3 {
            return Err(Error::UnsupportedCollateralVersion {
                doc: Doc::TcbInfo,
                version: raw.version,
            });
        }
        let id = match raw.id.as_deref() {
            Some("SGX") => TcbInfoId::Sgx,
            Some("TDX") => TcbInfoId::Tdx,
            other => return Err(malformed(W, format!("unknown id {other:?}"))),
        };
        let module = |m: &RawTdxModule| -> Result<TdxModule, Error> {
            Ok(TdxModule {
                mrsigner: hex_array(&m.mrsigner, W)?,
                attributes: hex_array(&m.attributes, W)?,
                attributes_mask: hex_array(&m.attributes_mask, W)?,
            })
        };
        let tdx_module_identities = raw
            .tdx_module_identities
            .iter()
            .map(|m| {
                Ok(TdxModuleIdentity {
                    id: m.id.clone(),
                    module: module(&RawTdxModule {
                        mrsigner: m.mrsigner.clone(),
                        attributes: m.attributes.clone(),
                        attributes_mask: m.attributes_mask.clone(),
                    })?,
                    tcb_levels: m
                        .tcb_levels
                        .iter()
                        .map(|l| {
                            Ok(TdxModuleTcbLevel {
                                isv_svn: u8::try_from(l.tcb.isvsvn).map_err(|e| malformed(W, e))?,
                                tcb_date: parse_date(&l.tcb_date, W)?,
                                tcb_status: TcbStatus::parse(&l.tcb_status)?,
                                advisory_ids: l.advisory_ids.clone(),
                            })
                        })
                        .collect::<Result<Vec<TdxModuleTcbLevel>, Error>>()
                        .and_then(|mut levels| {
                            // Highest ISVSVN first; a repeated ISVSVN is refused.
                            levels.sort_by_key(|l| std::cmp::Reverse(l.isv_svn));
                            if levels
                                .windows(2)
                                .any(|w| matches!(w, [a, b] if a.isv_svn == b.isv_svn))
                            {
                                return Err(malformed(
                                    W,
                                    "duplicated TDX module identity TCB levels",
                                ));
                            }
                            Ok(levels)
                        })?,
                })
            })
            .collect::<Result<_, Error>>()?;
        let tcb_levels = raw
            .tcb_levels
            .iter()
            .map(|l| {
                Ok(TcbLevel {
                    sgx_components: components(&l.tcb.sgxtcbcomponents, W)?,
                    pce_svn: l.tcb.pcesvn,
                    tdx_components: l
                        .tcb
                        .tdxtcbcomponents
                        .as_deref()
                        .map(|c| components(c, W))
                        .transpose()?,
                    tcb_date: parse_date(&l.tcb_date, W)?,
                    tcb_status: TcbStatus::parse(&l.tcb_status)?,
                    advisory_ids: l.advisory_ids.clone(),
                })
            })
            .collect::<Result<Vec<TcbLevel>, Error>>()?;
        // Intel's QVL keeps the levels in a set ordered by TCB (SGX components, PCE SVN,
        // then TDX components), highest first, whatever the JSON order, and refuses two
        // levels with the same TCB even if their statuses differ.
        let mut tcb_levels = tcb_levels;
        tcb_levels.sort_by_key(|l| std::cmp::Reverse(tcb_key(l)));
        if tcb_levels
            .windows(2)
            .any(|w| matches!(w, [a, b] if tcb_key(a) == tcb_key(b)))
        {
            return Err(malformed(W, "duplicated TCB levels"));
        }
        Ok(Self {
            id,
            version: raw.version,
            issue_date: parse_date(&raw.issue_date, W)?,
            next_update: parse_date(&raw.next_update, W)?,
            fmspc: hex_array(&raw.fmspc, W)?,
            pce_id: hex_array(&raw.pce_id, W)?,
            tcb_type: raw.tcb_type,
            tcb_evaluation_data_number: raw.tcb_evaluation_data_number,
            tdx_module: raw.tdx_module.as_ref().map(module).transpose()?,
            tdx_module_identities,
            tcb_levels,
        })
    }
}

/// The sort key of a TCB level in Intel's order.
fn tcb_key(l: &TcbLevel) -> ([u8; 16], u16, Option<[u8; 16]>) {
    (l.sgx_components, l.pce_svn, l.tdx_components)
}

/// A QE Identity level's status: Intel's QVL parses only these five there (the
/// SW-hardening statuses belong to platform levels) and refuses the document otherwise.
fn qe_status(s: &str) -> Result<TcbStatus, Error> {
    use TcbStatus::*;
    match TcbStatus::parse(s)? {
        st @ (UpToDate
        | ConfigurationNeeded
        | OutOfDate
        | OutOfDateConfigurationNeeded
        | Revoked) => Ok(st),
        other => Err(Error::MalformedCollateral {
            what: "QE Identity",
            reason: format!("status {other} is not allowed in a QE Identity level"),
        }),
    }
}

/// `id` of an enclave identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum EnclaveId {
    /// The SGX Quoting Enclave.
    Qe,
    /// The Quote Verification Enclave.
    Qve,
    /// The TD Quoting Enclave.
    TdQe,
}

/// A QE Identity TCB level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QeTcbLevel {
    /// Minimum ISVSVN.
    pub isv_svn: u16,
    /// `tcbDate`, unix seconds.
    pub tcb_date: i64,
    /// `tcbStatus`.
    pub tcb_status: TcbStatus,
    /// `advisoryIDs`.
    pub advisory_ids: Vec<String>,
}

/// A parsed QE Identity (enclave identity version 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QeIdentity {
    /// QE, QVE or TD_QE.
    pub id: EnclaveId,
    /// Version (2).
    pub version: u32,
    /// `issueDate`, unix seconds.
    pub issue_date: i64,
    /// `nextUpdate`, unix seconds.
    pub next_update: i64,
    /// `tcbEvaluationDataNumber`.
    pub tcb_evaluation_data_number: u32,
    /// Expected MISCSELECT (hex bytes read little-endian, as the report stores it).
    pub miscselect: u32,
    /// MISCSELECT mask.
    pub miscselect_mask: u32,
    /// Expected ATTRIBUTES.
    pub attributes: [u8; 16],
    /// ATTRIBUTES mask.
    pub attributes_mask: [u8; 16],
    /// Expected MRSIGNER.
    pub mrsigner: [u8; 32],
    /// Expected ISVPRODID.
    pub isv_prod_id: u16,
    /// Levels, highest first.
    pub tcb_levels: Vec<QeTcbLevel>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawQeIdentity {
    id: String,
    version: u32,
    issue_date: String,
    next_update: String,
    #[serde(default)]
    tcb_evaluation_data_number: u32,
    miscselect: String,
    miscselect_mask: String,
    attributes: String,
    attributes_mask: String,
    mrsigner: String,
    isvprodid: u16,
    tcb_levels: Vec<RawIsvLevel>,
}

impl QeIdentity {
    /// Parses the text of an `enclaveIdentity` value. Only version 2 is supported.
    pub fn parse(json: &str) -> Result<Self, Error> {
        const W: &str = "QE Identity";
        check_size(json.as_bytes(), W)?;
        let raw: RawQeIdentity = serde_json::from_str(json).map_err(|e| malformed(W, e))?;
        if raw.version != 2 {
            return Err(Error::UnsupportedCollateralVersion {
                doc: Doc::QeIdentity,
                version: raw.version,
            });
        }
        let id = match raw.id.as_str() {
            "QE" => EnclaveId::Qe,
            "QVE" => EnclaveId::Qve,
            "TD_QE" => EnclaveId::TdQe,
            other => return Err(malformed(W, format!("unknown id {other:?}"))),
        };
        Ok(Self {
            id,
            version: raw.version,
            issue_date: parse_date(&raw.issue_date, W)?,
            next_update: parse_date(&raw.next_update, W)?,
            tcb_evaluation_data_number: raw.tcb_evaluation_data_number,
            miscselect: u32::from_le_bytes(hex_array(&raw.miscselect, W)?),
            miscselect_mask: u32::from_le_bytes(hex_array(&raw.miscselect_mask, W)?),
            attributes: hex_array(&raw.attributes, W)?,
            attributes_mask: hex_array(&raw.attributes_mask, W)?,
            mrsigner: hex_array(&raw.mrsigner, W)?,
            isv_prod_id: raw.isvprodid,
            tcb_levels: raw
                .tcb_levels
                .iter()
                .map(|l| {
                    Ok(QeTcbLevel {
                        isv_svn: l.tcb.isvsvn,
                        tcb_date: parse_date(&l.tcb_date, W)?,
                        tcb_status: qe_status(&l.tcb_status)?,
                        advisory_ids: l.advisory_ids.clone(),
                    })
                })
                .collect::<Result<_, Error>>()?,
        })
    }
}
