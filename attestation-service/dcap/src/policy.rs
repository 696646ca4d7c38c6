//! Policy: what a verified quote is worth. A pure function of
//! `(policy, verified quote, now)` that lists every reason that applied.
//!
//! A [`Policy`] (TOML or JSON, `deny_unknown_fields`, versioned) names the allowed
//! measurements, the accepted TCB statuses, an advisory allow-list, time-bounded grace
//! for a status, the maximum collateral age, and whether debug enclaves/TDs and service
//! TDs are allowed (both refused by default). [`appraise`] returns an [`Appraisal`]:
//! `Affirming` when nothing applied, `Warning` when the quote is accepted only through a
//! grace period or with a non-`UpToDate` status, `Contraindicated` when any reason
//! refuses it — with every [`Reason`] listed, never just the first.

use crate::tcb::TcbStatus;
use crate::verify::{Measurements, VerifiedQuote};
use serde::{Deserialize, Serialize};

const DAY: i64 = 86_400;

/// Hex-encoded fixed-size bytes in policy files (the one hex helper).
pub use phalanx_types::hex::Hex;

/// An allowed SGX enclave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
pub enum SgxRule {
    /// Exactly this enclave build.
    MrEnclave {
        /// MRENCLAVE.
        mr_enclave: Hex<32>,
    },
    /// Any build by this signer of this product from this SVN on.
    MrSigner {
        /// MRSIGNER.
        mr_signer: Hex<32>,
        /// ISVPRODID.
        isv_prod_id: u16,
        /// Minimum ISVSVN.
        min_isv_svn: u16,
    },
}

/// An allowed TD: MRTD and, optionally, RTMR values (unset ones are not checked).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TdxRule {
    /// MRTD.
    pub mr_td: Hex<48>,
    /// RTMR0..3 that must match, if given.
    #[serde(default)]
    pub rtmr: [Option<Hex<48>>; 4],
}

/// Accept `status` until `days` after the platform's TCB was superseded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grace {
    /// The status the grace applies to (e.g. `OutOfDate`).
    pub status: TcbStatus,
    /// Days after the newer level's `tcbDate`.
    pub days: u32,
}

fn default_statuses() -> Vec<TcbStatus> {
    vec![TcbStatus::UpToDate]
}

/// A policy. Secure defaults: only `UpToDate`, no advisories, no debug, no service TD.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Policy id.
    pub id: String,
    /// Version (one active per id; higher replaces lower).
    pub version: u64,
    /// Allowed SGX enclaves (none: SGX refused).
    #[serde(default)]
    pub sgx: Vec<SgxRule>,
    /// Allowed TDs (none: TDX refused).
    #[serde(default)]
    pub tdx: Vec<TdxRule>,
    /// TCB statuses accepted outright.
    #[serde(default = "default_statuses")]
    pub accepted_tcb_statuses: Vec<TcbStatus>,
    /// Advisory IDs tolerated; any other advisory refuses the quote.
    #[serde(default)]
    pub allowed_advisories: Vec<String>,
    /// Time-bounded acceptance of further statuses.
    #[serde(default)]
    pub grace: Vec<Grace>,
    /// Oldest TCB Info accepted, in days since its issue date.
    #[serde(default)]
    pub max_collateral_age_days: Option<u32>,
    /// Lowest `tcbEvaluationDataNumber` of the TCB Info accepted: set it to the number
    /// of the latest TCB recovery to refuse evidence appraised against collateral from
    /// before it, whatever its `nextUpdate` says.
    #[serde(default)]
    pub min_tcb_evaluation_data_number: Option<u32>,
    /// Accept debug enclaves / TDs (dangerous; for development only).
    #[serde(default)]
    pub dangerous_allow_debug: bool,
    /// Accept TDs with a bound service TD.
    #[serde(default)]
    pub allow_service_td: bool,
}

/// Why a policy document does not parse (the parser's message names the key and the
/// position).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// Not a TOML policy.
    #[error("policy (TOML): {0}")]
    Toml(#[from] toml::de::Error),
    /// Not a JSON policy.
    #[error("policy (JSON): {0}")]
    Json(#[from] serde_json::Error),
}

impl Policy {
    /// Parses a TOML policy.
    pub fn from_toml(text: &str) -> Result<Self, PolicyError> {
        Ok(toml::from_str(text)?)
    }

    /// Parses a JSON policy.
    pub fn from_json(text: &str) -> Result<Self, PolicyError> {
        Ok(serde_json::from_str(text)?)
    }
}

/// Why a quote is not (fully) affirmed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Reason {
    /// No measurement rule of the policy matches.
    MeasurementNotAllowed,
    /// The TCB status is neither accepted nor in grace.
    TcbStatusNotAccepted {
        /// The status.
        status: TcbStatus,
    },
    /// Accepted through a grace period ending at `until` (a warning).
    InGracePeriod {
        /// The status.
        status: TcbStatus,
        /// End of the grace, unix seconds.
        until: i64,
    },
    /// The grace period for the status ended.
    GraceExpired {
        /// The status.
        status: TcbStatus,
        /// When it ended.
        until: i64,
    },
    /// The status is accepted but not `UpToDate` (a warning).
    TcbNotUpToDate {
        /// The status.
        status: TcbStatus,
    },
    /// An advisory outside the allow-list.
    AdvisoryNotAllowed {
        /// The advisory ID.
        id: String,
    },
    /// The TCB Info is older than allowed.
    CollateralTooOld {
        /// Its age in days.
        age_days: i64,
    },
    /// The TCB Info predates the TCB recovery the policy requires.
    TcbEvaluationTooOld {
        /// Its `tcbEvaluationDataNumber`.
        number: u32,
        /// The policy's minimum.
        min: u32,
    },
    /// A debug enclave or TD.
    DebugNotAllowed,
    /// A TD with a bound service TD.
    ServiceTdNotAllowed,
}

impl Reason {
    /// Whether this reason refuses the quote (otherwise it is a warning).
    pub fn refuses(&self) -> bool {
        !matches!(
            self,
            Reason::InGracePeriod { .. } | Reason::TcbNotUpToDate { .. }
        )
    }
}

/// The overall status, after the IETF RATS EAR trust tiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Appraisal {
    /// Everything as the policy wants.
    Affirming,
    /// Accepted, with warnings.
    Warning,
    /// Refused.
    Contraindicated,
}

impl Appraisal {
    /// As EAR spells it: `affirming`, `warning`, `contraindicated`.
    pub fn as_str(self) -> &'static str {
        match self {
            Appraisal::Affirming => "affirming",
            Appraisal::Warning => "warning",
            Appraisal::Contraindicated => "contraindicated",
        }
    }
}

/// The verdict: status and every reason that applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// Overall status.
    pub status: Appraisal,
    /// All reasons, refusing and warning.
    pub reasons: Vec<Reason>,
    /// The policy applied.
    pub policy_id: String,
    /// Its version.
    pub policy_version: u64,
}

fn measurement_allowed(policy: &Policy, m: &Measurements) -> bool {
    match m {
        Measurements::Sgx {
            mr_enclave,
            mr_signer,
            isv_prod_id,
            isv_svn,
            ..
        } => policy.sgx.iter().any(|r| match r {
            SgxRule::MrEnclave { mr_enclave: want } => &want.0 == mr_enclave,
            SgxRule::MrSigner {
                mr_signer: want,
                isv_prod_id: prod,
                min_isv_svn,
            } => &want.0 == mr_signer && prod == isv_prod_id && isv_svn >= min_isv_svn,
        }),
        Measurements::Tdx { mr_td, rtmr, .. } => policy.tdx.iter().any(|r| {
            &r.mr_td.0 == mr_td
                && r.rtmr
                    .iter()
                    .zip(rtmr)
                    .all(|(want, have)| want.is_none_or(|w| &w.0 == have))
        }),
    }
}

/// Appraises `quote` under `policy` at `now` (unix seconds).
pub fn appraise(policy: &Policy, quote: &VerifiedQuote, now: i64) -> Verdict {
    let mut reasons = Vec::new();
    if !measurement_allowed(policy, &quote.measurements) {
        reasons.push(Reason::MeasurementNotAllowed);
    }
    let status = quote.status;
    if policy.accepted_tcb_statuses.contains(&status) {
        if status != TcbStatus::UpToDate {
            reasons.push(Reason::TcbNotUpToDate { status });
        }
    } else if let Some(g) = policy.grace.iter().find(|g| g.status == status) {
        // Grace counts from when the platform's level was superseded; without a newer
        // level there is nothing to count from, so the status is simply not accepted.
        match quote.superseded_at {
            Some(at) => {
                let until = at.saturating_add(i64::from(g.days) * DAY);
                if now <= until {
                    reasons.push(Reason::InGracePeriod { status, until });
                } else {
                    reasons.push(Reason::GraceExpired { status, until });
                }
            }
            None => reasons.push(Reason::TcbStatusNotAccepted { status }),
        }
    } else {
        reasons.push(Reason::TcbStatusNotAccepted { status });
    }
    for id in &quote.advisory_ids {
        if !policy.allowed_advisories.contains(id) {
            reasons.push(Reason::AdvisoryNotAllowed { id: id.clone() });
        }
    }
    if let Some(max) = policy.max_collateral_age_days {
        let age_days = now.saturating_sub(quote.tcb_info_issue_date) / DAY;
        if age_days > i64::from(max) {
            reasons.push(Reason::CollateralTooOld { age_days });
        }
    }
    if let Some(min) = policy.min_tcb_evaluation_data_number
        && quote.tcb_evaluation_data_number < min
    {
        reasons.push(Reason::TcbEvaluationTooOld {
            number: quote.tcb_evaluation_data_number,
            min,
        });
    }
    if quote.debug && !policy.dangerous_allow_debug {
        reasons.push(Reason::DebugNotAllowed);
    }
    if quote.service_td && !policy.allow_service_td {
        reasons.push(Reason::ServiceTdNotAllowed);
    }
    let status = if reasons.iter().any(Reason::refuses) {
        Appraisal::Contraindicated
    } else if reasons.is_empty() {
        Appraisal::Affirming
    } else {
        Appraisal::Warning
    };
    Verdict {
        status,
        reasons,
        policy_id: policy.id.clone(),
        policy_version: policy.version,
    }
}
