"""ServeConfig: `judgeforge serve`'s settings, each field with its help text (the CLI's flags are
generated from them, `judge.cli.options`). Kept apart from serve.server so that building the
command line imports no web stack."""

from __future__ import annotations

from dataclasses import dataclass

from judge.backends.dtype import DTYPES
from judge.core.configfile import option
from judge.core.errors import ConfigError


@dataclass
class ServeConfig:
    base: str | None = option(None, flag="--model", aliases=("--base",), metavar="MODEL", help="base model folder or hub id (with --upstream: the served model to judge with)")
    adapters: dict[str, str] = option(default_factory=dict, help=(
        "LoRA name -> adapter folder, each served as a judge; its judgeforge.json gives the template"))
    merged: bool = option(False, help="merge the one --adapter into --model and serve that (fast on CPU, where "
                                      "runtime LoRA is slow)")
    template: str | None = option(None, help="template for the base model (default: judgelm pairwise, "
                                             "prometheus-absolute pointwise)")
    upstream: str | None = option(None, metavar="URL", help="front a running OpenAI-compatible server instead of "
                                                            "starting vLLM")
    upstream_api_key: str | None = option(None, help="the upstream's key (default: OPENAI_API_KEY, but only when "
                                                     "--api-key guards this server)")
    host: str = option("127.0.0.1", help="bind address (default loopback; elsewhere, set --api-key: without one only "
                                         "requests whose Host is this address or localhost are answered)")
    port: int = option(8000, help="the judge API's port")
    api_key: str | None = option(None, help="require 'Authorization: Bearer KEY' on every route but /health "
                                            "(default: JUDGEFORGE_API_KEY)")
    dtype: str = option("auto", choices=DTYPES, help=(
        "vLLM: the model's dtype; auto: bfloat16 where the device computes it natively (CUDA compute capability "
        "8.0+, CPUs with avx512_bf16/amx_bf16), else float32 (an --engine-arg dtype=X wins)"))
    tensor_parallel_size: int | None = option(None, help="vLLM: GPUs per model")
    max_model_len: int | None = option(None, help="vLLM: context length (also the input length limit)")
    gpu_memory_utilization: float | None = option(None, help="vLLM: share of GPU memory to use")
    vllm_args: list[str] = option(default_factory=list, help="extra `vllm serve` arguments, one per item")
    timeout: float = option(600.0, help="seconds per judge request before 504; 600, as score's: the engine may queue a "
                                            "request behind whole batches")
    max_batch: int = option(64, help="items per /v1/judge/batch request")
    max_tokens: int = option(512, help="full-mode reply budget when a request sets none")
    startup_timeout: float = option(900.0, help="seconds to wait for vLLM to become healthy")
    engine_log: str | None = option(None, help="vLLM's log file (default: a temporary file, named at start)")
    max_body_mb: float = option(16.0, help="request body limit in MiB: 413 above")
    max_in_flight: int = option(256, help="POST requests worked on at once: 503 with Retry-After above")
    body_timeout: float = option(30.0, help="seconds a client has to send its whole request body: 408 after")
    reward_mode: str = option("logprob", choices=("full", "verdict", "logprob"), help=(
        "POST /get_reward's judging mode (logprob: the expected grade, a smooth reward)"))
    reward_kind: str = option("pointwise", choices=("pointwise", "pairwise"), help=(
        "/get_reward: grade each completion (pointwise) or compare it with its label (pairwise: P(win) + P(tie)/2)"))
    reward_judge: str | None = option(None, help="/get_reward's judge (default: the first)")
    reward_template: str | None = option(None, help="/get_reward's template (default: the judge's own for the kind)")
    reward_unparsed: float | None = option(None, metavar="VALUE", help=(
        "/get_reward's reward for a judgment without a grade (default: none, such a request is refused with 422)"))

    def __post_init__(self):
        if not self.base and not self.upstream:
            raise ConfigError("--model is required unless --upstream names a running server")
        if self.merged and (len(self.adapters) != 1 or self.upstream):
            raise ConfigError("--merged serves exactly one --adapter merged into --model; it starts its own engine "
                              "(drop --upstream)")
        if self.upstream and (self.vllm_args or self.tensor_parallel_size or self.gpu_memory_utilization):
            raise ConfigError("--engine-arg, --tensor-parallel-size and --gpu-memory-utilization configure the engine "
                              "judgeforge starts; with --upstream there is none")
        if self.max_batch < 1 or self.timeout <= 0:
            raise ConfigError("--max-batch must be at least 1 and --timeout positive")
        if self.max_in_flight < 1 or self.max_body_mb <= 0 or self.body_timeout <= 0:
            raise ConfigError("--max-in-flight must be at least 1, --max-body-mb and --body-timeout positive")
