//! Attestation-gated key release: what a gatekeeper checks before it evaluates its share
//! for a worker (sans-IO: the token, the JWKS, the request and `now` are passed in).
//!
//! A release request carries the worker's attestation result (the ES256 EAR token of
//! the attestation service), its runtime data, the key id and the HPKE public key the
//! partial is to be sealed to. [`authorize`] checks, in order, and names the first
//! failure ([`ReleaseError`]):
//!
//! 1. the token is a compact JWS with `alg` ES256 and a `kid` in the pinned JWKS, and
//!    its signature verifies (RFC 7515; `p256` ECDSA, r ‖ s);
//! 2. `iss` is the expected issuer (if configured), `iat` is not in the future (60 s
//!    skew), `exp` has not passed, and the token is younger than
//!    [`ReleasePolicy::max_token_age_secs`];
//! 3. `ear.status` is `affirming` (or `warning` with [`ReleasePolicy::allow_warning`])
//!    and `phalanx.trust_root` is one the policy accepts (`intel` by default; the
//!    simulated root only when listed, for development);
//! 4. the token has exactly one TEE submodule, whose `phalanx.runtime_data_hash` is
//!    SHA-256 of the runtime data sent, and that runtime data ([`WorkerRuntimeData`])
//!    names the HPKE key of the request — so the partial can only be opened inside the
//!    attested TEE;
//! 5. the token was appraised under an attestation policy this gatekeeper names
//!    ([`ReleasePolicy::attestation_policies`]: the worker picks the policy it asks the
//!    service for, so the gatekeeper must say which ones count), and the enclave or TD
//!    is neither in debug mode nor bound to a service TD — refused whatever the
//!    appraisal said, since the host or the service TD can read its memory;
//! 6. the key id's tenant is the worker's own tenant id ([`crate::tenant`]: a hash of
//!    its whole identity, MRENCLAVE (+ CONFIGID/CONFIGSVN with KSS) or MRTD ‖ RTMR0–3
//!    ‖ MRCONFIGID ‖ MROWNER ‖ MROWNERCONFIG), or the policy grants that tenant the
//!    requested one explicitly ([`Grant`]). By default a worker derives only under its
//!    own tenant.
//!
//! The worker's report data binds the runtime data through the attestation service
//! (`REPORTDATA = SHA-512(tag ‖ nonce ‖ runtime data)`), and the token binds its hash:
//! the chain quote → token → runtime data → HPKE key holds without the gatekeeper
//! seeing the quote.

use phalanx_ear::{Appraisal, EarError};
use phalanx_threshold::derive::KeyId;
use phalanx_threshold::wire::DecodeError;
use phalanx_types::{Epoch, TenantId};
use serde::Deserialize;

/// The attestation service's public keys (the one JWKS parser, in [`phalanx_ear`]).
pub use phalanx_ear::Jwks;
/// Largest token accepted.
pub use phalanx_ear::MAX_TOKEN;
/// Allowed clock skew for `iat`, seconds.
pub const CLOCK_SKEW: i64 = 60;

/// Why a release is refused. Messages never contain secrets (there are none here).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReleaseError {
    /// The token does not verify under the pinned JWKS or is not EAR claims
    /// ([`EarError::UnknownSigningKey`] when the JWKS may be stale).
    #[error(transparent)]
    Token(#[from] EarError),
    /// The token's claims do not carry exactly one TEE submodule matching its evidence.
    #[error("attestation token does not carry exactly one TEE submodule")]
    NotOneSubmodule,
    /// The token's runtime data is not a worker's runtime data.
    #[error("attestation token's runtime data: {0}")]
    RuntimeData(DecodeError),
    /// Issued by another service.
    #[error("attestation token issued by {0:?}, not the trusted issuer")]
    WrongIssuer(String),
    /// `iat` lies in the future.
    #[error("attestation token issued in the future ({iat})")]
    NotYetValid {
        /// Its `iat`.
        iat: i64,
    },
    /// `exp` has passed.
    #[error("attestation token expired at {exp}")]
    Expired {
        /// Its `exp`.
        exp: i64,
    },
    /// Older than the policy allows.
    #[error("attestation token issued at {iat} is older than {max_age} s")]
    TooOld {
        /// Its `iat`.
        iat: i64,
        /// The policy's bound.
        max_age: u32,
    },
    /// The appraisal is not accepted.
    #[error("attestation status {0:?} is not accepted")]
    StatusNotAccepted(String),
    /// The evidence chained to a root the policy does not accept.
    #[error("trust root {0:?} is not accepted")]
    TrustRootNotAccepted(String),
    /// The runtime data sent is not the one the token binds.
    #[error("runtime data does not match the attested runtime data hash")]
    RuntimeDataMismatch,
    /// The request's HPKE key is not the one the attested runtime data names.
    #[error("the HPKE key is not bound by the attested runtime data")]
    HpkeKeyNotBound,
    /// The token was appraised under an attestation policy this gatekeeper does not
    /// accept.
    #[error("attestation policy {0:?} is not accepted by this gatekeeper")]
    PolicyNotAccepted(String),
    /// The enclave or TD runs in debug mode: its memory is open to the host.
    #[error("debug enclaves and TDs never receive keys")]
    DebugTee,
    /// A service TD is bound to the TD and can read its state.
    #[error("TDs with a bound service TD never receive keys")]
    ServiceTdBound,
    /// The token is not the one whose hash the registry holds for this process.
    #[error("the attestation token is not the one registered for this identity")]
    NotRegisteredToken,
    /// The token's TEE identity is not the measurement the registry lists.
    #[error("the attested TEE identity (tenant {attested}) is not the registered measurement")]
    MeasurementNotRegistered {
        /// The tenant the token's evidence hashes to.
        attested: TenantId,
    },
    /// The worker may not derive under this tenant.
    #[error("tenant {tenant_of_worker} may not derive keys of tenant {tenant:?}")]
    KeyIdNotAllowed {
        /// The worker's own tenant id.
        tenant_of_worker: TenantId,
        /// The requested tenant.
        tenant: String,
    },
}

/// A tenant allowed to derive under further tenants.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    /// The worker's own tenant id ([`crate::tenant`]).
    pub tenant: TenantId,
    /// Tenants it may also derive under.
    pub tenants: Vec<String>,
}

fn default_max_age() -> u32 {
    3600
}

fn default_roots() -> Vec<String> {
    vec!["intel".into()]
}

fn default_gatekeeper_policies() -> Vec<String> {
    vec!["gatekeeper".into()]
}

/// What a gatekeeper releases to whom. Secure defaults: Intel's root only, `affirming`
/// only, tokens younger than an hour, own measurement only.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReleasePolicy {
    /// The expected `iss` (unchecked when absent).
    #[serde(default)]
    pub issuer: Option<String>,
    /// Oldest token accepted, seconds since `iat`.
    #[serde(default = "default_max_age")]
    pub max_token_age_secs: u32,
    /// Also release on a `warning` appraisal.
    #[serde(default)]
    pub allow_warning: bool,
    /// Accepted `phalanx.trust_root` values.
    #[serde(default = "default_roots")]
    pub trust_roots: Vec<String>,
    /// The attestation-service policy ids (`phalanx.policy.policy_id`) whose
    /// appraisals this gatekeeper accepts. Empty (the default): none, every release is
    /// refused until the operator names the policies that pin its workers.
    #[serde(default)]
    pub attestation_policies: Vec<String>,
    /// The attestation-service policy ids under which a gatekeeper's own token must
    /// have been appraised for its registration to count as attested
    /// ([`check_registration`]): the policy that pins the gatekeepers' enclave.
    /// Default: `["gatekeeper"]`.
    #[serde(default = "default_gatekeeper_policies")]
    pub gatekeeper_policies: Vec<String>,
    /// Extra tenants per tenant.
    #[serde(default)]
    pub grants: Vec<Grant>,
    /// The pRuntime tenants that may derive contract keys ([`contract_key_id`]): the
    /// workers allowed to run confidential contracts. Empty (the default): none. The
    /// gatekeeper's server also checks that the contract exists on the registry.
    #[serde(default)]
    pub contract_runtimes: Vec<TenantId>,
    /// Any pRuntime the registry holds in standing may derive contract keys, whatever
    /// `contract_runtimes` lists: governance allows a new pRuntime version (and removes
    /// the old) on the registry, with no new gatekeeper configuration (a rolling
    /// upgrade). The gatekeeper's server checks that standing on every contract key
    /// (`keyvault`'s `check_contract`); this layer then lets any tenant ask. Off by
    /// default (only the listed tenants).
    #[serde(default)]
    pub contract_runtimes_from_registry: bool,
    /// Join rounds with gatekeepers whose registry entry is not backed by evidence
    /// ([`check_registration`]). Off by default; for clusters run outside any TEE, and
    /// logged loudly.
    #[serde(default)]
    pub dangerous_unattested_gatekeepers: bool,
}

/// The purpose of a contract's key: its encryption and signing key pairs are derived
/// from the one secret under this purpose.
pub const CONTRACT_KEY_PURPOSE: &str = "contract-keys";

/// The key id of contract `contract`'s secret in `epoch`: the tenant derived from the
/// contract id ([`phalanx_types::contract::contract_tenant`]), the id itself (hex) as
/// the path, so a gatekeeper can check both.
pub fn contract_key_id(epoch: Epoch, contract: &[u8; 32]) -> KeyId {
    KeyId {
        epoch,
        tenant: phalanx_types::contract::contract_tenant(contract).to_string(),
        path: hex::encode(contract),
        purpose: CONTRACT_KEY_PURPOSE.into(),
    }
}

/// The contract a key id names, if it is exactly a [`contract_key_id`].
pub fn contract_of(key_id: &KeyId) -> Option<[u8; 32]> {
    let mut id = [0u8; 32];
    hex::decode_to_slice(&key_id.path, &mut id).ok()?;
    (*key_id == contract_key_id(key_id.epoch, &id)).then_some(id)
}

impl Default for ReleasePolicy {
    fn default() -> Self {
        Self {
            issuer: None,
            max_token_age_secs: default_max_age(),
            allow_warning: false,
            trust_roots: default_roots(),
            attestation_policies: Vec::new(),
            gatekeeper_policies: default_gatekeeper_policies(),
            grants: Vec::new(),
            contract_runtimes: Vec::new(),
            contract_runtimes_from_registry: false,
            dangerous_unattested_gatekeepers: false,
        }
    }
}

/// The runtime data a worker binds into its quote (defined in [`phalanx_ear::runtime`],
/// where the registry reads it too).
pub use phalanx_ear::runtime::WorkerRuntimeData;

/// What the gatekeeper learnt about an authorized worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorized {
    /// SGX or TDX.
    pub tee: phalanx_ear::TeeType,
    /// MRENCLAVE or MRTD, lower-case hex (for logs; keys follow the tenant).
    pub measurement: String,
    /// The worker's tenant id ([`crate::tenant`]).
    pub tenant: TenantId,
    /// The worker's runtime data.
    pub worker: WorkerRuntimeData,
    /// The token's `exp`.
    pub token_expires: i64,
    /// The contract whose key this is, for a [`contract_key_id`]: the caller checks
    /// that it exists on the registry.
    pub contract: Option<[u8; 32]>,
}

/// The TEE identity and bare measurement of verified evidence ([`phalanx_ear::tenant`]).
pub use phalanx_ear::tenant::identity_of;

/// Step 2: the expected issuer, `iat` not in the future (with skew), not expired, not
/// older than the policy allows.
fn check_issuer_and_time(
    claims: &phalanx_ear::Claims,
    policy: &ReleasePolicy,
    now: i64,
) -> Result<(), ReleaseError> {
    if let Some(iss) = &policy.issuer
        && &claims.iss != iss
    {
        return Err(ReleaseError::WrongIssuer(
            claims.iss.chars().take(128).collect(),
        ));
    }
    if claims.iat > now.saturating_add(CLOCK_SKEW) {
        return Err(ReleaseError::NotYetValid { iat: claims.iat });
    }
    if now >= claims.exp {
        return Err(ReleaseError::Expired { exp: claims.exp });
    }
    if now.saturating_sub(claims.iat) > i64::from(policy.max_token_age_secs) {
        return Err(ReleaseError::TooOld {
            iat: claims.iat,
            max_age: policy.max_token_age_secs,
        });
    }

    Ok(())
}

/// Step 3: an accepted appraisal (`affirming`, or `warning` if allowed) under an
/// accepted trust root.
fn check_appraisal(
    claims: &phalanx_ear::Claims,
    policy: &ReleasePolicy,
) -> Result<(), ReleaseError> {
    let status_ok = claims.status == Appraisal::Affirming
        || (policy.allow_warning && claims.status == Appraisal::Warning);
    if !status_ok {
        return Err(ReleaseError::StatusNotAccepted(
            claims.status.as_str().to_owned(),
        ));
    }
    let root = claims.trust_root.as_str();
    if !policy.trust_roots.iter().any(|r| r == root) {
        return Err(ReleaseError::TrustRootNotAccepted(root.to_owned()));
    }

    Ok(())
}

/// Step 4's first half: the token's one TEE submodule (matching its evidence), whose
/// runtime-data hash is that of `runtime_data`.
fn bound_submodule<'c>(
    claims: &'c phalanx_ear::Claims,
    runtime_data: &[u8],
) -> Result<&'c phalanx_ear::Submodule, ReleaseError> {
    let Some((tee, sub)) = claims.only_submodule() else {
        return Err(ReleaseError::NotOneSubmodule);
    };
    if tee != sub.evidence.measurements.tee().as_str() {
        return Err(ReleaseError::NotOneSubmodule);
    }
    let hash = phalanx_ear::runtime_data_hash(runtime_data);
    if !ct_eq(hash.as_bytes(), sub.runtime_data_hash.as_bytes()) {
        return Err(ReleaseError::RuntimeDataMismatch);
    }
    Ok(sub)
}

/// Never a debug enclave or TD, never a TD bound to a service TD: the host or the
/// service TD can read its memory.
fn not_open_to_host(sub: &phalanx_ear::Submodule) -> Result<(), ReleaseError> {
    if sub.evidence.debug {
        return Err(ReleaseError::DebugTee);
    }
    if sub.evidence.service_td {
        return Err(ReleaseError::ServiceTdBound);
    }
    Ok(())
}

/// Checks a release request (see the module doc for the steps).
pub fn authorize(
    token: &str,
    jwks: &Jwks,
    runtime_data: &[u8],
    hpke_public_key: &[u8],
    key_id: &KeyId,
    policy: &ReleasePolicy,
    now: i64,
) -> Result<Authorized, ReleaseError> {
    // 1. Signature (and the claims' shape).
    let claims = phalanx_ear::verify_token(token, jwks)?;

    // 2. Issuer and time; 3. appraisal and trust root.
    check_issuer_and_time(&claims, policy, now)?;
    check_appraisal(&claims, policy)?;

    // 4. Runtime data and the HPKE key.
    let sub = bound_submodule(&claims, runtime_data)?;
    let worker = WorkerRuntimeData::decode(runtime_data).map_err(ReleaseError::RuntimeData)?;
    if worker.hpke_public_key != hpke_public_key {
        return Err(ReleaseError::HpkeKeyNotBound);
    }

    // 5. The appraisal this gatekeeper accepts: a policy it names, never debug or a
    //    bound service TD, whatever that policy allowed.
    if !policy.attestation_policies.contains(&sub.policy.policy_id) {
        return Err(ReleaseError::PolicyNotAccepted(
            sub.policy.policy_id.chars().take(64).collect(),
        ));
    }
    not_open_to_host(sub)?;

    // 6. Which keys this identity may derive: its own tenant, or a granted one.
    let (identity, measurement) = identity_of(&sub.evidence);
    let tenant = identity.tenant_id();
    let contract = contract_of(key_id);
    let granted = key_id.tenant == tenant.to_string()
        || policy
            .grants
            .iter()
            .any(|g| g.tenant == tenant && g.tenants.contains(&key_id.tenant))
        || (contract.is_some()
            && (policy.contract_runtimes_from_registry
                || policy.contract_runtimes.contains(&tenant)));
    if !granted {
        return Err(ReleaseError::KeyIdNotAllowed {
            tenant_of_worker: tenant,
            tenant: key_id.tenant.chars().take(128).collect(),
        });
    }
    Ok(Authorized {
        tee: sub.evidence.measurements.tee(),
        tenant,
        measurement,
        worker,
        token_expires: claims.exp,
        contract,
    })
}

/// What the registry holds for a registered process (a worker or a gatekeeper).
#[derive(Debug, Clone, Copy)]
pub struct Registered<'a> {
    /// Its identity key (SEC1).
    pub identity_key: &'a [u8],
    /// Its HPKE key (empty for a gatekeeper).
    pub hpke_key: &'a [u8],
    /// Its measurement: the 32-byte tenant digest of its TEE identity.
    pub measurement: &'a [u8],
    /// SHA-256 of the attestation token it registered with.
    pub attestation_hash: &'a [u8; 32],
    /// The registry's chain id, which its runtime data names.
    pub registry: &'a [u8; 32],
}

/// Checks that a registration is backed by evidence: `token` is the one whose hash the
/// registry holds, it verifies under `jwks`, its appraisal and trust root are accepted by
/// `policy` (as for a release), it carries one TEE submodule whose runtime data hash is
/// that of [`WorkerRuntimeData`] `{identity key, HPKE key, registry}` as registered, it was
/// appraised under one of `policy.gatekeeper_policies`, the TEE is neither debug nor
/// bound to a service TD, and its identity hashes to the registered measurement.
///
/// This proves that the registered identity key was made inside a TEE with that
/// measurement (only such a TEE puts that key in its report data). The token's own age
/// is not checked here: its registration's is, by the registry's standing rule (the
/// registry verified the quote itself and lets it count for its evidence lifetime;
/// callers check standing first), and a gatekeeper re-registers before that runs out.
pub fn check_registration(
    token: &str,
    jwks: &Jwks,
    registered: Registered<'_>,
    policy: &ReleasePolicy,
) -> Result<(phalanx_ear::TeeType, String), ReleaseError> {
    use sha2::Digest as _;
    let hash: [u8; 32] = sha2::Sha256::digest(token.as_bytes()).into();
    if !ct_eq(&hash, registered.attestation_hash) {
        return Err(ReleaseError::NotRegisteredToken);
    }
    let claims = phalanx_ear::verify_token(token, jwks)?;
    check_appraisal(&claims, policy)?;
    let runtime_data = WorkerRuntimeData {
        identity_key: registered.identity_key.to_vec(),
        hpke_public_key: registered.hpke_key.to_vec(),
        registry: *registered.registry,
    }
    .encode();
    let sub = bound_submodule(&claims, &runtime_data)?;
    // Appraised under a policy that pins gatekeepers (review NM4), not any policy the
    // attestation service happens to have.
    if !policy.gatekeeper_policies.contains(&sub.policy.policy_id) {
        return Err(ReleaseError::PolicyNotAccepted(
            sub.policy.policy_id.chars().take(64).collect(),
        ));
    }
    not_open_to_host(sub)?;
    let (identity, measurement) = identity_of(&sub.evidence);
    let tenant = identity.tenant_id();
    if tenant.as_bytes().as_slice() != registered.measurement {
        return Err(ReleaseError::MeasurementNotRegistered { attested: tenant });
    }
    Ok((sub.evidence.measurements.tee(), measurement))
}

/// Equality that does not stop at the first difference (the hash is public, but the
/// habit costs nothing).
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
