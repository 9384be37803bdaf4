"""`judgeforge calibrate`: the confidence threshold above which a local judge may answer alone.

Cascaded selective evaluation ("Trust or Escalate", Jung et al., ICLR 2025): the local judge keeps
an item when its confidence (`judge.scoring.confidence`) is at least a threshold and hands it to the
teacher otherwise. The threshold is chosen on a labelled calibration set so that the agreement
with the gold labels on the kept items is at least `target` with probability at least 1 - `risk`:

- for each threshold of a fixed grid, from high to low, the null hypothesis "agreement on the
  items kept at this threshold is below `target`" is tested with the exact one-sided binomial
  test, i.e. the Clopper-Pearson lower bound of the agreement at level 1 - `risk` is compared
  with `target`;
- the search stops at the first threshold whose bound falls short; the lowest threshold that
  passed wins. Testing in a fixed order and stopping at the first failure (fixed-sequence
  testing) keeps the chance of any wrong claim at `risk`, with no multiple-testing correction.

Thresholds that keep too few items for even a perfect record to pass (fewer than
log(risk) / log(target)) are not tested: which ones they are depends on the confidences only,
never on the labels, and stopping there would end every search before it starts.

Agreement: pairwise, the item's verdict (both orders agree, or there would be nothing to keep)
equals the gold winner; pointwise, the expected score is within half a point of the gold grade.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from judge.core.configfile import option
from judge.core.errors import ConfigError, InputError
from judge.core.jsonl import atomic_open, read_json, write_json
from judge.eval.gold import load_gold
from judge.eval.label_files import FORMATS as GOLD_FORMATS
from judge.eval.predictions import load_predictions
from judge.scoring.confidence import HALF_POINT, confidence
from judge.templates import get_template

GRID_STEP = 0.001
GRID = tuple(round(1.0 - k * GRID_STEP, 3) for k in range(round(1 / GRID_STEP)))  # 1.000, 0.999, ..., 0.001
ESCALATE_ALL = 2.0  # above any probability: every item goes to the teacher


def agreement_lower_bound(agree: int | np.ndarray, n: int | np.ndarray, risk: float):
    """Exact one-sided (Clopper-Pearson) lower confidence bound at level 1 - `risk` for a binomial
    proportion with `agree` successes out of `n`: the p at which P(X >= agree | n, p) = risk.
    `bound >= A` is exactly "the one-sided binomial test of p < A rejects at level risk"."""
    from scipy.stats import beta

    agree, n = np.asarray(agree, dtype=float), np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore"):
        bound = beta.ppf(risk, np.maximum(agree, 1), np.maximum(n - agree + 1, 1))
    bound = np.where(agree > 0, bound, 0.0)
    return float(bound) if bound.ndim == 0 else bound


def search_threshold(conf, agree, target: float, risk: float, grid: tuple[float, ...] = GRID) -> dict:
    """Fixed-sequence testing over `grid` (descending) on items with confidence `conf` and
    agreement `agree` (booleans). Returns the chosen threshold (ESCALATE_ALL when none passes)
    with its coverage, agreement and bound, and the curve of every distinct kept set."""
    check_levels(target, risk)
    conf, agree = np.asarray(conf, dtype=float), np.asarray(agree, dtype=bool)
    n = len(conf)
    thresholds = np.asarray(grid, dtype=float)
    order = np.argsort(-conf, kind="stable")
    agreeing_prefix = np.concatenate([[0], np.cumsum(agree[order])])
    kept = np.searchsorted(-conf[order], -thresholds, side="right")  # items with conf >= threshold
    agreeing = agreeing_prefix[kept]
    bounds = agreement_lower_bound(agreeing, kept, risk)
    fewest = math.ceil(math.log(risk) / math.log(target)) if target < 1 else math.inf
    chosen, failed_at, first_tested = None, None, None
    for index in range(len(thresholds)):
        if kept[index] < fewest:
            continue
        if first_tested is None:
            first_tested = float(thresholds[index])
        if bounds[index] < target:
            failed_at = float(thresholds[index])
            break
        chosen = index
    curve, seen = [], set()
    for index in range(len(thresholds)):
        if kept[index] and kept[index] not in seen:  # the highest threshold that keeps this many items
            seen.add(kept[index])
            curve.append(_point(thresholds[index], kept[index], agreeing[index], bounds[index], n))
    result = {"met": chosen is not None, "threshold": float(thresholds[chosen]) if chosen is not None else ESCALATE_ALL,
              "n": n, "target_agreement": target, "risk": risk}
    if chosen is not None:
        result.update(_point(thresholds[chosen], kept[chosen], agreeing[chosen], bounds[chosen], n))
    else:
        result.update(n_accepted=0, coverage=0.0, agreement=None, agreement_lower_bound=None)
    result["search"] = {"grid": f"{grid[0]:g} down to {grid[-1]:g}", "thresholds": len(grid),
                        "fewest_items_tested": fewest if fewest != math.inf else None,
                        "first_tested": first_tested, "failed_at": failed_at,
                        "bound": "exact one-sided Clopper-Pearson, level 1 - risk"}
    result["curve"] = curve
    return result


def _point(threshold, kept, agreeing, bound, n) -> dict:
    return {"threshold": round(float(threshold), 6), "n_accepted": int(kept), "coverage": round(int(kept) / n, 6),
            "agreement": round(int(agreeing) / int(kept), 6), "agreement_lower_bound": round(float(bound), 6)}


def check_levels(target: float, risk: float) -> None:
    if not 0 < target <= 1:
        raise ConfigError(f"--target-agreement must be in (0, 1], got {target}")
    if not 0 < risk < 1:
        raise ConfigError(f"--risk must be in (0, 1), got {risk}")


def calibration_set(pred: str, gold: str, gold_format: str = "jsonl") -> dict:
    """Per item of `pred` with a gold label: confidence and agreement, plus the judge, template and
    orders the predictions were made with, and what could not be used (counted, never dropped quietly)."""
    judge = load_predictions(pred)
    verdicts = judge.all()
    if not verdicts:
        raise InputError("no verdicts", pred)
    identities = {(v.judge, v.template, v.template_hash) for v in verdicts if v.parse_ok}
    if len(identities) != 1:
        raise InputError(f"predictions from {len(identities)} judge/template combinations ({sorted(map(str, identities))}); "
                         f"calibrate one judge with one template at a time", pred)
    (name, template_key, template_hash), = identities
    template = get_template(template_key)
    orders = {tuple(sorted(by_order)) for by_order in judge.verdicts.values()}
    if len(orders) != 1:
        raise InputError("some items were judged in both orders and some in one; score them all the same way", pred)
    for item_id, by_order in judge.verdicts.items():
        if any(len(vs) > 1 for vs in by_order.values()):
            raise InputError(f"item {item_id!r} has several verdicts for one order; calibrate takes one per order", pred)
    labels = load_gold(gold, gold_format).labels
    ids, conf, agree = [], [], []
    for item_id, by_order in judge.verdicts.items():
        label = labels.get(item_id)
        truth = (label.winner if template.mode == "pairwise" else label.score) if label else None
        if truth is None:
            continue
        item_verdicts = [vs[0] for vs in by_order.values()]
        try:
            conf.append(confidence(item_verdicts))
        except InputError as e:
            raise InputError(e.reason, pred) from None
        agree.append(agrees(item_verdicts[0], truth))  # kept items' orders agree: either one speaks for both
        ids.append(item_id)
    if not ids:
        raise InputError(f"none of the predicted items has a {template.mode} gold label in {gold}", pred)
    return {"ids": ids, "confidence": conf, "agree": agree, "judge": name, "fingerprint": recorded_fingerprint(pred),
            "template": template.key,
            "template_hash": template_hash, "mode": template.mode, "swap": orders.pop() == ("ab", "ba"),
            "no_gold": len(judge.verdicts) - len(ids), "gold_not_scored": len(set(labels) - set(judge.verdicts))}


def recorded_fingerprint(pred: str) -> dict | None:
    """The fingerprint of the judge that wrote `pred`, from score's manifest beside it (None without
    one: a cascade from such predictions is refused at score time, as its judge is unknown)."""
    from judge.scoring.score import judge_fingerprint

    manifest = Path(pred).with_name(f"{Path(pred).stem}.manifest.json")
    run = read_json(manifest) if manifest.is_file() else None
    if not (isinstance(run, dict) and run.get("stage") == "score" and isinstance(run.get("resume"), dict)):
        return None
    return judge_fingerprint(run["resume"])


def agrees(verdict, truth) -> bool:
    """A local verdict's agreement with a gold label (pairwise winner, or a grade within half a point)."""
    if not verdict.parse_ok:
        return False
    if isinstance(truth, str):
        return verdict.winner == truth
    return verdict.score is not None and abs(verdict.score - float(truth)) <= HALF_POINT + 1e-9


@dataclass
class CalibrateConfig:
    """`judgeforge calibrate`'s settings (the CLI's flags are generated from these fields)."""

    pred: str = option(help="the local judge's predictions (score --mode logprob)")
    gold: str = option(help="gold labels: items with winner/score, {id, winner|score} rows, or the teacher's verdicts")
    target_agreement: float = option(help="agreement to guarantee, e.g. 0.9")
    out: str = option(help="cascade JSON to write (the plot goes beside it as .png)")
    risk: float = option(0.1, help="allowed probability that the guarantee fails")
    gold_format: str = option("jsonl", choices=GOLD_FORMATS, help="read --gold through an importer")
    no_plot: bool = option(False, flag="--no-plots", aliases=("--no-plot",), help="write no plot")


def calibrate(pred: str, gold: str, *, target: float, risk: float, out: str, gold_format: str = "jsonl",
              plot: bool = True) -> dict:
    """Choose the threshold and write it to `out` (cascade.json) with the curve plot beside it
    (`out` with .png). Returns what was written."""
    check_levels(target, risk)
    data = calibration_set(pred, gold, gold_format)
    result = search_threshold(data["confidence"], data["agree"], target, risk)
    cascade = {
        "judge": data["judge"], "fingerprint": data["fingerprint"],
        "template": data["template"], "template_hash": data["template_hash"],
        "mode": data["mode"], "swap": data["swap"],
        **{k: result[k] for k in ("target_agreement", "risk", "met", "threshold", "coverage", "agreement",
                                  "agreement_lower_bound", "n", "n_accepted")},
        "calibrated_on": {"pred": pred, "gold": gold, "no_gold": data["no_gold"],
                          "gold_not_scored": data["gold_not_scored"]},
        "search": result["search"], "curve": result["curve"],
    }
    out_path = Path(out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    if plot:
        cascade["plot"] = out_path.with_suffix(".png").name
        write_curve_plot(cascade, out_path.with_suffix(".png"))
    write_json(out_path, cascade)
    return cascade


def write_curve_plot(cascade: dict, path: Path) -> None:
    """Coverage (share the local judge keeps) against agreement on the kept items and its bound."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curve = cascade["curve"]
    fig, ax = plt.subplots(figsize=(5, 3.6))
    coverage = [p["coverage"] for p in curve]
    ax.plot(coverage, [p["agreement"] for p in curve], "-", label="agreement on kept items")
    ax.plot(coverage, [p["agreement_lower_bound"] for p in curve], "--",
            label=f"lower bound ({1 - cascade['risk']:.0%} confidence)")
    ax.axhline(cascade["target_agreement"], color="gray", linewidth=0.8, label="target")
    if cascade["met"]:
        ax.plot([cascade["coverage"]], [cascade["agreement"]], "o", color="black",
                label=f"chosen: threshold {cascade['threshold']:g}")
    ax.set_xlabel("coverage (share judged locally)"), ax.set_ylabel("agreement with gold")
    # the bound of the first few kept items starts near 0: show the region where the choice is made
    low = min([cascade["target_agreement"]] + [p["agreement"] for p in curve])
    ax.set_ylim(max(0.0, low - 0.15), 1.005)
    ax.set_xlim(0, 1), ax.set_title(f"{cascade['judge']} ({cascade['template']}), n = {cascade['n']}", fontsize=9)
    ax.legend(fontsize=7, loc="lower left")
    with atomic_open(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
