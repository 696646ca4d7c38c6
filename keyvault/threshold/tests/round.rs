//! The network rounds' engines, run against each other in memory: every phase's
//! messages routed as the peer protocol would, including damaged ones.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use phalanx_threshold::derive::{KeyId, combine, evaluate};
use phalanx_threshold::identity::IdentityKey;
use phalanx_threshold::round::{
    Engine, Incoming, Outgoing, Participant, RoundKind, RoundResult, RoundSpec, Step,
};
use phalanx_threshold::share::{EpochState, NodeIndex};
use phalanx_types::Epoch;
use std::collections::BTreeMap;

fn idx(i: u16) -> NodeIndex {
    NodeIndex::new(i).unwrap()
}

fn spec(kind: RoundKind, members: &[u16]) -> RoundSpec {
    let participants = members
        .iter()
        .map(|&i| Participant {
            index: idx(i),
            identity: IdentityKey::generate(&mut rand::rng()).verifying_key(),
            url: format!("https://127.0.0.1:{}", 7000 + i),
        })
        .collect();
    RoundSpec::new(rand::random(), kind, participants).unwrap()
}

/// Runs every participant's engine; `tamper` may rewrite a sender's message per phase.
fn run(
    spec: &RoundSpec,
    current: &BTreeMap<NodeIndex, EpochState>,
    tamper: impl Fn(u8, NodeIndex, &mut Outgoing),
) -> BTreeMap<NodeIndex, RoundResult> {
    let mut rng = rand::rng();
    let mut engines = BTreeMap::new();
    let mut outbox = BTreeMap::new();
    for i in spec.members() {
        let (e, mut out) =
            Engine::start(spec.clone(), i, current.get(&i).cloned(), &mut rng).unwrap();
        tamper(1, i, &mut out);
        engines.insert(i, e);
        outbox.insert(i, out);
    }
    let mut results = BTreeMap::new();
    let mut phase = 1;
    while results.len() < engines.len() {
        let mut next = BTreeMap::new();
        for (&me, e) in engines.iter_mut() {
            let incoming: BTreeMap<NodeIndex, Incoming> = outbox
                .iter()
                .map(|(&from, o): (&NodeIndex, &Outgoing)| {
                    (
                        from,
                        Incoming {
                            public: o.public.clone(),
                            private: o.private.get(&me).cloned().unwrap_or_default(),
                        },
                    )
                })
                .collect();
            match e.advance(&incoming).unwrap() {
                Step::Send(mut out) => {
                    tamper(phase + 1, me, &mut out);
                    next.insert(me, out);
                }
                Step::Done(r) => {
                    results.insert(me, *r);
                }
            }
        }
        outbox = next;
        phase += 1;
    }
    assert_eq!(phase - 1, spec.kind.phases());
    results
}

fn key(results: &BTreeMap<NodeIndex, RoundResult>, use_: &[u16], epoch: u64) -> [u8; 32] {
    let mut rng = rand::rng();
    let id = KeyId {
        epoch: Epoch(epoch),
        tenant: "t".into(),
        path: "p".into(),
        purpose: "aead".into(),
    };
    let any = results.values().next().unwrap();
    let partials: Vec<_> = use_
        .iter()
        .map(|&i| evaluate(&results[&idx(i)].state.share, &id, &mut rng).unwrap())
        .collect();
    let k = combine(&any.state.public, &id, &partials).unwrap();
    *k.key.expose()
}

fn agree(results: &BTreeMap<NodeIndex, RoundResult>) {
    let first = results.values().next().unwrap();
    for r in results.values() {
        assert_eq!(r.digest, first.digest);
        assert_eq!(r.state.public, first.state.public);
    }
}

fn states(results: &BTreeMap<NodeIndex, RoundResult>) -> BTreeMap<NodeIndex, EpochState> {
    results.iter().map(|(&i, r)| (i, r.state.clone())).collect()
}

#[test]
fn dkg_then_refresh_then_reshare_keep_the_key() {
    let genesis = run(
        &spec(
            RoundKind::Dkg {
                epoch: Epoch(0),
                threshold: 3,
            },
            &[1, 2, 3, 4, 5],
        ),
        &BTreeMap::new(),
        |_, _, _| {},
    );
    agree(&genesis);
    let k0 = key(&genesis, &[1, 2, 3], 0);
    assert_eq!(k0, key(&genesis, &[3, 4, 5], 0));
    let mpk = genesis[&idx(1)].state.public.master_public_key();

    let refreshed = run(
        &spec(RoundKind::Refresh { epoch: Epoch(0) }, &[1, 2, 3, 4, 5]),
        &states(&genesis),
        |_, _, _| {},
    );
    agree(&refreshed);
    assert_eq!(refreshed[&idx(1)].state.public.master_public_key(), mpk);
    assert_ne!(
        refreshed[&idx(1)].state.public,
        genesis[&idx(1)].state.public
    );
    assert_eq!(key(&refreshed, &[2, 4, 5], 0), k0);

    // Node 5 leaves, node 6 joins, threshold 2 of 5: dealers are old members staying.
    let mut current = states(&refreshed);
    current.remove(&idx(5));
    let reshared = run(
        &spec(
            RoundKind::Reshare {
                epoch: Epoch(0),
                dealers: vec![idx(1), idx(2), idx(3), idx(4)],
                new_threshold: 2,
            },
            &[1, 2, 3, 4, 6],
        ),
        &current,
        |_, _, _| {},
    );
    agree(&reshared);
    assert_eq!(reshared[&idx(6)].state.public.master_public_key(), mpk);
    assert_eq!(reshared[&idx(6)].state.public.threshold(), 2);
    assert_eq!(key(&reshared, &[4, 6], 0), k0);
}

#[test]
fn a_dealer_sending_garbage_is_disqualified_not_fatal() {
    let bad = idx(2);
    let results = run(
        &spec(
            RoundKind::Dkg {
                epoch: Epoch(3),
                threshold: 2,
            },
            &[1, 2, 3, 4],
        ),
        &BTreeMap::new(),
        |phase, from, out| {
            if phase == 1 && from == bad {
                out.public.truncate(5);
                for p in out.private.values_mut() {
                    p.clear();
                }
            }
        },
    );
    agree(&results);
    let honest = &results[&idx(1)];
    assert!(honest.misbehaved.contains(&bad) || !honest.state.public.commitments().0.is_empty());
    assert_eq!(key(&results, &[1, 3], 3), key(&results, &[3, 4], 3));

    // A refresh where one dealer's private point to node 1 is wrong: node 1 complains,
    // the dealer answers in public, and everyone still agrees.
    let current = states(&results);
    let refreshed = run(
        &spec(RoundKind::Refresh { epoch: Epoch(3) }, &[1, 2, 3, 4]),
        &current,
        |phase, from, out| {
            if phase == 1 && from == idx(3) {
                let p = out.private.get_mut(&idx(1)).unwrap();
                let last = p.len() - 1;
                p[last] ^= 1;
            }
        },
    );
    agree(&refreshed);
    assert_eq!(key(&refreshed, &[1, 2], 3), key(&results, &[1, 2], 3));
}

#[test]
fn specs_are_canonical_and_checked() {
    let s = spec(
        RoundKind::Reshare {
            epoch: Epoch(1),
            dealers: vec![idx(1), idx(2)],
            new_threshold: 2,
        },
        &[1, 2, 3],
    );
    let b = s.encode();
    assert_eq!(RoundSpec::decode(&b).unwrap(), s);
    assert_eq!(RoundSpec::decode(&b).unwrap().id(), s.id());
    for cut in 0..b.len() {
        assert!(RoundSpec::decode(&b[..cut]).is_err(), "cut {cut}");
    }
    let p = s.participants.clone();
    assert!(
        RoundSpec::new(
            [0; 16],
            RoundKind::Dkg {
                epoch: Epoch(0),
                threshold: 4
            },
            p.clone()
        )
        .is_err()
    );
    assert!(
        RoundSpec::new(
            [0; 16],
            RoundKind::Reshare {
                epoch: Epoch(0),
                dealers: vec![idx(9)],
                new_threshold: 1
            },
            p.clone()
        )
        .is_err()
    );
    let mut twice = p.clone();
    twice.push(p[0].clone());
    assert!(RoundSpec::new([0; 16], RoundKind::Refresh { epoch: Epoch(0) }, twice).is_err());
    // A refresh needs this member's current share.
    assert!(Engine::start(s.clone(), idx(1), None, &mut rand::rng()).is_err());
}

/// Issue 28, item 4: which DKG dealings are evidence. Every honest deal message is
/// consistent; one whose share to a recipient was changed, or that does not decode as
/// a dealing, is not; a spec that is no DKG, or a party outside it, proves nothing.
#[test]
fn only_a_dealing_no_honest_dealer_sends_fails() {
    use phalanx_threshold::round::dealing_fails;
    let dkg = spec(
        RoundKind::Dkg {
            epoch: Epoch(0),
            threshold: 2,
        },
        &[1, 2, 3],
    );
    let (_, out) = Engine::start(dkg.clone(), idx(1), None, &mut rand::rng()).unwrap();
    for to in [2, 3] {
        let private = &out.private[&idx(to)];
        assert!(!dealing_fails(&dkg, idx(1), idx(to), &out.public, private).unwrap());
        // The share to 2 presented as the share to 3: names another recipient.
        assert!(dealing_fails(&dkg, idx(1), idx(5 - to), &out.public, private).unwrap());
        let mut changed = private.to_vec();
        let last = changed.len() - 1;
        changed[last] ^= 1;
        assert!(dealing_fails(&dkg, idx(1), idx(to), &out.public, &changed).unwrap());
        assert!(dealing_fails(&dkg, idx(1), idx(to), &out.public[..5], private).unwrap());
        assert!(dealing_fails(&dkg, idx(1), idx(to), &out.public, &[]).unwrap());
    }
    assert!(dealing_fails(&dkg, idx(1), idx(9), &out.public, &out.private[&idx(2)]).is_err());
    let refresh = spec(RoundKind::Refresh { epoch: Epoch(0) }, &[1, 2, 3]);
    assert!(dealing_fails(&refresh, idx(1), idx(2), &out.public, &out.private[&idx(2)]).is_err());
}
