//! Load generator for the attestation service: throughput and p50/p99 latency at
//! several concurrency levels over real HTTP on loopback, and the ratio to in-process
//! verification throughput measured in the same run.
//!
//! ```sh
//! cargo run --release -p attestation-service --example loadgen -- [SECONDS] [CONCURRENCY,...]
//! ```
//!
//! Workloads: `verify/real` (the phala SGX v3 quote, Intel root, collateral imported,
//! service clock pinned to the vector's time), `verify/sim` and `attest/sim` (nonce →
//! quote bound to it → attest → token; the quote is made by the client, off the
//! server's books). The service runs in this process on its own 2-thread runtime, on a
//! real socket; the client uses a separate runtime. `in-process` is `Verifier::verify`
//! on 2 threads with the same quote and collateral, nothing else.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use attestation_service::app::App;
use attestation_service::config::{Config, RootKind};
use attestation_service::nonce::report_data;
use attestation_service::rest::system_now;
use attestation_service::service::Service;
use attestation_service::{Collateral, TrustAnchors, Verifier};
use base64::Engine as _;
use phalanx_dcap_sim::{SgxEnclave, SimTee};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The time of the real vector: its collateral is valid then.
const VECTOR_TIME: i64 = 1_750_334_171;

fn vector_clock() -> i64 {
    VECTOR_TIME
}

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// Starts a service for `config` with clock `now` on its own runtime; returns its
/// REST address (host:port) and the service (for admin set-up).
fn start(config: Config, now: fn() -> i64) -> (String, Arc<Service>) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("as-server".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("as-server")
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let app = App::open(config, now).unwrap();
                let rest = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx.send((rest.local_addr().unwrap(), app.service.clone()))
                    .unwrap();
                app.serve(rest, grpc, std::future::pending()).await.unwrap();
            });
        })
        .unwrap();
    let (addr, service) = rx.recv().unwrap();
    (addr.to_string(), service)
}

#[derive(Clone)]
enum Work {
    Verify(Arc<String>),
    Attest(Arc<SimTee>),
}

/// CPU seconds used so far by this process's threads named `as-server` (Linux).
fn server_cpu() -> f64 {
    phalanx_types::process::threads_cpu_seconds("as-server")
}

struct Run {
    server_cores: f64,
    ops: usize,
    secs: f64,
    p50: Duration,
    p99: Duration,
    errors: usize,
}

/// A minimal HTTP/1.1 keep-alive client: the load generator shares the two cores with
/// the service, so it spends as little CPU per request as it can.
struct Conn {
    io: tokio::io::BufStream<tokio::net::TcpStream>,
}

impl Conn {
    async fn open(addr: &str) -> std::io::Result<Self> {
        let s = tokio::net::TcpStream::connect(addr).await?;
        s.set_nodelay(true)?;
        Ok(Self {
            io: tokio::io::BufStream::new(s),
        })
    }

    async fn call(
        &mut self,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> std::io::Result<(u16, Vec<u8>)> {
        use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _};
        let head = format!(
            "{method} {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        self.io.write_all(head.as_bytes()).await?;
        self.io.write_all(body).await?;
        self.io.flush().await?;
        let mut line = String::new();
        self.io.read_line(&mut line).await?;
        let status: u16 = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let mut len = 0usize;
        loop {
            line.clear();
            if self.io.read_line(&mut line).await? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                len = v.trim().parse().unwrap_or(0);
            }
        }
        let mut out = vec![0; len];
        self.io.read_exact(&mut out).await?;
        Ok((status, out))
    }
}

async fn one(conn: &mut Conn, work: &Work) -> bool {
    match work {
        Work::Verify(body) => conn
            .call("POST", "/v1/verify", body.as_bytes())
            .await
            .is_ok_and(|(s, _)| s == 200),
        Work::Attest(sim) => {
            let Ok((200, n)) = conn.call("POST", "/v1/nonce", b"").await else {
                return false;
            };
            let Ok(n) = serde_json::from_slice::<serde_json::Value>(&n) else {
                return false;
            };
            let nonce = n["nonce"].as_str().unwrap_or_default().to_owned();
            let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(&nonce)
                .unwrap_or_default();
            let quote = sim
                .sgx_quote(
                    &SgxEnclave {
                        mr_enclave: [0x5a; 32],
                        ..SgxEnclave::default()
                    },
                    &report_data(&raw, b"load"),
                )
                .unwrap();
            let body = serde_json::json!({
                "quote": b64(&quote), "runtime_data": b64(b"load"), "nonce": nonce, "policy": "load",
            })
            .to_string();
            conn.call("POST", "/v1/attest", body.as_bytes())
                .await
                .is_ok_and(|(s, _)| s == 200)
        }
    }
}

fn load(addr: &str, work: &Work, concurrency: usize, secs: u64) -> Run {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let cpu0 = server_cpu();
        let start = Instant::now();
        let deadline = start + Duration::from_secs(secs);
        let mut tasks = Vec::new();
        for _ in 0..concurrency {
            let (addr, work) = (addr.to_owned(), work.clone());
            tasks.push(tokio::spawn(async move {
                let mut conn = Conn::open(&addr).await.unwrap();
                one(&mut conn, &work).await; // warm-up
                let mut lat = Vec::new();
                let mut errors = 0;
                while Instant::now() < deadline {
                    let t = Instant::now();
                    if one(&mut conn, &work).await {
                        lat.push(t.elapsed());
                    } else {
                        errors += 1;
                        conn = Conn::open(&addr).await.unwrap();
                    }
                }
                (lat, errors)
            }));
        }
        let mut all = Vec::new();
        let mut errors = 0;
        for t in tasks {
            let (l, e) = t.await.unwrap();
            all.extend(l);
            errors += e;
        }
        let secs = start.elapsed().as_secs_f64();
        let server_cores = (server_cpu() - cpu0) / secs;
        all.sort();
        let pct = |p: f64| {
            all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
                .copied()
                .unwrap_or_default()
        };
        Run {
            server_cores,
            ops: all.len(),
            secs,
            p50: pct(0.50),
            p99: pct(0.99),
            errors,
        }
    })
}

/// `Verifier::verify` on 2 threads for `secs`: operations per second.
fn in_process(
    verifier: Arc<Verifier>,
    quote: Arc<Vec<u8>>,
    c: Arc<Collateral>,
    now: i64,
    secs: u64,
) -> f64 {
    let start = Instant::now();
    let deadline = start + Duration::from_secs(secs);
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let (v, q, c) = (verifier.clone(), quote.clone(), c.clone());
            std::thread::spawn(move || {
                let mut n = 0u64;
                while Instant::now() < deadline {
                    v.verify(&q, &c, now).unwrap();
                    n += 1;
                }
                n
            })
        })
        .collect();
    let n: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    n as f64 / start.elapsed().as_secs_f64()
}

fn report(name: &str, base: &str, work: &Work, levels: &[usize], secs: u64, floor: f64) {
    for &c in levels {
        let r = load(base, work, c, secs);
        let tput = r.ops as f64 / r.secs;
        // `floor` is 2 threads' worth: per core it is floor / 2.
        println!(
            "{name:<12} c={c:<4} {tput:>8.0} ops/s  p50 {:>6.2} ms  p99 {:>6.2} ms  err {:<3} | ratio {:.2} | server {:.2} cores, per server core {:.2} of in-process",
            r.p50.as_secs_f64() * 1e3,
            r.p99.as_secs_f64() * 1e3,
            r.errors,
            tput / floor,
            r.server_cores,
            tput / r.server_cores.max(1e-9) / (floor / 2.0)
        );
    }
}

/// Long on purpose: one load run read top to bottom (arguments, the service, the
/// in-process floor, each concurrency), as its printed report is.
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let secs: u64 = args.first().and_then(|s| s.parse().ok()).unwrap_or(5);
    let levels: Vec<usize> = args
        .get(1)
        .map(|s| s.split(',').filter_map(|n| n.parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 4, 16, 64]);
    let tmp = std::env::temp_dir().join(format!("phalanx-loadgen-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);

    // Real quote, Intel root, the service's clock pinned to the vector's time.
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/dcap/testdata/dcap/phala");
    let quote = std::fs::read(format!("{dir}/sgx_quote")).unwrap();
    let collateral = Collateral::from_bundle_json(
        &std::fs::read(format!("{dir}/sgx_quote_collateral.json")).unwrap(),
    )
    .unwrap();
    let mut config = Config {
        data_dir: tmp.join("real"),
        ..Config::default()
    };
    config.trust.root = RootKind::Intel;
    config.admin.token = Some("loadgen-admin-secret".into());
    let (base, service) = start(config, vector_clock);
    service.import_collateral(&collateral).unwrap();
    let floor = in_process(
        Arc::new(Verifier::new(TrustAnchors::intel())),
        Arc::new(quote.clone()),
        Arc::new(collateral),
        VECTOR_TIME,
        secs,
    );
    println!("in-process   verify/real  2 threads {floor:>8.0} ops/s");
    let body = Arc::new(serde_json::json!({ "quote": b64(&quote) }).to_string());
    report(
        "verify/real",
        &base,
        &Work::Verify(body),
        &levels,
        secs,
        floor,
    );

    // The simulated TEE at the wall clock.
    let sim_dir = tmp.join("sim");
    std::fs::create_dir_all(&sim_dir).unwrap();
    let policy = sim_dir.join("load.toml");
    std::fs::write(
        &policy,
        format!(
            "id = \"load\"\nversion = 1\n[[sgx]]\nmr_enclave = \"{}\"\n",
            hex::encode([0x5a; 32])
        ),
    )
    .unwrap();
    let mut config = Config {
        data_dir: sim_dir.join("data"),
        policies: vec![policy],
        ..Config::default()
    };
    config.trust.root = RootKind::Sim;
    config.admin.token = Some("loadgen-admin-secret".into());
    let (base, _) = start(config, system_now);
    let sim =
        SimTee::from_json(&std::fs::read_to_string(sim_dir.join("data/sim/sim.json")).unwrap())
            .unwrap();
    let now = system_now();
    let sim_quote = sim
        .sgx_quote(
            &SgxEnclave {
                mr_enclave: [0x5a; 32],
                ..SgxEnclave::default()
            },
            &[0; 64],
        )
        .unwrap();
    let floor = in_process(
        Arc::new(Verifier::new(sim.trust_anchors())),
        Arc::new(sim_quote.clone()),
        Arc::new(sim.collateral(attestation_service::TeeType::Sgx).unwrap()),
        now,
        secs,
    );
    println!("in-process   verify/sim   2 threads {floor:>8.0} ops/s");
    let body = Arc::new(serde_json::json!({ "quote": b64(&sim_quote) }).to_string());
    report(
        "verify/sim",
        &base,
        &Work::Verify(body),
        &levels,
        secs,
        floor,
    );
    report(
        "attest/sim",
        &base,
        &Work::Attest(Arc::new(sim)),
        &levels,
        secs,
        floor,
    );
    println!(
        "peak RSS {:.1} MiB (the service and the load generator, one process)",
        phalanx_types::process::peak_rss_mib().unwrap_or(f64::NAN)
    );
    let _ = std::fs::remove_dir_all(&tmp);
}
