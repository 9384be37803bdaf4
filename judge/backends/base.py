"""The backend interface. A backend turns a batch of rendered prompts into generations; it knows
nothing about templates or verdicts (that is `judge.scoring.judging`'s job).

Prompts arrive as `Prompt`s (chat messages plus the equivalent raw text): a backend with a chat
template uses the messages, one without uses the raw text.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from judge.core.errors import JudgeforgeError
from judge.templates import Prompt


@dataclass(frozen=True)
class GenerationParams:
    max_tokens: int = 512
    temperature: float = 0.0
    seed: int | None = 0
    regex: str | None = None  # constrain the reply to this regex (structured output: `verdict` mode)
    logprobs: int | None = None  # return this many top logprobs per generated token (`logprob` mode)
    stop: tuple[str, ...] = ()


@dataclass
class Request:
    """One generation: the rendered prompt and how to sample it. `adapter` selects a LoRA adapter
    (or model name) where the backend serves several."""

    prompt: Prompt
    params: GenerationParams = field(default_factory=GenerationParams)
    adapter: str | None = None
    # What else makes this request distinct for a reply cache, beyond the body it sends (distill:
    # the template's name@version and text hash, the sample index, the rewrite variant).
    identity: dict | None = None


@dataclass
class Generation:
    text: str
    tokens: list[str] | None = None  # generated tokens' text (with logprobs)
    top_logprobs: list[dict[str, float]] | None = None  # per generated position: token text -> logprob
    usage: dict | None = None  # {"prompt_tokens": n, "completion_tokens": m}
    error: str | None = None  # a per-request failure (e.g. too long for the context); text is then ""
    model: str | None = None  # the model name the server answered with
    finish_reason: str | None = None


class BackendError(JudgeforgeError):
    """The backend cannot go on (its endpoint is down, refuses the key, or retries ran out): the run
    stops with exit 1. Never a verdict. `partial` holds the generations of the failed batch that did
    come back (None where not), so the caller keeps what was really judged."""

    def __init__(self, message: str, partial: list[Generation | None] | None = None):
        super().__init__(message)
        self.partial = partial or []


@runtime_checkable
class Backend(Protocol):
    name: str  # the judge's name as recorded in verdicts (model path or served name)

    def generate(self, requests: Sequence[Request]) -> list[Generation]:
        """One Generation per request, in order; a failure of one request only (a prompt too long for
        the context) is `Generation(error=...)`; a failure that stops the run raises BackendError."""
        ...


def served_model(backend: Backend, request: Request) -> str:
    """The model a request is sent to: its adapter, else the backend's model (its name for backends
    that have no separate model name)."""
    return request.adapter or getattr(backend, "model", None) or backend.name


class FakeBackend:
    """A deterministic backend for tests and dry runs: `reply(request) -> str` decides the text.

    The default reply echoes nothing useful (it never parses), so tests must say what they expect.
    """

    def __init__(self, reply: Callable[[Request], str] | None = None, name: str = "fake-judge"):
        self.name = name
        self.reply = reply or (lambda request: "")
        self.calls: list[Request] = []

    def generate(self, requests: Sequence[Request]) -> list[Generation]:
        self.calls.extend(requests)
        out = []
        for request in requests:
            text = self.reply(request)
            out.append(Generation(text=text, usage={"prompt_tokens": len(request.prompt.text.split()),
                                                   "completion_tokens": len(text.split())}))
        return out

    async def acomplete(self, request: Request) -> Generation:
        return self.generate([request])[0]
