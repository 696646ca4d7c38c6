//! `deploy/` cannot drift from the code: every config file there is parsed by its binary's
//! own parser, every service unit's command line by its binary's own argument parser;
//! each unit is hardened (a dedicated user, a read-only system, no new privileges, a
//! private /tmp, state only under its StateDirectory, secrets only as credentials,
//! restart on failure), its credentials are the files its config reads, and
//! `systemd-analyze verify` accepts it (when systemd-analyze is installed).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use clap::Parser as _;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn deploy() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

/// A unit file: `[section]` → key → values (repeated keys accumulate).
type Unit = BTreeMap<String, BTreeMap<String, Vec<String>>>;

fn unit(name: &str) -> Unit {
    let text = std::fs::read_to_string(deploy().join("systemd").join(name)).unwrap();
    let mut out = Unit::new();
    let mut section = String::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = s.to_owned();
            continue;
        }
        let (k, v) = line.split_once('=').expect("key=value");
        out.entry(section.clone())
            .or_default()
            .entry(k.to_owned())
            .or_default()
            .push(v.to_owned());
    }
    out
}

fn one<'a>(u: &'a Unit, key: &str) -> &'a str {
    let v = &u["Service"].get(key).unwrap_or_else(|| panic!("no {key}"));
    assert_eq!(v.len(), 1, "{key} more than once");
    &v[0]
}

/// `/etc/phalanx/<file>` as shipped in `deploy/config/<file>`.
fn shipped(path: &str) -> PathBuf {
    let rel = path
        .strip_prefix("/etc/phalanx/")
        .unwrap_or_else(|| panic!("{path} is not under /etc/phalanx"));
    let p = deploy().join("config").join(rel);
    assert!(p.is_file(), "{} is not shipped", p.display());
    p
}

/// Checks the hardening every unit has; returns (its command line, its credentials).
fn hardened(name: &str) -> (Vec<String>, BTreeMap<String, String>) {
    let u = unit(name);
    for (key, value) in [
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("DynamicUser", "yes"),
        ("Restart", "on-failure"),
        ("UMask", "0077"),
        ("StateDirectoryMode", "0700"),
        ("CapabilityBoundingSet", ""),
    ] {
        assert_eq!(one(&u, key), value, "{name}: {key}");
    }
    let user = one(&u, "User");
    assert!(user.starts_with("phalanx-") && user != "root", "{name}");
    assert_eq!(
        one(&u, "StateDirectory"),
        user,
        "{name}: its own state directory"
    );
    let credentials: BTreeMap<String, String> = u["Service"]
        .get("LoadCredential")
        .into_iter()
        .flatten()
        .map(|c| {
            let (id, path) = c.split_once(':').unwrap();
            assert!(
                path.starts_with("/etc/phalanx/credentials/"),
                "{name}: credential {id} from {path}"
            );
            (id.to_owned(), format!("/run/credentials/{name}/{id}"))
        })
        .collect();
    // No secret in the unit itself.
    let text = std::fs::read_to_string(deploy().join("systemd").join(name)).unwrap();
    for word in ["PASSWORD", "SECRET=", "TOKEN="] {
        assert!(!text.to_uppercase().contains(word), "{name}: {word}");
    }
    let argv = one(&u, "ExecStart")
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    (argv, credentials)
}

fn config_arg(argv: &[String]) -> PathBuf {
    let i = argv.iter().position(|a| a == "--config").expect("--config");
    shipped(&argv[i + 1])
}

#[test]
fn the_attestation_unit_and_its_config() {
    let (argv, credentials) = hardened("phalanx-attestation.service");
    let cli = attestation_service::cli::Cli::try_parse_from(
        std::iter::once("attestation-service".to_owned()).chain(argv[1..].iter().cloned()),
    )
    .unwrap();
    assert!(matches!(
        cli.command,
        attestation_service::cli::Command::Serve
    ));
    let path = config_arg(&argv);
    let c = attestation_service::config::Config::load(Some(&path)).unwrap();
    assert_eq!(c.data_dir, Path::new("/var/lib/phalanx-attestation"));
    assert_eq!(
        c.trust.root,
        attestation_service::config::RootKind::Intel,
        "production trusts Intel's root only"
    );
    assert_eq!(
        c.admin.token_file.as_deref().map(Path::to_str),
        Some(credentials.get("admin-token").map(String::as_str))
    );
    assert!(c.admin.token.is_none(), "no secret in the config");
    for p in &c.policies {
        let text = std::fs::read_to_string(shipped(p.to_str().unwrap())).unwrap();
        attestation_service::policy::Policy::from_toml(&text).unwrap();
    }
}

#[test]
fn the_gatekeeper_unit_and_its_config() {
    let (argv, credentials) = hardened("phalanx-gatekeeper.service");
    // gramine-sgx loads the signed manifest; the arguments are the manifest's (fixed,
    // NM6), the unit's POD_INDEX picks this node's measured config.
    assert_eq!(argv, ["/usr/bin/gramine-sgx", "keyvault"]);
    let u = unit("phalanx-gatekeeper.service");
    assert_eq!(one(&u, "WorkingDirectory"), "/usr/lib/phalanx");
    let pod = one(&u, "Environment")
        .strip_prefix("POD_INDEX=")
        .unwrap()
        .to_owned();
    let manifest =
        std::fs::read_to_string(deploy().join("gramine/keyvault.manifest.template")).unwrap();
    let line = manifest
        .lines()
        .find(|l| l.starts_with("loader.argv = "))
        .unwrap();
    let fixed: Vec<String> =
        serde_json::from_str(line.trim_start_matches("loader.argv = ")).unwrap();
    let cli = keyvault::run::Cli::try_parse_from(&fixed).unwrap();
    let path = keyvault::run::config_path(&cli.config, Some(&pod)).unwrap();
    assert_eq!(
        path,
        Path::new(&format!("/etc/phalanx/gatekeeper/gatekeeper-{pod}.toml"))
    );
    // deploy/config/gatekeeper.toml is what is installed there.
    let c = keyvault::app::NodeConfig::from_toml(
        &std::fs::read_to_string(deploy().join("config/gatekeeper.toml")).unwrap(),
    )
    .unwrap();
    assert_eq!(c.data_dir, Path::new("/var/lib/phalanx-gatekeeper"));
    assert_eq!(
        c.admin_secret_file.as_deref().and_then(Path::to_str),
        credentials.get("admin-secret").map(String::as_str)
    );
    assert_eq!(
        c.tee.as_ref().map(|t| t.backend),
        Some(phalanx_tee::Backend::SgxGramine)
    );
    assert_eq!(c.policy.trust_roots, ["intel"]);
    assert!(!c.policy.dangerous_unattested_gatekeepers);
    assert!(c.registry.is_some(), "gatekeepers follow the registry");
    // The CA is measured (a trusted file); the node's own certificate is public.
    assert!(c.tls.ca_cert.starts_with("/etc/phalanx/trusted/"));
    assert!(c.tls.cert.starts_with("/etc/phalanx/tls/"));
}

#[test]
fn the_ledger_and_pruntime_units() {
    let (argv, _) = hardened("phalanx-ledger.service");
    assert_eq!(argv[0], "/usr/local/bin/phalanx");
    phalanx_cli::Cli::try_parse_from(&argv).unwrap();
    assert!(
        argv.windows(2)
            .any(|w| w == ["--dir", "/var/lib/phalanx-ledger"])
    );

    let (argv, _) = hardened("phalanx-pruntime.service");
    let cli = pruntime::cmd::Cli::try_parse_from(&argv).unwrap();
    assert_eq!(cli.args.data_dir, Path::new("/var/lib/phalanx-pruntime"));
    assert!(matches!(cli.args.tee, pruntime::cmd::Backend::Tdx));
    assert_eq!(cli.args.gatekeeper_trust_roots, ["intel"]);
    assert!(!cli.args.dangerous_unattested_gatekeepers);
}

#[test]
fn systemd_accepts_every_unit() {
    let Ok(out) = std::process::Command::new("systemd-analyze")
        .arg("--version")
        .output()
    else {
        eprintln!("skipping: systemd-analyze is not installed");
        return;
    };
    assert!(out.status.success());
    // The binaries are not installed here: verify each unit with its ExecStart program
    // swapped for /bin/true (the command lines are checked by the parsers above).
    let dir = tempfile::tempdir().unwrap();
    let mut units = Vec::new();
    for entry in std::fs::read_dir(deploy().join("systemd")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("service") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let swapped: String = text
            .lines()
            .map(|l| match l.strip_prefix("ExecStart=") {
                Some(cmd) => format!(
                    "ExecStart=/bin/true {}",
                    cmd.split_once(' ').map_or("", |(_, rest)| rest)
                ),
                None => l.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("\n");
        let copy = dir.path().join(path.file_name().unwrap());
        std::fs::write(&copy, swapped + "\n").unwrap();
        units.push(copy);
    }
    assert_eq!(units.len(), 4);
    let out = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .args(&units)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The Kubernetes configs (`deploy/k8s/{base,overlays/dev}/config/`), each parsed by its
/// binary's parser: pod `gatekeeper-N` reads `gatekeeper-N.toml`, index N + 1, its own
/// peer URL; the base (production) trusts Intel's root with gatekeepers in SGX, the dev
/// overlay the simulated root with gatekeepers outside any TEE, said by name.
#[test]
fn the_kubernetes_configs_parse() {
    let k8s = deploy().join("k8s");
    for (dir, production) in [("base/config", true), ("overlays/dev/config", false)] {
        let dir = k8s.join(dir);
        let att = std::fs::read_to_string(dir.join("attestation.toml")).unwrap();
        let c = attestation_service::config::Config::from_toml_with_env(&att, []).unwrap();
        let expected = if production {
            attestation_service::config::RootKind::Intel
        } else {
            attestation_service::config::RootKind::Sim
        };
        assert_eq!(c.trust.root, expected);
        // Production replicas share a secret and a replay store; dev runs one replica.
        assert_eq!(c.cluster.enabled(), production);
        assert_eq!(
            c.admin.token_file.as_deref(),
            Some(Path::new("/run/secrets/phalanx/admin-token"))
        );
        for i in 0..5u16 {
            let text = std::fs::read_to_string(dir.join(format!("gatekeeper-{i}.toml"))).unwrap();
            let g = keyvault::app::NodeConfig::from_toml(&text).unwrap();
            assert_eq!(g.index, i + 1);
            assert!(g.peer_url().contains(&format!("gatekeeper-{i}.gatekeeper")));
            let backend = g.tee.as_ref().map(|t| t.backend);
            let expected = if production {
                phalanx_tee::Backend::SgxGramine
            } else {
                phalanx_tee::Backend::Sim
            };
            assert_eq!(backend, Some(expected), "{}", dir.display());
            assert!(!g.policy.dangerous_unattested_gatekeepers);
            assert_eq!(
                g.policy.trust_roots,
                [if production { "intel" } else { "sim" }]
            );
        }
    }
    let policy = std::fs::read_to_string(k8s.join("base/config/app.toml")).unwrap();
    attestation_service::policy::Policy::from_toml(&policy).unwrap();
}

/// `kubectl kustomize` of each overlay, checked by `deploy/k8s/check.py` (objects,
/// replicas, PDB = threshold, NetworkPolicy ports, no Secret in the manifests, hardened
/// containers, probes; production trusts only Intel's root and nothing dangerous).
#[test]
fn the_kubernetes_overlays_hold_their_invariants() {
    let kubectl = std::process::Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !kubectl {
        eprintln!("skipping: kubectl is not installed");
        return;
    }
    let out = std::process::Command::new("python3")
        .arg(deploy().join("k8s/check.py"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(said.matches(": ok").count(), 3, "{said}");
}

fn python(script: &str, args: &[&str]) -> String {
    let out = std::process::Command::new("python3")
        .arg(deploy().join(script))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Every Dockerfile passes the lint (`deploy/docker/lint.py`: pinned bases, named stages,
/// non-root runtime stages with a declared volume, apt hygiene, `--locked` builds, no
/// secret-looking ARG/ENV, the .dockerignore).
#[test]
fn the_dockerfiles_pass_the_lint() {
    assert!(python("docker/lint.py", &[]).contains(": ok"));
}

/// The compose topology: `deploy/compose/check.py` (services, non-root read-only
/// containers, health checks on real probes, the gatekeepers alone on the internal peer
/// network, secrets as compose secrets), then every config file parsed by its binary's
/// parser and every command line by the `phalanx` binary's own argument parser.
#[test]
fn the_compose_topology_and_its_configs() {
    assert!(python("compose/check.py", &[]).contains(": ok"));
    let commands: BTreeMap<String, Vec<String>> =
        serde_json::from_str(&python("compose/check.py", &["--commands"])).unwrap();
    let genesis = "ab".repeat(32);
    for (service, argv) in &commands {
        // Compose interpolation: `${NAME:?why}` is set by the operator.
        let argv: Vec<String> = argv
            .iter()
            .map(|a| {
                if a.starts_with("${PHALANX_GENESIS") || a.starts_with("${PHALANX_CONTRACT") {
                    genesis.clone()
                } else if a.starts_with("${PHALANX_GOVERNANCE") {
                    "02".to_owned() + &"cd".repeat(32)
                } else {
                    a.clone()
                }
            })
            .collect();
        phalanx_cli::Cli::try_parse_from(std::iter::once("phalanx".to_owned()).chain(argv))
            .unwrap_or_else(|e| panic!("{service}: {e}"));
    }
    // With compose.evm.yaml: pRuntime's command names the Solidity registry and its
    // depth, and each gatekeeper's shipped config, switched by its environment, names
    // the registry, no genesis, and the root it endorses to.
    let evm: BTreeMap<String, Vec<String>> =
        serde_json::from_str(&python("compose/check.py", &["--commands", "--evm"])).unwrap();
    let registry = format!("evm+http://chain:8545#0x{}", "ab".repeat(20));
    let argv: Vec<String> = evm["pruntime"]
        .iter()
        .map(|a| {
            if a.starts_with("${PHALANX_REGISTRY") {
                registry.clone()
            } else if a.starts_with("${PHALANX_EVM_CHAIN_ID") {
                "1".to_owned()
            } else if a.starts_with("${PHALANX_CONFIRMATIONS") {
                "64".to_owned()
            } else if a.starts_with("${PHALANX_CONTRACT") {
                genesis.clone()
            } else {
                a.clone()
            }
        })
        .collect();
    let cli = pruntime::cmd::Cli::try_parse_from(&argv).unwrap();
    assert_eq!(
        (cli.args.evm_chain_id, cli.args.confirmations),
        (Some(1), Some(64))
    );
    let dir = deploy().join("compose/config");
    for i in 1..=5u16 {
        let text = std::fs::read_to_string(dir.join(format!("gatekeeper-{i}.toml"))).unwrap();
        let env = [
            ("PHALANX_GK__registry__url", registry.as_str()),
            ("PHALANX_GK__registry__genesis", ""),
            (
                "PHALANX_GK__registry__evidence_roots",
                "[\"/etc/phalanx/sim-root.pem\"]",
            ),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let g = keyvault::app::NodeConfig::from_toml_with_env(&text, env).unwrap();
        let r = g.registry.unwrap();
        assert_eq!((r.url.as_str(), r.genesis()), (registry.as_str(), None));
        assert_eq!(r.evidence_roots, [Path::new("/etc/phalanx/sim-root.pem")]);
    }
    let att = std::fs::read_to_string(dir.join("attestation.toml")).unwrap();
    let c = attestation_service::config::Config::from_toml_with_env(&att, []).unwrap();
    assert_eq!(c.trust.root, attestation_service::config::RootKind::Sim);
    assert_eq!(
        c.trust.sim_pki_file.as_deref(),
        Some(Path::new("/run/secrets/sim-pki"))
    );
    assert_eq!(c.policies.len(), 2);
    for p in &c.policies {
        let name = p.file_name().unwrap();
        let text = std::fs::read_to_string(dir.join("policies").join(name)).unwrap();
        attestation_service::policy::Policy::from_toml(&text).unwrap();
    }
    let pruntime_tenant = phalanx_cli::devnet::pruntime_tenant([0x5e; 32]).tenant_id();
    for i in 1..=5u16 {
        let text = std::fs::read_to_string(dir.join(format!("gatekeeper-{i}.toml"))).unwrap();
        let g = keyvault::app::NodeConfig::from_toml_with_env(
            &text,
            [("PHALANX_GK__registry__genesis".to_owned(), genesis.clone())],
        )
        .unwrap();
        assert_eq!(g.index, i);
        assert_eq!(g.peer_url(), format!("https://gatekeeper-{i}:7201"));
        assert_eq!(
            g.registry.as_ref().unwrap().genesis.as_ref(),
            Some(&genesis)
        );
        let tee = g.tee.as_ref().unwrap();
        assert_eq!(tee.backend, phalanx_tee::Backend::Sim);
        assert_eq!(
            tee.mr_enclave.as_deref(),
            Some(hex::encode(phalanx_cli::devnet::GATEKEEPER_MR_ENCLAVE).as_str())
        );
        assert_eq!(g.policy.contract_runtimes, [pruntime_tenant]);
        assert!(!g.policy.dangerous_unattested_gatekeepers);
    }
}

/// The attestation policies a shape's gatekeepers attest under (`[attestation] policy`)
/// and accept workers under (`attestation_policies`), and the pRuntime's `--policy`, are
/// policies its attestation service loads: an id no file defines would refuse every
/// attestation at run time.
#[test]
fn every_named_attestation_policy_is_loaded_in_its_shape() {
    let d = deploy();
    // (attestation config, where its /etc/phalanx/policies/ files are, gatekeeper configs)
    let k8s_dev = |name: &str| {
        let own = deploy().join("k8s/overlays/dev/config").join(name);
        if own.exists() {
            own
        } else {
            deploy().join("k8s/base/config").join(name)
        }
    };
    type PolicyFile = Box<dyn Fn(&str) -> PathBuf>;
    let shapes: Vec<(&str, PathBuf, PolicyFile, Vec<PathBuf>)> = vec![
        (
            "systemd",
            d.join("config/attestation.toml"),
            Box::new(|n: &str| deploy().join("config/policies").join(n)),
            vec![d.join("config/gatekeeper.toml")],
        ),
        (
            "k8s production",
            d.join("k8s/base/config/attestation.toml"),
            Box::new(|n: &str| deploy().join("k8s/base/config").join(n)),
            (0..5)
                .map(|i| d.join(format!("k8s/base/config/gatekeeper-{i}.toml")))
                .collect(),
        ),
        (
            "k8s dev",
            k8s_dev("attestation.toml"),
            Box::new(k8s_dev),
            (0..5)
                .map(|i| d.join(format!("k8s/overlays/dev/config/gatekeeper-{i}.toml")))
                .collect(),
        ),
        (
            "compose",
            d.join("compose/config/attestation.toml"),
            Box::new(|n: &str| deploy().join("compose/config/policies").join(n)),
            (1..=5)
                .map(|i| d.join(format!("compose/config/gatekeeper-{i}.toml")))
                .collect(),
        ),
    ];
    for (shape, att, policy_file, gatekeepers) in shapes {
        let text = std::fs::read_to_string(&att).unwrap();
        let c = attestation_service::config::Config::from_toml_with_env(&text, []).unwrap();
        let loaded: Vec<String> = c
            .policies
            .iter()
            .map(|p| {
                let name = p.strip_prefix("/etc/phalanx/policies").unwrap();
                let text = std::fs::read_to_string(policy_file(name.to_str().unwrap()))
                    .unwrap_or_else(|e| panic!("{shape}: {}: {e}", p.display()));
                attestation_service::policy::Policy::from_toml(&text)
                    .unwrap()
                    .id
            })
            .collect();
        let mut named = vec!["app".to_owned()]; // every shape's pRuntime: --policy app
        for g in gatekeepers {
            let g =
                keyvault::app::NodeConfig::from_toml(&std::fs::read_to_string(g).unwrap()).unwrap();
            named.extend(g.attestation.policy.clone());
            named.extend(g.policy.attestation_policies.clone());
        }
        for id in named {
            assert!(
                loaded.contains(&id),
                "{shape}: policy {id:?} is named but not loaded ({loaded:?})"
            );
        }
    }
}

/// The production pRuntime pod's initdata document is one the worker reads: its trust
/// configuration trusts Intel's root, and the MRCONFIGID it expects is the document's
/// SHA-384 (what Kata binds; `deploy/k8s/initdata.py` prints the same).
#[test]
fn the_pruntime_initdata_document_is_the_workers() {
    let doc = std::fs::read(deploy().join("k8s/base/config/pruntime-initdata.toml")).unwrap();
    let i = pruntime::initdata::InitData::parse(&doc).unwrap();
    assert_eq!(i.gatekeeper_trust_roots, ["intel"]);
    assert_eq!(i.policy, "app");
    assert_eq!(
        i.mr_config_id.as_slice(),
        <sha2::Sha384 as sha2::Digest>::digest(&doc).as_slice()
    );
}

/// The EVM overlay's documents are the binaries' own: pRuntime's initdata pins a
/// Solidity registry with a depth (and its `--registry-url` must name that address), and
/// each gatekeeper's config names the same registry and no genesis.
#[test]
fn the_evm_overlay_names_one_registry() {
    let dir = deploy().join("k8s/overlays/evm/config");
    let doc = std::fs::read(dir.join("pruntime-initdata.toml")).unwrap();
    let i = pruntime::initdata::InitData::parse(&doc).unwrap();
    let pin = i.evm.expect("the initdata pins a Solidity registry");
    assert!(pin.confirmations >= 1);
    assert_eq!(
        i.genesis,
        chain::evm_proof::registry_id(pin.chain_id, &pin.address)
    );
    for n in 0..5u16 {
        let text = std::fs::read_to_string(dir.join(format!("gatekeeper-{n}.toml"))).unwrap();
        let g = keyvault::app::NodeConfig::from_toml(&text).unwrap();
        let r = g.registry.unwrap();
        assert!(r.genesis().is_none());
        match r.url.parse::<chain::registry_url::RegistryUrl>().unwrap() {
            chain::registry_url::RegistryUrl::Evm { address, .. } => {
                assert_eq!(address, pin.address)
            }
            other => panic!("gatekeeper {n}: {other:?}"),
        }
    }
}

/// The systemd drop-in that moves pRuntime to a Solidity registry resets `ExecStart`
/// and gives one the worker's own parser takes as an EVM configuration.
#[test]
fn the_pruntime_unit_moves_to_an_evm_registry_by_a_drop_in() {
    let path = deploy().join("systemd/evm/phalanx-pruntime.service.d/registry.conf");
    let text = std::fs::read_to_string(path).unwrap();
    let starts: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("ExecStart="))
        .collect();
    assert_eq!(
        starts.first(),
        Some(&""),
        "the drop-in resets ExecStart first"
    );
    let argv: Vec<String> = starts[1]
        .split_whitespace()
        .map(|a| match a {
            "${PHALANX_REGISTRY}" => format!("evm+http://node:8545#0x{}", "ab".repeat(20)),
            "${PHALANX_EVM_CHAIN_ID}" => "1".to_owned(),
            "${PHALANX_CONFIRMATIONS}" => "64".to_owned(),
            "${PHALANX_CONTRACT}" => "cd".repeat(32),
            other => other.to_owned(),
        })
        .collect();
    let cli = pruntime::cmd::Cli::try_parse_from(&argv).unwrap();
    assert!(cli.args.registry_url.starts_with("evm+http://"));
    assert_eq!(
        (cli.args.evm_chain_id, cli.args.confirmations),
        (Some(1), Some(64))
    );
    assert!(cli.args.genesis.is_none());
}
