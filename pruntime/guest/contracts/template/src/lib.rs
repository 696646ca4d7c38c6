//! The contract template: a guestbook. Anyone signs it once with a short note; the
//! number of signatures is public, a note is readable only by its writer. Copy this
//! directory to start a contract (README, "Write your first contract").
//!
//! - [`Command`]s arrive sealed to the contract's key, in the registry's order; a
//!   handler's `Err` refuses the command (its receipt says `refused` with the text) and
//!   nothing it wrote stands.
//! - [`Query`]s are read-only and answered to the caller alone.
//! - State lives in [`Item`]s and [`Map`]s; the worker seals it.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

use alloc::string::String;
use phalanx_contract_sdk::borsh::{BorshDeserialize, BorshSerialize};
use phalanx_contract_sdk::{self as sdk, Item, Map};

/// What callers send (borsh: the variant's index, then its fields).
#[derive(BorshSerialize, BorshDeserialize, Debug, Clone, PartialEq, Eq)]
#[borsh(crate = "phalanx_contract_sdk::borsh")]
pub enum Command {
    /// Signs the guestbook with a note of at most 140 bytes, once.
    Sign {
        /// The note.
        note: String,
    },
}

/// What callers ask.
#[derive(BorshSerialize, BorshDeserialize, Debug, Clone, PartialEq, Eq)]
#[borsh(crate = "phalanx_contract_sdk::borsh")]
pub enum Query {
    /// How many have signed (public).
    Count,
    /// The caller's own note.
    MyNote,
}

const COUNT: Item<u64> = Item::new(b"count");
const NOTES: Map<[u8; 32], String> = Map::new(b"note/");

sdk::contract!(execute = command, query = ask);

fn command(c: Command) -> Result<u64, &'static str> {
    let Command::Sign { note } = c;
    if note.len() > 140 {
        return Err("a note is at most 140 bytes");
    }
    let me = sdk::caller();
    if NOTES.contains(&me) {
        return Err("already signed");
    }
    NOTES.insert(&me, &note);
    let count = COUNT.get().unwrap_or(0) + 1;
    COUNT.set(&count);
    sdk::emit_typed(&count);
    Ok(count)
}

/// The answer to a [`Query`].
#[derive(BorshSerialize, BorshDeserialize, Debug, Clone, PartialEq, Eq)]
#[borsh(crate = "phalanx_contract_sdk::borsh")]
pub enum Answer {
    /// To [`Query::Count`].
    Count(u64),
    /// To [`Query::MyNote`].
    MyNote(Option<String>),
}

fn ask(q: Query) -> Result<Answer, &'static str> {
    Ok(match q {
        Query::Count => Answer::Count(COUNT.get().unwrap_or(0)),
        Query::MyNote => Answer::MyNote(NOTES.get(&sdk::caller())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sdk::testing::Harness;

    #[test]
    fn each_caller_signs_once_and_reads_only_their_note() {
        let mut h = Harness::new(Some(execute), Some(query));
        let sign = |note: &str| Command::Sign { note: note.into() };
        assert_eq!(h.caller([1; 32]).command(&sign("hello")), Ok(1u64));
        assert_eq!(h.events::<u64>(), [1]);
        assert_eq!(
            h.command::<_, u64>(&sign("again")),
            Err("already signed".into())
        );
        assert_eq!(h.caller([2; 32]).command(&sign("hi")), Ok(2u64));
        assert_eq!(h.query(&Query::Count), Ok(Answer::Count(2)));
        assert_eq!(
            h.caller([1; 32]).query(&Query::MyNote),
            Ok(Answer::MyNote(Some("hello".into())))
        );
        assert_eq!(
            h.caller([3; 32]).query(&Query::MyNote),
            Ok(Answer::MyNote(None))
        );
    }
}
