//! Refresh and reshare keep the master key and every derived key, and make old shares
//! useless.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use p256::{ProjectivePoint, Scalar};
use phalanx_threshold::Error;
use phalanx_threshold::derive::{KeyId, PartialEvaluation, combine, evaluate};
use phalanx_threshold::lifecycle::{self, SubAnswer, SubComplaint, SubDeal, SubShare};
use phalanx_threshold::share::{
    KeyShare, NodeIndex, PublicKeySet, SecretScalar, dealer_split, lagrange_at_zero,
};
use phalanx_types::Epoch;
use rand::SeedableRng;

fn idx(i: u16) -> NodeIndex {
    NodeIndex::new(i).unwrap()
}

fn id() -> KeyId {
    KeyId {
        epoch: Epoch(3),
        tenant: "app".into(),
        path: "db".into(),
        purpose: "aead".into(),
    }
}

fn key(public: &PublicKeySet, shares: &[KeyShare], rng: &mut rand::rngs::StdRng) -> [u8; 32] {
    let ps: Vec<_> = shares
        .iter()
        .map(|s| evaluate(s, &id(), rng).unwrap())
        .collect();
    *combine(public, &id(), &ps).unwrap().key.expose()
}

/// Runs the complaint/answer round for a set of sub-dealings.
fn settle(
    recipients: &[NodeIndex],
    dealings: &[lifecycle::SubDealing],
    deals: &[SubDeal],
    shares: &[SubShare],
    silent: &[NodeIndex],
) -> (Vec<SubComplaint>, Vec<SubAnswer>) {
    let complaints: Vec<_> = recipients
        .iter()
        .flat_map(|&j| lifecycle::complaints(j, deals, shares))
        .collect();
    let answers = dealings
        .iter()
        .zip(deals)
        .filter(|(_, d)| !silent.contains(&d.dealer))
        .flat_map(|(dl, _)| dl.answers(&complaints))
        .collect();
    (complaints, answers)
}

#[test]
fn refresh_keeps_keys_and_retires_old_shares() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let (shares, public) =
        dealer_split(&SecretScalar::new(Scalar::from(99u64)), 3, 5, &mut rng).unwrap();
    let before = key(&public, &shares[..3], &mut rng);
    let members: Vec<_> = public.members().collect();

    let mut dealings = Vec::new();
    let mut deals = Vec::new();
    let mut sent = Vec::new();
    for s in &shares {
        let (dl, d, mut ss) = lifecycle::refresh_deal(&public, s.index, &mut rng).unwrap();
        if s.index == idx(2) {
            // Member 2 sends member 4 a bad point and will not answer.
            for x in ss.iter_mut().filter(|x| x.recipient == idx(4)) {
                x.value = SecretScalar::new(*x.value.expose() + Scalar::ONE);
            }
        }
        dealings.push(dl);
        deals.push(d);
        sent.extend(ss);
    }
    let (complaints, answers) = settle(&members, &dealings, &deals, &sent, &[idx(2)]);
    assert_eq!(
        complaints,
        vec![SubComplaint {
            accuser: idx(4),
            accused: idx(2)
        }]
    );
    let outs: Vec<_> = shares
        .iter()
        .map(|s| {
            lifecycle::refresh_finish(s, &public, &deals, &sent, &complaints, &answers).unwrap()
        })
        .collect();
    for o in &outs {
        assert_eq!(o.public, outs[0].public);
        assert_eq!(o.transcript, outs[0].transcript);
        assert_eq!(o.dealers, vec![idx(1), idx(3), idx(4), idx(5)]);
        assert_eq!(o.public.master_public_key(), public.master_public_key());
    }
    let new_public = &outs[0].public;
    let new_shares: Vec<KeyShare> = outs.iter().map(|o| o.share.clone()).collect();
    for s in &new_shares {
        assert_ne!(
            s.secret,
            shares[usize::from(s.index.get()) - 1].secret,
            "every share changed"
        );
    }
    assert_eq!(key(new_public, &new_shares[2..5], &mut rng), before);

    // Old partials do not verify against the new public shares ...
    let old: Vec<PartialEvaluation> = shares[..3]
        .iter()
        .map(|s| evaluate(s, &id(), &mut rng).unwrap())
        .collect();
    assert_eq!(
        combine(new_public, &id(), &old).unwrap_err(),
        Error::NotEnoughShares { have: 0, need: 3 }
    );
    // ... and mixing old and new points does not give the key's point.
    let p = id().point().unwrap();
    let set = [idx(1), idx(2), idx(3)];
    let mixed = [
        shares[0].secret.expose(),
        shares[1].secret.expose(),
        new_shares[2].secret.expose(),
    ];
    let mut y = ProjectivePoint::IDENTITY;
    for (i, s) in set.iter().zip(mixed) {
        y += p * (*s * lagrange_at_zero(&set, *i).unwrap());
    }
    let right = p * Scalar::from(99u64);
    assert_ne!(y, right);
}

#[test]
fn refresh_needs_t_valid_dealers() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(2);
    let (shares, public) =
        dealer_split(&SecretScalar::new(Scalar::from(5u64)), 3, 3, &mut rng).unwrap();
    let (_, d1, s1) = lifecycle::refresh_deal(&public, idx(1), &mut rng).unwrap();
    let (_, d2, s2) = lifecycle::refresh_deal(&public, idx(2), &mut rng).unwrap();
    let deals = [d1, d2];
    let sent: Vec<_> = s1.into_iter().chain(s2).collect();
    let err = lifecycle::refresh_finish(&shares[0], &public, &deals, &sent, &[], &[]).unwrap_err();
    assert_eq!(err, Error::NotEnoughShares { have: 2, need: 3 });
}

#[test]
fn reshare_to_a_new_committee_and_threshold_keeps_keys() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let (shares, public) =
        dealer_split(&SecretScalar::new(Scalar::from(1234u64)), 3, 5, &mut rng).unwrap();
    let before = key(&public, &shares[1..4], &mut rng);
    let new_members: Vec<NodeIndex> = (1..=7).map(idx).collect();
    let new_t = 4;

    let mut dealings = Vec::new();
    let mut deals = Vec::new();
    let mut sent = Vec::new();
    for s in &shares {
        let (dl, mut d, ss) = lifecycle::reshare_deal(s, &new_members, new_t, &mut rng).unwrap();
        if s.index == idx(1) {
            // Member 1 deals a different constant than its share: refused.
            d.commitments.0[0] += ProjectivePoint::GENERATOR;
        }
        dealings.push(dl);
        deals.push(d);
        sent.extend(ss);
    }
    let (complaints, answers) = settle(&new_members, &dealings, &deals, &sent, &[]);
    let outs: Vec<_> = new_members
        .iter()
        .map(|&m| {
            lifecycle::reshare_finish(
                m,
                &public,
                &new_members,
                new_t,
                &deals,
                &sent,
                &complaints,
                &answers,
            )
            .unwrap()
        })
        .collect();
    for o in &outs {
        assert_eq!(o.public, outs[0].public);
        assert_eq!(o.transcript, outs[0].transcript);
        assert_eq!(o.dealers, vec![idx(2), idx(3), idx(4)]);
    }
    let new_public = &outs[0].public;
    assert_eq!(new_public.master_public_key(), public.master_public_key());
    assert_eq!(new_public.threshold(), 4);
    let new_shares: Vec<KeyShare> = outs.iter().map(|o| o.share.clone()).collect();
    assert_eq!(key(new_public, &new_shares[..4], &mut rng), before);
    assert_eq!(key(new_public, &new_shares[3..], &mut rng), before);
    // Three new shares are no longer enough.
    let ps: Vec<_> = new_shares[..3]
        .iter()
        .map(|s| evaluate(s, &id(), &mut rng).unwrap())
        .collect();
    assert_eq!(
        combine(new_public, &id(), &ps).unwrap_err(),
        Error::NotEnoughShares { have: 3, need: 4 }
    );
}

#[test]
fn reshare_without_enough_honest_dealers_fails() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(4);
    let (shares, public) =
        dealer_split(&SecretScalar::new(Scalar::from(8u64)), 3, 4, &mut rng).unwrap();
    let new_members: Vec<NodeIndex> = (1..=3).map(idx).collect();
    let mut deals = Vec::new();
    let mut sent = Vec::new();
    for s in &shares[..2] {
        let (_, d, ss) = lifecycle::reshare_deal(s, &new_members, 2, &mut rng).unwrap();
        deals.push(d);
        sent.extend(ss);
    }
    let err = lifecycle::reshare_finish(idx(1), &public, &new_members, 2, &deals, &sent, &[], &[])
        .unwrap_err();
    assert_eq!(err, Error::NotEnoughShares { have: 2, need: 3 });
    assert!(lifecycle::reshare_deal(&shares[0], &new_members, 4, &mut rng).is_err());
}
