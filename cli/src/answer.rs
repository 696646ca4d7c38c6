//! `phalanx verify answer`: checks a pRuntime answer's verification bundle offline
//! ([`phalanx_verify`]) against a pinned registry genesis and a DCAP trust root (Intel's
//! unless `--trust-root`), and prints one verdict JSON. Exit 0: accepted; 1: refused;
//! 2: the input is unusable (unreadable, not a bundle, a bad option).

use phalanx_verify::{OptionsSpec, Refusal, TcbStatus, Verdict, malformed};
use std::path::PathBuf;
use std::process::ExitCode;

/// `phalanx verify answer` arguments.
#[derive(Debug, clap::Args)]
pub struct AnswerArgs {
    /// The bundle (JSON; `phalanx devnet` writes `<dir>/demo/bundle.json`).
    pub bundle: PathBuf,
    /// The registry's genesis block hash (hex): the only chain accepted.
    #[arg(long)]
    pub genesis: String,
    /// A DCAP trust root (PEM) instead of Intel's (the devnet's simulated root).
    #[arg(long)]
    pub trust_root: Option<PathBuf>,
    /// Verify the quote at this instant (unix seconds). Default: now, so a key leaked
    /// after a TCB recovery cannot sign answers for old heights with collateral that
    /// was valid then.
    #[arg(long, conflicts_with = "at_statement")]
    pub at: Option<i64>,
    /// Verify the quote at the answer's block time instead of now (an archive's check
    /// of an old answer).
    #[arg(long)]
    pub at_statement: bool,
    /// The lowest `tcbEvaluationDataNumber` the collateral may have (Intel raises it
    /// with every TCB recovery).
    #[arg(long)]
    pub min_tcb_evaluation_data_number: Option<u32>,
    /// An accepted TCB status (repeat; default `UpToDate`).
    #[arg(long = "tcb-status")]
    pub tcb_statuses: Vec<String>,
    /// An advisory accepted with `SWHardeningNeeded` (repeat; e.g. INTEL-SA-00334).
    #[arg(long = "advisory")]
    pub advisories: Vec<String>,
    /// Largest age of the worker's evidence at the answer, seconds (default: the
    /// registry's own evidence lifetime, as governance set it).
    #[arg(long)]
    pub max_evidence_age: Option<i64>,
    /// Accept answers only from a pRuntime with this measurement (tenant id, hex;
    /// repeat). Without it, any measurement the registry allows as a pRuntime.
    #[arg(long = "runtime")]
    pub runtimes: Vec<String>,
    /// One line of JSON instead of pretty-printed.
    #[arg(long)]
    pub json: bool,
    /// Online: fetch the registry's header and proofs from this ledger node (gRPC) when
    /// the bundle leaves them out or lacks one the check needs; they are verified from
    /// the pinned genesis all the same.
    #[arg(long)]
    pub chain: Option<String>,
}

fn options(args: &AnswerArgs) -> Result<phalanx_verify::Options, Refusal> {
    let trust_root_pem = match &args.trust_root {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .map_err(|e| malformed("options", format!("{}: {e}", path.display())))?,
        ),
        None => None,
    };
    let tcb_statuses = args
        .tcb_statuses
        .iter()
        .map(|s| {
            serde_json::from_value::<TcbStatus>(serde_json::Value::from(s.as_str()))
                .map_err(|_| malformed("options", format!("unknown TCB status {s:?}")))
        })
        .collect::<Result<_, _>>()?;
    OptionsSpec {
        genesis: args.genesis.clone(),
        trust_root_pem,
        root_name: args.trust_root.as_ref().map(|p| p.display().to_string()),
        at: if args.at_statement {
            None
        } else {
            Some(args.at.unwrap_or_else(phalanx_types::unix_now))
        },
        tcb_statuses,
        advisories: args.advisories.clone(),
        max_evidence_age: args.max_evidence_age,
        runtimes: args.runtimes.clone(),
        min_tcb_evaluation_data_number: args.min_tcb_evaluation_data_number,
    }
    .options()
}

/// Runs the check and prints the verdict.
pub fn run(args: &AnswerArgs) -> anyhow::Result<ExitCode> {
    let verdict = (|| {
        let o = options(args)?;
        let unreadable =
            |e: std::io::Error| malformed("bundle", format!("{}: {e}", args.bundle.display()));
        // Bounded before reading: a bundle is never larger than the parser takes.
        let size = std::fs::metadata(&args.bundle).map_err(unreadable)?.len();
        if size > phalanx_verify::MAX_INPUT as u64 {
            return Err(malformed(
                "bundle",
                format!("over {} bytes", phalanx_verify::MAX_INPUT),
            ));
        }
        let bytes = std::fs::read(&args.bundle).map_err(unreadable)?;
        let mut bundle = phalanx_verify::parse(&bytes)?;
        // Offline first. With `--chain`, a registry part that is missing, or lacks a
        // proof the check needs (`registry_incomplete`), is fetched whole from the
        // node at the statement's height — a few kilobytes of proofs, never blocks — and
        // checked like any bundle's: the node is not trusted.
        if !bundle.registry.is_empty() || args.chain.is_none() {
            let verdict = phalanx_verify::verify(&bundle, &o);
            let incomplete = verdict
                .error
                .as_ref()
                .is_some_and(|e| e.code == "registry_incomplete");
            if args.chain.is_none() || !incomplete {
                return Ok(verdict);
            }
        }
        if let Some(url) = &args.chain {
            let st = &bundle.answer.statement;
            let rt =
                tokio::runtime::Runtime::new().map_err(|e| malformed("registry", e.to_string()))?;
            let client = chain::grpc::LightClient::pinned(url, o.genesis);
            bundle.registry = phalanx_verify::registry_proof(
                st,
                |keys| rt.block_on(client.prove(st.height, keys)),
                |height| rt.block_on(client.raw_block(height)),
            )
            .map_err(|e| malformed("registry", format!("fetching proofs from {url}: {e}")))?;
        }
        Ok::<_, Refusal>(phalanx_verify::verify(&bundle, &o))
    })()
    .unwrap_or_else(Verdict::refused);
    let text = if args.json {
        serde_json::to_string(&verdict)
    } else {
        serde_json::to_string_pretty(&verdict)
    }?;
    println!("{text}");
    Ok(if verdict.ok {
        ExitCode::SUCCESS
    } else if verdict.unusable() {
        ExitCode::from(2)
    } else {
        ExitCode::from(1)
    })
}
