// The registry's transactions and blocks, as a light client reads them off the
// network: any bytes decode or give a typed error, and what decodes re-encodes to the
// same bytes (one encoding per value, so hashes and signatures are unambiguous). A
// registration's evidence goes through the registry's own evidence check (quote,
// collateral, runtime data), which refuses by name and never panics.
// Shared by the fuzz target and the test that replays its corpus.
use chain::types::{Block, EvidenceRule, SignedTx, Tx};

/// Panics only on a bug.
pub fn check(data: &[u8]) {
    if let Ok(tx) = SignedTx::decode(data) {
        assert_eq!(tx.encode(), data);
        if let Tx::RegisterWorker(r) = &tx.tx {
            let rule = EvidenceRule::intel();
            if let Ok(anchors) = chain::evidence::anchors(&rule) {
                let verifier = phalanx_dcap::Verifier::new(anchors);
                let _ = chain::evidence::check(&verifier, &rule, &[0; 32], r, 1_760_000_000);
            }
        }
    }
    if let Ok(b) = Block::decode(data) {
        assert_eq!(b.encode(), data);
        let _ = b.hash();
    }
}
