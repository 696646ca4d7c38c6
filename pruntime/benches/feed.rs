//! What a worker pays to follow one contract among 1,000 (issue 26, item 4), end to
//! end but for the network: pages of that contract's commands as the node serves them
//! (`chain::proof::CommandPage`, each with the proof of the contract's command log at a
//! signed header, in a state holding 999 other contracts' logs), verified against the
//! pinned genesis and run by an executor.
//!
//! Prints the bytes downloaded against the bytes of the commands themselves for 10⁵
//! commands caught up in full pages, and for following live (a page per block of 10
//! commands). Measures `catch_up/4096 commands`: one full page verified (the log
//! recomputed, the header's signature, one state proof) and applied to the counter
//! contract (HPKE open, one contract call, one state write each): commands per second
//! of a worker catching up. `cargo bench -p phalanx-pruntime --bench feed`.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use chain::commit::Commitment;
use chain::facts::Fact;
use chain::proof::{CommandAt, CommandPage, FactProof, HeaderProof, Lean as _, MAX_PAGE_COMMANDS};
use chain::state::State;
use chain::types::{Command, Genesis, Header, SignedHeader, SignedTx, Tx, public_key};
use criterion::{Criterion, criterion_group, criterion_main};
use phalanx_contract::{Limits, Runtime};
use phalanx_types::Epoch;
use phalanx_types::codec::{Codec, Writer};
use pruntime::executor::Executor;
use pruntime::protocol::{ContractKeys, seal_command};

const COUNTER: &[u8] = include_bytes!("../guest/wasm/counter.wasm");
const CONTRACTS: u8 = 250; // × 4 id bytes below: 1,000 contracts
const COMMANDS: usize = 100_000;
const MINE: [u8; 32] = [7; 32];

fn commands_fact(count: u64, head: &[u8; 32]) -> Vec<u8> {
    let mut w = Writer::default();
    w.u64(count);
    w.raw(head);
    w.0
}

fn keys() -> ContractKeys {
    ContractKeys::derive(&[0x5e; 32]).unwrap()
}

fn executor(rt: &Runtime) -> Executor {
    let mut e = Executor::new(MINE, rt.compile(COUNTER).unwrap(), keys().state_root_key());
    e.add_keys(Epoch(0), keys());
    e
}

/// Long on purpose: one chain built once, then each measured step of following it
/// side by side, so the report's rows share one setup.
fn bench(c: &mut Criterion) {
    let authority = chain::random_key();
    let genesis = State::genesis_block(
        Genesis {
            authority: public_key(authority.verifying_key()),
            governance: public_key(chain::random_key().verifying_key()),
            timestamp: 1_760_000_000,
            evidence: chain::types::EvidenceRule::intel(),
        },
        &authority,
    );
    let chain_id = genesis.chain_id;
    // The contract's commands: sealed counter bumps, a block of 10 every 6 s, from
    // 1,000 users. One sealed command is reused for a user's later nonces: only the first
    // opens (the rest are ordered and skipped, at the same cost to check).
    let published = keys().published(MINE, Epoch(0));
    let users: Vec<_> = (0..1000)
        .map(|_| {
            let user = chain::random_key();
            let me = public_key(user.verifying_key());
            let sealed = seal_command(&published.encryption_key, &MINE, &me, 0, b"bump").unwrap();
            (user, sealed)
        })
        .collect();
    let commands: Vec<CommandAt> = (0..COMMANDS)
        .map(|i| {
            let (user, sealed) = &users[i % 1000];
            CommandAt {
                height: 1 + (i / 10) as u64,
                timestamp: 1_760_000_000 + 6 * (i / 10) as i64,
                tx: SignedTx::sign(
                    user,
                    &chain_id,
                    (i / 1000) as u64,
                    Tx::Command(Command {
                        contract: MINE,
                        epoch: Epoch(0),
                        ciphertext: sealed.clone(),
                    }),
                ),
            }
        })
        .collect();
    let own: usize = commands.iter().map(|c| c.tx.encode().len()).sum();
    // Pages as a node serves them: each proven at its last command's block, in a state
    // with 999 other contracts' logs.
    let mut tree = Commitment::new();
    tree.update((0..CONTRACTS).flat_map(|a| {
        (0..4u8).map(move |b| {
            let mut id = [0u8; 32];
            (id[0], id[1]) = (a, b);
            (Fact::Commands(id).key(), Some(commands_fact(99, &[a; 32])))
        })
    }))
    .unwrap();
    let (mut head, mut downloaded, mut pages) = ([0u8; 32], 0usize, Vec::new());
    for (n, chunk) in commands.chunks(MAX_PAGE_COMMANDS).enumerate() {
        for cmd in chunk {
            head = chain::types::command_log(&head, cmd.height, cmd.timestamp, &cmd.tx.encode());
        }
        let count = (n * MAX_PAGE_COMMANDS + chunk.len()) as u64;
        tree.update([(
            Fact::Commands(MINE).key(),
            Some(commands_fact(count, &head)),
        )])
        .unwrap();
        let last = chunk.last().unwrap();
        let header = Header {
            chain_id,
            height: last.height,
            prev: [0; 32],
            timestamp: last.timestamp,
            tx_root: chain::commit::empty_root(),
            state_root: tree.root(),
        };
        let signature: p256::ecdsa::Signature =
            p256::ecdsa::signature::Signer::sign(&authority, &header.hash());
        let key = Fact::Commands(MINE).key();
        let (value, proof) = tree.prove(&key).unwrap();
        let page = CommandPage {
            commands: chunk.to_vec(),
            proof: HeaderProof {
                genesis: genesis.clone(),
                header: SignedHeader {
                    header,
                    signature: signature.to_bytes().to_vec(),
                },
                facts: vec![FactProof { key, value, proof }],
            },
        };
        // The client has the genesis after the first page: the rest come lean.
        downloaded += match n {
            0 => page.to_bytes().len(),
            _ => page.to_lean_bytes().len(),
        };
        pages.push(page);
    }
    eprintln!(
        "feed: {COMMANDS} commands of 1 contract among 1,000: {own} bytes of commands, \
         {downloaded} bytes downloaded in {} pages ({:.3}x)",
        pages.len(),
        downloaded as f64 / own as f64
    );
    // Following live instead: a page per block of the contract's 10 commands, each with
    // its own proof (lean: without the genesis block the client has).
    let proof_bytes = pages[0].proof.to_lean_bytes().len();
    let per_block: usize = commands[..10].iter().map(|c| c.tx.encode().len()).sum();
    eprintln!(
        "feed: live, a page per block of 10 commands ({per_block} bytes) costs one proof of \
         {proof_bytes} bytes (the genesis block, {} bytes, left out): {:.3}x",
        genesis.encode().len(),
        (per_block + proof_bytes + 8) as f64 / per_block as f64
    );
    // Every page checks and applies, in order, to the same state as one executor.
    let pin = genesis.hash();
    let rt = Runtime::new(Limits::default());
    let mut e = executor(&rt);
    for p in &pages {
        let (from, at) = e.log();
        let v = p.verify(&pin, &MINE, from, &at).unwrap();
        e.apply_commands(&rt, &p.commands, &v).unwrap();
    }
    assert_eq!(e.log().0, COMMANDS as u64);
    assert_eq!(e.executed(), 1000);
    let first = &pages[0];
    let mut g = c.benchmark_group("catch_up");
    g.sample_size(10);
    g.throughput(criterion::Throughput::Elements(first.commands.len() as u64));
    g.bench_function("4096 commands", |b| {
        b.iter_batched(
            || executor(&rt),
            |mut e| {
                let v = first.verify(&pin, &MINE, 0, &[0; 32]).unwrap();
                e.apply_commands(&rt, &first.commands, &v).unwrap();
                e
            },
            criterion::BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
