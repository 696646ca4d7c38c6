//! A world built from real artefacts (shared by the tests and the benchmark): a
//! simulated SGX quote binding the worker's keys, the simulated PKI's collateral, a
//! registry chain signed block by block, a statement signed by the worker.
#![allow(dead_code, clippy::unwrap_used, clippy::indexing_slicing)]

use base64::Engine as _;
use chain::facts::{self, Fact};
use chain::proof::{FactProof, HeaderProof};
use chain::types::{Evidence, Genesis, Registration, Role, SignedTx, Tx, public_key};
use p256::ecdsa::SigningKey;
use phalanx_dcap_sim::{SgxEnclave, SimConfig, SimTee};
use phalanx_release::release::WorkerRuntimeData;
use phalanx_types::hex::Hex;
use phalanx_types::statement::{Statement, answer_hash, query_hash};
use phalanx_verify::{
    AnswerProof, Bundle, Options, RegistryProof, TcbStatus, TrustAnchors, WorkerEvidence,
};

pub const T0: i64 = 1_760_000_000;
pub const MR: [u8; 32] = [0x42; 32];
pub const CODE: &[u8] = b"\0asm\x01\0\0\0";

pub fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

pub fn unb64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

fn key() -> SigningKey {
    chain::random_key()
}

/// How the world is built.
#[derive(Default, Clone, Copy)]
pub struct Shape {
    pub debug: bool,
    /// Governance removes the worker's measurement in a block before the answer.
    pub removed: bool,
    /// The statement names another code hash than the deployed contract's.
    pub other_code: bool,
    /// Governance allowed the worker's measurement as an application, not a pRuntime.
    pub app_role: bool,
    /// The platform's TCB status (default `UpToDate`), which the registry then accepts.
    pub status: Option<TcbStatus>,
    /// With `status`: the matched level names no advisory.
    pub no_advisories: bool,
    /// The registry's evidence lifetime, seconds (default: the genesis default).
    pub lifetime: Option<u64>,
    /// A synthetic registry this large — (other workers, blocks) — whose authority signs
    /// a header over the answer's facts among all of theirs (the benchmark's registries).
    pub synthetic: Option<(u64, u64)>,
    /// The authority lists the measurement as a pRuntime on its own word: the
    /// allow-list transaction is its own, not governance's.
    pub forged_allow: bool,
}

/// The quote and the parsed collateral `bundle` carries, and the instant the world's
/// statement is at (what the benchmarks verify the quote alone with).
pub fn quote_and_collateral(bundle: &Bundle) -> (Vec<u8>, phalanx_dcap::Collateral, i64) {
    let quote = bundle.evidence.registry_evidence().unwrap().quote;
    let collateral =
        phalanx_dcap::Collateral::from_bundle_json(bundle.evidence.collateral.as_bytes()).unwrap();
    (quote, collateral, T0 + 1030)
}

pub struct World {
    pub bundle: Bundle,
    pub options: Options,
}

/// Long on purpose: one world, built in the order things happen.
pub fn world(shape: Shape) -> World {
    let mut config = match shape.status {
        Some(status) => SimConfig::with_status(T0, status),
        None => SimConfig::up_to_date(T0),
    };
    if shape.no_advisories {
        for l in &mut config.tcb_levels {
            l.advisory_ids.clear();
        }
    }
    let sim = SimTee::generate(config).unwrap();
    let mut rule = chain::sim::evidence_rule(&sim);
    rule.tcb_statuses.extend(shape.status);
    if let Some(l) = shape.lifetime {
        rule.max_evidence_age = l;
    }
    let (authority, governance, worker, user) = (key(), key(), key(), key());
    let hpke = phalanx_release::envelope::RecipientKey::generate(&mut rand::rng()).public_bytes();
    // The registry's genesis trusts the simulated root.
    let genesis = chain::state::State::genesis_block(
        Genesis {
            authority: public_key(authority.verifying_key()),
            governance: public_key(governance.verifying_key()),
            timestamp: T0 + 1000,
            evidence: rule.clone(),
        },
        &authority,
    );
    let chain_id = genesis.genesis.as_ref().unwrap().chain_id();
    let runtime_data = WorkerRuntimeData {
        identity_key: public_key(worker.verifying_key()),
        hpke_public_key: hpke.clone(),
        registry: chain_id,
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
    let tenant = chain::sim::tenant(&chain::sim::enclave(MR));
    let role = if shape.app_role {
        Role::App
    } else {
        Role::Runtime
    };

    let mut txs = vec![
        SignedTx::sign(
            &governance,
            &chain_id,
            0,
            Tx::AddMeasurement {
                measurement: tenant.to_vec(),
                role,
            },
        ),
        SignedTx::sign(
            &worker,
            &chain_id,
            0,
            Tx::RegisterWorker(Registration {
                identity_key: public_key(worker.verifying_key()),
                hpke_key: hpke.clone(),
                measurement: tenant.to_vec(),
                attestation_hash: [9; 32],
                evidence: Evidence {
                    quote: quote.clone(),
                    collateral: collateral.to_bundle_json().into_bytes(),
                    nonce: nonce.clone(),
                    runtime_data: runtime_data.clone(),
                },
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
    // The registry: the transactions in blocks of one, as a ledger makes them. A shape
    // the rules refuse (a debug enclave, a worker under an application's measurement)
    // gets a lying authority instead, which signs a header over whatever facts it likes:
    // the verifier must refuse those by its own checks.
    let height = txs.len() as u64;
    let timestamp = T0 + 1000 + 10 * height as i64;
    let mut state = chain::state::State::from_genesis(&genesis).unwrap();
    let mut blocks = vec![genesis.clone()];
    for tx in &txs {
        let last = blocks.last().unwrap().timestamp + 10;
        match state.seal_and_advance(vec![tx.clone()], last, &authority) {
            Ok((block, next)) => {
                blocks.push(block);
                state = next;
            }
            Err(_) => break,
        }
    }
    let honest =
        blocks.len() as u64 == height + 1 && shape.synthetic.is_none() && !shape.forged_allow;
    let (others, height) = shape.synthetic.unwrap_or((0, height));
    let contract_id = phalanx_types::contract::contract_id(
        &chain_id,
        &public_key(user.verifying_key()),
        &phalanx_types::contract::code_hash(CODE),
        &[0; 32],
    );
    let worker_key = public_key(worker.verifying_key());
    let keys: Vec<Vec<u8>> = [
        Fact::Rule,
        Fact::Worker(worker_key.clone()),
        Fact::Contract(contract_id),
        Fact::Allowed(tenant.to_vec()),
    ]
    .iter()
    .map(Fact::key)
    .collect();
    // Governance's allow-list transaction, the evidence of the measurement's role: block
    // 1's first on the honest chain; in a block of its own for a lying authority.
    let forged = shape.forged_allow.then(|| {
        SignedTx::sign(
            &authority,
            &chain_id,
            0,
            Tx::AddMeasurement {
                measurement: tenant.to_vec(),
                role,
            },
        )
    });
    let allowing = blocks
        .get(1)
        .filter(|_| forged.is_none())
        .cloned()
        .unwrap_or_else(|| {
            let mut b = chain::types::Block {
                chain_id,
                height: 1,
                prev: genesis.hash(),
                timestamp: T0 + 1010,
                genesis: None,
                tx_root: [0; 32],
                state_root: [0; 32],
                txs: vec![forged.clone().unwrap_or_else(|| txs[0].clone())],
                signature: Vec::new(),
            };
            b.tx_root = b.computed_tx_root().unwrap();
            b
        });
    let mut keys = keys;
    keys.push(Fact::Header(1).key());
    let (header, proof) = if honest {
        let last = blocks.last().unwrap();
        let p = HeaderProof::at(&state, &genesis, last, &keys).unwrap();
        (last.header(), p)
    } else {
        let allowing_hash = allowing.hash();
        lying_registry(
            &genesis,
            &authority,
            &keys,
            |f| match f {
                Fact::Rule => Some(facts::rule(&rule)),
                Fact::Worker(_) => Some(facts::worker(&chain::types::Worker {
                    identity_key: worker_key.clone(),
                    hpke_key: hpke.clone(),
                    measurement: tenant.to_vec(),
                    attestation_hash: [9; 32],
                    registered_at: T0 + 1020,
                    quote_hash: Evidence::quote_hash(&quote),
                    tcb_status: Some(shape.status.unwrap_or(TcbStatus::UpToDate)),
                })),
                Fact::Contract(_) => Some(facts::contract(&chain::types::Contract {
                    id: contract_id,
                    deployer: public_key(user.verifying_key()),
                    code_hash: phalanx_types::contract::code_hash(CODE),
                    code: Default::default(),
                    salt: [0; 32],
                    deployed_at: 3,
                    keys: Default::default(),
                    commands: 0,
                    command_log: [0; 32],
                    state: None,
                })),
                Fact::Allowed(_) => (!shape.removed).then(|| {
                    facts::allowed(&chain::types::Allowed {
                        measurement: tenant.to_vec(),
                        role,
                        added_at: T0 + 1010,
                        added_in: 1,
                    })
                }),
                Fact::Header(1) => Some(allowing_hash.to_vec()),
                _ => None,
            },
            (others, height),
            timestamp,
        )
    };

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
            &chain_id,
            &caller,
            &phalanx_types::contract::code_hash(CODE),
            &[0; 32],
        )),
        code_hash: Hex(code_hash),
        height: header.height,
        block_hash: Hex(header.hash()),
        state_root: Hex([7; 32]),
        query_hash: Hex(query_hash(&caller, &query_nonce, &[0x51; 32], &query)),
        answer_hash: Hex(answer_hash(&[0xa5; 32], &answer)),
    };
    let signature: p256::ecdsa::Signature =
        p256::ecdsa::signature::Signer::sign(&worker, &statement.signed_bytes().unwrap());
    let bundle = Bundle::new(
        AnswerProof {
            kind: phalanx_verify::AnswerKind::Query,
            statement,
            signature: b64(&signature.to_bytes()),
            caller_key: b64(&caller),
            nonce: Hex(query_nonce),
            query_salt: Hex([0x51; 32]),
            query: b64(&query),
            answer_salt: Hex([0xa5; 32]),
            answer: b64(&answer),
        },
        WorkerEvidence {
            tee: "sgx".into(),
            quote: b64(&quote),
            nonce: b64(&nonce),
            runtime_data: b64(&runtime_data),
            collateral: collateral.to_bundle_json(),
        },
        RegistryProof {
            allowed_by: phalanx_verify::TxJson::of(&allowing, 0),
            ..RegistryProof::of(&proof)
        },
    );
    let mut options = Options::intel(genesis.hash());
    options.anchors = TrustAnchors::from_pem(sim.root_pem().as_bytes()).unwrap();
    options.root_name = "sim".into();
    World { bundle, options }
}

/// A header at `height` that `authority` signs over the facts `value` names (a lying
/// registry's, or a synthetic one's) among `others` more workers and the hashes of
/// `height` earlier headers, with proofs of `keys`.
fn lying_registry(
    genesis: &chain::types::Block,
    authority: &SigningKey,
    keys: &[Vec<u8>],
    value: impl Fn(&Fact) -> Option<Vec<u8>>,
    (others, height): (u64, u64),
    timestamp: i64,
) -> (chain::types::Header, HeaderProof) {
    let facts = [
        Fact::Rule,
        Fact::Worker(Vec::new()),
        Fact::Contract([0; 32]),
        Fact::Allowed(Vec::new()),
        Fact::Header(1),
    ];
    let mut tree = chain::commit::Commitment::new();
    let changes: Vec<(Vec<u8>, Option<Vec<u8>>)> = keys
        .iter()
        .zip(&facts)
        .map(|(k, f)| (k.clone(), value(f)))
        .collect();
    // As a registry grows: a block's worth of facts at a time (then the answer's own
    // facts, which the filler must not overwrite).
    let other_worker = |i: u64| {
        let mut key = vec![2u8; 33];
        key[1..9].copy_from_slice(&i.to_be_bytes());
        let record = value(&Fact::Worker(Vec::new())).unwrap_or_default();
        (Fact::Worker(key).key(), Some(record))
    };
    let history = |h: u64| (Fact::Header(h).key(), Some([h as u8; 32].to_vec()));
    let all = (0..others)
        .map(other_worker)
        .chain((0..height.saturating_sub(1)).map(history));
    let mut batch = Vec::with_capacity(10_000);
    for change in all {
        batch.push(change);
        if batch.len() == 10_000 {
            tree.update(std::mem::take(&mut batch)).unwrap();
        }
    }
    tree.update(batch).unwrap();
    tree.update(changes).unwrap();
    let header = chain::types::Header {
        chain_id: genesis.chain_id,
        height,
        prev: [0; 32],
        timestamp,
        tx_root: chain::commit::empty_root(),
        state_root: tree.root(),
    };
    let signature: p256::ecdsa::Signature =
        p256::ecdsa::signature::Signer::sign(authority, &header.hash());
    let proof = HeaderProof {
        genesis: genesis.clone(),
        header: chain::types::SignedHeader {
            header: header.clone(),
            signature: signature.to_bytes().to_vec(),
        },
        facts: keys
            .iter()
            .map(|k| {
                let (value, proof) = tree.prove(k).unwrap();
                FactProof {
                    key: k.clone(),
                    value,
                    proof,
                }
            })
            .collect(),
    };
    (header, proof)
}
