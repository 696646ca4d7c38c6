//! The off-chain test harness: a contract's own `cargo test` runs its code natively
//! against a fake chain and a fake caller, as ink!'s off-chain environment does. Built
//! only for targets other than `wasm32`; the contract's code is the same.
//!
//! ```ignore
//! use phalanx_contract_sdk::testing::Harness;
//! let mut h = Harness::new();
//! let out: u64 = h.at(10).caller([1; 32]).command(&Command::Bump).unwrap();
//! let total: u64 = h.query(&Query::Total).unwrap();
//! ```
//!
//! A command that aborts or panics changes nothing (its writes are dropped), as on a
//! worker; a query cannot write or emit. What the harness does not do: fuel and the
//! runtime's bounds (sizes, writes, memory); and a test build
//! panics on integer overflow where the release wasm wraps (use checked arithmetic). `sign` and `derived_key` give deterministic
//! stand-ins (SHA-256 of a fixed test secret and the message), not real signatures:
//! test that the contract asks for them and passes them on; the runtime's own tests
//! and a devnet run check the real keys.
//!
//! Components ([`Harness::with_component`]): a contract's calls to its components run
//! their native code as the runtime runs their modules: each on its own state, seeing
//! the calling code's id or, through `forward`, the user; a failed callee undone; no
//! reentrancy, at most four deep. The harness names a component's code by its name
//! ([`component_id`]) where the runtime hashes its module, so ids and raw keys differ
//! from a worker's (use [`crate::self_id`], never a constant); and it has no fuel or
//! bounds, so a callee that would break one fails only on a worker.

extern crate std;

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use borsh::{BorshDeserialize, BorshSerialize};
use core::cell::RefCell;
use sha2::Sha256;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// Which entry a call runs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Entry {
    Execute,
    Query,
}

/// The fake host's state for one thread (each test runs on its own).
#[derive(Default)]
struct World {
    state: BTreeMap<Vec<u8>, Vec<u8>>,
    changes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    input: Vec<u8>,
    output: Option<Vec<u8>>,
    events: Vec<Vec<u8>>,
    caller: [u8; 32],
    height: u64,
    entry: Option<Entry>,
    draws: u64,
    commands: u64,
    /// The component whose code runs (`None`: the contract's own).
    component: Option<String>,
    /// Names on the call stack, the contract's own (`""`) first.
    stack: Vec<String>,
    /// The components given: name → (execute, query).
    components: BTreeMap<String, (Option<EntryFn>, Option<EntryFn>)>,
    /// The output of the last call to a component.
    returned: Vec<u8>,
}

std::thread_local! {
    static WORLD: RefCell<World> = RefCell::new(World::default());
}

/// Why a call aborted (the panic payload of [`host::abort`]).
struct Aborted(String);

fn with<T>(f: impl FnOnce(&mut World) -> T) -> T {
    WORLD.with(|w| f(&mut w.borrow_mut()))
}

/// Keeps a contract's aborts (an expected outcome) out of the test output; other
/// panics still print.
fn quiet_aborts() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let shown = std::panic::take_hook();
        std::panic::set_hook(alloc::boxed::Box::new(move |info| {
            if info.payload().downcast_ref::<Aborted>().is_none() {
                shown(info);
            }
        }));
    });
}

fn refuse(message: &str) -> ! {
    std::panic::panic_any(Aborted(message.to_string()))
}

/// With components, the first byte of the contract's own code's state keys and of its
/// components' (the runtime's `OWN_KEYS` and `COMPONENT_KEYS`).
const OWN_KEYS: u8 = 0x00;
const COMPONENT_KEYS: u8 = 0x01;

/// The id the harness gives the code of component `name` (`""`: the contract's own):
/// what a component it calls sees as its caller, and its [`crate::self_id`].
pub fn component_id(name: &str) -> [u8; 32] {
    host::stand_in(&[b"component", name.as_bytes()])
}

/// The state key `raw` names for the code running (the runtime's rule: as written
/// without components; with them, each module's keys apart).
fn state_key(raw: &[u8]) -> Vec<u8> {
    with(|w| match &w.component {
        Some(name) => [&[COMPONENT_KEYS][..], &component_id(name), raw].concat(),
        None if w.components.is_empty() => raw.to_vec(),
        None => [&[OWN_KEYS][..], raw].concat(),
    })
}

/// What a call to a component sets aside of the caller's frame.
struct Frame {
    input: Vec<u8>,
    output: Option<Vec<u8>>,
    caller: [u8; 32],
    component: Option<String>,
    changes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    events: Vec<Vec<u8>>,
}

/// Runs component `name` on `input` for `caller` as the runtime does: the host's
/// status (output length, or -1 failed, -2 none, -3 reentrant, -4 too deep).
fn nested(name: &[u8], input: Vec<u8>, caller: [u8; 32]) -> i32 {
    if name.len() > 32 {
        refuse("component name too long");
    }
    with(|w| w.returned.clear());
    let Ok(name) = core::str::from_utf8(name) else {
        return -2;
    };
    let (found, entry, on_stack, depth) = with(|w| {
        (
            w.components.get(name).copied(),
            w.entry,
            w.stack.iter().any(|n| n == name),
            w.stack.len(),
        )
    });
    let Some((execute, query)) = found else {
        return -2;
    };
    if on_stack {
        return -3;
    }
    if depth > 4 {
        return -4;
    }
    let Some(f) = (if entry == Some(Entry::Execute) {
        execute
    } else {
        query
    }) else {
        return -1;
    };
    let saved = with(|w| {
        w.stack.push(name.to_string());
        Frame {
            input: core::mem::replace(&mut w.input, input),
            output: w.output.take(),
            caller: core::mem::replace(&mut w.caller, caller),
            component: w.component.replace(name.to_string()),
            changes: w.changes.clone(),
            events: w.events.clone(),
        }
    });
    let ran = catch_unwind(AssertUnwindSafe(|| f()));
    with(|w| {
        w.stack.pop();
        let out = core::mem::replace(&mut w.output, saved.output);
        w.input = saved.input;
        w.caller = saved.caller;
        w.component = saved.component;
        if ran.is_err() {
            w.changes = saved.changes;
            w.events = saved.events;
            w.returned.clear();
            return -1;
        }
        w.returned = out.unwrap_or_default();
        i32::try_from(w.returned.len()).unwrap_or(i32::MAX)
    })
}

/// The fake host functions, with the ABI's names and signatures.
#[allow(
    clippy::missing_safety_doc,
    reason = "the same contract as the wasm imports: pointers valid for the lengths given"
)]
pub mod host {
    use super::{Entry, Sha256, component_id, nested, refuse, state_key, with};
    use alloc::vec::Vec;
    use sha2::Digest as _;

    unsafe fn slice<'a>(ptr: *const u8, len: i32) -> &'a [u8] {
        let len = usize::try_from(len).unwrap_or(0);
        if len == 0 {
            return &[];
        }
        // SAFETY: the SDK passes a valid slice's pointer and length.
        unsafe { core::slice::from_raw_parts(ptr, len) }
    }

    unsafe fn put(ptr: *mut u8, bytes: &[u8]) {
        // SAFETY: the SDK passes a buffer at least this long.
        unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), ptr, bytes.len()) }
    }

    fn writable() {
        if with(|w| w.entry) == Some(Entry::Query) {
            refuse("queries are read-only");
        }
    }

    pub unsafe fn input_len() -> i32 {
        with(|w| i32::try_from(w.input.len()).unwrap_or(i32::MAX))
    }
    pub unsafe fn input_read(ptr: *mut u8) {
        let input = with(|w| w.input.clone());
        // SAFETY: sized by `input_len`.
        unsafe { put(ptr, &input) }
    }
    pub unsafe fn output(ptr: *const u8, len: i32) {
        // SAFETY: the SDK's slice.
        let out = unsafe { slice(ptr, len) }.to_vec();
        if with(|w| w.output.replace(out).is_some()) {
            refuse("output set twice");
        }
    }
    pub unsafe fn storage_get(kptr: *const u8, klen: i32, vptr: *mut u8, vcap: i32) -> i32 {
        // SAFETY: the SDK's slice.
        let key = state_key(unsafe { slice(kptr, klen) });
        let value = with(|w| match w.changes.get(&key) {
            Some(v) => v.clone(),
            None => w.state.get(&key).cloned(),
        });
        let Some(value) = value else { return -1 };
        let n = value.len().min(usize::try_from(vcap).unwrap_or(0));
        // SAFETY: at most `vcap` bytes into the SDK's buffer.
        unsafe { put(vptr, value.get(..n).unwrap_or_default()) };
        i32::try_from(value.len()).unwrap_or(i32::MAX)
    }
    pub unsafe fn storage_set(kptr: *const u8, klen: i32, vptr: *const u8, vlen: i32) {
        writable();
        // SAFETY: the SDK's slices.
        let (k, v) = unsafe { (state_key(slice(kptr, klen)), slice(vptr, vlen).to_vec()) };
        with(|w| w.changes.insert(k, Some(v)));
    }
    pub unsafe fn storage_remove(kptr: *const u8, klen: i32) {
        writable();
        // SAFETY: the SDK's slice.
        let k = state_key(unsafe { slice(kptr, klen) });
        with(|w| w.changes.insert(k, None));
    }
    pub unsafe fn caller(ptr: *mut u8) {
        let id = with(|w| w.caller);
        // SAFETY: 32 bytes.
        unsafe { put(ptr, &id) }
    }
    pub unsafe fn block_height() -> i64 {
        with(|w| i64::try_from(w.height).unwrap_or(i64::MAX))
    }
    pub unsafe fn emit_event(ptr: *const u8, len: i32) {
        writable();
        // SAFETY: the SDK's slice.
        let e = unsafe { slice(ptr, len) }.to_vec();
        with(|w| w.events.push(e));
    }
    pub unsafe fn abort(ptr: *const u8, len: i32) -> ! {
        // SAFETY: the SDK's slice.
        let m = unsafe { slice(ptr, len) };
        refuse(core::str::from_utf8(m).unwrap_or("(not UTF-8)"))
    }
    pub(super) fn stand_in(parts: &[&[u8]]) -> [u8; 32] {
        let mut h = Sha256::new_with_prefix(b"phalanx-sdk-test-harness");
        for p in parts {
            h.update((p.len() as u64).to_be_bytes());
            h.update(p);
        }
        h.finalize().into()
    }
    /// Only the contract's own code uses its keys (the runtime's rule).
    fn own_keys() {
        if with(|w| w.component.is_some()) {
            refuse("only the contract's own code uses its keys, not its components");
        }
    }
    pub unsafe fn sign(ptr: *const u8, len: i32, out: *mut u8) -> i64 {
        own_keys();
        // SAFETY: the SDK's slice.
        let m = unsafe { slice(ptr, len) };
        let sig = [stand_in(&[b"sign", m]), stand_in(&[b"sign2", m])].concat();
        // SAFETY: 64 bytes.
        unsafe { put(out, &sig) };
        0
    }
    pub unsafe fn derived_key(curve: i32, pptr: *const u8, plen: i32, out: *mut u8) -> i32 {
        own_keys();
        // SAFETY: the SDK's slice.
        let p = unsafe { slice(pptr, plen) };
        let c = curve.to_be_bytes();
        let key: Vec<u8> = [
            &[4u8][..],
            &stand_in(&[b"x", &c, p]),
            &stand_in(&[b"y", &c, p]),
        ]
        .concat();
        // SAFETY: 65 bytes.
        unsafe { put(out, &key) };
        65
    }
    pub unsafe fn derived_sign(
        curve: i32,
        pptr: *const u8,
        plen: i32,
        digest: *const u8,
        out: *mut u8,
    ) -> i32 {
        own_keys();
        // SAFETY: the SDK's slices.
        let (p, d) = unsafe { (slice(pptr, plen), slice(digest, 32)) };
        let c = curve.to_be_bytes();
        let mut sig = [stand_in(&[b"r", &c, p, d]), stand_in(&[b"s", &c, p, d])].concat();
        if curve == 2 {
            sig.push(0);
        }
        // SAFETY: at most 65 bytes, as the SDK's buffer.
        unsafe { put(out, &sig) };
        i32::try_from(sig.len()).unwrap_or(0)
    }
    pub unsafe fn random(out: *mut u8) {
        if with(|w| w.entry) == Some(Entry::Query) {
            refuse("randomness in a query");
        }
        let (n, draw) = with(|w| {
            w.draws += 1;
            (w.commands, w.draws)
        });
        let bytes = stand_in(&[b"random", &n.to_be_bytes(), &draw.to_be_bytes()]);
        // SAFETY: 32 bytes.
        unsafe { put(out, &bytes) }
    }
    pub unsafe fn call(nptr: *const u8, nlen: i32, iptr: *const u8, ilen: i32) -> i32 {
        // SAFETY: the SDK's slices.
        let (name, input) = unsafe { (slice(nptr, nlen).to_vec(), slice(iptr, ilen).to_vec()) };
        let me = with(|w| w.component.clone().unwrap_or_default());
        nested(&name, input, component_id(&me))
    }
    pub unsafe fn forward(nptr: *const u8, nlen: i32, offset: i32) -> i32 {
        // SAFETY: the SDK's slice.
        let name = unsafe { slice(nptr, nlen) }.to_vec();
        let (input, caller) = with(|w| {
            let at = usize::try_from(offset).unwrap_or(usize::MAX);
            (w.input.get(at..).map(<[u8]>::to_vec), w.caller)
        });
        let Some(input) = input else {
            refuse("forward past the input's end");
        };
        nested(&name, input, caller)
    }
    pub unsafe fn call_output(ptr: *mut u8) {
        let out = with(|w| w.returned.clone());
        // SAFETY: sized by the status `call` returned.
        unsafe { put(ptr, &out) }
    }
    pub unsafe fn self_id(ptr: *mut u8) {
        let me = with(|w| w.component.clone().unwrap_or_default());
        // SAFETY: 32 bytes.
        unsafe { put(ptr, &component_id(&me)) }
    }
}

/// What a successful call produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The output bytes.
    pub output: Vec<u8>,
    /// The events, in order.
    pub events: Vec<Vec<u8>>,
}

/// An entry point as [`crate::contract!`] and [`crate::entry!`] export it off wasm32.
pub type EntryFn = extern "C-unwind" fn();

/// A fake chain and caller around the contract's exported `execute` and `query`.
pub struct Harness {
    execute: Option<EntryFn>,
    query: Option<EntryFn>,
    readers: Option<EntryFn>,
}

impl Harness {
    /// A harness over the contract's entry points (the functions [`crate::contract!`]
    /// or [`crate::entry!`] export): `Harness::new(execute, query)`. A fresh, empty
    /// state at height 1, caller `[0; 32]`.
    pub fn new(execute: Option<EntryFn>, query: Option<EntryFn>) -> Self {
        quiet_aborts();
        with(|w| {
            *w = World {
                height: 1,
                ..World::default()
            }
        });
        Self {
            execute,
            query,
            readers: None,
        }
    }

    /// The contract's `may_read_events` export (what [`crate::events_readable_by!`]
    /// makes), for [`Self::may_read_events`].
    pub fn with_events_readers(mut self, may_read_events: EntryFn) -> Self {
        self.readers = Some(may_read_events);
        self
    }

    /// Whether the current caller may read the contract's events, as a worker asks:
    /// read-only, admitted by the output `[1]`; without the export, nobody.
    pub fn may_read_events(&mut self) -> bool {
        let Some(f) = self.readers else {
            return false;
        };
        self.run(Entry::Query, f, &[])
            .is_ok_and(|o| o.output == [1])
    }

    /// Gives the contract component `name` (the runtime's are carried in its module:
    /// `phalanx contract bundle`), with the entry points its crate exports.
    pub fn with_component(
        self,
        name: &str,
        execute: Option<EntryFn>,
        query: Option<EntryFn>,
    ) -> Self {
        with(|w| w.components.insert(name.to_string(), (execute, query)));
        self
    }

    /// A component's raw state entry.
    pub fn stored_in(&self, component: &str, key: &[u8]) -> Option<Vec<u8>> {
        let key = [&[COMPONENT_KEYS][..], &component_id(component), key].concat();
        with(|w| w.state.get(&key).cloned())
    }

    /// The height the next calls run at.
    pub fn at(&mut self, height: u64) -> &mut Self {
        with(|w| w.height = height);
        self
    }

    /// Who the next calls come from.
    pub fn caller(&mut self, id: [u8; 32]) -> &mut Self {
        with(|w| w.caller = id);
        self
    }

    /// Runs a command with raw `input`: its output and events, or the abort message
    /// (then nothing it wrote stands).
    pub fn command_raw(&mut self, input: &[u8]) -> Result<Outcome, String> {
        let Some(f) = self.execute else {
            return Err("the contract exports no execute".into());
        };
        with(|w| w.commands += 1);
        self.run(Entry::Execute, f, input)
    }

    /// Runs a read-only query with raw `input`.
    pub fn query_raw(&mut self, input: &[u8]) -> Result<Outcome, String> {
        let Some(f) = self.query else {
            return Err("the contract exports no query".into());
        };
        self.run(Entry::Query, f, input)
    }

    /// A typed command: `message` in borsh, the output decoded as `O`.
    pub fn command<M: BorshSerialize, O: BorshDeserialize>(
        &mut self,
        message: &M,
    ) -> Result<O, String> {
        let out = self.command_raw(&borsh::to_vec(message).map_err(|e| e.to_string())?)?;
        O::try_from_slice(&out.output).map_err(|e| e.to_string())
    }

    /// A typed query.
    pub fn query<M: BorshSerialize, O: BorshDeserialize>(
        &mut self,
        message: &M,
    ) -> Result<O, String> {
        let out = self.query_raw(&borsh::to_vec(message).map_err(|e| e.to_string())?)?;
        O::try_from_slice(&out.output).map_err(|e| e.to_string())
    }

    /// The events of the last call, decoded as `E` (none if it failed).
    pub fn events<E: BorshDeserialize>(&self) -> Vec<E> {
        with(|w| {
            w.events
                .iter()
                .filter_map(|e| E::try_from_slice(e).ok())
                .collect()
        })
    }

    /// A raw state entry of the contract's own code, to check what a contract keeps
    /// (the worker shows nobody).
    pub fn stored(&self, key: &[u8]) -> Option<Vec<u8>> {
        with(|w| {
            let key = if w.components.is_empty() {
                key.to_vec()
            } else {
                [&[OWN_KEYS][..], key].concat()
            };
            w.state.get(&key).cloned()
        })
    }

    fn run(&mut self, entry: Entry, f: EntryFn, input: &[u8]) -> Result<Outcome, String> {
        with(|w| {
            w.entry = Some(entry);
            w.input = input.to_vec();
            w.output = None;
            w.events.clear();
            w.changes.clear();
            w.draws = 0;
            w.component = None;
            w.stack = alloc::vec![String::new()];
        });
        let ran = catch_unwind(AssertUnwindSafe(|| f()));
        with(|w| {
            w.entry = None;
            let changes = core::mem::take(&mut w.changes);
            match ran {
                Ok(()) => {
                    for (k, v) in changes {
                        match v {
                            Some(v) => w.state.insert(k, v),
                            None => w.state.remove(&k),
                        };
                    }
                    Ok(Outcome {
                        output: w.output.take().unwrap_or_default(),
                        events: w.events.clone(),
                    })
                }
                Err(payload) => {
                    w.events.clear();
                    Err(match payload.downcast::<Aborted>() {
                        Ok(a) => a.0,
                        Err(_) => "contract panicked".into(),
                    })
                }
            }
        })
    }
}
