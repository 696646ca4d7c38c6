//! Dealerless genesis (GJKR): honest runs, and runs with 1 and t − 1 misbehaving members.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use p256::{ProjectivePoint, Scalar};
use phalanx_threshold::derive::{KeyId, combine, evaluate};
use phalanx_threshold::dkg::{self, DkgOutput, DkgParams, interpolate_coefficients};
use phalanx_threshold::share::NodeIndex;
use phalanx_types::Epoch;
use rand::SeedableRng;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Behaviour {
    /// Sends a bad share to `victim`, then refuses to answer the complaint.
    BadShareNoAnswer { victim: u16 },
    /// Sends a bad share to `victim`, then answers with the correct one (stays in QUAL).
    BadShareThenAnswer { victim: u16 },
    /// Deals nothing.
    Silent,
    /// Publishes Feldman commitments that do not match its Pedersen deal.
    WrongFeldman,
}

fn idx(i: u16) -> NodeIndex {
    NodeIndex::new(i).unwrap()
}

/// Runs a DKG among `1..=n` with the given misbehaviours; returns honest outputs.
fn run(n: u16, t: usize, bad: &[(u16, Behaviour)], seed: u64) -> Vec<DkgOutput> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let members: Vec<NodeIndex> = (1..=n).map(idx).collect();
    let params = DkgParams::new(Epoch(7), t, &members).unwrap();
    let bad: BTreeMap<NodeIndex, Behaviour> = bad.iter().map(|(i, b)| (idx(*i), *b)).collect();

    let mut states = Vec::new();
    let mut deals = Vec::new();
    let mut shares = Vec::new();
    for &m in &members {
        let (state, deal, mut sent) = dkg::deal(&params, m, &mut rng).unwrap();
        match bad.get(&m) {
            Some(Behaviour::Silent) => {
                states.push((m, state));
                continue;
            }
            Some(
                Behaviour::BadShareNoAnswer { victim } | Behaviour::BadShareThenAnswer { victim },
            ) => {
                for s in sent.iter_mut().filter(|s| s.recipient == idx(*victim)) {
                    s.s = phalanx_threshold::share::SecretScalar::new(*s.s.expose() + Scalar::ONE);
                }
            }
            _ => {}
        }
        deals.push(deal);
        shares.extend(sent);
        states.push((m, state));
    }
    let mut complained = Vec::new();
    let mut complaints = Vec::new();
    for (m, state) in states {
        let (c, mine) = state.complain(&deals, &shares).unwrap();
        complaints.extend(mine);
        complained.push((m, c));
    }
    let mut answers = Vec::new();
    for (m, c) in &complained {
        if matches!(
            bad.get(m),
            Some(Behaviour::BadShareNoAnswer { .. } | Behaviour::Silent)
        ) {
            continue;
        }
        answers.extend(c.answers(&complaints));
    }
    let qualified: Vec<_> = complained
        .into_iter()
        .map(|(m, c)| (m, c.qualify(&complaints, &answers).unwrap()))
        .collect();
    let mut extractions = Vec::new();
    for (m, q) in &qualified {
        if let Some(mut e) = q.extraction() {
            if bad.get(m) == Some(&Behaviour::WrongFeldman) {
                e.commitments[1] += ProjectivePoint::GENERATOR;
            }
            extractions.push(e);
        }
    }
    let mut extracting = Vec::new();
    let mut ext_complaints = Vec::new();
    for (m, q) in qualified {
        let (x, c) = q.check_extractions(&extractions);
        ext_complaints.extend(c);
        extracting.push((m, x));
    }
    let mut revealed = Vec::new();
    for (_, x) in &mut extracting {
        revealed.extend(x.reconstruction_shares(&ext_complaints));
    }
    extracting
        .into_iter()
        .filter(|(m, _)| !bad.contains_key(m))
        .map(|(_, x)| x.finish(&revealed).unwrap())
        .collect()
}

/// All honest outputs agree, and any t of them derive the same key.
fn check_agreement(outs: &[DkgOutput], t: usize) -> phalanx_threshold::derive::DerivedKey {
    let first = &outs[0];
    for o in outs {
        assert_eq!(o.public, first.public);
        assert_eq!(o.transcript, first.transcript);
        assert_eq!(o.qualified, first.qualified);
        assert_eq!(o.misbehaved, first.misbehaved);
        assert_eq!(o.public.threshold(), t);
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(99);
    let id = KeyId {
        epoch: Epoch(7),
        tenant: "t".into(),
        path: "p".into(),
        purpose: "k".into(),
    };
    let all: Vec<_> = outs
        .iter()
        .map(|o| evaluate(&o.share, &id, &mut rng).unwrap())
        .collect();
    let k1 = combine(&first.public, &id, &all[..t]).unwrap().key;
    let k2 = combine(&first.public, &id, &all[all.len() - t..])
        .unwrap()
        .key;
    assert_eq!(k1, k2);
    k1
}

#[test]
fn honest_run_agrees_and_derives() {
    for (n, t) in [(1u16, 1usize), (3, 2), (5, 3)] {
        let outs = run(n, t, &[], 1);
        assert_eq!(outs.len(), n as usize);
        assert!(outs[0].misbehaved.is_empty());
        check_agreement(&outs, t);
    }
}

#[test]
fn one_cheater_is_excluded() {
    let outs = run(5, 3, &[(2, Behaviour::BadShareNoAnswer { victim: 4 })], 2);
    assert_eq!(outs[0].misbehaved, vec![idx(2)]);
    assert!(!outs[0].qualified.contains(&idx(2)));
    check_agreement(&outs, 3);
}

#[test]
fn t_minus_one_cheaters_are_excluded() {
    let outs = run(
        7,
        4,
        &[
            (1, Behaviour::BadShareNoAnswer { victim: 5 }),
            (3, Behaviour::Silent),
            (6, Behaviour::BadShareNoAnswer { victim: 7 }),
        ],
        3,
    );
    assert_eq!(outs[0].misbehaved, vec![idx(1), idx(3), idx(6)]);
    assert_eq!(outs[0].qualified, vec![idx(2), idx(4), idx(5), idx(7)]);
    check_agreement(&outs, 4);
}

#[test]
fn a_complaint_answered_correctly_keeps_the_dealer() {
    let outs = run(5, 3, &[(1, Behaviour::BadShareThenAnswer { victim: 3 })], 4);
    assert!(outs[0].qualified.contains(&idx(1)));
    check_agreement(&outs, 3);
}

#[test]
fn wrong_feldman_commitments_are_corrected_by_reconstruction() {
    let outs = run(5, 3, &[(5, Behaviour::WrongFeldman)], 5);
    assert_eq!(outs[0].misbehaved, vec![idx(5)]);
    // The cheater stays in QUAL (its Pedersen deal was fine) but its polynomial is now
    // public, so it cannot bias or break the key.
    assert!(outs[0].qualified.contains(&idx(5)));
    check_agreement(&outs, 3);
}

#[test]
fn different_runs_give_different_keys() {
    let a = check_agreement(&run(3, 2, &[], 10), 2);
    let b = check_agreement(&run(3, 2, &[], 11), 2);
    assert_ne!(a, b);
}

#[test]
fn interpolation_recovers_coefficients() {
    let coeffs = [Scalar::from(5u64), Scalar::from(7u64), Scalar::from(11u64)];
    let eval = |x: u64| {
        coeffs
            .iter()
            .rev()
            .fold(Scalar::ZERO, |acc, c| acc * Scalar::from(x) + c)
    };
    let pts: Vec<_> = [2u16, 5, 9]
        .iter()
        .map(|&x| (idx(x), eval(u64::from(x))))
        .collect();
    assert_eq!(interpolate_coefficients(&pts, 3).unwrap(), coeffs.to_vec());
    assert!(interpolate_coefficients(&pts[..2], 3).is_err());
}

#[test]
fn bad_parameters_are_refused() {
    assert!(DkgParams::new(Epoch(0), 0, &[idx(1)]).is_err());
    assert!(DkgParams::new(Epoch(0), 3, &[idx(1), idx(2)]).is_err());
    assert!(DkgParams::new(Epoch(0), 1, &[idx(1), idx(1)]).is_err());
}

#[test]
fn in_memory_runner_then_refresh_and_reshare_keep_the_key() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(12);
    let params = DkgParams::new(Epoch(1), 3, &(1..=5).map(idx).collect::<Vec<_>>()).unwrap();
    let outs = dkg::run_in_memory(&params, &mut rng).unwrap();
    let key = check_agreement(&outs, 3);
    let shares: Vec<_> = outs.iter().map(|o| o.share.clone()).collect();
    let refreshed =
        phalanx_threshold::lifecycle::refresh_in_memory(&shares, &outs[0].public, &mut rng)
            .unwrap();
    let id = KeyId {
        epoch: Epoch(7),
        tenant: "t".into(),
        path: "p".into(),
        purpose: "k".into(),
    };
    let derive = |public: &phalanx_threshold::share::PublicKeySet,
                  shares: &[phalanx_threshold::share::KeyShare],
                  rng: &mut rand::rngs::StdRng| {
        let ps: Vec<_> = shares
            .iter()
            .map(|s| evaluate(s, &id, rng).unwrap())
            .collect();
        combine(public, &id, &ps).unwrap().key
    };
    let rs: Vec<_> = refreshed.iter().map(|o| o.share.clone()).collect();
    assert_eq!(derive(&refreshed[0].public, &rs[..3], &mut rng), key);
    let new: Vec<_> = (1..=4).map(idx).collect();
    let reshared = phalanx_threshold::lifecycle::reshare_in_memory(
        &rs,
        &refreshed[0].public,
        &new,
        2,
        &mut rng,
    )
    .unwrap();
    let ns: Vec<_> = reshared.iter().map(|o| o.share.clone()).collect();
    assert_eq!(derive(&reshared[0].public, &ns[2..], &mut rng), key);
}
