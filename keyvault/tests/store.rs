//! The gatekeeper's store: shares and identity survive a reopen sealed, tampering and
//! moved records are refused by name, the log refuses holes and out-of-order appends,
//! and a node killed mid-write (a child process, SIGKILL) reopens consistent.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use keyvault::derive::{KeyId, combine, evaluate};
use keyvault::share::{SecretScalar, dealer_split};
use keyvault::store::{EpochState, NodeStore, SealingKey, StoreError};
use phalanx_types::Epoch;

fn states() -> Vec<EpochState> {
    let mut rng = rand::rng();
    let (shares, public) = dealer_split(
        &SecretScalar::new(p256::Scalar::from(11u64)),
        3,
        5,
        &mut rng,
    )
    .unwrap();
    shares
        .into_iter()
        .map(|share| EpochState {
            share,
            public: public.clone(),
        })
        .collect()
}

fn open(dir: &std::path::Path) -> NodeStore {
    NodeStore::open(
        &dir.join("db"),
        SealingKey::load_or_create(&dir.join("sealing.key")).unwrap(),
    )
    .unwrap()
}

#[test]
fn shares_identity_and_log_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let all = states();
    let id_key;
    {
        let s = open(dir.path());
        s.put_epoch(Epoch(0), &all[0]).unwrap();
        s.put_epoch(Epoch(1), &all[1]).unwrap();
        id_key = s.identity(&mut rand::rng()).unwrap().verifying_key();
        for i in 0..5u64 {
            s.append_log(i, &[i as u8; 32]).unwrap();
        }
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("sealing.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let s = open(dir.path());
    let epochs = s.epochs().unwrap();
    assert_eq!(
        epochs.keys().copied().collect::<Vec<_>>(),
        vec![Epoch(0), Epoch(1)]
    );
    // The reopened shares still derive the same key as the originals.
    let id = KeyId {
        epoch: Epoch(0),
        tenant: "t".into(),
        path: "p".into(),
        purpose: "x".into(),
    };
    let mut rng = rand::rng();
    let reopened = [&epochs[&Epoch(0)].share, &all[2].share, &all[3].share]
        .iter()
        .map(|sh| evaluate(sh, &id, &mut rng).unwrap())
        .collect::<Vec<_>>();
    let original = all[..3]
        .iter()
        .map(|st| evaluate(&st.share, &id, &mut rng).unwrap())
        .collect::<Vec<_>>();
    assert_eq!(
        combine(&epochs[&Epoch(0)].public, &id, &reopened)
            .unwrap()
            .key,
        combine(&all[0].public, &id, &original).unwrap().key
    );
    assert_eq!(
        s.identity(&mut rand::rng()).unwrap().verifying_key(),
        id_key
    );
    assert_eq!(s.log().unwrap().size(), 5);
    // Retirement forgets the epoch.
    s.remove_epoch(Epoch(1)).unwrap();
    assert_eq!(s.epochs().unwrap().len(), 1);
}

#[test]
fn tampered_moved_and_foreign_records_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let all = states();
    let s = open(dir.path());
    s.put_epoch(Epoch(0), &all[0]).unwrap();
    s.put_epoch(Epoch(1), &all[1]).unwrap();
    let sealed = s.raw("epochs", &0u64.to_be_bytes()).unwrap().unwrap();
    // Nothing secret is stored in clear.
    let secret = all[0].share.secret.expose().to_bytes();
    assert!(!sealed.windows(32).any(|w| w == secret.as_slice()));
    // A flipped bit.
    let mut flipped = sealed.clone();
    flipped[20] ^= 1;
    s.raw_put("epochs", &0u64.to_be_bytes(), &flipped).unwrap();
    assert!(
        matches!(s.epochs(), Err(StoreError::Unseal(name)) if name == "epochs/0000000000000000")
    );
    // Epoch 0's sealed share moved into epoch 1's slot.
    s.raw_put("epochs", &0u64.to_be_bytes(), &sealed).unwrap();
    s.raw_put("epochs", &1u64.to_be_bytes(), &sealed).unwrap();
    assert!(matches!(s.epochs(), Err(StoreError::Unseal(_))));
    drop(s);
    // Another node's sealing key opens nothing.
    std::fs::remove_file(dir.path().join("sealing.key")).unwrap();
    let s = open(dir.path());
    assert!(matches!(s.epochs(), Err(StoreError::Unseal(_))));
}

#[test]
fn the_log_is_append_only_and_gapless() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    s.append_log(0, &[0; 32]).unwrap();
    assert!(matches!(
        s.append_log(2, &[2; 32]),
        Err(StoreError::LogOrder {
            got: 2,
            expected: 1
        })
    ));
    assert!(matches!(
        s.append_log(0, &[9; 32]),
        Err(StoreError::LogOrder {
            got: 0,
            expected: 1
        })
    ));
    s.append_log(1, &[1; 32]).unwrap();
    s.raw_put("log", &3u64.to_be_bytes(), &[3; 32]).unwrap();
    assert!(matches!(s.log(), Err(StoreError::LogGap(2))));
}

/// Child mode: write epochs and log entries forever (until killed).
#[test]
#[ignore = "run by killed_mid_write_reopens_consistent as a child process"]
fn child_writer() {
    let dir = std::path::PathBuf::from(std::env::var("PHALANX_STORE_DIR").unwrap());
    let s = open(&dir);
    let all = states();
    let start = s.log().unwrap().size();
    for i in start.. {
        s.put_epoch(Epoch(i % 4), &all[(i % 5) as usize]).unwrap();
        s.append_log(i, &[(i % 251) as u8; 32]).unwrap();
    }
}

#[test]
fn killed_mid_write_reopens_consistent() {
    let dir = tempfile::tempdir().unwrap();
    let mut kills = 0;
    // Kill the writer at least three times, and until it has written something (a slow
    // machine may need longer to start it).
    for round in 0u64..20 {
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--ignored", "--exact", "child_writer", "--nocapture"])
            .env("PHALANX_STORE_DIR", dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(300 + 200 * round));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;
        let s = open(dir.path());
        let log = s.log().unwrap();
        for i in 0..log.size() {
            assert_eq!(log.leaf(i).unwrap(), [(i % 251) as u8; 32]);
        }
        for (epoch, st) in s.epochs().unwrap() {
            assert!(epoch < Epoch(4));
            assert_eq!(st.public.threshold(), 3);
        }
        if kills >= 3 && log.size() > 0 {
            return;
        }
    }
    panic!("the writer never wrote anything");
}
