"""`--engine-arg`: settings passed through to the engine, one flag and one syntax in every verb that
starts one. `score` hands them to the backend's constructor (vllm.LLM, HFBackend) as keywords,
`serve` to `vllm serve` as command-line flags, so each form is read by both:

    --engine-arg KEY=VALUE            value read as YAML: max_num_seqs=64, enforce_eager=true,
                                      compilation_config=0, dtype=bfloat16
    --engine-arg=--FLAG[=VALUE]       vLLM's own spelling: --engine-arg=--enforce-eager,
    --engine-arg '--FLAG VALUE'       --engine-arg '--max-num-seqs 64', --no-enable-prefix-caching

A key is the same either way ('-' and '_' alike); `--no-FLAG` sets FLAG to false. `serve` passes
vLLM's flags through as written (so `--engine-arg=-O0` works there, as with the older `--vllm-arg`)."""

from __future__ import annotations

import json
import shlex

from judge.core.errors import ConfigError


def engine_kwargs(values: list[str]) -> dict:
    """Keywords for a backend's constructor (`score`), from either form."""
    kwargs = {}
    for value in values:
        kwargs.update(_flag_items(value) if value.startswith("-") else [_pair(value)])
    return kwargs


def engine_flags(values: list[str]) -> list[str]:
    """`vllm serve` arguments (`serve`): vLLM's own flags as given (any of its spellings, `-O0`
    included), KEY=VALUE as --key VALUE (true: --key, false: --no-key, mappings and lists as JSON)."""
    flags = []
    for value in values:
        if value.startswith("-"):
            flags += shlex.split(value)
            continue
        key, setting = _pair(value)
        flag = "--" + key.replace("_", "-")
        if setting is True or setting is False:
            flags.append(flag if setting else "--no-" + flag[2:])
        else:
            flags += [flag, json.dumps(setting) if isinstance(setting, (dict, list)) else str(setting)]
    return flags


def _pair(value: str) -> tuple[str, object]:
    import yaml

    key, sep, text = value.partition("=")
    if not sep or not key.strip() or not text.strip():  # `KEY=` would pass None: the engine's default, unasked
        raise ConfigError(f"--engine-arg takes KEY=VALUE or a --flag, got {value!r}")
    return _key(key), yaml.safe_load(text)


def _flag_items(value: str) -> list[tuple[str, object]]:
    """`--flag`, `--flag=VALUE`, `--flag VALUE`, `--no-flag` (one or several in one value) as keywords."""
    import yaml

    items, tokens = [], shlex.split(value)
    while tokens:
        token = tokens.pop(0)
        if not token.startswith("--") or len(token) == 2:
            raise ConfigError(f"--engine-arg {value!r}: {token!r} has no keyword spelling here; give KEY=VALUE")
        name, sep, text = token[2:].partition("=")
        if not sep and tokens and not tokens[0].startswith("--"):
            text, sep = tokens.pop(0), "="
        if sep:
            items.append((_key(name), yaml.safe_load(text)))
        else:
            items.append((_key(name[3:]), False) if name.startswith("no-") else (_key(name), True))
    return items


def _key(name: str) -> str:
    return name.strip().replace("-", "_")
