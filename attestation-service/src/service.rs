//! The service core (feature `server`): every operation of the attestation service,
//! independent of the transport. [`rest`](crate::rest) and [`grpc`](crate::grpc) are
//! thin adapters over [`Service`]; both map failures from the one [`ApiError`] through
//! its [`ErrorKind`], so a failure has the same code on both.
//!
//! The pipeline of `attest`: nonce (MAC, expiry) → collateral (given, or from the
//! [`CollateralCache`]) → verification ([`Verifier`], on a blocking thread) → report
//! data binding (`REPORTDATA = nonce::report_data(nonce, runtime_data)`) → nonce
//! consumed (single use) → policy ([`appraise`]) → signed EAR token. A contraindicated
//! verdict is still signed and returned, so relying parties see why.
//!
//! State: policies and the result-signing keys live in the [`Store`] and are cached in
//! memory; the nonce key is fresh per process, so a restart invalidates outstanding
//! nonces instead of forgetting which were consumed (replay across restarts is
//! impossible by construction). A replica of a cluster ([`Service::into_cluster`],
//! see [`crate::cluster`]) instead derives its nonce and signing keys from the shared
//! secret and records single use in the shared store, which outlives any replica.
//! Admin operations need the bearer secret, compared in constant time (HMAC of both
//! sides under a per-process key).

use crate::cluster::{ClusterKeys, ReplayError, SharedReplay};
use crate::metrics::Metrics;
use crate::nonce::{CheckedNonce, NonceError, NonceKey, ReplayGuard, report_data};
use crate::policy::{Appraisal, Policy, Verdict, appraise};
use crate::source::{CachedCollateral, CollateralCache, EntryStatus, SourceError};
use crate::store::{Change, Store, Table};
use crate::token::{RetiredKey, Signer, Stale};
use crate::{Collateral, TeeType, VerifiedQuote, Verifier};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

/// Longest policy id accepted.
pub const MAX_POLICY_ID: usize = 128;

/// What kind of failure an [`ApiError`] is: each transport maps kinds, not variants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request is malformed (HTTP 400, gRPC `INVALID_ARGUMENT`).
    BadRequest,
    /// Well-formed, but refused for what it says: evidence that fails verification, a
    /// request that contradicts itself or its quote (HTTP 422, gRPC `INVALID_ARGUMENT`).
    Unprocessable,
    /// Missing or wrong credentials (HTTP 401, gRPC `UNAUTHENTICATED`).
    Unauthenticated,
    /// No such thing (HTTP 404, gRPC `NOT_FOUND`).
    NotFound,
    /// Conflicts with the current state (HTTP 409, gRPC `FAILED_PRECONDITION`).
    Conflict,
    /// Temporarily unable; retry later (HTTP 503, gRPC `UNAVAILABLE`).
    Unavailable,
    /// The request is larger than allowed (HTTP 413, gRPC `OUT_OF_RANGE`).
    TooLarge,
    /// Took too long (HTTP 408, gRPC `DEADLINE_EXCEEDED`).
    Timeout,
    /// Our failure; details only in the log (HTTP 500, gRPC `INTERNAL`).
    Internal,
}

/// Every failure a client can see.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// A field is malformed.
    #[error("{1}")]
    BadRequest(&'static str, String),
    /// The nonce is not acceptable.
    #[error(transparent)]
    Nonce(NonceError),
    /// The evidence failed verification at some step.
    #[error("{step}: {0}", step = .0.step().as_str())]
    Evidence(crate::Error),
    /// REPORTDATA does not bind the nonce and runtime data.
    #[error("REPORTDATA is not report_data(nonce, runtime_data)")]
    ReportDataMismatch,
    /// The request names a TEE other than the quote's.
    #[error("the quote is a {quote} quote, the request says {request}")]
    TeeMismatch {
        /// The quote's.
        quote: &'static str,
        /// The request's.
        request: String,
    },
    /// A policy put whose body names another id than its path.
    #[error("the body's policy id {body:?} is not the path's {path:?}")]
    PolicyIdMismatch {
        /// The path's id.
        path: String,
        /// The body's id.
        body: String,
    },
    /// No such policy.
    #[error("no policy {0:?}")]
    UnknownPolicy(String),
    /// A policy put with a version not above the stored one.
    #[error("policy {id:?} is at version {stored}; a put needs a higher version")]
    PolicyVersion {
        /// The id.
        id: String,
        /// The stored version.
        stored: u64,
    },
    /// Collateral could not be obtained.
    #[error(transparent)]
    Collateral(SourceError),
    /// Missing or wrong admin credentials.
    #[error("admin credentials missing or wrong")]
    Unauthorized,
    /// The request body is larger than allowed.
    #[error("the request body is too large")]
    TooLarge,
    /// The request took too long.
    #[error("request took too long")]
    Timeout,
    /// Too many requests in flight.
    #[error("too many requests in flight")]
    Overloaded,
    /// The shared store of redeemed nonces did not answer: nothing is accepted without
    /// it (the cause is logged).
    #[error("the shared nonce store is unavailable; try again")]
    ReplayStore,
    /// In a cluster this is managed for every replica at once, not through one.
    #[error("{0}")]
    ClusterManaged(&'static str),
    /// No such route.
    #[error("no such endpoint")]
    NoRoute,
    /// Our own failure (the cause is logged, never returned).
    #[error("internal error")]
    Internal,
}

impl ApiError {
    /// The stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(code, _) => code,
            ApiError::Nonce(NonceError::Busy) => "busy",
            ApiError::Nonce(_) => "bad_nonce",
            ApiError::Evidence(e) => e.code(),
            ApiError::ReportDataMismatch => "report_data_mismatch",
            ApiError::TeeMismatch { .. } => "tee_mismatch",
            ApiError::PolicyIdMismatch { .. } => "policy_id_mismatch",
            ApiError::UnknownPolicy(_) => "unknown_policy",
            ApiError::PolicyVersion { .. } => "policy_version_conflict",
            ApiError::Collateral(SourceError::Invalid(e)) => e.code(),
            ApiError::Collateral(_) => "collateral_unavailable",
            ApiError::Unauthorized => "unauthorized",
            ApiError::TooLarge => "too_large",
            ApiError::Timeout => "timeout",
            ApiError::Overloaded => "overloaded",
            ApiError::ReplayStore => "replay_store_unavailable",
            ApiError::ClusterManaged(_) => "cluster_managed",
            ApiError::NoRoute => "not_found",
            ApiError::Internal => "internal",
        }
    }

    /// The kind, which each transport maps to its status.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ApiError::BadRequest(..) => ErrorKind::BadRequest,
            ApiError::TeeMismatch { .. } | ApiError::PolicyIdMismatch { .. } => {
                ErrorKind::Unprocessable
            }
            ApiError::Nonce(NonceError::Busy) | ApiError::Overloaded | ApiError::ReplayStore => {
                ErrorKind::Unavailable
            }
            ApiError::ClusterManaged(_) => ErrorKind::Conflict,
            ApiError::Nonce(_) | ApiError::Unauthorized => ErrorKind::Unauthenticated,
            ApiError::Evidence(_) | ApiError::ReportDataMismatch => ErrorKind::Unprocessable,
            ApiError::UnknownPolicy(_) | ApiError::NoRoute => ErrorKind::NotFound,
            ApiError::PolicyVersion { .. } => ErrorKind::Conflict,
            ApiError::Collateral(SourceError::Invalid(_)) => ErrorKind::Unavailable,
            ApiError::Collateral(SourceError::NotCached(_))
            | ApiError::Collateral(SourceError::Expired { .. }) => ErrorKind::Conflict,
            ApiError::Collateral(_) => ErrorKind::Unavailable,
            ApiError::TooLarge => ErrorKind::TooLarge,
            ApiError::Timeout => ErrorKind::Timeout,
            ApiError::Internal => ErrorKind::Internal,
        }
    }

    /// The message for clients (never an internal cause chain).
    pub fn message(&self) -> String {
        match self {
            ApiError::Collateral(SourceError::Store(_)) => "internal error".into(),
            e => e.to_string(),
        }
    }
}

/// Logs an internal failure and hides it.
fn internal(what: &str, e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "{what}");
    ApiError::Internal
}

/// A freshly issued nonce.
#[derive(Debug, Clone, serde::Serialize)]
pub struct IssuedNonce {
    /// The nonce (base64url).
    pub nonce: String,
    /// Its expiry (unix seconds).
    pub expires: i64,
}

/// An `attest` request, decoded.
#[derive(Debug, Clone)]
pub struct AttestInput {
    /// The TEE the caller claims (checked against the quote), if given.
    pub tee: Option<String>,
    /// The quote.
    pub quote: Vec<u8>,
    /// Collateral; when absent the service's cache / source provides it.
    pub collateral: Option<Collateral>,
    /// Runtime data (e.g. the worker's public keys).
    pub runtime_data: Vec<u8>,
    /// A nonce from [`Service::issue_nonce`].
    pub nonce: String,
    /// The policy id.
    pub policy: String,
}

/// The outcome of `attest`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AttestOutput {
    /// The signed EAR token (compact JWS).
    pub token: String,
    /// The policy verdict (also inside the token).
    pub verdict: Verdict,
    /// The collateral the quote was verified with (JSON bundle format): with the quote,
    /// anyone can re-verify the evidence against Intel's root without this service (the
    /// worker keeps both for its users' verification bundles).
    pub collateral: String,
}

/// A verified quote and whether stale collateral was used.
#[derive(Debug, Clone, serde::Serialize)]
pub struct VerifyOutput {
    /// The verified facts.
    pub quote: VerifiedQuote,
    /// Set when stale collateral was served.
    pub stale_collateral: Option<Stale>,
    /// The collateral used.
    #[serde(skip)]
    pub collateral: Arc<Collateral>,
}

/// Fixed settings of a [`Service`].
#[derive(Debug, Clone)]
pub struct Settings {
    /// `iss` of tokens.
    pub issuer: String,
    /// Nonce lifetime, seconds.
    pub nonce_ttl: u32,
    /// Token lifetime, seconds.
    pub token_ttl: u32,
    /// Consumed nonces remembered at once.
    pub replay_capacity: usize,
    /// `phalanx.trust_root` of tokens.
    pub trust_root: phalanx_ear::TrustRoot,
}

/// The attestation service. Share it as `Arc<Service>`.
pub struct Service {
    verifier: Arc<Verifier>,
    store: Arc<Store>,
    collateral: CollateralCache,
    policies: RwLock<BTreeMap<String, Policy>>,
    signer: RwLock<Signer>,
    nonce_key: NonceKey,
    previous_nonce_key: Option<NonceKey>,
    replay: Replay,
    admin: (ring::hmac::Key, ring::hmac::Tag),
    settings: Settings,
    metrics: Metrics,
    now: fn() -> i64,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// Where single use of nonces is recorded.
#[derive(Debug)]
enum Replay {
    /// In this process (one replica).
    Local(Mutex<ReplayGuard>),
    /// In the cluster's shared store (boxed: its client carries the TLS settings).
    Shared(Box<SharedReplay>),
}

impl Replay {
    async fn consume(&self, nonce: &CheckedNonce, now: i64) -> Result<(), ApiError> {
        match self {
            Replay::Local(guard) => guard
                .lock()
                .map_err(|_| internal("replay guard", "lock poisoned"))?
                .consume(nonce, now)
                .map_err(ApiError::Nonce),
            Replay::Shared(store) => store.consume(nonce).await.map_err(|e| match e {
                ReplayError::Replayed => ApiError::Nonce(NonceError::Replayed),
                ReplayError::Expired(at) => ApiError::Nonce(NonceError::Expired(at)),
                ReplayError::Unavailable(cause) => {
                    tracing::error!(error = %cause, "the shared nonce store failed");
                    ApiError::ReplayStore
                }
            }),
        }
    }
}

const CLUSTER_POLICIES: &str =
    "in a cluster, policies come from the configured policy files, the same on every replica";
const CLUSTER_KEYS: &str =
    "in a cluster, the signing key derives from the cluster secret: rotate the secret";

fn random<const N: usize>() -> Result<[u8; N], ApiError> {
    let mut b = [0u8; N];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b)
        .map_err(|_| internal("randomness", "the system RNG failed"))?;
    Ok(b)
}

const ACTIVE_KEY: &[u8] = b"active";
const RETIRED_KEYS: &[u8] = b"retired";

impl Service {
    /// Opens the service over `store`: loads policies and the signing key (generating
    /// and persisting one on first start). `admin_token` is the bearer secret; `now`
    /// the clock (tests pin it).
    pub fn open(
        settings: Settings,
        store: Arc<Store>,
        verifier: Arc<Verifier>,
        collateral: CollateralCache,
        admin_token: &str,
        now: fn() -> i64,
    ) -> Result<Self, ApiError> {
        let mut policies = BTreeMap::new();
        for (_, v) in store
            .scan(Table::Policies)
            .map_err(|e| internal("loading policies", e))?
        {
            let p: Policy = serde_json::from_slice(&v)
                .map_err(|e| internal("a stored policy is corrupt", e))?;
            policies.insert(p.id.clone(), p);
        }
        let signer = load_signer(&store, now())?;
        let admin_key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &random::<32>()?);
        let admin_tag = ring::hmac::sign(&admin_key, admin_token.as_bytes());
        Ok(Self {
            nonce_key: NonceKey::new(&zeroize::Zeroizing::new(random::<32>()?)),
            previous_nonce_key: None,
            replay: Replay::Local(Mutex::new(ReplayGuard::new(settings.replay_capacity))),
            admin: (admin_key, admin_tag),
            verifier,
            store,
            collateral,
            policies: RwLock::new(policies),
            signer: RwLock::new(signer),
            settings,
            metrics: Metrics::default(),
            now,
        })
    }

    /// Makes this service a replica of a cluster: nonces and tokens from the shared
    /// secret's keys, single use in the shared store (see [`crate::cluster`]).
    pub fn into_cluster(self, keys: ClusterKeys, replay: SharedReplay) -> Self {
        tracing::info!(kid = %keys.signer.kid(), rotating = keys.previous_nonce.is_some(), "cluster replica: keys from the shared secret, single use in the shared store");
        Self {
            nonce_key: keys.nonce,
            previous_nonce_key: keys.previous_nonce,
            replay: Replay::Shared(Box::new(replay)),
            signer: RwLock::new(keys.signer),
            ..self
        }
    }

    fn clustered(&self) -> bool {
        matches!(self.replay, Replay::Shared(_))
    }

    /// The clock.
    pub fn now(&self) -> i64 {
        (self.now)()
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The collateral cache.
    pub fn collateral(&self) -> &CollateralCache {
        &self.collateral
    }

    /// Records `op`'s outcome and latency, passing the result through.
    pub fn observed<T>(
        &self,
        op: &'static str,
        start: Instant,
        r: Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let outcome = match &r {
            Ok(_) => "ok",
            Err(e) => e.code(),
        };
        self.metrics.observe(op, outcome, start.elapsed());
        r
    }

    /// Checks the admin bearer secret in constant time.
    pub fn authorize(&self, bearer: Option<&str>) -> Result<(), ApiError> {
        let given = bearer.ok_or(ApiError::Unauthorized)?;
        ring::hmac::verify(&self.admin.0, given.as_bytes(), self.admin.1.as_ref())
            .map_err(|_| ApiError::Unauthorized)
    }

    /// Issues a nonce.
    pub fn issue_nonce(&self) -> Result<IssuedNonce, ApiError> {
        let now = self.now();
        let ttl = self.settings.nonce_ttl;
        Ok(IssuedNonce {
            nonce: self.nonce_key.issue(now, ttl, random()?),
            expires: now.saturating_add(i64::from(ttl)),
        })
    }

    /// Verifies a quote against the given collateral or the cache's, at the clock's
    /// `now` (or at the collateral's expiry when stale collateral is served).
    pub async fn verify(
        &self,
        quote: Vec<u8>,
        collateral: Option<Collateral>,
    ) -> Result<VerifyOutput, ApiError> {
        let now = self.now();
        let verifier = self.verifier.clone();
        let (quote, stale, used) = match collateral {
            Some(c) => {
                // Caller-supplied collateral may not be older than the cache's (M1).
                self.collateral
                    .check_not_older(&quote, &c, now)
                    .await
                    .map_err(|e| match e {
                        crate::source::NotOlder::Evidence(e) => ApiError::Evidence(e),
                        crate::source::NotOlder::Source(e) => ApiError::Collateral(e),
                    })?;
                let c = Arc::new(c);
                let used = c.clone();
                (
                    tokio::task::spawn_blocking(move || verifier.verify(&quote, &c, now)).await,
                    None,
                    used,
                )
            }
            None => {
                let key = self.collateral.key_of(&quote).map_err(ApiError::Evidence)?;
                let r = self
                    .collateral
                    .get(key, now)
                    .await
                    .map_err(ApiError::Collateral)?;
                // Warm path (collateral verified once, PCK chain and QE report
                // cached): tens of microseconds, run on the async worker itself; a
                // blocking-pool hand-off would cost as much as the work.
                (
                    Ok(verifier.verify_with(&quote, &r.verified, r.verify_at)),
                    r.stale,
                    r.collateral,
                )
            }
        };
        let quote = quote
            .map_err(|e| internal("verification task failed", e))?
            .map_err(ApiError::Evidence)?;
        Ok(VerifyOutput {
            quote,
            stale_collateral: stale,
            collateral: used,
        })
    }

    /// The whole attestation pipeline (see the module doc).
    pub async fn attest(&self, req: AttestInput) -> Result<AttestOutput, ApiError> {
        let now = self.now();
        let policy = self
            .policies
            .read()
            .map_err(|_| internal("policies", "lock poisoned"))?
            .get(&req.policy)
            .cloned()
            .ok_or_else(|| ApiError::UnknownPolicy(req.policy.clone()))?;
        let nonce = match (
            self.nonce_key.check(&req.nonce, now),
            &self.previous_nonce_key,
        ) {
            (Err(NonceError::Invalid), Some(previous)) => previous.check(&req.nonce, now),
            (r, _) => r,
        }
        .map_err(ApiError::Nonce)?;
        let out = self.verify(req.quote, req.collateral).await?;
        let tee = tee_name(out.quote.tee());
        if let Some(t) = &req.tee
            && t != tee
        {
            return Err(ApiError::TeeMismatch {
                quote: tee,
                request: t.chars().take(16).collect(),
            });
        }
        if out.quote.report_data != report_data(&nonce.bytes, &req.runtime_data) {
            return Err(ApiError::ReportDataMismatch);
        }
        // Consumed only once the evidence proved to be bound to it: a rejected quote
        // does not burn the caller's nonce, a replayed accepted one is refused.
        self.replay.consume(&nonce, now).await?;
        let mut verdict = appraise(&policy, &out.quote, now);
        if out.stale_collateral.is_some() && verdict.status == Appraisal::Affirming {
            verdict.status = Appraisal::Warning;
        }
        let mut claims = crate::token::claims(
            &self.settings.issuer,
            now,
            i64::from(self.settings.token_ttl),
            &nonce.bytes,
            &req.runtime_data,
            &out.quote,
            &verdict,
        );
        claims.trust_root = self.settings.trust_root;
        for sub in claims.submods.values_mut() {
            sub.stale_collateral = out.stale_collateral;
        }
        let token = self
            .signer
            .read()
            .map_err(|_| internal("signer", "lock poisoned"))?
            .sign(&claims)
            .map_err(|e| internal("signing a result", e))?;
        Ok(AttestOutput {
            token,
            verdict,
            collateral: out.collateral.to_bundle_json(),
        })
    }

    /// The JWKS: the active key and retired keys whose tokens may still be live.
    pub fn jwks(&self) -> Result<serde_json::Value, ApiError> {
        Ok(self
            .signer
            .read()
            .map_err(|_| internal("signer", "lock poisoned"))?
            .jwks(self.now()))
    }

    /// Makes a fresh key the active signing key; the old one stays in the JWKS until
    /// every token it signed has expired. Persisted atomically before it takes effect.
    pub fn rotate_signing_key(&self) -> Result<String, ApiError> {
        if self.clustered() {
            return Err(ApiError::ClusterManaged(CLUSTER_KEYS));
        }
        let now = self.now();
        let mut signer = self
            .signer
            .write()
            .map_err(|_| internal("signer", "lock poisoned"))?;
        let pkcs8 =
            crate::token::generate_key().map_err(|e| internal("generating a signing key", e))?;
        let mut retired = signer.retired().to_vec();
        retired.push(RetiredKey {
            kid: signer.kid().to_owned(),
            point: signer.public_point().to_vec(),
            until: now.saturating_add(i64::from(self.settings.token_ttl)),
        });
        retired.retain(|r| r.until >= now);
        persist_signer(&self.store, &pkcs8, &retired)?;
        *signer =
            Signer::restore(&pkcs8, retired).map_err(|e| internal("loading a signing key", e))?;
        tracing::info!(kid = %signer.kid(), "result-signing key rotated");
        Ok(signer.kid().to_owned())
    }

    /// Every policy.
    pub fn policies(&self) -> Result<Vec<Policy>, ApiError> {
        Ok(self
            .policies
            .read()
            .map_err(|_| internal("policies", "lock poisoned"))?
            .values()
            .cloned()
            .collect())
    }

    /// One policy.
    pub fn policy(&self, id: &str) -> Result<Policy, ApiError> {
        self.policies
            .read()
            .map_err(|_| internal("policies", "lock poisoned"))?
            .get(id)
            .cloned()
            .ok_or_else(|| ApiError::UnknownPolicy(id.chars().take(MAX_POLICY_ID).collect()))
    }

    /// Stores `p` as the active version of its id; its version must be higher than the
    /// stored one. Refused in a cluster (policies come from files there).
    pub fn put_policy(&self, p: Policy) -> Result<Policy, ApiError> {
        if self.clustered() {
            return Err(ApiError::ClusterManaged(CLUSTER_POLICIES));
        }
        self.store_policy(p)
    }

    fn store_policy(&self, p: Policy) -> Result<Policy, ApiError> {
        if p.id.is_empty()
            || p.id.len() > MAX_POLICY_ID
            || !p
                .id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            return Err(ApiError::BadRequest(
                "bad_policy",
                format!("a policy id is 1 to {MAX_POLICY_ID} of [A-Za-z0-9._-]"),
            ));
        }
        let mut map = self
            .policies
            .write()
            .map_err(|_| internal("policies", "lock poisoned"))?;
        if let Some(old) = map.get(&p.id)
            && old.version >= p.version
        {
            return Err(ApiError::PolicyVersion {
                id: p.id,
                stored: old.version,
            });
        }
        let bytes = serde_json::to_vec(&p).map_err(|e| internal("encoding a policy", e))?;
        self.store
            .put(Table::Policies, p.id.as_bytes(), &bytes)
            .map_err(|e| internal("storing a policy", e))?;
        tracing::info!(policy = %p.id, version = p.version, "policy stored");
        map.insert(p.id.clone(), p.clone());
        Ok(p)
    }

    /// Installs `p` unless the stored version is the same or newer (start-up files).
    pub fn install_policy(&self, p: Policy) -> Result<bool, ApiError> {
        match self.store_policy(p) {
            Ok(_) => Ok(true),
            Err(ApiError::PolicyVersion { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Deletes a policy. Refused in a cluster.
    pub fn delete_policy(&self, id: &str) -> Result<(), ApiError> {
        if self.clustered() {
            return Err(ApiError::ClusterManaged(CLUSTER_POLICIES));
        }
        let mut map = self
            .policies
            .write()
            .map_err(|_| internal("policies", "lock poisoned"))?;
        if !map.contains_key(id) {
            return Err(ApiError::UnknownPolicy(
                id.chars().take(MAX_POLICY_ID).collect(),
            ));
        }
        self.store
            .write(&[Change::Delete(Table::Policies, id.as_bytes())])
            .map_err(|e| internal("deleting a policy", e))?;
        map.remove(id);
        tracing::info!(policy = %id, "policy deleted");
        Ok(())
    }

    /// Imports verified collateral into the cache (admin).
    pub fn import_collateral(&self, c: &Collateral) -> Result<CachedCollateral, ApiError> {
        let e = self
            .collateral
            .import(c, self.now())
            .map_err(ApiError::Evidence)?;
        tracing::info!(fmspc = %hex::encode_upper(e.key.fmspc), "collateral imported");
        Ok(e)
    }

    /// The cache's entries and their freshness.
    pub fn collateral_status(&self) -> Result<Vec<EntryStatus>, ApiError> {
        self.collateral
            .status(self.now())
            .map_err(|e| internal("collateral status", e))
    }

    /// Gauges for `/metrics`.
    pub fn gauges(&self) -> Vec<(&'static str, &'static str, f64)> {
        let policies = self.policies.read().map(|m| m.len()).unwrap_or(0);
        let entries = self.collateral_status().unwrap_or_default();
        let expired = entries
            .iter()
            .filter(|e| e.freshness == crate::source::Freshness::Expired)
            .count();
        vec![
            ("phalanx_as_policies", "Active policies.", policies as f64),
            (
                "phalanx_as_collateral_entries",
                "Cached collateral sets.",
                entries.len() as f64,
            ),
            (
                "phalanx_as_collateral_expired",
                "Cached collateral sets past nextUpdate.",
                expired as f64,
            ),
        ]
    }
}

/// `sgx` or `tdx`.
pub fn tee_name(t: TeeType) -> &'static str {
    match t {
        TeeType::Sgx => "sgx",
        TeeType::Tdx => "tdx",
    }
}

fn load_signer(store: &Store, now: i64) -> Result<Signer, ApiError> {
    let active = store
        .get(Table::Keys, ACTIVE_KEY)
        .map_err(|e| internal("loading the signing key", e))?
        .map(zeroize::Zeroizing::new);
    let retired: Vec<RetiredKey> = match store
        .get(Table::Keys, RETIRED_KEYS)
        .map_err(|e| internal("loading retired keys", e))?
    {
        Some(v) => {
            serde_json::from_slice(&v).map_err(|e| internal("retired keys are corrupt", e))?
        }
        None => Vec::new(),
    };
    match active {
        Some(pkcs8) => {
            let mut s = Signer::restore(&pkcs8, retired)
                .map_err(|e| internal("the stored signing key is unusable", e))?;
            s.prune(now);
            Ok(s)
        }
        None => {
            let pkcs8 = crate::token::generate_key()
                .map_err(|e| internal("generating a signing key", e))?;
            persist_signer(store, &pkcs8, &[])?;
            let s = Signer::restore(&pkcs8, Vec::new())
                .map_err(|e| internal("loading a signing key", e))?;
            tracing::info!(kid = %s.kid(), "generated the result-signing key");
            Ok(s)
        }
    }
}

fn persist_signer(store: &Store, pkcs8: &[u8], retired: &[RetiredKey]) -> Result<(), ApiError> {
    let retired = serde_json::to_vec(retired).map_err(|e| internal("encoding retired keys", e))?;
    store
        .write(&[
            Change::Put(Table::Keys, ACTIVE_KEY, pkcs8),
            Change::Put(Table::Keys, RETIRED_KEYS, &retired),
        ])
        .map_err(|e| internal("storing the signing key", e))
}
