//! Queries and answers, both halves: a query opens only for the worker it was sealed to
//! and only as signed; an answer opens only for its query, and any change to its
//! statement, signature or sealed output is refused.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use chain::types::public_key;
use phalanx_release::envelope::RecipientKey;
use phalanx_types::statement::{Statement, answer_hash, query_hash};
use pruntime::protocol::{Answer, Bounds, ProtocolError, Query, verify_statement};

struct Setup {
    worker: p256::ecdsa::SigningKey,
    worker_key: Vec<u8>,
    worker_hpke: RecipientKey,
    user: p256::ecdsa::SigningKey,
    reply: RecipientKey,
}

fn setup() -> Setup {
    let worker = chain::random_key();
    Setup {
        worker_key: public_key(worker.verifying_key()),
        worker,
        worker_hpke: RecipientKey::generate(&mut rand::rng()),
        user: chain::random_key(),
        reply: RecipientKey::generate(&mut rand::rng()),
    }
}

fn query(s: &Setup) -> (Query, [u8; 32]) {
    Query::new(
        &s.user,
        &s.reply,
        &s.worker_key,
        &s.worker_hpke.public_bytes(),
        [3; 32],
        b"input",
        Bounds::default(),
    )
    .unwrap()
}

fn answer(s: &Setup, q: &Query, output: &[u8]) -> Answer {
    let o = q.open(&s.worker_key, &s.worker_hpke).unwrap();
    let salt = [0xa5; 32];
    let statement = Statement {
        worker: hex::encode(&s.worker_key),
        contract: q.contract,
        code_hash: [4; 32].into(),
        height: 9,
        block_hash: [5; 32].into(),
        state_root: [6; 32].into(),
        query_hash: query_hash(&o.caller, &q.nonce.0, &o.salt, &o.input).into(),
        answer_hash: answer_hash(&salt, output).into(),
    };
    Answer::new(statement, &s.worker, &s.reply.public_bytes(), &salt, output).unwrap()
}

#[test]
fn a_query_opens_only_for_its_worker_and_only_as_signed() {
    let s = setup();
    let (q, salt) = query(&s);
    let o = q.open(&s.worker_key, &s.worker_hpke).unwrap();
    assert_eq!(o.caller, public_key(s.user.verifying_key()));
    assert_eq!(&o.input[..], b"input");
    assert_eq!(
        o.salt, salt,
        "the worker learns the query's salt from inside the envelope"
    );
    // Another worker's HPKE key, or the query presented to another identity.
    let other = RecipientKey::generate(&mut rand::rng());
    assert_eq!(
        q.open(&s.worker_key, &other).unwrap_err(),
        ProtocolError::Sealed("query")
    );
    let elsewhere = public_key(chain::random_key().verifying_key());
    assert_eq!(
        q.open(&elsewhere, &s.worker_hpke).unwrap_err(),
        ProtocolError::BadSignature
    );
    // Every signed field.
    let mut t = q.clone();
    t.nonce.0[0] ^= 1;
    assert_eq!(
        t.open(&s.worker_key, &s.worker_hpke).unwrap_err(),
        ProtocolError::BadSignature
    );
    let mut t = q.clone();
    t.max_fuel = Some(1);
    assert_eq!(
        t.open(&s.worker_key, &s.worker_hpke).unwrap_err(),
        ProtocolError::BadSignature
    );
    let mut t = q.clone();
    t.min_height = Some(1);
    assert_eq!(
        t.open(&s.worker_key, &s.worker_hpke).unwrap_err(),
        ProtocolError::BadSignature
    );
    // NL2: an absent bound and a zero bound sign differently, both ways.
    let (zero, _) = Query::new(
        &s.user,
        &s.reply,
        &s.worker_key,
        &s.worker_hpke.public_bytes(),
        [3; 32],
        b"input",
        Bounds {
            max_fuel: Some(0),
            min_height: Some(0),
        },
    )
    .unwrap();
    zero.open(&s.worker_key, &s.worker_hpke).unwrap();
    for edit in [
        (|t: &mut Query| t.max_fuel = None) as fn(&mut Query),
        |t: &mut Query| t.min_height = None,
    ] {
        let mut t = zero.clone();
        edit(&mut t);
        assert_eq!(
            t.open(&s.worker_key, &s.worker_hpke).unwrap_err(),
            ProtocolError::BadSignature
        );
    }
    let mut t = q.clone();
    t.max_fuel = Some(0);
    assert_eq!(
        t.open(&s.worker_key, &s.worker_hpke).unwrap_err(),
        ProtocolError::BadSignature
    );
    let mut t = q.clone();
    t.contract.0[0] ^= 1;
    assert_eq!(
        t.open(&s.worker_key, &s.worker_hpke).unwrap_err(),
        ProtocolError::BadSignature
    );
    let mut t = q.clone();
    t.reply_key = query(&setup()).0.reply_key;
    assert_eq!(
        t.open(&s.worker_key, &s.worker_hpke).unwrap_err(),
        ProtocolError::BadSignature
    );
    let mut t = q;
    t.caller_key = "!!".into();
    assert_eq!(
        t.open(&s.worker_key, &s.worker_hpke).unwrap_err(),
        ProtocolError::Malformed("caller key")
    );
}

#[test]
fn an_answer_opens_only_unchanged_and_for_its_query() {
    let s = setup();
    let (q, salt) = query(&s);
    let a = answer(&s, &q, b"output");
    let opening = a
        .open(&s.worker_key, &s.reply, &q, &salt, b"input")
        .unwrap();
    assert_eq!(&opening.output[..], b"output");
    assert_eq!(opening.salt, [0xa5; 32]);
    verify_statement(&a.statement, &a.signature, &s.worker_key).unwrap();
    // Another claimed input, or the right one under another salt: the statement names
    // another query.
    assert!(
        a.open(&s.worker_key, &s.reply, &q, &salt, b"other")
            .is_err()
    );
    assert!(
        a.open(&s.worker_key, &s.reply, &q, &[0; 32], b"input")
            .is_err()
    );
    // Another worker key than the one the query was sealed to.
    let elsewhere = public_key(chain::random_key().verifying_key());
    assert_eq!(
        a.open(&elsewhere, &s.reply, &q, &salt, b"input")
            .unwrap_err(),
        ProtocolError::BadSignature
    );
    // Each statement field, the signature, the sealed output.
    let edits: Vec<fn(&mut Answer)> = vec![
        |a| a.statement.height += 1,
        |a| a.statement.block_hash.0[0] ^= 1,
        |a| a.statement.state_root.0[0] ^= 1,
        |a| a.statement.code_hash.0[0] ^= 1,
        |a| a.statement.answer_hash.0[0] ^= 1,
        |a| a.statement.query_hash.0[0] ^= 1,
        |a| a.statement.contract.0[0] ^= 1,
    ];
    for edit in edits {
        let mut t = a.clone();
        edit(&mut t);
        assert_eq!(
            t.open(&s.worker_key, &s.reply, &q, &salt, b"input")
                .unwrap_err(),
            ProtocolError::BadSignature
        );
    }
    let mut t = a.clone();
    t.signature = a.signature.replace('A', "B");
    if t.signature != a.signature {
        assert!(
            t.open(&s.worker_key, &s.reply, &q, &salt, b"input")
                .is_err()
        );
    }
    let mut t = a;
    let mut sealed =
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &t.sealed_output)
            .unwrap();
    let last = sealed.len() - 1;
    sealed[last] ^= 1;
    t.sealed_output = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, sealed);
    assert_eq!(
        t.open(&s.worker_key, &s.reply, &q, &salt, b"input")
            .unwrap_err(),
        ProtocolError::Sealed("answer")
    );
}
