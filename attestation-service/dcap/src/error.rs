//! The crate's one error type. Every variant names a fact and belongs to one
//! verification [`Step`]; [`Error::code`] gives a stable snake_case code for wire APIs.

use phalanx_types::codec::DecodeError;

/// The verification step an error comes from, in Intel's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Step {
    /// Parsing the quote.
    ParseQuote,
    /// Parsing or loading collateral.
    ParseCollateral,
    /// Step 1: the PCK certificate chain to the trusted root.
    PckChain,
    /// Step 2: root CA CRL and PCK CRL.
    Crl,
    /// Step 3: TCB Info signature, issuer chain and validity.
    TcbInfo,
    /// Step 4: QE Identity signature, issuer chain and validity.
    QeIdentity,
    /// Step 5: FMSPC and PCE ID of the PCK certificate against the TCB Info.
    PlatformMatch,
    /// Step 6: QE report signature by the PCK key and its report data.
    QeReport,
    /// Step 7: QE report against the QE Identity.
    QeIdentityMatch,
    /// Step 8: the quote signature by the attestation key.
    QuoteSignature,
    /// Step 9: TCB level matching (SGX components, PCE SVN, TDX components and module).
    TcbLevel,
}

impl Step {
    /// The stable snake_case name (as serialised).
    pub fn as_str(self) -> &'static str {
        match self {
            Step::ParseQuote => "parse_quote",
            Step::ParseCollateral => "parse_collateral",
            Step::PckChain => "pck_chain",
            Step::Crl => "crl",
            Step::TcbInfo => "tcb_info",
            Step::QeIdentity => "qe_identity",
            Step::PlatformMatch => "platform_match",
            Step::QeReport => "qe_report",
            Step::QeIdentityMatch => "qe_identity_match",
            Step::QuoteSignature => "quote_signature",
            Step::TcbLevel => "tcb_level",
        }
    }
}

/// Which certificate of a chain an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CertRole {
    /// The PCK leaf certificate.
    PckLeaf,
    /// The PCK intermediate (Processor or Platform CA).
    PckIntermediate,
    /// The TCB signing certificate (TCB Info and QE Identity issuer).
    TcbSigning,
    /// The root CA certificate as shipped in a chain.
    Root,
}

impl std::fmt::Display for CertRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CertRole::PckLeaf => "PCK certificate",
            CertRole::PckIntermediate => "PCK intermediate CA certificate",
            CertRole::TcbSigning => "TCB signing certificate",
            CertRole::Root => "root CA certificate",
        })
    }
}

/// Which CRL an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CrlRole {
    /// The root CA CRL.
    Root,
    /// The PCK (Processor or Platform CA) CRL.
    Pck,
}

impl std::fmt::Display for CrlRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CrlRole::Root => "root CA CRL",
            CrlRole::Pck => "PCK CRL",
        })
    }
}

/// A signed collateral document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Doc {
    /// TCB Info.
    TcbInfo,
    /// QE Identity (enclave identity).
    QeIdentity,
}

impl std::fmt::Display for Doc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Doc::TcbInfo => "TCB Info",
            Doc::QeIdentity => "QE Identity",
        })
    }
}

/// Everything that can go wrong parsing or verifying a quote.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ---- quote parsing ----
    /// The quote is larger than [`crate::quote::MAX_QUOTE_SIZE`].
    #[error("quote is {size} bytes, more than the {max} allowed")]
    QuoteTooLarge {
        /// Its size.
        size: usize,
        /// The bound.
        max: usize,
    },
    /// A field did not fit.
    #[error("{0}")]
    QuoteTruncated(#[from] DecodeError),
    /// The quote version is not 3, 4 or 5.
    #[error("unsupported quote version {0}")]
    UnsupportedQuoteVersion(u16),
    /// The attestation key type is not ECDSA-256-with-P-256.
    #[error("unsupported attestation key type {0}")]
    UnsupportedAttestationKeyType(u16),
    /// The TEE type is neither SGX nor TDX (or not allowed in this version).
    #[error("unsupported TEE type {0:#x}")]
    UnsupportedTeeType(u32),
    /// The QE vendor id is not Intel's.
    #[error("QE vendor id is not Intel's")]
    UnknownQeVendor,
    /// A v5 body type other than 1, 2, 3.
    #[error("unsupported v5 body type {0}")]
    UnsupportedBodyType(u16),
    /// A v5 body size that does not match its type.
    #[error("v5 body type {body_type} with size {size}")]
    BodySizeMismatch {
        /// Body type.
        body_type: u16,
        /// Declared size.
        size: u32,
    },
    /// A v5 body type of another TEE than the header's.
    #[error("v5 body type {body_type} does not match the header's TEE type")]
    BodyTeeMismatch {
        /// Body type.
        body_type: u16,
    },
    /// A certification data type outside Intel's 1..=7.
    #[error("unknown certification data type {0}")]
    UnsupportedCertificationDataType(u16),
    /// A known certification data type where another is required.
    #[error("certification data type {found} where type {expected} is required")]
    UnexpectedCertificationDataType {
        /// Required type.
        expected: u16,
        /// Type found.
        found: u16,
    },
    /// Certification data larger than any real one.
    #[error("certification data of {size} bytes is too large")]
    CertificationDataTooLarge {
        /// Declared size.
        size: u32,
    },
    /// Bytes left over inside a structure whose length was given.
    #[error("{len} unexpected bytes at the end of the {structure}")]
    TrailingData {
        /// The structure.
        structure: &'static str,
        /// How many bytes.
        len: usize,
    },

    // ---- collateral parsing ----
    /// A collateral piece is larger than allowed.
    #[error("{what} is {size} bytes, more than the {max} allowed")]
    CollateralTooLarge {
        /// Which piece.
        what: &'static str,
        /// Its size.
        size: usize,
        /// The bound.
        max: usize,
    },
    /// A collateral piece is malformed.
    #[error("malformed {what}: {reason}")]
    MalformedCollateral {
        /// Which piece.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// Collateral older than what the service already holds for the platform.
    #[error("the {what} is older than the one this service holds (rollback refused)")]
    CollateralRollback {
        /// Which piece.
        what: &'static str,
    },
    /// A certificate could not be parsed.
    #[error("malformed {role}: {reason}")]
    MalformedCertificate {
        /// Which certificate.
        role: CertRole,
        /// Why.
        reason: String,
    },
    /// A certificate chain has the wrong number of certificates.
    #[error("{what} has {found} certificates, expected {expected}")]
    ChainLength {
        /// Which chain.
        what: &'static str,
        /// Certificates found.
        found: usize,
        /// Certificates expected.
        expected: usize,
    },
    /// The PCK certificate lacks an SGX extension or has it malformed.
    #[error("PCK certificate SGX extension: {0}")]
    MalformedPckExtension(&'static str),
    /// A TCB Info or QE Identity of a version this verifier does not support.
    #[error("unsupported {doc} version {version}")]
    UnsupportedCollateralVersion {
        /// Which document.
        doc: Doc,
        /// Its version.
        version: u32,
    },

    // ---- chain, CRL, signatures, windows ----
    /// The chain does not end in a configured trust anchor.
    #[error("{role} chain does not end at a trusted root key")]
    UntrustedRoot {
        /// Whose chain.
        role: CertRole,
    },
    /// The issuer name of a certificate is not the subject of the next.
    #[error("{role} is not issued by the next certificate of its chain")]
    IssuerMismatch {
        /// Which certificate.
        role: CertRole,
    },
    /// A CA certificate lacks basicConstraints CA=true.
    #[error("{role} is not a CA certificate")]
    NotCa {
        /// Which certificate.
        role: CertRole,
    },
    /// A certificate is not where Intel's PKI puts it: wrong subject, a CA where a
    /// signing certificate belongs (or the reverse), or not issued directly by the
    /// expected issuer.
    #[error("the {role} does not have the shape of Intel's PKI: {reason}")]
    WrongChainShape {
        /// Which certificate.
        role: CertRole,
        /// What is wrong.
        reason: &'static str,
    },
    /// A certificate signature does not verify.
    #[error("signature of the {role} does not verify")]
    CertificateSignatureInvalid {
        /// Which certificate.
        role: CertRole,
    },
    /// A certificate is outside its validity window at `now`.
    #[error("{role} is not valid at {now} (valid {not_before}..={not_after})")]
    CertificateNotValid {
        /// Which certificate.
        role: CertRole,
        /// notBefore, unix seconds.
        not_before: i64,
        /// notAfter, unix seconds.
        not_after: i64,
        /// The time checked.
        now: i64,
    },
    /// A certificate is listed in a CRL.
    #[error("{role} is revoked")]
    CertificateRevoked {
        /// Which certificate.
        role: CertRole,
    },
    /// A CRL's signature does not verify against its issuer.
    #[error("signature of the {role} does not verify")]
    CrlSignatureInvalid {
        /// Which CRL.
        role: CrlRole,
    },
    /// A CRL is issued by someone else than the CA it must come from.
    #[error("{role} is not issued by the expected CA")]
    CrlIssuerMismatch {
        /// Which CRL.
        role: CrlRole,
    },
    /// A CRL is outside its window at `now`.
    #[error("{role} is not valid at {now} (valid {this_update}..={next_update})")]
    CrlNotValid {
        /// Which CRL.
        role: CrlRole,
        /// thisUpdate.
        this_update: i64,
        /// nextUpdate.
        next_update: i64,
        /// The time checked.
        now: i64,
    },
    /// A TCB Info or QE Identity signature does not verify.
    #[error("{doc} signature does not verify")]
    CollateralSignatureInvalid {
        /// Which document.
        doc: Doc,
    },
    /// A TCB Info or QE Identity is outside its window at `now`.
    #[error("{doc} is not valid at {now} (issued {issue_date}, next update {next_update})")]
    CollateralNotValid {
        /// Which document.
        doc: Doc,
        /// issueDate.
        issue_date: i64,
        /// nextUpdate.
        next_update: i64,
        /// The time checked.
        now: i64,
    },
    /// TCB Info or QE Identity of the wrong TEE for this quote.
    #[error("{doc} id {found:?} does not fit a {tee} quote")]
    CollateralTeeMismatch {
        /// Which document.
        doc: Doc,
        /// Its id.
        found: String,
        /// The quote's TEE.
        tee: &'static str,
    },

    // ---- platform, QE, quote ----
    /// FMSPC of the PCK certificate differs from the TCB Info's.
    #[error("FMSPC {pck} of the PCK certificate differs from the TCB Info's {tcb_info}")]
    FmspcMismatch {
        /// From the PCK certificate.
        pck: String,
        /// From the TCB Info.
        tcb_info: String,
    },
    /// PCE ID of the PCK certificate differs from the TCB Info's.
    #[error("PCE ID {pck} of the PCK certificate differs from the TCB Info's {tcb_info}")]
    PceIdMismatch {
        /// From the PCK certificate.
        pck: String,
        /// From the TCB Info.
        tcb_info: String,
    },
    /// The QE report signature does not verify with the PCK key.
    #[error("QE report signature does not verify with the PCK key")]
    QeReportSignatureInvalid,
    /// QE report data is not SHA-256(attestation key ‖ QE auth data) ‖ 0^32.
    #[error("QE report data does not bind the attestation key")]
    QeReportDataMismatch,
    /// The QE report does not match the QE Identity.
    #[error("QE report {field} does not match the QE Identity")]
    QeIdentityMismatch {
        /// The field.
        field: &'static str,
    },
    /// The QE ISVSVN is below every level of the QE Identity.
    #[error("QE ISVSVN {isv_svn} is below every QE Identity TCB level")]
    QeTcbLevelNotFound {
        /// The QE's ISVSVN.
        isv_svn: u16,
    },
    /// The quote signature does not verify with the attestation key.
    #[error("quote signature does not verify with the attestation key")]
    QuoteSignatureInvalid,
    /// No TCB level of the TCB Info is met by the platform (Intel's TCB_NOT_SUPPORTED).
    #[error("no TCB level of the TCB Info matches the platform")]
    TcbLevelNotFound,
    /// The TCB Info has no identity for the quote's TDX module version.
    #[error("TCB Info has no TDX module identity {id}")]
    TdxModuleIdentityNotFound {
        /// The identity id looked for (`TDX_xx`).
        id: String,
    },
    /// MRSIGNERSEAM or SEAMATTRIBUTES do not match the TDX module identity.
    #[error("TDX module {field} does not match the TCB Info")]
    TdxModuleMismatch {
        /// The field.
        field: &'static str,
    },
    /// The matched TDX module level carries a status a module level may not have
    /// (Intel accepts only UpToDate, OutOfDate and Revoked there).
    #[error("TDX module TCB level status {status} is not recognized")]
    UnrecognizedModuleTcbStatus {
        /// The status found.
        status: crate::tcb::TcbStatus,
    },
    /// The TDX module ISVSVN is below every module TCB level.
    #[error("TDX module ISVSVN {isv_svn} is below every module TCB level")]
    TdxModuleTcbLevelNotFound {
        /// The module's ISVSVN.
        isv_svn: u8,
    },
}

impl Error {
    /// The step this error belongs to ([`Step::as_str`] for its wire name).
    pub fn step(&self) -> Step {
        use Error::*;
        match self {
            QuoteTooLarge { .. }
            | QuoteTruncated(_)
            | UnsupportedQuoteVersion(_)
            | UnsupportedAttestationKeyType(_)
            | UnsupportedTeeType(_)
            | UnknownQeVendor
            | UnsupportedBodyType(_)
            | BodySizeMismatch { .. }
            | BodyTeeMismatch { .. }
            | UnsupportedCertificationDataType(_)
            | UnexpectedCertificationDataType { .. }
            | CertificationDataTooLarge { .. }
            | TrailingData { .. } => Step::ParseQuote,
            CollateralTooLarge { .. }
            | MalformedCollateral { .. }
            | CollateralRollback { .. }
            | UnsupportedCollateralVersion { .. } => Step::ParseCollateral,
            MalformedCertificate { role, .. }
            | UntrustedRoot { role }
            | IssuerMismatch { role }
            | NotCa { role }
            | WrongChainShape { role, .. }
            | CertificateSignatureInvalid { role }
            | CertificateNotValid { role, .. }
            | CertificateRevoked { role } => match role {
                CertRole::TcbSigning => Step::TcbInfo,
                _ => Step::PckChain,
            },
            ChainLength { .. } | MalformedPckExtension(_) => Step::PckChain,
            CrlSignatureInvalid { .. } | CrlIssuerMismatch { .. } | CrlNotValid { .. } => Step::Crl,
            CollateralSignatureInvalid { doc }
            | CollateralNotValid { doc, .. }
            | CollateralTeeMismatch { doc, .. } => match doc {
                Doc::TcbInfo => Step::TcbInfo,
                Doc::QeIdentity => Step::QeIdentity,
            },
            FmspcMismatch { .. } | PceIdMismatch { .. } => Step::PlatformMatch,
            QeReportSignatureInvalid | QeReportDataMismatch => Step::QeReport,
            QeIdentityMismatch { .. } | QeTcbLevelNotFound { .. } => Step::QeIdentityMatch,
            QuoteSignatureInvalid => Step::QuoteSignature,
            TcbLevelNotFound
            | TdxModuleIdentityNotFound { .. }
            | TdxModuleMismatch { .. }
            | UnrecognizedModuleTcbStatus { .. }
            | TdxModuleTcbLevelNotFound { .. } => Step::TcbLevel,
        }
    }

    /// A stable snake_case code for wire APIs and the command line (documented in the
    /// crate README table; never renamed once published).
    pub fn code(&self) -> &'static str {
        use Error::*;
        match self {
            QuoteTooLarge { .. } => "quote_too_large",
            QuoteTruncated(_) => "quote_truncated",
            UnsupportedQuoteVersion(_) => "unsupported_quote_version",
            UnsupportedAttestationKeyType(_) => "unsupported_attestation_key_type",
            UnsupportedTeeType(_) => "unsupported_tee_type",
            UnknownQeVendor => "unknown_qe_vendor",
            UnsupportedBodyType(_) => "unsupported_body_type",
            BodySizeMismatch { .. } => "body_size_mismatch",
            BodyTeeMismatch { .. } => "body_tee_mismatch",
            UnsupportedCertificationDataType(_) => "unsupported_certification_data_type",
            UnexpectedCertificationDataType { .. } => "unexpected_certification_data_type",
            CertificationDataTooLarge { .. } => "certification_data_too_large",
            TrailingData { .. } => "trailing_data",
            CollateralTooLarge { .. } => "collateral_too_large",
            MalformedCollateral { .. } => "malformed_collateral",
            CollateralRollback { .. } => "collateral_rollback",
            MalformedCertificate { .. } => "malformed_certificate",
            ChainLength { .. } => "chain_length",
            MalformedPckExtension(_) => "malformed_pck_extension",
            UnsupportedCollateralVersion { .. } => "unsupported_collateral_version",
            UntrustedRoot { .. } => "untrusted_root",
            IssuerMismatch { .. } => "issuer_mismatch",
            NotCa { .. } => "not_ca",
            WrongChainShape { .. } => "wrong_chain_shape",
            CertificateSignatureInvalid { .. } => "certificate_signature_invalid",
            CertificateNotValid { .. } => "certificate_not_valid",
            CertificateRevoked { .. } => "certificate_revoked",
            CrlSignatureInvalid { .. } => "crl_signature_invalid",
            CrlIssuerMismatch { .. } => "crl_issuer_mismatch",
            CrlNotValid { .. } => "crl_not_valid",
            CollateralSignatureInvalid { .. } => "collateral_signature_invalid",
            CollateralNotValid { .. } => "collateral_not_valid",
            CollateralTeeMismatch { .. } => "collateral_tee_mismatch",
            FmspcMismatch { .. } => "fmspc_mismatch",
            PceIdMismatch { .. } => "pce_id_mismatch",
            QeReportSignatureInvalid => "qe_report_signature_invalid",
            QeReportDataMismatch => "qe_report_data_mismatch",
            QeIdentityMismatch { .. } => "qe_identity_mismatch",
            QeTcbLevelNotFound { .. } => "qe_tcb_level_not_found",
            QuoteSignatureInvalid => "quote_signature_invalid",
            TcbLevelNotFound => "tcb_level_not_found",
            TdxModuleIdentityNotFound { .. } => "tdx_module_identity_not_found",
            TdxModuleMismatch { .. } => "tdx_module_mismatch",
            TdxModuleTcbLevelNotFound { .. } => "tdx_module_tcb_level_not_found",
            UnrecognizedModuleTcbStatus { .. } => "tcb_status_unrecognized",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_names_match_their_serialisation() {
        use Step::*;
        for s in [
            ParseQuote,
            ParseCollateral,
            PckChain,
            Crl,
            TcbInfo,
            QeIdentity,
            PlatformMatch,
            QeReport,
            QeIdentityMatch,
            QuoteSignature,
            TcbLevel,
        ] {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
    }
}
