//! Example contract: a counter per caller and a total.
//!
//! - command (any input): adds one to the caller's count and to the total, emits the
//!   caller's new count, answers it (8 bytes, little-endian);
//! - query: the caller's count ‖ the total (16 bytes).
#![no_std]

use phalanx_contract_sdk as sdk;

sdk::entry!(execute = bump, query = read);

fn bump() {
    let me = sdk::caller();
    let mine = sdk::storage::get_u64(&me) + 1;
    sdk::storage::set_u64(&me, mine);
    sdk::storage::set_u64(b"total", sdk::storage::get_u64(b"total") + 1);
    sdk::emit(&mine.to_le_bytes());
    sdk::output(&mine.to_le_bytes());
}

fn read() {
    let mut out = [0u8; 16];
    let (a, b) = out.split_at_mut(8);
    a.copy_from_slice(&sdk::storage::get_u64(&sdk::caller()).to_le_bytes());
    b.copy_from_slice(&sdk::storage::get_u64(b"total").to_le_bytes());
    sdk::output(&out);
}
