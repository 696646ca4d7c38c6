//! Endorsements over the network on the Solidity registry (anvil; skipped without one
//! unless `PHALANX_REQUIRE_ANVIL` is set): three gatekeeper nodes serve their gRPC API
//! with hooks on the registry, and workers register through [`RemoteEndorser`], which
//! asks the members in standing at the URLs the registry lists. Two of three suffice;
//! a tampered quote, a skewed evidence time, a stranger's endorsement and an open
//! bootstrap are each refused by name.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use chain::evm::{Anvil, EvmAccount, EvmRegistry, KeyEndorser, RemoteEndorser, funded};
use chain::registry::{Registry as _, RegistryError};
use chain::state::RuleError;
use chain::types::{Gatekeeper, Role, public_key};
use keyvault::grpc::GatekeeperGrpc;
use keyvault::node::Node;
use keyvault::registry::{Evidence, RegistryHooks};
use keyvault::share::NodeIndex;
use keyvault::store::{NodeStore, SealingKey};
use phalanx_proto::keyvault::v1 as pb;
use phalanx_types::codec::Codec as _;
use std::sync::Arc;

/// A gatekeeper node serving its client API with hooks on `registry`; its URL and
/// identity key, and the task's stop signal.
struct Served {
    url: String,
    identity: p256::ecdsa::SigningKey,
    stop: tokio::sync::oneshot::Sender<()>,
}

async fn serve_node(
    dir: &std::path::Path,
    index: u16,
    registry: &EvmRegistry,
    rpc: &str,
    sim: &phalanx_dcap_sim::SimTee,
) -> Served {
    std::fs::create_dir_all(dir).unwrap();
    let store = NodeStore::open(
        &dir.join("db"),
        SealingKey::load_or_create(&dir.join("sealing.key")).unwrap(),
    )
    .unwrap();
    let node = Arc::new(
        Node::open(
            store,
            NodeIndex::new(index).unwrap(),
            Default::default(),
            Default::default(),
            &mut rand::rng(),
        )
        .unwrap(),
    );
    let identity = node.identity().signing_key().clone();
    let account = chain::evm::identity_account(&identity).unwrap();
    chain::evm::fund(rpc, account.signer.address())
        .await
        .unwrap();
    let hooks = RegistryHooks::evm(
        registry.clone(),
        account,
        identity.clone(),
        Evidence::DangerousSkip,
        Arc::new(chain::evidence::Roots::new(chain::sim::evidence_rule(sim)).unwrap()),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let grpc = GatekeeperGrpc::new(node, phalanx_types::unix_now).with_hooks(Some(Arc::new(hooks)));
    tokio::spawn(keyvault::grpc::serve_client(listener, grpc, None, async {
        let _ = stopped.await;
    }));
    Served {
        url,
        identity,
        stop,
    }
}

/// anvil, the registry deployed on it, and the gatekeepers' and workers' simulated
/// enclaves allowed in their roles.
struct World {
    anvil: Anvil,
    sim: phalanx_dcap_sim::SimTee,
    gatekeeper_enclave: phalanx_dcap_sim::SgxEnclave,
    worker_enclave: phalanx_dcap_sim::SgxEnclave,
    governance: EvmAccount,
    registry: EvmRegistry,
    id: [u8; 32],
}

/// The [`World`]; none without anvil (unless `PHALANX_REQUIRE_ANVIL`: then a failure).
async fn world() -> Option<World> {
    let Some(anvil) = Anvil::start(None).await.unwrap() else {
        assert!(
            std::env::var_os("PHALANX_REQUIRE_ANVIL").is_none(),
            "PHALANX_REQUIRE_ANVIL is set but no anvil is installed (set ANVIL)"
        );
        return None;
    };
    let url = anvil.url();
    let sim = chain::sim::platform(phalanx_types::unix_now() - 60).unwrap();
    let gatekeeper_enclave = chain::sim::enclave([1; 32]);
    let worker_enclave = chain::sim::enclave([2; 32]);
    let governance = EvmAccount::plain(funded(url).await.unwrap());
    let registry = EvmRegistry::deploy(
        url,
        &funded(url).await.unwrap(),
        governance.signer.address(),
    )
    .await
    .unwrap();
    for (m, role) in [
        (chain::sim::tenant(&gatekeeper_enclave), Role::Gatekeeper),
        (chain::sim::tenant(&worker_enclave), Role::Runtime),
    ] {
        registry
            .add_measurement(&governance, &m, role)
            .await
            .unwrap();
    }
    let id = registry.chain_id().await.unwrap();
    Some(World {
        anvil,
        sim,
        gatekeeper_enclave,
        worker_enclave,
        governance,
        registry,
        id,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gatekeepers_endorse_registrations_over_the_network() {
    let Some(World {
        anvil,
        sim,
        gatekeeper_enclave,
        worker_enclave,
        governance,
        registry,
        id,
    }) = world().await
    else {
        return;
    };
    let url = anvil.url();
    let remote = registry
        .clone()
        .with_endorser(Arc::new(RemoteEndorser::new(None)));

    // Three nodes; before any set exists the remote endorser names the bootstrap rule,
    // and governance approves the nodes' own registrations.
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = Vec::new();
    for i in 1..=3u16 {
        let node = serve_node(&dir.path().join(format!("g{i}")), i, &registry, url, &sim).await;
        let account = chain::evm::identity_account(&node.identity).unwrap();
        let reg =
            chain::sim::registration(&sim, &gatekeeper_enclave, &node.identity, Vec::new(), id)
                .unwrap();
        if i == 1 {
            let open = remote.register_worker(&account, &reg).await.unwrap_err();
            assert!(open.to_string().contains("approvals are open"), "{open}");
            // The node's path: it writes its registration for governance and waits;
            // governance checks the file and approves it (`phalanx chain tx ...
            // approve-registration`); then the registration lands.
            governs_the_first_registration(
                url,
                &registry,
                &governance,
                &sim,
                &account,
                &reg,
                dir.path(),
            )
            .await;
            nodes.push(node);
            continue;
        }
        let bootstrap = KeyEndorser::new(
            chain::sim::evidence_rule(&sim),
            Vec::new(),
            Some(governance.clone()),
        )
        .unwrap();
        registry
            .clone()
            .with_endorser(Arc::new(bootstrap))
            .register_worker(&account, &reg)
            .await
            .unwrap();
        nodes.push(node);
    }
    let set: Vec<Gatekeeper> = (1u16..)
        .zip(&nodes)
        .map(|(i, n)| Gatekeeper {
            index: i,
            identity_key: public_key(n.identity.verifying_key()),
            url: n.url.clone(),
            peer_url: format!("https://g{i}"),
        })
        .collect();
    registry
        .set_gatekeepers(&governance, &set, 2)
        .await
        .unwrap();

    // A pRuntime registers with the members' endorsements: listed with what its quote
    // proved.
    let worker = || {
        let key = chain::random_key();
        let reg = chain::sim::registration(&sim, &worker_enclave, &key, vec![4; 65], id).unwrap();
        (key, reg)
    };
    let account_for = |key: &p256::ecdsa::SigningKey, signer| EvmAccount {
        signer,
        identity: Some(key.clone()),
    };
    let (key, reg) = worker();
    let account = account_for(&key, funded(url).await.unwrap());
    remote.register_worker(&account, &reg).await.unwrap();
    let listed = registry
        .worker(&public_key(key.verifying_key()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(listed.measurement, chain::sim::tenant(&worker_enclave));

    // A quote altered in transit: every member refuses it, nothing is registered.
    let (key, mut bad) = worker();
    bad.evidence.quote[100] ^= 1; // in the signed report body
    let account = account_for(&key, funded(url).await.unwrap());
    let refused = remote.register_worker(&account, &bad).await.unwrap_err();
    assert!(
        matches!(
            refused,
            RegistryError::Rule(RuleError::NotEndorsed { have: 0, need: 2 })
        ),
        "{refused}"
    );
    assert!(
        registry
            .worker(&public_key(key.verifying_key()))
            .await
            .unwrap()
            .is_none()
    );

    // The endorser checks the proposed evidence time against its own clock.
    let mut client = pb::gatekeeper_client::GatekeeperClient::connect(nodes[0].url.clone())
        .await
        .unwrap();
    let skewed = client
        .endorse(pb::EndorseRequest {
            registration: reg.to_bytes(),
            evidence_time: phalanx_types::unix_now() - 3600,
        })
        .await
        .unwrap_err();
    assert_eq!(skewed.code(), tonic::Code::PermissionDenied, "{skewed:?}");
    assert!(skewed.message().contains("evidence time"), "{skewed:?}");
    let garbage = client
        .endorse(pb::EndorseRequest {
            registration: vec![1, 2, 3],
            evidence_time: phalanx_types::unix_now(),
        })
        .await
        .unwrap_err();
    assert_eq!(garbage.code(), tonic::Code::InvalidArgument, "{garbage:?}");

    // A node outside the set signs nothing.
    let stranger = serve_node(&dir.path().join("stranger"), 4, &registry, url, &sim).await;
    let outside = pb::gatekeeper_client::GatekeeperClient::connect(stranger.url.clone())
        .await
        .unwrap()
        .endorse(pb::EndorseRequest {
            registration: reg.to_bytes(),
            evidence_time: phalanx_types::unix_now(),
        })
        .await
        .unwrap_err();
    assert_eq!(outside.code(), tonic::Code::FailedPrecondition);
    assert!(outside.message().contains("not a member in standing"));

    // One member down: two of three still register a worker.
    let down = nodes.pop().unwrap();
    down.stop.send(()).unwrap();
    let (key, reg) = worker();
    let account = account_for(&key, funded(url).await.unwrap());
    remote.register_worker(&account, &reg).await.unwrap();
    // Two down: one endorsement is not enough.
    let down = nodes.pop().unwrap();
    down.stop.send(()).unwrap();
    let (key, reg) = worker();
    let account = account_for(&key, funded(url).await.unwrap());
    let refused = remote.register_worker(&account, &reg).await.unwrap_err();
    assert!(
        matches!(
            refused,
            RegistryError::Rule(RuleError::NotEndorsed { have: 1, need: 2 })
        ),
        "{refused}"
    );
}

/// The first registration on a fresh registry, as a node and governance do it: the node
/// waits on [`GovernanceApproval`]; governance runs `phalanx chain tx ...
/// approve-registration FILE --trust-root ROOT` on the file it wrote. A file that was
/// altered is refused by the evidence check.
async fn governs_the_first_registration(
    rpc: &str,
    registry: &EvmRegistry,
    governance: &EvmAccount,
    sim: &phalanx_dcap_sim::SimTee,
    account: &EvmAccount,
    reg: &chain::types::Registration,
    dir: &std::path::Path,
) {
    use chain::evm::GovernanceApproval;
    let pending = dir.join("registration.pending");
    let approval = GovernanceApproval::new(
        Arc::new(chain::evidence::Roots::new(chain::sim::evidence_rule(sim)).unwrap()),
        pending.clone(),
        std::time::Duration::from_secs(60),
    );
    let waiting = registry
        .clone()
        .with_endorser(Arc::new(RemoteEndorser::new(Some(Arc::new(approval)))));
    let (account, reg) = (account.clone(), reg.clone());
    let node = tokio::spawn(async move { waiting.register_worker(&account, &reg).await });
    while !pending.exists() {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let root = dir.join("sim-root.pem");
    std::fs::write(&root, sim.root_pem()).unwrap();
    let key = dir.join("governance.key");
    phalanx_types::secret_file::create(&key, hex::encode(governance.signer.to_bytes()).as_bytes())
        .unwrap();
    let url = format!("evm+{rpc}#{}", registry.address());
    let approve = |file: std::path::PathBuf| {
        phalanx_cli::chain_cmd::tx(
            &url,
            None,
            &key,
            phalanx_cli::ChainChange::ApproveRegistration {
                file,
                trust_root: Some(root.clone()),
                dry_run: false,
            },
        )
    };
    // Altered: refused, nothing approved.
    let mut altered =
        chain::endorse::Pending::from_bytes(&std::fs::read(&pending).unwrap()).unwrap();
    altered.registration.evidence.quote[100] ^= 1;
    let bad = dir.join("altered.pending");
    std::fs::write(&bad, altered.to_bytes()).unwrap();
    assert!(approve(bad).await.is_err());
    // Written two hours ago, or an hour ahead: refused (collateral is checked now, and
    // a pending registration is approved within the hour its node waits).
    for shift in [-7200, 3600] {
        let mut moved =
            chain::endorse::Pending::from_bytes(&std::fs::read(&pending).unwrap()).unwrap();
        moved.evidence_time += shift;
        let file = dir.join(format!("moved{shift}.pending"));
        std::fs::write(&file, moved.to_bytes()).unwrap();
        let refused = format!("{:#}", approve(file).await.unwrap_err());
        assert!(refused.contains("evidence time"), "{refused}");
    }
    // A dry run checks and approves nothing: the node still waits.
    phalanx_cli::chain_cmd::tx(
        &url,
        None,
        &key,
        phalanx_cli::ChainChange::ApproveRegistration {
            file: pending.clone(),
            trust_root: Some(root.clone()),
            dry_run: true,
        },
    )
    .await
    .unwrap();
    assert!(!node.is_finished());
    approve(pending.clone()).await.unwrap();
    node.await.unwrap().unwrap();
    assert!(
        !pending.exists(),
        "the pending file is removed once approved"
    );
}

/// How a lying gatekeeper answers `Endorse`.
#[derive(Clone, Copy, Debug)]
enum Lie {
    /// Its own valid signature, under another member's index.
    OtherIndex,
    /// The true record's fields, signed over something else.
    BadSignature,
    /// A record of its own (another TCB status), validly signed.
    OtherRecord,
}

/// A gatekeeper whose `Endorse` lies as `lie` says (the rest of its API is absent).
struct Liar {
    lie: Lie,
    index: u16,
    key: p256::ecdsa::SigningKey,
    registry_id: [u8; 32],
    roots: Arc<chain::evidence::Roots>,
}

#[tonic::async_trait]
impl pb::gatekeeper_server::Gatekeeper for Liar {
    async fn release(
        &self,
        _: tonic::Request<pb::ReleaseRequest>,
    ) -> Result<tonic::Response<pb::ReleaseResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("liar"))
    }
    async fn status(
        &self,
        _: tonic::Request<pb::StatusRequest>,
    ) -> Result<tonic::Response<pb::StatusResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("liar"))
    }
    async fn get_tree_head(
        &self,
        _: tonic::Request<pb::TreeHeadRequest>,
    ) -> Result<tonic::Response<pb::TreeHead>, tonic::Status> {
        Err(tonic::Status::unimplemented("liar"))
    }
    async fn get_consistency_proof(
        &self,
        _: tonic::Request<pb::ConsistencyRequest>,
    ) -> Result<tonic::Response<pb::ConsistencyResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("liar"))
    }
    async fn endorse(
        &self,
        request: tonic::Request<pb::EndorseRequest>,
    ) -> Result<tonic::Response<pb::EndorseResponse>, tonic::Status> {
        let r = request.into_inner();
        let reg = chain::types::Registration::from_bytes(&r.registration).unwrap();
        let rule = self.roots.rule.clone();
        let now = phalanx_types::unix_now();
        let honest = chain::endorse::check(
            &self.roots.verifier,
            &rule,
            &self.registry_id,
            &reg,
            r.evidence_time,
            now,
        )
        .unwrap();
        let sign = |record: &chain::endorse::Record| {
            chain::endorse::sign(&self.key, self.index, &self.registry_id, record)
        };
        let (record, mut e) = match self.lie {
            Lie::OtherIndex => (honest.clone(), sign(&honest)),
            Lie::BadSignature => {
                let other = chain::endorse::Record {
                    evidence_time: honest.evidence_time + 1,
                    ..honest.clone()
                };
                (honest, sign(&other))
            }
            Lie::OtherRecord => {
                let other = chain::endorse::Record {
                    tcb_status: (1..16)
                        .filter_map(chain::types::status_from_code)
                        .find(|t| *t != honest.tcb_status)
                        .unwrap(),
                    ..honest
                };
                let e = sign(&other);
                (other, e)
            }
        };
        if let Lie::OtherIndex = self.lie {
            e.index = 1;
        }
        Ok(tonic::Response::new(pb::EndorseResponse {
            index: u32::from(e.index),
            signature: e.signature.to_vec(),
            measurement: record.measurement,
            quote_hash: record.quote_hash.to_vec(),
            tcb_status: u32::from(chain::types::status_code(record.tcb_status)),
        }))
    }
}

/// Three members in standing lie (another member's index, a signature over something
/// else, a record of their own) and two are honest: with threshold 2 the registrant
/// sends the honest pair's endorsements; with threshold 3 it is refused, counting the
/// largest honest group, and nothing is registered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lying_gatekeepers_endorse_nothing() {
    let Some(World {
        anvil,
        sim,
        gatekeeper_enclave,
        worker_enclave,
        governance,
        registry,
        id,
    }) = world().await
    else {
        return;
    };
    let url = anvil.url();
    let roots = Arc::new(chain::evidence::Roots::new(chain::sim::evidence_rule(&sim)).unwrap());
    let bootstrap = registry.clone().with_endorser(Arc::new(
        KeyEndorser::new(
            chain::sim::evidence_rule(&sim),
            Vec::new(),
            Some(governance.clone()),
        )
        .unwrap(),
    ));
    let dir = tempfile::tempdir().unwrap();
    let mut set = Vec::new();
    for i in 1..=5u16 {
        let (url_i, key) = if i <= 2 {
            let node = serve_node(&dir.path().join(format!("g{i}")), i, &registry, url, &sim).await;
            std::mem::forget(node.stop);
            (node.url, node.identity)
        } else {
            let key = chain::random_key();
            let lie = [Lie::OtherIndex, Lie::BadSignature, Lie::OtherRecord][usize::from(i - 3)];
            let liar = Liar {
                lie,
                index: i,
                key: key.clone(),
                registry_id: id,
                roots: roots.clone(),
            };
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let at = format!("http://{}", listener.local_addr().unwrap());
            tokio::spawn(
                tonic::transport::Server::builder()
                    .add_service(pb::gatekeeper_server::GatekeeperServer::new(liar))
                    .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
            );
            (at, key)
        };
        let account = chain::evm::identity_account(&key).unwrap();
        chain::evm::fund(url, account.signer.address())
            .await
            .unwrap();
        let reg =
            chain::sim::registration(&sim, &gatekeeper_enclave, &key, Vec::new(), id).unwrap();
        bootstrap.register_worker(&account, &reg).await.unwrap();
        set.push(Gatekeeper {
            index: i,
            identity_key: public_key(key.verifying_key()),
            url: url_i,
            peer_url: format!("https://g{i}"),
        });
    }
    let remote = registry
        .clone()
        .with_endorser(Arc::new(RemoteEndorser::new(None)));
    let register = |threshold: u16| {
        let (registry, governance, remote, set) = (&registry, &governance, &remote, &set);
        let sim = &sim;
        let worker_enclave = &worker_enclave;
        async move {
            registry
                .set_gatekeepers(governance, set, threshold)
                .await
                .unwrap();
            let key = chain::random_key();
            let reg = chain::sim::registration(sim, worker_enclave, &key, vec![4; 65], id).unwrap();
            let account = EvmAccount {
                signer: funded(url).await.unwrap(),
                identity: Some(key.clone()),
            };
            let result = remote.register_worker(&account, &reg).await;
            let listed = registry
                .worker(&public_key(key.verifying_key()))
                .await
                .unwrap()
                .is_some();
            (result, listed)
        }
    };
    let (ok, listed) = register(2).await;
    ok.unwrap();
    assert!(listed);
    let (refused, listed) = register(3).await;
    assert!(
        matches!(
            refused,
            Err(RegistryError::Rule(RuleError::NotEndorsed {
                have: 2,
                need: 3
            }))
        ),
        "{refused:?}"
    );
    assert!(!listed);
}
