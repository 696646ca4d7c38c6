//! # phalanx-contract-sdk
//!
//! Write a Phalanx confidential contract in Rust: `#![no_std]`, built for
//! `wasm32-unknown-unknown`, run by the pRuntime's deterministic runtime
//! (`phalanx-contract`). The host ABI (import module `phalanx`) appears here as safe
//! functions; this crate is the only place with `unsafe`, each block a call into the
//! host or the allocator, with the reason beside it.
//!
//! A contract exports `execute` (commands, in chain order; may write state and emit
//! events) and/or `query` (read-only). Typed, with [`contract!`]: messages are enums
//! in `borsh`, state is [`Map`]s and [`Item`]s, a handler's `Err` aborts the call (and
//! nothing it wrote stands):
//!
//! ```ignore
//! #![cfg_attr(not(test), no_std)]
//! use phalanx_contract_sdk::{self as sdk, borsh::{BorshDeserialize, BorshSerialize}, Item};
//!
//! #[derive(BorshSerialize, BorshDeserialize)]
//! #[borsh(crate = "sdk::borsh")]
//! pub enum Command { Greet(alloc::string::String) }
//!
//! const GREETING: Item<alloc::string::String> = Item::new(b"greeting");
//! sdk::contract!(execute = run, query = look);
//!
//! fn run(c: Command) -> Result<(), &'static str> {
//!     let Command::Greet(text) = c;
//!     GREETING.set(&text);
//!     Ok(())
//! }
//! fn look(_: ()) -> Result<alloc::string::String, &'static str> {
//!     GREETING.get().ok_or("nobody greeted yet")
//! }
//! ```
//!
//! Over raw bytes, [`entry!`] exports plain functions that use [`input`] and
//! [`output`] themselves (the counter and the auction do).
//!
//! **Calling other contracts.** A contract carries the contracts it calls as
//! components (`phalanx contract bundle`) and calls them by name, synchronously:
//! [`call`] / [`call_typed`] (the callee sees [`self_id`] as its caller) and
//! [`forward`] / [`forward_typed`] (hands on the user's own input, as that user). A
//! failed callee changes nothing and returns [`CallError::Failed`]. The market example
//! carries the token.
//!
//! **Testing.** Built for any target but `wasm32`, the host functions are a fake host
//! ([`testing`]): `cargo test` in a contract's crate runs its code natively against a
//! fake chain and caller ([`testing::Harness`]), aborts rolled back as on a worker.
//!
//! Floating point is refused by the host (every worker must compute the same thing):
//! do not use `f32`/`f64`. Memory comes from `dlmalloc` (the allocator of Rust's own
//! wasm32 std), which frees; each call runs in a fresh instance, and the host caps its
//! memory.
#![no_std]

extern crate alloc;

use alloc::vec;
use alloc::vec::Vec;

mod host;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;
mod typed;
/// The encoding of typed messages, events and storage values (re-exported: derive
/// `BorshSerialize` and `BorshDeserialize` through `phalanx_contract_sdk::borsh`).
pub use borsh;
pub use typed::{Item, Map, call_typed, dispatch, emit_typed, forward_typed};

fn len_i32(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// The call's input (the decrypted command or query).
pub fn input() -> Vec<u8> {
    // SAFETY: host calls with no arguments, or with a buffer of exactly the length the
    // host reported; the host bounds-checks every pointer against linear memory.
    unsafe {
        let n = usize::try_from(host::input_len()).unwrap_or(0);
        let mut buf = vec![0u8; n];
        host::input_read(buf.as_mut_ptr());
        buf
    }
}

/// Sets the call's output (at most once per call).
pub fn output(bytes: &[u8]) {
    // SAFETY: a valid slice; the host copies it out.
    unsafe { host::output(bytes.as_ptr(), len_i32(bytes.len())) }
}

/// Who called: a 32-byte id the worker derives from the sender's key.
pub fn caller() -> [u8; 32] {
    let mut id = [0u8; 32];
    // SAFETY: the host writes exactly 32 bytes.
    unsafe { host::caller(id.as_mut_ptr()) };
    id
}

/// The chain height the call runs at.
pub fn block_height() -> u64 {
    // SAFETY: no arguments.
    u64::try_from(unsafe { host::block_height() }).unwrap_or(0)
}

/// Records an event (commands only).
pub fn emit(event: &[u8]) {
    // SAFETY: a valid slice; the host copies it out.
    unsafe { host::emit_event(event.as_ptr(), len_i32(event.len())) }
}

/// Stops the call: nothing it wrote stands, the message is its error.
pub fn abort(message: &str) -> ! {
    // SAFETY: a valid slice; the host never returns.
    unsafe { host::abort(message.as_ptr(), len_i32(message.len())) }
}

/// The contract's signature over `message`, by its key the registry publishes (ECDSA
/// P-256 over `SHA-256("phalanx/v1/contract-signature" ‖ contract id ‖ message)`), and
/// that key's epoch: anyone checks it against the registry's key of that epoch — an
/// EVM contract with P256VERIFY — with no oracle in between. Every worker computes the
/// same signature.
pub fn sign(message: &[u8]) -> (u64, [u8; 64]) {
    let mut sig = [0u8; 64];
    // SAFETY: a valid slice in; the host writes exactly 64 bytes out.
    let epoch = unsafe { host::sign(message.as_ptr(), len_i32(message.len()), sig.as_mut_ptr()) };
    (u64::try_from(epoch).unwrap_or(0), sig)
}

/// 32 random bytes (commands only): the same on every worker, unpredictable to anyone
/// without the contract's secret, the sender included. Each call draws new bytes.
pub fn random() -> [u8; 32] {
    let mut out = [0u8; 32];
    // SAFETY: the host writes exactly 32 bytes.
    unsafe { host::random(out.as_mut_ptr()) };
    out
}

/// Why a call to a component gave no output (the host's negative statuses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallError {
    /// The callee aborted, trapped, ran out of fuel or broke a bound: nothing it did
    /// stands.
    Failed,
    /// This contract carries no component of that name.
    NoComponent,
    /// The callee is already on the call stack (no module runs twice at once).
    Reentrant,
    /// Four calls deep already.
    TooDeep,
    /// The callee's output does not decode as the type asked for ([`call_typed`]).
    BadOutput,
}

impl CallError {
    fn from_status(status: i32) -> Self {
        match status {
            -2 => Self::NoComponent,
            -3 => Self::Reentrant,
            -4 => Self::TooDeep,
            _ => Self::Failed,
        }
    }
}

impl AsRef<str> for CallError {
    fn as_ref(&self) -> &str {
        match self {
            Self::Failed => "the component refused",
            Self::NoComponent => "no such component",
            Self::Reentrant => "the component is already running",
            Self::TooDeep => "calls nested too deep",
            Self::BadOutput => "the component's output does not decode",
        }
    }
}

/// Calls this contract's component `name` with `input`, synchronously: its output. The
/// component sees this code's [`self_id`] as its caller, spends this call's fuel, and
/// keeps its own state; if it fails, nothing it did stands and this call goes on.
pub fn call(name: &str, input: &[u8]) -> Result<Vec<u8>, CallError> {
    // SAFETY: pointers and lengths of live slices.
    let n = unsafe {
        host::call(
            name.as_ptr(),
            len_i32(name.len()),
            input.as_ptr(),
            len_i32(input.len()),
        )
    };
    returned(n)
}

/// Hands this call's own input from byte `offset` on to component `name`, as this
/// call's own caller: a user's command reaching a component through the contract
/// (with a `borsh` enum, `offset` 1 skips the variant that routes it).
pub fn forward(name: &str, offset: usize) -> Result<Vec<u8>, CallError> {
    // SAFETY: a live slice's pointer and length.
    let n = unsafe { host::forward(name.as_ptr(), len_i32(name.len()), len_i32(offset)) };
    returned(n)
}

fn returned(status: i32) -> Result<Vec<u8>, CallError> {
    let Ok(len) = usize::try_from(status) else {
        return Err(CallError::from_status(status));
    };
    let mut out = vec![0u8; len];
    if len > 0 {
        // SAFETY: the host writes exactly the `len` bytes it returned.
        unsafe { host::call_output(out.as_mut_ptr()) };
    }
    Ok(out)
}

/// The id the components this code calls see as their caller (where a token, say,
/// keeps this contract's balance).
pub fn self_id() -> [u8; 32] {
    let mut id = [0u8; 32];
    // SAFETY: a 32-byte buffer.
    unsafe { host::self_id(id.as_mut_ptr()) };
    id
}

/// Keys the contract derives for a purpose: its own, stable across key epochs, never
/// leaving the workers.
pub mod keys {
    use super::{host, len_i32};
    use alloc::vec::Vec;

    /// A derived key's curve.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Curve {
        /// NIST P-256: signatures `r ‖ s` (64 bytes).
        P256 = 1,
        /// secp256k1 (Ethereum): signatures `r ‖ s ‖ v` (65 bytes, `v` 0 or 1).
        Secp256k1 = 2,
    }

    /// The public key for `purpose` (at most 64 bytes) on `curve`, SEC1 uncompressed.
    pub fn public(curve: Curve, purpose: &[u8]) -> [u8; 65] {
        let mut out = [0u8; 65];
        // SAFETY: a valid slice in; the host writes exactly 65 bytes out.
        unsafe {
            host::derived_key(
                curve as i32,
                purpose.as_ptr(),
                len_i32(purpose.len()),
                out.as_mut_ptr(),
            )
        };
        out
    }

    /// That key's signature over a 32-byte digest the contract computed.
    pub fn sign(curve: Curve, purpose: &[u8], digest: &[u8; 32]) -> Vec<u8> {
        let mut out = [0u8; 65];
        // SAFETY: valid slices in; the host writes at most 65 bytes and says how many.
        let n = unsafe {
            host::derived_sign(
                curve as i32,
                purpose.as_ptr(),
                len_i32(purpose.len()),
                digest.as_ptr(),
                out.as_mut_ptr(),
            )
        };
        out.get(..usize::try_from(n).unwrap_or(0))
            .unwrap_or_default()
            .to_vec()
    }
}

/// The contract's key-value state.
pub mod storage {
    use super::{host, len_i32};
    use alloc::vec;
    use alloc::vec::Vec;

    /// A value, or `None`.
    pub fn get(key: &[u8]) -> Option<Vec<u8>> {
        let mut buf = vec![0u8; 64];
        loop {
            // SAFETY: valid slices; the host copies at most `buf.len()` bytes.
            let n = unsafe {
                host::storage_get(
                    key.as_ptr(),
                    len_i32(key.len()),
                    buf.as_mut_ptr(),
                    len_i32(buf.len()),
                )
            };
            let n = usize::try_from(n).ok()?;
            if n <= buf.len() {
                buf.truncate(n);
                return Some(buf);
            }
            buf = vec![0u8; n];
        }
    }

    /// Writes a value (commands only).
    pub fn set(key: &[u8], value: &[u8]) {
        // SAFETY: valid slices; the host copies them.
        unsafe {
            host::storage_set(
                key.as_ptr(),
                len_i32(key.len()),
                value.as_ptr(),
                len_i32(value.len()),
            )
        }
    }

    /// Removes a value (commands only).
    pub fn remove(key: &[u8]) {
        // SAFETY: a valid slice; the host copies it.
        unsafe { host::storage_remove(key.as_ptr(), len_i32(key.len())) }
    }

    /// A little-endian u64, or 0.
    pub fn get_u64(key: &[u8]) -> u64 {
        get(key)
            .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
            .map_or(0, u64::from_le_bytes)
    }

    /// Writes a little-endian u64.
    pub fn set_u64(key: &[u8], value: u64) {
        set(key, &value.to_le_bytes());
    }
}

/// Reads little-endian integers off the front of a byte string.
pub fn take_u64(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let (head, rest) = bytes.split_first_chunk::<8>()?;
    Some((u64::from_le_bytes(*head), rest))
}

/// Exports a typed contract's entry points: `contract!(execute = f, query = g)` (or
/// one of them), where `f` and `g` are `fn(Message) -> Result<Output, E>` with
/// `Message: BorshDeserialize`, `Output: BorshSerialize` and `E: AsRef<str>`: the input
/// is decoded, the `Ok` encoded as the output, an `Err` aborts with its text
/// ([`dispatch`]).
#[macro_export]
macro_rules! contract {
    (execute = $e:path, query = $q:path) => {
        $crate::contract!(execute = $e);
        $crate::contract!(query = $q);
    };
    (execute = $e:path) => {
        $crate::export!(execute, $crate::dispatch($e));
    };
    (query = $q:path) => {
        $crate::export!(query, $crate::dispatch($q));
    };
}

/// Exports `may_read_events`: whether the caller may read the contract's events
/// (`POST /v1/events`, `phalanx contract events`), decided by `f(&caller)`. Without it
/// nobody reads them but each command's sender, in its receipt.
#[macro_export]
macro_rules! events_readable_by {
    ($f:path) => {
        $crate::export!(may_read_events, {
            if $f(&$crate::caller()) {
                $crate::output(&[1]);
            }
        });
    };
}

/// Exports `fn $name()` running `$body`: `extern "C"` for the host on wasm32,
/// `extern "C-unwind"` elsewhere, so the test harness sees an abort (a panic there).
/// Off wasm32 the symbol is not exported (the harness takes the function itself), so
/// one test may link several contracts: a contract and its components.
#[doc(hidden)]
#[macro_export]
macro_rules! export {
    ($name:ident, $body:expr) => {
        #[cfg(target_arch = "wasm32")]
        #[unsafe(no_mangle)]
        pub extern "C" fn $name() {
            $body
        }
        #[cfg(not(target_arch = "wasm32"))]
        pub extern "C-unwind" fn $name() {
            $body
        }
    };
}

/// Exports the contract's entry points over raw bytes: `entry!(execute = f)`,
/// `entry!(query = g)` or both, `entry!(execute = f, query = g)`.
#[macro_export]
macro_rules! entry {
    (execute = $e:path, query = $q:path) => {
        $crate::entry!(execute = $e);
        $crate::entry!(query = $q);
    };
    (execute = $e:path) => {
        $crate::export!(execute, $e());
    };
    (query = $q:path) => {
        $crate::export!(query, $q());
    };
}

#[cfg(target_arch = "wasm32")]
mod runtime {
    #[global_allocator]
    static ALLOC: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

    #[panic_handler]
    fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
        super::abort("contract panicked")
    }
}
