//! The names of a contract, computed in one place: its code hash, its id, the tenant its
//! keys are derived under, and a caller's id. The registry, the worker and a verifier
//! all use these.

use crate::TenantId;
use crate::tag;
use sha2::{Digest, Sha256};

/// `SHA-256(CONTRACT_CODE ‖ wasm)`: the code hash the registry lists.
pub fn code_hash(wasm: &[u8]) -> [u8; 32] {
    Sha256::new()
        .chain_update(tag::CONTRACT_CODE)
        .chain_update(wasm)
        .finalize()
        .into()
}

/// `SHA-256(CONTRACT_ID ‖ registry ‖ len ‖ deployer ‖ code hash ‖ salt)`: a contract's
/// id. `registry` is the chain id of the registry it is deployed on (a committee that
/// serves two registries derives different keys for the "same" contract on each, and a
/// checkpoint of one never opens as the other's); the deployer is an account key (SEC1)
/// or address, length-prefixed; the id ties every key derived for the contract to its
/// registry and its code.
pub fn contract_id(
    registry: &[u8; 32],
    deployer: &[u8],
    code_hash: &[u8; 32],
    salt: &[u8; 32],
) -> [u8; 32] {
    Sha256::new()
        .chain_update(tag::CONTRACT_ID)
        .chain_update(registry)
        .chain_update((deployer.len() as u32).to_be_bytes())
        .chain_update(deployer)
        .chain_update(code_hash)
        .chain_update(salt)
        .finalize()
        .into()
}

/// The tenant a contract's keys are derived under.
pub fn contract_tenant(contract: &[u8; 32]) -> TenantId {
    TenantId::new(
        Sha256::new()
            .chain_update(tag::CONTRACT_TENANT)
            .chain_update(contract)
            .finalize()
            .into(),
    )
}

/// The caller id a contract sees: `SHA-256(CALLER ‖ public key)` of the account that
/// signed the command or query.
pub fn caller_id(public_key: &[u8]) -> [u8; 32] {
    Sha256::new()
        .chain_update(tag::CALLER)
        .chain_update(public_key)
        .finalize()
        .into()
}

/// The caller id a component sees when another module of the same contract calls it
/// (`SHA-256(COMPONENT_CALLER ‖ code hash)` of the calling module): never a user's
/// ([`caller_id`] hashes under another tag), and the same on every worker.
pub fn component_caller_id(code_hash: &[u8; 32]) -> [u8; 32] {
    Sha256::new()
        .chain_update(tag::COMPONENT_CALLER)
        .chain_update(code_hash)
        .finalize()
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_input_changes_the_id() {
        let r = [9; 32];
        let base = contract_id(&r, b"deployer", &[1; 32], &[2; 32]);
        assert_ne!(base, contract_id(&r, b"deployes", &[1; 32], &[2; 32]));
        assert_ne!(base, contract_id(&r, b"deployer", &[3; 32], &[2; 32]));
        assert_ne!(base, contract_id(&r, b"deployer", &[1; 32], &[3; 32]));
        // The same deployment on another registry is another contract.
        assert_ne!(base, contract_id(&[8; 32], b"deployer", &[1; 32], &[2; 32]));
        // The length prefix keeps deployer and code hash apart.
        assert_ne!(
            contract_id(&r, b"ab", &[1; 32], &[2; 32]),
            contract_id(&r, b"a", &[1; 32], &[2; 32])
        );
        assert_ne!(contract_tenant(&base).as_bytes(), &base);
        assert_ne!(code_hash(b"x"), code_hash(b"y"));
    }
}
