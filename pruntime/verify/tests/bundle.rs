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

use base64::Engine as _;
use chain::types::{Block, Genesis, SignedTx, Tx, Worker, public_key};
use p256::ecdsa::SigningKey;
use phalanx_dcap_sim::{SgxEnclave, SimConfig, SimTee};
use phalanx_release::release::WorkerRuntimeData;
use phalanx_types::hex::Hex;
use phalanx_types::statement::{Statement, answer_hash, query_hash};
use phalanx_verify::{AnswerProof, Bundle, Options, TrustAnchors, WorkerEvidence, verify};

const T0: i64 = 1_760_000_000;
const MR: [u8; 32] = [0x42; 32];
const CODE: &[u8] = b"\0asm\x01\0\0\0";

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn unb64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

fn key() -> SigningKey {
    chain::random_key()
}

/// How the world is built.
#[derive(Default, Clone, Copy)]
struct Shape {
    debug: bool,
    /// Governance removes the worker's measurement in a block before the answer.
    removed: bool,
    /// The statement names another code hash than the deployed contract's.
    other_code: bool,
}

struct World {
    bundle: Bundle,
    options: Options,
}

/// Long on purpose: one world, built in the order things happen.
fn world(shape: Shape) -> World {
    let sim = SimTee::generate(SimConfig::up_to_date(T0)).unwrap();
    let (authority, governance, worker, user) = (key(), key(), key(), key());
    let hpke = phalanx_release::envelope::RecipientKey::generate(&mut rand::rng()).public_bytes();
    let runtime_data = WorkerRuntimeData {
        identity_key: public_key(worker.verifying_key()),
        hpke_public_key: hpke.clone(),
    }
    .encode();
    let nonce = b"an attestation nonce".to_vec();
    let quote = sim
        .sgx_quote(
            &SgxEnclave {
                mr_enclave: MR,
                debug: shape.debug,
                ..SgxEnclave::default()
            },
            &phalanx_ear::report_data(&nonce, &runtime_data),
        )
        .unwrap();
    let collateral = sim.collateral(phalanx_dcap::TeeType::Sgx).unwrap();
    let tenant = phalanx_release::tenant::TeeIdentity::Sgx {
        mr_enclave: MR,
        kss: None,
    }
    .digest();

    // The registry: genesis, then one transaction per block, ten seconds apart.
    let genesis = Block {
        height: 0,
        prev: [0; 32],
        timestamp: T0 + 1000,
        genesis: Some(Genesis {
            authority: public_key(authority.verifying_key()),
            governance: public_key(governance.verifying_key()),
            timestamp: T0 + 1000,
        }),
        txs: Vec::new(),
        signature: Vec::new(),
    }
    .seal(&authority);
    let chain_id = genesis.genesis.as_ref().unwrap().chain_id();
    let mut txs = vec![
        SignedTx::sign(
            &governance,
            &chain_id,
            0,
            Tx::AddMeasurement(tenant.to_vec()),
        ),
        SignedTx::sign(
            &worker,
            &chain_id,
            0,
            Tx::RegisterWorker(Worker {
                identity_key: public_key(worker.verifying_key()),
                hpke_key: hpke,
                measurement: tenant.to_vec(),
                attestation_hash: [9; 32],
                registered_at: 0,
            }),
        ),
        SignedTx::sign(
            &user,
            &chain_id,
            0,
            Tx::DeployContract {
                code: CODE.to_vec(),
                salt: [0; 32],
            },
        ),
    ];
    if shape.removed {
        txs.push(SignedTx::sign(
            &governance,
            &chain_id,
            1,
            Tx::RemoveMeasurement(tenant.to_vec()),
        ));
    }
    let mut blocks = vec![genesis];
    for tx in txs {
        let prev = blocks.last().unwrap();
        let block = Block {
            height: prev.height + 1,
            prev: prev.hash(),
            timestamp: prev.timestamp + 10,
            genesis: None,
            txs: vec![tx],
            signature: Vec::new(),
        }
        .seal(&authority);
        blocks.push(block);
    }
    let last = blocks.last().unwrap();

    // The answer.
    let caller = public_key(user.verifying_key());
    let query_nonce = [5u8; 16];
    let (query, answer) = (b"read".to_vec(), b"counter = 3".to_vec());
    let code_hash = if shape.other_code {
        phalanx_types::contract::code_hash(b"other code")
    } else {
        phalanx_types::contract::code_hash(CODE)
    };
    let statement = Statement {
        worker: hex::encode(public_key(worker.verifying_key())),
        contract: Hex(phalanx_types::contract::contract_id(
            &caller,
            &phalanx_types::contract::code_hash(CODE),
            &[0; 32],
        )),
        code_hash: Hex(code_hash),
        height: last.height,
        block_hash: Hex(last.hash()),
        state_root: Hex([7; 32]),
        query_hash: Hex(query_hash(&caller, &query_nonce, &query)),
        answer_hash: Hex(answer_hash(&answer)),
    };
    let signature: p256::ecdsa::Signature =
        p256::ecdsa::signature::Signer::sign(&worker, &statement.signed_bytes().unwrap());
    let bundle = Bundle::new(
        AnswerProof {
            statement,
            signature: b64(&signature.to_bytes()),
            caller_key: b64(&caller),
            nonce: Hex(query_nonce),
            query: b64(&query),
            answer: b64(&answer),
        },
        WorkerEvidence {
            tee: "sgx".into(),
            quote: b64(&quote),
            nonce: b64(&nonce),
            runtime_data: b64(&runtime_data),
            collateral: collateral.to_bundle_json(),
        },
        &blocks,
    );
    let mut options = Options::intel(blocks[0].hash());
    options.anchors = TrustAnchors::from_pem(sim.root_pem().as_bytes()).unwrap();
    options.root_name = "sim".into();
    World { bundle, options }
}

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
            "a block dropped",
            Box::new(|b| drop(b.registry.blocks.pop())),
            "registry",
        ),
        (
            "blocks swapped",
            Box::new(|b| b.registry.blocks.swap(1, 2)),
            "registry",
        ),
    ];
    for (what, edit, check) in &cases {
        let mut b = w.bundle.clone();
        edit(&mut b);
        assert_eq!(refused(&b, &w.options), *check, "{what}");
    }
    // Each block, one bit flipped in the middle.
    for i in 0..w.bundle.registry.blocks.len() {
        let mut b = w.bundle.clone();
        let mid = unb64(&b.registry.blocks[i]).len() / 2;
        flip_b64(&mut b.registry.blocks[i], mid);
        assert_eq!(refused(&b, &w.options), "registry", "block {i}");
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
    o.genesis[0] ^= 1;
    assert_eq!(refused(&w.bundle, &o), "registry");
    let mut o = w.options.clone();
    o.anchors = other.options.anchors.clone();
    assert_eq!(refused(&w.bundle, &o), "quote");
}

#[test]
fn policies_refuse_by_name() {
    let w = world(Shape {
        debug: true,
        ..Shape::default()
    });
    assert_eq!(refused(&w.bundle, &w.options), "debug");
    let w = world(Shape {
        removed: true,
        ..Shape::default()
    });
    assert_eq!(refused(&w.bundle, &w.options), "measurement_allowed");
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
    o.max_evidence_age = 5;
    assert_eq!(refused(&w.bundle, &o), "evidence_age");
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
    v["version"] = 2.into();
    let e = phalanx_verify::parse(v.to_string().as_bytes()).unwrap_err();
    assert!(e.message.contains("version 2"), "{e:?}");
    v["version"] = 1.into();
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
