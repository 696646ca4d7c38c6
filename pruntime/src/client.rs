//! The user's side: send a sealed command through the registry, and query a worker
//! whose keys are taken from the registry (never from the worker's own endpoint).

use crate::protocol::{Answer, ProtocolError, Query, seal_command};
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
}

/// Seals `input` to contract `contract`'s newest published key and submits it as
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
    let state = registry.sync().await?;
    let c = state
        .contract(&contract)
        .ok_or(ClientError::NotListed("contract"))?;
    let (&epoch, key) = c
        .keys
        .last_key_value()
        .ok_or(ClientError::NotListed("contract keys"))?;
    let me = public_key(user.verifying_key());
    let nonce = state.nonce(&me);
    let ciphertext = seal_command(&key.encryption_key, &contract, &me, nonce, input)?;
    let tx = Tx::Command(Command {
        contract,
        epoch,
        ciphertext,
    });
    Ok(registry
        .submit_tx(SignedTx::sign(user, &state.chain_id(), nonce, tx))
        .await?)
}

/// Queries the worker at `url` (identity key `worker`, as listed on the registry) for
/// `contract`: the query is sealed to the worker's HPKE key **as the registry lists
/// it**; the answer's statement is checked against that identity and opened. Returns
/// the query, the answer and the plaintext output.
pub async fn query(
    registry: &LightClient,
    http: &reqwest::Client,
    url: &str,
    worker: &[u8],
    user: &SigningKey,
    contract: [u8; 32],
    input: &[u8],
) -> Result<(Query, Answer, Zeroizing<Vec<u8>>), ClientError> {
    let state = registry.sync().await?;
    let listed = state
        .worker(worker)
        .ok_or(ClientError::NotListed("worker"))?;
    let reply = RecipientKey::generate(&mut rand::rng());
    let q = Query::new(
        user,
        &reply,
        worker,
        &listed.hpke_key,
        contract,
        input,
        crate::protocol::Bounds::default(),
    )?;
    let resp = http
        .post(format!("{}/v1/query", url.trim_end_matches('/')))
        .json(&q)
        .send()
        .await
        .map_err(|e| ClientError::Worker(e.to_string()))?;
    if !resp.status().is_success() {
        let body = resp.text().await.unwrap_or_default();
        return Err(ClientError::Worker(body.chars().take(512).collect()));
    }
    let answer: Answer = resp
        .json()
        .await
        .map_err(|e| ClientError::Worker(e.to_string()))?;
    let output = answer.open(worker, &reply, &q, input)?;
    Ok((q, answer, output))
}

/// The answer's part of a user's verification bundle ([`phalanx_verify::Bundle`]): the
/// statement and signature from `answer`, the caller key and nonce from the `query` the
/// user sent, and the plaintext `input` and `output` the user reveals.
pub fn answer_proof(
    query: &Query,
    answer: &Answer,
    input: &[u8],
    output: &[u8],
) -> phalanx_verify::AnswerProof {
    use base64::Engine as _;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    phalanx_verify::AnswerProof {
        statement: answer.statement.clone(),
        signature: answer.signature.clone(),
        caller_key: query.caller_key.clone(),
        nonce: query.nonce,
        query: b64(input),
        answer: b64(output),
    }
}
