//! The registry's own check of a registration's evidence, sans-IO: a worker enters the
//! registry only with a quote that verifies to a trust root the genesis names, at the
//! block's time, whose report data binds the worker's identity key, its HPKE key and
//! *this* registry's chain id. What the registry then lists — tenant, keys, TCB status,
//! quote hash, evidence time — is what the quote proved, never what the worker said.
//!
//! The steps, in order (the first failure is the refusal):
//!
//! 1. the collateral parses (JSON bundle) and the quote verifies with it to one of the
//!    genesis's trust roots at the block's time (`phalanx_dcap`: PCK chain, CRLs, TCB
//!    Info, QE Identity, QE report, quote signature, TCB level);
//! 2. the enclave or TD is not in debug mode and binds no service TD;
//! 3. the TCB status is one the registry accepts, from collateral no older than its
//!    floor (`tcbEvaluationDataNumber`; governance raises it after a TCB recovery);
//! 4. REPORTDATA = [`phalanx_ear::report_data`]`(nonce, runtime data)`;
//! 5. the runtime data ([`WorkerRuntimeData`]) names this registry's chain id, and the
//!    identity and HPKE keys the registration claims;
//! 6. the quote's TEE identity hashes ([`phalanx_ear::tenant`]) to the claimed tenant.
//!
//! The quote carries no time: the evidence time is the block's, the moment the registry
//! found the quote valid under collateral valid then.

use crate::types::{EvidenceRule, Registration};
use phalanx_dcap::tcb::TcbStatus;
use phalanx_ear::runtime::WorkerRuntimeData;

/// Why evidence is refused. Each names the failed step.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EvidenceError {
    /// The collateral does not parse.
    #[error("collateral: {0}")]
    Collateral(phalanx_dcap::Error),
    /// The quote does not verify to the registry's trust roots at the block's time.
    #[error("quote: {0}")]
    Quote(phalanx_dcap::Error),
    /// A debug enclave or TD, or one bound to a service TD: its memory is open.
    #[error("the TEE is in debug mode or bound to a service TD")]
    OpenToHost,
    /// A TCB status the registry does not accept.
    #[error("TCB status {0:?} is not accepted by this registry")]
    TcbStatus(TcbStatus),
    /// Collateral older than the registry's floor (from before a TCB recovery).
    #[error("the collateral's TCB evaluation data number {have} is below this registry's {need}")]
    CollateralTooOld {
        /// The collateral's.
        have: u32,
        /// The registry's floor.
        need: u32,
    },
    /// REPORTDATA does not bind the nonce and runtime data.
    #[error("the quote's report data does not bind the nonce and runtime data")]
    ReportData,
    /// The runtime data does not decode.
    #[error("runtime data: {0}")]
    RuntimeData(phalanx_types::codec::DecodeError),
    /// The runtime data names another registry (a registration replayed from elsewhere).
    #[error("the quote binds another registry")]
    OtherRegistry,
    /// The claims are not what the quote proves.
    #[error("the registration's {0} is not the one the quote proves")]
    Claim(&'static str),
    /// An endorser's clock disagrees with the proposed evidence time
    /// ([`crate::endorse::MAX_SKEW`]).
    #[error("the proposed evidence time {proposed} is too far from this endorser's clock {now}")]
    Skew {
        /// The proposed time.
        proposed: i64,
        /// The endorser's.
        now: i64,
    },
}

/// What a verified registration proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proven {
    /// The tenant id of the quote's TEE identity.
    pub tenant: [u8; 32],
    /// The TCB status at the block's time.
    pub tcb_status: TcbStatus,
    /// [`crate::types::Evidence::quote_hash`].
    pub quote_hash: [u8; 32],
}

/// A checker's DCAP roots with a verifier over them (whose caches make checking the
/// same collateral again cheap): what an endorser holds. The TCB part of its rule is
/// the registry's, applied at each check ([`EvidenceRule::with_tcb`]).
pub struct Roots {
    /// The roots (and a TCB rule the registry's replaces).
    pub rule: EvidenceRule,
    /// A verifier over them.
    pub verifier: phalanx_dcap::Verifier,
}

impl std::fmt::Debug for Roots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Roots")
            .field("roots", &self.rule.trust_roots.len())
            .field("intel_only", &self.rule.is_intel())
            .finish_non_exhaustive()
    }
}

impl Roots {
    /// A verifier over `rule`'s roots.
    pub fn new(rule: EvidenceRule) -> Result<Self, phalanx_dcap::Error> {
        let verifier = phalanx_dcap::Verifier::new(anchors(&rule)?);
        Ok(Self { rule, verifier })
    }

    /// The roots in these PEM texts (each one or more certificates).
    pub fn from_pems(pems: &[Vec<u8>]) -> Result<Self, phalanx_dcap::Error> {
        let mut ders = Vec::new();
        for pem in pems {
            ders.extend(phalanx_dcap::pki::split_chain(pem, "evidence root")?);
        }
        Self::new(EvidenceRule::with_roots(ders))
    }
}

/// The trust roots of `rule` as DCAP anchors.
pub fn anchors(rule: &EvidenceRule) -> Result<phalanx_dcap::TrustAnchors, phalanx_dcap::Error> {
    let roots: Vec<&[u8]> = rule.trust_roots.iter().map(Vec::as_slice).collect();
    phalanx_dcap::TrustAnchors::from_der_certs(&roots)
}

/// Checks `reg` (steps in the module doc) for the registry `chain_id` under `rule`, with
/// `verifier` (built over [`anchors`]`(rule)`; its caches make a replay cheap), at `now`.
pub fn check(
    verifier: &phalanx_dcap::Verifier,
    rule: &EvidenceRule,
    chain_id: &[u8; 32],
    reg: &Registration,
    now: i64,
) -> Result<Proven, EvidenceError> {
    let e = &reg.evidence;
    // 1. the quote, to the genesis's roots, at the block's time
    let collateral = phalanx_dcap::collateral::Collateral::from_bundle_json(&e.collateral)
        .map_err(EvidenceError::Collateral)?;
    let verified = verifier
        .verify(&e.quote, &collateral, now)
        .map_err(EvidenceError::Quote)?;
    // 2. not open to the host
    if verified.debug || verified.service_td {
        return Err(EvidenceError::OpenToHost);
    }
    // 3. a TCB status the registry accepts
    if !rule.tcb_statuses.contains(&verified.status) {
        return Err(EvidenceError::TcbStatus(verified.status));
    }
    if verified.tcb_evaluation_data_number < rule.min_tcb_evaluation_data_number {
        return Err(EvidenceError::CollateralTooOld {
            have: verified.tcb_evaluation_data_number,
            need: rule.min_tcb_evaluation_data_number,
        });
    }
    // 4. the binding
    if verified.report_data != phalanx_ear::report_data(&e.nonce, &e.runtime_data) {
        return Err(EvidenceError::ReportData);
    }
    // 5. this registry, these keys
    let rd = WorkerRuntimeData::decode(&e.runtime_data).map_err(EvidenceError::RuntimeData)?;
    if rd.registry != *chain_id {
        return Err(EvidenceError::OtherRegistry);
    }
    if rd.identity_key != reg.identity_key {
        return Err(EvidenceError::Claim("identity key"));
    }
    if rd.hpke_public_key != reg.hpke_key {
        return Err(EvidenceError::Claim("HPKE key"));
    }
    // 6. the tenant
    let tenant = phalanx_ear::tenant::TeeIdentity::of(&verified.measurements).digest();
    if reg.measurement != tenant {
        return Err(EvidenceError::Claim("measurement"));
    }
    Ok(Proven {
        tenant,
        tcb_status: verified.status,
        quote_hash: crate::types::Evidence::quote_hash(&e.quote),
    })
}
