"""`manifest.json`: what produced an artifact. Every stage writes one beside its outputs: the
command and config, package version, input file hashes, counts, and (for teacher calls) token
usage and cost, so a result can be traced and reproduced.

No secret reaches the disk: the value of any flag or config key that names a key, token, secret or
password is written as `***`, and so is the value of any such environment variable wherever it
appears, and a secret inside a URL (`http://user:KEY@host/v1`, `?api_key=KEY`). `mask_urls` is the
one masking of URLs, for whatever writes one: manifests, stats, error messages and logs
(`mask_log_handlers`)."""

from __future__ import annotations

import hashlib
import logging
import os
import platform
import re
import sys
import time
from pathlib import Path

from judge import __version__
from judge.core.jsonl import write_json


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def folder_fingerprint(path: str | os.PathLike, *, big: int | None = None) -> str:
    """sha256 over a file, or over a folder's files (relative names and contents, hidden files
    aside), so a retrained adapter at the same path reads as changed. Files above `big` bytes count
    by size and modification time instead (a 14 GB model is not read at every run). A path that
    does not exist here (a hub id, a served model's name) stands for itself."""
    root = Path(path)
    if not root.exists():
        return str(path)
    files = [root] if root.is_file() else sorted(f for f in root.rglob("*") if f.is_file()
                                                 and not any(part.startswith(".") for part in f.relative_to(root).parts))
    digest = hashlib.sha256()
    for f in files:
        stat = f.stat()
        digest.update(f"{f.relative_to(root) if f != root else f.name}\0".encode())
        digest.update(f"{stat.st_size}:{stat.st_mtime_ns}".encode() if big is not None and stat.st_size > big
                      else file_sha256(f).encode())
    return digest.hexdigest()


_SECRET_KEY = re.compile(r"(^|[-_])(api[-_]?key|access[-_]?key|secret([-_]?key)?|token|password)$", re.IGNORECASE)
_SECRET_ENV = re.compile(r"(^|_)(API_?KEY|ACCESS_KEY|SECRET|TOKEN|PASSWORD)(_|$)", re.IGNORECASE)
HIDDEN = "***"


_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]+")
# scheme://userinfo@ : the password, or a lone user name (often a token, as in https://TOKEN@host)
_USERINFO = re.compile(r"^(?P<head>[^:/]+://)(?:(?P<user>[^/?#@:]*):)?[^/?#@]*@")
_SECRET_PARAM = re.compile(r"(^|[-_.])(api[-_]?key|key|token|secret|password|passwd|sig|signature|auth|credentials?)$",
                           re.IGNORECASE)


def mask_urls(text: str) -> str:
    """`text` with the secret parts of every URL in it written as `***`: a password or token in the
    user info, and the values of query parameters named like keys. The rest stays readable.

    >>> mask_urls("cannot reach http://user:sk-1@host/v1?api_key=sk-2&model=m")
    'cannot reach http://user:***@host/v1?api_key=***&model=m'
    """
    return _URL.sub(lambda match: _mask_url(match.group()), text)


def _mask_url(url: str) -> str:
    url = _USERINFO.sub(lambda m: f"{m['head']}{'' if m['user'] is None else m['user'] + ':'}{HIDDEN}@", url)
    rest, question, query = url.partition("?")
    if not question:
        return url
    query, hash_, fragment = query.partition("#")
    params = []
    for param in query.split("&"):
        name, equals, value = param.partition("=")
        params.append(f"{name}={HIDDEN}" if equals and value and _SECRET_PARAM.search(name) else param)
    return f"{rest}?{'&'.join(params)}{hash_}{fragment}"


class _MaskUrls(logging.Filter):
    # The message and each argument are masked where they are: formatters such as uvicorn's access
    # log read `record.args` as a tuple of fields, so the record keeps its shape.
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = mask_urls(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_masked_arg(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: _masked_arg(v) for k, v in record.args.items()}
        return True


def _masked_arg(arg):
    """The argument itself, unless its text holds a secret: then that text masked (a number stays a
    number for `%d`)."""
    if isinstance(arg, (int, float)):
        return arg
    text = str(arg)
    masked = mask_urls(text)
    return arg if masked == text else masked


def mask_log_handlers(*loggers: str) -> None:
    """Mask secrets inside URLs in every line the handlers of the root logger and of `loggers` write
    (a handler's filter sees the records of the loggers below it too). Idempotent."""
    for name in ("", *loggers):
        for handler in logging.getLogger(name).handlers:
            if not any(isinstance(f, _MaskUrls) for f in handler.filters):
                handler.addFilter(_MaskUrls())


def redact_argv(argv: list[str]) -> list[str]:
    """The command line with the value of every secret flag (`--api-key K`, `--api-key=K`,
    `--teacher-api-key K`, `--hf-token K`) replaced by `***`.

    >>> redact_argv(["score", "--api-key", "sk-1", "--teacher-api-key=sk-2", "--max-tokens", "8"])
    ['score', '--api-key', '***', '--teacher-api-key=***', '--max-tokens', '8']
    """
    out, hide_next = [], False
    for arg in argv:
        name, eq, _ = arg.partition("=")
        if hide_next:
            out.append(HIDDEN)
            hide_next = False
        elif name.startswith("--") and _SECRET_KEY.search(name[2:]):
            out.append(f"{name}={HIDDEN}" if eq else arg)
            hide_next = not eq
        else:
            out.append(arg)
    return out


def redact(obj, secrets: list[str] | None = None):
    """`obj` (JSON-like) with secret config keys' values and the values of secret environment
    variables (OPENAI_API_KEY, HF_TOKEN, ...) replaced by `***`."""
    if secrets is None:
        secrets = [v for k, v in os.environ.items() if _SECRET_ENV.search(k) and len(v) >= 8]
    if isinstance(obj, dict):
        return {k: HIDDEN if isinstance(k, str) and _SECRET_KEY.search(k) and v else redact(v, secrets)
                for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [redact(v, secrets) for v in obj]
    if isinstance(obj, str):
        for secret in secrets:
            obj = obj.replace(secret, HIDDEN)
        return mask_urls(obj)
    return obj


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
        "command": redact_argv(sys.argv),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "python": platform.python_version(),
        "config": config,
        "inputs": files,
        "counts": counts or {},
        **extra,
    }
    manifest = redact(manifest)
    write_json(Path(out_dir) / filename, manifest)
    return manifest
