//! The key-release exchange with a 3-of-5 committee from a real DKG: workers get the
//! same key from any three gatekeepers, survive two down or lying, name the liars,
//! check every release's log proof, and are refused what they may not derive.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;
use p256::ecdsa::VerifyingKey;
use phalanx_release::gatekeeper::{
    Gatekeeper, GatekeeperError, ReleaseRequest, ReleaseResponse, assemble,
};
use phalanx_release::release::ReleaseError;
use phalanx_threshold::dkg::{DkgParams, run_in_memory};
use phalanx_threshold::identity::IdentityKey;
use phalanx_threshold::share::{KeyShare, NodeIndex, PublicKeySet, SecretScalar};
use phalanx_threshold::translog::{MerkleLog, verify_consistency};
use phalanx_types::Epoch;
use std::collections::BTreeMap;

struct Committee {
    gatekeepers: Vec<Gatekeeper>,
    public: PublicKeySet,
    identities: BTreeMap<NodeIndex, VerifyingKey>,
    /// Each member's share (for tests that play a member by hand).
    shares: BTreeMap<NodeIndex, KeyShare>,
}

fn committee(jwks: &phalanx_release::release::Jwks) -> Committee {
    let mut rng = rand::rng();
    let members: Vec<NodeIndex> = (1..=5).map(|i| NodeIndex::new(i).unwrap()).collect();
    let outputs = run_in_memory(&DkgParams::new(Epoch(0), 3, &members).unwrap(), &mut rng).unwrap();
    let public = outputs[0].public.clone();
    let mut identities = BTreeMap::new();
    let shares = outputs
        .iter()
        .map(|o| (o.share.index, o.share.clone()))
        .collect();
    let gatekeepers = outputs
        .into_iter()
        .map(|o| {
            let id = IdentityKey::generate(&mut rng);
            identities.insert(o.share.index, id.verifying_key());
            Gatekeeper::new(
                id,
                o.share.index,
                BTreeMap::from([(Epoch(0), o.share)]),
                MerkleLog::new(),
                jwks.clone(),
                sim_policy(),
            )
        })
        .collect();
    Committee {
        gatekeepers,
        public,
        identities,
        shares,
    }
}

fn request(w: &Worker, tenant: &str) -> ReleaseRequest {
    ReleaseRequest {
        token: w.token.clone(),
        runtime_data: w.runtime_data.clone(),
        key_id: key_id(0, tenant),
        hpke_public_key: w.hpke.clone(),
    }
}

fn answers(c: &mut Committee, req: &ReleaseRequest, which: &[usize]) -> Vec<ReleaseResponse> {
    which
        .iter()
        .map(|&i| {
            c.gatekeepers[i]
                .release(req, NOW + 5, &mut rand::rng())
                .unwrap()
                .0
        })
        .collect()
}

#[test]
fn any_three_of_five_give_the_same_key_and_two_may_be_down() {
    let w = worker(MR, MR, "sim");
    let mut c = committee(&w.jwks);
    let req = request(&w, &sgx_tenant(MR));
    let all = answers(&mut c, &req, &[0, 1, 2, 3, 4]);
    let a = assemble(&req, &w.recipient, &c.public, &c.identities, &all).unwrap();
    assert!(a.faulty.is_empty());
    let first = assemble(&req, &w.recipient, &c.public, &c.identities, &all[..3]).unwrap();
    let last = assemble(&req, &w.recipient, &c.public, &c.identities, &all[2..]).unwrap();
    assert_eq!(first.key, a.key);
    assert_eq!(last.key, a.key);
    // Two answers are not enough.
    assert!(assemble(&req, &w.recipient, &c.public, &c.identities, &all[..2]).is_err());
    // Another key id gives another key.
    let mut other = req.clone();
    other.key_id.path = "logs".into();
    let o = answers(&mut c, &other, &[0, 1, 2]);
    assert_ne!(
        assemble(&other, &w.recipient, &c.public, &c.identities, &o)
            .unwrap()
            .key,
        a.key
    );
    // A request's answers do not open for another request (transcript-bound envelope).
    let crossed = assemble(&other, &w.recipient, &c.public, &c.identities, &all[..3]);
    assert!(crossed.is_err());
}

#[test]
fn lying_gatekeepers_are_named_and_outvoted() {
    let w = worker(MR, MR, "sim");
    let mut c = committee(&w.jwks);
    let req = request(&w, &sgx_tenant(MR));
    let first = answers(&mut c, &req, &[0, 1, 2]);
    let honest = assemble(&req, &w.recipient, &c.public, &c.identities, &first).unwrap();
    // Gatekeeper 2 evaluates a wrong share: its DLEQ proof fails against S_2.
    let liar = NodeIndex::new(2).unwrap();
    let id = IdentityKey::generate(&mut rand::rng());
    c.identities.insert(liar, id.verifying_key());
    c.gatekeepers[1] = Gatekeeper::new(
        id,
        liar,
        BTreeMap::from([(
            Epoch(0),
            KeyShare {
                index: liar,
                secret: SecretScalar::new(p256::Scalar::from(7u64)),
            },
        )]),
        MerkleLog::new(),
        w.jwks.clone(),
        sim_policy(),
    );
    let all = answers(&mut c, &req, &[0, 1, 2, 3, 4]);
    // n − t = 2 faults are tolerated: the liar plus gatekeeper 4 tampering with its
    // envelope, or plus gatekeeper 5 tampering with its log proof.
    let mut sealed_tamper = all.clone();
    sealed_tamper[3].sealed.ciphertext[0] ^= 1;
    let mut log_tamper = all.clone();
    log_tamper[4].log_index += 1;
    for (answers, expected) in [(sealed_tamper, vec![2, 4]), (log_tamper, vec![2, 5])] {
        let a = assemble(&req, &w.recipient, &c.public, &c.identities, &answers).unwrap();
        assert_eq!(a.key, honest.key);
        let named: Vec<u16> = a.faulty.iter().map(|i| i.get()).collect();
        assert_eq!(named, expected);
        // Named, but nothing provable: the liar's proof holds for the public share
        // its log commits to (its own wrong one), and the tampered answers are not
        // what the logs hold.
        assert!(a.evidence.is_empty(), "{:?}", a.evidence);
    }
    // An answer from a gatekeeper the worker does not know counts as faulty, and a
    // forged tree head signature too.
    let mut stranger = all[0].clone();
    stranger.node = NodeIndex::new(9).unwrap();
    let mut forged_head = all[2].clone();
    forged_head.tree_head.head.size += 1;
    let b = assemble(
        &req,
        &w.recipient,
        &c.public,
        &c.identities,
        &[all[0].clone(), stranger, forged_head],
    )
    .unwrap_err();
    assert!(
        matches!(
            b,
            phalanx_threshold::Error::NotEnoughShares { have: 1, need: 3 }
        ),
        "{b:?}"
    );
}

#[test]
fn refusals_name_the_reason_and_log_nothing() {
    let w = worker(MR, MR, "sim");
    let mut c = committee(&w.jwks);
    let g = &mut c.gatekeepers[0];
    let refused = g
        .release(&request(&w, "another-app"), NOW, &mut rand::rng())
        .unwrap_err();
    assert!(matches!(
        refused,
        GatekeeperError::Refused(ReleaseError::KeyIdNotAllowed { .. })
    ));
    let mut future = request(&w, &sgx_tenant(MR));
    future.key_id.epoch = Epoch(1);
    assert_eq!(
        g.release(&future, NOW, &mut rand::rng()).unwrap_err(),
        GatekeeperError::UnknownEpoch(Epoch(1))
    );
    let mut unbound = request(&w, &sgx_tenant(MR));
    unbound.hpke_public_key =
        phalanx_release::envelope::RecipientKey::generate(&mut rand::rng()).public_bytes();
    assert_eq!(
        g.release(&unbound, NOW, &mut rand::rng()).unwrap_err(),
        GatekeeperError::Refused(ReleaseError::HpkeKeyNotBound)
    );
    assert_eq!(g.log().size(), 0);
}

#[test]
fn every_release_is_logged_and_heads_stay_consistent() {
    let w = worker(MR, MR, "sim");
    let mut c = committee(&w.jwks);
    let req = request(&w, &sgx_tenant(MR));
    let g = &mut c.gatekeepers[0];
    let first = g.release(&req, NOW, &mut rand::rng()).unwrap().0;
    for _ in 0..6 {
        g.release(&req, NOW + 1, &mut rand::rng()).unwrap();
    }
    let later = g.tree_head(NOW + 2);
    let key = &c.identities[&NodeIndex::new(1).unwrap()];
    let (old, new) = (
        first.tree_head.verify(key).unwrap(),
        later.verify(key).unwrap(),
    );
    assert_eq!((old.size, new.size), (1, 7));
    let proof = g.log().consistency_proof(old.size, new.size).unwrap();
    verify_consistency(old.size, new.size, &old.root, &new.root, &proof).unwrap();
    // A head of an earlier size, signed now, commits to the same root as the head of
    // that size signed then; a size the log never had is refused.
    let then = g.tree_head_at(1, NOW + 3).unwrap();
    let then = then.verify(key).unwrap();
    assert_eq!(
        (then.size, then.root, then.timestamp),
        (1, old.root, NOW + 3)
    );
    assert!(g.tree_head_at(8, NOW + 3).is_err());
}

/// Issue 28, item 4: a gatekeeper whose own signed log commits to a partial with a
/// broken proof is named, outvoted and leaves evidence the worker can show anyone:
/// the record, its inclusion proof and the signed head, whose partial fails against
/// the public share committed with it. Honest answers leave none.
#[test]
fn a_gatekeeper_whose_log_commits_a_bad_partial_leaves_evidence() {
    use phalanx_threshold::release_log;
    let w = worker(MR, MR, "sim");
    let mut c = committee(&w.jwks);
    let req = request(&w, &sgx_tenant(MR));
    let mut all = answers(&mut c, &req, &[0, 1, 2, 3]);
    let honest = assemble(&req, &w.recipient, &c.public, &c.identities, &all).unwrap();
    assert!(honest.faulty.is_empty() && honest.evidence.is_empty());

    // Gatekeeper 2, played by hand: it evaluates its real share, breaks the proof, and
    // seals, logs and signs that as a release.
    let liar = NodeIndex::new(2).unwrap();
    let share = &c.shares[&liar];
    let mut partial =
        phalanx_threshold::derive::evaluate(share, &req.key_id, &mut rand::rng()).unwrap();
    partial.proof.s += p256::Scalar::ONE;
    let bytes = partial.to_bytes();
    let transcript = req.transcript().unwrap();
    let public_share =
        release_log::share_bytes(&phalanx_threshold::share::mul_g(share.secret.expose()));
    let evaluation = release_log::evaluation(
        &req.key_id.encode_point_input().unwrap(),
        &public_share,
        &bytes,
    );
    let mut log = MerkleLog::new();
    log.append(b"an earlier record");
    let (log_index, _) = log.append(&phalanx_release::gatekeeper::release_record(
        liar,
        NOW + 5,
        &transcript,
        &evaluation,
    ));
    let id = IdentityKey::generate(&mut rand::rng());
    c.identities.insert(liar, id.verifying_key());
    let head = phalanx_threshold::translog::TreeHead {
        log_id: phalanx_threshold::translog::log_id(&id.verifying_key()),
        size: log.size(),
        root: log.root(),
        timestamp: NOW + 5,
    }
    .sign(&id);
    all[1] = ReleaseResponse {
        node: liar,
        sealed: phalanx_release::envelope::seal(&req.hpke_public_key, &transcript, &bytes).unwrap(),
        public_share,
        logged_at: NOW + 5,
        log_index,
        inclusion_proof: log.inclusion_proof(log_index, log.size()).unwrap(),
        tree_head: head,
    };
    let a = assemble(&req, &w.recipient, &c.public, &c.identities, &all).unwrap();
    assert_eq!(a.key, honest.key);
    assert_eq!(a.faulty, vec![liar]);
    let [evidence] = a.evidence.as_slice() else {
        panic!("{:?}", a.evidence);
    };
    assert_eq!(evidence.identity, id.verifying_key());
    assert_eq!(evidence.release.node, liar);
    // What anyone checks: the head is the liar's, its log holds the release, and the
    // committed partial fails against the committed share.
    evidence.head.verify(&id.verifying_key()).unwrap();
    evidence
        .release
        .included(evidence.head.head.size, &evidence.head.head.root)
        .unwrap();
    assert!(release_log::committed_partial_fails(&evidence.release).unwrap());
    // The same release with the honest proof is no fault.
    let mut fixed = evidence.release.clone();
    partial.proof.s -= p256::Scalar::ONE;
    fixed.partial = partial.to_bytes();
    assert!(!release_log::committed_partial_fails(&fixed).unwrap());
}
