//! Whether the gatekeepers the registry lists are attested: each serves the token it
//! registered with (its `Status`), and the checker accepts a gatekeeper only when
//! [`check_registration`] holds for that token against the registry's entry — its
//! hash, the identity key bound in the quote, the measurement, an accepted trust root,
//! no debug TEE — and only while the registry lists it as a gatekeeper whose evidence
//! (which the registry verified itself) is younger than the registry's limit. Peers run
//! this before joining a round, workers before asking for keys.
//!
//! A gatekeeper's evidence does not change while its registration stands, so a verified
//! (identity key, token hash) pair is remembered ([`Checked`]) and not fetched again.

use chain::view::GatekeeperSet;
use phalanx_ear::Jwks;
use phalanx_release::release::{Registered, ReleasePolicy, check_registration};
use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

/// Verified registrations: (identity key, attestation hash).
#[derive(Debug, Default)]
pub struct Checked(Mutex<HashSet<(Vec<u8>, [u8; 32])>>);

/// Most registrations remembered (the registry's gatekeeper sets are small; the bound
/// keeps a churning registry from growing it without end).
const MAX_CHECKED: usize = 1024;

impl Checked {
    fn contains(&self, key: &(Vec<u8>, [u8; 32])) -> bool {
        self.0.lock().map(|s| s.contains(key)).unwrap_or(false)
    }
    fn insert(&self, key: (Vec<u8>, [u8; 32])) {
        if let Ok(mut s) = self.0.lock() {
            if s.len() >= MAX_CHECKED {
                s.clear();
            }
            s.insert(key);
        }
    }
}

/// A gatekeeper refused, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// Its committee index.
    pub index: u16,
    /// Why (no secret in it).
    pub reason: String,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "gatekeeper {}: {}", self.index, self.reason)
    }
}

/// Checks each member of `set` in parallel; returns the refused ones. `policy` supplies
/// the accepted trust roots and appraisals, `jwks` the attestation service's keys. The
/// set comes from the registry's state or from proofs (`chain::view::GatekeeperSet`);
/// a member without standing there is refused without asking it.
pub async fn check_gatekeepers(
    set: &GatekeeperSet,
    jwks: &Jwks,
    policy: &ReleasePolicy,
    checked: &Checked,
    timeout: Duration,
) -> Vec<Refused> {
    let mut refused = Vec::new();
    let chain_id = set.chain_id;
    let mut tasks = tokio::task::JoinSet::new();
    for m in &set.members {
        let g = &m.gatekeeper;
        // The registry verified its quote; that evidence must still count, in the
        // gatekeeper role (the registry's own expiry: review NM4).
        let w = match &m.standing {
            Ok(w) => w,
            Err(e) => {
                refused.push(Refused {
                    index: g.index,
                    reason: e.to_string(),
                });
                continue;
            }
        };
        let key = (g.identity_key.clone(), w.attestation_hash);
        if checked.contains(&key) {
            continue;
        }
        let (g, w) = (g.clone(), w.clone());
        tasks.spawn(async move {
            let token = phalanx_release::client::registered_token(&g.url, timeout).await;
            (g, w, token)
        });
    }
    while let Some(joined) = tasks.join_next().await {
        let Ok((g, w, token)) = joined else {
            continue;
        };
        let verdict = token.and_then(|token| {
            if token.is_empty() {
                return Err("serves no attestation token (runs outside any TEE)".into());
            }
            check_registration(
                &token,
                jwks,
                Registered {
                    identity_key: &w.identity_key,
                    hpke_key: &w.hpke_key,
                    measurement: &w.measurement,
                    attestation_hash: &w.attestation_hash,
                    registry: &chain_id,
                },
                policy,
            )
            .map_err(|e| e.to_string())
        });
        match verdict {
            Ok(_) => checked.insert((w.identity_key, w.attestation_hash)),
            Err(reason) => refused.push(Refused {
                index: g.index,
                reason,
            }),
        }
    }
    refused.sort_by_key(|r| r.index);
    refused
}
