"""Candidate pairs: several models' answers to the same questions -> PairItems to distill, as JudgeLM
pairs answers across its models.

Answers are matched by question text. Each question yields every pair of models that answered it
(at most `per_question`, drawn with the seed); which model is shown first is also drawn, so no
model sits in one position throughout. Ids depend only on the question and the two models, not on
the seed or the cap, so pairs keep their ids (and their cached verdicts) across reruns.
"""

from __future__ import annotations

import hashlib
import itertools
import random
from dataclasses import dataclass
from pathlib import Path

from judge.core.configfile import option
from judge.core.errors import ConfigError, InputError
from judge.core.jsonl import read_items
from judge.core.records import PairItem, SingleItem
from judge.templates import winner_from_scores


def pair_id(question: str, model_a: str, model_b: str) -> str:
    """Stable: the question's hash and the two models in sorted order.

    >>> pair_id("What is 2+2?", "b", "a") == pair_id("What is 2+2?", "a", "b")
    True
    """
    first, second = sorted((model_a, model_b))
    return f"q{hashlib.sha256(question.encode()).hexdigest()[:12]}:{first}|{second}"


def _answers_by_question(paths: list[str]) -> dict[str, dict[str, SingleItem]]:
    """question -> model -> answer, questions in order of first appearance."""
    by_question: dict[str, dict[str, SingleItem]] = {}
    for path in paths:
        for item in read_items(path):
            if not isinstance(item, SingleItem):
                raise InputError(f"item {item.id!r} is a pair; `data pair` reads single answers (`answer`)", path)
            model = item.model or Path(path).stem
            answers = by_question.setdefault(item.question.strip(), {})
            if model in answers:
                raise InputError(f"model {model!r} answers the question of item {item.id!r} twice (also item "
                                 f"{answers[model].id!r}); give each answer its own `model`", path)
            answers[model] = item
    return by_question


def _pair(question: str, a: SingleItem, b: SingleItem, model_a: str, model_b: str) -> PairItem:
    def first(field: str):
        return getattr(a, field) or getattr(b, field)

    winner = winner_from_scores(a.score, b.score) if a.score is not None and b.score is not None else None
    return PairItem(id=pair_id(question, model_a, model_b), question=a.question, answer1=a.answer, answer2=b.answer,
                    reference=first("reference"), context=first("context"), rubric=first("rubric"),
                    model1=model_a, model2=model_b, category=first("category"), winner=winner,
                    meta={"answer_ids": [a.id, b.id]})


@dataclass
class PairConfig:
    """`judgeforge data pair`'s settings (the CLI's flags are generated from these fields)."""

    answers: list[str] = option(nargs="+", metavar="ANSWERS", help="SingleItem JSONL files")
    out: str = option(help="output PairItem JSONL")
    per_question: int | None = option(None, help="at most K pairs per question (default: every pair of models)")
    seed: int = option(0, help="seed for the cap and the positions")


def pair_answers(paths: list[str], *, per_question: int | None = None, seed: int = 0) -> list[PairItem]:
    """PairItems from the answer files; questions with a single model yield nothing."""
    if per_question is not None and per_question < 1:
        raise ConfigError(f"--per-question must be at least 1, got {per_question}")
    pairs = []
    for question, answers in _answers_by_question(paths).items():
        rng = random.Random(f"{seed}:{question}")  # per question, so one question's draw does not shift another's
        combos = list(itertools.combinations(answers, 2))
        if per_question is not None and len(combos) > per_question:
            chosen = set(rng.sample(range(len(combos)), per_question))
            combos = [c for i, c in enumerate(combos) if i in chosen]
        for model_a, model_b in combos:
            if rng.random() < 0.5:
                model_a, model_b = model_b, model_a
            pairs.append(_pair(question, answers[model_a], answers[model_b], model_a, model_b))
    return pairs
