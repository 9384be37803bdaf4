"""`judgeforge eval`: predictions (Verdict JSONL) against gold labels -> metrics.json, report.md, plots.

Gold is read by `judge.eval.gold`, prediction files by `judge.eval.predictions`; this module measures each
judge against the gold (pairwise or pointwise metrics, length bias, calibration) and the judges
against each other. Ids missing on either side are counted and listed, never silently dropped.
What cannot give a right number is refused (InputError, exit 2): an empty file, a duplicate id,
predictions and gold with no id in common, pointwise predictions against pairwise gold or the reverse.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from judge.core.configfile import option
from judge.core.errors import ConfigError
from judge.eval import metrics as M
from judge.eval.gold import Gold, GoldSet, attach_items, load_gold
from judge.eval.label_files import FORMATS
from judge.eval.metrics_benchmarks import PROTOCOLS, check_protocol, protocol_metrics
from judge.eval.predictions import Predictions, check_matches, escalation_of, load_predictions, order_label

HEADLINE_PAIRWISE = ["n", "accuracy", "precision", "recall", "f1", "consistency", "prefer_first_rate",
                     "prefer_second_rate", "parse_failure_rate", "prefer_longer_rate", "gold_prefer_longer_rate",
                     "headline_protocol"]
HEADLINE_POINTWISE = ["n", "pearson", "spearman", "kendall", "parse_failure_rate"]
NO_LENGTHS = ("length bias needs the answers: the gold file holds bare labels or verdicts, so pass "
              "--items ITEMS.jsonl (the items these labels belong to)")


@dataclass
class EvalConfig:
    """`judgeforge eval`'s settings (its flags and `--config` keys are generated from these fields)."""

    pred: list[str] = option(help="predictions (Verdict JSONL); repeat to compare judges", action="extend", nargs=1,
                             metavar="PRED")
    gold: str = option(help="gold labels: items with winner/score, {id, winner|score} rows, or another judge's verdicts")
    out: str = option(help="output folder for metrics.json, report.md, *.png")
    pred_format: str = option("jsonl", choices=FORMATS, help="read --pred through an importer")
    gold_format: str = option("jsonl", choices=FORMATS, help="read --gold through an importer")
    items: str | None = option(None, help="the items the gold labels belong to, when --gold holds bare labels or a "
                                          "teacher's verdicts: answer lengths (length bias), category, question")
    unparsed: str = option("tie", choices=M.UNPARSED_POLICIES, help=(
        "how unparsed verdicts count: tie (default, the PandaLM/JudgeLM convention; pointwise: the middle of the "
        "gold score range), drop (left out, counted), wrong (never agrees; pointwise: the far end of the gold range)"))
    threshold: float = option(0.0, help="score-pair verdicts: a gap of at most T is a tie (JudgeLM's T, default 0)")
    bootstrap: int = option(1000, help="bootstrap resamples for the 95% CIs (0: none)")
    seed: int = option(0, help="seed of the bootstrap resamples")
    no_plots: bool = option(False, help="skip the PNG plots")
    no_html: bool = option(False, help="skip report.html (the page with the judges side by side and an item browser)")
    protocol: str | None = option(None, choices=PROTOCOLS, help=(
        "a benchmark's own rule beside the usual metrics (both orders): judgebench (its accuracy overall and per "
        "category), evalbiasbench (accuracy, consistency and how often a verdict fell for the bias, per bias type)"))
    card: bool = option(False, help="add a judge card: the first --pred's numbers next to the other judges', with "
                                    "95% CIs, and what it fell for per bias group (report.md, metrics.json `card`)")
    card_include: list[str] | None = option(None, action="extend", nargs="+", metavar="EVAL_DIR", help=(
        "with --card: also put on the card the benchmarks of earlier `eval --card` runs (their output folders)"))


# ---- per-judge metrics --------------------------------------------------------------------------
def _parsing(judge: Predictions, ids: list[str]) -> dict:
    """The judge's parse counts (one definition: `Predictions.parse_counts`), in `parsing` and the
    headline keys repeated at the judge's top level."""
    counts = judge.parse_counts(ids)
    return {"parsing": counts, "n_unparsed": counts["unparsed"],
            **{k: counts[k] for k in ("parse_failure_rate", "n_items_with_unparsed", "both_unparsed_rate")}}


def pairwise_metrics(judge: Predictions, gold: GoldSet, ids: list[str], *, unparsed: str, threshold: float,
                     n_resamples: int, seed: int, protocol: str | None = None) -> dict:
    orders = {o: [order_label(judge.verdicts[i][o], threshold) if o in judge.verdicts[i] else None for i in ids]
              for o in ("ab", "ba")}
    has = {o: [o in judge.verdicts[i] for i in ids] for o in ("ab", "ba")}
    labels = [gold.labels[i].winner for i in ids]
    # JudgeLM headline: the verdicts in the order given; items judged only swapped count with those.
    first = [a if ha else b for a, b, ha in zip(orders["ab"], orders["ba"], has["ab"])]
    out = M.classification(labels, first, unparsed=unparsed, labels=gold.classes, n_resamples=n_resamples, seed=seed)
    both = [k for k in range(len(ids)) if has["ab"][k] and has["ba"][k]]
    out.update({k: None for k in ("consistency", "prefer_first_rate", "prefer_second_rate")})
    # With both orders the headline is JudgeLM's (the order given); the swap protocol has its own section.
    out["headline_protocol"] = "ab" if both else "single order"
    if both:
        ab, ba = [orders["ab"][k] for k in both], [orders["ba"][k] for k in both]
        cons = M.consistency(ab, ba, unparsed=unparsed)  # both_unparsed_rate: parse_counts' definition
        out.update({k: cons[k] for k in ("consistency", "prefer_first_rate", "prefer_second_rate")})
        out["position_bias"] = cons
        out["swap_protocol"] = M.classification([labels[k] for k in both], M.swap_combine(ab, ba), unparsed=unparsed,
                                                labels=gold.classes, n_resamples=n_resamples, seed=seed)
    out.update(_parsing(judge, ids))
    picks = [[orders[o][k] for o in ("ab", "ba") if has[o][k]] for k in range(len(ids))]
    bias = length_bias(gold, ids, picks, first, unparsed=unparsed, n_resamples=n_resamples, seed=seed)
    out.update(bias)
    if bias["length_bias"]["available"]:
        out.setdefault("ci95", {}).update({"prefer_longer_rate": bias["length_bias"]["judge"]["ci95"],
                                           "gold_prefer_longer_rate": bias["length_bias"]["gold"]["ci95"]})
    categories = [gold.labels[i].category for i in ids]
    if any(categories):
        out["category_level"] = {"by": "category", "categories": M.agreement_by_group(
            labels, first, [c or "(none)" for c in categories], unparsed=unparsed, n_resamples=n_resamples, seed=seed)}
    if protocol:  # a benchmark's own rule (judge.eval.metrics_benchmarks), beside the usual metrics
        has_both = [a and b for a, b in zip(has["ab"], has["ba"])]
        out.update(protocol_metrics(protocol, labels, first, orders["ab"], orders["ba"], has_both, categories,
                                    unparsed=unparsed, n_resamples=n_resamples, seed=seed))
    calibration = _calibration(judge, gold, ids)
    if calibration:
        out["calibration"] = calibration
    return out


def length_bias(gold: GoldSet, ids: list[str], picks: list[list[str | None]], first: list[str | None], *,
                unparsed: str, n_resamples: int, seed: int) -> dict:
    """`prefer_longer_rate` (all of the judge's verdicts, both orders where judged, so a pure position
    bias reads as 0.5), `gold_prefer_longer_rate` on the same items, and the headline agreement split
    by whether the gold winner is the longer or the shorter answer. Needs the answers' lengths."""
    if any(gold.labels[i].lengths is None for i in ids):
        return {"prefer_longer_rate": None, "gold_prefer_longer_rate": None,
                "length_bias": {"available": False, "reason": NO_LENGTHS}}
    longer = [M.longer_answer(*gold.labels[i].lengths) for i in ids]
    labels = [gold.labels[i].winner for i in ids]
    judge_side = M.prefer_longer(picks, longer, n_resamples=n_resamples, seed=seed)
    gold_side = M.prefer_longer([[g] for g in labels], longer, n_resamples=n_resamples, seed=seed)
    split = {}
    for name, wanted in (("gold_longer", True), ("gold_shorter", False)):
        keep = [k for k in range(len(ids)) if longer[k] and labels[k] in ("1", "2") and (labels[k] == longer[k]) == wanted]
        split[name] = M.agreement([labels[k] for k in keep], [first[k] for k in keep], unparsed=unparsed,
                                  n_resamples=n_resamples, seed=seed)
    split["not_split"] = {"gold_tie": sum(g == "tie" for g in labels),
                          "equal_length": sum(lg is None and g != "tie" for lg, g in zip(longer, labels))}
    return {
        "prefer_longer_rate": judge_side["prefer_longer_rate"],
        "gold_prefer_longer_rate": gold_side["prefer_longer_rate"],
        "length_bias": {"available": True, "by": "characters", "judge": judge_side, "gold": gold_side,
                        "agreement_by_gold_winner": split},
    }


def _calibration(judge: Predictions, gold: GoldSet, ids: list[str]) -> dict | None:
    """With verdict-token probabilities (logprob mode): is the judge's confidence its accuracy?"""
    confidence, correct = [], []
    for i in ids:
        for v in judge.verdicts[i].get("ab", []) + judge.verdicts[i].get("ba", []):
            probs = (v.logprobs or {}).get("probs")
            if probs and gold.labels[i].winner:
                label, p = max(probs.items(), key=lambda kv: kv[1])
                confidence.append(p)
                correct.append(label == gold.labels[i].winner)
    return M.expected_calibration_error(confidence, correct) | {"n": len(confidence)} if confidence else None


def _unparsed_score(policy: str, gold_score: float, score_range: tuple[float, float]) -> float | None:
    """Pointwise `--unparsed`: `tie` is the middle of the gold scores' range (no opinion), `wrong`
    the end of that range farthest from the gold score, `drop` leaves the item out (None)."""
    lo, hi = score_range
    if policy == "tie":
        return (lo + hi) / 2
    if policy == "wrong":
        return lo if abs(gold_score - lo) >= abs(gold_score - hi) else hi
    return None


def pointwise_metrics(judge: Predictions, gold: GoldSet, ids: list[str], *, unparsed: str, n_resamples: int, seed: int) -> dict:
    pred, kept, n_items_unparsed = [], [], 0
    for i in ids:
        scores = [v.score for vs in judge.verdicts[i].values() for v in vs if v.parse_ok and v.score is not None]
        if scores:  # repeated samples (self-consistency) are averaged
            pred.append(float(np.mean(scores)))
            kept.append(i)
            continue
        n_items_unparsed += 1
        fill = _unparsed_score(unparsed, float(gold.labels[i].score), gold.score_range)
        if fill is not None:
            pred.append(fill)
            kept.append(i)
    labels = [gold.labels[i] for i in kept]
    g = [float(x.score) for x in labels]
    out: dict = {"n": len(kept), "n_items_unparsed": n_items_unparsed, "unparsed_policy": unparsed,
                 **_parsing(judge, ids)}
    if unparsed != "drop":
        out["unparsed_score"] = ("middle of the gold range" if unparsed == "tie" else "far end of the gold range")
    out.update(M.sample_correlations(g, pred, n_resamples=n_resamples, seed=seed))
    if kept:
        out["mae"] = round(float(np.mean(np.abs(np.array(g) - np.array(pred)))), 6)
        out["mean_pred"], out["mean_gold"] = round(float(np.mean(pred)), 6), round(float(np.mean(g)), 6)
    if kept and all(x.model for x in labels):
        out["system_level"] = M.system_correlations(g, pred, [x.model for x in labels])
    if kept and all(x.question for x in labels):
        out["group_level"] = {"by": "question", **M.group_correlations(g, pred, [x.question for x in labels])}
    if kept and all(x.category for x in labels):
        out["category_level"] = {"by": "category", **M.group_correlations(g, pred, [x.category for x in labels])}
    out["scatter"] = {"gold": g, "pred": pred}
    return out


def judge_metrics(judge: Predictions, gold: GoldSet, *, unparsed: str, threshold: float, n_resamples: int, seed: int,
                  protocol: str | None = None) -> dict:
    """One judge against the gold: its metrics plus the ids found on one side only."""
    ids = check_matches(judge, gold)
    without_label = gold.unlabelled
    unlabelled = [i for i in judge.verdicts if i in without_label]
    pred_only = [i for i in judge.verdicts if i not in gold.labels and i not in without_label]
    gold_only = [i for i in gold.labels if i not in judge.verdicts]
    if gold.mode == "pairwise":
        m = pairwise_metrics(judge, gold, ids, unparsed=unparsed, threshold=threshold, n_resamples=n_resamples, seed=seed,
                             protocol=protocol)
    else:
        m = pointwise_metrics(judge, gold, ids, unparsed=unparsed, n_resamples=n_resamples, seed=seed)
    m["missing"] = {
        "in_gold_not_pred": len(gold_only), "in_pred_not_gold": len(pred_only),
        "in_pred_gold_unparsed": len(unlabelled),
        "examples_gold_only": gold_only[:10], "examples_pred_only": pred_only[:10],
        "examples_gold_unparsed": unlabelled[:10],
    }
    m["judge"], m["predictions"] = judge.name, judge.path
    m["escalation"] = escalation_of(judge.path, judge.all())  # who decided: a local judge, a cascade, or the teacher
    return m


# ---- the verb -----------------------------------------------------------------------------------
def evaluate(pred_paths: list[str], gold_path: str, out_dir: str | None = None, *, pred_format: str = "jsonl",
             gold_format: str = "jsonl", items_path: str | None = None, unparsed: str = "tie", threshold: float = 0.0,
             n_resamples: int = 1000, seed: int = 0, plots: bool = True, protocol: str | None = None,
             card: bool = False, card_include: list[str] | None = None, html: bool = True) -> dict:
    """Evaluate one or several judges against gold; write metrics.json, report.md, PNGs and (unless
    `html` is False) report.html to `out_dir`.

    With several prediction files the top level holds the first judge's headline, `judges` holds
    every judge's metrics, and `between_judges` their agreement and Cohen's kappa."""
    if unparsed not in M.UNPARSED_POLICIES:
        raise ConfigError(f"--unparsed must be one of {', '.join(M.UNPARSED_POLICIES)}")
    gold = load_gold(gold_path, gold_format)
    if items_path:
        attach_items(gold, items_path)
    if protocol:
        check_protocol(protocol, gold)
    judges = [load_predictions(p, pred_format) for p in pred_paths]
    _dedupe_names(judges)
    results = {j.name: judge_metrics(j, gold, unparsed=unparsed, threshold=threshold, n_resamples=n_resamples, seed=seed,
                                     protocol=protocol) for j in judges}
    headline_keys = HEADLINE_PAIRWISE if gold.mode == "pairwise" else HEADLINE_POINTWISE
    first = results[judges[0].name]
    report = {k: first.get(k) for k in headline_keys}
    report.update({"mode": gold.mode, "gold": gold_path, "n_gold": len(gold.labels), "unparsed_policy": unparsed,
                   "threshold": threshold, "bootstrap_resamples": n_resamples})
    if gold.mode == "pairwise":
        report["macro_over"] = gold.classes
    if items_path:
        report["items"] = items_path
    if gold.teacher:
        report["gold_parsing"] = gold.teacher
    if len(judges) == 1:
        report.update({k: v for k, v in first.items() if k not in report})
    else:  # the top level repeats the first judge's headline, and says whose it is
        report["headline_judge"] = judges[0].name
        report["judges"] = results
        report["between_judges"] = between_judges(judges, gold.labels, gold.mode, threshold)
    if protocol:
        report["protocol"] = protocol
    if card or card_include:
        from judge.eval.card import judge_card

        report["card"] = judge_card(report, card_include or [])
    if out_dir:
        from judge.eval.report import write_report

        plot_files = write_report(report, out_dir, plots=plots)
        if html:
            from judge.eval.report_html import write_html

            write_html(report, judges, gold, out_dir, plot_files, unparsed=unparsed, threshold=threshold)
    return report


def _dedupe_names(judges: list[Predictions]) -> None:
    counts = Counter(j.name for j in judges)
    for j in judges:
        if counts[j.name] > 1:
            j.name = f"{j.name} ({Path(j.path).parent.name}/{Path(j.path).name})"


def between_judges(judges: list[Predictions], gold: dict[str, Gold], mode: str, threshold: float) -> dict:
    """Agreement of every pair of judges on the items both judged (headline order), with Cohen's
    kappa (pairwise) or Pearson (pointwise), plus Fleiss' kappa over all judges."""
    def label(j: Predictions, i: str):
        orders = j.verdicts[i]
        if mode == "pointwise":
            scores = [v.score for vs in orders.values() for v in vs if v.parse_ok and v.score is not None]
            return float(np.mean(scores)) if scores else None
        return order_label(orders.get("ab") or orders.get("ba", []), threshold) or "tie"

    pairs = []
    for a_index, a in enumerate(judges):
        for b in judges[a_index + 1:]:
            common = [i for i in a.verdicts if i in b.verdicts]
            la, lb = [label(a, i) for i in common], [label(b, i) for i in common]
            entry = {"a": a.name, "b": b.name, "n": len(common)}
            if mode == "pairwise":
                entry["agreement"] = round(float(np.mean([x == y for x, y in zip(la, lb)])), 6) if common else None
                entry["cohen_kappa"] = M.cohen_kappa(la, lb)
            else:
                both = [(x, y) for x, y in zip(la, lb) if x is not None and y is not None]
                entry.update(M.correlations([x for x, _ in both], [y for _, y in both]))
            pairs.append(entry)
    out = {"pairs": pairs}
    if mode == "pairwise" and len(judges) > 2:
        common = [i for i in judges[0].verdicts if all(i in j.verdicts for j in judges)]
        out["fleiss_kappa"] = M.fleiss_kappa([[label(j, i) for j in judges] for i in common])
        out["fleiss_n"] = len(common)
    return out
