//! The `phalanx` binary, run as a user would.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::PathBuf;
use std::process::Command;

fn dcap() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../attestation-service/dcap/testdata/dcap")
}

fn phalanx(args: &[&str]) -> (i32, serde_json::Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_phalanx"))
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let json = serde_json::from_str(&stdout).unwrap_or(serde_json::Value::Null);
    (
        out.status.code().unwrap(),
        json,
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn p(rel: &str) -> String {
    dcap().join(rel).display().to_string()
}

#[test]
fn verifies_a_real_sgx_quote() {
    let (code, json, _) = phalanx(&[
        "quote",
        "verify",
        "--quote",
        &p("phala/sgx_quote"),
        "--collateral",
        &p("phala/sgx_quote_collateral.json"),
        "--now",
        "1750334171",
        "--json",
    ]);
    assert_eq!(code, 0, "{json}");
    assert_eq!(json["ok"], true);
    assert_eq!(json["status"], "ConfigurationAndSWHardeningNeeded");
    assert_eq!(
        json["advisory_ids"],
        serde_json::json!(["INTEL-SA-00289", "INTEL-SA-00615"])
    );
    assert_eq!(json["tee"], "sgx");
    assert!(json["mr_enclave"].as_str().unwrap().starts_with("33d8736d"));
}

#[test]
fn verifies_a_hex_tdx_quote_and_reports_rejections() {
    let (code, json, _) = phalanx(&[
        "quote",
        "verify",
        "--quote",
        &p("phala/near_quote_hex.txt"),
        "--hex",
        "--collateral",
        &p("phala/near_quote_collateral.json"),
        "--now",
        "1756802519",
    ]);
    assert_eq!(
        (code, &json["status"], &json["tee"]),
        (0, &"UpToDate".into(), &"tdx".into()),
        "{json}"
    );
    assert!(json["mr_td"].as_str().unwrap().starts_with("f06dfda6"));
    // The tenant its keys are derived under: the whole TD identity, not MRTD alone.
    let h48 = |v: &serde_json::Value| -> [u8; 48] {
        hex::decode(v.as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap()
    };
    let rtmr = json["rtmr"].as_array().unwrap();
    let identity = keyvault::tenant::TeeIdentity::Tdx {
        mr_td: h48(&json["mr_td"]),
        rtmr: [h48(&rtmr[0]), h48(&rtmr[1]), h48(&rtmr[2]), h48(&rtmr[3])],
        mr_config_id: h48(&json["mr_config_id"]),
        mr_owner: h48(&json["mr_owner"]),
        mr_owner_config: h48(&json["mr_owner_config"]),
        td_attributes: hex::decode(json["td_attributes"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap(),
        xfam: hex::decode(json["xfam"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap(),
    };
    assert_eq!(json["tenant"], identity.tenant_id().to_string());

    let (code, json, _) = phalanx(&[
        "quote",
        "verify",
        "--quote",
        &p("phala/tdx_quote_outdated"),
        "--collateral",
        &p("phala/tdx_quote_outdated_collateral.json"),
        "--now",
        "1771415931",
    ]);
    assert_eq!(code, 1);
    assert_eq!(json["ok"], false);
    assert_eq!(json["error"]["code"], "tcb_level_not_found");
    assert_eq!(json["error"]["step"], "tcb_level");
}

#[test]
fn takes_raw_pccs_pieces() {
    let (code, json, _) = phalanx(&[
        "quote",
        "verify",
        "--quote",
        &p("google/tdx_prod_quote_SPR_E4.dat"),
        "--tcb-info",
        &p("google/sample_tcbInfo_response"),
        "--tcb-info-chain",
        &p("google/tcbInfoIssuerChain.pem"),
        "--qe-identity",
        &p("google/sample_qeIdentity_response"),
        "--qe-identity-chain",
        &p("google/qeIdentityIssuerChain.pem"),
        "--pck-crl",
        &p("google/pckcrl"),
        "--pck-crl-chain",
        &p("google/pckCrlIssuerChain.pem"),
        "--root-crl",
        &p("google/rootcrl.der"),
        "--now",
        "1688173200",
    ]);
    assert_eq!(code, 1);
    assert_eq!(json["error"]["code"], "tcb_level_not_found");
}

#[test]
fn unusable_arguments_exit_2() {
    let (code, _, err) = phalanx(&[
        "quote",
        "verify",
        "--quote",
        "/nonexistent",
        "--collateral",
        "/nonexistent",
        "--now",
        "1",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("/nonexistent"));
    let (code, _, _) = phalanx(&["quote", "verify", "--quote", &p("phala/sgx_quote")]);
    assert_eq!(code, 2);
    let (code, _, _) = phalanx(&[
        "quote",
        "verify",
        "--quote",
        &p("phala/sgx_quote"),
        "--hex",
        "--collateral",
        &p("phala/sgx_quote_collateral.json"),
        "--now",
        "1",
    ]);
    assert_eq!(code, 2);
}

#[test]
fn simulated_quotes_verify_only_under_the_simulated_root() {
    let dir = std::env::temp_dir().join(format!("phalanx-cli-sim-{}", std::process::id()));
    let d = dir.display().to_string();
    let _ = std::fs::remove_dir_all(&dir);
    let (code, _, err) = phalanx(&["sim", "init", "--dir", &d, "--valid-from", "1760000000"]);
    assert_eq!(code, 0, "{err}");
    // L5: the simulated PKI's private keys are readable by their owner only, and a
    // second init does not replace them.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("sim.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "sim.json mode {mode:o}");
    }
    let (code, _, _) = phalanx(&["sim", "init", "--dir", &d, "--valid-from", "1760000000"]);
    assert_ne!(code, 0);
    for (tee, col) in [
        ("sgx", "collateral-sgx.json"),
        ("tdx", "collateral-tdx.json"),
    ] {
        let q = dir.join(format!("{tee}.quote")).display().to_string();
        let (code, _, err) = phalanx(&[
            "sim",
            "quote",
            "--dir",
            &d,
            "--tee",
            tee,
            "--measurement",
            "abcd",
            "--report-data",
            "0102",
            "--out",
            &q,
        ]);
        assert_eq!(code, 0, "{err}");
        let col = dir.join(col).display().to_string();
        let root = dir.join("root.pem").display().to_string();
        let (code, json, _) = phalanx(&[
            "quote",
            "verify",
            "--quote",
            &q,
            "--collateral",
            &col,
            "--now",
            "1760003600",
            "--trust-root",
            &root,
        ]);
        assert_eq!((code, &json["status"]), (0, &"UpToDate".into()), "{json}");
        assert!(json["report_data"].as_str().unwrap().starts_with("0102000"));
        let (code, json, _) = phalanx(&[
            "quote",
            "verify",
            "--quote",
            &q,
            "--collateral",
            &col,
            "--now",
            "1760003600",
        ]);
        assert_eq!(
            (code, &json["error"]["code"]),
            (1, &"untrusted_root".into()),
            "{json}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn demo_runs_the_simulated_path() {
    let out = Command::new(env!("CARGO_BIN_EXE_phalanx"))
        .args(["sim", "demo"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.matches("\"ok\": true").count(), 2, "{text}");
    assert!(text.contains("untrusted_root"));
}

/// `phalanx devnet --once` twice on one directory: genesis, then a resume with the same
/// master public key, the same pRuntime (its sealed identity) and the same contracts.
#[test]
fn devnet_starts_and_resumes_the_same_cluster() {
    let dir = std::env::temp_dir().join(format!("phalanx-devnet-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let run = || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_phalanx"))
            .args(["devnet", "--once", "--dir"])
            .arg(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let first = run();
    let second = run();
    assert_eq!(
        (first["genesis"].as_bool(), second["genesis"].as_bool()),
        (Some(true), Some(false))
    );
    assert_eq!(first["master_public_key"], second["master_public_key"]);
    assert_eq!(first["pruntime_identity"], second["pruntime_identity"]);
    assert_eq!(first["examples"], second["examples"]);
    assert_eq!(first["gatekeepers"].as_array().unwrap().len(), 5);
    verify_answer_runs_as_the_devnet_prints_it(&second);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The devnet's printed `phalanx verify answer` command, run as printed: accepted (exit
/// 0, one verdict JSON); the bundle with its answer changed: refused (exit 1, naming the
/// check); not a bundle, or a bad genesis: unusable (exit 2).
fn verify_answer_runs_as_the_devnet_prints_it(summary: &serde_json::Value) {
    let command = summary["verify_command"].as_str().unwrap();
    let argv: Vec<&str> = command.split_whitespace().collect();
    assert_eq!(argv[1..3], ["verify", "answer"]);
    // The program as printed runs from here (`phalanx` on the PATH, or its path).
    let run = std::process::Command::new(argv[0])
        .args(&argv[1..])
        .output()
        .unwrap_or_else(|e| panic!("`{command}` does not run as printed: {e}"));
    assert_eq!(run.status.code(), Some(0), "{command}");
    let (code, v, err) = phalanx(&argv[1..]);
    assert_eq!(code, 0, "{v} {err}");
    assert_eq!(v["ok"], true);
    assert_eq!(v["contract"], summary["contract"]);
    assert_eq!(v["worker"], summary["pruntime_identity"]);
    assert_eq!(v["height"], summary["answer_height"]);
    assert_eq!(v["checks"].as_array().unwrap().len(), 14);

    let bundle = summary["bundle_file"].as_str().unwrap();
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(bundle).unwrap()).unwrap();
    doc["answer"]["answer"] = "AAAA".into();
    let tampered = format!("{bundle}.tampered");
    std::fs::write(&tampered, doc.to_string()).unwrap();
    let mut args = argv[1..].to_vec();
    args[2] = &tampered;
    args.push("--json");
    let (code, v, _) = phalanx(&args);
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["error"]["check"], "answer_hash");

    std::fs::write(&tampered, "not a bundle").unwrap();
    let (code, v, _) = phalanx(&args);
    assert_eq!(
        (code, v["error"]["code"].as_str()),
        (2, Some("malformed")),
        "{v}"
    );
    // Oversized (a sparse file one byte over the bound): refused before it is read.
    std::fs::File::create(&tampered)
        .unwrap()
        .set_len(phalanx_verify::MAX_INPUT as u64 + 1)
        .unwrap();
    let (code, v, _) = phalanx(&args);
    assert_eq!(code, 2, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().starts_with("over "),
        "{v}"
    );
    let mut args = argv[1..].to_vec();
    let genesis = args.iter().position(|a| *a == "--genesis").unwrap() + 1;
    args[genesis] = "zz";
    let (code, _, _) = phalanx(&args);
    assert_eq!(code, 2);
}
