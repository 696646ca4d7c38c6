//! The conformance suite every `Registry` backend must pass: each rule, its violation
//! (with its own error), and the events. Shared by `conformance.rs` (embedded ledger,
//! in-process and through a light client) and `evm.rs` (the contract on anvil).
#![allow(dead_code)]

use chain::registry::{ContractRegistry, Registry, RegistryError};
use chain::state::RuleError;
use chain::types::{
    Command, ContractKey, EpochCertificate, Event, Gatekeeper, Rotation, RoundDecision, Worker,
};
use p256::ecdsa::SigningKey;
use p256::ecdsa::signature::Signer as _;
use phalanx_threshold::round::{CommitCertificate, Participant, RoundKind, RoundSpec};
use phalanx_threshold::share::NodeIndex;
use phalanx_types::Epoch;

pub const M: [u8; 32] = [0xd3; 32];

fn random_identity() -> Vec<u8> {
    chain::types::public_key(chain::random_key().verifying_key())
}

fn worker(identity: &[u8], hpke: u8) -> Worker {
    Worker {
        identity_key: identity.to_vec(),
        hpke_key: vec![hpke; 65],
        measurement: M.to_vec(),
        attestation_hash: [7; 32],
        registered_at: 0,
    }
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

    // A worker with a measurement nobody allowed cannot register.
    assert!(matches!(
        rule(r.register_worker(&w1, &worker(&k1, 1)).await),
        RuleError::MeasurementNotAllowed(_)
    ));
    // Only governance changes the allow-list.
    assert_eq!(
        rule(r.add_measurement(&stranger, &M).await),
        RuleError::NotGovernance("add-measurement")
    );
    let h_added = r.add_measurement(governance, &M).await.unwrap();
    assert!(matches!(
        rule(r.add_measurement(governance, &M).await),
        RuleError::Measurement { .. }
    ));
    assert!(matches!(
        rule(r.add_measurement(governance, &[]).await),
        RuleError::Malformed {
            what: "measurement",
            ..
        }
    ));
    let allowed = r.allowed_measurements().await.unwrap();
    assert_eq!(allowed.len(), 1);
    assert_eq!(allowed[0].measurement, M);
    assert!(allowed[0].added_at > 0);

    // A worker registers itself; nobody registers (or refreshes) someone else's key.
    r.register_worker(&w1, &worker(&k1, 1)).await.unwrap();
    assert_eq!(
        rule(r.register_worker(&stranger, &worker(&k1, 1)).await),
        RuleError::NotSelf
    );
    let got = r.worker(&k1.clone()).await.unwrap().unwrap();
    assert_eq!(got.hpke_key, vec![1; 65]);
    assert!(got.registered_at > 0);
    // Re-registration refreshes it.
    r.register_worker(&w1, &worker(&k1, 2)).await.unwrap();
    let got = r.worker(&k1.clone()).await.unwrap().unwrap();
    assert_eq!(got.hpke_key, vec![2; 65]);
    assert!(r.worker(&k2.clone()).await.unwrap().is_none());

    // Gatekeepers: governance only, registered workers only, distinct indices.
    assert_eq!(
        rule(r.set_gatekeepers(&w1, &[gk(1, &k1)]).await),
        RuleError::NotGovernance("set-gatekeepers")
    );
    assert!(matches!(
        rule(
            r.set_gatekeepers(governance, &[gk(1, &k1), gk(2, &k2)])
                .await
        ),
        RuleError::GatekeeperNotWorker(_)
    ));
    // Nobody registers an identity key they cannot sign with: no front-running a
    // gatekeeper's registration of its (public) key to take its place (C1).
    assert_eq!(
        rule(r.register_worker(&stranger, &worker(&k2, 3)).await),
        RuleError::NotSelf
    );
    r.register_worker(&w2, &worker(&k2, 3)).await.unwrap();
    assert!(matches!(
        rule(
            r.set_gatekeepers(governance, &[gk(1, &k1), gk(1, &k2)])
                .await
        ),
        RuleError::BadGatekeeperSet(_)
    ));
    assert!(matches!(
        rule(r.set_gatekeepers(governance, &[]).await),
        RuleError::BadGatekeeperSet(_)
    ));
    r.set_gatekeepers(governance, &[gk(2, &k2), gk(1, &k1)])
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

    // Removing a measurement stops new registrations with it.
    assert_eq!(
        rule(r.remove_measurement(&w1, &M).await),
        RuleError::NotGovernance("remove-measurement")
    );
    r.remove_measurement(governance, &M).await.unwrap();
    assert!(matches!(
        rule(r.remove_measurement(governance, &M).await),
        RuleError::Measurement { .. }
    ));
    assert!(matches!(
        rule(r.register_worker(&w1, &worker(&k1, 4)).await),
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
            Event::MeasurementAdded(M.to_vec()),
            Event::WorkerRegistered {
                identity_key: k1.clone(),
                measurement: M.to_vec()
            },
            Event::WorkerRegistered {
                identity_key: k1.clone(),
                measurement: M.to_vec()
            },
            Event::WorkerRegistered {
                identity_key: k2.clone(),
                measurement: M.to_vec()
            },
            Event::GatekeepersChanged(vec![1, 2]),
            Event::RotationLocked(Epoch(0)),
            Event::MasterKeyPublished(Epoch(0)),
            Event::PublicKeySetUpdated(Epoch(0)),
            Event::RoundAborted(id_of(&contested)),
            Event::RotationLocked(Epoch(1)),
            Event::RotationAborted(Epoch(1)),
            Event::MeasurementRemoved(M.to_vec()),
        ]
    );
    let tail = r.events(h_added + 1).await.unwrap();
    assert_eq!(tail.len(), events.len() - 1);
    assert!(tail.iter().all(|(h, _)| *h > h_added));
    (w1, stranger)
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
    }
}

/// The contract rules, after [`suite`] (epoch 0 published, `worker` registered with `M`,
/// `M` no longer allowed).
pub async fn contracts<F: Fixture>(
    f: &mut F,
    worker: <F::R as Registry>::Account,
    stranger: <F::R as Registry>::Account,
) where
    F::R: ContractRegistry,
{
    let (r, governance) = (f.registry(), f.governance());
    let code = b"\0asm\x01\0\0\0 any module: the registry does not run it".to_vec();

    // Anyone deploys; the id is fixed by deployer, code hash and salt.
    let (h_deploy, id) = r.deploy_contract(&stranger, &code, [1; 32]).await.unwrap();
    let c = r.contract(id).await.unwrap().unwrap();
    assert_eq!(c.code_hash, phalanx_types::contract::code_hash(&code));
    assert_eq!(
        c.id,
        phalanx_types::contract::contract_id(&c.deployer, &c.code_hash, &[1; 32])
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

    // Keys: only a registered worker whose measurement is allowed now.
    let key = contract_key(id, Epoch(0));
    assert_eq!(
        rule(r.publish_contract_key(&stranger, &key).await),
        RuleError::NotAllowedWorker
    );
    assert_eq!(
        rule(r.publish_contract_key(&worker, &key).await),
        RuleError::NotAllowedWorker
    );
    r.add_measurement(governance, &M).await.unwrap();
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

    let events: Vec<Event> = r
        .events(h_deploy)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, e)| e)
        .filter(|e| !matches!(e, Event::MeasurementAdded(_)))
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
        ]
    );
}
