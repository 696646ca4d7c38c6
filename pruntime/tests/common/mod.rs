//! Shared by the executor's tests and the worker's benches.
#![allow(dead_code)]

use chain::proof::{CommandAt, VerifiedPage};
use chain::types::{Block, Tx};
use pruntime::executor::Executor;

/// The page of `e`'s contract feed that `b` makes: its commands of that contract,
/// proven (as `chain::proof::CommandPage::verify` finds) to continue `e`'s log.
pub fn page(e: &Executor, b: &Block) -> (Vec<CommandAt>, VerifiedPage) {
    let commands: Vec<CommandAt> = b
        .txs
        .iter()
        .filter(|t| matches!(&t.tx, Tx::Command(c) if c.contract == e.id()))
        .map(|t| CommandAt {
            height: b.height,
            timestamp: b.timestamp,
            tx: t.clone(),
        })
        .collect();
    let (count, head) = e.log();
    let page = VerifiedPage {
        count: count + commands.len() as u64,
        head: commands.iter().fold(head, |h, c| {
            chain::types::command_log(&h, c.height, c.timestamp, &c.tx.encode())
        }),
        header: b.header(),
        nonces: Default::default(),
    };
    (commands, page)
}
