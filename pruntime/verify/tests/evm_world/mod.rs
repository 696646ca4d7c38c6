//! An answer from a worker registered on the Solidity registry on anvil: the world the
//! EVM verification tests share (`phalanx-verify`'s and the CLI's, which includes this
//! file by path). Self-contained: it needs chain (features `sim`, `evm`), phalanx-verify,
//! tokio, p256, hex and base64.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use base64::Engine as _;
use chain::evm::{Anvil, EvmAccount, EvmRegistry, KeyEndorser, funded};
use chain::registry::{ContractRegistry, Registry};
use chain::types::{Role, public_key};
use phalanx_types::hex::Hex;
use phalanx_types::statement::{Statement, answer_hash, query_hash};
use phalanx_verify::{
    AnswerProof, Bundle, Options, Pin, TrustAnchors, WorkerEvidence, evm_registry_proof,
};

/// The contract's module (the registry does not run it).
pub const CODE: &[u8] = b"\0asm\x01\0\0\0";

impl EvmWorld {
    /// The pin: chain id, registry address, and the answer's block hash.
    pub fn pin(&self) -> (u64, [u8; 20], [u8; 32]) {
        match self.options.pin {
            Pin::Evm {
                chain_id,
                registry,
                block: Some(block),
            } => (chain_id, registry, block),
            _ => unreachable!("the world pins an EVM registry and its block"),
        }
    }
}

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

const MR: [u8; 32] = [0x42; 32];

pub struct EvmWorld {
    pub _anvil: Anvil,
    pub registry: EvmRegistry,
    pub governance: EvmAccount,
    pub bundle: Bundle,
    pub options: Options,
    pub tenant: [u8; 32],
    pub worker: p256::ecdsa::SigningKey,
    /// The simulated DCAP root the quote chains to (PEM).
    pub root_pem: String,
    /// anvil's RPC endpoint.
    pub registry_url: String,
}

/// A worker registered under governance's approval, a contract, and an answer at the
/// newest block; the bundle's registry part from the node, as `phalanx verify answer
/// --chain` fetches it.
pub async fn world() -> Option<EvmWorld> {
    // The chain's clock is now, and the simulated PKI valid from a minute before: the
    // browser's page verifies quotes at its own clock.
    let Some(anvil) = Anvil::start(None).await.unwrap() else {
        assert!(
            std::env::var_os("PHALANX_REQUIRE_ANVIL").is_none(),
            "PHALANX_REQUIRE_ANVIL is set but no anvil is installed (set ANVIL)"
        );
        eprintln!("skipping: no anvil (set ANVIL, or install @foundry-rs/anvil-linux-amd64)");
        return None;
    };
    let url = anvil.url().to_owned();
    let sim = chain::sim::platform(phalanx_types::unix_now() - 60).unwrap();
    let governance = EvmAccount::plain(funded(&url).await.unwrap());
    let endorser = KeyEndorser::new(
        chain::sim::evidence_rule(&sim),
        Vec::new(),
        Some(governance.clone()),
    )
    .unwrap();
    let registry = EvmRegistry::deploy(
        &url,
        &funded(&url).await.unwrap(),
        governance.signer.address(),
    )
    .await
    .unwrap()
    .with_endorser(std::sync::Arc::new(endorser));
    let registry_id = registry.chain_id().await.unwrap();
    let enclave = chain::sim::enclave(MR);
    let tenant = chain::sim::tenant(&enclave);
    registry
        .add_measurement(&governance, &tenant, Role::Runtime)
        .await
        .unwrap();
    let worker = chain::random_key();
    let registration =
        chain::sim::registration(&sim, &enclave, &worker, vec![4; 65], registry_id).unwrap();
    let account = EvmAccount {
        signer: funded(&url).await.unwrap(),
        identity: Some(worker.clone()),
    };
    registry
        .register_worker(&account, &registration)
        .await
        .unwrap();
    let user = EvmAccount::plain(funded(&url).await.unwrap());
    let (height, contract) = registry
        .deploy_contract(&user, CODE, [0; 32])
        .await
        .unwrap();

    // The answer, at the deploying block.
    let caller = public_key(chain::random_key().verifying_key());
    let (nonce, query, answer) = ([5u8; 16], b"read".to_vec(), b"counter = 3".to_vec());
    let statement = Statement {
        worker: hex::encode(public_key(worker.verifying_key())),
        contract: Hex(contract),
        code_hash: Hex(phalanx_types::contract::code_hash(CODE)),
        height,
        block_hash: Hex(registry.block_hash(height).await.unwrap().unwrap()),
        state_root: Hex([7; 32]),
        query_hash: Hex(query_hash(&caller, &nonce, &[0x51; 32], &query)),
        answer_hash: Hex(answer_hash(&[0xa5; 32], &answer)),
    };
    let signature: p256::ecdsa::Signature =
        p256::ecdsa::signature::Signer::sign(&worker, &statement.signed_bytes().unwrap());
    let registry_part = tokio::task::block_in_place(|| {
        let rt = tokio::runtime::Handle::current();
        evm_registry_proof(&statement, |facts| {
            rt.block_on(registry.prove(facts, Some(height)))
        })
    })
    .unwrap();
    let e = &registration.evidence;
    let bundle = Bundle::new(
        AnswerProof {
            kind: phalanx_verify::AnswerKind::Query,
            statement,
            signature: b64(&signature.to_bytes()),
            caller_key: b64(&caller),
            nonce: Hex(nonce),
            query_salt: Hex([0x51; 32]),
            query: b64(&query),
            answer_salt: Hex([0xa5; 32]),
            answer: b64(&answer),
        },
        WorkerEvidence {
            tee: "sgx".into(),
            quote: b64(&e.quote),
            nonce: b64(&e.nonce),
            runtime_data: b64(&e.runtime_data),
            collateral: String::from_utf8(e.collateral.clone()).unwrap(),
        },
        registry_part,
    );
    let mut options = Options::intel_at(Pin::Evm {
        chain_id: registry.evm_chain_id().await.unwrap(),
        registry: registry.address().0.0,
        block: registry.block_hash(height).await.unwrap(),
    });
    options.anchors = TrustAnchors::from_pem(sim.root_pem().as_bytes()).unwrap();
    options.root_name = "sim".into();
    let root_pem = sim.root_pem();
    Some(EvmWorld {
        root_pem,
        registry_url: url,
        _anvil: anvil,
        registry,
        governance,
        bundle,
        options,
        tenant,
        worker,
    })
}
