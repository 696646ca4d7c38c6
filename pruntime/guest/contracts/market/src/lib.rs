//! Example contract that uses another: an auction paid in tokens. It carries the
//! token ([`phalanx_example_token`]) as its component `token` (`phalanx contract bundle
//! market.wasm --component token=token.wasm`) and calls it synchronously, in the
//! command's order on every worker:
//!
//! - holders reach the token through the market ([`Command::Token`], forwarded as
//!   themselves): claim tokens, approve the market's id ([`Query::Id`]) for a bid;
//! - a [`Command::Bid`] takes the bid into escrow (the token's `Take`, as the market);
//!   the best bid stays there and any other goes back at once, so a bidder learns only
//!   whether they lead;
//! - [`Command::Close`], at or after the end, pays the best bid to the seller through
//!   the token.
//!
//! A call the token refuses (too few tokens, too little approved) refuses the bid, and
//! nothing either wrote stands.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

use phalanx_contract_sdk::borsh::{BorshDeserialize, BorshSerialize};
use phalanx_contract_sdk::{self as sdk, CallError, Item};
use phalanx_example_token as token;

/// What sellers, bidders and holders send.
#[derive(BorshSerialize, BorshDeserialize, Debug, Clone, PartialEq, Eq)]
#[borsh(crate = "phalanx_contract_sdk::borsh")]
pub enum Command {
    /// Opens the auction (once), the caller selling; bids accepted below height `end`.
    Open {
        /// The first height at which bids are refused.
        end: u64,
    },
    /// Bids `amount` tokens, taken from what the caller approved the market to take.
    /// Output: the caller's bid now held (0: not the best, returned).
    Bid {
        /// How many tokens.
        amount: u64,
    },
    /// Closes (anyone, at or after the end) and pays the best bid to the seller.
    /// Output: the price (0: no bid).
    Close,
    /// A token command, run by the token as the caller. Output: the token's.
    Token(token::Command),
}

/// What anyone asks.
#[derive(BorshSerialize, BorshDeserialize, Debug, Clone, PartialEq, Eq)]
#[borsh(crate = "phalanx_contract_sdk::borsh")]
pub enum Query {
    /// [`Status`], as the caller sees it.
    Status,
    /// The market's id on the token: the spender a bidder approves.
    Id,
    /// Tokens the market holds in escrow.
    Escrow,
    /// A token query, about the caller's own tokens.
    Token(token::Query),
}

/// The answers.
#[derive(BorshSerialize, BorshDeserialize, Debug, Clone, PartialEq, Eq)]
#[borsh(crate = "phalanx_contract_sdk::borsh")]
pub enum Answer {
    /// The auction.
    Status(Status),
    /// An id.
    Id([u8; 32]),
    /// A number of tokens.
    Tokens(u64),
}

/// The auction as one caller sees it.
#[derive(BorshSerialize, BorshDeserialize, Debug, Clone, PartialEq, Eq)]
#[borsh(crate = "phalanx_contract_sdk::borsh")]
pub struct Status {
    /// The end height.
    pub end: u64,
    /// Bids made, returned ones included.
    pub bids: u32,
    /// Whether the caller holds the best bid.
    pub leading: bool,
    /// The price, once closed.
    pub price: Option<u64>,
}

/// What the market emits: that a bid came, and the price at the close.
#[derive(BorshSerialize, BorshDeserialize, Debug, Clone, PartialEq, Eq)]
#[borsh(crate = "phalanx_contract_sdk::borsh")]
pub enum Event {
    /// A bid was made (by whom and how much stays sealed).
    Bid,
    /// Closed at this price.
    Closed {
        /// The winning bid (0: none).
        price: u64,
    },
}

/// The seller and the end height.
const OPEN: Item<([u8; 32], u64)> = Item::new(b"open");
/// The best bid: who, how much.
const BEST: Item<([u8; 32], u64)> = Item::new(b"best");
const BIDS: Item<u32> = Item::new(b"bids");
const PRICE: Item<u64> = Item::new(b"price");

sdk::contract!(execute = command, query = ask);
sdk::events_readable_by!(anyone);

fn anyone(_: &[u8; 32]) -> bool {
    true
}

fn command(c: Command) -> Result<u64, &'static str> {
    match c {
        Command::Open { end } => open(end),
        Command::Bid { amount } => bid(amount),
        Command::Close => close(),
        // The whole message from byte 1 on (past this variant's index) is the token's.
        Command::Token(_) => sdk::forward_typed("token", 1).map_err(refused),
    }
}

fn refused(e: CallError) -> &'static str {
    match e {
        CallError::Failed => "the token refused",
        other => match other.as_ref() {
            "no such component" => "the market carries no token (bundle it)",
            _ => "the token call failed",
        },
    }
}

fn open(end: u64) -> Result<u64, &'static str> {
    if OPEN.get().is_some() {
        return Err("the auction is already open");
    }
    if end <= sdk::block_height() {
        return Err("the end height has passed");
    }
    OPEN.set(&(sdk::caller(), end));
    Ok(0)
}

fn token(c: &token::Command) -> Result<u64, &'static str> {
    sdk::call_typed("token", c).map_err(refused)
}

fn bid(amount: u64) -> Result<u64, &'static str> {
    let (seller, end) = OPEN.get().ok_or("no auction is open")?;
    if PRICE.get().is_some() || sdk::block_height() >= end {
        return Err("bidding has ended");
    }
    let me = sdk::caller();
    if me == seller {
        return Err("the seller does not bid");
    }
    if amount == 0 {
        return Err("a bid is at least one token");
    }
    token(&token::Command::Take { from: me, amount })
        .map_err(|_| "the token refused: approve the market's id for the bid first")?;
    BIDS.set(&BIDS.get().unwrap_or(0).saturating_add(1));
    sdk::emit_typed(&Event::Bid);
    match BEST.get() {
        Some((_, best)) if best >= amount => {
            token(&token::Command::Transfer { to: me, amount })?;
            Ok(0)
        }
        best => {
            if let Some((who, returned)) = best {
                token(&token::Command::Transfer {
                    to: who,
                    amount: returned,
                })?;
            }
            BEST.set(&(me, amount));
            Ok(amount)
        }
    }
}

fn close() -> Result<u64, &'static str> {
    let (seller, end) = OPEN.get().ok_or("no auction is open")?;
    if PRICE.get().is_some() {
        return Err("already closed");
    }
    if sdk::block_height() < end {
        return Err("bidding has not ended");
    }
    let price = match BEST.get() {
        Some((_, price)) => {
            token(&token::Command::Transfer {
                to: seller,
                amount: price,
            })?;
            price
        }
        None => 0,
    };
    PRICE.set(&price);
    sdk::emit_typed(&Event::Closed { price });
    Ok(price)
}

fn ask(q: Query) -> Result<Answer, &'static str> {
    match q {
        Query::Status => {
            let (_, end) = OPEN.get().ok_or("no auction is open")?;
            Ok(Answer::Status(Status {
                end,
                bids: BIDS.get().unwrap_or(0),
                leading: BEST.get().is_some_and(|(who, _)| who == sdk::caller()),
                price: PRICE.get(),
            }))
        }
        Query::Id => Ok(Answer::Id(sdk::self_id())),
        Query::Escrow => sdk::call_typed("token", &token::Query::Balance)
            .map(Answer::Tokens)
            .map_err(refused),
        Query::Token(_) => sdk::forward_typed("token", 1)
            .map(Answer::Tokens)
            .map_err(refused),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use phalanx_contract_sdk::testing::Harness;

    const SELLER: [u8; 32] = [1; 32];
    const BOB: [u8; 32] = [2; 32];
    const CAROL: [u8; 32] = [3; 32];

    fn harness() -> Harness {
        let mut h = Harness::new(Some(execute), Some(query)).with_component(
            "token",
            Some(token::execute),
            Some(token::query),
        );
        h.caller(SELLER)
            .at(5)
            .command::<_, u64>(&Command::Open { end: 20 })
            .unwrap();
        h
    }

    fn tokens(h: &mut Harness, who: [u8; 32]) -> u64 {
        match h.caller(who).query(&Query::Token(token::Query::Balance)) {
            Ok(Answer::Tokens(n)) => n,
            other => panic!("{other:?}"),
        }
    }

    /// Claims the faucet and approves the market for `amount`, as `who`, through the
    /// market.
    fn funded(h: &mut Harness, who: [u8; 32], amount: u64) {
        let Ok(Answer::Id(market)) = h.query(&Query::Id) else {
            panic!("no id");
        };
        h.caller(who)
            .command::<_, u64>(&Command::Token(token::Command::Claim))
            .unwrap();
        let approve = token::Command::Approve {
            spender: market,
            amount,
        };
        h.command::<_, u64>(&Command::Token(approve)).unwrap();
    }

    #[test]
    fn the_best_bid_pays_the_seller_through_the_token_and_the_rest_go_back() {
        let mut h = harness();
        funded(&mut h, BOB, 400);
        // A returned bid has used its approval: Carol approves for both of hers.
        funded(&mut h, CAROL, 600);
        let bid = |amount| Command::Bid { amount };
        assert_eq!(h.caller(BOB).command(&bid(300)), Ok(300u64));
        assert_eq!(tokens(&mut h, BOB), 700, "the bid is in escrow");
        assert_eq!(h.query(&Query::Escrow), Ok(Answer::Tokens(300)));
        assert_eq!(h.caller(CAROL).command(&bid(250)), Ok(0u64), "not the best");
        assert_eq!(tokens(&mut h, CAROL), 1000, "returned at once");
        assert_eq!(h.caller(CAROL).command(&bid(350)), Ok(350u64));
        assert_eq!(tokens(&mut h, BOB), 1000, "outbid: returned");
        let Ok(Answer::Status(s)) = h.caller(CAROL).query(&Query::Status) else {
            panic!("no status");
        };
        assert!(s.leading);
        assert_eq!(h.caller(BOB).at(20).command(&Command::Close), Ok(350u64));
        assert_eq!(h.events::<Event>(), [Event::Closed { price: 350 }]);
        assert_eq!(tokens(&mut h, SELLER), 350);
        assert_eq!(tokens(&mut h, CAROL), 650);
        assert_eq!(h.query(&Query::Escrow), Ok(Answer::Tokens(0)));
    }

    #[test]
    fn a_bid_the_token_refuses_changes_nothing() {
        let mut h = harness();
        funded(&mut h, BOB, 100);
        assert_eq!(
            h.caller(BOB)
                .command::<_, u64>(&Command::Bid { amount: 101 }),
            Err("the token refused: approve the market's id for the bid first".into())
        );
        let Ok(Answer::Status(s)) = h.query(&Query::Status) else {
            panic!("no status");
        };
        assert_eq!((s.bids, s.leading), (0, false));
        assert_eq!(tokens(&mut h, BOB), 1000);
        // The seller cannot bid; nobody bids after the end.
        funded(&mut h, SELLER, 10);
        assert_eq!(
            h.caller(SELLER)
                .command::<_, u64>(&Command::Bid { amount: 5 }),
            Err("the seller does not bid".into())
        );
        assert_eq!(
            h.caller(BOB)
                .at(20)
                .command::<_, u64>(&Command::Bid { amount: 5 }),
            Err("bidding has ended".into())
        );
    }

    #[test]
    fn the_market_holds_its_escrow_under_its_own_id_on_the_token() {
        let mut h = harness();
        funded(&mut h, BOB, 50);
        h.caller(BOB)
            .command::<_, u64>(&Command::Bid { amount: 50 })
            .unwrap();
        let market = phalanx_contract_sdk::testing::component_id("");
        let mut key = b"balance/".to_vec();
        key.extend_from_slice(&market);
        assert_eq!(
            h.stored_in("token", &key),
            Some(50u64.to_le_bytes().to_vec())
        );
        assert_eq!(
            h.stored(&key),
            None,
            "the market's own state has no balances"
        );
    }
}
