//! A local anvil node (Foundry's EVM) on a free loopback port, stopped when dropped:
//! the chain of the devnet on EVM and of the tests. The binary is `$ANVIL`, else
//! `anvil` on the `PATH` (`.ci/run` installs the pinned npm package
//! `@foundry-rs/anvil-linux-amd64`).

use super::{PrivateKeySigner, backend};
use crate::registry::RegistryError;
use alloy::network::TransactionBuilder;
use alloy::primitives::U256;
use alloy::providers::{Provider, ProviderBuilder};
use alloy::rpc::types::TransactionRequest;
use std::process::{Child, Command, Stdio};

/// A running anvil (see the module doc).
#[derive(Debug)]
pub struct Anvil {
    child: Child,
    url: String,
    /// Its own home: anvil writes the states it evicts from memory under
    /// `$HOME/.foundry/anvil/tmp` and leaves them there when killed (gigabytes per test
    /// run), so each anvil gets a home that goes with it.
    home: std::path::PathBuf,
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

impl Anvil {
    /// Starts anvil with its clock at `timestamp` (Unix seconds; `None`: now) and waits
    /// until it answers. `Ok(None)`: no anvil is installed.
    pub async fn start(timestamp: Option<u64>) -> Result<Option<Self>, RegistryError> {
        let bin = std::env::var("ANVIL")
            .ok()
            .filter(|b| !b.trim().is_empty())
            .unwrap_or_else(|| "anvil".into());
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(backend)?
            .port();
        let mut args = vec![
            "--host".to_owned(),
            "127.0.0.1".to_owned(),
            "--port".to_owned(),
            port.to_string(),
            "--silent".to_owned(),
        ];
        if let Some(t) = timestamp {
            args.extend(["--timestamp".to_owned(), t.to_string()]);
        }
        let home =
            std::env::temp_dir().join(format!("phalanx-anvil-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&home).map_err(backend)?;
        let child = match Command::new(&bin)
            .args(&args)
            .env("HOME", &home)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(child) => child,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&home);
                if e.kind() == std::io::ErrorKind::NotFound {
                    return Ok(None);
                }
                return Err(RegistryError::Backend(format!("cannot start {bin}: {e}")));
            }
        };
        let anvil = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            home,
        };
        let provider = ProviderBuilder::new().connect_http(anvil.url.parse().map_err(backend)?);
        for _ in 0..100 {
            if provider.get_chain_id().await.is_ok() {
                return Ok(Some(anvil));
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        Err(RegistryError::Backend(format!(
            "anvil did not come up on {}",
            anvil.url
        )))
    }

    /// Its RPC endpoint.
    pub fn url(&self) -> &str {
        &self.url
    }
}

/// A fresh account holding 10 ETH from the first unlocked account of the node at `url`
/// (anvil unlocks ten).
pub async fn funded(url: &str) -> Result<PrivateKeySigner, RegistryError> {
    let signer = PrivateKeySigner::random();
    fund(url, signer.address()).await?;
    Ok(signer)
}

/// Sends `wei` to `to` from `from`'s account on the chain at `url` (an operator funding
/// a process's derived account); the block that included it.
pub async fn transfer(
    url: &str,
    from: &PrivateKeySigner,
    to: alloy::primitives::Address,
    wei: U256,
) -> Result<u64, RegistryError> {
    let provider = ProviderBuilder::new()
        .wallet(from.clone())
        .connect_http(url.parse().map_err(backend)?);
    let tx = TransactionRequest::default().with_to(to).with_value(wei);
    provider
        .send_transaction(tx)
        .await
        .map_err(backend)?
        .get_receipt()
        .await
        .map_err(backend)?
        .block_number
        .ok_or_else(|| RegistryError::Backend("a receipt without its block".into()))
}

/// Sends 10 ETH to `to` from the first unlocked account of the node at `url`.
pub async fn fund(url: &str, to: alloy::primitives::Address) -> Result<(), RegistryError> {
    let provider = ProviderBuilder::new().connect_http(url.parse().map_err(backend)?);
    let rich = *provider
        .get_accounts()
        .await
        .map_err(backend)?
        .first()
        .ok_or_else(|| RegistryError::Backend("the node has no unlocked account".into()))?;
    let tx = TransactionRequest::default()
        .with_from(rich)
        .with_to(to)
        .with_value(U256::from(10u128.pow(19)));
    provider
        .send_transaction(tx)
        .await
        .map_err(backend)?
        .get_receipt()
        .await
        .map_err(backend)?;
    Ok(())
}
