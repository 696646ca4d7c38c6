//! # phalanx-contract-sdk
//!
//! Write a Phalanx confidential contract in Rust: `#![no_std]`, built for
//! `wasm32-unknown-unknown`, run by the pRuntime's deterministic runtime
//! (`phalanx-contract`). The host ABI (import module `phalanx`) appears here as safe
//! functions; this crate is the only place with `unsafe`, each block a call into the
//! host or the allocator, with the reason beside it.
//!
//! A contract exports `execute` (commands, in chain order; may write state and emit
//! events) and/or `query` (read-only) with the [`entry!`] macro:
//!
//! ```ignore
//! #![no_std]
//! use phalanx_contract_sdk as sdk;
//! sdk::entry!(execute = run, query = look);
//! fn run() { sdk::storage::set(b"greeting", &sdk::input()); }
//! fn look() { sdk::output(&sdk::storage::get(b"greeting").unwrap_or_default()); }
//! ```
//!
//! Floating point is refused by the host (every worker must compute the same thing):
//! do not use `f32`/`f64`. Memory comes from a bump allocator that never frees: each
//! call runs in a fresh instance, and the host caps its memory.
#![no_std]

extern crate alloc;

use alloc::vec;
use alloc::vec::Vec;

mod host {
    #[link(wasm_import_module = "phalanx")]
    unsafe extern "C" {
        pub fn input_len() -> i32;
        pub fn input_read(ptr: *mut u8);
        pub fn output(ptr: *const u8, len: i32);
        pub fn storage_get(kptr: *const u8, klen: i32, vptr: *mut u8, vcap: i32) -> i32;
        pub fn storage_set(kptr: *const u8, klen: i32, vptr: *const u8, vlen: i32);
        pub fn storage_remove(kptr: *const u8, klen: i32);
        pub fn caller(ptr: *mut u8);
        pub fn block_height() -> i64;
        pub fn emit_event(ptr: *const u8, len: i32);
        pub fn abort(ptr: *const u8, len: i32) -> !;
        pub fn sign(ptr: *const u8, len: i32, out: *mut u8) -> i64;
        pub fn derived_key(curve: i32, pptr: *const u8, plen: i32, out: *mut u8) -> i32;
        pub fn derived_sign(
            curve: i32,
            pptr: *const u8,
            plen: i32,
            digest: *const u8,
            out: *mut u8,
        ) -> i32;
        pub fn random(out: *mut u8);
    }
}

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

/// Exports the contract's entry points: `entry!(execute = f)`, `entry!(query = g)` or
/// both, `entry!(execute = f, query = g)`.
#[macro_export]
macro_rules! entry {
    (execute = $e:path, query = $q:path) => {
        $crate::entry!(execute = $e);
        $crate::entry!(query = $q);
    };
    (execute = $e:path) => {
        #[unsafe(no_mangle)]
        pub extern "C" fn execute() {
            $e()
        }
    };
    (query = $q:path) => {
        #[unsafe(no_mangle)]
        pub extern "C" fn query() {
            $q()
        }
    };
}

#[cfg(target_arch = "wasm32")]
mod runtime {
    use core::alloc::{GlobalAlloc, Layout};
    use core::cell::UnsafeCell;

    /// A bump allocator over memory grown from the host: one call, one fresh
    /// instance, so nothing needs freeing. Single-threaded (wasm32 without threads).
    struct Bump {
        next: UnsafeCell<usize>,
        end: UnsafeCell<usize>,
    }

    // SAFETY: wasm32-unknown-unknown without the threads feature runs one thread.
    unsafe impl Sync for Bump {}

    const PAGE: usize = 65536;

    // SAFETY: every returned block is aligned, inside memory obtained from
    // `memory_grow`, and never handed out twice.
    unsafe impl GlobalAlloc for Bump {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            // SAFETY: single-threaded; no other reference to these cells is alive.
            let (next, end) = unsafe { (&mut *self.next.get(), &mut *self.end.get()) };
            let start = (*next + layout.align() - 1) & !(layout.align() - 1);
            let Some(stop) = start.checked_add(layout.size()) else {
                return core::ptr::null_mut();
            };
            if stop > *end {
                let pages = (stop - *end).div_ceil(PAGE);
                let old = core::arch::wasm32::memory_grow(0, pages);
                if old == usize::MAX {
                    return core::ptr::null_mut();
                }
                if *end == 0 {
                    // First use: start at the memory that was just added.
                    *next = old * PAGE;
                    *end = (old + pages) * PAGE;
                    // SAFETY: recursion once, now that the arena exists.
                    return unsafe { self.alloc(layout) };
                }
                *end += pages * PAGE;
            }
            *next = stop;
            start as *mut u8
        }

        unsafe fn dealloc(&self, _: *mut u8, _: Layout) {}
    }

    #[global_allocator]
    static ALLOC: Bump = Bump {
        next: UnsafeCell::new(0),
        end: UnsafeCell::new(0),
    };

    #[panic_handler]
    fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
        super::abort("contract panicked")
    }
}
