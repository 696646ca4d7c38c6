//! The conformance suite every `Registry` backend must pass: each rule, its violation
//! (with its own error), and the events. Shared by `conformance.rs` (embedded ledger,
//! in-process and through a light client) and `evm.rs` (the contract on anvil).
#![allow(dead_code)]

#[cfg(feature = "evm")]
pub mod evm;

use chain::registry::{ContractRegistry, Registry, RegistryError};
use chain::state::RuleError;
use chain::types::{
    Command, ContractKey, EpochCertificate, Event, Gatekeeper, Registration, Role, Rotation,
    RoundDecision,
};
use p256::ecdsa::SigningKey;
use p256::ecdsa::signature::Signer as _;
use phalanx_dcap_sim::{SgxEnclave, SimTee};
use phalanx_threshold::round::{CommitCertificate, Participant, RoundKind, RoundSpec};
use phalanx_threshold::share::NodeIndex;
use phalanx_types::Epoch;

/// The simulated enclave of the suite's gatekeepers.
pub fn gatekeeper_enclave() -> SgxEnclave {
    SgxEnclave {
        mr_enclave: [0xd3; 32],
        ..SgxEnclave::default()
    }
}

/// The simulated enclave of the suite's pRuntime.
pub fn runtime_enclave() -> SgxEnclave {
    SgxEnclave {
        mr_enclave: [0xd4; 32],
        ..SgxEnclave::default()
    }
}

/// The gatekeepers' tenant.
pub fn m() -> Vec<u8> {
    chain::sim::tenant(&gatekeeper_enclave()).to_vec()
}

/// The pRuntime's tenant.
pub fn mr() -> Vec<u8> {
    chain::sim::tenant(&runtime_enclave()).to_vec()
}

/// The simulated platform every fixture's registry trusts (valid around the fixtures'
/// clocks).
pub fn sim() -> SimTee {
    SimTee::generate(phalanx_dcap_sim::SimConfig::up_to_date(1_759_000_000)).unwrap()
}

/// A registration of `key` (HPKE key `hpke` repeated) from `enclave`.
fn worker<F: Fixture>(f: &F, key: &SigningKey, hpke: u8, enclave: &SgxEnclave) -> Registration {
    chain::sim::registration(f.sim(), enclave, key, vec![hpke; 65], f.chain_id()).unwrap()
}

fn gk(index: u16, identity: &[u8]) -> Gatekeeper {
    Gatekeeper {
        index,
        identity_key: identity.to_vec(),
        url: format!("http://127.0.0.1:{}", 7100 + index),
        peer_url: format!("https://127.0.0.1:{}", 7200 + index),
    }
}

/// The certificate of a round of `kind` among `committee` (index, identity) that ended
/// with `public`, confirmed by `signers` (index, the key that signs for it).
fn certificate(
    committee: &[(u16, &SigningKey)],
    kind: RoundKind,
    public: &phalanx_threshold::share::PublicKeySet,
    signers: &[(u16, &SigningKey)],
) -> EpochCertificate {
    let participants = committee
        .iter()
        .map(|(i, k)| Participant {
            index: NodeIndex::new(*i).unwrap(),
            identity: *k.verifying_key(),
            url: format!("https://127.0.0.1:{}", 7200 + i),
        })
        .collect();
    // A fresh nonce per outcome, as administrators start each round with one.
    let mut nonce = [0u8; 16];
    nonce.copy_from_slice(
        &<sha2::Sha256 as sha2::Digest>::digest(phalanx_threshold::wire::public_set_bytes(public))
            [..16],
    );
    let spec = RoundSpec::new(nonce, kind, participants).unwrap();
    let digest = phalanx_threshold::round::digest(&spec.id(), public);
    let mut confirmations = CommitCertificate::default();
    for (i, k) in signers {
        let index = NodeIndex::new(*i).unwrap();
        let sig: p256::ecdsa::Signature = k.sign(&phalanx_threshold::round::confirmation_bytes(
            &spec.id(),
            index,
            &digest,
        ));
        confirmations
            .confirmations
            .insert(index, sig.to_bytes().into());
    }
    EpochCertificate::new(&spec, public, &confirmations)
}

fn rule(r: Result<u64, RegistryError>) -> RuleError {
    match r {
        Err(RegistryError::Rule(e)) => e,
        other => panic!("expected a rule error, got {other:?}"),
    }
}

/// A backend under test: the registry, its governance account, and fresh accounts.
pub trait Fixture {
    /// The backend.
    type R: Registry;
    /// The registry.
    fn registry(&self) -> &Self::R;
    /// The governance account.
    fn governance(&self) -> &<Self::R as Registry>::Account;
    /// A fresh account and the P-256 identity key it registers (whose owner signs
    /// round confirmations).
    fn account(
        &mut self,
    ) -> impl std::future::Future<Output = (<Self::R as Registry>::Account, SigningKey)>;
    /// The simulated platform whose quotes registrations carry.
    fn sim(&self) -> &SimTee;
    /// The registry's chain id, which the quotes bind.
    fn chain_id(&self) -> [u8; 32];
    /// Whether the registry has P-256 arithmetic to check a partial's DLEQ proof with
    /// (the Solidity registry has not).
    fn checks_partials(&self) -> bool {
        true
    }
}

/// The suite. Returns two accounts for [`contracts`]: a worker registered with `M`
/// (no longer allowed when this returns) and a stranger.
pub async fn suite<F: Fixture>(
    f: &mut F,
) -> (<F::R as Registry>::Account, <F::R as Registry>::Account) {
    let (w1, s1) = f.account().await;
    let (w2, s2) = f.account().await;
    let (stranger, _) = f.account().await;
    let (k1, k2) = (
        chain::types::public_key(s1.verifying_key()),
        chain::types::public_key(s2.verifying_key()),
    );
    let (r, governance) = (f.registry(), f.governance());
    let (gk_m, m) = (gatekeeper_enclave(), m());

    // A worker with a measurement nobody allowed cannot register.
    assert!(matches!(
        rule(r.register_worker(&w1, &worker(f, &s1, 1, &gk_m)).await),
        RuleError::MeasurementNotAllowed(_)
    ));
    // Only governance changes the allow-list.
    assert_eq!(
        rule(r.add_measurement(&stranger, &m, Role::Gatekeeper).await),
        RuleError::NotGovernance("add-measurement")
    );
    let h_added = r
        .add_measurement(governance, &m, Role::Gatekeeper)
        .await
        .unwrap();
    assert!(matches!(
        rule(r.add_measurement(governance, &m, Role::Runtime).await),
        RuleError::Measurement { .. }
    ));
    assert!(matches!(
        rule(r.add_measurement(governance, &[], Role::Gatekeeper).await),
        RuleError::Malformed {
            what: "measurement",
            ..
        }
    ));
    let allowed = r.allowed_measurements().await.unwrap();
    assert_eq!(allowed.len(), 1);
    assert_eq!(allowed[0].measurement, m);
    assert_eq!(allowed[0].role, Role::Gatekeeper);
    assert!(allowed[0].added_at > 0);

    // A worker registers itself; nobody registers (or refreshes) someone else's key.
    r.register_worker(&w1, &worker(f, &s1, 1, &gk_m))
        .await
        .unwrap();
    assert_eq!(
        rule(
            r.register_worker(&stranger, &worker(f, &s1, 1, &gk_m))
                .await
        ),
        RuleError::NotSelf
    );
    let got = r.worker(&k1.clone()).await.unwrap().unwrap();
    assert_eq!(got.hpke_key, vec![1; 65]);
    assert!(got.registered_at > 0);
    // Re-registration refreshes it.
    r.register_worker(&w1, &worker(f, &s1, 2, &gk_m))
        .await
        .unwrap();
    let got = r.worker(&k1.clone()).await.unwrap().unwrap();
    assert_eq!(got.hpke_key, vec![2; 65]);
    assert!(r.worker(&k2.clone()).await.unwrap().is_none());

    // Gatekeepers: governance only, registered workers only, distinct indices.
    assert_eq!(
        rule(r.set_gatekeepers(&w1, &[gk(1, &k1)], 1).await),
        RuleError::NotGovernance("set-gatekeepers")
    );
    assert!(matches!(
        rule(
            r.set_gatekeepers(governance, &[gk(1, &k1), gk(2, &k2)], 2)
                .await
        ),
        RuleError::GatekeeperNotWorker(_)
    ));
    // Nobody registers an identity key they cannot sign with: no front-running a
    // gatekeeper's registration of its (public) key to take its place (C1).
    assert_eq!(
        rule(
            r.register_worker(&stranger, &worker(f, &s2, 3, &gk_m))
                .await
        ),
        RuleError::NotSelf
    );
    r.register_worker(&w2, &worker(f, &s2, 3, &gk_m))
        .await
        .unwrap();
    assert!(matches!(
        rule(
            r.set_gatekeepers(governance, &[gk(1, &k1), gk(1, &k2)], 2)
                .await
        ),
        RuleError::BadGatekeeperSet(_)
    ));
    assert!(matches!(
        rule(r.set_gatekeepers(governance, &[], 1).await),
        RuleError::BadGatekeeperSet(_)
    ));
    // A URL no reader of the set's fact would take.
    let mut long = gk(1, &k1);
    long.url = format!("http://{}", "a".repeat(2048));
    assert_eq!(
        rule(r.set_gatekeepers(governance, &[long, gk(2, &k2)], 1).await),
        RuleError::BadGatekeeperSet("a URL over 2048 bytes")
    );
    // The threshold is governance's, within 1..=n.
    for t in [0, 3] {
        assert_eq!(
            rule(
                r.set_gatekeepers(governance, &[gk(2, &k2), gk(1, &k1)], t)
                    .await
            ),
            RuleError::BadGatekeeperSet("a threshold outside 1..=n")
        );
    }
    r.set_gatekeepers(governance, &[gk(2, &k2), gk(1, &k1)], 2)
        .await
        .unwrap();
    let set = r.gatekeepers().await.unwrap();
    assert_eq!(set.iter().map(|g| g.index).collect::<Vec<_>>(), vec![1, 2]);

    // Rotation: governance locks the next epoch only, one at a time; a gatekeeper
    // cannot lock (C1: no lock at an absurd epoch that blocks every later rotation).
    assert_eq!(r.rotation().await.unwrap(), Rotation::Idle);
    assert_eq!(
        rule(r.lock_rotation(&w1, Epoch(0)).await),
        RuleError::NotGovernance("lock-rotation")
    );
    assert_eq!(
        rule(r.lock_rotation(governance, Epoch(u64::MAX)).await),
        RuleError::EpochNotNext {
            epoch: Epoch(u64::MAX),
            next: Epoch(0)
        }
    );
    r.lock_rotation(governance, Epoch(0)).await.unwrap();
    assert_eq!(r.rotation().await.unwrap(), Rotation::Locked(Epoch(0)));
    assert_eq!(
        rule(r.lock_rotation(governance, Epoch(1)).await),
        RuleError::RotationLocked {
            tx: "lock-rotation",
            locked: Epoch(0)
        }
    );

    // Publishing an epoch's keys takes the whole committee's certificate (C1).
    let committee = [(1u16, &s1), (2u16, &s2)];
    let secret = phalanx_threshold::share::SecretScalar::new(p256::Scalar::from(7u64));
    let (_, public) =
        phalanx_threshold::share::dealer_split(&secret, 2, 2, &mut rand::rng()).unwrap();
    let dkg = |epoch| RoundKind::Dkg {
        epoch,
        threshold: 2,
    };
    let good = certificate(&committee, dkg(Epoch(0)), &public, &committee);
    // A single gatekeeper alone: its own one-member committee and a threshold-1 key
    // it knows.
    let mine = phalanx_threshold::share::SecretScalar::new(p256::Scalar::from(666u64));
    let (_, lone_set) =
        phalanx_threshold::share::dealer_split(&mine, 1, 1, &mut rand::rng()).unwrap();
    let lone = certificate(
        &committee[1..],
        RoundKind::Dkg {
            epoch: Epoch(0),
            threshold: 1,
        },
        &lone_set,
        &committee[1..],
    );
    assert_eq!(
        rule(r.publish_master_key(&w2, &lone).await),
        RuleError::ThresholdNotGoverned {
            got: 1,
            governed: 2
        }
    );
    // Governance's threshold, but a committee that is not the registry's.
    let outsider = chain::random_key();
    let swapped = [(1u16, &s1), (2u16, &outsider)];
    assert_eq!(
        rule(
            r.publish_master_key(
                &w2,
                &certificate(&swapped, dkg(Epoch(0)), &public, &swapped)
            )
            .await
        ),
        RuleError::CommitteeMismatch
    );
    // The right committee, one member's confirmation forged by another.
    let forged = certificate(&committee, dkg(Epoch(0)), &public, &[(1, &s2), (2, &s2)]);
    assert_eq!(
        rule(r.publish_master_key(&w2, &forged).await),
        RuleError::MissingConfirmation(1)
    );
    // An epoch nobody locked.
    assert_eq!(
        rule(
            r.publish_master_key(
                &w2,
                &certificate(&committee, dkg(Epoch(1)), &public, &committee)
            )
            .await
        ),
        RuleError::NotLocked {
            tx: "publish-master-key",
            epoch: Epoch(1)
        }
    );
    // Not a certificate at all.
    let mut garbage = good.clone();
    garbage.public_key_set = vec![5; 40];
    assert!(matches!(
        rule(r.publish_master_key(&w2, &garbage).await),
        RuleError::Malformed { .. }
    ));
    assert_eq!(
        rule(r.publish_master_key(&stranger, &good).await),
        RuleError::NotGovernanceOrGatekeeper("publish-master-key")
    );
    r.publish_master_key(&w2, &good).await.unwrap();
    let key = r.master_key(Epoch(0)).await.unwrap().unwrap();
    assert_eq!(
        key.master_public_key,
        phalanx_threshold::dleq::point_bytes(&public.master_public_key())
    );
    assert_eq!(key.threshold, 2);
    assert_eq!(
        key.public_key_set,
        phalanx_threshold::wire::public_set_bytes(&public)
    );
    assert_eq!(r.rotation().await.unwrap(), Rotation::Idle);
    assert_eq!(
        rule(r.publish_master_key(&w1, &good).await),
        RuleError::RoundAlreadyPublished
    );
    assert_eq!(
        rule(r.lock_rotation(governance, Epoch(0)).await),
        RuleError::EpochNotNext {
            epoch: Epoch(0),
            next: Epoch(1)
        }
    );

    // A refresh gives the epoch a new public key set with the same master key; a set
    // with another master key is refused.
    let (_, refreshed) =
        phalanx_threshold::share::dealer_split(&secret, 2, 2, &mut rand::rng()).unwrap();
    let refresh = RoundKind::Refresh { epoch: Epoch(0) };
    r.publish_master_key(
        &w1,
        &certificate(&committee, refresh.clone(), &refreshed, &committee),
    )
    .await
    .unwrap();
    assert_eq!(
        r.master_key(Epoch(0))
            .await
            .unwrap()
            .unwrap()
            .public_key_set,
        phalanx_threshold::wire::public_set_bytes(&refreshed)
    );
    // A "refresh" that lowers the threshold is not a refresh.
    let (_, lowered) =
        phalanx_threshold::share::dealer_split(&secret, 1, 2, &mut rand::rng()).unwrap();
    assert!(matches!(
        rule(
            r.publish_master_key(
                &w1,
                &certificate(
                    &committee,
                    RoundKind::Refresh { epoch: Epoch(0) },
                    &lowered,
                    &committee
                )
            )
            .await
        ),
        RuleError::Malformed { .. }
    ));
    let other = phalanx_threshold::share::SecretScalar::new(p256::Scalar::from(8u64));
    let (_, other_set) =
        phalanx_threshold::share::dealer_split(&other, 2, 2, &mut rand::rng()).unwrap();
    assert!(matches!(
        rule(
            r.publish_master_key(
                &w1,
                &certificate(&committee, refresh, &other_set, &committee)
            )
            .await
        ),
        RuleError::EpochMismatch(_)
    ));

    // The registry orders each round's outcome (H2): the certificate or an abort,
    // whichever lands first; members install or drop the round by its decision.
    let id_of = |c: &EpochCertificate| RoundSpec::decode(&c.spec).unwrap().id();
    assert_eq!(
        r.round_decision(id_of(&good)).await.unwrap(),
        Some(RoundDecision::Committed)
    );
    assert_eq!(
        rule(r.abort_round(&w1, id_of(&good)).await),
        RuleError::RoundAlreadyPublished
    );
    let (_, again) =
        phalanx_threshold::share::dealer_split(&secret, 2, 2, &mut rand::rng()).unwrap();
    let contested = certificate(
        &committee,
        RoundKind::Refresh { epoch: Epoch(0) },
        &again,
        &committee,
    );
    assert_eq!(r.round_decision(id_of(&contested)).await.unwrap(), None);
    assert_eq!(
        rule(r.abort_round(&stranger, id_of(&contested)).await),
        RuleError::NotGovernanceOrGatekeeper("abort-round")
    );
    r.abort_round(&w2, id_of(&contested)).await.unwrap();
    assert_eq!(
        r.round_decision(id_of(&contested)).await.unwrap(),
        Some(RoundDecision::Aborted)
    );
    assert_eq!(
        rule(r.publish_master_key(&w1, &contested).await),
        RuleError::RoundAborted
    );
    assert_eq!(
        rule(r.abort_round(&w1, id_of(&contested)).await),
        RuleError::RoundAborted
    );

    // NH2: the committee, with every member's confirmation, still cannot lower the
    // threshold governance set: a reshare to t = 1 is refused; governance first sets
    // the new threshold, then the same reshare lands.
    let (_, t1) = phalanx_threshold::share::dealer_split(&secret, 1, 2, &mut rand::rng()).unwrap();
    let to_one = certificate(
        &committee,
        RoundKind::Reshare {
            epoch: Epoch(0),
            dealers: vec![NodeIndex::new(1).unwrap(), NodeIndex::new(2).unwrap()],
            new_threshold: 1,
        },
        &t1,
        &committee,
    );
    assert_eq!(
        rule(r.publish_master_key(&w1, &to_one).await),
        RuleError::ThresholdNotGoverned {
            got: 1,
            governed: 2
        }
    );

    // Only governance gives a rotation up.
    r.lock_rotation(governance, Epoch(1)).await.unwrap();
    assert_eq!(
        rule(r.abort_rotation(&w1, Epoch(1)).await),
        RuleError::NotGovernance("abort-rotation")
    );
    r.abort_rotation(governance, Epoch(1)).await.unwrap();
    assert_eq!(
        rule(r.abort_rotation(governance, Epoch(1)).await),
        RuleError::NotLocked {
            tx: "abort-rotation",
            epoch: Epoch(1)
        }
    );
    assert!(r.master_key(Epoch(1)).await.unwrap().is_none());

    let faulted = misbehaviour(f, &s2, &good, &contested, &w2, &stranger).await;

    // Removing a measurement stops new registrations with it.
    assert_eq!(
        rule(r.remove_measurement(&w1, &m).await),
        RuleError::NotGovernance("remove-measurement")
    );
    r.remove_measurement(governance, &m).await.unwrap();
    assert!(matches!(
        rule(r.remove_measurement(governance, &m).await),
        RuleError::Measurement { .. }
    ));
    assert!(matches!(
        rule(r.register_worker(&w1, &worker(f, &s1, 4, &gk_m)).await),
        RuleError::MeasurementNotAllowed(_)
    ));

    // The events, in order, from the allow-list change on.
    let events: Vec<Event> = r
        .events(h_added)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, e)| e)
        .collect();
    assert_eq!(
        events,
        vec![
            Event::MeasurementAdded {
                measurement: m.clone(),
                role: Role::Gatekeeper
            },
            Event::WorkerRegistered {
                identity_key: k1.clone(),
                measurement: m.clone()
            },
            Event::WorkerRegistered {
                identity_key: k1.clone(),
                measurement: m.clone()
            },
            Event::WorkerRegistered {
                identity_key: k2.clone(),
                measurement: m.clone()
            },
            Event::GatekeepersChanged(vec![1, 2]),
            Event::RotationLocked(Epoch(0)),
            Event::MasterKeyPublished(Epoch(0)),
            Event::PublicKeySetUpdated(Epoch(0)),
            Event::RoundAborted(id_of(&contested)),
            Event::RotationLocked(Epoch(1)),
            Event::RotationAborted(Epoch(1)),
        ]
        .into_iter()
        .chain(faulted)
        .chain([Event::MeasurementRemoved(m.clone())])
        .collect::<Vec<_>>()
    );
    let tail = r.events(h_added + 1).await.unwrap();
    assert_eq!(tail.len(), events.len() - 1);
    assert!(tail.iter().all(|(h, _)| *h > h_added));
    (w1, stranger)
}

/// Evidence of misbehaviour (issue 28, item 4): each fault is taken from anyone, each
/// refusal has its words, and the accused loses its standing for good. `s2` is a
/// gatekeeper (account `w2`) that confirmed `published`; `aborted` was never
/// published. Returns the events it caused, in order.
async fn misbehaviour<F: Fixture>(
    f: &F,
    s2: &SigningKey,
    published: &EpochCertificate,
    aborted: &EpochCertificate,
    w2: &<F::R as Registry>::Account,
    stranger: &<F::R as Registry>::Account,
) -> Vec<Event> {
    use chain::state::NOT_MISBEHAVIOUR as NOT;
    use chain::types::{Fault, LogHead, Misbehaviour};
    let r = f.registry();
    let k2 = chain::types::public_key(s2.verifying_key());
    let not = |i: usize| RuleError::NotMisbehaviour(NOT[i]);

    // Two heads of one log and size with different roots, by a key nobody registered:
    // evidence stands on its signatures alone.
    let forker = chain::random_key();
    let head = |k: &SigningKey, root: [u8; 32], timestamp: i64| {
        let h = phalanx_threshold::translog::TreeHead {
            log_id: phalanx_threshold::translog::log_id(forker.verifying_key()),
            size: 9,
            root,
            timestamp,
        };
        let sig: p256::ecdsa::Signature = k.sign(&h.signed_bytes());
        LogHead {
            root,
            timestamp,
            signature: sig.to_bytes().into(),
        }
    };
    let fork = |first: LogHead, second: LogHead| Misbehaviour {
        accused: chain::types::public_key(forker.verifying_key()),
        fault: Fault::ForkedLog {
            size: 9,
            first,
            second,
        },
    };
    let (a, b) = (head(&forker, [1; 32], 100), head(&forker, [2; 32], 101));
    let cases = [
        // One log signed twice is no fork.
        (fork(a, head(&forker, [1; 32], 200)), not(5)),
        // A head someone else signed.
        (fork(a, head(s2, [2; 32], 101)), not(4)),
        // A head of another size.
        (
            Misbehaviour {
                fault: Fault::ForkedLog {
                    size: 10,
                    first: a,
                    second: b,
                },
                ..fork(a, b)
            },
            not(4),
        ),
        // Not a key at all.
        (
            Misbehaviour {
                accused: [vec![2], vec![0xff; 32]].concat(),
                ..fork(a, b)
            },
            not(1),
        ),
    ];
    for (evidence, refusal) in cases {
        assert_eq!(
            rule(r.report_misbehaviour(stranger, &evidence).await),
            refusal
        );
    }
    r.report_misbehaviour(stranger, &fork(a, b)).await.unwrap();
    assert_eq!(
        rule(r.report_misbehaviour(stranger, &fork(a, b)).await),
        not(0)
    );

    // A confirmation of another outcome than the one published for the round.
    let round = |c: &EpochCertificate| RoundSpec::decode(&c.spec).unwrap().id();
    let confirm = |k: &SigningKey, round: [u8; 32], index: u16, digest: [u8; 32]| {
        let bytes = phalanx_threshold::round::confirmation_bytes(
            &round,
            NodeIndex::new(index.max(1)).unwrap(),
            &digest,
        );
        let bytes = match index {
            // Index 0 names no participant: its bytes by hand (u16 0 where the index goes).
            0 => {
                let mut b = bytes;
                let at = phalanx_threshold::round::PEER_MESSAGE.len() + 32 + 1;
                b[at..at + 2].copy_from_slice(&[0, 0]);
                b
            }
            _ => bytes,
        };
        let sig: p256::ecdsa::Signature = k.sign(&bytes);
        Misbehaviour {
            accused: k2.clone(),
            fault: Fault::Confirmation {
                round,
                index,
                digest,
                signature: sig.to_bytes().into(),
            },
        }
    };
    let public = phalanx_threshold::wire::public_set_from_bytes(&published.public_key_set).unwrap();
    let outcome = phalanx_threshold::round::digest(&round(published), &public);
    let cases = [
        // What every member confirmed: the published outcome.
        (confirm(s2, round(published), 2, outcome), not(3)),
        // A round the registry never published.
        (confirm(s2, round(aborted), 2, [7; 32]), not(2)),
        // Another key's signature.
        (confirm(&forker, round(published), 2, [7; 32]), not(4)),
        (confirm(s2, round(published), 0, [7; 32]), not(4)),
    ];
    for (evidence, refusal) in cases {
        assert_eq!(
            rule(r.report_misbehaviour(stranger, &evidence).await),
            refusal
        );
    }
    assert!(r.worker(&k2).await.unwrap().is_some());
    r.report_misbehaviour(stranger, &confirm(s2, round(published), 2, [7; 32]))
        .await
        .unwrap();
    // Its registration is gone: it no longer speaks for the committee, and never
    // registers again.
    assert!(r.worker(&k2).await.unwrap().is_none());
    assert_eq!(
        rule(r.abort_round(w2, [9; 32]).await),
        RuleError::NotGovernanceOrGatekeeper("abort-round")
    );
    assert_eq!(
        rule(
            r.register_worker(w2, &worker(f, s2, 5, &gatekeeper_enclave()))
                .await
        ),
        RuleError::Faulty
    );
    let mut events = vec![
        Event::Misbehaved {
            identity_key: chain::types::public_key(forker.verifying_key()),
            fault: 2,
        },
        Event::Misbehaved {
            identity_key: k2,
            fault: 1,
        },
    ];
    events.extend(bad_partial(f, stranger).await);
    events.extend(bad_dealing(f, stranger).await);
    events
}

/// A dealer's signed DKG deal whose share to a recipient does not match its
/// commitments (issue 28, item 4): taken on a ledger, refused by name on the Solidity
/// registry, and the refusals the same words on both.
async fn bad_dealing<F: Fixture>(f: &F, stranger: &<F::R as Registry>::Account) -> Option<Event> {
    use chain::state::NOT_MISBEHAVIOUR as NOT;
    use chain::types::{Fault, Misbehaviour};
    use phalanx_threshold::round::{Engine, peer_message_bytes};
    let r = f.registry();
    let not = |i: usize| RuleError::NotMisbehaviour(NOT[if f.checks_partials() { i } else { 8 }]);
    let keys: Vec<SigningKey> = (0..3).map(|_| chain::random_key()).collect();
    let participants = (1u16..)
        .zip(&keys)
        .map(|(i, k)| Participant {
            index: NodeIndex::new(i).unwrap(),
            identity: *k.verifying_key(),
            url: format!("https://127.0.0.1:{}", 7300 + i),
        })
        .collect();
    let spec = RoundSpec::new(
        [4; 16],
        RoundKind::Dkg {
            epoch: Epoch(0),
            threshold: 2,
        },
        participants,
    )
    .unwrap();
    let (one, two) = (NodeIndex::new(1).unwrap(), NodeIndex::new(2).unwrap());
    let (_, out) = Engine::start(spec.clone(), one, None, &mut rand::rng()).unwrap();
    let honest = out.private[&two].to_vec();
    let mut changed = honest.clone();
    *changed.last_mut().unwrap() ^= 1;
    let spec_id = |b: &[u8]| RoundSpec::decode(b).map(|s| s.id()).unwrap_or([0; 32]);
    let dealing = |private: &[u8], by: &SigningKey, accused: &SigningKey, spec: Vec<u8>| {
        let bytes = peer_message_bytes(
            &spec_id(&spec),
            1,
            one,
            two.get(),
            false,
            &out.public,
            private,
        );
        let sig: p256::ecdsa::Signature = by.sign(&bytes);
        Misbehaviour {
            accused: chain::types::public_key(accused.verifying_key()),
            fault: Fault::Dealing {
                spec,
                sender: 1,
                recipient: 2,
                public: out.public.clone(),
                private: private.to_vec(),
                signature: sig.to_bytes().into(),
            },
        }
    };
    let cases = [
        (dealing(&honest, &keys[0], &keys[0], spec.encode()), not(11)),
        (dealing(&changed, &keys[1], &keys[0], spec.encode()), not(4)),
        (
            dealing(&changed, &keys[1], &keys[1], spec.encode()),
            not(10),
        ),
        (dealing(&changed, &keys[0], &keys[0], vec![1, 2, 3]), not(9)),
    ];
    for (e, refusal) in cases {
        assert_eq!(rule(r.report_misbehaviour(stranger, &e).await), refusal);
    }
    let taken = r
        .report_misbehaviour(
            stranger,
            &dealing(&changed, &keys[0], &keys[0], spec.encode()),
        )
        .await;
    match f.checks_partials() {
        true => {
            taken.unwrap();
            Some(Event::Misbehaved {
                identity_key: chain::types::public_key(keys[0].verifying_key()),
                fault: 4,
            })
        }
        false => {
            assert_eq!(rule(taken), not(8));
            None
        }
    }
}

/// A gatekeeper whose own signed log commits to a partial with a broken proof (issue 28,
/// item 4): on a ledger the evidence takes its registration; the refusals (a release
/// its log does not hold, an honest partial, a head someone else signed) are the same
/// on both backends' rules; the Solidity registry refuses it by name.
async fn bad_partial<F: Fixture>(f: &F, stranger: &<F::R as Registry>::Account) -> Option<Event> {
    use chain::state::NOT_MISBEHAVIOUR as NOT;
    use chain::types::{Fault, LogHead, Misbehaviour};
    use phalanx_threshold::release_log::{self, CommittedRelease};
    let r = f.registry();
    let not = |i: usize| RuleError::NotMisbehaviour(NOT[i]);
    let liar = chain::random_key();
    let index = NodeIndex::new(2).unwrap();
    let share = phalanx_threshold::share::KeyShare {
        index,
        secret: phalanx_threshold::share::SecretScalar::new(p256::Scalar::from(11u64)),
    };
    let key_id = phalanx_threshold::derive::KeyId {
        epoch: Epoch(0),
        tenant: "tenant".into(),
        path: "app".into(),
        purpose: "storage".into(),
    };
    let honest = phalanx_threshold::derive::evaluate(&share, &key_id, &mut rand::rng()).unwrap();
    let mut broken = honest;
    broken.proof.s += p256::Scalar::ONE;
    let public_share =
        release_log::share_bytes(&phalanx_threshold::share::mul_g(share.secret.expose()));
    // The liar's log: an earlier record, then the release; its head signed by `by`.
    let evidence = |partial: &phalanx_threshold::derive::PartialEvaluation, by: &SigningKey| {
        let mut release = CommittedRelease {
            node: index,
            logged_at: 1_760_000_000,
            transcript: [3; 32],
            point_input: key_id.encode_point_input().unwrap(),
            public_share,
            partial: partial.to_bytes(),
            log_index: 1,
            inclusion_proof: Vec::new(),
        };
        let mut log = phalanx_threshold::translog::MerkleLog::new();
        log.append(b"an earlier record");
        log.append(&release_log::release_record(
            index,
            release.logged_at,
            &release.transcript,
            &release_log::evaluation(&release.point_input, &public_share, &release.partial),
        ));
        release.inclusion_proof = log.inclusion_proof(1, 2).unwrap();
        let head = phalanx_threshold::translog::TreeHead {
            log_id: phalanx_threshold::translog::log_id(liar.verifying_key()),
            size: 2,
            root: log.root(),
            timestamp: 1_760_000_001,
        };
        let sig: p256::ecdsa::Signature = by.sign(&head.signed_bytes());
        Misbehaviour {
            accused: chain::types::public_key(liar.verifying_key()),
            fault: Fault::Partial {
                size: 2,
                head: LogHead {
                    root: head.root,
                    timestamp: head.timestamp,
                    signature: sig.to_bytes().into(),
                },
                release,
            },
        }
    };
    let mut elsewhere = evidence(&broken, &liar);
    if let Fault::Partial { release, .. } = &mut elsewhere.fault {
        release.log_index = 0;
    }
    let cases = [
        (evidence(&honest, &liar), not(7)),
        (evidence(&broken, &chain::random_key()), not(4)),
        (elsewhere, not(6)),
    ];
    for (e, refusal) in cases {
        let refusal = if f.checks_partials() { refusal } else { not(8) };
        assert_eq!(rule(r.report_misbehaviour(stranger, &e).await), refusal);
    }
    let taken = r
        .report_misbehaviour(stranger, &evidence(&broken, &liar))
        .await;
    match f.checks_partials() {
        true => {
            taken.unwrap();
            Some(Event::Misbehaved {
                identity_key: chain::types::public_key(liar.verifying_key()),
                fault: 3,
            })
        }
        false => {
            assert_eq!(rule(taken), not(8));
            None
        }
    }
}

/// A valid contract key publication for `contract` and `epoch`.
fn contract_key(contract: [u8; 32], epoch: Epoch) -> ContractKey {
    let signing = chain::random_key();
    let hpke = p256::SecretKey::from_slice(&[5; 32]).unwrap().public_key();
    ContractKey {
        contract,
        epoch,
        encryption_key: p256::elliptic_curve::sec1::ToSec1Point::to_sec1_point(&hpke, false)
            .as_bytes()
            .to_vec(),
        signing_key: chain::types::public_key(signing.verifying_key()),
        published_by: Vec::new(),
        published_at: 0,
        commands_before: 0,
    }
}

/// The contract rules, after [`suite`] (epoch 0 published, `gatekeeper` registered
/// with the gatekeepers' measurement, which is no longer allowed). Returns a contract
/// with keys for epoch 0 and two commands, and one of its commands.
pub async fn contracts<F: Fixture>(
    f: &mut F,
    gatekeeper: <F::R as Registry>::Account,
    stranger: <F::R as Registry>::Account,
) -> ([u8; 32], Command)
where
    F::R: ContractRegistry,
{
    let (runner, runner_key) = f.account().await;
    let (r, governance) = (f.registry(), f.governance());
    let code = b"\0asm\x01\0\0\0 any module: the registry does not run it".to_vec();

    // Anyone deploys; the id is fixed by deployer, code hash and salt.
    let (h_deploy, id) = r.deploy_contract(&stranger, &code, [1; 32]).await.unwrap();
    let c = r.contract(id).await.unwrap().unwrap();
    assert_eq!(c.code_hash, phalanx_types::contract::code_hash(&code));
    assert_eq!(
        c.id,
        phalanx_types::contract::contract_id(&f.chain_id(), &c.deployer, &c.code_hash, &[1; 32])
    );
    assert_eq!(*c.code, code);
    assert_eq!((c.deployed_at, c.commands), (h_deploy, 0));
    assert!(c.keys.is_empty());
    assert!(matches!(
        rule(
            r.deploy_contract(&stranger, &code, [1; 32])
                .await
                .map(|x| x.0)
        ),
        RuleError::ContractExists(_)
    ));
    let (_, other) = r.deploy_contract(&stranger, &code, [2; 32]).await.unwrap();
    assert_ne!(other, id);
    assert!(matches!(
        rule(
            r.deploy_contract(&stranger, &[], [3; 32])
                .await
                .map(|x| x.0)
        ),
        RuleError::Malformed { what: "code", .. }
    ));
    assert!(r.contract([0xee; 32]).await.unwrap().is_none());

    // Keys: only a registered pRuntime whose measurement is allowed now (NC1, NM3):
    // not a stranger, not a gatekeeper, however allowed its own measurement is.
    let key = contract_key(id, Epoch(0));
    let wrong_role = |e: RuleError, want_have: &str| match e {
        RuleError::WrongRole {
            tx: "publish-contract-key",
            need: Role::Runtime,
            have,
            ..
        } => assert_eq!(have, want_have),
        other => panic!("expected WrongRole, got {other:?}"),
    };
    wrong_role(rule(r.publish_contract_key(&stranger, &key).await), "none");
    wrong_role(
        rule(r.publish_contract_key(&gatekeeper, &key).await),
        "none",
    );
    r.add_measurement(governance, &m(), Role::Gatekeeper)
        .await
        .unwrap();
    wrong_role(
        rule(r.publish_contract_key(&gatekeeper, &key).await),
        "gatekeeper",
    );
    r.add_measurement(governance, &mr(), Role::Runtime)
        .await
        .unwrap();
    r.register_worker(&runner, &worker(f, &runner_key, 5, &runtime_enclave()))
        .await
        .unwrap();
    // A pRuntime cannot join the gatekeeper set either.
    let runner_id = chain::types::public_key(runner_key.verifying_key());
    assert!(matches!(
        rule(r.set_gatekeepers(governance, &[gk(1, &runner_id)], 1).await),
        RuleError::WrongRole {
            need: Role::Gatekeeper,
            have: "pruntime",
            ..
        }
    ));
    let worker = runner;
    serving(r, &worker, &stranger, id, &runner_id).await;
    assert_eq!(
        rule(
            r.publish_contract_key(&worker, &contract_key(id, Epoch(7)))
                .await
        ),
        RuleError::NoEpoch {
            tx: "publish-contract-key",
            epoch: Epoch(7)
        }
    );
    assert!(matches!(
        rule(
            r.publish_contract_key(&worker, &contract_key([0xee; 32], Epoch(0)))
                .await
        ),
        RuleError::NoContract { .. }
    ));
    let mut bad = key.clone();
    bad.encryption_key[0] = 2;
    assert!(matches!(
        rule(r.publish_contract_key(&worker, &bad).await),
        RuleError::Malformed { what: "key", .. }
    ));

    // Commands need published keys.
    let command = Command {
        contract: id,
        epoch: Epoch(0),
        ciphertext: vec![7; 100],
    };
    assert_eq!(
        rule(r.submit_command(&stranger, &command).await),
        RuleError::NoContractKey(Epoch(0))
    );
    let h_key = r.publish_contract_key(&worker, &key).await.unwrap();
    // The first publication stands.
    assert_eq!(
        rule(
            r.publish_contract_key(&worker, &contract_key(id, Epoch(0)))
                .await
        ),
        RuleError::ContractKeyPublished(Epoch(0))
    );
    let published = r.contract(id).await.unwrap().unwrap().keys[&Epoch(0)].clone();
    assert_eq!(published.encryption_key, key.encryption_key);
    assert_eq!(published.signing_key, key.signing_key);
    assert_eq!(published.published_at, h_key);
    assert!(!published.published_by.is_empty());

    let h1 = r.submit_command(&stranger, &command).await.unwrap();
    let h2 = r.submit_command(&stranger, &command).await.unwrap();
    assert!(h2 > h1);
    assert_eq!(r.contract(id).await.unwrap().unwrap().commands, 2);
    assert!(matches!(
        rule(
            r.submit_command(
                &stranger,
                &Command {
                    ciphertext: Vec::new(),
                    ..command.clone()
                }
            )
            .await
        ),
        RuleError::Malformed {
            what: "ciphertext",
            ..
        }
    ));
    assert!(matches!(
        rule(
            r.submit_command(
                &stranger,
                &Command {
                    contract: [0xee; 32],
                    ..command.clone()
                }
            )
            .await
        ),
        RuleError::NoContract { .. }
    ));

    // State commitments: a pRuntime's, sealed under the contract's newest keys, within
    // its commands (on its log's head at its count), each newer than the last.
    let c = r.contract(id).await.unwrap().unwrap();
    let commit = |count, log_head, epoch| chain::types::StateCommitment {
        contract: id,
        count,
        log_head,
        state_root: [5; 32],
        epoch: Epoch(epoch),
        committed_at: 0,
    };
    assert!(matches!(
        rule(
            r.commit_state(&stranger, &commit(2, c.command_log, 0))
                .await
        ),
        RuleError::WrongRole {
            tx: "commit-state",
            ..
        }
    ));
    for (bad, why) in [
        (
            commit(3, c.command_log, 0),
            "names more commands than the contract has",
        ),
        (
            commit(2, [9; 32], 0),
            "is not on the contract's command log",
        ),
    ] {
        assert_eq!(
            rule(r.commit_state(&worker, &bad).await),
            RuleError::StateCommitment(why)
        );
    }
    assert_eq!(
        rule(r.commit_state(&worker, &commit(2, c.command_log, 7)).await),
        RuleError::NoContractKey(Epoch(7))
    );
    r.commit_state(&worker, &commit(1, [9; 32], 0))
        .await
        .unwrap();
    assert_eq!(
        rule(r.commit_state(&worker, &commit(1, [9; 32], 0)).await),
        RuleError::StateCommitment("is not newer than the one standing")
    );
    let h_state = r
        .commit_state(&worker, &commit(2, c.command_log, 0))
        .await
        .unwrap();
    assert_eq!(
        r.contract(id).await.unwrap().unwrap().state,
        Some(chain::types::StateCommitment {
            committed_at: h_state,
            ..commit(2, c.command_log, 0)
        })
    );

    // Retirement is governance's, and never of the epoch in use.
    assert_eq!(
        rule(r.retire_epoch(&stranger, Epoch(0)).await),
        RuleError::NotGovernance("retire-epoch")
    );
    assert_eq!(
        rule(r.retire_epoch(governance, Epoch(0)).await),
        RuleError::CannotRetire {
            epoch: Epoch(0),
            why: "is the newest epoch"
        }
    );
    assert_eq!(
        rule(r.retire_epoch(governance, Epoch(9)).await),
        RuleError::CannotRetire {
            epoch: Epoch(9),
            why: "is not published"
        }
    );

    let events: Vec<Event> = r
        .events(h_deploy)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, e)| e)
        .filter(|e| {
            !matches!(
                e,
                Event::MeasurementAdded { .. } | Event::WorkerRegistered { .. }
            )
        })
        .collect();
    assert_eq!(
        events,
        vec![
            Event::ContractDeployed {
                contract: id,
                code_hash: c.code_hash
            },
            Event::ContractDeployed {
                contract: other,
                code_hash: c.code_hash
            },
            Event::Serving {
                contract: id,
                worker: runner_id.clone(),
                endpoint: "http://127.0.0.1:7400".into(),
            },
            Event::Serving {
                contract: id,
                worker: runner_id.clone(),
                endpoint: "https://worker.example:7401".into(),
            },
            Event::ContractKeyPublished {
                contract: id,
                epoch: Epoch(0)
            },
            Event::CommandSubmitted {
                contract: id,
                sequence: 0
            },
            Event::CommandSubmitted {
                contract: id,
                sequence: 1
            },
            Event::StateCommitted {
                contract: id,
                count: 1
            },
            Event::StateCommitted {
                contract: id,
                count: 2
            },
        ]
    );
    (id, command)
}

/// Where a pRuntime serves (`Tx::Serve`): only a registered pRuntime announces, only for
/// a deployed contract, only an `http(s)://` URL; the registry lists each worker's newest.
async fn serving<R: ContractRegistry>(
    r: &R,
    worker: &R::Account,
    stranger: &R::Account,
    id: [u8; 32],
    worker_key: &[u8],
) {
    assert!(matches!(
        rule(r.serve(stranger, id, "http://127.0.0.1:1").await),
        RuleError::WrongRole { tx: "serve", .. }
    ));
    let long = format!("http://{}", "a".repeat(300));
    for bad in ["ftp://127.0.0.1", "http://", long.as_str()] {
        assert_eq!(
            rule(r.serve(worker, id, bad).await),
            RuleError::Malformed {
                tx: "serve",
                what: "endpoint"
            },
            "{bad}"
        );
    }
    assert!(matches!(
        rule(r.serve(worker, [0xee; 32], "http://127.0.0.1:1").await),
        RuleError::NoContract { tx: "serve", .. }
    ));
    assert!(r.serving(id).await.unwrap().is_empty());
    r.serve(worker, id, "http://127.0.0.1:7400").await.unwrap();
    r.serve(worker, id, "https://worker.example:7401")
        .await
        .unwrap();
    assert_eq!(
        r.serving(id).await.unwrap(),
        [(
            worker_key.to_vec(),
            "https://worker.example:7401".to_owned()
        )]
    );
}
