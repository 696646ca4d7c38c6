#!/usr/bin/env python3
"""Checks what `kubectl kustomize` makes of each overlay: the objects and invariants
deploy/README.md promises. Run by cli/tests/deploy.rs (and by hand:
`python3 deploy/k8s/check.py`). Exit 1 with the failed invariant named."""
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import initdata  # noqa: E402  (deploy/k8s/initdata.py: the annotation's encoding)
THRESHOLD = 3
MEMBERS = 5
# The EVM overlay's chain node, outside the cluster.
RPC_CIDR = "192.0.2.10/32"


def render(overlay):
    out = subprocess.run(
        ["kubectl", "kustomize", str(HERE / "overlays" / overlay)],
        check=True, capture_output=True, text=True,
    ).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def find(objs, kind, name):
    hits = [o for o in objs if o["kind"] == kind and o["metadata"]["name"].startswith(name)]
    assert len(hits) == 1, f"one {kind} {name}, found {len(hits)}"
    return hits[0]


def pod(obj):
    return obj["spec"]["template"]["spec"]


def policies_of(objs):
    return {o["metadata"]["name"]: o for o in objs if o["kind"] == "NetworkPolicy"}


def check_common(objs, overlay):
    assert all(o["metadata"].get("namespace", "phalanx") == "phalanx" for o in objs), "namespace"
    # No secret material in the manifests: Secrets are created out of band.
    assert not [o for o in objs if o["kind"] == "Secret"], "a Secret in the manifests"
    for o in objs:
        if o["kind"] not in ("Deployment", "StatefulSet"):
            continue
        spec = pod(o)
        assert spec["securityContext"]["runAsNonRoot"] is True, o["metadata"]["name"]
        assert spec.get("automountServiceAccountToken") is False, o["metadata"]["name"]
        for c in spec["containers"]:
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True, c["name"]
            assert sc["allowPrivilegeEscalation"] is False, c["name"]
            assert sc["capabilities"]["drop"] == ["ALL"], c["name"]
            for e in c.get("env", []):
                if any(w in e["name"].upper() for w in ("SECRET", "TOKEN", "PASSWORD")):
                    assert "value" not in e, f"{e['name']} in plain text"

    gk = find(objs, "StatefulSet", "gatekeeper")
    assert gk["spec"]["replicas"] == MEMBERS, "five gatekeepers"
    assert gk["spec"]["volumeClaimTemplates"], "a volume per gatekeeper"
    pdb = find(objs, "PodDisruptionBudget", "gatekeeper")
    assert pdb["spec"]["minAvailable"] == THRESHOLD, "PDB keeps t gatekeepers"
    assert pdb["spec"]["selector"]["matchLabels"] == gk["spec"]["selector"]["matchLabels"]

    att = find(objs, "Deployment", "attestation")
    c = pod(att)["containers"][0]
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    hpa = find(objs, "HorizontalPodAutoscaler", "attestation")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "attestation"
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    # Replicas must share the cluster secret and the replay store; without them a nonce
    # from one replica would fail at another (and be redeemable once per replica).
    att_config = tomllib.loads(config(objs, "attestation-config", "attestation.toml"))
    cluster = att_config.get("cluster", {})
    if hpa["spec"]["maxReplicas"] > 1 or att["spec"]["replicas"] > 1:
        assert cluster.get("secret_file") and cluster.get("replay_store"), (
            "attestation replicas without a shared secret and replay store"
        )
        mounts = {m["mountPath"] for m in c["volumeMounts"]}
        for key in ("secret_file", "replay_store_password_file"):
            assert str(Path(cluster[key]).parent) in mounts, f"cluster.{key} is not mounted"
        store = find(objs, "StatefulSet", "attestation-replay")
        assert store["spec"]["replicas"] == 1 and store["spec"]["volumeClaimTemplates"]
        args = pod(store)["containers"][0]["args"]
        assert args[args.index("--appendfsync") + 1] == "always", "redeemed nonces fsynced"
        replay = policies_of(objs)["attestation-replay-clients"]["spec"]["ingress"]
        assert [[f["podSelector"]["matchLabels"]["app"] for f in r["from"]] for r in replay] == [
            ["attestation"]
        ], "the replay store only from the attestation replicas"
        assert [p["port"] for r in replay for p in r["ports"]] == [6379]
    evm = overlay == "evm"
    # The registry: the ledger in the cluster, or an EVM chain's node outside it.
    registry = (RPC_CIDR, 8545) if evm else ("ledger", 7300)
    if evm:
        assert not [o for o in objs if o["metadata"]["name"] == "ledger"], "a ledger beside an EVM registry"
    else:
        led = find(objs, "StatefulSet", "ledger")
        assert led["spec"]["volumeClaimTemplates"], "the ledger's blocks on a volume"

    # Network: default deny; the peer port only between gatekeepers; release and
    # status from workers and gatekeepers; nothing else reaches a gatekeeper.
    policies = policies_of(objs)
    deny = policies["default-deny"]["spec"]
    assert deny["podSelector"] == {} and "ingress" not in deny, "default deny"
    for name, p in policies.items():
        spec = p["spec"]
        if spec["podSelector"].get("matchLabels", {}).get("app") != "gatekeeper":
            continue
        for rule in spec.get("ingress", []):
            ports = {port["port"] for port in rule["ports"]}
            labels = [f["podSelector"]["matchLabels"] for f in rule["from"]]
            if ports == {7301}:
                # The admin port: operator pods only, never workers or other gatekeepers.
                assert labels == [{"phalanx.dev/operator": "true"}], f"{name}: admin from {labels}"
                continue
            sources = {l.get("app") for l in labels}
            if 7201 in ports:
                assert sources == {"gatekeeper"}, f"{name}: the peer port from {sources}"
            assert ports <= {7101, 7201}, f"{name}: {ports}"
            assert sources <= {"gatekeeper", "pruntime"}, f"{name}: from {sources}"
    # Users reach what they use: the pRuntime's queries and the public registry (and
    # nothing else: every other pod stays behind default deny).
    users = [("pruntime-users", "pruntime", 7400)] + ([] if evm else [("ledger-users", "ledger", 7300)])
    for name, app, port in users:
        spec = policies[name]["spec"]
        assert spec["podSelector"]["matchLabels"]["app"] == app, name
        assert [p["port"] for r in spec["ingress"] for p in r["ports"]] == [port], name
    peers = policies["gatekeeper-peers"]["spec"]["ingress"][0]
    assert [p["port"] for p in peers["ports"]] == [7201]
    release = policies["gatekeeper-release"]["spec"]["ingress"][0]
    assert [p["port"] for p in release["ports"]] == [7101]
    # Egress: denied by default (DNS only); each component reaches exactly the services
    # it uses; the ledger and the replay store reach nothing.
    out = policies["default-deny-egress"]["spec"]
    assert out["podSelector"] == {} and out["policyTypes"] == ["Egress"], "default deny egress"
    assert {p["port"] for r in out["egress"] for p in r["ports"]} == {53}, "only DNS by default"
    def egress(app):
        allowed = set()
        for p in policies.values():
            spec = p["spec"]
            if "Egress" in spec["policyTypes"] and spec["podSelector"].get("matchLabels", {}).get("app") == app:
                for r in spec.get("egress", []):
                    for to in r["to"]:
                        dest = to.get("podSelector", {}).get("matchLabels", {}).get("app") or to.get("ipBlock", {}).get("cidr")
                        allowed |= {(dest, port["port"]) for port in r["ports"]}
        return allowed
    assert egress("pruntime") == {("attestation", 8080), ("gatekeeper", 7101), registry}
    assert egress("gatekeeper") == {("gatekeeper", 7101), ("gatekeeper", 7201), ("attestation", 8080), registry}
    assert egress("attestation") == {("attestation-replay", 6379), ("0.0.0.0/0", 8081)}
    assert egress("ledger") == set() and egress("attestation-replay") == set()
    op = policies["operator-egress"]["spec"]
    assert op["podSelector"] == {"matchLabels": {"phalanx.dev/operator": "true"}}
    assert {(t.get("podSelector", {}).get("matchLabels", {}).get("app") or t["ipBlock"]["cidr"], p["port"]) for r in op["egress"] for t in r["to"] for p in r["ports"]} == {
        ("gatekeeper", 7301), registry}, "operators reach the admin port and the registry"
    # The admin service listens apart from the client port in every gatekeeper.
    for i in range(MEMBERS):
        g = tomllib.loads(config(objs, "gatekeeper-config", f"gatekeeper-{i}.toml"))
        assert g["listen"].get("admin") == "0.0.0.0:7301", f"gatekeeper {i}: admin on the client port"
    assert policies["gatekeeper-admin"]["spec"]["ingress"][0]["ports"] == [{"port": 7301}]


def config(objs, name, key):
    return find(objs, "ConfigMap", name)["data"][key]


def check_production(objs):
    att = config(objs, "attestation-config", "attestation.toml")
    # The replay store speaks TLS only, and the service checks its certificate.
    cluster = tomllib.loads(att)["cluster"]
    assert cluster["replay_store"].startswith("rediss://") and cluster.get("replay_store_ca_file"), "replay store over TLS"
    redis = pod(find(objs, "StatefulSet", "attestation-replay"))["containers"][0]["args"]
    assert redis[redis.index("--port") + 1] == "0" and "--tls-port" in redis, "Redis: TLS only"
    assert 'root = "intel"' in att, "production trusts Intel's root"
    hpa = find(objs, "HorizontalPodAutoscaler", "attestation")
    assert hpa["spec"]["minReplicas"] >= 2 and hpa["spec"]["maxReplicas"] > 2, "scales out"
    for o in objs:
        text = yaml.safe_dump(o)
        assert 'root = "sim"' not in text and "root = 'sim'" not in text, "the simulated root"
        assert "dangerous_" not in text, f"a dangerous setting in {o['metadata']['name']}"
    for i in range(MEMBERS):
        g = config(objs, "gatekeeper-config", f"gatekeeper-{i}.toml")
        assert 'backend = "sgx-gramine"' in g and 'trust_roots = ["intel"]' in g, i
    gk = pod(find(objs, "StatefulSet", "gatekeeper"))
    assert gk["nodeSelector"] == {"phalanx.dev/tee": "sgx"}
    # NM6: the enclave image, its configuration measured: nothing of what its trust
    # rests on is mounted from the host, and its arguments are its manifest's.
    c = gk["containers"][0]
    assert "gatekeeper-sgx" in c["image"] and "args" not in c and "command" not in c, "the enclave image, as built"
    for v in gk["volumes"]:
        name = v.get("configMap", {}).get("name", "")
        assert not name.startswith(("gatekeeper-config", "attestation-jwks")), f"{v['name']}: trust mounted from the host"
    for m in c["volumeMounts"]:
        assert not m["mountPath"].startswith(("/etc/phalanx/gatekeeper", "/etc/phalanx/trusted")), f"{m['mountPath']}: over the measured files"
    for i in range(MEMBERS):
        g = tomllib.loads(config(objs, "gatekeeper-config", f"gatekeeper-{i}.toml"))
        for path in (g["tls"]["ca_cert"], g["attestation"]["jwks_file"]):
            assert path.startswith("/etc/phalanx/trusted/"), f"gatekeeper {i}: {path} is not a measured file"
    assert any(e["name"] == "POD_INDEX" for e in c["env"]), "POD_INDEX picks the node's measured config"
    limits = gk["containers"][0]["resources"]["limits"]
    assert limits.get("sgx.intel.com/enclave") and limits.get("sgx.intel.com/provision")
    assert any(v.get("hostPath", {}).get("path") == "/var/run/aesmd" for v in gk["volumes"])
    # NC3: the TDX pRuntime is a confidential pod (its own TD), not a container on a TD
    # node: a confidential runtime class, and no host path at all (configfs-tsm is the
    # pod VM's own); its state on a volume; the app policy pins a TD, and gatekeepers
    # name the pRuntime tenant that may fetch contract keys.
    pr_obj = find(objs, "Deployment", "pruntime")
    pr = pod(pr_obj)
    assert "tdx" in pr.get("runtimeClassName", ""), "the pRuntime in a confidential (TDX) pod"
    assert not [v for v in pr["volumes"] if "hostPath" in v], "a host path in the pRuntime pod"
    assert any("persistentVolumeClaim" in v for v in pr["volumes"]), "pRuntime state on a volume"
    args = pr["containers"][0]["args"]
    assert args[args.index("--tee") + 1] == "tdx"
    # Its configuration comes measured: the initdata annotation (whose SHA-384 Kata binds
    # as MRCONFIGID) is the very document the worker reads, and no trust flag is passed
    # beside it; the Kata agent refuses exec, writes to its processes and policy changes.
    doc = config(objs, "pruntime-initdata", "pruntime-initdata.toml").encode()
    ann = pr_obj["spec"]["template"]["metadata"]["annotations"][initdata.ANNOTATION]
    assert initdata.decode(ann) == doc, "the initdata annotation is not the mounted document: run deploy/k8s/initdata.py"
    assert args[args.index("--initdata") + 1] == "/etc/phalanx/initdata/pruntime-initdata.toml"
    for flag in ("--genesis", "--policy", "--gatekeeper-trust-root", "--gatekeeper-policy", "--dangerous-unattested-gatekeepers"):
        assert flag not in args, f"{flag} beside --initdata"
    init = tomllib.loads(doc.decode())
    assert init["version"] == "0.1.0" and init["algorithm"] == "sha384"
    trust = tomllib.loads(init["data"]["phalanx.toml"])
    assert trust["gatekeeper_trust_roots"] == ["intel"], "production trusts Intel's root"
    rego = init["data"]["policy.rego"]
    for refused in ("ExecProcessRequest", "SetPolicyRequest", "WriteStreamRequest"):
        assert f"default {refused} := false" in rego, f"the agent policy allows {refused}"
    # The container is not in the TD's measurement: only a policy that pins it (genpolicy)
    # may let the host create one; never unconditionally.
    for pinned in ("CreateContainerRequest", "CopyFileRequest", "PullImageRequest"):
        assert f"default {pinned} := true" not in rego, f"the agent policy allows any {pinned}"
    assert "[[tdx]]" in config(objs, "attestation-config", "app.toml"), "the app policy pins a TD"
    for i in range(MEMBERS):
        g = tomllib.loads(config(objs, "gatekeeper-config", f"gatekeeper-{i}.toml"))
        assert g["policy"].get("contract_runtimes"), f"gatekeeper {i} names no pRuntime tenant"


def check_evm(objs):
    """Production on a Solidity registry: pRuntime's measured initdata pins the registry
    its --registry-url names, with a confirmation depth; the gatekeepers' configs name
    it and no genesis."""
    check_production(objs)
    pr = find(objs, "Deployment", "pruntime")
    args = pod(pr)["containers"][0]["args"]
    url = args[args.index("--registry-url") + 1]
    assert url.startswith("evm+http://") and "#0x" in url, f"pRuntime's registry {url}"
    doc = config(objs, "pruntime-initdata", "pruntime-initdata.toml")
    trust = tomllib.loads(tomllib.loads(doc)["data"]["phalanx.toml"])
    assert "genesis" not in trust and trust["confirmations"] >= 1, "initdata pins a ledger, or no depth"
    chain, address = trust["evm_registry"].split(":")
    assert chain.isdigit() and url.endswith("#" + address), "initdata and --registry-url name other registries"
    for i in range(MEMBERS):
        g = tomllib.loads(config(objs, "gatekeeper-config", f"gatekeeper-{i}.toml"))
        assert g["registry"]["url"] == url and "genesis" not in g["registry"], f"gatekeeper {i}'s registry"


def check_dev(objs):
    att = config(objs, "attestation-config", "attestation.toml")
    assert 'root = "sim"' in att, "dev trusts the simulated root"
    assert 'sim_pki_file = "/run/secrets/phalanx-sim/sim.json"' in att, "one simulated PKI"
    for i in range(MEMBERS):
        g = config(objs, "gatekeeper-config", f"gatekeeper-{i}.toml")
        assert 'backend = "sim"' in g and "dangerous_" not in g, f"dev gatekeeper {i}"
    for kind, name in (("Deployment", "attestation"), ("StatefulSet", "gatekeeper")):
        spec = pod(find(objs, kind, name))
        assert any(v.get("secret", {}).get("secretName") == "phalanx-sim" for v in spec["volumes"]), name
        assert not any("hostPath" in v for v in spec["volumes"]), f"{name}: a host path in dev"
    # Each replica would make its own simulated PKI: one replica, no cluster.
    assert find(objs, "HorizontalPodAutoscaler", "attestation")["spec"]["maxReplicas"] == 1
    assert find(objs, "Deployment", "pruntime")["spec"]["replicas"] == 0


def main():
    for overlay, extra in (("production", check_production), ("dev", check_dev), ("evm", check_evm)):
        objs = render(overlay)
        try:
            check_common(objs, overlay)
            extra(objs)
        except AssertionError as e:
            print(f"deploy/k8s/overlays/{overlay}: {e}", file=sys.stderr)
            sys.exit(1)
        kinds = sorted({o["kind"] for o in objs})
        print(f"deploy/k8s/overlays/{overlay}: {len(objs)} objects ({', '.join(kinds)}): ok")


if __name__ == "__main__":
    main()
