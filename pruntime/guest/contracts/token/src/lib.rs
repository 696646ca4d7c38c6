//! Example component: a confidential token, for other contracts to carry and call
//! (`phalanx contract bundle`). Balances and allowances are sealed state: each holder
//! reads only their own. A holder is any caller id: a user, or a contract's code that
//! calls it (that code's [`sdk::self_id`]), so a contract can hold tokens in escrow
//! and pay them out.
//!
//! - [`Command::Claim`]: the faucet, 1000 tokens once per holder (a demo token:
//!   anyone may start with some);
//! - [`Command::Transfer`]: moves the caller's own tokens;
//! - [`Command::Approve`]: lets a spender take up to an amount of the caller's tokens;
//! - [`Command::Take`]: the spender takes approved tokens for itself.
#![cfg_attr(not(test), no_std)]
// Without `entry` only the messages are used (by a contract that carries the token).
#![cfg_attr(not(feature = "entry"), allow(dead_code))]

extern crate alloc;

use phalanx_contract_sdk::borsh::{BorshDeserialize, BorshSerialize};
use phalanx_contract_sdk::{self as sdk, Map};

/// What holders send.
#[derive(BorshSerialize, BorshDeserialize, Debug, Clone, PartialEq, Eq)]
#[borsh(crate = "phalanx_contract_sdk::borsh")]
pub enum Command {
    /// [`FAUCET`] tokens to the caller, once.
    Claim,
    /// `amount` of the caller's tokens to `to`.
    Transfer {
        /// Who receives.
        to: [u8; 32],
        /// How many.
        amount: u64,
    },
    /// `spender` may take up to `amount` of the caller's tokens (replacing any earlier
    /// approval).
    Approve {
        /// Who may take.
        spender: [u8; 32],
        /// Up to how many.
        amount: u64,
    },
    /// Moves `amount` of `from`'s tokens to the caller, within `from`'s approval.
    Take {
        /// Whose tokens.
        from: [u8; 32],
        /// How many.
        amount: u64,
    },
}

/// What holders ask (each about their own tokens).
#[derive(BorshSerialize, BorshDeserialize, Debug, Clone, PartialEq, Eq)]
#[borsh(crate = "phalanx_contract_sdk::borsh")]
pub enum Query {
    /// The caller's balance.
    Balance,
    /// How many of the caller's tokens `spender` may still take.
    Allowance {
        /// The spender.
        spender: [u8; 32],
    },
}

/// Tokens a claim gives.
pub const FAUCET: u64 = 1000;

const BALANCES: Map<[u8; 32], u64> = Map::new(b"balance/");
const CLAIMED: Map<[u8; 32], bool> = Map::new(b"claimed/");
const ALLOWANCES: Map<([u8; 32], [u8; 32]), u64> = Map::new(b"allowance/");

#[cfg(feature = "entry")]
sdk::contract!(execute = command, query = ask);

fn balance(who: &[u8; 32]) -> u64 {
    BALANCES.get(who).unwrap_or(0)
}

fn command(c: Command) -> Result<u64, &'static str> {
    let me = sdk::caller();
    match c {
        Command::Claim => {
            if CLAIMED.contains(&me) {
                return Err("already claimed");
            }
            CLAIMED.insert(&me, &true);
            credit(&me, FAUCET)?;
            Ok(balance(&me))
        }
        Command::Transfer { to, amount } => {
            debit(&me, amount)?;
            credit(&to, amount)?;
            Ok(balance(&me))
        }
        Command::Approve { spender, amount } => {
            ALLOWANCES.insert(&(me, spender), &amount);
            Ok(amount)
        }
        Command::Take { from, amount } => {
            let left = ALLOWANCES
                .get(&(from, me))
                .unwrap_or(0)
                .checked_sub(amount)
                .ok_or("more than approved")?;
            ALLOWANCES.insert(&(from, me), &left);
            debit(&from, amount)?;
            credit(&me, amount)?;
            Ok(balance(&me))
        }
    }
}

fn debit(who: &[u8; 32], amount: u64) -> Result<(), &'static str> {
    let left = balance(who)
        .checked_sub(amount)
        .ok_or("not enough tokens")?;
    BALANCES.insert(who, &left);
    Ok(())
}

fn credit(who: &[u8; 32], amount: u64) -> Result<(), &'static str> {
    let total = balance(who).checked_add(amount).ok_or("balance overflow")?;
    BALANCES.insert(who, &total);
    Ok(())
}

fn ask(q: Query) -> Result<u64, &'static str> {
    let me = sdk::caller();
    Ok(match q {
        Query::Balance => balance(&me),
        Query::Allowance { spender } => ALLOWANCES.get(&(me, spender)).unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use phalanx_contract_sdk::testing::Harness;

    const ALICE: [u8; 32] = [1; 32];
    const BOB: [u8; 32] = [2; 32];
    const SHOP: [u8; 32] = [3; 32];

    fn harness() -> Harness {
        Harness::new(Some(execute), Some(query))
    }

    #[test]
    fn claims_once_and_moves_only_what_it_holds() {
        let mut h = harness();
        assert_eq!(h.caller(ALICE).command(&Command::Claim), Ok(FAUCET));
        assert_eq!(
            h.command::<_, u64>(&Command::Claim),
            Err("already claimed".into())
        );
        let to_bob = Command::Transfer {
            to: BOB,
            amount: 300,
        };
        assert_eq!(h.command(&to_bob), Ok(700u64));
        assert_eq!(h.caller(BOB).query(&Query::Balance), Ok(300u64));
        let too_much = Command::Transfer {
            to: ALICE,
            amount: 301,
        };
        assert_eq!(
            h.command::<_, u64>(&too_much),
            Err("not enough tokens".into())
        );
        assert_eq!(
            h.query(&Query::Balance),
            Ok(300u64),
            "a refusal moves nothing"
        );
    }

    #[test]
    fn a_spender_takes_what_was_approved_and_no_more() {
        let mut h = harness();
        h.caller(ALICE).command::<_, u64>(&Command::Claim).unwrap();
        let take = |amount| Command::Take {
            from: ALICE,
            amount,
        };
        assert_eq!(
            h.caller(SHOP).command::<_, u64>(&take(10)),
            Err("more than approved".into())
        );
        let approve = Command::Approve {
            spender: SHOP,
            amount: 50,
        };
        h.caller(ALICE).command::<_, u64>(&approve).unwrap();
        assert_eq!(h.caller(SHOP).command(&take(30)), Ok(30u64));
        assert_eq!(
            h.caller(ALICE).query(&Query::Allowance { spender: SHOP }),
            Ok(20u64)
        );
        assert_eq!(
            h.caller(SHOP).command::<_, u64>(&take(21)),
            Err("more than approved".into())
        );
        assert_eq!(h.caller(ALICE).query(&Query::Balance), Ok(970u64));
    }
}
