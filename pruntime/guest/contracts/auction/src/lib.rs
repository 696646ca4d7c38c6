//! Example contract: a sealed-bid auction, first price.
//!
//! Commands travel encrypted to the contract's key and the state is sealed, so until the
//! close nobody — not the other bidders, not the seller, not the worker's operator —
//! learns a bid. After the close, only the winner and the winning price are revealed.
//!
//! Commands (`execute`; first byte is the operation):
//! - `1 ‖ end (u64 LE)`: open, with the caller as seller, bids accepted below height
//!   `end`;
//! - `2 ‖ amount (u64 LE)`: bid, once per bidder, not by the seller, before `end`;
//! - `3`: close, by anyone, at or after `end`: the highest bid wins (the earliest on a
//!   tie); emits `winner ‖ price`.
//!
//! Queries (`query`):
//! - `1`: status: `closed (1 byte) ‖ end ‖ number of bids`;
//! - `2`: the caller's own bid (0 if none);
//! - `3`: the result `winner ‖ price`, only once closed;
//! - `4`: the signed result, only once closed: `winner (32) ‖ price (u64 BE) ‖ epoch (u64
//!   BE) ‖ signature (64)`, the contract's signature over `"auction-result" ‖ winner ‖
//!   price (u64 BE)` by its key of that epoch on the registry, made by the close (a
//!   command: signatures are of state the chain ordered) and kept. Another chain
//!   settles the auction on it (`chain/contracts/AuctionSettlement.sol`): no oracle, no
//!   relayer to trust.
#![no_std]

extern crate alloc;

use alloc::vec::Vec;
use phalanx_contract_sdk as sdk;

sdk::entry!(execute = command, query = ask);

const SELLER: &[u8] = b"seller";
const END: &[u8] = b"end";
const CLOSED: &[u8] = b"closed";
const COUNT: &[u8] = b"bids";
const BEST: &[u8] = b"best";
const SIGNED: &[u8] = b"signed";

fn bid_key(bidder: &[u8; 32]) -> Vec<u8> {
    [b"bid/".as_slice(), bidder].concat()
}

fn is_open() -> bool {
    sdk::storage::get(SELLER).is_some()
}

fn is_closed() -> bool {
    sdk::storage::get(CLOSED).is_some()
}

fn command() {
    let input = sdk::input();
    let Some((&op, rest)) = input.split_first() else {
        sdk::abort("empty command");
    };
    match op {
        1 => open(rest),
        2 => bid(rest),
        3 => close(),
        _ => sdk::abort("unknown command"),
    }
}

fn open(rest: &[u8]) {
    if is_open() {
        sdk::abort("auction already open");
    }
    let Some((end, [])) = sdk::take_u64(rest) else {
        sdk::abort("open needs an end height");
    };
    if end <= sdk::block_height() {
        sdk::abort("end height already passed");
    }
    sdk::storage::set(SELLER, &sdk::caller());
    sdk::storage::set_u64(END, end);
}

fn bid(rest: &[u8]) {
    if !is_open() {
        sdk::abort("auction not open");
    }
    if sdk::block_height() >= sdk::storage::get_u64(END) {
        sdk::abort("bidding has ended");
    }
    let Some((amount, [])) = sdk::take_u64(rest) else {
        sdk::abort("bid needs an amount");
    };
    if amount == 0 {
        sdk::abort("bid must be above zero");
    }
    let me = sdk::caller();
    if sdk::storage::get(SELLER).as_deref() == Some(me.as_slice()) {
        sdk::abort("the seller cannot bid");
    }
    let key = bid_key(&me);
    if sdk::storage::get(&key).is_some() {
        sdk::abort("already bid");
    }
    sdk::storage::set_u64(&key, amount);
    sdk::storage::set_u64(COUNT, sdk::storage::get_u64(COUNT) + 1);
    // Strictly higher replaces the best: the earliest bid wins a tie.
    let best = sdk::storage::get(BEST).unwrap_or_default();
    let best_amount = best.get(32..).and_then(sdk::take_u64).map_or(0, |(a, _)| a);
    if amount > best_amount {
        sdk::storage::set(BEST, &[me.as_slice(), &amount.to_le_bytes()].concat());
    }
}

fn close() {
    if !is_open() {
        sdk::abort("auction not open");
    }
    if is_closed() {
        sdk::abort("auction already closed");
    }
    if sdk::block_height() < sdk::storage::get_u64(END) {
        sdk::abort("bidding has not ended");
    }
    sdk::storage::set(CLOSED, &[1]);
    let result = sdk::storage::get(BEST).unwrap_or_else(|| [0u8; 40].to_vec());
    // The signed result, for other chains: signed here, in the command that closes.
    let (winner, price) = result.split_at(32.min(result.len()));
    let price = sdk::take_u64(price).map_or(0, |(p, _)| p).to_be_bytes();
    let (epoch, signature) = sdk::sign(&[b"auction-result".as_slice(), winner, &price].concat());
    sdk::storage::set(
        SIGNED,
        &[winner, &price, &epoch.to_be_bytes(), &signature].concat(),
    );
    sdk::emit(&result);
    sdk::output(&result);
}

fn ask() {
    let input = sdk::input();
    match input.first() {
        Some(1) => {
            let mut out = Vec::with_capacity(17);
            out.push(u8::from(is_closed()));
            out.extend_from_slice(&sdk::storage::get_u64(END).to_le_bytes());
            out.extend_from_slice(&sdk::storage::get_u64(COUNT).to_le_bytes());
            sdk::output(&out);
        }
        Some(2) => {
            let mine = sdk::storage::get_u64(&bid_key(&sdk::caller()));
            sdk::output(&mine.to_le_bytes());
        }
        Some(3) => {
            if !is_closed() {
                sdk::abort("auction not closed");
            }
            sdk::output(&sdk::storage::get(BEST).unwrap_or_else(|| [0u8; 40].to_vec()));
        }
        Some(4) => match sdk::storage::get(SIGNED) {
            Some(signed) => sdk::output(&signed),
            None => sdk::abort("auction not closed"),
        },
        _ => sdk::abort("unknown query"),
    }
}
