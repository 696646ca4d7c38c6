//! A whole service over a temporary data directory, with a test clock.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use attestation_service::app::App;
use attestation_service::config::Config;
use attestation_service::nonce::report_data;
use base64::Engine as _;
use phalanx_dcap_sim::{SgxEnclave, SimTee};
use std::sync::atomic::{AtomicI64, Ordering};

/// The admin secret of test services.
pub const ADMIN: &str = "test-admin-secret-0123456789";
/// The measurement the test policy `app` allows.
pub const MR_ENCLAVE: [u8; 32] = [0x42; 32];

/// A clock tests move: one per test binary.
pub static CLOCK: AtomicI64 = AtomicI64::new(1_760_003_600);

pub fn clock() -> i64 {
    CLOCK.load(Ordering::SeqCst)
}

pub fn set_clock(t: i64) {
    CLOCK.store(t, Ordering::SeqCst);
}

pub fn policy_toml(id: &str, version: u64) -> String {
    format!(
        "id = \"{id}\"\nversion = {version}\n[[sgx]]\nmr_enclave = \"{}\"\n",
        hex::encode(MR_ENCLAVE)
    )
}

/// A service in sim mode (default config) over `dir`, with the policy `app` installed.
pub fn config(dir: &std::path::Path) -> Config {
    let policy = dir.join("app.toml");
    std::fs::write(&policy, policy_toml("app", 1)).unwrap();
    let mut c = Config {
        data_dir: dir.join("as"),
        policies: vec![policy],
        ..Config::default()
    };
    c.trust.root = attestation_service::config::RootKind::Sim;
    c.admin.token = Some(ADMIN.into());
    c
}

pub fn open(config: Config) -> (App, SimTee) {
    let app = App::open(config, clock).unwrap();
    let sim = SimTee::from_json(
        &std::fs::read_to_string(app.config.data_dir.join("sim/sim.json")).unwrap(),
    )
    .unwrap();
    (app, sim)
}

pub fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// The raw bytes of a nonce string (what report data binds).
pub fn nonce_bytes(nonce: &str) -> Vec<u8> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(nonce)
        .unwrap()
}

/// A sim SGX quote of the allowed enclave binding `nonce` and `runtime`.
pub fn quote_for(sim: &SimTee, nonce: &str, runtime: &[u8]) -> Vec<u8> {
    sim.sgx_quote(
        &SgxEnclave {
            mr_enclave: MR_ENCLAVE,
            ..SgxEnclave::default()
        },
        &report_data(&nonce_bytes(nonce), runtime),
    )
    .unwrap()
}

/// Verifies a compact JWS with an independent JWT library knowing only the JWKS.
pub fn check_token(token: &str, jwks: &serde_json::Value) -> serde_json::Value {
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_value(jwks.clone()).unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::ES256);
    let jwk = set
        .find(header.kid.as_deref().unwrap())
        .expect("kid in the JWKS");
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.validate_exp = false; // the test clock is not the library's
    validation.required_spec_claims.clear();
    jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation)
        .unwrap()
        .claims
}

/// The `attestation-service` binary running as a process, its log drained on a thread.
pub struct Process {
    pub child: std::process::Child,
    /// Where its REST server listens.
    pub rest: String,
    drain: Option<std::thread::JoinHandle<Vec<String>>>,
}

impl Process {
    /// Starts `attestation-service --config <config> serve` (JSON log, admin secret
    /// [`ADMIN`] from the environment) and waits for the line that says where it listens.
    pub fn start(config: &std::path::Path) -> Self {
        use std::io::BufRead as _;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_attestation-service"))
            .args(["--config", config.to_str().unwrap(), "serve"])
            .env("PHALANX_AS__admin__token", ADMIN)
            .env("PHALANX_AS__log__format", "json")
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
        let mut seen = Vec::new();
        let rest = loop {
            let Some(line) = lines.next() else {
                let _ = child.wait();
                panic!("the service exited:\n{}", seen.join("\n"));
            };
            let line = line.unwrap();
            let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
            seen.push(line);
            if let Some(addr) = v["fields"]["rest"].as_str() {
                break addr.to_owned();
            }
        };
        let drain = std::thread::spawn(move || {
            seen.extend(lines.map_while(Result::ok));
            seen
        });
        Self {
            child,
            rest,
            drain: Some(drain),
        }
    }

    /// Sends `signal` (e.g. `-TERM`, `-KILL`) and waits for the exit; returns the
    /// status and the whole log.
    pub fn stop(mut self, signal: &str) -> (std::process::ExitStatus, String) {
        let sent = std::process::Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        let status = self.child.wait().unwrap();
        let log = self.drain.take().unwrap().join().unwrap().join("\n");
        (status, log)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
