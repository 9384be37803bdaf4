"""Request and response bodies of the judge API (pydantic), one model per shape. Unknown fields are
rejected, so a typo such as `answer_2` is a 422 naming it rather than a silently ignored field."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

Mode = Literal["full", "verdict", "logprob"]


class _Judging(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(None, description="echoed back; handy to match batch results")
    question: str = Field(min_length=1)
    reference: str | None = Field(None, description="a reference answer (templates with a reference variant use it)")
    rubric: str | None = Field(None, description="grading criteria (Prometheus templates)")
    context: list[str] | None = Field(None, description="retrieved passages (RAG templates)")
    mode: Mode = Field("full", description="full: free text, parsed; verdict: structured output, always parses; "
                                           "logprob: verdict-token probabilities / expected score")
    judge: str | None = Field(None, description="a judge from /v1/models (default: the first)")
    template: str | None = Field(None, description="override the judge's own template (name or name@version)")
    max_tokens: int | None = Field(None, ge=1, description="reply budget in full mode (default: the server's)")


class PairwiseRequest(_Judging):
    answer1: str
    answer2: str
    swap: bool = Field(False, description="also ask with the answers swapped; a conflict becomes a tie")


class PointwiseRequest(_Judging):
    answer: str


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "pointwise" if "answer" in value and "answer1" not in value else "pairwise"
    return "pairwise" if isinstance(value, PairwiseRequest) else "pointwise"


AnyRequest = Annotated[Union[Annotated[PairwiseRequest, Tag("pairwise")], Annotated[PointwiseRequest, Tag("pointwise")]],
                       Discriminator(_kind)]


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[AnyRequest] = Field(description="pairwise items (answer1/answer2) and pointwise items (answer), mixed")


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class OrderVerdict(BaseModel):
    """One judge call; `winner` and `scores` refer to the answers as the request gave them."""

    order: Literal["ab", "ba"]
    winner: str | None = None
    scores: list[float] | None = None
    reason: str | None = None
    raw: str = ""
    parse_ok: bool
    error: str | None = None
    logprobs: dict | None = None
    usage: Usage


class _Judged(BaseModel):
    id: str | None = None
    judge: str
    template: str = Field(description="name@version")
    mode: Mode
    parse_ok: bool
    reason: str | None = None
    logprobs: dict | None = None
    usage: Usage


class PairwiseResponse(_Judged):
    kind: Literal["pairwise"] = "pairwise"
    winner: str | None = Field(description="1, 2 or tie; with swap, the combined verdict (a conflict is a tie)")
    scores: list[float] | None = Field(None, description="one per answer; with swap, the mean of both orders")
    consistent: bool | None = Field(None, description="with swap: both orders agree (null when one did not parse)")
    verdicts: list[OrderVerdict]


class PointwiseResponse(_Judged):
    kind: Literal["pointwise"] = "pointwise"
    score: float | None
    raw: str = ""
    error: str | None = None


class BatchResponse(BaseModel):
    results: list[Annotated[Union[PairwiseResponse, PointwiseResponse], Field(discriminator="kind")]]
    usage: Usage


class JudgeCard(BaseModel):
    """A judge as /v1/models lists it (OpenAI's model object, plus its templates)."""

    id: str
    object: Literal["model"] = "model"
    owned_by: str = "judgeforge"
    parent: str | None = Field(None, description="the base model of a LoRA adapter")
    templates: dict[str, str] = Field(description="mode -> template used when a request names none")
    max_model_len: int | None = None


class JudgeList(BaseModel):
    object: Literal["list"] = "list"
    data: list[JudgeCard]


class ErrorInfo(BaseModel):
    message: str
    type: str
    param: str | None = Field(None, description="the request field at fault, e.g. answer2 or items[3]")
    code: int = Field(description="the HTTP status")


class ErrorResponse(BaseModel):
    error: ErrorInfo


class Health(BaseModel):
    status: Literal["ok"] = "ok"
