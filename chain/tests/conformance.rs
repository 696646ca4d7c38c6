//! One conformance suite for every `Registry` backend: each rule, its violation (with
//! its own error), and the events. Run against the embedded ledger in-process and
//! through a light client over gRPC.
#![cfg(feature = "ledger")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod suite;

use chain::grpc::LightClient;
use chain::ledger::Ledger;
use chain::registry::Registry;
use chain::types::public_key;
use p256::ecdsa::SigningKey;
use std::sync::Arc;

fn now() -> i64 {
    1_760_000_000
}

/// A backend taking this crate's signed transactions: accounts are P-256 keys and a
/// worker's account is its identity key.
struct Signed<R> {
    registry: R,
    governance: SigningKey,
    sim: phalanx_dcap_sim::SimTee,
    chain_id: [u8; 32],
}

impl<R: Registry<Account = SigningKey>> suite::Fixture for Signed<R> {
    type R = R;
    fn registry(&self) -> &R {
        &self.registry
    }
    fn governance(&self) -> &SigningKey {
        &self.governance
    }
    async fn account(&mut self) -> (SigningKey, SigningKey) {
        let k = chain::random_key();
        (k.clone(), k)
    }
    fn sim(&self) -> &phalanx_dcap_sim::SimTee {
        &self.sim
    }
    fn chain_id(&self) -> [u8; 32] {
        self.chain_id
    }
}

/// A ledger in `dir` whose genesis trusts `sim`'s root.
fn ledger(
    dir: &std::path::Path,
    governance: &SigningKey,
    sim: &phalanx_dcap_sim::SimTee,
) -> Ledger {
    Ledger::open(
        dir,
        chain::random_key(),
        public_key(governance.verifying_key()),
        chain::sim::evidence_rule(sim),
        now,
    )
    .unwrap()
}

#[tokio::test]
async fn embedded_ledger_in_process() {
    let dir = tempfile::tempdir().unwrap();
    let governance = chain::random_key();
    let sim = suite::sim();
    let ledger = ledger(dir.path(), &governance, &sim);
    let chain_id = ledger.state().unwrap().chain_id();
    let mut f = Signed {
        registry: ledger,
        governance,
        sim,
        chain_id,
    };
    let (worker, stranger) = suite::suite(&mut f).await;
    suite::contracts(&mut f, worker, stranger).await;
}

/// Issue 26, item 5: the ledger stores its state tree and records with every block, so a
/// reopened ledger replays nothing and is exactly the replayed one (every fact, event,
/// sequence number and contract), proves facts at old heights from storage, goes on
/// identically, keeps only recent tree versions in memory; format-3 and format-4 data
/// are migrated (format 4 to the round outcomes a replay computes),
/// and an edited record is refused by name.
#[tokio::test]
async fn a_reopened_ledger_is_the_replayed_one() {
    use chain::facts::Fact;
    let dir = tempfile::tempdir().unwrap();
    let (governance, authority) = (chain::random_key(), chain::random_key());
    let sim = suite::sim();
    let rule = chain::sim::evidence_rule(&sim);
    let open = |dir: &std::path::Path| {
        Ledger::open(
            dir,
            authority.clone(),
            public_key(governance.verifying_key()),
            rule.clone(),
            now,
        )
    };
    let ledger = open(dir.path()).unwrap();
    let chain_id = ledger.state().unwrap().chain_id();
    let mut f = Signed {
        registry: ledger,
        governance: governance.clone(),
        sim,
        chain_id,
    };
    let (worker, stranger) = suite::suite(&mut f).await;
    let (id, _) = suite::contracts(&mut f, worker, stranger).await;
    drop(f);
    let same = |a: &chain::state::State, b: &chain::state::State| {
        assert_eq!(
            (a.height(), a.last_hash(), a.state_root()),
            (b.height(), b.last_hash(), b.state_root())
        );
        assert_eq!(
            a.workers().collect::<Vec<_>>(),
            b.workers().collect::<Vec<_>>()
        );
        assert_eq!(a.allowed(), b.allowed());
        assert_eq!(a.gatekeepers(), b.gatekeepers());
        assert_eq!(a.epochs(), b.epochs());
        assert_eq!(a.rotation(), b.rotation());
        assert_eq!(a.evidence_rule(), b.evidence_rule());
        assert_eq!(
            a.contracts().collect::<Vec<_>>(),
            b.contracts().collect::<Vec<_>>()
        );
        // Where workers serve is a node record, not a fact: reopened as replayed.
        assert!(!a.serving(&id).is_empty());
        assert_eq!(a.serving(&id), b.serving(&id));
        let g = public_key(governance.verifying_key());
        assert_eq!(a.nonce(&g), b.nonce(&g));
        assert_eq!(a.committee_threshold(), b.committee_threshold());
        // The outcomes evidence of misbehaviour is checked against, and the faults.
        assert_eq!(a.round_outcomes(), b.round_outcomes());
        assert!(!a.round_outcomes().is_empty());
        for e in 0..4 {
            let e = phalanx_types::Epoch(e);
            assert_eq!(a.is_retired(e), b.is_retired(e));
        }
        for c in a.contracts() {
            assert_eq!(a.nonce(&c.deployer), b.nonce(&c.deployer));
        }
        for w in a.workers() {
            assert_eq!(a.nonce(&w.identity_key), b.nonce(&w.identity_key));
            let fact = Fact::Worker(w.identity_key.clone());
            assert_eq!(a.fact(&fact), b.fact(&fact));
        }
    };
    let replayed = Ledger::verify_dir(dir.path()).unwrap();
    let reopened = open(dir.path()).unwrap();
    same(&reopened.state().unwrap(), &replayed);
    // Events come from storage; the state in memory keeps only the newest block's.
    assert_eq!(reopened.events(0).unwrap(), replayed.events_from(0));
    assert_eq!(
        reopened.events(replayed.height() - 3).unwrap(),
        replayed.events_from(replayed.height() - 3)
    );
    assert!(reopened.state().unwrap().events_from(0).len() < replayed.events_from(0).len());
    assert!(reopened.state().unwrap().contract(&id).is_some());
    // Old heights still prove, from storage.
    let genesis = reopened.blocks(0, 1).unwrap()[0].hash();
    for h in [1, 5, replayed.height() - 1] {
        let p = reopened
            .prove(h, &[Fact::Rule.key(), Fact::Contract(id).key()])
            .unwrap();
        assert_eq!(p.verify(&genesis).unwrap().header.height, h);
    }
    // It goes on as the replayed chain would, and memory keeps recent versions only.
    let add = |ledger: &Ledger, i: u32| {
        let st = ledger.state().unwrap();
        let tx = chain::types::SignedTx::sign(
            &governance,
            &st.chain_id(),
            st.nonce(&public_key(governance.verifying_key())),
            chain::types::Tx::AddMeasurement {
                measurement: [i.to_be_bytes().as_slice(), &[7; 28]].concat(),
                role: chain::types::Role::App,
            },
        );
        ledger.submit(tx).unwrap();
    };
    for i in 0..150 {
        add(&reopened, i);
    }
    let (nodes_at_150, _) = reopened.state().unwrap().tree_stored();
    for i in 150..450 {
        add(&reopened, i);
    }
    let (nodes_at_450, _) = reopened.state().unwrap().tree_stored();
    assert!(
        nodes_at_450 < nodes_at_150 * 3 / 2,
        "memory grows with the chain: {nodes_at_150} nodes, then {nodes_at_450}"
    );
    let state = reopened.state().unwrap();
    drop(reopened);
    same(&state, &Ledger::verify_dir(dir.path()).unwrap());
    same(&state, &open(dir.path()).unwrap().state().unwrap());

    // Format 3 (blocks and the command index, no stored state): migrated on opening.
    {
        let o = rocksdb::Options::default();
        let tables = rocksdb::DB::list_cf(&o, dir.path()).unwrap();
        let mut db = rocksdb::DB::open_cf(&o, dir.path(), &tables).unwrap();
        for t in ["tree-nodes", "tree-values", "records"] {
            db.drop_cf(t).unwrap();
        }
        db.put_cf(db.cf_handle("meta").unwrap(), b"format", 3u32.to_be_bytes())
            .unwrap();
    }
    same(&state, &open(dir.path()).unwrap().state().unwrap());
    same(&state, &open(dir.path()).unwrap().state().unwrap());

    // An edited record is refused by name: the command log against the tree, the
    // contract's code hash against its module.
    let flip = |key: &[u8], at: usize| {
        let o = rocksdb::Options::default();
        let tables = rocksdb::DB::list_cf(&o, dir.path()).unwrap();
        let db = rocksdb::DB::open_cf(&o, dir.path(), &tables).unwrap();
        let records = db.cf_handle("records").unwrap();
        let mut v = db.get_cf(records, key).unwrap().unwrap();
        v[at] ^= 1;
        db.put_cf(records, key, v).unwrap();
    };
    for (fact, at) in [(Fact::Commands(id), 39), (Fact::Contract(id), 40)] {
        let key = [b"f".as_slice(), &fact.key()].concat();
        flip(&key, at);
        let e = open(dir.path()).unwrap_err();
        assert!(e.to_string().contains("stored state"), "{e}");
        flip(&key, at);
    }
    // A record deleted: the tree holds a fact the records lack.
    {
        let o = rocksdb::Options::default();
        let tables = rocksdb::DB::list_cf(&o, dir.path()).unwrap();
        let db = rocksdb::DB::open_cf(&o, dir.path(), &tables).unwrap();
        let key = [b"f".as_slice(), &Fact::Commands(id).key()].concat();
        let records = db.cf_handle("records").unwrap();
        let kept = db.get_cf(records, &key).unwrap().unwrap();
        db.delete_cf(records, &key).unwrap();
        drop(db);
        let e = open(dir.path()).unwrap_err();
        assert!(e.to_string().contains("facts recorded"), "{e}");
        let db = rocksdb::DB::open_cf(&o, dir.path(), &tables).unwrap();
        db.put_cf(db.cf_handle("records").unwrap(), &key, kept)
            .unwrap();
    }
    // Put back, it opens again.
    same(&state, &open(dir.path()).unwrap().state().unwrap());
    // A store from before round outcomes were kept (format 4: its round records empty)
    // is migrated on opening, to the outcomes a replay computes: every node then judges
    // evidence against the same outcomes.
    {
        let o = rocksdb::Options::default();
        let tables = rocksdb::DB::list_cf(&o, dir.path()).unwrap();
        let db = rocksdb::DB::open_cf(&o, dir.path(), &tables).unwrap();
        let records = db.cf_handle("records").unwrap();
        let rounds: Vec<Vec<u8>> = db
            .prefix_iterator_cf(records, b"p")
            .map(|item| item.unwrap().0.to_vec())
            .take_while(|k| k.first() == Some(&b'p'))
            .collect();
        assert!(!rounds.is_empty());
        for k in rounds {
            db.put_cf(records, k, b"").unwrap();
        }
        db.put_cf(db.cf_handle("meta").unwrap(), b"format", 4u32.to_be_bytes())
            .unwrap();
    }
    let migrated = open(dir.path()).unwrap();
    same(
        &migrated.state().unwrap(),
        &Ledger::verify_dir(dir.path()).unwrap(),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_ledger_through_a_light_client() {
    let dir = tempfile::tempdir().unwrap();
    let governance = chain::random_key();
    let sim = suite::sim();
    let ledger = Arc::new(ledger(dir.path(), &governance, &sim));
    let chain_id = ledger.state().unwrap().chain_id();
    let genesis = ledger.blocks(0, 1).unwrap()[0].hash();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(chain::grpc::serve(
        listener,
        ledger.clone(),
        std::future::pending(),
    ));
    let client = LightClient::pinned(&url, genesis);
    let mut f = Signed {
        registry: client,
        governance,
        sim,
        chain_id,
    };
    let (worker, stranger) = suite::suite(&mut f).await;
    let (id, command) = suite::contracts(&mut f, worker, stranger).await;
    command_feed(&f.registry, &ledger, id, command).await;
    bad_requests(&url, id).await;
    light_reads(&url, &ledger, id, &f.governance).await;
    // A second client, starting from nothing, rebuilds the same state.
    let fresh = LightClient::new(&url).sync().await.unwrap();
    let local = ledger.state().unwrap();
    assert_eq!(fresh.height(), local.height());
    assert_eq!(fresh.last_hash(), local.last_hash());
    // A client pinned to another chain refuses this one.
    let e = LightClient::pinned(&url, [9; 32]).sync().await.unwrap_err();
    assert!(e.to_string().contains("pinned"), "{e}");
}

/// A worker serving one contract follows its commands alone: every page verified against
/// the pinned genesis; a page with a command left out, added, changed or reordered, or
/// read from the wrong place, is refused.
async fn command_feed(
    client: &LightClient,
    ledger: &chain::ledger::Ledger,
    id: [u8; 32],
    command: chain::types::Command,
) {
    use chain::proof::ProofError;
    use chain::types::{SignedTx, Tx};
    // Five more commands, from accounts of their own, some sharing blocks.
    let chain_id = ledger.state().unwrap().chain_id();
    for _ in 0..5 {
        let tx = SignedTx::sign(
            &chain::random_key(),
            &chain_id,
            0,
            Tx::Command(command.clone()),
        );
        ledger.submit(tx).unwrap();
    }
    let want = ledger.state().unwrap().contract(&id).unwrap().clone();
    assert_eq!(want.commands, 7);
    // All at once, then page by page: the same log.
    let (all, page) = client.commands(&id, 0, &[0; 32], 100).await.unwrap();
    assert_eq!((all.len(), page.count, page.head), (7, 7, want.command_log));
    let (mut from, mut head, mut pages) = (0, [0u8; 32], 0);
    while from < 7 {
        let (got, page) = client.commands(&id, from, &head, 2).await.unwrap();
        assert!(!got.is_empty());
        assert_eq!(got[..], all[from as usize..from as usize + got.len()]);
        (from, head, pages) = (page.count, page.head, pages + 1);
    }
    assert!(pages >= 3, "{pages} pages");
    // Nothing new: an empty page proven at the latest block.
    let (none, page) = client.commands(&id, 7, &head, 10).await.unwrap();
    assert!(none.is_empty());
    assert_eq!(page.count, 7);
    // A head that is not the log's at `from` is refused, as is another contract's feed.
    assert!(client.commands(&id, 0, &[1; 32], 100).await.is_err());
    assert!(client.commands(&id, 3, &[0; 32], 100).await.is_err());
    assert!(
        client
            .commands(&[0xee; 32], 0, &[0; 32], 100)
            .await
            .is_err()
    );
    // A contract deployed without a command yet: an empty page holds (its log is
    // empty), a page from elsewhere does not.
    let deployer = chain::random_key();
    let code = ledger
        .state()
        .unwrap()
        .contract(&id)
        .map(|c| c.code.clone())
        .unwrap();
    ledger
        .submit(SignedTx::sign(
            &deployer,
            &chain_id,
            0,
            Tx::DeployContract {
                code: code.to_vec(),
                salt: [7; 32],
            },
        ))
        .unwrap();
    let idle = phalanx_types::contract::contract_id(
        &chain_id,
        &chain::types::public_key(deployer.verifying_key()),
        &phalanx_types::contract::code_hash(&code),
        &[7; 32],
    );
    let (none, page) = client.commands(&idle, 0, &[0; 32], 10).await.unwrap();
    assert_eq!((none.len(), page.count, page.head), (0, 0, [0; 32]));
    assert!(client.commands(&idle, 1, &[0; 32], 10).await.is_err());
    // A lying node: each edit of a genuine page is refused by the log.
    let genesis = ledger.blocks(0, 1).unwrap()[0].hash();
    let good = ledger.commands(&id, 0, 100, 0).unwrap();
    good.verify(&genesis, &id, 0, &[0; 32]).unwrap();
    type Edit = Box<dyn Fn(&mut chain::proof::CommandPage)>;
    let edits: Vec<(&str, Edit)> = vec![
        ("one left out", Box::new(|p| drop(p.commands.remove(3)))),
        ("the last left out", Box::new(|p| drop(p.commands.pop()))),
        (
            "one added",
            Box::new(|p| p.commands.push(p.commands[0].clone())),
        ),
        ("two swapped", Box::new(|p| p.commands.swap(1, 2))),
        ("a time changed", Box::new(|p| p.commands[4].timestamp += 1)),
        ("a height changed", Box::new(|p| p.commands[0].height -= 1)),
        (
            "a ciphertext changed",
            Box::new(|p| {
                if let Tx::Command(c) = &mut p.commands[2].tx.tx {
                    c.ciphertext[0] ^= 1;
                }
            }),
        ),
    ];
    for (what, edit) in edits {
        let mut bad = good.clone();
        edit(&mut bad);
        assert!(
            matches!(
                bad.verify(&genesis, &id, 0, &[0; 32]),
                Err(ProofError::Feed(_))
            ),
            "{what}"
        );
    }
}

/// What a worker reads without the chain — the gatekeeper set with each member's
/// standing, the epochs, a contract's code, the effect of its own transactions — is what
/// the full state says; a checkpointed client refuses a header that does not extend the
/// last one it verified.
async fn light_reads(
    url: &str,
    ledger: &chain::ledger::Ledger,
    id: [u8; 32],
    governance: &SigningKey,
) {
    use chain::facts::Fact;
    use chain::view::GatekeeperSet;
    let dir = tempfile::tempdir().unwrap();
    let head = dir.path().join("head");
    let genesis = ledger.blocks(0, 1).unwrap()[0].hash();
    let client = LightClient::pinned(url, genesis).with_checkpoint(&head);
    let state = ledger.state().unwrap();
    for at in [now(), now() + 30 * 86_400] {
        let (set, _) = client.gatekeeper_set(&[], at).await.unwrap();
        assert_eq!(set, GatekeeperSet::of_state(&state, at));
        assert!(!set.members.is_empty());
    }
    let proven = client.facts(&[Fact::Contract(id)]).await.unwrap();
    assert_eq!(proven.header.height + 1, state.height());
    assert_eq!(client.epochs(&proven).await.unwrap(), state.epochs());
    assert_eq!(
        client.contract_code(&proven, &id).await.unwrap(),
        *state.contract(&id).unwrap().code
    );
    assert!(client.contract_code(&proven, &[0xee; 32]).await.is_err());
    // A transaction's effect, proven; a refused one names its rule.
    let m = vec![0x42; 32];
    let tx = chain::types::Tx::AddMeasurement {
        measurement: m.clone(),
        role: chain::types::Role::App,
    };
    let (height, proven) = client
        .submit_proven(governance, tx.clone(), &[Fact::Allowed(m.clone())])
        .await
        .unwrap();
    let allowed = proven.allowed(&m).unwrap().unwrap();
    assert_eq!(allowed.added_in, height);
    let e = client
        .submit_proven(&chain::random_key(), tx, &[])
        .await
        .unwrap_err();
    assert!(e.to_string().contains("refused"), "{e}");
    // The checkpoint names the last verified head: a client that saw another block at
    // that height, or a later one, refuses this node's header.
    let saved = std::fs::read(&head).unwrap();
    let mut forked = saved.clone();
    forked[8] ^= 1;
    std::fs::write(&head, &forked).unwrap();
    let e = LightClient::pinned(url, genesis)
        .with_checkpoint(&head)
        .facts(&[])
        .await
        .unwrap_err();
    assert!(e.to_string().contains("does not extend"), "{e}");
    // The command feed too, when the page's header is the newest.
    let count = ledger.state().unwrap().contract(&id).unwrap().commands;
    let log = ledger.state().unwrap().contract(&id).unwrap().command_log;
    let e = LightClient::pinned(url, genesis)
        .with_checkpoint(&head)
        .commands(&id, count, &log, 10)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("does not extend"), "{e}");
    let mut ahead = saved.clone();
    ahead[..8]
        .copy_from_slice(&(u64::from_be_bytes(saved[..8].try_into().unwrap()) + 5).to_be_bytes());
    std::fs::write(&head, &ahead).unwrap();
    assert!(
        LightClient::pinned(url, genesis)
            .with_checkpoint(&head)
            .facts(&[])
            .await
            .is_err()
    );
    // An older head of this chain is extended (proven by the history fact), by the
    // feed's newest page as by a proof of facts.
    let mut older = saved.clone();
    let old = 2u64;
    older[..8].copy_from_slice(&(old + 1).to_be_bytes());
    older[8..40].copy_from_slice(&ledger.blocks(old, 1).unwrap()[0].hash());
    std::fs::write(&head, &older).unwrap();
    LightClient::pinned(url, genesis)
        .with_checkpoint(&head)
        .commands(&id, count, &log, 10)
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(&head).unwrap()[..8],
        (ledger.state().unwrap().height()).to_be_bytes()
    );
    let mut older = saved.clone();
    let old = 3u64;
    older[..8].copy_from_slice(&(old + 1).to_be_bytes());
    older[8..40].copy_from_slice(&ledger.blocks(old, 1).unwrap()[0].hash());
    std::fs::write(&head, &older).unwrap();
    LightClient::pinned(url, genesis)
        .with_checkpoint(&head)
        .facts(&[])
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(&head).unwrap()[..8],
        (ledger.state().unwrap().height()).to_be_bytes()
    );
    // The lean encoding leaves out exactly the genesis block and decodes with the
    // client's copy; a copy that is not the pinned genesis is refused by the check.
    use chain::proof::{CommandPage, Lean as _};
    let page = ledger.commands(&id, 0, 100, 0).unwrap();
    let g = ledger.blocks(0, 1).unwrap()[0].clone();
    let lean = page.to_lean_bytes();
    assert_eq!(
        lean.len() + g.encode().len(),
        phalanx_types::codec::Codec::to_bytes(&page).len()
    );
    let back = CommandPage::from_lean_bytes(&lean, &g).unwrap();
    assert_eq!(back, page);
    back.verify(&genesis, &id, 0, &[0; 32]).unwrap();
    let mut other = g.clone();
    other.timestamp += 1;
    let forged = CommandPage::from_lean_bytes(&lean, &other).unwrap();
    assert!(forged.verify(&genesis, &id, 0, &[0; 32]).is_err());
    // The node serves either form, as asked.
    use phalanx_proto::chain::v1 as pb;
    let mut c = pb::chain_client::ChainClient::connect(url.to_owned())
        .await
        .unwrap();
    let mut both = Vec::new();
    for lean in [false, true] {
        let req = pb::ProveRequest {
            height: chain::proof::LATEST,
            keys: vec![Fact::Rule.key()],
            lean,
        };
        both.push(c.prove(req).await.unwrap().into_inner().proof);
    }
    let (full, lean) = (&both[0], &both[1]);
    assert_eq!(full.len(), lean.len() + g.encode().len());
    assert_eq!(
        chain::proof::HeaderProof::from_lean_bytes(lean, &g).unwrap(),
        <chain::proof::HeaderProof as phalanx_types::codec::Codec>::from_bytes(full).unwrap()
    );
}

/// The node's proof and feed endpoints refuse bad requests by name, and a client refuses
/// what does not decode.
async fn bad_requests(url: &str, id: [u8; 32]) {
    use phalanx_proto::chain::v1 as pb;
    let mut c = pb::chain_client::ChainClient::connect(url.to_owned())
        .await
        .unwrap();
    fn code<T>(r: Result<tonic::Response<T>, tonic::Status>) -> tonic::Code {
        r.map(|_| ()).unwrap_err().code()
    }
    let too_many = vec![b"rule".to_vec(); chain::proof::MAX_FACTS + 1];
    assert_eq!(
        code(
            c.prove(pb::ProveRequest {
                height: 1,
                keys: too_many,
                ..Default::default()
            })
            .await
        ),
        tonic::Code::InvalidArgument
    );
    // A height not reached is refused; the largest one names the newest block.
    let newest = c
        .head(pb::HeadRequest {
            contracts: vec![id.to_vec(), vec![0x77; 32]],
            account: Vec::new(),
        })
        .await
        .unwrap()
        .into_inner();
    // The contract's command count as the hint says it, and none for one that does not
    // exist.
    assert_eq!(newest.commands.len(), 2);
    assert!(newest.commands[0] > 0);
    assert_eq!(newest.commands[1], 0);
    assert_eq!(
        code(
            c.prove(pb::ProveRequest {
                height: newest.height + 1,
                keys: vec![b"rule".to_vec()],
                ..Default::default()
            })
            .await
        ),
        tonic::Code::FailedPrecondition
    );
    let latest = c
        .prove(pb::ProveRequest {
            height: chain::proof::LATEST,
            keys: vec![b"rule".to_vec()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .proof;
    let latest =
        <chain::proof::HeaderProof as phalanx_types::codec::Codec>::from_bytes(&latest).unwrap();
    assert_eq!(latest.header.header.height, newest.height);
    for contracts in [
        vec![vec![7; 31]],
        vec![vec![7; 32]; chain::grpc::MAX_HEAD_CONTRACTS + 1],
    ] {
        assert_eq!(
            code(
                c.head(pb::HeadRequest {
                    contracts,
                    account: Vec::new()
                })
                .await
            ),
            tonic::Code::InvalidArgument
        );
    }
    for contract in [Vec::new(), vec![7; 31], vec![7; 33]] {
        assert_eq!(
            code(
                c.get_commands(pb::GetCommandsRequest {
                    contract,
                    from: 0,
                    limit: 10,
                    ..Default::default()
                })
                .await
            ),
            tonic::Code::InvalidArgument
        );
    }
    // A page from far beyond the log is empty, and proven so.
    let page = c
        .get_commands(pb::GetCommandsRequest {
            contract: id.to_vec(),
            from: u64::MAX,
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .page;
    let page =
        <chain::proof::CommandPage as phalanx_types::codec::Codec>::from_bytes(&page).unwrap();
    assert!(page.commands.is_empty());
}
