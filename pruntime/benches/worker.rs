//! What a worker spends per command and per query, without the network:
//!
//! - `feed/100 commands`: a page of 100 sealed counter commands from the contract's own
//!   feed applied by an executor (`Executor::apply_commands`: HPKE open, one contract
//!   call, state write each; the page verified before: `benches/feed.rs`
//!   measures that part): commands per second of a worker catching up.
//! - `query/answer`: one query end to end inside the worker (signature check, HPKE
//!   open, read-only call, statement signature, HPKE seal of the answer), and
//!   `query/user side` (sealing and signing a query, opening and checking the answer).
//! - `checkpoint/seal` and `checkpoint/restore` of a 1000-entry state, and
//!   `checkpoint/join after 100000 commands` (see [`join`]).
//! - `state_root/command on 100000 entries` against `state_root/command on an empty
//!   contract` (see [`state_root`]): the root's cost grows with log n, not n.
#![allow(missing_docs, clippy::unwrap_used, clippy::indexing_slicing)]

#[path = "../tests/common/mod.rs"]
mod common;

use chain::types::{Block, Command, SignedTx, Tx, public_key};
use criterion::{Criterion, criterion_group, criterion_main};
use phalanx_contract::{Limits, Runtime};
use phalanx_release::envelope::RecipientKey;
use phalanx_types::Epoch;
use pruntime::executor::Executor;
use pruntime::protocol::{Answer, ContractKeys, Query, seal_command};

const COUNTER: &[u8] = include_bytes!("../guest/wasm/counter.wasm");
const ID: [u8; 32] = [0xc0; 32];

fn executor(rt: &Runtime) -> Executor {
    let keys = ContractKeys::derive(&[0x5e; 32]).unwrap();
    let mut e = Executor::new(ID, rt.compile(COUNTER).unwrap(), keys.state_root_key());
    e.add_keys(Epoch(0), ContractKeys::derive(&[0x5e; 32]).unwrap());
    e
}

fn block(height: u64, n: u64) -> Block {
    let key = ContractKeys::derive(&[0x5e; 32])
        .unwrap()
        .published(ID, Epoch(0));
    // One command from each of `n` fresh users.
    let txs = (0..n)
        .map(|_| {
            let user = &chain::random_key();
            let me = public_key(user.verifying_key());
            let nonce = 0;
            let ciphertext = seal_command(&key.encryption_key, &ID, &me, nonce, b"bump").unwrap();
            SignedTx::sign(
                user,
                &[0; 32],
                nonce,
                Tx::Command(Command {
                    contract: ID,
                    epoch: Epoch(0),
                    ciphertext,
                }),
            )
        })
        .collect();
    Block {
        height,
        prev: [0; 32],
        timestamp: 0,
        genesis: None,
        // The executor reads transactions; it does not check the registry's commitments.
        chain_id: [0; 32],
        tx_root: [0; 32],
        state_root: [0; 32],
        txs,
        signature: Vec::new(),
    }
    .seal(&chain::random_key())
}

/// Long on purpose: one worker's setup, then each measured call side by side, so the
/// report's rows (and their ratios) share it.
fn bench(c: &mut Criterion) {
    let rt = Runtime::new(Limits::default());
    let b = block(1, 100);
    let (commands, page) = common::page(&executor(&rt), &b);
    c.bench_function("feed/100 commands", |bench| {
        bench.iter_batched(
            || executor(&rt),
            |mut e| {
                let skipped = e.apply_commands(&rt, &commands, &page).unwrap();
                assert!(skipped.is_empty());
                e
            },
            criterion::BatchSize::LargeInput,
        )
    });

    let mut e = executor(&rt);
    e.apply_commands(&rt, &commands, &page).unwrap();
    let worker = chain::random_key();
    let worker_hpke = RecipientKey::generate(&mut rand::rng());
    let me = public_key(worker.verifying_key());
    let user = chain::random_key();
    let reply = RecipientKey::generate(&mut rand::rng());
    let make = || {
        Query::new(
            &user,
            &reply,
            &me,
            &worker_hpke.public_bytes(),
            ID,
            b"read",
            Default::default(),
        )
        .unwrap()
    };
    let (q, salt) = make();
    let answer = |q: &Query| {
        let o = q.open(&me, &worker_hpke).unwrap();
        let out = e.query(&rt, &o.caller, &o.input, 1_000_000).unwrap();
        let answer_salt = [7; 32];
        let statement = e.statement(
            pruntime::protocol::Purpose::Query,
            &me,
            &o.caller,
            &q.nonce.0,
            (&o.salt, &o.input),
            (&answer_salt, &out.output),
        );
        Answer::new(
            statement,
            &worker,
            &reply.public_bytes(),
            &answer_salt,
            &out.output,
        )
        .unwrap()
    };
    c.bench_function("query/answer", |bench| bench.iter(|| answer(&q)));
    let a = answer(&q);
    c.bench_function("query/user side", |bench| {
        bench.iter(|| {
            let fresh = make();
            a.open(&me, &reply, &q, &salt, b"read").unwrap();
            fresh
        })
    });

    // A state of 1000 entries: 1000 users' counters.
    let mut big = executor(&rt);
    for h in 1..=10 {
        let (commands, page) = common::page(&big, &block(h, 100));
        big.apply_commands(&rt, &commands, &page).unwrap();
    }
    c.bench_function("checkpoint/seal 1000 entries", |bench| {
        bench.iter(|| big.checkpoint(Epoch(0)).unwrap())
    });
    let sealed = big.checkpoint(Epoch(0)).unwrap();
    c.bench_function("checkpoint/restore 1000 entries", |bench| {
        bench.iter_batched(
            || executor(&rt),
            |mut e| {
                e.restore(&sealed).unwrap();
                e
            },
            criterion::BatchSize::LargeInput,
        )
    });
    join(c, &rt);
}

/// Issue 28, item 2: a worker joins a contract after 10⁵ commands from as many users
/// (10⁵ entries) from its committed checkpoint: compiles the module, opens the sealed
/// checkpoint (AES-256-GCM over all of it), decodes it, recomputes the keyed state root
/// and compares count, log head and root with the commitment. The transfer is the
/// checkpoint's size, printed. Building the state takes about a minute.
fn join(c: &mut Criterion, rt: &Runtime) {
    let mut state = executor(rt);
    for h in 1..=25 {
        let (commands, page) = common::page(&state, &block(100 + h, 4000));
        state.apply_commands(rt, &commands, &page).unwrap();
    }
    let sealed = state.checkpoint(Epoch(0)).unwrap();
    let committed = (state.log(), state.root());
    println!(
        "join: {} commands applied, {} entries, checkpoint {} bytes",
        state.log().0,
        state.state().len(),
        sealed.len()
    );
    let keys = ContractKeys::derive(&[0x5e; 32]).unwrap();
    let mut group = c.benchmark_group("checkpoint");
    group.sample_size(10);
    group.bench_function("join after 100000 commands", |bench| {
        bench.iter(|| {
            let e = Executor::from_checkpoint(ID, rt.compile(COUNTER).unwrap(), &keys, &sealed)
                .unwrap();
            assert_eq!((e.log(), e.root()), committed);
            e
        })
    });
    group.finish();
    state_root(c, rt, state);
}

/// Issue 30, item 5: a contract's state root moves in O(log n) of its entries. One
/// command (a new user's counter: one new entry) applied as a page of its own, to a
/// contract holding 10⁵ entries and to an empty one: page check, HPKE open, the call,
/// the write, the root's tree updated, the root read. Only the apply is timed (the
/// page is built for the executor's position before each).
fn state_root(c: &mut Criterion, rt: &Runtime, mut large: Executor) {
    let mut empty = executor(rt);
    let mut group = c.benchmark_group("state_root");
    // For reference, what every page that ran a command paid before the tree: one HMAC
    // over every entry (the previous root).
    group.bench_function("previous root: one HMAC over 100000 entries", |bench| {
        use hmac::{KeyInit as _, Mac as _};
        bench.iter(|| {
            let mut h = hmac::Hmac::<sha2::Sha256>::new_from_slice(&[7; 32]).unwrap();
            for (k, v) in large.state().iter() {
                h.update(&(k.len() as u32).to_be_bytes());
                h.update(k);
                h.update(&(v.len() as u32).to_be_bytes());
                h.update(v);
            }
            h.finalize().into_bytes()
        })
    });
    for (name, e) in [
        ("command on 100000 entries", &mut large),
        ("command on an empty contract", &mut empty),
    ] {
        let mut height = e.position().0;
        group.bench_function(name, |bench| {
            bench.iter_custom(|iters| {
                let mut spent = std::time::Duration::ZERO;
                for _ in 0..iters {
                    height += 1;
                    let (commands, page) = common::page(e, &block(height, 1));
                    let start = std::time::Instant::now();
                    e.apply_commands(rt, &commands, &page).unwrap();
                    spent += start.elapsed();
                }
                spent
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
