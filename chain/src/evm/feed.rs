//! Following a contract's commands on the EVM registry ([`EvmRegistry::command_page`]):
//! headers, logs and a proof, fetched from the node as far as the confirmation depth and
//! checked by [`EvmPage::verify`].

use super::abi::RegistryContract::CommandSubmitted;
use super::{EvmRegistry, backend};
use crate::evm_proof::{EvmCheckpoint, EvmCommand, EvmPage, MAX_PAGE_BLOCKS};
use crate::facts::Fact;
use crate::registry::RegistryError;
use alloy::primitives::FixedBytes;
use alloy::providers::{Provider, ProviderBuilder};
use alloy::rpc::types::Filter;
use alloy::sol_types::SolEvent;
use phalanx_types::Epoch;

impl EvmRegistry {
    /// The next page of `contract`'s commands after `from`: the blocks after it up to
    /// `confirmations` below the node's newest (at most [`MAX_PAGE_BLOCKS`]), or `None`
    /// when no such block is new. Nothing is checked here but the shape of the node's
    /// answers; [`EvmPage::verify`] is the check.
    pub async fn command_page(
        &self,
        contract: &[u8; 32],
        from: &EvmCheckpoint,
        confirmations: u64,
    ) -> Result<Option<EvmPage>, RegistryError> {
        let provider = ProviderBuilder::new().connect_http(self.url.clone());
        let newest = provider.get_block_number().await.map_err(backend)?;
        let Some(end) = newest
            .checked_sub(confirmations)
            .map(|confirmed| confirmed.min(from.number.saturating_add(MAX_PAGE_BLOCKS)))
            .filter(|end| *end > from.number)
        else {
            return Ok(None);
        };
        // The page's headers in one JSON-RPC batch: a round trip per page, not per block.
        let client = alloy::rpc::client::RpcClient::new_http(self.url.clone());
        let mut batch = client.new_batch();
        let waiters = (from.number + 1..=end)
            .map(|n| {
                batch.add_call::<_, Option<alloy::rpc::types::Block>>(
                    "eth_getBlockByNumber",
                    &(alloy::eips::BlockNumberOrTag::Number(n), false),
                )
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(backend)?;
        batch.send().await.map_err(backend)?;
        let mut headers = Vec::with_capacity(waiters.len());
        for (number, waiter) in (from.number + 1..).zip(waiters) {
            let block = waiter
                .await
                .map_err(backend)?
                .ok_or_else(|| RegistryError::Backend(format!("the node has no block {number}")))?;
            headers.push(alloy_rlp::encode(&block.header.inner));
        }
        let logs = provider
            .get_logs(
                &Filter::new()
                    .address(self.address)
                    .event_signature(CommandSubmitted::SIGNATURE_HASH)
                    .topic1(FixedBytes(*contract))
                    .from_block(from.number + 1)
                    .to_block(end),
            )
            .await
            .map_err(backend)?;
        let mut commands = Vec::with_capacity(logs.len());
        for log in logs {
            let e = CommandSubmitted::decode_raw_log(log.topics(), &log.data().data)
                .map_err(|e| RegistryError::Unverified(format!("a command log: {e}")))?;
            let (Some(block), Some(hash), Some(index)) =
                (log.block_number, log.block_hash, log.log_index)
            else {
                return Err(RegistryError::Unverified(
                    "a command log without its block".into(),
                ));
            };
            commands.push(EvmCommand {
                block,
                block_hash: hash.0,
                log_index: index,
                epoch: Epoch(e.epoch),
                sender: e.sender.0.0,
                sequence: e.sequence,
                ciphertext: e.ciphertext.to_vec(),
            });
        }
        commands.sort_by_key(|c| (c.block, c.log_index));
        let proof = self.prove(&[Fact::Commands(*contract)], Some(end)).await?;
        Ok(Some(EvmPage {
            headers,
            commands,
            proof,
        }))
    }
}
