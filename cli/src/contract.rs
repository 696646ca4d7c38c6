//! `phalanx contract`: a user's commands for confidential contracts, against any
//! registry (the ledger's `http://…` or the Solidity registry's `evm+http://NODE#0xADDRESS`):
//!
//! - `deploy`: checks the module as pRuntime would load it, then deploys it; prints the
//!   contract id.
//! - `send`: seals the input to the contract's newest published key (the registry took
//!   it only from an attested pRuntime) and submits it; then, from a worker, fetches
//!   the command's receipt (status, fuel, output, events) sealed to you.
//! - `query`: a read-only call, sealed to the worker's HPKE key as the registry lists
//!   it; the answer's statement is checked against the worker's identity on the
//!   registry.
//! - `receipt`: the receipt of a command you sent, by its nonce.
//! - `events`: a page of the contract's events, for a reader the contract admits.
//!
//! Workers are those that announced serving the contract on the registry (`pruntime
//! --public-url`), or the ones named with `--worker URL` (repeatable, tried in order). A
//! URL is only where to knock: the worker's identity, standing and HPKE key come from the
//! registry, and an answer that does not verify under them is refused.
//!
//! `--json` prints one JSON object; `--bundle FILE` writes the verification bundle of a
//! query's answer or a receipt (`phalanx verify answer FILE --genesis …` checks it
//! offline).

use anyhow::Context as _;
use chain::registry_url::RegistryUrl;
use p256::ecdsa::SigningKey;
use phalanx_types::codec::Codec as _;
use phalanx_types::receipt::Receipt;
use pruntime::client::{Asked, ClientError, Sent};
use pruntime::protocol::Purpose;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where and as whom.
#[derive(Debug, clap::Args)]
pub struct At {
    /// The registry: a ledger node (`http://…`) or `evm+http://NODE#0xADDRESS`.
    #[arg(long)]
    pub registry: String,
    /// A ledger's genesis hash (hex): only that chain is accepted.
    #[arg(long)]
    pub genesis: Option<String>,
    /// Your P-256 key file (`phalanx chain keygen`): your account on the ledger, and
    /// the caller the contract sees in your commands and queries.
    #[arg(long)]
    pub key: PathBuf,
    /// On an EVM registry: the Ethereum account's key file that sends your
    /// transactions (`phalanx chain evm-keygen`; fund it first).
    #[arg(long)]
    pub evm_key: Option<PathBuf>,
    /// One line of JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// What to send (exactly one).
#[derive(Debug, clap::Args)]
#[group(required = true, multiple = false)]
pub struct Input {
    /// The input as text (UTF-8).
    #[arg(long)]
    pub input: Option<String>,
    /// The input as hex.
    #[arg(long)]
    pub input_hex: Option<String>,
    /// The input from a file (at most 64 KiB).
    #[arg(long)]
    pub input_file: Option<PathBuf>,
}

/// Largest input read from a file: the runtime's input bound.
const MAX_INPUT: u64 = 64 * 1024;

impl Input {
    fn bytes(&self) -> anyhow::Result<Vec<u8>> {
        if let Some(t) = &self.input {
            return Ok(t.as_bytes().to_vec());
        }
        if let Some(h) = &self.input_hex {
            return hex::decode(h.trim().trim_start_matches("0x"))
                .context("--input-hex is not hex");
        }
        let path = self.input_file.as_deref().context("no input given")?;
        read_bounded(path, MAX_INPUT)
    }
}

fn read_bounded(path: &Path, max: u64) -> anyhow::Result<Vec<u8>> {
    use std::io::Read as _;
    let mut b = Vec::new();
    std::fs::File::open(path)
        .with_context(|| format!("reading {}", path.display()))?
        .take(max + 1)
        .read_to_end(&mut b)
        .with_context(|| format!("reading {}", path.display()))?;
    if b.len() as u64 > max {
        anyhow::bail!("{} is over {max} bytes", path.display());
    }
    Ok(b)
}

/// The workers to ask, and how to write the bundle.
#[derive(Debug, clap::Args)]
pub struct Ask {
    /// A worker serving the contract (its HTTP URL; repeat to try several in order).
    /// Without it, the workers that announced serving the contract on the registry.
    #[arg(long = "worker")]
    pub workers: Vec<String>,
    /// Write the answer's verification bundle here.
    #[arg(long)]
    pub bundle: Option<PathBuf>,
}

/// `phalanx contract …`.
#[derive(Debug, clap::Subcommand)]
pub enum ContractCommand {
    /// Make one module of a contract and the components it calls (each carried in a
    /// custom section under its name; checked as pRuntime would load it); prints its
    /// code hash and each component's. Nothing is sent.
    Bundle {
        /// The contract's own module.
        #[arg(long)]
        module: PathBuf,
        /// A component, `NAME=FILE` (name: a-z, 0-9, - and _; repeat for more).
        #[arg(long = "component", required = true)]
        components: Vec<String>,
        /// The module to write (not over an existing file unless `--force`).
        #[arg(long)]
        out: PathBuf,
        /// Replace `--out` if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Deploy a contract module (checked first as pRuntime would load it); prints its id.
    Deploy {
        /// Where and as whom.
        #[command(flatten)]
        at: At,
        /// The module file (WebAssembly).
        #[arg(long)]
        module: PathBuf,
        /// Salt (32 bytes, hex): another salt, another contract of the same code.
        #[arg(long, default_value = ZERO_SALT)]
        salt: String,
    },
    /// Send a command (sealed to the contract's key, ordered by the registry) and print
    /// its receipt from a worker.
    Send {
        /// Where and as whom.
        #[command(flatten)]
        at: At,
        /// The contract id (hex).
        #[arg(long)]
        contract: String,
        /// What to send.
        #[command(flatten)]
        input: Input,
        /// Which workers to ask.
        #[command(flatten)]
        ask: Ask,
        /// How long to wait for the receipt, seconds (0: print the nonce and go).
        #[arg(long, default_value_t = 30)]
        wait: u64,
    },
    /// Query a worker (read-only) and print the answer.
    Query {
        /// Where and as whom.
        #[command(flatten)]
        at: At,
        /// The contract id (hex).
        #[arg(long)]
        contract: String,
        /// What to send.
        #[command(flatten)]
        input: Input,
        /// Which workers to ask.
        #[command(flatten)]
        ask: Ask,
    },
    /// Read the contract's events from a command sequence on, if the contract lets
    /// you (its `may_read_events`).
    Events {
        /// Where and as whom.
        #[command(flatten)]
        at: At,
        /// The contract id (hex).
        #[arg(long)]
        contract: String,
        /// The first command sequence wanted (a page says where the next starts).
        #[arg(long, default_value_t = 0)]
        from: u64,
        /// Keep following: ask again every second from where the last page ended, and
        /// print new events as they come (until interrupted).
        #[arg(long)]
        follow: bool,
        /// Which workers to ask.
        #[command(flatten)]
        ask: Ask,
    },
    /// Fetch the receipt of a command you sent, by its nonce (`send` prints it).
    Receipt {
        /// Where and as whom.
        #[command(flatten)]
        at: At,
        /// The contract id (hex).
        #[arg(long)]
        contract: String,
        /// The command's nonce.
        #[arg(long)]
        nonce: u64,
        /// Which workers to ask.
        #[command(flatten)]
        ask: Ask,
    },
}

const ZERO_SALT: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The registry a command runs against.
#[allow(
    clippy::large_enum_variant,
    reason = "one per command, never moved in a loop"
)]
enum Registry {
    Ledger(chain::grpc::LightClient),
    Evm {
        registry: chain::evm::EvmRegistry,
        account: Option<chain::evm::EvmAccount>,
    },
}

impl Registry {
    fn open(at: &At) -> anyhow::Result<Self> {
        Ok(match at.registry.parse::<RegistryUrl>()? {
            RegistryUrl::Ledger { url } => {
                let genesis = at
                    .genesis
                    .as_deref()
                    .context("--genesis names the ledger's chain (hex; `make devnet` prints it)")?;
                let genesis: [u8; 32] = hex::decode(genesis)?
                    .try_into()
                    .map_err(|_| anyhow::anyhow!("--genesis is 32 bytes of hex"))?;
                Self::Ledger(chain::grpc::LightClient::pinned(&url, genesis))
            }
            RegistryUrl::Evm { rpc, address } => {
                if at.genesis.is_some() {
                    anyhow::bail!("--genesis names a ledger; this registry is on an EVM chain");
                }
                let account = at
                    .evm_key
                    .as_deref()
                    .map(|k| chain::evm::signer_file(k, false))
                    .transpose()?
                    .map(chain::evm::EvmAccount::plain);
                Self::Evm {
                    registry: chain::evm::EvmRegistry::at(&rpc, address.into())?,
                    account,
                }
            }
        })
    }

    fn evm_account(
        account: Option<&chain::evm::EvmAccount>,
    ) -> anyhow::Result<&chain::evm::EvmAccount> {
        account
            .context("on an EVM registry, --evm-key names the account that sends the transaction")
    }

    async fn send(
        &self,
        user: &SigningKey,
        contract: [u8; 32],
        input: &[u8],
    ) -> anyhow::Result<Sent> {
        Ok(match self {
            Self::Ledger(c) => pruntime::client::submit_command(c, user, contract, input).await?,
            Self::Evm { registry, account } => {
                let account = Self::evm_account(account.as_ref())?;
                pruntime::client::submit_command_evm(registry, account, user, contract, input)
                    .await?
            }
        })
    }

    /// Asks the worker at `url` a request of `purpose` with plaintext `input`.
    async fn ask(
        &self,
        url: &str,
        user: &SigningKey,
        contract: [u8; 32],
        (purpose, input): (Purpose, &[u8]),
    ) -> Result<Asked, ClientError> {
        // A worker's URL may come from the registry, where any worker in standing
        // writes: no redirects (it could point this client anywhere), a short connect
        // timeout (a dead entry costs seconds, not the whole wait).
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .connect_timeout(Duration::from_secs(3))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ClientError::Worker(e.to_string()))?;
        let worker = identity_of(&http, url, contract).await?;
        let to = (url, worker.as_slice());
        match self {
            Self::Ledger(c) => {
                pruntime::client::ask(c, &http, to, purpose, user, contract, input).await
            }
            Self::Evm { registry, .. } => {
                pruntime::client::ask_evm(registry, &http, to, purpose, user, contract, input).await
            }
        }
    }

    /// The URLs of the workers that announced serving `contract` on the registry (the
    /// newest of each). Only where to knock: each answer is checked against the
    /// worker's keys on the registry, and a worker not in standing is refused there.
    async fn announced(&self, contract: [u8; 32]) -> anyhow::Result<Vec<String>> {
        use chain::registry::ContractRegistry as _;
        let listed = match self {
            Self::Ledger(c) => c.serving(contract).await?,
            Self::Evm { registry, .. } => registry.serving(contract).await?,
        };
        Ok(listed.into_iter().map(|(_, url)| url).collect())
    }

    /// The registry's part of `statement`'s bundle: proofs at its block.
    async fn proof(
        &self,
        statement: &phalanx_types::statement::Statement,
    ) -> anyhow::Result<phalanx_verify::RegistryProof> {
        let height = statement.height;
        let rt = tokio::runtime::Handle::current();
        Ok(tokio::task::block_in_place(|| match self {
            Self::Ledger(c) => phalanx_verify::registry_proof(
                statement,
                |keys| rt.block_on(c.prove(height, keys)),
                |h| rt.block_on(c.raw_block(h)),
            ),
            Self::Evm { registry, .. } => phalanx_verify::evm_registry_proof(statement, |facts| {
                rt.block_on(registry.prove(facts, Some(height)))
            }),
        })?)
    }
}

/// The identity key the worker at `url` says it has (`GET /v1/info`), if it serves
/// `contract`. Only a claim: the registry's record of that key is what the request is
/// sealed to and the answer is checked against.
async fn identity_of(
    http: &reqwest::Client,
    url: &str,
    contract: [u8; 32],
) -> Result<Vec<u8>, ClientError> {
    let unreachable = |e: reqwest::Error| ClientError::Worker(format!("{url}: {e}"));
    let body = http
        .get(format!("{}/v1/info", url.trim_end_matches('/')))
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(unreachable)?
        .bytes()
        .await
        .map_err(unreachable)?;
    // A worker's info is a few hundred bytes per contract: a larger answer is no info.
    if body.len() > 1 << 20 {
        return Err(ClientError::Worker(format!(
            "{url}: its info is over 1 MiB"
        )));
    }
    let info: pruntime::worker::Info = serde_json::from_slice(&body)
        .map_err(|e| ClientError::Worker(format!("{url}: its info does not parse: {e}")))?;
    if !info.contracts.iter().any(|c| c.id == hex::encode(contract)) {
        return Err(ClientError::Worker(format!(
            "{url} does not serve contract {}",
            hex::encode(contract)
        )));
    }
    hex::decode(&info.identity_key)
        .map_err(|_| ClientError::Worker(format!("{url}: its identity key is not hex")))
}

fn contract_id(hex_id: &str) -> anyhow::Result<[u8; 32]> {
    hex::decode(hex_id.trim().trim_start_matches("0x"))
        .ok()
        .and_then(|b| b.try_into().ok())
        .context("--contract is a contract id: 64 hex characters")
}

fn user_key(path: &Path) -> anyhow::Result<SigningKey> {
    if !path.exists() {
        anyhow::bail!(
            "{} does not exist (create a key with `phalanx chain keygen --out {}`)",
            path.display(),
            path.display()
        );
    }
    keyvault::registry::key_file(path)
}

/// Runs a `phalanx contract` command.
pub async fn run(command: ContractCommand) -> anyhow::Result<()> {
    match command {
        ContractCommand::Bundle {
            module,
            components,
            out,
            force,
        } => bundle(&module, &components, &out, force),
        ContractCommand::Deploy { at, module, salt } => deploy(&at, &module, &salt).await,
        ContractCommand::Send {
            at,
            contract,
            input,
            ask,
            wait,
        } => send(&at, &contract, &input, ask, wait).await,
        ContractCommand::Query {
            at,
            contract,
            input,
            ask,
        } => {
            let input = input.bytes()?;
            let (registry, ask, answered) =
                asked(&at, &contract, ask, (Purpose::Query, &input)).await?;
            write_bundle(&registry, &ask, &answered, &input).await?;
            print_output(&at, &answered.1)
        }
        ContractCommand::Receipt {
            at,
            contract,
            nonce,
            ask,
        } => {
            let request = phalanx_types::receipt::request(nonce);
            let (registry, ask, answered) =
                asked(&at, &contract, ask, (Purpose::Receipt, &request)).await?;
            show_receipt(&registry, &at, &ask, &answered, (nonce, None)).await
        }
        ContractCommand::Events {
            at,
            contract,
            from,
            follow,
            ask,
        } => events(&at, &contract, from, follow, ask).await,
    }
}

/// A request of `purpose` with plaintext `input` to the first worker that answers
/// (those named, else those the registry lists): the registry, the workers asked and
/// the answer.
async fn asked(
    at: &At,
    contract: &str,
    mut ask: Ask,
    (purpose, input): (Purpose, &[u8]),
) -> anyhow::Result<(Registry, Ask, Answered)> {
    let (registry, user, id) = setup(at, contract)?;
    workers_for(&registry, &mut ask, id).await?;
    let answered = first_answer(&ask.workers, |url| {
        registry.ask(url, &user, id, (purpose, input))
    })
    .await?;
    Ok((registry, ask, answered))
}

/// `send`: submits the command, then (unless `wait` is 0 or no worker is known) waits
/// for its receipt.
async fn send(
    at: &At,
    contract: &str,
    input: &Input,
    mut ask: Ask,
    wait: u64,
) -> anyhow::Result<()> {
    let (registry, user, id) = setup(at, contract)?;
    if wait != 0 {
        workers_for(&registry, &mut ask, id).await?;
    }
    let input = input.bytes()?;
    let sent = registry.send(&user, id, &input).await?;
    if !at.json {
        println!("sent: block {}, nonce {}", sent.height, sent.nonce);
    }
    if wait == 0 || ask.workers.is_empty() {
        if at.json {
            println!(
                "{}",
                serde_json::json!({"height": sent.height, "nonce": sent.nonce})
            );
        } else if wait != 0 {
            println!(
                "no worker announced serving the contract: name one (--worker URL) to wait for the receipt"
            );
        }
        return Ok(());
    }
    let answered = wait_for_receipt(&registry, &ask.workers, &user, id, sent.nonce, wait).await?;
    show_receipt(&registry, at, &ask, &answered, (sent.nonce, Some(sent))).await
}

/// `events`: one page from `from`, or (following) every page as it comes, through
/// one registry client (its verified state carried from page to page).
async fn events(
    at: &At,
    contract: &str,
    mut from: u64,
    follow: bool,
    mut ask: Ask,
) -> anyhow::Result<()> {
    let (registry, user, id) = setup(at, contract)?;
    workers_for(&registry, &mut ask, id).await?;
    loop {
        let request = phalanx_types::receipt::events_request(from);
        let answered = first_answer(&ask.workers, |url| {
            registry.ask(url, &user, id, (Purpose::Events, &request))
        })
        .await?;
        write_bundle(&registry, &ask, &answered, &request).await?;
        from = show_events(at, &answered.1, follow)?;
        if !follow {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Prints a page of events: one JSON object, or (following, or as text) one line per
/// event; where the next page starts.
fn show_events(at: &At, asked: &Asked, follow: bool) -> anyhow::Result<u64> {
    let page = phalanx_types::receipt::EventPage::from_bytes(&asked.output)
        .context("the worker's events page does not decode")?;
    let json = |e: &phalanx_types::receipt::Event| serde_json::json!({"sequence": e.sequence, "height": e.height, "data": bytes_json(&e.data)});
    if at.json && !follow {
        let events: Vec<_> = page.events.iter().map(json).collect();
        println!(
            "{}",
            serde_json::json!({"events": events, "next": page.next, "oldest": page.oldest})
        );
        return Ok(page.next);
    }
    for e in &page.events {
        if at.json {
            println!("{}", json(e));
        } else {
            println!(
                "command {} (block {}): {}",
                e.sequence,
                e.height,
                shown(&e.data)
            );
        }
    }
    if !follow {
        println!("next: --from {}", page.next);
    }
    Ok(page.next)
}

fn setup(at: &At, contract: &str) -> anyhow::Result<(Registry, SigningKey, [u8; 32])> {
    Ok((
        Registry::open(at)?,
        user_key(&at.key)?,
        contract_id(contract)?,
    ))
}

/// The workers to ask: those named, else those the registry lists for `contract`.
async fn workers_for(registry: &Registry, ask: &mut Ask, contract: [u8; 32]) -> anyhow::Result<()> {
    if ask.workers.is_empty() {
        ask.workers = registry.announced(contract).await?;
    }
    Ok(())
}

/// The first worker's answer (its URL, the answer), trying each in order; every
/// failure named.
async fn first_answer<'a, F, Fut>(workers: &'a [String], mut ask: F) -> anyhow::Result<Answered>
where
    F: FnMut(&'a str) -> Fut,
    Fut: std::future::Future<Output = Result<Asked, ClientError>>,
{
    if workers.is_empty() {
        anyhow::bail!(
            "no worker announced serving the contract on the registry: name one with --worker URL"
        );
    }
    let mut failures = Vec::new();
    for url in workers {
        match ask(url).await {
            Ok(a) => return Ok((url.clone(), a)),
            Err(e) => failures.push(format!("{url}: {e}")),
        }
    }
    anyhow::bail!("no worker answered: {}", failures.join("; "))
}

/// Asks `workers` in turn for the receipt until one has it or `wait` seconds pass.
async fn wait_for_receipt(
    registry: &Registry,
    workers: &[String],
    user: &SigningKey,
    contract: [u8; 32],
    nonce: u64,
    wait: u64,
) -> anyhow::Result<Answered> {
    // At most a day: `--wait` is the user's, and an instant past the clock's range
    // would panic.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(wait.min(86_400));
    let request = phalanx_types::receipt::request(nonce);
    loop {
        let mut failures = Vec::new();
        for url in workers {
            match registry
                .ask(url, user, contract, (Purpose::Receipt, &request))
                .await
            {
                Ok(a) => return Ok((url.clone(), a)),
                // Not run there yet: ask again. Anything else is the answer.
                Err(ClientError::NoReceipt) => {}
                Err(e) => failures.push(format!("{url}: {e}")),
            }
        }
        if failures.len() == workers.len() {
            anyhow::bail!("no worker can give the receipt: {}", failures.join("; "));
        }
        if tokio::time::Instant::now() >= deadline {
            anyhow::bail!(
                "no receipt for nonce {nonce} within {wait} s: ask later with `phalanx contract \
                 receipt --nonce {nonce}` (on an EVM registry a command that does not open, or \
                 is sent again, leaves none)"
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The module at `path`, checked as pRuntime would load it (WebAssembly, only the
/// host's imports, no floating point, within the size bound), and the salt: what a
/// deployment sends. Checked before anything is sent: a file pRuntime would refuse never
/// lands on the registry.
pub fn module_and_salt(path: &Path, salt: &str) -> anyhow::Result<(Vec<u8>, [u8; 32])> {
    let code = read_bounded(path, chain::types::MAX_CODE as u64)?;
    phalanx_contract::Runtime::new(phalanx_contract::Limits::default())
        .compile(&code)
        .with_context(|| {
            format!(
                "{} is not a contract module pRuntime accepts; nothing was submitted",
                path.display()
            )
        })?;
    let salt: [u8; 32] = hex::decode(salt)?
        .try_into()
        .map_err(|_| anyhow::anyhow!("--salt is 32 bytes of hex"))?;
    Ok((code, salt))
}

/// `phalanx contract bundle`.
fn bundle(module: &Path, components: &[String], out: &Path, force: bool) -> anyhow::Result<()> {
    if out.exists() && !force {
        anyhow::bail!("{} exists (--force replaces it)", out.display());
    }
    let max = chain::types::MAX_CODE as u64;
    let root = read_bounded(module, max)?;
    let mut parts = Vec::new();
    for c in components {
        let (name, file) = c
            .split_once('=')
            .with_context(|| format!("--component {c}: NAME=FILE"))?;
        parts.push((name.to_owned(), read_bounded(Path::new(file), max)?));
    }
    let named: Vec<(&str, &[u8])> = parts
        .iter()
        .map(|(n, c)| (n.as_str(), c.as_slice()))
        .collect();
    let code = phalanx_contract::bundle(&root, &named)
        .context("--component: a name is 1 to 32 of a-z, 0-9, - and _")?;
    let contract = phalanx_contract::Runtime::new(phalanx_contract::Limits::default())
        .compile(&code)
        .context("the bundle is not a contract module pRuntime accepts; nothing was written")?;
    // Whole or not at all: a temporary file beside it, renamed over it.
    let tmp = out.with_extension("wasm.partial");
    std::fs::write(&tmp, &code)
        .and_then(|()| std::fs::rename(&tmp, out))
        .with_context(|| format!("writing {}", out.display()))?;
    println!(
        "{}: code hash {} ({} bytes)",
        out.display(),
        hex::encode(contract.code_hash()),
        code.len()
    );
    for (name, hash) in contract.components() {
        println!("  component {name}: code hash {}", hex::encode(hash));
    }
    Ok(())
}

async fn deploy(at: &At, module: &Path, salt: &str) -> anyhow::Result<()> {
    let (code, salt) = module_and_salt(module, salt)?;
    use chain::registry::ContractRegistry as _;
    let (height, id) = match Registry::open(at)? {
        Registry::Ledger(c) => c.deploy_contract(&user_key(&at.key)?, &code, salt).await?,
        Registry::Evm { registry, account } => {
            let account = Registry::evm_account(account.as_ref())?;
            registry.deploy_contract(account, &code, salt).await?
        }
    };
    if at.json {
        println!(
            "{}",
            serde_json::json!({"height": height, "contract": hex::encode(id)})
        );
    } else {
        println!("deployed: contract {} at block {height}", hex::encode(id));
    }
    Ok(())
}

/// The bytes as text, if they are printable UTF-8.
fn text(b: &[u8]) -> Option<&str> {
    std::str::from_utf8(b)
        .ok()
        .filter(|t| !t.chars().any(char::is_control))
}

/// Bytes for people: the text (quoted) if printable, else hex.
fn shown(b: &[u8]) -> String {
    match text(b) {
        Some(t) => format!("{t:?}"),
        None => format!("0x{}", hex::encode(b)),
    }
}

/// Bytes in JSON: always hex, and the text when printable.
fn bytes_json(b: &[u8]) -> serde_json::Value {
    serde_json::json!({"hex": hex::encode(b), "text": text(b)})
}

fn print_output(at: &At, asked: &Asked) -> anyhow::Result<()> {
    let st = &asked.answer.statement;
    if at.json {
        println!(
            "{}",
            serde_json::json!({
                "output": bytes_json(&asked.output),
                "worker": st.worker,
                "height": st.height,
            })
        );
    } else {
        println!("output: {}", shown(&asked.output));
        println!("answered by worker {} at block {}", st.worker, st.height);
    }
    Ok(())
}

/// A worker's URL and its answer.
type Answered = (String, Asked);

async fn show_receipt(
    registry: &Registry,
    at: &At,
    ask: &Ask,
    answered: &Answered,
    (nonce, sent): (u64, Option<Sent>),
) -> anyhow::Result<()> {
    let asked = &answered.1;
    let r = Receipt::from_bytes(&asked.output).context("the worker's receipt does not decode")?;
    let request = phalanx_types::receipt::request(nonce);
    write_bundle(registry, ask, answered, &request).await?;
    if at.json {
        println!(
            "{}",
            serde_json::json!({
                "height": sent.map(|s| s.height),
                "nonce": nonce,
                "receipt": {
                    "status": r.status.name(),
                    "sequence": r.sequence,
                    "height": r.height,
                    "fuel_used": r.fuel_used,
                    "output": bytes_json(&r.output),
                    "events": r.events.iter().map(|e| bytes_json(e)).collect::<Vec<_>>(),
                    "message": r.message,
                },
                "worker": asked.answer.statement.worker,
            })
        );
        return Ok(());
    }
    println!(
        "receipt: {} (sequence {} of the contract's commands, block {}, fuel {})",
        r.status.name(),
        r.sequence,
        r.height,
        r.fuel_used
    );
    if !r.message.is_empty() {
        println!("message: {}", r.message);
    }
    if !r.output.is_empty() {
        println!("output: {}", shown(&r.output));
    }
    for (i, e) in r.events.iter().enumerate() {
        println!("event {i}: {}", shown(e));
    }
    Ok(())
}

/// Writes the bundle of `answered` (whose request's plaintext is `input`) to
/// `--bundle`, if named: the answer, the answering worker's evidence, the registry's
/// proofs at the statement's block.
async fn write_bundle(
    registry: &Registry,
    ask: &Ask,
    (url, asked): &Answered,
    input: &[u8],
) -> anyhow::Result<()> {
    let Some(path) = &ask.bundle else {
        return Ok(());
    };
    let st = &asked.answer.statement;
    let evidence: phalanx_verify::WorkerEvidence = reqwest::Client::new()
        .get(format!("{}/v1/evidence", url.trim_end_matches('/')))
        .timeout(Duration::from_secs(20))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let bundle = phalanx_verify::Bundle::new(
        pruntime::client::answer_proof(asked, input),
        evidence,
        registry.proof(st).await?,
    );
    std::fs::write(path, serde_json::to_vec_pretty(&bundle)?)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
