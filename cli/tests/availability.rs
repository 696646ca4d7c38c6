//! Availability with processes: the devnet (attestation service, five gatekeepers, the
//! registry) in one process, pRuntime workers in others. Two workers serve the counter;
//! commands go through the registry; both answer identically (same height, state root,
//! output); one is SIGKILLed and the other still answers; a third joins later, catches up
//! from the chain and answers identically; a checkpoint edited on disk is refused (the
//! worker replays from the chain instead) and an intact one is restored; a rotation
//! reaches a running worker, which takes up the new epoch's contract keys.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};
mod common;

use common::{Proc, devnet};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The devnet in `root/devnet`, serving: its process, its summary, its contract and a
/// light client of its registry.
fn served_devnet(root: &Path) -> (Proc, serde_json::Value, [u8; 32], chain::grpc::LightClient) {
    let (proc, summary) = devnet(&root.join("devnet"));
    let hex32 = |k: &str| {
        let mut b = [0u8; 32];
        hex::decode_to_slice(summary[k].as_str().unwrap(), &mut b).unwrap();
        b
    };
    let (contract, genesis) = (hex32("contract"), hex32("chain_genesis"));
    let client = chain::grpc::LightClient::pinned(summary["chain"].as_str().unwrap(), genesis);
    (proc, summary, contract, client)
}

struct Worker {
    proc: Proc,
    url: String,
    log: PathBuf,
    /// The devnet's counter (hex id), whose position the tests follow.
    counter: String,
}

/// `phalanx pruntime` serving the devnet's contract, logging to `<data>.log`.
fn worker(root: &Path, name: &str, summary: &serde_json::Value) -> Worker {
    let sim = root.join("devnet/attestation/sim/sim.json");
    worker_with(root, name, summary, &["--sim-pki", sim.to_str().unwrap()])
}

/// The same with other TEE flags.
fn worker_with(root: &Path, name: &str, summary: &serde_json::Value, tee: &[&str]) -> Worker {
    let data = root.join(name);
    let log = root.join(format!("{name}.log"));
    // A restarted worker appends to its log: only what it writes from now on counts.
    let seen = std::fs::metadata(&log).map_or(0, |m| m.len() as usize);
    let s = |k: &str| summary[k].as_str().unwrap().to_owned();
    let child = Command::new(env!("CARGO_BIN_EXE_phalanx"))
        .args([
            "pruntime",
            "--data-dir",
            data.to_str().unwrap(),
            "--attestation-url",
            &s("attestation_rest"),
            "--policy",
            "devnet",
            "--registry-url",
            &s("chain"),
            "--genesis",
            &s("chain_genesis"),
            "--contract",
            &s("contract"),
            "--listen",
            "127.0.0.1:0",
            "--gatekeeper-trust-root",
            "sim",
            "--gatekeeper-policy",
            "devnet",
        ])
        .args(tee)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(
            std::fs::File::options()
                .create(true)
                .append(true)
                .open(&log)
                .unwrap(),
        )
        .spawn()
        .unwrap();
    // Booted once it logs where it listens (the port is the kernel's choice, so
    // workers of tests running side by side never share one); or it exited.
    let mut proc = Proc(child);
    let deadline = Instant::now() + Duration::from_secs(120);
    let url = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let text = text.get(seen..).unwrap_or_default();
        if let Some(at) = text.rfind("serving queries listen=") {
            let addr = text[at + "serving queries listen=".len()..]
                .split_whitespace()
                .next()
                .unwrap()
                .to_owned();
            break format!("http://{addr}");
        }
        if proc.0.try_wait().unwrap().is_some() {
            break String::new();
        }
        assert!(
            Instant::now() < deadline,
            "worker {name} did not boot: {text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    Worker {
        proc,
        url,
        log,
        counter: s("contract"),
    }
}

/// A registration of `key` as the simulated enclave `mr_enclave` on the devnet's
/// simulated platform (which the devnet's registry trusts): what an attacker holding a
/// working TEE with that measurement could send.
async fn attested(
    root: &Path,
    client: &chain::grpc::LightClient,
    key: &p256::ecdsa::SigningKey,
    mr_enclave: [u8; 32],
) -> chain::types::Registration {
    let sim = phalanx_dcap_sim::SimTee::from_json(
        &std::fs::read_to_string(root.join("devnet/attestation/sim/sim.json")).unwrap(),
    )
    .unwrap();
    let chain_id = client.sync().await.unwrap().chain_id();
    chain::sim::registration(
        &sim,
        &chain::sim::enclave(mr_enclave),
        key,
        Vec::new(),
        chain_id,
    )
    .unwrap()
}

async fn info(url: &str) -> Option<pruntime::worker::Info> {
    reqwest::get(format!("{url}/v1/info"))
        .await
        .ok()?
        .json()
        .await
        .ok()
}

/// Waits until the worker at `url` has applied block `height`; its info.
async fn at_height(w: &Worker, height: u64) -> pruntime::worker::Info {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(i) = info(&w.url).await
            && i.contracts
                .iter()
                .any(|c| c.id == w.counter && c.height >= height)
        {
            return i;
        }
        assert!(
            Instant::now() < deadline,
            "worker {} did not reach height {height}: {}",
            w.url,
            std::fs::read_to_string(&w.log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `phalanx ARGS`, which must succeed (off the async threads, so the tests' load and
/// queries go on meanwhile).
fn phalanx(args: &[&str]) {
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_phalanx"))
            .args(args)
            .output()
            .unwrap()
    };
    let out = match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(run)
        }
        _ => run(),
    };
    assert!(
        out.status.success(),
        "phalanx {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `phalanx chain tx … TX` signed by the devnet's governance key.
fn governance(summary: &serde_json::Value, tx: &[&str]) {
    let s = |k: &str| summary[k].as_str().unwrap().to_owned();
    let mut args = vec![
        "chain".to_owned(),
        "tx".into(),
        "--url".into(),
        s("chain"),
        "--genesis".into(),
        s("chain_genesis"),
        "--key".into(),
        s("governance_key_file"),
    ];
    args.extend(tx.iter().map(|a| a.to_string()));
    phalanx(&args.iter().map(String::as_str).collect::<Vec<_>>());
}

/// The user's query of the counter on the worker at `url`: (height, state root, output).
async fn read(
    client: &chain::grpc::LightClient,
    url: &str,
    user: &p256::ecdsa::SigningKey,
    contract: [u8; 32],
) -> (u64, String, Vec<u8>) {
    let i = info(url).await.unwrap();
    let identity = hex::decode(&i.identity_key).unwrap();
    let asked = pruntime::client::query(
        client,
        &reqwest::Client::new(),
        url,
        &identity,
        user,
        contract,
        b"read",
    )
    .await
    .unwrap();
    (
        asked.answer.statement.height,
        asked.answer.statement.state_root.to_string(),
        asked.output.to_vec(),
    )
}

/// What two answers must share to say the same: the state root and the output (the
/// height may differ by blocks that touch no contract state, such as a registration).
fn state(read: &(u64, String, Vec<u8>)) -> (&str, &[u8]) {
    (read.1.as_str(), read.2.as_slice())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_take_over_from_each_other_and_refuse_edited_checkpoints() {
    let root = tempfile::tempdir().unwrap();
    let (_devnet, summary) = devnet(&root.path().join("devnet"));
    let mut contract = [0u8; 32];
    hex::decode_to_slice(summary["contract"].as_str().unwrap(), &mut contract).unwrap();
    let mut genesis = [0u8; 32];
    hex::decode_to_slice(summary["chain_genesis"].as_str().unwrap(), &mut genesis).unwrap();
    let client = chain::grpc::LightClient::pinned(summary["chain"].as_str().unwrap(), genesis);

    let a = worker(root.path(), "a", &summary);
    let b = worker(root.path(), "b", &summary);
    at_height(&a, 0).await;
    at_height(&b, 0).await;

    // Commands through the registry, from two users.
    let (alice, bob) = (chain::random_key(), chain::random_key());
    let mut last = 0;
    for user in [&alice, &bob, &alice, &alice] {
        last = pruntime::client::send_command(&client, user, contract, b"bump")
            .await
            .unwrap();
    }
    at_height(&a, last).await;
    at_height(&b, last).await;
    let from_a = read(&client, &a.url, &alice, contract).await;
    let from_b = read(&client, &b.url, &alice, contract).await;
    assert_eq!(from_a, from_b, "two workers, one state");
    let from_b = (0, from_b.1, from_b.2);
    // Alice bumped three times; the devnet's own demo bumped once before.
    assert_eq!(u64::from_le_bytes(from_a.2[..8].try_into().unwrap()), 3);
    assert_eq!(u64::from_le_bytes(from_a.2[8..].try_into().unwrap()), 5);

    // A command sealed wrongly (garbage, on the chain all the same) is skipped by every
    // worker with its reason; nothing changes and they go on.
    {
        use chain::registry::SignedLedger as _;
        let state = client.sync().await.unwrap();
        let me = chain::types::public_key(bob.verifying_key());
        let tx = chain::types::SignedTx::sign(
            &bob,
            &state.chain_id(),
            state.nonce(&me),
            chain::types::Tx::Command(chain::types::Command {
                contract,
                epoch: phalanx_types::Epoch(0),
                ciphertext: vec![0x42; 200],
            }),
        );
        let h = client.submit_tx(tx).await.unwrap();
        at_height(&a, h).await;
        at_height(&b, h).await;
        let after = read(&client, &b.url, &alice, contract).await;
        assert_eq!((after.1.as_str(), &after.2), (from_b.1.as_str(), &from_b.2));
        let log = std::fs::read_to_string(&b.log).unwrap();
        assert!(log.contains("command skipped"), "{log}");
    }

    // Bad queries get clear errors.
    bad_queries(&client, &b, contract).await;

    // A dies without warning; B answers the same.
    drop(a.proc);
    let again = read(&client, &b.url, &alice, contract).await;
    assert_eq!((again.1, again.2), (from_b.1, from_b.2));

    // More commands; C joins late, catches up from the chain, answers like B.
    last = pruntime::client::send_command(&client, &bob, contract, b"bump")
        .await
        .unwrap();
    let c = worker(root.path(), "c", &summary);
    at_height(&b, last).await;
    at_height(&c, last).await;
    let now_b = read(&client, &b.url, &bob, contract).await;
    // The same state and answer; the heights may differ by blocks that change no
    // contract state (C's own registration and key checks land on the chain too).
    let now_c = read(&client, &c.url, &bob, contract).await;
    assert!(now_c.0 >= last && now_b.0 >= last);
    assert_eq!(state(&now_c), state(&now_b));
    assert_eq!(u64::from_le_bytes(now_b.2[..8].try_into().unwrap()), 2);

    // B stops cleanly (sealing its checkpoint); an edit on disk is refused and B
    // replays from the chain to the same state, under the same identity.
    let identity_b = info(&b.url).await.unwrap().identity_key;
    b.proc.terminate();
    let checkpoint = std::fs::read_dir(root.path().join("b"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("checkpoint-")
        })
        .expect("B sealed a checkpoint at shutdown");
    let mut bytes = std::fs::read(&checkpoint).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    std::fs::write(&checkpoint, bytes).unwrap();
    let b2 = worker(root.path(), "b", &summary);
    at_height(&b2, last).await;
    assert_eq!(
        state(&read(&client, &b2.url, &bob, contract).await),
        state(&now_b)
    );
    assert_eq!(info(&b2.url).await.unwrap().identity_key, identity_b);
    let log = std::fs::read_to_string(&b2.log).unwrap();
    assert!(log.contains("refusing the checkpoint"), "{log}");
    assert!(log.contains("already registered"), "{log}");

    // C stops cleanly and restarts from its intact checkpoint.
    c.proc.terminate();
    let c2 = worker(root.path(), "c", &summary);
    at_height(&c2, last).await;
    assert_eq!(
        state(&read(&client, &c2.url, &bob, contract).await),
        state(&now_b)
    );
    let log = std::fs::read_to_string(&c2.log).unwrap();
    assert!(log.contains("restored the sealed checkpoint"), "{log}");

    // NC1: an account with no TEE cannot register under the allowed pRuntime
    // measurement (the registry checks the quote itself), so it can publish no keys.
    use chain::registry::{ContractRegistry as _, Registry as _};
    let impostor = chain::random_key();
    let mut mr = [0u8; 32];
    hex::decode_to_slice(summary["pruntime_mr_enclave"].as_str().unwrap(), &mut mr).unwrap();
    let mut forged = attested(root.path(), &client, &impostor, mr).await;
    forged.evidence.quote = attested(root.path(), &client, &chain::random_key(), mr)
        .await
        .evidence
        .quote;
    let refused = client
        .register_worker(&impostor, &forged)
        .await
        .unwrap_err()
        .to_string();
    assert!(refused.contains("evidence refused"), "{refused}");

    // A contract whose published keys are not what the gatekeepers derive for it (here
    // published by a TEE with the pRuntime measurement that does not run pRuntime's
    // code — a broken enclave): a worker refuses to serve it, says why, and exits.
    let registration = attested(root.path(), &client, &impostor, mr).await;
    client
        .register_worker(&impostor, &registration)
        .await
        .unwrap();
    let (_, other) = client
        .deploy_contract(&impostor, phalanx_cli::devnet::COUNTER_WASM, [7; 32])
        .await
        .unwrap();

    // NM6: a token the attestation service signed for the pRuntime tenant — what
    // whoever holds its signing key could mint — obtains no contract key by itself: the
    // worker must be a pRuntime the registry verified, asking for its registered HPKE
    // key. Neither an unregistered worker nor a registered one with another HPKE key
    // gets one.
    {
        let mut contract = [0u8; 32];
        hex::decode_to_slice(summary["contract"].as_str().unwrap(), &mut contract).unwrap();
        let tee = pruntime::tee::Settings {
            backend: pruntime::tee::Backend::Sim,
            root: None,
            sim_pki: Some(root.path().join("devnet/attestation/sim/sim.json")),
            mr_enclave: Some(hex::encode(mr)),
        }
        .open(&root.path().join("nm6-sim.key"))
        .unwrap();
        let chain_id = client.sync().await.unwrap().chain_id();
        let gatekeeper = summary["gatekeepers"][0].as_str().unwrap().to_owned();
        let ask = |identity: Vec<u8>| {
            let (tee, gatekeeper) = (tee.clone(), gatekeeper.clone());
            let attestation = summary["attestation_rest"].as_str().unwrap().to_owned();
            async move {
                let recipient = keyvault::envelope::RecipientKey::generate(&mut rand::rng());
                let rd = keyvault::release::WorkerRuntimeData {
                    identity_key: identity,
                    hpke_public_key: recipient.public_bytes(),
                    registry: chain_id,
                }
                .encode();
                let attested = phalanx_attested::attest::attest(
                    &reqwest::Client::new(),
                    &phalanx_attested::attest::Service {
                        url: attestation,
                        policy: "devnet".into(),
                    },
                    tee.as_ref(),
                    &rd,
                )
                .await
                .unwrap();
                let req = keyvault::gatekeeper::ReleaseRequest {
                    token: attested.token,
                    runtime_data: rd,
                    key_id: keyvault::release::contract_key_id(phalanx_types::Epoch(0), &contract),
                    hpke_public_key: recipient.public_bytes(),
                };
                phalanx_proto::keyvault::v1::gatekeeper_client::GatekeeperClient::connect(
                    gatekeeper,
                )
                .await
                .unwrap()
                .release(phalanx_release::client::request_to_pb(&req))
                .await
                .unwrap_err()
            }
        };
        let outsider = ask(chain::types::public_key(
            chain::random_key().verifying_key(),
        ))
        .await;
        assert_eq!(
            outsider.code(),
            tonic::Code::PermissionDenied,
            "{outsider:?}"
        );
        assert!(
            outsider.message().contains("registry verified"),
            "{outsider:?}"
        );
        let other_hpke = ask(chain::types::public_key(impostor.verifying_key())).await;
        assert!(other_hpke.message().contains("HPKE key"), "{other_hpke:?}");
    }
    let bogus = pruntime::protocol::ContractKeys::derive(&[1; 32])
        .unwrap()
        .published(other, phalanx_types::Epoch(0));
    client
        .publish_contract_key(&impostor, &bogus)
        .await
        .unwrap();
    let mut s2 = summary.clone();
    s2["contract"] = serde_json::Value::String(hex::encode(other));
    let mut d = worker(root.path(), "d", &s2);
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = d.proc.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the worker served a contract with foreign keys"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(!status.success());
    let log = std::fs::read_to_string(&d.log).unwrap();
    assert!(log.contains("differ from the published ones"), "{log}");
}

/// Gatekeepers fail under running workers, with pRuntime itself (issue 30, item 4): the
/// devnet in this process, its gatekeepers stopped one at a time, pRuntime workers as
/// processes. With two of five down (t = 3) a new worker still gets its contract's keys,
/// boots, catches up and answers as the devnet's own worker does; with a third down a
/// new worker cannot, and says why, while the running ones go on answering.
#[test]
fn workers_boot_with_two_gatekeepers_down_and_not_with_three() {
    let root = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut devnet = rt
        .block_on(phalanx_cli::devnet::start(&root.path().join("devnet")))
        .unwrap();
    let summary = serde_json::to_value(&devnet.summary).unwrap();
    let hex32 = |k: &str| {
        let mut b = [0u8; 32];
        hex::decode_to_slice(summary[k].as_str().unwrap(), &mut b).unwrap();
        b
    };
    let (contract, genesis) = (hex32("contract"), hex32("chain_genesis"));
    let client = chain::grpc::LightClient::pinned(summary["chain"].as_str().unwrap(), genesis);
    let own = summary["pruntime"].as_str().unwrap().to_owned();
    let user = chain::random_key();
    // A command, then both workers' answers once each has applied it: the same.
    let agree = |a: &Worker| {
        rt.block_on(async {
            let h = pruntime::client::send_command(&client, &user, contract, b"bump")
                .await
                .unwrap();
            at_height(a, h).await;
            let theirs = read(&client, &a.url, &user, contract).await;
            let deadline = Instant::now() + Duration::from_secs(60);
            let ours = loop {
                let r = read(&client, &own, &user, contract).await;
                if r.0 >= h {
                    break r;
                }
                assert!(
                    Instant::now() < deadline,
                    "the devnet's worker did not reach {h}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            };
            assert_eq!(state(&theirs), state(&ours), "one state on both workers");
        });
    };

    // The devnet admits its own build's measurement: in this process, the test's. The
    // workers (the `phalanx` binary) claim it on the simulated TEE.
    let sim = root.path().join("devnet/attestation/sim/sim.json");
    let mr = summary["pruntime_mr_enclave"].as_str().unwrap().to_owned();
    let tee = ["--sim-pki", sim.to_str().unwrap(), "--mr-enclave", &mr];
    let worker = |name: &str| worker_with(root.path(), name, &summary, &tee);
    rt.block_on(async {
        devnet.stop_gatekeeper(2).await.unwrap();
        devnet.stop_gatekeeper(5).await.unwrap();
    });
    let a = worker("a");
    let log = |w: &Worker| std::fs::read_to_string(&w.log).unwrap_or_default();
    assert!(
        !a.url.is_empty(),
        "3 of 5 gatekeepers serve keys: {}",
        log(&a)
    );
    agree(&a);

    rt.block_on(devnet.stop_gatekeeper(3)).unwrap();
    let b = worker("b");
    assert!(
        b.url.is_empty(),
        "2 of 5 gatekeepers serve no keys: {}",
        log(&b)
    );
    assert!(
        log(&b).contains("not enough gatekeepers: 2 valid answers, need 3"),
        "the worker says why: {}",
        log(&b)
    );
    agree(&a);
    drop(a);
    rt.block_on(devnet.stop()).unwrap();
}

/// Each bad query is refused with its code: bad signature 403, unknown contract 404,
/// a height not reached 409, too much fuel 400, malformed 400, oversized 413, sealed
/// to another key 403.
async fn bad_queries(client: &chain::grpc::LightClient, w: &Worker, contract: [u8; 32]) {
    use pruntime::protocol::{Bounds, Query};
    // A connection per request: the server closes one after refusing an oversized body,
    // and a pooled connection it closed would fail the next request.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let i = info(&w.url).await.unwrap();
    let me = hex::decode(&i.identity_key).unwrap();
    let listed = client.sync().await.unwrap().worker(&me).unwrap().clone();
    let user = chain::random_key();
    let reply = keyvault::envelope::RecipientKey::generate(&mut rand::rng());
    let make = |contract: [u8; 32], bounds: Bounds| {
        Query::new(
            &user,
            &reply,
            &me,
            &listed.hpke_key,
            contract,
            b"read",
            bounds,
        )
        .unwrap()
        .0
    };
    let post = |body: String| {
        let http = http.clone();
        let url = format!("{}/v1/query", w.url);
        async move {
            match http
                .post(url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
            {
                Ok(r) => {
                    let status = r.status().as_u16();
                    (status, r.text().await.unwrap())
                }
                // The server may answer 413 and close before an oversized body is sent.
                Err(e) if e.is_request() => (413, format!("too_large (connection closed: {e})")),
                Err(e) => panic!("{e}"),
            }
        }
    };
    let json = |q: &Query| serde_json::to_string(q).unwrap();
    let mut forged = make(contract, Bounds::default());
    forged.nonce.0[0] ^= 1;
    let cases = [
        (json(&forged), 403, "bad_signature"),
        (
            json(&make([9; 32], Bounds::default())),
            404,
            "unknown_contract",
        ),
        (
            json(&make(
                contract,
                Bounds {
                    min_height: Some(1 << 40),
                    ..Bounds::default()
                },
            )),
            409,
            "height_not_reached",
        ),
        (
            json(&make(
                contract,
                Bounds {
                    max_fuel: Some(u64::MAX),
                    ..Bounds::default()
                },
            )),
            400,
            "too_much_fuel",
        ),
        ("{\"contract\": 1}".to_owned(), 400, "malformed"),
        ("x".repeat(1 << 20), 413, "too_large"),
    ];
    for (body, status, code) in cases {
        let (got, text) = post(body).await;
        assert_eq!(got, status, "{text}");
        assert!(text.contains(code), "{text}");
    }
    // A field changed after signing is refused by the signature before it is acted on
    // (here a reply key); the same reply key signed by its user is malformed, refused
    // before any call.
    let mut bad_reply = make(contract, Bounds::default());
    bad_reply.reply_key = "AAAA".into();
    let (got, text) = post(json(&bad_reply)).await;
    assert_eq!(got, 403, "{text}");
    assert!(text.contains("bad_signature"), "{text}");
    let sig: p256::ecdsa::Signature =
        p256::ecdsa::signature::Signer::sign(&user, &bad_reply.signed_bytes(&me).unwrap());
    bad_reply.signature =
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, sig.to_bytes());
    let (got, text) = post(json(&bad_reply)).await;
    assert_eq!(got, 400, "{text}");
    assert!(text.contains("reply key"), "{text}");
    // Sealed to another worker's key (not this one's, as the registry lists it).
    let other = keyvault::envelope::RecipientKey::generate(&mut rand::rng());
    let q = Query::new(
        &user,
        &reply,
        &me,
        &other.public_bytes(),
        contract,
        b"read",
        Bounds::default(),
    )
    .unwrap()
    .0;
    let (got, text) = post(json(&q)).await;
    assert_eq!(got, 403, "{text}");
    // A query is single use: the same signed query again (a captured one replayed as
    // an oracle) is refused.
    let once = make(contract, Bounds::default());
    let (got, text) = post(json(&once)).await;
    assert_eq!(got, 200, "{text}");
    let (got, text) = post(json(&once)).await;
    assert_eq!(got, 409, "{text}");
    assert!(text.contains("replayed"), "{text}");
    // A checkpoint asked for by no contract id, or of a contract this worker holds no
    // committed checkpoint of: refused by name.
    for (id, status, code) in [
        ("zz".repeat(32), 400, "malformed"),
        (hex::encode([7u8; 31]), 400, "malformed"),
        (format!("{}00", hex::encode(contract)), 400, "malformed"),
        (hex::encode([7u8; 32]), 404, "no_checkpoint"),
    ] {
        let r = http
            .get(format!("{}/v1/checkpoint/{id}", w.url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), status, "{id}");
        assert!(r.text().await.unwrap().contains(code), "{id}");
    }
    // The worker still answers.
    assert!(info(&w.url).await.is_some());
}

/// A TDX worker: quotes from configfs-tsm (a fake tree answering with the devnet's
/// simulated TDX quotes), no sealing key in the hardware, so its identity is sealed
/// under a key the gatekeepers derive for its own tenant; it serves the contract, and
/// after a restart unseals the same identity and does not register again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tdx_worker_seals_with_a_key_from_the_gatekeepers() {
    let root = tempfile::tempdir().unwrap();
    let (devnet_proc, summary) = devnet(&root.path().join("devnet"));
    let sim = phalanx_dcap_sim::SimTee::from_json(
        &std::fs::read_to_string(root.path().join("devnet/attestation/sim/sim.json")).unwrap(),
    )
    .unwrap();
    let mut contract = [0u8; 32];
    hex::decode_to_slice(summary["contract"].as_str().unwrap(), &mut contract).unwrap();
    let mut genesis = [0u8; 32];
    hex::decode_to_slice(summary["chain_genesis"].as_str().unwrap(), &mut genesis).unwrap();
    // The host launches the TD with MRCONFIGID = the digest of the configuration it
    // will pass (the devnet's registry, policy and gatekeeper root).
    let config_id = phalanx_cli::devnet::pruntime_td_config_id(genesis, None);
    let td = |mr_config_id| phalanx_dcap_sim::TdxTd {
        mr_td: phalanx_cli::devnet::PRUNTIME_MR_TD,
        mr_config_id,
        ..Default::default()
    };
    let tsm = root.path().join("tsm");
    let (bound, unbound) = (td(config_id), td([0; 48]));
    let sim2 = phalanx_dcap_sim::SimTee::from_json(&sim.to_json()).unwrap();
    let _kernel = pruntime::tee::fake::configfs_tsm(&tsm, "tdx_guest", move |rd| {
        sim.tdx_quote(&bound, rd).unwrap()
    })
    .unwrap();

    // NC2: a TD launched without its configuration bound (MRCONFIGID zero) refuses to
    // start whatever it is told on the command line: the host cannot hand it another
    // registry, policy or gatekeeper root.
    let loose = root.path().join("tsm-unbound");
    let sim_pki_path = root.path().join("devnet/attestation/sim/sim.json");
    let _loose_kernel = pruntime::tee::fake::configfs_tsm(&loose, "tdx_guest", move |rd| {
        sim2.tdx_quote(&unbound, rd).unwrap()
    })
    .unwrap();
    // NC3 with Confidential Containers: the same configuration in an initdata document
    // (whose digest Kata binds as MRCONFIGID) is refused too by a TD launched without
    // that document.
    let initdata = root.path().join("initdata.toml");
    std::fs::write(
        &initdata,
        format!(
            "version = \"0.1.0\"\nalgorithm = \"sha384\"\n[data]\n\"phalanx.toml\" = '''\ngenesis = \"{}\"\npolicy = \"devnet\"\ngatekeeper_trust_roots = [\"sim\"]\ngatekeeper_policies = [\"devnet\"]\n'''\n",
            summary["chain_genesis"].as_str().unwrap()
        ),
    )
    .unwrap();
    let (loose, sim_pki_path) = (loose.to_str().unwrap(), sim_pki_path.to_str().unwrap());
    let tee_args = [
        "--tee",
        "tdx",
        "--tee-root",
        loose,
        "--sim-pki",
        sim_pki_path,
    ];
    for (name, extra) in [
        ("unbound", vec![]),
        (
            "unbound-initdata",
            vec!["--initdata", initdata.to_str().unwrap()],
        ),
    ] {
        let args: Vec<&str> = tee_args.iter().copied().chain(extra).collect();
        let refused = worker_with(root.path(), name, &summary, &args);
        assert!(refused.url.is_empty(), "{name}: an unbound TD served");
        let log = std::fs::read_to_string(&refused.log).unwrap();
        assert!(log.contains("MRCONFIGID"), "{name}: {log}");
    }
    let client = chain::grpc::LightClient::pinned(summary["chain"].as_str().unwrap(), genesis);
    // (--sim-pki: the devnet accepts the simulated root, so the TD verifies its own
    // quotes to that root too.)
    let sim_pki = root.path().join("devnet/attestation/sim/sim.json");
    let sim_pki = sim_pki.to_str().unwrap();
    let tee = [
        "--tee",
        "tdx",
        "--tee-root",
        tsm.to_str().unwrap(),
        "--sim-pki",
        sim_pki,
    ];

    let t = worker_with(root.path(), "t", &summary, &tee);
    let first = at_height(&t, 0).await;
    assert_eq!(first.tee, "tdx");
    assert!(
        !first.simulated,
        "the TDX backend itself is real; only its kernel is faked"
    );
    let user = chain::random_key();
    let h = pruntime::client::send_command(&client, &user, contract, b"bump")
        .await
        .unwrap();
    at_height(&t, h).await;
    let (_, _, out) = read(&client, &t.url, &user, contract).await;
    assert_eq!(u64::from_le_bytes(out[..8].try_into().unwrap()), 1);
    let listed = client
        .sync()
        .await
        .unwrap()
        .worker(&hex::decode(&first.identity_key).unwrap())
        .unwrap()
        .clone();
    assert_eq!(
        listed.measurement,
        phalanx_cli::devnet::pruntime_td(phalanx_cli::devnet::PRUNTIME_MR_TD, config_id)
            .digest()
            .to_vec()
    );

    t.proc.terminate();
    let t2 = worker_with(root.path(), "t", &summary, &tee);
    let again = at_height(&t2, h).await;
    assert_eq!(again.identity_key, first.identity_key);
    let log = std::fs::read_to_string(&t2.log).unwrap();
    assert!(log.contains("already registered"), "{log}");
    let (_, _, out) = read(&client, &t2.url, &user, contract).await;
    assert_eq!(u64::from_le_bytes(out[..8].try_into().unwrap()), 1);

    // Issue 28, item 1: no identity is pinned to an epoch. A rotation: the running TD
    // seals its identity again under epoch 1 (and commits the contract's state under
    // it); epoch 0 then retires on the registry and on the gatekeepers, and the TD,
    // restarted, unseals the same identity.
    let s = |k: &str| summary[k].as_str().unwrap().to_owned();
    let nodes: Vec<String> = summary["gatekeepers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap().to_owned())
        .collect();
    let (nodes, admin) = (nodes.join(","), s("admin_secret_file"));
    governance(&summary, &["lock-rotation", "1"]);
    phalanx(&[
        "keyvault",
        "rotate",
        "--nodes",
        &nodes,
        "--admin-secret-file",
        &admin,
    ]);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let log = std::fs::read_to_string(&t2.log).unwrap();
        let state = client.sync().await.unwrap();
        let committed = state
            .contract(&contract)
            .and_then(|c| c.state.clone())
            .is_some_and(|s| s.epoch == phalanx_types::Epoch(1));
        if log.contains("sealed the identity again under the newest epoch") && committed {
            break;
        }
        assert!(Instant::now() < deadline, "no reseal under epoch 1: {log}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    retry_governance(&summary, &["retire-epoch", "0"]).await;
    phalanx(&[
        "keyvault",
        "retire-epoch",
        "--nodes",
        &nodes,
        "--admin-secret-file",
        &admin,
        "--epoch",
        "0",
    ]);
    t2.proc.terminate();
    let t3 = worker_with(root.path(), "t", &summary, &tee);
    let after = at_height(&t3, h).await;
    assert_eq!(after.identity_key, first.identity_key);
    let (_, _, out) = read(&client, &t3.url, &user, contract).await;
    assert_eq!(u64::from_le_bytes(out[..8].try_into().unwrap()), 1);

    // The devnet, killed, resumes with epoch 0 retired (its demo key from the newest).
    drop(devnet_proc);
    let (_devnet, resumed) = devnet(&root.path().join("devnet"));
    assert_eq!(resumed["genesis"], false, "{resumed}");
}

/// Item 12: a gatekeeper listed on the registry without TEE evidence of its own (here an
/// account registered with the gatekeepers' measurement and a made-up token hash, whose
/// URL points at a genuine gatekeeper) is refused by name: a worker does not ask it for
/// keys (and still gets them from the attested ones), and the attested members refuse
/// to start a round with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gatekeepers_without_evidence_are_refused_by_workers_and_peers() {
    use chain::registry::Registry as _;
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("devnet");
    let (_devnet, summary) = devnet(&dir);
    let mut genesis = [0u8; 32];
    hex::decode_to_slice(summary["chain_genesis"].as_str().unwrap(), &mut genesis).unwrap();
    let client = chain::grpc::LightClient::pinned(summary["chain"].as_str().unwrap(), genesis);
    let governance = keyvault::registry::key_file(&dir.join("chain/governance.key")).unwrap();

    // A worker whose enclave the attestation policy does not allow gets a contraindicated
    // result: it stops there, registers nothing and asks nobody for keys.
    let before = client.sync().await.unwrap().workers().count();
    let sim = dir.join("attestation/sim/sim.json");
    let stranger = worker_with(
        root.path(),
        "contraindicated",
        &summary,
        &[
            "--sim-pki",
            sim.to_str().unwrap(),
            "--mr-enclave",
            &"11".repeat(32),
        ],
    );
    assert!(stranger.url.is_empty(), "a contraindicated worker served");
    let log = std::fs::read_to_string(&stranger.log).unwrap();
    assert!(log.contains("contraindicated"), "{log}");
    assert_eq!(client.sync().await.unwrap().workers().count(), before);

    let urls: Vec<String> = summary["gatekeepers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap().to_owned())
        .collect();

    // Online verification: the devnet's bundle without its registry proofs is refused
    // offline and accepted with `--chain`, which fetches the header and proofs (and
    // verifies them from the genesis).
    let bundle = summary["bundle_file"].as_str().unwrap();
    let mut stripped: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(bundle).unwrap()).unwrap();
    stripped["registry"] = serde_json::json!({"genesis": "", "header": "", "facts": []});
    let stripped_file = root.path().join("stripped.json");
    std::fs::write(&stripped_file, stripped.to_string()).unwrap();
    let verify = |online: bool| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_phalanx"));
        c.args(["verify", "answer", "--json", "--genesis"])
            .arg(summary["chain_genesis"].as_str().unwrap())
            .arg("--trust-root")
            .arg(dir.join("demo/sim-root.pem"))
            .arg(&stripped_file);
        if online {
            c.args(["--chain", summary["chain"].as_str().unwrap()]);
        }
        let out = c.output().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (out.status.code(), v)
    };
    let (code, v) = verify(false);
    assert_eq!(
        (code, v["error"]["check"].as_str()),
        (Some(1), Some("registry")),
        "{v}"
    );
    let (code, v) = verify(true);
    assert_eq!((code, v["ok"].as_bool()), (Some(0), Some(true)), "{v}");
    // A registry part with a proof left out, and without the governance transaction:
    // refused offline as incomplete, completed from the node online.
    let mut partial: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(bundle).unwrap()).unwrap();
    partial["registry"]["facts"].as_array_mut().unwrap().pop();
    partial["registry"]
        .as_object_mut()
        .unwrap()
        .remove("allowed_by");
    std::fs::write(&stripped_file, partial.to_string()).unwrap();
    let (code, v) = verify(false);
    assert_eq!(
        (code, v["error"]["code"].as_str()),
        (Some(1), Some("registry_incomplete")),
        "{v}"
    );
    let (code, v) = verify(true);
    assert_eq!((code, v["ok"].as_bool()), (Some(0), Some(true)), "{v}");

    let impostor = chain::random_key();
    let identity_key = chain::types::public_key(impostor.verifying_key());
    let mut registration = attested(
        root.path(),
        &client,
        &impostor,
        phalanx_cli::devnet::GATEKEEPER_MR_ENCLAVE,
    )
    .await;
    registration.attestation_hash = [0x5a; 32];
    client
        .register_worker(&impostor, &registration)
        .await
        .unwrap();
    let mut set = client.gatekeepers().await.unwrap();
    let impostor_peer = "https://127.0.0.1:9".to_owned();
    set.push(chain::types::Gatekeeper {
        index: 6,
        identity_key,
        url: urls[0].clone(),
        peer_url: impostor_peer.clone(),
    });
    client
        .set_gatekeepers(&governance, &set, phalanx_cli::devnet::THRESHOLD)
        .await
        .unwrap();

    // A worker skips it, says why, and is served by the attested five.
    let w = worker(root.path(), "w", &summary);
    at_height(&w, 0).await;
    let log = std::fs::read_to_string(&w.log).unwrap();
    assert!(
        log.contains("not asking a gatekeeper without valid TEE evidence")
            && log.contains("gatekeeper=6")
            && log.contains("not the one registered"),
        "{log}"
    );
    assert_eq!(log.matches("not asking a gatekeeper").count(), 1, "{log}");

    // The attested members refuse a round that includes it.
    let infos: Vec<keyvault::admin::NodeInfo> = keyvault::admin::cluster_status(&urls)
        .await
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut participants: Vec<keyvault::round::Participant> = infos
        .iter()
        .map(keyvault::admin::NodeInfo::participant)
        .collect();
    participants.push(keyvault::round::Participant {
        index: keyvault::share::NodeIndex::new(6).unwrap(),
        identity: *impostor.verifying_key(),
        url: impostor_peer,
    });
    let spec = keyvault::round::RoundSpec::new(
        [3; 16],
        keyvault::round::RoundKind::Refresh {
            epoch: phalanx_types::Epoch(0),
        },
        participants,
    )
    .unwrap();
    let secret = keyvault::app::read_admin_secret(std::path::Path::new(
        summary["admin_secret_file"].as_str().unwrap(),
    ))
    .unwrap();
    let err = keyvault::admin::start_round(&urls, &secret, &spec)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("members without valid TEE evidence") && err.contains("gatekeeper 6"),
        "{err}"
    );
}

/// Issue 28, items 1 and 2: a rotation reaches a running contract, an epoch retires
/// once the state is committed past it, and state moves between workers. Governance
/// locks epoch 1 and the gatekeepers run its DKG while a worker serves the counter; the
/// worker derives the contract's keys of epoch 1 without a restart, publishes them (the
/// registry takes them from a pRuntime with current evidence), and runs the commands
/// clients then seal to epoch 1 — the newest with published keys. It commits its state
/// under each new epoch; after a second rotation epoch 1 retires on the registry and
/// the gatekeepers forget it. A new worker then starts from the committed checkpoint
/// fetched from the first (a tampered copy is refused by name) and answers the same;
/// one without a checkpoint refuses to start, saying where to get one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn epochs_reach_running_contracts_and_retire_past_committed_state() {
    // Long on purpose: one scenario, read top to bottom as it runs.
    let root = tempfile::tempdir().unwrap();
    let (_devnet, summary, contract, client) = served_devnet(root.path());
    let s = |k: &str| summary[k].as_str().unwrap().to_owned();
    let sim = root.path().join("devnet/attestation/sim/sim.json");
    let sim = sim.to_str().unwrap();
    let committing = [
        "--sim-pki",
        sim,
        "--checkpoint-every",
        "1",
        "--commit-every-secs",
        "0",
    ];
    let a = worker_with(root.path(), "a", &summary, &committing);
    at_height(&a, 0).await;
    let nodes: Vec<String> = summary["gatekeepers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap().to_owned())
        .collect();
    let nodes = nodes.join(",");
    let admin = s("admin_secret_file");
    let governance = |tx: &[&str]| governance(&summary, tx);
    let rotate = |epoch: &str| {
        governance(&["lock-rotation", epoch]);
        phalanx(&[
            "keyvault",
            "rotate",
            "--nodes",
            &nodes,
            "--admin-secret-file",
            &admin,
        ]);
    };
    rotate("1");
    // The worker, still running, publishes the contract's keys of epoch 1.
    let deadline = Instant::now() + Duration::from_secs(60);
    let published = loop {
        let state = client.sync().await.unwrap();
        assert!(
            state.master_key(phalanx_types::Epoch(1)).is_some(),
            "the rotation did not publish epoch 1"
        );
        if let Some(k) = state
            .contract(&contract)
            .and_then(|c| c.keys.get(&phalanx_types::Epoch(1)).cloned())
        {
            break k;
        }
        assert!(
            Instant::now() < deadline,
            "the running worker did not take up epoch 1: {}",
            std::fs::read_to_string(&a.log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // Published by a running worker: this one or the devnet's own; this one holds them
    // (equal to the published ones, or it would have refused).
    let i = info(&a.url).await.unwrap();
    let publishers = [
        hex::decode(&i.identity_key).unwrap(),
        hex::decode(s("pruntime_identity")).unwrap(),
    ];
    assert!(publishers.contains(&published.published_by));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(&a.log)
        .unwrap_or_default()
        .contains("holding the contract's keys of the newest epoch")
    {
        assert!(
            Instant::now() < deadline,
            "worker a did not take up epoch 1"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A client now seals to epoch 1, and the worker runs the command.
    let user = chain::random_key();
    let h = pruntime::client::send_command(&client, &user, contract, b"bump")
        .await
        .unwrap();
    let sealed_to: Vec<phalanx_types::Epoch> = client
        .raw_block(h)
        .await
        .unwrap()
        .txs
        .iter()
        .filter_map(|t| match &t.tx {
            chain::types::Tx::Command(c) if c.contract == contract => Some(c.epoch),
            _ => None,
        })
        .collect();
    assert_eq!(sealed_to, [phalanx_types::Epoch(1)]);
    at_height(&a, h).await;
    let (_, _, out) = read(&client, &a.url, &user, contract).await;
    assert_eq!(u64::from_le_bytes(out[..8].try_into().unwrap()), 1);
    let log = std::fs::read_to_string(&a.log).unwrap();
    assert!(!log.contains("command skipped"), "{log}");

    // Epoch 1 cannot retire while it is the newest; after a second rotation worker a
    // commits its state under epoch 2, and epoch 1 retires on the registry and on the
    // gatekeepers.
    let committed_under = |epoch: u64| {
        let client = &client;
        async move {
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let state = client.sync().await.unwrap();
                let c = state.contract(&contract).unwrap();
                if let Some(s) = &c.state
                    && s.epoch == phalanx_types::Epoch(epoch)
                    && s.count == c.commands
                {
                    return s.clone();
                }
                assert!(
                    Instant::now() < deadline,
                    "no state committed under epoch {epoch}: {:?}",
                    c.state
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    committed_under(1).await;
    rotate("2");
    let committed = committed_under(2).await;
    // Retirable once every contract the devnet serves (the idle examples too) is
    // committed under epoch 2.
    retry_governance(&summary, &["retire-epoch", "1"]).await;
    phalanx(&[
        "keyvault",
        "retire-epoch",
        "--nodes",
        &nodes,
        "--admin-secret-file",
        &admin,
        "--epoch",
        "1",
    ]);
    let before = read(&client, &a.url, &user, contract).await;

    // Worker b starts from a's committed checkpoint; a copy with one byte changed, tried
    // first, is refused. Worker a serves its checkpoint under epoch 2 once it has seen
    // that commitment on the registry, which can be a step after the registry has it
    // (served: the height it stood at, then the sealed checkpoint, its epoch first).
    let deadline = Instant::now() + Duration::from_secs(30);
    let sealed = loop {
        let served = reqwest::get(format!("{}/v1/checkpoint/{}", a.url, s("contract")))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
            .to_vec();
        let epoch = served
            .get(8..16)
            .map(|e| u64::from_be_bytes(e.try_into().unwrap()));
        if epoch == Some(2) {
            break served;
        }
        assert!(
            Instant::now() < deadline,
            "worker a serves no checkpoint under epoch 2 (epoch {epoch:?})"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let mut tampered = sealed.clone();
    *tampered.last_mut().unwrap() ^= 1;
    let bad = root.path().join("tampered.sealed");
    std::fs::write(&bad, &tampered).unwrap();
    let mut from_a = committing.to_vec();
    from_a.extend(["--checkpoint-from", bad.to_str().unwrap()]);
    from_a.extend(["--checkpoint-from", &a.url]);
    let b = worker_with(root.path(), "b", &summary, &from_a);
    assert!(
        !b.url.is_empty(),
        "worker b did not start: {}",
        std::fs::read_to_string(&b.log).unwrap()
    );
    let log = std::fs::read_to_string(&b.log).unwrap();
    assert!(log.contains("refusing the checkpoint"), "{log}");
    assert!(
        log.contains("started from the committed checkpoint"),
        "{log}"
    );
    let after = read(&client, &b.url, &user, contract).await;
    assert_eq!(state(&after), state(&before));
    assert_eq!(
        after.1,
        hex::encode(committed.state_root),
        "b answers from the committed state"
    );

    // Worker c, with no checkpoint to start from, cannot replay past the retired epoch:
    // it says so and where to get one.
    let c = worker_with(root.path(), "c", &summary, &["--sim-pki", sim]);
    assert!(
        c.url.is_empty(),
        "worker c started without the retired epoch"
    );
    let log = std::fs::read_to_string(&c.log).unwrap();
    assert!(log.contains("--checkpoint-from"), "{log}");
}

/// The worker's registry head is sealed under its identity and required once it has
/// one: deleted by its host, the worker refuses to start over on the first history it
/// is shown; left by an older Phalanx (unsealed), it is replaced by a sealed one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_requires_its_sealed_head_and_upgrades_an_old_one() {
    let root = tempfile::tempdir().unwrap();
    let (_devnet, summary) = devnet(&root.path().join("devnet"));
    let a = worker(root.path(), "a", &summary);
    at_height(&a, 0).await;
    a.proc.terminate();
    let data = root.path().join("a");
    let sealed = data.join("registry-head.sealed");
    assert!(sealed.exists());
    std::fs::remove_file(&sealed).unwrap();
    let refused = worker(root.path(), "a", &summary);
    assert!(
        refused.url.is_empty(),
        "a worker started over without its head"
    );
    let log = std::fs::read_to_string(&refused.log).unwrap();
    assert!(log.contains("the registry checkpoint is missing"), "{log}");
    drop(refused);
    // An older Phalanx's unsealed head: replaced.
    std::fs::write(data.join("registry-head"), [0u8; 40]).unwrap();
    let upgraded = worker(root.path(), "a", &summary);
    assert!(
        !upgraded.url.is_empty(),
        "the upgraded worker did not start"
    );
    at_height(&upgraded, 0).await;
    assert!(sealed.exists() && !data.join("registry-head").exists());
}

/// The user's query of the counter at `url` (worker identity from its info), or `None`
/// when it does not answer.
async fn try_read(
    client: &chain::grpc::LightClient,
    url: &str,
    user: &p256::ecdsa::SigningKey,
    contract: [u8; 32],
) -> Option<u64> {
    let i = info(url).await?;
    let identity = hex::decode(&i.identity_key).ok()?;
    let asked = pruntime::client::query(
        client,
        &reqwest::Client::new(),
        url,
        &identity,
        user,
        contract,
        b"read",
    )
    .await
    .ok()?;
    Some(u64::from_le_bytes(asked.output.get(..8)?.try_into().ok()?))
}

/// Issue 28, item 3: a rolling upgrade of pRuntime under continuous commands and
/// queries. The operator lets the attestation service appraise the new build, and
/// governance allows its measurement on the registry (the gatekeepers take pRuntime
/// standing from the registry: no new gatekeeper configuration). The new worker starts
/// from the old one's committed checkpoint and takes over queries; governance removes
/// the old measurement and the old worker stops. Every command the registry accepted is
/// applied exactly once by the new worker, queries are never unanswered for more than
/// five seconds, and a worker of the old build can no longer register.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_upgrade_loses_no_command_and_keeps_answering() {
    // Long on purpose: one scenario, read top to bottom as it runs.
    use std::sync::{Arc, Mutex};
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("devnet");
    let (_devnet, summary, contract, client) = served_devnet(root.path());
    let client = Arc::new(client);
    let s = |k: &str| summary[k].as_str().unwrap().to_owned();
    let sim = dir.join("attestation/sim/sim.json");
    let sim = sim.to_str().unwrap().to_owned();
    let committing = |mr: Option<&str>| {
        let mut args = vec![
            "--sim-pki".to_owned(),
            sim.clone(),
            "--checkpoint-every".into(),
            "1".into(),
            "--commit-every-secs".into(),
            "0".into(),
        ];
        if let Some(mr) = mr {
            args.extend(["--mr-enclave".into(), mr.to_owned()]);
        }
        args
    };
    let old = worker_with(root.path(), "old", &summary, &strs(&committing(None)));
    at_height(&old, 0).await;

    // Continuous load: one user's commands (its counter counts those the registry
    // accepted) and queries to whichever worker serves.
    let user = chain::random_key();
    let serving = Arc::new(Mutex::new(old.url.clone()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sender = tokio::spawn({
        let (client, user, stop) = (client.clone(), user.clone(), stop.clone());
        async move {
            let (mut accepted, mut last) = (0u64, 0u64);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(h) =
                    pruntime::client::send_command(&client, &user, contract, b"bump").await
                {
                    (accepted, last) = (accepted + 1, h);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            (accepted, last)
        }
    });
    let asker = tokio::spawn({
        let (client, user, stop, serving) =
            (client.clone(), user.clone(), stop.clone(), serving.clone());
        async move {
            let (mut answered, mut longest, mut since) = (0u32, Duration::ZERO, Instant::now());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let url = serving.lock().unwrap().clone();
                if try_read(&client, &url, &user, contract).await.is_some() {
                    answered += 1;
                    longest = longest.max(since.elapsed());
                    since = Instant::now();
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            (answered, longest.max(since.elapsed()))
        }
    });
    tokio::time::sleep(Duration::from_secs(2)).await;

    // The new build: its MRENCLAVE appraised by the attestation service (the operator's
    // policy) and allowed as a pRuntime by governance.
    let new_mr = hex::encode([0x42u8; 32]);
    let new_tenant = phalanx_cli::devnet::pruntime_tenant([0x42; 32])
        .tenant_id()
        .to_string();
    let old_tenant = {
        let mut mr = [0u8; 32];
        hex::decode_to_slice(s("pruntime_mr_enclave"), &mut mr).unwrap();
        phalanx_cli::devnet::pruntime_tenant(mr)
            .tenant_id()
            .to_string()
    };
    admit_build(&dir, &summary, &new_mr).await;
    governance(
        &summary,
        &["add-measurement", &new_tenant, "--role", "pruntime"],
    );

    let mut from_old = committing(Some(&new_mr));
    from_old.extend(["--checkpoint-from".into(), old.url.clone()]);
    let new = worker_with(root.path(), "new", &summary, &strs(&from_old));
    assert!(
        !new.url.is_empty(),
        "the new build did not start: {}",
        std::fs::read_to_string(&new.log).unwrap()
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while try_read(&client, &new.url, &user, contract).await.is_none() {
        assert!(Instant::now() < deadline, "the new build does not answer");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    *serving.lock().unwrap() = new.url.clone();
    governance(&summary, &["remove-measurement", &old_tenant]);
    old.proc.terminate();
    tokio::time::sleep(Duration::from_secs(2)).await;

    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (accepted, last) = sender.await.unwrap();
    let (answered, longest) = asker.await.unwrap();
    at_height(&new, last).await;
    let count = try_read(&client, &new.url, &user, contract).await.unwrap();
    println!(
        "rolling upgrade: {accepted} commands accepted, {count} applied by the new build; {answered} queries answered, longest gap {longest:?}"
    );
    assert!(accepted > 10, "too little load: {accepted}");
    assert_eq!(
        count, accepted,
        "every accepted command applied exactly once"
    );
    assert!(
        longest < Duration::from_secs(5),
        "a query gap of {longest:?}"
    );
    let log = std::fs::read_to_string(&new.log).unwrap();
    assert!(
        log.contains("started from the committed checkpoint"),
        "{log}"
    );
    assert!(!log.contains("command skipped"), "{log}");

    // The old build can no longer register (nor, so, get keys), whatever it starts from.
    let mut again = committing(None);
    again.extend(["--checkpoint-from".into(), new.url.clone()]);
    let again = worker_with(root.path(), "old-again", &summary, &strs(&again));
    assert!(
        again.url.is_empty(),
        "a removed measurement started serving"
    );
    let log = std::fs::read_to_string(&again.log).unwrap();
    assert!(log.contains("is not allowed"), "{log}");
}

/// `args` as the `&str`s [`worker_with`] takes.
fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// The first file named `name` under `dir`.
fn walk(dir: &Path, name: &str) -> Option<PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if let Some(found) = walk(&path, name) {
                return Some(found);
            }
        } else if path.file_name().is_some_and(|n| n == name) {
            return Some(path);
        }
    }
    None
}

/// The soak's load and what it saw.
#[derive(Default)]
struct Seen {
    /// Commands the registry accepted, and the height of the last.
    accepted: u64,
    last: u64,
    /// Query attempts, those answered within a second, the longest time without any
    /// answer, answers verified with `phalanx verify answer` and those refused.
    asked: u64,
    fast: u64,
    longest: Duration,
    verified: u64,
    refused: Vec<String>,
}

/// A worker of the soak: its process and which build it runs.
struct SoakWorker {
    worker: Worker,
    name: String,
    build: Option<String>,
}

/// Issue 28, item 5: a soak that loses nothing. Continuous commands and queries (to
/// whichever workers serve) run against the devnet's five gatekeepers and two workers
/// while, in turn: a worker is stopped and restarted from its checkpoint; an epoch is
/// rotated and the one before retired (on the registry and the gatekeepers); pRuntime
/// is upgraded (a new build admitted, each worker replaced by one of it from a peer's
/// committed checkpoint, the old build removed); and, once, a sixth gatekeeper (its own
/// process) is elected by governance and reshared in, cut off (frozen) while a worker
/// restarts, rolled back to a backup of its store so that its release log forks, caught
/// by `phalanx keyvault audit`, reported with the evidence that writes, and removed by
/// governance and a reshare. Every tenth answer is verified with
/// `phalanx verify answer`. At the end every worker has applied every accepted command
/// exactly once (the counter equals the accepted count and all state roots agree), no
/// answer was refused, and a worker of a removed build cannot start. It prints the
/// fraction of queries answered within a second and the longest gap.
///
/// `PHALANX_SOAK_SECS` sets how long it runs (default 40 s, one round of each event;
/// `scripts/soak.sh` runs the long form).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_loses_nothing() {
    // Long on purpose: one scenario, read top to bottom as it runs.
    use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
    use std::sync::{Arc, Mutex};
    let secs: u64 = std::env::var("PHALANX_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(40);
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("devnet");
    let (_devnet, summary, contract, client) = served_devnet(root.path());
    let client = Arc::new(client);
    let s = |k: &str| summary[k].as_str().unwrap().to_owned();
    let sim = dir
        .join("attestation/sim/sim.json")
        .to_str()
        .unwrap()
        .to_owned();
    let nodes: Vec<String> = summary["gatekeepers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap().to_owned())
        .collect();
    let (nodes, admin) = (nodes.join(","), s("admin_secret_file"));
    let args = |build: Option<&str>, from: &[String]| {
        let mut a = vec![
            "--sim-pki".to_owned(),
            sim.clone(),
            "--checkpoint-every".into(),
            "4".into(),
            "--commit-every-secs".into(),
            "1".into(),
        ];
        if let Some(mr) = build {
            a.extend(["--mr-enclave".into(), mr.to_owned()]);
        }
        // Every example the devnet serves, the idle ones too: the soak's workers
        // outlive the devnet's own build (removed at the first upgrade), and an
        // epoch retires only once each contract's state is committed past it.
        for (name, id) in summary["examples"].as_object().unwrap() {
            if name != "counter" {
                a.extend(["--contract".into(), id.as_str().unwrap().to_owned()]);
            }
        }
        for url in from {
            a.extend(["--checkpoint-from".into(), url.clone()]);
        }
        a
    };
    let start = |name: &str, build: Option<String>, from: &[String]| {
        let w = worker_with(
            root.path(),
            name,
            &summary,
            &strs(&args(build.as_deref(), from)),
        );
        assert!(
            !w.url.is_empty(),
            "worker {name} did not start: {}",
            std::fs::read_to_string(&w.log).unwrap_or_default()
        );
        SoakWorker {
            worker: w,
            name: name.to_owned(),
            build,
        }
    };
    let mut workers = vec![start("soak-1", None, &[])];
    at_height(&workers[0].worker, 0).await;
    workers.push(start("soak-2", None, &[workers[0].worker.url.clone()]));
    let serving = Arc::new(Mutex::new(
        workers
            .iter()
            .map(|w| w.worker.url.clone())
            .collect::<Vec<_>>(),
    ));

    // The load.
    let user = chain::random_key();
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Seen::default()));
    let sender = tokio::spawn({
        let (client, user, stop, seen) = (client.clone(), user.clone(), stop.clone(), seen.clone());
        async move {
            while !stop.load(Relaxed) {
                if let Ok(h) =
                    pruntime::client::send_command(&client, &user, contract, b"bump").await
                {
                    let mut s = seen.lock().unwrap();
                    (s.accepted, s.last) = (s.accepted + 1, h);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    });
    let verify_dir = root.path().join("bundles");
    std::fs::create_dir_all(&verify_dir).unwrap();
    let trust_root = dir.join("demo/sim-root.pem");
    let asker = tokio::spawn({
        let (client, user, stop, seen, serving) = (
            client.clone(),
            user.clone(),
            stop.clone(),
            seen.clone(),
            serving.clone(),
        );
        let (chain_url, genesis_hex) = (s("chain"), s("chain_genesis"));
        async move {
            let http = reqwest::Client::new();
            let (mut turn, mut since) = (0usize, Instant::now());
            let mut checks = Vec::new();
            while !stop.load(Relaxed) {
                let urls = serving.lock().unwrap().clone();
                turn += 1;
                let Some(url) = urls.get(turn % urls.len().max(1)).cloned() else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let asked_at = Instant::now();
                let answer = async {
                    let i = info(&url).await?;
                    let identity = hex::decode(&i.identity_key).ok()?;
                    pruntime::client::query(
                        &client, &http, &url, &identity, &user, contract, b"read",
                    )
                    .await
                    .ok()
                };
                let answer = answer.await;
                let took = asked_at.elapsed();
                let n = {
                    let mut s = seen.lock().unwrap();
                    s.asked += 1;
                    if answer.is_some() {
                        s.fast += u64::from(took <= Duration::from_secs(1));
                        s.longest = s.longest.max(since.elapsed());
                        since = Instant::now();
                    }
                    s.asked
                };
                // Every tenth answer: a bundle for `phalanx verify answer --chain`.
                if let Some(asked) = answer.filter(|_| n % 10 == 0) {
                    let evidence: Option<phalanx_verify::WorkerEvidence> = async {
                        http.get(format!("{url}/v1/evidence"))
                            .send()
                            .await
                            .ok()?
                            .json()
                            .await
                            .ok()
                    }
                    .await;
                    if let Some(evidence) = evidence {
                        let bundle = phalanx_verify::Bundle::new(
                            pruntime::client::answer_proof(&asked, b"read"),
                            evidence,
                            Default::default(),
                        );
                        let file = verify_dir.join(format!("bundle-{n}.json"));
                        std::fs::write(&file, serde_json::to_vec(&bundle).unwrap()).unwrap();
                        let (g, c, r) =
                            (genesis_hex.clone(), chain_url.clone(), trust_root.clone());
                        let seen = seen.clone();
                        checks.push(tokio::task::spawn_blocking(move || {
                            let out = Command::new(env!("CARGO_BIN_EXE_phalanx"))
                                .args([
                                    "verify",
                                    "answer",
                                    "--json",
                                    "--genesis",
                                    &g,
                                    "--chain",
                                    &c,
                                ])
                                .arg("--trust-root")
                                .arg(&r)
                                .arg(&file)
                                .output()
                                .unwrap();
                            let mut s = seen.lock().unwrap();
                            match out.status.success() {
                                true => s.verified += 1,
                                false => s
                                    .refused
                                    .push(String::from_utf8_lossy(&out.stdout).into_owned()),
                            }
                        }));
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let last = since.elapsed();
            for c in checks {
                c.await.unwrap();
            }
            let mut s = seen.lock().unwrap();
            s.longest = s.longest.max(last);
        }
    });

    // A worker stops (drained from the load first, as a balancer would) and restarts
    // from its own checkpoint (getting its keys from the gatekeepers again).
    macro_rules! restart_one {
        () => {{
            let w = workers.remove(0);
            serving.lock().unwrap().retain(|u| *u != w.worker.url);
            w.worker.proc.terminate();
            let back = start(&w.name, w.build.clone(), &[]);
            at_height(&back.worker, 0).await;
            serving.lock().unwrap().push(back.worker.url.clone());
            workers.push(back);
        }};
    }

    // The events, in turn, until the time is up (each at least once).
    let deadline = Instant::now() + Duration::from_secs(secs);
    let (mut round, mut epoch, mut builds) = (0u32, 0u64, 0u32);
    let mut events = Vec::new();
    let (mut removed_member, mut reported) = (None, None);
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        match round % 4 {
            0 => {
                restart_one!();
                events.push("restart");
            }
            // A new epoch, and the one before retired once the workers committed the
            // state under the new one.
            1 => {
                epoch += 1;
                governance(&summary, &["lock-rotation", &epoch.to_string()]);
                phalanx(&[
                    "keyvault",
                    "rotate",
                    "--nodes",
                    &nodes,
                    "--admin-secret-file",
                    &admin,
                ]);
                // Retired once the workers committed the state under the new epoch.
                let old = (epoch - 1).to_string();
                retry_governance(&summary, &["retire-epoch", &old]).await;
                phalanx(&[
                    "keyvault",
                    "retire-epoch",
                    "--nodes",
                    &nodes,
                    "--admin-secret-file",
                    &admin,
                    "--epoch",
                    &old,
                ]);
                events.push("rotate and retire");
            }
            // A sixth gatekeeper (once): elected, cut off, caught forking its log,
            // reported and reshared out (see `faulty_member`).
            3 => {
                if removed_member.is_none() {
                    let five = nodes.clone();
                    let mut g = ExtraGatekeeper::new(root.path(), &dir, &summary, 6);
                    g.spawn().await;
                    let six = format!("{five},{}", g.url);
                    // Elected: governance lists it (once it registered itself with its
                    // evidence), the committee reshares the epoch to it.
                    retry_governance(
                        &summary,
                        &["set-gatekeepers", "--nodes", &six, "--threshold", "3"],
                    )
                    .await;
                    phalanx(&[
                        "keyvault",
                        "reshare",
                        "--nodes",
                        &five,
                        "--add",
                        &g.url,
                        "--threshold",
                        "3",
                        "--admin-secret-file",
                        &admin,
                    ]);
                    assert!(!g.status().await.unwrap().epochs.is_empty());
                    // Cut off (frozen) while a worker restarts: its keys come from the
                    // five others.
                    g.freeze(true);
                    restart_one!();
                    g.freeze(false);
                    // Misbehaves: its store rolled back to an earlier copy (an
                    // operator restoring a backup), so it signs a second history.
                    g.stop();
                    let backup = root.path().join("gatekeeper-6.backup");
                    copy_dir(&g.data, &backup);
                    g.spawn().await;
                    // Releases (each restarted worker asks every gatekeeper for its
                    // keys; each release is logged) until its log is past `size`.
                    macro_rules! grow_log {
                        ($size:expr) => {{
                            let until = Instant::now() + Duration::from_secs(120);
                            loop {
                                let now = g.status().await.map_or(0, |i| i.log_size);
                                if now > $size {
                                    break now;
                                }
                                assert!(Instant::now() < until, "no release logged");
                                restart_one!();
                            }
                        }};
                    }
                    let backed_up = g.status().await.unwrap().log_size;
                    let audited = grow_log!(backed_up);
                    let state = root.path().join("audit-6.json");
                    let url = g.url.clone();
                    let audit = || {
                        Command::new(env!("CARGO_BIN_EXE_phalanx"))
                            .args(["keyvault", "audit", "--url", &url, "--state"])
                            .arg(&state)
                            .output()
                            .unwrap()
                    };
                    assert!(audit().status.success());
                    g.stop();
                    std::fs::remove_dir_all(&g.data).unwrap();
                    copy_dir(&backup, &g.data);
                    g.spawn().await;
                    grow_log!(audited - 1);
                    let caught = audit();
                    assert!(!caught.status.success(), "the audit missed the fork");
                    let evidence = state.with_extension("json.misbehaviour");
                    assert!(
                        evidence.exists(),
                        "{}",
                        String::from_utf8_lossy(&caught.stdout)
                    );
                    eprintln!(
                        "soak: gatekeeper 6 backed up at {backed_up} releases, audited at {audited}, rolled back: {}",
                        String::from_utf8_lossy(&caught.stdout).trim()
                    );
                    // Reported by anyone: the registry checks the two heads itself and
                    // takes the member's registration away.
                    let reporter = root.path().join("reporter.key");
                    phalanx(&["chain", "keygen", "--out", reporter.to_str().unwrap()]);
                    phalanx(&[
                        "chain",
                        "tx",
                        "--url",
                        &s("chain"),
                        "--genesis",
                        &s("chain_genesis"),
                        "--key",
                        reporter.to_str().unwrap(),
                        "report-misbehaviour",
                        evidence.to_str().unwrap(),
                    ]);
                    let accused = chain::types::public_key(&g.status().await.unwrap().identity);
                    let state = client.sync().await.unwrap();
                    assert!(state.worker(&accused).is_none());
                    assert!(
                        state
                            .fact(&chain::facts::Fact::Fault(accused.clone()))
                            .is_some()
                    );
                    reported = Some(accused);
                    // Removed: governance lists the five, who reshare the epoch among
                    // themselves.
                    governance(
                        &summary,
                        &["set-gatekeepers", "--nodes", &five, "--threshold", "3"],
                    );
                    phalanx(&[
                        "keyvault",
                        "reshare",
                        "--nodes",
                        &five,
                        "--threshold",
                        "3",
                        "--admin-secret-file",
                        &admin,
                    ]);
                    g.stop();
                    removed_member = Some(g);
                    events.push("a gatekeeper elected, cut off, reported, removed");
                }
            }
            // An upgrade: the new build admitted (the attestation service's policy and
            // governance), each worker replaced by one of it, the old build removed.
            _ => {
                builds += 1;
                // A build's MRENCLAVE: its number, then 0x40s (any number of upgrades).
                let mut mr = [0x40u8; 32];
                mr[..4].copy_from_slice(&builds.to_be_bytes());
                let new_mr = hex::encode(mr);
                admit_build(&dir, &summary, &new_mr).await;
                governance(
                    &summary,
                    &[
                        "add-measurement",
                        &phalanx_cli::devnet::pruntime_tenant(mr)
                            .tenant_id()
                            .to_string(),
                        "--role",
                        "pruntime",
                    ],
                );
                let old_build = workers[0].build.clone();
                for i in 0..workers.len() {
                    // Every worker serving, as an operator would name them.
                    let peers: Vec<String> = workers.iter().map(|w| w.worker.url.clone()).collect();
                    let name = format!("soak-{}-v{builds}", i + 1);
                    let new = start(&name, Some(new_mr.clone()), &peers);
                    at_height(&new.worker, 0).await;
                    serving.lock().unwrap().push(new.worker.url.clone());
                    let old = std::mem::replace(&mut workers[i], new);
                    serving.lock().unwrap().retain(|u| *u != old.worker.url);
                    old.worker.proc.terminate();
                }
                let old_tenant = match &old_build {
                    Some(mr) => {
                        let mut b = [0u8; 32];
                        hex::decode_to_slice(mr, &mut b).unwrap();
                        b
                    }
                    None => {
                        let mut b = [0u8; 32];
                        hex::decode_to_slice(s("pruntime_mr_enclave"), &mut b).unwrap();
                        b
                    }
                };
                governance(
                    &summary,
                    &[
                        "remove-measurement",
                        &phalanx_cli::devnet::pruntime_tenant(old_tenant)
                            .tenant_id()
                            .to_string(),
                    ],
                );
                events.push("upgrade");
            }
        }
        round += 1;
        if round >= 4 && Instant::now() >= deadline {
            break;
        }
    }

    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Relaxed);
    sender.await.unwrap();
    asker.await.unwrap();
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    // Every worker: every command the registry accepted (the user's sequence number on
    // the registry counts them, including any whose submission timed out here) applied
    // exactly once, one state.
    let synced = client.sync().await.unwrap();
    // No false evidence: the registry named the member caught forking its log and
    // nobody else, through every restart, rotation, upgrade and the cut.
    let named: Vec<Vec<u8>> = {
        use chain::registry::Registry as _;
        client
            .events(0)
            .await
            .unwrap()
            .into_iter()
            .filter_map(|(_, e)| match e {
                chain::types::Event::Misbehaved { identity_key, .. } => Some(identity_key),
                _ => None,
            })
            .collect()
    };
    assert_eq!(named, reported.into_iter().collect::<Vec<_>>());
    let included = synced.nonce(&chain::types::public_key(user.verifying_key()));
    assert!(
        seen.accepted <= included && included > 10,
        "{} of {included}",
        seen.accepted
    );
    let mut roots = Vec::new();
    for w in &workers {
        at_height(&w.worker, seen.last.max(synced.height().saturating_sub(1))).await;
        let (_, root, out) = read(&client, &w.worker.url, &user, contract).await;
        assert_eq!(
            u64::from_le_bytes(out[..8].try_into().unwrap()),
            included,
            "{}: every accepted command applied exactly once",
            w.name
        );
        roots.push(root);
    }
    assert!(roots.windows(2).all(|r| r[0] == r[1]), "{roots:?}");
    assert!(
        seen.refused.is_empty(),
        "answers refused: {:?}",
        seen.refused
    );
    assert!(seen.verified > 0, "no answer verified");
    // Nothing for a removed build: the devnet's first build cannot register, whatever it
    // starts from.
    let live: Vec<String> = workers.iter().map(|w| w.worker.url.clone()).collect();
    let removed = worker_with(
        root.path(),
        "soak-removed",
        &summary,
        &strs(&args(None, &live)),
    );
    assert!(removed.url.is_empty(), "a removed build started serving");
    let log = std::fs::read_to_string(&removed.log).unwrap();
    assert!(log.contains("is not allowed"), "{log}");
    println!(
        "soak: {secs} s, events {events:?}; {} commands accepted and applied by each of {} workers; {} queries, {:.3} answered within 1 s, longest gap {:?}; {} answers verified",
        seen.accepted,
        workers.len(),
        seen.asked,
        seen.fast as f64 / seen.asked.max(1) as f64,
        seen.longest,
        seen.verified,
    );
}

/// A gatekeeper the soak runs as its own process (`phalanx gatekeeper`), beside the
/// devnet's five (which share the devnet's process): one that can be elected, frozen,
/// rolled back and removed on its own.
struct ExtraGatekeeper {
    config: PathBuf,
    data: PathBuf,
    log: PathBuf,
    url: String,
    proc: Option<Proc>,
}

impl ExtraGatekeeper {
    /// Member `index` for the devnet in `devnet` (`summary`): its config (the devnet
    /// gatekeepers' settings: simulated TEE, the devnet's attestation service, CA,
    /// admin secret and registry), its identity (`init`) and its certificate.
    fn new(root: &Path, devnet: &Path, summary: &serde_json::Value, index: u16) -> Self {
        let s = |k: &str| summary[k].as_str().unwrap().to_owned();
        let data = root.join(format!("gatekeeper-{index}"));
        std::fs::create_dir_all(&data).unwrap();
        let port = || {
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        };
        let (client, peer) = (port(), port());
        let rest = s("attestation_rest");
        let config = data.with_extension("toml");
        std::fs::write(
            &config,
            format!(
                "index = {index}\ndata_dir = {data:?}\nadmin_secret_file = {admin:?}\n\
                 [listen]\nclient = \"127.0.0.1:{client}\"\npeer = \"127.0.0.1:{peer}\"\n\
                 [tls]\nca_cert = {ca:?}\ncert = {cert:?}\n\
                 [attestation]\njwks_url = \"{rest}/.well-known/jwks.json\"\n\
                 service_url = \"{rest}\"\npolicy = \"devnet\"\n\
                 [tee]\nbackend = \"sim\"\nsim_pki = {sim:?}\nmr_enclave = \"{mr}\"\n\
                 [registry]\nurl = \"{chain}\"\ngenesis = \"{genesis}\"\n\
                 [policy]\nissuer = \"{rest}\"\ntrust_roots = [\"sim\"]\n\
                 attestation_policies = [\"devnet\"]\ngatekeeper_policies = [\"devnet\"]\n\
                 contract_runtimes_from_registry = true\n",
                data = data.to_str().unwrap(),
                admin = s("admin_secret_file"),
                ca = devnet.join("ca/ca.pem").to_str().unwrap(),
                cert = data.join("cert.pem").to_str().unwrap(),
                sim = devnet.join("attestation/sim/sim.json").to_str().unwrap(),
                mr = hex::encode(phalanx_cli::devnet::GATEKEEPER_MR_ENCLAVE),
                chain = s("chain"),
                genesis = s("chain_genesis"),
            ),
        )
        .unwrap();
        let init = Command::new(env!("CARGO_BIN_EXE_phalanx"))
            .args(["gatekeeper", "--config", config.to_str().unwrap(), "init"])
            .output()
            .unwrap();
        assert!(init.status.success(), "{init:?}");
        let id: serde_json::Value = serde_json::from_slice(&init.stdout).unwrap();
        phalanx(&[
            "keyvault",
            "certify",
            "--ca-dir",
            devnet.join("ca").to_str().unwrap(),
            "--index",
            &index.to_string(),
            "--identity-key",
            id["identity_key"].as_str().unwrap(),
            "--out",
            data.join("cert.pem").to_str().unwrap(),
        ]);
        Self {
            log: data.with_extension("log"),
            config,
            data,
            url: format!("http://127.0.0.1:{client}"),
            proc: None,
        }
    }

    /// Serves (it attests and registers itself), until it answers its status.
    async fn spawn(&mut self) {
        let child = Command::new(env!("CARGO_BIN_EXE_phalanx"))
            .args([
                "gatekeeper",
                "--config",
                self.config.to_str().unwrap(),
                "serve",
            ])
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(
                std::fs::File::options()
                    .create(true)
                    .append(true)
                    .open(&self.log)
                    .unwrap(),
            )
            .spawn()
            .unwrap();
        self.proc = Some(Proc(child));
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.status().await.is_none() {
            assert!(
                Instant::now() < deadline,
                "gatekeeper {} did not come up: {}",
                self.url,
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn status(&self) -> Option<keyvault::admin::NodeInfo> {
        keyvault::admin::cluster_status(std::slice::from_ref(&self.url))
            .await
            .pop()?
            .ok()
    }

    /// SIGTERM, and waits for it.
    fn stop(&mut self) {
        if let Some(p) = self.proc.take() {
            p.terminate();
        }
    }

    /// Frozen (SIGSTOP: its sockets still take connections, nothing answers: cut off
    /// from workers and peers), or running again (SIGCONT).
    fn freeze(&self, frozen: bool) {
        let pid = self.proc.as_ref().unwrap().0.id().to_string();
        let signal = if frozen { "-STOP" } else { "-CONT" };
        assert!(
            Command::new("kill")
                .args([signal, &pid])
                .status()
                .unwrap()
                .success()
        );
    }
}

/// [`governance`], tried again for a while while the registry refuses it (a
/// gatekeeper that has not registered itself yet).
async fn retry_governance(summary: &serde_json::Value, tx: &[&str]) {
    let s = |k: &str| summary[k].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = Command::new(env!("CARGO_BIN_EXE_phalanx"))
            .args([
                "chain",
                "tx",
                "--url",
                &s("chain"),
                "--genesis",
                &s("chain_genesis"),
            ])
            .args(["--key", &s("governance_key_file")])
            .args(tx)
            .output()
            .unwrap();
        if out.status.success() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{tx:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Copies directory `from` to `to` (which must not exist), files and subdirectories.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// The operator's part of admitting a new pRuntime build `mr_enclave` (hex): the
/// devnet attestation service's policy appraises it too (a new version of the policy).
async fn admit_build(dir: &Path, summary: &serde_json::Value, mr_enclave: &str) {
    let token_file = walk(dir, "admin.token").expect("the attestation service's admin token");
    let token = std::fs::read_to_string(token_file).unwrap();
    let http = reqwest::Client::new();
    let url = format!(
        "{}/v1/policies/devnet",
        summary["attestation_rest"].as_str().unwrap()
    );
    let mut policy: serde_json::Value = http
        .get(&url)
        .bearer_auth(token.trim())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut rule = policy["sgx"][0].clone();
    rule["mr_enclave"] = serde_json::Value::String(mr_enclave.to_owned());
    policy["sgx"].as_array_mut().unwrap().push(rule);
    policy["version"] = (policy["version"].as_u64().unwrap() + 1).into();
    let put = http
        .put(&url)
        .bearer_auth(token.trim())
        .json(&policy)
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success(), "{:?}", put.text().await);
}
