//! The fuzz targets' checks (`fuzz/checks/`), replayed over their corpora
//! (`fuzz/corpus/<target>/`), so every input a fuzzer found interesting stays a test.
//! `cargo test -p phalanx-release --test fuzz_corpus -- --ignored` rewrites the seed inputs.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

mod keyvault_wire {
    include!("../../../fuzz/checks/keyvault_wire.rs");
}
mod release_token {
    include!("../../../fuzz/checks/release_token.rs");
}

use common::*;
use phalanx_types::Epoch;
use std::path::PathBuf;

fn dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target)
}

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let mut out: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(dir(target))
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            let data = std::fs::read(&p).unwrap();
            (p, data)
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no corpus for {target}");
    out.into_iter().map(|(_, d)| d).collect()
}

#[test]
fn keyvault_wire_corpus_replays() {
    for data in corpus("keyvault_wire") {
        keyvault_wire::check(&data);
        for cut in 0..data.len() {
            keyvault_wire::check(&data[..cut]);
        }
    }
}

#[test]
fn release_token_corpus_replays() {
    for data in corpus("release_token") {
        release_token::check(&data);
    }
}

/// Writes the seed inputs: one valid value of each kind.
#[test]
#[ignore]
fn write_seeds() {
    use phalanx_threshold::round::{CommitCertificate, Participant, RoundKind, RoundSpec};
    use phalanx_threshold::share::{NodeIndex, SecretScalar, dealer_split};
    let mut rng = rand::rng();
    let (shares, public) =
        dealer_split(&SecretScalar::new(p256::Scalar::from(9u64)), 2, 3, &mut rng).unwrap();
    let keys: Vec<_> = (0..3)
        .map(|_| phalanx_threshold::identity::IdentityKey::generate(&mut rng))
        .collect();
    let participants = (1u16..)
        .zip(&keys)
        .map(|(i, k)| Participant {
            index: NodeIndex::new(i).unwrap(),
            identity: k.verifying_key(),
            url: format!("https://10.0.0.{i}:7200"),
        })
        .collect();
    let spec = RoundSpec::new(
        [1; 16],
        RoundKind::Reshare {
            epoch: Epoch(3),
            dealers: vec![NodeIndex::new(1).unwrap(), NodeIndex::new(2).unwrap()],
            new_threshold: 2,
        },
        participants,
    )
    .unwrap();
    let mut cert = CommitCertificate::default();
    for (i, _) in (1u16..).zip(&keys) {
        cert.confirmations
            .insert(NodeIndex::new(i).unwrap(), [i as u8; 64]);
    }
    let w = worker(MR, MR, "sim");
    let partial =
        phalanx_threshold::derive::evaluate(&shares[0], &key_id(0, "t"), &mut rng).unwrap();
    let seeds: [(&str, &str, Vec<u8>); 7] = [
        ("keyvault_wire", "round_spec", spec.encode()),
        ("keyvault_wire", "certificate", cert.encode()),
        (
            "keyvault_wire",
            "public_set",
            phalanx_threshold::wire::public_set_bytes(&public),
        ),
        ("keyvault_wire", "runtime_data", w.runtime_data.clone()),
        ("keyvault_wire", "partial", partial.to_bytes()),
        ("release_token", "token", w.token.clone().into_bytes()),
        ("release_token", "claims", {
            use base64::Engine as _;
            let payload = w.token.split('.').nth(1).unwrap();
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .unwrap()
        }),
    ];
    for (target, name, data) in seeds {
        std::fs::create_dir_all(dir(target)).unwrap();
        std::fs::write(dir(target).join(name), data).unwrap();
    }
}
