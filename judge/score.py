"""`judgeforge score`: judge a whole dataset offline and write predictions.jsonl (Verdict records).

Three backends behind one interface: `vllm` (offline vllm.LLM), `hf` (transformers + peft), `openai`
(any OpenAI-compatible endpoint, `judgeforge serve` included). Resumable: verdicts are appended to
`OUT.partial` batch by batch (fsynced), a rerun skips every (id, order) already there, and the
final file is written atomically in item order when all are done.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .backends.base import Backend
from .errors import ConfigError, InputError
from .judging import MODES, iter_verdicts, orders_for, params_for
from .jsonl import AppendLog, read_items, write_jsonl
from .manifest import write_manifest
from .records import Verdict, from_row, mode_of
from .templates import DEFAULT_TEMPLATE, Template, get_template

BACKENDS = ("vllm", "hf", "openai")


@dataclass
class ScoreConfig:
    input: str
    out: str
    backend: str = "vllm"
    model: str = ""
    adapter: str | None = None
    template: str | None = None
    swap: bool = False
    mode: str = "full"
    max_tokens: int = 512
    batch_size: int = 256
    name: str | None = None  # the judge's name in verdicts (default: adapter or model folder name)
    base_url: str | None = None  # openai backend
    api_key: str | None = None
    concurrency: int = 16
    tensor_parallel_size: int = 1
    max_model_len: int | None = None
    limit: int | None = None
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.backend not in BACKENDS:
            raise ConfigError(f"--backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.mode not in MODES:
            raise ConfigError(f"--mode must be one of {', '.join(MODES)}, got {self.mode!r}")

    def resume_key(self) -> str:
        """What must match for a partial run to be resumed (the api key is not part of it)."""
        keep = {k: v for k, v in asdict(self).items() if k not in ("api_key", "limit", "batch_size", "concurrency", "out")}
        return hashlib.sha256(json.dumps(keep, sort_keys=True, default=str).encode()).hexdigest()[:16]


def resolve_template(config: ScoreConfig, items: list) -> Template:
    """--template, else the adapter's own template (judgeforge.json), else the default for the mode."""
    name = config.template
    if not name and config.adapter:
        from .adapters import adapter_template

        name = adapter_template(config.adapter)
    mode = mode_of(items[0])
    template = get_template(name or DEFAULT_TEMPLATE[mode])
    if template.mode != mode:
        raise ConfigError(f"template {template.name} is {template.mode} but {config.input} holds {mode} items")
    return template


def make_backend(config: ScoreConfig) -> Backend:
    """The backend `config` names; the judge's name in verdicts is --name, else the adapter's or
    the model's folder name, the same whichever backend judges."""
    if config.backend == "vllm":
        from .backends.vllm import VLLMBackend

        backend = VLLMBackend(config.model, adapter=config.adapter, tensor_parallel_size=config.tensor_parallel_size,
                              max_model_len=config.max_model_len, **config.extra)
    elif config.backend == "hf":
        from .backends.hf import HFBackend

        backend = HFBackend(config.model, adapter=config.adapter, **config.extra)
    else:
        from .backends.openai import OpenAIBackend

        served = Path(config.adapter).name if config.adapter else config.model
        backend = OpenAIBackend(model=served, base_url=config.base_url, api_key=config.api_key,
                                concurrency=config.concurrency, **config.extra)
    backend.name = config.name or Path(config.adapter or config.model).name
    return backend


def _partial_paths(out: Path) -> tuple[Path, Path]:
    return out.with_name(out.name + ".partial"), out.with_name(out.name + ".partial.json")


def score(config: ScoreConfig, backend: Backend | None = None, *, progress: bool = True) -> dict:
    """Judge every item of `config.input` (both orders with `swap`); returns the run's counts.
    `backend` overrides the one `config` names (tests pass a fake)."""
    items = read_items(config.input)
    if config.limit:
        items = items[: config.limit]
    if not items:
        raise InputError("no items to score", config.input)
    template = resolve_template(config, items)
    params = params_for(template, config.mode, max_tokens=config.max_tokens)
    out = Path(config.out)
    log_path, key_path = _partial_paths(out)
    key = config.resume_key()
    if log_path.exists() and key_path.exists() and json.loads(key_path.read_text()).get("key") != key:
        raise ConfigError(f"{log_path} holds a partial run made with other settings; delete it or rerun with the "
                          f"same flags (see {key_path})")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    key_path.write_text(json.dumps({"key": key, "config": {**asdict(config), "api_key": None}}, default=str))
    log = AppendLog(log_path)
    kept = [from_row(Verdict, row, extra_to_meta=False) for row in log.rows()]
    done = {(v.id, v.order) for v in kept}
    wanted = {(i.id, o) for i in items for o in orders_for(config.swap, template.mode)}
    pending = len(wanted - done)
    started, judged = time.monotonic(), 0
    if pending:
        owned = backend is None
        backend = backend or make_backend(config)
        from tqdm import tqdm

        try:
            with tqdm(total=len(wanted), initial=len(wanted) - pending, unit="call", desc=f"score {backend.name}",
                      disable=not progress, dynamic_ncols=True) as bar:
                for batch in iter_verdicts(items, template, backend, mode=config.mode, swap=config.swap,
                                           batch_size=config.batch_size, params=params, done=done, progress=bar):
                    log.append(batch)
                    kept.extend(batch)
                    judged += len(batch)
        finally:
            log.close()
            if owned and hasattr(backend, "close"):
                backend.close()
    log.close()
    by_key = {(v.id, v.order): v for v in kept}
    ordered = [by_key[(i.id, o)] for i in items for o in orders_for(config.swap, template.mode) if (i.id, o) in by_key]
    write_jsonl(out, ordered)
    elapsed = time.monotonic() - started
    counts = {
        "items": len(items), "verdicts": len(ordered), "judged_now": judged, "resumed": len(ordered) - judged,
        "parse_failures": sum(not v.parse_ok for v in ordered), "seconds": round(elapsed, 3),
        "items_per_second": round(judged / (len(orders_for(config.swap, template.mode)) * elapsed), 3) if judged and elapsed else None,
        "prompt_tokens": sum((v.usage or {}).get("prompt_tokens", 0) for v in ordered),
        "completion_tokens": sum((v.usage or {}).get("completion_tokens", 0) for v in ordered),
    }
    write_manifest_for(out, config, template, counts)
    log.remove()
    key_path.unlink(missing_ok=True)
    return counts


def write_manifest_for(out: Path, config: ScoreConfig, template: Template, counts: dict) -> None:
    """predictions.jsonl -> predictions.manifest.json (several prediction files may share a folder)."""
    write_manifest(out.parent, "score", filename=f"{out.stem}.manifest.json",
                   config={**asdict(config), "api_key": None, "template": template.key, "template_hash": template.text_hash},
                   inputs={"items": config.input, **({"adapter": config.adapter} if config.adapter else {})},
                   counts=counts)
