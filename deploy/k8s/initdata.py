#!/usr/bin/env python3
"""The pRuntime pod's Confidential Containers initdata (deploy/k8s/base/config/
pruntime-initdata.toml): prints the pod annotation that carries it (gzip, then base64)
and the MRCONFIGID Kata binds for it (its SHA-384), from which the pRuntime TD's tenant
follows (`phalanx quote verify` on a quote of the pod prints it). Run it after editing
the document and paste the annotation into deploy/k8s/base/pruntime.yaml; check.py
fails while the two differ.

    deploy/k8s/initdata.py [DOC]"""
import base64
import gzip
import hashlib
import json
import sys
from pathlib import Path

DOC = Path(__file__).resolve().parent / "base/config/pruntime-initdata.toml"
ANNOTATION = "io.katacontainers.config.hypervisor.cc_init_data"


def annotation(doc: bytes) -> str:
    return base64.b64encode(gzip.compress(doc, mtime=0)).decode()


def decode(value: str) -> bytes:
    return gzip.decompress(base64.b64decode(value, validate=True))


def mr_config_id(doc: bytes) -> str:
    return hashlib.sha384(doc).hexdigest()


def main():
    doc = Path(sys.argv[1]).read_bytes() if len(sys.argv) > 1 else DOC.read_bytes()
    print(json.dumps({ANNOTATION: annotation(doc), "mr_config_id": mr_config_id(doc)}, indent=1))


if __name__ == "__main__":
    main()
