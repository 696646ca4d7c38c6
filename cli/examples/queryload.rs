//! pRuntime load: the devnet in-process (attestation service, five gatekeepers, the
//! registry, one worker serving the examples), then
//!
//! 1. queries against the worker over loopback HTTP at each concurrency for a few
//!    seconds, on the counter and on the auction: throughput and latency p50 / p99 (each query signed and sealed by the
//!    client beforehand, so the client's own crypto is not timed);
//! 2. end-to-end latency of a command: from submitting it to the registry until the
//!    worker has applied its block (its effect is queryable), p50 / p99 over 30 commands.
//!
//! `scripts/queryload.sh [SECONDS] [CONCURRENCY,...]`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use pruntime::protocol::{Bounds, Query};
use std::time::{Duration, Instant};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let seconds: u64 = args.get(1).map_or(Ok(5), |s| s.parse())?;
    let levels: Vec<usize> = args
        .get(2)
        .map_or("1,4,16", String::as_str)
        .split(',')
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    let dir = tempfile::tempdir()?;
    eprintln!("starting the devnet in {}", dir.path().display());
    let devnet = phalanx_cli::devnet::start(dir.path()).await?;
    let s = devnet.summary.clone();
    let mut contract = [0u8; 32];
    hex::decode_to_slice(&s.contract, &mut contract)?;
    let mut genesis = [0u8; 32];
    hex::decode_to_slice(&s.chain_genesis, &mut genesis)?;
    let client = chain::grpc::LightClient::pinned(&s.chain, genesis);
    let worker = devnet.worker.identity_key();
    let hpke = client
        .sync()
        .await?
        .worker(&worker)
        .expect("the worker is registered")
        .hpke_key
        .clone();
    let http = reqwest::Client::new();
    let url = format!("{}/v1/query", s.pruntime);

    println!("queries against one worker (loopback HTTP, {seconds} s per level)");
    let mut auction = [0u8; 32];
    hex::decode_to_slice(&s.examples["auction"], &mut auction)?;
    // The counter's query reads two entries; the auction's status query (`1`) three.
    for (name, id, input) in [
        ("counter", contract, &b"read"[..]),
        ("auction", auction, &[1u8][..]),
    ] {
        println!("{name}: concurrency | queries/s | p50 | p99");
        load(&http, &url, (&worker, &hpke), (id, input), &levels, seconds).await?;
    }

    println!("command end to end (submit to the registry → applied by the worker), 30 commands");
    let user = chain::random_key();
    let mut lat = Vec::new();
    for _ in 0..30 {
        let t = Instant::now();
        let h = pruntime::client::send_command(&client, &user, contract, b"bump").await?;
        loop {
            let at = devnet
                .worker
                .info()
                .contracts
                .iter()
                .find(|c| c.id == s.contract)
                .map_or(0, |c| c.height);
            if at >= h {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        lat.push(t.elapsed());
    }
    lat.sort();
    println!(
        "p50 {} | p99 {}",
        ms(percentile(&lat, 0.5)),
        ms(percentile(&lat, 0.99))
    );
    devnet.stop().await?;
    Ok(())
}

/// Queries `input` of contract `id` on the worker (identity and HPKE key `to`) at each
/// concurrency for `seconds`: throughput, p50 and p99, one line per level.
async fn load(
    http: &reqwest::Client,
    url: &str,
    (worker, hpke): (&[u8], &[u8]),
    (contract, input): ([u8; 32], &[u8]),
    levels: &[usize],
    seconds: u64,
) -> anyhow::Result<()> {
    for &level in levels {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..level {
            let (http, url, worker, hpke, input) = (
                http.clone(),
                url.to_owned(),
                worker.to_vec(),
                hpke.to_vec(),
                input.to_vec(),
            );
            set.spawn(async move {
                let user = chain::random_key();
                let reply = keyvault::envelope::RecipientKey::generate(&mut rand::rng());
                let mut lat = Vec::new();
                while Instant::now() < deadline {
                    let q = Query::new(
                        &user,
                        &reply,
                        &worker,
                        &hpke,
                        contract,
                        &input,
                        Bounds::default(),
                    )
                    .unwrap()
                    .0;
                    let body = serde_json::to_vec(&q).unwrap();
                    let t = Instant::now();
                    let r = http
                        .post(&url)
                        .header("content-type", "application/json")
                        .body(body)
                        .send()
                        .await
                        .unwrap();
                    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
                    r.bytes().await.unwrap();
                    lat.push(t.elapsed());
                }
                lat
            });
        }
        let mut all = Vec::new();
        while let Some(l) = set.join_next().await {
            all.extend(l?);
        }
        all.sort();
        println!(
            "{level:>11} | {:>9.0} | {} | {}",
            all.len() as f64 / seconds as f64,
            ms(percentile(&all, 0.5)),
            ms(percentile(&all, 0.99)),
        );
    }

    Ok(())
}
