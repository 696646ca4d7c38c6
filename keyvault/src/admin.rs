//! The administrator's and the worker's view of a cluster (feature `node`): node
//! status, the public key set the nodes agree on, and starting and following rounds.
//! `phalanx keyvault status | refresh | reshare | rotate | retire-epoch` are thin
//! wrappers over this module.

use crate::round::{Participant, RoundId, RoundKind, RoundSpec};
use crate::share::{NodeIndex, PublicKeySet};
use p256::ProjectivePoint;
use p256::ecdsa::VerifyingKey;
use phalanx_proto::keyvault::v1 as pb;
use phalanx_types::Epoch;
use std::collections::BTreeMap;
use std::time::Duration;

/// What went wrong talking to the cluster.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// The node at `url` could not be reached.
    #[error("{url}: {source}")]
    Unreachable {
        /// The node.
        url: String,
        /// tonic's reason.
        #[source]
        source: tonic::transport::Error,
    },
    /// The node at `url` answered with an error status.
    #[error("{url}: {code:?}: {message}")]
    Refused {
        /// The node.
        url: String,
        /// The gRPC status code.
        code: tonic::Code,
        /// The node's message.
        message: String,
    },
    /// The node at `url` answered with a field that does not decode.
    #[error("{url}: malformed {field}")]
    Malformed {
        /// The node.
        url: String,
        /// The field.
        field: &'static str,
    },
    /// No public key set of the epoch is reported by a majority.
    #[error("no public key set of epoch {0} has a majority")]
    NoMajority(Epoch),
    /// The admin secret cannot be sent as a header.
    #[error("admin secret is not header-safe")]
    SecretNotHeaderSafe,
    /// A round did not settle in time.
    #[error(
        "round not settled in {timeout:?}: committed {committed}, aborted {aborted:?}, others {unsettled:?}"
    )]
    NotSettled {
        /// How long was waited.
        timeout: Duration,
        /// Nodes that committed.
        committed: usize,
        /// Nodes that aborted, and why.
        aborted: Vec<(NodeIndex, String)>,
        /// The rest, as they described themselves.
        unsettled: Vec<String>,
    },
    /// No randomness for a round nonce.
    #[error("no randomness")]
    NoRandomness,
    /// The round spec is invalid.
    #[error(transparent)]
    Spec(#[from] phalanx_threshold::Error),
}

fn refused(url: &str) -> impl FnOnce(tonic::Status) -> AdminError + '_ {
    move |s| AdminError::Refused {
        url: url.to_owned(),
        code: s.code(),
        message: s.message().to_owned(),
    }
}

/// One node's status.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    /// The client URL asked.
    pub url: String,
    /// Its index.
    pub index: NodeIndex,
    /// Its identity key.
    pub identity: VerifyingKey,
    /// Its peer URL.
    pub peer_url: String,
    /// The public key set of each epoch it holds.
    pub epochs: BTreeMap<Epoch, PublicKeySet>,
    /// Entries in its log.
    pub log_size: u64,
    /// Its round, as it describes it (`idle`, `refresh committed`, ...).
    pub round: String,
    /// That round's id (empty when idle).
    pub round_id: Vec<u8>,
}

impl NodeInfo {
    /// This node as a worker's [`crate::grpc::fetch_key`] endpoint.
    pub fn endpoint(&self) -> crate::grpc::Endpoint {
        crate::grpc::Endpoint {
            index: self.index,
            url: self.url.clone(),
            identity: self.identity,
        }
    }

    /// This node as a round participant.
    pub fn participant(&self) -> Participant {
        Participant {
            index: self.index,
            identity: self.identity,
            url: self.peer_url.clone(),
        }
    }
}

async fn channel(url: &str) -> Result<tonic::transport::Channel, AdminError> {
    let unreachable = |source| AdminError::Unreachable {
        url: url.to_owned(),
        source,
    };
    tonic::transport::Endpoint::from_shared(url.to_owned())
        .map_err(unreachable)?
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(10))
        .connect()
        .await
        .map_err(unreachable)
}

/// Asks the node at `url` (its client listener) for its status.
pub async fn node_status(url: &str) -> Result<NodeInfo, AdminError> {
    let mut c = pb::gatekeeper_client::GatekeeperClient::new(channel(url).await?);
    let s = c
        .status(pb::StatusRequest {})
        .await
        .map_err(refused(url))?
        .into_inner();
    let bad = |field| AdminError::Malformed {
        url: url.to_owned(),
        field,
    };
    let mut epochs = BTreeMap::new();
    for e in &s.epoch_info {
        let p = crate::wire::public_set_from_bytes(&e.public_key_set)
            .map_err(|_| bad("public key set"))?;
        epochs.insert(Epoch(e.epoch), p);
    }
    Ok(NodeInfo {
        url: url.to_owned(),
        index: u16::try_from(s.node)
            .ok()
            .and_then(|i| NodeIndex::new(i).ok())
            .ok_or_else(|| bad("index"))?,
        identity: VerifyingKey::from_sec1_bytes(&s.identity_key).map_err(|_| bad("identity"))?,
        peer_url: s.peer_url,
        epochs,
        log_size: s.log_size,
        round: s.round,
        round_id: s.round_id,
    })
}

/// Every node's status (or why it could not be had), in the order of `urls`.
pub async fn cluster_status(urls: &[String]) -> Vec<Result<NodeInfo, AdminError>> {
    let mut out = Vec::new();
    for u in urls {
        out.push(node_status(u).await);
    }
    out
}

/// The public key set of `epoch` that a majority of `infos` report — one vote per
/// distinct identity key, never fewer than the set's own threshold — and whose master
/// public key is `expected` when given. For administrators' tools. A worker takes its
/// public key set from the registry instead (`chain`), where only the whole
/// committee's certificate puts it: the statuses here are self-reported, so a set
/// that only a minority of nodes report (a lone member's threshold-1 set, say) never
/// wins.
pub fn agreed_public_key_set(
    infos: &[NodeInfo],
    epoch: Epoch,
    expected: Option<&ProjectivePoint>,
) -> Result<PublicKeySet, AdminError> {
    let mut voters: Vec<(PublicKeySet, Vec<VerifyingKey>)> = Vec::new();
    for i in infos {
        let Some(p) = i.epochs.get(&epoch) else {
            continue;
        };
        let entry = match voters.iter().position(|(q, _)| q == p) {
            Some(at) => voters.get_mut(at),
            None => {
                voters.push((p.clone(), Vec::new()));
                voters.last_mut()
            }
        };
        if let Some((_, keys)) = entry
            && !keys.contains(&i.identity)
        {
            keys.push(i.identity);
        }
    }
    let majority = infos.len() / 2 + 1;
    voters
        .into_iter()
        .filter(|(p, keys)| {
            keys.len() >= majority.max(p.threshold())
                && expected.is_none_or(|m| &p.master_public_key() == m)
        })
        .max_by_key(|(_, keys)| keys.len())
        .map(|(p, _)| p)
        .ok_or(AdminError::NoMajority(epoch))
}

/// An admin request carrying `authorization: Bearer <secret>`.
fn authorized<T>(message: T, secret: &str) -> Result<tonic::Request<T>, AdminError> {
    let mut req = tonic::Request::new(message);
    req.metadata_mut().insert(
        "authorization",
        format!("Bearer {secret}")
            .parse()
            .map_err(|_| AdminError::SecretNotHeaderSafe)?,
    );
    Ok(req)
}

/// Sends `spec` to the admin service at each of `urls` (every participant).
pub async fn start_round(
    urls: &[String],
    secret: &str,
    spec: &RoundSpec,
) -> Result<RoundId, AdminError> {
    let bytes = spec.encode();
    for url in urls {
        let mut c = pb::admin_client::AdminClient::new(channel(url).await?);
        let req = authorized(
            pb::StartRoundRequest {
                spec: bytes.clone(),
            },
            secret,
        )?;
        c.start_round(req).await.map_err(refused(url))?;
    }
    Ok(spec.id())
}

/// Retires `epoch` on the node at `url`.
pub async fn retire_epoch(url: &str, secret: &str, epoch: Epoch) -> Result<(), AdminError> {
    let mut c = pb::admin_client::AdminClient::new(channel(url).await?);
    c.retire_epoch(authorized(
        pb::RetireEpochRequest {
            epoch: epoch.into(),
        },
        secret,
    )?)
    .await
    .map_err(refused(url))?;
    Ok(())
}

/// How a round ended on each node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every participant committed.
    Committed,
    /// At least one aborted: `(node, reason)`.
    Aborted(Vec<(NodeIndex, String)>),
}

/// Polls the nodes at `urls` until every one reports round `id` committed or any
/// reports it aborted (then waits for the rest to settle too), or `timeout` passes.
pub async fn wait_round(
    urls: &[String],
    id: &RoundId,
    timeout: Duration,
) -> Result<Outcome, AdminError> {
    let until = tokio::time::Instant::now() + timeout;
    loop {
        let mut committed = 0;
        let mut aborted = Vec::new();
        let mut unsettled = Vec::new();
        for s in cluster_status(urls).await {
            match s {
                Ok(i) if i.round_id == id => {
                    if i.round.ends_with("committed") {
                        committed += 1;
                    } else if let Some((_, reason)) = i.round.split_once("aborted: ") {
                        aborted.push((i.index, reason.to_owned()));
                    } else {
                        unsettled.push(format!("{}: {}", i.index, i.round));
                    }
                }
                Ok(i) => unsettled.push(format!("{}: {}", i.index, i.round)),
                Err(e) => unsettled.push(e.to_string()),
            }
        }
        if committed == urls.len() {
            return Ok(Outcome::Committed);
        }
        if !aborted.is_empty() && unsettled.is_empty() {
            return Ok(Outcome::Aborted(aborted));
        }
        if tokio::time::Instant::now() >= until {
            return Err(AdminError::NotSettled {
                timeout,
                committed,
                aborted,
                unsettled,
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A spec for `kind` among `participants`, with a fresh nonce.
pub fn spec(kind: RoundKind, participants: &[NodeInfo]) -> Result<RoundSpec, AdminError> {
    let mut nonce = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut nonce)
        .map_err(|_| AdminError::NoRandomness)?;
    RoundSpec::new(
        nonce,
        kind,
        participants.iter().map(NodeInfo::participant).collect(),
    )
    .map_err(AdminError::Spec)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::share::{SecretScalar, dealer_split};

    fn info(i: u16, epoch_set: Option<&PublicKeySet>) -> NodeInfo {
        NodeInfo {
            url: format!("http://n{i}"),
            index: NodeIndex::new(i).unwrap(),
            identity: crate::identity::IdentityKey::generate(&mut rand::rng()).verifying_key(),
            peer_url: format!("https://n{i}"),
            epochs: epoch_set
                .map(|p| (Epoch(0), p.clone()))
                .into_iter()
                .collect(),
            log_size: 0,
            round: "idle".into(),
            round_id: Vec::new(),
        }
    }

    /// C1: one member reporting a threshold-1 set of a key it knows does not outvote
    /// the committee; nor does a minority, whatever threshold its set claims.
    #[test]
    fn attack_c1_a_lone_members_set_never_wins() {
        let mut rng = rand::rng();
        let secret = SecretScalar::new(p256::Scalar::from(3u64));
        let (_, honest) = dealer_split(&secret, 3, 5, &mut rng).unwrap();
        let evil = SecretScalar::new(p256::Scalar::from(666u64));
        let (_, lone) = dealer_split(&evil, 1, 1, &mut rng).unwrap();
        // Node 5 lies; three honest nodes answer.
        let infos = vec![
            info(1, Some(&honest)),
            info(2, Some(&honest)),
            info(3, Some(&honest)),
            info(5, Some(&lone)),
        ];
        assert_eq!(
            agreed_public_key_set(&infos, Epoch(0), None).unwrap(),
            honest
        );
        assert!(
            agreed_public_key_set(&infos, Epoch(0), Some(&lone.master_public_key())).is_err(),
            "the lone set has one vote of four"
        );
        // The same identity answering twice counts once.
        let liar = info(5, Some(&lone));
        let mut twice = liar.clone();
        twice.url = "http://n5-again".into();
        assert!(agreed_public_key_set(&[liar, twice, info(1, None)], Epoch(0), None).is_err());
    }
}
