//! A worker with a real attestation result: a simulated SGX quote binding its runtime
//! data, verified and appraised by the attestation service's library, signed into an
//! EAR token. Shared by the release and gatekeeper tests.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use attestation_service::policy::{Policy, appraise};
use attestation_service::token::{Signer, claims, generate_key};
use attestation_service::{TeeType, verify};
use phalanx_dcap_sim::{SgxEnclave, SimConfig, SimTee, TdxTd};
use phalanx_ear::report_data;
use phalanx_release::envelope::RecipientKey;
use phalanx_release::release::{Jwks, ReleasePolicy, WorkerRuntimeData};
use phalanx_release::tenant::TeeIdentity;
use phalanx_threshold::derive::KeyId;
use phalanx_threshold::identity::IdentityKey;
use phalanx_types::Epoch;

pub const NOW: i64 = 1_760_003_600;
pub const TTL: i64 = 600;
pub const MR: [u8; 32] = [0x42; 32];
pub const ISSUER: &str = "https://as.example";

/// A worker and its attestation result.
pub struct Worker {
    pub token: String,
    pub jwks: Jwks,
    pub runtime_data: Vec<u8>,
    pub recipient: RecipientKey,
    pub hpke: Vec<u8>,
}

impl Worker {
    /// Its request for its own tenant's key of `epoch` (enclave [`MR`]).
    pub fn request(&self, epoch: u64) -> phalanx_release::gatekeeper::ReleaseRequest {
        phalanx_release::gatekeeper::ReleaseRequest {
            token: self.token.clone(),
            runtime_data: self.runtime_data.clone(),
            key_id: key_id(epoch, &sgx_tenant(MR)),
            hpke_public_key: self.hpke.clone(),
        }
    }
}

/// A worker running enclave `mr`, attested under a policy allowing `allowed`.
pub fn worker(mr: [u8; 32], allowed: [u8; 32], trust_root: &'static str) -> Worker {
    attested(
        &Evidence::Sgx(SgxEnclave {
            mr_enclave: mr,
            ..SgxEnclave::default()
        }),
        &format!(
            "id = \"app\"\nversion = 1\n[[sgx]]\nmr_enclave = \"{}\"\n",
            hex::encode(allowed)
        ),
        trust_root,
    )
}

/// A debug enclave `mr`, appraised `affirming` under a policy that lets debug enclaves
/// through (so only the gatekeeper's own refusal stands between it and a key).
pub fn debug_worker(mr: [u8; 32]) -> Worker {
    attested(
        &Evidence::Sgx(SgxEnclave {
            mr_enclave: mr,
            debug: true,
            ..SgxEnclave::default()
        }),
        &format!(
            "id = \"app\"\nversion = 1\ndangerous_allow_debug = true\n[[sgx]]\nmr_enclave = \"{}\"\n",
            hex::encode(mr)
        ),
        "sim",
    )
}

/// What a simulated worker runs.
// A test value built once per case: boxing the TD buys nothing.
#[allow(clippy::large_enum_variant)]
pub enum Evidence {
    /// An SGX enclave.
    Sgx(SgxEnclave),
    /// A TD.
    Tdx(TdxTd),
}

/// A worker running `evidence`, appraised under the attestation policy `policy_toml`.
pub fn attested(evidence: &Evidence, policy_toml: &str, trust_root: &'static str) -> Worker {
    let signer = Signer::new(&generate_key().unwrap()).unwrap();
    attested_by(&signer, evidence, policy_toml, trust_root)
}

/// `n` workers running enclave `mr`, attested by one service (one JWKS): for loads
/// beyond one token's release budget.
pub fn workers(n: usize, mr: [u8; 32]) -> Vec<Worker> {
    let signer = Signer::new(&generate_key().unwrap()).unwrap();
    let policy = format!(
        "id = \"app\"\nversion = 1\n[[sgx]]\nmr_enclave = \"{}\"\n",
        hex::encode(mr)
    );
    let enclave = Evidence::Sgx(SgxEnclave {
        mr_enclave: mr,
        ..SgxEnclave::default()
    });
    (0..n)
        .map(|_| attested_by(&signer, &enclave, &policy, "sim"))
        .collect()
}

/// A worker running `evidence`, appraised under `policy_toml`, its token signed by
/// `signer`.
pub fn attested_by(
    signer: &Signer,
    evidence: &Evidence,
    policy_toml: &str,
    trust_root: &'static str,
) -> Worker {
    let mut rng = rand::rng();
    let sim = SimTee::generate(SimConfig::up_to_date(NOW - 3600)).unwrap();
    let recipient = RecipientKey::generate(&mut rng);
    let rd = WorkerRuntimeData {
        identity_key: IdentityKey::generate(&mut rng)
            .verifying_key()
            .to_sec1_bytes()
            .to_vec(),
        hpke_public_key: recipient.public_bytes(),
        registry: [0; 32],
    };
    let runtime_data = rd.encode();
    let nonce = b"a service nonce";
    let binding = report_data(nonce, &runtime_data);
    let (quote, tee) = match evidence {
        Evidence::Sgx(e) => (sim.sgx_quote(e, &binding).unwrap(), TeeType::Sgx),
        Evidence::Tdx(td) => (sim.tdx_quote(td, &binding).unwrap(), TeeType::Tdx),
    };
    let verified = verify(
        &quote,
        &sim.collateral(tee).unwrap(),
        NOW,
        &sim.trust_anchors(),
    )
    .unwrap();
    let policy = Policy::from_toml(policy_toml).unwrap();
    let verdict = appraise(&policy, &verified, NOW);
    let mut c = claims(ISSUER, NOW, TTL, nonce, &runtime_data, &verified, &verdict);
    c.trust_root = serde_json::from_value(serde_json::Value::from(trust_root)).unwrap();
    Worker {
        token: signer.sign(&c).unwrap(),
        jwks: Jwks::from_json(&signer.jwks(NOW).to_string()).unwrap(),
        runtime_data,
        hpke: rd.hpke_public_key,
        recipient,
    }
}

/// The tenant of the simulated SGX enclave `mr` (no KSS).
pub fn sgx_tenant(mr: [u8; 32]) -> String {
    TeeIdentity::Sgx {
        mr_enclave: mr,
        kss: None,
    }
    .tenant_id()
    .to_string()
}

/// The release policy of the tests: the token's issuer, the simulated root accepted.
pub fn sim_policy() -> ReleasePolicy {
    ReleasePolicy {
        issuer: Some(ISSUER.into()),
        trust_roots: vec!["sim".into()],
        attestation_policies: vec!["app".into()],
        // The test workers are appraised under `app`; registrations checked here too.
        gatekeeper_policies: vec!["app".into()],
        ..ReleasePolicy::default()
    }
}

pub fn key_id(epoch: u64, tenant: &str) -> KeyId {
    KeyId {
        epoch: Epoch(epoch),
        tenant: tenant.into(),
        path: "db".into(),
        purpose: "aead".into(),
    }
}
