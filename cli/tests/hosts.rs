//! The compose topology across hosts, for real: every service of `deploy/compose` runs as
//! a process in a network namespace of its own (one host each: its own address, a veth
//! link to one switch, the compose service names in its `/etc/hosts`), started from the
//! files in `deploy/compose/config` with the paths the compose file mounts mapped to a
//! temporary directory, and with the command lines the compose file gives. Then:
//! genesis; a worker fetches its contract's keys; a gatekeeper host is cut off (its link
//! down) and a second worker still fetches its keys, a refresh completes without it or
//! aborts cleanly, and once back it agrees with the others; a second host is cut off
//! during a round; the attestation host cut off makes a booting worker fail with a
//! clear error, within its timeout. Every namespace, link and process is removed when
//! the test ends, failed or not.
//!
//! Needs root and `ip` (iproute2); otherwise it says so and passes, unless
//! `PHALANX_REQUIRE_NETNS=1` (set by `.ci/run` when it runs as root).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Prefix of this test's namespaces (leftovers of a killed run are removed first).
const PREFIX: &str = "phxh";
/// The hosts: compose service name and last octet of its address.
const HOSTS: &[(&str, u8)] = &[
    ("attestation", 2),
    ("ledger", 3),
    ("gatekeeper-1", 11),
    ("gatekeeper-2", 12),
    ("gatekeeper-3", 13),
    ("gatekeeper-4", 14),
    ("gatekeeper-5", 15),
    ("worker", 20),
    ("admin", 30),
];
const SUBNET: &str = "10.213.77";
const PRUNTIME_MR_ENCLAVE: &str =
    "5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e";

fn phalanx() -> &'static str {
    env!("CARGO_BIN_EXE_phalanx")
}

fn sh(args: &[&str]) -> Output {
    Command::new(args[0]).args(&args[1..]).output().unwrap()
}

fn ok(args: &[&str]) {
    let out = sh(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The hosts, their links and processes; all removed on drop.
struct Net {
    dir: PathBuf,
    procs: std::cell::RefCell<Vec<(String, Child)>>,
}

fn ns(host: &str) -> String {
    let i = HOSTS.iter().position(|(h, _)| *h == host).unwrap();
    format!("{PREFIX}{i}")
}

fn switch() -> String {
    format!("{PREFIX}sw")
}

fn remove_namespaces() {
    let list = sh(&["ip", "netns", "list"]);
    for line in String::from_utf8_lossy(&list.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or_default();
        if name.starts_with(PREFIX) {
            let _ = sh(&["ip", "netns", "del", name]);
            let _ = std::fs::remove_dir_all(Path::new("/etc/netns").join(name));
        }
    }
}

impl Net {
    fn new(dir: &Path) -> Self {
        remove_namespaces();
        let sw = switch();
        ok(&["ip", "netns", "add", &sw]);
        let net = Self {
            dir: dir.to_owned(),
            procs: std::cell::RefCell::default(),
        };
        ok(&["ip", "-n", &sw, "link", "add", "br0", "type", "bridge"]);
        ok(&["ip", "-n", &sw, "link", "set", "br0", "up"]);
        let hosts: String = std::iter::once("127.0.0.1 localhost\n".to_owned())
            .chain(HOSTS.iter().map(|(h, o)| format!("{SUBNET}.{o} {h}\n")))
            .collect();
        for (i, (host, octet)) in HOSTS.iter().enumerate() {
            let n = ns(host);
            let port = format!("s{i}");
            ok(&["ip", "netns", "add", &n]);
            ok(&[
                "ip", "-n", &sw, "link", "add", &port, "type", "veth", "peer", "name", "eth0",
                "netns", &n,
            ]);
            ok(&["ip", "-n", &sw, "link", "set", &port, "master", "br0"]);
            ok(&["ip", "-n", &sw, "link", "set", &port, "up"]);
            ok(&[
                "ip",
                "-n",
                &n,
                "addr",
                "add",
                &format!("{SUBNET}.{octet}/24"),
                "dev",
                "eth0",
            ]);
            ok(&["ip", "-n", &n, "link", "set", "eth0", "up"]);
            ok(&["ip", "-n", &n, "link", "set", "lo", "up"]);
            // `ip netns exec` bind-mounts /etc/netns/<ns>/hosts over /etc/hosts.
            let etc = Path::new("/etc/netns").join(&n);
            std::fs::create_dir_all(&etc).unwrap();
            std::fs::write(etc.join("hosts"), &hosts).unwrap();
        }
        std::fs::create_dir_all(dir.join("logs")).unwrap();
        net
    }

    fn command(&self, host: &str, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &ns(host), phalanx()])
            .args(args)
            .envs(env.iter().copied())
            .env("RUST_LOG", "info");
        c
    }

    /// Runs a `phalanx` command on `host` to completion.
    fn run(&self, host: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
        self.command(host, args, env).output().unwrap()
    }

    /// Runs it and requires success; returns stdout.
    fn must(&self, host: &str, args: &[&str], env: &[(&str, &str)]) -> String {
        let out = self.run(host, args, env);
        assert!(
            out.status.success(),
            "{host}: phalanx {args:?}: {}{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.logs()
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Starts a long-running `phalanx` service on `host`, logging to `logs/<name>.log`.
    fn spawn(&self, name: &str, host: &str, args: &[&str], env: &[(&str, &str)]) {
        let log = std::fs::File::create(self.log(name)).unwrap();
        let child = self
            .command(host, args, env)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.procs.borrow_mut().push((name.to_owned(), child));
    }

    /// Starts `program` (not `phalanx`) on `host`, logging to `logs/<name>.log`, with
    /// the test's directory as its home (anvil leaves its evicted states under
    /// `$HOME/.foundry` when killed: there they go with the directory).
    fn spawn_program(&self, name: &str, host: &str, program: &str, args: &[&str]) {
        let log = std::fs::File::create(self.log(name)).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &ns(host), program])
            .args(args)
            .env("HOME", &self.dir)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.procs.borrow_mut().push((name.to_owned(), child));
    }

    fn log(&self, name: &str) -> PathBuf {
        self.dir.join("logs").join(format!("{name}.log"))
    }

    /// The last lines of every log, for failure messages.
    fn logs(&self) -> String {
        let mut out = String::new();
        for (name, _) in self.procs.borrow().iter() {
            let text = std::fs::read_to_string(self.log(name)).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            out.push_str(&format!("--- {name} ---\n"));
            for l in &lines[lines.len().saturating_sub(12)..] {
                out.push_str(l);
                out.push('\n');
            }
        }
        out
    }

    /// Waits until `phalanx probe …` from the admin host succeeds.
    fn wait(&self, probe: &[&str], within: Duration) {
        let deadline = Instant::now() + within;
        let args: Vec<&str> = ["probe"].iter().chain(probe).copied().collect();
        while !self.run("admin", &args, &[]).status.success() {
            assert!(
                Instant::now() < deadline,
                "probe {probe:?} failed for {within:?}\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn exited(&self, name: &str) -> Option<std::process::ExitStatus> {
        let mut procs = self.procs.borrow_mut();
        let (_, c) = procs.iter_mut().find(|(n, _)| n == name).unwrap();
        c.try_wait().unwrap()
    }

    /// Cuts `host` off (its switch port down: frames to and from it are dropped).
    fn cut(&self, host: &str) {
        let i = HOSTS.iter().position(|(h, _)| *h == host).unwrap();
        ok(&[
            "ip",
            "-n",
            &switch(),
            "link",
            "set",
            &format!("s{i}"),
            "down",
        ]);
    }

    fn restore(&self, host: &str) {
        let i = HOSTS.iter().position(|(h, _)| *h == host).unwrap();
        ok(&["ip", "-n", &switch(), "link", "set", &format!("s{i}"), "up"]);
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for (_, c) in self.procs.get_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
        remove_namespaces();
    }
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// A compose config with the compose file's mounts mapped into `dir`.
fn mapped(dir: &Path, file: &str, data: &str) -> PathBuf {
    let compose = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/compose");
    let text = std::fs::read_to_string(compose.join("config").join(file)).unwrap();
    let d = |p: &str| dir.join(p).to_str().unwrap().to_owned();
    let text = text
        .replace("/run/secrets/sim-pki", &d("secrets/sim.json"))
        .replace("/run/secrets/", &(d("secrets") + "/"))
        .replace("/etc/phalanx/policies/", &(d("policies") + "/"))
        .replace("/etc/phalanx/tls/", &(d("tls") + "/"))
        .replace("/etc/phalanx/jwks.json", &d("jwks.json"))
        .replace("/var/lib/phalanx-attestation", &d(data))
        .replace("/var/lib/phalanx-gatekeeper", &d(data));
    let out = dir.join("conf").join(file);
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    std::fs::write(&out, text).unwrap();
    out
}

fn available() -> bool {
    let root = sh(&["id", "-u"]).stdout == b"0\n";
    let ip = Command::new("ip")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if root && ip {
        return true;
    }
    assert!(
        std::env::var_os("PHALANX_REQUIRE_NETNS").is_none(),
        "PHALANX_REQUIRE_NETNS is set but this is not root with iproute2"
    );
    eprintln!("SKIPPED: needs root and iproute2 (ip netns)");
    false
}

/// The netns tests share the namespace prefix: one at a time.
static NETNS: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Bootstrap (deploy/README.md, compose): the shared simulated PKI and the secrets.
fn bootstrap(net: &Net, dir: &Path) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let d = |p: &str| dir.join(p).to_str().unwrap().to_owned();
    net.must(
        "admin",
        &[
            "sim",
            "init",
            "--dir",
            &d("sim"),
            "--valid-from",
            &(now - 3600).to_string(),
        ],
        &[],
    );
    std::fs::create_dir_all(dir.join("secrets")).unwrap();
    std::fs::copy(dir.join("sim/sim.json"), dir.join("secrets/sim.json")).unwrap();
    std::fs::write(dir.join("secrets/attestation-admin"), "a".repeat(64)).unwrap();
    std::fs::write(dir.join("secrets/gatekeeper-admin"), "b".repeat(64)).unwrap();
    let policies =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/compose/config/policies");
    std::fs::create_dir_all(dir.join("policies")).unwrap();
    for p in ["gatekeeper.toml", "app.toml"] {
        std::fs::copy(policies.join(p), dir.join("policies").join(p)).unwrap();
    }
}

/// The attestation service on its host, serving; its JWKS in `dir/jwks.json`.
fn start_attestation(net: &Net, dir: &Path) {
    let att = mapped(dir, "attestation.toml", "attestation");
    net.spawn(
        "attestation",
        "attestation",
        &[
            "attestation-service",
            "--config",
            att.to_str().unwrap(),
            "serve",
        ],
        &[],
    );
    net.wait(
        &["http", "http://attestation:8080/readyz"],
        Duration::from_secs(30),
    );
    let jwks = net.must(
        "admin",
        &[
            "probe",
            "http",
            "http://attestation:8080/.well-known/jwks.json",
        ],
        &[],
    );
    std::fs::write(dir.join("jwks.json"), jwks).unwrap();
}

/// Gatekeeper `i`'s config (compose's, mapped), `init` on its host with `env`, and its
/// certificate from the cluster CA: the config's path and what `init` printed.
fn init_gatekeeper(
    net: &Net,
    dir: &Path,
    i: usize,
    env: &[(&str, &str)],
) -> (String, serde_json::Value) {
    let g = format!("gatekeeper-{i}");
    let d = |p: &str| dir.join(p).to_str().unwrap().to_owned();
    std::fs::create_dir_all(dir.join("tls")).unwrap();
    let conf = mapped(dir, &format!("{g}.toml"), &g);
    let conf = conf.to_str().unwrap().to_owned();
    let id = json(&net.must(&g, &["gatekeeper", "--config", &conf, "init"], env));
    net.must(
        "admin",
        &[
            "keyvault",
            "certify",
            "--ca-dir",
            &d("ca"),
            "--index",
            &i.to_string(),
            "--identity-key",
            id["identity_key"].as_str().unwrap(),
            "--out",
            &d(&format!("tls/{g}.pem")),
        ],
        &[],
    );
    std::fs::copy(dir.join("ca/ca.pem"), dir.join("tls/ca.pem")).unwrap();
    (conf, id)
}

#[test]
fn the_compose_topology_across_hosts_survives_cut_links() {
    if !available() {
        return;
    }
    let _one_at_a_time = NETNS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let net = Net::new(dir);
    let gatekeepers: Vec<String> = (1..=5).map(|i| format!("gatekeeper-{i}")).collect();
    let clients: Vec<String> = gatekeepers
        .iter()
        .map(|g| format!("http://{g}:7101"))
        .collect();
    let all_nodes = clients.join(",");

    bootstrap(&net, dir);
    let d = |p: &str| dir.join(p).to_str().unwrap().to_owned();
    let governance = json(&net.must(
        "admin",
        &["chain", "keygen", "--out", &d("governance.key")],
        &[],
    ))["public_key"]
        .as_str()
        .unwrap()
        .to_owned();
    net.must("admin", &["chain", "keygen", "--out", &d("user.key")], &[]);

    // The attestation service and the ledger, each on its host.
    start_attestation(&net, dir);
    net.spawn(
        "ledger",
        "ledger",
        &[
            "chain",
            "serve",
            "--dir",
            &d("ledger"),
            "--listen",
            "0.0.0.0:7300",
            "--governance",
            &governance,
            "--trust-root",
            &d("sim/root.pem"),
        ],
        &[],
    );
    net.wait(&["ledger", "http://ledger:7300"], Duration::from_secs(30));
    let ledger_log = std::fs::read_to_string(net.log("ledger")).unwrap();
    let genesis = ledger_log
        .lines()
        .find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .and_then(|v| v["genesis"].as_str().map(str::to_owned))
        .expect("the ledger prints its genesis");
    let tx = |args: &[&str]| -> serde_json::Value {
        let key = if args[0] == "deploy" {
            d("user.key")
        } else {
            d("governance.key")
        };
        let mut a = vec![
            "chain",
            "tx",
            "--url",
            "http://ledger:7300",
            "--genesis",
            &genesis,
            "--key",
            &key,
        ];
        a.extend_from_slice(args);
        json(&net.must("admin", &a, &[]))
    };
    let gk_tenant = hex::encode(phalanx_cli::devnet::gatekeeper_tenant().digest());
    let worker_tenant = hex::encode(phalanx_cli::devnet::pruntime_tenant([0x5e; 32]).digest());
    tx(&["add-measurement", &gk_tenant, "--role", "gatekeeper"]);
    tx(&["add-measurement", &worker_tenant, "--role", "pruntime"]);

    // The gatekeepers: init, certified by the cluster CA, then serving on their hosts
    // (each attests and registers itself with its evidence).
    let env = [("PHALANX_GK__registry__genesis", genesis.as_str())];
    for (i, g) in gatekeepers.iter().enumerate() {
        let (conf, _) = init_gatekeeper(&net, dir, i + 1, &env);
        net.spawn(g, g, &["gatekeeper", "--config", &conf, "serve"], &env);
    }
    for c in &clients {
        net.wait(&["gatekeeper", c], Duration::from_secs(60));
    }
    tx(&["set-gatekeepers", "--nodes", &all_nodes, "--threshold", "3"]);
    tx(&["lock-rotation", "0"]);
    let admin_secret = d("secrets/gatekeeper-admin");
    let round = |kind: &str, nodes: &str, timeout: &str| -> (bool, serde_json::Value, Duration) {
        let start = Instant::now();
        let out = net.run(
            "admin",
            &[
                "keyvault",
                kind,
                "--nodes",
                nodes,
                "--admin-secret-file",
                &admin_secret,
                "--timeout",
                timeout,
            ]
            .into_iter()
            .chain(if kind == "genesis" {
                vec!["--threshold", "3"]
            } else {
                vec![]
            })
            .collect::<Vec<_>>(),
            &[],
        );
        let said = String::from_utf8_lossy(&out.stdout).into_owned();
        let v = serde_json::from_str(&said).unwrap_or(serde_json::Value::String(
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ));
        (out.status.success(), v, start.elapsed())
    };
    let (committed, v, _) = round("genesis", &all_nodes, "120");
    assert!(committed, "genesis: {v}\n{}", net.logs());

    // The contract, and a worker fetching its keys from the gatekeepers.
    let contract = tx(&[
        "deploy",
        "--module",
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../pruntime/guest/wasm/counter.wasm")
            .to_str()
            .unwrap(),
    ])["contract"]
        .as_str()
        .unwrap()
        .to_owned();
    let worker = |net: &Net, name: &str, port: u16| {
        let data = d(name);
        let listen = format!("0.0.0.0:{port}");
        let args = [
            "pruntime",
            "--tee",
            "sim",
            "--sim-pki",
            &d("secrets/sim.json"),
            "--mr-enclave",
            PRUNTIME_MR_ENCLAVE,
            "--data-dir",
            &data,
            "--attestation-url",
            "http://attestation:8080",
            "--policy",
            "app",
            "--registry-url",
            "http://ledger:7300",
            "--genesis",
            &genesis,
            "--contract",
            &contract,
            "--gatekeeper-trust-root",
            "sim",
            "--listen",
            &listen,
        ];
        net.spawn(name, "worker", &args, &[]);
    };
    let start = Instant::now();
    worker(&net, "worker-1", 7400);
    net.wait(
        &["http", "http://worker:7400/healthz"],
        Duration::from_secs(90),
    );
    eprintln!("worker-1 served its contract after {:?}", start.elapsed());

    // Gatekeeper 5's host cut off: a second worker still gets its keys (from the four
    // others, after its evidence check of gatekeeper 5 times out).
    net.cut("gatekeeper-5");
    let start = Instant::now();
    worker(&net, "worker-2", 7401);
    net.wait(
        &["http", "http://worker:7401/healthz"],
        Duration::from_secs(90),
    );
    eprintln!(
        "worker-2 (gatekeeper 5 cut off) served after {:?}",
        start.elapsed()
    );

    // A refresh among all five with gatekeeper 5 away: completes without it or aborts
    // cleanly, within its timeout; either way the four agree afterwards.
    let (committed, v, took) = round("refresh", &all_nodes, "60");
    eprintln!("refresh with gatekeeper 5 cut off: committed={committed} in {took:?}: {v}");
    assert!(took < Duration::from_secs(90), "the refresh hung: {took:?}");
    let four = clients[..4].join(",");
    let status =
        |nodes: &str| json(&net.must("admin", &["keyvault", "status", "--nodes", nodes], &[]));
    let s = status(&four);
    for n in s["nodes"].as_array().unwrap() {
        let r = n["round"].as_str().unwrap();
        assert!(
            r.ends_with("committed") || r.contains("aborted"),
            "a round left running: {s}"
        );
    }
    assert_eq!(
        s["epochs"]["0"]["members_agreeing"],
        serde_json::json!([1, 2, 3, 4]),
        "{s}"
    );

    // Back: gatekeeper 5 answers again and agrees with the others; a refresh of all five
    // commits.
    net.restore("gatekeeper-5");
    net.wait(&["gatekeeper", &clients[4]], Duration::from_secs(30));
    let (committed, v, _) = round("refresh", &all_nodes, "120");
    assert!(
        committed,
        "refresh after gatekeeper 5 came back: {v}\n{}",
        net.logs()
    );

    // A second host cut off during a round: the round ends (committed or aborted) within
    // its timeout, and once it is back the five commit the next one.
    let admin_secret2 = admin_secret.clone();
    let nodes2 = all_nodes.clone();
    let during = {
        let mut c = net.command(
            "admin",
            &[
                "keyvault",
                "refresh",
                "--nodes",
                &nodes2,
                "--admin-secret-file",
                &admin_secret2,
                "--timeout",
                "40",
            ],
            &[],
        );
        c.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    std::thread::sleep(Duration::from_millis(300));
    net.cut("gatekeeper-4");
    let start = Instant::now();
    let out = during.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "refresh with gatekeeper 4 cut mid-round: {} after {:?}: {said}",
        out.status,
        start.elapsed(),
    );
    assert!(start.elapsed() < Duration::from_secs(60), "the round hung");
    // Committed by all, or the outcome names what did not settle: the cut node.
    assert!(
        out.status.success() || said.contains("gatekeeper-4"),
        "{said}"
    );
    net.restore("gatekeeper-4");
    net.wait(&["gatekeeper", &clients[3]], Duration::from_secs(30));
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (committed, v, _) = round("refresh", &all_nodes, "120");
        if committed {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no refresh commits after the cut: {v}\n{}",
            net.logs()
        );
        std::thread::sleep(Duration::from_secs(2));
    }
    let s = status(&all_nodes);
    assert_eq!(
        s["epochs"]["0"]["members_agreeing"],
        serde_json::json!([1, 2, 3, 4, 5]),
        "{s}"
    );

    // The attestation host cut off: a booting worker fails with a clear error, within
    // its timeout; the running workers still answer.
    net.cut("attestation");
    let start = Instant::now();
    worker(&net, "worker-3", 7402);
    let status = loop {
        if let Some(s) = net.exited("worker-3") {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "worker-3 hangs without the attestation service\n{}",
            net.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let log = std::fs::read_to_string(net.log("worker-3")).unwrap();
    eprintln!(
        "worker-3 without the attestation service: {status} after {:?}",
        start.elapsed()
    );
    assert!(!status.success());
    eprintln!("  {}", log.lines().last().unwrap_or_default());
    assert!(log.contains("http://attestation:8080"), "{log}");
    net.wait(
        &["http", "http://worker:7400/healthz"],
        Duration::from_secs(5),
    );
    net.restore("attestation");
}

/// anvil's first development account (the public test mnemonic's): the chain's funder.
const ANVIL_FUNDER: &str = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

/// The same topology on the Solidity registry (issue 27): anvil on the registry's host
/// instead of the ledger, the registry deployed and governed from the admin host, and
/// the gatekeepers' compose configs switched to it by the environment
/// (`PHALANX_GK__registry__url`, an empty genesis, the simulated root to endorse to).
/// Each gatekeeper waits for governance, which approves the registration file it wrote;
/// genesis; a pRuntime (its account funded from `--print-account`) registers with the
/// gatekeepers' endorsements over the network and serves its contract; gatekeeper 5's
/// host cut off, a second worker still registers (four endorsers, threshold 3) and
/// serves.
#[test]
fn the_compose_topology_across_hosts_on_anvil() {
    if !available() {
        return;
    }
    let anvil = std::env::var("ANVIL")
        .ok()
        .filter(|a| !a.trim().is_empty() && Path::new(a).is_file());
    let Some(anvil) = anvil else {
        assert!(
            std::env::var_os("PHALANX_REQUIRE_ANVIL").is_none(),
            "PHALANX_REQUIRE_ANVIL is set but ANVIL names no anvil"
        );
        eprintln!("SKIPPED: no anvil (set ANVIL)");
        return;
    };
    let _one_at_a_time = NETNS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let net = Net::new(dir);
    let d = |p: &str| dir.join(p).to_str().unwrap().to_owned();
    let clients: Vec<String> = (1..=5)
        .map(|i| format!("http://gatekeeper-{i}:7101"))
        .collect();
    bootstrap(&net, dir);
    start_attestation(&net, dir);

    // The chain on the registry's host; the registry deployed from the admin host.
    net.spawn_program(
        "chain",
        "ledger",
        &anvil,
        &["--host", "0.0.0.0", "--port", "8545", "--silent"],
    );
    let rpc = "http://ledger:8545";
    std::fs::write(dir.join("funder.key"), ANVIL_FUNDER).unwrap();
    let address = |file: &str| {
        json(&net.must("admin", &["chain", "evm-keygen", "--out", &d(file)], &[]))["address"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let fund = |to: &str| {
        net.must(
            "admin",
            &[
                "chain",
                "evm-fund",
                "--rpc",
                rpc,
                "--key",
                &d("funder.key"),
                "--to",
                to,
            ],
            &[],
        );
    };
    let governance = address("governance-eth.key");
    let user = address("user-eth.key");
    let deadline = Instant::now() + Duration::from_secs(30);
    let deployed = loop {
        let out = net.run(
            "admin",
            &[
                "chain",
                "evm-deploy",
                "--rpc",
                rpc,
                "--key",
                &d("funder.key"),
                "--governance",
                &governance,
            ],
            &[],
        );
        if out.status.success() {
            break json(&String::from_utf8_lossy(&out.stdout));
        }
        assert!(
            Instant::now() < deadline,
            "anvil never answered\n{}",
            net.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let url = deployed["registry"].as_str().unwrap().to_owned();
    let chain_id = deployed["chain_id"].as_u64().unwrap().to_string();
    fund(&governance);
    fund(&user);
    let tx = |key: &str, args: &[&str]| -> serde_json::Value {
        let key = d(key);
        let mut a = vec!["chain", "tx", "--url", url.as_str(), "--key", key.as_str()];
        a.extend_from_slice(args);
        json(&net.must("admin", &a, &[]))
    };
    let gk_tenant = hex::encode(phalanx_cli::devnet::gatekeeper_tenant().digest());
    let worker_tenant = hex::encode(phalanx_cli::devnet::pruntime_tenant([0x5e; 32]).digest());
    tx(
        "governance-eth.key",
        &["add-measurement", &gk_tenant, "--role", "gatekeeper"],
    );
    tx(
        "governance-eth.key",
        &["add-measurement", &worker_tenant, "--role", "pruntime"],
    );

    // The gatekeepers, switched to the registry by the environment, each account funded;
    // each waits for governance, which checks and approves the file it wrote.
    let roots = format!("[\"{}\"]", d("sim/root.pem"));
    let env = [
        ("PHALANX_GK__registry__url", url.as_str()),
        ("PHALANX_GK__registry__genesis", ""),
        ("PHALANX_GK__registry__evidence_roots", roots.as_str()),
    ];
    for i in 1..=5 {
        let g = format!("gatekeeper-{i}");
        let (conf, id) = init_gatekeeper(&net, dir, i, &env);
        fund(id["evm_account"].as_str().unwrap());
        net.spawn(&g, &g, &["gatekeeper", "--config", &conf, "serve"], &env);
    }
    for i in 1..=5 {
        let pending = dir.join(format!("gatekeeper-{i}/registration.pending"));
        let deadline = Instant::now() + Duration::from_secs(60);
        while !pending.exists() {
            assert!(
                Instant::now() < deadline,
                "gatekeeper-{i} wrote no pending registration\n{}",
                net.logs()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        tx(
            "governance-eth.key",
            &[
                "approve-registration",
                pending.to_str().unwrap(),
                "--trust-root",
                &d("sim/root.pem"),
            ],
        );
    }
    for c in &clients {
        net.wait(&["gatekeeper", c], Duration::from_secs(60));
    }
    let all_nodes = clients.join(",");
    tx(
        "governance-eth.key",
        &["set-gatekeepers", "--nodes", &all_nodes, "--threshold", "3"],
    );
    tx("governance-eth.key", &["lock-rotation", "0"]);
    let admin_secret = d("secrets/gatekeeper-admin");
    net.must(
        "admin",
        &[
            "keyvault",
            "genesis",
            "--nodes",
            &all_nodes,
            "--admin-secret-file",
            &admin_secret,
            "--timeout",
            "120",
            "--threshold",
            "3",
        ],
        &[],
    );

    // The contract, and workers registering with the gatekeepers' endorsements.
    let counter =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../pruntime/guest/wasm/counter.wasm");
    let contract = tx(
        "user-eth.key",
        &["deploy", "--module", counter.to_str().unwrap()],
    )["contract"]
        .as_str()
        .unwrap()
        .to_owned();
    let worker = |name: &str, port: u16| {
        let data = d(name);
        let listen = format!("0.0.0.0:{port}");
        let sim = d("secrets/sim.json");
        let args = |extra: &[&'static str]| -> Vec<String> {
            [
                "pruntime",
                "--tee",
                "sim",
                "--sim-pki",
                &sim,
                "--mr-enclave",
                PRUNTIME_MR_ENCLAVE,
                "--data-dir",
                &data,
                "--attestation-url",
                "http://attestation:8080",
                "--policy",
                "app",
                "--registry-url",
                &url,
                "--evm-chain-id",
                &chain_id,
                "--confirmations",
                "0",
                "--contract",
                &contract,
                "--gatekeeper-trust-root",
                "sim",
                "--listen",
                &listen,
            ]
            .iter()
            .map(|s| (*s).to_owned())
            .chain(extra.iter().map(|s| (*s).to_owned()))
            .collect()
        };
        let print = args(&["--print-account"]);
        let print: Vec<&str> = print.iter().map(String::as_str).collect();
        let account = json(&net.must("worker", &print, &[]));
        fund(account["evm_account"].as_str().unwrap());
        let serve = args(&[]);
        let serve: Vec<&str> = serve.iter().map(String::as_str).collect();
        net.spawn(name, "worker", &serve, &[]);
    };
    let start = Instant::now();
    worker("worker-1", 7400);
    net.wait(
        &["http", "http://worker:7400/healthz"],
        Duration::from_secs(90),
    );
    eprintln!(
        "worker-1 on anvil served its contract after {:?}",
        start.elapsed()
    );

    // Gatekeeper 5's host cut off: a second worker is endorsed by the four others.
    net.cut("gatekeeper-5");
    let start = Instant::now();
    worker("worker-2", 7401);
    net.wait(
        &["http", "http://worker:7401/healthz"],
        Duration::from_secs(90),
    );
    eprintln!(
        "worker-2 on anvil (gatekeeper 5 cut off) served after {:?}",
        start.elapsed()
    );

    // Rounds decided on the contract: a refresh among all five with gatekeeper 5 away
    // ends within its timeout (committed without it or aborted) and the four agree;
    // once it is back, a refresh of all five commits and all five agree.
    let refresh = || {
        net.run(
            "admin",
            &[
                "keyvault",
                "refresh",
                "--nodes",
                &all_nodes,
                "--admin-secret-file",
                &admin_secret,
                "--timeout",
                "60",
            ],
            &[],
        )
    };
    let start = Instant::now();
    let out = refresh();
    eprintln!(
        "refresh on anvil with gatekeeper 5 cut off: {} after {:?}",
        out.status,
        start.elapsed()
    );
    assert!(
        start.elapsed() < Duration::from_secs(90),
        "the refresh hung"
    );
    let status =
        |nodes: &str| json(&net.must("admin", &["keyvault", "status", "--nodes", nodes], &[]));
    let four = clients[..4].join(",");
    assert_eq!(
        status(&four)["epochs"]["0"]["members_agreeing"],
        serde_json::json!([1, 2, 3, 4])
    );
    net.restore("gatekeeper-5");
    net.wait(&["gatekeeper", &clients[4]], Duration::from_secs(30));
    let deadline = Instant::now() + Duration::from_secs(120);
    while !refresh().status.success() {
        assert!(
            Instant::now() < deadline,
            "no refresh commits on anvil after the cut\n{}",
            net.logs()
        );
        std::thread::sleep(Duration::from_secs(2));
    }
    assert_eq!(
        status(&all_nodes)["epochs"]["0"]["members_agreeing"],
        serde_json::json!([1, 2, 3, 4, 5])
    );
}
