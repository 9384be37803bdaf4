"""Importers of the judge benchmarks (`data convert`): JudgeBench's pairs and its published judges'
outputs, and EvalBiasBench. Registered in `judge.data.convert`'s source tables.

JudgeBench (ScalerLab/JudgeBench): pairs whose objectively correct response wins (`label` `A>B` or
`B>A`); a judged file adds `judgments`, two games: game 1 shows the responses as given, game 2
swapped, each `null` or `{"judgment": {...}, "decision": "A>B" | "B>A" | "A=B" | null}` with game
2's decision in its own (swapped) order. EvalBiasBench (ncsoft/offsetbias): a JSON object keyed by
bias type, every item's better response first (`label` "1"), so positions are balanced on import.
"""

from __future__ import annotations

import random
import re
from typing import Any

from judge.core.errors import InputError
from judge.core.jsonl import read_json
from judge.core.records import PairItem, RowError, Verdict, to_original_order

JUDGEBENCH_CATEGORIES = ("knowledge", "reasoning", "math", "coding")
# JudgeBench's groups by `source` prefix (its utils/metrics.py)
_SOURCE_PREFIXES = (("mmlu-pro", "knowledge"), ("livebench-reasoning", "reasoning"), ("livebench-math", "math"),
                    ("livecodebench", "coding"))
_DECISIONS = {"A>B": "1", "B>A": "2", "A=B": "tie"}
GAME_ORDERS = ("ab", "ba")  # game 1 shows the responses as given, game 2 swapped


def judgebench_category(source: Any) -> str:
    """`knowledge` for mmlu-pro*, `reasoning`, `math`, `coding` for the LiveBench/LiveCodeBench sources."""
    for prefix, category in _SOURCE_PREFIXES:
        if isinstance(source, str) and source.startswith(prefix):
            return category
    raise RowError(f"field 'source': {source!r} is none of JudgeBench's groups "
                   f"({', '.join(p for p, _ in _SOURCE_PREFIXES)})", "source")


def _field(row: dict, key: str, kind: type = str) -> Any:
    if key not in row:
        raise RowError(f"missing field {key!r}", key)
    if not isinstance(row[key], kind):
        raise RowError(f"field {key!r}: expected {kind.__name__}, got {type(row[key]).__name__}", key)
    return row[key]


def _label(row: dict) -> str:
    label = row.get("label")
    if label not in ("A>B", "B>A"):
        raise RowError(f"field 'label': expected 'A>B' or 'B>A', got {label!r}", "label")
    return _DECISIONS[label]


def from_judgebench(row: dict, number: int, stem: str) -> PairItem:
    """A JudgeBench pair: response_A/response_B as answer1/answer2, `A>B` -> winner 1."""
    pair_id = _field(row, "pair_id")
    source = _field(row, "source")
    model = row.get("response_model")
    meta = {"source": source, "pair_id": pair_id, "original_id": row.get("original_id"), "benchmark": "judgebench"}
    return PairItem(id=pair_id, question=_field(row, "question"), answer1=_field(row, "response_A"),
                    answer2=_field(row, "response_B"), model1=model, model2=model,
                    category=judgebench_category(source), winner=_label(row), meta=meta)


def _game_verdict(pair_id: str, order: str, game: Any, judge: str | None, judge_name: str | None) -> Verdict:
    """One game as a Verdict mapped back to the original order; a null game or a null decision is
    an unparsed verdict, never a tie. `judge` is the judge_model, `judge_name` JudgeBench's kind of judge."""
    meta = {"judge_name": judge_name} if judge_name else {}
    if game is None:
        return Verdict(id=pair_id, order=order, parse_ok=False, judge=judge, template="judgebench",
                       error="the judge gave no game (null)", meta=meta)
    if not isinstance(game, dict) or not isinstance(game.get("judgment", {}), dict):
        raise RowError(f"field 'judgments': a game must be null or {{judgment, decision}}, got {game!r:.80}",
                       "judgments")
    judgment = game.get("judgment") or {}
    decision = game.get("decision")
    if decision is not None and decision not in _DECISIONS:
        raise RowError(f"field 'judgments': decision must be A>B, B>A, A=B or null, got {decision!r}", "judgments")
    scores = judgment.get("scores")
    if scores is not None and not (isinstance(scores, list) and len(scores) == 2
                                   and all(isinstance(s, (int, float)) and not isinstance(s, bool) for s in scores)):
        raise RowError(f"field 'judgments': scores must be two numbers, got {scores!r}", "judgments")
    winner, scores, _ = to_original_order(order, _DECISIONS.get(decision), scores and [float(s) for s in scores], None)
    return Verdict(
        id=pair_id, order=order, winner=winner, scores=scores, raw=str(judgment.get("response") or decision or ""),
        parse_ok=decision is not None, judge=judge, template="judgebench",
        error=None if decision is not None else "the judge's game has no decision",
        meta=meta,  # the prompt it was sent is JudgeBench's own, rebuilt from the pair: not kept (megabytes per file)
    )


def from_judgebench_judgments(row: dict, number: int, stem: str) -> list[Verdict]:
    """A published judge's two games on one pair -> an `ab` and a `ba` verdict (game 2 mapped back)."""
    pair_id = _field(row, "pair_id")
    games = _field(row, "judgments", list)
    if len(games) != 2:
        raise RowError(f"field 'judgments': expected two games, got {len(games)}", "judgments")
    judge_name = row.get("judge_name")
    # the judge is named by its judge_model; a null game takes the other game's (or the judge_name)
    models = [g["judgment"].get("judge_model") for g in games if isinstance(g, dict) and isinstance(g.get("judgment"), dict)]
    judge = next((m for m in models if m), None) or judge_name
    return [_game_verdict(pair_id, order, game, judge, judge_name) for order, game in zip(GAME_ORDERS, games)]


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def evalbiasbench_items(path: str, seed: int | None = None) -> list[PairItem]:
    """EvalBiasBench's items with the better response first or second, balanced within each bias
    group by a seeded draw (a group of odd size gives its extra item to alternate sides, so the
    whole set is balanced too). Ids (`<bias>-<k>`) do not depend on the seed; the seed and whether
    the item was swapped are in `meta`."""
    seed = 0 if seed is None else seed
    data = read_json(path)
    if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
        raise InputError("expected EvalBiasBench's JSON object of bias type -> list of items", path)
    rng, extra, items = random.Random(seed), 0, []
    for bias, rows in data.items():
        second = set(rng.sample(range(len(rows)), (len(rows) + extra) // 2))
        extra ^= len(rows) % 2
        for k, row in enumerate(rows):
            where = f"item {k + 1} of {bias!r}"
            if not isinstance(row, dict):
                raise InputError(f"{where}: expected an object, got {type(row).__name__}", path)
            try:
                question, first, other = (_field(row, key) for key in ("instruction", "response1", "response2"))
                label = str(row.get("label"))
                if label not in ("1", "2"):
                    raise RowError(f"field 'label': expected 1 or 2, got {row.get('label')!r}", "label")
            except RowError as e:
                raise InputError(f"{where}: {e}", path) from None
            better, worse = (first, other) if label == "1" else (other, first)
            swapped = k in second
            items.append(PairItem(
                id=f"{_slug(bias)}-{k + 1}", question=question, answer1=worse if swapped else better,
                answer2=better if swapped else worse, category=bias, winner="2" if swapped else "1",
                meta={"benchmark": "evalbiasbench", "label": label, "swapped": swapped, "seed": seed},
            ))
    if not items:
        raise InputError("no items to convert", path)
    return items
