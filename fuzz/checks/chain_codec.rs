// The registry's transactions and blocks, as a light client reads them off the
// network: any bytes decode or give a typed error, and what decodes re-encodes to the
// same bytes (one encoding per value, so hashes and signatures are unambiguous).
// Shared by the fuzz target and the test that replays its corpus.
use chain::types::{Block, SignedTx};

/// Panics only on a bug.
pub fn check(data: &[u8]) {
    if let Ok(tx) = SignedTx::decode(data) {
        assert_eq!(tx.encode(), data);
    }
    if let Ok(b) = Block::decode(data) {
        assert_eq!(b.encode(), data);
        let _ = b.hash();
    }
}
