//! The `initdata` fuzz target's check (`fuzz/checks/initdata.rs`), replayed over its
//! corpus (`fuzz/corpus/initdata/`) and every prefix of each input, so every document a
//! fuzzer found interesting stays a test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod initdata {
    include!("../../fuzz/checks/initdata.rs");
}

#[test]
fn initdata_corpus_replays() {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/initdata");
    let mut inputs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    inputs.sort();
    assert!(inputs.len() >= 5, "the seeds are in {}", dir.display());
    let mut parsed = 0;
    for data in &inputs {
        if pruntime::initdata::InitData::parse(data).is_ok() {
            parsed += 1;
        }
        for cut in 0..=data.len() {
            initdata::check(&data[..cut]);
        }
    }
    // The shipped production document and the devnet-shaped one parse.
    assert_eq!(parsed, 2);
}
