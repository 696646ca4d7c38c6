//! `phalanx chain …`: a ledger node, key files, signed changes, and the registry as a
//! light client sees it.

use anyhow::Context;
use chain::grpc::LightClient;
use chain::registry::{ContractRegistry, Registry};
use chain::registry_url::RegistryUrl;
use chain::types::public_key;
use keyvault::registry::key_file;
use p256::ecdsa::SigningKey;
use std::path::Path;

/// Creates the directory a new key file goes into (`~/.phalanx/me.key` on a machine
/// that has none yet).
fn parent_dir(out: &Path) -> anyhow::Result<()> {
    match out.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))
        }
        None => Ok(()),
    }
}

/// `phalanx chain keygen`: a key file and its public key.
pub fn keygen(out: &Path) -> anyhow::Result<()> {
    if out.exists() {
        anyhow::bail!("{} exists; not overwriting a key", out.display());
    }
    parent_dir(out)?;
    let key = key_file(out)?;
    println!(
        "{}",
        serde_json::json!({"public_key": hex::encode(public_key(key.verifying_key()))})
    );
    Ok(())
}

/// `phalanx chain evm-keygen`: an Ethereum account's key file and its address.
pub fn evm_keygen(out: &Path) -> anyhow::Result<()> {
    if out.exists() {
        anyhow::bail!("{} exists; not overwriting a key", out.display());
    }
    parent_dir(out)?;
    let signer = chain::evm::signer_file(out, true)?;
    println!(
        "{}",
        serde_json::json!({"address": signer.address().to_string()})
    );
    Ok(())
}

/// `phalanx chain evm-fund`: `milli` thousandths of an ether from `key`'s account to
/// `to`; prints the block.
pub async fn evm_fund(rpc: &str, key: &Path, to: &str, milli: u64) -> anyhow::Result<()> {
    let to = chain::evm_proof::parse_address(to)
        .ok_or_else(|| anyhow::anyhow!("--to is an address: 0x and 40 hex digits"))?;
    let from = chain::evm::signer_file(key, false)?;
    let wei = wei_of_milli_ether(milli);
    let block = chain::evm::transfer(rpc, &from, to.into(), wei)
        .await
        .map_err(|e| anyhow::anyhow!(chain::registry_url::scrub(&e.to_string(), rpc)))?;
    println!("{}", serde_json::json!({"block": block}));
    Ok(())
}

/// `milli` thousandths of an ether, in wei.
fn wei_of_milli_ether(milli: u64) -> chain::evm::U256 {
    chain::evm::U256::from(milli) * chain::evm::U256::from(10u64.pow(15))
}

/// `phalanx chain evm-deploy`: the Solidity registry on the chain at `rpc`.
pub async fn evm_deploy(rpc: &str, key: &Path, governance: &str) -> anyhow::Result<()> {
    let governance = chain::evm_proof::parse_address(governance)
        .ok_or_else(|| anyhow::anyhow!("--governance is an address: 0x and 40 hex digits"))?;
    let payer = chain::evm::signer_file(key, false)?;
    let registry = chain::evm::EvmRegistry::deploy(rpc, &payer, governance.into()).await?;
    let url = chain::registry_url::RegistryUrl::Evm {
        rpc: rpc.to_owned(),
        address: registry.address().0.0,
    };
    let chain_id = registry.evm_chain_id().await?;
    println!(
        "{}",
        serde_json::json!({
            "registry": url.to_string(),
            "address": registry.address().to_string(),
            "chain_id": chain_id,
            "pin": format!("{chain_id}:{}", registry.address()),
        })
    );
    Ok(())
}

/// `phalanx chain serve`: the ledger in `dir` (authority key `dir/authority.key`,
/// created on first run), governed by `governance` (public key, hex), on `listen`.
pub async fn serve(
    dir: &Path,
    listen: &str,
    governance: &str,
    trust_root: Option<&Path>,
) -> anyhow::Result<()> {
    keyvault::run::init_tracing();
    std::fs::create_dir_all(dir)?;
    let authority = key_file(&dir.join("authority.key"))?;
    let governance = hex::decode(governance).context("--governance is not hex")?;
    let evidence = match trust_root {
        None => chain::types::EvidenceRule::intel(),
        Some(path) => {
            let pem =
                std::fs::read(path).with_context(|| format!("--trust-root {}", path.display()))?;
            chain::types::EvidenceRule::from_pem(&pem)
                .map_err(|e| anyhow::anyhow!("--trust-root {}: {e}", path.display()))?
        }
    };
    let ledger = std::sync::Arc::new(chain::ledger::Ledger::open(
        &dir.join("ledger"),
        authority,
        governance,
        evidence,
        attestation_service::rest::system_now,
    )?);
    if !ledger.state()?.genesis().evidence.is_intel() {
        tracing::warn!(
            "DEVELOPMENT REGISTRY: this chain's genesis trusts a DCAP root other than Intel's; its registrations prove nothing about real hardware"
        );
    }
    let genesis = ledger
        .blocks(0, 1)?
        .first()
        .map(|b| hex::encode(b.hash()))
        .unwrap_or_default();
    let listener = tokio::net::TcpListener::bind(listen).await?;
    tracing::info!(addr = %listener.local_addr()?, %genesis, height = ledger.state()?.height(), "ledger serving");
    println!(
        "{}",
        serde_json::json!({"url": format!("http://{}", listener.local_addr()?), "genesis": genesis})
    );
    chain::grpc::serve(listener, ledger, phalanx_types::shutdown::signal()).await?;
    Ok(())
}

/// `phalanx chain tx`: one signed change to the registry `url` names — on the ledger
/// submitted after the light client checked it against the rules, on EVM sent as the
/// contract call from the key file's account; prints the block height.
pub async fn tx(
    url: &str,
    genesis: Option<&str>,
    key: &Path,
    change: crate::ChainChange,
) -> anyhow::Result<()> {
    shown_as(url, tx_on(url, genesis, key, change).await)
}

/// A command's error with `url` shown only as far as its host (a node's path or query
/// often carries an API key, and clients quote the URL they were given).
fn shown_as<T>(url: &str, r: anyhow::Result<T>) -> anyhow::Result<T> {
    r.map_err(|e| anyhow::anyhow!(chain::registry_url::scrub(&format!("{e:#}"), url)))
}

/// `genesis` must not be given for the EVM registry `url`.
fn no_genesis(url: &str, genesis: Option<&str>) -> anyhow::Result<()> {
    if genesis.is_some() {
        anyhow::bail!(
            "--genesis names a ledger; {} is a registry on an EVM chain",
            chain::registry_url::redacted(url)
        );
    }
    Ok(())
}

async fn tx_on(
    url: &str,
    genesis: Option<&str>,
    key: &Path,
    change: crate::ChainChange,
) -> anyhow::Result<()> {
    match url.parse::<RegistryUrl>()? {
        RegistryUrl::Ledger { .. }
            if matches!(change, crate::ChainChange::ApproveRegistration { .. }) =>
        {
            anyhow::bail!(
                "the ledger checks every registration's evidence itself: there is nothing to approve"
            )
        }
        RegistryUrl::Ledger { url } => {
            let genesis = genesis.context("--genesis names the ledger's chain (hex)")?;
            let genesis: [u8; 32] = hex::decode(genesis)?
                .try_into()
                .map_err(|_| anyhow::anyhow!("--genesis is 32 bytes of hex"))?;
            let client = LightClient::pinned(&url, genesis);
            apply(&client, &key_file_existing(key)?, change).await
        }
        RegistryUrl::Evm { rpc, address } => {
            no_genesis(url, genesis)?;
            let registry = chain::evm::EvmRegistry::at(&rpc, address.into())?;
            let account = chain::evm::EvmAccount::plain(chain::evm::signer_file(key, false)?);
            if let crate::ChainChange::ApproveRegistration {
                file,
                trust_root,
                dry_run,
            } = change
            {
                let governance = (!dry_run).then_some(&account);
                return approve(&registry, governance, &file, trust_root.as_deref()).await;
            }
            apply(&registry, &account, change).await
        }
    }
}

/// `chain tx approve-registration`: governance checks the pending registration in
/// `file` to `trust_root` (Intel's by default) and approves it (`governance` none: a dry
/// run, which only prints what it proves).
async fn approve(
    registry: &chain::evm::EvmRegistry,
    governance: Option<&chain::evm::EvmAccount>,
    file: &Path,
    trust_root: Option<&Path>,
) -> anyhow::Result<()> {
    use phalanx_types::codec::Codec as _;
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let pending = chain::endorse::Pending::from_bytes(&bytes)
        .with_context(|| format!("{} is not a pending registration", file.display()))?;
    let roots = match trust_root {
        None => chain::evidence::Roots::new(chain::types::EvidenceRule::intel())?,
        Some(path) => {
            let pem =
                std::fs::read(path).with_context(|| format!("--trust-root {}", path.display()))?;
            chain::evidence::Roots::from_pems(&[pem])
                .map_err(|e| anyhow::anyhow!("--trust-root {}: {e}", path.display()))?
        }
    };
    let (record, height) = match governance {
        Some(g) => {
            let (record, height) = registry.approve_pending(g, &roots, &pending).await?;
            (record, Some(height))
        }
        None => (registry.pending_record(&roots, &pending).await?, None),
    };
    println!(
        "{}",
        serde_json::json!({
            "approved": height.is_some(),
            "height": height,
            "identity_key": hex::encode(&record.identity_key),
            "tenant": hex::encode(&record.measurement),
            "tcb_status": record.tcb_status,
            "evidence_time": record.evidence_time,
        })
    );
    Ok(())
}

/// One change to `r`, signed by `by`.
async fn apply<R>(r: &R, by: &R::Account, change: crate::ChainChange) -> anyhow::Result<()>
where
    R: ContractRegistry,
{
    use crate::ChainChange as C;
    let height = match change {
        C::AddMeasurement { measurement, role } => {
            let mut tenant = [0u8; 32];
            hex::decode_to_slice(measurement.trim_start_matches("0x"), &mut tenant).context(
                "the measurement is a tenant id: 64 hex characters (`phalanx quote verify` prints it)",
            )?;
            r.add_measurement(by, &tenant, role).await?
        }
        C::RemoveMeasurement { measurement } => {
            r.remove_measurement(by, &hex::decode(measurement)?).await?
        }
        C::LockRotation { epoch } => r.lock_rotation(by, epoch).await?,
        C::AbortRotation { epoch } => r.abort_rotation(by, epoch).await?,
        C::RetireEpoch { epoch } => r.retire_epoch(by, epoch).await?,
        C::SetTcbRule {
            tcb_statuses,
            max_evidence_age,
            min_tcb_evaluation_data_number,
        } => {
            let tcb_statuses = tcb_statuses
                .iter()
                .map(|s| {
                    serde_json::from_value(serde_json::Value::from(s.as_str()))
                        .with_context(|| format!("unknown TCB status {s:?}"))
                })
                .collect::<anyhow::Result<_>>()?;
            let rule = chain::types::TcbRule {
                tcb_statuses,
                max_evidence_age,
                min_tcb_evaluation_data_number,
            };
            r.set_tcb_rule(by, &rule).await?
        }
        C::SetGatekeepers { nodes, threshold } => {
            let mut set = Vec::new();
            for n in keyvault::admin::cluster_status(&nodes).await {
                let n = n?;
                set.push(chain::types::Gatekeeper {
                    index: n.index.get(),
                    identity_key: public_key(&n.identity),
                    url: n.url,
                    peer_url: n.peer_url,
                });
            }
            r.set_gatekeepers(by, &set, threshold).await?
        }
        C::ReportMisbehaviour { file } => {
            let evidence = chain::types::Misbehaviour::read_file(&file)?;
            r.report_misbehaviour(by, &evidence).await?
        }
        C::Deploy { module, salt } => return deploy(r, by, &module, &salt).await,
        C::ApproveRegistration { .. } => {
            anyhow::bail!("approve-registration is for an EVM registry")
        }
    };
    println!("{}", serde_json::json!({"height": height}));
    Ok(())
}

/// `chain tx deploy`: the module checked as pRuntime would load it, then deployed; prints
/// the height and the contract id.
async fn deploy<R: ContractRegistry>(
    client: &R,
    key: &R::Account,
    module: &Path,
    salt: &str,
) -> anyhow::Result<()> {
    let (code, salt) = crate::contract::module_and_salt(module, salt)?;
    let (height, id) = client.deploy_contract(key, &code, salt).await?;
    println!(
        "{}",
        serde_json::json!({"height": height, "contract": hex::encode(id)})
    );
    Ok(())
}

fn key_file_existing(path: &Path) -> anyhow::Result<SigningKey> {
    if !path.exists() {
        anyhow::bail!(
            "{} does not exist (create keys with `phalanx chain keygen`)",
            path.display()
        );
    }
    key_file(path)
}

/// `phalanx chain status` of a Solidity registry: every fact its events name (and the
/// set, the rotation lock, the TCB rule), each value proven against the header of the
/// node's newest block. The node names that block and lists the events: the output is
/// as true as the node's chain (use your own node), and as complete as its logs.
async fn evm_status(rpc: &str, address: [u8; 20]) -> anyhow::Result<()> {
    use chain::facts::Fact;
    let r = chain::evm::EvmRegistry::at(rpc, address.into())?;
    let mut facts: std::collections::BTreeSet<Fact> = r
        .events(0)
        .await?
        .iter()
        .flat_map(|(_, e)| Fact::of_event(e))
        .filter(|f| !matches!(f, Fact::Rule))
        .collect();
    facts.extend([Fact::Gatekeepers, Fact::Rotation, Fact::TcbRule]);
    let commands: Vec<Fact> = facts
        .iter()
        .filter_map(|f| match f {
            Fact::Contract(id) => Some(Fact::Commands(*id)),
            _ => None,
        })
        .collect();
    facts.extend(commands);
    let facts: Vec<Fact> = facts.into_iter().collect();
    let v = r.proven(&facts, None).await?;
    let (threshold, gatekeepers) = v
        .read(&Fact::Gatekeepers, chain::facts::read_gatekeepers)?
        .unwrap_or_default();
    let tcb = v.read(&Fact::TcbRule, chain::facts::read_tcb_rule)?;
    let (mut allowed, mut workers, mut epochs, mut contracts) = (vec![], vec![], vec![], vec![]);
    for f in &facts {
        match f {
            Fact::Allowed(m) => allowed.extend(v.allowed(m)?.map(|a| serde_json::json!({
                "measurement": hex::encode(&a.measurement), "role": a.role.name(),
            }))),
            Fact::Worker(k) => workers.extend(v.worker(k)?.map(|w| serde_json::json!({
                "identity_key": hex::encode(&w.identity_key),
                "measurement": hex::encode(&w.measurement),
                "tcb_status": w.tcb_status,
                "registered_at": w.registered_at,
            }))),
            Fact::Epoch(e) => epochs.extend(v.epoch(*e)?.map(|k| serde_json::json!({
                "epoch": e, "master_public_key": hex::encode(&k.master_public_key), "published_at": k.published_at,
            }))),
            Fact::Contract(id) => contracts.extend(contract_json(&v, &facts, id)?),
            _ => {}
        }
    }
    with_served_by(&r, &mut contracts).await?;
    let out = serde_json::json!({
        "height": v.block.number,
        "block_hash": hex::encode(v.block.hash),
        "registry_id": hex::encode(v.registry_id),
        "evm_chain_id": r.evm_chain_id().await?,
        "trust": format!(
            "every value is proven at block {} of {}'s chain (use your own node); the lists are as complete as its logs",
            v.block.number,
            chain::registry_url::redacted(rpc)
        ),
        "governance": format!("0x{}", hex::encode(v.governance)),
        "rotation": v.read(&Fact::Rotation, chain::facts::read_rotation)?.map(|r| format!("{r:?}")),
        "committee_threshold": threshold,
        "gatekeepers": gatekeepers.iter().map(|g| serde_json::json!({
            "index": g.index, "identity_key": hex::encode(&g.identity_key), "url": g.url, "peer_url": g.peer_url,
        })).collect::<Vec<_>>(),
        "tcb_rule": tcb.map(|t| serde_json::json!({
            "tcb_statuses": t.tcb_statuses,
            "max_evidence_age": t.max_evidence_age,
            "min_tcb_evaluation_data_number": t.min_tcb_evaluation_data_number,
        })),
        "allowed_measurements": allowed,
        "workers": workers,
        "epochs": epochs,
        "contracts": contracts,
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

/// Adds to each contract of an EVM status where workers serve it (in the registry's
/// log, not its facts).
async fn with_served_by(
    r: &chain::evm::EvmRegistry,
    contracts: &mut [serde_json::Value],
) -> anyhow::Result<()> {
    use chain::registry::ContractRegistry as _;
    for c in contracts {
        let id = c["id"].as_str().and_then(|h| hex::decode(h).ok());
        if let Some(id) = id.and_then(|b| <[u8; 32]>::try_from(b).ok()) {
            c["served_by"] = served_json(r.serving(id).await?).into();
        }
    }
    Ok(())
}

/// The workers that announced serving a contract, and where (only where to knock).
fn served_json(served: Vec<(Vec<u8>, String)>) -> Vec<serde_json::Value> {
    served
        .into_iter()
        .map(|(w, url)| serde_json::json!({"worker": hex::encode(w), "url": url}))
        .collect()
}

/// A contract's published keys: commands are sealed to the encryption key; the
/// contract signs with the signing key (what another chain checks its outputs against).
fn key_json(k: &chain::types::ContractKey) -> serde_json::Value {
    serde_json::json!({
        "epoch": k.epoch,
        "encryption_key": hex::encode(&k.encryption_key),
        "signing_key": hex::encode(&k.signing_key),
        "published_by": hex::encode(&k.published_by),
        "published_at": k.published_at,
    })
}

/// A contract as `v` proves it (`None`: not deployed), with its command count and the
/// keys among `facts`.
fn contract_json(
    v: &chain::evm_proof::EvmVerified,
    facts: &[chain::facts::Fact],
    id: &[u8; 32],
) -> anyhow::Result<Option<serde_json::Value>> {
    use chain::facts::Fact;
    let Some(c) = v.contract(id)? else {
        return Ok(None);
    };
    let commands = v.read(&Fact::Commands(*id), chain::facts::read_commands)?;
    let keys: Vec<_> = facts
        .iter()
        .filter_map(|f| match f {
            Fact::ContractKey(cid, e) if cid == id => v.contract_key(id, *e).ok().flatten(),
            _ => None,
        })
        .map(|k| key_json(&k))
        .collect();
    Ok(Some(serde_json::json!({
        "id": hex::encode(id),
        "code_hash": hex::encode(c.code_hash),
        "deployer": hex::encode(&c.deployer),
        "deployed_at": c.deployed_at,
        "commands": commands.map(|(n, _)| n),
        "keys": keys,
    })))
}

/// `phalanx chain status`: the registry as a light client rebuilds it.
pub async fn status(url: &str, genesis: Option<&str>) -> anyhow::Result<()> {
    let ledger = match url.parse::<RegistryUrl>()? {
        RegistryUrl::Ledger { url } => url,
        RegistryUrl::Evm { rpc, address } => {
            no_genesis(url, genesis)?;
            return shown_as(url, evm_status(&rpc, address).await);
        }
    };
    let url = ledger.as_str();
    let client = match genesis {
        Some(g) => LightClient::pinned(
            url,
            hex::decode(g)?
                .try_into()
                .map_err(|_| anyhow::anyhow!("--genesis is 32 bytes"))?,
        ),
        None => LightClient::new(url),
    };
    let s = client.sync().await?;
    let out = serde_json::json!({
        "height": s.height(),
        "chain_id": hex::encode(s.chain_id()),
        // The last header's commitment to every fact below (`chain::facts`).
        "state_root": hex::encode(s.state_root()),
        "governance": hex::encode(&s.genesis().governance),
        "allowed_measurements": s.allowed().iter().map(|a| serde_json::json!({
            "measurement": hex::encode(&a.measurement),
            "role": a.role.name(),
        })).collect::<Vec<_>>(),
        "gatekeepers": s.gatekeepers().iter().map(|g| serde_json::json!({
            "index": g.index, "identity_key": hex::encode(&g.identity_key), "url": g.url, "peer_url": g.peer_url,
        })).collect::<Vec<_>>(),
        "epochs": s.epochs().iter().map(|e| serde_json::json!({
            "epoch": e.epoch, "master_public_key": hex::encode(&e.master_public_key), "published_at": e.published_at,
        })).collect::<Vec<_>>(),
        "rotation": format!("{:?}", s.rotation()),
        "committee_threshold": s.committee_threshold(),
        "evidence_rule": {
            "intel_root_only": s.evidence_rule().is_intel(),
            "trust_roots": s.evidence_rule().trust_roots.len(),
            "tcb_statuses": s.evidence_rule().tcb_statuses,
            "max_evidence_age": s.evidence_rule().max_evidence_age,
            "min_tcb_evaluation_data_number": s.evidence_rule().min_tcb_evaluation_data_number,
        },
        "workers": s.workers().map(|w| serde_json::json!({
            "identity_key": hex::encode(&w.identity_key),
            "measurement": hex::encode(&w.measurement),
            "role": s.role_of(&w.identity_key).map(chain::types::Role::name),
            "tcb_status": w.tcb_status,
            "registered_at": w.registered_at,
        })).collect::<Vec<_>>(),
        "contracts": s.contracts().map(|c| serde_json::json!({
            "id": hex::encode(c.id),
            "code_hash": hex::encode(c.code_hash),
            "deployer": hex::encode(&c.deployer),
            "deployed_at": c.deployed_at,
            "commands": c.commands,
            "keys": c.keys.values().map(key_json).collect::<Vec<_>>(),
            "served_by": served_json(s.serving(&c.id)),
        })).collect::<Vec<_>>(),
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}
