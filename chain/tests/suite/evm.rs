//! The suite's fixture on the Solidity registry: anvil (skipped without one unless
//! `PHALANX_REQUIRE_ANVIL` is set), the registry deployed, and an endorser holding the
//! identity keys of the accounts to come. Shared by `tests/evm.rs` and
//! `benches/evm_feed.rs`.

use alloy::providers::{Provider, ProviderBuilder};
use chain::evm::{Anvil, EvmAccount, EvmRegistry, KeyEndorser, PrivateKeySigner};
use chain::evm_proof::{EvmCheckpoint, EvmCommand};
use p256::ecdsa::SigningKey;

/// The registry on anvil, with governance and the accounts to come.
pub struct Evm {
    /// anvil's RPC endpoint.
    pub url: String,
    /// The registry.
    pub registry: EvmRegistry,
    /// Its governance account.
    pub governance: EvmAccount,
    /// The simulated platform the quotes come from.
    pub sim: phalanx_dcap_sim::SimTee,
    /// The registry's id.
    pub registry_id: [u8; 32],
    /// Identity keys for the accounts to come (the endorser holds them all: whichever
    /// of them the suite makes gatekeepers endorse later registrations).
    pub keys: Vec<SigningKey>,
}

/// A fresh account with 10 ETH.
pub async fn funded(url: &str) -> PrivateKeySigner {
    chain::evm::funded(url).await.unwrap()
}

/// anvil, or `None` (the caller skips) when none is installed and
/// `PHALANX_REQUIRE_ANVIL` is unset (`.ci/run` sets it: there its absence fails).
pub async fn anvil() -> Option<(Anvil, String)> {
    // The chain's clock starts where the simulated collateral is valid.
    match Anvil::start(Some(1_759_000_100)).await.unwrap() {
        Some(a) => {
            let url = a.url().to_owned();
            Some((a, url))
        }
        None => {
            assert!(
                std::env::var_os("PHALANX_REQUIRE_ANVIL").is_none(),
                "PHALANX_REQUIRE_ANVIL is set but no anvil is installed (set ANVIL)"
            );
            eprintln!("skipping: no anvil (set ANVIL, or install @foundry-rs/anvil-linux-amd64)");
            None
        }
    }
}

/// anvil and the registry deployed on it (see the module doc).
pub async fn fixture() -> Option<(Anvil, Evm)> {
    let (anvil, url) = anvil().await?;
    let governance = EvmAccount::plain(funded(&url).await);
    let deployer = funded(&url).await;
    let sim = super::sim();
    let keys: Vec<SigningKey> = (0..8).map(|_| chain::random_key()).collect();
    let endorser = KeyEndorser::new(
        chain::sim::evidence_rule(&sim),
        keys.clone(),
        Some(governance.clone()),
    )
    .unwrap();
    let registry = EvmRegistry::deploy(&url, &deployer, governance.signer.address())
        .await
        .unwrap()
        .with_endorser(std::sync::Arc::new(endorser));
    let registry_id = chain::registry::Registry::chain_id(&registry)
        .await
        .unwrap();
    Some((
        anvil,
        Evm {
            url,
            registry,
            governance,
            sim,
            registry_id,
            keys,
        },
    ))
}

impl super::Fixture for Evm {
    type R = EvmRegistry;
    fn checks_partials(&self) -> bool {
        false
    }
    fn registry(&self) -> &EvmRegistry {
        &self.registry
    }
    fn governance(&self) -> &EvmAccount {
        &self.governance
    }
    async fn account(&mut self) -> (EvmAccount, SigningKey) {
        let identity = self.keys.pop().unwrap();
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
    /// The registry's id (contract ids and quotes carry it).
    fn chain_id(&self) -> [u8; 32] {
        self.registry_id
    }
}

/// The hash the node at `url` — the user's own — gives block `number`.
pub async fn node_hash(url: &str, number: u64) -> [u8; 32] {
    let provider = ProviderBuilder::new().connect_http(url.parse().unwrap());
    let block = provider
        .get_block_by_number(number.into())
        .await
        .unwrap()
        .unwrap();
    block.header.hash.0
}

/// A follower's position in one contract's feed.
#[derive(Debug, Clone, Copy)]
pub struct Follower {
    pub at: EvmCheckpoint,
    pub count: u64,
    pub head: [u8; 32],
}

impl Follower {
    /// Follows from just before the contract's deployment.
    pub async fn start(f: &Evm, contract: [u8; 32]) -> Self {
        use chain::registry::ContractRegistry;
        let deployed = f
            .registry
            .contract(contract)
            .await
            .unwrap()
            .unwrap()
            .deployed_at;
        let number = deployed - 1;
        Self {
            at: EvmCheckpoint {
                number,
                hash: node_hash(&f.url, number).await,
            },
            count: 0,
            head: [0; 32],
        }
    }

    /// Follows pages until none is confirmed; returns the commands applied.
    pub async fn follow(
        &mut self,
        f: &Evm,
        contract: [u8; 32],
        depth: u64,
    ) -> Result<Vec<EvmCommand>, chain::proof::ProofError> {
        let mut applied = Vec::new();
        while let Some(page) = f
            .registry
            .command_page(&contract, &self.at, depth)
            .await
            .unwrap()
        {
            let v = page.verify(&self.at, &f.registry_id, &contract, self.count, &self.head)?;
            (self.at, self.count, self.head) = (v.checkpoint, v.count, v.head);
            applied.extend(page.commands);
        }
        Ok(applied)
    }
}
