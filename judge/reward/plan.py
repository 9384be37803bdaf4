"""Judgments as rewards, without I/O: which judge calls a batch of (prompt, completion) needs for a
reward kind, and how their verdicts become one reward per completion. Shared by `JudgeReward`
(TRL) and the server's `/get_reward` (OpenRLHF), so both reward exactly the same way.

Kinds:
- `pointwise`: each completion graded alone (with its reference when it has one, which selects the
  template's reference variant); a grade g on the template's scale lo..hi is (g - lo) / (hi - lo):
  a 1-5 grade k is (k - 1) / 4; in logprob mode g is the expected grade.
- `pairwise`: each completion against its reference answer: P(completion wins) + P(tie) / 2.
- `group`: the completions of one prompt against each other (every pair once): each completion's
  mean of P(wins) + P(tie) / 2 over its group, its win rate.

A judgment without a grade gives `None`, never a number; in a group, a completion with any
comparison left without a verdict is `None` too (a win rate over fewer rivals would be another
quantity under the same name).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from judge.core.errors import ConfigError
from judge.core.records import Item, PairItem, SingleItem, Verdict
from judge.templates import Template

KINDS = ("pointwise", "pairwise", "group")
TEMPLATE_MODE = {"pointwise": "pointwise", "pairwise": "pairwise", "group": "pairwise"}


@dataclass(frozen=True)
class Call:
    """One judge call: `item` in `order`; `owners` the completions (indices) it compares, in the
    item's answer order (one for pointwise and pairwise, two for group)."""

    owners: tuple[int, ...]
    item: Item
    order: str


def text_of(value) -> str:
    """A TRL prompt or completion as text: a string as it is; chat messages (conversational
    datasets) as their content, one message alone, several as "Role: content" paragraphs.

    >>> text_of([{"role": "user", "content": "Hi?"}])
    'Hi?'
    >>> text_of([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi?"}])
    'System: Be brief.\\n\\nUser: Hi?'
    """
    if isinstance(value, str):
        return value
    if not isinstance(value, list) or not all(isinstance(m, dict) and "content" in m for m in value):
        raise ConfigError(f"a prompt or completion must be a string or a list of chat messages, got {value!r:.200}")
    parts = [(m.get("role", "user"), _content(m["content"])) for m in value]
    if len(parts) == 1:
        return parts[0][1]
    return "\n\n".join(f"{role.capitalize()}: {content}" for role, content in parts)


def _content(content) -> str:
    """A message's content; a list of parts (multimodal messages) keeps its text parts."""
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return str(content)


def plan_calls(kind: str, questions: Sequence[str], answers: Sequence[str], references: Sequence[str | None],
               swap: bool = False) -> list[Call]:
    """The calls that reward `answers[i]` to `questions[i]` (`references[i]` None where there is
    none). `swap` also asks every pairwise comparison with the answers the other way round."""
    if kind not in KINDS:
        raise ConfigError(f"reward kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if not len(questions) == len(answers) == len(references):
        raise ConfigError(f"{len(questions)} prompts, {len(answers)} completions and {len(references)} references: "
                          f"one of each per completion is needed")
    orders = ("ab", "ba") if swap else ("ab",)
    if kind == "pointwise":
        return [Call((i,), SingleItem(id=str(i), question=q, answer=a, reference=r or None), "ab")
                for i, (q, a, r) in enumerate(zip(questions, answers, references))]
    if kind == "pairwise":
        missing = [i for i, r in enumerate(references) if not r]
        if missing:
            raise ConfigError(f"pairwise rewards compare each completion with its reference answer; completions "
                              f"{_indices(missing)} have none (give a reference column, or use kind='pointwise')")
        return [Call((i,), PairItem(id=str(i), question=q, answer1=a, answer2=r), order)
                for i, (q, a, r) in enumerate(zip(questions, answers, references)) for order in orders]
    groups: dict[tuple[str, str | None], list[int]] = {}
    for i, key in enumerate(zip(questions, references)):
        groups.setdefault(key, []).append(i)
    return [Call((i, j), PairItem(id=f"{i}-{j}", question=questions[i], answer1=answers[i], answer2=answers[j],
                                  reference=references[i] or None), order)
            for members in groups.values() for n, i in enumerate(members) for j in members[n + 1:] for order in orders]


def rewards_from(kind: str, template: Template, size: int, calls: Sequence[Call],
                 verdicts: Sequence[Verdict]) -> tuple[list[float | None], list[float | None]]:
    """(rewards, raw grades), one each per completion: the grade on the template's own scale
    (pointwise), P(win) + P(tie) / 2 (pairwise), the win rate (group); None where unjudged."""
    if kind == "pointwise":
        low, high = _scale(template)
        grades = [None] * size
        for call, verdict in zip(calls, verdicts):
            grades[call.owners[0]] = verdict.score if verdict.parse_ok else None
        return [None if g is None else (g - low) / (high - low) for g in grades], grades
    wins: list[list[float | None]] = [[] for _ in range(size)]
    for call, verdict in zip(calls, verdicts):
        first = win_share(verdict)
        for owner, share in zip(call.owners, (first, None if first is None else 1.0 - first)):
            wins[owner].append(share)
    if kind == "group":
        # Each pair was judged in every order asked; a completion's rate is the mean over all of them.
        grades = [None if not shares or None in shares else sum(shares) / len(shares) for shares in wins]
    else:
        grades = [None if None in shares else sum(shares) / len(shares) for shares in wins]
    return list(grades), grades


def win_share(verdict: Verdict) -> float | None:
    """Answer 1's P(win) + P(tie) / 2: from the verdict-token probabilities where the judge gave
    them (logprob mode), else 1, 0.5 or 0 from the parsed winner; None when it did not parse."""
    if not verdict.parse_ok:
        return None
    probs = (verdict.logprobs or {}).get("probs")
    if probs:
        total = sum(probs.values())
        return (probs.get("1", 0.0) + probs.get("tie", 0.0) / 2) / total if total > 0 else None
    return {"1": 1.0, "tie": 0.5, "2": 0.0}.get(verdict.winner)


def _scale(template: Template) -> tuple[float, float]:
    if not template.score_range:
        raise ConfigError(f"template {template.name} has no score range to turn its grades into rewards")
    return template.score_range


def _indices(indices: list[int], most: int = 10) -> str:
    shown = ", ".join(map(str, indices[:most]))
    return shown + (f" and {len(indices) - most} more" if len(indices) > most else "")
