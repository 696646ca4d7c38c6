//! The registry checks a registration's evidence itself (NC1 of the 2026-12 follow-up
//! review): every way an outsider, or a genuine TEE with the wrong identity, could try
//! to enter the registry is refused by name, on the rules alone (sans-IO: a genesis
//! block, transactions, a clock), and what enters is what the quote proved.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use chain::evidence::EvidenceError;
use chain::state::{RuleError, State};
use chain::types::{
    ContractKey, EvidenceRule, Genesis, Registration, Role, SignedTx, Tx, public_key,
};
use p256::ecdsa::SigningKey;
use phalanx_dcap::tcb::TcbStatus;
use phalanx_dcap_sim::{SimConfig, SimTee};
use phalanx_types::Epoch;

const T0: i64 = 1_760_000_000;

struct World {
    state: State,
    governance: SigningKey,
    sim: SimTee,
    now: i64,
}

impl World {
    /// A registry trusting `sim` (and `also`), whose governance allowed the pRuntime
    /// enclave `[0x5e; 32]` and the gatekeeper enclave `[0x6b; 32]`.
    fn new(sim: SimTee, also: &[&SimTee]) -> Self {
        let mut rule = chain::sim::evidence_rule(&sim);
        for s in also {
            rule.trust_roots
                .extend(chain::sim::evidence_rule(s).trust_roots);
        }
        Self::with_rule(sim, rule)
    }

    fn with_rule(sim: SimTee, rule: EvidenceRule) -> Self {
        let (authority, governance) = (chain::random_key(), chain::random_key());
        let genesis = State::genesis_block(
            Genesis {
                authority: public_key(authority.verifying_key()),
                governance: public_key(governance.verifying_key()),
                timestamp: T0,
                evidence: rule,
            },
            &authority,
        );
        let mut w = Self {
            state: State::from_genesis(&genesis).unwrap(),
            governance,
            sim,
            now: T0,
        };
        for (mr, role) in [([0x5e; 32], Role::Runtime), ([0x6b; 32], Role::Gatekeeper)] {
            let g = w.governance.clone();
            w.apply(
                &g,
                Tx::AddMeasurement {
                    measurement: chain::sim::tenant(&chain::sim::enclave(mr)).to_vec(),
                    role,
                },
            )
            .unwrap();
        }
        w
    }

    fn apply(&mut self, by: &SigningKey, tx: Tx) -> Result<(), RuleError> {
        let nonce = self.state.nonce(&public_key(by.verifying_key()));
        let t = SignedTx::sign(by, &self.state.chain_id(), nonce, tx);
        let height = self.state.height();
        self.state.apply(&t, height, self.now).map(|_| ())
    }

    fn registration(&self, key: &SigningKey, mr: [u8; 32]) -> Registration {
        chain::sim::registration(
            &self.sim,
            &chain::sim::enclave(mr),
            key,
            hpke(),
            self.state.chain_id(),
        )
        .unwrap()
    }

    fn register(&mut self, key: &SigningKey, r: Registration) -> Result<(), RuleError> {
        self.apply(key, Tx::RegisterWorker(r))
    }
}

fn hpke() -> Vec<u8> {
    let k = p256::SecretKey::from_slice(&[5; 32]).unwrap().public_key();
    p256::elliptic_curve::sec1::ToSec1Point::to_sec1_point(&k, false)
        .as_bytes()
        .to_vec()
}

fn sim() -> SimTee {
    chain::sim::platform(T0 - 1000).unwrap()
}

fn evidence_error(e: RuleError) -> EvidenceError {
    match e {
        RuleError::Evidence(e) => e,
        other => panic!("expected an evidence refusal, got {other:?}"),
    }
}

/// The review's attack, on the rules: a fresh key with no TEE registers under the
/// allowed pRuntime measurement (read off the chain) and publishes a contract's keys.
/// Both are refused; so is every variant with a genuine quote that proves something
/// else than what is claimed.
#[test]
fn attack_nc1_an_unattested_key_cannot_register_or_publish() {
    let mut w = World::new(sim(), &[]);
    let attacker = chain::random_key();
    let runtime = chain::sim::tenant(&chain::sim::enclave([0x5e; 32])).to_vec();
    let genuine = chain::random_key();
    let theirs = w.registration(&genuine, [0x5e; 32]);

    // No evidence at all.
    let mut bare = theirs.clone();
    bare.identity_key = public_key(attacker.verifying_key());
    bare.evidence = chain::types::Evidence {
        quote: Vec::new(),
        collateral: Vec::new(),
        nonce: Vec::new(),
        runtime_data: Vec::new(),
    };
    assert!(matches!(
        evidence_error(w.register(&attacker, bare).unwrap_err()),
        EvidenceError::Collateral(_)
    ));
    // A genuine worker's evidence, replayed under the attacker's key.
    let mut replayed = theirs.clone();
    replayed.identity_key = public_key(attacker.verifying_key());
    assert_eq!(
        evidence_error(w.register(&attacker, replayed).unwrap_err()),
        EvidenceError::Claim("identity key")
    );
    // The attacker's runtime data with the genuine worker's quote.
    let mut spliced = w.registration(&attacker, [0x5e; 32]);
    spliced.evidence.quote = theirs.evidence.quote.clone();
    assert_eq!(
        evidence_error(w.register(&attacker, spliced).unwrap_err()),
        EvidenceError::ReportData
    );
    // Another HPKE key than the quote binds (the one users would seal to).
    let mut swapped = w.registration(&attacker, [0x5e; 32]);
    swapped.hpke_key = vec![4; 65];
    assert_eq!(
        evidence_error(w.register(&attacker, swapped).unwrap_err()),
        EvidenceError::Claim("HPKE key")
    );
    // A quote from another enclave (an allowed gatekeeper) claiming the pRuntime tenant.
    let mut other_enclave = w.registration(&attacker, [0x6b; 32]);
    other_enclave.measurement = runtime.clone();
    assert_eq!(
        evidence_error(w.register(&attacker, other_enclave).unwrap_err()),
        EvidenceError::Claim("measurement")
    );
    // A registration made for another registry (a replay across chains).
    let mut elsewhere = chain::sim::registration(
        &w.sim,
        &chain::sim::enclave([0x5e; 32]),
        &attacker,
        hpke(),
        [9; 32],
    )
    .unwrap();
    elsewhere.measurement = runtime.clone();
    assert_eq!(
        evidence_error(w.register(&attacker, elsewhere).unwrap_err()),
        EvidenceError::OtherRegistry
    );
    // A quote that chains to a root this registry does not trust (the attacker's own
    // simulated PKI).
    let own = sim();
    let forged = chain::sim::registration(
        &own,
        &chain::sim::enclave([0x5e; 32]),
        &attacker,
        hpke(),
        w.state.chain_id(),
    )
    .unwrap();
    assert!(matches!(
        evidence_error(w.register(&attacker, forged).unwrap_err()),
        EvidenceError::Quote(_)
    ));
    // Nothing entered, so nothing can be published.
    assert!(
        w.state
            .worker(&public_key(attacker.verifying_key()))
            .is_none()
    );
    let g = w.governance.clone();
    let _ = publish_epoch(&mut w, &g);
    let contract = deploy(&mut w);
    let key = contract_key(contract);
    assert!(matches!(
        w.apply(&attacker, Tx::PublishContractKey(key.clone())),
        Err(RuleError::WrongRole { have: "none", .. })
    ));

    // The genuine worker registers; the record is what the quote proved.
    w.register(&genuine, theirs.clone()).unwrap();
    let listed = w
        .state
        .worker(&public_key(genuine.verifying_key()))
        .unwrap();
    assert_eq!(listed.measurement, runtime);
    assert_eq!(listed.tcb_status, Some(TcbStatus::UpToDate));
    assert_eq!(
        listed.quote_hash,
        chain::types::Evidence::quote_hash(&theirs.evidence.quote)
    );
    assert_eq!(listed.registered_at, w.now);
    w.apply(&genuine, Tx::PublishContractKey(key)).unwrap();
}

/// A debug enclave, and a platform whose TCB the registry does not accept, stay out
/// however genuine their quotes.
#[test]
fn debug_enclaves_and_unaccepted_tcb_levels_are_refused() {
    let stale = SimTee::generate(SimConfig::with_status(T0 - 1000, TcbStatus::OutOfDate)).unwrap();
    let mut w = World::new(sim(), &[&stale]);
    let k = chain::random_key();
    let mut debug = chain::sim::registration(
        &w.sim,
        &phalanx_dcap_sim::SgxEnclave {
            mr_enclave: [0x5e; 32],
            debug: true,
            ..Default::default()
        },
        &k,
        hpke(),
        w.state.chain_id(),
    )
    .unwrap();
    debug.measurement = chain::sim::tenant(&chain::sim::enclave([0x5e; 32])).to_vec();
    assert_eq!(
        evidence_error(w.register(&k, debug).unwrap_err()),
        EvidenceError::OpenToHost
    );
    let out_of_date = chain::sim::registration(
        &stale,
        &chain::sim::enclave([0x5e; 32]),
        &k,
        hpke(),
        w.state.chain_id(),
    )
    .unwrap();
    assert_eq!(
        evidence_error(w.register(&k, out_of_date).unwrap_err()),
        EvidenceError::TcbStatus(TcbStatus::OutOfDate)
    );
}

/// A genesis whose roots are not certificates is no genesis.
#[test]
fn a_genesis_without_usable_roots_is_refused() {
    for roots in [Vec::new(), vec![b"not a certificate".to_vec()]] {
        let authority = chain::random_key();
        let block = State::genesis_block(
            Genesis {
                authority: public_key(authority.verifying_key()),
                governance: public_key(chain::random_key().verifying_key()),
                timestamp: T0,
                evidence: EvidenceRule::with_roots(roots),
            },
            &authority,
        );
        assert!(State::from_genesis(&block).is_err());
    }
}

/// Evidence expires: past the genesis's limit a pRuntime may no longer publish contract
/// keys (nor a gatekeeper join the set) until it registers fresh evidence.
#[test]
fn evidence_expires_and_a_fresh_registration_renews_it() {
    let mut w = World::new(sim(), &[]);
    let g = w.governance.clone();
    publish_epoch(&mut w, &g);
    let worker = chain::random_key();
    let r = w.registration(&worker, [0x5e; 32]);
    w.register(&worker, r).unwrap();
    let contract = deploy(&mut w);
    let max = w.state.evidence_rule().max_evidence_age;
    w.now += i64::try_from(max).unwrap() + 1;
    assert!(matches!(
        w.apply(&worker, Tx::PublishContractKey(contract_key(contract))),
        Err(RuleError::EvidenceExpired { .. })
    ));
    // The simulated collateral is valid for 30 days; evidence for 7: re-register.
    let r = w.registration(&worker, [0x5e; 32]);
    w.register(&worker, r).unwrap();
    w.apply(&worker, Tx::PublishContractKey(contract_key(contract)))
        .unwrap();
}

/// A gatekeeper set of one attested gatekeeper, and epoch 0 published by it.
fn publish_epoch(w: &mut World, governance: &SigningKey) -> SigningKey {
    let gk = chain::random_key();
    let r = w.registration(&gk, [0x6b; 32]);
    w.register(&gk, r).unwrap();
    w.apply(
        governance,
        Tx::SetGatekeepers {
            set: vec![chain::types::Gatekeeper {
                index: 1,
                identity_key: public_key(gk.verifying_key()),
                url: "http://127.0.0.1:7101".into(),
                peer_url: "https://127.0.0.1:7201".into(),
            }],
            threshold: 1,
        },
    )
    .unwrap();
    dkg(w, governance, &gk, Epoch(0));
    gk
}

/// Governance locks `epoch` and the one-member committee `gk` publishes it.
fn dkg(w: &mut World, governance: &SigningKey, gk: &SigningKey, epoch: Epoch) {
    use p256::ecdsa::signature::Signer as _;
    use phalanx_threshold::round::{CommitCertificate, Participant, RoundKind, RoundSpec};
    let url = "https://127.0.0.1:7201".to_owned();
    w.apply(governance, Tx::LockRotation(epoch)).unwrap();
    let secret = phalanx_threshold::share::SecretScalar::new(p256::Scalar::from(7u64));
    let (_, public) =
        phalanx_threshold::share::dealer_split(&secret, 1, 1, &mut rand::rng()).unwrap();
    let index = phalanx_threshold::share::NodeIndex::new(1).unwrap();
    let spec = RoundSpec::new(
        [epoch.0 as u8; 16],
        RoundKind::Dkg {
            epoch,
            threshold: 1,
        },
        vec![Participant {
            index,
            identity: *gk.verifying_key(),
            url,
        }],
    )
    .unwrap();
    let digest = phalanx_threshold::round::digest(&spec.id(), &public);
    let sig: p256::ecdsa::Signature = gk.sign(&phalanx_threshold::round::confirmation_bytes(
        &spec.id(),
        index,
        &digest,
    ));
    let mut confirmations = CommitCertificate::default();
    confirmations
        .confirmations
        .insert(index, sig.to_bytes().into());
    let cert = chain::types::EpochCertificate::new(&spec, &public, &confirmations);
    w.apply(gk, Tx::PublishMasterKey(cert)).unwrap();
}

/// A stranger deploys a module; its contract id.
fn deploy(w: &mut World) -> [u8; 32] {
    const CODE: &[u8] = b"\0asm\x01\0\0\0";
    let deployer = chain::random_key();
    w.apply(
        &deployer,
        Tx::DeployContract {
            code: CODE.to_vec(),
            salt: [0; 32],
        },
    )
    .unwrap();
    phalanx_types::contract::contract_id(
        &w.state.chain_id(),
        &public_key(deployer.verifying_key()),
        &phalanx_types::contract::code_hash(CODE),
        &[0; 32],
    )
}

fn contract_key(contract: [u8; 32]) -> ContractKey {
    ContractKey {
        contract,
        epoch: Epoch(0),
        encryption_key: hpke(),
        signing_key: public_key(chain::random_key().verifying_key()),
        published_by: Vec::new(),
        published_at: 0,
        commands_before: 0,
    }
}

/// NH2: retiring an epoch is governance's, on the registry, and refused while anything
/// needs it: the newest, one a contract's state still needs; a middle epoch no contract
/// used retires, once, and nothing is published under it again. One a contract used
/// retires once its keys are superseded and a state commitment sealed under the newer
/// ones covers every command sealed to it; the first like any other.
#[test]
fn an_epoch_retires_only_when_nothing_needs_it() {
    let mut w = World::new(sim(), &[]);
    let g = w.governance.clone();
    let gk = publish_epoch(&mut w, &g);
    let worker = chain::random_key();
    let r = w.registration(&worker, [0x5e; 32]);
    w.register(&worker, r).unwrap();
    let contract = deploy(&mut w);
    dkg(&mut w, &g, &gk, Epoch(1));
    dkg(&mut w, &g, &gk, Epoch(2));
    let why = |w: &mut World, e: u64| match w.apply(&g, Tx::RetireEpoch(Epoch(e))) {
        Err(RuleError::CannotRetire { why, .. }) => why,
        other => panic!("expected a refusal, got {other:?}"),
    };
    assert_eq!(why(&mut w, 2), "is the newest epoch");
    let mut used = contract_key(contract);
    used.epoch = Epoch(1);
    w.apply(&worker, Tx::PublishContractKey(used)).unwrap();
    assert_eq!(why(&mut w, 1), "is still needed by a contract's state");
    dkg(&mut w, &g, &gk, Epoch(3));
    assert!(matches!(
        w.apply(&worker, Tx::RetireEpoch(Epoch(2))),
        Err(RuleError::NotGovernance(_))
    ));
    w.apply(&g, Tx::RetireEpoch(Epoch(2))).unwrap();
    assert!(w.state.is_retired(Epoch(2)));
    assert_eq!(why(&mut w, 2), "is already retired");
    let mut late = contract_key(contract);
    late.epoch = Epoch(2);
    assert!(matches!(
        w.apply(&worker, Tx::PublishContractKey(late)),
        Err(RuleError::NoEpoch { .. })
    ));

    // Epoch 1 still holds the contract's only keys, and one command sealed to them.
    let command = |epoch| {
        Tx::Command(chain::types::Command {
            contract,
            epoch: Epoch(epoch),
            ciphertext: vec![1; 40],
        })
    };
    let sender = chain::random_key();
    w.apply(&sender, command(1)).unwrap();
    let commit = |w: &World, count, epoch| {
        let c = w.state.contract(&contract).unwrap();
        Tx::CommitState(chain::types::StateCommitment {
            contract,
            count,
            log_head: if count == c.commands {
                c.command_log
            } else {
                [9; 32]
            },
            state_root: [7; 32],
            epoch: Epoch(epoch),
            committed_at: 0,
        })
    };
    // Committed under epoch 1 itself: the contract still needs it.
    w.apply(&worker, commit(&w, 1, 1)).unwrap();
    assert_eq!(why(&mut w, 1), "is still needed by a contract's state");
    // Keys of epoch 3: commands and commitments under epoch 1 are refused from now on.
    let mut newer = contract_key(contract);
    newer.epoch = Epoch(3);
    w.apply(&worker, Tx::PublishContractKey(newer)).unwrap();
    assert_eq!(
        w.state.contract(&contract).unwrap().keys[&Epoch(3)].commands_before,
        1
    );
    let mut older = contract_key(contract);
    older.epoch = Epoch(0);
    for (tx, signer) in [
        (command(1), &sender),
        (commit(&w, 1, 1), &worker),
        (Tx::PublishContractKey(older), &worker),
    ] {
        assert!(
            matches!(
                w.apply(signer, tx),
                Err(RuleError::SupersededKey {
                    newest: Epoch(3),
                    ..
                })
            ),
            "a superseded epoch is refused"
        );
    }
    w.apply(&sender, command(3)).unwrap();
    assert_eq!(why(&mut w, 1), "is still needed by a contract's state");
    // Bad commitments: past the commands, off the log, not newer, not a pRuntime's.
    let mut off = commit(&w, 2, 3);
    if let Tx::CommitState(c) = &mut off {
        c.log_head = [9; 32];
    }
    for (tx, what) in [
        (
            commit(&w, 3, 3),
            "names more commands than the contract has",
        ),
        (off, "is not on the contract's command log"),
        (commit(&w, 0, 3), "is not newer than the one standing"),
    ] {
        match w.apply(&worker, tx) {
            Err(RuleError::StateCommitment(why)) => assert_eq!(why, what),
            other => panic!("expected {what}, got {other:?}"),
        }
    }
    assert!(matches!(
        w.apply(&sender, commit(&w, 2, 3)),
        Err(RuleError::WrongRole { .. })
    ));
    // As far, under newer keys (an idle contract moves on): it covers the command
    // sealed to epoch 1, which then retires; none may be sealed to it again.
    w.apply(&worker, commit(&w, 1, 3)).unwrap();
    assert!(matches!(
        w.apply(&worker, commit(&w, 1, 3)),
        Err(RuleError::StateCommitment(_))
    ));
    w.apply(&g, Tx::RetireEpoch(Epoch(1))).unwrap();
    assert!(matches!(
        w.apply(&sender, command(1)),
        Err(RuleError::SupersededKey { .. })
    ));
    assert_eq!(why(&mut w, 3), "is the newest epoch");
    // The first epoch too, once nothing needs it (TDX identities are sealed again
    // under each new epoch).
    w.apply(&g, Tx::RetireEpoch(Epoch(0))).unwrap();
}

/// Review NM2 on the registry: governance raises the collateral floor after a TCB
/// recovery and registrations with older collateral are refused; it may also accept
/// another TCB status. Only governance, and never `Revoked` or an empty rule.
#[test]
fn governance_sets_the_tcb_rule_and_the_collateral_floor() {
    use chain::types::TcbRule;
    let stale = SimTee::generate(SimConfig::with_status(T0 - 1000, TcbStatus::OutOfDate)).unwrap();
    let mut w = World::new(sim(), &[&stale]);
    let g = w.governance.clone();
    let k = chain::random_key();
    let rule = |statuses: Vec<TcbStatus>, floor| TcbRule {
        tcb_statuses: statuses,
        max_evidence_age: 7 * 24 * 3600,
        min_tcb_evaluation_data_number: floor,
    };
    assert!(matches!(
        w.apply(&k, Tx::SetTcbRule(rule(vec![TcbStatus::OutOfDate], 0))),
        Err(RuleError::NotGovernance(_))
    ));
    let mut hourly = rule(vec![TcbStatus::UpToDate], 0);
    hourly.max_evidence_age = 3600;
    let mut forever = rule(vec![TcbStatus::UpToDate], 0);
    forever.max_evidence_age = u64::MAX;
    for bad in [
        rule(Vec::new(), 0),
        rule(vec![TcbStatus::Revoked], 0),
        // Shorter than gatekeepers' hourly renewal can keep up with.
        hourly,
        // Longer than a year (and than the EVM registry's int64 ages).
        forever,
    ] {
        assert!(matches!(
            w.apply(&g, Tx::SetTcbRule(bad)),
            Err(RuleError::Malformed { .. })
        ));
    }
    // The simulated collateral's evaluation number is 1: a floor of 2 refuses it.
    w.apply(&g, Tx::SetTcbRule(rule(vec![TcbStatus::UpToDate], 2)))
        .unwrap();
    let r = w.registration(&k, [0x5e; 32]);
    assert_eq!(
        evidence_error(w.register(&k, r).unwrap_err()),
        EvidenceError::CollateralTooOld { have: 1, need: 2 }
    );
    // Governance accepts OutOfDate platforms (with the floor back at 1).
    w.apply(
        &g,
        Tx::SetTcbRule(rule(vec![TcbStatus::UpToDate, TcbStatus::OutOfDate], 1)),
    )
    .unwrap();
    let r = chain::sim::registration(
        &stale,
        &chain::sim::enclave([0x5e; 32]),
        &k,
        hpke(),
        w.state.chain_id(),
    )
    .unwrap();
    w.register(&k, r).unwrap();
    assert_eq!(
        w.state
            .worker(&public_key(k.verifying_key()))
            .unwrap()
            .tcb_status,
        Some(TcbStatus::OutOfDate)
    );
}
