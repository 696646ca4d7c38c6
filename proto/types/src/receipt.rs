//! What became of a command: the receipt a pRuntime worker keeps for each command it ran
//! or skipped, and hands only to the command's caller (and the pages of a contract's
//! events, [`EventPage`], for the readers the contract admits), sealed to the caller's reply key
//! under a signed [`crate::statement::Statement`] (so `phalanx verify answer` checks it as
//! it checks a query's answer).
//!
//! Encoding ([`Receipt`]'s [`Codec`], integers big-endian):
//!
//! ```text
//! sequence (u64) ‖ height (u64) ‖ status (u8) ‖ fuel used (u64)
//!   ‖ u32 len ‖ output ‖ u16 count ‖ (u32 len ‖ event)* ‖ u32 len ‖ message (UTF-8)
//! ```
//!
//! - `sequence`: the command's place in the contract's command log (0 for the first);
//! - `height`: the block that ordered it;
//! - `status`: [`Status`];
//! - `message`: why it did not apply (the contract's own abort message included: only the
//!   caller ever sees a receipt), empty when it applied.
//!
//! A caller asks for a receipt by its command's nonce ([`request`]): the registry
//! account's sequence number on the ledger, the caller's signed nonce on a Solidity
//! registry. The statement's query hash is [`request_hash`], domain-separated from a
//! query's, so a receipt's statement can never be read as a query's answer.

use crate::codec::{Codec, DecodeError, Reader, Writer};
use crate::statement::SALT_LEN;

/// Largest output a receipt carries (the runtime's default output bound).
pub const MAX_OUTPUT: usize = 64 * 1024;
/// Most events a receipt carries.
pub const MAX_EVENTS: usize = 64;
/// Largest event.
pub const MAX_EVENT: usize = 4096;
/// Largest message.
pub const MAX_MESSAGE: usize = 1024;

/// What became of a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Status {
    /// It ran; its state changes stand.
    Applied = 0,
    /// The contract refused it (called `abort`): nothing changed.
    Refused = 1,
    /// It ran out of fuel: nothing changed.
    OutOfFuel = 2,
    /// It trapped or broke a host bound: nothing changed.
    Failed = 3,
    /// It did not open (sealed to another key, epoch, sender or nonce): it never ran.
    Unopened = 4,
}

impl Status {
    /// Its name, as the CLI and JSON print it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Refused => "refused",
            Self::OutOfFuel => "out_of_fuel",
            Self::Failed => "failed",
            Self::Unopened => "unopened",
        }
    }

    fn from_code(c: u8) -> Option<Self> {
        Some(match c {
            0 => Self::Applied,
            1 => Self::Refused,
            2 => Self::OutOfFuel,
            3 => Self::Failed,
            4 => Self::Unopened,
            _ => return None,
        })
    }
}

/// A command's receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// Its place in the contract's command log.
    pub sequence: u64,
    /// The block that ordered it.
    pub height: u64,
    /// What became of it.
    pub status: Status,
    /// Fuel it used (all it had when it ran out).
    pub fuel_used: u64,
    /// The contract's output (empty unless applied).
    pub output: Vec<u8>,
    /// The events it emitted, in order (none unless applied).
    pub events: Vec<Vec<u8>>,
    /// Why it did not apply; empty when it did.
    pub message: String,
}

impl Codec for Receipt {
    const NAME: &'static str = "receipt";
    type Error = DecodeError;

    fn encode(&self, w: &mut Writer) {
        w.u64(self.sequence);
        w.u64(self.height);
        w.u8(self.status as u8);
        w.u64(self.fuel_used);
        w.bytes(&self.output);
        w.list(&self.events, |w, e| w.bytes(e));
        w.bytes(self.message.as_bytes());
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let sequence = r.u64("sequence")?;
        let height = r.u64("height")?;
        let status = Status::from_code(r.u8("status")?).ok_or_else(|| r.invalid("status"))?;
        let fuel_used = r.u64("fuel used")?;
        let output = r.bytes("output", MAX_OUTPUT)?.to_vec();
        let events = r.list("events", MAX_EVENTS, |r| {
            r.bytes("event", MAX_EVENT).map(<[u8]>::to_vec)
        })?;
        let message = r.bytes("message", MAX_MESSAGE)?;
        let message = String::from_utf8(message.to_vec()).map_err(|_| r.invalid("message"))?;
        Ok(Self {
            sequence,
            height,
            status,
            fuel_used,
            output,
            events,
            message,
        })
    }
}

/// The plaintext of a receipt request: the command's nonce (u64 big-endian).
pub fn request(command_nonce: u64) -> [u8; 8] {
    command_nonce.to_be_bytes()
}

/// The command nonce a receipt request names, if it is one.
pub fn parse_request(plain: &[u8]) -> Option<u64> {
    <[u8; 8]>::try_from(plain).ok().map(u64::from_be_bytes)
}

/// The salted commitment to a receipt request as a statement names it: as
/// [`crate::statement::query_hash`], under kind byte 3 instead of 1.
pub fn request_hash(
    caller_key: &[u8],
    nonce: &[u8; 16],
    salt: &[u8; SALT_LEN],
    request: &[u8],
) -> [u8; 32] {
    kind_hash(3, caller_key, nonce, salt, request)
}

/// The salted commitment to an events request ([`events_request`]): kind byte 4.
pub fn events_request_hash(
    caller_key: &[u8],
    nonce: &[u8; 16],
    salt: &[u8; SALT_LEN],
    request: &[u8],
) -> [u8; 32] {
    kind_hash(4, caller_key, nonce, salt, request)
}

/// The plaintext of an events request: the first command sequence wanted (u64
/// big-endian).
pub fn events_request(from: u64) -> [u8; 8] {
    from.to_be_bytes()
}

/// Most events in one page.
pub const MAX_PAGE_EVENTS: usize = 256;

/// One event of a contract: which command emitted it, where, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The command's place in the contract's command log.
    pub sequence: u64,
    /// The block that ordered the command.
    pub height: u64,
    /// The event's bytes.
    pub data: Vec<u8>,
}

/// A page of a contract's events, for a reader the contract lets read them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventPage {
    /// The events, in order, of commands from the request's sequence on.
    pub events: Vec<Event>,
    /// The sequence to ask from next (past the last command this page covers).
    pub next: u64,
    /// The first sequence the worker still holds events of (older ones are forgotten).
    pub oldest: u64,
}

impl Codec for EventPage {
    const NAME: &'static str = "event page";
    type Error = DecodeError;

    fn encode(&self, w: &mut Writer) {
        w.list(&self.events, |w, e| {
            w.u64(e.sequence);
            w.u64(e.height);
            w.bytes(&e.data);
        });
        w.u64(self.next);
        w.u64(self.oldest);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let events = r.list("events", MAX_PAGE_EVENTS, |r| {
            Ok::<_, DecodeError>(Event {
                sequence: r.u64("sequence")?,
                height: r.u64("height")?,
                data: r.bytes("event", MAX_EVENT)?.to_vec(),
            })
        })?;
        Ok(Self {
            events,
            next: r.u64("next")?,
            oldest: r.u64("oldest")?,
        })
    }
}

fn kind_hash(
    kind: u8,
    caller_key: &[u8],
    nonce: &[u8; 16],
    salt: &[u8; SALT_LEN],
    request: &[u8],
) -> [u8; 32] {
    crate::statement::request_hash(kind, caller_key, nonce, salt, request)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sample() -> Receipt {
        Receipt {
            sequence: 7,
            height: 42,
            status: Status::Refused,
            fuel_used: 1234,
            output: vec![],
            events: vec![b"one".to_vec(), vec![]],
            message: "bidding has ended".into(),
        }
    }

    /// A receipt decodes to itself; every truncation, an unknown status, trailing bytes
    /// and a message that is not UTF-8 are refused by name.
    #[test]
    fn receipts_decode_exactly_or_not_at_all() {
        let r = sample();
        let b = r.to_bytes();
        assert_eq!(Receipt::from_bytes(&b).unwrap(), r);
        for n in 0..b.len() {
            assert!(Receipt::from_bytes(&b[..n]).is_err(), "prefix {n}");
        }
        let mut bad = b.clone();
        bad[16] = 9;
        assert!(matches!(
            Receipt::from_bytes(&bad),
            Err(DecodeError::Invalid {
                field: "status",
                ..
            })
        ));
        assert!(Receipt::from_bytes(&[b.as_slice(), &[0]].concat()).is_err());
        let mut latin = r.clone();
        latin.message.clear();
        let mut b = latin.to_bytes();
        let n = b.len();
        b.splice(n - 4.., [0, 0, 0, 1, 0xff]);
        assert!(matches!(
            Receipt::from_bytes(&b),
            Err(DecodeError::Invalid {
                field: "message",
                ..
            })
        ));
    }

    /// An event page decodes to itself; every truncation is refused.
    #[test]
    fn event_pages_decode_exactly() {
        let page = EventPage {
            events: vec![Event {
                sequence: 3,
                height: 9,
                data: b"cast".to_vec(),
            }],
            next: 4,
            oldest: 0,
        };
        let b = page.to_bytes();
        assert_eq!(EventPage::from_bytes(&b).unwrap(), page);
        for n in 0..b.len() {
            assert!(EventPage::from_bytes(&b[..n]).is_err());
        }
    }

    /// A receipt request's commitment differs from a query's and an events request's
    /// over the same bytes.
    #[test]
    fn a_receipt_request_never_hashes_as_a_query() {
        let (k, n, s, q) = (b"key", [1; 16], [2; 32], request(5));
        assert_ne!(
            request_hash(k, &n, &s, &q),
            crate::statement::query_hash(k, &n, &s, &q)
        );
        assert_ne!(
            request_hash(k, &n, &s, &q),
            events_request_hash(k, &n, &s, &q)
        );
        assert_eq!(parse_request(&q), Some(5));
        assert_eq!(parse_request(&q[..7]), None);
    }
}
