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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gatekeepers_endorse_registrations_over_the_network() {
    let Some(anvil) = Anvil::start(None).await.unwrap() else {
        assert!(
            std::env::var_os("PHALANX_REQUIRE_ANVIL").is_none(),
            "PHALANX_REQUIRE_ANVIL is set but no anvil is installed (set ANVIL)"
        );
        return;
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
    approve(pending.clone()).await.unwrap();
    node.await.unwrap().unwrap();
    assert!(
        !pending.exists(),
        "the pending file is removed once approved"
    );
}
