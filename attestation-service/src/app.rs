//! Assembling and running the service from a [`Config`] (feature `server`): the data
//! directory, the store, the trust root, the collateral source, the admin secret, the
//! policies from files, the REST and gRPC servers, the collateral refresher, and
//! graceful shutdown. `main.rs` only parses flags and calls [`App::open`] and
//! [`App::serve`]; tests and `phalanx devnet` do the same in-process.
//!
//! Data directory layout: `store/` (rocksdb), `admin.token` (generated when no secret
//! is configured, mode 0600), `sim/` (with `trust.root = "sim"`: the simulated PKI,
//! `sim.json` and `root.pem`, the layout `phalanx sim quote --dir` reads).

use crate::config::{Config, RootKind};
use crate::policy::Policy;
use crate::service::{Service, Settings};
use crate::source::{CollateralCache, CollateralSource, PcsClient};
use crate::store::Store;
use crate::{TrustAnchors, Verifier};
use phalanx_ear::TrustRoot;
use phalanx_types::secret_file;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// A file or directory could not be used.
    #[error("{what} {path}: {source}")]
    Io {
        /// What it is.
        what: &'static str,
        /// Where.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A secret file (admin token, simulated PKI) could not be made or read.
    #[error(transparent)]
    Secret(#[from] secret_file::SecretFileError),
    /// The configuration is inconsistent (the reason names the keys).
    #[error("configuration: {0}")]
    Config(&'static str),
    /// A policy file does not parse.
    #[error("policy {}: {source}", path.display())]
    Policy {
        /// The file.
        path: PathBuf,
        /// The parser's reason.
        #[source]
        source: crate::policy::PolicyError,
    },
    /// The PCCS client could not be made.
    #[error("collateral: {0}")]
    Pccs(crate::source::SourceError),
    /// The trust root is unusable.
    #[error("trust root: {0}")]
    Trust(crate::Error),
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The simulated PKI could not be created or loaded.
    #[cfg(feature = "sim")]
    #[error("simulated PKI: {0}")]
    Sim(#[from] phalanx_dcap_sim::SimError),
    /// The service could not be assembled.
    #[error("service: {0}")]
    Service(crate::service::ApiError),
    /// The cluster settings are unusable.
    #[error("cluster: {0}")]
    Cluster(#[from] crate::cluster::ClusterError),
    /// The gRPC listener failed.
    #[error("gRPC server: {0}")]
    Grpc(#[source] tonic::transport::Error),
    /// The REST listener failed.
    #[error("REST server: {0}")]
    Rest(#[source] std::io::Error),
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> StartError + 'a {
    move |source| StartError::Io {
        what,
        path: path.to_owned(),
        source,
    }
}

/// An assembled service, ready to serve.
#[derive(Debug)]
pub struct App {
    /// The service core.
    pub service: Arc<Service>,
    /// The configuration it was built from.
    pub config: Config,
    /// Where the generated admin secret is, if one was generated.
    pub admin_token_file: Option<PathBuf>,
}

/// Creates `dir` (and parents) with mode 0700.
fn private_dir(dir: &Path) -> Result<(), StartError> {
    std::fs::create_dir_all(dir).map_err(io("cannot create", dir))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(io("cannot restrict", dir))?;
    }
    Ok(())
}

fn admin_secret(
    config: &Config,
) -> Result<(zeroize::Zeroizing<String>, Option<PathBuf>), StartError> {
    if let Some(t) = &config.admin.token {
        return Ok((zeroize::Zeroizing::new(t.clone()), None));
    }
    let (path, generated) = match &config.admin.token_file {
        Some(p) => (p.clone(), false),
        None => (config.data_dir.join("admin.token"), true),
    };
    let secret = if generated {
        secret_file::admin_secret(&path, |b| {
            ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), b).is_ok()
        })?
    } else {
        secret_file::read_text(&path, secret_file::MIN_ADMIN_SECRET)?
    };
    Ok((secret, generated.then_some(path)))
}

#[cfg(feature = "sim")]
fn sim_pki(dir: &Path, now: i64) -> Result<crate::sim::SimTee, StartError> {
    use crate::sim::{SimConfig, SimTee};
    let state = dir.join("sim.json");
    if state.exists() {
        let text = std::fs::read_to_string(&state).map_err(io("cannot read", &state))?;
        return Ok(SimTee::from_json(&text)?);
    }
    private_dir(dir)?;
    let sim = SimTee::generate(SimConfig::up_to_date(now.saturating_sub(3600)))?;
    secret_file::create(&state, zeroize::Zeroizing::new(sim.to_json()).as_bytes())?;
    let root = dir.join("root.pem");
    std::fs::write(&root, sim.root_pem()).map_err(io("cannot write", &root))?;
    Ok(sim)
}

type Source = Option<(Arc<dyn CollateralSource>, &'static str)>;

fn trust(config: &Config, now: i64) -> Result<(TrustAnchors, Source, TrustRoot), StartError> {
    // Only the simulated root mints collateral at `now`.
    #[cfg(not(feature = "sim"))]
    let _ = now;
    let c = &config.collateral;
    let pcs = || -> Result<Source, StartError> {
        c.pccs_url
            .as_deref()
            .map(|url| {
                let client = PcsClient::new(
                    url,
                    c.root_crl_url.as_deref(),
                    Duration::from_secs(u64::from(c.fetch_timeout_secs)),
                )
                .map_err(StartError::Pccs)?;
                Ok((Arc::new(client) as Arc<dyn CollateralSource>, "pccs"))
            })
            .transpose()
    };
    if config.trust.sim_pki_file.is_some() && config.trust.root != RootKind::Sim {
        return Err(StartError::Config(
            "trust.sim_pki_file is only for trust.root = \"sim\"",
        ));
    }
    match config.trust.root {
        RootKind::Intel => Ok((TrustAnchors::intel(), pcs()?, TrustRoot::Intel)),
        RootKind::File => {
            let path =
                config.trust.root_file.as_deref().ok_or_else(|| {
                    StartError::Config("trust.root = \"file\" needs trust.root_file")
                })?;
            let pem = std::fs::read(path).map_err(io("cannot read", path))?;
            tracing::warn!(root = %path.display(), "trusting a root other than Intel's SGX Root CA");
            Ok((
                TrustAnchors::from_pem(&pem).map_err(StartError::Trust)?,
                pcs()?,
                TrustRoot::File,
            ))
        }
        #[cfg(feature = "sim")]
        RootKind::Sim => {
            if c.pccs_url.is_some() {
                return Err(StartError::Config(
                    "trust.root = \"sim\" mints its own collateral; unset collateral.pccs_url",
                ));
            }
            let sim = match &config.trust.sim_pki_file {
                Some(file) => {
                    let text = secret_file::read_text(file, 1)?;
                    crate::sim::SimTee::from_json(&text)?
                }
                None => sim_pki(&config.data_dir.join("sim"), now)?,
            };
            tracing::warn!(
                "SIMULATED TRUST ROOT: quotes from the simulated TEE are accepted and no real \
                 hardware is trusted; results say \"phalanx.trust_root\": \"sim\". Never use in production."
            );
            let anchors = sim.trust_anchors();
            let source = crate::source::SimSource(std::sync::Mutex::new(sim));
            Ok((anchors, Some((Arc::new(source), "sim")), TrustRoot::Sim))
        }
        #[cfg(not(feature = "sim"))]
        RootKind::Sim => Err(StartError::Config(
            "this build has no simulated TEE (feature `sim`)",
        )),
    }
}

/// The cluster's keys and shared store, when `[cluster]` is configured (both the
/// secret and the store, or neither).
fn cluster(
    c: &crate::config::Cluster,
) -> Result<Option<(crate::cluster::ClusterKeys, crate::cluster::SharedReplay)>, StartError> {
    use crate::cluster::{ClusterKeys, ClusterSecret, MIN_SECRET, SharedReplay};
    if !c.enabled() {
        if c.previous_secret_file.is_some()
            || c.replay_store_password_file.is_some()
            || c.replay_store_ca_file.is_some()
        {
            return Err(StartError::Config(
                "cluster.previous_secret_file, cluster.replay_store_password_file and cluster.replay_store_ca_file need cluster.secret_file and cluster.replay_store",
            ));
        }
        return Ok(None);
    }
    let (Some(secret), Some(url)) = (&c.secret_file, &c.replay_store) else {
        return Err(StartError::Config(
            "cluster mode needs both cluster.secret_file and cluster.replay_store: a shared nonce key without a shared single-use store would accept a nonce once per replica",
        ));
    };
    let read = |p: &Path| -> Result<ClusterSecret, StartError> {
        Ok(ClusterSecret::new(&secret_file::read_text(p, MIN_SECRET)?)?)
    };
    let keys = ClusterKeys::derive(
        &read(secret)?,
        c.previous_secret_file
            .as_deref()
            .map(read)
            .transpose()?
            .as_ref(),
    )?;
    let password = c
        .replay_store_password_file
        .as_deref()
        .map(|p| secret_file::read_text(p, 1))
        .transpose()?;
    let ca = c
        .replay_store_ca_file
        .as_deref()
        .map(|p| std::fs::read(p).map_err(io("replay store CA certificate", p)))
        .transpose()?;
    let replay = SharedReplay::new(
        url,
        password,
        ca,
        c.dangerous_plaintext_replay_store,
        Duration::from_millis(c.replay_store_timeout_ms.max(1)),
    )?;
    Ok(Some((keys, replay)))
}

impl App {
    /// Opens everything `config` names; `now` is the clock.
    pub fn open(config: Config, now: fn() -> i64) -> Result<Self, StartError> {
        private_dir(&config.data_dir)?;
        let (anchors, source, trust_root) = trust(&config, now())?;
        let (admin, admin_token_file) = admin_secret(&config)?;
        let cluster = cluster(&config.cluster)?;
        let store = Arc::new(Store::open(&config.data_dir.join("store"))?);
        let verifier = Arc::new(Verifier::new(anchors));
        let cache = CollateralCache::new(
            store.clone(),
            verifier.clone(),
            source,
            config.collateral.clone(),
        );
        let settings = Settings {
            issuer: config.issuer(),
            nonce_ttl: config.nonce.ttl_secs,
            token_ttl: config.token.ttl_secs,
            replay_capacity: config.nonce.replay_capacity,
            trust_root,
        };
        let mut service = Service::open(settings, store, verifier, cache, &admin, now)
            .map_err(StartError::Service)?;
        if let Some((keys, replay)) = cluster {
            service = service.into_cluster(keys, replay);
        }
        for path in &config.policies {
            let text = std::fs::read_to_string(path).map_err(io("cannot read policy", path))?;
            let p = Policy::from_toml(&text).map_err(|source| StartError::Policy {
                path: path.clone(),
                source,
            })?;
            if service.install_policy(p).map_err(StartError::Service)? {
                tracing::info!(policy = %path.display(), "installed policy file");
            }
        }
        Ok(Self {
            service: Arc::new(service),
            config,
            admin_token_file,
        })
    }

    /// Serves REST on `rest` and gRPC on `grpc` until `shutdown` resolves, refreshing
    /// due collateral in the background; then stops accepting, finishes requests in
    /// flight, and returns.
    pub async fn serve(
        self,
        rest: tokio::net::TcpListener,
        grpc: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartError> {
        let (stop, _) = tokio::sync::broadcast::channel::<()>(1);
        let (mut g, mut r, mut t) = (stop.subscribe(), stop.subscribe(), stop.subscribe());
        let limits = self.config.limits.clone();
        let grpc = crate::grpc::serve(grpc, self.service.clone(), &limits, async move {
            let _ = g.recv().await;
        });
        let rest = axum::serve(rest, crate::rest::router(self.service.clone(), &limits))
            .with_graceful_shutdown(async move {
                let _ = r.recv().await;
            });
        let service = self.service.clone();
        let refresher = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(600));
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        match service.collateral().refresh_due(service.now()).await {
                            Ok((done, failed)) => {
                                if done > 0 {
                                    tracing::info!(refreshed = done, "collateral refreshed");
                                }
                                for (key, e) in failed {
                                    tracing::warn!(fmspc = %hex::encode_upper(key.fmspc), error = %e, "collateral refresh failed");
                                }
                            }
                            Err(e) => tracing::error!(error = %e, "collateral cache unreadable"),
                        }
                    }
                    _ = t.recv() => break,
                }
            }
        });
        let stopper = tokio::spawn(async move {
            shutdown.await;
            tracing::info!("shutting down");
            let _ = stop.send(());
        });
        let (a, b) = tokio::join!(grpc, rest);
        stopper.abort();
        let _ = refresher.await;
        a.map_err(StartError::Grpc)?;
        b.map_err(StartError::Rest)
    }
}
