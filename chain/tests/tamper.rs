//! Tampering: a block edited, removed or reordered on disk makes loading fail with the
//! block's height; a light client refuses a block whose signature is forged; replays,
//! bad signatures and malformed bytes are refused.
#![cfg(feature = "ledger")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use chain::grpc::LightClient;
use chain::ledger::{Ledger, LedgerError};
use chain::registry::Registry;
use chain::state::RuleError;
use chain::types::{Block, SignedTx, Tx, public_key};
use phalanx_proto::chain::v1 as pb;
use std::path::Path;

fn now() -> i64 {
    1_760_000_000
}

/// A ledger with genesis and four blocks; returns the governance key.
async fn build(dir: &Path) -> p256::ecdsa::SigningKey {
    let governance = chain::random_key();
    let ledger = Ledger::open(
        dir,
        chain::random_key(),
        public_key(governance.verifying_key()),
        chain::types::EvidenceRule::intel(),
        now,
    )
    .unwrap();
    for m in 1..=4u8 {
        ledger
            .add_measurement(&governance, &[m; 32], chain::types::Role::App)
            .await
            .unwrap();
    }
    governance
}

fn raw(dir: &Path) -> rocksdb::DB {
    let o = rocksdb::Options::default();
    let tables = rocksdb::DB::list_cf(&o, dir).unwrap();
    rocksdb::DB::open_cf(&o, dir, tables).unwrap()
}

/// A ledger written by an older Phalanx (blocks and no format), or one naming a newer
/// format, is refused by name before any block is read; its data stays as it was.
#[tokio::test]
async fn a_ledger_of_another_format_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut o = rocksdb::Options::default();
        o.create_if_missing(true);
        o.create_missing_column_families(true);
        let db = rocksdb::DB::open_cf(&o, dir.path(), ["blocks"]).unwrap();
        let cf = db.cf_handle("blocks").unwrap();
        db.put_cf(cf, 0u64.to_be_bytes(), b"a format-1 genesis")
            .unwrap();
    }
    let open = || {
        Ledger::open(
            dir.path(),
            chain::random_key(),
            vec![2; 33],
            chain::types::EvidenceRule::intel(),
            now,
        )
    };
    let e = open().unwrap_err();
    assert!(matches!(e, LedgerError::Format { found: 1 }), "{e:?}");
    assert!(e.to_string().contains("format 1"), "{e}");
    assert!(matches!(
        Ledger::verify_dir(dir.path()),
        Err(LedgerError::Format { found: 1 })
    ));
    {
        // Untouched: it opens as the Phalanx that wrote it opens it (its one table).
        let db =
            rocksdb::DB::open_cf(&rocksdb::Options::default(), dir.path(), ["blocks"]).unwrap();
        let cf = db.cf_handle("blocks").unwrap();
        assert_eq!(
            db.get_cf(cf, 0u64.to_be_bytes()).unwrap().unwrap(),
            b"a format-1 genesis"
        );
        // A newer Phalanx's data names its format: refused too.
        drop(db);
        let mut o = rocksdb::Options::default();
        o.create_missing_column_families(true);
        let db = rocksdb::DB::open_cf(&o, dir.path(), ["blocks", "meta", "commands"]).unwrap();
        db.put_cf(db.cf_handle("meta").unwrap(), b"format", 6u32.to_be_bytes())
            .unwrap();
    }
    assert!(matches!(
        open().unwrap_err(),
        LedgerError::Format { found: 6 }
    ));

    // Format 2 (before the command index): refused, and still opens with its own tables.
    let dir2 = tempfile::tempdir().unwrap();
    {
        let mut o = rocksdb::Options::default();
        o.create_if_missing(true);
        o.create_missing_column_families(true);
        let db = rocksdb::DB::open_cf(&o, dir2.path(), ["blocks", "meta"]).unwrap();
        db.put_cf(
            db.cf_handle("blocks").unwrap(),
            0u64.to_be_bytes(),
            b"a format-2 genesis",
        )
        .unwrap();
        db.put_cf(db.cf_handle("meta").unwrap(), b"format", 2u32.to_be_bytes())
            .unwrap();
    }
    let e = Ledger::open(
        dir2.path(),
        chain::random_key(),
        vec![2; 33],
        chain::types::EvidenceRule::intel(),
        now,
    )
    .unwrap_err();
    assert!(matches!(e, LedgerError::Format { found: 2 }), "{e:?}");
    assert!(matches!(
        Ledger::verify_dir(dir2.path()),
        Err(LedgerError::Format { found: 2 })
    ));
    rocksdb::DB::open_cf(
        &rocksdb::Options::default(),
        dir2.path(),
        ["blocks", "meta"],
    )
    .unwrap();
}

fn corrupt_at(dir: &Path) -> (u64, String) {
    match Ledger::verify_dir(dir) {
        Err(LedgerError::Corrupt { height, what }) => (height, what),
        other => panic!("expected corruption, got {other:?}"),
    }
}

#[tokio::test]
async fn edited_removed_or_reordered_blocks_fail_with_their_height() {
    // Edited: one byte of block 2.
    let dir = tempfile::tempdir().unwrap();
    build(dir.path()).await;
    assert_eq!(Ledger::verify_dir(dir.path()).unwrap().height(), 5);
    {
        let db = raw(dir.path());
        let cf = db.cf_handle("blocks").unwrap();
        let mut v = db.get_cf(cf, 2u64.to_be_bytes()).unwrap().unwrap();
        let mid = v.len() / 2;
        v[mid] ^= 1;
        db.put_cf(cf, 2u64.to_be_bytes(), v).unwrap();
    }
    assert_eq!(corrupt_at(dir.path()).0, 2);

    // Removed: block 3.
    let dir = tempfile::tempdir().unwrap();
    build(dir.path()).await;
    {
        let db = raw(dir.path());
        db.delete_cf(db.cf_handle("blocks").unwrap(), 3u64.to_be_bytes())
            .unwrap();
    }
    let (h, what) = corrupt_at(dir.path());
    assert_eq!((h, what.as_str()), (3, "missing"));

    // Reordered: blocks 1 and 2 swapped.
    let dir = tempfile::tempdir().unwrap();
    build(dir.path()).await;
    {
        let db = raw(dir.path());
        let cf = db.cf_handle("blocks").unwrap();
        let (a, b) = (
            db.get_cf(cf, 1u64.to_be_bytes()).unwrap().unwrap(),
            db.get_cf(cf, 2u64.to_be_bytes()).unwrap().unwrap(),
        );
        db.put_cf(cf, 1u64.to_be_bytes(), b).unwrap();
        db.put_cf(cf, 2u64.to_be_bytes(), a).unwrap();
    }
    assert_eq!(corrupt_at(dir.path()).0, 1);

    // A ledger cannot be reopened with another authority key than its genesis names.
    let dir = tempfile::tempdir().unwrap();
    build(dir.path()).await;
    let e = Ledger::open(
        dir.path(),
        chain::random_key(),
        vec![2; 33],
        chain::types::EvidenceRule::intel(),
        now,
    )
    .unwrap_err();
    assert!(e.to_string().contains("authority"), "{e}");
}

/// Serves fixed block bytes, whatever they are.
struct Fake(Vec<Vec<u8>>);

#[tonic::async_trait]
impl pb::chain_server::Chain for Fake {
    async fn submit(
        &self,
        _: tonic::Request<pb::SubmitRequest>,
    ) -> Result<tonic::Response<pb::SubmitResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("fake"))
    }
    async fn get_blocks(
        &self,
        r: tonic::Request<pb::GetBlocksRequest>,
    ) -> Result<tonic::Response<pb::GetBlocksResponse>, tonic::Status> {
        let from = usize::try_from(r.into_inner().from).unwrap();
        Ok(tonic::Response::new(pb::GetBlocksResponse {
            blocks: self.0.iter().skip(from).cloned().collect(),
        }))
    }
    async fn prove(
        &self,
        _: tonic::Request<pb::ProveRequest>,
    ) -> Result<tonic::Response<pb::ProveResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("fake"))
    }
    async fn get_commands(
        &self,
        _: tonic::Request<pb::GetCommandsRequest>,
    ) -> Result<tonic::Response<pb::GetCommandsResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("fake"))
    }
    async fn head(
        &self,
        _: tonic::Request<pb::HeadRequest>,
    ) -> Result<tonic::Response<pb::HeadResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("fake"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_light_client_refuses_forged_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let governance = build(dir.path()).await;
    // Read the genuine blocks from the directory, then forge block 5 with a key that
    // is not the authority's.
    let genuine: Vec<Block> = {
        let db = raw(dir.path());
        let cf = db.cf_handle("blocks").unwrap();
        (0..5u64)
            .map(|h| Block::decode(&db.get_cf(cf, h.to_be_bytes()).unwrap().unwrap()).unwrap())
            .collect()
    };
    let state = Ledger::verify_dir(dir.path()).unwrap();
    let forged = state
        .seal_next(
            vec![SignedTx::sign(
                &governance,
                &state.chain_id(),
                state.nonce(&public_key(governance.verifying_key())),
                Tx::AddMeasurement {
                    measurement: vec![9; 32],
                    role: chain::types::Role::App,
                },
            )],
            now(),
            &chain::random_key(),
        )
        .unwrap();
    let mut served: Vec<Vec<u8>> = genuine.iter().map(Block::encode).collect();
    served.push(forged.encode());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(pb::chain_server::ChainServer::new(Fake(served)))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    let e = LightClient::pinned(&url, genuine[0].hash())
        .sync()
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("block 5: bad authority signature"),
        "{e}"
    );
}

#[tokio::test]
async fn replays_bad_signatures_and_garbage_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let governance = chain::random_key();
    let ledger = Ledger::open(
        dir.path(),
        chain::random_key(),
        public_key(governance.verifying_key()),
        chain::types::EvidenceRule::intel(),
        now,
    )
    .unwrap();
    let chain_id = ledger.state().unwrap().chain_id();
    let tx = SignedTx::sign(
        &governance,
        &chain_id,
        0,
        Tx::AddMeasurement {
            measurement: vec![1; 32],
            role: chain::types::Role::App,
        },
    );
    ledger.submit(tx.clone()).unwrap();
    assert!(matches!(
        ledger.submit(tx.clone()),
        Err(LedgerError::Rule(RuleError::Nonce {
            got: 0,
            expected: 1,
            ..
        }))
    ));
    let mut bad = SignedTx::sign(
        &governance,
        &chain_id,
        1,
        Tx::AddMeasurement {
            measurement: vec![2; 32],
            role: chain::types::Role::App,
        },
    );
    bad.tx = Tx::AddMeasurement {
        measurement: vec![3; 32],
        role: chain::types::Role::App,
    };
    assert!(matches!(
        ledger.submit(bad),
        Err(LedgerError::Rule(RuleError::BadSignature(_)))
    ));
    // Signed for another chain.
    let other = SignedTx::sign(
        &governance,
        &[0; 32],
        1,
        Tx::AddMeasurement {
            measurement: vec![2; 32],
            role: chain::types::Role::App,
        },
    );
    assert!(matches!(
        ledger.submit(other),
        Err(LedgerError::Rule(RuleError::BadSignature(_)))
    ));
    // Bytes: every truncation of a transaction and of a block fails to decode.
    let b = tx.encode();
    for cut in 0..b.len() {
        assert!(SignedTx::decode(&b[..cut]).is_err());
    }
    let block = ledger.blocks(1, 1).unwrap().remove(0).encode();
    for cut in 0..block.len() {
        assert!(Block::decode(&block[..cut]).is_err());
    }
    assert!(Block::decode(&[block.clone(), vec![0]].concat()).is_err());
    // Nothing of that changed the chain.
    assert_eq!(ledger.state().unwrap().height(), 2);
}

async fn serve_fake(blocks: Vec<Vec<u8>>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(pb::chain_server::ChainServer::new(Fake(blocks)))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    url
}

/// M2: a client with a checkpoint refuses, after a restart, a server that rolls the
/// chain back below what it verified, or serves a fork of it (the authority signed two
/// histories).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_m2_a_checkpointed_client_refuses_rollback_and_forks() {
    // Two ledgers with the same genesis (same authority, governance and time) that
    // diverge at block 1: the authority signed two histories.
    let (authority, governance) = (chain::random_key(), chain::random_key());
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let mut chains = Vec::new();
    for (d, m) in dirs.iter().zip([1u8, 2]) {
        let ledger = Ledger::open(
            d.path(),
            authority.clone(),
            public_key(governance.verifying_key()),
            chain::types::EvidenceRule::intel(),
            now,
        )
        .unwrap();
        for k in 0..3u8 {
            ledger
                .add_measurement(&governance, &[m * 16 + k; 32], chain::types::Role::App)
                .await
                .unwrap();
        }
        chains.push(ledger.blocks(0, 100).unwrap());
    }
    let (a, b) = (&chains[0], &chains[1]);
    assert_eq!(a[0].hash(), b[0].hash());
    assert_ne!(a[1].hash(), b[1].hash());
    let enc = |blocks: &[Block]| blocks.iter().map(Block::encode).collect::<Vec<_>>();
    let state_dir = tempfile::tempdir().unwrap();
    let checkpoint = state_dir.path().join("head");
    let client = |url: &str| LightClient::pinned(url, a[0].hash()).with_checkpoint(&checkpoint);

    // History A, verified and remembered.
    let url = serve_fake(enc(a)).await;
    assert_eq!(client(&url).sync().await.unwrap().height(), 4);
    // A restarted client is shown a prefix of A: refused (rollback/withholding below
    // what it saw).
    let url = serve_fake(enc(&a[..2])).await;
    let e = client(&url).sync().await.unwrap_err();
    assert!(e.to_string().contains("ends before block 3"), "{e}");
    // ... or history B: refused (fork), although every block of B is validly signed.
    let url = serve_fake(enc(b)).await;
    let e = client(&url).sync().await.unwrap_err();
    assert!(e.to_string().contains("forks from the checkpoint"), "{e}");
    // Without a checkpoint, a fresh client takes B: the documented limit.
    LightClient::pinned(&url, a[0].hash()).sync().await.unwrap();
    // A above A's head extends it: accepted.
    let url = serve_fake(enc(a)).await;
    client(&url).sync().await.unwrap();
}

/// A server that accepts every submission and names its latest block, without
/// including anything.
struct Liar(Vec<Vec<u8>>);

#[tonic::async_trait]
impl pb::chain_server::Chain for Liar {
    async fn submit(
        &self,
        _: tonic::Request<pb::SubmitRequest>,
    ) -> Result<tonic::Response<pb::SubmitResponse>, tonic::Status> {
        Ok(tonic::Response::new(pb::SubmitResponse {
            height: self.0.len() as u64 - 1,
        }))
    }
    async fn get_blocks(
        &self,
        r: tonic::Request<pb::GetBlocksRequest>,
    ) -> Result<tonic::Response<pb::GetBlocksResponse>, tonic::Status> {
        Fake(self.0.clone()).get_blocks(r).await
    }
    async fn prove(
        &self,
        r: tonic::Request<pb::ProveRequest>,
    ) -> Result<tonic::Response<pb::ProveResponse>, tonic::Status> {
        Fake(self.0.clone()).prove(r).await
    }
    async fn get_commands(
        &self,
        r: tonic::Request<pb::GetCommandsRequest>,
    ) -> Result<tonic::Response<pb::GetCommandsResponse>, tonic::Status> {
        Fake(self.0.clone()).get_commands(r).await
    }
    async fn head(
        &self,
        r: tonic::Request<pb::HeadRequest>,
    ) -> Result<tonic::Response<pb::HeadResponse>, tonic::Status> {
        Fake(self.0.clone()).head(r).await
    }
}

/// M2: a submission succeeds only if the block the server names holds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_m2_a_submission_the_server_did_not_include_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let governance = build(dir.path()).await;
    let blocks: Vec<Vec<u8>> = {
        let db = raw(dir.path());
        let cf = db.cf_handle("blocks").unwrap();
        (0..5u64)
            .map(|h| db.get_cf(cf, h.to_be_bytes()).unwrap().unwrap())
            .collect()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(pb::chain_server::ChainServer::new(Liar(blocks)))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    let client = LightClient::new(&url);
    let e = client
        .add_measurement(&governance, &[0x77; 32], chain::types::Role::App)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("does not"), "{e}");
}

/// A real ledger's first five blocks, served by a fake node; its directory (kept alive
/// by the caller) and URL.
async fn served_ledger() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path()).await;
    let blocks: Vec<Vec<u8>> = {
        let db = raw(dir.path());
        let cf = db.cf_handle("blocks").unwrap();
        (0..5u64)
            .map(|h| db.get_cf(cf, h.to_be_bytes()).unwrap().unwrap())
            .collect()
    };
    let url = serve_fake(blocks).await;
    (dir, url)
}

/// A checkpoint file that is not one (truncated, oversized, garbage) is an error, never
/// silently ignored or taken as a head.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_checkpoint_is_refused() {
    let (_dir, url) = served_ledger().await;
    let state = tempfile::tempdir().unwrap();
    let checkpoint = state.path().join("head");
    LightClient::new(&url)
        .with_checkpoint(&checkpoint)
        .sync()
        .await
        .unwrap();
    let good = std::fs::read(&checkpoint).unwrap();
    assert_eq!(good.len(), 40);
    for bad in [
        good[..39].to_vec(),
        [good.clone(), vec![0]].concat(),
        b"garbage".to_vec(),
    ] {
        std::fs::write(&checkpoint, &bad).unwrap();
        let e = LightClient::new(&url)
            .with_checkpoint(&checkpoint)
            .sync()
            .await
            .unwrap_err();
        assert!(e.to_string().contains("not a checkpoint"), "{e}");
    }
}

/// A sealed checkpoint (a gatekeeper's, keyed by its identity): its host can neither
/// forge a head (a file written without the key, or the unsealed format, is refused),
/// nor delete it once the process has followed the registry, nor feed it another
/// process's file; the process's own file is taken back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sealed_checkpoint_cannot_be_forged_or_deleted() {
    let (_dir, url) = served_ledger().await;
    let state = tempfile::tempdir().unwrap();
    let checkpoint = state.path().join("head");
    let sealed = |key: [u8; 32], required| {
        LightClient::new(&url).with_sealed_checkpoint(&checkpoint, &key, required)
    };
    // First run: nothing to require yet.
    sealed([1; 32], false).sync().await.unwrap();
    let good = std::fs::read(&checkpoint).unwrap();
    assert_eq!(good.len(), 72);
    sealed([1; 32], true).sync().await.unwrap();
    // Another key's (another node's) file, the head without its MAC, a flipped bit.
    let mut flipped = good.clone();
    flipped[3] ^= 1;
    for bad in [good[..40].to_vec(), flipped] {
        std::fs::write(&checkpoint, &bad).unwrap();
        let e = sealed([1; 32], true).sync().await.unwrap_err();
        assert!(
            e.to_string().contains("not a checkpoint of this process"),
            "{e}"
        );
    }
    std::fs::write(&checkpoint, &good).unwrap();
    let e = sealed([2; 32], true).sync().await.unwrap_err();
    assert!(
        e.to_string().contains("not a checkpoint of this process"),
        "{e}"
    );
    // Deleted: refused once required.
    std::fs::remove_file(&checkpoint).unwrap();
    let e = sealed([1; 32], true).sync().await.unwrap_err();
    assert!(e.to_string().contains("missing"), "{e}");
}

/// The contract transactions' bytes: each round-trips; every truncation, a module or
/// command one byte over its bound, and trailing bytes are refused by the decoder; a
/// flipped bit in the signed body fails the signature.
#[test]
fn contract_transactions_decode_strictly() {
    use chain::types::{Command, ContractKey, MAX_CODE, MAX_COMMAND};
    use phalanx_types::Epoch;
    use phalanx_types::codec::DecodeError;
    let key = chain::random_key();
    let chain_id = [5; 32];
    let txs = [
        Tx::DeployContract {
            code: vec![0xab; 100],
            salt: [1; 32],
        },
        Tx::PublishContractKey(ContractKey {
            contract: [2; 32],
            epoch: Epoch(3),
            encryption_key: vec![4; 65],
            signing_key: vec![2; 33],
            published_by: Vec::new(),
            published_at: 0,
            commands_before: 0,
        }),
        Tx::Command(Command {
            contract: [2; 32],
            epoch: Epoch(3),
            ciphertext: vec![6; 200],
        }),
    ];
    for tx in txs {
        let signed = SignedTx::sign(&key, &chain_id, 0, tx);
        let b = signed.encode();
        assert_eq!(SignedTx::decode(&b).unwrap(), signed);
        assert!(signed.verify(&chain_id));
        for cut in 0..b.len() {
            assert!(SignedTx::decode(&b[..cut]).is_err(), "cut {cut}");
        }
        assert!(SignedTx::decode(&[b.clone(), vec![0]].concat()).is_err());
        // A flipped bit after the signer and nonce (in the transaction itself).
        let mut flipped = b.clone();
        flipped[4 + 33 + 8 + 40] ^= 1;
        if let Ok(t) = SignedTx::decode(&flipped) {
            assert!(!t.verify(&chain_id));
        }
    }
    let over =
        |tx: Tx| SignedTx::decode(&SignedTx::sign(&key, &chain_id, 0, tx).encode()).unwrap_err();
    assert!(matches!(
        over(Tx::DeployContract {
            code: vec![0; MAX_CODE + 1],
            salt: [0; 32]
        }),
        DecodeError::TooLong { .. }
    ));
    assert!(matches!(
        over(Tx::Command(Command {
            contract: [0; 32],
            epoch: Epoch(0),
            ciphertext: vec![0; MAX_COMMAND + 1],
        })),
        DecodeError::TooLong { .. }
    ));
}

/// A light client that pinned the genesis hash takes that block without its signature
/// (the pin covers the same bytes) and refuses any other block as genesis, however
/// well signed; the full node's constructor still wants the signature.
#[test]
fn pinned_genesis_is_taken_by_its_hash_alone() {
    use chain::state::State;
    use chain::types::Genesis;
    let authority = chain::random_key();
    let governance = chain::random_key();
    let genesis = |timestamp| {
        State::genesis_block(
            Genesis {
                authority: public_key(authority.verifying_key()),
                governance: public_key(governance.verifying_key()),
                timestamp,
                evidence: chain::types::EvidenceRule::intel(),
            },
            &authority,
        )
    };
    let pinned = genesis(1);
    let pin = pinned.hash();
    let pinned_state = State::from_pinned_genesis(&pinned, &pin).unwrap();
    assert_eq!(
        pinned_state.chain_id(),
        State::from_genesis(&pinned).unwrap().chain_id()
    );
    let mut unsigned = pinned.clone();
    unsigned.signature = vec![0; 64];
    assert!(State::from_genesis(&unsigned).is_err());
    assert!(State::from_pinned_genesis(&unsigned, &pin).is_ok());
    let other = genesis(2);
    assert!(State::from_genesis(&other).is_ok());
    assert!(matches!(
        State::from_pinned_genesis(&other, &pin),
        Err(RuleError::Block { height: 0, .. })
    ));
}

/// Every header commits to the registry's facts after its transactions: a block whose
/// state root is not that — even one the authority signed — is refused by every replaying
/// client, and so is a genesis whose root is not its rule's. What a header commits to is
/// proven fact by fact against its root, values and absences alike.
#[test]
fn a_header_commits_to_the_state_and_proves_its_facts() {
    use chain::facts::Fact;
    use chain::state::State;
    use chain::types::Genesis;
    let (authority, governance) = (chain::random_key(), chain::random_key());
    let params = Genesis {
        authority: public_key(authority.verifying_key()),
        governance: public_key(governance.verifying_key()),
        timestamp: 1,
        evidence: chain::types::EvidenceRule::intel(),
    };
    let genesis = State::genesis_block(params.clone(), &authority);
    let mut state = State::from_genesis(&genesis).unwrap();
    assert_eq!(state.state_root(), genesis.state_root);
    let mut lying = genesis.clone();
    lying.state_root = [7; 32];
    let lying = lying.seal(&authority);
    assert!(matches!(
        State::from_genesis(&lying),
        Err(RuleError::Block { height: 0, .. })
    ));
    let tx = SignedTx::sign(
        &governance,
        &state.chain_id(),
        0,
        Tx::AddMeasurement {
            measurement: vec![9; 32],
            role: chain::types::Role::Runtime,
        },
    );
    let block = state.seal_next(vec![tx], 2, &authority).unwrap();
    let mut wrong = block.clone();
    wrong.state_root = genesis.state_root;
    let wrong = wrong.seal(&authority);
    let e = state.clone().apply_block(&wrong).unwrap_err();
    assert!(e.to_string().contains("state root"), "{e}");
    state.apply_block(&block).unwrap();
    assert_eq!(state.state_root(), block.state_root);
    // The new measurement is proven in its role against the header; another is proven
    // absent; neither proof serves the other claim.
    let allowed = Fact::Allowed(vec![9; 32]);
    let (value, proof) = state.prove(&allowed).unwrap();
    let value = value.unwrap();
    assert_eq!(value[0], chain::types::Role::Runtime.code());
    chain::commit::verify(&block.state_root, &allowed.key(), Some(&value), &proof).unwrap();
    assert!(
        chain::commit::verify(&genesis.state_root, &allowed.key(), Some(&value), &proof).is_err()
    );
    let other = Fact::Allowed(vec![8; 32]);
    let (none, absent) = state.prove(&other).unwrap();
    assert!(none.is_none());
    chain::commit::verify(&block.state_root, &other.key(), None, &absent).unwrap();
    assert!(chain::commit::verify(&block.state_root, &allowed.key(), None, &absent).is_err());
    // The rule is a fact from genesis on.
    let (rule, proof) = state.prove(&Fact::Rule).unwrap();
    assert_eq!(rule, state.fact(&Fact::Rule));
    chain::commit::verify(
        &block.state_root,
        &Fact::Rule.key(),
        rule.as_deref(),
        &proof,
    )
    .unwrap();
}
