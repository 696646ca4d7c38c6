//! What collateral a quote needs, and where to get it.
//!
//! [`CollateralKey`] names one set of collateral: a TEE type (SGX or TDX: the TCB Info
//! and QE Identity differ), an FMSPC (the TCB Info is per platform family) and the PCK
//! CA that issued the platform's certificate (Processor or Platform: the PCK CRL is per
//! CA). [`CollateralKey::of_quote`] reads them from the quote's PCK certificate; the
//! verifier then checks that the collateral really matches, so a wrong key can only
//! cause a refusal, never an acceptance.
//!
//! With feature `pccs`: the [`CollateralSource`] trait and an Intel PCS / PCCS (API v4)
//! client, [`PcsClient`] (reqwest; no cache, no storage: the attestation service keeps
//! those). Endpoints: `GET {base}/{sgx|tdx}/certification/v4/tcb?fmspc=…` (header
//! `TCB-Info-Issuer-Chain`), `GET {base}/{sgx|tdx}/certification/v4/qe/identity` (header
//! `SGX-Enclave-Identity-Issuer-Chain`), `GET {base}/sgx/certification/v4/pckcrl?ca=processor|platform&encoding=der`
//! (header `SGX-PCK-CRL-Issuer-Chain`) and the root CA CRL (`{base}/sgx/certification/v4/rootcacrl`
//! on a PCCS, configurable for Intel's PCS). Bodies are bounded by
//! [`MAX_COLLATERAL_SIZE`](crate::collateral::MAX_COLLATERAL_SIZE); every request has a timeout.

use crate::{Error, TeeType};
use serde::{Deserialize, Serialize};

/// The PCK CA that issued a platform's certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PckCa {
    /// Intel SGX PCK Processor CA.
    Processor,
    /// Intel SGX PCK Platform CA.
    Platform,
}

impl PckCa {
    /// Which CA a certificate name (issuer of a PCK, subject of a PCK CA) names.
    pub fn from_name(name: &str) -> Option<Self> {
        if name.contains("Processor") {
            Some(PckCa::Processor)
        } else if name.contains("Platform") {
            Some(PckCa::Platform)
        } else {
            None
        }
    }

    /// As the PCS `ca` parameter spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            PckCa::Processor => "processor",
            PckCa::Platform => "platform",
        }
    }
}

/// What one set of collateral covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CollateralKey {
    /// SGX or TDX.
    pub tee: TeeType,
    /// The platform family.
    #[serde(with = "hex_fmspc")]
    pub fmspc: [u8; 6],
    /// The PCK CA.
    pub ca: PckCa,
}

mod hex_fmspc {
    pub fn serialize<S: serde::Serializer>(v: &[u8; 6], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode_upper(v))
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<[u8; 6], D::Error> {
        let s = <String as serde::Deserialize>::deserialize(d)?;
        let v = hex::decode(s).map_err(serde::de::Error::custom)?;
        v.try_into()
            .map_err(|_| serde::de::Error::custom("FMSPC is 6 bytes"))
    }
}

impl CollateralKey {
    /// The store key: `tee ‖ fmspc ‖ ca`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut k = vec![match self.tee {
            TeeType::Sgx => b's',
            TeeType::Tdx => b't',
        }];
        k.extend_from_slice(&self.fmspc);
        k.push(match self.ca {
            PckCa::Processor => b'p',
            PckCa::Platform => b'P',
        });
        k
    }

    /// Reads what collateral a quote needs from its (not yet verified) PCK certificate.
    pub fn of_quote(quote: &[u8]) -> Result<Self, Error> {
        Self::of_parsed(&crate::Quote::parse(quote)?)
    }

    /// [`CollateralKey::of_quote`] for a quote already parsed.
    pub fn of_parsed(q: &crate::Quote<'_>) -> Result<Self, Error> {
        use x509_parser::prelude::{FromDer, X509Certificate};
        let ders = crate::pki::split_chain(q.signature.pck_cert_chain, "PCK certificate chain")?;
        let bad = |reason: &str| Error::MalformedCertificate {
            role: crate::error::CertRole::PckLeaf,
            reason: reason.to_owned(),
        };
        let leaf = ders.first().ok_or_else(|| bad("empty chain"))?;
        let (_, cert) = X509Certificate::from_der(leaf).map_err(|e| bad(&e.to_string()))?;
        let ca = PckCa::from_name(&cert.issuer().to_string())
            .ok_or_else(|| bad("issuer is neither a Processor nor a Platform CA"))?;
        let ext = cert
            .extensions()
            .iter()
            .find(|e| e.oid == crate::pki::OID_SGX_EXTENSION)
            .ok_or(Error::MalformedPckExtension("absent"))?;
        let ext = crate::pck::PckExtension::parse(ext.value)?;
        Ok(Self {
            tee: q.tee_type(),
            fmspc: ext.fmspc,
            ca,
        })
    }
}

#[cfg(feature = "pccs")]
mod client {
    use super::CollateralKey;
    use crate::{Collateral, Error, PccsResponses, TeeType};
    use std::future::Future;
    use std::pin::Pin;

    /// Why collateral could not be obtained.
    #[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
    #[non_exhaustive]
    pub enum SourceError {
        /// The source could not be reached or answered with an error.
        #[error("collateral source unavailable: {0}")]
        Unavailable(String),
        /// The source answered with something that is not valid collateral.
        #[error("collateral from the source is invalid: {0}")]
        Invalid(Error),
        /// No source is configured and nothing is cached.
        #[error("no collateral cached for {0} and no source configured")]
        NotCached(String),
        /// Cached collateral expired and could not be refreshed; the policy refuses stale
        /// collateral (or it is staler than allowed).
        #[error("collateral for {what} expired at {next_update} and could not be refreshed")]
        Expired {
            /// The entry.
            what: String,
            /// When it expired.
            next_update: i64,
        },
        /// The cache failed.
        #[error("{0}")]
        Store(String),
    }

    /// A boxed future (sources are used as trait objects).
    pub type SourceFuture<'a> =
        Pin<Box<dyn Future<Output = Result<Collateral, SourceError>> + Send + 'a>>;

    /// Fetches collateral. `now` is passed for sources that mint collateral (the simulated
    /// PKI); network sources ignore it.
    pub trait CollateralSource: Send + Sync + std::fmt::Debug {
        /// The current collateral for `key`.
        fn fetch(&self, key: CollateralKey, now: i64) -> SourceFuture<'_>;
    }

    /// An Intel PCS / PCCS API v4 client.
    #[derive(Debug, Clone)]
    pub struct PcsClient {
        http: reqwest::Client,
        base: String,
        root_crl_url: String,
    }

    impl PcsClient {
        /// A client for `base` (no trailing slash needed), with a per-request timeout.
        pub fn new(
            base: &str,
            root_crl_url: Option<&str>,
            timeout: std::time::Duration,
        ) -> Result<Self, SourceError> {
            let base = base.trim_end_matches('/').to_owned();
            let http = reqwest::Client::builder()
                .timeout(timeout)
                .build()
                .map_err(|e| SourceError::Unavailable(e.to_string()))?;
            Ok(Self {
                root_crl_url: root_crl_url
                    .map(str::to_owned)
                    .unwrap_or_else(|| format!("{base}/sgx/certification/v4/rootcacrl")),
                http,
                base,
            })
        }

        /// GETs `url`, returning the body (bounded) and the first present header of `headers`.
        async fn get(
            &self,
            url: &str,
            headers: &[&str],
        ) -> Result<(Vec<u8>, Vec<u8>), SourceError> {
            let unavailable = |e: String| SourceError::Unavailable(format!("{url}: {e}"));
            let mut resp = self
                .http
                .get(url)
                .send()
                .await
                .map_err(|e| unavailable(e.to_string()))?;
            if !resp.status().is_success() {
                return Err(unavailable(format!("HTTP {}", resp.status())));
            }
            let header = headers
                .iter()
                .find_map(|h| resp.headers().get(*h))
                .map(|v| v.as_bytes().to_vec())
                .unwrap_or_default();
            let mut body = Vec::new();
            while let Some(chunk) = resp.chunk().await.map_err(|e| unavailable(e.to_string()))? {
                if body.len() + chunk.len() > crate::collateral::MAX_COLLATERAL_SIZE {
                    return Err(unavailable("response too large".into()));
                }
                body.extend_from_slice(&chunk);
            }
            Ok((body, header))
        }

        async fn fetch_all(&self, key: CollateralKey) -> Result<Collateral, SourceError> {
            let tee = match key.tee {
                TeeType::Sgx => "sgx",
                TeeType::Tdx => "tdx",
            };
            let base = &self.base;
            let fmspc = hex::encode_upper(key.fmspc);
            let tcb_url = format!("{base}/{tee}/certification/v4/tcb?fmspc={fmspc}");
            let qe_url = format!("{base}/{tee}/certification/v4/qe/identity");
            let crl_url = format!(
                "{base}/sgx/certification/v4/pckcrl?ca={}&encoding=der",
                key.ca.as_str()
            );
            let (tcb, qe, crl, root) = tokio::try_join!(
                self.get(
                    &tcb_url,
                    &["TCB-Info-Issuer-Chain", "SGX-TCB-Info-Issuer-Chain"]
                ),
                self.get(
                    &qe_url,
                    &[
                        "SGX-Enclave-Identity-Issuer-Chain",
                        "Enclave-Identity-Issuer-Chain"
                    ]
                ),
                self.get(&crl_url, &["SGX-PCK-CRL-Issuer-Chain"]),
                self.get(&self.root_crl_url, &[]),
            )?;
            Collateral::from_pccs(&PccsResponses {
                tcb_info: &tcb.0,
                tcb_info_issuer_chain: &tcb.1,
                qe_identity: &qe.0,
                qe_identity_issuer_chain: &qe.1,
                pck_crl: &crl.0,
                pck_crl_issuer_chain: &crl.1,
                root_ca_crl: &root.0,
            })
            .map_err(SourceError::Invalid)
        }
    }

    impl CollateralSource for PcsClient {
        fn fetch(&self, key: CollateralKey, _now: i64) -> SourceFuture<'_> {
            Box::pin(self.fetch_all(key))
        }
    }
}
#[cfg(feature = "pccs")]
pub use client::{CollateralSource, PcsClient, SourceError, SourceFuture};
