//! Attestation against the Phalanx attestation service, for any process in a TEE (a
//! pRuntime worker, a gatekeeper): `POST /v1/nonce` → a quote whose report data is
//! `phalanx_ear::report_data(nonce, runtime data)` → `POST /v1/attest` → the token,
//! checked against the service's published keys (`/.well-known/jwks.json`) before it is
//! used, and the caller's tenant computed from its claims with the one
//! [`phalanx_release::release::identity_of`].
//!
//! The runtime data is the caller's to choose; Phalanx processes send
//! [`phalanx_release::release::WorkerRuntimeData`] (identity key, HPKE key), so the token
//! binds the keys that were made inside the TEE.

use base64::Engine as _;
use phalanx_ear::Jwks;
use phalanx_tee::{Tee, TeeError};
use phalanx_types::TenantId;
use std::time::Instant;

/// Why attestation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AttestError {
    /// The TEE could not quote.
    #[error(transparent)]
    Tee(#[from] TeeError),
    /// The service failed or refused (its answer, which holds no secret), or its token
    /// does not verify under its own keys.
    #[error("attestation: {0}")]
    Service(String),
    /// The service verified the quote and contraindicated it under the policy asked for:
    /// nothing is registered with (or released for) such evidence.
    #[error("attestation: the service contraindicated this TEE under policy {0:?}")]
    Contraindicated(String),
}

/// Where to attest, and under which of the service's policies.
#[derive(Debug, Clone)]
pub struct Service {
    /// The attestation service's REST base URL (`http://host:port`).
    pub url: String,
    /// The attestation policy to be appraised under.
    pub policy: String,
}

/// A token and what it says about the caller.
#[derive(Debug, Clone)]
pub struct Attested {
    /// The compact ES256 token.
    pub token: String,
    /// The evidence itself (quote, nonce, runtime data, the collateral the service
    /// verified it with): with it anyone can check the attestation against Intel's root
    /// without the service (users' verification bundles).
    pub evidence: phalanx_verify::WorkerEvidence,
    /// The caller's tenant (a hash of its whole TEE identity).
    pub tenant: TenantId,
    /// The service's keys the token verified under.
    pub jwks: Jwks,
    /// When it was obtained.
    pub at: Instant,
}

fn fail(what: &str, e: &dyn std::fmt::Display) -> AttestError {
    AttestError::Service(format!("{what}: {e}"))
}

async fn json(r: reqwest::Response) -> Result<serde_json::Value, AttestError> {
    let status = r.status();
    let body: serde_json::Value = r.json().await.map_err(|e| fail("answer", &e))?;
    if !status.is_success() {
        return Err(AttestError::Service(format!("{status}: {body}")));
    }
    Ok(body)
}

fn field(v: &serde_json::Value, name: &'static str) -> Result<String, AttestError> {
    v.get(name)
        .and_then(|x| x.as_str())
        .map(str::to_owned)
        .ok_or_else(|| AttestError::Service(format!("no {name} in the answer")))
}

/// Nonce → quote over (nonce, `runtime_data`) → token, checked against the service's
/// JWKS; the tenant from the token's single TEE submodule.
pub async fn attest(
    http: &reqwest::Client,
    service: &Service,
    tee: &dyn Tee,
    runtime_data: &[u8],
) -> Result<Attested, AttestError> {
    let base = service.url.trim_end_matches('/');
    let nonce = field(
        &json(
            http.post(format!("{base}/v1/nonce"))
                .send()
                .await
                .map_err(|e| fail("nonce", &e))?,
        )
        .await?,
        "nonce",
    )?;
    let nonce_bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&nonce)
        .map_err(|e| fail("nonce", &e))?;
    let quote = tee.quote(&phalanx_ear::report_data(&nonce_bytes, runtime_data))?;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let body = json(
        http.post(format!("{base}/v1/attest"))
            .json(&serde_json::json!({
                "tee": tee.kind().as_str(),
                "quote": b64(&quote),
                "runtime_data": b64(runtime_data),
                "nonce": nonce,
                "policy": service.policy,
            }))
            .send()
            .await
            .map_err(|e| fail("attest", &e))?,
    )
    .await?;
    let token = field(&body, "token")?;
    let evidence = phalanx_verify::WorkerEvidence {
        tee: tee.kind().as_str().into(),
        quote: b64(&quote),
        nonce: b64(&nonce_bytes),
        runtime_data: b64(runtime_data),
        collateral: field(&body, "collateral")?,
    };
    let jwks = http
        .get(format!("{base}/.well-known/jwks.json"))
        .send()
        .await
        .map_err(|e| fail("jwks", &e))?
        .text()
        .await
        .map_err(|e| fail("jwks", &e))?;
    let jwks = Jwks::from_json(&jwks).map_err(|e| fail("jwks", &e))?;
    let claims = phalanx_ear::verify_token(&token, &jwks).map_err(|e| fail("token", &e))?;
    let (_, sub) = claims
        .only_submodule()
        .ok_or_else(|| AttestError::Service("the token has no single TEE submodule".into()))?;
    if sub.status == phalanx_ear::Appraisal::Contraindicated {
        return Err(AttestError::Contraindicated(service.policy.clone()));
    }
    let (identity, _) = phalanx_release::release::identity_of(&sub.evidence);
    Ok(Attested {
        token,
        evidence,
        tenant: identity.tenant_id(),
        jwks,
        at: Instant::now(),
    })
}
