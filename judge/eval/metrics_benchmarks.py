"""The judge benchmarks' own rules (`judgeforge eval --protocol judgebench|evalbiasbench`), on the
two orders' verdicts of each item (both mapped back to the original answers: "1", "2", "tie", or
None for unparsed or not judged).

- JudgeBench (its utils/metrics.py): per pair, +1 for each order whose verdict equals the gold
  winner, -1 for each equal to the other answer, 0 for a tie, an unparsed verdict or an order not
  judged; the pair is correct when the sum is > 0 (one right order and one tie is correct).
  Accuracy overall and per category, each with a bootstrap 95% CI over pairs.
- EvalBiasBench: per bias group (the item's category), the first order's accuracy, the share of
  items right in both orders, position consistency, and how often a verdict picked the answer the
  bias makes attractive (every group is built so that the biased judge picks the wrong answer).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from judge.core.errors import ConfigError, InputError
from judge.core.records import swap_label
from judge.data.benchmarks import JUDGEBENCH_CATEGORIES
from judge.eval import metrics as M
from judge.eval.gold import GoldSet

PROTOCOLS = ("judgebench", "evalbiasbench")
JUDGEBENCH_RULE = ("per pair +1 for each order whose verdict equals the label, -1 for each equal to the opposite, "
                   "0 for a tie or unparsed or missing order; correct when the sum > 0")


def check_protocol(protocol: str, gold: GoldSet) -> None:
    """Refuse gold the rule cannot score: pointwise labels; a tie under JudgeBench's rule (a tie
    label has no opposite, so no pair could be right); EvalBiasBench items without a bias type."""
    if protocol not in PROTOCOLS:
        raise ConfigError(f"--protocol must be one of {', '.join(PROTOCOLS)}")
    if gold.mode != "pairwise":
        raise ConfigError(f"--protocol {protocol} scores pairwise verdicts; {gold.path} holds pointwise labels")
    for g in gold.labels.values():
        if protocol == "judgebench" and g.winner not in ("1", "2"):
            raise InputError(f"--protocol judgebench needs a winner 1 or 2 for every pair; id {g.id!r} is a tie",
                             gold.path, g.line)
        if protocol == "evalbiasbench" and not g.category:
            raise InputError(f"--protocol evalbiasbench needs each item's bias type as its category; id {g.id!r} has "
                             "none (convert with --from evalbiasbench, or pass --items)", gold.path, g.line)


def judgebench_sum(label: str, ab: str | None, ba: str | None) -> int:
    """One pair's JudgeBench score: +1 per order that picks the label, -1 per order that picks the other answer."""
    other = swap_label(label)
    return sum((v == label) - (v == other) for v in (ab, ba))


def _groups(categories: Sequence[str | None]) -> dict[str, list[int]]:
    members: dict[str, list[int]] = defaultdict(list)
    for k, c in enumerate(categories):
        members[c or "(none)"].append(k)
    return members


def judgebench(labels: Sequence[str], ab: Sequence[str | None], ba: Sequence[str | None],
               categories: Sequence[str | None], *, n_resamples: int = 1000, seed: int = 0) -> dict:
    """JudgeBench's accuracy (fractions) overall and per category: the four groups always (None when
    the gold has none of a group's pairs), any other category the items carry after them."""
    correct = [judgebench_sum(g, a, b) > 0 for g, a, b in zip(labels, ab, ba)]
    members = _groups(categories)
    names = ["overall", *JUDGEBENCH_CATEGORIES, *sorted(c for c in members if c not in JUDGEBENCH_CATEGORIES)]
    out: dict = {}
    ci: dict = {}
    n: dict = {}
    for name in names:
        idx = range(len(correct)) if name == "overall" else members.get(name, [])
        r = M.rate_with_ci([correct[k] for k in idx], [1] * len(idx), n_resamples=n_resamples, seed=seed)
        out[name], ci[name], n[name] = r["rate"], r["ci95"], len(idx)
    missing = sum(a is None for a in ab) + sum(b is None for b in ba)
    return {**out, "n": n, "ci95": ci, "n_correct": sum(correct),
            "n_verdicts_unparsed_or_missing": missing, "rule": JUDGEBENCH_RULE}


def bias_groups(labels: Sequence[str], first: Sequence[str | None], ab: Sequence[str | None],
                ba: Sequence[str | None], has_both: Sequence[bool], categories: Sequence[str | None], *,
                unparsed: str = "tie", n_resamples: int = 1000, seed: int = 0) -> dict:
    """EvalBiasBench per bias group. `accuracy` (with CI): the headline verdicts `first` (the order
    shown as given; positions are balanced on import, so a judge that always picks one position
    scores 0.5); on the items judged in both orders: `accuracy_both_orders` (right in both),
    `consistency` (JudgeLM's, under the --unparsed policy) and `fell_for_rate`: the share of those
    verdicts that picked the wrong answer (ties and unparsed verdicts are neither, and counted)."""
    out = {}
    for group, idx in sorted(_groups(categories).items(), key=lambda kv: (-len(kv[1]), kv[0])):
        head = M.agreement([labels[k] for k in idx], [first[k] for k in idx], unparsed=unparsed,
                           n_resamples=n_resamples, seed=seed)
        both = [k for k in idx if has_both[k]]
        entry = {"n": len(idx), "accuracy": head["agreement"], "ci95": head["ci95"], "n_both_orders": len(both)}
        if both:
            right = sum(ab[k] == labels[k] and ba[k] == labels[k] for k in both)
            wrong = [sum(v == swap_label(labels[k]) for v in (ab[k], ba[k])) for k in both]
            fell = M.rate_with_ci(wrong, [2] * len(both), n_resamples=n_resamples, seed=seed)
            cons = M.consistency([ab[k] for k in both], [ba[k] for k in both], unparsed=unparsed)
            entry.update({
                "accuracy_both_orders": round(right / len(both), 6), "consistency": cons["consistency"],
                "prefer_first_rate": cons["prefer_first_rate"], "prefer_second_rate": cons["prefer_second_rate"],
                "fell_for_rate": fell["rate"], "fell_for_ci95": fell["ci95"], "n_fell_for": int(sum(wrong)),
                "n_tie_verdicts": sum(v == "tie" for k in both for v in (ab[k], ba[k])),
                "n_unparsed_verdicts": sum(v is None for k in both for v in (ab[k], ba[k])),
            })
        out[group] = entry
    return out


def protocol_metrics(protocol: str, labels: Sequence[str], first: Sequence[str | None], ab: Sequence[str | None],
                     ba: Sequence[str | None], has_both: Sequence[bool], categories: Sequence[str | None], *,
                     unparsed: str, n_resamples: int, seed: int) -> dict:
    """`eval --protocol`'s section of one judge's metrics: {"judgebench": ...} or {"evalbiasbench": ...}."""
    if protocol == "judgebench":
        return {"judgebench": judgebench(labels, ab, ba, categories, n_resamples=n_resamples, seed=seed)}
    return {"evalbiasbench": {"by": "category (bias type)", "groups": bias_groups(
        labels, first, ab, ba, has_both, categories, unparsed=unparsed, n_resamples=n_resamples, seed=seed)}}
