// The initdata parser a TD worker runs on a document its host mounts: any bytes are
// refused with a named error (or parsed), never a panic; a parsed document's
// MRCONFIGID is its digest. Shared by the fuzz target and the test that replays its
// corpus.
use pruntime::initdata::InitData;

/// Panics only on a bug.
pub fn check(data: &[u8]) {
    if let Ok(i) = InitData::parse(data) {
        assert!(!i.gatekeeper_trust_roots.is_empty());
        assert_ne!(i.mr_config_id, [0u8; 48]);
    }
}
