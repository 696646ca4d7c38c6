//! The ledger node's gRPC service (`phalanx.chain.v1.Chain`) and the [`LightClient`]
//! other processes use: it fetches blocks, verifies each one (hash link, authority
//! signature, every transaction and rule) and rebuilds the registry state itself; the
//! server cannot forge state, only withhold, reorder or fork it (see [`LightClient`]
//! for exactly what the ledger's authority can still do). Pin the chain by its genesis
//! hash ([`LightClient::pinned`]) so a server cannot swap in another chain, and give
//! long-lived clients a checkpoint ([`LightClient::with_checkpoint`]). A client that
//! needs a few facts rather than the whole state — a pRuntime worker — reads them as
//! proofs at a signed header instead ([`LightClient::facts`],
//! [`LightClient::gatekeeper_set`], [`LightClient::contract_code`], and one contract's
//! commands: [`LightClient::commands`]) and never downloads the chain.

use crate::facts::Fact;
use crate::proof::{Lean as _, Verified};
use crate::registry::{RegistryError, SignedLedger};
use crate::state::State;
use crate::types::{Block, EpochKey, SignedTx};
use crate::view::GatekeeperSet;
use phalanx_proto::chain::v1 as pb;
#[cfg(feature = "ledger")]
use std::sync::Arc;
use std::time::Duration;
#[cfg(feature = "ledger")]
use tonic::{Request, Response, Status};

/// Most blocks per `GetBlocks` answer.
pub const MAX_BLOCKS: usize = 256;
/// Largest message.
pub const MAX_MESSAGE: usize = 4 * 1024 * 1024;

/// The service over a ledger.
#[cfg(feature = "ledger")]
#[derive(Debug, Clone)]
pub struct ChainGrpc(pub Arc<crate::ledger::Ledger>);

/// A node's refusal, by its message; a failure without one (the transport's) by its
/// code and its cause, so the error never reads as an empty "registry backend: ".
fn refused(s: tonic::Status) -> RegistryError {
    if !s.message().is_empty() {
        return RegistryError::Backend(s.message().to_owned());
    }
    match std::error::Error::source(&s).map(phalanx_types::causes) {
        Some(cause) if !cause.is_empty() => {
            RegistryError::Backend(format!("{:?}: {cause}", s.code()))
        }
        _ => RegistryError::Backend(format!("{:?}", s.code())),
    }
}

#[cfg(feature = "ledger")]
fn status(e: crate::ledger::LedgerError) -> Status {
    match e {
        crate::ledger::LedgerError::Rule(r) => Status::failed_precondition(r.to_string()),
        other => {
            tracing::error!(error = %other, "ledger failure");
            Status::internal("internal error")
        }
    }
}

#[cfg(feature = "ledger")]
#[tonic::async_trait]
impl pb::chain_server::Chain for ChainGrpc {
    async fn submit(
        &self,
        request: Request<pb::SubmitRequest>,
    ) -> Result<Response<pb::SubmitResponse>, Status> {
        let tx = SignedTx::decode(&request.into_inner().tx)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let ledger = self.0.clone();
        let height = tokio::task::spawn_blocking(move || ledger.submit(tx))
            .await
            .map_err(|_| Status::internal("internal error"))?
            .map_err(status)?;
        Ok(Response::new(pb::SubmitResponse { height }))
    }

    async fn get_blocks(
        &self,
        request: Request<pb::GetBlocksRequest>,
    ) -> Result<Response<pb::GetBlocksResponse>, Status> {
        let r = request.into_inner();
        let limit = usize::try_from(r.limit)
            .unwrap_or(MAX_BLOCKS)
            .clamp(1, MAX_BLOCKS);
        let blocks = self.0.blocks(r.from, limit).map_err(status)?;
        Ok(Response::new(pb::GetBlocksResponse {
            blocks: blocks.iter().map(Block::encode).collect(),
        }))
    }

    async fn prove(
        &self,
        request: Request<pb::ProveRequest>,
    ) -> Result<Response<pb::ProveResponse>, Status> {
        let r = request.into_inner();
        if r.keys.len() > crate::proof::MAX_FACTS {
            return Err(Status::invalid_argument(format!(
                "at most {} facts",
                crate::proof::MAX_FACTS
            )));
        }
        let ledger = self.0.clone();
        let proof = tokio::task::spawn_blocking(move || ledger.prove(r.height, &r.keys))
            .await
            .map_err(|_| Status::internal("internal error"))?
            .map_err(status)?;
        Ok(Response::new(pb::ProveResponse {
            proof: proof.to_wire(r.lean),
        }))
    }

    async fn get_commands(
        &self,
        request: Request<pb::GetCommandsRequest>,
    ) -> Result<Response<pb::GetCommandsResponse>, Status> {
        let r = request.into_inner();
        let contract: [u8; 32] = r
            .contract
            .as_slice()
            .try_into()
            .map_err(|_| Status::invalid_argument("a contract id is 32 bytes"))?;
        let limit = usize::try_from(r.limit).unwrap_or(usize::MAX);
        let ledger = self.0.clone();
        let page =
            tokio::task::spawn_blocking(move || ledger.commands(&contract, r.from, limit, r.since))
                .await
                .map_err(|_| Status::internal("internal error"))?
                .map_err(status)?;
        Ok(Response::new(pb::GetCommandsResponse {
            page: page.to_wire(r.lean),
        }))
    }

    async fn head(
        &self,
        request: Request<pb::HeadRequest>,
    ) -> Result<Response<pb::HeadResponse>, Status> {
        let pb::HeadRequest { contracts, account } = request.into_inner();
        if contracts.len() > MAX_HEAD_CONTRACTS {
            return Err(Status::invalid_argument(format!(
                "at most {MAX_HEAD_CONTRACTS} contracts"
            )));
        }
        let state = self.0.state().map_err(status)?;
        let commands = contracts
            .iter()
            .map(|id| {
                let id: [u8; 32] = id
                    .as_slice()
                    .try_into()
                    .map_err(|_| Status::invalid_argument("a contract id is 32 bytes"))?;
                Ok(state.contract(&id).map_or(0, |c| c.commands))
            })
            .collect::<Result<_, Status>>()?;
        Ok(Response::new(pb::HeadResponse {
            height: state.height().saturating_sub(1),
            commands,
            nonce: state.nonce(&account),
        }))
    }
}

/// Serves `ledger` on `listener` until `shutdown` resolves.
#[cfg(feature = "ledger")]
pub async fn serve(
    listener: tokio::net::TcpListener,
    ledger: Arc<crate::ledger::Ledger>,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    tonic::transport::Server::builder()
        .timeout(Duration::from_secs(10))
        .concurrency_limit_per_connection(64)
        .add_service(
            pb::chain_server::ChainServer::new(ChainGrpc(ledger))
                // A transaction: at most a contract module and its framing.
                .max_decoding_message_size(crate::types::MAX_CODE + 64 * 1024)
                .max_encoding_message_size(MAX_MESSAGE),
        )
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown,
        )
        .await
}

/// A client that verifies everything it is told, in one of two ways.
///
/// Replaying ([`LightClient::sync`]): every block's link, authority signature,
/// transactions and rules are checked here, so the server cannot forge a registration,
/// a governance change or an epoch certificate, nor break a rule.
///
/// Reading proofs ([`LightClient::facts`], [`LightClient::commands`] and what builds on
/// them): each fact is proven against a header the authority signed, so the server
/// cannot change a fact the authority did not sign — but a state root is the
/// authority's word that the rules were followed, as a light client of any chain takes
/// its consensus's word. Readers of proofs tie what matters to evidence of its own: a
/// gatekeeper must still show an attested token matching its registration, derived
/// keys must equal the published ones, a contract's code must hash to the id it is
/// served under, and an answer's verifier checks governance's own signature on the
/// measurement it rests on.
///
/// Either way, what
/// the ledger's authority key (held by the server) can still do: choose which valid
/// transactions enter blocks and in what order (censor or delay, decide which of two
/// racing proposals lands first), withhold recent blocks (a client sees a prefix of the
/// chain, never a wrong state), and sign two different histories. Against the last, a
/// client with a checkpoint ([`LightClient::with_checkpoint`]) persists the last head
/// it verified and refuses, across restarts, any chain that does not extend it (a fork,
/// or a history rolled back below it); a client without one trusts the first history it
/// is shown after the pinned genesis. Several ledger authorities, or an EVM chain
/// (`evm` backend), remove the single authority.
#[derive(Debug)]
pub struct LightClient {
    url: String,
    genesis_hash: Option<[u8; 32]>,
    checkpoint: Option<std::path::PathBuf>,
    /// Authenticates the checkpoint (a key only this process has), and whether one must
    /// exist: see [`LightClient::with_sealed_checkpoint`].
    checkpoint_key: Option<(ring::hmac::Key, bool)>,
    state: tokio::sync::Mutex<Option<State>>,
    /// The pinned genesis block, once seen ([`Self::known_genesis`]).
    genesis_block: std::sync::Mutex<Option<Block>>,
    /// The last header verified through proofs ([`Self::facts_at`]): next height, hash.
    proven_head: tokio::sync::Mutex<Option<(u64, [u8; 32])>>,
    /// SHA-256 of recently included transactions, with their block heights (bounded).
    included: std::sync::Mutex<std::collections::VecDeque<([u8; 32], u64)>>,
}

/// How many recent blocks' facts a light client keeps provable (it proves none; a
/// margin for copies of its state still in use).
const LIGHT_CLIENT_VERSIONS: u64 = 64;

/// Most contracts one `Head` request names.
pub const MAX_HEAD_CONTRACTS: usize = 1024;

/// Most included transactions a light client remembers for inclusion checks.
const MAX_REMEMBERED_TXS: usize = 4096;

fn tx_hash(encoded: &[u8]) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(encoded).into()
}

impl LightClient {
    /// A client of the node at `url` that accepts whatever genesis it serves first
    /// (trust on first use; see [`LightClient::pinned`]).
    pub fn new(url: &str) -> Self {
        Self {
            url: url.to_owned(),
            genesis_hash: None,
            checkpoint: None,
            checkpoint_key: None,
            state: tokio::sync::Mutex::new(None),
            proven_head: tokio::sync::Mutex::new(None),
            genesis_block: std::sync::Mutex::new(None),
            included: std::sync::Mutex::new(std::collections::VecDeque::new()),
        }
    }

    /// A client that accepts only the chain whose genesis block hashes to `genesis`.
    pub fn pinned(url: &str, genesis: [u8; 32]) -> Self {
        Self {
            genesis_hash: Some(genesis),
            ..Self::new(url)
        }
    }

    /// Persists the last verified head (height and block hash) in `path` after every
    /// sync, and refuses any chain that does not extend the head stored there.
    pub fn with_checkpoint(mut self, path: &std::path::Path) -> Self {
        self.checkpoint = Some(path.to_owned());
        self
    }

    /// [`Self::with_sealed_checkpoint`] under a key derived from `identity` (a process's
    /// own signing key, which only its sealed store holds), tagged
    /// [`phalanx_types::tag::REGISTRY_CHECKPOINT`].
    pub fn with_identity_checkpoint(
        self,
        path: &std::path::Path,
        identity: &p256::ecdsa::SigningKey,
        required: bool,
    ) -> Self {
        let key = crate::derive_from_identity(identity, phalanx_types::tag::REGISTRY_CHECKPOINT);
        self.with_sealed_checkpoint(path, &key, required)
    }

    /// As [`Self::with_checkpoint`], the file authenticated with `key` (HMAC-SHA256 under
    /// [`phalanx_types::tag::REGISTRY_CHECKPOINT`]; the key only this process has, e.g.
    /// derived from its sealed identity): a host that writes the file cannot forge a
    /// head. With `required`, a missing file is refused too (a process that has followed
    /// the registry before must not trust the first history shown because its host
    /// deleted the checkpoint). A host can still put back an older file this process
    /// wrote (no monotonic counter here).
    pub fn with_sealed_checkpoint(
        mut self,
        path: &std::path::Path,
        key: &[u8; 32],
        required: bool,
    ) -> Self {
        self.checkpoint = Some(path.to_owned());
        self.checkpoint_key = Some((ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key), required));
        self
    }

    /// What a sealed checkpoint's MAC covers: the tag, then the head.
    fn checkpoint_mac_input(body: &[u8]) -> Vec<u8> {
        [phalanx_types::tag::REGISTRY_CHECKPOINT, body].concat()
    }

    fn read_checkpoint(&self) -> Result<Option<(u64, [u8; 32])>, RegistryError> {
        let Some(path) = &self.checkpoint else {
            return Ok(None);
        };
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if self
                    .checkpoint_key
                    .as_ref()
                    .is_some_and(|(_, required)| *required)
                {
                    return Err(RegistryError::Unverified(format!(
                        "{}: the registry checkpoint is missing; this node followed the registry before and will not trust the first history it is shown",
                        path.display()
                    )));
                }
                return Ok(None);
            }
            Err(e) => return Err(RegistryError::Backend(format!("{}: {e}", path.display()))),
        };
        // Next height (u64 BE) ‖ hash of the last verified block (‖ HMAC when sealed).
        let bad = || {
            RegistryError::Unverified(format!(
                "{}: not a checkpoint of this process",
                path.display()
            ))
        };
        let body = match &self.checkpoint_key {
            Some((key, _)) => {
                let (body, tag) = bytes.split_at_checked(40).ok_or_else(bad)?;
                ring::hmac::verify(key, &Self::checkpoint_mac_input(body), tag)
                    .map_err(|_| bad())?;
                body
            }
            None => bytes.as_slice(),
        };
        let (h, hash) = body.split_first_chunk::<8>().ok_or_else(bad)?;
        let hash: [u8; 32] = hash.try_into().map_err(|_| bad())?;
        Ok(Some((u64::from_be_bytes(*h), hash)))
    }

    fn write_checkpoint(&self, state: &State) -> Result<(), RegistryError> {
        self.write_head((state.height(), state.last_hash()))
    }

    /// Persists the next height and the hash of the last verified block.
    fn write_head(&self, (next, hash): (u64, [u8; 32])) -> Result<(), RegistryError> {
        let Some(path) = &self.checkpoint else {
            return Ok(());
        };
        let io = |e: std::io::Error| RegistryError::Backend(format!("{}: {e}", path.display()));
        let tmp = path.with_extension("tmp");
        let mut bytes = next.to_be_bytes().to_vec();
        bytes.extend_from_slice(&hash);
        if let Some((key, _)) = &self.checkpoint_key {
            let tag = ring::hmac::sign(key, &Self::checkpoint_mac_input(&bytes));
            bytes.extend_from_slice(tag.as_ref());
        }
        {
            use std::io::Write as _;
            let mut f = std::fs::File::create(&tmp).map_err(io)?;
            f.write_all(&bytes).map_err(io)?;
            f.sync_all().map_err(io)?;
        }
        std::fs::rename(&tmp, path).map_err(io)
    }

    async fn client(
        &self,
    ) -> Result<pb::chain_client::ChainClient<tonic::transport::Channel>, RegistryError> {
        let ch = tonic::transport::Endpoint::from_shared(self.url.clone())
            .map_err(|e| RegistryError::Backend(e.to_string()))?
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(10))
            .connect()
            .await
            .map_err(|e| {
                RegistryError::Backend(format!("{}: {}", self.url, phalanx_types::causes(&e)))
            })?;
        Ok(pb::chain_client::ChainClient::new(ch).max_decoding_message_size(MAX_MESSAGE))
    }

    /// The block at `height` as the node serves it, unverified (a probe: is this a
    /// ledger node, and which chain; or a block whose parts a proof checks).
    pub async fn raw_block(&self, height: u64) -> Result<Block, RegistryError> {
        let resp = self
            .client()
            .await?
            .get_blocks(pb::GetBlocksRequest {
                from: height,
                limit: 1,
            })
            .await
            .map_err(refused)?
            .into_inner();
        let block = resp
            .blocks
            .first()
            .ok_or_else(|| RegistryError::Backend(format!("the node has no block {height}")))?;
        Block::decode(block).map_err(|e| RegistryError::Unverified(e.to_string()))
    }

    /// `contract`'s commands from sequence `from` (whose command log head is `head`:
    /// zeros at 0), at least `limit` when there are that many, checked against the pinned
    /// genesis ([`crate::proof::CommandPage::verify`]): the node cannot leave one out,
    /// add one, or reorder them. A worker serving one contract follows it with this
    /// instead of every block.
    pub async fn commands(
        &self,
        contract: &[u8; 32],
        from: u64,
        head: &[u8; 32],
        limit: u32,
    ) -> Result<(Vec<crate::proof::CommandAt>, crate::proof::VerifiedPage), RegistryError> {
        let pinned = self.genesis_hash.ok_or_else(|| {
            RegistryError::Unverified("a command feed needs a pinned genesis".into())
        })?;
        let mut known = self.proven_head.lock().await;
        if known.is_none() {
            *known = self.read_checkpoint()?;
        }
        let genesis = self.known_genesis();
        let resp = self
            .client()
            .await?
            .get_commands(pb::GetCommandsRequest {
                contract: contract.to_vec(),
                from,
                limit,
                lean: genesis.is_some(),
                since: known.map_or(0, |(next, _)| next),
            })
            .await
            .map_err(refused)?
            .into_inner();
        let page = crate::proof::CommandPage::from_wire(&resp.page, genesis.as_ref())
            .map_err(|e| RegistryError::Unverified(e.to_string()))?;
        let proven = page.proof.verify(&pinned)?;
        self.remember_genesis(&page.proof.genesis);
        let verified = page.check(&proven, contract, from, head)?;
        // A page proven at a header at or after the last verified one must extend it;
        // an older one (catching up) is tied to it by the command log, which the
        // newest page proves at a header that does.
        if known.is_none_or(|(next, _)| proven.header.height + 1 >= next) {
            self.advance(&mut known, &proven)?;
        }
        Ok((page.commands, verified))
    }

    /// Requires `proven`'s header to extend the last verified head `known` (the same
    /// block, or a later one whose history proves it: [`Fact::Header`]), then makes it
    /// the head, persisted when there is a checkpoint. A header older than `known` is a
    /// rollback and refused.
    fn advance(
        &self,
        known: &mut Option<(u64, [u8; 32])>,
        proven: &Verified,
    ) -> Result<(), RegistryError> {
        let at = proven.header.height;
        if let Some((next, hash)) = *known {
            let fork = || {
                RegistryError::Unverified(format!(
                    "the server's header at height {at} does not extend block {}, which this \
                     client verified earlier",
                    next.saturating_sub(1)
                ))
            };
            let extends = match (at + 1).cmp(&next) {
                std::cmp::Ordering::Less => false,
                std::cmp::Ordering::Equal => proven.header.hash() == hash,
                std::cmp::Ordering::Greater => {
                    next <= 1
                        || proven.read(&Fact::Header(next - 1), crate::facts::read_header_hash)?
                            == Some(hash)
                }
            };
            if !extends {
                return Err(fork());
            }
        }
        let now = (at + 1, proven.header.hash());
        if *known != Some(now) {
            self.write_head(now)?;
            *known = Some(now);
        }
        Ok(())
    }

    /// The node's proofs of the facts `keys` at `height`
    /// ([`crate::proof::HeaderProof`]), decoded but unverified: the caller checks them
    /// against its pinned genesis ([`crate::proof::HeaderProof::verify`]).
    pub async fn prove(
        &self,
        height: u64,
        keys: &[Vec<u8>],
    ) -> Result<crate::proof::HeaderProof, RegistryError> {
        let genesis = self.known_genesis();
        let resp = self
            .client()
            .await?
            .prove(pb::ProveRequest {
                height,
                keys: keys.to_vec(),
                lean: genesis.is_some(),
            })
            .await
            .map_err(refused)?
            .into_inner();
        crate::proof::HeaderProof::from_wire(&resp.proof, genesis.as_ref())
            .map_err(|e| RegistryError::Unverified(e.to_string()))
    }

    /// The pinned genesis block, once a proof carrying it verified: later proofs are
    /// asked for without it (the lean encoding), about a kilobyte less each.
    fn known_genesis(&self) -> Option<Block> {
        self.genesis_block.lock().ok().and_then(|g| g.clone())
    }

    /// Keeps `genesis` for [`Self::known_genesis`] if it is the pinned one.
    fn remember_genesis(&self, genesis: &Block) {
        if self.genesis_hash == Some(genesis.hash())
            && let Ok(mut g) = self.genesis_block.lock()
            && g.is_none()
        {
            *g = Some(genesis.clone());
        }
    }

    /// The node's newest height and the command counts of `contracts`, as it says:
    /// unproven hints, a follower's cue to fetch what it then checks.
    pub async fn head(&self, contracts: &[[u8; 32]]) -> Result<(u64, Vec<u64>), RegistryError> {
        let (mut height, mut counts) = (0, Vec::with_capacity(contracts.len()));
        for chunk in contracts.chunks(MAX_HEAD_CONTRACTS) {
            let r = self.head_request(chunk, &[]).await?;
            height = height.max(r.height);
            counts.extend(r.commands);
        }
        if contracts.is_empty() {
            height = self.head_request(&[], &[]).await?.height;
        }
        Ok((height, counts))
    }

    async fn head_request(
        &self,
        contracts: &[[u8; 32]],
        account: &[u8],
    ) -> Result<pb::HeadResponse, RegistryError> {
        let r = self
            .client()
            .await?
            .head(pb::HeadRequest {
                contracts: contracts.iter().map(|c| c.to_vec()).collect(),
                account: account.to_vec(),
            })
            .await
            .map_err(refused)?
            .into_inner();
        if r.commands.len() != contracts.len() {
            return Err(RegistryError::Unverified(format!(
                "{} command counts for {} contracts",
                r.commands.len(),
                contracts.len()
            )));
        }
        Ok(r)
    }

    /// Signs `tx` as `by` and submits it without the chain, then returns the facts
    /// `effect` proven at a header at or after the block the node says includes it: the
    /// caller reads there whether the transaction did what it should (the node's word
    /// that it included it is not taken). The sequence number is the node's hint; the
    /// rules are the node's to apply (a refusal comes back as
    /// [`RegistryError::Backend`] with the rule in its message). A client that keeps the
    /// whole state submits through [`SignedLedger`] instead.
    pub async fn submit_proven(
        &self,
        by: &p256::ecdsa::SigningKey,
        tx: crate::types::Tx,
        effect: &[Fact],
    ) -> Result<(u64, Verified), RegistryError> {
        let account = crate::types::public_key(by.verifying_key());
        let nonce = self.head_request(&[], &account).await?.nonce;
        let chain_id = self.facts(&[]).await?.header.chain_id;
        let height = self
            .client()
            .await?
            .submit(pb::SubmitRequest {
                tx: SignedTx::sign(by, &chain_id, nonce, tx).encode(),
            })
            .await
            .map_err(|s| match s.code() {
                tonic::Code::FailedPrecondition => {
                    RegistryError::Backend(format!("refused: {}", s.message()))
                }
                _ => RegistryError::Backend(s.message().to_owned()),
            })?
            .into_inner()
            .height;
        let proven = self.facts(effect).await?;
        if proven.header.height < height {
            return Err(RegistryError::Unverified(format!(
                "block {height} was not served"
            )));
        }
        Ok((height, proven))
    }

    /// The facts `keys` at the node's newest block, checked against the pinned genesis
    /// ([`crate::proof::HeaderProof::verify`]): a few kilobytes however long the chain,
    /// where [`Self::sync`] downloads every block. The node chooses which of its blocks
    /// is newest (it can show an older one: see the type's doc), never the facts at it.
    pub async fn facts(&self, keys: &[Fact]) -> Result<Verified, RegistryError> {
        self.facts_at(crate::proof::LATEST, keys).await
    }

    /// [`Self::facts`] at `height`, in as many requests as [`crate::proof::MAX_FACTS`]
    /// needs, all at that one header. The header must extend the last one this client
    /// verified (kept across restarts with a checkpoint: [`Self::with_checkpoint`]),
    /// proven by the history fact of that one ([`Fact::Header`]) at the new header: a
    /// fork or a rollback is refused as [`Self::sync`] refuses it, without the blocks in
    /// between. So a caller that reads at an older height than another caller has
    /// verified since is refused too: one reader at a time (a worker's steps are).
    pub async fn facts_at(&self, height: u64, keys: &[Fact]) -> Result<Verified, RegistryError> {
        let pinned = self.genesis_hash.ok_or_else(|| {
            RegistryError::Unverified("proven facts need a pinned genesis".into())
        })?;
        let mut known = self.proven_head.lock().await;
        if known.is_none() {
            *known = self.read_checkpoint()?;
        }
        // The last verified block, when it is not the genesis: its hash at the new header.
        let history: Vec<Fact> = known
            .filter(|(next, _)| *next > 1)
            .map(|(next, _)| Fact::Header(next - 1))
            .into_iter()
            .collect();
        let mut chunks = keys.chunks(crate::proof::MAX_FACTS - history.len());
        let first: Vec<Vec<u8>> = history
            .iter()
            .chain(chunks.next().unwrap_or_default())
            .map(Fact::key)
            .collect();
        let proof = self.prove(height, &first).await?;
        let mut proven = proof.verify(&pinned)?;
        self.remember_genesis(&proof.genesis);
        self.advance(&mut known, &proven)?;
        let at = proven.header.height;
        for chunk in chunks {
            let keys: Vec<Vec<u8>> = chunk.iter().map(Fact::key).collect();
            proven.merge(self.prove(at, &keys).await?.verify(&pinned)?)?;
        }
        Ok(proven)
    }

    /// The facts `keys` at an earlier `height`, without moving this client's verified
    /// head back: the block's hash is proven as history ([`Fact::Header`]) at the newest
    /// header, and the facts at a header with that hash (verified from the pinned
    /// genesis). At or past the newest height, [`Self::facts_at`].
    pub async fn facts_in_history(
        &self,
        height: u64,
        keys: &[Fact],
    ) -> Result<Verified, RegistryError> {
        let pinned = self.genesis_hash.ok_or_else(|| {
            RegistryError::Unverified("proven facts need a pinned genesis".into())
        })?;
        let now = self.facts(&[Fact::Header(height)]).await?;
        if now.header.height <= height {
            return self.facts_at(height, keys).await;
        }
        let hash = now
            .read(&Fact::Header(height), crate::facts::read_header_hash)?
            .ok_or_else(|| {
                RegistryError::Unverified(format!("no block {height} in the history"))
            })?;
        let keys: Vec<Vec<u8>> = keys.iter().map(Fact::key).collect();
        let mut chunks = keys.chunks(crate::proof::MAX_FACTS);
        let at = |v: Verified| match v.header.hash() == hash {
            true => Ok(v),
            false => Err(RegistryError::Unverified(format!(
                "the node's block {height} is not the one this chain's history names"
            ))),
        };
        let first = chunks.next().unwrap_or_default();
        let mut proven = at(self.prove(height, first).await?.verify(&pinned)?)?;
        for chunk in chunks {
            proven.merge(at(self.prove(height, chunk).await?.verify(&pinned)?)?)?;
        }
        Ok(proven)
    }

    /// The gatekeeper set at the newest header with each member's standing at `now`
    /// ([`GatekeeperSet::from_proofs`]), and `extra` facts proven at the same header:
    /// what a worker reads before it asks gatekeepers for a key, without the chain.
    pub async fn gatekeeper_set(
        &self,
        extra: &[Fact],
        now: i64,
    ) -> Result<(GatekeeperSet, Verified), RegistryError> {
        let first = [&[Fact::Gatekeepers, Fact::Rule][..], extra].concat();
        let mut proven = self.facts(&first).await?;
        let at = proven.header.height;
        let set = proven.gatekeepers()?;
        let workers = self
            .facts_at(at, &GatekeeperSet::worker_facts(&set))
            .await?;
        proven.merge(workers)?;
        let mut measurements: Vec<Fact> = Vec::new();
        for g in &set {
            if let Some(w) = proven.worker(&g.identity_key)? {
                let fact = Fact::Allowed(w.measurement);
                if !measurements.contains(&fact) {
                    measurements.push(fact);
                }
            }
        }
        let allowed = self.facts_at(at, &measurements).await?;
        proven.merge(allowed)?;
        let set = GatekeeperSet::from_proofs(&proven, now)?;
        Ok((set, proven))
    }

    /// Every published epoch's keys at `proven`'s header, oldest first (epochs are
    /// numbered from 0 without gaps; probed a batch at a time).
    pub async fn epochs(&self, proven: &Verified) -> Result<Vec<EpochKey>, RegistryError> {
        let at = proven.header.height;
        crate::registry::published_epochs(|batch| async move { self.facts_at(at, &batch).await })
            .await
    }

    /// Contract `id`'s code, as deployed, checked against what `proven` says of it: the
    /// deploying block (its hash proven by a later header's history, or the header
    /// itself), its transaction root recomputed, and the module's hash. Downloads that
    /// one block.
    pub async fn contract_code(
        &self,
        proven: &Verified,
        id: &[u8; 32],
    ) -> Result<Vec<u8>, RegistryError> {
        let unverified = RegistryError::Unverified;
        let contract = proven
            .contract(id)?
            .ok_or_else(|| unverified(format!("contract {} is not deployed", crate::hex(id))))?;
        // What the fact names must make the id (a signed root that maps an id to other
        // code is refused).
        let named = phalanx_types::contract::contract_id(
            &proven.header.chain_id,
            &contract.deployer,
            &contract.code_hash,
            &contract.salt,
        );
        if named != *id {
            return Err(unverified(format!(
                "the registry's record of contract {} names another contract",
                crate::hex(id)
            )));
        }
        let at = contract.deployed_at;
        let expected = if at == proven.header.height {
            proven.header.hash()
        } else {
            let v = self
                .facts_at(proven.header.height, &[Fact::Header(at)])
                .await?;
            v.read(&Fact::Header(at), crate::facts::read_header_hash)
                .map_err(|e| unverified(e.to_string()))?
                .ok_or_else(|| unverified(format!("no proven block at height {at}")))?
        };
        let block = self.raw_block(at).await?;
        if block.hash() != expected || block.computed_tx_root().ok() != Some(block.tx_root) {
            return Err(unverified(format!(
                "block {at}, which deployed contract {}, is not the chain's",
                crate::hex(id)
            )));
        }
        block
            .txs
            .iter()
            .find_map(|t| match &t.tx {
                crate::types::Tx::DeployContract { code, .. }
                    if phalanx_types::contract::code_hash(code) == contract.code_hash =>
                {
                    Some(code.clone())
                }
                _ => None,
            })
            .ok_or_else(|| {
                unverified(format!(
                    "block {at} holds no module of contract {}'s code hash",
                    crate::hex(id)
                ))
            })
    }

    /// Fetches and verifies every new block; returns the verified state.
    pub async fn sync(&self) -> Result<State, RegistryError> {
        let mut guard = self.state.lock().await;
        let checkpoint = match guard.as_ref() {
            None => self.read_checkpoint()?,
            Some(_) => None,
        };
        let mut client = self.client().await?;
        loop {
            let from = guard.as_ref().map_or(0, State::height);
            let resp = client
                .get_blocks(pb::GetBlocksRequest {
                    from,
                    limit: MAX_BLOCKS as u32,
                })
                .await
                .map_err(refused)?
                .into_inner();
            if resp.blocks.is_empty() {
                break;
            }
            for bytes in &resp.blocks {
                let block =
                    Block::decode(bytes).map_err(|e| RegistryError::Unverified(e.to_string()))?;
                match guard.as_mut() {
                    None => {
                        if self.genesis_hash.is_some_and(|h| h != block.hash()) {
                            return Err(RegistryError::Unverified(
                                "the server's genesis is not the pinned one".into(),
                            ));
                        }
                        let mut state = State::from_genesis(&block)
                            .map_err(|e| RegistryError::Unverified(e.to_string()))?;
                        // It never proves old facts: keep each fact once, not every version.
                        state.keep_only(LIGHT_CLIENT_VERSIONS);
                        *guard = Some(state);
                    }
                    Some(s) => {
                        s.apply_block(&block)
                            .map_err(|e| RegistryError::Unverified(e.to_string()))?;
                        if let Ok(mut seen) = self.included.lock() {
                            for tx in &block.txs {
                                if seen.len() == MAX_REMEMBERED_TXS {
                                    seen.pop_front();
                                }
                                seen.push_back((tx_hash(&tx.encode()), block.height));
                            }
                        }
                    }
                }
                // The head persisted by an earlier run must be on this chain.
                if let (Some((height, hash)), Some(s)) = (checkpoint, guard.as_ref())
                    && s.height() == height
                    && s.last_hash() != hash
                {
                    return Err(RegistryError::Unverified(format!(
                        "the server's chain forks from the checkpoint at block {height}"
                    )));
                }
            }
        }
        let state = guard
            .clone()
            .ok_or_else(|| RegistryError::Unverified("the server has no genesis block".into()))?;
        if let Some((height, _)) = checkpoint
            && state.height() < height
        {
            return Err(RegistryError::Unverified(format!(
                "the server's chain ends before block {}, which this client verified earlier",
                height - 1
            )));
        }
        self.write_checkpoint(&state)?;
        Ok(state)
    }
}

impl SignedLedger for LightClient {
    async fn submit_tx(&self, tx: SignedTx) -> Result<u64, RegistryError> {
        // The rules are checked here first, with the same errors as in-process.
        let state = self.sync().await?;
        state
            .clone()
            .apply(&tx, state.height(), state.last_time())
            .map_err(RegistryError::Rule)?;
        let resp = self
            .client()
            .await?
            .submit(pb::SubmitRequest { tx: tx.encode() })
            .await
            .map_err(|s| match s.code() {
                tonic::Code::FailedPrecondition => {
                    RegistryError::Backend(format!("refused: {}", s.message()))
                }
                _ => RegistryError::Backend(s.message().to_owned()),
            })?;
        let height = resp.into_inner().height;
        // Do not answer before the block is verified here, and holds the transaction.
        let state = self.sync().await?;
        if state.height() <= height {
            return Err(RegistryError::Unverified(format!(
                "block {height} was not served"
            )));
        }
        let hash = tx_hash(&tx.encode());
        let found = self.included.lock().ok().and_then(|seen| {
            seen.iter()
                .rev()
                .find(|(h, _)| *h == hash)
                .map(|(_, at)| *at)
        });
        if found != Some(height) {
            return Err(RegistryError::Unverified(format!(
                "the server said block {height} holds the transaction; it does not"
            )));
        }
        Ok(height)
    }

    async fn verified_state(&self) -> Result<State, RegistryError> {
        self.sync().await
    }
}
