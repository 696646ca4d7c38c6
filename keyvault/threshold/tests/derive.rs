//! Key derivation without reconstruction: threshold behaviour, attribution of lies,
//! and known-answer tests for the hash-to-curve suite.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use p256::elliptic_curve::sec1::ToSec1Point;
use p256::hash2curve::GroupDigest;
use p256::{NistP256, ProjectivePoint, Scalar};
use phalanx_threshold::Error;
use phalanx_threshold::derive::{KeyId, PartialEvaluation, combine, evaluate, verify_partial};
use phalanx_threshold::share::{
    KeyShare, NodeIndex, PublicKeySet, SecretScalar, dealer_split, lagrange_at_zero,
};
use phalanx_types::Epoch;
use proptest::prelude::*;
use rand::SeedableRng;

fn rng(seed: u64) -> rand::rngs::StdRng {
    rand::rngs::StdRng::seed_from_u64(seed)
}

fn id(path: &str) -> KeyId {
    KeyId {
        epoch: Epoch(1),
        tenant: "mrenclave:abcd".into(),
        path: path.into(),
        purpose: "aead".into(),
    }
}

fn setup(t: usize, n: usize, seed: u64) -> (Vec<KeyShare>, PublicKeySet, Scalar) {
    let mut r = rng(seed);
    let secret = Scalar::from(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let (shares, public) = dealer_split(&SecretScalar::new(secret), t, n, &mut r).unwrap();
    (shares, public, secret)
}

/// The key as a dealer holding the whole secret would derive it (test oracle only).
fn reference_key(secret: &Scalar, key_id: &KeyId) -> [u8; 32] {
    let y = key_id.point().unwrap() * secret;
    *phalanx_threshold::derive::hkdf_key(&y, key_id)
        .unwrap()
        .expose()
}

fn partials(shares: &[KeyShare], key_id: &KeyId, seed: u64) -> Vec<PartialEvaluation> {
    let mut r = rng(seed);
    shares
        .iter()
        .map(|s| evaluate(s, key_id, &mut r).unwrap())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn any_t_of_n_derive_the_same_key(n in 2usize..8, seed in any::<u64>(), pick in any::<u64>()) {
        let t = 1 + (seed as usize % n);
        let (shares, public, secret) = setup(t, n, seed);
        let key_id = id("p");
        let all = partials(&shares, &key_id, seed ^ 1);
        // A pseudo-random subset of size t.
        let mut order: Vec<usize> = (0..n).collect();
        let mut x = pick;
        for i in (1..n).rev() {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            order.swap(i, (x >> 33) as usize % (i + 1));
        }
        let subset: Vec<_> = order[..t].iter().map(|&i| all[i]).collect();
        let got = combine(&public, &key_id, &subset).unwrap();
        prop_assert_eq!(got.key.expose(), &reference_key(&secret, &key_id));
        prop_assert!(got.faulty.is_empty());
        if t > 1 {
            let fewer = combine(&public, &key_id, &subset[..t - 1]).unwrap_err();
            prop_assert_eq!(fewer, Error::NotEnoughShares { have: t - 1, need: t });
        }
    }

    #[test]
    fn any_t_shares_interpolate_the_secret(n in 1usize..10, seed in any::<u64>()) {
        let t = 1 + (seed as usize % n);
        let (shares, _, secret) = setup(t, n, seed);
        let set: Vec<NodeIndex> = shares[n - t..].iter().map(|s| s.index).collect();
        let mut acc = Scalar::ZERO;
        for s in &shares[n - t..] {
            acc += *s.secret.expose() * lagrange_at_zero(&set, s.index).unwrap();
        }
        prop_assert_eq!(acc, secret);
    }
}

#[test]
fn lying_members_are_named_and_skipped() {
    let (shares, public, secret) = setup(3, 5, 7);
    let key_id = id("lies");
    let mut ps = partials(&shares, &key_id, 8);
    // Node 1 returns a wrong value with its old proof; node 2 a tampered proof.
    ps[0].value += ProjectivePoint::GENERATOR;
    ps[1].proof.s += Scalar::ONE;
    for bad in &ps[..2] {
        assert_eq!(
            verify_partial(&public, &key_id, bad),
            Err(Error::InvalidPartial(bad.index))
        );
    }
    let got = combine(&public, &key_id, &ps).unwrap();
    assert_eq!(got.key.expose(), &reference_key(&secret, &key_id));
    assert_eq!(got.faulty, vec![ps[0].index, ps[1].index]);
    // With three liars only two honest partials remain: not enough.
    ps[2].proof.t2 += ProjectivePoint::GENERATOR;
    assert_eq!(
        combine(&public, &key_id, &ps).unwrap_err(),
        Error::NotEnoughShares { have: 2, need: 3 }
    );
}

#[test]
fn a_partial_for_another_key_id_or_member_is_refused() {
    let (shares, public, _) = setup(2, 3, 11);
    let p = evaluate(&shares[0], &id("a"), &mut rng(1)).unwrap();
    assert!(verify_partial(&public, &id("a"), &p).is_ok());
    assert_eq!(
        verify_partial(&public, &id("b"), &p),
        Err(Error::InvalidPartial(p.index))
    );
    let mut moved = p;
    moved.index = shares[1].index;
    assert_eq!(
        verify_partial(&public, &id("a"), &moved),
        Err(Error::InvalidPartial(moved.index))
    );
    let mut stranger = p;
    stranger.index = NodeIndex::new(9).unwrap();
    assert_eq!(
        verify_partial(&public, &id("a"), &stranger),
        Err(Error::UnknownNode(stranger.index))
    );
}

#[test]
fn keys_differ_by_every_key_id_field() {
    let (shares, public, _) = setup(2, 3, 5);
    let base = id("x");
    let variants = [
        KeyId {
            epoch: Epoch(2),
            ..base.clone()
        },
        KeyId {
            tenant: "other".into(),
            ..base.clone()
        },
        KeyId {
            path: "y".into(),
            ..base.clone()
        },
        KeyId {
            purpose: "mac".into(),
            ..base.clone()
        },
        // Field boundaries are encoded: moving a byte between fields changes the key.
        KeyId {
            tenant: "mrenclave:abc".into(),
            path: "dx".into(),
            ..base.clone()
        },
    ];
    let key = |k: &KeyId| {
        *combine(&public, k, &partials(&shares[..2], k, 3))
            .unwrap()
            .key
            .expose()
    };
    let k0 = key(&base);
    for v in &variants {
        assert_ne!(key(v), k0, "{v:?}");
    }
}

#[test]
fn secrets_are_redacted_in_debug() {
    let (shares, public, _) = setup(2, 3, 5);
    let text = format!("{:?}", shares[0]);
    assert!(text.contains("redacted"), "{text}");
    let key = combine(&public, &id("d"), &partials(&shares[..2], &id("d"), 1))
        .unwrap()
        .key;
    assert_eq!(format!("{key:?}"), "DerivedKey(<redacted>)");
}

#[test]
fn dealer_rejects_bad_parameters() {
    let s = SecretScalar::new(Scalar::ONE);
    assert!(matches!(
        dealer_split(&s, 0, 3, &mut rng(1)),
        Err(Error::InvalidThreshold { .. })
    ));
    assert!(matches!(
        dealer_split(&s, 4, 3, &mut rng(1)),
        Err(Error::InvalidThreshold { .. })
    ));
    assert_eq!(NodeIndex::new(0), Err(Error::ZeroIndex));
    let i = NodeIndex::new(1).unwrap();
    assert_eq!(lagrange_at_zero(&[i, i], i), Err(Error::DuplicateIndex(i)));
}

/// RFC 9380 Appendix J.1.1, suite P256_XMD:SHA-256_SSWU_RO_.
#[test]
fn rfc9380_p256_hash_to_curve_vectors() {
    let dst = b"QUUX-V01-CS02-with-P256_XMD:SHA-256_SSWU_RO_";
    let cases: [(&[u8], &str, &str); 2] = [
        (
            b"",
            "2c15230b26dbc6fc9a37051158c95b79656e17a1a920b11394ca91c44247d3e4",
            "8a7a74985cc5c776cdfe4b1f19884970453912e9d31528c060be9ab5c43e8415",
        ),
        (
            b"abc",
            "0bb8b87485551aa43ed54f009230450b492fead5f1cc91658775dac4a3388a0f",
            "5c41b3d0731a27a7b14bc0bf0ccded2d8751f83493404c84a88e71ffd424212e",
        ),
    ];
    for (msg, x, y) in cases {
        let p = NistP256::hash_from_bytes(&[msg], &[dst]).unwrap();
        let enc = p.to_affine().to_sec1_point(false);
        let bytes = enc.as_bytes();
        assert_eq!(hex::encode(&bytes[1..33]), x);
        assert_eq!(hex::encode(&bytes[33..65]), y);
    }
}
