"""Replies of the reward tests' fake grader (`judge.testing.logprob_judge.LogprobJudge(reply=...)`),
as positions: (token, {token: probability} or None), so a test states the grade distribution the
judge holds for each prompt and knows the exact reward to expect."""

from __future__ import annotations

import re

from judge.testing.logprob_judge import Positions


def grade_reply(dist: dict[str, float], feedback: str = "") -> Positions:
    """Prometheus' '[RESULT] k', k the most likely grade of `dist`."""
    lead = [(feedback, None)] if feedback else []
    return lead + [("[RESULT]", None), (" ", None), (max(dist, key=dist.get), dist)]


def scores_reply(first: dict[str, float], second: dict[str, float]) -> Positions:
    """JudgeLM's 'a b' score pair."""
    return [(max(first, key=first.get), first), (" ", None), (max(second, key=second.get), second)]


def marked(user: str, label: str) -> str:
    """The word after `label` in the prompt (the tests write answers such as 'grade4 ...')."""
    match = re.search(re.escape(label) + r"\s*(\S+)", user)
    return match.group(1) if match else ""
