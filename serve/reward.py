"""`POST /get_reward`: the judge as a remote reward model in OpenRLHF's protocol
(`--remote_rm_url http://HOST:PORT/get_reward`; openrlhf 0.11.2, utils/agent.py
`_fetch_rewards_via_http` is the client, cli/serve_rm.py the reference server).

The client posts `{"query": [...], "prompts": [...], "labels": [...]}`: `query[i]` is the prompt
text followed by the completion, `labels[i]` (optional) a reference answer. The answer is
`{"rewards": [...], "scores": [...], "extra_logs": {...}}`, one float per query. Each completion is
judged and rewarded exactly as `judge.reward.JudgeReward` does for TRL (the shared plan in
`judge.reward.plan`), through the server's own engine client, render and length check.

OpenRLHF trains on whatever number it gets, so a judgment without a grade is an error naming the
items (422), never a reward, unless the server (or the request) sets `unparsed`, an explicit
stand-in; `extra_logs.judge_unparsed` then marks the items that got it.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from judge.core.errors import ConfigError
from judge.reward.plan import TEMPLATE_MODE, plan_calls, rewards_from
from judge.scoring.judging import params_for, request_for, verdict_from

from serve.errors import Invalid, TooLarge
from serve.protocol import Mode
from serve.service import JudgeService

# A group reward needs every completion of a prompt in one request, which OpenRLHF does not send.
RewardKind = Literal["pointwise", "pairwise"]


@dataclass(frozen=True)
class RewardSettings:
    """The server's reward defaults (`--reward-*`); a request may override each."""

    mode: str = "logprob"
    kind: str = "pointwise"  # or "pairwise" (RewardKind)
    judge: str | None = None  # default: the server's first judge
    template: str | None = None  # default: the judge's own template for the kind's mode
    unparsed: float | None = None  # the reward of a judgment without a grade; None: such a batch is an error


class RewardRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: list[str] = Field(description="each prompt followed by its completion, as OpenRLHF sends them")
    prompts: list[str] = Field(description="the prompt of each query; the completion is what follows it")
    labels: list[str | int | float | None] | None = Field(
        None, description="reference answers, one per query (null or empty: none)")
    mode: Mode | None = Field(None, description="override the server's --reward-mode")
    kind: RewardKind | None = Field(None, description="pointwise (default) or pairwise (against the label)")
    judge: str | None = Field(None, description="override the server's --reward-judge")
    template: str | None = Field(None, description="override the server's --reward-template")
    unparsed: float | None = Field(None, allow_inf_nan=False, description="override the server's --reward-unparsed")


class RewardResponse(BaseModel):
    rewards: list[float]
    scores: list[float] = Field(description="the same as rewards (OpenRLHF logs them as scores)")
    extra_logs: dict[str, list[float]] = Field(
        description="judge_grade: the judge's raw grade (its scale; pairwise: P(win) + P(tie)/2), or the stand-in "
                    "where it gave none; judge_unparsed: 1 where the judgment gave no grade")


def add_reward_route(api: APIRouter, service, settings: RewardSettings, timed) -> None:
    """Mount the route on `api` (the router that carries auth and the error responses); `service`
    returns the running JudgeService, `timed` bounds the request by the server's timeout."""

    @api.post("/get_reward", response_model=RewardResponse, tags=["reward"])
    async def get_reward(body: RewardRequest) -> RewardResponse:
        """OpenRLHF's remote reward model: one reward per query, from the judge's grade of the completion."""
        return await timed(reward(service(), settings, body))


async def reward(service: JudgeService, settings: RewardSettings, body: RewardRequest) -> RewardResponse:
    settings = dataclasses.replace(settings, **{k: v for k in ("mode", "kind", "judge", "template", "unparsed")
                                                if (v := getattr(body, k)) is not None})
    completions, references = split_queries(body, service.limits.max_batch)
    calls, template, judge, requests = await service.off_loop(_prepare, service, settings, body.prompts, completions,
                                                              references)
    generations = await asyncio.gather(*(service.backend.acomplete(r) for r in requests))
    verdicts = [verdict_from(template, call.item.id, call.order, generation, mode=settings.mode, judge=judge.name)
                for call, generation in zip(calls, generations)]
    rewards, grades = rewards_from(settings.kind, template, len(completions), calls, verdicts)
    missing = [i for i, r in enumerate(rewards) if r is None]
    if missing and settings.unparsed is None:
        failed = next((v for v in verdicts if not v.parse_ok), None)
        why = (failed.error or f"reply {failed.raw[:200]!r}") if failed else "no verdict to read"
        raise Invalid(f"the judge gave no grade for {', '.join(f'query[{i}]' for i in missing[:20])}"
                      f"{' and more' if len(missing) > 20 else ''} ({why}); "
                      f"no reward is made up for them: set --reward-unparsed (or `unparsed`) to give such items an "
                      f"explicit value", f"query[{missing[0]}]")
    stand_in = settings.unparsed
    out = [stand_in if r is None else round(r, 6) for r in rewards]
    return RewardResponse(rewards=out, scores=out, extra_logs={
        "judge_grade": [stand_in if g is None else round(g, 6) for g in grades],
        "judge_unparsed": [float(r is None) for r in rewards]})


def split_queries(body: RewardRequest, most: int) -> tuple[list[str], list[str | None]]:
    """(completions, references): each query minus its prompt, each non-empty label as text; 422
    naming the index when the lists' lengths differ or a query does not start with its prompt."""
    n = len(body.query)
    if n > most:
        raise TooLarge(f"{n} queries; this server takes at most {most} per request (--max-batch)", "query")
    for name, values in (("prompts", body.prompts), ("labels", body.labels)):
        if values is not None and len(values) != n:
            raise Invalid(f"{name} has {len(values)} entries for {n} queries: one per query is needed", name)
    for i, (query, prompt) in enumerate(zip(body.query, body.prompts)):
        if not query.startswith(prompt):
            raise Invalid(f"query[{i}] does not start with prompts[{i}]: the completion is what follows the prompt",
                          f"query[{i}]")
    references = [None if label is None or label == "" else str(label) for label in body.labels or [None] * n]
    return [q[len(p):] for q, p in zip(body.query, body.prompts)], references


def _prepare(service: JudgeService, settings: RewardSettings, prompts, completions, references):
    """The judge calls, rendered and length-checked (off the event loop, as every route's)."""
    judge = service.judge_for(settings.judge)
    template = judge.template(TEMPLATE_MODE[settings.kind], settings.template)
    try:
        params = params_for(template, settings.mode, max_tokens=service.limits.max_tokens)
    except ConfigError as e:
        raise Invalid(str(e), "mode") from None
    try:
        calls = plan_calls(settings.kind, prompts, completions, references)
    except ConfigError as e:  # pairwise without a label to compare with
        raise Invalid(str(e), "labels") from None
    requests = [service.fit(request_for(template, call.item, call.order, params, judge.name),
                            template.verdict_max_tokens, f"query[{call.owners[0]}].") for call in calls]
    return calls, template, judge, requests
