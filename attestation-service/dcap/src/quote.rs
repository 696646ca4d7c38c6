//! Intel DCAP quote parsing: quote versions 3, 4 and 5; SGX enclave report, TD 1.0 and
//! TD 1.5 report bodies; ECDSA-256 signature data with certification data type 5
//! (PCK certificate chain), wrapped in type 6 (QE report certification data) for v4/v5.
//!
//! Structure and field names follow Intel's *SGX ECDSA Quote Library API* (quote v3) and
//! *TDX DCAP Quote Generation Library and Quote Verification Library* (quote v4/v5)
//! specifications. The quote's own length fields say where it ends: bytes after the
//! signature data are never parsed, only counted in [`Quote::trailing_len`]. Inside the
//! signature data, every length field must account for its bytes exactly.
//!
//! Parsing never panics: every read goes through [`phalanx_types::codec::Reader`] (its little-endian reads).

use crate::error::Error;
use phalanx_types::codec::Reader;

/// Largest quote (with trailing bytes) this parser looks at. Real quotes are 4–8 KiB; the
/// bound keeps a hostile caller from making us hash or copy megabytes.
pub const MAX_QUOTE_SIZE: usize = 64 * 1024;

/// Size of the quote header.
pub const HEADER_SIZE: usize = 48;
/// Size of an SGX enclave report body (`sgx_report_body_t`).
pub const ENCLAVE_REPORT_SIZE: usize = 384;
/// Size of a TD 1.0 report body.
pub const TD10_REPORT_SIZE: usize = 584;
/// Size of a TD 1.5 report body.
pub const TD15_REPORT_SIZE: usize = 648;

/// `att_key_type` for ECDSA-256-with-P-256 (the only one DCAP uses).
pub const ATT_KEY_TYPE_ECDSA_P256: u16 = 2;
/// Intel's QE vendor id, `939A7233-F79C-4CA9-940A-0DB3957F0607`.
pub const INTEL_QE_VENDOR_ID: [u8; 16] = [
    0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9, 0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07,
];

/// Certification data type: PCK certificate chain (PEM, leaf first).
pub const CERT_DATA_PCK_CHAIN: u16 = 5;
/// Certification data type: QE report certification data (wraps a type 5).
pub const CERT_DATA_QE_REPORT: u16 = 6;

/// The TEE a quote comes from (`tee_type` in the v4/v5 header; v3 quotes are SGX).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TeeType {
    /// Intel SGX (`0x00000000`).
    Sgx,
    /// Intel TDX (`0x00000081`).
    Tdx,
}

impl TeeType {
    /// `sgx` or `tdx`, as results and configs spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            TeeType::Sgx => "sgx",
            TeeType::Tdx => "tdx",
        }
    }

    /// The wire value.
    pub fn to_u32(self) -> u32 {
        match self {
            TeeType::Sgx => 0,
            TeeType::Tdx => 0x81,
        }
    }
}

/// The 48-byte quote header (`sgx_quote_header_t`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Quote format version: 3, 4 or 5.
    pub version: u16,
    /// Attestation key type; always [`ATT_KEY_TYPE_ECDSA_P256`] here.
    pub att_key_type: u16,
    /// The TEE type (reserved and zero in v3, meaning SGX).
    pub tee_type: TeeType,
    /// Security version of the Quoting Enclave (v3: `qe_svn`; v4+: reserved).
    pub qe_svn: u16,
    /// Security version of the Provisioning Certification Enclave.
    pub pce_svn: u16,
    /// The QE vendor id.
    pub qe_vendor_id: [u8; 16],
    /// Custom user-defined data (for Intel's QE: the QE's platform identifier).
    pub user_data: [u8; 20],
}

/// An SGX enclave report body (`sgx_report_body_t`, 384 bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnclaveReport {
    /// CPUSVN of the platform.
    pub cpu_svn: [u8; 16],
    /// MISCSELECT.
    pub misc_select: u32,
    /// ISV extended product id.
    pub isv_ext_prod_id: [u8; 16],
    /// ATTRIBUTES (flags ‖ xfrm); bit 1 of byte 0 is DEBUG.
    pub attributes: [u8; 16],
    /// MRENCLAVE.
    pub mr_enclave: [u8; 32],
    /// MRSIGNER.
    pub mr_signer: [u8; 32],
    /// CONFIGID.
    pub config_id: [u8; 64],
    /// ISVPRODID.
    pub isv_prod_id: u16,
    /// ISVSVN.
    pub isv_svn: u16,
    /// CONFIGSVN.
    pub config_svn: u16,
    /// ISV family id.
    pub isv_family_id: [u8; 16],
    /// REPORTDATA.
    pub report_data: [u8; 64],
}

impl EnclaveReport {
    /// Whether the enclave was launched in debug mode (`ATTRIBUTES.DEBUG`).
    pub fn is_debug(&self) -> bool {
        self.attributes[0] & 0x02 != 0
    }

    fn parse(r: &mut Reader<'_>) -> Result<Self, Error> {
        let cpu_svn = r.array("cpu_svn")?;
        let misc_select = r.u32_le("misc_select")?;
        r.take(12, "reserved1")?;
        let isv_ext_prod_id = r.array("isv_ext_prod_id")?;
        let attributes = r.array("attributes")?;
        let mr_enclave = r.array("mr_enclave")?;
        r.take(32, "reserved2")?;
        let mr_signer = r.array("mr_signer")?;
        r.take(32, "reserved3")?;
        let config_id = r.array("config_id")?;
        let isv_prod_id = r.u16_le("isv_prod_id")?;
        let isv_svn = r.u16_le("isv_svn")?;
        let config_svn = r.u16_le("config_svn")?;
        r.take(42, "reserved4")?;
        let isv_family_id = r.array("isv_family_id")?;
        let report_data = r.array("report_data")?;
        Ok(Self {
            cpu_svn,
            misc_select,
            isv_ext_prod_id,
            attributes,
            mr_enclave,
            mr_signer,
            config_id,
            isv_prod_id,
            isv_svn,
            config_svn,
            isv_family_id,
            report_data,
        })
    }

    /// Parses exactly [`ENCLAVE_REPORT_SIZE`] bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(bytes, "quote");
        let report = Self::parse(&mut r)?;
        expect_consumed(&r, "enclave report")?;
        Ok(report)
    }
}

/// A TD 1.0 report body (584 bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TdReport10 {
    /// TEE_TCB_SVN: byte 0 is the TDX module ISVSVN, byte 1 its major version.
    pub tee_tcb_svn: [u8; 16],
    /// MRSEAM: measurement of the TDX module.
    pub mr_seam: [u8; 48],
    /// MRSIGNERSEAM: signer of the TDX module (zero for Intel's).
    pub mr_signer_seam: [u8; 48],
    /// SEAMATTRIBUTES.
    pub seam_attributes: [u8; 8],
    /// TDATTRIBUTES; bit 0 of byte 0 is DEBUG.
    pub td_attributes: [u8; 8],
    /// XFAM.
    pub xfam: [u8; 8],
    /// MRTD: measurement of the initial TD contents.
    pub mr_td: [u8; 48],
    /// MRCONFIGID.
    pub mr_config_id: [u8; 48],
    /// MROWNER.
    pub mr_owner: [u8; 48],
    /// MROWNERCONFIG.
    pub mr_owner_config: [u8; 48],
    /// RTMR0..RTMR3.
    pub rtmr: [[u8; 48]; 4],
    /// REPORTDATA.
    pub report_data: [u8; 64],
}

impl TdReport10 {
    /// Whether the TD is a debug TD (`TDATTRIBUTES.DEBUG`).
    pub fn is_debug(&self) -> bool {
        self.td_attributes[0] & 0x01 != 0
    }

    fn parse(r: &mut Reader<'_>) -> Result<Self, Error> {
        Ok(Self {
            tee_tcb_svn: r.array("tee_tcb_svn")?,
            mr_seam: r.array("mr_seam")?,
            mr_signer_seam: r.array("mr_signer_seam")?,
            seam_attributes: r.array("seam_attributes")?,
            td_attributes: r.array("td_attributes")?,
            xfam: r.array("xfam")?,
            mr_td: r.array("mr_td")?,
            mr_config_id: r.array("mr_config_id")?,
            mr_owner: r.array("mr_owner")?,
            mr_owner_config: r.array("mr_owner_config")?,
            rtmr: [
                r.array("rtmr0")?,
                r.array("rtmr1")?,
                r.array("rtmr2")?,
                r.array("rtmr3")?,
            ],
            report_data: r.array("report_data")?,
        })
    }
}

/// A TD 1.5 report body (648 bytes): TD 1.0 plus the current TCB and service TD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TdReport15 {
    /// The TD 1.0 fields.
    pub base: TdReport10,
    /// TEE_TCB_SVN2: the current TCB after a TD-preserving module update.
    pub tee_tcb_svn2: [u8; 16],
    /// MRSERVICETD: measurement of the bound service TDs (zero if none).
    pub mr_service_td: [u8; 48],
}

/// The report body of a quote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// SGX enclave report.
    Sgx(EnclaveReport),
    /// TD 1.0 report.
    Td10(TdReport10),
    /// TD 1.5 report.
    Td15(TdReport15),
}

impl Body {
    /// The TD 1.0 fields of a TDX body.
    pub fn td10(&self) -> Option<&TdReport10> {
        match self {
            Body::Sgx(_) => None,
            Body::Td10(td) => Some(td),
            Body::Td15(td) => Some(&td.base),
        }
    }

    /// REPORTDATA of the body.
    pub fn report_data(&self) -> &[u8; 64] {
        match self {
            Body::Sgx(e) => &e.report_data,
            Body::Td10(td) => &td.report_data,
            Body::Td15(td) => &td.base.report_data,
        }
    }
}

/// ECDSA-256 quote signature data, with the QE report certification data unwrapped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureData<'a> {
    /// ECDSA signature (r ‖ s) over header ‖ body by the attestation key.
    pub quote_signature: [u8; 64],
    /// The attestation public key (x ‖ y).
    pub attestation_key: [u8; 64],
    /// The QE report, parsed.
    pub qe_report: EnclaveReport,
    /// The QE report's exact bytes (what the PCK key signed).
    pub qe_report_raw: &'a [u8],
    /// ECDSA signature (r ‖ s) over the QE report by the PCK key.
    pub qe_report_signature: [u8; 64],
    /// QE authentication data.
    pub qe_auth_data: &'a [u8],
    /// The certification data of type 5: the PCK certificate chain, leaf first.
    pub pck_cert_chain: &'a [u8],
}

/// A parsed quote, borrowing from the bytes it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quote<'a> {
    /// The header.
    pub header: Header,
    /// The report body.
    pub body: Body,
    /// The bytes the attestation key signed: header and body (for v5 with its type and size).
    pub signed: &'a [u8],
    /// The signature data.
    pub signature: SignatureData<'a>,
    /// The quote's own length: where its length fields say it ends.
    pub len: usize,
    /// Bytes that followed the quote and were ignored (padding, text).
    pub trailing_len: usize,
}

impl<'a> Quote<'a> {
    /// The TEE type.
    pub fn tee_type(&self) -> TeeType {
        self.header.tee_type
    }

    /// Parses a quote. Bytes after the end its length fields give are ignored and
    /// counted in [`Quote::trailing_len`].
    ///
    /// # Errors
    /// [`Error::QuoteTooLarge`] before reading anything if `bytes` exceeds
    /// [`MAX_QUOTE_SIZE`]; otherwise a typed error naming the malformed field.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, Error> {
        if bytes.len() > MAX_QUOTE_SIZE {
            return Err(Error::QuoteTooLarge {
                size: bytes.len(),
                max: MAX_QUOTE_SIZE,
            });
        }
        let mut r = Reader::new(bytes, "quote");
        let header = parse_header(&mut r)?;
        let body = match header.version {
            3 => Body::Sgx(EnclaveReport::parse(&mut r)?),
            4 => match header.tee_type {
                TeeType::Sgx => Body::Sgx(EnclaveReport::parse(&mut r)?),
                TeeType::Tdx => Body::Td10(TdReport10::parse(&mut r)?),
            },
            _ => {
                let body_type = r.u16_le("body_type")?;
                let body_size = r.u32_le("body_size")?;
                let (expected_size, tee) = match body_type {
                    1 => (ENCLAVE_REPORT_SIZE, TeeType::Sgx),
                    2 => (TD10_REPORT_SIZE, TeeType::Tdx),
                    3 => (TD15_REPORT_SIZE, TeeType::Tdx),
                    other => return Err(Error::UnsupportedBodyType(other)),
                };
                if body_size as usize != expected_size {
                    return Err(Error::BodySizeMismatch {
                        body_type,
                        size: body_size,
                    });
                }
                if tee != header.tee_type {
                    return Err(Error::BodyTeeMismatch { body_type });
                }
                let mut b = r.sub(expected_size, "body")?;
                let body = match body_type {
                    1 => Body::Sgx(EnclaveReport::parse(&mut b)?),
                    2 => Body::Td10(TdReport10::parse(&mut b)?),
                    _ => Body::Td15(TdReport15 {
                        base: TdReport10::parse(&mut b)?,
                        tee_tcb_svn2: b.array("tee_tcb_svn2")?,
                        mr_service_td: b.array("mr_service_td")?,
                    }),
                };
                expect_consumed(&b, "body")?;
                body
            }
        };
        let signed = bytes.get(..r.position()).unwrap_or_default();
        let sig_len = r.u32_le("signature_data_len")? as usize;
        let mut s = r.sub(sig_len, "signature_data")?;
        let signature = parse_signature_data(&mut s, header.version)?;
        expect_consumed(&s, "signature data")?;
        Ok(Quote {
            header,
            body,
            signed,
            signature,
            len: r.position(),
            trailing_len: r.rest().len(),
        })
    }
}

fn parse_header(r: &mut Reader<'_>) -> Result<Header, Error> {
    let version = r.u16_le("version")?;
    let att_key_type = r.u16_le("att_key_type")?;
    let tee_raw = r.u32_le("tee_type")?;
    let qe_svn = r.u16_le("qe_svn")?;
    let pce_svn = r.u16_le("pce_svn")?;
    let qe_vendor_id = r.array("qe_vendor_id")?;
    let user_data = r.array("user_data")?;
    if !(3..=5).contains(&version) {
        return Err(Error::UnsupportedQuoteVersion(version));
    }
    if att_key_type != ATT_KEY_TYPE_ECDSA_P256 {
        return Err(Error::UnsupportedAttestationKeyType(att_key_type));
    }
    let tee_type = match (version, tee_raw) {
        (3, 0) | (4 | 5, 0) => TeeType::Sgx,
        (4 | 5, 0x81) => TeeType::Tdx,
        (_, other) => return Err(Error::UnsupportedTeeType(other)),
    };
    if qe_vendor_id != INTEL_QE_VENDOR_ID {
        return Err(Error::UnknownQeVendor);
    }
    Ok(Header {
        version,
        att_key_type,
        tee_type,
        qe_svn,
        pce_svn,
        qe_vendor_id,
        user_data,
    })
}

/// Upper bound for any certification data inside a quote (PCK chains are ~4 KiB).
const MAX_CERT_DATA: u32 = 32 * 1024;

fn parse_signature_data<'a>(r: &mut Reader<'a>, version: u16) -> Result<SignatureData<'a>, Error> {
    let quote_signature = r.array("quote_signature")?;
    let attestation_key = r.array("attestation_key")?;
    // v3 carries the QE report inline; v4/v5 wrap it in certification data type 6.
    let (qe, pck_cert_chain) = if version == 3 {
        (
            parse_qe_report_block(r)?,
            parse_cert_data(r, CERT_DATA_PCK_CHAIN)?,
        )
    } else {
        let mut c = Reader::new(
            parse_cert_data(r, CERT_DATA_QE_REPORT)?,
            "QE report certification data",
        );
        let qe = parse_qe_report_block(&mut c)?;
        let chain = parse_cert_data(&mut c, CERT_DATA_PCK_CHAIN)?;
        expect_consumed(&c, "QE report certification data")?;
        (qe, chain)
    };
    let (qe_report_raw, qe_report, qe_report_signature, qe_auth_data) = qe;
    Ok(SignatureData {
        quote_signature,
        attestation_key,
        qe_report,
        qe_report_raw,
        qe_report_signature,
        qe_auth_data,
        pck_cert_chain,
    })
}

/// QE report (raw and parsed), its signature and the QE authentication data.
type QeBlock<'a> = (&'a [u8], EnclaveReport, [u8; 64], &'a [u8]);

fn parse_qe_report_block<'a>(r: &mut Reader<'a>) -> Result<QeBlock<'a>, Error> {
    let raw = r.take(ENCLAVE_REPORT_SIZE, "qe_report")?;
    let report = EnclaveReport::from_bytes(raw)?;
    let sig = r.array("qe_report_signature")?;
    let auth_len = r.u16_le("qe_auth_data_len")?;
    let auth = r.take(auth_len as usize, "qe_auth_data")?;
    Ok((raw, report, sig, auth))
}

/// Reads a certification data header and body, requiring the given type.
fn parse_cert_data<'a>(r: &mut Reader<'a>, expected: u16) -> Result<&'a [u8], Error> {
    let ty = r.u16_le("certification_data_type")?;
    let size = r.u32_le("certification_data_size")?;
    if !(1..=7).contains(&ty) {
        return Err(Error::UnsupportedCertificationDataType(ty));
    }
    if ty != expected {
        return Err(Error::UnexpectedCertificationDataType {
            expected,
            found: ty,
        });
    }
    if size > MAX_CERT_DATA {
        return Err(Error::CertificationDataTooLarge { size });
    }
    Ok(r.take(size as usize, "certification_data")?)
}

fn expect_consumed(r: &Reader<'_>, structure: &'static str) -> Result<(), Error> {
    if r.is_empty() {
        Ok(())
    } else {
        Err(Error::TrailingData {
            structure,
            len: r.rest().len(),
        })
    }
}
