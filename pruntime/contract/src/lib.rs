//! # phalanx-contract
//!
//! Confidential contracts are WebAssembly modules. This crate runs them, and nothing
//! else: no I/O, no clock, no randomness and no keys of its own (signatures and random
//! bytes come from the worker through the call's [`Env`]). The pRuntime worker decrypts a
//! command or a query, hands the plaintext to [`Runtime::call`] with the contract's
//! [`State`], and gets back an [`Outcome`] (output, events, state changes) or a
//! [`ContractError`] that names what went wrong.
//!
//! **Determinism.** Every worker serving a contract replays the same commands and must
//! reach the same state root, so execution is a pure function of (code, state, input,
//! caller, height, fuel, and the [`Env`]'s keys): `wasmi` (an interpreter: no JIT, no executable memory), modules
//! with floating-point instructions refused at compile time (as CosmWasm does), no SIMD,
//! eager compilation (translation never charges fuel mid-call), fuel charged for every
//! instruction and for every byte the host copies.
//!
//! **Bounds.** Code size, fuel, linear memory, input, output, keys, values, events and
//! the number of writes and the bytes written per call are all capped, and so is a
//! contract's whole state ([`Limits`]). A call that traps, runs out
//! of fuel, exceeds a bound or calls `abort` changes nothing: its writes live in an
//! overlay that is only returned on success.
//!
//! ## The host ABI (import module `phalanx`)
//!
//! | import | signature | what |
//! |---|---|---|
//! | `input_len` | `() -> i32` | bytes of the call's input |
//! | `input_read` | `(ptr: i32)` | copies the input to `ptr` |
//! | `output` | `(ptr, len)` | sets the call's output (once) |
//! | `storage_get` | `(key_ptr, key_len, val_ptr, val_cap) -> i32` | the value's length (copying at most `val_cap` bytes), or -1 if absent |
//! | `storage_set` | `(key_ptr, key_len, val_ptr, val_len)` | writes (commands only) |
//! | `storage_remove` | `(key_ptr, key_len)` | removes (commands only) |
//! | `caller` | `(ptr)` | copies the 32-byte caller id to `ptr` |
//! | `block_height` | `() -> i64` | the chain height the call runs at |
//! | `emit_event` | `(ptr, len)` | records an event (commands only) |
//! | `abort` | `(ptr, len)` | stops the call with a UTF-8 message |
//! | `sign` | `(msg_ptr, msg_len, out_ptr) -> i64` | writes the contract's signature over the message (64 bytes, `r ‖ s`, by its key the registry publishes), returns that key's epoch |
//! | `derived_key` | `(curve, purpose_ptr, purpose_len, out_ptr) -> i32` | writes the public key derived for the purpose (65 bytes, SEC1 uncompressed; curve 1 P-256, 2 secp256k1), returns 65 |
//! | `derived_sign` | `(curve, purpose_ptr, purpose_len, digest_ptr, out_ptr) -> i32` | writes that key's signature over a 32-byte digest (P-256 `r ‖ s`, secp256k1 `r ‖ s ‖ v`), returns its length |
//! | `random` | `(out_ptr)` | writes 32 random bytes every worker agrees on (commands only) |
//! | `call` | `(name_ptr, name_len, in_ptr, in_len) -> i32` | calls the component of that name (see below): its output's length, or a negative [`CallStatus`] |
//! | `forward` | `(name_ptr, name_len, offset) -> i32` | the same with this call's own input from `offset` on and its own caller |
//! | `call_output` | `(ptr)` | copies the output of the last `call` or `forward` |
//! | `self_id` | `(ptr)` | copies the 32-byte id the components this code calls see as their caller |
//!
//! `sign`, `derived_key`, `derived_sign` and `random` reach the worker's keys through the
//! [`Env`] the call carries; the runtime itself holds no key, and each signature costs
//! [`SIGN_FUEL`].
//!
//! ## Components: contracts calling contracts
//!
//! A contract's module may carry other modules, its *components*, each in a custom
//! section [`COMPONENT_SECTION`] with a name ([`bundle`] makes one). They are part of the
//! contract: its code hash covers them, so a name always means the same code (the
//! callee's code is fixed by what the caller was deployed with, and
//! [`Contract::components`] lists each one's code hash), its workers run them, its state
//! holds theirs and its root commits to it. Calls between them are synchronous and run
//! in the command's order on every worker, so they are as deterministic as the rest:
//!
//! - **caller**: a `call` passes the calling module's id ([`component_caller_id`] of its
//!   code hash); a `forward` passes the caller it was itself called by (a user's command
//!   reaching a component through the contract: the user's own bytes, as that user);
//! - **state**: each module has its own: in a contract with components its own code's
//!   keys live under [`OWN_KEYS`], a component's under [`COMPONENT_KEYS`] ‖ its code
//!   hash (one code, one component: two names for the same code are refused), so no
//!   module reads or writes another's; a contract without components keeps its keys as
//!   written;
//! - **fuel and bounds**: the callee spends the caller's (after [`CALL_FUEL`], a unit
//!   per [`BYTES_PER_FUEL`] of its module and one per 64 bytes of its initial memory);
//!   the bounds on memory, writes, bytes and events are the whole command's, shared by
//!   every frame;
//! - **failure**: a callee that aborts, traps, runs out of fuel or breaks a bound
//!   returns [`CallStatus::Failed`] and changes nothing; the caller goes on (or
//!   aborts, undoing everything);
//! - **depth**: at most [`MAX_CALL_DEPTH`] nested calls, and no module twice on the
//!   stack (no reentrancy);
//! - **keys**: only the contract's own code signs or derives keys; a component may draw
//!   randomness (from the same sequence);
//! - **queries**: a query's calls run the callees' `query`, read-only;
//! - **trust inside one contract**: a component reached by `forward` sees the user as
//!   its caller and bytes the user sealed, from an offset the calling code chose; its
//!   events are the contract's, shown to whom the contract's `may_read_events` admits.
//!   A component trusts the code that carries it, as that code is one deployment.
//!
//! A module exports its `memory` and `execute` (commands) and/or `query` (read-only
//! queries), both `() -> ()`, and optionally `may_read_events` (read-only: output `[1]`
//! lets the caller read the contract's events). The guest SDK (`pruntime/sdk`) wraps all of this.
//!
//! **Must never depend on** anything with I/O, keys, clocks or randomness of its own,
//! or any crate of the workspace but `phalanx-types`.

use std::collections::BTreeMap;
use std::sync::Arc;
use wasmi::{
    Caller, CompilationMode, Config, Engine, Extern, ExternType, Linker, Module, Store,
    StoreLimits, StoreLimitsBuilder, TrapCode,
};

/// The import module of the host ABI.
pub const HOST_MODULE: &str = "phalanx";

/// Every import the host provides (name, for the compile-time check).
const HOST_FUNCTIONS: [&str; 18] = [
    "call",
    "forward",
    "call_output",
    "self_id",
    "sign",
    "derived_key",
    "derived_sign",
    "random",
    "input_len",
    "input_read",
    "output",
    "storage_get",
    "storage_set",
    "storage_remove",
    "caller",
    "block_height",
    "emit_event",
    "abort",
];

/// Fuel charged for each host call, before its bytes.
pub const HOST_CALL_FUEL: u64 = 100;
/// Fuel charged for a call to a component, beyond the bytes copied, one unit per
/// [`BYTES_PER_FUEL`] of the callee's module (instantiating it) and what the callee
/// runs.
pub const CALL_FUEL: u64 = 5_000;
/// Most nested calls between components under one call.
pub const MAX_CALL_DEPTH: usize = 4;
/// Most components one contract carries.
pub const MAX_COMPONENTS: usize = 16;
/// Longest component name (`a`–`z`, `0`–`9`, `-`, `_`).
pub const MAX_COMPONENT_NAME: usize = 32;
/// The custom section that carries a component: `name length (1 byte) ‖ name ‖ module`.
pub const COMPONENT_SECTION: &str = "phalanx.component";
/// In a contract that carries components, the first byte of its own code's state keys
/// (`OWN_KEYS ‖ key`)...
pub const OWN_KEYS: u8 = 0x00;
/// ...and of its components' (`COMPONENT_KEYS ‖ code hash ‖ key`): disjoint. A contract
/// without components keeps its keys as written.
pub const COMPONENT_KEYS: u8 = 0x01;

/// What `call` and `forward` return when the callee gives no output (a non-negative
/// value is the output's length).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum CallStatus {
    /// The callee aborted, trapped, ran out of fuel or broke a bound: nothing it did
    /// stands.
    Failed = -1,
    /// The contract has no component of that name.
    NoComponent = -2,
    /// The callee is already on the call stack.
    Reentrant = -3,
    /// [`MAX_CALL_DEPTH`] nested calls already.
    TooDeep = -4,
}
/// Fuel charged for a signature (about the interpreter's cost of the same time).
pub const SIGN_FUEL: u64 = 200_000;
/// Largest purpose of a derived key.
pub const MAX_PURPOSE: usize = 64;

/// The curve of a key derived for a purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curve {
    /// NIST P-256 (signatures `r ‖ s`, 64 bytes).
    P256,
    /// secp256k1, as Ethereum uses it (signatures `r ‖ s ‖ v`, 65 bytes, `v` 0 or 1).
    Secp256k1,
}

impl Curve {
    fn from_code(c: i32) -> Option<Self> {
        match c {
            1 => Some(Self::P256),
            2 => Some(Self::Secp256k1),
            _ => None,
        }
    }
}

/// What a call may ask of the worker's keys. The runtime holds no key and draws no
/// randomness itself: the worker passes an `Env` with each call (a test harness a fake
/// one), and a call without one that asks for a signature or randomness fails.
///
/// Every answer must be a function of the contract's secret and the call's position
/// alone, so all workers serving the contract compute the same thing (deterministic
/// ECDSA, RFC 6979).
pub trait Env: Send + Sync {
    /// A signature by the contract's key the registry publishes, over `message` (the
    /// implementation fixes the domain-separated digest), and that key's epoch.
    fn sign(&self, message: &[u8]) -> Option<(u64, [u8; 64])>;
    /// The public key (SEC1 uncompressed, 65 bytes) derived for `purpose` on `curve`:
    /// the contract's own, stable across epochs.
    fn derived_public(&self, curve: Curve, purpose: &[u8]) -> Option<[u8; 65]>;
    /// A signature by that key over a 32-byte digest the contract computed.
    fn derived_sign(&self, curve: Curve, purpose: &[u8], digest: &[u8; 32]) -> Option<Vec<u8>>;
    /// The call's `draw`-th 32 random bytes: the same on every worker, unpredictable
    /// without the contract's secret. `None` where there is none (queries).
    fn random(&self, draw: u64) -> Option<[u8; 32]>;
}
/// Bytes copied by the host per unit of fuel.
pub const BYTES_PER_FUEL: u64 = 8;

/// What one contract may use. The defaults suit a worker on a small machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest module accepted, in bytes.
    pub max_code: usize,
    /// Fuel for one call (about one unit per instruction).
    pub fuel: u64,
    /// Largest linear memory, in bytes.
    pub memory: usize,
    /// Largest input.
    pub max_input: usize,
    /// Largest output.
    pub max_output: usize,
    /// Largest storage key.
    pub max_key: usize,
    /// Largest storage value.
    pub max_value: usize,
    /// Most storage writes and removals in one call.
    pub max_writes: usize,
    /// Most events in one call.
    pub max_events: usize,
    /// Largest event.
    pub max_event: usize,
    /// Most bytes (keys and values) one call writes.
    pub max_write_bytes: usize,
    /// Largest state of one contract (keys and values), after a call.
    pub max_state_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_code: 512 * 1024,
            fuel: 50_000_000,
            memory: 16 * 1024 * 1024,
            max_input: 64 * 1024,
            max_output: 64 * 1024,
            max_key: 256,
            max_value: 64 * 1024,
            max_writes: 1024,
            max_events: 64,
            max_event: 4096,
            max_write_bytes: 1024 * 1024,
            max_state_bytes: 64 * 1024 * 1024,
        }
    }
}

/// Why a module was refused or a call failed. Messages carry no state, input or output.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ContractError {
    /// The module is larger than [`Limits::max_code`].
    #[error("contract code is {size} bytes, at most {max} allowed")]
    CodeTooLarge {
        /// Its size.
        size: usize,
        /// The bound.
        max: usize,
    },
    /// The module does not validate (floating point and SIMD instructions included).
    #[error("contract code is invalid: {0}")]
    InvalidCode(String),
    /// The module imports something the host does not provide.
    #[error("contract imports {module}.{name}, which the host does not provide")]
    UnknownImport {
        /// The import's module.
        module: String,
        /// The import's name.
        name: String,
    },
    /// The module lacks an export the call needs (`memory`, `execute` or `query`, of
    /// the right type).
    #[error("contract does not export {0}")]
    MissingExport(&'static str),
    /// The call's input is larger than [`Limits::max_input`].
    #[error("input is {size} bytes, at most {max} allowed")]
    InputTooLarge {
        /// Its size.
        size: usize,
        /// The bound.
        max: usize,
    },
    /// The call used up its fuel.
    #[error("out of fuel")]
    OutOfFuel,
    /// The module's memory would exceed [`Limits::memory`] (or its tables their bound).
    #[error("memory limit exceeded")]
    MemoryLimit,
    /// The contract called `abort` with this message. The message is the contract's
    /// and may carry state, input or output: it is never displayed (logs and error
    /// bodies show only that the contract aborted); whoever may see it reads the field.
    #[error("the contract aborted (its message is withheld)")]
    Aborted(String),
    /// The contract broke a host bound or rule (named).
    #[error("contract broke a host rule: {0}")]
    HostRule(&'static str),
    /// A query tried to write, or to emit an event.
    #[error("queries are read-only")]
    ReadOnly,
    /// The module trapped (the trap's kind).
    #[error("contract trapped: {0}")]
    Trap(String),
}

/// Which entry point a call runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    /// `execute`: a command from the chain; may write state and emit events.
    Execute,
    /// `query`: a read-only query.
    Query,
    /// `may_read_events` (optional): read-only; the contract decides whether the caller
    /// may read its events, by setting the output `[1]`. A contract without it shows
    /// its events to nobody but each command's sender (in the receipt).
    ReadEvents,
}

impl Entry {
    fn export(self) -> &'static str {
        match self {
            Entry::Execute => "execute",
            Entry::Query => "query",
            Entry::ReadEvents => "may_read_events",
        }
    }
}

/// One call: which entry, with what input, from whom, at which height, with which keys.
#[derive(Clone, Copy)]
pub struct Call<'a> {
    /// The worker's keys and randomness for this call (none: the call cannot sign or
    /// draw).
    pub env: Option<&'a Arc<dyn Env>>,
    /// The entry point.
    pub entry: Entry,
    /// The decrypted command or query.
    pub input: &'a [u8],
    /// Who calls (a 32-byte id the worker derives from the sender's key).
    pub caller: [u8; 32],
    /// The chain height the call runs at.
    pub height: u64,
}

impl std::fmt::Debug for Call<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Call")
            .field("entry", &self.entry)
            .field("height", &self.height)
            .field("env", &self.env.is_some())
            .finish_non_exhaustive()
    }
}

/// A contract's key-value state. Cloning is cheap (shared until written).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct State {
    map: Arc<BTreeMap<Vec<u8>, Vec<u8>>>,
    /// Bytes of keys and values, kept as changes apply (bounded per contract).
    bytes: usize,
}

impl State {
    /// A value.
    pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
        self.map.get(key).map(Vec::as_slice)
    }

    /// Entries in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.map.iter().map(|(k, v)| (k.as_slice(), v.as_slice()))
    }

    /// How many entries.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Bytes of keys and values.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// What [`Self::bytes`] would be after `changes`.
    pub fn bytes_after(&self, changes: &Changes) -> usize {
        let mut bytes = self.bytes;
        for (k, v) in &changes.0 {
            if let Some(old) = self.map.get(k) {
                bytes = bytes.saturating_sub(k.len() + old.len());
            }
            if let Some(v) = v {
                bytes = bytes.saturating_add(k.len() + v.len());
            }
        }
        bytes
    }

    /// Applies a successful call's changes.
    pub fn apply(&mut self, changes: &Changes) {
        self.bytes = self.bytes_after(changes);
        let map = Arc::make_mut(&mut self.map);
        for (k, v) in &changes.0 {
            match v {
                Some(v) => map.insert(k.clone(), v.clone()),
                None => map.remove(k),
            };
        }
    }
}

/// The writes of one call: `Some(value)` set, `None` removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes(pub BTreeMap<Vec<u8>, Option<Vec<u8>>>);

/// What a successful call produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The output (empty if the contract set none).
    pub output: Vec<u8>,
    /// Events, in order.
    pub events: Vec<Vec<u8>>,
    /// State changes, to [`State::apply`].
    pub changes: Changes,
    /// Fuel used.
    pub fuel_used: u64,
}

/// A compiled contract.
#[derive(Debug)]
pub struct Contract {
    module: Module,
    code_hash: [u8; 32],
    components: Arc<BTreeMap<String, Component>>,
}

/// A module a contract carries, called by name.
#[derive(Debug, Clone)]
struct Component {
    module: Module,
    code_hash: [u8; 32],
    /// Its bytes, and its memory's initial size in bytes (each call pays for
    /// instantiating both).
    size: usize,
    memory: u64,
}

impl Contract {
    /// `SHA-256(tag ‖ wasm)`: the code hash the registry lists.
    pub fn code_hash(&self) -> [u8; 32] {
        self.code_hash
    }

    /// Its components by name, with their code hashes (that of their own module).
    pub fn components(&self) -> Vec<(String, [u8; 32])> {
        self.components
            .iter()
            .map(|(n, c)| (n.clone(), c.code_hash))
            .collect()
    }
}

/// The caller id a component sees when `code_hash`'s module calls it
/// ([`phalanx_types::contract::component_caller_id`]).
pub fn component_caller_id(code_hash: &[u8; 32]) -> [u8; 32] {
    phalanx_types::contract::component_caller_id(code_hash)
}

/// `root` with `components` appended as [`COMPONENT_SECTION`] custom sections: one
/// module to deploy. Names are checked here; the modules when the result compiles.
pub fn bundle(root: &[u8], components: &[(&str, &[u8])]) -> Result<Vec<u8>, ContractError> {
    let mut out = root.to_vec();
    for (name, wasm) in components {
        check_component_name(name.as_bytes())?;
        let mut body = Vec::with_capacity(wasm.len() + 64);
        leb128(&mut body, COMPONENT_SECTION.len());
        body.extend_from_slice(COMPONENT_SECTION.as_bytes());
        body.push(u8::try_from(name.len()).unwrap_or(u8::MAX));
        body.extend_from_slice(name.as_bytes());
        body.extend_from_slice(wasm);
        out.push(0);
        leb128(&mut out, body.len());
        out.extend_from_slice(&body);
    }
    Ok(out)
}

fn leb128(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let byte = u8::try_from(n & 0x7f).unwrap_or(0);
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn check_component_name(name: &[u8]) -> Result<(), ContractError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_COMPONENT_NAME
        && name
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-' || *b == b'_');
    if ok {
        Ok(())
    } else {
        Err(ContractError::InvalidCode(
            "a component name is 1 to 32 of a-z, 0-9, - and _".into(),
        ))
    }
}

/// The code hash of a module's bytes (see [`Contract::code_hash`]).
pub fn code_hash(wasm: &[u8]) -> [u8; 32] {
    phalanx_types::contract::code_hash(wasm)
}

/// The runtime: a wasmi engine configured for determinism, and the host ABI.
pub struct Runtime {
    engine: Engine,
    linker: Arc<Linker<Host>>,
    limits: Limits,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("limits", &self.limits)
            .finish()
    }
}

/// A key a frame wrote first, and the overlay's entry before (none: not in the
/// overlay; `Some(None)`: removed).
type Undo = (Vec<u8>, Option<Option<Vec<u8>>>);

/// The host side of one call.
struct Host {
    input: Vec<u8>,
    caller: [u8; 32],
    height: u64,
    entry: Entry,
    base: State,
    changes: Changes,
    output: Option<Vec<u8>>,
    events: Vec<Vec<u8>>,
    failure: Option<ContractError>,
    limits: Limits,
    store_limits: StoreLimits,
    /// Bytes this call wrote so far (keys and values).
    written: usize,
    env: Option<Arc<dyn Env>>,
    /// Random draws so far.
    draws: u64,
    /// Whose code runs: `None` the contract's own, else a component's code hash (its
    /// state lives under [`COMPONENT_KEYS`] ‖ that hash).
    component: Option<[u8; 32]>,
    /// The code hashes on the call stack, the contract's own first.
    stack: Vec<[u8; 32]>,
    /// The contract's components and the host ABI, for nested calls.
    components: Arc<BTreeMap<String, Component>>,
    linker: Arc<Linker<Host>>,
    /// The output of the last `call` or `forward`.
    returned: Vec<u8>,
    /// In a component: each key this frame (or a callee that succeeded) wrote first, with
    /// the overlay's entry before, to undo if the frame fails. Bounded by the distinct
    /// keys written, whose bytes the call's write bound counts.
    undo: Vec<Undo>,
    undo_keys: std::collections::BTreeSet<Vec<u8>>,
    /// Memory the frames below this one hold (a command's frames share
    /// [`Limits::memory`]).
    memory_above: usize,
}

impl Runtime {
    /// A runtime with `limits`.
    pub fn new(limits: Limits) -> Self {
        let mut config = Config::default();
        config
            .consume_fuel(true)
            .floats(false)
            .wasm_multi_memory(false)
            .compilation_mode(CompilationMode::Eager);
        let engine = Engine::new(&config);
        let linker = Arc::new(host_abi(&engine));
        Self {
            engine,
            linker,
            limits,
        }
    }

    /// The limits.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Validates and compiles a module: size bound, no floats, only the host's imports,
    /// an exported memory; and so each of its components (none of which carries
    /// components of its own).
    pub fn compile(&self, wasm: &[u8]) -> Result<Contract, ContractError> {
        if wasm.len() > self.limits.max_code {
            return Err(ContractError::CodeTooLarge {
                size: wasm.len(),
                max: self.limits.max_code,
            });
        }
        let module = self.compile_module(wasm)?;
        let mut components = BTreeMap::new();
        for section in module.custom_sections() {
            if section.name() != COMPONENT_SECTION {
                continue;
            }
            let invalid = |m: &str| ContractError::InvalidCode(m.into());
            let (&len, rest) = section
                .data()
                .split_first()
                .ok_or_else(|| invalid("an empty component section"))?;
            let (name, code) = rest
                .split_at_checked(usize::from(len))
                .ok_or_else(|| invalid("a component section shorter than its name"))?;
            check_component_name(name)?;
            if components.len() == MAX_COMPONENTS {
                return Err(invalid("more than 16 components"));
            }
            let m = self.compile_module(code)?;
            if m.custom_sections().any(|s| s.name() == COMPONENT_SECTION) {
                return Err(invalid("a component carries components of its own"));
            }
            let name = String::from_utf8_lossy(name).into_owned();
            let memory = m
                .exports()
                .find_map(|e| match e.ty() {
                    ExternType::Memory(t) if e.name() == "memory" => Some(t.minimum()),
                    _ => None,
                })
                .unwrap_or(0)
                .saturating_mul(65_536);
            let component = Component {
                module: m,
                code_hash: code_hash(code),
                size: code.len(),
                memory,
            };
            // State and the call stack are per code: two names for one code would share
            // them.
            if components
                .values()
                .any(|c: &Component| c.code_hash == component.code_hash)
            {
                return Err(invalid("two components of one code"));
            }
            if components.insert(name, component).is_some() {
                return Err(invalid("two components of one name"));
            }
        }
        Ok(Contract {
            module,
            code_hash: code_hash(wasm),
            components: Arc::new(components),
        })
    }

    /// One module's checks (see [`Self::compile`]).
    fn compile_module(&self, wasm: &[u8]) -> Result<Module, ContractError> {
        let module = Module::new(&self.engine, wasm)
            .map_err(|e| ContractError::InvalidCode(truncate(&e.to_string())))?;
        for import in module.imports() {
            if import.module() != HOST_MODULE || !HOST_FUNCTIONS.contains(&import.name()) {
                return Err(ContractError::UnknownImport {
                    module: truncate(import.module()),
                    name: truncate(import.name()),
                });
            }
        }
        if !module
            .exports()
            .any(|e| e.name() == "memory" && matches!(e.ty(), ExternType::Memory(_)))
        {
            return Err(ContractError::MissingExport("memory"));
        }
        Ok(module)
    }

    /// Runs one call against `state`. The state is not changed: apply
    /// [`Outcome::changes`] when the call's effects should stand.
    pub fn call(
        &self,
        contract: &Contract,
        state: &State,
        call: Call<'_>,
    ) -> Result<Outcome, ContractError> {
        self.call_with_fuel(contract, state, call, self.limits.fuel)
    }

    /// [`Runtime::call`] with at most `fuel` (capped at [`Limits::fuel`]): a query's
    /// caller may allow less than the worker's limit.
    pub fn call_with_fuel(
        &self,
        contract: &Contract,
        state: &State,
        call: Call<'_>,
        fuel: u64,
    ) -> Result<Outcome, ContractError> {
        self.metered(contract, state, call, fuel).result
    }

    /// [`Runtime::call_with_fuel`], with the fuel the call used whether it succeeded or
    /// not (a receipt shows it for a refused command too).
    pub fn metered(
        &self,
        contract: &Contract,
        state: &State,
        call: Call<'_>,
        fuel: u64,
    ) -> Metered {
        let mut limits = self.limits;
        limits.fuel = fuel.min(limits.fuel);
        if call.input.len() > limits.max_input {
            return Metered {
                result: Err(ContractError::InputTooLarge {
                    size: call.input.len(),
                    max: limits.max_input,
                }),
                fuel_used: 0,
            };
        }
        let host = Host {
            input: call.input.to_vec(),
            caller: call.caller,
            height: call.height,
            entry: call.entry,
            base: state.clone(),
            changes: Changes::default(),
            output: None,
            events: Vec::new(),
            failure: None,
            written: 0,
            env: call.env.cloned(),
            draws: 0,
            limits,
            store_limits: store_limits(limits.memory),
            component: None,
            stack: vec![contract.code_hash],
            components: contract.components.clone(),
            linker: self.linker.clone(),
            returned: Vec::new(),
            undo: Vec::new(),
            undo_keys: Default::default(),
            memory_above: 0,
        };
        let mut store = Store::new(&self.engine, host);
        store.limiter(|h| &mut h.store_limits);
        let ran = run_entry(
            &self.linker,
            &mut store,
            &contract.module,
            call.entry,
            limits.fuel,
        );
        // Out of fuel used it all (wasmi traps before charging a block it cannot pay
        // for); any other failure leaves what it did not use.
        let fuel_used = match ran {
            Err(ContractError::OutOfFuel) => limits.fuel,
            _ => limits.fuel.saturating_sub(store.get_fuel().unwrap_or(0)),
        };
        let result = ran.and_then(|()| {
            let host = store.into_data();
            if state.bytes_after(&host.changes) > limits.max_state_bytes {
                return Err(ContractError::HostRule("contract state limit"));
            }
            Ok(Outcome {
                output: host.output.unwrap_or_default(),
                events: host.events,
                changes: host.changes,
                fuel_used,
            })
        });
        Metered { result, fuel_used }
    }
}

/// A call's result and the fuel it used, success or not.
#[derive(Debug)]
pub struct Metered {
    /// What the call produced, or why it failed.
    pub result: Result<Outcome, ContractError>,
    /// Fuel used (all of it when the call ran out).
    pub fuel_used: u64,
}

/// One module instance's bounds: one memory of at most `memory` bytes, one table.
fn store_limits(memory: usize) -> StoreLimits {
    StoreLimitsBuilder::new()
        .memory_size(memory)
        .instances(1)
        .memories(1)
        .tables(1)
        .table_elements(4096)
        .build()
}

/// Instantiates `module` in `store` with `fuel` and runs `entry`.
fn run_entry(
    linker: &Linker<Host>,
    store: &mut Store<Host>,
    module: &Module,
    entry: Entry,
    fuel: u64,
) -> Result<(), ContractError> {
    store
        .set_fuel(fuel)
        .map_err(|_| ContractError::HostRule("fuel"))?;
    let instance = linker
        .instantiate_and_start(&mut *store, module)
        .map_err(|e| classify(e, store))?;
    let func = instance
        .get_typed_func::<(), ()>(&*store, entry.export())
        .map_err(|_| ContractError::MissingExport(entry.export()))?;
    func.call(&mut *store, ()).map_err(|e| classify(e, store))
}

impl Default for Runtime {
    fn default() -> Self {
        Self::new(Limits::default())
    }
}

/// The error of a failed instantiation or call: the host's own reason if a host
/// function stopped it, else the trap's.
fn classify(e: wasmi::Error, store: &mut Store<Host>) -> ContractError {
    if let Some(f) = store.data_mut().failure.take() {
        return f;
    }
    match (e.as_trap_code(), e.kind()) {
        (Some(TrapCode::OutOfFuel), _) => ContractError::OutOfFuel,
        (Some(TrapCode::GrowthOperationLimited), _)
        | (_, wasmi::errors::ErrorKind::Memory(_))
        | (
            _,
            wasmi::errors::ErrorKind::Instantiation(
                wasmi::errors::InstantiationError::FailedToInstantiateMemory(_)
                | wasmi::errors::InstantiationError::FailedToInstantiateTable(_)
                | wasmi::errors::InstantiationError::TooManyMemories
                | wasmi::errors::InstantiationError::TooManyTables,
            ),
        ) => ContractError::MemoryLimit,
        (Some(code), _) => ContractError::Trap(truncate(&code.to_string())),
        (None, _) => ContractError::Trap(truncate(&e.to_string())),
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(200).collect()
}

/// Stops the call with `e` (kept for [`classify`]).
fn fail(caller: &mut Caller<'_, Host>, e: ContractError) -> wasmi::Error {
    let message = e.to_string();
    caller.data_mut().failure = Some(e);
    wasmi::Error::new(message)
}

/// Charges the host's work: [`HOST_CALL_FUEL`] plus one unit per [`BYTES_PER_FUEL`]
/// bytes.
fn charge(caller: &mut Caller<'_, Host>, bytes: usize) -> Result<(), wasmi::Error> {
    consume(
        caller,
        HOST_CALL_FUEL + (bytes as u64).div_ceil(BYTES_PER_FUEL),
    )
}

fn memory(caller: &mut Caller<'_, Host>) -> Result<wasmi::Memory, wasmi::Error> {
    match caller.get_export("memory").and_then(Extern::into_memory) {
        Some(m) => Ok(m),
        None => Err(fail(caller, ContractError::MissingExport("memory"))),
    }
}

/// `len` bytes at `ptr` of the guest's memory, `len` at most `max`.
fn read(
    caller: &mut Caller<'_, Host>,
    ptr: i32,
    len: i32,
    max: usize,
    what: &'static str,
) -> Result<Vec<u8>, wasmi::Error> {
    let (Ok(ptr), Ok(len)) = (usize::try_from(ptr), usize::try_from(len)) else {
        return Err(fail(caller, ContractError::HostRule(what)));
    };
    if len > max {
        return Err(fail(caller, ContractError::HostRule(what)));
    }
    charge(caller, len)?;
    let mem = memory(caller)?;
    let mut buf = vec![0u8; len];
    mem.read(&*caller, ptr, &mut buf).map_err(|_| {
        fail(
            caller,
            ContractError::HostRule("out-of-bounds memory access"),
        )
    })?;
    Ok(buf)
}

fn write(caller: &mut Caller<'_, Host>, ptr: i32, bytes: &[u8]) -> Result<(), wasmi::Error> {
    let Ok(ptr) = usize::try_from(ptr) else {
        return Err(fail(caller, ContractError::HostRule("negative pointer")));
    };
    charge(caller, bytes.len())?;
    let mem = memory(caller)?;
    mem.write(&mut *caller, ptr, bytes).map_err(|_| {
        fail(
            caller,
            ContractError::HostRule("out-of-bounds memory access"),
        )
    })
}

fn writable(caller: &mut Caller<'_, Host>) -> Result<(), wasmi::Error> {
    if caller.data().entry != Entry::Execute {
        return Err(fail(caller, ContractError::ReadOnly));
    }
    Ok(())
}

fn record_write(
    caller: &mut Caller<'_, Host>,
    key: Vec<u8>,
    value: Option<Vec<u8>>,
) -> Result<(), wasmi::Error> {
    let h = caller.data_mut();
    if !h.changes.0.contains_key(&key) && h.changes.0.len() >= h.limits.max_writes {
        return Err(fail(caller, ContractError::HostRule("too many writes")));
    }
    h.written = h
        .written
        .saturating_add(key.len() + value.as_ref().map_or(0, Vec::len));
    if h.written > h.limits.max_write_bytes {
        return Err(fail(
            caller,
            ContractError::HostRule("too many bytes written"),
        ));
    }
    if h.component.is_some() && !h.undo_keys.contains(&key) {
        let before = h.changes.0.get(&key).cloned();
        h.undo_keys.insert(key.clone());
        h.undo.push((key.clone(), before));
    }
    h.changes.0.insert(key, value);
    Ok(())
}

/// The state key `key` names for the code running: as written in a contract without
/// components; in one with, [`OWN_KEYS`] ‖ key for its own code and [`COMPONENT_KEYS`]
/// ‖ code hash ‖ key for a component's, so no module reaches another's state.
fn state_key(c: &Caller<'_, Host>, key: Vec<u8>) -> Vec<u8> {
    let h = c.data();
    match h.component {
        Some(hash) => [&[COMPONENT_KEYS][..], &hash, &key].concat(),
        None if h.components.is_empty() => key,
        None => [&[OWN_KEYS][..], &key].concat(),
    }
}

/// The worker's keys for this call, or the call fails naming what it asked for. Only
/// the contract's own code signs or derives: a component it carries does not speak
/// with its key.
fn own_keys(
    caller: &mut Caller<'_, Host>,
    what: &'static str,
) -> Result<Arc<dyn Env>, wasmi::Error> {
    if caller.data().component.is_some() {
        return Err(fail(
            caller,
            ContractError::HostRule(
                "only the contract's own code uses its keys, not its components",
            ),
        ));
    }
    env(caller, what)
}

/// The worker's keys for this call, or the call fails naming what it asked for.
fn env(caller: &mut Caller<'_, Host>, what: &'static str) -> Result<Arc<dyn Env>, wasmi::Error> {
    match caller.data().env.clone() {
        Some(e) => Ok(e),
        None => Err(fail(caller, ContractError::HostRule(what))),
    }
}

/// A purpose (at most [`MAX_PURPOSE`] bytes) and a curve code, read and checked.
fn purpose(
    c: &mut Caller<'_, Host>,
    curve: i32,
    (ptr, len): (i32, i32),
) -> Result<(Curve, Vec<u8>), wasmi::Error> {
    let Some(curve) = Curve::from_code(curve) else {
        return Err(fail(c, ContractError::HostRule("unknown curve")));
    };
    let purpose = read(c, ptr, len, MAX_PURPOSE, "purpose too long")?;
    Ok((curve, purpose))
}

/// The four host functions over the worker's keys: `sign`, `derived_key`,
/// `derived_sign`, `random`. Long on purpose: the four side by side, as in `host_abi`.
fn key_functions(l: &mut Linker<Host>) -> [Result<(), wasmi::errors::LinkerError>; 4] {
    [
        l.func_wrap(
            HOST_MODULE,
            "sign",
            |mut c: Caller<'_, Host>, ptr: i32, len: i32, out: i32| -> Result<i64, wasmi::Error> {
                let max = c.data().limits.max_input;
                let message = read(&mut c, ptr, len, max, "message too large")?;
                charge(&mut c, 0)?;
                consume(&mut c, SIGN_FUEL)?;
                let e = own_keys(&mut c, "no contract key to sign with")?;
                let Some((epoch, sig)) = e.sign(&message) else {
                    return Err(fail(&mut c, ContractError::HostRule("signing failed")));
                };
                write(&mut c, out, &sig)?;
                Ok(i64::try_from(epoch).unwrap_or(i64::MAX))
            },
        )
        .map(|_| ()),
        l.func_wrap(
            HOST_MODULE,
            "derived_key",
            |mut c: Caller<'_, Host>,
             curve: i32,
             pptr: i32,
             plen: i32,
             out: i32|
             -> Result<i32, wasmi::Error> {
                let (curve, purpose) = purpose(&mut c, curve, (pptr, plen))?;
                consume(&mut c, SIGN_FUEL / 4)?;
                let e = own_keys(&mut c, "no contract key to derive from")?;
                let Some(key) = e.derived_public(curve, &purpose) else {
                    return Err(fail(&mut c, ContractError::HostRule("derivation failed")));
                };
                write(&mut c, out, &key)?;
                Ok(65)
            },
        )
        .map(|_| ()),
        l.func_wrap(
            HOST_MODULE,
            "derived_sign",
            |mut c: Caller<'_, Host>,
             curve: i32,
             pptr: i32,
             plen: i32,
             dptr: i32,
             out: i32|
             -> Result<i32, wasmi::Error> {
                let (curve, purpose) = purpose(&mut c, curve, (pptr, plen))?;
                let digest = read(&mut c, dptr, 32, 32, "digest")?;
                let digest: [u8; 32] = digest.try_into().unwrap_or([0; 32]);
                consume(&mut c, SIGN_FUEL)?;
                let e = own_keys(&mut c, "no contract key to sign with")?;
                let Some(sig) = e.derived_sign(curve, &purpose, &digest) else {
                    return Err(fail(&mut c, ContractError::HostRule("signing failed")));
                };
                write(&mut c, out, &sig)?;
                Ok(i32::try_from(sig.len()).unwrap_or(0))
            },
        )
        .map(|_| ()),
        l.func_wrap(
            HOST_MODULE,
            "random",
            |mut c: Caller<'_, Host>, out: i32| -> Result<(), wasmi::Error> {
                let e = env(&mut c, "no randomness here")?;
                let draw = c.data().draws;
                let Some(bytes) = e.random(draw) else {
                    return Err(fail(
                        &mut c,
                        ContractError::HostRule("randomness in a query"),
                    ));
                };
                c.data_mut().draws = draw + 1;
                write(&mut c, out, &bytes)
            },
        )
        .map(|_| ()),
    ]
}

/// A component's name from the guest's memory (at most [`MAX_COMPONENT_NAME`] bytes).
fn component_name(c: &mut Caller<'_, Host>, ptr: i32, len: i32) -> Result<Vec<u8>, wasmi::Error> {
    read(c, ptr, len, MAX_COMPONENT_NAME, "component name too long")
}

/// The four host functions of calls between a contract's modules: `call`, `forward`,
/// `call_output`, `self_id`.
fn call_functions(l: &mut Linker<Host>) -> [Result<(), wasmi::errors::LinkerError>; 4] {
    [
        l.func_wrap(
            HOST_MODULE,
            "call",
            |mut c: Caller<'_, Host>,
             nptr: i32,
             nlen: i32,
             iptr: i32,
             ilen: i32|
             -> Result<i32, wasmi::Error> {
                let name = component_name(&mut c, nptr, nlen)?;
                let max = c.data().limits.max_input;
                let input = read(&mut c, iptr, ilen, max, "call input too large")?;
                let me = c.data().stack.last().copied().unwrap_or_default();
                nested(&mut c, &name, input, component_caller_id(&me))
            },
        )
        .map(|_| ()),
        l.func_wrap(
            HOST_MODULE,
            "forward",
            |mut c: Caller<'_, Host>,
             nptr: i32,
             nlen: i32,
             offset: i32|
             -> Result<i32, wasmi::Error> {
                let name = component_name(&mut c, nptr, nlen)?;
                let input = usize::try_from(offset)
                    .ok()
                    .and_then(|o| c.data().input.get(o..))
                    .map(<[u8]>::to_vec);
                let Some(input) = input else {
                    return Err(fail(
                        &mut c,
                        ContractError::HostRule("forward past the input's end"),
                    ));
                };
                charge(&mut c, input.len())?;
                let caller = c.data().caller;
                nested(&mut c, &name, input, caller)
            },
        )
        .map(|_| ()),
        l.func_wrap(
            HOST_MODULE,
            "call_output",
            |mut c: Caller<'_, Host>, ptr: i32| -> Result<(), wasmi::Error> {
                let out = core::mem::take(&mut c.data_mut().returned);
                let written = write(&mut c, ptr, &out);
                c.data_mut().returned = out;
                written
            },
        )
        .map(|_| ()),
        l.func_wrap(
            HOST_MODULE,
            "self_id",
            |mut c: Caller<'_, Host>, ptr: i32| -> Result<(), wasmi::Error> {
                let me = c.data().stack.last().copied().unwrap_or_default();
                write(&mut c, ptr, &component_caller_id(&me))
            },
        )
        .map(|_| ()),
    ]
}

/// Runs component `name` on `input` for `caller`, inside the running call: the same
/// state with the writes so far, the same bounds, the caller's fuel. Its writes and
/// events stand only if it succeeds; its output is kept for `call_output`. The overlay
/// and the events move to the callee and back (no copy per call): a failed callee's
/// writes are undone from its log, its events cut off.
fn nested(
    c: &mut Caller<'_, Host>,
    name: &[u8],
    input: Vec<u8>,
    caller: [u8; 32],
) -> Result<i32, wasmi::Error> {
    let callee = std::str::from_utf8(name)
        .ok()
        .and_then(|n| c.data().components.get(n))
        .cloned();
    c.data_mut().returned.clear();
    let Some(callee) = callee else {
        return Ok(CallStatus::NoComponent as i32);
    };
    if c.data().stack.contains(&callee.code_hash) {
        return Ok(CallStatus::Reentrant as i32);
    }
    if c.data().stack.len() > MAX_CALL_DEPTH {
        return Ok(CallStatus::TooDeep as i32);
    }
    // Instantiating the callee copies its data segments and makes its memory: paid by
    // its size and by its memory's (a unit per 64 bytes, above what the host spends).
    consume(
        c,
        CALL_FUEL + (callee.size as u64).div_ceil(BYTES_PER_FUEL) + callee.memory / 64,
    )?;
    // The callers' memory and the callee's together stay within one call's bound.
    let mine = memory(c)?.size(&*c).saturating_mul(65_536);
    let held = c
        .data()
        .memory_above
        .saturating_add(usize::try_from(mine).unwrap_or(usize::MAX));
    let fuel = c.get_fuel().unwrap_or(0);
    let h = c.data_mut();
    let entry = match h.entry {
        Entry::Execute => Entry::Execute,
        Entry::Query | Entry::ReadEvents => Entry::Query,
    };
    let mut stack = h.stack.clone();
    stack.push(callee.code_hash);
    let (events_before, written_before) = (h.events.len(), h.written);
    let frame = Host {
        input,
        caller,
        height: h.height,
        entry,
        base: h.base.clone(),
        changes: core::mem::take(&mut h.changes),
        output: None,
        events: core::mem::take(&mut h.events),
        failure: None,
        limits: h.limits,
        store_limits: store_limits(h.limits.memory.saturating_sub(held)),
        written: h.written,
        env: h.env.clone(),
        draws: h.draws,
        component: Some(callee.code_hash),
        stack,
        components: h.components.clone(),
        linker: h.linker.clone(),
        returned: Vec::new(),
        undo: Vec::new(),
        undo_keys: Default::default(),
        memory_above: held,
    };
    let linker = h.linker.clone();
    let mut store = Store::new(c.engine(), frame);
    store.limiter(|h| &mut h.store_limits);
    let ran = run_entry(&linker, &mut store, &callee.module, entry, fuel);
    // The callee's fuel is the caller's: what it left, the caller has left.
    let left = match ran {
        Err(ContractError::OutOfFuel) => 0,
        _ => store.get_fuel().unwrap_or(0),
    };
    c.set_fuel(left)?;
    let mut done = store.into_data();
    let h = c.data_mut();
    h.draws = done.draws;
    if ran.is_err() {
        for (key, before) in done.undo.into_iter().rev() {
            match before {
                Some(v) => done.changes.0.insert(key, v),
                None => done.changes.0.remove(&key),
            };
        }
        done.events.truncate(events_before);
        h.changes = done.changes;
        h.events = done.events;
        h.written = written_before;
        h.returned.clear();
        return Ok(CallStatus::Failed as i32);
    }
    h.changes = done.changes;
    h.events = done.events;
    h.written = done.written;
    // A component's undo covers what its callees wrote first too.
    if h.component.is_some() {
        for (key, before) in done.undo {
            if h.undo_keys.insert(key.clone()) {
                h.undo.push((key, before));
            }
        }
    }
    h.returned = done.output.unwrap_or_default();
    Ok(i32::try_from(h.returned.len()).unwrap_or(i32::MAX))
}

/// Charges `fuel` more (the host's own work beyond copying bytes).
fn consume(caller: &mut Caller<'_, Host>, fuel: u64) -> Result<(), wasmi::Error> {
    let left = caller.get_fuel().unwrap_or(0);
    match left.checked_sub(fuel) {
        Some(rest) => caller.set_fuel(rest),
        None => Err(fail(caller, ContractError::OutOfFuel)),
    }
}

/// Long on purpose: the ten host functions of the ABI over the call's input, output,
/// state and events, each a few lines, side by side so the table in the crate docs can
/// be checked against one place (the key functions are [`key_functions`]).
fn host_abi(engine: &Engine) -> Linker<Host> {
    let mut l = Linker::<Host>::new(engine);
    let keys = key_functions(&mut l);
    let calls = call_functions(&mut l);
    let results = [
        l.func_wrap(HOST_MODULE, "input_len", |c: Caller<'_, Host>| {
            i32::try_from(c.data().input.len()).unwrap_or(i32::MAX)
        })
        .map(|_| ()),
        l.func_wrap(
            HOST_MODULE,
            "input_read",
            |mut c: Caller<'_, Host>, ptr: i32| -> Result<(), wasmi::Error> {
                let input = c.data().input.clone();
                write(&mut c, ptr, &input)
            },
        )
        .map(|_| ()),
        l.func_wrap(
            HOST_MODULE,
            "output",
            |mut c: Caller<'_, Host>, ptr: i32, len: i32| -> Result<(), wasmi::Error> {
                let max = c.data().limits.max_output;
                if c.data().output.is_some() {
                    return Err(fail(&mut c, ContractError::HostRule("output set twice")));
                }
                let out = read(&mut c, ptr, len, max, "output too large")?;
                c.data_mut().output = Some(out);
                Ok(())
            },
        )
        .map(|_| ()),
        l.func_wrap(
            HOST_MODULE,
            "storage_get",
            |mut c: Caller<'_, Host>,
             kptr: i32,
             klen: i32,
             vptr: i32,
             vcap: i32|
             -> Result<i32, wasmi::Error> {
                let max = c.data().limits.max_key;
                let key = read(&mut c, kptr, klen, max, "key too large")?;
                let key = state_key(&c, key);
                let h = c.data();
                let value = match h.changes.0.get(&key) {
                    Some(v) => v.clone(),
                    None => h.base.get(&key).map(<[u8]>::to_vec),
                };
                let Some(value) = value else {
                    return Ok(-1);
                };
                let cap = usize::try_from(vcap).unwrap_or(0);
                let n = value.len().min(cap);
                write(&mut c, vptr, value.get(..n).unwrap_or_default())?;
                Ok(i32::try_from(value.len()).unwrap_or(i32::MAX))
            },
        )
        .map(|_| ()),
        l.func_wrap(
            HOST_MODULE,
            "storage_set",
            |mut c: Caller<'_, Host>,
             kptr: i32,
             klen: i32,
             vptr: i32,
             vlen: i32|
             -> Result<(), wasmi::Error> {
                writable(&mut c)?;
                let (mk, mv) = (c.data().limits.max_key, c.data().limits.max_value);
                let key = read(&mut c, kptr, klen, mk, "key too large")?;
                let key = state_key(&c, key);
                let value = read(&mut c, vptr, vlen, mv, "value too large")?;
                record_write(&mut c, key, Some(value))
            },
        )
        .map(|_| ()),
        l.func_wrap(
            HOST_MODULE,
            "storage_remove",
            |mut c: Caller<'_, Host>, kptr: i32, klen: i32| -> Result<(), wasmi::Error> {
                writable(&mut c)?;
                let mk = c.data().limits.max_key;
                let key = read(&mut c, kptr, klen, mk, "key too large")?;
                let key = state_key(&c, key);
                record_write(&mut c, key, None)
            },
        )
        .map(|_| ()),
        l.func_wrap(
            HOST_MODULE,
            "caller",
            |mut c: Caller<'_, Host>, ptr: i32| -> Result<(), wasmi::Error> {
                let id = c.data().caller;
                write(&mut c, ptr, &id)
            },
        )
        .map(|_| ()),
        l.func_wrap(HOST_MODULE, "block_height", |c: Caller<'_, Host>| {
            i64::try_from(c.data().height).unwrap_or(i64::MAX)
        })
        .map(|_| ()),
        l.func_wrap(
            HOST_MODULE,
            "emit_event",
            |mut c: Caller<'_, Host>, ptr: i32, len: i32| -> Result<(), wasmi::Error> {
                writable(&mut c)?;
                let (max, most) = (c.data().limits.max_event, c.data().limits.max_events);
                let event = read(&mut c, ptr, len, max, "event too large")?;
                if c.data().events.len() >= most {
                    return Err(fail(&mut c, ContractError::HostRule("too many events")));
                }
                c.data_mut().events.push(event);
                Ok(())
            },
        )
        .map(|_| ()),
        l.func_wrap(
            HOST_MODULE,
            "abort",
            |mut c: Caller<'_, Host>, ptr: i32, len: i32| -> Result<(), wasmi::Error> {
                let msg = read(&mut c, ptr, len, 1024, "abort message too large")?;
                let text = truncate(&String::from_utf8_lossy(&msg));
                Err(fail(&mut c, ContractError::Aborted(text)))
            },
        )
        .map(|_| ()),
    ];
    // `func_wrap` fails only on a name defined twice; the names are distinct.
    for r in results.into_iter().chain(keys).chain(calls) {
        if let Err(e) = r {
            unreachable!("host ABI: {e}");
        }
    }
    l
}
