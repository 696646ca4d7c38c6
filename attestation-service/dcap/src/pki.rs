//! X.509 for DCAP: certificates, CRLs and chains, checked "by key and signature".
//!
//! Intel ships the same Root CA (and the same TCB Signing certificate) in several
//! issues with one key, so a chain is trusted when its last certificate carries a
//! pinned [`TrustAnchors`] key and every signature along it verifies; certificate bytes
//! are never compared. Parsing uses `x509-parser`; every signature is checked with
//! `ring` (ECDSA P-256 with SHA-256), which is several times faster than pure Rust here.
//!
//! Everything here is pure: time comes in as `now` (unix seconds).

use crate::error::{CertRole, CrlRole, Error};
use phalanx_types::codec::Reader;
use ring::signature::{ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};
use x509_parser::oid_registry::OID_SIG_ECDSA_WITH_SHA256;
use x509_parser::prelude::*;

/// Intel SGX Root CA certificate (DER), the production trust anchor.
pub const INTEL_SGX_ROOT_CA_DER: &[u8] =
    include_bytes!("../testdata/Intel_SGX_Provisioning_Certification_RootCA.der");

/// Largest PEM or DER certificate chain accepted.
pub const MAX_CHAIN_SIZE: usize = 32 * 1024;
/// Largest CRL accepted (Intel's PCK CRLs with many entries stay well below).
pub const MAX_CRL_SIZE: usize = 1024 * 1024;

/// OID of Intel's SGX extension in PCK certificates, 1.2.840.113741.1.13.1 (compared as
/// an OID, never formatted as text).
pub const OID_SGX_EXTENSION: x509_parser::der_parser::Oid<'static> =
    x509_parser::der_parser::oid!(1.2.840.113741.1.13.1);

/// Root certificates a chain may end in. Chains are matched by key (and name);
/// a root in a chain that is byte-identical to an anchor needs no self-signature check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustAnchors {
    certs: Vec<Cert>,
}

impl TrustAnchors {
    /// Intel's SGX Root CA only: the production configuration.
    pub fn intel() -> Self {
        // The embedded root is a known-good constant, tested below.
        Self::from_der_certs(&[INTEL_SGX_ROOT_CA_DER]).unwrap_or_else(|_| Self::none())
    }

    /// No anchors at all: every chain is refused.
    pub fn none() -> Self {
        Self { certs: Vec::new() }
    }

    /// Anchors from root certificates (DER).
    pub fn from_der_certs(ders: &[&[u8]]) -> Result<Self, Error> {
        let certs = ders
            .iter()
            .map(|der| Cert::parse(der, CertRole::Root))
            .collect::<Result<_, _>>()?;
        Ok(Self { certs })
    }

    /// Anchors from PEM text holding one or more root certificates.
    pub fn from_pem(pem: &[u8]) -> Result<Self, Error> {
        let ders = split_chain(pem, "trust anchor PEM")?;
        let refs: Vec<&[u8]> = ders.iter().map(Vec::as_slice).collect();
        Self::from_der_certs(&refs)
    }

    /// Whether `key` (an uncompressed SEC1 point) is an anchor.
    pub fn contains(&self, key: &[u8]) -> bool {
        self.certs.iter().any(|c| c.public_key == key)
    }

    /// Whether `der` is exactly one of the anchor certificates.
    fn is_anchor_cert(&self, der: &[u8]) -> bool {
        self.certs.iter().any(|c| c.der == der)
    }

    /// The anchors named `subject` (raw DER name).
    fn named<'s>(&'s self, subject: &'s [u8]) -> impl Iterator<Item = &'s Cert> + 's {
        self.certs.iter().filter(move |c| c.subject == subject)
    }
}

/// A parsed certificate, owning what verification needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cert {
    /// The role this certificate plays (for errors).
    pub role: CertRole,
    der: Vec<u8>,
    tbs: Vec<u8>,
    signature: Vec<u8>,
    /// Subject public key, uncompressed SEC1 point.
    pub public_key: Vec<u8>,
    subject: Vec<u8>,
    issuer: Vec<u8>,
    /// notBefore, unix seconds.
    pub not_before: i64,
    /// notAfter, unix seconds.
    pub not_after: i64,
    /// Serial number bytes (as encoded, big-endian).
    pub serial: Vec<u8>,
    is_ca: bool,
    /// The subject's common name, if it has exactly one readable one.
    common_name: Option<String>,
    /// The raw value of Intel's SGX extension, if present.
    pub sgx_extension: Option<Vec<u8>>,
}

impl Cert {
    /// Parses a DER certificate. Requires ecdsa-with-SHA256 and no trailing bytes.
    pub fn parse(der: &[u8], role: CertRole) -> Result<Self, Error> {
        let bad = |reason: String| Error::MalformedCertificate { role, reason };
        let (rest, cert) = X509Certificate::from_der(der).map_err(|e| bad(e.to_string()))?;
        if !rest.is_empty() {
            return Err(bad(format!("{} trailing bytes", rest.len())));
        }
        if cert.signature_algorithm.algorithm != OID_SIG_ECDSA_WITH_SHA256 {
            return Err(bad("signature algorithm is not ecdsa-with-SHA256".into()));
        }
        let is_ca = matches!(cert.basic_constraints(), Ok(Some(bc)) if bc.value.ca);
        let mut cns = cert.subject().iter_common_name();
        let common_name = match (cns.next(), cns.next()) {
            (Some(cn), None) => cn.as_str().ok().map(str::to_owned),
            _ => None,
        };
        let mut sgx_extension = None;
        for ext in cert.extensions() {
            if ext.oid == OID_SGX_EXTENSION {
                sgx_extension = Some(ext.value.to_vec());
            }
        }
        Ok(Self {
            role,
            der: der.to_vec(),
            tbs: cert.tbs_certificate.as_ref().to_vec(),
            signature: cert.signature_value.data.to_vec(),
            public_key: cert.public_key().subject_public_key.data.to_vec(),
            subject: cert.subject().as_raw().to_vec(),
            issuer: cert.issuer().as_raw().to_vec(),
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
            serial: cert.raw_serial().to_vec(),
            is_ca,
            common_name,
            sgx_extension,
        })
    }

    /// Whether this certificate's signature verifies under `issuer_key`, remembering
    /// successes in `memo` so one verification never checks the same pair twice.
    fn signed_by_memo(&self, issuer_key: &[u8], memo: &mut SigMemo) -> bool {
        if memo
            .seen
            .iter()
            .any(|(der, key)| *der == self.der && key == issuer_key)
        {
            return true;
        }
        let ok = self.signed_by(issuer_key);
        if ok {
            memo.seen.push((self.der.clone(), issuer_key.to_vec()));
        }
        ok
    }

    /// Whether this certificate's signature verifies under `issuer_key`.
    fn signed_by(&self, issuer_key: &[u8]) -> bool {
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, issuer_key)
            .verify(&self.tbs, &self.signature)
            .is_ok()
    }

    /// Fails unless `not_before <= now <= not_after`.
    pub fn check_time(&self, now: i64) -> Result<(), Error> {
        if now < self.not_before || now > self.not_after {
            return Err(Error::CertificateNotValid {
                role: self.role,
                not_before: self.not_before,
                not_after: self.not_after,
                now,
            });
        }
        Ok(())
    }
}

/// Verifies a raw (r ‖ s) ECDSA P-256 SHA-256 signature with an uncompressed key or a
/// raw 64-byte x ‖ y key.
pub fn verify_raw_signature(key: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    let mut point = [0u8; 65];
    let key = if key.len() == 64 {
        point[0] = 0x04;
        if let Some(dst) = point.get_mut(1..) {
            dst.copy_from_slice(key);
        }
        &point[..]
    } else {
        key
    };
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, key)
        .verify(msg, sig)
        .is_ok()
}

/// Work already done during one verification, keyed by exact bytes: certificates parsed
/// (seeded with the anchors) and certificate signatures verified under an issuer key.
/// The same intermediate and root arrive in several chains of one quote and its
/// collateral; each is parsed and checked once.
#[derive(Debug, Default)]
pub struct SigMemo {
    seen: Vec<(Vec<u8>, Vec<u8>)>,
    parsed: Vec<Cert>,
}

impl SigMemo {
    /// A memo that already knows the anchors' certificates, so byte-identical copies of
    /// them in chains are not parsed again.
    pub fn for_anchors(anchors: &TrustAnchors) -> Self {
        Self {
            seen: Vec::new(),
            parsed: anchors.certs.clone(),
        }
    }

    /// Parses `der` as `role`, or reuses an earlier parse of the same bytes.
    fn parse(&mut self, der: &[u8], role: CertRole) -> Result<Cert, Error> {
        if let Some(c) = self.parsed.iter().find(|c| c.der == der) {
            let mut c = c.clone();
            c.role = role;
            return Ok(c);
        }
        let c = Cert::parse(der, role)?;
        self.parsed.push(c.clone());
        Ok(c)
    }
}

/// A certificate chain, leaf first, whose signatures and anchor have been checked.
/// Validity windows depend on `now` and are checked by [`VerifiedChain::check_time`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedChain {
    /// The certificates, leaf first, root last.
    pub certs: Vec<Cert>,
    /// Whether the last certificate is the anchor itself (else it was left out and the
    /// last certificate is signed by an anchor).
    root_included: bool,
}

/// Subject common name of Intel's SGX Root CA.
pub const CN_ROOT: &str = "Intel SGX Root CA";
/// Subject common name of the certificate that signs TCB Info and QE Identity.
pub const CN_TCB_SIGNING: &str = "Intel SGX TCB Signing";
/// Subject common names of the PCK intermediate CAs.
pub const CN_PCK_CAS: [&str; 2] = ["Intel SGX PCK Processor CA", "Intel SGX PCK Platform CA"];
/// Subject common name of a PCK certificate.
pub const CN_PCK: &str = "Intel SGX PCK Certificate";

/// The chains of Intel's DCAP PKI, as Intel's QVL accepts them. Each is anchored in the
/// root; roles are enforced, not only labelled, so no key of the PKI can stand in for
/// another (a PCK key, say, signing TCB Info).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainShape {
    /// TCB Info / QE Identity issuer: `TCB Signing ← Root`; the signing certificate is
    /// issued directly by the root and is not a CA.
    TcbSigning,
    /// PCK CRL issuer: `PCK Processor|Platform CA ← Root`, a CA issued directly by the
    /// root.
    PckCrlIssuer,
    /// A PCK chain: `PCK Certificate ← PCK Processor|Platform CA ← Root`; the leaf is
    /// not a CA.
    Pck,
}

impl VerifiedChain {
    /// Checks signatures along `certs` (leaf first). The chain ends either in a
    /// certificate carrying an anchor key, self-signed by it, or in a certificate
    /// signed by an anchor of its issuer name (the root left out, as some PCCS
    /// issuer chains do). Every issuer must be a CA.
    pub fn verify(
        certs: Vec<Cert>,
        anchors: &TrustAnchors,
        memo: &mut SigMemo,
    ) -> Result<Self, Error> {
        let Some(last) = certs.last() else {
            return Err(Error::ChainLength {
                what: "certificate chain",
                found: 0,
                expected: 2,
            });
        };
        for pair in certs.windows(2) {
            let [child, parent] = pair else { continue };
            if child.issuer != parent.subject {
                return Err(Error::IssuerMismatch { role: child.role });
            }
            if !parent.is_ca {
                return Err(Error::NotCa { role: parent.role });
            }
            if !child.signed_by_memo(&parent.public_key, memo) {
                return Err(Error::CertificateSignatureInvalid { role: child.role });
            }
        }
        let untrusted = || Error::UntrustedRoot {
            role: certs.first().map_or(last.role, |c| c.role),
        };
        if anchors.contains(&last.public_key) {
            if last.issuer != last.subject {
                return Err(Error::IssuerMismatch { role: last.role });
            }
            let is_anchor_itself = anchors.is_anchor_cert(&last.der);
            if !is_anchor_itself && !last.signed_by_memo(&last.public_key, memo) {
                return Err(Error::CertificateSignatureInvalid { role: last.role });
            }
        } else {
            let mut keys = anchors
                .named(&last.issuer)
                .map(|a| a.public_key.as_slice())
                .peekable();
            // A self-issued root of a key we do not pin is another PKI, whatever its name.
            if last.issuer == last.subject || keys.peek().is_none() {
                return Err(untrusted());
            }
            if !keys.any(|k| last.signed_by_memo(k, memo)) {
                return Err(Error::CertificateSignatureInvalid { role: last.role });
            }
        }
        let root_included = anchors.contains(&last.public_key);
        Ok(Self {
            certs,
            root_included,
        })
    }

    /// Checks that the chain has `shape`: how many certificates lie below the root,
    /// which are CAs, and their subject common names.
    pub fn check_shape(&self, shape: ChainShape) -> Result<(), Error> {
        let below_root = match self.root_included {
            true => self.certs.get(..self.certs.len().saturating_sub(1)),
            false => self.certs.get(..),
        }
        .unwrap_or_default();
        let expect = |c: &Cert, ca: bool, names: &[&str]| -> Result<(), Error> {
            let wrong = |reason| {
                Err(Error::WrongChainShape {
                    role: c.role,
                    reason,
                })
            };
            if c.is_ca != ca {
                return wrong(if ca {
                    "not a CA certificate"
                } else {
                    "a CA certificate where a signing certificate belongs"
                });
            }
            if !c
                .common_name
                .as_deref()
                .is_some_and(|cn| names.contains(&cn))
            {
                return wrong("unexpected subject common name");
            }
            Ok(())
        };
        let depth = |want: usize, role: CertRole| {
            if below_root.len() == want {
                Ok(())
            } else {
                Err(Error::WrongChainShape {
                    role,
                    reason: "not issued by the expected issuer under the root",
                })
            }
        };
        match (shape, below_root) {
            (ChainShape::TcbSigning, [signing]) => expect(signing, false, &[CN_TCB_SIGNING]),
            (ChainShape::PckCrlIssuer, [ca]) => expect(ca, true, &CN_PCK_CAS),
            (ChainShape::Pck, [leaf, ca]) => {
                expect(leaf, false, &[CN_PCK])?;
                expect(ca, true, &CN_PCK_CAS)
            }
            (ChainShape::TcbSigning, _) => depth(1, CertRole::TcbSigning),
            (ChainShape::PckCrlIssuer, _) => depth(1, CertRole::PckIntermediate),
            (ChainShape::Pck, _) => depth(2, CertRole::PckLeaf),
        }
    }

    /// The issuer of the chain's top: the root in it, or `None` when it was left out.
    pub fn root(&self) -> Option<&Cert> {
        self.certs.last().filter(|c| c.role == CertRole::Root)
    }

    /// Every certificate of the chain is within its validity window at `now`.
    pub fn check_time(&self, now: i64) -> Result<(), Error> {
        self.certs.iter().try_for_each(|c| c.check_time(now))
    }

    /// The leaf certificate.
    pub fn leaf(&self) -> Option<&Cert> {
        self.certs.first()
    }

    /// The latest notBefore in the chain.
    pub fn not_before(&self) -> i64 {
        self.certs
            .iter()
            .map(|c| c.not_before)
            .max()
            .unwrap_or(i64::MAX)
    }

    /// The earliest notAfter in the chain.
    pub fn not_after(&self) -> i64 {
        self.certs
            .iter()
            .map(|c| c.not_after)
            .min()
            .unwrap_or(i64::MIN)
    }
}

/// Byte strings stored back to back: cheap to build from a CRL with many entries.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct FlatSet {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl<'a> FromIterator<&'a [u8]> for FlatSet {
    fn from_iter<I: IntoIterator<Item = &'a [u8]>>(iter: I) -> Self {
        let mut set = FlatSet::default();
        for item in iter {
            set.bytes.extend_from_slice(item);
            set.ends.push(set.bytes.len());
        }
        set
    }
}

impl FlatSet {
    fn contains(&self, needle: &[u8]) -> bool {
        let mut start = 0;
        self.ends.iter().any(|&end| {
            let hit = self.bytes.get(start..end) == Some(needle);
            start = end;
            hit
        })
    }
}

/// A CRL whose signature has been checked against its issuer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCrl {
    /// Which CRL.
    pub role: CrlRole,
    /// thisUpdate, unix seconds.
    pub this_update: i64,
    /// nextUpdate, unix seconds.
    pub next_update: i64,
    issuer_key: Vec<u8>,
    /// Revoked serial numbers, concatenated (two allocations for the whole list).
    revoked: FlatSet,
}

impl VerifiedCrl {
    /// Parses a DER CRL and checks that `issuer` issued and signed it.
    pub fn verify(der: &[u8], role: CrlRole, issuer: &Cert) -> Result<Self, Error> {
        Self::verify_by(der, role, &issuer.subject, &issuer.public_key)
    }

    /// Parses a DER CRL and checks that one of the `anchors` issued and signed it.
    pub fn verify_by_anchor(
        der: &[u8],
        role: CrlRole,
        anchors: &TrustAnchors,
    ) -> Result<Self, Error> {
        let mut last = Error::CrlIssuerMismatch { role };
        for anchor in &anchors.certs {
            match Self::verify_by(der, role, &anchor.subject, &anchor.public_key) {
                Ok(crl) => return Ok(crl),
                Err(e @ (Error::CrlIssuerMismatch { .. } | Error::CrlSignatureInvalid { .. })) => {
                    last = e
                }
                Err(e) => return Err(e),
            }
        }
        Err(last)
    }

    fn verify_by(
        der: &[u8],
        role: CrlRole,
        issuer_subject: &[u8],
        issuer_key: &[u8],
    ) -> Result<Self, Error> {
        let bad = |reason: String| Error::MalformedCollateral {
            what: match role {
                CrlRole::Root => "root CA CRL",
                CrlRole::Pck => "PCK CRL",
            },
            reason,
        };
        if der.len() > MAX_CRL_SIZE {
            return Err(Error::CollateralTooLarge {
                what: "CRL",
                size: der.len(),
                max: MAX_CRL_SIZE,
            });
        }
        let (rest, crl) =
            CertificateRevocationList::from_der(der).map_err(|e| bad(e.to_string()))?;
        if !rest.is_empty() {
            return Err(bad(format!("{} trailing bytes", rest.len())));
        }
        if crl.signature_algorithm.algorithm != OID_SIG_ECDSA_WITH_SHA256 {
            return Err(bad("signature algorithm is not ecdsa-with-SHA256".into()));
        }
        if crl.issuer().as_raw() != issuer_subject {
            return Err(Error::CrlIssuerMismatch { role });
        }
        let tbs = first_tlv_of_sequence(der).ok_or_else(|| bad("bad DER framing".into()))?;
        let ok = UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, issuer_key)
            .verify(tbs, &crl.signature_value.data)
            .is_ok();
        if !ok {
            return Err(Error::CrlSignatureInvalid { role });
        }
        let next_update = crl
            .next_update()
            .ok_or_else(|| bad("no nextUpdate".into()))?
            .timestamp();
        Ok(Self {
            role,
            this_update: crl.last_update().timestamp(),
            next_update,
            issuer_key: issuer_key.to_vec(),
            revoked: FlatSet::from_iter(crl.iter_revoked_certificates().map(|r| r.raw_serial())),
        })
    }

    /// Fails unless `this_update <= now <= next_update`.
    pub fn check_time(&self, now: i64) -> Result<(), Error> {
        if now < self.this_update || now > self.next_update {
            return Err(Error::CrlNotValid {
                role: self.role,
                this_update: self.this_update,
                next_update: self.next_update,
                now,
            });
        }
        Ok(())
    }

    /// Fails if `cert` (issued by this CRL's issuer) is listed.
    pub fn check_not_revoked(&self, cert: &Cert) -> Result<(), Error> {
        if self.revoked.contains(&cert.serial) {
            return Err(Error::CertificateRevoked { role: cert.role });
        }
        Ok(())
    }

    /// Whether this CRL was signed by the holder of `key`.
    pub fn issued_by_key(&self, key: &[u8]) -> bool {
        self.issuer_key == key
    }
}

/// The complete encoding of the first element inside a DER SEQUENCE (the `tbs` part
/// of a signed structure).
fn first_tlv_of_sequence(der: &[u8]) -> Option<&[u8]> {
    let mut r = Reader::new(der, "DER");
    if r.take(1, "tag").ok()? != [0x30] {
        return None;
    }
    der_len(&mut r)?;
    let start = r.position();
    r.take(1, "tag").ok()?;
    let len = der_len(&mut r)?;
    r.take(len, "value").ok()?;
    der.get(start..r.position())
}

fn der_len(r: &mut Reader<'_>) -> Option<usize> {
    let first = *r.take(1, "len").ok()?.first()?;
    if first < 0x80 {
        return Some(first as usize);
    }
    let n = (first & 0x7f) as usize;
    if n == 0 || n > 4 {
        return None;
    }
    r.take(n, "len")
        .ok()?
        .iter()
        .try_fold(0usize, |acc, b| Some((acc << 8) | *b as usize))
}

/// Splits a certificate chain given as PEM text (any number of CERTIFICATE blocks) or
/// as concatenated DER into DER certificates, in order.
pub fn split_chain(bytes: &[u8], what: &'static str) -> Result<Vec<Vec<u8>>, Error> {
    if bytes.len() > MAX_CHAIN_SIZE {
        return Err(Error::CollateralTooLarge {
            what,
            size: bytes.len(),
            max: MAX_CHAIN_SIZE,
        });
    }
    let bad = |reason: String| Error::MalformedCollateral { what, reason };
    // Quotes may NUL-terminate the PEM text.
    let trimmed = trim_trailing(bytes);
    if trimmed.first() == Some(&0x30) {
        let mut out = Vec::new();
        let mut rest = trimmed;
        while !rest.is_empty() {
            let mut r = Reader::new(rest, "DER certificate chain");
            r.take(1, "tag").map_err(|e| bad(e.to_string()))?;
            let len = der_len(&mut r).ok_or_else(|| bad("bad DER length".into()))?;
            r.take(len, "certificate").map_err(|e| bad(e.to_string()))?;
            let (cert, tail) = rest.split_at(r.position());
            out.push(cert.to_vec());
            rest = tail;
        }
        return Ok(out);
    }
    let out = split_pem_certificates(trimmed).map_err(|reason| bad(reason.into()))?;
    if out.is_empty() {
        return Err(bad("no certificate found".into()));
    }
    Ok(out)
}

/// The DER contents of every `CERTIFICATE` block of PEM text (RFC 7468), in order.
/// Text between blocks is ignored; a block of another label, an `END` line that does
/// not match its `BEGIN`, or bad base64 is an error.
fn split_pem_certificates(text: &[u8]) -> Result<Vec<Vec<u8>>, &'static str> {
    use base64::Engine as _;
    use memchr::memmem;
    const BEGIN: &[u8] = b"-----BEGIN ";
    const LABEL: &[u8] = b"CERTIFICATE-----";
    const END: &[u8] = b"-----END CERTIFICATE-----";
    let mut out = Vec::new();
    let mut rest = text;
    let mut b64 = Vec::with_capacity(text.len());
    while let Some(at) = memmem::find(rest, BEGIN) {
        let after = rest.get(at + BEGIN.len()..).unwrap_or_default();
        let body_and_rest = after
            .strip_prefix(LABEL)
            .ok_or("PEM block is not a CERTIFICATE")?;
        let end = memmem::find(body_and_rest, b"-----").ok_or("PEM block without END line")?;
        let (body, tail) = body_and_rest.split_at(end);
        rest = tail
            .strip_prefix(END)
            .ok_or("PEM END line does not match its BEGIN line")?;
        // White space as Unicode (and RFC 7468's lax parsers) define it within ASCII:
        // HT, LF, VT, FF, CR and space.
        b64.clear();
        b64.extend(
            body.iter()
                .copied()
                .filter(|b| !matches!(b, b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | b' ')),
        );
        out.push(
            base64::engine::general_purpose::STANDARD
                .decode(&b64)
                .map_err(|_| "PEM block is not valid base64")?,
        );
    }
    Ok(out)
}

fn trim_trailing(bytes: &[u8]) -> &[u8] {
    let end = bytes
        .iter()
        .rposition(|b| !matches!(b, 0 | b'\n' | b'\r' | b' ' | b'\t'))
        .map_or(0, |i| i + 1);
    bytes.get(..end).unwrap_or_default()
}

/// Parses a chain of `roles.len()` certificates, leaf first; the last role (the root)
/// may be left out.
pub fn parse_chain(
    bytes: &[u8],
    roles: &[CertRole],
    what: &'static str,
    memo: &mut SigMemo,
) -> Result<Vec<Cert>, Error> {
    let ders = split_chain(bytes, what)?;
    if ders.len() != roles.len() && ders.len() + 1 != roles.len() {
        return Err(Error::ChainLength {
            what,
            found: ders.len(),
            expected: roles.len(),
        });
    }
    let mut certs = ders
        .iter()
        .zip(roles)
        .map(|(der, role)| memo.parse(der, *role))
        .collect::<Result<Vec<_>, _>>()?;
    // Chains are leaf first, but some producers (Intel's synthetic quotes among them)
    // write them root first: a self-issued first certificate means reversed order.
    if certs.len() > 1 && certs.first().is_some_and(|c| c.issuer == c.subject) {
        certs.reverse();
        for (cert, role) in certs.iter_mut().zip(roles) {
            cert.role = *role;
        }
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_intel_root_parses_and_is_self_signed() {
        let root = Cert::parse(INTEL_SGX_ROOT_CA_DER, CertRole::Root).expect("root parses");
        assert!(root.signed_by(&root.public_key));
        assert_eq!(TrustAnchors::intel().certs.len(), 1);
    }

    #[test]
    fn pem_splitting_is_strict_about_blocks() {
        let ok = b"junk\n-----BEGIN CERTIFICATE-----\nAQID\x0bBA==\n-----END CERTIFICATE-----\n";
        assert_eq!(split_pem_certificates(ok), Ok(vec![vec![1, 2, 3, 4]]));
        let mismatched = b"-----BEGIN CERTIFICATE-----\nAQID\n-----END CERTIFICATX-----";
        assert!(split_pem_certificates(mismatched).is_err());
        let other = b"-----BEGIN PRIVATE KEY-----\nAQID\n-----END PRIVATE KEY-----";
        assert!(split_pem_certificates(other).is_err());
        let bad = b"-----BEGIN CERTIFICATE-----\nA*ID\n-----END CERTIFICATE-----";
        assert!(split_pem_certificates(bad).is_err());
        let open = b"-----BEGIN CERTIFICATE-----\nAQID";
        assert!(split_pem_certificates(open).is_err());
        assert!(matches!(
            split_chain(b"no pem here", "t"),
            Err(Error::MalformedCollateral { .. })
        ));
    }

    #[test]
    fn flat_set_finds_exact_members_only() {
        let set: FlatSet = [&[1u8, 2][..], &[3], &[]].into_iter().collect();
        assert!(set.contains(&[1, 2]) && set.contains(&[3]) && set.contains(&[]));
        assert!(!set.contains(&[1]) && !set.contains(&[2, 3]) && !set.contains(&[1, 2, 3]));
    }

    #[test]
    fn tbs_framing_rejects_garbage() {
        assert_eq!(first_tlv_of_sequence(&[]), None);
        assert_eq!(first_tlv_of_sequence(&[0x30, 0x85, 1, 1, 1, 1, 1]), None);
        assert_eq!(first_tlv_of_sequence(&[0x30, 0x03, 0x02, 0x05, 0x00]), None);
        assert_eq!(
            first_tlv_of_sequence(&[0x30, 0x03, 0x02, 0x01, 0x07]),
            Some(&[0x02, 0x01, 0x07][..])
        );
    }
}
