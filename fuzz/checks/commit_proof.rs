// A state-commitment proof as a verifier reads it from an untrusted bundle: any bytes
// are refused with a typed error or verified, never a panic; and a proof that verifies
// a fact under the fixed tree's root shows the fact's true value.
// Shared by the fuzz target and the test that replays its corpus.
use chain::commit::{Commitment, verify};

/// Panics only on a bug.
pub fn check(data: &[u8]) {
    let mut tree = Commitment::new();
    let Ok(root) = tree.update((0u8..16).map(|i| (vec![b'k', i], Some(vec![i; 8])))) else {
        return;
    };
    for i in 0u8..18 {
        let key = [b'k', i];
        let truth = (i < 16).then(|| vec![i; 8]);
        for claim in [None, Some(vec![i; 8]), Some(vec![i ^ 1; 8])] {
            if verify(&root, &key, claim.as_deref(), data).is_ok() {
                assert_eq!(claim, truth, "a proof verified a false claim");
            }
        }
    }
    let _ = verify(&[0; 32], b"", None, data);
}
