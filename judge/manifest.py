"""`manifest.json`: what produced an artifact. Every stage writes one beside its outputs: the
command and config, package version, input file hashes, counts, and (for teacher calls) token
usage and cost, so a result can be traced and reproduced."""

from __future__ import annotations

import hashlib
import platform
import sys
import time
from pathlib import Path

from . import __version__
from .jsonl import write_json


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(out_dir: str | Path, stage: str, *, config: dict, inputs: dict[str, str | Path] | None = None,
                   counts: dict | None = None, filename: str = "manifest.json", **extra) -> dict:
    """Write OUT_DIR/manifest.json (atomically) and return it. `inputs` maps a role to a file path;
    each is recorded with its size and sha256. `filename` names it otherwise where several outputs
    share a folder (score: predictions.manifest.json)."""
    files = {}
    for role, path in (inputs or {}).items():
        p = Path(path)
        if p.is_file():
            files[role] = {"path": str(p), "bytes": p.stat().st_size, "sha256": file_sha256(p)}
        elif p.exists():
            files[role] = {"path": str(p)}
    manifest = {
        "stage": stage,
        "judgeforge_version": __version__,
        "command": sys.argv,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "python": platform.python_version(),
        "config": config,
        "inputs": files,
        "counts": counts or {},
        **extra,
    }
    write_json(Path(out_dir) / filename, manifest)
    return manifest
