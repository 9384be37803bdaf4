"""The adapter folder's `judgeforge.json`: what a trained judge needs to be queried the way it was
trained (its template, name@version and hash), and where it came from (base model, training data
hash, best validation metric, LoRA shape). `train` writes it beside the PEFT adapter, `merge`
copies it into the merged model; `serve` and `score` read the template and the rank from it, and
`choose_template` is how every caller picks the template a judge is asked with."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from judge import __version__
from judge.core.errors import ConfigError
from judge.core.jsonl import write_json

if TYPE_CHECKING:
    from judge.templates import Template

META_FILE = "judgeforge.json"


@dataclass
class AdapterInfo:
    template: str  # name@version
    template_hash: str
    mode: str  # pairwise | pointwise
    base_model: str
    train_data_sha256: str | None = None
    val_data_sha256: str | None = None
    best_metric: dict | None = None  # {"name": "accuracy", "value": 0.95, "step": 40, "checkpoint": ...}
    lora: dict = field(default_factory=dict)  # {"r", "alpha", "dropout", "target_modules"}
    quantization: str = "none"
    # BitsAndBytesConfig's arguments the base was quantized with (4bit: nf4, double quant, compute dtype), or None
    quantization_config: dict | None = None
    merged_from: str | None = None  # set on a merged model: the adapter folder it came from
    judgeforge_version: str = __version__


def write_adapter_info(folder: str | os.PathLike, info: AdapterInfo) -> Path:
    path = Path(folder) / META_FILE
    write_json(path, dataclasses.asdict(info))
    return path


def read_adapter_info(folder: str | os.PathLike) -> AdapterInfo:
    path = Path(folder) / META_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{folder} has no {META_FILE}: not an adapter trained by judgeforge "
                          f"(pass --template to say which prompt it expects)") from None
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}: malformed JSON ({e.msg} at line {e.lineno})") from None
    known = {f.name for f in dataclasses.fields(AdapterInfo)}
    try:
        return AdapterInfo(**{k: v for k, v in data.items() if k in known})
    except TypeError as e:
        raise ConfigError(f"{path}: {e}") from None


def find_adapter_info(folder: str | os.PathLike) -> AdapterInfo | None:
    """The folder's judgeforge.json, or None for an adapter made elsewhere (a malformed one still raises)."""
    return read_adapter_info(folder) if (Path(folder) / META_FILE).exists() else None


def adapter_template(path: str | os.PathLike) -> str:
    """The template (name@version) the adapter (or merged model) was trained with."""
    return read_adapter_info(path).template


def choose_template(mode: str, *, explicit: str | None = None, info: AdapterInfo | None = None,
                    fallback: str | None = None, context: str = "") -> Template:
    """The template a judge is asked with for `mode` items: the one rule of `score`, the judge
    server and the cascade (DESIGN.md). In order: `explicit` (score's --template, a request's
    `template`); else the judge's own, from its adapter's judgeforge.json (`info`); else
    `fallback` (serve's --template for a plain model) when it is a `mode` template; else the
    mode's default (judgelm, prometheus-absolute). An explicit or own template of another mode is
    refused (ConfigError: "template T is M" + `context`), never swapped silently for another."""
    from judge.templates import DEFAULT_TEMPLATE, get_template

    if explicit or info:
        template = get_template(explicit or info.template)
    else:
        name = fallback if fallback and get_template(fallback).mode == mode else DEFAULT_TEMPLATE[mode]
        template = get_template(name)
    if template.mode != mode:
        raise ConfigError(f"template {template.name} is {template.mode}{context or f'; {mode} needed'}")
    return template


def adapter_rank(path: str | os.PathLike) -> int:
    """The LoRA rank of a PEFT adapter folder (vLLM's --max-lora-rank must cover it)."""
    config = Path(path) / "adapter_config.json"
    if not config.exists():
        raise ConfigError(f"{path} is not a PEFT adapter folder (no adapter_config.json)")
    return int(json.loads(config.read_text(encoding="utf-8"))["r"])


def vllm_lora_rank(rank: int) -> int:
    """The smallest --max-lora-rank vLLM accepts that covers `rank` (vLLM takes only these values)."""
    for allowed in (1, 8, 16, 32, 64, 128, 256, 320, 512):
        if rank <= allowed:
            return allowed
    raise ConfigError(f"LoRA rank {rank} is larger than vLLM supports (512)")
