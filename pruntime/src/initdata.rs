//! A TD's configuration from Confidential Containers' *initdata* (the CoCo "Init-Data"
//! document: `version = "0.1.0"`, `algorithm = "sha256" | "sha384"`, and a `[data]`
//! table of files). Kata binds the document's digest into the TD at launch as MRCONFIGID
//! (a SHA-256 digest padded with zeros to 48 bytes, a SHA-384 digest as is), so the pod's
//! configuration is part of its measured identity; the worker reads the same document
//! (the pod mounts it) and takes its trust configuration from the entry `phalanx.toml`:
//!
//! ```toml
//! genesis = "<64 hex: the registry's genesis>"
//! policy = "app"                       # the attestation policy
//! gatekeeper_trust_roots = ["intel"]
//! gatekeeper_policies = ["gatekeeper"] # optional; this is the default
//! ```
//!
//! or, for a Solidity registry on an EVM chain, instead of `genesis`, the registry as
//! verifiers pin it and the confirmation depth (the registry URL's address must be the
//! pinned one):
//!
//! ```toml
//! evm_registry = "1:0x<40 hex: the contract's address>"
//! confirmations = 64
//! ```
//!
//! The worker then checks its own quote's MRCONFIGID against the document's digest
//! (`WorkerConfig::mr_config_id`), exactly as for a configuration bound directly: a host
//! that hands the worker another document than the one the TD was launched with is
//! refused (`ConfigNotBound`). The document's other entries (the Kata agent's policy,
//! attestation-agent configs) are covered by the same digest and ignored here.

use sha2::Digest as _;

/// Largest initdata document read (CoCo's are a few KiB).
pub const MAX_INITDATA: usize = 256 * 1024;

/// The trust configuration an initdata document carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitData {
    /// The registry's pin: the ledger's genesis, or the Solidity registry's id.
    pub genesis: [u8; 32],
    /// A Solidity registry: its chain id and address, and the confirmation depth.
    pub evm: Option<EvmPin>,
    /// The attestation policy.
    pub policy: String,
    /// The roots gatekeepers' evidence may chain to.
    pub gatekeeper_trust_roots: Vec<String>,
    /// The attestation policies gatekeepers' tokens may name.
    pub gatekeeper_policies: Vec<String>,
    /// The MRCONFIGID a TD launched with this document has.
    pub mr_config_id: [u8; 48],
}

/// A Solidity registry as an initdata document pins it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EvmPin {
    /// The chain's id.
    pub chain_id: u64,
    /// The registry contract's address.
    pub address: [u8; 20],
    /// The worker's confirmation depth.
    pub confirmations: u64,
}

/// Why a document is refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InitDataError {
    /// Not a document this worker reads (named).
    #[error("initdata: {0}")]
    Malformed(String),
}

fn bad(what: impl Into<String>) -> InitDataError {
    InitDataError::Malformed(what.into())
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Phalanx {
    #[serde(default)]
    genesis: Option<String>,
    #[serde(default)]
    evm_registry: Option<String>,
    #[serde(default)]
    confirmations: Option<u64>,
    policy: String,
    gatekeeper_trust_roots: Vec<String>,
    #[serde(default = "gatekeeper_policy")]
    gatekeeper_policies: Vec<String>,
}

fn gatekeeper_policy() -> Vec<String> {
    vec!["gatekeeper".into()]
}

impl InitData {
    /// Parses `doc` (the document's bytes exactly as the TD was launched with them).
    pub fn parse(doc: &[u8]) -> Result<Self, InitDataError> {
        if doc.len() > MAX_INITDATA {
            return Err(bad(format!("larger than {MAX_INITDATA} bytes")));
        }
        let text = std::str::from_utf8(doc).map_err(|_| bad("not UTF-8"))?;
        let table: toml::Table = toml::from_str(text).map_err(|e| bad(e.to_string()))?;
        let field = |k: &str| table.get(k).and_then(toml::Value::as_str);
        if field("version") != Some("0.1.0") {
            return Err(bad("version must be \"0.1.0\""));
        }
        let mut mr_config_id = [0u8; 48];
        match field("algorithm") {
            Some("sha256") => {
                mr_config_id[..32].copy_from_slice(&sha2::Sha256::digest(doc));
            }
            Some("sha384") => mr_config_id.copy_from_slice(&sha2::Sha384::digest(doc)),
            other => {
                return Err(bad(format!(
                    "algorithm {other:?}: sha256 or sha384 (a TD's MRCONFIGID holds 48 bytes)"
                )));
            }
        }
        let entry = table
            .get("data")
            .and_then(toml::Value::as_table)
            .and_then(|d| d.get("phalanx.toml"))
            .and_then(toml::Value::as_str)
            .ok_or_else(|| bad("no [data] entry \"phalanx.toml\""))?;
        let p: Phalanx = toml::from_str(entry).map_err(|e| bad(format!("phalanx.toml: {e}")))?;
        let (genesis, evm) = match (&p.genesis, &p.evm_registry, p.confirmations) {
            (Some(g), None, None) => {
                let mut genesis = [0u8; 32];
                hex::decode_to_slice(g, &mut genesis)
                    .map_err(|_| bad("phalanx.toml: genesis must be 64 hex characters"))?;
                (genesis, None)
            }
            (None, Some(pin), Some(confirmations)) => {
                let (chain_id, address) = chain::evm_proof::parse_registry_pin(pin)
                    .map_err(|e| bad(format!("phalanx.toml: evm_registry: {e}")))?;
                let id = chain::evm_proof::registry_id(chain_id, &address);
                let pin = EvmPin {
                    chain_id,
                    address,
                    confirmations,
                };
                (id, Some(pin))
            }
            _ => {
                return Err(bad(
                    "phalanx.toml: either genesis (a ledger) or evm_registry and confirmations (a Solidity registry)",
                ));
            }
        };
        if p.gatekeeper_trust_roots.is_empty() || p.gatekeeper_policies.is_empty() {
            return Err(bad(
                "phalanx.toml: gatekeeper_trust_roots and gatekeeper_policies may not be empty",
            ));
        }
        Ok(Self {
            genesis,
            evm,
            policy: p.policy,
            gatekeeper_trust_roots: p.gatekeeper_trust_roots,
            gatekeeper_policies: p.gatekeeper_policies,
            mr_config_id,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn doc(algorithm: &str, entry: &str) -> String {
        format!(
            "version = \"0.1.0\"\nalgorithm = \"{algorithm}\"\n[data]\n\"policy.rego\" = '''\npackage agent_policy\n'''\n\"phalanx.toml\" = '''\n{entry}'''\n"
        )
    }

    const ENTRY: &str = "genesis = \"7777777777777777777777777777777777777777777777777777777777777777\"\npolicy = \"app\"\ngatekeeper_trust_roots = [\"intel\"]\n";

    #[test]
    fn the_digest_is_the_documents_and_the_entry_is_the_configuration() {
        let d = doc("sha384", ENTRY);
        let i = InitData::parse(d.as_bytes()).unwrap();
        assert_eq!(i.genesis, [0x77; 32]);
        assert_eq!(i.policy, "app");
        assert_eq!(i.gatekeeper_trust_roots, ["intel"]);
        assert_eq!(
            i.mr_config_id.as_slice(),
            sha2::Sha384::digest(d.as_bytes()).as_slice()
        );
        let d = doc("sha256", ENTRY);
        let i = InitData::parse(d.as_bytes()).unwrap();
        assert_eq!(
            &i.mr_config_id[..32],
            sha2::Sha256::digest(d.as_bytes()).as_slice()
        );
        assert_eq!(i.mr_config_id[32..], [0; 16]);
        // One byte more anywhere (another agent policy too) is another MRCONFIGID.
        let other = doc("sha384", ENTRY).replace("agent_policy", "agent_policx");
        assert_ne!(
            InitData::parse(other.as_bytes()).unwrap().mr_config_id,
            InitData::parse(doc("sha384", ENTRY).as_bytes())
                .unwrap()
                .mr_config_id
        );
    }

    /// A Solidity registry is pinned by chain id and address, with its depth; mixing it
    /// with a genesis, or leaving out the depth, is refused.
    #[test]
    fn an_evm_registry_is_pinned_with_its_depth() {
        let pin = format!(
            "evm_registry = \"5:0x{}\"\nconfirmations = 12\n",
            "ab".repeat(20)
        );
        let entry = format!("{pin}policy = \"app\"\ngatekeeper_trust_roots = [\"intel\"]\n");
        let i = InitData::parse(doc("sha384", &entry).as_bytes()).unwrap();
        let evm = i.evm.unwrap();
        assert_eq!(
            (evm.chain_id, evm.address, evm.confirmations),
            (5, [0xab; 20], 12)
        );
        assert_eq!(i.genesis, chain::evm_proof::registry_id(5, &[0xab; 20]));
        for bad in [
            format!("{ENTRY}{pin}"),
            entry.replace("confirmations = 12\n", ""),
            entry.replace("5:0x", "5:0x12"),
            entry.replace("5:0x", "x:0x"),
        ] {
            assert!(
                InitData::parse(doc("sha384", &bad).as_bytes()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn malformed_documents_are_refused_by_name() {
        for (d, why) in [
            (doc("sha512", ENTRY), "algorithm"),
            (doc("md5", ENTRY), "algorithm"),
            (doc("sha384", ENTRY).replace("0.1.0", "0.2.0"), "version"),
            (
                doc(
                    "sha384",
                    "genesis = \"77\"\npolicy = \"app\"\ngatekeeper_trust_roots = [\"intel\"]\n",
                ),
                "genesis",
            ),
            (doc("sha384", "policy = \"app\"\n"), "phalanx.toml"),
            (
                doc("sha384", &format!("{ENTRY}dangerous = true\n")),
                "phalanx.toml",
            ),
            (
                doc("sha384", ENTRY).replace("\"phalanx.toml\"", "\"other.toml\""),
                "phalanx.toml",
            ),
            ("not toml = = =".to_owned(), "initdata"),
        ] {
            let e = InitData::parse(d.as_bytes()).unwrap_err().to_string();
            assert!(e.contains(why), "{e}");
        }
        assert!(InitData::parse(&vec![b' '; MAX_INITDATA + 1]).is_err());
        assert!(InitData::parse(&[0xff, 0xfe]).is_err());
    }
}
