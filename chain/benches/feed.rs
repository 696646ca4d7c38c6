//! What a worker serving one contract among 1,000 pays to follow it (issue 26, item 4):
//! pages of that contract's commands, each with the proof of its command log at a
//! header (`chain::proof::CommandPage`). Prints the bytes downloaded against the bytes
//! of the commands themselves for 10⁵ commands, and measures checking one full page
//! (4,096 commands: the log recomputed, the header's signature, one state proof).
//! `cargo bench -p chain --no-default-features --bench feed`.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use chain::commit::Commitment;
use chain::facts::Fact;
use chain::proof::{CommandAt, CommandPage, FactProof, HeaderProof, MAX_PAGE_COMMANDS};
use chain::state::State;
use chain::types::{Command, Genesis, Header, SignedHeader, SignedTx, Tx, public_key};
use criterion::{Criterion, criterion_group, criterion_main};
use phalanx_types::Epoch;
use phalanx_types::codec::{Codec, Writer};

const CONTRACTS: u8 = 250; // × 4 id bytes below: 1,000 contracts
const COMMANDS: usize = 100_000;

fn commands_fact(count: u64, head: &[u8; 32]) -> Vec<u8> {
    let mut w = Writer::default();
    w.u64(count);
    w.raw(head);
    w.0
}

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
    let mine = [7u8; 32];
    // The contract's commands: 200-byte ciphertexts (a small sealed command), a block
    // of 10 every 6 s, from 1,000 users.
    let users: Vec<_> = (0..1000).map(|_| chain::random_key()).collect();
    let commands: Vec<CommandAt> = (0..COMMANDS)
        .map(|i| CommandAt {
            height: 1 + (i / 10) as u64,
            timestamp: 1_760_000_000 + 6 * (i / 10) as i64,
            tx: SignedTx::sign(
                &users[i % 1000],
                &chain_id,
                (i / 1000) as u64,
                Tx::Command(Command {
                    contract: mine,
                    epoch: Epoch(0),
                    ciphertext: vec![(i % 251) as u8; 200],
                }),
            ),
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
    for chunk in commands.chunks(MAX_PAGE_COMMANDS) {
        for cmd in chunk {
            head = chain::types::command_log(&head, cmd.height, cmd.timestamp, &cmd.tx.encode());
        }
        let count = commands
            .len()
            .min(pages.len() * MAX_PAGE_COMMANDS + chunk.len()) as u64;
        tree.update([(
            Fact::Commands(mine).key(),
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
        let key = Fact::Commands(mine).key();
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
        downloaded += page.to_bytes().len();
        pages.push(page);
    }
    eprintln!(
        "feed: {COMMANDS} commands of 1 contract among 1,000: {own} bytes of commands, \
         {downloaded} bytes downloaded in {} pages ({:.3}x)",
        pages.len(),
        downloaded as f64 / own as f64
    );
    // Following live instead: a page per block of the contract's 10 commands, each with
    // its own proof (what a worker polling the node receives as blocks come).
    let proof_bytes = pages[0].proof.to_bytes().len();
    let per_block: usize = commands[..10].iter().map(|c| c.tx.encode().len()).sum();
    eprintln!(
        "feed: live, a page per block of 10 commands ({per_block} bytes) costs one proof of \
         {proof_bytes} bytes (genesis {} bytes): {:.3}x",
        genesis.encode().len(),
        (per_block + proof_bytes + 8) as f64 / per_block as f64
    );
    // Every page checks, in order.
    let pin = genesis.hash();
    let (mut from, mut at) = (0u64, [0u8; 32]);
    for p in &pages {
        let v = p.verify(&pin, &mine, from, &at).unwrap();
        (from, at) = (v.count, v.head);
    }
    assert_eq!(from, COMMANDS as u64);
    let first = &pages[0];
    c.bench_function("feed/check_one_page_of_4096_commands", |b| {
        b.iter(|| first.verify(&pin, &mine, 0, &[0; 32]).unwrap())
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench
}
criterion_main!(benches);
