//! Three replicas of the `attestation-service` binary behind no balancer at all (each
//! request goes to a replica of the test's choosing), sharing one cluster secret and one
//! Redis: a nonce issued by any replica is redeemed at any other exactly once, every
//! replica publishes the same JWKS, and a replica killed mid-load loses no accepted
//! attestation (its tokens verify, its nonces stay redeemed, a restarted replica agrees).
//!
//! Needs `redis-server` (Debian package `redis-server`, installed by
//! `scripts/ensure-deps.sh`). Without it these tests say so and pass, unless
//! `PHALANX_REQUIRE_REDIS=1` (set by `.ci/run`), which makes its absence a failure.
#![cfg(feature = "server")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use support::*;

const SECRET: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";

/// A Redis server on a loopback port of its own, stopped on drop.
struct Redis {
    child: std::process::Child,
    url: String,
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn redis(dir: &Path) -> Option<Redis> {
    let Ok(bin) = which("redis-server") else {
        assert!(
            std::env::var_os("PHALANX_REQUIRE_REDIS").is_none(),
            "PHALANX_REQUIRE_REDIS is set but redis-server is not installed"
        );
        eprintln!("SKIPPED: redis-server is not installed (Debian package redis-server)");
        return None;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = std::process::Command::new(bin)
        .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
        .args(["--save", "", "--appendonly", "no", "--dir"])
        .arg(dir)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for(port);
    Some(Redis {
        child,
        url: format!("redis://127.0.0.1:{port}/0"),
    })
}

/// Waits until something listens on `port` (a redis-server starting).
fn wait_for(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "redis-server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn which(name: &str) -> Result<PathBuf, ()> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or(())
}

/// Replica `i`'s config under `dir`: the one simulated PKI copied into its data
/// directory (every replica trusts the same root), the shared secret and store.
fn replica_config(dir: &Path, i: usize, sim: &phalanx_dcap_sim::SimTee, redis: &str) -> PathBuf {
    let data = dir.join(format!("replica-{i}"));
    std::fs::create_dir_all(data.join("sim")).unwrap();
    std::fs::write(data.join("sim/sim.json"), sim.to_json()).unwrap();
    std::fs::write(dir.join("app.toml"), policy_toml("app", 1)).unwrap();
    std::fs::write(dir.join("cluster.secret"), SECRET).unwrap();
    let config = dir.join(format!("replica-{i}.toml"));
    std::fs::write(
        &config,
        format!(
            "data_dir = \"replica-{i}\"\npolicies = [\"app.toml\"]\n\
             [trust]\nroot = \"sim\"\n\
             [listen]\nrest = \"127.0.0.1:0\"\ngrpc = \"127.0.0.1:0\"\n\
             [token]\nissuer = \"https://attestation.phalanx.test\"\n\
             [cluster]\nsecret_file = \"cluster.secret\"\nreplay_store = \"{redis}\"\n\
             replay_store_timeout_ms = 500\n"
        ),
    )
    .unwrap();
    config
}

fn sim() -> phalanx_dcap_sim::SimTee {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    phalanx_dcap_sim::SimTee::generate(phalanx_dcap_sim::SimConfig::up_to_date(now - 3600)).unwrap()
}

struct Client {
    http: reqwest::Client,
    sim: phalanx_dcap_sim::SimTee,
}

/// What one attempt got back.
#[derive(Debug)]
enum Outcome {
    /// 200 and the token.
    Token(String),
    /// An error answer: status and code.
    Refused(u16, String),
    /// No answer (connection refused or reset).
    NoAnswer,
}

impl Client {
    async fn nonce(&self, rest: &str) -> Option<String> {
        let r = self
            .http
            .post(format!("http://{rest}/v1/nonce"))
            .send()
            .await
            .ok()?;
        let v: serde_json::Value = r.json().await.ok()?;
        Some(v["nonce"].as_str()?.to_owned())
    }

    async fn attest(&self, rest: &str, nonce: &str) -> Outcome {
        let body = serde_json::json!({
            "quote": b64(&quote_for(&self.sim, nonce, b"rt")), "runtime_data": b64(b"rt"),
            "nonce": nonce, "policy": "app",
        });
        let Ok(r) = self
            .http
            .post(format!("http://{rest}/v1/attest"))
            .json(&body)
            .send()
            .await
        else {
            return Outcome::NoAnswer;
        };
        let status = r.status().as_u16();
        let Ok(v) = r.json::<serde_json::Value>().await else {
            return Outcome::NoAnswer;
        };
        if status == 200 {
            Outcome::Token(v["token"].as_str().unwrap().to_owned())
        } else {
            Outcome::Refused(status, v["error"].as_str().unwrap_or_default().to_owned())
        }
    }

    async fn jwks(&self, rest: &str) -> serde_json::Value {
        self.http
            .get(format!("http://{rest}/.well-known/jwks.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

fn replayed(o: &Outcome) -> bool {
    matches!(o, Outcome::Refused(401, code) if code == "bad_nonce")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nonce_from_one_replica_is_redeemed_at_another_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let Some(redis) = redis(dir.path()) else {
        return;
    };
    let sim = sim();
    let replicas: Vec<Process> = (0..3)
        .map(|i| Process::start(&replica_config(dir.path(), i, &sim, &redis.url)))
        .collect();
    let rest: Vec<String> = replicas.iter().map(|p| p.rest.clone()).collect();
    let c = Client {
        http: reqwest::Client::new(),
        sim,
    };
    let jwks = c.jwks(&rest[0]).await;
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
    for r in &rest[1..] {
        assert_eq!(
            c.jwks(r).await,
            jwks,
            "every replica publishes the same key"
        );
    }
    for i in 0..9 {
        let nonce = c.nonce(&rest[i % 3]).await.unwrap();
        let Outcome::Token(token) = c.attest(&rest[(i + 1) % 3], &nonce).await else {
            panic!(
                "a nonce of replica {} refused at replica {}",
                i % 3,
                (i + 1) % 3
            );
        };
        assert_eq!(check_token(&token, &jwks)["ear.status"], "affirming");
        // Nowhere a second time: not at a third replica, not at the issuer, not again.
        for j in [i + 2, i, i + 1] {
            let again = c.attest(&rest[j % 3], &nonce).await;
            assert!(replayed(&again), "replica {}: {again:?}", j % 3);
        }
    }
    // Policies and the signing key are the cluster's, not one replica's.
    let put = c
        .http
        .put(format!("http://{}/v1/policies/app", rest[1]))
        .bearer_auth(ADMIN)
        .json(&serde_json::json!({
            "id": "app", "version": 2, "sgx": [{ "mr_enclave": hex::encode(MR_ENCLAVE) }],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 409);
    let rotate = c
        .http
        .post(format!("http://{}/v1/admin/signing-key/rotate", rest[2]))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(rotate.status(), 409);
    assert_eq!(
        rotate.json::<serde_json::Value>().await.unwrap()["error"],
        "cluster_managed"
    );

    // The store away: attestations fail closed within the store's timeout (503), and
    // nothing is accepted without it.
    let nonce = c.nonce(&rest[0]).await.unwrap();
    drop(redis);
    let start = Instant::now();
    let o = c.attest(&rest[1], &nonce).await;
    assert!(
        matches!(&o, Outcome::Refused(503, code) if code == "replay_store_unavailable"),
        "{o:?}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    for p in replicas {
        let (_, log) = p.stop("-TERM");
        assert!(!log.contains(SECRET), "the cluster secret reached the log");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_mid_load_loses_no_accepted_attestation() {
    let dir = tempfile::tempdir().unwrap();
    let Some(redis) = redis(dir.path()) else {
        return;
    };
    let sim = sim();
    let configs: Vec<PathBuf> = (0..3)
        .map(|i| replica_config(dir.path(), i, &sim, &redis.url))
        .collect();
    let mut replicas: Vec<Option<Process>> =
        configs.iter().map(|c| Some(Process::start(c))).collect();
    let rest: Vec<String> = replicas
        .iter()
        .map(|p| p.as_ref().unwrap().rest.clone())
        .collect();
    let c = std::sync::Arc::new(Client {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap(),
        sim,
    });
    let jwks = c.jwks(&rest[0]).await;

    // Four clients, each spreading nonce and attest over the replicas, until stopped.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = Vec::new();
    for w in 0..4usize {
        let (c, rest, stop) = (c.clone(), rest.clone(), stop.clone());
        load.push(tokio::spawn(async move {
            let mut accepted = Vec::new();
            let mut unanswered = 0usize;
            let mut i = w;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                i += 1;
                let Some(nonce) = c.nonce(&rest[i % 3]).await else {
                    unanswered += 1;
                    continue;
                };
                match c.attest(&rest[(i + 1) % 3], &nonce).await {
                    Outcome::Token(t) => accepted.push((nonce, t)),
                    Outcome::NoAnswer => unanswered += 1,
                    Outcome::Refused(s, code) => panic!("refused {s} {code}"),
                }
            }
            (accepted, unanswered)
        }));
    }
    let count_before = Instant::now();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (_, _) = replicas[2].take().unwrap().stop("-KILL");
    let killed_at = count_before.elapsed();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut accepted = Vec::new();
    let mut unanswered = 0;
    for l in load {
        let (a, u) = l.await.unwrap();
        accepted.extend(a);
        unanswered += u;
    }
    eprintln!(
        "{} accepted, {unanswered} unanswered (replica 2 killed at {killed_at:?})",
        accepted.len()
    );
    assert!(accepted.len() > 20, "too little load: {}", accepted.len());
    assert!(unanswered > 0, "the kill did not land mid-load");

    // Every accepted attestation stands: its token verifies with the survivors' JWKS,
    // its nonce is redeemed once and for all, also at the killed replica restarted.
    let restarted = Process::start(&configs[2]);
    assert_eq!(c.jwks(&restarted.rest).await, jwks);
    let mut nonces = HashSet::new();
    for (k, (nonce, token)) in accepted.iter().enumerate() {
        assert!(nonces.insert(nonce), "a nonce was accepted twice");
        assert_eq!(check_token(token, &jwks)["ear.status"], "affirming");
        let at = [&rest[0], &rest[1], &restarted.rest][k % 3];
        let again = c.attest(at, nonce).await;
        assert!(replayed(&again), "{again:?}");
    }
    drop(replicas);
    drop(restarted);
}

#[test]
fn a_shared_secret_without_a_shared_store_does_not_start() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cluster.secret"), SECRET).unwrap();
    std::fs::write(dir.path().join("short.secret"), "too short").unwrap();
    let with = |secret: Option<&str>, store: Option<&str>| {
        let mut c = config(dir.path());
        c.cluster.secret_file = secret.map(|s| dir.path().join(s));
        c.cluster.replay_store = store.map(str::to_owned);
        attestation_service::app::App::open(c, clock)
            .map(|_| ())
            .unwrap_err()
            .to_string()
    };
    assert!(with(Some("cluster.secret"), None).contains("needs both"));
    assert!(with(None, Some("redis://127.0.0.1:1/0")).contains("needs both"));
    assert!(with(Some("short.secret"), Some("redis://127.0.0.1:1/0")).contains("32"));
    assert!(with(Some("cluster.secret"), Some("http://x")).contains("replay store URL"));
}

/// NL7: redemption is judged by the store's clock. A replica whose own clock lags (here
/// by about a year: it checked the nonce "then") cannot redeem a nonce that has expired
/// by the store's clock, so there is no window in which it is unexpired for the
/// replica and already forgotten by the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_nl7_a_lagging_replica_cannot_redeem_an_expired_nonce() {
    use attestation_service::cluster::{ReplayError, SharedReplay};
    use attestation_service::nonce::NonceKey;
    let dir = tempfile::tempdir().unwrap();
    let Some(redis) = redis(dir.path()) else {
        return;
    };
    let store = SharedReplay::new(&redis.url, None, None, false, Duration::from_secs(5)).unwrap();
    let key = NonceKey::new(&[7; 32]);
    let lagging_now = 1_760_000_000;
    let old = key.issue(lagging_now, 300, [1; 16]);
    let checked = key.check(&old, lagging_now + 10).unwrap();
    assert!(matches!(
        store.consume(&checked).await,
        Err(ReplayError::Expired(_))
    ));
    // A nonce live by the store's clock is redeemed once.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let fresh = key.check(&key.issue(now, 300, [2; 16]), now).unwrap();
    store.consume(&fresh).await.unwrap();
    assert!(matches!(
        store.consume(&fresh).await,
        Err(ReplayError::Replayed)
    ));
}

/// A `redis-server` speaking TLS only, with a certificate for 127.0.0.1 from a fresh CA;
/// its `rediss://` URL and the CA (PEM).
fn tls_redis(dir: &Path) -> Option<(Redis, String)> {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let bin = which("redis-server").ok()?;
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    std::fs::write(dir.join("redis.crt"), cert.pem()).unwrap();
    std::fs::write(dir.join("redis.key"), key.serialize_pem()).unwrap();
    std::fs::write(dir.join("ca.crt"), ca_cert.pem()).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = std::process::Command::new(bin)
        .args([
            "--bind",
            "127.0.0.1",
            "--port",
            "0",
            "--tls-port",
            &port.to_string(),
        ])
        .arg("--tls-cert-file")
        .arg(dir.join("redis.crt"))
        .arg("--tls-key-file")
        .arg(dir.join("redis.key"))
        .arg("--tls-ca-cert-file")
        .arg(dir.join("ca.crt"))
        .args([
            "--tls-auth-clients",
            "no",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
        ])
        .arg(dir)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for(port);
    Some((
        Redis {
            child,
            url: format!("rediss://127.0.0.1:{port}/0"),
        },
        ca_cert.pem(),
    ))
}

/// The replay store over TLS (review: traffic to Redis in clear let a network attacker
/// answer for it): `rediss://` to a certificate from the configured CA redeems once;
/// another CA's certificate gets no connection (fail closed); `redis://` beyond loopback
/// is refused unless dangerous.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_replay_store_speaks_tls() {
    use attestation_service::cluster::SharedReplay;
    use attestation_service::nonce::NonceKey;
    let dir = tempfile::tempdir().unwrap();
    let Some((redis, ca)) = tls_redis(dir.path()) else {
        assert!(
            std::env::var_os("PHALANX_REQUIRE_REDIS").is_none(),
            "PHALANX_REQUIRE_REDIS is set but redis-server is not installed"
        );
        return;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let key = NonceKey::new(&[7; 32]);
    let nonce = key.check(&key.issue(now, 300, [3; 16]), now).unwrap();
    let over_tls = |ca: String| {
        SharedReplay::new(
            &redis.url,
            None,
            Some(ca.into_bytes()),
            false,
            Duration::from_secs(5),
        )
        .unwrap()
    };
    let store = over_tls(ca);
    store.consume(&nonce).await.unwrap();
    assert!(store.consume(&nonce).await.is_err());
    // A store whose certificate this CA did not sign: nothing is redeemed.
    let other = tempfile::tempdir().unwrap();
    let (other_redis, other_ca) = tls_redis(other.path()).unwrap();
    drop(other_redis);
    let impostor = over_tls(other_ca);
    let fresh = key.check(&key.issue(now, 300, [4; 16]), now).unwrap();
    assert!(impostor.consume(&fresh).await.is_err());
    // In clear beyond loopback: refused, unless dangerous. Only a literal loopback
    // address or `localhost` counts as loopback.
    for far in [
        "redis://10.0.0.1:6379/0",
        "redis://attestation-replay:6379/0",
        "redis://127.0.0.1.evil.example:6379/0",
        "redis://localhost.:6379/0",
        "redis://[::ffff:10.0.0.1]:6379/0",
    ] {
        let e = SharedReplay::new(far, None, None, false, Duration::from_secs(1)).unwrap_err();
        assert!(e.to_string().contains("TLS"), "{far}: {e}");
        SharedReplay::new(far, None, None, true, Duration::from_secs(1)).unwrap();
    }
    for near in [
        "redis://127.0.0.1:6379/0",
        "redis://127.3.2.1:6379/0",
        "redis://[::1]:6379/0",
        "redis://localhost:6379/0",
    ] {
        SharedReplay::new(near, None, None, false, Duration::from_secs(1)).unwrap();
    }
    // A CA file for a store not reached over TLS is a mistake, said so.
    for plain in ["redis://127.0.0.1:6379/0", "redis+unix:///tmp/redis.sock"] {
        let e = SharedReplay::new(
            plain,
            None,
            Some(b"x".to_vec()),
            false,
            Duration::from_secs(1),
        )
        .unwrap_err();
        assert!(e.to_string().contains("rediss://"), "{plain}: {e}");
    }
}
