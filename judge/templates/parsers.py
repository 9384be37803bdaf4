"""Pure parsers: a judge's reply text in, a `Parsed` out. Never raise, never guess.

Each returns `Parsed(ok=False, error=...)` when the reply does not carry a verdict in the expected
form, so callers record the failure (`parse_ok: false`) instead of inventing a score. Verdicts are
in the order the judge *saw* the answers; `Template.verdict` maps them back.
Replies are NFKC-normalised before matching, so full-width digits and punctuation (８，：) parse.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass


@dataclass(frozen=True)
class Parsed:
    ok: bool
    winner: str | None = None  # "1" | "2" | "tie", in presented order
    scores: tuple[float, ...] | None = None
    reason: str | None = None
    reference: str | None = None
    error: str | None = None


def fail(error: str) -> Parsed:
    return Parsed(ok=False, error=error)


def _norm(text: str | None) -> str:
    return unicodedata.normalize("NFKC", text or "")


_NUMBER = r"[-+]?\d+(?:\.\d+)?"
# "8/10", "8 out of 10": the denominator is not a second score.
_DENOMINATOR = re.compile(r"\s*(?:/|out\s+of)\s*(?:10|5|100)\b(?!\.\d)", re.I)
_LABELS = re.compile(r"\b(?:assistant|response|answer)\s*[12]\b|\bscores?\b\s*[:=]?", re.I)


def winner_from_scores(a: float, b: float, threshold: float = 0.0) -> str:
    """JudgeLM's rule: the higher score wins when the gap exceeds the threshold, else a tie.

    >>> winner_from_scores(8, 6), winner_from_scores(6, 8), winner_from_scores(7, 7)
    ('1', '2', 'tie')
    >>> winner_from_scores(7.5, 7, threshold=1)
    'tie'
    """
    if a - b > threshold:
        return "1"
    if b - a > threshold:
        return "2"
    return "tie"


def _first_line(text: str) -> tuple[str, str]:
    lines = text.strip().split("\n", 1)
    return lines[0].strip(), (lines[1].strip() if len(lines) > 1 else "")


# "Assistant 2: 9", "Assistant 1 score = 6/10", "**Assistant 1**: (8)": a score next to its label.
_LABELLED = re.compile(
    rf"\**\s*assistant\s*([12])\b\s*(?:'s\s*)?\**\s*(?:(?:score|rating)\b\s*)?(?:is\b\s*)?[:=\-]?\s*\**\s*"
    rf"\(?\s*({_NUMBER})\s*\)?(?:\s*(?:/|out\s+of)\s*10\b)?\**",
    re.I,
)
_BETWEEN_LABELS = re.compile(r"[\s,;|]*(?:and\b\s*)?")
_LABELS_START = re.compile(r"^[^\d]*?(?=\**\s*assistant\s*[12]\b)", re.I)


def _labelled_scores(text: str) -> tuple[dict[str, float], str] | str | None:
    """Scores named by their assistant ("Assistant 2: 9, Assistant 1: 6", on one line or several),
    read at the first digits of the reply: ({"1": a, "2": b}, the rest), an error, or None when the
    reply does not open with labelled scores."""
    start = _LABELS_START.match(text)
    if not start:
        return None
    found: dict[str, float] = {}
    pos = start.end()
    while len(found) < 2 and (m := _LABELLED.match(text, _BETWEEN_LABELS.match(text, pos).end())):
        if m.group(1) in found:
            return f"Assistant {m.group(1)} is scored twice"
        found[m.group(1)] = float(m.group(2))
        pos = m.end()
    if not found:
        return None
    if len(found) < 2:
        return f"only Assistant {next(iter(found))} has a score beside its label"
    return found, text[pos:].lstrip(" \t,;.|").strip()


def parse_score_pair(text: str, lo: float = 1, hi: float = 10) -> Parsed:
    """JudgeLM: the first line holds the two scores, the explanation follows. Scores named by
    their assistant are read by the name, in any order, on one line or several.

    >>> parse_score_pair("8 6\\nAssistant 1 is more detailed.").scores
    (8.0, 6.0)
    >>> parse_score_pair("Assistant 2: 9/10, Assistant 1: 7/10").scores
    (7.0, 9.0)
    >>> parse_score_pair("8").ok
    False
    """
    norm = _norm(text)
    if not norm.strip():
        return fail("empty reply")
    labelled = _labelled_scores(norm.strip())
    if isinstance(labelled, str):
        return fail(labelled)
    if labelled is not None:
        found, rest = labelled
        a, b = found["1"], found["2"]
    else:
        head, rest = _first_line(norm)
        named = re.findall(r"\bassistant\s*([12])\b", head, re.I)
        if named != sorted(named):
            return fail(f"the first line names the assistants in the order {', '.join(named)} without a score "
                        f"beside each")
        numbers = re.findall(_NUMBER, _DENOMINATOR.sub(" ", _LABELS.sub(" ", head)))
        if len(numbers) != 2:
            return fail(f"expected two scores on the first line, found {len(numbers)}")
        a, b = (float(n) for n in numbers)
    if not (lo <= a <= hi and lo <= b <= hi):
        return fail(f"scores {a:g} {b:g} outside {lo:g}-{hi:g}")
    return Parsed(ok=True, winner=winner_from_scores(a, b), scores=(a, b), reason=rest or None)


_PANDALM_HEAD = re.compile(r"^\s*(?:###\s*Evaluation\s*:?\s*)?(1|2|tie)\s*[.:]?\s*$", re.I)


def parse_pandalm(text: str) -> Parsed:
    """PandaLM: "1", "2" or "Tie" alone on the first line, then "### Reason:" and "### Reference:".

    >>> p = parse_pandalm("2\\n\\n### Reason: Response 2 is concise.\\n\\n### Reference: Hi.\\n")
    >>> (p.winner, p.reason, p.reference)
    ('2', 'Response 2 is concise.', 'Hi.')
    >>> parse_pandalm("Response 1 is better").ok
    False
    """
    norm = _norm(text)
    if not norm.strip():
        return fail("empty reply")
    head, rest = _first_line(norm)
    m = _PANDALM_HEAD.match(head)
    if not m:
        return fail(f"first line is not 1, 2 or Tie: {head[:40]!r}")
    winner = m.group(1).lower()
    reason = re.search(r"###\s*Reason\s*:\s*(.*?)(?=\n\s*###\s*Reference\s*:|\Z)", rest, re.S | re.I)
    reference = re.search(r"###\s*Reference\s*:\s*(.*)", rest, re.S | re.I)
    return Parsed(
        ok=True,
        winner=winner,
        reason=reason.group(1).strip() if reason else (rest or None),
        reference=reference.group(1).strip() if reference else None,
    )


# The result marker in every form Prometheus models write: "[RESULT] 4", "[RESULT]: (4)",
# "[RESULT] score of 4", "[Result] Result: 4", "[RESULT: B]"; what follows it is read by each parser.
_MARKER = r"\[RESULT(?:\]\s*\**\s*:?|\s*:)\s*(?:(?:result|score|grade|verdict)\b\s*(?:(?:of|is)\b\s*)?[:=]?\s*)?"
_RESULT = re.compile(_MARKER + r"[(\[]?\s*(\d+(?:\.\d+)?|[^\W\d]+)\s*[)\]]?\s*(?:(?:/|out\s+of)\s*(\d+))?\s*[)\]]?\s*\**"
                     r"\s*(?=$|\n|[.。])", re.I)
_RESULT_ANY = re.compile(r"\[RESULT\b", re.I)


def parse_result_score(text: str, lo: int = 1, hi: int = 5) -> Parsed:
    """Prometheus absolute grading: feedback, then "[RESULT] n" with n an integer in [lo, hi]
    ("n/hi" too, on this scale only). The last "[RESULT]" counts (the feedback may quote the
    instructions, "[RESULT]" included); a reply without the marker does not parse.

    >>> parse_result_score("Clear and correct. [RESULT] 4").scores, parse_result_score("[RESULT] score of 2").scores
    ((4.0,), (2.0,))
    >>> parse_result_score("Score: 2.5").ok, parse_result_score("[RESULT] 2.5").ok, parse_result_score("[RESULT] 4/10").ok
    (False, False, False)
    """
    norm = _norm(text)
    if not norm.strip():
        return fail("empty reply")
    markers = list(_RESULT_ANY.finditer(norm))
    if not markers:
        return fail("no [RESULT] marker")
    last = markers[-1]
    m = _RESULT.match(norm, last.start())
    if not m:
        return fail(f"no score after the last [RESULT]: {norm[last.start():last.start() + 30]!r}")
    token, scale = m.group(1), m.group(2)
    if not re.fullmatch(r"\d+", token):
        return fail(f"[RESULT] is not an integer: {token!r}")
    value = int(token)
    if scale is not None and int(scale) != hi:
        return fail(f"[RESULT] {value}/{scale} is not on this template's {lo}-{hi} scale")
    if not lo <= value <= hi:
        return fail(f"[RESULT] {value} outside {lo}-{hi}")
    reason = re.sub(r"^\s*(?:###\s*)?Feedback\s*:\s*", "", norm[: last.start()], flags=re.I).strip()
    return Parsed(ok=True, scores=(float(value),), reason=reason or None)


_RESULT_AB = re.compile(_MARKER + r"(?:Response\s*)?[(\[]?\s*(A|B)\b\s*[)\]]?\s*\**\s*\.?\s*$", re.I)


def parse_result_ab(text: str) -> Parsed:
    """Prometheus relative grading: feedback, then "[RESULT] A" or "[RESULT] B" (or "[RESULT: B]")
    at the end; a reply without the marker does not parse.

    >>> parse_result_ab("Response A cites sources. [RESULT] A").winner, parse_result_ab("[Result: B]").winner
    ('1', '2')
    >>> parse_result_ab("[RESULT] C").ok
    False
    """
    norm = _norm(text).rstrip()
    if not norm:
        return fail("empty reply")
    markers = list(_RESULT_ANY.finditer(norm))
    if not markers:
        return fail("no [RESULT] marker")
    m = _RESULT_AB.match(norm, markers[-1].start())
    if not m:
        return fail(f"the last [RESULT] is not followed by A or B: {norm[markers[-1].start():][:30]!r}")
    winner = "1" if m.group(1).upper() == "A" else "2"
    reason = re.sub(r"^\s*(?:###\s*)?Feedback\s*:\s*", "", norm[: markers[-1].start()], flags=re.I).strip()
    return Parsed(ok=True, winner=winner, reason=reason or None)


_SCORE_LINE = re.compile(
    rf"^\s*(?:\*\*)?(?:(?:final\s+)?(?:score|rating|grade)\s*(?:\*\*)?\s*[:=]?\s*)?(?:\*\*)?\s*({_NUMBER})\s*(?:\*\*)?\s*"
    rf"(?:/\s*\d+|out\s+of\s+\d+|points?|分)?\s*[.。!]?\s*$",
    re.I,
)


def parse_scale(text: str, lo: int, hi: int, *, whole_reply: bool = False) -> Parsed:
    """A single integer grade in [lo, hi] on the first line (or as the whole reply when
    `whole_reply`), optionally labelled "Score:" and followed by "/hi"; the rest is the reason.

    >>> parse_scale("Score: 4\\nEvery claim is in the context.", 1, 5).scores
    (4.0,)
    >>> parse_scale("85", 0, 100, whole_reply=True).scores, parse_scale("85.5", 0, 100).ok
    ((85.0,), False)
    >>> parse_scale("Somewhere between 3 and 4", 1, 5).ok
    False
    """
    norm = _norm(text)
    if not norm.strip():
        return fail("empty reply")
    head, rest = (norm.strip(), "") if whole_reply else _first_line(norm)
    m = _SCORE_LINE.match(head)
    if not m:
        where = "the reply" if whole_reply else "the first line"
        return fail(f"{where} is not a single grade: {head[:40]!r}")
    token = m.group(1)
    if not re.fullmatch(r"[-+]?\d+", token):
        return fail(f"grade is not an integer: {token!r}")
    value = int(token)
    if not lo <= value <= hi:
        return fail(f"grade {value} outside {lo}-{hi}")
    rest = re.sub(r"^\s*(?:reason|explanation|justification)\s*:\s*", "", rest, flags=re.I).strip()
    return Parsed(ok=True, scores=(float(value),), reason=rest or None)
