//! A worker catching up with one contract's commands on the Solidity registry (issue 27,
//! item 5): pages of blocks from anvil — headers, the contract's `CommandSubmitted`
//! logs, a proof of its command log at the page's last block (`EvmRegistry::
//! command_page`) — each checked by `EvmPage::verify`, from just before the contract's
//! deployment to the head. anvil mines a block per transaction, so a command costs a
//! block here: the worst case for the header fetches.
//!
//! Measures `catch_up` (fetched and verified: what a worker waits for) and `verify`
//! (the pages fetched once, only checked: the worker's own CPU), in commands per
//! second. Skips without anvil (`scripts/ensure-evm.sh` installs it; set `ANVIL`).
//! `ANVIL=… cargo bench -p chain --features evm --bench evm_feed`.
#![allow(
    missing_docs,
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

#[path = "../tests/suite/mod.rs"]
mod suite;

use chain::registry::ContractRegistry as _;
use chain::types::Command;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use phalanx_types::Epoch;

const COMMANDS: u64 = 1_000;

fn feed(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let Some((_anvil, mut f)) = rt.block_on(suite::evm::fixture()) else {
        eprintln!("evm_feed: no anvil, nothing measured");
        return;
    };
    let contract = rt.block_on(async {
        let (worker, stranger) = suite::suite(&mut f).await;
        let (contract, _) = suite::contracts(&mut f, worker, stranger).await;
        let (sender, _) = suite::Fixture::account(&mut f).await;
        let have = f
            .registry
            .contract(contract)
            .await
            .unwrap()
            .unwrap()
            .commands;
        for n in have..COMMANDS {
            let ciphertext = [n.to_be_bytes().as_slice(), &[0x5a; 120]].concat();
            let command = Command {
                contract,
                epoch: Epoch(0),
                ciphertext,
            };
            f.registry.submit_command(&sender, &command).await.unwrap();
        }
        contract
    });
    let start = rt.block_on(suite::evm::Follower::start(&f, contract));
    // The pages as fetched once, for `verify`.
    let pages = rt.block_on(async {
        let mut at = start;
        let mut pages = Vec::new();
        while let Some(p) = f.registry.command_page(&contract, &at.at, 0).await.unwrap() {
            let v = p
                .verify(&at.at, &f.registry_id, &contract, at.count, &at.head)
                .unwrap();
            (at.at, at.count, at.head) = (v.checkpoint, v.count, v.head);
            pages.push(p);
        }
        assert_eq!(at.count, COMMANDS);
        pages
    });
    let mut g = c.benchmark_group("evm_feed");
    g.sample_size(10);
    g.throughput(Throughput::Elements(COMMANDS));
    g.bench_function(
        format!("catch_up/{COMMANDS} commands in as many blocks"),
        |b| {
            b.iter(|| {
                let mut follower = start;
                let applied = rt.block_on(follower.follow(&f, contract, 0)).unwrap();
                assert_eq!(applied.len() as u64, COMMANDS);
            })
        },
    );
    g.bench_function(format!("verify/{COMMANDS} commands"), |b| {
        b.iter(|| {
            let mut at = start;
            for p in &pages {
                let v = p
                    .verify(&at.at, &f.registry_id, &contract, at.count, &at.head)
                    .unwrap();
                (at.at, at.count, at.head) = (v.checkpoint, v.count, v.head);
            }
            assert_eq!(at.count, COMMANDS);
        })
    });
    g.finish();
}

criterion_group!(benches, feed);
criterion_main!(benches);
