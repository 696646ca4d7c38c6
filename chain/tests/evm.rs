//! The conformance suite against the Solidity registry on a real EVM node: `anvil`,
//! started here on loopback (from `$ANVIL`, else `anvil` on the `PATH`; `.ci/run`
//! installs it from npm). Run with `cargo test -p chain --no-default-features
//! --features evm --test evm`.
#![cfg(feature = "evm")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod suite;

use alloy::network::TransactionBuilder;
use alloy::primitives::U256;
use alloy::providers::{Provider, ProviderBuilder};
use alloy::rpc::types::TransactionRequest;
use chain::evm::{EvmAccount, EvmRegistry, PrivateKeySigner};
use p256::ecdsa::SigningKey;
use std::process::{Child, Command, Stdio};

struct Anvil(Child);

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn anvil() -> (Anvil, String) {
    let bin = std::env::var("ANVIL").unwrap_or_else(|_| "anvil".into());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Anvil(Command::new(&bin)
        .args(["--host", "127.0.0.1", "--port", &port.to_string(), "--silent"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start anvil ({bin}): {e}; set ANVIL or install @foundry-rs/anvil-linux-amd64")));
    let url = format!("http://127.0.0.1:{port}");
    let provider = ProviderBuilder::new().connect_http(url.parse().unwrap());
    for _ in 0..100 {
        if provider.get_chain_id().await.is_ok() {
            return (child, url);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("anvil did not come up on {url}");
}

struct Evm {
    url: String,
    registry: EvmRegistry,
    governance: EvmAccount,
    sim: phalanx_dcap_sim::SimTee,
    registry_id: [u8; 32],
}

/// A fresh account with 10 ETH from anvil's first (unlocked) account.
async fn funded(url: &str) -> PrivateKeySigner {
    let signer = PrivateKeySigner::random();
    let provider = ProviderBuilder::new().connect_http(url.parse().unwrap());
    let rich = provider.get_accounts().await.unwrap()[0];
    let tx = TransactionRequest::default()
        .with_from(rich)
        .with_to(signer.address())
        .with_value(U256::from(10u128.pow(19)));
    provider
        .send_transaction(tx)
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    signer
}

impl suite::Fixture for Evm {
    type R = EvmRegistry;
    fn registry(&self) -> &EvmRegistry {
        &self.registry
    }
    fn governance(&self) -> &EvmAccount {
        &self.governance
    }
    async fn account(&mut self) -> (EvmAccount, SigningKey) {
        let identity = chain::random_key();
        (
            EvmAccount {
                signer: funded(&self.url).await,
                identity: Some(identity.clone()),
            },
            identity,
        )
    }
    fn sim(&self) -> &phalanx_dcap_sim::SimTee {
        &self.sim
    }
    /// The registry's id (contract ids carry it; the contract reads no evidence).
    fn chain_id(&self) -> [u8; 32] {
        self.registry_id
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn solidity_registry_on_anvil() {
    let (_anvil, url) = anvil().await;
    let governance = funded(&url).await;
    let deployer = funded(&url).await;
    let registry = EvmRegistry::deploy(&url, &deployer, governance.address())
        .await
        .unwrap();
    let registry_id = chain::registry::Registry::chain_id(&registry)
        .await
        .unwrap();
    let mut f = Evm {
        url: url.clone(),
        registry,
        governance: EvmAccount::plain(governance),
        sim: suite::sim(),
        registry_id,
    };
    let (worker, stranger) = suite::suite(&mut f).await;
    suite::contracts(&mut f, worker, stranger).await;
}
