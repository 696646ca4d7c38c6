//! A user's commands against a running devnet, as a new user types them: `phalanx
//! contract send | query | receipt | deploy`. A command's receipt comes back applied with
//! its output and event, and only to its sender; a query's answer and a receipt each
//! write a bundle that `phalanx verify answer` accepts, and refuses once its kind is
//! changed; a module pRuntime would refuse is never deployed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::Path;
use std::process::Command;

/// `phalanx ARGS`: exit code, stdout, stderr.
fn phalanx(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_phalanx"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// `phalanx contract ARGS --json` as `key`, against the devnet of `summary`.
fn contract(
    summary: &serde_json::Value,
    key: &Path,
    args: &[&str],
) -> (i32, serde_json::Value, String) {
    let mut argv = vec![
        "contract",
        args[0],
        "--registry",
        summary["chain"].as_str().unwrap(),
        "--genesis",
        summary["chain_genesis"].as_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
        "--json",
    ];
    argv.extend_from_slice(&args[1..]);
    let (code, out, err) = phalanx(&argv);
    (code, serde_json::from_str(&out).unwrap_or_default(), err)
}

#[test]
fn a_user_sends_queries_and_fetches_receipts_from_the_command_line() {
    // Long on purpose: one user's session, read top to bottom as it runs.
    let root = tempfile::tempdir().unwrap();
    let (_devnet, summary) = common::devnet(&root.path().join("devnet"));
    let worker = summary["pruntime"].as_str().unwrap();
    let id = summary["contract"].as_str().unwrap();
    let (alice, bob) = (root.path().join("alice.key"), root.path().join("bob.key"));
    for k in [&alice, &bob] {
        assert_eq!(
            phalanx(&["chain", "keygen", "--out", k.to_str().unwrap()]).0,
            0
        );
    }

    // Send: the counter's receipt names Alice's first bump, its output and its event.
    let receipt_bundle = root.path().join("receipt.json");
    let (code, sent, err) = contract(
        &summary,
        &alice,
        &[
            "send",
            "--contract",
            id,
            "--input",
            "bump",
            "--worker",
            worker,
            "--bundle",
            receipt_bundle.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    let r = &sent["receipt"];
    assert_eq!(r["status"], "applied", "{sent}");
    assert_eq!(r["output"]["hex"], hex::encode(1u64.to_le_bytes()));
    assert_eq!(r["events"][0]["hex"], hex::encode(1u64.to_le_bytes()));
    assert!(r["fuel_used"].as_u64().unwrap() > 0);
    assert_eq!(r["height"], sent["height"]);

    // Without waiting: the nonce, then the receipt by it — Alice's only.
    let (code, sent, err) = contract(
        &summary,
        &alice,
        &["send", "--contract", id, "--input-hex", "00", "--wait", "0"],
    );
    assert_eq!(code, 0, "{err}");
    let nonce = sent["nonce"].as_u64().unwrap().to_string();
    let ask = |key: &Path| {
        let args = [
            "receipt",
            "--contract",
            id,
            "--nonce",
            &nonce,
            "--worker",
            worker,
        ];
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let got = contract(&summary, key, &args);
            if got.0 == 0 || std::time::Instant::now() > deadline || key == bob.as_path() {
                return got;
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    };
    let (code, got, err) = ask(&alice);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        got["receipt"]["output"]["hex"],
        hex::encode(2u64.to_le_bytes())
    );
    let (code, _, err) = ask(&bob);
    assert_eq!(code, 2);
    assert!(err.contains("no receipt"), "{err}");

    // Query: Alice's count and the total, with a bundle.
    let query_bundle = root.path().join("query.json");
    let (code, answer, err) = contract(
        &summary,
        &alice,
        &[
            "query",
            "--contract",
            id,
            "--input",
            "",
            "--worker",
            worker,
            "--bundle",
            query_bundle.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    let out = hex::decode(answer["output"]["hex"].as_str().unwrap()).unwrap();
    assert_eq!(out[..8], 2u64.to_le_bytes());
    // Without --worker: the worker the registry lists for the contract (the devnet's
    // announced where it serves).
    let (code, found, err) = contract(
        &summary,
        &alice,
        &["query", "--contract", id, "--input", ""],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(found["output"], answer["output"]);

    // Both bundles verify; a receipt's bundle passed off as a query's does not.
    let root_pem =
        Path::new(summary["bundle_file"].as_str().unwrap()).with_file_name("sim-root.pem");
    let verify = |bundle: &Path| {
        phalanx(&[
            "verify",
            "answer",
            bundle.to_str().unwrap(),
            "--genesis",
            summary["chain_genesis"].as_str().unwrap(),
            "--trust-root",
            root_pem.to_str().unwrap(),
            "--json",
        ])
    };
    for b in [&receipt_bundle, &query_bundle] {
        let (code, out, _) = verify(b);
        assert_eq!(code, 0, "{out}");
    }
    let mut doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&receipt_bundle).unwrap()).unwrap();
    assert_eq!(doc["answer"]["kind"], "receipt");
    doc["answer"].as_object_mut().unwrap().remove("kind");
    std::fs::write(&receipt_bundle, doc.to_string()).unwrap();
    let (code, out, _) = verify(&receipt_bundle);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("query_hash"), "{out}");

    typed_examples_through_the_devnet(&summary, &alice, &bob, sent["height"].as_u64().unwrap());
    market_through_the_devnet(&summary, &alice, &bob);

    // A command over the registry's bound (the largest input sealed) is refused
    // before it is ordered; a file over the input bound is not even read.
    let big = root.path().join("big.bin");
    std::fs::write(&big, vec![0u8; 64 * 1024]).unwrap();
    let send_file = |file: &Path| {
        let file = file.to_str().unwrap();
        let args = [
            "send",
            "--contract",
            id,
            "--input-file",
            file,
            "--wait",
            "0",
        ];
        contract(&summary, &alice, &args)
    };
    let (code, _, err) = send_file(&big);
    assert_eq!(code, 2);
    assert!(err.contains("command"), "{err}");
    std::fs::write(&big, vec![0u8; 64 * 1024 + 1]).unwrap();
    let (code, _, err) = send_file(&big);
    assert_eq!(code, 2);
    assert!(err.contains("over 65536 bytes"), "{err}");

    // Deploy: a PEM file is refused before anything is sent; the auction deploys.
    let pem = root_pem.to_str().unwrap();
    let (code, _, err) = contract(&summary, &alice, &["deploy", "--module", pem]);
    assert_eq!(code, 2);
    assert!(err.contains("nothing was submitted"), "{err}");
    let auction = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../pruntime/guest/wasm/auction.wasm"
    );
    let (code, deployed, err) = contract(&summary, &alice, &["deploy", "--module", auction]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(deployed["contract"].as_str().unwrap().len(), 64);
    // Not served by the devnet's worker: named as such.
    let (code, _, err) = contract(
        &summary,
        &alice,
        &[
            "query",
            "--contract",
            deployed["contract"].as_str().unwrap(),
            "--input-hex",
            "01",
            "--worker",
            worker,
        ],
    );
    assert_eq!(code, 2);
    assert!(err.contains("does not serve contract"), "{err}");
}

/// The caller id the contract sees for the holder of `key`.
fn caller_id(key: &Path) -> [u8; 32] {
    let k = keyvault::registry::key_file(key).unwrap();
    phalanx_types::contract::caller_id(&chain::types::public_key(k.verifying_key()))
}

/// `name` as borsh encodes a string.
fn borsh_str(name: &str) -> Vec<u8> {
    [&(name.len() as u32).to_le_bytes()[..], name.as_bytes()].concat()
}

/// `phalanx contract VERB --contract ID --input-hex INPUT` as `key`, asking the devnet's
/// worker: exit code, JSON, stderr.
fn with_input(
    summary: &serde_json::Value,
    key: &Path,
    verb: &str,
    id: &str,
    input: &[u8],
) -> (i32, serde_json::Value, String) {
    let worker = summary["pruntime"].as_str().unwrap();
    let input = hex::encode(input);
    let args = [
        verb,
        "--contract",
        id,
        "--input-hex",
        &input,
        "--worker",
        worker,
    ];
    contract(summary, key, &args)
}

/// `phalanx contract send`: its JSON (which must say it was sent).
fn send_bytes(
    summary: &serde_json::Value,
    key: &Path,
    id: &str,
    input: &[u8],
) -> serde_json::Value {
    let (code, sent, err) = with_input(summary, key, "send", id, input);
    assert_eq!(code, 0, "{err}");
    sent
}

/// `phalanx contract query`: exit code, output bytes, stderr.
fn query_bytes(
    summary: &serde_json::Value,
    key: &Path,
    id: &str,
    input: &[u8],
) -> (i32, Vec<u8>, String) {
    let (code, answer, err) = with_input(summary, key, "query", id, input);
    (
        code,
        hex::decode(answer["output"]["hex"].as_str().unwrap_or_default()).unwrap(),
        err,
    )
}

/// The market through chain and worker: one contract whose code calls another's (the
/// token it carries). Alice sells; Bob claims tokens, approves the market and bids
/// through it; the close pays Alice through the token. And `phalanx contract bundle`
/// makes that same module from the two.
fn market_through_the_devnet(summary: &serde_json::Value, alice: &Path, bob: &Path) {
    let dir = tempfile::tempdir().unwrap();
    let guest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../pruntime/guest/wasm");
    let out = dir.path().join("market.wasm");
    let (code, printed, err) = phalanx(&[
        "contract",
        "bundle",
        "--module",
        guest.join("market.wasm").to_str().unwrap(),
        "--component",
        &format!("token={}", guest.join("token.wasm").display()),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let bundled = phalanx_cli::devnet::examples().unwrap().pop().unwrap();
    assert_eq!(bundled.0, "market");
    assert_eq!(
        std::fs::read(&out).unwrap(),
        bundled.1,
        "the devnet's market"
    );
    let hash = hex::encode(phalanx_contract::code_hash(&bundled.1));
    assert!(printed.contains(&hash), "{printed}");

    let market = summary["examples"]["market"].as_str().unwrap();
    let send = |key: &Path, input: &[u8]| {
        let sent = send_bytes(summary, key, market, input);
        assert_eq!(sent["receipt"]["status"], "applied", "{sent}");
        hex::decode(sent["receipt"]["output"]["hex"].as_str().unwrap()).unwrap()
    };
    let claimed = send_bytes(summary, bob, market, &[3, 0]);
    assert_eq!(
        claimed["receipt"]["output"]["hex"],
        hex::encode(1000u64.to_le_bytes()),
        "claimed through the market"
    );
    let end = claimed["height"].as_u64().unwrap() + 8;
    send(alice, &[&[0u8][..], &end.to_le_bytes()].concat());
    let (_, id, _) = query_bytes(summary, bob, market, &[1]);
    assert_eq!(id[0], 1, "Answer::Id");
    send(
        bob,
        &[&[3u8, 2][..], &id[1..], &400u64.to_le_bytes()].concat(),
    );
    assert_eq!(
        send(bob, &[&[1u8][..], &300u64.to_le_bytes()].concat()),
        300u64.to_le_bytes()
    );
    let balance = |key: &Path| query_bytes(summary, key, market, &[3, 0]).1;
    assert_eq!(
        balance(bob),
        [&[2u8][..], &700u64.to_le_bytes()].concat(),
        "in escrow"
    );
    // Each command is a block: the close is refused until the end height.
    let close = || send_bytes(summary, alice, market, &[2]);
    let mut closed = close();
    for _ in 0..24 {
        if closed["receipt"]["status"] == "applied" {
            break;
        }
        assert_eq!(
            closed["receipt"]["message"], "bidding has not ended",
            "{closed}"
        );
        closed = close();
    }
    assert_eq!(
        closed["receipt"]["output"]["hex"],
        hex::encode(300u64.to_le_bytes())
    );
    assert_eq!(
        balance(alice),
        [&[2u8][..], &300u64.to_le_bytes()].concat(),
        "paid"
    );
}

/// The typed examples the devnet serves, through chain and worker: a vote of Alice and
/// Bob whose tally opens only after the close, and a vault secret Bob reads only once
/// Alice grants it. `height`: the registry's height a moment ago.
fn typed_examples_through_the_devnet(
    summary: &serde_json::Value,
    alice: &Path,
    bob: &Path,
    height: u64,
) {
    // Long on purpose: two contracts' stories, each read top to bottom as it runs.
    let worker = summary["pruntime"].as_str().unwrap();
    let send = |key: &Path, id: &str, input: &[u8]| send_bytes(summary, key, id, input);
    let query = |key: &Path, id: &str, input: &[u8]| query_bytes(summary, key, id, input);

    let vote = summary["examples"]["vote"].as_str().unwrap();
    // Room for the four commands below and the blocks others add meanwhile.
    let end = height + 12;
    let open = [
        &[0u8, 2][..],
        &2u32.to_le_bytes(),
        &caller_id(alice),
        &caller_id(bob),
        &end.to_le_bytes(),
    ]
    .concat();
    assert_eq!(send(alice, vote, &open)["receipt"]["status"], "applied");
    send(alice, vote, &[1, 1]);
    send(bob, vote, &[1, 1]);
    let refused = send(bob, vote, &[1, 0]);
    assert_eq!(refused["receipt"]["status"], "refused");
    assert_eq!(refused["receipt"]["message"], "already voted");
    assert_eq!(
        query(alice, vote, &[2]).0,
        2,
        "the tally is sealed before the close"
    );
    // Each command is a block: the close is refused until the end height is reached.
    let mut closed = send(alice, vote, &[2]);
    for _ in 0..24 {
        if closed["receipt"]["status"] != "refused" {
            break;
        }
        assert_eq!(closed["receipt"]["message"], "voting has not ended");
        closed = send(alice, vote, &[2]);
    }
    assert_eq!(closed["receipt"]["status"], "applied", "{closed}");
    let tally = [
        &[2u8][..],
        &2u32.to_le_bytes(),
        &0u64.to_le_bytes(),
        &2u64.to_le_bytes(),
    ]
    .concat();
    assert_eq!(query(bob, vote, &[2]).1, tally);
    // The vote lets anyone read its events: two casts (who and what stay sealed) and
    // the tally at the close; the counter lets nobody.
    let events = |key: &Path, id: &str| {
        let args = [
            "events",
            "--contract",
            id,
            "--from",
            "0",
            "--worker",
            worker,
        ];
        contract(summary, key, &args)
    };
    let (code, page, err) = events(bob, vote);
    assert_eq!(code, 0, "{err}");
    let data: Vec<String> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["data"]["hex"].as_str().unwrap().to_owned())
        .collect();
    let closed = [&[1u8][..], &tally[1..]].concat();
    assert_eq!(data, ["00", "00", &hex::encode(closed)]);
    let (code, _, err) = events(bob, summary["contract"].as_str().unwrap());
    assert_eq!(code, 2);
    assert!(err.contains("not_a_reader"), "{err}");
    // Following: the same events as they come, one JSON line each.
    let mut follow = std::process::Command::new(env!("CARGO_BIN_EXE_phalanx"))
        .args([
            "contract",
            "events",
            "--registry",
            summary["chain"].as_str().unwrap(),
        ])
        .args(["--genesis", summary["chain_genesis"].as_str().unwrap()])
        .args(["--key", bob.to_str().unwrap(), "--json", "--follow"])
        .args(["--contract", vote, "--worker", worker])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(follow.stdout.take().unwrap()));
    let followed: Vec<String> = (0..3)
        .map(|_| {
            let line: serde_json::Value =
                serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
            line["data"]["hex"].as_str().unwrap().to_owned()
        })
        .collect();
    let _ = follow.kill();
    let _ = follow.wait();
    assert_eq!(followed, data);

    let vault = summary["examples"]["vault"].as_str().unwrap();
    send(
        alice,
        vault,
        &[&[0u8][..], &borsh_str("api"), &3u32.to_le_bytes(), b"key"].concat(),
    );
    let get = [&[0u8][..], &caller_id(alice), &borsh_str("api")].concat();
    assert_eq!(
        query(alice, vault, &get).1,
        [&3u32.to_le_bytes()[..], b"key"].concat()
    );
    assert_eq!(query(bob, vault, &get).0, 2, "not granted");
    send(
        alice,
        vault,
        &[&[1u8][..], &borsh_str("api"), &caller_id(bob)].concat(),
    );
    assert_eq!(
        query(bob, vault, &get).1,
        [&3u32.to_le_bytes()[..], b"key"].concat()
    );
}
