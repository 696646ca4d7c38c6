//! Several replicas behind one address (feature `server`): what they must share so
//! that a nonce issued by one is redeemed at any other exactly once, and a token signed
//! by one verifies with the JWKS of any other.
//!
//! - **One cluster secret** (`[cluster] secret_file`, the same file on every replica, at
//!   least 32 characters, e.g. `openssl rand -hex 32`). HKDF-SHA256 (salt
//!   [`AS_CLUSTER`](phalanx_types::tag::AS_CLUSTER)) derives from it the nonce MAC key and
//!   the result-signing key (a P-256 scalar), each under its own `info` tag. The keys are
//!   never stored; a replica that has the secret has them.
//! - **Rotation**: `previous_secret_file` names the secret being retired. Its nonce key
//!   still checks nonces (they live minutes) and its public signing key stays in the
//!   JWKS, so tokens it signed keep verifying; only the current secret issues and signs.
//!   Remove it once every replica has the new secret and `token.ttl_secs` has passed.
//! - **Single use across replicas**: a [`SharedReplay`] store (Redis ≥ 6.2). Redeeming a
//!   nonce is one atomic `SET <prefix><nonce id> 1 NX EXAT <expiry + skew>`: the first
//!   replica to redeem it wins, every later attempt anywhere is `Replayed`. The store is
//!   asked only after the evidence proved to be bound to the nonce (as with the
//!   in-process guard). When the store cannot be reached within its timeout the
//!   attestation fails closed with `replay_store_unavailable` (503); nothing is
//!   accepted without the store's word.
//! - Collateral caches stay per replica. Policies come from the configured files, the
//!   same on every replica: the admin API refuses to change them on one replica
//!   (`cluster_managed`), as it refuses to rotate the signing key.

use crate::nonce::{CheckedNonce, NonceKey};
use crate::token::{Signer, TokenError};
use std::time::Duration;
use zeroize::Zeroizing;

/// Shortest cluster secret accepted, in characters.
pub const MIN_SECRET: usize = 32;
/// Seconds a redeemed nonce is remembered past its expiry, for clock skew between
/// replicas and the store.
pub const SKEW_SECS: i64 = 60;
/// Prefix of the store's keys.
pub const KEY_PREFIX: &str = "phalanx:as:nonce:";

/// Why the cluster settings are unusable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// The secret is too short.
    #[error("the cluster secret must be at least {MIN_SECRET} characters")]
    ShortSecret,
    /// No key could be derived (the signing key is not a valid scalar with probability
    /// 2^-32: pick another secret).
    #[error("the cluster secret derives no valid key; generate another secret")]
    Derive,
    /// The signing key could not be loaded.
    #[error("signing key: {0}")]
    Key(TokenError),
    /// The replay store's URL is unusable.
    #[error("replay store URL: {0}")]
    Url(String),
}

/// The shared secret of a cluster. Redacted in `Debug`; zeroized on drop.
pub struct ClusterSecret(Zeroizing<Vec<u8>>);

impl std::fmt::Debug for ClusterSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterSecret(<redacted>)")
    }
}

impl ClusterSecret {
    /// The secret (a file's trimmed text); at least [`MIN_SECRET`] characters.
    pub fn new(secret: &str) -> Result<Self, ClusterError> {
        if secret.chars().count() < MIN_SECRET {
            return Err(ClusterError::ShortSecret);
        }
        Ok(Self(Zeroizing::new(secret.as_bytes().to_vec())))
    }

    fn derive(&self, info: &'static [u8]) -> Result<Zeroizing<[u8; 32]>, ClusterError> {
        let salt = ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, phalanx_types::tag::AS_CLUSTER);
        let mut out = Zeroizing::new([0u8; 32]);
        salt.extract(&self.0)
            .expand(&[info], ring::hkdf::HKDF_SHA256)
            .and_then(|okm| okm.fill(out.as_mut()))
            .map_err(|_| ClusterError::Derive)?;
        Ok(out)
    }

    /// The nonce MAC key.
    pub fn nonce_key(&self) -> Result<NonceKey, ClusterError> {
        let key = self.derive(phalanx_types::tag::AS_CLUSTER_NONCE_KEY)?;
        Ok(NonceKey::new(&key))
    }

    /// The result-signing key.
    pub fn signer(&self) -> Result<Signer, ClusterError> {
        let scalar = self.derive(phalanx_types::tag::AS_CLUSTER_SIGNING_KEY)?;
        let key = p256::ecdsa::SigningKey::from_slice(scalar.as_ref())
            .map_err(|_| ClusterError::Derive)?;
        let point = p256::elliptic_curve::sec1::ToSec1Point::to_sec1_point(
            key.verifying_key().as_affine(),
            false,
        );
        Signer::from_key_pair(scalar.as_ref(), point.as_bytes()).map_err(ClusterError::Key)
    }
}

/// What a cluster replica derives from its secrets.
#[derive(Debug)]
pub struct ClusterKeys {
    /// Issues and checks nonces.
    pub nonce: NonceKey,
    /// The retired secret's nonce key: checks only.
    pub previous_nonce: Option<NonceKey>,
    /// Signs with the current secret's key; the retired secret's public key stays in
    /// the JWKS.
    pub signer: Signer,
}

impl ClusterKeys {
    /// The keys of `secret`, and of `previous` when a rotation is under way.
    pub fn derive(
        secret: &ClusterSecret,
        previous: Option<&ClusterSecret>,
    ) -> Result<Self, ClusterError> {
        let mut signer = secret.signer()?;
        if let Some(p) = previous {
            let old = p.signer()?;
            // Published for as long as it is configured.
            signer.keep_public(&old, i64::MAX);
        }
        Ok(Self {
            nonce: secret.nonce_key()?,
            previous_nonce: previous.map(ClusterSecret::nonce_key).transpose()?,
            signer,
        })
    }
}

/// Why a redemption in the shared store failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// Already redeemed (here or at another replica).
    #[error("nonce was already used")]
    Replayed,
    /// Expired by the store's clock (the one clock every replica's redemption is judged
    /// by: a replica whose own clock lags cannot redeem a nonce the store forgot).
    #[error("nonce expired at {0} by the replay store's clock")]
    Expired(i64),
    /// The store did not answer in time or failed (the cause, for the log only).
    #[error("replay store unavailable: {0}")]
    Unavailable(String),
}

/// Single use of nonces across replicas, in Redis. Connects on first use (and
/// reconnects after a failure), so a replica starts while the store is briefly away and
/// refuses attestations (503) until it is back.
pub struct SharedReplay {
    client: redis::Client,
    conn: tokio::sync::OnceCell<redis::aio::ConnectionManager>,
    timeout: Duration,
}

impl std::fmt::Debug for SharedReplay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedReplay")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl SharedReplay {
    /// The store at `url`, authenticating with `password` when given (kept out of the
    /// URL so the URL can be logged); each operation is bounded by `timeout`.
    /// `rediss://` speaks TLS to a certificate chaining to `ca` (PEM; without it, the
    /// system's roots). `redis://` is refused beyond a loopback address unless
    /// `plaintext_allowed`: whoever answers for the store decides whether a nonce was
    /// redeemed.
    pub fn new(
        url: &str,
        password: Option<Zeroizing<String>>,
        ca: Option<Vec<u8>>,
        plaintext_allowed: bool,
        timeout: Duration,
    ) -> Result<Self, ClusterError> {
        use redis::IntoConnectionInfo as _;
        let mut info = url
            .into_connection_info()
            .map_err(|e| ClusterError::Url(e.to_string()))?;
        if let Some(p) = password {
            let redis = info.redis_settings().clone().set_password(p.as_str());
            info = info.set_redis_settings(redis);
        }
        let client = match info.addr() {
            redis::ConnectionAddr::TcpTls { .. } => redis::Client::build_with_tls(
                info,
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: ca,
                },
            ),
            redis::ConnectionAddr::Tcp(host, _) => {
                let loopback = host == "localhost"
                    || host
                        .trim_start_matches('[')
                        .trim_end_matches(']')
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback());
                if !loopback && !plaintext_allowed {
                    return Err(ClusterError::Url(format!(
                        "{host}: a replay store beyond loopback needs TLS (rediss://) or cluster.dangerous_plaintext_replay_store"
                    )));
                }
                if ca.is_some() {
                    return Err(ClusterError::Url(
                        "cluster.replay_store_ca_file needs a rediss:// URL".into(),
                    ));
                }
                if !loopback {
                    tracing::warn!(%host, "DANGEROUS: the replay store is reached in clear beyond loopback; whoever answers for it decides which nonces were redeemed");
                }
                redis::Client::open(info)
            }
            _ if ca.is_some() => {
                return Err(ClusterError::Url(
                    "cluster.replay_store_ca_file needs a rediss:// URL".into(),
                ));
            }
            _ => redis::Client::open(info),
        }
        .map_err(|e| ClusterError::Url(e.to_string()))?;
        Ok(Self {
            client,
            conn: tokio::sync::OnceCell::new(),
            timeout,
        })
    }

    async fn connection(&self) -> Result<redis::aio::ConnectionManager, ReplayError> {
        let conn = self
            .conn
            .get_or_try_init(|| async {
                let config = redis::aio::ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(self.timeout))
                    .set_response_timeout(Some(self.timeout))
                    .set_number_of_retries(1);
                tokio::time::timeout(
                    self.timeout,
                    redis::aio::ConnectionManager::new_with_config(self.client.clone(), config),
                )
                .await
                .map_err(|_| ReplayError::Unavailable("connecting timed out".into()))?
                .map_err(|e| ReplayError::Unavailable(e.to_string()))
            })
            .await?;
        Ok(conn.clone())
    }

    /// Redeems `nonce`: `Ok` for the first redemption anywhere in the cluster, before
    /// its expiry by the store's clock. The store remembers it until [`SKEW_SECS`] past
    /// that expiry (on the same clock), so no replica's clock skew opens a window in
    /// which it is both unexpired for a replica and forgotten by the store (review NL7).
    pub async fn consume(&self, nonce: &CheckedNonce) -> Result<(), ReplayError> {
        let key = format!("{KEY_PREFIX}{}", hex::encode(nonce.id()));
        let mut conn = self.connection().await?;
        let time_cmd = redis::cmd("TIME");
        let time = time_cmd.query_async::<(i64, i64)>(&mut conn);
        let store_now = match tokio::time::timeout(self.timeout, time).await {
            Err(_) => return Err(ReplayError::Unavailable("timed out".into())),
            Ok(Err(e)) => return Err(ReplayError::Unavailable(e.to_string())),
            Ok(Ok((secs, _micros))) => secs,
        };
        if store_now >= nonce.expires {
            return Err(ReplayError::Expired(nonce.expires));
        }
        let mut cmd = redis::cmd("SET");
        cmd.arg(&key)
            .arg(1)
            .arg("NX")
            .arg("EXAT")
            .arg(nonce.expires.saturating_add(SKEW_SECS));
        let set = cmd.query_async::<Option<String>>(&mut conn);
        match tokio::time::timeout(self.timeout, set).await {
            Err(_) => Err(ReplayError::Unavailable("timed out".into())),
            Ok(Err(e)) => Err(ReplayError::Unavailable(e.to_string())),
            Ok(Ok(Some(_))) => Ok(()),
            Ok(Ok(None)) => Err(ReplayError::Replayed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_secret_gives_the_same_keys_everywhere_and_another_gives_others() {
        let a = ClusterSecret::new(&"a".repeat(64)).unwrap();
        let a2 = ClusterSecret::new(&"a".repeat(64)).unwrap();
        let b = ClusterSecret::new(&"b".repeat(64)).unwrap();
        assert_eq!(a.signer().unwrap().kid(), a2.signer().unwrap().kid());
        assert_ne!(a.signer().unwrap().kid(), b.signer().unwrap().kid());
        let n = a.nonce_key().unwrap().issue(100, 60, [7; 16]);
        assert!(a2.nonce_key().unwrap().check(&n, 100).is_ok());
        assert!(b.nonce_key().unwrap().check(&n, 100).is_err());
        assert!(matches!(
            ClusterSecret::new("short"),
            Err(ClusterError::ShortSecret)
        ));
        assert!(!format!("{a:?}").contains("aaaa"));
    }

    #[test]
    fn a_rotation_keeps_the_old_public_key_and_signs_with_the_new() {
        let old = ClusterSecret::new(&"o".repeat(40)).unwrap();
        let new = ClusterSecret::new(&"n".repeat(40)).unwrap();
        let keys = ClusterKeys::derive(&new, Some(&old)).unwrap();
        let jwks = keys.signer.jwks(0);
        let kids: Vec<_> = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            kids,
            [
                new.signer().unwrap().kid().to_owned(),
                old.signer().unwrap().kid().to_owned()
            ]
        );
        let n = old.nonce_key().unwrap().issue(100, 60, [1; 16]);
        assert!(keys.previous_nonce.unwrap().check(&n, 100).is_ok());
        assert!(keys.nonce.check(&n, 100).is_err());
    }
}
