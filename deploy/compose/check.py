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


def main():
    doc = yaml.safe_load((HERE / "compose.yaml").read_text())
    if sys.argv[1:] == ["--commands"]:
        # Each service's command line (for the binaries' own parsers, in the Rust test).
        import json
        print(json.dumps({n: s["command"] for n, s in doc["services"].items()}))
        return
    try:
        check(doc)
    except AssertionError as e:
        print(f"deploy/compose/compose.yaml: {e}", file=sys.stderr)
        sys.exit(1)
    print(f"deploy/compose/compose.yaml: {len(doc['services'])} services: ok")


if __name__ == "__main__":
    main()
