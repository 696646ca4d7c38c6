//! One contract call against the same logic in native Rust: the counter example (read a
//! u64, add one, write it back, emit, answer). The contract side includes what every
//! call pays: a fresh instance, fuel accounting and the host's copies.
//!
//! And a call between contracts: the market (which carries the token) answering how
//! many tokens it holds, by calling the token, against the market answering from its
//! own code alone (its id) and the token answering the same question itself. The
//! difference to the first is what the call adds.
#![allow(missing_docs, clippy::unwrap_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use phalanx_contract::{Call, Entry, Runtime, State};
use std::collections::BTreeMap;
use std::hint::black_box;

const COUNTER: &[u8] = include_bytes!("../../guest/wasm/counter.wasm");
const AUCTION: &[u8] = include_bytes!("../../guest/wasm/auction.wasm");
const MARKET: &[u8] = include_bytes!("../../guest/wasm/market.wasm");
const TOKEN: &[u8] = include_bytes!("../../guest/wasm/token.wasm");

/// Queries of the market and the token (borsh by hand: `Query::Id`, `Query::Escrow`,
/// the token's `Query::Balance`).
fn cross_contract(c: &mut Criterion, rt: &Runtime) {
    let market = rt
        .compile(&phalanx_contract::bundle(MARKET, &[("token", TOKEN)]).unwrap())
        .unwrap();
    let token = rt.compile(TOKEN).unwrap();
    let state = State::default();
    let query = |input: &'static [u8]| Call {
        env: None,
        entry: Entry::Query,
        input,
        caller: [1; 32],
        height: 1,
    };
    let mut g = c.benchmark_group("cross_contract");
    g.bench_function("market alone", |b| {
        b.iter(|| black_box(rt.call(&market, &state, query(&[1])).unwrap()))
    });
    g.bench_function("market calling its token", |b| {
        b.iter(|| black_box(rt.call(&market, &state, query(&[2])).unwrap()))
    });
    g.bench_function("token alone", |b| {
        b.iter(|| black_box(rt.call(&token, &state, query(&[0])).unwrap()))
    });
    g.finish();
}

fn native_bump(state: &mut BTreeMap<Vec<u8>, Vec<u8>>, caller: [u8; 32]) -> Vec<u8> {
    let read = |s: &BTreeMap<Vec<u8>, Vec<u8>>, k: &[u8]| {
        s.get(k)
            .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
            .map_or(0, u64::from_le_bytes)
    };
    let mine = read(state, &caller) + 1;
    state.insert(caller.to_vec(), mine.to_le_bytes().to_vec());
    let total = read(state, b"total") + 1;
    state.insert(b"total".to_vec(), total.to_le_bytes().to_vec());
    mine.to_le_bytes().to_vec()
}

fn bench(c: &mut Criterion) {
    let rt = Runtime::default();
    let counter = rt.compile(COUNTER).unwrap();
    let mut state = State::default();
    let call = Call {
        env: None,
        entry: Entry::Execute,
        input: b"",
        caller: [1; 32],
        height: 1,
    };
    state.apply(&rt.call(&counter, &state, call).unwrap().changes);
    let mut g = c.benchmark_group("counter call");
    g.bench_function("wasmi contract", |b| {
        b.iter(|| black_box(rt.call(&counter, &state, call).unwrap()))
    });
    let mut native: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    g.bench_function("native rust", |b| {
        b.iter(|| black_box(native_bump(&mut native, [1; 32])))
    });
    g.finish();
    let mut g = c.benchmark_group("compile");
    g.bench_function("counter (1 KiB)", |b| {
        b.iter(|| black_box(rt.compile(COUNTER).unwrap()))
    });
    g.bench_function("auction (4 KiB)", |b| {
        b.iter(|| black_box(rt.compile(AUCTION).unwrap()))
    });
    g.finish();
    cross_contract(c, &rt);
}

criterion_group!(benches, bench);
criterion_main!(benches);
