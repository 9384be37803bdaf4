"""Judge metrics, defined as in DESIGN.md and the anchors (PandaLM, JudgeLM, CritiqueLLM).
scikit-learn and scipy do the arithmetic; this module decides what is compared with what.

Pairwise labels are "1", "2", "tie"; an unparsed verdict is None until a policy says what it is.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence

import numpy as np

LABELS = ["1", "2", "tie"]
INVALID = "invalid"  # an unparsed verdict under the `wrong` policy: never equal to a gold label
UNPARSED_POLICIES = ("tie", "drop", "wrong")


def apply_unparsed(gold: Sequence[str], pred: Sequence[str | None], policy: str = "tie"):
    """How unparsed predictions enter the metrics: counted as `tie` (PandaLM/JudgeLM convention),
    `drop`ped from both sides, or always `wrong`. Returns (gold, pred, n_unparsed)."""
    if policy not in UNPARSED_POLICIES:
        raise ValueError(f"unparsed policy must be one of {UNPARSED_POLICIES}, got {policy!r}")
    n_unparsed = sum(p is None for p in pred)
    if policy == "drop":
        kept = [(g, p) for g, p in zip(gold, pred) if p is not None]
        return [g for g, _ in kept], [p for _, p in kept], n_unparsed
    fill = "tie" if policy == "tie" else INVALID
    return list(gold), [fill if p is None else p for p in pred], n_unparsed


def gold_classes(gold: Sequence[str | None]) -> list[str]:
    """The classes macro averages run over: those of {1, 2, tie} that occur in the gold labels. The
    caller passes one gold file's labels, so judges compared side by side are averaged over the same
    classes; a prediction (a tie the gold never has, an unparsed verdict under any policy) is never
    a class of its own, only an error."""
    seen = set(gold)
    return [label for label in LABELS if label in seen]


def _classification_point(gold: np.ndarray, pred: np.ndarray, labels: list[str]) -> np.ndarray:
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support

    precision, recall, f1, _ = precision_recall_fscore_support(
        gold, pred, labels=labels, average="macro", zero_division=0
    )
    return np.array([accuracy_score(gold, pred), precision, recall, f1])


def bootstrap_ci(statistic: Callable[[np.ndarray], np.ndarray], n: int, *, n_resamples: int = 1000,
                 seed: int = 0, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray] | None:
    """Percentile bootstrap over items (resampling item indices). None when there is nothing to resample."""
    from scipy.stats import bootstrap

    if n < 2 or n_resamples <= 0:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # degenerate resamples (a constant vector) give nan, reported as such
        result = bootstrap(
            (np.arange(n),), lambda idx: statistic(idx.astype(int)), n_resamples=n_resamples,
            confidence_level=confidence, method="percentile", vectorized=False, rng=np.random.default_rng(seed),
        )
    return np.atleast_1d(result.confidence_interval.low), np.atleast_1d(result.confidence_interval.high)


def _ci_pairs(names: list[str], ci) -> dict[str, list[float] | None]:
    if ci is None:
        return {name: None for name in names}
    low, high = ci
    return {name: [_num(lo), _num(hi)] for name, lo, hi in zip(names, low, high)}


def _num(x) -> float | None:
    x = float(x)
    return None if math.isnan(x) else round(x, 6)


def classification(gold: Sequence[str], pred: Sequence[str | None], *, unparsed: str = "tie",
                   labels: Sequence[str] | None = None, n_resamples: int = 1000, seed: int = 0) -> dict:
    """Accuracy (= agreement), macro precision/recall/F1 over `labels` (default: the classes of
    `gold`, see `gold_classes`), confusion matrix, per-class counts, and bootstrap 95% CIs of the
    four headline numbers. `n_items_unparsed` counts the items whose prediction is unparsed (None),
    all of them, before a `drop` policy removes them; the verdict-level `parse_failure_rate` is the
    judge's (`judge.eval.predictions.Predictions.parse_counts`), not this section's."""
    from sklearn.metrics import confusion_matrix

    labels = list(labels) if labels is not None else gold_classes(gold)
    gold, pred, n_unparsed = apply_unparsed(gold, pred, unparsed)
    g, p = np.array(gold, dtype=object), np.array(pred, dtype=object)
    names = ["accuracy", "precision", "recall", "f1"]
    if len(g) == 0:
        return {"n": 0, **{k: None for k in names}, "n_items_unparsed": n_unparsed, "unparsed_policy": unparsed}
    point = _classification_point(g, p, labels)
    ci = bootstrap_ci(lambda idx: _classification_point(g[idx], p[idx], labels), len(g), n_resamples=n_resamples, seed=seed)
    cols = LABELS + ([INVALID] if INVALID in pred else [])
    matrix = confusion_matrix(g, p, labels=cols)
    return {
        "n": len(g),
        **{name: _num(v) for name, v in zip(names, point)},
        "ci95": _ci_pairs(names, ci),
        "n_items_unparsed": n_unparsed,
        "unparsed_policy": unparsed,
        "macro_over": labels,
        "confusion_matrix": {"labels_gold": LABELS, "labels_pred": cols, "counts": matrix[: len(LABELS)].tolist()},
        "per_class": {
            label: {"gold": int((g == label).sum()), "pred": int((p == label).sum())} for label in LABELS
        },
    }


def _outcome(label: str | None) -> int | None:
    """Answer 1's outcome: +1 win, 0 tie, -1 loss."""
    return {"1": 1, "tie": 0, "2": -1}.get(label)


def consistency(ab: Sequence[str | None], ba: Sequence[str | None], *, unparsed: str = "tie") -> dict:
    """JudgeLM's swap consistency. `ab` and `ba` are the two orders' verdicts, both already mapped
    back to the original answers. Consistent: identical win/lose/tie. Of the rest, `prefer_first`
    counts pairs where the answer shown first did better (answer 1 in ab, answer 2 in ba),
    `prefer_second` the opposite; delta_bias = |first - second|, total_bias = first + second.

    A pair with both orders unparsed is no evidence of consistency: it stays in `n` (unless the
    policy is `drop`), is neither consistent nor biased, and is counted as `n_both_unparsed`; so a
    judge that parses nothing has consistency 0, not 1. With one side unparsed the policy applies
    (`tie`: it counts as a tie; `wrong`: never consistent). `both_unparsed_rate` is over every pair
    given, whatever the policy: the same definition as `Predictions.parse_counts`."""
    pairs = list(zip(ab, ba))
    n_given = len(pairs)
    n_unparsed = sum(a is None or b is None for a, b in pairs)
    n_both_unparsed = sum(a is None and b is None for a, b in pairs)
    if unparsed == "drop":
        pairs = [(a, b) for a, b in pairs if a is not None and b is not None]
    elif unparsed == "tie":
        pairs = [(a, b) if a is None and b is None else (a or "tie", b or "tie") for a, b in pairs]
    n = len(pairs)
    same = first = second = 0
    for a, b in pairs:
        oa, ob = _outcome(a), _outcome(b)
        if oa is None or ob is None:  # both unparsed, or one under the `wrong` policy: never consistent
            continue
        if oa == ob:
            same += 1
        elif oa > ob:  # answer 1 did better when first, answer 2 did better when first
            first += 1
        else:
            second += 1
    rate = (lambda k: _num(k / n)) if n else (lambda k: None)
    return {
        "n": n, "consistency": rate(same), "prefer_first_rate": rate(first), "prefer_second_rate": rate(second),
        "delta_bias": rate(abs(first - second)), "total_bias": rate(first + second),
        "n_pairs_with_unparsed": n_unparsed, "n_both_unparsed": n_both_unparsed,
        "both_unparsed_rate": _num(n_both_unparsed / n_given) if n_given else None,
    }


def combine_orders(ab: str | None, ba: str | None) -> str | None:
    """One item's two orders (both mapped back) as one verdict, PandaLM's swap protocol: the verdict
    both orders agree on, a conflict becomes a tie. An unparsed side leaves it unparsed (None)."""
    return None if ab is None or ba is None else ab if ab == ba else "tie"


def swap_combine(ab: Sequence[str | None], ba: Sequence[str | None]) -> list[str | None]:
    """`combine_orders` item by item."""
    return [combine_orders(a, b) for a, b in zip(ab, ba)]


def longer_answer(len1: int, len2: int) -> str | None:
    """"1" or "2": the answer with more characters; None when both are equally long."""
    return "1" if len1 > len2 else "2" if len2 > len1 else None


def rate_with_ci(num: Sequence[float], den: Sequence[float], *, n_resamples: int = 1000, seed: int = 0,
                 confidence: float = 0.95) -> dict:
    """sum(num) / sum(den) over items with a percentile-bootstrap CI that resamples items, so the
    several verdicts of one item (both orders) move together. Items with den 0 carry no weight."""
    from scipy.stats import bootstrap

    num, den = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    keep = den > 0
    num, den = num[keep], den[keep]
    if not len(den):
        return {"rate": None, "ci95": None}
    rate = _num(num.sum() / den.sum())
    if len(den) < 2 or n_resamples <= 0:
        return {"rate": rate, "ci95": None}
    result = bootstrap((num, den), lambda a, b, axis=-1: a.sum(axis=axis) / b.sum(axis=axis), paired=True,
                       vectorized=True, n_resamples=n_resamples, confidence_level=confidence, method="percentile",
                       rng=np.random.default_rng(seed))
    return {"rate": rate, "ci95": [_num(result.confidence_interval.low), _num(result.confidence_interval.high)]}


def agreement(gold: Sequence[str], pred: Sequence[str | None], *, unparsed: str = "tie", n_resamples: int = 1000,
              seed: int = 0) -> dict:
    """Share of items where the prediction equals gold (unparsed ones under the policy), with its CI."""
    gold, pred, n_unparsed = apply_unparsed(gold, pred, unparsed)
    hits = [g == p for g, p in zip(gold, pred)]
    r = rate_with_ci(hits, [1] * len(hits), n_resamples=n_resamples, seed=seed)
    return {"n": len(hits), "agreement": r["rate"], "ci95": r["ci95"], "n_items_unparsed": n_unparsed}


def agreement_by_group(gold: Sequence[str], pred: Sequence[str | None], groups: Sequence, *, unparsed: str = "tie",
                       n_resamples: int = 1000, seed: int = 0) -> dict[str, dict]:
    """`agreement` within each group (e.g. category), largest groups first."""
    members: dict = defaultdict(list)
    for i, key in enumerate(groups):
        members[key].append(i)
    order = sorted(members, key=lambda k: (-len(members[k]), str(k)))
    return {str(k): agreement([gold[i] for i in members[k]], [pred[i] for i in members[k]], unparsed=unparsed,
                              n_resamples=n_resamples, seed=seed) for k in order}


def prefer_longer(picks: Sequence[Sequence[str | None]], longer: Sequence[str | None], *, n_resamples: int = 1000,
                  seed: int = 0) -> dict:
    """Length (verbosity) bias: the share of non-tie verdicts that pick the longer answer.

    `picks[i]` holds the labels given to item i (one per order judged, or the one gold label);
    `longer[i]` is "1", "2", or None when both answers are equally long. A tie, an unparsed label
    (None) or a verdict on two equally long answers picks no longer answer: each is left out of the
    rate and counted. 0.5 means no length preference."""
    num, den = [], []
    counts = {"n_tie": 0, "n_unparsed": 0, "n_equal_length": 0}
    for labels, long in zip(picks, longer):
        hit = total = 0
        for label in labels:
            if label is None:
                counts["n_unparsed"] += 1
            elif label not in ("1", "2"):
                counts["n_tie"] += 1
            elif long is None:
                counts["n_equal_length"] += 1
            else:
                total += 1
                hit += label == long
        num.append(hit)
        den.append(total)
    r = rate_with_ci(num, den, n_resamples=n_resamples, seed=seed)
    return {"prefer_longer_rate": r["rate"], "ci95": r["ci95"], "n_verdicts": int(sum(den)),
            "n_longer": int(sum(num)), **counts}


def correlations(gold: Sequence[float], pred: Sequence[float]) -> dict:
    """Pearson, Spearman, Kendall (scipy) between two score vectors; None where undefined."""
    from scipy.stats import kendalltau, pearsonr, spearmanr

    g, p = np.asarray(gold, dtype=float), np.asarray(pred, dtype=float)
    if len(g) < 2 or np.all(g == g[0]) or np.all(p == p[0]):
        return {"pearson": None, "spearman": None, "kendall": None}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "pearson": _num(pearsonr(g, p).statistic),
            "spearman": _num(spearmanr(g, p).statistic),
            "kendall": _num(kendalltau(g, p).statistic),
        }


def _corr_vector(g: np.ndarray, p: np.ndarray) -> np.ndarray:
    c = correlations(g, p)
    return np.array([np.nan if c[k] is None else c[k] for k in ("pearson", "spearman", "kendall")])


def sample_correlations(gold: Sequence[float], pred: Sequence[float], *, n_resamples: int = 1000, seed: int = 0) -> dict:
    g, p = np.asarray(gold, dtype=float), np.asarray(pred, dtype=float)
    names = ["pearson", "spearman", "kendall"]
    ci = bootstrap_ci(lambda idx: _corr_vector(g[idx], p[idx]), len(g), n_resamples=n_resamples, seed=seed)
    return {**correlations(g, p), "ci95": _ci_pairs(names, ci)}


def group_correlations(gold: Sequence[float], pred: Sequence[float], groups: Sequence) -> dict:
    """Correlation within each group (e.g. the answers to one question), averaged over the groups
    where it is defined (CritiqueLLM's text-level correlation)."""
    members: dict = defaultdict(list)
    for i, key in enumerate(groups):
        members[key].append(i)
    per_group = [correlations([gold[i] for i in idx], [pred[i] for i in idx]) for idx in members.values() if len(idx) > 1]
    out = {"n_groups": len(members)}
    for name in ("pearson", "spearman", "kendall"):
        values = [c[name] for c in per_group if c[name] is not None]
        out[name] = _num(np.mean(values)) if values else None
        out[f"n_groups_{name}"] = len(values)
    return out


def system_correlations(gold: Sequence[float], pred: Sequence[float], systems: Sequence) -> dict:
    """Correlation of per-system (answering model) mean scores: does the judge rank models as gold does?"""
    members: dict = defaultdict(list)
    for i, key in enumerate(systems):
        members[key].append(i)
    names = sorted(members, key=str)
    gold_means = [float(np.mean([gold[i] for i in members[k]])) for k in names]
    pred_means = [float(np.mean([pred[i] for i in members[k]])) for k in names]
    return {
        "n_systems": len(names), **correlations(gold_means, pred_means),
        "means": {str(k): {"gold": round(gm, 4), "pred": round(pm, 4)} for k, gm, pm in zip(names, gold_means, pred_means)},
    }


def cohen_kappa(a: Sequence, b: Sequence) -> float | None:
    """Cohen's kappa between two raters' labels (scikit-learn)."""
    from sklearn.metrics import cohen_kappa_score

    if len(a) == 0:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _num(cohen_kappa_score(list(a), list(b)))


def fleiss_kappa(ratings: Sequence[Sequence]) -> float | None:
    """Fleiss' kappa for several raters: `ratings[i]` holds every rater's label for item i (statsmodels)."""
    from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa as _fleiss

    if not ratings:
        return None
    table, _ = aggregate_raters(np.array([[str(x) for x in row] for row in ratings], dtype=object))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _num(_fleiss(table, method="fleiss"))


def majority_label(labels: Sequence[str | None]) -> str | None:
    """The most common parsed label among repeated samples; an even split is a tie, none parsed is None."""
    counts = Counter(x for x in labels if x is not None).most_common()
    if not counts:
        return None
    if len(counts) > 1 and counts[0][1] == counts[1][1]:
        return "tie"
    return counts[0][0]


def expected_calibration_error(confidence: Sequence[float], correct: Sequence[bool], bins: int = 10) -> dict:
    """ECE over equal-width confidence bins, with the reliability table for a plot."""
    conf, hit = np.asarray(confidence, dtype=float), np.asarray(correct, dtype=float)
    edges = np.linspace(0, 1, bins + 1)
    table, ece = [], 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        mask = (conf > lo) & (conf <= hi) if lo > 0 else (conf >= lo) & (conf <= hi)
        if mask.any():
            gap = abs(hit[mask].mean() - conf[mask].mean())
            ece += mask.mean() * gap
            table.append({"bin": [round(lo, 2), round(hi, 2)], "n": int(mask.sum()),
                          "confidence": _num(conf[mask].mean()), "accuracy": _num(hit[mask].mean())})
    return {"ece": _num(ece) if len(conf) else None, "bins": table}
