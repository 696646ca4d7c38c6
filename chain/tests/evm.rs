//! The conformance suite against the Solidity registry on a real EVM node: `anvil`,
//! started here on loopback ([`chain::evm::Anvil`]: `$ANVIL`, else `anvil` on the
//! `PATH`; `.ci/run` installs it from npm). Without one the tests skip, unless
//! `PHALANX_REQUIRE_ANVIL` is set. Part of the workspace's tests (the CLI builds the
//! `evm` feature); alone: `cargo test -p chain --features evm --test evm`.
#![cfg(feature = "evm")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod suite;

use suite::evm::{Evm, Follower, funded, node_hash};

use alloy::providers::{Provider, ProviderBuilder};
use chain::endorse::Record;
use chain::evm::{Endorsed, EvmAccount, EvmRegistry, KeyEndorser};
use chain::evm_proof::{EvmCommand, EvmProof};
use chain::registry::Registry;
use chain::state::RuleError;
use chain::types::{Gatekeeper, Role};
use p256::ecdsa::SigningKey;
use phalanx_dcap::tcb::TcbStatus;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn solidity_registry_on_anvil() {
    let Some((_anvil, mut f)) = suite::evm::fixture().await else {
        return;
    };
    let url = f.url.clone();
    let (worker, stranger) = suite::suite(&mut f).await;
    let (contract, _) = suite::contracts(&mut f, worker, stranger).await;
    the_gatekeeper_set_is_proven_with_each_members_standing(&f).await;
    let proof = every_fact_is_proven(&f).await;
    tampered_proofs_are_refused(&f, proof).await;
    the_feed_follows_confirmed_commands_and_catches_lies(&mut f, contract).await;
    gas_table(&url).await;
    a_look_alike_contract_is_refused(&f).await;
    events_are_read_in_windows(&f).await;
}

/// The events are read in windows of blocks (nodes bound a log query's range): after
/// 6,000 empty blocks, a new event comes with every earlier one, in order.
async fn events_are_read_in_windows(f: &Evm) {
    use chain::registry::Registry as _;
    let before = f.registry.events(0).await.unwrap();
    rpc_value(&f.url, "anvil_mine", serde_json::json!(["0x1770"])).await;
    let m = [9u8; 32];
    f.registry
        .add_measurement(&f.governance, &m, chain::types::Role::App)
        .await
        .unwrap();
    let after = f.registry.events(0).await.unwrap();
    assert_eq!(after[..before.len()], before[..]);
    assert_eq!(after.len(), before.len() + 1);
    assert!(after.last().unwrap().0 > before.last().unwrap().0 + 6_000);
    assert_eq!(
        f.registry.events(after.last().unwrap().0).await.unwrap(),
        after[before.len()..]
    );
}

/// A contract at the registry's address whose code is not this release's registry — here
/// the same storage under code one byte different (`anvil_setCode`), so every slot still
/// proves — is refused: the proven code hash is checked, not only the slots.
async fn a_look_alike_contract_is_refused(f: &Evm) {
    use chain::facts::Fact;
    let proof = f.registry.prove(&[Fact::Rotation], None).await.unwrap();
    let trusted = node_hash(&f.url, proof.block().unwrap().number).await;
    let v = proof.verify(&trusted).unwrap();
    assert_eq!(v.governance, f.governance.signer.address().0.0);
    let provider = ProviderBuilder::new().connect_http(f.url.parse().unwrap());
    let mut code = provider
        .get_code_at(f.registry.address())
        .await
        .unwrap()
        .to_vec();
    let last = code.len() - 1;
    code[last] ^= 1;
    rpc(
        &f.url,
        "anvil_setCode",
        serde_json::json!([f.registry.address(), alloy::primitives::Bytes::from(code)]),
    )
    .await;
    rpc(&f.url, "evm_mine", serde_json::json!([])).await;
    let proof = f.registry.prove(&[Fact::Rotation], None).await.unwrap();
    let trusted = node_hash(&f.url, proof.block().unwrap().number).await;
    assert!(matches!(
        proof.verify(&trusted),
        Err(chain::proof::ProofError::NotTheRegistry { .. })
    ));
}

/// P256VERIFY's price on L1 (EIP-7951, Osaka) and on the L2s of RIP-7212.
const P256_L1: u64 = 6_900;
const P256_L2: u64 = 3_450;

/// The P256VERIFY calls (count, gas) in a `callTracer` frame and below.
fn p256_calls(frame: &serde_json::Value) -> (u64, u64) {
    let gas = |v: &serde_json::Value| {
        v.as_str()
            .and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok())
            .unwrap_or(0)
    };
    let here = frame["to"]
        .as_str()
        .is_some_and(|t| t.eq_ignore_ascii_case("0x0000000000000000000000000000000000000100"));
    let mut out = if here {
        (1, gas(&frame["gasUsed"]))
    } else {
        (0, 0)
    };
    for c in frame["calls"].as_array().into_iter().flatten() {
        let (n, g) = p256_calls(c);
        out = (out.0 + n, out.1 + g);
    }
    out
}

/// Issue 27, item 5: the gas of every kind of transaction the suite sent (each block on
/// anvil holds one), its P256VERIFY calls (from `debug_traceTransaction`), and what it
/// costs where that precompile is priced as on L1 or on an L2. Printed as a table.
async fn gas_table(url: &str) {
    use chain::evm::abi::RegistryContract::RegistryContractCalls as Calls;
    use chain::evm::judge_abi::JudgeContract::JudgeContractCalls as Judged;
    let provider = ProviderBuilder::new().connect_http(url.parse().unwrap());
    let head = provider.get_block_number().await.unwrap();
    let mut rows = std::collections::BTreeMap::<&str, Vec<(u64, u64, u64)>>::new();
    for n in 1..=head {
        let block = provider
            .get_block_by_number(n.into())
            .await
            .unwrap()
            .unwrap();
        for hash in block.transactions.hashes() {
            let receipt = provider
                .get_transaction_receipt(hash)
                .await
                .unwrap()
                .unwrap();
            let tx = provider
                .get_transaction_by_hash(hash)
                .await
                .unwrap()
                .unwrap();
            let input = alloy::consensus::Transaction::input(&tx);
            // The registry's calls, or its Judge's (the evidence of misbehaviour).
            let Some(name) = input.get(..4).and_then(|s| {
                let s: [u8; 4] = s.try_into().unwrap();
                Calls::name_by_selector(s).or_else(|| Judged::name_by_selector(s))
            }) else {
                continue; // a transfer (funding) or the deployment
            };
            if !receipt.status() {
                continue; // refused by a rule: the suite's negative cases
            }
            let trace: serde_json::Value = provider
                .raw_request(
                    "debug_traceTransaction".into(),
                    serde_json::json!([hash, {"tracer": "callTracer"}]),
                )
                .await
                .unwrap();
            let (calls, p256_gas) = p256_calls(&trace);
            rows.entry(name)
                .or_default()
                .push((receipt.gas_used, calls, p256_gas));
        }
    }
    println!(
        "| transaction | sent | gas on anvil (median) | P256VERIFY calls | at L1 price ({P256_L1}) | at L2 price ({P256_L2}) |"
    );
    println!("|---|---|---|---|---|---|");
    for (name, mut v) in rows.clone() {
        v.sort();
        let (gas, calls, p256_gas) = v[v.len() / 2];
        let at = |price: u64| gas - p256_gas + calls * price;
        println!(
            "| {name} | {} | {gas} | {calls} | {} | {} |",
            v.len(),
            at(P256_L1),
            at(P256_L2)
        );
    }
    for kind in [
        "registerWorker",
        "publishMasterKey",
        "command",
        "deployContract",
        "publishContractKey",
    ] {
        assert!(rows.contains_key(kind), "no {kind} sent: {:?}", rows.keys());
    }
}

async fn rpc_value(url: &str, method: &str, params: serde_json::Value) -> serde_json::Value {
    let provider = ProviderBuilder::new().connect_http(url.parse().unwrap());
    provider
        .raw_request(method.to_owned().into(), params)
        .await
        .unwrap()
}

/// Issue 27's feed over EVM logs: a follower applies only blocks its confirmation depth
/// below the head; a reorganisation shallower than the depth changes nothing it applied,
/// a deeper one stops it by name; a node that leaves out, adds, alters or reorders a
/// command, or whose headers do not link, is caught.
async fn the_feed_follows_confirmed_commands_and_catches_lies(f: &mut Evm, contract: [u8; 32]) {
    use chain::proof::ProofError;
    use chain::registry::ContractRegistry;
    use chain::types::Command;
    let (sender, _) = suite::Fixture::account(f).await;
    let send = |n: u8| Command {
        contract,
        epoch: phalanx_types::Epoch(0),
        ciphertext: vec![n; 40 + usize::from(n)],
    };
    for n in 0..4 {
        f.registry.submit_command(&sender, &send(n)).await.unwrap();
    }
    let total = f
        .registry
        .contract(contract)
        .await
        .unwrap()
        .unwrap()
        .commands;

    // Three blocks deep: the last three commands (one a block) wait.
    let mut deep = Follower::start(f, contract).await;
    let applied = deep.follow(f, contract, 3).await.unwrap();
    assert_eq!(deep.count, total - 3);
    assert_eq!(applied.len() as u64, total - 3);
    assert!(
        applied
            .iter()
            .enumerate()
            .all(|(i, c)| c.sequence == i as u64)
    );
    // At depth 0 it catches up with the contract.
    let mut live = Follower::start(f, contract).await;
    live.follow(f, contract, 0).await.unwrap();
    assert_eq!(live.count, total);

    // Lies about one page.
    let from = Follower::start(f, contract).await;
    let page = f
        .registry
        .command_page(&contract, &from.at, 0)
        .await
        .unwrap()
        .unwrap();
    let check =
        |p: &chain::evm_proof::EvmPage| p.verify(&from.at, &f.registry_id, &contract, 0, &[0; 32]);
    check(&page).unwrap();
    let feed = |p: &chain::evm_proof::EvmPage| matches!(check(p), Err(ProofError::Feed(_)));
    let mut p = page.clone();
    p.commands.remove(1);
    assert!(feed(&p), "a command left out");
    let mut p = page.clone();
    p.commands.insert(1, p.commands[1].clone());
    assert!(feed(&p), "a command added");
    let mut p = page.clone();
    p.commands[0].ciphertext[0] ^= 1;
    assert!(feed(&p), "a command altered");
    let mut p = page.clone();
    p.commands.swap(0, 1);
    assert!(feed(&p), "commands reordered");
    let mut p = page.clone();
    p.commands[0].block_hash[0] ^= 1;
    assert!(feed(&p), "a log of another block");
    let mut p = page.clone();
    p.headers.remove(1);
    assert!(feed(&p), "headers that do not link");
    let mut p = page.clone();
    p.proof = f
        .registry
        .prove(&[chain::facts::Fact::Commands(contract)], None)
        .await
        .unwrap();
    f.registry.submit_command(&sender, &send(9)).await.unwrap();
    let later = f
        .registry
        .prove(&[chain::facts::Fact::Commands(contract)], None)
        .await
        .unwrap();
    p.proof = later;
    assert!(
        matches!(check(&p), Err(ProofError::UntrustedBlock { .. })),
        "a proof at another block"
    );
    let mut wrong = from;
    wrong.at.hash[0] ^= 1;
    assert!(matches!(
        page.verify(&wrong.at, &f.registry_id, &contract, 0, &[0; 32]),
        Err(ProofError::Reorg { .. })
    ));
    assert!(feed(&chain::evm_proof::EvmPage {
        headers: Vec::new(),
        ..page.clone()
    }));

    // Reorganisations. Both followers are level with the chain; the chain then grows by
    // three blocks of commands (branch A), which are reverted and replaced by four others
    // (branch B).
    let mut shallow = Follower::start(f, contract).await;
    shallow.follow(f, contract, 3).await.unwrap();
    let mut exposed = Follower::start(f, contract).await;
    exposed.follow(f, contract, 0).await.unwrap();
    let snapshot = rpc_value(&f.url, "evm_snapshot", serde_json::json!([])).await;
    for n in 20..23 {
        f.registry.submit_command(&sender, &send(n)).await.unwrap();
    }
    // The shallow follower (depth 3) applies nothing of branch A; the exposed one
    // (depth 0) applies all of it.
    let branch_a = |c: &EvmCommand| (20..23).contains(&c.ciphertext[0]);
    let applied = shallow.follow(f, contract, 3).await.unwrap();
    assert!(!applied.iter().any(branch_a));
    let applied = exposed.follow(f, contract, 0).await.unwrap();
    assert_eq!(applied.iter().filter(|c| branch_a(c)).count(), 3);
    assert!(
        rpc_value(&f.url, "evm_revert", serde_json::json!([snapshot]))
            .await
            .as_bool()
            .unwrap()
    );
    for n in 30..34 {
        f.registry.submit_command(&sender, &send(n)).await.unwrap();
    }
    let applied = shallow.follow(f, contract, 3).await.unwrap();
    assert!(!applied.iter().any(branch_a));
    let mut fresh = Follower::start(f, contract).await;
    fresh.follow(f, contract, 3).await.unwrap();
    assert_eq!((shallow.count, shallow.head), (fresh.count, fresh.head));
    match exposed.follow(f, contract, 0).await {
        Err(ProofError::Reorg { number, .. }) => assert_eq!(number, exposed.at.number),
        other => panic!("expected a deep reorganisation, got {other:?}"),
    }
}

/// The set as a worker or a key-fetch client reads it on EVM: every member listed,
/// each standing as the contract would judge it (the suite leaves the gatekeepers'
/// measurement allowed, their evidence fresh, and member 2 proven faulty: it has no
/// registration), proven at one block.
async fn the_gatekeeper_set_is_proven_with_each_members_standing(f: &Evm) {
    let now = f.registry.now().await.unwrap();
    let set = f.registry.gatekeeper_set(now, None).await.unwrap();
    assert_eq!(set.chain_id, f.registry_id);
    let listed = f.registry.gatekeepers().await.unwrap();
    assert!(!listed.is_empty());
    assert_eq!(
        set.members
            .iter()
            .map(|m| m.gatekeeper.clone())
            .collect::<Vec<_>>(),
        listed
    );
    for m in &set.members {
        match (m.gatekeeper.index, &m.standing) {
            (2, Err(e)) => assert!(matches!(e, RuleError::WrongRole { have: "none", .. })),
            (_, standing) => {
                let w = standing.as_ref().unwrap();
                assert_eq!(w.identity_key, m.gatekeeper.identity_key);
            }
        }
    }
    // A year on, every member's evidence has lapsed: none stands.
    let later = f
        .registry
        .gatekeeper_set(now + 366 * 86_400, None)
        .await
        .unwrap();
    assert!(
        later
            .members
            .iter()
            .filter(|m| m.gatekeeper.index != 2)
            .all(|m| matches!(m.standing, Err(RuleError::EvidenceExpired { .. })))
    );
}

/// Every fact the suite's events touched (and two that never were) is proven at the
/// newest block against the node's hash of it, reads back through the ledger's strict
/// decoders, and says what the contract's views say: the contract commits each fact in
/// the ledger's bytes. Returns one proof for the tamper checks.
async fn every_fact_is_proven(f: &Evm) -> EvmProof {
    use chain::facts::Fact;
    use chain::registry::ContractRegistry;
    let r = &f.registry;
    let mut all: std::collections::BTreeSet<Fact> = r
        .events(0)
        .await
        .unwrap()
        .iter()
        .flat_map(|(_, e)| Fact::of_event(e))
        .collect();
    all.extend([Fact::Gatekeepers, Fact::Rotation, Fact::TcbRule]);
    let (stranger, nowhere) = (Fact::Worker(vec![2; 33]), Fact::Contract([7; 32]));
    all.extend([stranger.clone(), nowhere.clone()]);
    let all: Vec<Fact> = all.into_iter().collect();
    let mut present = std::collections::BTreeMap::<&str, usize>::new();
    let mut sample = None;
    for chunk in all.chunks(chain::evm_proof::MAX_FACTS) {
        let proof = r.prove(chunk, None).await.unwrap();
        let block = proof.block().unwrap();
        let v = proof
            .verify(&node_hash(&f.url, block.number).await)
            .unwrap();
        assert_eq!(v.registry_id, f.registry_id);
        for fact in chunk {
            let name = match fact {
                Fact::Worker(k) => {
                    assert_eq!(v.worker(k).unwrap(), r.worker(k).await.unwrap());
                    v.worker(k).unwrap().map(|_| "worker")
                }
                Fact::Allowed(m) => {
                    let listed = r.allowed_measurements().await.unwrap();
                    let entry = listed.into_iter().find(|a| a.measurement == *m);
                    assert_eq!(v.allowed(m).unwrap(), entry);
                    v.allowed(m).unwrap().map(|_| "allowed")
                }
                Fact::Gatekeepers => {
                    assert_eq!(v.gatekeepers().unwrap(), r.gatekeepers().await.unwrap());
                    Some("gatekeepers")
                }
                Fact::Rotation => {
                    let read = v.read(fact, chain::facts::read_rotation).unwrap();
                    assert_eq!(read, Some(r.rotation().await.unwrap()));
                    Some("rotation")
                }
                Fact::Epoch(e) => {
                    assert_eq!(v.epoch(*e).unwrap(), r.master_key(*e).await.unwrap());
                    v.epoch(*e).unwrap().map(|_| "epoch")
                }
                Fact::Retired(_) => v.fact(fact).unwrap().map(|_| "retired"),
                Fact::TcbRule => {
                    let read = v.read(fact, chain::facts::read_tcb_rule).unwrap();
                    assert_eq!(read, Some(r.tcb_rule().await.unwrap()));
                    Some("tcb rule")
                }
                Fact::Contract(id) => {
                    let c = r.contract(*id).await.unwrap();
                    let proven = v.contract(id).unwrap();
                    assert_eq!(
                        proven.as_ref().map(|p| p.code_hash),
                        c.as_ref().map(|c| c.code_hash)
                    );
                    assert_eq!(
                        proven.as_ref().map(|p| p.deployed_at),
                        c.map(|c| c.deployed_at)
                    );
                    proven.map(|_| "contract")
                }
                Fact::ContractKey(id, e) => {
                    let c = r.contract(*id).await.unwrap().unwrap();
                    assert_eq!(v.contract_key(id, *e).unwrap().as_ref(), c.keys.get(e));
                    Some("contract key")
                }
                Fact::Commands(id) => {
                    let c = r.contract(*id).await.unwrap().unwrap();
                    let (count, head) = v.read(fact, chain::facts::read_commands).unwrap().unwrap();
                    assert_eq!((count, head), (c.commands, c.command_log));
                    assert!(count > 0 && head != [0; 32], "the suite sent commands");
                    Some("commands")
                }
                Fact::State(id) => {
                    let c = r.contract(*id).await.unwrap().unwrap();
                    let proven = v.read(fact, |b| chain::facts::read_state(*id, b)).unwrap();
                    assert_eq!(proven, c.state);
                    proven.map(|_| "state")
                }
                Fact::Fault(_) => {
                    // The suite reported two faults (issue 28, item 4): each proven
                    // with the block that took it in.
                    let proven = v.read(fact, chain::facts::read_fault).unwrap().unwrap();
                    assert!((1..=2).contains(&proven.fault) && proven.reported_at > 0);
                    Some("fault")
                }
                Fact::Rule | Fact::Header(_) => unreachable!("not kept on EVM"),
            };
            if let Some(name) = name {
                *present.entry(name).or_default() += 1;
            }
        }
        sample.get_or_insert(proof);
    }
    // (The suite publishes one epoch, so none is retired here.)
    for kind in [
        "worker",
        "allowed",
        "gatekeepers",
        "rotation",
        "epoch",
        "contract",
        "contract key",
        "commands",
        "state",
        "tcb rule",
        "fault",
    ] {
        assert!(
            present.contains_key(kind),
            "no {kind} fact proven: {present:?}"
        );
    }
    println!("proven facts: {present:?}");
    sample.unwrap()
}

/// Each way of lying about a proof is refused by name; the wire form reads back exactly
/// and refuses every cut.
async fn tampered_proofs_are_refused(f: &Evm, proof: EvmProof) {
    use chain::proof::ProofError;
    use phalanx_types::codec::Codec;
    let trusted = node_hash(&f.url, proof.block().unwrap().number).await;
    proof.verify(&trusted).unwrap();
    let present = proof.facts.iter().position(|s| s.value.is_some()).unwrap();
    let absent = proof.facts.iter().position(|s| s.value.is_none()).unwrap();
    let refused = |p: &EvmProof| p.verify(&trusted).unwrap_err();

    assert!(matches!(
        proof.verify(&[9; 32]),
        Err(ProofError::UntrustedBlock { .. })
    ));
    let mut p = proof.clone();
    let last = p.header.len() - 1;
    p.header[last] ^= 1;
    assert!(matches!(
        refused(&p),
        ProofError::UntrustedBlock { .. } | ProofError::EvmHeader(_)
    ));
    let mut p = proof.clone();
    p.registry[0] ^= 1;
    assert!(matches!(refused(&p), ProofError::EvmAccount(_)));
    let mut p = proof.clone();
    p.account.storage_root[0] ^= 1;
    assert!(matches!(refused(&p), ProofError::EvmAccount(_)));
    // Another governance than the contract's own: its code would differ.
    let mut p = proof.clone();
    p.governance[0] ^= 1;
    assert!(matches!(refused(&p), ProofError::NotTheRegistry { .. }));
    let mut p = proof.clone();
    p.account.nodes.pop();
    assert!(matches!(refused(&p), ProofError::EvmAccount(_)));
    let mut p = proof.clone();
    p.facts[present].value.as_mut().unwrap().push(0);
    assert!(matches!(refused(&p), ProofError::BadEvmFact { .. }));
    let mut p = proof.clone();
    p.facts[present].value = None;
    assert!(matches!(refused(&p), ProofError::BadEvmFact { .. }));
    let mut p = proof.clone();
    p.facts[absent].value = Some(vec![1]);
    assert!(matches!(refused(&p), ProofError::BadEvmFact { .. }));
    let mut p = proof.clone();
    p.facts[present].nodes.remove(0);
    assert!(matches!(refused(&p), ProofError::BadEvmFact { .. }));
    let mut p = proof.clone();
    let key = p.facts[present].key.clone();
    p.facts[present].key = p.facts[absent].key.clone();
    p.facts[absent].key = key;
    assert!(matches!(refused(&p), ProofError::BadEvmFact { .. }));
    // Another chain id verifies, but names another registry than the pinned one.
    let mut p = proof.clone();
    p.chain_id += 1;
    assert_ne!(p.verify(&trusted).unwrap().registry_id, f.registry_id);

    let bytes = proof.to_bytes();
    assert_eq!(EvmProof::from_bytes(&bytes).unwrap(), proof);
    for cut in 0..bytes.len() {
        assert!(EvmProof::from_bytes(&bytes[..cut]).is_err(), "cut at {cut}");
    }
    assert!(EvmProof::from_bytes(&[bytes.as_slice(), &[0]].concat()).is_err());
    // Flipped bits anywhere: never a panic, never a false fact. (A flip in an absent
    // fact's key may still verify: the same nodes prove that other key absent too, and
    // it is.)
    let original: std::collections::BTreeMap<_, _> = proof
        .facts
        .iter()
        .map(|f| (f.key.clone(), f.value.clone()))
        .collect();
    for i in (0..bytes.len()).step_by(7) {
        let mut b = bytes.clone();
        b[i] ^= 0x10;
        if let Ok(p) = EvmProof::from_bytes(&b)
            && let Ok(v) = p.verify(&trusted)
        {
            assert!(p.chain_id != proof.chain_id || v.registry_id == f.registry_id);
            for fact in &p.facts {
                match original.get(&fact.key) {
                    Some(value) => assert_eq!(*value, fact.value, "byte {i} changed a fact"),
                    None => assert!(fact.value.is_none(), "byte {i} proved a fact present"),
                }
            }
        }
    }
}

/// Gas used by the block at `height` (anvil mines one transaction per block).
async fn gas_at(url: &str, height: u64) -> u64 {
    let provider = ProviderBuilder::new().connect_http(url.parse().unwrap());
    provider
        .get_block_by_number(height.into())
        .await
        .unwrap()
        .unwrap()
        .header
        .gas_used
}

async fn rpc(url: &str, method: &str, params: serde_json::Value) {
    let provider = ProviderBuilder::new().connect_http(url.parse().unwrap());
    let _: serde_json::Value = provider
        .raw_request(method.to_owned().into(), params)
        .await
        .unwrap();
}

fn refused(r: Result<u64, chain::registry::RegistryError>) -> RuleError {
    match r {
        Err(chain::registry::RegistryError::Rule(e)) => e,
        other => panic!("expected a rule error, got {other:?}"),
    }
}

/// NC1 on the Solidity registry: the contract cannot verify DCAP, so a registration
/// enters only with the endorsements of t gatekeepers in standing, each of which checked
/// the quote itself (before any set exists: governance's approval). Every shortcut an
/// outsider could take is refused by name, and what enters is what was endorsed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_nc1_evm_registrations_need_t_gatekeepers_endorsements() {
    let Some((_anvil, url)) = suite::evm::anvil().await else {
        return;
    };
    let gov = EvmAccount::plain(funded(&url).await);
    let deployer = funded(&url).await;
    let sim = suite::sim();
    let roots = chain::sim::evidence_rule(&sim);
    let bare = EvmRegistry::deploy(&url, &deployer, gov.signer.address())
        .await
        .unwrap();
    let id = Registry::chain_id(&bare).await.unwrap();
    let endorsing = |keys: Vec<SigningKey>, governance: Option<EvmAccount>| {
        bare.clone().with_endorser(std::sync::Arc::new(
            KeyEndorser::new(roots.clone(), keys, governance).unwrap(),
        ))
    };
    let boot = endorsing(Vec::new(), Some(gov.clone()));
    let (gm, rm) = (suite::m(), suite::mr());
    bare.add_measurement(&gov, &gm, Role::Gatekeeper)
        .await
        .unwrap();
    bare.add_measurement(&gov, &rm, Role::Runtime)
        .await
        .unwrap();
    let verifier = phalanx_dcap::Verifier::new(chain::evidence::anchors(&roots).unwrap());
    let account = |key: &SigningKey| {
        let (url, key) = (url.clone(), key.clone());
        async move {
            EvmAccount {
                signer: funded(&url).await,
                identity: Some(key),
            }
        }
    };
    let record = |reg: &chain::types::Registration, now: i64| {
        chain::endorse::check(&verifier, &roots, &id, reg, now, now).unwrap()
    };

    // Bootstrap: without governance's approval nothing enters, not even a genuine quote.
    let gks: Vec<SigningKey> = (0..3).map(|_| chain::random_key()).collect();
    let mut gk_accounts = Vec::new();
    for k in &gks {
        gk_accounts.push(account(k).await);
    }
    let reg =
        chain::sim::registration(&sim, &suite::gatekeeper_enclave(), &gks[0], vec![1; 65], id)
            .unwrap();
    let bare_record = Endorsed {
        record: record(&reg, bare.now().await.unwrap()),
        endorsements: Vec::new(),
    };
    assert_eq!(
        refused(bare.register_endorsed(&gk_accounts[0], &bare_record).await),
        RuleError::NotEndorsed { have: 0, need: 1 }
    );
    let mut bootstrap_gas = 0;
    for (k, a) in gks.iter().zip(&gk_accounts) {
        let reg = chain::sim::registration(&sim, &suite::gatekeeper_enclave(), k, vec![1; 65], id)
            .unwrap();
        let h = boot.register_worker(a, &reg).await.unwrap();
        bootstrap_gas = gas_at(&url, h).await;
    }
    // An approval is used once.
    let again = Endorsed {
        record: record(&reg, bare.now().await.unwrap()),
        endorsements: Vec::new(),
    };
    bare.approve_bootstrap(&gov, chain::endorse::digest(&id, &again.record))
        .await
        .unwrap();
    bare.register_endorsed(&gk_accounts[0], &again)
        .await
        .unwrap();
    assert_eq!(
        refused(bare.register_endorsed(&gk_accounts[0], &again).await),
        RuleError::NotEndorsed { have: 0, need: 1 }
    );
    let set: Vec<Gatekeeper> = gks
        .iter()
        .enumerate()
        .map(|(i, k)| Gatekeeper {
            index: i as u16 + 1,
            identity_key: chain::types::public_key(k.verifying_key()),
            url: format!("http://127.0.0.1:{}", 7101 + i),
            peer_url: format!("https://127.0.0.1:{}", 7201 + i),
        })
        .collect();
    bare.set_gatekeepers(&gov, &set, 2).await.unwrap();
    // Once a set exists, governance vouches for nobody.
    assert_eq!(
        refused(boot.approve_bootstrap(&gov, [7; 32]).await),
        RuleError::BootstrapOver
    );

    // A pRuntime's registration, as its endorsers found it.
    let rk = chain::random_key();
    let runner = account(&rk).await;
    let reg =
        chain::sim::registration(&sim, &suite::runtime_enclave(), &rk, vec![5; 65], id).unwrap();
    let now = bare.now().await.unwrap();
    let good = record(&reg, now);
    let by = |k: usize, rec: &Record| chain::endorse::sign(&gks[k], k as u16 + 1, &id, rec);
    let submit = |rec: &Record, endorsements: Vec<chain::endorse::Endorsement>| {
        let endorsed = Endorsed {
            record: rec.clone(),
            endorsements,
        };
        let (bare, runner) = (bare.clone(), runner.clone());
        async move { refused(bare.register_endorsed(&runner, &endorsed).await) }
    };
    // No endorsement; t − 1; one gatekeeper twice; a stranger's key in a member's
    // place; an index outside the set.
    assert_eq!(
        submit(&good, vec![]).await,
        RuleError::NotEndorsed { have: 0, need: 2 }
    );
    assert_eq!(
        submit(&good, vec![by(0, &good)]).await,
        RuleError::NotEndorsed { have: 1, need: 2 }
    );
    assert_eq!(
        submit(&good, vec![by(0, &good), by(0, &good)]).await,
        RuleError::BadEndorsement(1)
    );
    let forged = chain::endorse::sign(&chain::random_key(), 2, &id, &good);
    assert_eq!(
        submit(&good, vec![by(0, &good), forged]).await,
        RuleError::BadEndorsement(2)
    );
    let outside = chain::endorse::sign(&gks[1], 9, &id, &good);
    assert_eq!(
        submit(&good, vec![by(0, &good), outside]).await,
        RuleError::BadEndorsement(9)
    );
    // Endorsements of the genuine record do not carry another HPKE key (or tenant).
    let mut swapped = good.clone();
    swapped.hpke_key = vec![6; 65];
    assert_eq!(
        submit(&swapped, vec![by(0, &good), by(1, &good)]).await,
        RuleError::BadEndorsement(1)
    );
    // Even t endorsers cannot enter a status the rule refuses, stale evidence, or
    // evidence from the future.
    let mut out_of_date = good.clone();
    out_of_date.tcb_status = TcbStatus::OutOfDate;
    assert_eq!(
        submit(&out_of_date, vec![by(0, &out_of_date), by(1, &out_of_date)]).await,
        RuleError::Evidence(chain::evidence::EvidenceError::TcbStatus(
            TcbStatus::OutOfDate
        ))
    );
    let mut stale = good.clone();
    stale.evidence_time = now - 8 * 24 * 3600;
    assert!(matches!(
        submit(&stale, vec![by(0, &stale), by(1, &stale)]).await,
        RuleError::EvidenceExpired { .. }
    ));
    let mut future = good.clone();
    future.evidence_time = now + 3600;
    assert!(matches!(
        submit(&future, vec![by(0, &future), by(1, &future)]).await,
        RuleError::Malformed {
            what: "evidence time",
            ..
        }
    ));

    // t endorsements: registered, as endorsed.
    let endorsed = Endorsed {
        record: good.clone(),
        endorsements: vec![by(2, &good), by(0, &good)],
    };
    let h = bare.register_endorsed(&runner, &endorsed).await.unwrap();
    let endorsed_gas = gas_at(&url, h).await;
    let w = bare.worker(&good.identity_key).await.unwrap().unwrap();
    assert_eq!(w.quote_hash, good.quote_hash);
    assert_eq!(w.tcb_status, Some(TcbStatus::UpToDate));
    assert_eq!(w.registered_at, good.evidence_time);
    assert_eq!(w.measurement, rm);

    // The endorsers check the quote first: one made for another registry, or to a
    // root they do not trust, gets no endorsement at all.
    let full = endorsing(gks.clone(), None);
    let rk2 = chain::random_key();
    let runner2 = account(&rk2).await;
    let elsewhere =
        chain::sim::registration(&sim, &suite::runtime_enclave(), &rk2, vec![6; 65], [9; 32])
            .unwrap();
    assert_eq!(
        refused(full.register_worker(&runner2, &elsewhere).await),
        RuleError::Evidence(chain::evidence::EvidenceError::OtherRegistry)
    );
    let rogue = suite::sim();
    let untrusted =
        chain::sim::registration(&rogue, &suite::runtime_enclave(), &rk2, vec![6; 65], id).unwrap();
    assert!(matches!(
        refused(full.register_worker(&runner2, &untrusted).await),
        RuleError::Evidence(chain::evidence::EvidenceError::Quote(_))
    ));
    let fine =
        chain::sim::registration(&sim, &suite::runtime_enclave(), &rk2, vec![6; 65], id).unwrap();
    full.register_worker(&runner2, &fine).await.unwrap();

    // An endorser signs only a time within its clock's skew.
    let skewed = chain::endorse::check(&verifier, &roots, &id, &fine, now - 3600, now);
    assert!(matches!(
        skewed,
        Err(chain::evidence::EvidenceError::Skew { .. })
    ));
    // A lifetime beyond a year is refused (ages are int64 on chain).
    let mut rule = bare.tcb_rule().await.unwrap();
    assert_eq!(rule.max_evidence_age, 7 * 24 * 3600);
    rule.max_evidence_age = u64::MAX;
    assert!(matches!(
        refused(bare.set_tcb_rule(&gov, &rule).await),
        RuleError::Malformed {
            what: "TCB rule",
            ..
        }
    ));

    // Standing lapses with the evidence: gatekeepers whose evidence is older than the
    // rule's lifetime endorse nothing and cannot be set again ...
    rpc(&url, "evm_increaseTime", serde_json::json!([8 * 24 * 3600])).await;
    rpc(&url, "evm_mine", serde_json::json!([])).await;
    let rk3 = chain::random_key();
    let late =
        chain::sim::registration(&sim, &suite::runtime_enclave(), &rk3, vec![7; 65], id).unwrap();
    let runner3 = account(&rk3).await;
    let stale_ends = Endorsed {
        record: record(&late, bare.now().await.unwrap()),
        endorsements: Vec::new(),
    };
    let mut stale_ends = stale_ends;
    stale_ends.endorsements = vec![by(0, &stale_ends.record), by(1, &stale_ends.record)];
    assert!(matches!(
        refused(bare.register_endorsed(&runner3, &stale_ends).await),
        RuleError::NotEndorsed { .. }
    ));
    assert!(matches!(
        refused(bare.set_gatekeepers(&gov, &set, 2).await),
        RuleError::WrongRole {
            need: Role::Gatekeeper,
            have: "none",
            ..
        }
    ));
    // ... so approvals reopen (recovery), and without governance nobody registers.
    assert_eq!(
        refused(full.register_worker(&runner3, &late).await),
        RuleError::NotEndorsed { have: 0, need: 1 }
    );
    // Governance re-admits two gatekeepers (each approval used once); with t members
    // in standing again, endorsements count and approvals close.
    let recover = endorsing(gks.clone(), Some(gov.clone()));
    for (k, a) in gks.iter().zip(&gk_accounts).take(2) {
        let reg = chain::sim::registration(&sim, &suite::gatekeeper_enclave(), k, vec![1; 65], id)
            .unwrap();
        recover.register_worker(a, &reg).await.unwrap();
    }
    assert_eq!(
        refused(boot.approve_bootstrap(&gov, [8; 32]).await),
        RuleError::BootstrapOver
    );
    // Gatekeeper 3 is still out of standing: the endorser leaves it out, and the two
    // in standing suffice.
    full.register_worker(&runner3, &late).await.unwrap();
    println!(
        "gas: register-worker with governance's approval {bootstrap_gas}, with 2 endorsements {endorsed_gas}"
    );
}
