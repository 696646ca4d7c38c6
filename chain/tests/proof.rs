//! A header and proofs stand for the chain (`chain::proof`): facts at a height, their
//! absence, and earlier headers, checked against a pinned genesis alone; each forgery is
//! refused by the check that guards it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use chain::facts::Fact;
use chain::proof::{HeaderProof, ProofError};
use chain::state::State;
use chain::types::{Block, EvidenceRule, Genesis, Role, SignedTx, Tx, public_key};
use p256::ecdsa::SigningKey;
use phalanx_types::codec::Codec;

struct Chain {
    authority: SigningKey,
    blocks: Vec<Block>,
    state: State,
}

/// A chain whose block `i` (1..=n) allows measurement `[i; 32]`; block 3 removes
/// measurement 1 again (so its fact differs between heights).
fn chain(n: u8, timestamp: i64) -> Chain {
    let (authority, governance) = (chain::random_key(), chain::random_key());
    let genesis = State::genesis_block(
        Genesis {
            authority: public_key(authority.verifying_key()),
            governance: public_key(governance.verifying_key()),
            timestamp,
            evidence: EvidenceRule::intel(),
        },
        &authority,
    );
    let mut state = State::from_genesis(&genesis).unwrap();
    let mut blocks = vec![genesis];
    for i in 1..=n {
        let tx = if i == 3 {
            Tx::RemoveMeasurement(vec![1; 32])
        } else {
            Tx::AddMeasurement {
                measurement: vec![i; 32],
                role: Role::Runtime,
            }
        };
        let nonce = state.nonce(&public_key(governance.verifying_key()));
        let signed = SignedTx::sign(&governance, &state.chain_id(), nonce, tx);
        let (block, next) = state
            .seal_and_advance(vec![signed], timestamp + i64::from(i), &authority)
            .unwrap();
        blocks.push(block);
        state = next;
    }
    Chain {
        authority,
        blocks,
        state,
    }
}

fn keys(facts: &[Fact]) -> Vec<Vec<u8>> {
    facts.iter().map(Fact::key).collect()
}

#[test]
fn facts_and_absences_at_a_height_verify_against_the_pinned_genesis() {
    let c = chain(6, 1_760_000_000);
    let pin = c.blocks[0].hash();
    // At height 2 measurement 1 is allowed; at height 5 it was removed (block 3).
    let wanted = [
        Fact::Allowed(vec![1; 32]),
        Fact::Allowed(vec![2; 32]),
        Fact::Allowed(vec![5; 32]),
        Fact::Rule,
    ];
    let at2 = HeaderProof::at(&c.state, &c.blocks[0], &c.blocks[2], &keys(&wanted)).unwrap();
    let v = at2.verify(&pin).unwrap();
    assert_eq!(v.header.height, 2);
    assert_eq!(v.header, c.blocks[2].header());
    assert_eq!(v.allowed(&[1; 32]).unwrap().unwrap().role, Role::Runtime);
    assert!(v.allowed(&[5; 32]).unwrap().is_none(), "not yet allowed");
    assert_eq!(v.rule().unwrap(), EvidenceRule::intel());
    let at5 = HeaderProof::at(&c.state, &c.blocks[0], &c.blocks[5], &keys(&wanted)).unwrap();
    let v = at5.verify(&pin).unwrap();
    assert!(v.allowed(&[1; 32]).unwrap().is_none(), "removed at block 3");
    assert!(v.allowed(&[5; 32]).unwrap().is_some());
    // A fact the proof does not carry is missing, not absent.
    assert!(matches!(
        v.contract(&[0; 32]),
        Err(ProofError::Missing(name)) if name.starts_with("contract/")
    ));
    // It travels as bytes and decodes to the same proof.
    let bytes = at5.to_bytes();
    assert_eq!(HeaderProof::from_bytes(&bytes).unwrap(), at5);
    // A height the chain has not reached is refused.
    let mut beyond = c.blocks[6].clone();
    beyond.height = 7;
    assert!(HeaderProof::at(&c.state, &c.blocks[0], &beyond, &keys(&wanted)).is_err());
}

#[test]
fn one_recent_header_proves_every_earlier_one() {
    let c = chain(8, 1_760_000_000);
    let pin = c.blocks[0].hash();
    let history: Vec<Fact> = (0..8).map(Fact::Header).collect();
    let p = HeaderProof::at(&c.state, &c.blocks[0], &c.blocks[8], &keys(&history)).unwrap();
    let v = p.verify(&pin).unwrap();
    for h in 0..8u64 {
        let hash = chain::facts::read_header_hash(v.fact(&Fact::Header(h)).unwrap().unwrap());
        assert_eq!(hash.unwrap(), c.blocks[h as usize].hash(), "header {h}");
    }
    // A block's own hash is not yet a fact of its state (the next block writes it).
    let own = HeaderProof::at(
        &c.state,
        &c.blocks[0],
        &c.blocks[8],
        &keys(&[Fact::Header(8)]),
    )
    .unwrap();
    assert!(
        own.verify(&pin)
            .unwrap()
            .fact(&Fact::Header(8))
            .unwrap()
            .is_none()
    );
}

#[test]
fn forged_proofs_are_refused_by_the_check_that_guards_them() {
    let c = chain(4, 1_760_000_000);
    let pin = c.blocks[0].hash();
    let good = HeaderProof::at(
        &c.state,
        &c.blocks[0],
        &c.blocks[4],
        &keys(&[Fact::Allowed(vec![2; 32]), Fact::Allowed(vec![9; 32])]),
    )
    .unwrap();
    good.verify(&pin).unwrap();

    // Another pin: the genesis is not the pinned one.
    assert!(matches!(good.verify(&[7; 32]), Err(ProofError::Genesis(_))));
    // A tampered value, a tampered proof, a proof moved to another key, absence claimed
    // where the fact exists, a value claimed where it is absent.
    let mut bad = good.clone();
    bad.facts[0].value.as_mut().unwrap()[0] ^= 1;
    assert!(matches!(bad.verify(&pin), Err(ProofError::BadFact { .. })));
    let mut bad = good.clone();
    let last = bad.facts[0].proof.len() - 1;
    bad.facts[0].proof[last] ^= 1;
    assert!(matches!(bad.verify(&pin), Err(ProofError::BadFact { .. })));
    let mut bad = good.clone();
    bad.facts[0].key = Fact::Allowed(vec![3; 32]).key();
    assert!(matches!(bad.verify(&pin), Err(ProofError::BadFact { .. })));
    let mut bad = good.clone();
    bad.facts[0].value = None;
    assert!(matches!(bad.verify(&pin), Err(ProofError::BadFact { .. })));
    let mut bad = good.clone();
    bad.facts[1].value = Some(bad.facts[0].value.clone().unwrap());
    assert!(matches!(bad.verify(&pin), Err(ProofError::BadFact { .. })));
    // Facts proven at another header of the same chain do not hold at this one.
    let mut bad = good.clone();
    bad.header = c.blocks[1].signed_header();
    assert!(matches!(bad.verify(&pin), Err(ProofError::BadFact { .. })));
    // A header edited after signing, or signed by another key.
    let mut bad = good.clone();
    bad.header.header.timestamp += 1;
    assert!(matches!(bad.verify(&pin), Err(ProofError::BadSignature(4))));
    let mut bad = good.clone();
    let forger = chain::random_key();
    let sig: p256::ecdsa::Signature =
        p256::ecdsa::signature::Signer::sign(&forger, &bad.header.header.hash());
    bad.header.signature = sig.to_bytes().to_vec();
    assert!(matches!(bad.verify(&pin), Err(ProofError::BadSignature(4))));
    // A header of another chain signed by the same authority key: its proofs hold
    // under its own root, but it names another chain.
    let other = {
        let genesis = State::genesis_block(
            Genesis {
                timestamp: 1_700_000_000,
                ..c.state.genesis().clone()
            },
            &c.authority,
        );
        let s = State::from_genesis(&genesis).unwrap();
        let block = s
            .seal_next(Vec::new(), 1_700_000_001, &c.authority)
            .unwrap();
        let mut s2 = s.clone();
        s2.apply_block(&block).unwrap();
        HeaderProof::at(&s2, &genesis, &block, &keys(&[Fact::Rule])).unwrap()
    };
    other.verify(&other.genesis.hash()).unwrap();
    let mut bad = other.clone();
    bad.genesis = good.genesis.clone();
    assert!(matches!(
        bad.verify(&pin),
        Err(ProofError::OtherChain { .. })
    ));
}

#[test]
fn truncated_or_padded_proof_bytes_are_refused_without_panicking() {
    let c = chain(2, 1_760_000_000);
    let bytes = HeaderProof::at(
        &c.state,
        &c.blocks[0],
        &c.blocks[2],
        &keys(&[Fact::Allowed(vec![1; 32])]),
    )
    .unwrap()
    .to_bytes();
    for cut in 0..bytes.len() {
        assert!(
            HeaderProof::from_bytes(&bytes[..cut]).is_err(),
            "cut at {cut}"
        );
    }
    assert!(HeaderProof::from_bytes(&[bytes.as_slice(), &[0]].concat()).is_err());
}
