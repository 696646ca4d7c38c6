//! A confidential contract's output that another chain accepts, with no oracle and no
//! relayer to trust: the devnet runs on anvil (the Solidity registry), a seller opens
//! the example sealed-bid auction and two bidders bid through the registry, all as
//! `phalanx contract send`; after the close, the auction's signed result (its query 4:
//! the contract's signature by its key on the registry) settles `AuctionSettlement` on
//! the same chain, which checks it with P256VERIFY against the key the registry lists. A
//! result with another price, or a second settlement, is refused. Skipped without anvil
//! unless `PHALANX_REQUIRE_ANVIL` is set.
#![cfg(unix)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use alloy_primitives::keccak256;
use std::path::{Path, PathBuf};
use std::process::Command;

/// anvil's first development account (unlocked on the node: `eth_sendTransaction`).
const DEV_ACCOUNT: &str = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";
const DEV_KEY: &[u8] = b"ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

fn rpc(url: &str, method: &str, params: serde_json::Value) -> Result<serde_json::Value, String> {
    let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let r: serde_json::Value = tokio::runtime::Handle::current().block_on(async {
        reqwest::Client::new()
            .post(url)
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    match r.get("error") {
        Some(e) => Err(e.to_string()),
        None => Ok(r["result"].clone()),
    }
}

fn block_number(url: &str) -> u64 {
    let n = rpc(url, "eth_blockNumber", serde_json::json!([])).unwrap();
    u64::from_str_radix(n.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
}

/// Sends `data` (to `to`, or a creation) from the development account; the receipt, or
/// the revert (with its error's data).
fn transact(url: &str, to: Option<&str>, data: &[u8]) -> Result<serde_json::Value, String> {
    let mut tx =
        serde_json::json!({"from": DEV_ACCOUNT, "data": format!("0x{}", hex::encode(data))});
    if let Some(to) = to {
        tx["to"] = to.into();
    }
    // Simulated first: a revert comes back with its error's data.
    rpc(url, "eth_call", serde_json::json!([tx, "latest"]))?;
    let hash = rpc(url, "eth_sendTransaction", serde_json::json!([tx]))?;
    let mut receipt = serde_json::Value::Null;
    for _ in 0..100 {
        receipt = rpc(url, "eth_getTransactionReceipt", serde_json::json!([hash])).unwrap();
        if !receipt.is_null() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    if receipt["status"] != "0x1" {
        return Err(format!("reverted: {receipt}"));
    }
    Ok(receipt)
}

fn call(url: &str, to: &str, signature: &str) -> Vec<u8> {
    let data = format!("0x{}", hex::encode(&keccak256(signature.as_bytes())[..4]));
    let out = rpc(
        url,
        "eth_call",
        serde_json::json!([{"to": to, "data": data}, "latest"]),
    )
    .unwrap();
    hex::decode(out.as_str().unwrap().trim_start_matches("0x")).unwrap()
}

fn word(b: &[u8]) -> [u8; 32] {
    let mut w = [0u8; 32];
    w[32 - b.len()..].copy_from_slice(b);
    w
}

/// The devnet's user and accounts: `phalanx contract ARGS --json` against its registry.
struct User<'a> {
    summary: &'a serde_json::Value,
    evm_key: PathBuf,
}

impl User<'_> {
    fn contract(&self, key: &Path, args: &[&str]) -> serde_json::Value {
        let out = Command::new(env!("CARGO_BIN_EXE_phalanx"))
            .args(["contract", args[0], "--registry"])
            .arg(self.summary["chain"].as_str().unwrap())
            .arg("--key")
            .arg(key)
            .arg("--evm-key")
            .arg(&self.evm_key)
            .args([
                "--json",
                "--worker",
                self.summary["pruntime"].as_str().unwrap(),
            ])
            .args([
                "--contract",
                self.summary["examples"]["auction"].as_str().unwrap(),
            ])
            .args(&args[1..])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn applied(&self, key: &Path, input: &[u8]) -> Vec<u8> {
        let sent = self.contract(key, &["send", "--input-hex", &hex::encode(input)]);
        assert_eq!(sent["receipt"]["status"], "applied", "{sent}");
        hex::decode(sent["receipt"]["output"]["hex"].as_str().unwrap()).unwrap()
    }
}

fn find(dir: &Path, name: &str) -> Option<PathBuf> {
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let p = e.path();
        if p.file_name().is_some_and(|n| n == name) {
            return Some(p);
        }
        if p.is_dir()
            && let Some(found) = find(&p, name)
        {
            return Some(found);
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confidential_auction_settles_on_an_evm_chain_by_its_contract_key() {
    let Some(anvil) = chain::evm::Anvil::start(None).await.unwrap() else {
        assert!(
            std::env::var_os("PHALANX_REQUIRE_ANVIL").is_none(),
            "PHALANX_REQUIRE_ANVIL is set but no anvil is installed (set ANVIL)"
        );
        return;
    };
    let url = anvil.url().to_owned();
    tokio::task::block_in_place(|| settle_on(&url));
}

fn settle_on(url: &str) {
    // Long on purpose: one auction from opening to settlement, read top to bottom.
    let root = tempfile::tempdir().unwrap();
    let funder = root.path().join("funder.key");
    phalanx_types::secret_file::create(&funder, DEV_KEY).unwrap();
    let data = root.path().join("devnet");
    let (_devnet, summary) = common::devnet_with(
        &data,
        &["--chain", url, "--evm-key", funder.to_str().unwrap()],
    );
    let user = User {
        summary: &summary,
        evm_key: find(&data, "user-eth.key").expect("the devnet's funded user account"),
    };
    let keys: Vec<PathBuf> = ["seller", "bob", "carol"]
        .iter()
        .map(|n| {
            let k = root.path().join(format!("{n}.key"));
            let out = Command::new(env!("CARGO_BIN_EXE_phalanx"))
                .args(["chain", "keygen", "--out"])
                .arg(&k)
                .output()
                .unwrap();
            assert!(out.status.success());
            k
        })
        .collect();
    let (seller, bob, carol) = (&keys[0], &keys[1], &keys[2]);

    // Through the registry and the worker: open, two sealed bids, then the close once
    // the end height has passed.
    let end = block_number(url) + 40;
    user.applied(seller, &[&[1u8][..], &end.to_le_bytes()].concat());
    user.applied(bob, &[&[2u8][..], &500u64.to_le_bytes()].concat());
    user.applied(carol, &[&[2u8][..], &700u64.to_le_bytes()].concat());
    rpc(url, "anvil_mine", serde_json::json!(["0x40"])).unwrap();
    let result = user.applied(seller, &[3]);
    let carol_id = phalanx_types::contract::caller_id(&chain::types::public_key(
        keyvault::registry::key_file(carol).unwrap().verifying_key(),
    ));
    assert_eq!(result, [&carol_id[..], &700u64.to_le_bytes()].concat());

    // The signed result, as anyone may ask for it.
    let answer = user.contract(bob, &["query", "--input-hex", "04"]);
    let signed = hex::decode(answer["output"]["hex"].as_str().unwrap()).unwrap();
    assert_eq!(signed.len(), 32 + 8 + 8 + 64);
    let (winner, rest) = signed.split_at(32);
    let (price, rest) = rest.split_at(8);
    let (epoch, sig) = rest.split_at(8);
    assert_eq!((winner, price), (&carol_id[..], &700u64.to_be_bytes()[..]));

    // The contract's signing key of that epoch, as the registry lists it.
    let status = Command::new(env!("CARGO_BIN_EXE_phalanx"))
        .args([
            "chain",
            "status",
            "--url",
            summary["chain"].as_str().unwrap(),
        ])
        .output()
        .unwrap();
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let auction = status["contracts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == summary["examples"]["auction"])
        .unwrap_or_else(|| panic!("{status}"));
    // The worker announced where it serves (an event of the registry's log on EVM).
    assert_eq!(
        auction["served_by"][0]["url"], summary["pruntime"],
        "{auction}"
    );
    let epoch_n = u64::from_be_bytes(epoch.try_into().unwrap());
    let key = auction["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["epoch"] == epoch_n)
        .unwrap();
    let key = hex::decode(key["signing_key"].as_str().unwrap()).unwrap();
    let point = p256::PublicKey::from_sec1_bytes(&key).unwrap();
    let point = p256::elliptic_curve::sec1::ToSec1Point::to_sec1_point(&point, false);
    let (x, y) = point.as_bytes()[1..].split_at(32);

    // Settlement on the same chain, against the registry's address.
    let artifact: serde_json::Value =
        serde_json::from_str(include_str!("../../chain/contracts/AuctionSettlement.json")).unwrap();
    let registry = summary["chain"]
        .as_str()
        .unwrap()
        .rsplit('#')
        .next()
        .unwrap();
    let mut create = hex::decode(
        artifact["bytecode"]
            .as_str()
            .unwrap()
            .trim_start_matches("0x"),
    )
    .unwrap();
    create.extend(word(
        &hex::decode(registry.trim_start_matches("0x")).unwrap(),
    ));
    create.extend(hex::decode(summary["examples"]["auction"].as_str().unwrap()).unwrap());
    let deployed = transact(url, None, &create).unwrap();
    let settlement = deployed["contractAddress"].as_str().unwrap().to_owned();
    let settle_as = |price: u64, epoch: &[u8], (x, y): (&[u8], &[u8])| {
        let mut data = keccak256(b"settle(bytes32,uint64,uint64,bytes32,bytes32,bytes32,bytes32)")
            [..4]
            .to_vec();
        for w in [
            word(winner),
            word(&price.to_be_bytes()),
            word(epoch),
            word(&sig[..32]),
            word(&sig[32..]),
            word(x),
            word(y),
        ] {
            data.extend(w);
        }
        transact(url, Some(&settlement), &data)
    };
    let settle = |price: u64| settle_as(price, epoch, (x, y));
    // Another price is not what the contract signed.
    let refused = |e: Result<serde_json::Value, String>, error: &str| {
        let selector = hex::encode(&keccak256(error.as_bytes())[..4]);
        let e = e.unwrap_err();
        assert!(e.contains(&selector), "{error}: {e}");
    };
    refused(settle(701), "BadSignature()");
    // A key the registry does not list for that epoch, or an epoch without keys.
    refused(settle_as(700, epoch, (y, x)), "NotTheKey()");
    refused(
        settle_as(700, &99u64.to_be_bytes(), (x, y)),
        "NoSuchKey(uint64)",
    );
    let receipt = settle(700).unwrap();
    let gas = u64::from_str_radix(
        receipt["gasUsed"]
            .as_str()
            .unwrap()
            .trim_start_matches("0x"),
        16,
    )
    .unwrap();
    println!("AuctionSettlement.settle: {gas} gas");
    assert!(gas < 200_000, "{gas}");
    assert_eq!(call(url, &settlement, "settled()"), word(&[1]));
    assert_eq!(call(url, &settlement, "winner()"), carol_id);
    assert_eq!(
        call(url, &settlement, "price()"),
        word(&700u64.to_be_bytes())
    );
    // Once only.
    refused(settle(700), "AlreadySettled()");
}
