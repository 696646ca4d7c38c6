//! The sealed release envelope: RFC 9180 known answers for the KEM, round trips, and
//! refusal of the wrong key, the wrong transcript and tampering.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use hpke::aead::AesGcm128;
use hpke::kdf::HkdfSha512;
use hpke::kem::DhP256HkdfSha256;
use hpke::{Deserializable, Kem, OpModeR, Serializable};
use phalanx_release::envelope::{Dhkem, PARTIAL_LEN, RecipientKey, Sealed, open, seal};
use phalanx_threshold::derive::{KeyId, PartialEvaluation, evaluate, verify_partial};
use phalanx_threshold::share::{SecretScalar, dealer_split};
use phalanx_types::Epoch;
use rand::SeedableRng;

fn h(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

/// Opens RFC 9180 A.4.1's first ciphertext (DHKEM(P-256, HKDF-SHA256), HKDF-SHA512,
/// AES-128-GCM, base mode) with KEM `K` and the recipient key `sk`.
fn open_rfc9180_a41<K: Kem>(sk: &K::PrivateKey) -> Vec<u8> {
    let enc = K::EncappedKey::from_bytes(&h(
        "0493ed86735bdfb978cc055c98b45695ad7ce61ce748f4dd63c525a3b8d53a15565c6897888070070c1579db1f86aaa56deb8297e64db7e8924e72866f9a472580",
    ))
    .unwrap();
    hpke::single_shot_open::<AesGcm128, HkdfSha512, K>(
        &OpModeR::Base,
        sk,
        &enc,
        &h("4f6465206f6e2061204772656369616e2055726e"),
        &h("d3cf4984931484a080f74c1bb2a6782700dc1fef9abe8442e44a6f09044c88907200b332003543754eb51917ba"),
        &h("436f756e742d30"),
    )
    .unwrap()
}

/// RFC 9180 Appendix A.4.1, the same KEM as our envelope: the derived key pair, and the
/// first ciphertext opened by `hpke`'s DHKEM and by ours.
#[test]
fn rfc9180_p256_base_mode_vector() {
    let ikm_r = h("ea9ff7cc5b2705b188841c7ace169290ff312a9cb31467784ca92d7a2e6e1be8");
    let (sk, pk) = DhP256HkdfSha256::derive_keypair(&ikm_r);
    assert_eq!(
        hex::encode(sk.to_bytes()),
        "3ac8530ad1b01885960fab38cf3cdc4f7aef121eaa239f222623614b4079fb38"
    );
    let pk_hex = "04085aa5b665dc3826f9650ccbcc471be268c8ada866422f739e2d531d4a8818a9466bc6b449357096232919ec4fe9070ccbac4aac30f4a1a53efcf7af90610edd";
    assert_eq!(hex::encode(pk.to_bytes()), pk_hex);
    let plaintext = h("4265617574792069732074727574682c20747275746820626561757479");
    assert_eq!(open_rfc9180_a41::<DhP256HkdfSha256>(&sk), plaintext);
    let me = RecipientKey::derive(&ikm_r);
    assert_eq!(hex::encode(me.public_bytes()), pk_hex);
    assert_eq!(open_rfc9180_a41::<Dhkem>(&me), plaintext);
}

type Enc = <DhP256HkdfSha256 as Kem>::EncappedKey;

/// Our KEM and hpke's agree both ways: our `Encap` (ring) decapsulates with hpke's
/// `Decap`, hpke's `Encap` with ours (each recomputes `ExtractAndExpand` on its own, so a
/// wrong label, suite id or context would differ); every encapsulation is fresh; a
/// different recipient derives something else; authenticated mode is refused.
#[test]
fn our_kem_and_hpkes_agree_both_ways() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    let mut encs = std::collections::HashSet::new();
    for _ in 0..16 {
        let (sk, pk) = DhP256HkdfSha256::gen_keypair_with_rng(&mut rng);
        let ours_sk = RecipientKey::from_bytes(&sk.to_bytes()).unwrap();
        assert_eq!(ours_sk.public_bytes(), pk.to_bytes().to_vec());

        let (ours, enc) = Dhkem::encap_with_rng(&pk, None, &mut rng).unwrap();
        let enc_bytes = enc.to_bytes().to_vec();
        let theirs =
            DhP256HkdfSha256::decap(&sk, None, &Enc::from_bytes(&enc_bytes).unwrap()).unwrap();
        assert_eq!(ours.0, theirs.0);
        assert!(encs.insert(enc_bytes.clone()), "ephemeral key reused");

        let (theirs, enc) = DhP256HkdfSha256::encap_with_rng(&pk, None, &mut rng).unwrap();
        let ours =
            Dhkem::decap(&ours_sk, None, &Enc::from_bytes(&enc.to_bytes()).unwrap()).unwrap();
        assert_eq!(ours.0, theirs.0);

        let stranger = RecipientKey::generate(&mut rng);
        let wrong = Dhkem::decap(&stranger, None, &Enc::from_bytes(&enc_bytes).unwrap()).unwrap();
        assert_ne!(ours.0, wrong.0);
    }
    let me = RecipientKey::generate(&mut rng);
    let pk = Dhkem::sk_to_pk(&me);
    assert!(Dhkem::encap_with_rng(&pk, Some((&me, &pk)), &mut rng).is_err());
    let (_, enc) = Dhkem::encap_with_rng(&pk, None, &mut rng).unwrap();
    assert!(Dhkem::decap(&me, Some(&pk), &enc).is_err());
}

#[test]
fn a_partial_travels_sealed_and_only_to_its_request() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let (shares, public) =
        dealer_split(&SecretScalar::new(p256::Scalar::from(3u64)), 2, 3, &mut rng).unwrap();
    let id = KeyId {
        epoch: Epoch(1),
        tenant: "a".into(),
        path: "b".into(),
        purpose: "c".into(),
    };
    let partial = evaluate(&shares[0], &id, &mut rng).unwrap();
    let worker = RecipientKey::generate(&mut rng);
    let transcript = [7u8; 32];

    let sealed = seal(&worker.public_bytes(), &transcript, &partial.to_bytes()).unwrap();
    let opened = open(&worker, &transcript, &sealed).unwrap();
    let back = PartialEvaluation::from_bytes(&opened).unwrap();
    assert_eq!(back, partial);
    assert!(verify_partial(&public, &id, &back).is_ok());

    let stranger = RecipientKey::generate(&mut rng);
    assert!(open(&stranger, &transcript, &sealed).is_err());
    assert!(open(&worker, &[8u8; 32], &sealed).is_err());
    let mut bad = sealed.clone();
    bad.ciphertext[0] ^= 1;
    assert!(open(&worker, &transcript, &bad).is_err());
    let truncated = Sealed {
        enc: sealed.enc[..10].to_vec(),
        ciphertext: sealed.ciphertext.clone(),
    };
    assert!(open(&worker, &transcript, &truncated).is_err());
    assert!(seal(&[4u8; 65], &transcript, b"x").is_err());
    assert!(format!("{worker:?}").starts_with("RecipientKey(public 04"));
}

#[test]
fn partial_decoding_is_strict() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(2);
    let (shares, _) =
        dealer_split(&SecretScalar::new(p256::Scalar::from(3u64)), 2, 3, &mut rng).unwrap();
    let id = KeyId {
        epoch: Epoch(1),
        tenant: "a".into(),
        path: "b".into(),
        purpose: "c".into(),
    };
    let bytes = evaluate(&shares[1], &id, &mut rng).unwrap().to_bytes();
    assert_eq!(bytes.len(), PARTIAL_LEN);
    assert!(PartialEvaluation::from_bytes(&bytes[..PARTIAL_LEN - 1]).is_err());
    assert!(PartialEvaluation::from_bytes(&[bytes.clone(), vec![0]].concat()).is_err());
    let mut zero_index = bytes.clone();
    zero_index[..2].copy_from_slice(&[0, 0]);
    assert!(PartialEvaluation::from_bytes(&zero_index).is_err());
    // Y, T2 and T3: each a 65-byte uncompressed point. A wrong prefix, a compressed
    // encoding in its place, a coordinate bit flipped off the curve: all refused.
    for (at, what) in [(2, "Y"), (67, "T2"), (132, "T3")] {
        let mut bad_point = bytes.clone();
        bad_point[at] = 0x05;
        assert!(PartialEvaluation::from_bytes(&bad_point).is_err(), "{what}");
        let mut compressed = bytes.clone();
        compressed[at] = 0x02;
        assert!(
            PartialEvaluation::from_bytes(&compressed).is_err(),
            "{what}"
        );
        let mut off_curve = bytes.clone();
        off_curve[at + 64] ^= 1;
        assert!(PartialEvaluation::from_bytes(&off_curve).is_err(), "{what}");
    }
    let mut big_scalar = bytes.clone();
    big_scalar[PARTIAL_LEN - 32..].copy_from_slice(&[0xff; 32]);
    assert!(PartialEvaluation::from_bytes(&big_scalar).is_err());
    // Intact, it decodes to what was encoded.
    assert_eq!(
        PartialEvaluation::from_bytes(&bytes).unwrap().to_bytes(),
        bytes
    );
}
