//! Flat cost (issue 26): an answer's bundle and its cold check against registries of 10²,
//! 10⁴ and 10⁶ blocks with 10⁵ registered workers besides the answering one. The
//! registry's part is a signed header and four proofs whatever the size; the check is
//! measured against the quote's own cold verification in the same run. Prints each
//! size's bundle and registry bytes.
//! `cargo bench -p phalanx-verify --bench registry`.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

#[path = "../tests/common/mod.rs"]
mod common;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("registry_size");
    g.sample_size(30);
    let mut quote_measured = false;
    for blocks in [100u64, 10_000, 1_000_000] {
        let w = common::world(common::Shape {
            synthetic: Some((100_000, blocks)),
            ..common::Shape::default()
        });
        let json = serde_json::to_vec(&w.bundle).unwrap();
        let registry = serde_json::to_vec(&w.bundle.registry).unwrap();
        let proofs: usize = w
            .bundle
            .registry
            .facts
            .iter()
            .map(|f| f.proof.len() * 3 / 4)
            .sum();
        eprintln!(
            "{blocks} blocks, 100001 workers: bundle {} bytes of JSON, registry part {} bytes \
             of JSON ({} bytes of raw proofs; quote {} and collateral {} bytes)",
            json.len(),
            registry.len(),
            proofs,
            w.bundle.evidence.quote.len() * 3 / 4,
            w.bundle.evidence.collateral.len(),
        );
        g.bench_with_input(
            BenchmarkId::new("whole_check_cold", blocks),
            &json,
            |b, json| {
                b.iter(|| {
                    let bundle = phalanx_verify::parse(black_box(json)).unwrap();
                    assert!(phalanx_verify::verify(&bundle, &w.options).ok);
                })
            },
        );
        let phalanx_verify::Pin::Ledger { genesis: pin } = w.options.pin else {
            unreachable!("the benchmark's registries are ledgers")
        };
        g.bench_with_input(
            BenchmarkId::new("registry_part", blocks),
            &w.bundle.registry,
            |b, r| b.iter(|| black_box(r).decode().unwrap().verify(&pin).unwrap()),
        );
        if !quote_measured {
            g.bench_function("parse_bundle_json", |b| {
                b.iter(|| phalanx_verify::parse(black_box(&json)).unwrap())
            });
            quote_measured = true;
            let (quote, collateral, at) = common::quote_and_collateral(&w.bundle);
            g.bench_function("quote_alone_cold", |b| {
                b.iter(|| {
                    phalanx_dcap::verify(black_box(&quote), &collateral, at, &w.options.anchors)
                        .unwrap()
                })
            });
            // The quote's evidence as a bundle carries it: the collateral's JSON parsed too.
            let text = w.bundle.evidence.collateral.clone();
            g.bench_function("quote_with_collateral_parse_cold", |b| {
                b.iter(|| {
                    let c = phalanx_dcap::Collateral::from_bundle_json(black_box(text.as_bytes()))
                        .unwrap();
                    phalanx_dcap::verify(black_box(&quote), &c, at, &w.options.anchors).unwrap()
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
