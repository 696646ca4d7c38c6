//! Example contract: a confidential vote with a public tally.
//!
//! The organizer names the voters and the options; each voter votes once, sealed to the
//! contract's key, before the end height. Until the close nobody — not the organizer,
//! not the other voters, not the worker's operator — learns a vote or a running count;
//! after it, the tally is public and no single vote ever is (a voter can read back only
//! their own).
//!
//! Messages are `borsh` ([`Command`], [`Query`]); events are [`Event`]s.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

use alloc::vec::Vec;
use phalanx_contract_sdk::borsh::{BorshDeserialize, BorshSerialize};
use phalanx_contract_sdk::{self as sdk, Item, Map};

/// What voters and the organizer send.
#[derive(BorshSerialize, BorshDeserialize, Debug, Clone, PartialEq, Eq)]
#[borsh(crate = "phalanx_contract_sdk::borsh")]
pub enum Command {
    /// Opens the vote (once): `options` choices (2 to 16), the eligible voters' caller
    /// ids, votes accepted below height `end`.
    Open {
        /// How many choices.
        options: u8,
        /// Who may vote.
        voters: Vec<[u8; 32]>,
        /// The first height at which votes are refused.
        end: u64,
    },
    /// Votes for `choice` (0-based), once.
    Vote {
        /// The choice.
        choice: u8,
    },
    /// Closes the vote (anyone, at or after the end): the tally becomes public.
    Close,
}

/// What anyone may ask.
#[derive(BorshSerialize, BorshDeserialize, Debug, Clone, PartialEq, Eq)]
#[borsh(crate = "phalanx_contract_sdk::borsh")]
pub enum Query {
    /// [`Status`].
    Status,
    /// The caller's own vote, if any.
    MyVote,
    /// The tally, once closed.
    Tally,
}

/// The vote's public status.
#[derive(BorshSerialize, BorshDeserialize, Debug, Clone, PartialEq, Eq)]
#[borsh(crate = "phalanx_contract_sdk::borsh")]
pub struct Status {
    /// How many choices.
    pub options: u8,
    /// The end height.
    pub end: u64,
    /// Eligible voters.
    pub eligible: u32,
    /// Votes cast so far.
    pub cast: u32,
    /// Whether it is closed.
    pub closed: bool,
}

/// What the contract emits.
#[derive(BorshSerialize, BorshDeserialize, Debug, Clone, PartialEq, Eq)]
#[borsh(crate = "phalanx_contract_sdk::borsh")]
pub enum Event {
    /// A vote was cast (by whom and for what stays sealed).
    Cast,
    /// The vote closed with this tally.
    Closed {
        /// Votes per choice.
        tally: Vec<u64>,
    },
}

const STATUS: Item<Status> = Item::new(b"status");
const ELIGIBLE: Map<[u8; 32], bool> = Map::new(b"eligible/");
const VOTES: Map<[u8; 32], u8> = Map::new(b"vote/");
const TALLY: Item<Vec<u64>> = Item::new(b"tally");

sdk::contract!(execute = command, query = ask);
// The events say only that a vote was cast, and the tally at the close: anyone may
// follow them.
sdk::events_readable_by!(anyone);

fn anyone(_: &[u8; 32]) -> bool {
    true
}

fn command(c: Command) -> Result<(), &'static str> {
    match c {
        Command::Open {
            options,
            voters,
            end,
        } => open(options, &voters, end),
        Command::Vote { choice } => vote(choice),
        Command::Close => close(),
    }
}

fn open(options: u8, voters: &[[u8; 32]], end: u64) -> Result<(), &'static str> {
    if STATUS.get().is_some() {
        return Err("the vote is already open");
    }
    if !(2..=16).contains(&options) {
        return Err("between 2 and 16 options");
    }
    if voters.is_empty() || voters.len() > 1000 {
        return Err("between 1 and 1000 voters");
    }
    if end <= sdk::block_height() {
        return Err("the end height has passed");
    }
    for v in voters {
        ELIGIBLE.insert(v, &true);
    }
    STATUS.set(&Status {
        options,
        end,
        eligible: u32::try_from(voters.len()).unwrap_or(u32::MAX),
        cast: 0,
        closed: false,
    });
    TALLY.set(&alloc::vec![0; usize::from(options)]);
    Ok(())
}

fn vote(choice: u8) -> Result<(), &'static str> {
    let mut status = STATUS.get().ok_or("the vote is not open")?;
    if sdk::block_height() >= status.end {
        return Err("voting has ended");
    }
    let me = sdk::caller();
    if !ELIGIBLE.contains(&me) {
        return Err("not an eligible voter");
    }
    if VOTES.contains(&me) {
        return Err("already voted");
    }
    if choice >= status.options {
        return Err("no such choice");
    }
    let mut tally = TALLY.get().unwrap_or_default();
    let slot = tally.get_mut(usize::from(choice)).ok_or("no such choice")?;
    *slot += 1;
    TALLY.set(&tally);
    VOTES.insert(&me, &choice);
    status.cast += 1;
    STATUS.set(&status);
    sdk::emit_typed(&Event::Cast);
    Ok(())
}

fn close() -> Result<(), &'static str> {
    let mut status = STATUS.get().ok_or("the vote is not open")?;
    if status.closed {
        return Err("already closed");
    }
    if sdk::block_height() < status.end {
        return Err("voting has not ended");
    }
    status.closed = true;
    STATUS.set(&status);
    sdk::emit_typed(&Event::Closed {
        tally: TALLY.get().unwrap_or_default(),
    });
    Ok(())
}

/// The answer to a [`Query`].
#[derive(BorshSerialize, BorshDeserialize, Debug, Clone, PartialEq, Eq)]
#[borsh(crate = "phalanx_contract_sdk::borsh")]
pub enum Answer {
    /// To [`Query::Status`].
    Status(Status),
    /// To [`Query::MyVote`].
    MyVote(Option<u8>),
    /// To [`Query::Tally`].
    Tally(Vec<u64>),
}

fn ask(q: Query) -> Result<Answer, &'static str> {
    let status = STATUS.get().ok_or("the vote is not open")?;
    Ok(match q {
        Query::Status => Answer::Status(status),
        Query::MyVote => Answer::MyVote(VOTES.get(&sdk::caller())),
        Query::Tally if status.closed => Answer::Tally(TALLY.get().unwrap_or_default()),
        Query::Tally => return Err("the tally is sealed until the close"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sdk::testing::Harness;

    const ALICE: [u8; 32] = [1; 32];
    const BOB: [u8; 32] = [2; 32];
    const CAROL: [u8; 32] = [3; 32];
    const MALLORY: [u8; 32] = [9; 32];

    fn harness() -> Harness {
        let mut h = Harness::new(Some(execute), Some(query)).with_events_readers(may_read_events);
        h.at(10)
            .caller(ALICE)
            .command::<_, ()>(&Command::Open {
                options: 3,
                voters: alloc::vec![ALICE, BOB, CAROL],
                end: 20,
            })
            .unwrap();
        h
    }

    fn vote(h: &mut Harness, who: [u8; 32], choice: u8) -> Result<(), String> {
        h.caller(who).command(&Command::Vote { choice })
    }

    #[test]
    fn the_tally_is_sealed_until_the_close_and_each_vote_forever() {
        let mut h = harness();
        vote(&mut h, ALICE, 1).unwrap();
        assert_eq!(h.events::<Event>(), [Event::Cast]);
        vote(&mut h, BOB, 1).unwrap();
        assert_eq!(
            h.query::<_, Answer>(&Query::Tally),
            Err("the tally is sealed until the close".into())
        );
        assert_eq!(
            h.caller(BOB).query(&Query::MyVote),
            Ok(Answer::MyVote(Some(1)))
        );
        assert_eq!(
            h.caller(CAROL).query(&Query::MyVote),
            Ok(Answer::MyVote(None))
        );
        assert_eq!(
            h.command::<_, ()>(&Command::Close),
            Err("voting has not ended".into())
        );
        vote(&mut h, CAROL, 2).unwrap();
        h.at(20)
            .caller(MALLORY)
            .command::<_, ()>(&Command::Close)
            .unwrap();
        assert_eq!(
            h.events::<Event>(),
            [Event::Closed {
                tally: alloc::vec![0, 2, 1]
            }]
        );
        assert_eq!(
            h.query(&Query::Tally),
            Ok(Answer::Tally(alloc::vec![0, 2, 1]))
        );
    }

    /// The events are public: anyone, eligible or not, may read them.
    #[test]
    fn anyone_reads_the_events() {
        let mut h = harness();
        assert!(h.caller(MALLORY).may_read_events());
        assert!(h.caller(ALICE).may_read_events());
    }

    #[test]
    fn only_eligible_voters_vote_once_in_time_for_a_real_choice() {
        let mut h = harness();
        assert_eq!(
            vote(&mut h, MALLORY, 0),
            Err("not an eligible voter".into())
        );
        assert_eq!(vote(&mut h, ALICE, 3), Err("no such choice".into()));
        vote(&mut h, ALICE, 0).unwrap();
        assert_eq!(vote(&mut h, ALICE, 1), Err("already voted".into()));
        assert_eq!(
            h.at(20)
                .caller(BOB)
                .command::<_, ()>(&Command::Vote { choice: 0 }),
            Err("voting has ended".into())
        );
        // A refused command changes nothing: Bob's vote is not recorded.
        assert_eq!(
            h.caller(BOB).query(&Query::MyVote),
            Ok(Answer::MyVote(None))
        );
        let Ok(Answer::Status(s)) = h.query(&Query::Status) else {
            panic!("no status");
        };
        assert_eq!((s.cast, s.eligible, s.closed), (1, 3, false));
        // Garbage is no message.
        assert_eq!(h.command_raw(&[7, 7]), Err("malformed message".into()));
    }
}
