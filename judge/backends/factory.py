"""The backend a score run names (`--backend vllm|hf|openai` with its model, adapter and engine
settings), built the same way in the scoring process and in each Ray replica (judge.scoring.ray)."""

from __future__ import annotations

from pathlib import Path

from judge.backends.base import Backend
from judge.backends.retry import RetryPolicy
from judge.core.errors import ConfigError


def make_backend(config) -> Backend:
    """The backend `config` (a `judge.scoring.score.ScoreConfig`) names; the judge's name in verdicts is
    --name, else the adapter's or the model's folder name, the same whichever backend judges."""
    if config.backend in ("vllm", "hf"):
        extra = dict(config.extra)
        dtype = extra.pop("dtype", config.dtype)  # --engine-arg dtype=X: the older spelling of --dtype X
        if config.dtype not in ("auto", dtype):
            raise ConfigError(f"--dtype {config.dtype} and --engine-arg dtype={dtype} disagree: give one")
    if config.backend == "vllm":
        from judge.backends.vllm import VLLMBackend

        backend = VLLMBackend(config.model, adapter=config.adapter, tensor_parallel_size=config.tensor_parallel_size,
                              max_model_len=config.max_model_len, dtype=dtype, **extra)
    elif config.backend == "hf":
        from judge.backends.hf import HFBackend

        backend = HFBackend(config.model, adapter=config.adapter, dtype=dtype, load_in_4bit=config.load_in_4bit,
                            **extra)
    else:
        from judge.backends.openai import OpenAIBackend

        served = Path(config.adapter).name if config.adapter else config.model
        backend = OpenAIBackend(model=served, base_url=config.base_url, api_key=config.api_key,
                                concurrency=config.concurrency, timeout=config.timeout,
                                retry=RetryPolicy(max_retries=config.max_retries), **config.extra)
    backend.name = config.name or Path(config.adapter or config.model).name
    return backend
