//! Every example configuration and policy in `config/` parses.
#![cfg(feature = "server")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use attestation_service::config::{Config, OnRefreshFailure, RootKind};
use attestation_service::policy::Policy;
use std::path::PathBuf;

fn files(dir: &str) -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut v: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    v.sort();
    v
}

#[test]
fn every_example_config_parses() {
    let configs = files("config");
    assert_eq!(configs.len(), 3, "{configs:?}");
    for path in &configs {
        let c = Config::load(Some(path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let name = path.file_stem().unwrap().to_str().unwrap();
        match name {
            "dev" => {
                assert_eq!(c.trust.root, RootKind::Sim);
                // Relative paths are taken relative to the file.
                assert!(c.policies[0].starts_with(path.parent().unwrap()));
                assert!(c.policies[0].exists());
            }
            "production-pccs" => {
                assert_eq!(c.trust.root, RootKind::Intel);
                assert!(c.collateral.pccs_url.is_some());
            }
            "airgapped" => {
                assert_eq!(
                    c.collateral.on_refresh_failure,
                    OnRefreshFailure::ServeStale
                )
            }
            other => panic!("no expectations for {other}"),
        }
    }
}

#[test]
fn every_example_policy_parses() {
    let policies = files("config/policies");
    assert!(!policies.is_empty());
    for path in policies {
        Policy::from_toml(&std::fs::read_to_string(&path).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
}
