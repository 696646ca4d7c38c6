//! `phalanx keyvault audit`: an auditor's check of one gatekeeper's transparency log
//! between visits. The gatekeeper's identity key is pinned in the state file on first
//! use; each run checks the signed tree head under it and, from the second run on, the
//! consistency proof from the head seen last time (then saves the new head). A log that
//! does not extend the head seen is asked for its head of that size: one with another
//! root is evidence that the gatekeeper showed two logs, written beside the state file
//! (`STATE.misbehaviour`) for `phalanx chain tx … report-misbehaviour`.

use anyhow::Context;
use std::path::Path;

/// What `phalanx keyvault audit` remembers between runs.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct AuditState {
    /// The gatekeeper's identity key (SEC1, hex), pinned on first use.
    identity_key: String,
    /// The last head seen: size, root (hex), timestamp, log id (hex), signature (hex).
    size: u64,
    root: String,
    timestamp: i64,
    log_id: String,
    signature: String,
}

/// `phalanx keyvault audit`: see the command's help.
pub async fn audit(url: &str, state_path: &Path) -> anyhow::Result<std::process::ExitCode> {
    use keyvault::translog::{SignedTreeHead, TreeHead};
    let previous: Option<AuditState> = match std::fs::read_to_string(state_path) {
        Ok(text) => Some(serde_json::from_str(&text).context("unreadable audit state")?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e.into()),
    };
    let identity = match &previous {
        Some(p) => p256::ecdsa::VerifyingKey::from_sec1_bytes(&hex::decode(&p.identity_key)?)?,
        None => {
            let status = keyvault::admin::node_status(url).await?;
            eprintln!("phalanx: pinning the gatekeeper's identity key on first use");
            status.identity
        }
    };
    let fixed = |h: &str| -> anyhow::Result<[u8; 32]> {
        hex::decode(h)?
            .try_into()
            .map_err(|_| anyhow::anyhow!("a 32-byte hash"))
    };
    let prev_head = previous
        .as_ref()
        .map(|p| -> anyhow::Result<SignedTreeHead> {
            Ok(SignedTreeHead {
                head: TreeHead {
                    log_id: fixed(&p.log_id)?,
                    size: p.size,
                    root: fixed(&p.root)?,
                    timestamp: p.timestamp,
                },
                signature: p256::ecdsa::Signature::from_slice(&hex::decode(&p.signature)?)?,
            })
        })
        .transpose()?;
    match keyvault::grpc::audit(url, &identity, prev_head.as_ref()).await {
        Ok(head) => {
            let state = AuditState {
                identity_key: hex::encode(identity.to_sec1_bytes()),
                size: head.head.size,
                root: hex::encode(head.head.root),
                timestamp: head.head.timestamp,
                log_id: hex::encode(head.head.log_id),
                signature: hex::encode(head.signature.to_bytes()),
            };
            std::fs::write(state_path, serde_json::to_string_pretty(&state)?)?;
            println!(
                "{}",
                serde_json::json!({ "ok": true, "size": state.size, "root": state.root,
                    "previous_size": previous.map(|p| p.size) })
            );
            Ok(std::process::ExitCode::SUCCESS)
        }
        Err(keyvault::grpc::AuditError::Forked { earlier, now }) => {
            let path = write_fork(state_path, &identity, &earlier, &now)?;
            println!(
                "{}",
                serde_json::json!({ "ok": false, "error": format!(
                    "the gatekeeper signed two different logs of {} entries", earlier.head.size),
                    "evidence": path.display().to_string(),
                    "report": format!("phalanx chain tx --url REGISTRY [--genesis GENESIS] --key KEY report-misbehaviour {}", path.display()) })
            );
            Ok(std::process::ExitCode::from(crate::EXIT_REJECTED))
        }
        Err(e) => {
            println!(
                "{}",
                serde_json::json!({ "ok": false, "error": e.to_string() })
            );
            Ok(std::process::ExitCode::from(crate::EXIT_REJECTED))
        }
    }
}

/// Writes the evidence of a fork (two heads of one size, `earlier` and `now`, under
/// `identity`) beside the state file, as `STATE.misbehaviour`; found again, the file
/// already holds it. Returns its path.
fn write_fork(
    state_path: &Path,
    identity: &p256::ecdsa::VerifyingKey,
    earlier: &keyvault::translog::SignedTreeHead,
    now: &keyvault::translog::SignedTreeHead,
) -> anyhow::Result<std::path::PathBuf> {
    let head = |h: &keyvault::translog::SignedTreeHead| chain::types::LogHead {
        root: h.head.root,
        timestamp: h.head.timestamp,
        signature: h.signature.to_bytes().into(),
    };
    let evidence = chain::types::Misbehaviour {
        accused: chain::types::public_key(identity),
        fault: chain::types::Fault::ForkedLog {
            size: earlier.head.size,
            first: head(earlier),
            second: head(now),
        },
    };
    let mut path = state_path.as_os_str().to_owned();
    path.push(".misbehaviour");
    let path = std::path::PathBuf::from(path);
    match evidence.write_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e).context("writing the evidence"),
    }
    Ok(path)
}
