"""`judgeforge eval`: predictions (Verdict JSONL) against gold labels -> metrics.json, report.md, plots.

Gold comes from items carrying `winner`/`score`, bare `{id, winner|score}` rows, or another judge's
verdicts (e.g. the teacher's); any `data convert` source format can be read directly too.
Ids missing on either side are counted and listed, never silently dropped.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import metrics as M
from .convert import IMPORTERS, convert_records
from .errors import InputError
from .jsonl import iter_json_rows
from .records import PairItem, RowError, SingleItem, Verdict, from_row, item_from_row, normalize_winner
from .templates import winner_from_scores

HEADLINE_PAIRWISE = ["n", "accuracy", "precision", "recall", "f1", "consistency", "prefer_first_rate",
                     "prefer_second_rate", "parse_failure_rate"]
HEADLINE_POINTWISE = ["n", "pearson", "spearman", "kendall", "parse_failure_rate"]
FORMATS = ["jsonl", *IMPORTERS]


@dataclass
class Gold:
    id: str
    winner: str | None = None
    score: float | None = None
    model: str | None = None
    category: str | None = None
    question: str | None = None


@dataclass
class Judge:
    """One prediction file: verdicts grouped by item id and order."""

    name: str
    path: str
    verdicts: dict[str, dict[str, list[Verdict]]] = field(default_factory=dict)

    def all(self) -> list[Verdict]:
        return [v for orders in self.verdicts.values() for vs in orders.values() for v in vs]


# ---- loading ----------------------------------------------------------------------------------
def _gold_from_record(record) -> Gold | None:
    if isinstance(record, PairItem):
        return Gold(record.id, winner=record.winner, model=None, category=record.category, question=record.question)
    if isinstance(record, SingleItem):
        return Gold(record.id, score=record.score, model=record.model, category=record.category, question=record.question)
    return None


def load_gold(path: str, fmt: str = "jsonl") -> dict[str, Gold]:
    """Gold labels by id. Verdict rows (a teacher as gold) are reduced per item: both orders agreeing
    (PandaLM's swap protocol; a conflict is a tie), unparsed verdicts skipped."""
    if fmt != "jsonl":
        records = convert_records(fmt, path)
    else:
        records = []
        for number, row in iter_json_rows(path):
            try:
                if isinstance(row, dict) and "order" in row and "raw" in row:
                    records.append(from_row(Verdict, row, extra_to_meta=False))
                elif isinstance(row, dict) and ("question" in row):
                    records.append(item_from_row(row))
                elif isinstance(row, dict) and "id" in row and ("winner" in row or "score" in row):
                    records.append(_bare_gold(row))
                else:
                    raise RowError("expected an item, a verdict, or a bare {id, winner|score} row")
            except RowError as e:
                raise InputError(str(e), path, number) from None
    gold: dict[str, Gold] = {}
    teacher: dict[str, dict[str, list[Verdict]]] = defaultdict(lambda: defaultdict(list))
    for record in records:
        if isinstance(record, Verdict):
            if record.parse_ok:
                teacher[record.id][record.order].append(record)
        elif isinstance(record, Gold):
            gold[record.id] = record
        else:
            label = _gold_from_record(record)
            if label.winner is not None or label.score is not None:
                gold[record.id] = label
    for item_id, orders in teacher.items():
        ab = M.majority_label([v.winner for v in orders.get("ab", [])])
        ba = M.majority_label([v.winner for v in orders.get("ba", [])])
        scores = [v.score for vs in orders.values() for v in vs if v.score is not None]
        winner = M.swap_combine([ab], [ba])[0] if ab and ba else ab or ba
        gold[item_id] = Gold(item_id, winner=winner, score=float(np.mean(scores)) if scores else None)
    if not gold:
        raise InputError("no gold labels found (items need `winner` or `score`)", path)
    return gold


def _bare_gold(row: dict) -> Gold:
    score = row.get("score")
    if score is not None and (isinstance(score, bool) or not isinstance(score, (int, float))):
        raise RowError(f"field 'score': expected a number, got {score!r}", "score")
    return Gold(str(row["id"]), winner=normalize_winner(row.get("winner")), score=score,
                model=row.get("model"), category=row.get("category"))


def load_judge(path: str, fmt: str = "jsonl") -> Judge:
    if fmt != "jsonl":
        records = convert_records(fmt, path)
        if not all(isinstance(r, Verdict) for r in records):
            raise InputError(f"format {fmt} does not hold verdicts; use it for --gold-format", path)
    else:
        records = []
        for number, row in iter_json_rows(path):
            try:
                records.append(from_row(Verdict, row, extra_to_meta=False))
            except RowError as e:
                raise InputError(str(e), path, number) from None
    judge = Judge(name="", path=path)
    for v in records:
        judge.verdicts.setdefault(v.id, {}).setdefault(v.order, []).append(v)
    names = Counter(v.judge for v in records if v.judge)
    judge.name = names.most_common(1)[0][0] if names else Path(path).stem
    return judge


# ---- per-judge metrics --------------------------------------------------------------------------
def _winner(vs: list[Verdict], threshold: float) -> str | None:
    """One label from an order's verdicts (several samples vote); scores re-thresholded when given."""
    labels = []
    for v in vs:
        if not v.parse_ok:
            labels.append(None)
        elif v.scores and len(v.scores) == 2 and threshold:
            labels.append(winner_from_scores(v.scores[0], v.scores[1], threshold))
        else:
            labels.append(v.winner)
    return M.majority_label(labels)


def _parsing(judge: Judge, limit: int = 5) -> dict:
    verdicts = judge.all()
    failed = [v for v in verdicts if not v.parse_ok]
    return {
        "verdicts": len(verdicts),
        "unparsed": len(failed),
        "rate": round(len(failed) / len(verdicts), 6) if verdicts else None,
        "examples": [{"id": v.id, "order": v.order, "error": v.error, "raw": (v.raw or "")[:300]} for v in failed[:limit]],
    }


def pairwise_metrics(judge: Judge, gold: dict[str, Gold], ids: list[str], *, unparsed: str, threshold: float,
                     n_resamples: int, seed: int) -> dict:
    ab = [_winner(judge.verdicts[i].get("ab", []), threshold) if "ab" in judge.verdicts[i] else None for i in ids]
    ba = [_winner(judge.verdicts[i].get("ba", []), threshold) if "ba" in judge.verdicts[i] else None for i in ids]
    has_ab = [("ab" in judge.verdicts[i]) for i in ids]
    has_ba = [("ba" in judge.verdicts[i]) for i in ids]
    labels = [gold[i].winner for i in ids]
    # JudgeLM headline: the verdicts in the order given; items judged only swapped count with those.
    first = [a if ha else b for a, b, ha in zip(ab, ba, has_ab)]
    out = M.classification(labels, first, unparsed=unparsed, n_resamples=n_resamples, seed=seed)
    both = [i for i, (ha, hb) in enumerate(zip(has_ab, has_ba)) if ha and hb]
    out.update({k: None for k in ("consistency", "prefer_first_rate", "prefer_second_rate")})
    if both:
        cons = M.consistency([ab[i] for i in both], [ba[i] for i in both], unparsed=unparsed)
        out.update({k: cons[k] for k in ("consistency", "prefer_first_rate", "prefer_second_rate")})
        out["position_bias"] = cons
        combined = M.swap_combine([ab[i] for i in both], [ba[i] for i in both])
        out["swap_protocol"] = M.classification([labels[i] for i in both], combined, unparsed=unparsed,
                                                n_resamples=n_resamples, seed=seed)
    parsing = _parsing(judge)
    out["parse_failure_rate"] = parsing["rate"]
    out["parsing"] = parsing
    calibration = _calibration(judge, gold, ids)
    if calibration:
        out["calibration"] = calibration
    return out


def _calibration(judge: Judge, gold: dict[str, Gold], ids: list[str]) -> dict | None:
    """With verdict-token probabilities (logprob mode): is the judge's confidence its accuracy?"""
    confidence, correct = [], []
    for i in ids:
        for v in judge.verdicts[i].get("ab", []) + judge.verdicts[i].get("ba", []):
            probs = (v.logprobs or {}).get("probs")
            if probs and gold[i].winner:
                label, p = max(probs.items(), key=lambda kv: kv[1])
                confidence.append(p)
                correct.append(label == gold[i].winner)
    return M.expected_calibration_error(confidence, correct) | {"n": len(confidence)} if confidence else None


def pointwise_metrics(judge: Judge, gold: dict[str, Gold], ids: list[str], *, n_resamples: int, seed: int) -> dict:
    pred, kept = [], []
    for i in ids:
        scores = [v.score for vs in judge.verdicts[i].values() for v in vs if v.parse_ok and v.score is not None]
        if scores:  # repeated samples (self-consistency) are averaged
            pred.append(float(np.mean(scores)))
            kept.append(i)
    g = [float(gold[i].score) for i in kept]
    out: dict = {"n": len(kept), "n_unparsed": len(ids) - len(kept)}
    out.update(M.sample_correlations(g, pred, n_resamples=n_resamples, seed=seed))
    parsing = _parsing(judge)
    out["parse_failure_rate"] = parsing["rate"]
    if kept:
        out["mae"] = round(float(np.mean(np.abs(np.array(g) - np.array(pred)))), 6)
        out["mean_pred"], out["mean_gold"] = round(float(np.mean(pred)), 6), round(float(np.mean(g)), 6)
    models = [gold[i].model for i in kept]
    if kept and all(models):
        out["system_level"] = M.system_correlations(g, pred, models)
    if kept and all(gold[i].question for i in kept):
        out["group_level"] = {"by": "question", **M.group_correlations(g, pred, [gold[i].question for i in kept])}
    if kept and all(gold[i].category for i in kept):
        out["category_level"] = {"by": "category", **M.group_correlations(g, pred, [gold[i].category for i in kept])}
    out["parsing"] = parsing
    out["scatter"] = {"gold": g, "pred": pred}
    return out


# ---- the verb -----------------------------------------------------------------------------------
def evaluate(pred_paths: list[str], gold_path: str, out_dir: str | None = None, *, pred_format: str = "jsonl",
             gold_format: str = "jsonl", unparsed: str = "tie", threshold: float = 0.0, n_resamples: int = 1000,
             seed: int = 0, plots: bool = True) -> dict:
    """Evaluate one or several judges against gold; write metrics.json, report.md and PNGs to `out_dir`.

    With several prediction files the top level holds the first judge's headline, `judges` holds
    every judge's metrics, and `between_judges` their agreement and Cohen's kappa."""
    if unparsed not in M.UNPARSED_POLICIES:
        raise InputError(f"--unparsed must be one of {', '.join(M.UNPARSED_POLICIES)}")
    gold = load_gold(gold_path, gold_format)
    mode = "pairwise" if any(g.winner is not None for g in gold.values()) else "pointwise"
    judges = [load_judge(p, pred_format) for p in pred_paths]
    _dedupe_names(judges)
    results: dict[str, dict] = {}
    for judge in judges:
        ids = [i for i in gold if i in judge.verdicts]
        missing = {
            "in_gold_not_pred": len([i for i in gold if i not in judge.verdicts]),
            "in_pred_not_gold": len([i for i in judge.verdicts if i not in gold]),
            "examples_gold_only": [i for i in gold if i not in judge.verdicts][:10],
            "examples_pred_only": [i for i in judge.verdicts if i not in gold][:10],
        }
        if mode == "pairwise":
            ids = [i for i in ids if gold[i].winner is not None]
            m = pairwise_metrics(judge, gold, ids, unparsed=unparsed, threshold=threshold,
                                 n_resamples=n_resamples, seed=seed)
        else:
            ids = [i for i in ids if gold[i].score is not None]
            m = pointwise_metrics(judge, gold, ids, n_resamples=n_resamples, seed=seed)
        m["missing"] = missing
        m["judge"], m["predictions"] = judge.name, judge.path
        results[judge.name] = m
    headline_keys = HEADLINE_PAIRWISE if mode == "pairwise" else HEADLINE_POINTWISE
    first = results[judges[0].name]
    report = {k: first.get(k) for k in headline_keys}
    report.update({"mode": mode, "gold": gold_path, "n_gold": len(gold), "unparsed_policy": unparsed,
                   "threshold": threshold, "bootstrap_resamples": n_resamples})
    if len(judges) == 1:
        report.update({k: v for k, v in first.items() if k not in report})
    else:
        report["judges"] = results
        report["between_judges"] = between_judges(judges, gold, mode, threshold)
    if out_dir:
        from .report import write_report

        write_report(report, out_dir, plots=plots)
    return report


def _dedupe_names(judges: list[Judge]) -> None:
    counts = Counter(j.name for j in judges)
    for j in judges:
        if counts[j.name] > 1:
            j.name = f"{j.name} ({Path(j.path).parent.name}/{Path(j.path).name})"


def between_judges(judges: list[Judge], gold: dict[str, Gold], mode: str, threshold: float) -> dict:
    """Agreement of every pair of judges on the items both judged (headline order), with Cohen's
    kappa (pairwise) or Pearson (pointwise), plus Fleiss' kappa over all judges."""
    def label(j: Judge, i: str):
        orders = j.verdicts[i]
        if mode == "pointwise":
            scores = [v.score for vs in orders.values() for v in vs if v.parse_ok and v.score is not None]
            return float(np.mean(scores)) if scores else None
        return _winner(orders.get("ab") or orders.get("ba", []), threshold) or "tie"

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
