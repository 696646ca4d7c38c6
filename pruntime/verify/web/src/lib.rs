//! `phalanx-verify` for the browser: `index.html` loads the module with plain
//! `WebAssembly.instantiate` (no bindings generator) and calls three exports:
//!
//! - `alloc(len) -> ptr` and `dealloc(ptr, len)`: buffers the page writes into;
//! - `verify(bundle_ptr, bundle_len, options_ptr, options_len) -> ptr`: checks the bundle
//!   (JSON) under the options (JSON, `phalanx_verify::OptionsSpec`: `{"genesis": hex,
//!   "trust_root_pem"?: text, "at"?: unix seconds, "tcb_statuses"?: [..], "advisories"?:
//!   [..], "max_evidence_age"?: s}`)
//!   and returns a buffer holding a little-endian u32 length and the verdict JSON — the
//!   same verdict `phalanx verify answer` prints.
//!
//! The verdict is computed here, in the page, from the bundle alone: nothing is fetched.

use phalanx_verify::{Options, OptionsSpec, Refusal, Verdict, malformed};

getrandom02::register_custom_getrandom!(no_randomness);

fn no_randomness(_: &mut [u8]) -> Result<(), getrandom02::Error> {
    Err(getrandom02::Error::UNSUPPORTED)
}

fn options(json: &[u8]) -> Result<Options, Refusal> {
    serde_json::from_slice::<OptionsSpec>(json)
        .map_err(|e| malformed("options", format!("not options: {e}")))?
        .options()
}

/// The verdict for a bundle and options, both JSON (the page's whole computation).
pub fn verdict(bundle: &[u8], options_json: &[u8]) -> Verdict {
    let run = || {
        let o = options(options_json)?;
        let b = phalanx_verify::parse(bundle)?;
        Ok::<_, Refusal>(phalanx_verify::verify(&b, &o))
    };
    run().unwrap_or_else(Verdict::refused)
}

/// A buffer of exactly `len` bytes (a boxed slice) for the page to fill.
#[unsafe(no_mangle)]
pub extern "C" fn alloc(len: usize) -> *mut u8 {
    leak(vec![0u8; len])
}

/// Hands a buffer to the page as a boxed slice of exactly its length, so [`dealloc`]
/// frees it with the same layout.
fn leak(bytes: Vec<u8>) -> *mut u8 {
    Box::into_raw(bytes.into_boxed_slice()).cast::<u8>()
}

/// Frees a buffer from [`alloc`] or [`verify`].
///
/// # Safety
/// `ptr` and `len` must be exactly what `alloc` returned and was given, or what `verify`
/// returned and its length prefix plus four.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dealloc(ptr: *mut u8, len: usize) {
    // SAFETY: the caller hands back a boxed slice of `len` bytes this module leaked.
    drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(ptr, len)) });
}

/// Verifies; returns `u32 length (LE) ‖ verdict JSON`, freed with `dealloc(ptr, 4 + len)`.
///
/// # Safety
/// The pointers and lengths must describe buffers the page filled (from [`alloc`]).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn verify(
    bundle: *const u8,
    bundle_len: usize,
    options: *const u8,
    options_len: usize,
) -> *mut u8 {
    // SAFETY: the page passes buffers it allocated with `alloc` and filled.
    let (b, o) = unsafe {
        (
            std::slice::from_raw_parts(bundle, bundle_len),
            std::slice::from_raw_parts(options, options_len),
        )
    };
    let json = serde_json::to_vec(&verdict(b, o)).unwrap_or_else(|_| b"{\"ok\":false}".to_vec());
    let mut out = Vec::with_capacity(4 + json.len());
    out.extend_from_slice(&(json.len() as u32).to_le_bytes());
    out.extend_from_slice(&json);
    leak(out)
}
