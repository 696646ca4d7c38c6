//! `phalanx keyvault status | genesis | rotate | refresh | reshare | retire-epoch`: the
//! administrator's commands over a gatekeeper cluster, thin over `keyvault::admin`.
//! Every round command builds one spec from the nodes' own status (index, identity
//! key, peer address), sends it to every participant with the admin secret, and follows
//! the round until every node committed or it aborted. Output is JSON.

use anyhow::{Context, bail};
use keyvault::admin::{self, NodeInfo, Outcome};
use keyvault::round::RoundKind;
use keyvault::share::NodeIndex;
use phalanx_types::Epoch;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

/// What a round command asks for.
#[derive(Debug, Clone)]
pub enum Action {
    /// A first DKG (epoch 0).
    Genesis {
        /// t.
        threshold: u16,
    },
    /// A new master secret at the next epoch.
    Rotate {
        /// t (default: the latest epoch's).
        threshold: Option<u16>,
    },
    /// New shares of `epoch`.
    Refresh {
        /// The epoch (default: the latest).
        epoch: Option<Epoch>,
    },
    /// `epoch` to a new committee: `add` client URLs join, `remove` indices leave.
    Reshare {
        /// The epoch (default: the latest).
        epoch: Option<Epoch>,
        /// Nodes joining (client URLs).
        add: Vec<String>,
        /// Members leaving.
        remove: Vec<u16>,
        /// t′.
        threshold: u16,
    },
}

fn secret(path: &Path) -> anyhow::Result<zeroize::Zeroizing<String>> {
    Ok(keyvault::app::read_admin_secret(path)?)
}

async fn all(urls: &[String]) -> anyhow::Result<Vec<NodeInfo>> {
    admin::cluster_status(urls)
        .await
        .into_iter()
        .collect::<Result<_, _>>()
        .map_err(Into::into)
}

fn latest(infos: &[NodeInfo]) -> anyhow::Result<Epoch> {
    infos
        .iter()
        .flat_map(|i| i.epochs.keys().copied())
        .max()
        .context("no node holds any epoch yet: run genesis first")
}

/// `phalanx keyvault status`: every node's view, and whether they agree.
pub async fn status(urls: &[String]) -> anyhow::Result<ExitCode> {
    let mut nodes = Vec::new();
    let mut infos = Vec::new();
    for (url, s) in urls.iter().zip(admin::cluster_status(urls).await) {
        match s {
            Ok(i) => {
                nodes.push(serde_json::json!({
                    "url": url, "index": i.index.get(), "peer_url": i.peer_url,
                    "identity_key": hex::encode(i.identity.to_sec1_bytes()),
                    "epochs": i.epochs.keys().collect::<Vec<_>>(), "log_size": i.log_size,
                    "round": i.round,
                }));
                infos.push(i);
            }
            // The whole cause ("…: transport error: tcp connect error: Connection
            // refused"), not tonic's bare "transport error".
            Err(e) => nodes.push(
                serde_json::json!({"url": url, "error": crate::causes(&anyhow::Error::from(e))}),
            ),
        }
    }
    let mut epochs = serde_json::Map::new();
    let all_epochs: std::collections::BTreeSet<Epoch> = infos
        .iter()
        .flat_map(|i| i.epochs.keys().copied())
        .collect();
    for e in all_epochs {
        let agreed = admin::agreed_public_key_set(&infos, e, None).ok();
        epochs.insert(
            e.to_string(),
            serde_json::json!({
                "master_public_key": agreed.as_ref().map(|p| hex::encode(keyvault::dleq::point_bytes(&p.master_public_key()))),
                "threshold": agreed.as_ref().map(|p| p.threshold()),
                "members_agreeing": infos.iter().filter(|i| agreed.as_ref().is_some_and(|p| i.epochs.get(&e) == Some(p))).map(|i| i.index.get()).collect::<Vec<_>>(),
            }),
        );
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::json!({"nodes": nodes, "epochs": epochs}))?
    );
    Ok(ExitCode::SUCCESS)
}

/// Runs one round; exit 0 when every node committed, 1 when it aborted.
///
/// Long on purpose: the administrator's whole round — spec from every node's status, start,
/// wait, report — reads top to bottom.
pub async fn round(
    urls: &[String],
    secret_file: &Path,
    action: Action,
    timeout: Duration,
) -> anyhow::Result<ExitCode> {
    let secret = secret(secret_file)?;
    let current = all(urls).await?;
    let (kind, participants) = match action {
        Action::Genesis { threshold } => (
            RoundKind::Dkg {
                epoch: Epoch(0),
                threshold,
            },
            current,
        ),
        Action::Rotate { threshold } => {
            let last = latest(&current)?;
            let t = match threshold {
                Some(t) => t,
                None => {
                    u16::try_from(admin::agreed_public_key_set(&current, last, None)?.threshold())?
                }
            };
            (
                RoundKind::Dkg {
                    epoch: last.next().context("no epoch after the last")?,
                    threshold: t,
                },
                current,
            )
        }
        Action::Refresh { epoch } => {
            let epoch = match epoch {
                Some(e) => e,
                None => latest(&current)?,
            };
            (RoundKind::Refresh { epoch }, current)
        }
        Action::Reshare {
            epoch,
            add,
            remove,
            threshold,
        } => {
            let epoch = match epoch {
                Some(e) => e,
                None => latest(&current)?,
            };
            let staying: Vec<NodeInfo> = current
                .into_iter()
                .filter(|i| !remove.contains(&i.index.get()))
                .collect();
            let dealers: Vec<NodeIndex> = staying
                .iter()
                .filter(|i| i.epochs.contains_key(&epoch))
                .map(|i| i.index)
                .collect();
            let mut participants = staying;
            participants.extend(all(&add).await?);
            (
                RoundKind::Reshare {
                    epoch,
                    dealers,
                    new_threshold: threshold,
                },
                participants,
            )
        }
    };
    let spec = admin::spec(kind.clone(), &participants)?;
    let targets: Vec<String> = participants.iter().map(|p| p.url.clone()).collect();
    eprintln!(
        "phalanx: starting {} of epoch {} among nodes {:?}",
        kind.name(),
        kind.epoch(),
        participants
            .iter()
            .map(|p| p.index.get())
            .collect::<Vec<_>>()
    );
    let id = admin::start_round(&targets, &secret, &spec).await?;
    let outcome = admin::wait_round(&targets, &id, timeout).await?;
    let (ok, detail) = match &outcome {
        Outcome::Committed => (true, serde_json::Value::Null),
        Outcome::Aborted(why) => (
            false,
            why.iter()
                .map(|(i, r)| serde_json::json!({"node": i.get(), "reason": r}))
                .collect(),
        ),
    };
    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::json!({
            "round": kind.name(), "epoch": kind.epoch(), "round_id": hex::encode(id),
            "committed": ok, "aborted": detail,
        }))?
    );
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `phalanx keyvault retire-epoch`: erases every node's share of `epoch`.
pub async fn retire(urls: &[String], secret_file: &Path, epoch: Epoch) -> anyhow::Result<ExitCode> {
    let secret = secret(secret_file)?;
    let mut failed = false;
    for url in urls {
        match admin::retire_epoch(url, &secret, epoch).await {
            Ok(()) => eprintln!("phalanx: {url}: epoch {epoch} retired"),
            Err(e) => {
                failed = true;
                eprintln!("phalanx: {}", e);
            }
        }
    }
    if failed {
        bail!("not every node retired epoch {epoch}");
    }
    Ok(ExitCode::SUCCESS)
}

/// `phalanx keyvault certify`: the cluster CA (created on first use) certifies a node's
/// identity key; the certificate's subject key *is* that key.
pub fn certify(
    ca_dir: &std::path::Path,
    index: u16,
    identity_key: &str,
    out: &std::path::Path,
) -> anyhow::Result<()> {
    use anyhow::Context as _;
    std::fs::create_dir_all(ca_dir).with_context(|| format!("creating {}", ca_dir.display()))?;
    let ca = keyvault::tls::ClusterCa::load_or_create(ca_dir)?;
    let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(
        &hex::decode(identity_key.trim()).context("--identity-key is hex")?,
    )
    .map_err(|_| anyhow::anyhow!("--identity-key is not a P-256 public key"))?;
    let index = keyvault::share::NodeIndex::new(index)?;
    let cert = ca.issue(index, &key)?;
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(out, cert).with_context(|| format!("writing {}", out.display()))?;
    println!(
        "{}",
        serde_json::json!({
            "ca_cert": ca_dir.join("ca.pem"),
            "cert": out,
            "index": index.get(),
        })
    );
    Ok(())
}
