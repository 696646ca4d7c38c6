//! Answers from a worker registered on the Solidity registry, verified from an EVM block
//! header and `eth_getProof` proofs (issue 27, item 3): on anvil (`chain::evm::Anvil`;
//! the test skips without one unless `PHALANX_REQUIRE_ANVIL` is set).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;
mod evm_world;

use chain::registry::Registry;
use common::b64;
use evm_world::world;
use phalanx_types::hex::Hex;
use phalanx_verify::{Bundle, Options, Pin, RegistryProof, evm_registry_proof, verify};

fn refused(bundle: &Bundle, o: &Options) -> (String, String) {
    let v = verify(bundle, o);
    assert!(!v.ok, "accepted: {v:?}");
    let e = v.error.unwrap();
    eprintln!("refused: {e:?}");
    (e.check, e.code)
}

fn with_pin(o: &Options, f: impl FnOnce(&mut Pin)) -> Options {
    let mut o = o.clone();
    f(&mut o.pin);
    o
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_verifies_from_an_evm_block_and_its_proofs() {
    let Some(w) = world().await else { return };
    let v = verify(&w.bundle, &w.options);
    assert!(v.ok, "{v:?}");
    let checks: Vec<String> = v
        .accepted
        .unwrap()
        .checks
        .into_iter()
        .map(|c| c.check)
        .collect();
    assert_eq!(checks.len(), 14, "{checks:?}");
    assert_eq!(
        verify(&w.bundle, &w.options).accepted.unwrap().checks[1].anchor,
        format!("worker key {}", w.bundle.answer.statement.worker)
    );
    // The bundle reads back from its JSON, and the options from their text form.
    let json = serde_json::to_vec(&w.bundle).unwrap();
    assert!(verify(&phalanx_verify::parse(&json).unwrap(), &w.options).ok);
    let (chain_id, registry, block) = w.pin();
    let spec: phalanx_verify::OptionsSpec = serde_json::from_value(serde_json::json!({
        "evm_registry": format!("{chain_id}:0x{}", hex::encode(registry)),
        "evm_block": hex::encode(block),
    }))
    .unwrap();
    assert_eq!(spec.options().unwrap().pin, w.options.pin);
    for bad in [
        serde_json::json!({"evm_registry": "31337"}),
        serde_json::json!({"evm_registry": format!("{chain_id}:0x{}", hex::encode(registry)), "genesis": "00".repeat(32)}),
        serde_json::json!({"evm_registry": format!("{chain_id}:0x{}", hex::encode(registry)), "evm_block": "zz"}),
    ] {
        let spec: phalanx_verify::OptionsSpec = serde_json::from_value(bad).unwrap();
        assert_eq!(spec.options().unwrap_err().code, "malformed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evm_bundles_are_refused_for_the_wrong_anchor_or_a_lie() {
    let Some(w) = world().await else { return };
    let (o, b) = (&w.options, &w.bundle);
    let registry_check = |code: &str| ("registry".to_owned(), code.to_owned());

    // Nothing says which block the height is; another block is trusted.
    let none = with_pin(o, |p| {
        if let Pin::Evm { block, .. } = p {
            *block = None
        }
    });
    assert_eq!(refused(b, &none), registry_check("evm_block_untrusted"));
    let other = with_pin(o, |p| {
        if let Pin::Evm { block: Some(h), .. } = p {
            h[0] ^= 1
        }
    });
    assert_eq!(refused(b, &other), registry_check("evm_block_untrusted"));
    // Another registry, another chain, or a ledger's genesis pinned.
    let elsewhere = with_pin(o, |p| {
        if let Pin::Evm { registry, .. } = p {
            registry[0] ^= 1
        }
    });
    assert_eq!(refused(b, &elsewhere), registry_check("other_chain"));
    let chain = with_pin(o, |p| {
        if let Pin::Evm { chain_id, .. } = p {
            *chain_id += 1
        }
    });
    assert_eq!(refused(b, &chain), registry_check("other_chain"));
    let ledger = with_pin(o, |p| *p = Pin::Ledger { genesis: [1; 32] });
    assert_eq!(refused(b, &ledger), registry_check("other_chain"));
    // No registry part: to be fetched.
    let mut empty = b.clone();
    empty.registry = RegistryProof::default();
    assert_eq!(refused(&empty, o), registry_check("registry_incomplete"));

    // The proof's values altered: the worker's HPKE key, the contract's code hash.
    use phalanx_types::codec::Codec as _;
    let proof = || {
        chain::evm_proof::EvmProof::from_bytes(&common::unb64(b.registry.evm.as_ref().unwrap()))
            .unwrap()
    };
    let with_proof = |p: &chain::evm_proof::EvmProof| {
        let mut x = b.clone();
        x.registry = RegistryProof::of_evm(p);
        x
    };
    for prefix in [b"worker/".as_slice(), b"contract/"] {
        let mut p = proof();
        let f = p
            .facts
            .iter_mut()
            .find(|f| f.key.starts_with(prefix))
            .unwrap();
        let v = f.value.as_mut().unwrap();
        let last = v.len() - 2;
        v[last] ^= 1;
        assert_eq!(
            refused(&with_proof(&p), o),
            registry_check("bad_fact_proof")
        );
    }
    // A fact left out: named as the bundle's gap.
    let mut p = proof();
    p.facts.retain(|f| !f.key.starts_with(b"tcb-rule"));
    assert_eq!(
        refused(&with_proof(&p), o),
        ("evidence_age".into(), "registry_incomplete".into())
    );

    // Governance removes the measurement: an answer proven at a later block is refused
    // (its statement names the later block, which the user's node vouches for).
    let later = w
        .registry
        .remove_measurement(&w.governance, &w.tenant)
        .await
        .unwrap();
    let mut st = b.answer.statement.clone();
    st.height = later;
    st.block_hash = Hex(w.registry.block_hash(later).await.unwrap().unwrap());
    let p = tokio::task::block_in_place(|| {
        let rt = tokio::runtime::Handle::current();
        evm_registry_proof(&st, |facts| {
            rt.block_on(w.registry.prove(facts, Some(later)))
        })
    })
    .unwrap();
    let mut x = b.clone();
    x.registry = p;
    x.answer.statement = st.clone();
    let signature: p256::ecdsa::Signature =
        p256::ecdsa::signature::Signer::sign(&w.worker, &st.signed_bytes().unwrap());
    x.answer.signature = b64(&signature.to_bytes());
    let at_later = with_pin(o, |p| {
        if let Pin::Evm { block, .. } = p {
            *block = Some(st.block_hash.0)
        }
    });
    assert_eq!(
        refused(&x, &at_later),
        ("worker_role".into(), "not_a_runtime".into())
    );
    // The registry part of the later block with the original statement: another block.
    let mut y = b.clone();
    y.registry = x.registry.clone();
    assert_eq!(refused(&y, o), registry_check("block_hash_mismatch"));
}
