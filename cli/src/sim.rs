//! `phalanx sim …`: the simulated TEE — a fake Intel PKI, quotes from it, and the
//! whole attestation path in memory. Development only: built with the CLI's `sim`
//! feature (the default), absent from the production ledger's build.

use crate::{Tee, read, verdict_json};
use anyhow::{Context as _, bail};
use attestation_service::{TeeType, TrustAnchors, Verifier};
use phalanx_dcap_sim::{SgxEnclave, SimConfig, SimTee, TdxTd};
use std::path::Path;
use std::process::ExitCode;

/// REPORTDATA for a service nonce (base64url) and runtime data (base64).
pub(crate) fn sim_report_data(nonce: &str, runtime_data: &str) -> anyhow::Result<[u8; 64]> {
    use base64::Engine as _;
    let nonce = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(nonce.trim())
        .context("--nonce is not a service nonce (base64url)")?;
    let runtime = base64::engine::general_purpose::STANDARD
        .decode(runtime_data.trim())
        .context("--runtime-data is not base64")?;
    Ok(phalanx_ear::report_data(&nonce, &runtime))
}

/// `phalanx sim quote`: a quote from the simulated PKI in `dir`, written to `out`.
pub(crate) fn sim_quote(
    dir: &Path,
    tee: Tee,
    measurement: &str,
    debug: bool,
    report_data: &[u8; 64],
    out: &Path,
) -> anyhow::Result<()> {
    let sim = SimTee::from_json(&read_text(&dir.join("sim.json"))?)?;
    let quote = match tee {
        Tee::Sgx => sim.sgx_quote(
            &SgxEnclave {
                mr_enclave: fixed_hex(measurement, "--measurement")?,
                debug,
                ..SgxEnclave::default()
            },
            report_data,
        )?,
        Tee::Tdx => sim.tdx_quote(
            &TdxTd {
                mr_td: fixed_hex(measurement, "--measurement")?,
                debug,
                ..TdxTd::default()
            },
            report_data,
        )?,
    };
    std::fs::write(out, quote).with_context(|| format!("writing {}", out.display()))
}

pub(crate) fn demo() -> anyhow::Result<ExitCode> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .context("clock before 1970")?
        .as_secs();
    let now = i64::try_from(now).context("clock")?;
    let sim = SimTee::generate(SimConfig::up_to_date(now - 3600))?;
    let verifier = Verifier::new(sim.trust_anchors());
    let mut report_data = [0u8; 64];
    report_data[..13].copy_from_slice(b"phalanx demo!");
    let sgx = sim.sgx_quote(
        &SgxEnclave {
            mr_enclave: [0x5a; 32],
            mr_signer: [0xa5; 32],
            ..SgxEnclave::default()
        },
        &report_data,
    )?;
    let tdx = sim.tdx_quote(
        &TdxTd {
            mr_td: [0x7d; 48],
            ..TdxTd::default()
        },
        &report_data,
    )?;
    let mut code = ExitCode::SUCCESS;
    for (tee, quote) in [(TeeType::Sgx, sgx), (TeeType::Tdx, tdx)] {
        let verdict = verifier.verify(&quote, &sim.collateral(tee)?, now);
        let (json, c) = verdict_json(&verdict);
        if verdict.is_err() {
            code = c;
        }
        println!("{}", serde_json::to_string_pretty(&json)?);
    }
    // And the same quotes against Intel's real root: refused.
    let refused = Verifier::new(TrustAnchors::intel()).verify(
        &sim.sgx_quote(&SgxEnclave::default(), &report_data)?,
        &sim.collateral(TeeType::Sgx)?,
        now,
    );
    println!(
        "{}",
        serde_json::to_string_pretty(&verdict_json(&refused).0)?
    );
    Ok(code)
}

/// Creates a simulated PKI in `dir`.
pub fn sim_init(dir: &Path, valid_from: i64) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let sim = SimTee::generate(SimConfig::up_to_date(valid_from))?;
    let write = |name: &str, data: String| {
        let p = dir.join(name);
        std::fs::write(&p, data).with_context(|| format!("writing {}", p.display()))
    };
    // Every private key of the simulated PKI: whoever reads it mints quotes that an
    // attestation service trusting this root accepts. Owner-only, never overwritten.
    let state = dir.join("sim.json");
    if state.exists() {
        anyhow::bail!(
            "{} exists; not overwriting a simulated PKI",
            state.display()
        );
    }
    phalanx_types::secret_file::create(&state, zeroize::Zeroizing::new(sim.to_json()).as_bytes())
        .with_context(|| format!("writing {}", state.display()))?;
    write("root.pem", sim.root_pem())?;
    write(
        "collateral-sgx.json",
        sim.collateral(TeeType::Sgx)?.to_bundle_json(),
    )?;
    write(
        "collateral-tdx.json",
        sim.collateral(TeeType::Tdx)?.to_bundle_json(),
    )?;
    Ok(())
}

/// Hex to a zero-padded fixed array; empty means all zero.
pub(crate) fn fixed_hex<const N: usize>(s: &str, what: &str) -> anyhow::Result<[u8; N]> {
    let bytes =
        hex::decode(s.trim_start_matches("0x")).with_context(|| format!("{what} is not hex"))?;
    if bytes.len() > N {
        bail!("{what} has {} bytes, at most {N} allowed", bytes.len());
    }
    let mut out = [0u8; N];
    out.get_mut(..bytes.len())
        .context("length")?
        .copy_from_slice(&bytes);
    Ok(out)
}

fn read_text(path: &Path) -> anyhow::Result<String> {
    String::from_utf8(read(path)?).with_context(|| format!("{} is not UTF-8", path.display()))
}
