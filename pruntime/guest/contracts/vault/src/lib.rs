//! Example contract: a private key-value vault with per-user access.
//!
//! Each caller keeps named secrets (a password, an API key, a document's key) that only
//! they and the callers they grant may read; the owner grants and revokes. Values travel
//! sealed to the contract's key (commands) or to the reader (answers), and the state is
//! sealed: the worker's operator sees none of it.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;
use phalanx_contract_sdk::borsh::{BorshDeserialize, BorshSerialize};
use phalanx_contract_sdk::{self as sdk, Map};

/// A secret: its owner and name.
#[derive(BorshSerialize, BorshDeserialize, Debug, Clone, PartialEq, Eq)]
#[borsh(crate = "phalanx_contract_sdk::borsh")]
pub struct Slot {
    /// The owner's caller id.
    pub owner: [u8; 32],
    /// Its name.
    pub name: String,
}

/// What owners send.
#[derive(BorshSerialize, BorshDeserialize, Debug, Clone, PartialEq, Eq)]
#[borsh(crate = "phalanx_contract_sdk::borsh")]
pub enum Command {
    /// Stores (or replaces) the caller's secret `name`.
    Put {
        /// Its name (at most 64 bytes).
        name: String,
        /// Its value (at most 16 KiB).
        value: Vec<u8>,
    },
    /// Lets `reader` read the caller's secret `name`.
    Grant {
        /// The secret.
        name: String,
        /// Who may read it.
        reader: [u8; 32],
    },
    /// Takes that back.
    Revoke {
        /// The secret.
        name: String,
        /// Who may no longer read it.
        reader: [u8; 32],
    },
    /// Deletes the caller's secret `name` (its grants go with it).
    Delete {
        /// The secret.
        name: String,
    },
}

/// What readers ask.
#[derive(BorshSerialize, BorshDeserialize, Debug, Clone, PartialEq, Eq)]
#[borsh(crate = "phalanx_contract_sdk::borsh")]
pub enum Query {
    /// A secret's value, for its owner or a granted reader.
    Get(Slot),
}

/// A secret as stored: its value and its version (grants name the version they were
/// given for, so deleting a secret revokes every grant at once).
#[derive(BorshSerialize, BorshDeserialize)]
#[borsh(crate = "phalanx_contract_sdk::borsh")]
struct Stored {
    value: Vec<u8>,
    version: u64,
}

const SECRETS: Map<Slot, Stored> = Map::new(b"secret/");
const GRANTS: Map<(Slot, [u8; 32]), u64> = Map::new(b"grant/");
const VERSIONS: Map<Slot, u64> = Map::new(b"version/");

sdk::contract!(execute = command, query = ask);

fn mine(name: String) -> Result<Slot, &'static str> {
    if name.is_empty() || name.len() > 64 {
        return Err("a name is 1 to 64 bytes");
    }
    Ok(Slot {
        owner: sdk::caller(),
        name,
    })
}

fn command(c: Command) -> Result<(), &'static str> {
    match c {
        Command::Put { name, value } => {
            if value.len() > 16 * 1024 {
                return Err("a value is at most 16 KiB");
            }
            let slot = mine(name)?;
            let version = match SECRETS.get(&slot) {
                Some(s) => s.version,
                None => VERSIONS.get(&slot).unwrap_or(0) + 1,
            };
            VERSIONS.insert(&slot, &version);
            SECRETS.insert(&slot, &Stored { value, version });
        }
        Command::Grant { name, reader } => {
            let slot = mine(name)?;
            let s = SECRETS.get(&slot).ok_or("no such secret")?;
            GRANTS.insert(&(slot, reader), &s.version);
        }
        Command::Revoke { name, reader } => {
            GRANTS.remove(&(mine(name)?, reader));
        }
        Command::Delete { name } => {
            let slot = mine(name)?;
            if !SECRETS.contains(&slot) {
                return Err("no such secret");
            }
            SECRETS.remove(&slot);
        }
    }
    Ok(())
}

fn ask(q: Query) -> Result<Vec<u8>, &'static str> {
    let Query::Get(slot) = q;
    // The same refusal whether the secret exists or not: a stranger learns nothing.
    let denied = "no such secret, or no access";
    let s = SECRETS.get(&slot).ok_or(denied)?;
    let me = sdk::caller();
    if me != slot.owner && GRANTS.get(&(slot.clone(), me)) != Some(s.version) {
        return Err(denied);
    }
    Ok(s.value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sdk::testing::Harness;

    const OWNER: [u8; 32] = [1; 32];
    const FRIEND: [u8; 32] = [2; 32];
    const STRANGER: [u8; 32] = [3; 32];

    fn get(h: &mut Harness, who: [u8; 32], name: &str) -> Result<Vec<u8>, String> {
        h.caller(who).query(&Query::Get(Slot {
            owner: OWNER,
            name: name.into(),
        }))
    }

    fn send(h: &mut Harness, who: [u8; 32], c: Command) -> Result<(), String> {
        h.caller(who).command(&c)
    }

    #[test]
    fn only_the_owner_and_those_granted_read_a_secret() {
        let mut h = Harness::new(Some(execute), Some(query));
        let put = |v: &[u8]| Command::Put {
            name: "api".into(),
            value: v.to_vec(),
        };
        send(&mut h, OWNER, put(b"s3cr3t")).unwrap();
        assert_eq!(get(&mut h, OWNER, "api"), Ok(b"s3cr3t".to_vec()));
        let denied = Err("no such secret, or no access".into());
        assert_eq!(get(&mut h, FRIEND, "api"), denied);
        // Absent and forbidden look the same to a stranger.
        assert_eq!(get(&mut h, STRANGER, "none"), denied);
        let grant = Command::Grant {
            name: "api".into(),
            reader: FRIEND,
        };
        send(&mut h, OWNER, grant.clone()).unwrap();
        assert_eq!(get(&mut h, FRIEND, "api"), Ok(b"s3cr3t".to_vec()));
        assert_eq!(get(&mut h, STRANGER, "api"), denied);
        // Replacing keeps the grant; revoking ends it.
        send(&mut h, OWNER, put(b"rotated")).unwrap();
        assert_eq!(get(&mut h, FRIEND, "api"), Ok(b"rotated".to_vec()));
        send(
            &mut h,
            OWNER,
            Command::Revoke {
                name: "api".into(),
                reader: FRIEND,
            },
        )
        .unwrap();
        assert_eq!(get(&mut h, FRIEND, "api"), denied);
        // A stranger's grant is on their own (absent) secret: refused, nothing changes.
        assert_eq!(
            send(&mut h, STRANGER, grant.clone()),
            Err("no such secret".into())
        );
        // Deleting ends every grant, also after the name is used again.
        send(&mut h, OWNER, grant).unwrap();
        send(&mut h, OWNER, Command::Delete { name: "api".into() }).unwrap();
        assert_eq!(get(&mut h, OWNER, "api"), denied);
        send(&mut h, OWNER, put(b"new")).unwrap();
        assert_eq!(get(&mut h, FRIEND, "api"), denied);
        assert_eq!(get(&mut h, OWNER, "api"), Ok(b"new".to_vec()));
    }

    #[test]
    fn bounds_are_kept() {
        let mut h = Harness::new(Some(execute), Some(query));
        let long = Command::Put {
            name: "x".repeat(65),
            value: alloc::vec![],
        };
        assert_eq!(
            send(&mut h, OWNER, long),
            Err("a name is 1 to 64 bytes".into())
        );
        let big = Command::Put {
            name: "big".into(),
            value: alloc::vec![0; 16 * 1024 + 1],
        };
        assert_eq!(
            send(&mut h, OWNER, big),
            Err("a value is at most 16 KiB".into())
        );
        // Garbage is no query; and the vault shows its events to nobody.
        assert_eq!(h.query_raw(&[9]), Err("malformed message".into()));
        assert!(!h.caller(OWNER).may_read_events());
    }
}
