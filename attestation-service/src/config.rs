//! The service configuration (feature `server`): one TOML file, every field with an
//! explicit default, unknown fields refused, and environment overrides.
//!
//! The defaults are secure: Intel's SGX Root CA as the only trust root, data under
//! `$PHALANX_HOME/attestation` (`~/.phalanx/attestation`; never the working
//! directory). Paths in a file are relative to the file; `~/…` is the user's home. The simulated root is chosen explicitly
//! (`[trust] root = "sim"`, as `config/dev.toml` and `phalanx devnet` do) and announced
//! in the log. [`Config::load`] reads a file (or
//! nothing, for the defaults), then applies every environment variable named
//! `PHALANX_AS__<section>__<field>=<value>` (double underscores separate the path,
//! names are lower case as in the file; the value is read as a TOML value when it
//! parses as one — `8080`, `true`, `"x"` — and as a string otherwise), then checks the
//! result against the schema. Example configurations, one per deployment shape, are in
//! `attestation-service/config/`; a test parses each.
//!
//! ```
//! use attestation_service::config::Config;
//! let c = Config::from_toml_with_env("[listen]\nrest = \"0.0.0.0:8443\"\n",
//!     [("PHALANX_AS__token__ttl_secs".to_owned(), "600".to_owned())]).unwrap();
//! assert_eq!(c.listen.rest, "0.0.0.0:8443");
//! assert_eq!(c.token.ttl_secs, 600);
//! assert!(Config::from_toml_with_env("[listen]\nrset = \"x\"\n", []).is_err());
//! ```

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Prefix of environment overrides.
pub const ENV_PREFIX: &str = "PHALANX_AS__";

/// Why a configuration is unusable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML does not fit the schema.
    #[error("invalid configuration: {0}")]
    Invalid(String),
    /// An environment override names no field or has an unusable value.
    #[error("invalid environment override {name}: {reason}")]
    Env {
        /// The variable.
        name: String,
        /// Why.
        reason: String,
    },
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the store (rocksdb), the admin token and the simulated PKI live.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// Listening addresses.
    #[serde(default)]
    pub listen: Listen,
    /// Which root CA quotes must chain to.
    #[serde(default)]
    pub trust: Trust,
    /// Admin authentication.
    #[serde(default)]
    pub admin: Admin,
    /// Nonces.
    #[serde(default)]
    pub nonce: NonceConfig,
    /// Result tokens.
    #[serde(default)]
    pub token: TokenConfig,
    /// Collateral fetching and caching.
    #[serde(default)]
    pub collateral: CollateralConfig,
    /// Request bounds.
    #[serde(default)]
    pub limits: Limits,
    /// Logging.
    #[serde(default)]
    pub log: Log,
    /// Policy files (TOML) installed at start when newer than the stored version.
    #[serde(default)]
    pub policies: Vec<PathBuf>,
    /// Several replicas behind one address (see [`crate::cluster`]); off by default.
    #[serde(default)]
    pub cluster: Cluster,
}

/// Cluster mode: a shared secret and a shared single-use store. Both or neither: a
/// shared nonce key with per-replica single use would let one nonce be redeemed once
/// per replica.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Cluster {
    /// The secret every replica shares (at least 32 characters).
    pub secret_file: Option<PathBuf>,
    /// The secret being rotated out (checks nonces, keeps its key in the JWKS).
    pub previous_secret_file: Option<PathBuf>,
    /// The shared store of redeemed nonces: `rediss://host:port/db` (TLS), or
    /// `redis://` on a loopback address only (anywhere else a network attacker could
    /// answer for the store and let a redeemed nonce through again), unless
    /// `dangerous_plaintext_replay_store`.
    pub replay_store: Option<String>,
    /// The store's password, read from a file (never in the URL).
    pub replay_store_password_file: Option<PathBuf>,
    /// The CA certificate (PEM) the store's TLS certificate chains to (`rediss://`;
    /// without it, the system's roots).
    pub replay_store_ca_file: Option<PathBuf>,
    /// Lets `redis://` reach a store beyond loopback, in clear: development only.
    pub dangerous_plaintext_replay_store: bool,
    /// Longest a store operation may take; beyond it, attestations fail closed (503).
    pub replay_store_timeout_ms: u64,
}

impl Default for Cluster {
    fn default() -> Self {
        Self {
            secret_file: None,
            replay_store_ca_file: None,
            dangerous_plaintext_replay_store: false,
            previous_secret_file: None,
            replay_store: None,
            replay_store_password_file: None,
            replay_store_timeout_ms: 2_000,
        }
    }
}

impl Cluster {
    /// Whether cluster mode is on.
    pub fn enabled(&self) -> bool {
        self.secret_file.is_some() || self.replay_store.is_some()
    }
}

fn default_data_dir() -> PathBuf {
    phalanx_types::home::data_dir("attestation")
}

/// Listening addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Listen {
    /// REST (HTTP/1.1 and h2c).
    pub rest: String,
    /// gRPC.
    pub grpc: String,
}

impl Default for Listen {
    fn default() -> Self {
        Self {
            rest: "127.0.0.1:8080".into(),
            grpc: "127.0.0.1:50051".into(),
        }
    }
}

/// The trust root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RootKind {
    /// A simulated Intel PKI generated under `data_dir/sim` (development only: chosen
    /// explicitly, needs a build with feature `sim`, logged loudly, and tokens say
    /// `"phalanx.trust_root": "sim"`).
    Sim,
    /// Intel's SGX Root CA, pinned in the binary (production; the default).
    #[default]
    Intel,
    /// The root(s) in `root_file` (PEM), e.g. a test PKI.
    File,
}

/// Trust configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Trust {
    /// Which root.
    pub root: RootKind,
    /// PEM file for `root = "file"`.
    pub root_file: Option<PathBuf>,
    /// With `root = "sim"`: a simulated PKI made elsewhere (`sim.json`, as `phalanx sim
    /// init` writes it), shared with the simulated TEEs of gatekeepers and workers.
    /// Unset: the service generates one under `data_dir/sim` on first start.
    pub sim_pki_file: Option<PathBuf>,
}

/// Admin authentication: a bearer secret, compared in constant time.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Admin {
    /// The secret itself (prefer `token_file` or the environment).
    pub token: Option<String>,
    /// A file holding the secret. When neither is set, a random secret is generated
    /// into `data_dir/admin.token` (mode 0600) on first start.
    pub token_file: Option<PathBuf>,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("token_file", &self.token_file)
            .finish()
    }
}

/// Nonces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NonceConfig {
    /// Lifetime in seconds.
    pub ttl_secs: u32,
    /// Consumed nonces remembered at once; beyond this, attest answers 503 `busy`.
    pub replay_capacity: usize,
}

impl Default for NonceConfig {
    fn default() -> Self {
        Self {
            ttl_secs: 300,
            replay_capacity: 100_000,
        }
    }
}

/// Result tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenConfig {
    /// `iss`; defaults to `http://<listen.rest>`.
    pub issuer: Option<String>,
    /// Lifetime in seconds.
    pub ttl_secs: u32,
}

impl Default for TokenConfig {
    fn default() -> Self {
        Self {
            issuer: None,
            ttl_secs: 3600,
        }
    }
}

/// What to do when collateral cannot be refreshed before its `nextUpdate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OnRefreshFailure {
    /// Refuse verification once the cached collateral is past its refresh point.
    #[default]
    Refuse,
    /// Keep serving the cached collateral, for at most `max_stale_secs` past its
    /// refresh point, with a warning in the result.
    ServeStale,
}

/// Collateral fetching and caching.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CollateralConfig {
    /// Base URL of an Intel PCS / PCCS (API v4), e.g.
    /// `https://api.trustedservices.intel.com` or `https://pccs.local:8081`. In sim mode
    /// the simulated PKI is the source and this must be unset.
    pub pccs_url: Option<String>,
    /// Root CA CRL URL (Intel PCS serves it elsewhere); default `<pccs_url>/sgx/certification/v4/rootcacrl`.
    pub root_crl_url: Option<String>,
    /// Refresh an entry this many seconds before its `nextUpdate`.
    pub refresh_before_secs: u32,
    /// Behaviour when a refresh fails.
    pub on_refresh_failure: OnRefreshFailure,
    /// With `serve_stale`: how long past the refresh point stale collateral is served.
    pub max_stale_secs: u32,
    /// Timeout of one PCCS request.
    pub fetch_timeout_secs: u32,
}

impl Default for CollateralConfig {
    fn default() -> Self {
        Self {
            pccs_url: None,
            root_crl_url: None,
            refresh_before_secs: 86_400,
            on_refresh_failure: OnRefreshFailure::Refuse,
            max_stale_secs: 86_400,
            fetch_timeout_secs: 10,
        }
    }
}

/// Request bounds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest REST body / gRPC message.
    pub max_body_bytes: usize,
    /// Longest a request may take.
    pub request_timeout_ms: u64,
    /// Requests in flight at once; more are refused (503 / `unavailable`).
    pub max_in_flight: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 512 * 1024,
            request_timeout_ms: 10_000,
            max_in_flight: 256,
        }
    }
}

/// Log format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Logging.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Log {
    /// Format.
    pub format: LogFormat,
    /// A `tracing` filter, e.g. `info` or `attestation_service=debug,info`.
    pub filter: String,
}

impl Default for Log {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            filter: "info".into(),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: default_data_dir(),
            listen: Listen::default(),
            trust: Trust::default(),
            admin: Admin::default(),
            nonce: NonceConfig::default(),
            token: TokenConfig::default(),
            collateral: CollateralConfig::default(),
            limits: Limits::default(),
            log: Log::default(),
            policies: Vec::new(),
            cluster: Cluster::default(),
        }
    }
}

impl Config {
    /// Reads `path` (or starts from the defaults when `None`) and applies the
    /// process environment's overrides.
    pub fn load(path: Option<&std::path::Path>) -> Result<Self, ConfigError> {
        let text = match path {
            Some(p) => std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                path: p.to_owned(),
                source,
            })?,
            None => String::new(),
        };
        let mut c = Self::from_toml_with_env(&text, std::env::vars())?;
        // Relative paths in a file are relative to the file; `~/…` is the user's home.
        if let Some(base) = path.and_then(|p| p.parent()) {
            let rebase = |p: &mut PathBuf| {
                if p.starts_with("~") {
                    *p = phalanx_types::home::expand(p);
                } else if p.is_relative() {
                    *p = base.join(&*p);
                }
            };
            if text.contains("data_dir") {
                rebase(&mut c.data_dir);
            }
            c.policies.iter_mut().for_each(rebase);
            c.trust.root_file.iter_mut().for_each(rebase);
            c.trust.sim_pki_file.iter_mut().for_each(rebase);
            c.admin.token_file.iter_mut().for_each(rebase);
            c.cluster.secret_file.iter_mut().for_each(rebase);
            c.cluster.previous_secret_file.iter_mut().for_each(rebase);
            c.cluster
                .replay_store_password_file
                .iter_mut()
                .for_each(rebase);
        }
        Ok(c)
    }

    /// Parses `text` and applies the overrides among `env` (pairs of name and value;
    /// names without [`ENV_PREFIX`] are ignored).
    pub fn from_toml_with_env(
        text: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut table: toml::Table =
            toml::from_str(text).map_err(|e| ConfigError::Invalid(e.to_string()))?;
        phalanx_types::env_config::apply(&mut table, ENV_PREFIX, env).map_err(|e| {
            ConfigError::Env {
                name: e.name,
                reason: e.reason.to_owned(),
            }
        })?;
        Self::deserialize(table).map_err(|e| ConfigError::Invalid(e.to_string()))
    }

    /// The token issuer: configured, or derived from the REST address.
    pub fn issuer(&self) -> String {
        self.token
            .issuer
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.listen.rest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_the_embedded_default() {
        let c = Config::from_toml_with_env("", []).unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.trust.root, RootKind::Intel);
        assert_eq!(c.collateral.on_refresh_failure, OnRefreshFailure::Refuse);
    }

    #[test]
    fn env_overrides_reach_nested_fields_and_are_checked() {
        let env = |k: &str, v: &str| (format!("{ENV_PREFIX}{k}"), v.to_owned());
        let c = Config::from_toml_with_env(
            "[trust]\nroot = \"sim\"\n",
            [
                env("trust__root", "intel"),
                env("collateral__pccs_url", "https://pccs.example:8081"),
                env("collateral__on_refresh_failure", "serve_stale"),
                env("limits__max_in_flight", "64"),
                ("UNRELATED".into(), "x".into()),
            ],
        )
        .unwrap();
        assert_eq!(c.trust.root, RootKind::Intel);
        assert_eq!(
            c.collateral.pccs_url.as_deref(),
            Some("https://pccs.example:8081")
        );
        assert_eq!(
            c.collateral.on_refresh_failure,
            OnRefreshFailure::ServeStale
        );
        assert_eq!(c.limits.max_in_flight, 64);
        for bad in [
            env("limits__max_in_flgiht", "3"),
            env("limits__max_in_flight", "many"),
            env("data_dir__x", "3"),
            env("", "3"),
        ] {
            assert!(Config::from_toml_with_env("", [bad]).is_err());
        }
    }

    #[test]
    fn admin_secret_is_redacted() {
        let c = Config::from_toml_with_env("[admin]\ntoken = \"hunter2\"\n", []).unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
