#!/usr/bin/env python3
"""Lints every Dockerfile under deploy/ (no daemon, no network: hadolint is not
installable here, so its rules that matter for these images are checked directly), and
the build context's .dockerignore. Run by cli/tests/deploy.rs; exit 1 naming the file,
line and rule.

Rules: every FROM names a pinned tag (not `latest`, not untagged) or an earlier stage;
stages are named; every final (runtime) stage runs as a numeric non-root USER, declares
its state VOLUME and uses exec-form ENTRYPOINT; `apt-get install` has `-y` and
`--no-install-recommends` and the same RUN removes /var/lib/apt/lists; no `apt-get
update` alone; no ADD (COPY only), no `curl|sh`, no sudo; `cargo` builds and installs
are `--locked`; no ENV/ARG that looks like a secret; the .dockerignore keeps target/,
.git and local state out of the context."""
import re
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUNTIME_STAGES = {"attestation-service", "gatekeeper", "gatekeeper-sgx", "pruntime", "ledger", "dev"}
SECRETISH = re.compile(r"(SECRET|PASSWORD|TOKEN|PRIVATE|_KEY$)", re.I)


def instructions(text):
    """(line number, INSTRUCTION, arguments) with continuations joined, comments dropped."""
    out, buf, start = [], "", None
    for n, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if not buf and (not s or s.startswith("#")):
            continue
        if start is None:
            start = n
        if s.endswith("\\"):
            buf += s[:-1] + " "
            continue
        buf += s
        word, _, rest = buf.partition(" ")
        out.append((start, word.upper(), rest.strip()))
        buf, start = "", None
    return out


def lint(path):
    errors = []
    bad = lambda n, rule: errors.append(f"{path.relative_to(ROOT)}:{n}: {rule}")
    stages, current, args = {}, None, {}
    for n, ins, rest in instructions(path.read_text()):
        if ins == "ARG" and current is None:
            name, _, default = rest.partition("=")
            args[name] = default
        if ins in ("ARG", "ENV"):
            name = re.split(r"[= ]", rest, maxsplit=1)[0]
            if SECRETISH.search(name):
                bad(n, f"{ins} {name} looks like a secret: pass secrets at run time")
        if ins == "FROM":
            m = re.match(r"(\S+)(?:\s+AS\s+(\S+))?$", rest, re.I)
            if not m or not m.group(2):
                bad(n, "every stage is named (FROM image AS name)")
                continue
            image, name = m.group(1), m.group(2)
            resolved = re.sub(r"\$\{(\w+)\}", lambda a: args.get(a.group(1), ""), image)
            if image not in stages:
                tag = resolved.rsplit("/", 1)[-1].partition(":")[2]
                if not tag or tag == "latest" or "-" == tag[:1]:
                    bad(n, f"base image {image} ({resolved}) is not pinned to a tag")
            current = name
            # A stage built on an earlier one inherits its user, volumes and entrypoint.
            parent = stages.get(image, {"user": None, "volume": False, "entrypoint": None})
            stages[name] = {**parent, "line": n}
        elif ins == "USER":
            stages[current]["user"] = rest
        elif ins == "VOLUME":
            stages[current]["volume"] = True
        elif ins == "ENTRYPOINT":
            stages[current]["entrypoint"] = rest
        elif ins == "ADD":
            bad(n, "use COPY, not ADD")
        elif ins == "RUN":
            if re.search(r"\b(curl|wget)\b[^|&;]*\|\s*(ba)?sh", rest):
                bad(n, "piping a download into a shell")
            if re.search(r"\bsudo\b", rest):
                bad(n, "sudo in a build")
            for cmd in re.split(r"&&|;", rest):
                words = shlex.split(cmd)
                if words[:2] == ["apt-get", "install"]:
                    if "-y" not in words or "--no-install-recommends" not in words:
                        bad(n, "apt-get install -y --no-install-recommends")
                    if "rm -rf /var/lib/apt/lists/*" not in rest:
                        bad(n, "remove /var/lib/apt/lists in the same RUN")
                if words[:2] == ["apt-get", "update"] and "install" not in rest:
                    bad(n, "apt-get update alone in a RUN (stale cache layer)")
                if words[:1] == ["cargo"] and words[1:2] in (["build"], ["install"]) or words[:3] == ["cargo", "chef", "cook"]:
                    if "--locked" not in words:
                        bad(n, f"`{' '.join(words[:3])}` without --locked")
    for name in RUNTIME_STAGES:
        s = stages.get(name)
        if s is None:
            bad(0, f"no stage {name}")
            continue
        user = (s["user"] or "").split(":")[0]
        if not user.isdigit() or int(user) == 0:
            bad(s["line"], f"stage {name} runs as root (USER must be a numeric non-root uid)")
        if not s["volume"]:
            bad(s["line"], f"stage {name} declares no VOLUME for its state")
        if not (s["entrypoint"] or "").startswith("["):
            bad(s["line"], f"stage {name}: ENTRYPOINT in exec form")
    return errors


def lint_gatekeeper_enclave():
    """NM6: the production gatekeeper runs under gramine-sgx, and its manifest measures
    everything its trust rests on, with fixed arguments and no debug enclave."""
    errors = []
    manifest = ROOT / "deploy/gramine/keyvault.manifest.template"
    text = manifest.read_text() if manifest.exists() else ""
    lines = [l.split("#", 1)[0].strip() for l in text.splitlines()]
    body = "\n".join(lines)
    trusted = re.search(r"sgx\.trusted_files\s*=\s*\[(.*?)\]", body, re.S)
    trusted = re.findall(r'"file:([^"]+)"', trusted.group(1)) if trusted else []
    for must in ("/etc/phalanx/gatekeeper/", "/etc/phalanx/trusted/jwks.json", "/etc/phalanx/trusted/ca.pem", "/usr/local/bin/keyvault"):
        if must not in trusted:
            errors.append(f"{manifest.name}: {must} is not a trusted file")
    allowed = re.search(r"sgx\.allowed_files\s*=\s*\[(.*?)\]", body, re.S)
    allowed = re.findall(r'"file:([^"]+)"', allowed.group(1)) if allowed else []
    for a in allowed:
        # An allowed path that holds, contains or lies in a trusted one: unmeasured trust.
        if any(t.startswith(a) or a.startswith(t) for t in trusted) or a.startswith("/usr"):
            errors.append(f"{manifest.name}: {a} is allowed (unmeasured) but overlaps what is trusted")
    if 'loader.argv = ["keyvault", "--config", "/etc/phalanx/gatekeeper/gatekeeper-{pod}.toml", "serve"]' not in body:
        errors.append(f"{manifest.name}: the arguments are not fixed to the measured configs")
    for bad in ("insecure__", "sgx.debug = true", "use_host_env", "env_src_file", "argv_src_file", "[loader.env]"):
        if bad in body:
            errors.append(f"{manifest.name}: {bad}")
    if "sgx.debug = false" not in body:
        errors.append(f"{manifest.name}: sgx.debug = false is not said")
    passed = re.findall(r"loader\.env\.(\w+)\s*=\s*\{\s*passthrough", body)
    if passed != ["POD_INDEX"]:
        errors.append(f"{manifest.name}: host environment passed through: {passed}")
    dockerfile = (ROOT / "deploy/docker/Dockerfile").read_text()
    stage = dockerfile.split("AS gatekeeper-sgx", 1)[-1].split("\nFROM ", 1)[0]
    if 'ENTRYPOINT ["gramine-sgx", "keyvault"]' not in stage:
        errors.append("Dockerfile: the gatekeeper-sgx stage does not run under gramine-sgx")
    if "keyvault.manifest.template" not in stage or "gramine-sgx-sign" not in stage:
        errors.append("Dockerfile: the gatekeeper-sgx stage does not build and sign the manifest")
    return errors


def main():
    files = sorted(ROOT.joinpath("deploy").rglob("Dockerfile*"))
    errors = [e for f in files for e in lint(f)] + lint_gatekeeper_enclave()
    ignore = ROOT.joinpath(".dockerignore")
    patterns = ignore.read_text().split() if ignore.exists() else []
    for must in ("target", ".git", "deploy/compose/state", "phalanx-data"):
        if must not in patterns:
            errors.append(f".dockerignore: {must} is not excluded")
    if not files:
        errors.append("no Dockerfile under deploy/")
    for e in errors:
        print(e, file=sys.stderr)
    if errors:
        sys.exit(1)
    print(f"{len(files)} Dockerfile(s), .dockerignore: ok")


if __name__ == "__main__":
    main()
