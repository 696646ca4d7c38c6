//! One conformance suite for every `Registry` backend: each rule, its violation (with
//! its own error), and the events. Run against the embedded ledger in-process and
//! through a light client over gRPC.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use chain::grpc::LightClient;
use chain::ledger::Ledger;
use chain::registry::{Registry, RegistryError};
use chain::state::RuleError;
use chain::types::{Event, Gatekeeper, Rotation, Worker, public_key};
use p256::ecdsa::SigningKey;
use std::sync::Arc;

fn now() -> i64 {
    1_760_000_000
}

const M: [u8; 32] = [0xd3; 32];

fn worker(key: &SigningKey, hpke: u8) -> Worker {
    Worker {
        identity_key: public_key(key.verifying_key()),
        hpke_key: vec![hpke; 65],
        measurement: M.to_vec(),
        attestation_hash: [7; 32],
        registered_at: 0,
    }
}

fn gk(index: u16, key: &SigningKey) -> Gatekeeper {
    Gatekeeper {
        index,
        identity_key: public_key(key.verifying_key()),
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

/// The suite. `governance` is the chain's governance account.
async fn suite<R: Registry<Account = SigningKey>>(r: &R, governance: &SigningKey) {
    let (w1, w2, stranger) = (
        chain::random_key(),
        chain::random_key(),
        chain::random_key(),
    );

    // A worker with a measurement nobody allowed cannot register.
    assert!(matches!(
        rule(r.register_worker(&w1, &worker(&w1, 1)).await),
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
    assert_eq!(allowed[0].added_at, now());

    // A worker registers itself; nobody registers someone else's key.
    assert_eq!(
        rule(r.register_worker(&stranger, &worker(&w1, 1)).await),
        RuleError::NotSelf
    );
    r.register_worker(&w1, &worker(&w1, 1)).await.unwrap();
    let got = r
        .worker(&public_key(w1.verifying_key()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.hpke_key, vec![1; 65]);
    assert_eq!(got.registered_at, now());
    // Re-registration refreshes it.
    r.register_worker(&w1, &worker(&w1, 2)).await.unwrap();
    let got = r
        .worker(&public_key(w1.verifying_key()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.hpke_key, vec![2; 65]);
    assert!(
        r.worker(&public_key(w2.verifying_key()))
            .await
            .unwrap()
            .is_none()
    );

    // Gatekeepers: governance only, registered workers only, distinct indices.
    assert_eq!(
        rule(r.set_gatekeepers(&w1, &[gk(1, &w1)]).await),
        RuleError::NotGovernance("set-gatekeepers")
    );
    assert!(matches!(
        rule(
            r.set_gatekeepers(governance, &[gk(1, &w1), gk(2, &w2)])
                .await
        ),
        RuleError::GatekeeperNotWorker(_)
    ));
    r.register_worker(&w2, &worker(&w2, 3)).await.unwrap();
    assert!(matches!(
        rule(
            r.set_gatekeepers(governance, &[gk(1, &w1), gk(1, &w2)])
                .await
        ),
        RuleError::BadGatekeeperSet(_)
    ));
    assert!(matches!(
        rule(r.set_gatekeepers(governance, &[]).await),
        RuleError::BadGatekeeperSet(_)
    ));
    r.set_gatekeepers(governance, &[gk(2, &w2), gk(1, &w1)])
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
        rule(
            r.publish_master_key(&w2, 1, &public_key(w2.verifying_key()))
                .await
        ),
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
    let mpk = public_key(chain::random_key().verifying_key());
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
        rule(r.register_worker(&w1, &worker(&w1, 4)).await),
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
    let k = |s: &SigningKey| public_key(s.verifying_key());
    assert_eq!(
        events,
        vec![
            Event::MeasurementAdded(M.to_vec()),
            Event::WorkerRegistered {
                identity_key: k(&w1),
                measurement: M.to_vec()
            },
            Event::WorkerRegistered {
                identity_key: k(&w1),
                measurement: M.to_vec()
            },
            Event::WorkerRegistered {
                identity_key: k(&w2),
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

#[tokio::test]
async fn embedded_ledger_in_process() {
    let dir = tempfile::tempdir().unwrap();
    let governance = chain::random_key();
    let ledger = Ledger::open(
        dir.path(),
        chain::random_key(),
        public_key(governance.verifying_key()),
        now,
    )
    .unwrap();
    suite(&ledger, &governance).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_ledger_through_a_light_client() {
    let dir = tempfile::tempdir().unwrap();
    let governance = chain::random_key();
    let ledger = Arc::new(
        Ledger::open(
            dir.path(),
            chain::random_key(),
            public_key(governance.verifying_key()),
            now,
        )
        .unwrap(),
    );
    let genesis = ledger.blocks(0, 1).unwrap()[0].hash();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(chain::grpc::serve(
        listener,
        ledger.clone(),
        std::future::pending(),
    ));
    let client = LightClient::pinned(&url, genesis);
    suite(&client, &governance).await;
    // A second client, starting from nothing, rebuilds the same state.
    let fresh = LightClient::new(&url).sync().await.unwrap();
    let local = ledger.state().unwrap();
    assert_eq!(fresh.height(), local.height());
    assert_eq!(fresh.last_hash(), local.last_hash());
    // A client pinned to another chain refuses this one.
    let e = LightClient::pinned(&url, [9; 32]).sync().await.unwrap_err();
    assert!(e.to_string().contains("pinned"), "{e}");
}
