//! The host ABI: on `wasm32`, the imports of module `phalanx`; elsewhere, the test
//! harness's fake host ([`crate::testing`]), with the same names and signatures, so a
//! contract's own `cargo test` runs its code natively.

#[cfg(not(target_arch = "wasm32"))]
pub use crate::testing::host::*;

#[cfg(target_arch = "wasm32")]
mod imports {
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
        pub fn call(nptr: *const u8, nlen: i32, iptr: *const u8, ilen: i32) -> i32;
        pub fn forward(nptr: *const u8, nlen: i32, offset: i32) -> i32;
        pub fn call_output(ptr: *mut u8);
        pub fn self_id(ptr: *mut u8);
    }
}

#[cfg(target_arch = "wasm32")]
pub use imports::*;
