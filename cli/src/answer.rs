//! `phalanx verify answer`: checks a pRuntime answer's verification bundle offline
//! ([`phalanx_verify`]) against a pinned registry — a ledger's genesis, or an EVM
//! registry's chain and address with the answer's block as the user trusts it — and a
//! DCAP trust root (Intel's unless `--trust-root`), and prints one verdict JSON. Exit 0:
//! accepted; 1: refused; 2: the input is unusable (unreadable, not a bundle, a bad
//! option).

use chain::registry_url::RegistryUrl;
use phalanx_verify::{OptionsSpec, Refusal, TcbStatus, Verdict, malformed};
use std::path::PathBuf;
use std::process::ExitCode;

/// `phalanx verify answer` arguments.
#[derive(Debug, clap::Args)]
pub struct AnswerArgs {
    /// The bundle (JSON; `phalanx devnet` writes `<dir>/demo/bundle.json`).
    pub bundle: PathBuf,
    /// The ledger's genesis block hash (hex): the only ledger accepted.
    #[arg(
        long,
        required_unless_present_any = ["evm_registry", "chain"],
        conflicts_with = "evm_registry"
    )]
    pub genesis: Option<String>,
    /// An EVM registry instead: `CHAIN_ID:0xADDRESS` of the Solidity registry.
    #[arg(long)]
    pub evm_registry: Option<String>,
    /// With `--evm-registry`: the hash of the answer's block as you trust it (hex).
    /// Without it, `--chain` asks your own node.
    #[arg(long, requires = "evm_registry")]
    pub evm_block: Option<String>,
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
    /// the pinned genesis all the same. With `--evm-registry`: your own EVM node
    /// (JSON-RPC), which also says which block the answer's height is, unless
    /// `--evm-block` does. `evm+http://NODE#0xADDRESS` (a registry URL) names both your
    /// node and the registry: the chain is your node's.
    #[arg(long)]
    pub chain: Option<String>,
}

/// The options; `evm_registry` stands in for `--evm-registry` (from `--chain`'s URL).
fn options(
    args: &AnswerArgs,
    evm_registry: Option<String>,
) -> Result<phalanx_verify::Options, Refusal> {
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
        genesis: args.genesis.clone().unwrap_or_default(),
        evm_registry: evm_registry.or_else(|| args.evm_registry.clone()),
        evm_block: args.evm_block.clone(),
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

/// The verdict with the node's URL in its message shown only as far as its host
/// ([`chain::registry_url::scrub`]): a path or query often carries an API key.
fn scrubbed(mut verdict: Verdict, node: Option<&str>) -> Verdict {
    if let (Some(e), Some(url)) = (verdict.error.as_mut(), node) {
        e.message = chain::registry_url::scrub(&e.message, url);
    }
    verdict
}

/// The pin `CHAIN_ID:0xADDRESS` of the registry at `address` on the chain of the user's
/// own node at `rpc`.
async fn pin_of(rpc: &str, address: &[u8; 20]) -> Result<String, Refusal> {
    let node = |e: chain::registry::RegistryError| malformed("registry", format!("{rpc}: {e}"));
    let evm = chain::evm::EvmRegistry::at(rpc, (*address).into()).map_err(node)?;
    let chain_id = evm.evm_chain_id().await.map_err(node)?;
    Ok(format!("{chain_id}:0x{}", hex::encode(address)))
}

/// The JSON-RPC endpoint of `node` for the EVM registry at `registry`: a registry URL
/// names its contract, which must be the pinned one; a plain URL is the node alone.
fn evm_rpc<'a>(node: &'a RegistryUrl, registry: &[u8; 20]) -> Result<&'a str, Refusal> {
    match node {
        RegistryUrl::Evm { rpc, address } if address == registry => Ok(rpc),
        RegistryUrl::Evm { .. } => Err(malformed(
            "options",
            format!("{node} names another registry than the pinned one"),
        )),
        RegistryUrl::Ledger { url } => Ok(url),
    }
}

/// With an EVM registry pinned and no block hash given: the hash the user's own `node`
/// gives the statement's block, on the pinned chain.
async fn trust_evm_block(
    o: &mut phalanx_verify::Options,
    node: &RegistryUrl,
    st: &phalanx_types::statement::Statement,
) -> Result<(), Refusal> {
    let phalanx_verify::Pin::Evm {
        chain_id,
        registry,
        block: block @ None,
    } = &mut o.pin
    else {
        return Ok(());
    };
    let url = evm_rpc(node, registry)?;
    let node = |e: chain::registry::RegistryError| malformed("registry", format!("{url}: {e}"));
    let evm = chain::evm::EvmRegistry::at(url, (*registry).into()).map_err(node)?;
    let theirs = evm.evm_chain_id().await.map_err(node)?;
    if theirs != *chain_id {
        return Err(malformed(
            "registry",
            format!("{url} is a node of chain {theirs}, the registry is on chain {chain_id}"),
        ));
    }
    *block = Some(
        evm.block_hash(st.height)
            .await
            .map_err(node)?
            .ok_or_else(|| malformed("registry", format!("{url} has no block {}", st.height)))?,
    );
    Ok(())
}

/// The registry part for `st` from `node`: a ledger's (gRPC) or an EVM node's
/// (JSON-RPC), as `pin` says. Nothing fetched is trusted: the check verifies it.
fn fetch(
    rt: &tokio::runtime::Runtime,
    node: &RegistryUrl,
    pin: &phalanx_verify::Pin,
    st: &phalanx_types::statement::Statement,
) -> anyhow::Result<phalanx_verify::RegistryProof> {
    Ok(match (pin, node) {
        (phalanx_verify::Pin::Ledger { genesis }, RegistryUrl::Ledger { url }) => {
            let client = chain::grpc::LightClient::pinned(url, *genesis);
            phalanx_verify::registry_proof(
                st,
                |keys| rt.block_on(client.prove(st.height, keys)),
                |height| rt.block_on(client.raw_block(height)),
            )?
        }
        (phalanx_verify::Pin::Ledger { .. }, RegistryUrl::Evm { .. }) => {
            anyhow::bail!("a ledger's genesis is pinned, {node} is an EVM registry")
        }
        (phalanx_verify::Pin::Evm { registry, .. }, _) => {
            let rpc = evm_rpc(node, registry).map_err(|e| anyhow::anyhow!(e.message))?;
            let evm = chain::evm::EvmRegistry::at(rpc, (*registry).into())?;
            phalanx_verify::evm_registry_proof(st, |facts| {
                rt.block_on(evm.prove(facts, Some(st.height)))
            })?
        }
    })
}

/// Runs the check and prints the verdict.
pub fn run(args: &AnswerArgs) -> anyhow::Result<ExitCode> {
    let verdict = (|| {
        let rt =
            tokio::runtime::Runtime::new().map_err(|e| malformed("registry", e.to_string()))?;
        let node = args
            .chain
            .as_deref()
            .map(str::parse::<RegistryUrl>)
            .transpose()
            .map_err(|e| malformed("options", e.to_string()))?;
        let from_url = match (&node, &args.evm_registry) {
            (Some(RegistryUrl::Evm { rpc, address }), None) if args.genesis.is_none() => {
                Some(rt.block_on(pin_of(rpc, address))?)
            }
            _ => None,
        };
        let mut o = options(args, from_url)?;
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
        if let Some(node) = &node {
            rt.block_on(trust_evm_block(&mut o, node, &bundle.answer.statement))?;
        }
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
        if let Some(node) = &node {
            bundle.registry = fetch(&rt, node, &o.pin, &bundle.answer.statement)
                .map_err(|e| malformed("registry", format!("fetching proofs from {node}: {e}")))?;
        }
        Ok::<_, Refusal>(phalanx_verify::verify(&bundle, &o))
    })()
    .unwrap_or_else(Verdict::refused);
    let verdict = scrubbed(verdict, args.chain.as_deref());
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_verdict_never_shows_a_nodes_path_query_or_password() {
        for node in [
            "https://rpc.example/v3/SECRET",
            "evm+https://rpc.example/v3/SECRET#0x5fbdb2315678afecb367f032d93f642f64180aa3",
        ] {
            let v = Verdict::refused(malformed(
                "registry",
                format!(
                    "fetching proofs from {node}: error sending request for url (https://rpc.example/v3/SECRET)"
                ),
            ));
            let message = scrubbed(v, Some(node)).error.unwrap().message;
            assert!(!message.contains("SECRET"), "{message}");
            assert!(message.contains("https://rpc.example"), "{message}");
        }
    }
}
