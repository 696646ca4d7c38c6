//! Contracts calling contracts: a contract's module carries components (`bundle`), and
//! its code calls them synchronously. What a callee sees (its caller, its own state),
//! what a failed callee leaves (nothing), whose fuel it spends (the caller's), how deep
//! calls go and that none re-enters, that components do not sign with the contract's
//! key, and that malformed bundles are refused at compile time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use common::{call, wasm};
use phalanx_contract::{
    CALL_FUEL, COMPONENT_KEYS, Call, CallStatus, ContractError, Entry, Env, OWN_KEYS, Runtime,
    State, bundle, code_hash, component_caller_id,
};
use std::sync::Arc;

/// A component: `execute` adds one to its own "count", emits it, and outputs its caller
/// ‖ count; an input starting with `f` aborts after the write. `query` outputs the count.
const INNER: &str = r#"
(module
  (import "phalanx" "storage_get" (func $get (param i32 i32 i32 i32) (result i32)))
  (import "phalanx" "storage_set" (func $set (param i32 i32 i32 i32)))
  (import "phalanx" "caller" (func $caller (param i32)))
  (import "phalanx" "input_len" (func $len (result i32)))
  (import "phalanx" "input_read" (func $read (param i32)))
  (import "phalanx" "output" (func $out (param i32 i32)))
  (import "phalanx" "emit_event" (func $ev (param i32 i32)))
  (import "phalanx" "abort" (func $abort (param i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "count")
  (func $count
    (if (i32.eq (call $get (i32.const 0) (i32.const 5) (i32.const 48) (i32.const 8)) (i32.const -1))
      (then (i64.store (i32.const 48) (i64.const 0)))))
  (func (export "execute")
    (call $count)
    (i64.store (i32.const 48) (i64.add (i64.load (i32.const 48)) (i64.const 1)))
    (call $set (i32.const 0) (i32.const 5) (i32.const 48) (i32.const 8))
    (call $ev (i32.const 48) (i32.const 8))
    (call $read (i32.const 100))
    (if (i32.and (i32.gt_s (call $len) (i32.const 0))
                 (i32.eq (i32.load8_u (i32.const 100)) (i32.const 102)))
      (then (call $abort (i32.const 0) (i32.const 5))))
    (call $caller (i32.const 16))
    (call $out (i32.const 16) (i32.const 40)))
  (func (export "query")
    (call $count)
    (call $out (i32.const 48) (i32.const 8))))
"#;

/// The contract: input `op ‖ rest`. `c`: call "inner" with `rest`; `f`: forward its own
/// input from offset 1 to "inner"; anything else: call "nobody". A command also sets its
/// own "count" to 7. Output: the status (i32 LE) ‖ the callee's output ‖ its `self_id`.
const ROOT: &str = r#"
(module
  (import "phalanx" "call" (func $call (param i32 i32 i32 i32) (result i32)))
  (import "phalanx" "forward" (func $fwd (param i32 i32 i32) (result i32)))
  (import "phalanx" "call_output" (func $co (param i32)))
  (import "phalanx" "self_id" (func $self (param i32)))
  (import "phalanx" "input_len" (func $len (result i32)))
  (import "phalanx" "input_read" (func $read (param i32)))
  (import "phalanx" "output" (func $out (param i32 i32)))
  (import "phalanx" "storage_set" (func $set (param i32 i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "inner")
  (data (i32.const 8) "count")
  (data (i32.const 16) "nobody")
  (func $run (param $command i32)
    (local $n i32) (local $r i32) (local $got i32)
    (call $read (i32.const 1024))
    (local.set $n (call $len))
    (if (local.get $command)
      (then
        (i64.store (i32.const 200) (i64.const 7))
        (call $set (i32.const 8) (i32.const 5) (i32.const 200) (i32.const 8))))
    (local.set $r
      (if (result i32) (i32.eq (i32.load8_u (i32.const 1024)) (i32.const 99))
        (then (call $call (i32.const 0) (i32.const 5) (i32.const 1025)
                          (i32.sub (local.get $n) (i32.const 1))))
        (else (if (result i32) (i32.eq (i32.load8_u (i32.const 1024)) (i32.const 102))
          (then (call $fwd (i32.const 0) (i32.const 5) (i32.const 1)))
          (else (call $call (i32.const 16) (i32.const 6) (i32.const 1025) (i32.const 0)))))))
    (i32.store (i32.const 2048) (local.get $r))
    (local.set $got (select (local.get $r) (i32.const 0) (i32.gt_s (local.get $r) (i32.const 0))))
    (if (local.get $got) (then (call $co (i32.const 2052))))
    (call $self (i32.add (i32.const 2052) (local.get $got)))
    (call $out (i32.const 2048) (i32.add (i32.const 36) (local.get $got))))
  (func (export "execute") (call $run (i32.const 1)))
  (func (export "query") (call $run (i32.const 0))))
"#;

/// (status, the callee's output, the caller's self id) from ROOT's output.
fn parsed(out: &[u8]) -> (i32, Vec<u8>, [u8; 32]) {
    let status = i32::from_le_bytes(out[..4].try_into().unwrap());
    let (got, id) = out[4..].split_at(out.len() - 36);
    (status, got.to_vec(), id.try_into().unwrap())
}

#[test]
fn a_call_runs_the_component_on_its_own_state_as_the_calling_module() {
    let rt = Runtime::default();
    let inner = wasm(INNER);
    let code = bundle(&wasm(ROOT), &[("inner", &inner)]).unwrap();
    let c = rt.compile(&code).unwrap();
    assert_eq!(
        c.code_hash(),
        code_hash(&code),
        "the hash covers the components"
    );
    assert_eq!(
        c.components(),
        vec![("inner".to_owned(), code_hash(&inner))]
    );
    let me = component_caller_id(&c.code_hash());
    let inner_count = [&[COMPONENT_KEYS][..], &code_hash(&inner), b"count"].concat();

    let mut state = State::default();
    for n in 1..=2u64 {
        let o = rt.call(&c, &state, call(Entry::Execute, b"cx")).unwrap();
        let (status, got, id) = parsed(&o.output);
        assert_eq!(status, 40);
        assert_eq!(&got[..32], &me, "the callee sees the calling module");
        assert_eq!(got[32..], n.to_le_bytes());
        assert_eq!(id, me);
        assert_eq!(
            o.events,
            vec![n.to_le_bytes().to_vec()],
            "its events are the command's"
        );
        state.apply(&o.changes);
    }
    // Two counts of one name, apart: the contract's own and the component's.
    assert_eq!(state.get(b"\x00count"), Some(&7u64.to_le_bytes()[..]));
    assert_eq!(state.get(&inner_count), Some(&2u64.to_le_bytes()[..]));

    // A forward: the contract's own input from offset 1, as the contract's caller.
    let o = rt.call(&c, &state, call(Entry::Execute, b"fx")).unwrap();
    let (status, got, _) = parsed(&o.output);
    assert_eq!(status, 40);
    assert_eq!(&got[..32], &[7; 32], "a forward passes the user on");
    assert_eq!(got[32..], 3u64.to_le_bytes());

    // A query's calls run the callee's query, read-only.
    let q = rt.call(&c, &state, call(Entry::Query, b"c")).unwrap();
    assert_eq!(parsed(&q.output).1, 2u64.to_le_bytes());
    assert!(q.changes.0.is_empty());
}

#[test]
fn a_failed_callee_changes_nothing_and_the_caller_goes_on() {
    let rt = Runtime::default();
    let c = rt
        .compile(&bundle(&wasm(ROOT), &[("inner", &wasm(INNER))]).unwrap())
        .unwrap();
    // "f" makes the callee write, emit, then abort.
    let o = rt
        .call(&c, &State::default(), call(Entry::Execute, b"cf"))
        .unwrap();
    let (status, got, _) = parsed(&o.output);
    assert_eq!(status, CallStatus::Failed as i32);
    assert!(got.is_empty());
    assert!(o.events.is_empty(), "the callee's event is undone");
    assert_eq!(
        o.changes.0.keys().cloned().collect::<Vec<_>>(),
        vec![b"\x00count".to_vec()],
        "only the contract's own write stands"
    );
    let o = rt
        .call(&c, &State::default(), call(Entry::Execute, b"n"))
        .unwrap();
    assert_eq!(parsed(&o.output).0, CallStatus::NoComponent as i32);
}

#[test]
fn the_callee_spends_the_callers_fuel() {
    let rt = Runtime::default();
    let c = rt
        .compile(&bundle(&wasm(ROOT), &[("inner", &wasm(INNER))]).unwrap())
        .unwrap();
    let state = State::default();
    let none = rt.call(&c, &state, call(Entry::Execute, b"n")).unwrap();
    let one = rt.call(&c, &state, call(Entry::Execute, b"cx")).unwrap();
    assert!(
        one.fuel_used > none.fuel_used + CALL_FUEL,
        "{one:?} {none:?}"
    );
    // A callee that spins takes all the fuel: the caller cannot go on either.
    let spin =
        wasm(r#"(module (memory (export "memory") 1) (func (export "execute") (loop (br 0))))"#);
    let c = rt
        .compile(&bundle(&wasm(ROOT), &[("inner", &spin)]).unwrap())
        .unwrap();
    let m = rt.metered(&c, &state, call(Entry::Execute, b"cx"), 1_000_000);
    assert_eq!(m.result.unwrap_err(), ContractError::OutOfFuel);
    assert_eq!(m.fuel_used, 1_000_000);
}

/// Component `d{i}`: calls `d{i+1}` with no input and outputs its status (i32 LE) ‖ the
/// callee's output; `d0` (the contract) starts the chain. A component that names itself
/// re-enters.
fn chain_link(i: usize, next: &str) -> Vec<u8> {
    wasm(&format!(
        r#"(module
  (import "phalanx" "call" (func $call (param i32 i32 i32 i32) (result i32)))
  (import "phalanx" "call_output" (func $co (param i32)))
  (import "phalanx" "output" (func $out (param i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "{next}")
  (data (i32.const 64) "link {i}")
  (func (export "execute")
    (local $r i32) (local $got i32)
    (local.set $r (call $call (i32.const 0) (i32.const {len}) (i32.const 0) (i32.const 0)))
    (i32.store (i32.const 1024) (local.get $r))
    (local.set $got (select (local.get $r) (i32.const 0) (i32.gt_s (local.get $r) (i32.const 0))))
    (if (local.get $got) (then (call $co (i32.const 1028))))
    (call $out (i32.const 1024) (i32.add (i32.const 4) (local.get $got)))))"#,
        len = next.len()
    ))
}

fn statuses(mut out: &[u8]) -> Vec<i32> {
    let mut all = Vec::new();
    while out.len() >= 4 {
        all.push(i32::from_le_bytes(out[..4].try_into().unwrap()));
        out = &out[4..];
    }
    all
}

#[test]
fn calls_go_at_most_four_deep_and_never_reenter() {
    let rt = Runtime::default();
    let links: Vec<Vec<u8>> = (1..=6)
        .map(|i| chain_link(i, &format!("d{}", i + 1)))
        .collect();
    let named: Vec<(String, &[u8])> = links
        .iter()
        .enumerate()
        .map(|(i, l)| (format!("d{}", i + 1), l.as_slice()))
        .collect();
    let parts: Vec<(&str, &[u8])> = named.iter().map(|(n, l)| (n.as_str(), *l)).collect();
    let c = rt
        .compile(&bundle(&chain_link(0, "d1"), &parts).unwrap())
        .unwrap();
    let o = rt
        .call(&c, &State::default(), call(Entry::Execute, b""))
        .unwrap();
    // The contract, d1, d2 and d3 call on; d4 is the fourth nested call and may not.
    assert_eq!(statuses(&o.output)[4], CallStatus::TooDeep as i32);
    assert!(statuses(&o.output)[..4].iter().all(|s| *s > 0));

    let itself = chain_link(1, "me");
    let c = rt
        .compile(&bundle(&chain_link(0, "me"), &[("me", &itself)]).unwrap())
        .unwrap();
    let o = rt
        .call(&c, &State::default(), call(Entry::Execute, b""))
        .unwrap();
    assert_eq!(statuses(&o.output)[1], CallStatus::Reentrant as i32);
}

#[test]
fn only_the_contracts_own_code_signs_and_no_module_reaches_anothers_state() {
    let rt = Runtime::default();
    let signer = wasm(
        r#"(module
  (import "phalanx" "sign" (func $sign (param i32 i32 i32) (result i64)))
  (memory (export "memory") 1)
  (func (export "execute") (drop (call $sign (i32.const 0) (i32.const 4) (i32.const 64)))))"#,
    );
    let env: Arc<dyn Env> = Arc::new(common::FakeKeys);
    let with_keys = |input| Call {
        env: Some(&env),
        ..call(Entry::Execute, input)
    };
    // The same module signs as the contract, and fails as a component.
    assert!(
        rt.call(
            &rt.compile(&signer).unwrap(),
            &State::default(),
            with_keys(b"")
        )
        .is_ok()
    );
    let c = rt
        .compile(&bundle(&wasm(ROOT), &[("inner", &signer)]).unwrap())
        .unwrap();
    let o = rt.call(&c, &State::default(), with_keys(b"c")).unwrap();
    assert_eq!(parsed(&o.output).0, CallStatus::Failed as i32);

    // The contract's own code writing a component's full key writes its own entry:
    // the namespaces are disjoint, whatever the bytes.
    let inner = wasm(INNER);
    let full = [&[COMPONENT_KEYS][..], &code_hash(&inner), b"count"].concat();
    let sneaky = wasm(&format!(
        r#"(module
  (import "phalanx" "storage_set" (func $set (param i32 i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "{}")
  (func (export "execute") (call $set (i32.const 0) (i32.const {}) (i32.const 0) (i32.const 1))))"#,
        full.iter()
            .map(|b| format!("\\{b:02x}"))
            .collect::<String>(),
        full.len()
    ));
    let c = rt
        .compile(&bundle(&sneaky, &[("inner", &inner)]).unwrap())
        .unwrap();
    let o = rt
        .call(&c, &State::default(), call(Entry::Execute, b""))
        .unwrap();
    let written: Vec<&Vec<u8>> = o.changes.0.keys().collect();
    assert_eq!(written, [&[&[OWN_KEYS][..], &full].concat()]);
    // Without components, keys stay as written (the contracts deployed before).
    let alone = rt.compile(&sneaky).unwrap();
    let o = rt
        .call(&alone, &State::default(), call(Entry::Execute, b""))
        .unwrap();
    assert_eq!(o.changes.0.keys().collect::<Vec<_>>(), [&full]);
}

/// A component whose memory starts at `pages` pages, answering nothing.
fn big(pages: u32) -> Vec<u8> {
    wasm(&format!(
        r#"(module (memory (export "memory") {pages}) (func (export "execute")))"#
    ))
}

#[test]
fn a_commands_frames_share_one_memory_bound_and_pay_for_their_memory() {
    let rt = Runtime::default();
    // 255 pages beside the contract's one: within 16 MiB; 256 are not.
    let fits = rt
        .compile(&bundle(&wasm(ROOT), &[("inner", &big(255))]).unwrap())
        .unwrap();
    let o = rt
        .call(&fits, &State::default(), call(Entry::Execute, b"cx"))
        .unwrap();
    assert_eq!(parsed(&o.output).0, 0, "an empty output");
    let over = rt
        .compile(&bundle(&wasm(ROOT), &[("inner", &big(256))]).unwrap())
        .unwrap();
    let o = rt
        .call(&over, &State::default(), call(Entry::Execute, b"cx"))
        .unwrap();
    assert_eq!(parsed(&o.output).0, CallStatus::Failed as i32);
    // A callee's memory is paid for: a unit per 64 bytes.
    let small = rt
        .compile(&bundle(&wasm(ROOT), &[("inner", &big(1))]).unwrap())
        .unwrap();
    let cost = |c| {
        rt.call(c, &State::default(), call(Entry::Execute, b"cx"))
            .unwrap()
            .fuel_used
    };
    assert!(cost(&fits) >= cost(&small) + 254 * 65_536 / 64);
}

#[test]
fn one_code_is_one_component() {
    let rt = Runtime::default();
    let inner = wasm(INNER);
    let twice = bundle(&wasm(ROOT), &[("a", &inner), ("b", &inner)]).unwrap();
    assert!(
        matches!(rt.compile(&twice), Err(ContractError::InvalidCode(m)) if m.contains("one code"))
    );
}

#[test]
fn malformed_bundles_are_refused_at_compile_time() {
    let rt = Runtime::default();
    let (root, inner) = (wasm(ROOT), wasm(INNER));
    for bad in ["", "Inner", "in ner", &"x".repeat(33)] {
        assert!(bundle(&root, &[(bad, &inner)]).is_err(), "name {bad:?}");
    }
    let refused = |code: &[u8]| matches!(rt.compile(code), Err(ContractError::InvalidCode(_)));
    assert!(refused(
        &bundle(&root, &[("a", &inner), ("a", &inner)]).unwrap()
    ));
    assert!(refused(&bundle(&root, &[("a", b"not wasm")]).unwrap()));
    let nested = bundle(&inner, &[("deeper", &inner)]).unwrap();
    assert!(refused(&bundle(&root, &[("a", &nested)]).unwrap()));
    let seventeen: Vec<String> = (0..17).map(|i| format!("c{i}")).collect();
    let many: Vec<(&str, &[u8])> = seventeen.iter().map(|n| (n.as_str(), &inner[..])).collect();
    assert!(refused(&bundle(&root, &many).unwrap()));
    // A section whose name length runs past its end.
    let mut short = root.clone();
    short.extend_from_slice(&[0, 20, 17]);
    short.extend_from_slice(b"phalanx.component");
    short.extend_from_slice(&[40, b'a']);
    assert!(refused(&short));
    // A component importing what the host does not provide.
    let foreign = wasm(r#"(module (import "env" "f" (func)) (memory (export "memory") 1))"#);
    assert!(matches!(
        rt.compile(&bundle(&root, &[("f", &foreign)]).unwrap()),
        Err(ContractError::UnknownImport { .. })
    ));
}

/// A component between the contract and INNER (as "deep"): writes its own "count" (5),
/// calls "deep" with its input from byte 1 on, and outputs that call's status; an input
/// starting with `a` aborts after the call.
const MIDDLE: &str = r#"
(module
  (import "phalanx" "storage_set" (func $set (param i32 i32 i32 i32)))
  (import "phalanx" "call" (func $call (param i32 i32 i32 i32) (result i32)))
  (import "phalanx" "input_len" (func $len (result i32)))
  (import "phalanx" "input_read" (func $read (param i32)))
  (import "phalanx" "output" (func $out (param i32 i32)))
  (import "phalanx" "abort" (func $abort (param i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "deep")
  (data (i32.const 8) "count")
  (func (export "execute")
    (i64.store (i32.const 16) (i64.const 5))
    (call $set (i32.const 8) (i32.const 5) (i32.const 16) (i32.const 8))
    (call $read (i32.const 100))
    (i32.store (i32.const 200) (call $call (i32.const 0) (i32.const 4) (i32.const 101)
                                           (i32.sub (call $len) (i32.const 1))))
    (if (i32.eq (i32.load8_u (i32.const 100)) (i32.const 97))
      (then (call $abort (i32.const 0) (i32.const 4))))
    (call $out (i32.const 200) (i32.const 4))))
"#;

#[test]
fn failures_undo_exactly_what_the_failed_frame_and_its_callees_wrote() {
    let rt = Runtime::default();
    let (middle, inner) = (wasm(MIDDLE), wasm(INNER));
    let c = rt
        .compile(&bundle(&wasm(ROOT), &[("inner", &middle), ("deep", &inner)]).unwrap())
        .unwrap();
    let key = |code: &[u8]| [&[COMPONENT_KEYS][..], &code_hash(code), b"count"].concat();
    let run = |input: &[u8]| {
        rt.call(&c, &State::default(), call(Entry::Execute, input))
            .unwrap()
    };
    let written = |o: &phalanx_contract::Outcome| {
        (
            o.changes.0.contains_key(&key(&middle)),
            o.changes.0.contains_key(&key(&inner)),
            o.events.len(),
        )
    };
    // The innermost fails: only its writes and event go; the middle goes on.
    let o = run(b"cnf");
    assert_eq!(
        parsed(&o.output).1,
        (CallStatus::Failed as i32).to_le_bytes()
    );
    assert_eq!(written(&o), (true, false, 0));
    // Both succeed: both stand.
    let o = run(b"cnx");
    assert_eq!(parsed(&o.output).1, 40i32.to_le_bytes());
    assert_eq!(written(&o), (true, true, 1));
    // The middle fails after the innermost succeeded: both are undone.
    let o = run(b"cax");
    assert_eq!(parsed(&o.output).0, CallStatus::Failed as i32);
    assert_eq!(written(&o), (false, false, 0));
    assert_eq!(
        o.changes.0.keys().collect::<Vec<_>>(),
        [&b"\x00count".to_vec()]
    );
}
