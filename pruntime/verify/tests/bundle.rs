//! A verification bundle built from real artefacts — a simulated SGX quote binding the
//! worker's keys, the simulated PKI's collateral, a registry chain signed block by block,
//! a statement signed by the worker — is accepted with every check named; each field
//! flipped or swapped in turn is refused naming the check that caught it; and the
//! policies (debug, a measurement removed before the height, other code, TCB status,
//! evidence age) refuse by name.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;
use phalanx_types::hex::Hex;
use phalanx_verify::TcbStatus;
use phalanx_verify::{Bundle, Options, Pin, verify};

/// The check a refused bundle names.
fn refused(bundle: &Bundle, options: &Options) -> String {
    verify(bundle, options)
        .error
        .map_or_else(|| "ACCEPTED".into(), |e| e.check)
}

#[test]
fn a_genuine_answer_is_accepted_with_every_check_named() {
    let w = world(Shape::default());
    let v = verify(&w.bundle, &w.options);
    assert!(v.ok, "{v:?}");
    let a = v.accepted.unwrap();
    assert_eq!(
        (
            a.tee.as_str(),
            a.measurement.as_str(),
            a.tcb_status.as_str(),
            a.height
        ),
        ("sgx", hex::encode(MR).as_str(), "UpToDate", 3)
    );
    let names: Vec<&str> = a.checks.iter().map(|c| c.check.as_str()).collect();
    assert_eq!(
        names,
        [
            "registry",
            "statement_signature",
            "query_hash",
            "answer_hash",
            "worker_registered",
            "worker_role",
            "code_hash",
            "quote",
            "report_data",
            "measurement",
            "measurement_allowed",
            "debug",
            "tcb_status",
            "evidence_age"
        ]
    );
    // The verdict's JSON shape: ok and the facts at the top level.
    let json = serde_json::to_value(verify(&w.bundle, &w.options)).unwrap();
    assert_eq!(json["ok"], true);
    assert_eq!(json["tee"], "sgx");
    assert!(json.get("error").is_none());
}

fn flip_b64(s: &mut String, at: usize) {
    let mut raw = unb64(s);
    let i = at.min(raw.len() - 1);
    raw[i] ^= 1;
    *s = b64(&raw);
}

fn flip_hex<const N: usize>(h: &mut Hex<N>) {
    h.0[N / 2] ^= 1;
}

#[test]
fn every_field_flipped_or_swapped_is_refused_by_the_check_that_guards_it() {
    let w = world(Shape::default());
    let other = world(Shape::default());
    type Edit = Box<dyn Fn(&mut Bundle)>;
    let cases: Vec<(&str, Edit, &str)> = vec![
        (
            "contract",
            Box::new(|b| flip_hex(&mut b.answer.statement.contract)),
            "statement_signature",
        ),
        (
            "code hash",
            Box::new(|b| flip_hex(&mut b.answer.statement.code_hash)),
            "statement_signature",
        ),
        (
            "state root",
            Box::new(|b| flip_hex(&mut b.answer.statement.state_root)),
            "statement_signature",
        ),
        (
            "query hash",
            Box::new(|b| flip_hex(&mut b.answer.statement.query_hash)),
            "statement_signature",
        ),
        (
            "answer hash",
            Box::new(|b| flip_hex(&mut b.answer.statement.answer_hash)),
            "statement_signature",
        ),
        (
            "block hash",
            Box::new(|b| flip_hex(&mut b.answer.statement.block_hash)),
            "registry",
        ),
        (
            "height down",
            Box::new(|b| b.answer.statement.height -= 1),
            "registry",
        ),
        (
            "height up",
            Box::new(|b| b.answer.statement.height += 1),
            "registry",
        ),
        (
            "worker",
            {
                let k = other.bundle.answer.statement.worker.clone();
                Box::new(move |b: &mut Bundle| b.answer.statement.worker = k.clone())
            },
            "statement_signature",
        ),
        (
            "signature",
            Box::new(|b| flip_b64(&mut b.answer.signature, 10)),
            "statement_signature",
        ),
        (
            "caller key",
            {
                let k = other.bundle.answer.caller_key.clone();
                Box::new(move |b: &mut Bundle| b.answer.caller_key = k.clone())
            },
            "query_hash",
        ),
        (
            "query nonce",
            Box::new(|b| flip_hex(&mut b.answer.nonce)),
            "query_hash",
        ),
        (
            "query",
            Box::new(|b| flip_b64(&mut b.answer.query, 1)),
            "query_hash",
        ),
        (
            "answer",
            Box::new(|b| flip_b64(&mut b.answer.answer, 1)),
            "answer_hash",
        ),
        (
            "query salt",
            Box::new(|b| flip_hex(&mut b.answer.query_salt)),
            "query_hash",
        ),
        (
            "answer salt",
            Box::new(|b| flip_hex(&mut b.answer.answer_salt)),
            "answer_hash",
        ),
        (
            "quote header",
            Box::new(|b| flip_b64(&mut b.evidence.quote, 20)),
            "quote",
        ),
        (
            "quote report data",
            Box::new(|b| flip_b64(&mut b.evidence.quote, 48 + 320 + 10)),
            "quote",
        ),
        (
            "quote signature",
            Box::new(|b| flip_b64(&mut b.evidence.quote, 48 + 384 + 4 + 10)),
            "quote",
        ),
        (
            "quote of another worker",
            {
                let q = other.bundle.evidence.quote.clone();
                Box::new(move |b: &mut Bundle| b.evidence.quote = q.clone())
            },
            "quote",
        ),
        ("tee", Box::new(|b| b.evidence.tee = "tdx".into()), "quote"),
        (
            "evidence nonce",
            Box::new(|b| flip_b64(&mut b.evidence.nonce, 0)),
            "report_data",
        ),
        (
            "runtime data",
            Box::new(|b| flip_b64(&mut b.evidence.runtime_data, 40)),
            "report_data",
        ),
        (
            "the header of another block",
            {
                let h = other.bundle.registry.header.clone();
                Box::new(move |b: &mut Bundle| b.registry.header = h.clone())
            },
            "registry",
        ),
        (
            "another chain's genesis and header",
            {
                let r = other.bundle.registry.clone();
                Box::new(move |b: &mut Bundle| b.registry = r.clone())
            },
            "registry",
        ),
    ];
    for (what, edit, check) in &cases {
        let mut b = w.bundle.clone();
        edit(&mut b);
        assert_eq!(refused(&b, &w.options), *check, "{what}");
    }
    // The genesis, the header, each fact's key, value and proof: one bit flipped.
    type Place = Box<dyn Fn(&mut Bundle) -> &mut String>;
    let mut places: Vec<(String, Place)> = vec![
        ("genesis".into(), Box::new(|b| &mut b.registry.genesis)),
        ("header".into(), Box::new(|b| &mut b.registry.header)),
    ];
    for i in 0..w.bundle.registry.facts.len() {
        places.push((
            format!("fact {i} key"),
            Box::new(move |b| &mut b.registry.facts[i].key),
        ));
        places.push((
            format!("fact {i} proof"),
            Box::new(move |b| &mut b.registry.facts[i].proof),
        ));
        places.push((
            format!("fact {i} value"),
            Box::new(move |b| b.registry.facts[i].value.as_mut().unwrap()),
        ));
    }
    for (what, place) in &places {
        let len = unb64(place(&mut w.bundle.clone())).len();
        // The genesis's own signature is not read: the pinned hash covers its header,
        // whose chain id covers its parameters (and it must carry no transactions).
        let last = if what == "genesis" { len - 80 } else { len - 1 };
        for at in [0, len / 2, last] {
            let mut b = w.bundle.clone();
            flip_b64(place(&mut b), at);
            assert_eq!(refused(&b, &w.options), "registry", "{what} at {at}");
        }
    }
    // A fact proven absent where it exists; another fact's proof in its place.
    for i in 0..w.bundle.registry.facts.len() {
        let mut b = w.bundle.clone();
        b.registry.facts[i].value = None;
        let e = verify(&b, &w.options).error.unwrap();
        assert_eq!(
            (e.check.as_str(), e.code.as_str()),
            ("registry", "bad_fact_proof")
        );
        let mut b = w.bundle.clone();
        let j = (i + 1) % b.registry.facts.len();
        b.registry.facts[i].proof = b.registry.facts[j].proof.clone();
        assert_eq!(
            refused(&b, &w.options),
            "registry",
            "fact {i} with {j}'s proof"
        );
    }
    // A fact left out: the check that reads it names the gap.
    for (i, check) in [
        "evidence_age",
        "worker_registered",
        "code_hash",
        "worker_role",
    ]
    .iter()
    .enumerate()
    {
        let mut b = w.bundle.clone();
        b.registry.facts.remove(i);
        let e = verify(&b, &w.options).error.unwrap();
        assert_eq!(
            (e.check.as_str(), e.code.as_str()),
            (*check, "registry_incomplete"),
            "fact {i} left out"
        );
    }
    // Each collateral piece, one character changed in the middle of its value.
    let collateral: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&w.bundle.evidence.collateral).unwrap();
    assert!(collateral.len() >= 9, "{:?}", collateral.keys());
    for (field, value) in &collateral {
        let text = value.as_str().unwrap();
        // Inside each certificate's base64 body for PEM chains (their BEGIN / END lines
        // carry no bytes), the middle otherwise.
        let positions: Vec<usize> = if text.starts_with("-----BEGIN") {
            text.match_indices("-----BEGIN")
                .map(|(i, _)| i + 100)
                .collect()
        } else {
            vec![text.len() / 2]
        };
        for at in positions {
            // A digit for a digit or letter: the same alphabet (hex, base64, JSON text),
            // another value (a case change alone would decode to the same hex).
            let swapped = if &text[at..=at] == "1" { "2" } else { "1" };
            let mut edited = collateral.clone();
            edited.insert(
                field.clone(),
                format!("{}{swapped}{}", &text[..at], &text[at + 1..]).into(),
            );
            let mut b = w.bundle.clone();
            b.evidence.collateral = serde_json::to_string(&edited).unwrap();
            assert_eq!(
                refused(&b, &w.options),
                "quote",
                "collateral {field} at {at}"
            );
        }
    }
    // Another genesis pinned; another trust root.
    let mut o = w.options.clone();
    let Pin::Ledger { genesis } = &mut o.pin else {
        unreachable!()
    };
    genesis[0] ^= 1;
    assert_eq!(refused(&w.bundle, &o), "registry");
    let mut o = w.options.clone();
    o.anchors = other.options.anchors.clone();
    assert_eq!(refused(&w.bundle, &o), "quote");
}

#[test]
fn policies_refuse_by_name() {
    // A debug enclave never gets onto an honest registry (it checks the quote itself);
    // an authority that lists one anyway is caught by the verifier's own check.
    let w = world(Shape {
        debug: true,
        ..Shape::default()
    });
    assert_eq!(
        refused(&w.bundle, &w.options),
        "debug",
        "{:?}",
        verify(&w.bundle, &w.options).error
    );
    // A measurement removed before the height leaves the worker without a role.
    let w = world(Shape {
        removed: true,
        ..Shape::default()
    });
    assert_eq!(refused(&w.bundle, &w.options), "worker_role");
    let w = world(Shape {
        other_code: true,
        ..Shape::default()
    });
    assert_eq!(refused(&w.bundle, &w.options), "code_hash");

    let w = world(Shape::default());
    let mut o = w.options.clone();
    o.tcb.statuses.clear();
    assert_eq!(refused(&w.bundle, &o), "tcb_status");
    let mut o = w.options.clone();
    o.max_evidence_age = Some(5);
    assert_eq!(refused(&w.bundle, &o), "evidence_age");
    // By default the registry's own lifetime (as its rule says at that height) bounds
    // the evidence's age: here 5 s, and the answer comes 10 s after the registration.
    let short = world(Shape {
        lifetime: Some(5),
        ..Shape::default()
    });
    assert_eq!(refused(&short.bundle, &short.options), "evidence_age");
    let mut o = short.options.clone();
    o.max_evidence_age = Some(3600);
    assert!(verify(&short.bundle, &o).ok);
    // Verified at an instant the collateral does not cover.
    let mut o = w.options.clone();
    o.at = Some(T0 + 365 * 24 * 3600);
    assert_eq!(refused(&w.bundle, &o), "quote");
}

#[test]
fn unusable_input_is_named_not_refused() {
    for bad in [&b"not json"[..], b"{}", b"[]", b""] {
        let e = phalanx_verify::parse(bad).unwrap_err();
        assert_eq!((e.code.as_str(), e.check.as_str()), ("malformed", "bundle"));
    }
    let w = world(Shape::default());
    let mut v = serde_json::to_value(&w.bundle).unwrap();
    v["version"] = 3.into();
    let e = phalanx_verify::parse(v.to_string().as_bytes()).unwrap_err();
    assert!(e.message.contains("version 3"), "{e:?}");
    // A version-1 bundle (every block from genesis) is refused by name.
    let old = serde_json::json!({"version": 1, "answer": v["answer"], "evidence": v["evidence"], "registry": {"blocks": []}});
    let e = phalanx_verify::parse(old.to_string().as_bytes()).unwrap_err();
    assert!(
        e.message.contains("version 1") && e.message.contains("no longer"),
        "{e:?}"
    );
    // Named so even when it is larger than any version-2 bundle (it carried every block).
    let mut big = old.clone();
    big["registry"]["blocks"] = serde_json::json!(["A".repeat(2 * phalanx_verify::MAX_BUNDLE)]);
    let e = phalanx_verify::parse(big.to_string().as_bytes()).unwrap_err();
    assert!(e.message.contains("version 1"), "{e:?}");
    v["version"] = phalanx_verify::VERSION.into();
    let mut v2 = v.clone();
    v2["answer"]["query"] = "A".repeat(2 * phalanx_verify::MAX_BUNDLE).into();
    let e = phalanx_verify::parse(v2.to_string().as_bytes()).unwrap_err();
    assert!(e.message.contains("over"), "{e:?}");
    v["extra"] = 1.into();
    assert!(phalanx_verify::parse(v.to_string().as_bytes()).is_err());
    // A field that is not base64 is unusable, and the verdict says so.
    let mut b = w.bundle.clone();
    b.evidence.quote = "%%%".into();
    assert!(verify(&b, &w.options).unusable());
    let round =
        phalanx_verify::parse(serde_json::to_string(&w.bundle).unwrap().as_bytes()).unwrap();
    assert_eq!(round, w.bundle);
}

#[test]
fn options_from_text_refuse_bad_input_by_name() {
    let w = world(Shape::default());
    let Pin::Ledger { genesis } = w.options.pin else {
        unreachable!()
    };
    let genesis = hex::encode(genesis);
    let spec = |json: serde_json::Value| {
        serde_json::from_value::<phalanx_verify::OptionsSpec>(json).map_err(|e| e.to_string())
    };
    // Accepted: the same genesis with 0x, Intel's root when the PEM is blank.
    let o = spec(serde_json::json!({"genesis": format!("0x{genesis}"), "trust_root_pem": "  "}))
        .unwrap()
        .options()
        .unwrap();
    assert_eq!((&o.pin, o.root_name.as_str()), (&w.options.pin, "intel"));
    // A genesis truncated, one character over, not hex; a PEM that is no certificate.
    for bad in [
        serde_json::json!({"genesis": &genesis[..63]}),
        serde_json::json!({"genesis": format!("{genesis}0")}),
        serde_json::json!({"genesis": format!("g{}", &genesis[1..])}),
        serde_json::json!({"genesis": genesis, "trust_root_pem": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"}),
    ] {
        let e = spec(bad.clone()).unwrap().options().unwrap_err();
        assert_eq!(
            (e.code.as_str(), e.check.as_str()),
            ("malformed", "options"),
            "{bad}"
        );
    }
    // Unknown fields and unknown statuses do not parse.
    assert!(spec(serde_json::json!({"genesis": genesis, "colour": 1})).is_err());
    assert!(spec(serde_json::json!({"genesis": genesis, "tcb_statuses": ["Fine"]})).is_err());
}

/// NM3 (role confusion): a genuine, registered, allowed worker whose measurement is an
/// application's (or a gatekeeper's) signs a statement; users accept answers from
/// pRuntimes only. And a user who pins the pRuntime measurements accepts no other.
#[test]
fn attack_nm3_only_a_pruntime_answers() {
    let w = world(Shape {
        app_role: true,
        ..Shape::default()
    });
    let v = verify(&w.bundle, &w.options);
    let e = v.error.unwrap();
    assert_eq!(
        (e.check.as_str(), e.code.as_str()),
        ("worker_role", "not_a_runtime")
    );

    let w = world(Shape::default());
    let mut o = w.options.clone();
    o.runtimes = vec![[0x11; 32]];
    let e = verify(&w.bundle, &o).error.unwrap();
    assert_eq!(e.code, "runtime_not_pinned");
    o.runtimes
        .push(chain::sim::tenant(&chain::sim::enclave(MR)));
    assert!(verify(&w.bundle, &o).ok);
}

/// NM1: the evidence a bundle shows must be the evidence the registry verified (and
/// whose time is the evidence age), not another quote of the same keys.
#[test]
fn attack_nm1_the_bundle_quote_is_the_registered_one() {
    let w = world(Shape::default());
    let other = world(Shape::default());
    let mut b = w.bundle.clone();
    b.evidence.quote = other.bundle.evidence.quote.clone();
    let e = verify(&b, &w.options).error.unwrap();
    assert_eq!(
        (e.check.as_str(), e.code.as_str()),
        ("quote", "quote_not_registered")
    );
}

/// NL3: `SWHardeningNeeded` that names no advisory gives the allow-list nothing to
/// check: refused unless the status itself is accepted. With advisories, only listed
/// ones pass.
#[test]
fn attack_nl3_sw_hardening_without_advisories_is_refused_unless_allowed() {
    let w = world(Shape {
        status: Some(TcbStatus::SWHardeningNeeded),
        no_advisories: true,
        ..Shape::default()
    });
    assert_eq!(refused(&w.bundle, &w.options), "tcb_status");
    let mut o = w.options.clone();
    o.tcb.advisories = vec!["INTEL-SA-00999".into()];
    assert_eq!(refused(&w.bundle, &o), "tcb_status");
    o.tcb.statuses.push(TcbStatus::SWHardeningNeeded);
    assert!(verify(&w.bundle, &o).ok);

    let w = world(Shape {
        status: Some(TcbStatus::SWHardeningNeeded),
        ..Shape::default()
    });
    assert_eq!(refused(&w.bundle, &w.options), "tcb_status");
    let mut o = w.options.clone();
    o.tcb.advisories = vec!["INTEL-SA-00999".into()];
    assert!(verify(&w.bundle, &o).ok);
}

/// NM2: collateral older than the TCB evaluation data number the user requires (from
/// before a TCB recovery) is refused, whatever it said then.
#[test]
fn attack_nm2_collateral_before_a_tcb_recovery_is_refused() {
    let w = world(Shape::default());
    let mut o = w.options.clone();
    o.tcb.min_tcb_evaluation_data_number = 1;
    assert!(verify(&w.bundle, &o).ok);
    o.tcb.min_tcb_evaluation_data_number = 2;
    let e = verify(&w.bundle, &o).error.unwrap();
    assert_eq!(
        (e.check.as_str(), e.code.as_str()),
        ("tcb_status", "collateral_too_old")
    );
}

/// Review of issue 26: a bundle carries the authority's signed header, and the authority
/// alone must not make a measurement a pRuntime. The allow-list entry is shown with
/// governance's own signed transaction, in the block the entry names; an authority that
/// signs the transaction itself, or a bundle that leaves it out or alters it, is refused.
#[test]
fn attack_the_authority_alone_cannot_allow_a_runtime() {
    let w = world(Shape {
        forged_allow: true,
        ..Shape::default()
    });
    let e = verify(&w.bundle, &w.options).error.unwrap();
    assert_eq!(
        (e.check.as_str(), e.code.as_str()),
        ("worker_role", "allowed_not_by_governance"),
        "{e:?}"
    );

    let w = world(Shape::default());
    let mut b = w.bundle.clone();
    b.registry.allowed_by = None;
    let e = verify(&b, &w.options).error.unwrap();
    assert_eq!(
        (e.check.as_str(), e.code.as_str()),
        ("worker_role", "registry_incomplete")
    );
    let by = w.bundle.registry.allowed_by.clone().unwrap();
    type Edit = Box<dyn Fn(&mut phalanx_verify::TxJson)>;
    let edits: Vec<(&str, Edit)> = vec![
        ("header", Box::new(|t| flip_b64(&mut t.header, 50))),
        ("index", Box::new(|t| t.index += 1)),
        ("transaction", Box::new(|t| flip_b64(&mut t.tx, 40))),
        ("proof", Box::new(|t| flip_b64(&mut t.proof, 30))),
    ];
    for (what, edit) in edits {
        let mut b = w.bundle.clone();
        let mut t = by.clone();
        edit(&mut t);
        b.registry.allowed_by = Some(t);
        assert_eq!(refused(&b, &w.options), "worker_role", "{what}");
    }
    assert!(verify(&w.bundle, &w.options).ok);
}
