"""distill's settings: the teacher endpoint (`TeacherConfig`, which builds its OpenAIBackend) and the
run (`DistillConfig`). Each field carries its default, help and choices (`judge.core.configfile.option`):
`judgeforge distill`'s flags and its `--config FILE.yaml` keys are generated from them."""

from __future__ import annotations

import os
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from judge.backends.base import GenerationParams
from judge.backends.openai import OpenAIBackend
from judge.backends.retry import Endpoint, RetryPolicy
from judge.core.configfile import option
from judge.core.errors import ConfigError, TeacherError

MODES = ("pairwise", "pointwise")
RETRY_MODES = ("live", "batch")  # --batch-retry: where a batch's error rows are asked again (judge.distill.batch reads it)


@dataclass(frozen=True)
class TeacherConfig:
    model: str = option(flag="--teacher-model", help="model name at the endpoint, e.g. gpt-4o")
    base_url: str | None = option(None, flag="--teacher-base-url",
                                  help="OpenAI-compatible endpoint ending in /v1 (default: OPENAI_BASE_URL or OpenAI)")
    api_key: str | None = option(None, help="the endpoint's key (default: OPENAI_API_KEY; no flag: keys stay off "
                                            "command lines)")
    concurrency: int = option(8, help="requests in flight at once (a request keeps its slot while it backs off); 8, within a hosted "
                                        "teacher's usual rate limits (score's 16 is for a local server)")
    timeout: float = option(120.0, help="seconds per request attempt; 120, as a hosted teacher answers in seconds and a "
                                            "stalled request is better retried (score's 600 waits behind a local queue)")
    max_retries: int = option(RetryPolicy.max_retries, help="retries per request on 429/5xx/timeouts")
    temperature: float = option(0.0, help="sampling temperature")
    seed: int | None = option(0, help="sampling seed (sample k uses seed + k)")
    max_tokens: int = option(1024, help="reply length limit; 1024, since the teacher's explanation becomes the training "
                                         "target (score and serve default to 512 for a judge's reply)")
    regex: str | None = option(None, help="constrain replies with vLLM structured outputs (vLLM-served teachers "
                                          "only; --verdict-only sets the template's verdict regex)")
    backoff: float = option(RetryPolicy.backoff, help="first retry waits 0.5-1x this many seconds, doubling per retry")
    max_backoff: float = option(RetryPolicy.max_backoff, help="longest wait between retries, seconds")
    max_retry_after: float = option(RetryPolicy.max_retry_after,
                                    help="a longer Retry-After stops the run (rerun later) instead of sleeping")

    def __post_init__(self):
        if self.concurrency < 1:
            raise ConfigError(f"--concurrency must be at least 1, got {self.concurrency}")
        if self.timeout <= 0:
            raise ConfigError(f"--timeout must be positive, got {self.timeout}")
        if self.max_tokens < 1:
            raise ConfigError(f"--max-tokens must be at least 1, got {self.max_tokens}")
        self.retry_policy  # checks --max-retries and the backoff settings now, before any work

    @property
    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(self.max_retries, self.backoff, self.max_backoff, self.max_retry_after)

    @property
    def resolved_base_url(self) -> str | None:
        return self.base_url or os.environ.get("OPENAI_BASE_URL") or None

    @property
    def where(self) -> str:
        return self.resolved_base_url or "https://api.openai.com/v1"

    def params(self, sample: int = 0) -> GenerationParams:
        """How a request is sampled. Sample k uses seed + k, so K samples differ even on a server that
        honours the seed."""
        return GenerationParams(max_tokens=self.max_tokens, temperature=self.temperature, regex=self.regex,
                                seed=None if self.seed is None else self.seed + sample)

    def backend(self, *, sleep: Callable[[float], Awaitable[None]] | None = None,
                rng: random.Random | None = None) -> OpenAIBackend:
        """The teacher as a Backend; a failure no retry can fix raises TeacherError."""
        api_key = self.api_key or os.environ.get("OPENAI_API_KEY")
        if not api_key and self.resolved_base_url is None:
            raise ConfigError("no API key for OpenAI: set OPENAI_API_KEY, or point --teacher-base-url at a "
                              "local server (vLLM, Ollama) that needs none")
        endpoint = Endpoint("the teacher", self.where, self.model, "--teacher-model", "--teacher-base-url",
                            "everything answered so far is cached, rerun to resume")
        extra = {"sleep": sleep} if sleep is not None else {}
        return OpenAIBackend(self.model, self.where, api_key or "unused", concurrency=self.concurrency,
                             timeout=self.timeout, retry=self.retry_policy, endpoint=endpoint, error=TeacherError,
                             rng=rng, **extra)


@dataclass
class DistillConfig:
    input: str = option(help="items JSONL (pairs for pairwise templates, single answers for pointwise)")
    template: str = option(help="prompt template name, or name@version (see the README's template table)")
    teacher: TeacherConfig = option(help="the teacher endpoint (its own flags)")
    out: str = option(help="output folder")
    mode: str | None = option(None, choices=MODES, help="must match the template's mode (default: the template's)")
    swap: bool = option(True, help="pairwise: judge both answer orders; on here because filter drops the verdicts that "
                                     "flip when the answers are swapped (score's default is off)")
    samples: int = option(1, help="ask K times per item and order (use with --temperature > 0)")
    max_cost: float | None = option(None, help="USD budget for the whole job, cached replies included; stops "
                                               "cleanly before exceeding it")
    reference_free_rewrite: bool = option(False, help="pointwise: a second turn rewrites each reference-based "
                                                      "critique without the reference (CritiqueLLM), the target for "
                                                      "the no-reference prompt")
    verdict_only: bool = option(False, help="ask for the verdict alone, held to the template's verdict format with "
                                            "vLLM structured outputs (for vLLM-served teachers; OpenAI rejects the "
                                            "field)")
    prices: str | None = option(None, help="price table YAML (default configs/prices.yaml)")
    progress: bool = option(True, help="a progress bar")
    batch: bool = option(False, help="send the uncached requests through the OpenAI Batch API (half price, within "
                                     "24 h): uploaded, submitted, polled, stored in the same cache; a rerun "
                                     "re-attaches")
    batch_retry: str = option("live", choices=RETRY_MODES, help="rows in a batch's error file (expired rows "
                                                                "included): retried live, or in one follow-up batch")
    batch_cancel: bool = option(False, help="cancel the open batches of this --out, keep what they completed, "
                                            "submit nothing")
    batch_max_requests: int = option(50_000, help="requests per batch input file (OpenAI's limit)")
    batch_max_bytes: int = option(200_000_000, help="bytes per batch input file (OpenAI's limit: 200 MB)")
    batch_poll: float = option(30.0, help="seconds between batch status checks")

    def __post_init__(self):
        if self.samples < 1:
            raise ConfigError(f"--samples must be at least 1, got {self.samples}")
        if self.max_cost is not None and self.max_cost < 0:
            raise ConfigError(f"--max-cost must be 0 or more, got {self.max_cost}")
        if self.batch_retry not in RETRY_MODES:
            raise ConfigError(f"--batch-retry must be one of {', '.join(RETRY_MODES)}, got {self.batch_retry!r}")
        if self.batch_max_requests < 1 or self.batch_max_bytes < 1 or self.batch_poll <= 0:
            raise ConfigError("--batch-max-requests, --batch-max-bytes and --batch-poll must be positive")
