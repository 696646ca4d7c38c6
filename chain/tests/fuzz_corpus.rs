//! The chain codec fuzz target's check (`fuzz/checks/chain_codec.rs`) replayed over
//! its corpus. `cargo test -p chain --test fuzz_corpus -- --ignored` rewrites the seeds.
#![cfg(feature = "ledger")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod chain_codec {
    include!("../../fuzz/checks/chain_codec.rs");
}
mod commit_proof {
    include!("../../fuzz/checks/commit_proof.rs");
}
mod header_proof {
    include!("../../fuzz/checks/header_proof.rs");
}

use phalanx_types::Epoch;
use std::path::PathBuf;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/chain_codec")
}

/// Replays every prefix of every input in `fuzz/corpus/<target>/` through `check`; the
/// number of inputs.
fn replay(target: &str, check: fn(&[u8])) -> usize {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let data = std::fs::read(e.unwrap().path()).unwrap();
        for cut in 0..=data.len() {
            check(data.get(..cut).unwrap());
        }
        n += 1;
    }
    n
}

#[test]
fn chain_codec_corpus_replays() {
    assert!(replay("chain_codec", chain_codec::check) > 0);
}

/// The state-commitment proof target's corpus (`fuzz/corpus/commit_proof/`: proofs of
/// the check's tree, of another tree, and their truncations), every prefix replayed.
#[test]
fn commit_proof_corpus_replays() {
    assert!(replay("commit_proof", commit_proof::check) >= 3);
}

/// The header proof target's corpus (`fuzz/corpus/header_proof/`: a real chain's
/// proofs of present and absent facts, fact values), every prefix replayed.
#[test]
fn header_proof_corpus_replays() {
    assert!(replay("header_proof", header_proof::check) >= 3);
}

/// A ledger on the simulated PKI (in `d`) with one pRuntime measurement allowed and one
/// worker registered under it: the ledger, governance's key and the worker's.
async fn registered(
    d: &std::path::Path,
) -> (
    chain::ledger::Ledger,
    p256::ecdsa::SigningKey,
    p256::ecdsa::SigningKey,
) {
    use chain::registry::Registry;
    let governance = chain::random_key();
    let sim = chain::sim::platform(1_759_000_000).unwrap();
    let ledger = chain::ledger::Ledger::open(
        d,
        chain::random_key(),
        chain::types::public_key(governance.verifying_key()),
        chain::sim::evidence_rule(&sim),
        || 1_760_000_000,
    )
    .unwrap();
    let enclave = chain::sim::enclave([1; 32]);
    ledger
        .add_measurement(
            &governance,
            &chain::sim::tenant(&enclave),
            chain::types::Role::Runtime,
        )
        .await
        .unwrap();
    let worker = chain::random_key();
    let chain_id = ledger.state().unwrap().chain_id();
    let registration =
        chain::sim::registration(&sim, &enclave, &worker, vec![4; 65], chain_id).unwrap();
    ledger
        .register_worker(&worker, &registration)
        .await
        .unwrap();
    (ledger, governance, worker)
}

/// Writes the header proof seeds from a ledger: a worker's registration, an allowed
/// measurement, an absent contract, the rule and the history, and fact values alone.
#[tokio::test]
#[ignore]
async fn write_header_proof_seeds() {
    use chain::facts::Fact;
    use phalanx_types::codec::Codec;
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/header_proof");
    std::fs::create_dir_all(&dir).unwrap();
    let d = tempfile::tempdir().unwrap();
    let (ledger, _, worker) = registered(d.path()).await;
    let worker_key = chain::types::public_key(worker.verifying_key());
    let tenant = chain::sim::tenant(&chain::sim::enclave([1; 32]));
    let facts = [
        Fact::Rule,
        Fact::Worker(worker_key),
        Fact::Allowed(tenant.to_vec()),
        Fact::Contract([9; 32]),
        Fact::Header(0),
    ];
    let keys: Vec<Vec<u8>> = facts.iter().map(Fact::key).collect();
    let proof = ledger.prove(2, &keys).unwrap();
    std::fs::write(dir.join("answer_facts"), proof.to_bytes()).unwrap();
    std::fs::write(
        dir.join("at_genesis"),
        ledger.prove(0, &keys[..1]).unwrap().to_bytes(),
    )
    .unwrap();
    for (i, f) in proof.facts.iter().enumerate() {
        if let Some(v) = &f.value {
            std::fs::write(dir.join(format!("value_{i}")), v).unwrap();
        }
    }
}

/// Writes the commit proof seeds: inclusion and absence proofs of the check's own tree
/// and a proof from a larger tree.
#[test]
#[ignore]
fn write_commit_proof_seeds() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/commit_proof");
    std::fs::create_dir_all(&dir).unwrap();
    let mut tree = chain::commit::Commitment::new();
    tree.update((0u8..16).map(|i| (vec![b'k', i], Some(vec![i; 8]))))
        .unwrap();
    for (name, key) in [("inclusion", vec![b'k', 3]), ("absence", vec![b'k', 17])] {
        std::fs::write(dir.join(name), tree.prove(&key).unwrap().1).unwrap();
    }
    let mut big = chain::commit::Commitment::new();
    big.update((0u32..5000).map(|i| (i.to_be_bytes().to_vec(), Some(vec![1; 40]))))
        .unwrap();
    std::fs::write(dir.join("deep"), big.prove(&7u32.to_be_bytes()).unwrap().1).unwrap();
    std::fs::write(
        dir.join("empty"),
        chain::commit::Commitment::new().prove(b"k").unwrap().1,
    )
    .unwrap();
}

/// Writes the seed inputs: a transaction of each kind in blocks of a real ledger (a
/// registration with real simulated evidence among them).
#[tokio::test]
#[ignore]
async fn write_seeds() {
    use chain::registry::Registry;
    let d = tempfile::tempdir().unwrap();
    let (ledger, governance, _) = registered(d.path()).await;
    ledger.lock_rotation(&governance, Epoch(0)).await.unwrap();
    ledger.abort_round(&governance, [5; 32]).await.unwrap();
    std::fs::create_dir_all(dir()).unwrap();
    for b in ledger.blocks(0, 10).unwrap() {
        std::fs::write(dir().join(format!("block_{}", b.height)), b.encode()).unwrap();
        for (i, tx) in b.txs.iter().enumerate() {
            std::fs::write(dir().join(format!("tx_{}_{i}", b.height)), tx.encode()).unwrap();
        }
    }
}

/// Writes a seed for the certificate-carrying transaction (its fields are only decoded
/// here, not checked).
#[test]
#[ignore]
fn write_certificate_seed() {
    use chain::types::{EpochCertificate, SignedTx, Tx};
    let tx = SignedTx::sign(
        &chain::random_key(),
        &[7; 32],
        3,
        Tx::PublishMasterKey(EpochCertificate {
            spec: vec![1; 60],
            public_key_set: vec![2; 40],
            signatures: vec![[3; 64]; 2],
        }),
    );
    std::fs::create_dir_all(dir()).unwrap();
    std::fs::write(dir().join("tx_publish_master_key"), tx.encode()).unwrap();
}

/// Writes seeds for the governance transactions a ledger seed run does not make: a
/// gatekeeper set with its threshold, a retirement and a TCB rule.
#[test]
#[ignore]
fn write_governance_seeds() {
    use chain::types::{Gatekeeper, SignedTx, TcbRule, Tx};
    let key = chain::random_key();
    let seeds = [
        (
            "tx_set_gatekeepers",
            Tx::SetGatekeepers {
                set: vec![Gatekeeper {
                    index: 1,
                    identity_key: vec![2; 33],
                    url: "http://g1".into(),
                    peer_url: "https://g1".into(),
                }],
                threshold: 1,
            },
        ),
        ("tx_retire_epoch", Tx::RetireEpoch(Epoch(1))),
        (
            "tx_set_tcb_rule",
            Tx::SetTcbRule(TcbRule {
                tcb_statuses: vec![phalanx_dcap::tcb::TcbStatus::UpToDate],
                max_evidence_age: 86_400,
                min_tcb_evaluation_data_number: 17,
            }),
        ),
    ];
    std::fs::create_dir_all(dir()).unwrap();
    for (name, tx) in seeds {
        let tx = SignedTx::sign(&key, &[7; 32], 0, tx);
        std::fs::write(dir().join(name), tx.encode()).unwrap();
    }
}

/// Writes seeds for the evidence of misbehaviour (issue 28, item 4), both faults.
#[test]
#[ignore]
fn write_misbehaviour_seeds() {
    use chain::types::{Fault, LogHead, Misbehaviour, SignedTx, Tx};
    let head = |root| LogHead {
        root,
        timestamp: 1_760_000_000,
        signature: [3; 64],
    };
    let seeds = [
        (
            "tx_report_confirmation",
            Fault::Confirmation {
                round: [1; 32],
                index: 2,
                digest: [4; 32],
                signature: [5; 64],
            },
        ),
        (
            "tx_report_forked_log",
            Fault::ForkedLog {
                size: 9,
                first: head([1; 32]),
                second: head([2; 32]),
            },
        ),
        (
            "tx_report_partial",
            Fault::Partial {
                size: 9,
                head: head([1; 32]),
                release: phalanx_threshold::release_log::CommittedRelease {
                    node: phalanx_threshold::share::NodeIndex::new(2).unwrap(),
                    logged_at: 1_760_000_000,
                    transcript: [6; 32],
                    point_input: b"key id".to_vec(),
                    public_share: [4; 65],
                    partial: vec![7; 229],
                    log_index: 3,
                    inclusion_proof: vec![[8; 32]; 4],
                },
            },
        ),
        (
            "tx_report_dealing",
            Fault::Dealing {
                spec: vec![1; 80],
                sender: 1,
                recipient: 2,
                public: vec![2; 70],
                private: vec![3; 68],
                signature: [9; 64],
            },
        ),
    ];
    std::fs::create_dir_all(dir()).unwrap();
    for (name, fault) in seeds {
        let evidence = Misbehaviour {
            accused: vec![2; 33],
            fault,
        };
        let tx = SignedTx::sign(
            &chain::random_key(),
            &[7; 32],
            0,
            Tx::ReportMisbehaviour(evidence),
        );
        std::fs::write(dir().join(name), tx.encode()).unwrap();
    }
}

/// Writes a seed for the state commitment transaction (issue 28: every prefix of it is
/// refused, the whole re-encodes exactly).
#[test]
#[ignore]
fn write_state_commitment_seed() {
    use chain::types::{SignedTx, StateCommitment, Tx};
    let tx = SignedTx::sign(
        &chain::random_key(),
        &[7; 32],
        4,
        Tx::CommitState(StateCommitment {
            contract: [1; 32],
            count: 64,
            log_head: [2; 32],
            state_root: [3; 32],
            epoch: Epoch(2),
            committed_at: 0,
        }),
    );
    std::fs::create_dir_all(dir()).unwrap();
    std::fs::write(dir().join("tx_commit_state"), tx.encode()).unwrap();
}
