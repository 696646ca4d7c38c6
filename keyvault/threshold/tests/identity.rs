//! Signed round messages: bound to sender, epoch and round; tampering is attributed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use p256::ProjectivePoint;
use phalanx_threshold::Error;
use phalanx_threshold::dkg::{self, Complaint, DkgParams};
use phalanx_threshold::identity::{IdentityKey, Round};
use phalanx_threshold::share::NodeIndex;
use phalanx_types::Epoch;
use rand::SeedableRng;

#[test]
fn signatures_bind_sender_epoch_round_and_content() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let me = NodeIndex::new(1).unwrap();
    let key = IdentityKey::generate(&mut rng);
    let other = IdentityKey::generate(&mut rng);
    let params = DkgParams::new(Epoch(5), 2, &[me, NodeIndex::new(2).unwrap()]).unwrap();
    let (_, deal, _) = dkg::deal(&params, me, &mut rng).unwrap();

    let signed = key.sign(me, Epoch(5), Round::DkgDeal, &deal);
    assert_eq!(
        signed
            .verify(&key.verifying_key(), Epoch(5), Round::DkgDeal)
            .unwrap(),
        &deal
    );
    assert_eq!(
        signed.verify(&other.verifying_key(), Epoch(5), Round::DkgDeal),
        Err(Error::BadSignature(me))
    );
    assert_eq!(
        signed.verify(&key.verifying_key(), Epoch(6), Round::DkgDeal),
        Err(Error::BadSignature(me))
    );
    assert_eq!(
        signed.verify(&key.verifying_key(), Epoch(5), Round::DkgExtraction),
        Err(Error::BadSignature(me))
    );

    let mut tampered = signed.clone();
    tampered.message.commitments[0] += ProjectivePoint::GENERATOR;
    assert_eq!(
        tampered.verify(&key.verifying_key(), Epoch(5), Round::DkgDeal),
        Err(Error::BadSignature(me))
    );
    let mut relabelled = signed.clone();
    relabelled.epoch = Epoch(6);
    assert_eq!(
        relabelled.verify(&key.verifying_key(), Epoch(6), Round::DkgDeal),
        Err(Error::BadSignature(me))
    );

    let c = Complaint {
        accuser: me,
        accused: NodeIndex::new(2).unwrap(),
    };
    let sc = key.sign(me, Epoch(5), Round::DkgComplaint, &c);
    assert!(
        sc.verify(&key.verifying_key(), Epoch(5), Round::DkgComplaint)
            .is_ok()
    );
    let mut swapped = sc;
    swapped.message = Complaint {
        accuser: c.accused,
        accused: c.accuser,
    };
    assert!(
        swapped
            .verify(&key.verifying_key(), Epoch(5), Round::DkgComplaint)
            .is_err()
    );
    assert!(!format!("{key:?}").contains("SigningKey"));

    // Revealed shares are signed over their scalars: changing one breaks the signature.
    let (dealt, _, _) = dkg::deal(&params, me, &mut rng).unwrap();
    let (complained, _) = dealt.complain(&[], &[]).unwrap();
    let answers = complained.answers(&[Complaint {
        accuser: NodeIndex::new(2).unwrap(),
        accused: me,
    }]);
    let signed = key.sign(me, Epoch(5), Round::DkgAnswer, &answers[0]);
    assert!(
        signed
            .verify(&key.verifying_key(), Epoch(5), Round::DkgAnswer)
            .is_ok()
    );
    let mut forged = signed.clone();
    forged.message.share.s = phalanx_threshold::share::SecretScalar::new(p256::Scalar::ONE);
    assert_eq!(
        forged.verify(&key.verifying_key(), Epoch(5), Round::DkgAnswer),
        Err(Error::BadSignature(me))
    );
}
