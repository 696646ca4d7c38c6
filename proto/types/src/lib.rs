//! # phalanx-types
//!
//! The small things every Phalanx crate shares, so each has one name:
//!
//! - [`tag`]: the one registry of domain tags. Every hash, KDF input, signature and MAC
//!   in Phalanx starts from one of these, so no value computed for one purpose can be
//!   replayed as another; a test checks that no two are equal or prefix one another.
//! - [`codec`]: the one binary codec: a bounds-checked [`codec::Reader`] (big-endian for
//!   Phalanx's messages, little-endian for Intel's), a [`codec::Writer`], the
//!   [`codec::Codec`] trait pairing each type's encoder and decoder, and the typed
//!   [`codec::DecodeError`].
//! - [`contract`]: a contract's code hash, id, tenant and caller ids, computed once.
//! - [`Epoch`]: the one name of a key epoch, in every crate (the protobuf messages carry
//!   it as `u64` and convert at the edge).
//! - [`TenantId`]: the one name of a tenant (what a worker's keys are derived under).
//! - [`hex`](mod@hex): fixed-size byte strings as lower-case hex in JSON ([`hex::Hex`]),
//!   parsed strictly (exact length, optional `0x`).
//!
//! - [`statement`]: what a pRuntime worker signs for each query answer, and the hashes
//!   of query and answer it names (the format users verify).
//! - [`receipt`]: what became of a command (status, fuel, output, events), as its
//!   caller fetches it under a statement.
//! - [`home`]: where data goes when no path is given (`$PHALANX_HOME`, else
//!   `~/.phalanx`; never the working directory), and `~/` in configured paths.
//! - [`secret_file`]: the one way secret files are created (0600, never overwritten,
//!   synced) and read (zeroized, minimum lengths), admin secrets included.
//! - `shutdown` (feature `signal`): the one shutdown signal (Ctrl-C or SIGTERM) of every
//!   Phalanx process.
//!
//! No I/O, no async runtime, five dependencies (serde, hex, sha2, thiserror, zeroize) by default.
//!
//! **Must never depend on** any other crate of the workspace: everything stands on it
//! (layer 0).

pub mod codec;
pub mod contract;
#[cfg(feature = "p256")]
pub mod ecdsa;
#[cfg(feature = "config")]
pub mod env_config;
pub mod epoch;
pub use epoch::Epoch;
pub mod hex;
pub mod home;
pub mod process;
pub mod receipt;
pub mod secret_file;
pub mod statement;

/// The wall clock in unix seconds: the one clock of every Phalanx process (libraries
/// take `now` as an argument; binaries pass this).
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// An error and its causes on one line, each cause once: a cause whose text the line
/// already ends with (a message that quotes its source; tonic's "transport error:
/// transport error") is not repeated, and an empty one is skipped. What every binary
/// prints, and what an error turned into text keeps of its causes.
pub fn causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut line = String::new();
    let mut next = Some(e);
    while let Some(cause) = next {
        let text = cause.to_string();
        if !text.is_empty() && !line.ends_with(&text) {
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&text);
        }
        next = cause.source();
    }
    line
}

#[cfg(feature = "signal")]
pub mod shutdown;
pub mod tag;
pub mod tenant;
pub use tenant::TenantId;

#[cfg(test)]
mod tests {
    /// An error with a message and an optional cause.
    #[derive(Debug)]
    struct E(&'static str, Option<Box<E>>);

    impl std::fmt::Display for E {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for E {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|e| e as _)
        }
    }

    fn chain(texts: &[&'static str]) -> E {
        texts
            .iter()
            .rev()
            .fold(None, |cause, t| Some(E(t, cause.map(Box::new))))
            .unwrap()
    }

    #[test]
    fn each_cause_is_said_once() {
        // tonic's own repetition, and a message that quotes its source.
        let e = chain(&["url: transport error", "transport error", "", "refused"]);
        assert_eq!(super::causes(&e), "url: transport error: refused");
        let e = chain(&["nope.secret: not found", "not found"]);
        assert_eq!(super::causes(&e), "nope.secret: not found");
        assert_eq!(super::causes(&chain(&["a", "b"])), "a: b");
    }
}
