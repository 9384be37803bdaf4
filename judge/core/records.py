"""The records of DESIGN.md as plain dataclasses, with strict conversion from JSON rows.

`from_row` checks required fields and types and reports the offending field; the JSONL reader
(`judge.core.jsonl`) adds the file and line. Unknown keys of an item row are kept under `meta`, so
nothing a user put in their data is lost on the way through.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal, Union

Winner = Literal["1", "2", "tie"]
WINNERS: tuple[str, ...] = ("1", "2", "tie")
ORDERS: tuple[str, ...] = ("ab", "ba")


class RowError(ValueError):
    """A row does not fit its record; `field` names the culprit."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


def normalize_winner(value: Any) -> str | None:
    """Map the spellings found in the wild onto "1" | "2" | "tie" (None stays None).

    >>> [normalize_winner(v) for v in (1, "2", 0, "Tie", "TIE", None)]
    ['1', '2', 'tie', 'tie', 'tie', None]
    """
    if value is None:
        return None
    text = str(value).strip().lower()
    if text in ("1", "2"):
        return text
    if text in ("0", "tie", "draw", "3"):  # PandaLM: 0, JudgeLM/LLMBar: tie, some sets: 3 = tie
        return "tie"
    raise RowError(f"winner must be 1, 2 or tie, got {value!r}", "winner")


def swap_label(label: str | None) -> str | None:
    """A pairwise label seen with the two answers the other way round: "1" <-> "2"; "tie" and None stay."""
    return {"1": "2", "2": "1"}.get(label, label)


def to_original_order(order: str, winner: str | None, scores: list[float] | None,
                      logprobs: dict | None) -> tuple[str | None, list[float] | None, dict | None]:
    """A pairwise verdict as the judge gave it with the answers in `order` (its winner, per-answer
    scores and verdict-token probabilities), mapped back to the item's original answer order: the one
    place a swapped verdict is turned round. Unchanged for "ab"."""
    if order != "ba":
        return winner, scores, logprobs
    if logprobs is not None:
        logprobs = dict(logprobs)
        if "probs" in logprobs:
            logprobs["probs"] = {swap_label(k): v for k, v in logprobs["probs"].items()}
        if "expected_scores" in logprobs:
            logprobs["expected_scores"] = logprobs["expected_scores"][::-1]
        if "expected_winner" in logprobs:
            logprobs["expected_winner"] = swap_label(logprobs["expected_winner"])
    return swap_label(winner), scores[::-1] if scores else None, logprobs


@dataclass
class PairItem:
    """Two answers to one question; `winner` is the gold label when the source has one."""

    id: str
    question: str
    answer1: str
    answer2: str
    reference: str | None = None
    context: list[str] | None = None
    rubric: str | None = None
    model1: str | None = None
    model2: str | None = None
    category: str | None = None
    winner: str | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        self.winner = normalize_winner(self.winner)

    def swapped(self) -> PairItem:
        """The same pair with the answers (and their models) in the other order."""
        return dataclasses.replace(
            self, answer1=self.answer2, answer2=self.answer1, model1=self.model2, model2=self.model1,
            winner=swap_label(self.winner),
        )


@dataclass
class SingleItem:
    """One answer to grade; `score` is the gold grade when the source has one."""

    id: str
    question: str
    answer: str
    reference: str | None = None
    rubric: str | None = None
    context: list[str] | None = None
    model: str | None = None
    category: str | None = None
    score: float | None = None
    meta: dict = field(default_factory=dict)


Item = Union[PairItem, SingleItem]


@dataclass
class Verdict:
    """One judge call. `winner` and `scores` always refer to the item's original answer1/answer2,
    also when the judge saw them swapped (`order == "ba"`)."""

    id: str
    order: str = "ab"
    winner: str | None = None
    scores: list[float] | None = None
    reason: str | None = None
    reference_generated: str | None = None
    raw: str = ""
    parse_ok: bool = False
    judge: str | None = None
    template: str | None = None  # "name@version"
    template_hash: str | None = None
    usage: dict | None = None
    logprobs: dict | None = None
    error: str | None = None
    sample: int = 0
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.order not in ORDERS:
            raise RowError(f"order must be 'ab' or 'ba', got {self.order!r}", "order")
        self.winner = normalize_winner(self.winner)

    @property
    def score(self) -> float | None:
        """The pointwise grade (the single entry of `scores`)."""
        return self.scores[0] if self.scores and len(self.scores) == 1 else None


@dataclass
class TrainRow:
    """One training example (`judgeforge filter` writes them, `train` reads them): the template's
    rendering of an item in one order, with the teacher's reply as the assistant turn."""

    id: str
    mode: str
    template: str  # name@version
    template_hash: str | None
    order: str
    messages: list[dict]  # system/user as rendered for `order`, then the teacher's reply as assistant
    winner: str | None = None
    scores: list[float] | None = None
    parse_ok: bool = False
    judge: str | None = None
    sample: int = 0
    usage: dict | None = None
    error: str | None = None
    variant: str | None = None  # "reference-free" for CritiqueLLM rewrites
    mean_score: float | None = None  # pointwise with samples
    spread: float | None = None
    n_samples: int | None = None
    category: str | None = None
    reason: str | None = None  # dropped rows only: why


def _check(value: Any, hint: Any) -> Any:
    """Return `value` coerced to `hint` where lossless (int -> float, int id -> str), else raise TypeError."""
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in typing.get_args(hint):
            return None
        errors = []
        for arm in typing.get_args(hint):
            if arm is type(None):
                continue
            try:
                return _check(value, arm)
            except TypeError as e:
                errors.append(e)
        raise errors[0]
    if origin is list:
        if not isinstance(value, list):
            raise TypeError(f"expected a list, got {type(value).__name__}")
        (arm,) = typing.get_args(hint)
        return [_check(v, arm) for v in value]
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"expected a number, got {type(value).__name__}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise TypeError(f"expected a string, got {type(value).__name__}")
        return value
    if hint is dict:
        if not isinstance(value, dict):
            raise TypeError(f"expected an object, got {type(value).__name__}")
        return value
    if hint in (bool, int):
        if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
            raise TypeError(f"expected {hint.__name__}, got {type(value).__name__}")
        return value
    return value


@functools.cache
def _schema(cls: type) -> tuple[dict, tuple]:
    """A record's type hints and fields, resolved once per class (resolving them per row was most of
    the time spent reading large files)."""
    return typing.get_type_hints(cls), dataclasses.fields(cls)


def from_row(cls: type, row: Any, *, extra_to_meta: bool = True):
    """Build a record from a decoded JSON row, checking every field's presence and type.

    Ids may be numbers in the source; they become strings. Keys the record does not know go under
    `meta` (items) or raise (when `extra_to_meta` is False).
    """
    if not isinstance(row, dict):
        raise RowError(f"expected a JSON object, got {type(row).__name__}")
    hints, fields = _schema(cls)
    kwargs: dict[str, Any] = {}
    for f in fields:
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if f.name not in row:
            if required:
                raise RowError(f"missing field {f.name!r}", f.name)
            continue
        value = row[f.name]
        if f.name == "id" and isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if f.name in ("winner",):
            kwargs[f.name] = value  # normalized in __post_init__
            continue
        try:
            kwargs[f.name] = _check(value, hints[f.name])
        except TypeError as e:
            raise RowError(f"field {f.name!r}: {e}", f.name) from None
    known = {f.name for f in fields}
    extra = {k: v for k, v in row.items() if k not in known}
    if extra:
        if not extra_to_meta or "meta" not in hints:
            raise RowError(f"unknown field(s) {', '.join(sorted(extra))} for {cls.__name__}", sorted(extra)[0])
        kwargs["meta"] = {**extra, **kwargs.get("meta", {})}
    try:
        return cls(**kwargs)
    except RowError:
        raise
    except (TypeError, ValueError) as e:
        raise RowError(str(e)) from None


def to_row(record: Any) -> dict:
    """A record as a JSON-ready dict, leaving out empty optional fields to keep files readable. The
    fields are plain JSON values (no nested records), so the row takes them as they are: it is for
    writing, and `dataclasses.asdict`'s deep copy was most of the time a fully cached distill rerun took."""
    row = {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}
    return {k: v for k, v in row.items() if v is not None and not (k == "meta" and not v)}


def item_from_row(row: Any) -> Item:
    """A PairItem or a SingleItem, decided by the fields present (`answer1`/`answer2` vs `answer`)."""
    if isinstance(row, dict) and "answer" in row and "answer1" not in row:
        return from_row(SingleItem, row)
    return from_row(PairItem, row)


def mode_of(item: Item) -> str:
    return "pairwise" if isinstance(item, PairItem) else "pointwise"
