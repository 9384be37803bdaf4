"""distill's settings: the teacher endpoint (`TeacherConfig`, which builds its OpenAIBackend) and the
run (`DistillConfig`)."""

from __future__ import annotations

import os
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ..backends.base import GenerationParams
from ..backends.openai import OpenAIBackend
from ..batch import RETRY_MODES
from ..errors import ConfigError, TeacherError
from ..retry import Endpoint, RetryPolicy


@dataclass(frozen=True)
class TeacherConfig:
    model: str
    base_url: str | None = None  # default: $OPENAI_BASE_URL, else OpenAI
    api_key: str | None = None  # default: $OPENAI_API_KEY
    concurrency: int = 8  # requests in flight at once (a request keeps its slot while it backs off)
    timeout: float = 120.0  # seconds per attempt
    max_retries: int = RetryPolicy.max_retries  # the retry policy's defaults live in judge.retry
    temperature: float = 0.0
    seed: int | None = 0
    max_tokens: int = 1024
    regex: str | None = None  # constrain replies with vLLM structured outputs (vLLM-served teachers only)
    backoff: float = RetryPolicy.backoff
    max_backoff: float = RetryPolicy.max_backoff
    max_retry_after: float = RetryPolicy.max_retry_after

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
    input: str  # items JSONL (PairItems for pairwise templates, SingleItems for pointwise)
    template: str  # template name (or name@version)
    teacher: TeacherConfig
    out: str  # output folder
    mode: str | None = None  # "pairwise" | "pointwise"; must match the template's (default: the template's)
    swap: bool = True  # pairwise: judge both answer orders
    samples: int = 1  # ask K times per (item, order); K > 1 wants temperature > 0
    max_cost: float | None = None  # USD for the whole job, cached replies included
    reference_free_rewrite: bool = False
    verdict_only: bool = False  # ask for the verdict alone, constrained to the template's verdict regex
    prices: str | None = None  # price table (default configs/prices.yaml)
    progress: bool = True
    batch: bool = False  # send through the Batch API (judge.batch) instead of live requests
    batch_retry: str = "live"  # rows of a batch's error file: sent "live", or in one follow-up "batch"
    batch_cancel: bool = False  # cancel this run's open batches, keep what they completed, submit nothing
    batch_max_requests: int = 50_000  # per input file (OpenAI's limit)
    batch_max_bytes: int = 200_000_000  # per input file (OpenAI's limit: 200 MB)
    batch_poll: float = 30.0  # seconds between status checks of open batches

    def __post_init__(self):
        if self.samples < 1:
            raise ConfigError(f"--samples must be at least 1, got {self.samples}")
        if self.max_cost is not None and self.max_cost < 0:
            raise ConfigError(f"--max-cost must be 0 or more, got {self.max_cost}")
        if self.batch_retry not in RETRY_MODES:
            raise ConfigError(f"--batch-retry must be one of {', '.join(RETRY_MODES)}, got {self.batch_retry!r}")
        if self.batch_max_requests < 1 or self.batch_max_bytes < 1 or self.batch_poll <= 0:
            raise ConfigError("--batch-max-requests, --batch-max-bytes and --batch-poll must be positive")
