//! The example contracts written against the guest SDK (`pruntime/guest`), as committed
//! (`pruntime/guest/wasm/*.wasm`, rebuilt and compared by CI): they compile under the
//! runtime's rules and behave as their docs say. The auction shows the confidentiality
//! that matters: before the close no query reveals another bidder's bid.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use common::FakeKeys;
use phalanx_contract::{Call, Contract, ContractError, Entry, Env, Runtime, State};
use std::sync::Arc;

const COUNTER: &[u8] = include_bytes!("../../guest/wasm/counter.wasm");
const AUCTION: &[u8] = include_bytes!("../../guest/wasm/auction.wasm");

struct World {
    rt: Runtime,
    contract: Contract,
    state: State,
    env: Arc<dyn Env>,
}

impl World {
    fn new(code: &[u8]) -> Self {
        let rt = Runtime::default();
        let contract = rt.compile(code).unwrap();
        Self {
            rt,
            contract,
            state: State::default(),
            env: Arc::new(FakeKeys),
        }
    }

    /// A command; its changes stand only if it succeeds.
    fn command(&mut self, who: u8, height: u64, input: &[u8]) -> Result<Vec<u8>, ContractError> {
        let o = self.rt.call(
            &self.contract,
            &self.state,
            Call {
                env: Some(&self.env),
                entry: Entry::Execute,
                input,
                caller: [who; 32],
                height,
            },
        )?;
        self.state.apply(&o.changes);
        Ok(o.output)
    }

    fn query(&self, who: u8, height: u64, input: &[u8]) -> Result<Vec<u8>, ContractError> {
        self.rt
            .call(
                &self.contract,
                &self.state,
                Call {
                    env: None,
                    entry: Entry::Query,
                    input,
                    caller: [who; 32],
                    height,
                },
            )
            .map(|o| o.output)
    }
}

fn u64s(bytes: &[u8]) -> Vec<u64> {
    bytes
        .chunks(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

#[test]
fn the_counter_counts_per_caller_and_in_total() {
    let mut w = World::new(COUNTER);
    assert_eq!(u64s(&w.command(1, 10, b"").unwrap()), [1]);
    assert_eq!(u64s(&w.command(1, 11, b"").unwrap()), [2]);
    assert_eq!(u64s(&w.command(2, 12, b"").unwrap()), [1]);
    assert_eq!(u64s(&w.query(1, 12, b"").unwrap()), [2, 3]);
    assert_eq!(u64s(&w.query(3, 12, b"").unwrap()), [0, 3]);
    // A query cannot count.
    let q = w.rt.call(
        &w.contract,
        &w.state,
        Call {
            env: None,
            entry: Entry::Query,
            input: b"",
            caller: [1; 32],
            height: 12,
        },
    );
    assert!(q.unwrap().changes.0.is_empty());
}

fn open(end: u64) -> Vec<u8> {
    [&[1u8][..], &end.to_le_bytes()].concat()
}

fn bid(amount: u64) -> Vec<u8> {
    [&[2u8][..], &amount.to_le_bytes()].concat()
}

#[test]
fn the_sealed_bid_auction_reveals_only_the_winner_and_only_after_the_close() {
    let seller = 9;
    let mut w = World::new(AUCTION);
    w.command(seller, 100, &open(110)).unwrap();
    w.command(1, 101, &bid(500)).unwrap();
    w.command(2, 102, &bid(700)).unwrap();
    w.command(3, 103, &bid(700)).unwrap();

    // Before the close: counts are public, bids are not.
    let status = w.query(4, 105, &[1]).unwrap();
    assert_eq!(status[0], 0);
    assert_eq!(u64s(&status[1..]), [110, 3]);
    assert_eq!(u64s(&w.query(1, 105, &[2]).unwrap()), [500]);
    assert_eq!(u64s(&w.query(seller, 105, &[2]).unwrap()), [0]);
    assert_eq!(
        w.query(seller, 105, &[3]),
        Err(ContractError::Aborted("auction not closed".into()))
    );
    let state_before = w.state.clone();

    // Rules: one bid each, none by the seller, none after the end, no early close.
    let refused = |r: Result<Vec<u8>, ContractError>, why: &str| {
        assert_eq!(r, Err(ContractError::Aborted(why.into())));
    };
    refused(w.command(1, 106, &bid(900)), "already bid");
    refused(w.command(seller, 106, &bid(900)), "the seller cannot bid");
    refused(w.command(5, 110, &bid(900)), "bidding has ended");
    refused(w.command(5, 106, &bid(0)), "bid must be above zero");
    refused(w.command(5, 106, &[2, 1, 2]), "bid needs an amount");
    refused(w.command(5, 109, &[3]), "bidding has not ended");
    refused(w.command(5, 106, &[7]), "unknown command");
    refused(w.command(5, 106, &open(200)), "auction already open");
    // Refused commands changed nothing.
    assert_eq!(w.state, state_before);

    // The close: the highest bid, the earliest on a tie (bidder 2 before 3).
    let result = w.command(5, 110, &[3]).unwrap();
    assert_eq!(&result[..32], &[2u8; 32]);
    assert_eq!(u64s(&result[32..]), [700]);
    assert_eq!(w.query(4, 111, &[3]).unwrap(), result);
    assert_eq!(w.query(4, 111, &[1]).unwrap()[0], 1);
    refused(w.command(5, 111, &[3]), "auction already closed");
    // The signed result the close made and kept: winner, price (BE), the key's epoch,
    // the signature over "auction-result" ‖ winner ‖ price (here the stand-in's).
    let signed = w.query(4, 111, &[4]).unwrap();
    let message_len = (14 + 32 + 8) as u8;
    assert_eq!(
        signed,
        [
            &[2u8; 32][..],
            &700u64.to_be_bytes(),
            &7u64.to_be_bytes(),
            &[message_len; 64]
        ]
        .concat()
    );
}

#[test]
fn the_examples_obey_the_runtimes_rules() {
    let rt = Runtime::default();
    for code in [COUNTER, AUCTION] {
        let c = rt.compile(code).unwrap();
        assert_eq!(c.code_hash(), phalanx_contract::code_hash(code));
    }
    // A panic inside a contract is an abort with the SDK's message, not a host crash:
    // an empty command makes the auction abort by name.
    let mut w = World::new(AUCTION);
    assert_eq!(
        w.command(1, 1, b""),
        Err(ContractError::Aborted("empty command".into()))
    );
}

const VOTE: &[u8] = include_bytes!("../../guest/wasm/vote.wasm");
const VAULT: &[u8] = include_bytes!("../../guest/wasm/vault.wasm");

/// The typed examples (borsh messages, `dlmalloc`) run under the runtime's rules as
/// their own harness tests say: the vote's tally is sealed until the close, then
/// public; the vault answers its owner and refuses a stranger in the same words as an
/// absent secret. (Messages are borsh: a variant's index, then its fields, lengths u32
/// little-endian.)
#[test]
fn the_typed_examples_run_under_the_runtime() {
    let mut w = World::new(VOTE);
    let (a, b) = ([1u8; 32], [2u8; 32]);
    let open = [
        &[0u8, 3][..],
        &2u32.to_le_bytes(),
        &a,
        &b,
        &20u64.to_le_bytes(),
    ]
    .concat();
    w.command(1, 10, &open).unwrap();
    w.command(1, 11, &[1, 2]).unwrap();
    w.command(2, 12, &[1, 2]).unwrap();
    assert_eq!(
        w.command(2, 12, &[1, 0]),
        Err(ContractError::Aborted("already voted".into()))
    );
    assert_eq!(
        w.query(9, 13, &[2]),
        Err(ContractError::Aborted(
            "the tally is sealed until the close".into()
        ))
    );
    w.command(9, 20, &[2]).unwrap();
    let tally = [
        &[2u8][..],
        &3u32.to_le_bytes(),
        &[0u8; 16],
        &2u64.to_le_bytes(),
    ]
    .concat();
    assert_eq!(w.query(9, 21, &[2]).unwrap(), tally);

    let mut v = World::new(VAULT);
    let name = |n: &str| [&(n.len() as u32).to_le_bytes()[..], n.as_bytes()].concat();
    let put = [&[0u8][..], &name("api"), &3u32.to_le_bytes(), b"key"].concat();
    v.command(1, 1, &put).unwrap();
    let get = [&[0u8][..], &[1u8; 32], &name("api")].concat();
    assert_eq!(
        v.query(1, 2, &get).unwrap(),
        [&3u32.to_le_bytes()[..], b"key"].concat()
    );
    let denied = Err(ContractError::Aborted(
        "no such secret, or no access".into(),
    ));
    assert_eq!(v.query(2, 2, &get), denied);
}

const TOKEN: &[u8] = include_bytes!("../../guest/wasm/token.wasm");
const MARKET: &[u8] = include_bytes!("../../guest/wasm/market.wasm");

/// The market's messages in borsh, by hand (variant index, then fields).
mod market {
    pub fn open(end: u64) -> Vec<u8> {
        [&[0u8][..], &end.to_le_bytes()].concat()
    }
    pub fn bid(amount: u64) -> Vec<u8> {
        [&[1u8][..], &amount.to_le_bytes()].concat()
    }
    pub const CLOSE: &[u8] = &[2];
    pub const CLAIM: &[u8] = &[3, 0];
    pub fn approve(spender: &[u8; 32], amount: u64) -> Vec<u8> {
        [&[3u8, 2][..], spender, &amount.to_le_bytes()].concat()
    }
    pub const ID: &[u8] = &[1];
    pub const ESCROW: &[u8] = &[2];
    pub const BALANCE: &[u8] = &[3, 0];
}

#[test]
fn the_market_pays_out_through_the_token_it_carries() {
    let code = phalanx_contract::bundle(MARKET, &[("token", TOKEN)]).unwrap();
    let mut w = World::new(&code);
    assert_eq!(
        w.contract.components(),
        vec![("token".to_owned(), phalanx_contract::code_hash(TOKEN))]
    );
    let (seller, bob, carol) = (9, 1, 2);
    w.command(seller, 100, &market::open(110)).unwrap();
    // The market's id on the token is what its code's calls are made as.
    let id = w.query(bob, 100, market::ID).unwrap();
    let market_id = phalanx_contract::component_caller_id(&phalanx_contract::code_hash(&code));
    assert_eq!(id, [&[1u8][..], &market_id].concat());
    let tokens = |w: &World, who: u8| {
        let a = w.query(who, 101, market::BALANCE).unwrap();
        assert_eq!(a[0], 2, "Answer::Tokens");
        u64s(&a[1..])[0]
    };
    for who in [bob, carol] {
        assert_eq!(u64s(&w.command(who, 101, market::CLAIM).unwrap()), [1000]);
        w.command(who, 101, &market::approve(&market_id, 400))
            .unwrap();
    }
    // A bid beyond the approval: the token refuses, nothing stands.
    let before = w.state.clone();
    assert_eq!(
        w.command(bob, 102, &market::bid(401)),
        Err(ContractError::Aborted(
            "the token refused: approve the market's id for the bid first".into()
        ))
    );
    assert_eq!(w.state, before);
    assert_eq!(
        u64s(&w.command(bob, 102, &market::bid(300)).unwrap()),
        [300]
    );
    assert_eq!(
        u64s(&w.command(carol, 103, &market::bid(350)).unwrap()),
        [350]
    );
    assert_eq!(tokens(&w, bob), 1000, "outbid: returned");
    assert_eq!(
        w.query(seller, 104, market::ESCROW).unwrap()[1..],
        350u64.to_le_bytes()
    );
    assert_eq!(u64s(&w.command(bob, 110, market::CLOSE).unwrap()), [350]);
    assert_eq!(tokens(&w, seller), 350);
    assert_eq!(tokens(&w, carol), 650);
}
