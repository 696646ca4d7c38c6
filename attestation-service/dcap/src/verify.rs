//! Quote verification: a pure function of (quote bytes, collateral, now, trust anchors),
//! written as Intel's QVL steps in order.
//!
//! | step | what is checked |
//! |---|---|
//! | 0 | the quote parses ([`Quote::parse`]) |
//! | 1 | PCK chain (leaf, Processor/Platform CA, root) chains by key and signature to a trust anchor; every certificate valid at `now` |
//! | 2 | root CA CRL signed by the root, PCK CRL signed by the PCK's own CA; both valid at `now`; neither the PCK CA, the PCK leaf nor the TCB signing certificate is listed |
//! | 3 | TCB Info: issuer chain to the anchor, ECDSA signature over its exact bytes, `issueDate <= now <= nextUpdate`, id fits the TEE |
//! | 4 | QE Identity: likewise; `QE` for SGX, `TD_QE` for TDX |
//! | 5 | FMSPC and PCE ID of the PCK certificate equal the TCB Info's |
//! | 6 | QE report signed by the PCK key; QE report data = SHA-256(attestation key ‖ QE auth data) ‖ 0^32 |
//! | 7 | QE report against the QE Identity (MRSIGNER, ISVPRODID, masked MISCSELECT and ATTRIBUTES), QE TCB level by ISVSVN |
//! | 8 | quote signature over header ‖ body by the attestation key |
//! | 9 | TCB level: SGX components and PCE SVN; TDX: TEE_TCB_SVN and the TDX module identity |
//! | 10 | status converged with the QE's and the module's; advisories of the matched TCB Info level |
//!
//! Steps 1–4 cost about eight ECDSA verifications that depend only on the collateral
//! and the PCK chain, step 6 one more that depends only on the platform's QE. A
//! [`Verifier`] caches their outcome keyed by the exact bytes checked (a SHA-256 over all
//! collateral pieces; the PCK chain's bytes; every byte step 6 reads), so a warm
//! verification costs one ECDSA verification (the quote's own), two SHA-256 and the
//! checks that depend on `now`, which are never cached. Within one cold verification
//! no certificate signature is checked twice ([`crate::pki::SigMemo`]).
//!
//! Debug enclaves, debug TDs and service TDs are reported in the output, not refused:
//! refusing them is policy.

use crate::collateral::{Collateral, EnclaveId, QeIdentity, QeTcbLevel, TcbInfo, TcbInfoId};
use crate::error::{CertRole, CrlRole, Doc, Error};
use crate::pck::PckExtension;
use crate::pki::{
    Cert, ChainShape, SigMemo, TrustAnchors, VerifiedChain, VerifiedCrl, parse_chain,
    verify_raw_signature,
};
use crate::quote::{Body, EnclaveReport, Quote, SignatureData, TeeType};
use crate::tcb::{
    PlatformTcb, TcbStatus, masked_eq, match_platform_level, match_qe_level, match_sgx_level,
    match_tdx_module, relaunch_check,
};
use serde::Serialize;
use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, RwLock};

/// Entries each cache of a [`Verifier`] holds before it starts over.
pub const CACHE_CAPACITY: usize = 4096;

/// Collateral whose signatures and chains have been verified (steps 2–4 without the
/// time checks). Only [`VerifiedCollateral::verify`] builds one.
#[derive(Debug)]
pub struct VerifiedCollateral {
    /// The parsed TCB Info.
    pub tcb_info: TcbInfo,
    /// The parsed QE Identity.
    pub qe_identity: QeIdentity,
    tcb_chain: VerifiedChain,
    qe_chain: VerifiedChain,
    pck_crl_chain: VerifiedChain,
    root_crl: VerifiedCrl,
    pck_crl: VerifiedCrl,
}

impl VerifiedCollateral {
    /// Verifies every signature of `c` against `anchors`.
    pub fn verify(c: &Collateral, anchors: &TrustAnchors) -> Result<Self, Error> {
        Self::verify_memo(c, anchors, &mut SigMemo::for_anchors(anchors))
    }

    ///
    /// Long on purpose: each collateral piece's chain, signature and shape check, in order,
    /// sharing one signature memo.
    fn verify_memo(
        c: &Collateral,
        anchors: &TrustAnchors,
        memo: &mut SigMemo,
    ) -> Result<Self, Error> {
        use CertRole::*;
        let tcb_chain = VerifiedChain::verify(
            parse_chain(
                &c.tcb_info_issuer_chain,
                &[TcbSigning, Root],
                "TCB Info issuer chain",
                memo,
            )?,
            anchors,
            memo,
        )?;
        // Intel serves one chain for both documents: verify it once.
        let qe_chain = if c.qe_identity_issuer_chain == c.tcb_info_issuer_chain {
            tcb_chain.clone()
        } else {
            VerifiedChain::verify(
                parse_chain(
                    &c.qe_identity_issuer_chain,
                    &[TcbSigning, Root],
                    "QE Identity issuer chain",
                    memo,
                )?,
                anchors,
                memo,
            )?
        };
        let pck_crl_chain = VerifiedChain::verify(
            parse_chain(
                &c.pck_crl_issuer_chain,
                &[PckIntermediate, Root],
                "PCK CRL issuer chain",
                memo,
            )?,
            anchors,
            memo,
        )?;
        // Roles are enforced, not just labelled: TCB Info and QE Identity only from the
        // TCB Signing certificate the root issued, the PCK CRL only from a PCK CA.
        tcb_chain.check_shape(ChainShape::TcbSigning)?;
        qe_chain.check_shape(ChainShape::TcbSigning)?;
        pck_crl_chain.check_shape(ChainShape::PckCrlIssuer)?;
        let Some(pck_ca) = pck_crl_chain.leaf() else {
            return Err(Error::ChainLength {
                what: "PCK CRL issuer chain",
                found: 0,
                expected: 2,
            });
        };
        let root_crl = VerifiedCrl::verify_by_anchor(&c.root_ca_crl, CrlRole::Root, anchors)?;
        let pck_crl = VerifiedCrl::verify(&c.pck_crl, CrlRole::Pck, pck_ca)?;
        let signed_doc = |chain: &VerifiedChain, body: &str, sig: &[u8], doc: Doc| {
            let ok = chain
                .leaf()
                .is_some_and(|leaf| verify_raw_signature(&leaf.public_key, body.as_bytes(), sig));
            if ok {
                Ok(())
            } else {
                Err(Error::CollateralSignatureInvalid { doc })
            }
        };
        signed_doc(&tcb_chain, &c.tcb_info, &c.tcb_info_signature, Doc::TcbInfo)?;
        let tcb_info = TcbInfo::parse(&c.tcb_info)?;
        signed_doc(
            &qe_chain,
            &c.qe_identity,
            &c.qe_identity_signature,
            Doc::QeIdentity,
        )?;
        let qe_identity = QeIdentity::parse(&c.qe_identity)?;
        Ok(Self {
            tcb_info,
            qe_identity,
            tcb_chain,
            qe_chain,
            pck_crl_chain,
            root_crl,
            pck_crl,
        })
    }

    /// The latest moment any piece of this collateral starts being valid.
    pub fn valid_from(&self) -> i64 {
        [
            self.tcb_info.issue_date,
            self.qe_identity.issue_date,
            self.root_crl.this_update,
            self.pck_crl.this_update,
            self.tcb_chain.not_before(),
            self.qe_chain.not_before(),
            self.pck_crl_chain.not_before(),
        ]
        .into_iter()
        .max()
        .unwrap_or(i64::MAX)
    }

    /// The first piece of this collateral that is older than the same piece of
    /// `other` — TCB Info or QE Identity by `tcbEvaluationDataNumber` or `issueDate`,
    /// a CRL by `thisUpdate` — or `None` when none is. Collateral never replaces, and
    /// never stands in for, newer collateral: an older TCB Info can undo a TCB
    /// recovery, an older PCK CRL a revocation.
    pub fn older_than(&self, other: &VerifiedCollateral) -> Option<&'static str> {
        let (a, b) = (self, other);
        if a.tcb_info.tcb_evaluation_data_number < b.tcb_info.tcb_evaluation_data_number
            || a.tcb_info.issue_date < b.tcb_info.issue_date
        {
            return Some("TCB Info");
        }
        if a.qe_identity.tcb_evaluation_data_number < b.qe_identity.tcb_evaluation_data_number
            || a.qe_identity.issue_date < b.qe_identity.issue_date
        {
            return Some("QE Identity");
        }
        if a.pck_crl.this_update < b.pck_crl.this_update {
            return Some("PCK CRL");
        }
        if a.root_crl.this_update < b.root_crl.this_update {
            return Some("Root CA CRL");
        }
        None
    }

    /// The earliest moment any piece of this collateral stops being valid.
    pub fn expiry(&self) -> i64 {
        [
            self.tcb_info.next_update,
            self.qe_identity.next_update,
            self.root_crl.next_update,
            self.pck_crl.next_update,
            self.tcb_chain.not_after(),
            self.qe_chain.not_after(),
            self.pck_crl_chain.not_after(),
        ]
        .into_iter()
        .min()
        .unwrap_or(i64::MIN)
    }
}

/// A PCK certificate chain verified to a trust anchor, with its SGX extension.
#[derive(Debug)]
pub struct VerifiedPck {
    chain: VerifiedChain,
    /// The SGX extension of the leaf.
    pub extension: PckExtension,
}

impl VerifiedPck {
    /// Verifies a PCK chain (PEM or DER, leaf first) to `anchors`.
    pub fn verify(chain_bytes: &[u8], anchors: &TrustAnchors) -> Result<Self, Error> {
        Self::verify_memo(chain_bytes, anchors, &mut SigMemo::for_anchors(anchors))
    }

    fn verify_memo(
        chain_bytes: &[u8],
        anchors: &TrustAnchors,
        memo: &mut SigMemo,
    ) -> Result<Self, Error> {
        use CertRole::*;
        let chain = VerifiedChain::verify(
            parse_chain(
                chain_bytes,
                &[PckLeaf, PckIntermediate, Root],
                "PCK certificate chain",
                memo,
            )?,
            anchors,
            memo,
        )?;
        chain.check_shape(ChainShape::Pck)?;
        let ext = chain
            .leaf()
            .and_then(|c| c.sgx_extension.as_deref())
            .ok_or(Error::MalformedPckExtension("absent"))?;
        let extension = PckExtension::parse(ext)?;
        Ok(Self { chain, extension })
    }
}

/// Hex-encoded bytes in JSON.
fn hex_ser<S: serde::Serializer, T: AsRef<[u8]>>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(v.as_ref()))
}

fn hex_rtmrs<S: serde::Serializer>(v: &[[u8; 48]; 4], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    let mut seq = s.serialize_seq(Some(4))?;
    for r in v {
        seq.serialize_element(&hex::encode(r))?;
    }
    seq.end()
}

/// The measurements a quote attests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "tee", rename_all = "lowercase")]
// A plain value returned once per verification: boxing the TDX variant buys nothing.
#[allow(clippy::large_enum_variant)]
pub enum Measurements {
    /// An SGX enclave.
    Sgx {
        /// MRENCLAVE.
        #[serde(serialize_with = "hex_ser")]
        mr_enclave: [u8; 32],
        /// MRSIGNER.
        #[serde(serialize_with = "hex_ser")]
        mr_signer: [u8; 32],
        /// ISVPRODID.
        isv_prod_id: u16,
        /// ISVSVN.
        isv_svn: u16,
        /// ATTRIBUTES.
        #[serde(serialize_with = "hex_ser")]
        attributes: [u8; 16],
        /// MISCSELECT.
        misc_select: u32,
        /// CONFIGID.
        #[serde(serialize_with = "hex_ser")]
        config_id: [u8; 64],
        /// CONFIGSVN.
        config_svn: u16,
    },
    /// A TDX trust domain.
    Tdx {
        /// MRTD.
        #[serde(serialize_with = "hex_ser")]
        mr_td: [u8; 48],
        /// RTMR0..3.
        #[serde(serialize_with = "hex_rtmrs")]
        rtmr: [[u8; 48]; 4],
        /// MRSEAM.
        #[serde(serialize_with = "hex_ser")]
        mr_seam: [u8; 48],
        /// MRSIGNERSEAM.
        #[serde(serialize_with = "hex_ser")]
        mr_signer_seam: [u8; 48],
        /// TDATTRIBUTES.
        #[serde(serialize_with = "hex_ser")]
        td_attributes: [u8; 8],
        /// XFAM.
        #[serde(serialize_with = "hex_ser")]
        xfam: [u8; 8],
        /// MRCONFIGID.
        #[serde(serialize_with = "hex_ser")]
        mr_config_id: [u8; 48],
        /// MROWNER.
        #[serde(serialize_with = "hex_ser")]
        mr_owner: [u8; 48],
        /// MROWNERCONFIG.
        #[serde(serialize_with = "hex_ser")]
        mr_owner_config: [u8; 48],
        /// TEE_TCB_SVN.
        #[serde(serialize_with = "hex_ser")]
        tee_tcb_svn: [u8; 16],
        /// MRSERVICETD (TD 1.5 bodies; zero when none is bound).
        #[serde(serialize_with = "hex_ser")]
        mr_service_td: [u8; 48],
    },
}

/// What a verified quote proves. Only the verifier builds one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct VerifiedQuote {
    /// Quote format version.
    pub quote_version: u16,
    /// The overall TCB status (platform converged with QE and TDX module).
    pub status: TcbStatus,
    /// Advisory IDs of the platform, TDX module and QE levels.
    pub advisory_ids: Vec<String>,
    /// The platform TCB level's status alone.
    pub platform_status: TcbStatus,
    /// The QE TCB level's status.
    pub qe_status: TcbStatus,
    /// The TDX module TCB level's status (TDX with a module version only).
    pub tdx_module_status: Option<TcbStatus>,
    /// `tcbDate` of the matched level (the earlier of platform and module), unix seconds.
    pub tcb_date: i64,
    /// `tcbEvaluationDataNumber` of the TCB Info used.
    pub tcb_evaluation_data_number: u32,
    /// `tcbDate` of the TCB Info's newest level when the platform matched an older one:
    /// the moment the platform's TCB was superseded (grace periods count from here).
    pub superseded_at: Option<i64>,
    /// `issueDate` of the TCB Info used (collateral age counts from here).
    pub tcb_info_issue_date: i64,
    /// FMSPC of the platform.
    #[serde(serialize_with = "hex_ser")]
    pub fmspc: [u8; 6],
    /// PCE ID.
    #[serde(serialize_with = "hex_ser")]
    pub pce_id: [u8; 2],
    /// The measurements.
    #[serde(flatten)]
    pub measurements: Measurements,
    /// REPORTDATA.
    #[serde(serialize_with = "hex_ser")]
    pub report_data: [u8; 64],
    /// The enclave or TD runs in debug mode.
    pub debug: bool,
    /// A service TD is bound (TD 1.5 MRSERVICETD non-zero).
    pub service_td: bool,
    /// The earliest expiry (unix seconds) among all collateral and certificates used.
    pub collateral_expiry: i64,
    /// The latest start of validity (unix seconds) among them: with
    /// `collateral_expiry`, the window in which this verification holds.
    pub collateral_valid_from: i64,
    /// Bytes that followed the quote and were ignored.
    pub trailing_bytes: usize,
}

impl VerifiedQuote {
    /// The TEE type.
    pub fn tee(&self) -> TeeType {
        match self.measurements {
            Measurements::Sgx { .. } => TeeType::Sgx,
            Measurements::Tdx { .. } => TeeType::Tdx,
        }
    }
}

/// A quote verifier with a fixed set of trust anchors and caches of verified
/// collateral and PCK chains. Cheap to share (`&self` everywhere).
#[derive(Debug)]
pub struct Verifier {
    anchors: TrustAnchors,
    collateral: RwLock<HashMap<[u8; 32], Arc<VerifiedCollateral>>>,
    pck: RwLock<HashMap<Vec<u8>, Arc<VerifiedPck>>>,
    qe_reports: RwLock<HashMap<Vec<u8>, ()>>,
}

impl Verifier {
    /// A verifier that trusts `anchors`. Production uses [`TrustAnchors::intel`].
    pub fn new(anchors: TrustAnchors) -> Self {
        Self {
            anchors,
            collateral: RwLock::default(),
            pck: RwLock::default(),
            qe_reports: RwLock::default(),
        }
    }

    /// The trust anchors.
    pub fn anchors(&self) -> &TrustAnchors {
        &self.anchors
    }

    /// Verifies collateral, or returns the cached outcome for exactly these bytes.
    pub fn verified_collateral(&self, c: &Collateral) -> Result<Arc<VerifiedCollateral>, Error> {
        cached_or(&self.collateral, &c.digest(), || {
            VerifiedCollateral::verify(c, &self.anchors)
        })
    }

    /// A PCK chain verified to the anchors (signatures and shape, not time), cached.
    pub fn verified_pck(&self, chain: &[u8]) -> Result<Arc<VerifiedPck>, Error> {
        cached_or(&self.pck, chain, || {
            VerifiedPck::verify(chain, &self.anchors)
        })
    }

    /// Verifies `quote` against `collateral` at `now` (unix seconds). Collateral seen
    /// for the first time is verified after the quote's PCK chain with one signature
    /// memo, as [`verify`] does: the PCK CA certificate both carry is checked once.
    pub fn verify(
        &self,
        quote: &[u8],
        collateral: &Collateral,
        now: i64,
    ) -> Result<VerifiedQuote, Error> {
        let key = collateral.digest();
        if let Some(col) = cached(&self.collateral, &key) {
            return self.verify_with(quote, &col, now);
        }
        let parsed = Quote::parse(quote)?;
        let chain = parsed.signature.pck_cert_chain;
        let mut memo = SigMemo::for_anchors(&self.anchors);
        let pck = cached_or(&self.pck, chain, || {
            VerifiedPck::verify_memo(chain, &self.anchors, &mut memo)
        })?;
        let col = cached_or(&self.collateral, &key, || {
            VerifiedCollateral::verify_memo(collateral, &self.anchors, &mut memo)
        })?;
        verify_parsed(
            &parsed,
            |key, sig| self.cached_qe_check(key, sig),
            &pck,
            &col,
            now,
        )
    }

    /// Verifies `quote` against collateral verified earlier (by
    /// [`Verifier::verified_collateral`]) at `now`: the fastest path.
    pub fn verify_with(
        &self,
        quote: &[u8],
        collateral: &VerifiedCollateral,
        now: i64,
    ) -> Result<VerifiedQuote, Error> {
        let quote = Quote::parse(quote)?;
        let pck = self.verified_pck(quote.signature.pck_cert_chain)?;
        verify_parsed(
            &quote,
            |key, sig| self.cached_qe_check(key, sig),
            &pck,
            collateral,
            now,
        )
    }

    /// Step 6 with a cache of successes, keyed by every byte the check reads: the PCK
    /// key, the QE report and its signature, the attestation key and the QE auth data.
    /// A platform's QE certifies one attestation key for many quotes.
    fn cached_qe_check(&self, pck_key: &[u8], sig: &SignatureData<'_>) -> Result<(), Error> {
        let mut key =
            Vec::with_capacity(pck_key.len() + 64 + 64 + 384 + sig.qe_auth_data.len() + 16);
        for part in [
            pck_key,
            &sig.attestation_key,
            sig.qe_report_raw,
            &sig.qe_report_signature,
            sig.qe_auth_data,
        ] {
            key.extend_from_slice(&(part.len() as u32).to_le_bytes());
            key.extend_from_slice(part);
        }
        if self.qe_reports.read().is_ok_and(|m| m.contains_key(&key)) {
            return Ok(());
        }
        check_qe_report(pck_key, sig)?;
        insert_bounded(&self.qe_reports, key, ());
        Ok(())
    }
}

/// The cached outcome under `key`, if any.
fn cached<Q, K, V>(map: &RwLock<HashMap<K, Arc<V>>>, key: &Q) -> Option<Arc<V>>
where
    K: Borrow<Q> + Hash + Eq,
    Q: Hash + Eq + ?Sized,
{
    map.read().ok().and_then(|m| m.get(key).cloned())
}

/// The cached outcome under `key`, or `make`'s, remembered when it succeeds.
fn cached_or<Q, K, V>(
    map: &RwLock<HashMap<K, Arc<V>>>,
    key: &Q,
    make: impl FnOnce() -> Result<V, Error>,
) -> Result<Arc<V>, Error>
where
    K: Borrow<Q> + Hash + Eq,
    Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
{
    if let Some(v) = cached(map, key) {
        return Ok(v);
    }
    let v = Arc::new(make()?);
    insert_bounded(map, key.to_owned(), v.clone());
    Ok(v)
}

fn insert_bounded<K: Hash + Eq, V>(map: &RwLock<HashMap<K, V>>, k: K, v: V) {
    if let Ok(mut m) = map.write() {
        if m.len() >= CACHE_CAPACITY {
            m.clear();
        }
        m.insert(k, v);
    }
}

/// Verifies a quote with no caching: the pure function of the design.
pub fn verify(
    quote: &[u8],
    collateral: &Collateral,
    now: i64,
    anchors: &TrustAnchors,
) -> Result<VerifiedQuote, Error> {
    let quote = Quote::parse(quote)?;
    let mut memo = SigMemo::for_anchors(anchors);
    let pck = VerifiedPck::verify_memo(quote.signature.pck_cert_chain, anchors, &mut memo)?;
    let col = VerifiedCollateral::verify_memo(collateral, anchors, &mut memo)?;
    verify_parsed(&quote, check_qe_report, &pck, &col, now)
}

/// Step 6: the QE report is signed by the PCK key and its report data is
/// SHA-256(attestation key ‖ QE auth data) ‖ 0^32. A pure function of its inputs.
pub fn check_qe_report(pck_key: &[u8], sig: &SignatureData<'_>) -> Result<(), Error> {
    if !verify_raw_signature(pck_key, sig.qe_report_raw, &sig.qe_report_signature) {
        return Err(Error::QeReportSignatureInvalid);
    }
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(&sig.attestation_key);
    ctx.update(sig.qe_auth_data);
    let digest = ctx.finish();
    let (bound, zeros) = sig.qe_report.report_data.split_at(32);
    if bound != digest.as_ref() || zeros.iter().any(|b| *b != 0) {
        return Err(Error::QeReportDataMismatch);
    }
    Ok(())
}

/// Steps 1–2: the PCK chain (signatures checked in [`VerifiedPck`]) valid at `now`,
/// the root and PCK CRLs valid and issued by the right keys, neither certificate
/// revoked. Returns the PCK leaf.
fn check_pck_chain<'a>(
    pck: &'a VerifiedPck,
    col: &VerifiedCollateral,
    now: i64,
) -> Result<&'a Cert, Error> {
    pck.chain.check_time(now)?;
    let (Some(leaf), Some(pck_ca)) = (pck.chain.leaf(), pck.chain.certs.get(1)) else {
        return Err(Error::ChainLength {
            what: "PCK certificate chain",
            found: pck.chain.certs.len(),
            expected: 3,
        });
    };
    col.root_crl.check_time(now)?;
    col.pck_crl.check_time(now)?;
    col.root_crl.check_not_revoked(pck_ca)?;
    if !col.pck_crl.issued_by_key(&pck_ca.public_key) {
        return Err(Error::CrlIssuerMismatch { role: CrlRole::Pck });
    }
    col.pck_crl.check_not_revoked(leaf)?;
    col.pck_crl_chain.check_time(now)?;
    Ok(leaf)
}

/// Steps 3–4: the TCB Info and QE Identity chains and documents valid at `now`, their
/// signers not revoked, and both made for this TEE (SGX: QE; TDX: TD_QE).
fn check_collateral_documents(
    col: &VerifiedCollateral,
    tee: TeeType,
    now: i64,
) -> Result<(), Error> {
    col.tcb_chain.check_time(now)?;
    if let Some(signer) = col.tcb_chain.leaf() {
        col.root_crl.check_not_revoked(signer)?;
    }
    let ti = &col.tcb_info;
    check_window(Doc::TcbInfo, ti.issue_date, ti.next_update, now)?;
    let (want_tcb, want_qe, tee_name) = match tee {
        TeeType::Sgx => (TcbInfoId::Sgx, EnclaveId::Qe, "SGX"),
        TeeType::Tdx => (TcbInfoId::Tdx, EnclaveId::TdQe, "TDX"),
    };
    if ti.id != want_tcb {
        return Err(Error::CollateralTeeMismatch {
            doc: Doc::TcbInfo,
            found: format!("{:?}", ti.id).to_uppercase(),
            tee: tee_name,
        });
    }
    col.qe_chain.check_time(now)?;
    if let Some(signer) = col.qe_chain.leaf() {
        col.root_crl.check_not_revoked(signer)?;
    }
    let qi = &col.qe_identity;
    check_window(Doc::QeIdentity, qi.issue_date, qi.next_update, now)?;
    if qi.id != want_qe {
        return Err(Error::CollateralTeeMismatch {
            doc: Doc::QeIdentity,
            found: format!("{:?}", qi.id),
            tee: tee_name,
        });
    }
    Ok(())
}

/// Step 7: the QE report matches the QE Identity (MRSIGNER, ISVPRODID, masked
/// MISCSELECT and ATTRIBUTES); returns the QE's TCB level.
fn check_qe_identity<'a>(qe: &EnclaveReport, qi: &'a QeIdentity) -> Result<&'a QeTcbLevel, Error> {
    if qe.mr_signer != qi.mrsigner {
        return Err(Error::QeIdentityMismatch { field: "MRSIGNER" });
    }
    if qe.isv_prod_id != qi.isv_prod_id {
        return Err(Error::QeIdentityMismatch { field: "ISVPRODID" });
    }
    if qe.misc_select & qi.miscselect_mask != qi.miscselect & qi.miscselect_mask {
        return Err(Error::QeIdentityMismatch {
            field: "MISCSELECT",
        });
    }
    if !masked_eq(&qe.attributes, &qi.attributes_mask, &qi.attributes) {
        return Err(Error::QeIdentityMismatch {
            field: "ATTRIBUTES",
        });
    }
    match_qe_level(qi, qe.isv_svn)
}

/// Steps 1–10 given the signature-checked PCK chain and collateral; `qe_check` is
/// step 6 ([`check_qe_report`], possibly cached). Intel's QVL order, one call per step;
/// the step numbers match the module doc.
fn verify_parsed(
    quote: &Quote<'_>,
    qe_check: impl FnOnce(&[u8], &SignatureData<'_>) -> Result<(), Error>,
    pck: &VerifiedPck,
    col: &VerifiedCollateral,
    now: i64,
) -> Result<VerifiedQuote, Error> {
    // Steps 1–2: the PCK chain at `now`, and the CRLs.
    let leaf = check_pck_chain(pck, col, now)?;
    // Steps 3–4: TCB Info and QE Identity for this TEE, valid at `now`.
    check_collateral_documents(col, quote.tee_type(), now)?;
    // Step 5: the platform is the one the TCB Info describes.
    check_platform(&pck.extension, &col.tcb_info)?;
    // Step 6: the QE report, signed by the PCK key.
    let sig = &quote.signature;
    qe_check(&leaf.public_key, sig)?;
    // Step 7: the QE is the one the QE Identity describes.
    let qe_level = check_qe_identity(&sig.qe_report, &col.qe_identity)?;
    // Step 8: the quote itself, signed by the attestation key the QE report binds.
    if !verify_raw_signature(&sig.attestation_key, quote.signed, &sig.quote_signature) {
        return Err(Error::QuoteSignatureInvalid);
    }
    // Steps 9–10: the TCB levels, converged.
    let tcb = converge_tcb(quote, &col.tcb_info, &pck.extension, qe_level.tcb_status)?;
    Ok(verified_quote(quote, pck, col, tcb))
}

/// Step 5: the PCK certificate's FMSPC and PCE ID are the TCB Info's.
fn check_platform(ext: &PckExtension, ti: &TcbInfo) -> Result<(), Error> {
    if ext.fmspc != ti.fmspc {
        return Err(Error::FmspcMismatch {
            pck: hex::encode(ext.fmspc),
            tcb_info: hex::encode(ti.fmspc),
        });
    }
    if ext.pce_id != ti.pce_id {
        return Err(Error::PceIdMismatch {
            pck: hex::encode(ext.pce_id),
            tcb_info: hex::encode(ti.pce_id),
        });
    }
    Ok(())
}

/// The TCB verdict of steps 9–10.
struct Converged {
    status: TcbStatus,
    advisory_ids: Vec<String>,
    platform_status: TcbStatus,
    qe_status: TcbStatus,
    tdx_module_status: Option<TcbStatus>,
    tcb_date: i64,
    superseded_at: Option<i64>,
}

/// Steps 9–10: the platform's TCB level (and the TDX module's), converged with the QE's
/// status. Advisories come from the matched TCB Info level alone, as Intel's QvE reports
/// them (module and QE levels' advisories are not merged).
fn converge_tcb(
    quote: &Quote<'_>,
    ti: &TcbInfo,
    ext: &PckExtension,
    qe_status: TcbStatus,
) -> Result<Converged, Error> {
    let td = quote.body.td10();
    let platform = PlatformTcb {
        sgx_components: &ext.sgx_components,
        pce_svn: ext.pce_svn,
        tee_tcb_svn: td.map(|t| &t.tee_tcb_svn),
    };
    let (position, level) = match_platform_level(ti, &platform)?;
    // The newest TCB level's date made this one stale (grace periods count from it).
    let superseded_at = position
        .checked_sub(1)
        .and_then(|_| ti.tcb_levels.first())
        .map(|newest| newest.tcb_date);
    let module = match td {
        Some(t) => match_tdx_module(ti, &t.tee_tcb_svn, &t.mr_signer_seam, &t.seam_attributes)?,
        None => None,
    };
    let mut status = level.tcb_status;
    let mut tcb_date = level.tcb_date;
    if let Some(m) = module {
        status = status.converge(m.tcb_status);
        tcb_date = tcb_date.min(m.tcb_date);
    }
    // TD 1.5: is a relaunch onto the newer module advised? (Intel checks this before
    // folding in the QE's status.)
    if let crate::quote::Body::Td15(td15) = &quote.body {
        let sgx = match_sgx_level(ti, &platform).map_or(status, |l| l.tcb_status);
        status = relaunch_check(
            ti,
            sgx,
            status,
            module.map(|m| m.tcb_status),
            qe_status,
            &td15.tee_tcb_svn2,
        )?;
    }
    Ok(Converged {
        status: status.converge_qe(qe_status),
        advisory_ids: level.advisory_ids.clone(),
        platform_status: level.tcb_status,
        qe_status,
        tdx_module_status: module.map(|m| m.tcb_status),
        tcb_date,
        superseded_at,
    })
}

/// The verified quote: what the checks established, and the windows they hold in.
fn verified_quote(
    quote: &Quote<'_>,
    pck: &VerifiedPck,
    col: &VerifiedCollateral,
    tcb: Converged,
) -> VerifiedQuote {
    let ti = &col.tcb_info;
    let (measurements, debug, service_td) = measurements(&quote.body);
    VerifiedQuote {
        quote_version: quote.header.version,
        status: tcb.status,
        advisory_ids: tcb.advisory_ids,
        platform_status: tcb.platform_status,
        qe_status: tcb.qe_status,
        tdx_module_status: tcb.tdx_module_status,
        tcb_date: tcb.tcb_date,
        tcb_evaluation_data_number: ti.tcb_evaluation_data_number,
        superseded_at: tcb.superseded_at,
        tcb_info_issue_date: ti.issue_date,
        fmspc: pck.extension.fmspc,
        pce_id: pck.extension.pce_id,
        measurements,
        report_data: *quote.body.report_data(),
        debug,
        service_td,
        collateral_expiry: col.expiry().min(pck.chain.not_after()),
        collateral_valid_from: col.valid_from().max(pck.chain.not_before()),
        trailing_bytes: quote.trailing_len,
    }
}

fn check_window(doc: Doc, issue_date: i64, next_update: i64, now: i64) -> Result<(), Error> {
    if now < issue_date || now > next_update {
        return Err(Error::CollateralNotValid {
            doc,
            issue_date,
            next_update,
            now,
        });
    }
    Ok(())
}

fn measurements(body: &Body) -> (Measurements, bool, bool) {
    match body {
        Body::Sgx(e) => (
            Measurements::Sgx {
                mr_enclave: e.mr_enclave,
                mr_signer: e.mr_signer,
                isv_prod_id: e.isv_prod_id,
                isv_svn: e.isv_svn,
                attributes: e.attributes,
                misc_select: e.misc_select,
                config_id: e.config_id,
                config_svn: e.config_svn,
            },
            e.is_debug(),
            false,
        ),
        Body::Td10(t) => tdx_measurements(t, [0u8; 48]),
        Body::Td15(t) => tdx_measurements(&t.base, t.mr_service_td),
    }
}

fn tdx_measurements(
    t: &crate::quote::TdReport10,
    mr_service_td: [u8; 48],
) -> (Measurements, bool, bool) {
    (
        Measurements::Tdx {
            mr_td: t.mr_td,
            rtmr: t.rtmr,
            mr_seam: t.mr_seam,
            mr_signer_seam: t.mr_signer_seam,
            td_attributes: t.td_attributes,
            xfam: t.xfam,
            mr_config_id: t.mr_config_id,
            mr_owner: t.mr_owner,
            mr_owner_config: t.mr_owner_config,
            tee_tcb_svn: t.tee_tcb_svn,
            mr_service_td,
        },
        t.is_debug(),
        mr_service_td != [0u8; 48],
    )
}
