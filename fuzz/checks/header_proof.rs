// A bundle's registry part as a verifier reads it — a header proof (genesis, signed
// header, facts with proofs) and the fact values inside it — and a command page as a
// worker reads it. Any bytes decode or give a
// typed error; what decodes re-encodes to the same bytes; checking it against a pin
// refuses or proves, never panics; each fact decoder reads a value exactly or refuses.
// Shared by the fuzz target and the test that replays its corpus.
use chain::facts::{read_allowed, read_contract, read_header_hash, read_rule, read_worker};
use chain::proof::{CommandPage, HeaderProof};
use phalanx_types::codec::Codec;

/// Panics only on a bug.
pub fn check(data: &[u8]) {
    if let Ok(p) = HeaderProof::from_bytes(data) {
        assert_eq!(p.to_bytes(), data);
        // Against its own genesis (the pin a forger would hope for) and another.
        for pin in [p.genesis.hash(), [0; 32]] {
            if let Ok(v) = p.verify(&pin) {
                for f in &p.facts {
                    let _ = v.fact(&chain::facts::Fact::Header(0));
                    let _ = v.worker(&f.key);
                    let _ = v.allowed(&f.key);
                    let _ = v.rule();
                }
            }
        }
    }
    if let Ok(page) = CommandPage::from_bytes(data) {
        assert_eq!(page.to_bytes(), data);
        let pin = page.proof.genesis.hash();
        let _ = page.verify(&pin, &[0; 32], 0, &[0; 32]);
    }
    let _ = chain::facts::read_commands(data);
    let _ = read_worker(b"k", data);
    let _ = read_allowed(b"m", data);
    let _ = read_contract(data);
    let _ = read_rule(data);
    let _ = read_header_hash(data);
}
