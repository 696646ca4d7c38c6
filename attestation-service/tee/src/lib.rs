//! # phalanx-tee
//!
//! The TEE layer under every attested Phalanx process — pRuntime workers and gatekeepers
//! alike: the backends behind one trait, [`Tee`] (a quote over 64 bytes of report data,
//! the measurement the registry allow-lists, a sealing key where the hardware has one),
//! and sealing at rest ([`seal`]). What a process does over the network with its TEE
//! (attestation against the service, checking the registry's gatekeepers) is
//! `phalanx-attested`, one layer up.
//!
//! **Must never depend on** the verifier, the release or registry clients, an HTTP
//! stack, or any server or store: it is the bottom of both the worker and the
//! gatekeeper (`scripts/check-deps.sh` holds it to that).
//!
//! - `SimTee` (feature `sim`: the devnet, tests and the dev image only): SGX quotes from
//!   the simulated Intel PKI (`phalanx-dcap-sim`). MRENCLAVE is the SHA-256 of the
//!   running binary unless configured; the sealing key is a 0600 key file next to the
//!   process's state. A build without the feature (every production binary) has no
//!   simulated PKI in it, and asking it for the `sim` backend fails with
//!   [`TeeError::SimAbsent`].
//! - [`TdxTee`]: Linux configfs-tsm (`<root>/<entry>/{inblob,outblob,provider,generation}`,
//!   root `/sys/kernel/config/tsm/report`). It checks that `provider` is `tdx_guest` and
//!   that `generation` moved by exactly our one write, so a concurrent writer to the same
//!   entry is caught instead of answered with someone else's quote. TDX has no sealing
//!   key: a worker derives one from the gatekeepers under its own tenant; a gatekeeper
//!   cannot (it would need its own committee), so gatekeepers run on SGX or sim.
//! - [`GramineTee`]: Gramine's `/dev/attestation` (`attestation_type` must be `dcap`,
//!   `user_report_data` written, `quote` read; the sealing key is
//!   `keys/_sgx_mrenclave`, bound to the enclave's measurement).
//!
//! The roots are configurable, so the TDX and Gramine backends are tested against
//! `fake` trees (feature `sim`) that behave like the kernel and Gramine
//! (`tests/backends.rs`).

pub mod seal;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// Why the TEE could not produce what was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TeeError {
    /// A file of the TEE's interface could not be used.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// configfs-tsm's provider is not TDX.
    #[error("configfs-tsm provider is {0:?}, not tdx_guest")]
    NotTdx(String),
    /// Gramine's attestation type is not DCAP.
    #[error("Gramine attestation type is {0:?}, not dcap")]
    NotDcap(String),
    /// Someone else wrote to the report entry between our write and our read.
    #[error("configfs-tsm generation moved from {before} to {after}: a concurrent writer")]
    ConcurrentWriter {
        /// Before our write.
        before: u64,
        /// After our read.
        after: u64,
    },
    /// The interface answered something unusable (named).
    #[error("unusable answer from the TEE: {0}")]
    Unusable(&'static str),
    /// The simulated TEE's sealing key file could not be made or read.
    #[error(transparent)]
    Secret(#[from] phalanx_types::secret_file::SecretFileError),
    /// The simulated PKI failed.
    #[cfg(feature = "sim")]
    #[error("simulated TEE: {0}")]
    Sim(#[from] phalanx_dcap_sim::SimError),
    /// The simulated backend was asked for in a build without it.
    #[error(
        "this build has no simulated TEE: production builds leave the simulated Intel PKI out (it exists for the devnet, tests and the dev image, built with the `sim` feature); use tdx or sgx-gramine"
    )]
    SimAbsent,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TeeError + '_ {
    move |source| TeeError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Which kind of TEE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TeeKind {
    /// Intel SGX.
    Sgx,
    /// Intel TDX.
    Tdx,
}

impl TeeKind {
    /// The attestation service's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sgx => "sgx",
            Self::Tdx => "tdx",
        }
    }
}

/// A TEE: quotes, and sealing where the hardware has it.
pub trait Tee: Send + Sync + std::fmt::Debug {
    /// SGX or TDX.
    fn kind(&self) -> TeeKind;
    /// A quote whose report data is `report_data`.
    fn quote(&self, report_data: &[u8; 64]) -> Result<Vec<u8>, TeeError>;
    /// A 32-byte key only this code on this machine can get, if the TEE has one.
    fn sealing_key(&self) -> Result<Option<Zeroizing<[u8; 32]>>, TeeError>;
    /// Whether this is the simulated TEE (said loudly by the worker).
    fn simulated(&self) -> bool {
        false
    }
}

/// Which backend, as configs name it (`sim`, `tdx`, `sgx-gramine`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Backend {
    /// Simulated SGX: development only.
    Sim,
    /// Intel TDX through configfs-tsm.
    Tdx,
    /// Intel SGX under Gramine.
    SgxGramine,
}

/// A backend and where it lives: what a process's config says about its TEE.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Which backend.
    pub backend: Backend,
    /// The interface's root (configfs-tsm's report dir, Gramine's `/dev/attestation`);
    /// the real path by default.
    #[serde(default)]
    pub root: Option<PathBuf>,
    /// sim: the simulated PKI (`sim.json` in the attestation service's sim dir).
    #[serde(default)]
    pub sim_pki: Option<PathBuf>,
    /// sim: MRENCLAVE (64 hex characters); by default the SHA-256 of the running binary.
    #[serde(default)]
    pub mr_enclave: Option<String>,
}

impl Settings {
    /// Opens the backend; the simulated one seals with the key file `sim_key_file`.
    pub fn open(&self, sim_key_file: &Path) -> Result<std::sync::Arc<dyn Tee>, TeeError> {
        #[cfg(not(feature = "sim"))]
        let _ = sim_key_file;
        Ok(match self.backend {
            #[cfg(not(feature = "sim"))]
            Backend::Sim => return Err(TeeError::SimAbsent),
            #[cfg(feature = "sim")]
            Backend::Sim => {
                let path = self
                    .sim_pki
                    .as_deref()
                    .ok_or(TeeError::Unusable("the sim backend needs sim_pki"))?;
                let text = std::fs::read_to_string(path).map_err(io(path))?;
                let sim = phalanx_dcap_sim::SimTee::from_json(&text)?;
                let mr = match &self.mr_enclave {
                    Some(h) => {
                        let mut out = [0u8; 32];
                        hex::decode_to_slice(h.trim_start_matches("0x"), &mut out).map_err(
                            |_| TeeError::Unusable("mr_enclave must be 64 hex characters"),
                        )?;
                        out
                    }
                    None => own_measurement()?,
                };
                std::sync::Arc::new(SimTee::new(sim, mr, sim_key_file))
            }
            Backend::Tdx => std::sync::Arc::new(TdxTee::new(
                self.root.as_deref().unwrap_or(Path::new(TdxTee::ROOT)),
            )),
            Backend::SgxGramine => std::sync::Arc::new(GramineTee::new(
                self.root.as_deref().unwrap_or(Path::new(GramineTee::ROOT)),
            )),
        })
    }
}

/// The simulated TEE: SGX quotes from a simulated Intel PKI, a key file for sealing.
#[cfg(feature = "sim")]
#[derive(Debug)]
pub struct SimTee {
    sim: phalanx_dcap_sim::SimTee,
    enclave: phalanx_dcap_sim::SgxEnclave,
    key_file: PathBuf,
}

#[cfg(feature = "sim")]
impl SimTee {
    /// A simulated enclave with MRENCLAVE `mr_enclave` (see [`own_measurement`]) whose
    /// quotes chain to `sim`'s root, sealing with the key file `key_file` (created 0600
    /// on first use).
    pub fn new(sim: phalanx_dcap_sim::SimTee, mr_enclave: [u8; 32], key_file: &Path) -> Self {
        Self {
            sim,
            enclave: phalanx_dcap_sim::SgxEnclave {
                mr_enclave,
                ..Default::default()
            },
            key_file: key_file.to_owned(),
        }
    }
}

/// SHA-256 of the running executable: the simulated MRENCLAVE of this build. Hashed
/// once per process (a debug binary is over 100 MB and does not change while it runs).
pub fn own_measurement() -> Result<[u8; 32], TeeError> {
    use sha2::Digest as _;
    static MEASUREMENT: std::sync::OnceLock<[u8; 32]> = std::sync::OnceLock::new();
    if let Some(m) = MEASUREMENT.get() {
        return Ok(*m);
    }
    let exe = std::env::current_exe().map_err(io(Path::new("/proc/self/exe")))?;
    let bytes = std::fs::read(&exe).map_err(io(&exe))?;
    Ok(*MEASUREMENT.get_or_init(|| sha2::Sha256::digest(bytes).into()))
}

#[cfg(feature = "sim")]
impl Tee for SimTee {
    fn kind(&self) -> TeeKind {
        TeeKind::Sgx
    }
    fn quote(&self, report_data: &[u8; 64]) -> Result<Vec<u8>, TeeError> {
        Ok(self.sim.sgx_quote(&self.enclave, report_data)?)
    }
    fn sealing_key(&self) -> Result<Option<Zeroizing<[u8; 32]>>, TeeError> {
        let path = &self.key_file;
        if !path.exists() {
            let mut key = Zeroizing::new([0u8; 32]);
            rand::fill(&mut key[..]);
            phalanx_types::secret_file::create(path, &key[..])?;
        }
        let raw = phalanx_types::secret_file::read(path)?;
        let key: [u8; 32] = raw
            .as_slice()
            .try_into()
            .map_err(|_| TeeError::Unusable("the sealing key file is not 32 bytes"))?;
        Ok(Some(Zeroizing::new(key)))
    }
    fn simulated(&self) -> bool {
        true
    }
}

/// How long a backend waits for the interface to produce an answer file. The kernel
/// and Gramine answer synchronously; the bound only keeps a broken interface from
/// hanging the worker.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads `path` once it is non-empty (bounded by [`ANSWER_TIMEOUT`]).
fn read_answer(path: &Path) -> Result<Vec<u8>, TeeError> {
    let start = Instant::now();
    loop {
        match std::fs::read(path) {
            Ok(b) if !b.is_empty() => return Ok(b),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(path)(e)),
        }
        if start.elapsed() > ANSWER_TIMEOUT {
            return Err(TeeError::Unusable("no answer from the TEE interface"));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn read_text(path: &Path) -> Result<String, TeeError> {
    Ok(std::fs::read_to_string(path)
        .map_err(io(path))?
        .trim()
        .to_owned())
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), TeeError> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(io(path))?;
    f.write_all(bytes).map_err(io(path))
}

/// TDX through configfs-tsm.
#[derive(Debug)]
pub struct TdxTee {
    root: PathBuf,
}

impl TdxTee {
    /// The kernel's path.
    pub const ROOT: &'static str = "/sys/kernel/config/tsm/report";

    /// configfs-tsm under `root` ([`Self::ROOT`] on a TDX guest).
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_owned(),
        }
    }
}

impl Tee for TdxTee {
    fn kind(&self) -> TeeKind {
        TeeKind::Tdx
    }
    fn quote(&self, report_data: &[u8; 64]) -> Result<Vec<u8>, TeeError> {
        // One entry per request; removed afterwards whatever happened.
        let entry = self.root.join(format!(
            "phalanx-{}-{:016x}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::create_dir(&entry).map_err(io(&entry))?;
        let result = (|| {
            // The kernel creates an entry's attributes with it; wait for them (bounded)
            // rather than assume.
            read_answer(&entry.join("generation"))?;
            let provider = String::from_utf8_lossy(&read_answer(&entry.join("provider"))?)
                .trim()
                .to_owned();
            if provider != "tdx_guest" {
                return Err(TeeError::NotTdx(provider.chars().take(64).collect()));
            }
            let generation = |e: &Path| -> Result<u64, TeeError> {
                read_text(&e.join("generation"))?
                    .parse()
                    .map_err(|_| TeeError::Unusable("generation is not a number"))
            };
            let before = generation(&entry)?;
            write_file(&entry.join("inblob"), report_data)?;
            let quote = read_answer(&entry.join("outblob"))?;
            let after = generation(&entry)?;
            if after != before + 1 {
                return Err(TeeError::ConcurrentWriter { before, after });
            }
            Ok(quote)
        })();
        let _ = std::fs::remove_dir(&entry);
        result
    }
    fn sealing_key(&self) -> Result<Option<Zeroizing<[u8; 32]>>, TeeError> {
        Ok(None)
    }
}

/// SGX under Gramine, through `/dev/attestation`.
#[derive(Debug)]
pub struct GramineTee {
    root: PathBuf,
}

impl GramineTee {
    /// Gramine's path.
    pub const ROOT: &'static str = "/dev/attestation";

    /// Gramine's pseudo-files under `root` ([`Self::ROOT`] in an enclave).
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_owned(),
        }
    }
}

impl Tee for GramineTee {
    fn kind(&self) -> TeeKind {
        TeeKind::Sgx
    }
    fn quote(&self, report_data: &[u8; 64]) -> Result<Vec<u8>, TeeError> {
        let kind = read_text(&self.root.join("attestation_type"))?;
        if kind != "dcap" {
            return Err(TeeError::NotDcap(kind.chars().take(64).collect()));
        }
        write_file(&self.root.join("user_report_data"), report_data)?;
        read_answer(&self.root.join("quote"))
    }
    fn sealing_key(&self) -> Result<Option<Zeroizing<[u8; 32]>>, TeeError> {
        // Gramine's keys are 128-bit; widen with HKDF under our tag so the AES-256 key
        // is bound to its purpose.
        let path = self.root.join("keys").join("_sgx_mrenclave");
        let raw = Zeroizing::new(std::fs::read(&path).map_err(io(&path))?);
        if raw.len() != 16 {
            return Err(TeeError::Unusable("the sealing key is not 16 bytes"));
        }
        let mut key = Zeroizing::new([0u8; 32]);
        hkdf::Hkdf::<sha2::Sha256>::new(Some(phalanx_types::tag::WORKER_SEALED), &raw)
            .expand(b"gramine-mrenclave", &mut key[..])
            .map_err(|_| TeeError::Unusable("sealing key derivation"))?;
        Ok(Some(key))
    }
}

#[cfg(feature = "sim")]
pub mod fake {
    //! Test doubles of the kernel's configfs-tsm and of Gramine's `/dev/attestation`:
    //! directories a background thread serves like the real interface, answering every
    //! report data written with a simulated quote over it. Only for tests and dev
    //! (feature `sim`: never in a production build).

    use std::path::{Path, PathBuf};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    /// A running fake; stops its thread on drop.
    #[derive(Debug)]
    pub struct Fake {
        stop: Arc<AtomicBool>,
        thread: Option<std::thread::JoinHandle<()>>,
        /// A pipe the thread may be blocked on, opened once to wake it.
        unblock: Option<PathBuf>,
    }

    impl Drop for Fake {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::Relaxed);
            if let Some(fifo) = &self.unblock {
                // A non-blocking open for reading never waits, and releases a writer
                // blocked in its open (O_NONBLOCK is 0o4000 on Linux).
                use std::os::unix::fs::OpenOptionsExt as _;
                let _ = std::fs::OpenOptions::new()
                    .read(true)
                    .custom_flags(0o4000)
                    .open(fifo);
            }
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }

    fn spawn(mut tick: impl FnMut() + Send + 'static) -> Fake {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                tick();
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        Fake {
            stop,
            thread: Some(thread),
            unblock: None,
        }
    }

    /// configfs-tsm under `root`: every new entry gets `provider` (`provider`) and
    /// `generation`; a write to `inblob` bumps `generation` and produces `outblob` from
    /// `quote(report data)`.
    pub fn configfs_tsm(
        root: &Path,
        provider: &'static str,
        quote: impl Fn(&[u8; 64]) -> Vec<u8> + Send + 'static,
    ) -> std::io::Result<Fake> {
        std::fs::create_dir_all(root)?;
        let root: PathBuf = root.to_owned();
        Ok(spawn(move || {
            let Ok(entries) = std::fs::read_dir(&root) else {
                return;
            };
            for e in entries.flatten() {
                let dir = e.path();
                if !dir.join("provider").exists() {
                    let _ = std::fs::write(dir.join("generation"), "0\n");
                    let _ = std::fs::write(dir.join("provider"), format!("{provider}\n"));
                }
                let inblob = dir.join("inblob");
                if let Ok(data) = std::fs::read(&inblob)
                    && let Ok(rd) = <[u8; 64]>::try_from(data.as_slice())
                {
                    let _ = std::fs::remove_file(&inblob);
                    let g: u64 = std::fs::read_to_string(dir.join("generation"))
                        .ok()
                        .and_then(|t| t.trim().parse().ok())
                        .unwrap_or(0);
                    let _ = std::fs::write(dir.join("generation"), format!("{}\n", g + 1));
                    let _ = std::fs::write(dir.join("outblob"), quote(&rd));
                }
            }
        }))
    }

    /// Gramine's `/dev/attestation` under `root`: `attestation_type` is `kind`,
    /// `keys/_sgx_mrenclave` holds `sealing_key`, and reading `quote` answers with
    /// `quote(user_report_data)` at the time of the read, as Gramine does (`quote` is a
    /// named pipe the fake's thread writes each answer into).
    pub fn gramine(
        root: &Path,
        kind: &'static str,
        sealing_key: [u8; 16],
        quote: impl Fn(&[u8; 64]) -> Vec<u8> + Send + 'static,
    ) -> std::io::Result<Fake> {
        std::fs::create_dir_all(root.join("keys"))?;
        std::fs::write(root.join("attestation_type"), format!("{kind}\n"))?;
        std::fs::write(root.join("keys").join("_sgx_mrenclave"), sealing_key)?;
        let fifo = root.join("quote");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status()?;
        if !made.success() {
            return Err(std::io::Error::other("mkfifo failed"));
        }
        let stop = Arc::new(AtomicBool::new(false));
        let (s, root) = (stop.clone(), root.to_owned());
        let thread = std::thread::spawn(move || {
            use std::io::Write as _;
            let input = root.join("user_report_data");
            while !s.load(Ordering::Relaxed) {
                // One answer per report data written: take it (the file is emptied), then
                // wait for the reader of `quote` and answer it.
                let rd = std::fs::read(&input)
                    .ok()
                    .and_then(|d| <[u8; 64]>::try_from(d.as_slice()).ok());
                let Some(rd) = rd else {
                    std::thread::sleep(Duration::from_millis(1));
                    continue;
                };
                let _ = std::fs::write(&input, b"");
                // Blocks until a reader opens the pipe (or the fake is dropped).
                let Ok(mut out) = std::fs::OpenOptions::new()
                    .write(true)
                    .open(root.join("quote"))
                else {
                    return;
                };
                if s.load(Ordering::Relaxed) {
                    return;
                }
                let _ = out.write_all(&quote(&rd));
            }
        });
        Ok(Fake {
            stop,
            thread: Some(thread),
            unblock: Some(fifo),
        })
    }
}
