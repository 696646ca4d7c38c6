//! A served contract runs its command feed's verified pages: two executors reach the
//! same state and root; commands that do not open (another sender, another nonce, bad
//! bytes, no key) or that the contract refuses are skipped and change nothing; queries
//! see the caller; sealed checkpoints restore exactly and refuse any edit.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use chain::types::{Block, Command, SignedTx, Tx, public_key};
use common::page;
use p256::ecdsa::SigningKey;
use phalanx_contract::{Limits, Runtime};
use phalanx_types::Epoch;
use pruntime::executor::Executor;
use pruntime::protocol::{ContractKeys, seal_command};
use pruntime::state_root::StateRoot;

const COUNTER: &[u8] = include_bytes!("../guest/wasm/counter.wasm");
const ID: [u8; 32] = [0xc0; 32];
const CHAIN: [u8; 32] = [0xcc; 32];

fn keys() -> ContractKeys {
    ContractKeys::derive(&[0x5e; 32]).unwrap()
}

fn executor(rt: &Runtime) -> Executor {
    let mut e = Executor::new(ID, rt.compile(COUNTER).unwrap(), keys().state_root_key());
    e.add_keys(Epoch(0), keys());
    e
}

/// A command tx from `user` with sequence `nonce`, sealed for (`sealed_as`, `sealed_nonce`).
fn command(user: &SigningKey, nonce: u64, sealed_as: &[u8], sealed_nonce: u64) -> SignedTx {
    let k = keys().published(ID, Epoch(0));
    let ciphertext =
        seal_command(&k.encryption_key, &ID, sealed_as, sealed_nonce, b"bump").unwrap();
    SignedTx::sign(
        user,
        &CHAIN,
        nonce,
        Tx::Command(Command {
            contract: ID,
            epoch: Epoch(0),
            ciphertext,
        }),
    )
}

fn block(height: u64, txs: Vec<SignedTx>) -> Block {
    Block {
        height,
        prev: [height as u8; 32],
        timestamp: 1_700_000_000,
        genesis: None,
        // The executor reads transactions; it does not check the registry's commitments.
        chain_id: [0; 32],
        tx_root: [0; 32],
        state_root: [0; 32],
        txs,
        signature: Vec::new(),
    }
    .seal(&chain::random_key())
}

/// Applies `b`'s page of the feed; the skipped commands' places in the log.
fn apply(e: &mut Executor, rt: &Runtime, b: &Block) -> Vec<(u64, u64)> {
    let (commands, page) = page(e, b);
    e.apply_commands(rt, &commands, &page)
        .unwrap()
        .into_iter()
        .map(|s| (s.height, s.sequence))
        .collect()
}

fn count(e: &Executor, rt: &Runtime, user: &SigningKey) -> (u64, u64) {
    let out = e
        .query(rt, &public_key(user.verifying_key()), b"", 1_000_000)
        .unwrap()
        .output;
    (
        u64::from_le_bytes(out[..8].try_into().unwrap()),
        u64::from_le_bytes(out[8..].try_into().unwrap()),
    )
}

#[test]
fn commands_replay_to_the_same_state_and_bad_ones_change_nothing() {
    let rt = Runtime::new(Limits::default());
    let (alice, bob) = (chain::random_key(), chain::random_key());
    let (a, b) = (
        public_key(alice.verifying_key()),
        public_key(bob.verifying_key()),
    );
    let mut other_contract = command(&alice, 9, &a, 9);
    if let Tx::Command(c) = &mut other_contract.tx {
        c.contract = [0xdd; 32];
    }
    let mut garbage = command(&bob, 2, &b, 2);
    if let Tx::Command(c) = &mut garbage.tx {
        c.ciphertext = vec![1, 2, 3];
    }
    let mut other_epoch = command(&bob, 3, &b, 3);
    if let Tx::Command(c) = &mut other_epoch.tx {
        c.epoch = Epoch(1);
    }
    let blocks = vec![
        block(1, vec![command(&alice, 0, &a, 0), command(&bob, 0, &b, 0)]),
        // Sealed for another sender, for another nonce: copies do not open.
        block(2, vec![command(&bob, 1, &a, 0), command(&alice, 1, &a, 0)]),
        block(
            3,
            vec![
                garbage,
                other_contract,
                other_epoch,
                command(&alice, 2, &a, 2),
            ],
        ),
    ];
    let (mut one, mut two) = (executor(&rt), executor(&rt));
    let mut skipped = Vec::new();
    for b in &blocks {
        skipped.extend(apply(&mut one, &rt, b));
        apply(&mut two, &rt, b);
    }
    // Block 2: both copies skipped (commands 2 and 3 of the log); block 3: garbage and
    // another epoch's key (4 and 5; the other contract's command is not in this log).
    assert_eq!(skipped, vec![(2, 2), (2, 3), (3, 4), (3, 5)]);
    assert_eq!(one.log().0, 7);
    assert_eq!(one.executed(), 3);
    assert_eq!(one.root(), two.root());
    assert_eq!(
        one.root(),
        StateRoot::of(one.state(), keys().state_root_key())
            .unwrap()
            .root()
    );
    assert_eq!(one.position(), (3, blocks[2].hash()));
    assert_eq!(count(&one, &rt, &alice), (2, 3));
    assert_eq!(count(&one, &rt, &bob), (1, 3));
    // An old page again is refused whole and changes nothing.
    let root = one.root();
    let (old, _) = page(&executor(&rt), &blocks[0]);
    let (_, here) = page(&one, &blocks[2]);
    assert!(one.apply_commands(&rt, &old, &here).is_err());
    assert_eq!(one.root(), root);
}

#[test]
fn checkpoints_restore_exactly_and_refuse_edits() {
    let rt = Runtime::new(Limits::default());
    let alice = chain::random_key();
    let a = public_key(alice.verifying_key());
    let mut e = executor(&rt);
    apply(&mut e, &rt, &block(1, vec![command(&alice, 0, &a, 0)]));
    apply(&mut e, &rt, &block(2, vec![command(&alice, 1, &a, 1)]));
    let sealed = e.checkpoint(Epoch(0)).unwrap();

    let mut restored = executor(&rt);
    restored.restore(&sealed).unwrap();
    assert_eq!(restored.position(), e.position());
    assert_eq!(restored.log(), e.log());
    assert_eq!(restored.root(), e.root());
    assert_eq!(restored.state(), e.state());
    assert_eq!(count(&restored, &rt, &alice), (2, 2));
    // It remembers each sender's nonce: a page replaying alice's last one is refused.
    let (replay, at) = page(&restored, &block(3, vec![command(&alice, 1, &a, 1)]));
    assert!(
        restored
            .apply_commands(&rt, &replay, &at)
            .unwrap_err()
            .contains("replays")
    );

    // Any edited byte, a cut, or another contract's keys: refused, nothing changes.
    for i in (0..sealed.len()).step_by(7) {
        let mut bad = sealed.clone();
        bad[i] ^= 0x40;
        let mut fresh = executor(&rt);
        assert!(fresh.restore(&bad).is_err(), "byte {i}");
        assert_eq!(fresh.position(), (0, [0; 32]));
    }
    assert!(executor(&rt).restore(&sealed[..sealed.len() - 1]).is_err());
    let mut stranger = Executor::new(ID, rt.compile(COUNTER).unwrap(), &[1; 32]);
    stranger.add_keys(Epoch(0), ContractKeys::derive(&[1; 32]).unwrap());
    assert!(stranger.restore(&sealed).is_err());
    // Under the right keys but another root key: refused by name.
    let mut rekeyed = Executor::new(ID, rt.compile(COUNTER).unwrap(), &[1; 32]);
    rekeyed.add_keys(Epoch(0), keys());
    assert!(matches!(
        rekeyed.restore(&sealed),
        Err(pruntime::executor::CheckpointError::OtherRootKey)
    ));

    // A worker that holds only the sealing epoch's keys (the older ones retired) starts
    // from it: the root key travels inside, so the root and the state are the same.
    assert_eq!(Executor::checkpoint_epoch(&sealed), Some(Epoch(0)));
    let joined =
        Executor::from_checkpoint(ID, rt.compile(COUNTER).unwrap(), &keys(), &sealed).unwrap();
    assert_eq!(
        (joined.log(), joined.root(), joined.state()),
        (e.log(), e.root(), e.state())
    );
    let other = ContractKeys::derive(&[1; 32]).unwrap();
    assert!(Executor::from_checkpoint(ID, rt.compile(COUNTER).unwrap(), &other, &sealed).is_err());
}

const AUCTION: &[u8] = include_bytes!("../guest/wasm/auction.wasm");

/// NH1 of the 2026-12 follow-up review: the sealed-bid auction's state root and a
/// bidder's answer are public (the root in every signed statement, the statement in
/// clear in every answer), the bid is a small number, and everything else in the state
/// is public (caller ids come from the transactions' signers). Trying every bid from 1
/// to 10 000 against the root and the answer's commitment finds nothing without the
/// contract's secret and the answer's salt; with them (the check that the guessed
/// state is exactly right), the true bid is found.
#[test]
fn attack_nh1_state_root_and_answer_hash_do_not_reveal_a_bid() {
    use phalanx_contract::{Changes, State};
    use phalanx_types::statement::answer_hash;
    let rt = Runtime::new(Limits::default());
    let mut e = Executor::new(ID, rt.compile(AUCTION).unwrap(), keys().state_root_key());
    e.add_keys(Epoch(0), keys());
    let (seller, bidder) = (chain::random_key(), chain::random_key());
    let sealed = |user: &SigningKey, input: &[u8]| {
        let me = public_key(user.verifying_key());
        let k = keys().published(ID, Epoch(0));
        SignedTx::sign(
            user,
            &CHAIN,
            0,
            Tx::Command(Command {
                contract: ID,
                epoch: Epoch(0),
                ciphertext: seal_command(&k.encryption_key, &ID, &me, 0, input).unwrap(),
            }),
        )
    };
    let open = [&[1u8][..], &100u64.to_le_bytes()].concat();
    let bid = [&[2u8][..], &4242u64.to_le_bytes()].concat();
    assert!(apply(&mut e, &rt, &block(1, vec![sealed(&seller, &open)])).is_empty());
    assert!(apply(&mut e, &rt, &block(2, vec![sealed(&bidder, &bid)])).is_empty());
    let root = e.root();

    // The attacker's guess of the whole state for a bid of `a`: the real state with
    // every amount-bearing entry (`bid/<id>`, `best`) rewritten.
    let b_id = phalanx_types::contract::caller_id(&public_key(bidder.verifying_key()));
    let guess = |a: u64| {
        let mut changes = Changes::default();
        for (k, v) in e.state().iter() {
            changes.0.insert(k.to_vec(), Some(v.to_vec()));
        }
        let bid_key = [b"bid/".as_slice(), &b_id].concat();
        changes.0.insert(bid_key, Some(a.to_le_bytes().to_vec()));
        changes.0.insert(
            b"best".to_vec(),
            Some([b_id.as_slice(), &a.to_le_bytes()].concat()),
        );
        let mut s = State::default();
        s.apply(&changes);
        s
    };
    // The guess is exact: with the contract's secret, 4242 is found.
    let root_of = |s: &State, key: &[u8; 32]| StateRoot::of(s, key).unwrap().root();
    assert_eq!(root_of(&guess(4242), keys().state_root_key()), root);
    assert_ne!(root_of(&guess(4241), keys().state_root_key()), root);
    // Without it (any key an outsider can try), no bid matches.
    for outsider_key in [[0u8; 32], keys().checkpoint_secret().map(|b| b ^ 1)] {
        assert!((1..=10_000u64).all(|a| root_of(&guess(a), &outsider_key) != root));
    }

    // The bidder's own query of its bid, answered with a salted commitment.
    let me = public_key(bidder.verifying_key());
    let out = e.query(&rt, &me, &[2], 1_000_000).unwrap().output;
    assert_eq!(out, 4242u64.to_le_bytes());
    let answer_salt: [u8; 32] = rand::random();
    let statement = e.statement(
        pruntime::protocol::Purpose::Query,
        &public_key(chain::random_key().verifying_key()),
        &me,
        &[9; 16],
        (&[3; 32], &[2]),
        (&answer_salt, &out),
    );
    assert!(
        (1..=10_000u64).all(|a| answer_hash(&[0; 32], &a.to_le_bytes()) != statement.answer_hash.0),
        "without the salt, no amount matches the answer's commitment"
    );
    assert_eq!(
        answer_hash(&answer_salt, &4242u64.to_le_bytes()),
        statement.answer_hash.0
    );
}

/// One page of the contract's commands across three blocks reaches exactly the state,
/// root, command log and position that a page per block does; a page that does not
/// continue the executor's log is refused whole.
#[test]
fn one_page_reaches_what_a_page_per_block_reaches() {
    let rt = Runtime::new(Limits::default());
    let (alice, bob) = (chain::random_key(), chain::random_key());
    let (a, b) = (
        public_key(alice.verifying_key()),
        public_key(bob.verifying_key()),
    );
    let other = SignedTx::sign(
        &bob,
        &CHAIN,
        9,
        Tx::Command(Command {
            contract: [0xee; 32],
            epoch: Epoch(0),
            ciphertext: vec![1; 40],
        }),
    );
    let blocks = [
        block(1, vec![command(&alice, 0, &a, 0), other.clone()]),
        block(
            2,
            vec![other, command(&bob, 0, &b, 0), command(&alice, 1, &a, 1)],
        ),
        // Sealed for another sender: ordered (in the log), skipped (no state change).
        block(3, vec![command(&bob, 1, &a, 5)]),
    ];
    let mut by_blocks = executor(&rt);
    for bl in &blocks {
        apply(&mut by_blocks, &rt, bl);
    }
    let commands: Vec<chain::proof::CommandAt> = blocks
        .iter()
        .flat_map(|bl| {
            bl.txs
                .iter()
                .filter(|t| matches!(&t.tx, Tx::Command(c) if c.contract == ID))
                .map(|t| chain::proof::CommandAt {
                    height: bl.height,
                    timestamp: bl.timestamp,
                    tx: t.clone(),
                })
        })
        .collect();
    assert_eq!(by_blocks.log().0, 4);
    let header = blocks[2].header();
    let page = |count, head| chain::proof::VerifiedPage {
        count,
        head,
        header: header.clone(),
        nonces: Default::default(),
    };
    let mut by_feed = executor(&rt);
    // Not from this log's position: refused, nothing run.
    assert!(
        by_feed
            .apply_commands(&rt, &commands[1..], &page(4, by_blocks.log().1))
            .is_err()
    );
    assert!(
        by_feed
            .apply_commands(&rt, &commands, &page(4, [9; 32]))
            .is_err()
    );
    assert_eq!((by_feed.log().0, by_feed.executed()), (0, 0));
    // A command replayed (its sender's nonce again), or another contract's: refused.
    let mut replayed = commands.clone();
    replayed.push(commands[0].clone());
    assert!(
        by_feed
            .apply_commands(&rt, &replayed, &page(5, by_blocks.log().1))
            .unwrap_err()
            .contains("replays")
    );
    let skipped = by_feed
        .apply_commands(&rt, &commands, &page(4, by_blocks.log().1))
        .unwrap();
    // Nor in a later page: the executor remembers each sender's nonce.
    let again = chain::types::command_log(
        &by_feed.log().1,
        commands[0].height,
        commands[0].timestamp,
        &commands[0].tx.encode(),
    );
    assert!(
        by_feed
            .apply_commands(&rt, &commands[..1], &page(5, again))
            .unwrap_err()
            .contains("replays")
    );
    assert_eq!(skipped.len(), 1);
    assert_eq!(by_feed.log(), by_blocks.log());
    assert_eq!(by_feed.position(), by_blocks.position());
    assert_eq!(by_feed.root(), by_blocks.root());
    assert_eq!(by_feed.state(), by_blocks.state());
    assert_eq!(count(&by_feed, &rt, &alice), count(&by_blocks, &rt, &alice));
}

/// A page of EVM commands (`(sender, ciphertext)` in one block after `e`'s position),
/// as `chain::evm_proof::EvmPage::verify` would make it.
fn evm_page(
    e: &Executor,
    commands: &[([u8; 20], Vec<u8>)],
) -> (
    Vec<chain::evm_proof::EvmCommand>,
    chain::evm_proof::VerifiedEvmPage,
) {
    let ((count, mut head), (at, _)) = (e.log(), e.position());
    let (block, time) = (at + 1, 1_700_000_000i64);
    let hash = [block as u8; 32];
    let mut out = Vec::new();
    for (i, (sender, ciphertext)) in commands.iter().enumerate() {
        let c = chain::evm_proof::EvmCommand {
            block,
            block_hash: hash,
            log_index: i as u64,
            epoch: Epoch(0),
            sender: *sender,
            sequence: count + i as u64,
            ciphertext: ciphertext.clone(),
        };
        let record =
            chain::evm_proof::command_record(&ID, c.epoch, &c.sender, c.sequence, &c.ciphertext);
        head = chain::types::command_log(&head, block, time, &record);
        out.push(c);
    }
    let page = chain::evm_proof::VerifiedEvmPage {
        checkpoint: chain::evm_proof::EvmCheckpoint {
            number: block,
            hash,
        },
        timestamp: time as u64,
        count: count + commands.len() as u64,
        head,
        times: vec![time; commands.len()],
    };
    (out, page)
}

/// On a Solidity registry a command's caller is the P-256 key that signed its sealed
/// body — the one its queries name — whatever account sent it; a ciphertext sent again
/// (by its account, or by another) runs once; a nonce that does not rise, a body signed
/// for another account, and a page that does not continue the log are refused.
#[test]
fn evm_commands_run_as_their_signer_once() {
    use pruntime::protocol::seal_evm_command;
    let rt = Runtime::new(Limits::default());
    let mut e = executor(&rt);
    e.start_at(41, [41; 32]);
    let alice = chain::random_key();
    let (account, forwarder) = ([0xa1; 20], [0xf0; 20]);
    let k = keys().published(ID, Epoch(0));
    let seal = |sender: &[u8; 20], nonce: u64| {
        seal_evm_command(&k.encryption_key, &ID, sender, &alice, nonce, b"bump").unwrap()
    };
    let first = seal(&account, 10);
    let (cmds, page) = evm_page(
        &e,
        &[
            (account, first.clone()),
            // The same ciphertext again: by its account, then by another.
            (account, first.clone()),
            (forwarder, first),
            // Alice's next command, sent through another account.
            (forwarder, seal(&forwarder, 11)),
            // A nonce that does not rise.
            (account, seal(&account, 11)),
        ],
    );
    let skipped: Vec<u64> = e
        .apply_evm_commands(&rt, &cmds, &page)
        .unwrap()
        .into_iter()
        .map(|s| s.sequence)
        .collect();
    assert_eq!(skipped, vec![1, 2, 4]);
    // Alice's queries see her two commands.
    assert_eq!(count(&e, &rt, &alice), (2, 2));
    assert_eq!(e.position(), (42, [42; 32]));
    // A page that does not continue the log changes nothing.
    let (cmds, mut page) = evm_page(&e, &[(account, seal(&account, 12))]);
    page.head[0] ^= 1;
    assert!(e.apply_evm_commands(&rt, &cmds, &page).is_err());
    assert_eq!(count(&e, &rt, &alice), (2, 2));
}

/// Every command leaves a receipt for its caller, under its (caller, nonce): applied
/// with the output, events and fuel; refused by the contract with its message; out of
/// fuel with all its fuel; sealed for another nonce as unopened. A second command
/// under a nonce (a copy) does not replace the first one's receipt, and nobody else's
/// key finds it.
#[test]
fn every_command_leaves_a_receipt_for_its_caller() {
    use phalanx_types::receipt::Status;
    let rt = Runtime::new(Limits::default());
    let (alice, bob) = (chain::random_key(), chain::random_key());
    let (a, b) = (
        public_key(alice.verifying_key()),
        public_key(bob.verifying_key()),
    );
    let mut e = executor(&rt);
    apply(
        &mut e,
        &rt,
        &block(
            1,
            vec![
                command(&alice, 0, &a, 0),
                command(&alice, 1, &a, 1),
                command(&bob, 0, &a, 0),
            ],
        ),
    );
    let first = e.receipt(&a, 0).unwrap();
    assert_eq!(first.status, Status::Applied);
    assert_eq!((first.sequence, first.height), (0, 1));
    assert_eq!(first.output, 1u64.to_le_bytes());
    assert_eq!(first.events, vec![1u64.to_le_bytes().to_vec()]);
    assert!(first.fuel_used > 0 && first.message.is_empty());
    assert_eq!(e.receipt(&a, 1).unwrap().output, 2u64.to_le_bytes());
    let copy = e.receipt(&b, 0).unwrap();
    assert_eq!(copy.status, Status::Unopened);
    assert!(copy.output.is_empty() && copy.events.is_empty());
    assert!(e.receipt(&b, 1).is_none());
    assert!(e.receipt(&a, 2).is_none());

    // The auction refuses "bump" by name; the counter with too little fuel runs out.
    let auction: &[u8] = include_bytes!("../guest/wasm/auction.wasm");
    let mut refusing = Executor::new(ID, rt.compile(auction).unwrap(), keys().state_root_key());
    refusing.add_keys(Epoch(0), keys());
    apply(
        &mut refusing,
        &rt,
        &block(1, vec![command(&alice, 0, &a, 0)]),
    );
    let refused = refusing.receipt(&a, 0).unwrap();
    assert_eq!(refused.status, Status::Refused);
    assert_eq!(refused.message, "unknown command");
    assert!(refused.fuel_used > 0 && refused.output.is_empty());
    let poor = Runtime::new(Limits {
        fuel: 50,
        ..Limits::default()
    });
    let mut starved = executor(&poor);
    apply(
        &mut starved,
        &poor,
        &block(1, vec![command(&alice, 0, &a, 0)]),
    );
    let starved = starved.receipt(&a, 0).unwrap();
    assert_eq!(starved.status, Status::OutOfFuel);
    assert_eq!(starved.fuel_used, 50);
}

/// A contract's events are kept in order with the command that emitted them, paged from
/// any sequence, and shown only to readers the contract admits: the counter has no
/// `may_read_events`, so nobody; the vote admits anyone.
#[test]
fn events_page_from_any_sequence_for_admitted_readers() {
    let rt = Runtime::new(Limits::default());
    let (alice, bob) = (chain::random_key(), chain::random_key());
    let (a, b) = (
        public_key(alice.verifying_key()),
        public_key(bob.verifying_key()),
    );
    let mut e = executor(&rt);
    apply(
        &mut e,
        &rt,
        &block(
            1,
            vec![
                command(&alice, 0, &a, 0),
                command(&bob, 0, &a, 0),
                command(&bob, 1, &b, 1),
            ],
        ),
    );
    apply(&mut e, &rt, &block(2, vec![command(&alice, 1, &a, 1)]));
    let all = e.events_from(0);
    // Bob's first command did not open: no event of sequence 1.
    let seen: Vec<(u64, u64, Vec<u8>)> = all
        .events
        .iter()
        .map(|x| (x.sequence, x.height, x.data.clone()))
        .collect();
    assert_eq!(
        seen,
        [
            (0, 1, 1u64.to_le_bytes().to_vec()),
            (2, 1, 1u64.to_le_bytes().to_vec()),
            (3, 2, 2u64.to_le_bytes().to_vec()),
        ]
    );
    assert_eq!((all.next, all.oldest), (4, 0));
    let later = e.events_from(3);
    assert_eq!(later.events.len(), 1);
    assert_eq!(e.events_from(4).events.len(), 0);
    assert_eq!(e.events_from(99).next, 99);
    assert!(!e.may_read_events(&rt, &a, 1_000_000));

    let vote: &[u8] = include_bytes!("../guest/wasm/vote.wasm");
    let v = Executor::new(ID, rt.compile(vote).unwrap(), keys().state_root_key());
    assert!(v.may_read_events(&rt, &b, 1_000_000));
}
