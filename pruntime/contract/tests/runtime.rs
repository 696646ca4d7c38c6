//! The contract runtime against small contracts written in WebAssembly text: what a call
//! sees and produces, that failures change nothing, that every bound holds, and that
//! modules the host cannot run deterministically are refused at compile time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use common::{call, wasm};
use phalanx_contract::{ContractError, Entry, HOST_CALL_FUEL, Limits, Runtime, State, code_hash};

/// A counter: `execute` adds one to the u64 under "count", emits and returns it;
/// `query` returns it.
const COUNTER: &str = r#"
(module
  (import "phalanx" "storage_get" (func $get (param i32 i32 i32 i32) (result i32)))
  (import "phalanx" "storage_set" (func $set (param i32 i32 i32 i32)))
  (import "phalanx" "output" (func $out (param i32 i32)))
  (import "phalanx" "emit_event" (func $ev (param i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "count")
  (func (export "execute")
    (if (i32.eq (call $get (i32.const 0) (i32.const 5) (i32.const 16) (i32.const 8)) (i32.const -1))
      (then (i64.store (i32.const 16) (i64.const 0))))
    (i64.store (i32.const 16) (i64.add (i64.load (i32.const 16)) (i64.const 1)))
    (call $set (i32.const 0) (i32.const 5) (i32.const 16) (i32.const 8))
    (call $ev (i32.const 16) (i32.const 8))
    (call $out (i32.const 16) (i32.const 8)))
  (func (export "query")
    (drop (call $get (i32.const 0) (i32.const 5) (i32.const 16) (i32.const 8)))
    (call $out (i32.const 16) (i32.const 8))))
"#;

/// Echoes caller ‖ height ‖ input.
const ECHO: &str = r#"
(module
  (import "phalanx" "input_len" (func $len (result i32)))
  (import "phalanx" "input_read" (func $read (param i32)))
  (import "phalanx" "caller" (func $caller (param i32)))
  (import "phalanx" "block_height" (func $height (result i64)))
  (import "phalanx" "output" (func $out (param i32 i32)))
  (memory (export "memory") 1)
  (func (export "query")
    (call $caller (i32.const 0))
    (i64.store (i32.const 32) (call $height))
    (call $read (i32.const 40))
    (call $out (i32.const 0) (i32.add (i32.const 40) (call $len)))))
"#;

#[test]
fn commands_change_state_queries_read_it_and_workers_agree_on_the_root() {
    let rt = Runtime::default();
    let code = wasm(COUNTER);
    let c = rt.compile(&code).unwrap();
    assert_eq!(c.code_hash(), code_hash(&code));
    let (mut a, mut b) = (State::default(), State::default());
    for i in 1..=3u64 {
        for s in [&mut a, &mut b] {
            let o = rt.call(&c, s, call(Entry::Execute, b"")).unwrap();
            assert_eq!(o.output, i.to_le_bytes());
            assert_eq!(o.events, vec![i.to_le_bytes().to_vec()]);
            assert!(o.fuel_used > 0);
            s.apply(&o.changes);
        }
    }
    assert_eq!(a, b);
    assert_ne!(a, State::default());
    let q = rt.call(&c, &a, call(Entry::Query, b"")).unwrap();
    assert_eq!(q.output, 3u64.to_le_bytes());
    assert!(q.changes.0.is_empty());
    // The same run costs the same fuel everywhere: fuel is part of the determinism.
    let f1 = rt
        .call(&c, &a, call(Entry::Execute, b""))
        .unwrap()
        .fuel_used;
    let f2 = rt
        .call(&c, &b, call(Entry::Execute, b""))
        .unwrap()
        .fuel_used;
    assert_eq!(f1, f2);
}

#[test]
fn a_call_sees_its_caller_height_and_input() {
    let rt = Runtime::default();
    let c = rt.compile(&wasm(ECHO)).unwrap();
    let o = rt
        .call(&c, &State::default(), call(Entry::Query, b"hello"))
        .unwrap();
    let mut want = vec![7u8; 32];
    want.extend_from_slice(&42u64.to_le_bytes());
    want.extend_from_slice(b"hello");
    assert_eq!(o.output, want);
    // No `execute` export: a command is refused by name.
    assert_eq!(
        rt.call(&c, &State::default(), call(Entry::Execute, b"")),
        Err(ContractError::MissingExport("execute"))
    );
}

#[test]
fn failures_change_nothing_and_say_why() {
    let rt = Runtime::new(Limits {
        fuel: 100_000,
        ..Limits::default()
    });
    let state = State::default();
    let run = |body: &str| {
        let text = format!(
            r#"(module
              (import "phalanx" "storage_set" (func $set (param i32 i32 i32 i32)))
              (import "phalanx" "abort" (func $abort (param i32 i32)))
              (memory (export "memory") 1)
              (data (i32.const 0) "key-and-a-reason")
              (func (export "execute")
                (call $set (i32.const 0) (i32.const 3) (i32.const 0) (i32.const 3))
                {body}))"#
        );
        let c = rt.compile(&wasm(&text)).unwrap();
        rt.call(&c, &state, call(Entry::Execute, b""))
    };
    assert_eq!(run("(loop $l (br $l))"), Err(ContractError::OutOfFuel));
    assert!(matches!(run("(unreachable)"), Err(ContractError::Trap(_))));
    assert_eq!(
        run("(call $abort (i32.const 8) (i32.const 8))"),
        Err(ContractError::Aborted("a-reason".into()))
    );
    // NL1: the contract's message (which may carry state or input) is never displayed,
    // so neither logs nor error bodies carry it.
    let shown = run("(call $abort (i32.const 8) (i32.const 8))")
        .unwrap_err()
        .to_string();
    assert!(!shown.contains("a-reason"), "{shown}");
    assert!(matches!(
        run("(drop (i32.load (i32.const 70000)))"),
        Err(ContractError::Trap(_))
    ));
    assert_eq!(
        run("(call $set (i32.const 0) (i32.const 1000) (i32.const 0) (i32.const 1))"),
        Err(ContractError::HostRule("key too large"))
    );
    assert_eq!(
        run("(call $set (i32.const 65530) (i32.const 100) (i32.const 0) (i32.const 1))"),
        Err(ContractError::HostRule("out-of-bounds memory access"))
    );
    assert_eq!(
        run("(call $set (i32.const -1) (i32.const 3) (i32.const 0) (i32.const 1))"),
        Err(ContractError::HostRule("key too large"))
    );
    // Nothing above reached the state (it is only changed by `apply`), and a
    // successful body does write.
    assert!(state.is_empty());
    assert_eq!(run("").unwrap().changes.0.len(), 1);
}

#[test]
fn queries_are_read_only() {
    let rt = Runtime::default();
    let c = rt
        .compile(&wasm(
            r#"(module
              (import "phalanx" "storage_set" (func $set (param i32 i32 i32 i32)))
              (memory (export "memory") 1)
              (func (export "query")
                (call $set (i32.const 0) (i32.const 1) (i32.const 0) (i32.const 1))))"#,
        ))
        .unwrap();
    assert_eq!(
        rt.call(&c, &State::default(), call(Entry::Query, b"")),
        Err(ContractError::ReadOnly)
    );
}

#[test]
fn memory_fuel_and_input_are_capped() {
    let rt = Runtime::new(Limits {
        memory: 2 * 65536,
        max_input: 16,
        ..Limits::default()
    });
    // Asking for more memory than the cap at start fails the call; growing past it
    // returns -1 as WebAssembly says (the contract sees it, deterministically).
    let big = rt
        .compile(&wasm(
            r#"(module (memory (export "memory") 3) (func (export "execute")))"#,
        ))
        .unwrap();
    assert_eq!(
        rt.call(&big, &State::default(), call(Entry::Execute, b"")),
        Err(ContractError::MemoryLimit)
    );
    let grow = rt
        .compile(&wasm(
            r#"(module
              (import "phalanx" "output" (func $out (param i32 i32)))
              (memory (export "memory") 1)
              (func (export "execute")
                (i32.store (i32.const 0) (memory.grow (i32.const 5)))
                (call $out (i32.const 0) (i32.const 4))))"#,
        ))
        .unwrap();
    let o = rt
        .call(&grow, &State::default(), call(Entry::Execute, b""))
        .unwrap();
    assert_eq!(o.output, (-1i32).to_le_bytes());
    assert_eq!(
        rt.call(&grow, &State::default(), call(Entry::Execute, &[0; 17])),
        Err(ContractError::InputTooLarge { size: 17, max: 16 })
    );
    // Host calls cost fuel too: a call with less fuel than one host call fails.
    let poor = Runtime::new(Limits {
        fuel: HOST_CALL_FUEL / 2,
        ..Limits::default()
    });
    let c = poor.compile(&wasm(ECHO)).unwrap();
    assert_eq!(
        poor.call(&c, &State::default(), call(Entry::Query, b"")),
        Err(ContractError::OutOfFuel)
    );
}

#[test]
fn modules_the_host_cannot_run_deterministically_are_refused() {
    let rt = Runtime::new(Limits {
        max_code: 4096,
        ..Limits::default()
    });
    // Floating point (as CosmWasm does: NaN bits differ between machines).
    let float = wasm(
        r#"(module (memory (export "memory") 1)
             (func (export "execute") (drop (f64.add (f64.const 1) (f64.const 2)))))"#,
    );
    assert!(matches!(
        rt.compile(&float),
        Err(ContractError::InvalidCode(_))
    ));
    // An import the host does not provide (WASI, say).
    let wasi = wasm(
        r#"(module (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
             (memory (export "memory") 1))"#,
    );
    assert_eq!(
        rt.compile(&wasi).err(),
        Some(ContractError::UnknownImport {
            module: "wasi_snapshot_preview1".into(),
            name: "fd_write".into()
        })
    );
    let no_memory = wasm(r#"(module (func (export "execute")))"#);
    assert_eq!(
        rt.compile(&no_memory).err(),
        Some(ContractError::MissingExport("memory"))
    );
    assert_eq!(
        rt.compile(&[0; 5000]).err(),
        Some(ContractError::CodeTooLarge {
            size: 5000,
            max: 4096
        })
    );
    // Garbage, and every truncation of a valid module, are refused without panicking.
    assert!(matches!(
        rt.compile(b"\0asm garbage"),
        Err(ContractError::InvalidCode(_))
    ));
    // A module cut at a section boundary can still be a whole module (one without its
    // trailing custom "name" section); a cut anywhere else cannot.
    let good = wasm(COUNTER);
    let boundaries = section_boundaries(&good);
    for cut in 0..good.len() {
        let r = rt.compile(&good[..cut]);
        if !boundaries.contains(&cut) {
            assert!(r.is_err(), "cut {cut}");
        }
    }
    rt.compile(&good).unwrap();
}

/// Offsets where a section of a module ends (after the 8-byte header: id, LEB128
/// size, payload).
fn section_boundaries(wasm: &[u8]) -> Vec<usize> {
    let mut out = vec![8];
    let mut at = 8;
    while at < wasm.len() {
        let (mut size, mut shift, mut i) = (0usize, 0, at + 1);
        loop {
            let b = wasm[i];
            size |= usize::from(b & 0x7f) << shift;
            shift += 7;
            i += 1;
            if b & 0x80 == 0 {
                break;
            }
        }
        at = i + size;
        out.push(at);
    }
    out
}

#[test]
fn a_contract_that_spins_runs_out_of_its_full_fuel_not_the_hosts_stack() {
    let rt = Runtime::default();
    let c = rt
        .compile(&wasm(
            r#"(module (memory (export "memory") 1) (func (export "execute") (loop $l (br $l))))"#,
        ))
        .unwrap();
    assert_eq!(
        rt.call(&c, &State::default(), call(Entry::Execute, b"")),
        Err(ContractError::OutOfFuel)
    );
}

/// NL4: one call writes at most `max_write_bytes` (the review's 1024 × 64 KiB in one
/// command is refused), and a contract's state never grows past `max_state_bytes`;
/// either way nothing changes.
#[test]
fn attack_nl4_writes_and_state_are_bounded() {
    // 32 writes of 64 KiB values (2 MiB): past the default 1 MiB per call.
    let big = r#"(module
      (import "phalanx" "storage_set" (func $set (param i32 i32 i32 i32)))
      (memory (export "memory") 2)
      (func (export "execute") (local $i i32)
        (loop $l
          (i32.store (i32.const 0) (local.get $i))
          (call $set (i32.const 0) (i32.const 4) (i32.const 16) (i32.const 65536))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $l (i32.lt_u (local.get $i) (i32.const 32))))))"#;
    let rt = Runtime::default();
    let c = rt.compile(&wasm(big)).unwrap();
    assert_eq!(
        rt.call(&c, &State::default(), call(Entry::Execute, b"")),
        Err(ContractError::HostRule("too many bytes written"))
    );
    // Within the per-call bound, but past a contract's state cap.
    let roomy = Runtime::new(Limits {
        max_write_bytes: 4 * 1024 * 1024,
        max_state_bytes: 16 * 65536,
        ..Limits::default()
    });
    let c = roomy.compile(&wasm(big)).unwrap();
    assert_eq!(
        roomy.call(&c, &State::default(), call(Entry::Execute, b"")),
        Err(ContractError::HostRule("contract state limit"))
    );
    // The state's size follows what is applied.
    let mut s = State::default();
    let mut ch = phalanx_contract::Changes::default();
    ch.0.insert(b"k".to_vec(), Some(vec![0; 10]));
    s.apply(&ch);
    assert_eq!(s.bytes(), 11);
    ch.0.insert(b"k".to_vec(), None);
    s.apply(&ch);
    assert_eq!(s.bytes(), 0);
}
