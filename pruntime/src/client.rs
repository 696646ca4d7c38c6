//! The user's side: send a sealed command through the registry, and query a worker
//! whose keys are taken from the registry (never from the worker's own endpoint).

use crate::protocol::{Answer, ProtocolError, Purpose, Query, seal_command};
use chain::grpc::LightClient;
use chain::registry::{RegistryError, SignedLedger as _};
use chain::types::{Command, SignedTx, Tx, public_key};
use p256::ecdsa::SigningKey;
use phalanx_release::envelope::RecipientKey;
use zeroize::Zeroizing;

/// Why a user's call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The registry failed or refused.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The contract, its keys or the worker are not on the registry.
    #[error("not on the registry: {0}")]
    NotListed(&'static str),
    /// Sealing, signing or opening failed.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// The worker could not be reached or refused (its error body).
    #[error("worker: {0}")]
    Worker(String),
    /// The worker holds no receipt for the command (yet): ask again, or another worker.
    #[error("the worker holds no receipt for that command (not run there yet)")]
    NoReceipt,
}

/// Seals `input` to contract `contract`'s newest published key of an epoch not retired
/// (the registry took it only from a pRuntime whose quote it verified itself and whose
/// evidence was current), and submits it as
/// `user`; the height that orders it. The envelope binds the user's account and the
/// sequence number this transaction carries, read from the registry just before
/// signing: an account that submits two transactions at once can have one refused by
/// the registry (a stale sequence number), never one ordered but sealed for another
/// number — a command that does not open is skipped by the workers.
pub async fn send_command(
    registry: &LightClient,
    user: &SigningKey,
    contract: [u8; 32],
    input: &[u8],
) -> Result<u64, ClientError> {
    Ok(submit_command(registry, user, contract, input)
        .await?
        .height)
}

/// A command the registry ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    /// The height (block) that ordered it.
    pub height: u64,
    /// Its nonce, which names it in a receipt request ([`ask`] with [`Purpose::Receipt`]).
    pub nonce: u64,
}

/// [`send_command`], telling the command's nonce too.
pub async fn submit_command(
    registry: &LightClient,
    user: &SigningKey,
    contract: [u8; 32],
    input: &[u8],
) -> Result<Sent, ClientError> {
    let state = registry.sync().await?;
    let c = state
        .contract(&contract)
        .ok_or(ClientError::NotListed("contract"))?;
    let (&epoch, key) = c
        .keys
        .iter()
        .rev()
        .find(|(e, _)| !state.is_retired(**e))
        .ok_or(ClientError::NotListed(
            "contract keys of an epoch not retired",
        ))?;
    let me = public_key(user.verifying_key());
    let nonce = state.nonce(&me);
    let ciphertext = seal_command(&key.encryption_key, &contract, &me, nonce, input)?;
    let tx = Tx::Command(Command {
        contract,
        epoch,
        ciphertext,
    });
    let height = registry
        .submit_tx(SignedTx::sign(user, &state.chain_id(), nonce, tx))
        .await?;
    Ok(Sent { height, nonce })
}

/// Seals `input` to contract `contract`'s newest published key of an epoch not retired
/// on a Solidity registry (facts proven at its node's newest block), signed by `caller`
/// ([`crate::protocol::seal_evm_command`]: the contract sees the same caller as in
/// `caller`'s queries), and sends it from the account `user`; the block that orders it.
/// The nonce is the clock in microseconds: each command of a caller must carry a
/// higher one than the last that ran.
pub async fn send_command_evm(
    registry: &chain::evm::EvmRegistry,
    user: &chain::evm::EvmAccount,
    caller: &SigningKey,
    contract: [u8; 32],
    input: &[u8],
) -> Result<u64, ClientError> {
    Ok(submit_command_evm(registry, user, caller, contract, input)
        .await?
        .height)
}

/// [`send_command_evm`], telling the command's nonce too (the caller's, which names it
/// in a receipt request).
pub async fn submit_command_evm(
    registry: &chain::evm::EvmRegistry,
    user: &chain::evm::EvmAccount,
    caller: &SigningKey,
    contract: [u8; 32],
    input: &[u8],
) -> Result<Sent, ClientError> {
    use chain::facts::Fact;
    use chain::registry::ContractRegistry as _;
    use phalanx_types::Epoch;
    let unproven = |e: chain::proof::ProofError| RegistryError::Unverified(e.to_string());
    // Epochs in batches of eight, all at one block: the newest whose keys the contract
    // has and that is not retired.
    let mut newest = None;
    let mut at = None;
    'epochs: for first in (0u64..).step_by(8) {
        let facts: Vec<Fact> = (first..first + 8)
            .flat_map(|e| {
                [
                    Fact::Epoch(Epoch(e)),
                    Fact::ContractKey(contract, Epoch(e)),
                    Fact::Retired(Epoch(e)),
                ]
            })
            .collect();
        let v = registry.proven(&facts, at).await?;
        at = Some(v.block.number);
        for e in (first..first + 8).map(Epoch) {
            if v.epoch(e).map_err(unproven)?.is_none() {
                break 'epochs;
            }
            let retired = v.fact(&Fact::Retired(e)).map_err(unproven)?.is_some();
            if let Some(key) = v.contract_key(&contract, e).map_err(unproven)?
                && !retired
            {
                newest = Some((e, key));
            }
        }
    }
    let (epoch, key) = newest.ok_or(ClientError::NotListed(
        "contract keys of an epoch not retired",
    ))?;
    let sender = user.signer.address();
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    let ciphertext = crate::protocol::seal_evm_command(
        &key.encryption_key,
        &contract,
        &sender.0.0,
        caller,
        nonce,
        input,
    )?;
    let height = registry
        .submit_command(
            user,
            &Command {
                contract,
                epoch,
                ciphertext,
            },
        )
        .await?;
    Ok(Sent { height, nonce })
}

/// How often [`query`] asks a worker that is catching up (250 ms apart).
const CATCHING_UP_TRIES: u32 = 40;

/// Queries the worker at `url` (identity key `worker`, as listed on the registry) for
/// `contract`: the query is sealed to the worker's HPKE key **as the registry lists
/// it**; the answer's statement is checked against that identity and opened.
pub async fn query(
    registry: &LightClient,
    http: &reqwest::Client,
    url: &str,
    worker: &[u8],
    user: &SigningKey,
    contract: [u8; 32],
    input: &[u8],
) -> Result<Asked, ClientError> {
    let to = (url, worker);
    ask(registry, http, to, Purpose::Query, user, contract, input).await
}

/// A request of `purpose` with plaintext `input` to the worker at `url` (identity key
/// `worker`), sealed to its HPKE key as the registry lists it, the statement checked
/// against that identity: [`query`] is one of these; a receipt is [`Purpose::Receipt`]
/// of a command's nonce (`phalanx_types::receipt::request`), an events page
/// [`Purpose::Events`] from a sequence (`phalanx_types::receipt::events_request`). A
/// worker that has not run the command yet answers [`ClientError::NoReceipt`].
pub async fn ask(
    registry: &LightClient,
    http: &reqwest::Client,
    (url, worker): (&str, &[u8]),
    purpose: Purpose,
    user: &SigningKey,
    contract: [u8; 32],
    input: &[u8],
) -> Result<Asked, ClientError> {
    let state = registry.sync().await?;
    let listed = state
        .standing(
            "ask",
            worker,
            chain::types::Role::Runtime,
            phalanx_types::unix_now(),
        )
        .map_err(|_| ClientError::NotListed("worker (as a pRuntime with current evidence)"))?;
    let to = (url, worker, listed.hpke_key.as_slice());
    ask_listed(http, purpose, to, user, contract, input).await
}

/// [`query`] on a Solidity registry: the worker's HPKE key and standing are facts
/// proven at the registry node's newest block.
pub async fn query_evm(
    registry: &chain::evm::EvmRegistry,
    http: &reqwest::Client,
    url: &str,
    worker: &[u8],
    user: &SigningKey,
    contract: [u8; 32],
    input: &[u8],
) -> Result<Asked, ClientError> {
    let hpke = listed_evm(registry, worker).await?;
    ask_listed(
        http,
        Purpose::Query,
        (url, worker, &hpke),
        user,
        contract,
        input,
    )
    .await
}

/// [`ask`] on a Solidity registry.
pub async fn ask_evm(
    registry: &chain::evm::EvmRegistry,
    http: &reqwest::Client,
    (url, worker): (&str, &[u8]),
    purpose: Purpose,
    user: &SigningKey,
    contract: [u8; 32],
    input: &[u8],
) -> Result<Asked, ClientError> {
    let hpke = listed_evm(registry, worker).await?;
    let to = (url, worker, hpke.as_slice());
    ask_listed(http, purpose, to, user, contract, input).await
}

/// The HPKE key a Solidity registry lists for the pRuntime `worker` in standing
/// (proven at the registry node's newest block).
async fn listed_evm(
    registry: &chain::evm::EvmRegistry,
    worker: &[u8],
) -> Result<Vec<u8>, ClientError> {
    let (_, standing) = registry
        .standing(
            "query",
            worker,
            chain::types::Role::Runtime,
            phalanx_types::unix_now(),
            &[],
        )
        .await?;
    let listed = standing
        .map_err(|_| ClientError::NotListed("worker (as a pRuntime with current evidence)"))?;
    Ok(listed.hpke_key)
}

/// Asks the worker at `url` whose identity key `worker` the registry lists with
/// `hpke_key` (the caller read both from the registry) a request of `purpose`.
async fn ask_listed(
    http: &reqwest::Client,
    purpose: Purpose,
    (url, worker, hpke_key): (&str, &[u8], &[u8]),
    user: &SigningKey,
    contract: [u8; 32],
    input: &[u8],
) -> Result<Asked, ClientError> {
    // A worker that has just started is catching up (503 `catching_up`) for a moment:
    // a fresh query (its nonce is not spent) is sent again a few times.
    let mut tries = 0;
    let path = match purpose {
        Purpose::Query => "query",
        Purpose::Receipt => "receipt",
        Purpose::Events => "events",
    };
    let (q, salt, reply, resp) = loop {
        let reply = RecipientKey::generate(&mut rand::rng());
        let (q, salt) = Query::new_as(
            purpose,
            user,
            &reply,
            (worker, hpke_key),
            contract,
            input,
            crate::protocol::Bounds::default(),
        )?;
        let resp = http
            .post(format!("{}/v1/{path}", url.trim_end_matches('/')))
            .json(&q)
            .send()
            .await
            .map_err(|e| ClientError::Worker(e.to_string()))?;
        tries += 1;
        if resp.status() == reqwest::StatusCode::SERVICE_UNAVAILABLE && tries < CATCHING_UP_TRIES {
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            continue;
        }
        break (q, salt, reply, resp);
    };
    if !resp.status().is_success() {
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        let code = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| {
                v.pointer("/error/code")
                    .and_then(serde_json::Value::as_str)
                    .map(str::to_owned)
            });
        if status == reqwest::StatusCode::NOT_FOUND && code.as_deref() == Some("no_receipt") {
            return Err(ClientError::NoReceipt);
        }
        return Err(ClientError::Worker(body.chars().take(512).collect()));
    }
    let answer: Answer = resp
        .json()
        .await
        .map_err(|e| ClientError::Worker(e.to_string()))?;
    let opening = answer.open_as(purpose, worker, &reply, &q, (&salt, input))?;
    Ok(Asked {
        purpose,
        query: q,
        query_salt: salt,
        answer,
        answer_salt: opening.salt,
        output: opening.output,
    })
}

/// A query asked and its answer opened: everything a user keeps to reveal both in a
/// verification bundle ([`answer_proof`]).
pub struct Asked {
    /// A query or a receipt request.
    pub purpose: Purpose,
    /// The query as sent.
    pub query: Query,
    /// The query's salt (sealed inside it).
    pub query_salt: [u8; 32],
    /// The answer as received.
    pub answer: Answer,
    /// The answer's salt (sealed inside it).
    pub answer_salt: [u8; 32],
    /// The plaintext output.
    pub output: Zeroizing<Vec<u8>>,
}

/// The answer's part of a user's verification bundle ([`phalanx_verify::Bundle`]): the
/// statement and signature of the answer, the caller key and nonce of the query the
/// user sent, and what the user reveals: the plaintext `input` and output and both
/// salts.
pub fn answer_proof(asked: &Asked, input: &[u8]) -> phalanx_verify::AnswerProof {
    use base64::Engine as _;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    phalanx_verify::AnswerProof {
        kind: match asked.purpose {
            Purpose::Query => phalanx_verify::AnswerKind::Query,
            Purpose::Receipt => phalanx_verify::AnswerKind::Receipt,
            Purpose::Events => phalanx_verify::AnswerKind::Events,
        },
        statement: asked.answer.statement.clone(),
        signature: asked.answer.signature.clone(),
        caller_key: asked.query.caller_key.clone(),
        nonce: asked.query.nonce,
        query_salt: phalanx_types::hex::Hex(asked.query_salt),
        query: b64(input),
        answer_salt: phalanx_types::hex::Hex(asked.answer_salt),
        answer: b64(&asked.output),
    }
}
