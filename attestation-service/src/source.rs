//! Where collateral comes from (feature `server`): the [`CollateralSource`] trait, an
//! Intel PCS / PCCS (API v4) client ([`PcsClient`]), the simulated PKI as a source
//! ([`SimSource`], feature `sim`), and a persistent cache ([`CollateralCache`]) in the
//! service's [`Store`].
//!
//! What collateral covers ([`CollateralKey`]) and the PCS client live in
//! [`phalanx_dcap::pccs`]; they are re-exported here.
//!
//! **Cache** ([`CollateralCache::get`]): only collateral whose signatures verify under
//! the service's trust anchors is stored. An entry is *fresh* until
//! `refresh_before_secs` before its `next_update` (the earliest `nextUpdate` / notAfter
//! of its pieces); after that the source is asked again. If the refresh fails, an entry
//! that is still within its validity is served as it is; past it, the configured
//! [`OnRefreshFailure`] decides: `refuse` (error `collateral_unavailable`) or
//! `serve_stale` for at most `max_stale_secs` past `next_update`, in which case the
//! quote is verified at `next_update` (the last instant the collateral was valid) and
//! the result carries a [`Stale`] warning. A background task ([`CollateralCache::refresh_due`])
//! refreshes entries before they are due, so requests rarely wait on the network.

use crate::config::{CollateralConfig, OnRefreshFailure};
use crate::store::{Store, StoreError, Table};
use crate::verify::VerifiedCollateral;
use crate::{Collateral, Error, TeeType, Verifier};
pub use phalanx_dcap::pccs::{
    CollateralKey, CollateralSource, PckCa, PcsClient, SourceError, SourceFuture,
};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::RwLock;

/// Why [`CollateralCache::check_not_older`] refused caller-supplied collateral.
#[derive(Debug, thiserror::Error)]
pub enum NotOlder {
    /// The evidence: older than the held collateral (rollback), or unverifiable.
    #[error(transparent)]
    Evidence(#[from] Error),
    /// Nothing held and the source failed: nothing to compare with, so refused.
    #[error(transparent)]
    Source(#[from] SourceError),
}

impl From<StoreError> for SourceError {
    fn from(e: StoreError) -> Self {
        Self::Store(e.to_string())
    }
}

/// The simulated PKI as a collateral source: it mints collateral valid from an hour
/// before `now` for the simulated platform (feature `sim`).
#[cfg(feature = "sim")]
#[derive(Debug)]
pub struct SimSource(pub std::sync::Mutex<crate::sim::SimTee>);

#[cfg(feature = "sim")]
impl CollateralSource for SimSource {
    fn fetch(&self, key: CollateralKey, now: i64) -> SourceFuture<'_> {
        let out = (|| {
            let mut sim = self
                .0
                .lock()
                .map_err(|_| SourceError::Unavailable("simulated PKI poisoned".into()))?;
            if key.fmspc != sim.config().fmspc {
                return Err(SourceError::Unavailable(format!(
                    "the simulated PKI has no platform {}",
                    hex::encode_upper(key.fmspc)
                )));
            }
            sim.config_mut().valid_from = now.saturating_sub(3600);
            sim.collateral(key.tee)
                .map_err(|e| SourceError::Unavailable(e.to_string()))
        })();
        Box::pin(std::future::ready(out))
    }
}

/// A cached, verified collateral set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedCollateral {
    /// What it covers.
    pub key: CollateralKey,
    /// The collateral, in the JSON bundle format.
    pub bundle: String,
    /// When it was stored (unix seconds).
    pub fetched_at: i64,
    /// Its earliest `nextUpdate` / notAfter.
    pub next_update: i64,
    /// Where it came from (`pccs`, `sim`, `import`).
    pub origin: String,
}

/// How current an entry is at some instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Freshness {
    /// Before its refresh point.
    Fresh,
    /// Past its refresh point, still valid.
    Due,
    /// Past `next_update`.
    Expired,
}

pub use crate::token::Stale;

/// Collateral ready for verification.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The collateral.
    pub collateral: Arc<Collateral>,
    /// The same, with its signatures and chains verified (for [`Verifier::verify_with`]).
    pub verified: Arc<VerifiedCollateral>,
    /// The instant to verify at: `now`, or `next_update` for stale collateral.
    pub verify_at: i64,
    /// Set when stale collateral is served.
    pub stale: Option<Stale>,
}

/// One entry's status (for `collateral status`).
#[derive(Debug, Clone, Serialize)]
pub struct EntryStatus {
    /// What it covers.
    pub key: CollateralKey,
    /// When it was stored.
    pub fetched_at: i64,
    /// When it expires.
    pub next_update: i64,
    /// Where it came from.
    pub origin: String,
    /// Its freshness now.
    pub freshness: Freshness,
}

/// An entry in memory, ready to use.
#[derive(Debug, Clone)]
struct Hot {
    entry: Arc<CachedCollateral>,
    collateral: Arc<Collateral>,
    verified: Arc<VerifiedCollateral>,
}

/// Most PCK chains remembered for [`CollateralCache::key_of`].
const MAX_REMEMBERED_CHAINS: usize = 4096;

/// Verified collateral in the store, refreshed from a source, with the entries in use
/// kept parsed and verified in memory (the store stays the source of truth: the
/// process holds rocksdb's lock, so nothing else changes it).
#[derive(Debug, Clone)]
pub struct CollateralCache {
    store: Arc<Store>,
    verifier: Arc<Verifier>,
    source: Option<Arc<dyn CollateralSource>>,
    config: CollateralConfig,
    origin: &'static str,
    hot: Arc<RwLock<HashMap<CollateralKey, Hot>>>,
    chains: Arc<RwLock<HashMap<Vec<u8>, CollateralKey>>>,
    /// Keys whose last fetch failed, and when (not asked again for
    /// [`NEGATIVE_CACHE_SECS`]).
    failed: Arc<std::sync::Mutex<HashMap<CollateralKey, i64>>>,
    /// Source fetches in the current minute: (minute, count).
    fetches: Arc<std::sync::Mutex<(i64, u32)>>,
}

/// How long a failed fetch is remembered before the source is asked again, seconds.
pub const NEGATIVE_CACHE_SECS: i64 = 60;
/// Most fetches from the source per minute, whatever the requests.
pub const MAX_FETCHES_PER_MINUTE: u32 = 60;

impl CollateralCache {
    /// A cache over `store`, checking collateral with `verifier`, refreshing from `source`.
    pub fn new(
        store: Arc<Store>,
        verifier: Arc<Verifier>,
        source: Option<(Arc<dyn CollateralSource>, &'static str)>,
        config: CollateralConfig,
    ) -> Self {
        let (source, origin) = match source {
            Some((s, o)) => (Some(s), o),
            None => (None, "none"),
        };
        Self {
            store,
            verifier,
            source,
            config,
            origin,
            hot: Arc::default(),
            chains: Arc::default(),
            failed: Arc::default(),
            fetches: Arc::default(),
        }
    }

    /// [`CollateralKey::of_quote`], remembered by the quote's PCK chain bytes (one
    /// platform sends many quotes with the same chain).
    pub fn key_of(&self, quote: &[u8]) -> Result<CollateralKey, Error> {
        let q = crate::Quote::parse(quote)?;
        let chain = q.signature.pck_cert_chain;
        if let Some(k) = self.chains.read().ok().and_then(|m| m.get(chain).copied()) {
            return Ok(k);
        }
        // Only a PCK chain that verifies to the trust anchors names collateral to look
        // up (and perhaps fetch): unauthenticated callers cannot make the service ask
        // the PCS for made-up platforms.
        self.verifier.verified_pck(chain)?;
        let k = CollateralKey::of_parsed(&q)?;
        if let Ok(mut m) = self.chains.write() {
            if m.len() >= MAX_REMEMBERED_CHAINS {
                m.clear();
            }
            m.insert(chain.to_vec(), k);
        }
        Ok(k)
    }

    fn hot(&self, key: &CollateralKey) -> Result<Option<Hot>, SourceError> {
        if let Some(h) = self.hot.read().ok().and_then(|m| m.get(key).cloned()) {
            return Ok(Some(h));
        }
        let Some(entry) = self.load(key)? else {
            return Ok(None);
        };
        let collateral = parse_bundle(&entry)?;
        let verified = self
            .verifier
            .verified_collateral(&collateral)
            .map_err(|e| {
                SourceError::Store(format!("cached collateral no longer verifies: {e}"))
            })?;
        let h = Hot {
            entry: Arc::new(entry),
            collateral: Arc::new(collateral),
            verified,
        };
        if let Ok(mut m) = self.hot.write() {
            m.insert(*key, h.clone());
        }
        Ok(Some(h))
    }

    fn freshness(&self, e: &CachedCollateral, now: i64) -> Freshness {
        if now > e.next_update {
            Freshness::Expired
        } else if now >= e.next_update - i64::from(self.config.refresh_before_secs) {
            Freshness::Due
        } else {
            Freshness::Fresh
        }
    }

    fn load(&self, key: &CollateralKey) -> Result<Option<CachedCollateral>, SourceError> {
        self.store
            .get(Table::Collateral, &key.to_bytes())?
            .map(|v| {
                serde_json::from_slice(&v)
                    .map_err(|e| SourceError::Store(format!("corrupt cache entry: {e}")))
            })
            .transpose()
    }

    /// Verifies `collateral` (signatures, chains to the trust anchors, and that it is
    /// for `key`) and stores it. Returns the stored entry.
    pub fn insert(
        &self,
        key: CollateralKey,
        collateral: &Collateral,
        origin: &str,
        now: i64,
    ) -> Result<CachedCollateral, Error> {
        let v = self.verifier.verified_collateral(collateral)?;
        if v.tcb_info.fmspc != key.fmspc {
            return Err(Error::FmspcMismatch {
                pck: hex::encode_upper(key.fmspc),
                tcb_info: hex::encode_upper(v.tcb_info.fmspc),
            });
        }
        // Never replace collateral with older collateral (a PCCS serving last month's
        // TCB Info, a rolled-back mirror).
        if let Ok(Some(held)) = self.hot(&key)
            && let Some(what) = v.older_than(&held.verified)
        {
            return Err(Error::CollateralRollback { what });
        }
        let entry = CachedCollateral {
            key,
            bundle: collateral.to_bundle_json(),
            fetched_at: now,
            next_update: v.expiry(),
            origin: origin.to_owned(),
        };
        let bytes = serde_json::to_vec(&entry).map_err(|e| Error::MalformedCollateral {
            what: "cache entry",
            reason: e.to_string(),
        })?;
        self.store
            .put(Table::Collateral, &key.to_bytes(), &bytes)
            .map_err(|e| Error::MalformedCollateral {
                what: "cache entry",
                reason: e.to_string(),
            })?;
        if let Ok(mut m) = self.hot.write() {
            m.insert(
                key,
                Hot {
                    entry: Arc::new(entry.clone()),
                    collateral: Arc::new(collateral.clone()),
                    verified: v,
                },
            );
        }
        Ok(entry)
    }

    /// Imports a bundle (admin, offline): verifies it, derives what it covers from its
    /// TCB Info and PCK CRL issuer, and stores it.
    pub fn import(&self, collateral: &Collateral, now: i64) -> Result<CachedCollateral, Error> {
        let v = self.verifier.verified_collateral(collateral)?;
        let tee = match v.tcb_info.id {
            crate::collateral::TcbInfoId::Sgx => TeeType::Sgx,
            crate::collateral::TcbInfoId::Tdx => TeeType::Tdx,
        };
        // The PCK CRL's issuer chain starts with the PCK CA (verified just above).
        let ca = crate::pki::split_chain(&collateral.pck_crl_issuer_chain, "PCK CRL chain")?
            .first()
            .and_then(|der| {
                use x509_parser::prelude::{FromDer, X509Certificate};
                X509Certificate::from_der(der)
                    .ok()
                    .and_then(|(_, c)| PckCa::from_name(&c.subject().to_string()))
            })
            .ok_or_else(|| Error::MalformedCollateral {
                what: "PCK CRL issuer chain",
                reason: "its first certificate is neither a Processor nor a Platform CA".into(),
            })?;
        let key = CollateralKey {
            tee,
            fmspc: v.tcb_info.fmspc,
            ca,
        };
        self.insert(key, collateral, "import", now)
    }

    async fn refresh(&self, key: CollateralKey, now: i64) -> Result<Hot, SourceError> {
        let source = self
            .source
            .as_ref()
            .ok_or_else(|| SourceError::NotCached(describe(&key)))?;
        // A recent failure for this key, or the fetch budget spent: do not ask again.
        if let Some(at) = self.failed.lock().ok().and_then(|m| m.get(&key).copied())
            && (at..at.saturating_add(NEGATIVE_CACHE_SECS)).contains(&now)
        {
            return Err(SourceError::Unavailable(format!(
                "{}: the last fetch failed at {at}; retrying {NEGATIVE_CACHE_SECS} s later",
                describe(&key)
            )));
        }
        if let Ok(mut f) = self.fetches.lock() {
            let minute = now.div_euclid(60);
            if f.0 != minute {
                *f = (minute, 0);
            }
            if f.1 >= MAX_FETCHES_PER_MINUTE {
                return Err(SourceError::Unavailable(
                    "collateral fetch budget for this minute spent".into(),
                ));
            }
            f.1 += 1;
        }
        let fetched = match source.fetch(key, now).await {
            Ok(c) => self
                .insert(key, &c, self.origin, now)
                .map_err(SourceError::Invalid),
            Err(e) => Err(e),
        };
        if let Err(e) = fetched {
            if let Ok(mut m) = self.failed.lock() {
                if m.len() >= MAX_REMEMBERED_CHAINS {
                    m.retain(|_, at| at.saturating_add(NEGATIVE_CACHE_SECS) > now);
                }
                if m.len() < MAX_REMEMBERED_CHAINS {
                    m.insert(key, now);
                }
            }
            return Err(e);
        }
        if let Ok(mut m) = self.failed.lock() {
            m.remove(&key);
        }
        self.hot(&key)?
            .ok_or_else(|| SourceError::Store("a stored entry vanished".into()))
    }

    /// Refuses caller-supplied `collateral` older than what the cache holds for the
    /// platform of `quote`. With nothing held (a fresh replica, an `emptyDir` cache),
    /// the source is asked first and the caller's collateral compared with what it
    /// serves (review NM5): an empty cache is no longer a window for rolled-back
    /// collateral. When the source fails then, the request is refused
    /// ([`NotOlder::Source`], `collateral_unavailable`): it fails closed. Only a service
    /// configured with no source at all takes the caller's as is (its signatures are
    /// checked by the verifier, and policies may set a floor).
    pub async fn check_not_older(
        &self,
        quote: &[u8],
        collateral: &Collateral,
        now: i64,
    ) -> Result<(), NotOlder> {
        let key = self.key_of(quote)?;
        let held = match self.hot(&key) {
            Ok(Some(h)) => h.verified,
            _ if self.source.is_some() => self.get(key, now).await?.verified,
            _ => return Ok(()),
        };
        let v = self.verifier.verified_collateral(collateral)?;
        match v.older_than(&held) {
            Some(what) => Err(Error::CollateralRollback { what }.into()),
            None => Ok(()),
        }
    }

    /// Collateral for `key` at `now`, from the cache or the source (see the module doc).
    pub async fn get(&self, key: CollateralKey, now: i64) -> Result<Resolved, SourceError> {
        let cached = self.hot(&key)?;
        if let Some(h) = cached
            .as_ref()
            .filter(|h| self.freshness(&h.entry, now) == Freshness::Fresh)
        {
            return Ok(resolved(h, now, None));
        }
        match self.refresh(key, now).await {
            Ok(h) => Ok(resolved(&h, now, None)),
            Err(err) => {
                let Some(old) = cached else { return Err(err) };
                tracing::warn!(collateral = %describe(&key), error = %err, "collateral refresh failed");
                match self.freshness(&old.entry, now) {
                    Freshness::Fresh | Freshness::Due => Ok(resolved(&old, now, None)),
                    Freshness::Expired => {
                        let next_update = old.entry.next_update;
                        let stale_secs = now - next_update;
                        let allowed = self.config.on_refresh_failure
                            == OnRefreshFailure::ServeStale
                            && stale_secs <= i64::from(self.config.max_stale_secs);
                        if !allowed {
                            return Err(SourceError::Expired {
                                what: describe(&key),
                                next_update,
                            });
                        }
                        let stale = Stale {
                            next_update,
                            stale_secs,
                        };
                        Ok(resolved(&old, next_update, Some(stale)))
                    }
                }
            }
        }
    }

    /// One entry's status at `now`.
    pub fn status_of(&self, e: &CachedCollateral, now: i64) -> EntryStatus {
        EntryStatus {
            freshness: self.freshness(e, now),
            key: e.key,
            fetched_at: e.fetched_at,
            next_update: e.next_update,
            origin: e.origin.clone(),
        }
    }

    /// Every entry with its freshness at `now`.
    pub fn status(&self, now: i64) -> Result<Vec<EntryStatus>, SourceError> {
        Ok(self
            .entries()?
            .iter()
            .map(|e| self.status_of(e, now))
            .collect())
    }

    fn entries(&self) -> Result<Vec<CachedCollateral>, SourceError> {
        self.store
            .scan(Table::Collateral)?
            .into_iter()
            .map(|(_, v)| {
                serde_json::from_slice(&v)
                    .map_err(|e| SourceError::Store(format!("corrupt cache entry: {e}")))
            })
            .collect()
    }

    /// Refreshes every entry that is due or expired; returns how many were refreshed
    /// and the failures (the background task logs them), or the store's failure.
    pub async fn refresh_due(
        &self,
        now: i64,
    ) -> Result<(usize, Vec<(CollateralKey, SourceError)>), SourceError> {
        let mut done = 0;
        let mut failed = Vec::new();
        if self.source.is_none() {
            return Ok((0, failed));
        }
        for e in self.entries()? {
            if self.freshness(&e, now) != Freshness::Fresh {
                match self.refresh(e.key, now).await {
                    Ok(_) => done += 1,
                    Err(err) => failed.push((e.key, err)),
                }
            }
        }
        Ok((done, failed))
    }
}

fn describe(key: &CollateralKey) -> String {
    format!(
        "{} FMSPC {} ({} CA)",
        match key.tee {
            TeeType::Sgx => "SGX",
            TeeType::Tdx => "TDX",
        },
        hex::encode_upper(key.fmspc),
        key.ca.as_str()
    )
}

fn resolved(h: &Hot, verify_at: i64, stale: Option<Stale>) -> Resolved {
    Resolved {
        collateral: h.collateral.clone(),
        verified: h.verified.clone(),
        verify_at,
        stale,
    }
}

fn parse_bundle(e: &CachedCollateral) -> Result<Collateral, SourceError> {
    Collateral::from_bundle_json(e.bundle.as_bytes())
        .map_err(|err| SourceError::Store(format!("corrupt cache entry: {err}")))
}
