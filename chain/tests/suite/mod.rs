//! The conformance suite every `Registry` backend must pass: each rule, its violation
//! (with its own error), and the events. Shared by `conformance.rs` (embedded ledger,
//! in-process and through a light client) and `evm.rs` (the contract on anvil).
#![allow(dead_code)]

use chain::registry::{Registry, RegistryError};
use chain::state::RuleError;
use chain::types::{Event, Gatekeeper, Rotation, Worker};

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
    /// A fresh account and the (compressed P-256) identity key it registers.
    fn account(
        &mut self,
    ) -> impl std::future::Future<Output = (<Self::R as Registry>::Account, Vec<u8>)>;
}

/// The suite.
pub async fn suite<F: Fixture>(f: &mut F) {
    let (w1, k1) = f.account().await;
    let (w2, k2) = f.account().await;
    let (stranger, _) = f.account().await;
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

    // Rotation: governance or a gatekeeper; one at a time; epochs only increase.
    assert_eq!(r.rotation().await.unwrap(), Rotation::Idle);
    assert_eq!(
        rule(r.lock_rotation(&stranger, 0).await),
        RuleError::NotGovernanceOrGatekeeper("lock-rotation")
    );
    r.lock_rotation(&w1, 0).await.unwrap();
    assert_eq!(r.rotation().await.unwrap(), Rotation::Locked(0));
    assert_eq!(
        rule(r.lock_rotation(governance, 1).await),
        RuleError::RotationLocked {
            tx: "lock-rotation",
            locked: 0
        }
    );
    assert_eq!(
        rule(r.publish_master_key(&w2, 1, &k2.clone()).await),
        RuleError::NotLocked {
            tx: "publish-master-key",
            epoch: 1
        }
    );
    assert!(matches!(
        rule(r.publish_master_key(&w2, 0, &[5; 33]).await),
        RuleError::Malformed {
            what: "master public key",
            ..
        }
    ));
    let mpk = random_identity();
    r.publish_master_key(&w2, 0, &mpk).await.unwrap();
    assert_eq!(
        r.master_key(0).await.unwrap().unwrap().master_public_key,
        mpk
    );
    assert_eq!(r.rotation().await.unwrap(), Rotation::Idle);
    assert_eq!(
        rule(r.lock_rotation(governance, 0).await),
        RuleError::EpochNotIncreasing {
            epoch: 0,
            latest: 0
        }
    );
    r.lock_rotation(governance, 1).await.unwrap();
    r.abort_rotation(governance, 1).await.unwrap();
    assert_eq!(
        rule(r.abort_rotation(governance, 1).await),
        RuleError::NotLocked {
            tx: "abort-rotation",
            epoch: 1
        }
    );
    assert!(r.master_key(1).await.unwrap().is_none());

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
            Event::RotationLocked(0),
            Event::MasterKeyPublished(0),
            Event::RotationLocked(1),
            Event::RotationAborted(1),
            Event::MeasurementRemoved(M.to_vec()),
        ]
    );
    let tail = r.events(h_added + 1).await.unwrap();
    assert_eq!(tail.len(), events.len() - 1);
    assert!(tail.iter().all(|(h, _)| *h > h_added));
}
