#!/usr/bin/env python3
"""Checks deploy/compose/compose.yaml without a daemon: the topology and invariants
deploy/README.md promises. Run by cli/tests/deploy.rs (which also parses every config
file here and every service's command line with the binaries' own parsers). Exit 1 with
the failed invariant named."""
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
GATEKEEPERS = [f"gatekeeper-{i}" for i in range(1, 6)]
SERVICES = {"attestation", "ledger", "pruntime", *GATEKEEPERS}
SECRETISH = ("SECRET", "PASSWORD", "TOKEN", "PRIVATE")


def check(doc):
    services = doc["services"]
    assert set(services) == SERVICES, f"services {sorted(services)}"
    for name, s in services.items():
        user = str(s.get("user", "")).split(":")[0]
        assert user.isdigit() and int(user) != 0, f"{name} runs as root"
        assert s.get("read_only") is True, f"{name}: read-only root file system"
        assert s.get("cap_drop") == ["ALL"], f"{name}: capabilities"
        assert "no-new-privileges:true" in s.get("security_opt", []), f"{name}: escalation"
        assert not s.get("privileged"), f"{name} is privileged"
        test = s.get("healthcheck", {}).get("test", [])
        assert test[:3] == ["CMD", "phalanx", "probe"], f"{name}: health check on a real probe"
        for var, value in (s.get("environment") or {}).items():
            assert not any(w in var.upper() for w in SECRETISH), f"{name}: {var} in the environment"
        for v in s.get("volumes", []):
            source = v.split(":")[0]
            assert source in doc["volumes"], f"{name}: state only in named volumes ({v})"
        for c in s.get("configs", []):
            assert c["source"] in doc["configs"], f"{name}: config {c['source']}"
        for sec in s.get("secrets", []):
            assert sec in doc["secrets"], f"{name}: secret {sec}"

    # Peer traffic on a network of its own, with no route out, only for gatekeepers.
    assert doc["networks"]["peers"].get("internal") is True, "peers is internal"
    on_peers = {n for n, s in services.items() if "peers" in s.get("networks", [])}
    assert on_peers == set(GATEKEEPERS), f"on the peer network: {sorted(on_peers)}"
    for g in GATEKEEPERS:
        assert "ports" not in services[g], f"{g} publishes a port"
        i = g.split("-")[1]
        targets = {c["source"]: c["target"] for c in services[g]["configs"]}
        assert targets[f"gatekeeper-{i}.toml"] == "/etc/phalanx/gatekeeper.toml", g
        assert services[g]["depends_on"]["attestation"]["condition"] == "service_healthy"

    # Secrets are compose secrets from files under state/secrets; configs' own files exist.
    for name, sec in doc["secrets"].items():
        assert sec["file"].startswith("./state/secrets/"), f"secret {name}: {sec}"
    for name, c in doc["configs"].items():
        f = c["file"]
        assert f.startswith("./config/") or f.startswith("./state/"), f"config {name}: {f}"
        if f.startswith("./config/"):
            assert (HERE / f).is_file(), f"config {name}: {f} is missing"
    assert "state/" in (HERE / ".gitignore").read_text().split(), "state/ is not ignored"


def merged(base, override):
    """Compose's merge of an override file into `base`, for the fields the EVM override
    sets: mappings merge by key (environment, depends_on), `configs` merge by target,
    `command` is replaced, `profiles` combined."""
    import copy
    out = copy.deepcopy(base)
    for name, o in override.get("services", {}).items():
        s = out["services"][name]
        for key, value in o.items():
            if key in ("environment", "depends_on"):
                s.setdefault(key, {}).update(copy.deepcopy(value))
            elif key == "configs":
                by_target = {c["target"]: c for c in s.get("configs", [])}
                by_target.update({c["target"]: c for c in value})
                s["configs"] = list(by_target.values())
            elif key == "command":
                s[key] = copy.deepcopy(value)
            elif key == "profiles":
                s[key] = s.get(key, []) + [p for p in value if p not in s.get(key, [])]
            else:
                raise AssertionError(f"{name}: the override sets {key}, which check.py does not merge")
    return out


def check_filled_in(path, names):
    """Compose fills each file in before it merges: every `${NAME:?…}` the EVM setup
    sets to a placeholder or a value must be among `names`."""
    import re
    required = set(re.findall(r"\$\{([A-Z_]+):\?", path.read_text()))
    assert required <= names, f"{path.name} requires {sorted(required - names)}, which the EVM setup leaves unset"


def check_evm(doc):
    """The topology on a Solidity registry: the ledger only under its profile, nothing
    needing it; every gatekeeper switched to the registry by its environment, with the
    root it endorses to; pRuntime naming the registry and its depth."""
    services = doc["services"]
    assert services["ledger"].get("profiles") == ["ledger"], "the ledger starts by default"
    for g in GATEKEEPERS:
        s = services[g]
        env = s["environment"]
        assert env["PHALANX_GK__registry__url"].startswith("${PHALANX_REGISTRY"), g
        assert env["PHALANX_GK__registry__genesis"] == "", f"{g}: a genesis on an EVM registry"
        roots = env["PHALANX_GK__registry__evidence_roots"]
        targets = {c["target"] for c in s["configs"]}
        assert all(r in targets for r in yaml.safe_load(roots)), f"{g}: an evidence root not mounted"
        assert s["depends_on"]["ledger"].get("required") is False, f"{g} needs the ledger"
    cmd = services["pruntime"]["command"]
    for flag in ("--evm-chain-id", "--confirmations"):
        assert flag in cmd, f"pRuntime without {flag}"
    assert "--genesis" not in cmd and cmd[cmd.index("--registry-url") + 1].startswith("${PHALANX_REGISTRY")


def main():
    doc = yaml.safe_load((HERE / "compose.yaml").read_text())
    evm = merged(doc, yaml.safe_load((HERE / "compose.evm.yaml").read_text()))
    if sys.argv[1:2] == ["--commands"]:
        # Each service's command line (for the binaries' own parsers, in the Rust test).
        import json
        chosen = evm if sys.argv[2:] == ["--evm"] else doc
        print(json.dumps({n: s["command"] for n, s in chosen["services"].items()}))
        return
    evm_env = {"PHALANX_REGISTRY", "PHALANX_EVM_CHAIN_ID", "PHALANX_CONFIRMATIONS", "PHALANX_CONTRACT",
               "PHALANX_GENESIS", "PHALANX_GOVERNANCE"}
    try:
        for f in ("compose.yaml", "compose.evm.yaml"):
            check_filled_in(HERE / f, evm_env)
    except AssertionError as e:
        print(f"deploy/compose: {e}", file=sys.stderr)
        sys.exit(1)
    for name, d, extra in (("compose.yaml", doc, None), ("compose.yaml + compose.evm.yaml", evm, check_evm)):
        try:
            check(d)
            if extra:
                extra(d)
        except AssertionError as e:
            print(f"deploy/compose/{name}: {e}", file=sys.stderr)
            sys.exit(1)
        print(f"deploy/compose/{name}: {len(d['services'])} services: ok")


if __name__ == "__main__":
    main()
