// The keyvault's strict codec, as peers, workers and the registry feed it: round
// specs, commit certificates, public key sets, worker runtime data and partial
// evaluations. Any bytes decode or give a typed error; canonical encodings round-trip.
// Shared by the fuzz target and the test that replays its corpus.
use phalanx_threshold::round::{CommitCertificate, RoundSpec};

/// Panics only on a bug.
pub fn check(data: &[u8]) {
    if let Ok(spec) = RoundSpec::decode(data) {
        // Whatever decodes is a valid spec whose id is defined.
        let _ = spec.id();
        assert!(RoundSpec::decode(&spec.encode()).is_ok());
    }
    if let Ok(c) = CommitCertificate::decode(data) {
        assert_eq!(c.encode(), data);
    }
    if let Ok(p) = phalanx_threshold::wire::public_set_from_bytes(data) {
        assert_eq!(phalanx_threshold::wire::public_set_bytes(&p), data);
    }
    if let Ok(rd) = phalanx_release::release::WorkerRuntimeData::decode(data) {
        assert_eq!(rd.encode(), data);
    }
    // A partial evaluation as a worker opens it from a gatekeeper's answer.
    if let Ok(p) = phalanx_threshold::derive::PartialEvaluation::from_bytes(data) {
        assert_eq!(p.to_bytes(), data);
    }
}
