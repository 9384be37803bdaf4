"""One judge's prediction file for `judgeforge eval` (verdict rows, or bare `{id, winner}` /
`{id, score}` rows, which count as parsed verdicts), and the check that it can be measured against a
gold file: the same kind of label and at least one id in common."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from judge.core.errors import InputError
from judge.core.jsonl import read_json
from judge.core.records import Verdict, from_row
from judge.eval import metrics as M
from judge.eval.gold import GoldSet
from judge.eval.label_files import describe_verdict_key, numbered_rows, refuse_duplicates, verdict_key
from judge.templates import winner_from_scores


@dataclass
class Predictions:
    """One judge's prediction file (`eval --pred`): verdicts grouped by item id and order. Not
    `serve.judges.Judge`, a model the server offers."""

    name: str
    path: str
    verdicts: dict[str, dict[str, list[Verdict]]] = field(default_factory=dict)
    rows: list[tuple[int, Verdict]] = field(default_factory=list)  # (line, verdict) in file order, for messages

    def all(self) -> list[Verdict]:
        return [v for orders in self.verdicts.values() for vs in orders.values() for v in vs]

    def parse_counts(self, ids: list[str], examples: int = 5) -> dict:
        """Parse failures on the evaluated items, the one definition (DESIGN, Metrics) every section
        repeats. Verdict level: `parse_failure_rate` = unparsed verdicts / every verdict the judge
        gave (both orders and every sample counted). Item level, under names of their own:
        `n_items_with_unparsed` (items with at least one unparsed verdict) and `both_unparsed_rate`
        (of the items judged in both orders, those where no verdict of either order parsed)."""
        verdicts = [v for i in ids for vs in self.verdicts[i].values() for v in vs]
        failed = [v for v in verdicts if not v.parse_ok]
        with_unparsed = sum(any(not v.parse_ok for vs in self.verdicts[i].values() for v in vs) for i in ids)
        both = [i for i in ids if {"ab", "ba"} <= set(self.verdicts[i])]
        both_unparsed = sum(not any(v.parse_ok for vs in self.verdicts[i].values() for v in vs) for i in both)
        return {
            "verdicts": len(verdicts), "unparsed": len(failed),
            "parse_failure_rate": round(len(failed) / len(verdicts), 6) if verdicts else None,
            "n_items": len(ids), "n_items_with_unparsed": with_unparsed,
            "n_items_both_orders": len(both), "n_items_both_unparsed": both_unparsed,
            "both_unparsed_rate": round(both_unparsed / len(both), 6) if both else None,
            "examples": [{"id": v.id, "order": v.order, "error": v.error, "raw": (v.raw or "")[:300]}
                         for v in failed[:examples]],
        }


def order_label(vs: list[Verdict], threshold: float) -> str | None:
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


def _prediction_row(row) -> Verdict:
    """A verdict row, or a bare `{id, winner}` / `{id, score}` row: a bare label is a parsed verdict."""
    if isinstance(row, dict) and "raw" not in row and "parse_ok" not in row:
        row = dict(row)
        if "score" in row:
            score = row.pop("score")
            if score is not None:
                row["scores"] = [score]
        verdict = from_row(Verdict, row, extra_to_meta=False)
        verdict.parse_ok = verdict.winner is not None or bool(verdict.scores)
        verdict.error = None if verdict.parse_ok else "bare row without a label"
        return verdict
    return from_row(Verdict, row, extra_to_meta=False)


def load_predictions(path: str, fmt: str = "jsonl") -> Predictions:
    numbered = numbered_rows(path, fmt, _prediction_row)
    if not all(isinstance(r, Verdict) for _, r in numbered):
        raise InputError(f"format {fmt} does not hold verdicts; use it for --gold-format", path)
    refuse_duplicates([(verdict_key(v), line) for line, v in numbered], path, describe_verdict_key)
    judge = Predictions(name="", path=path, rows=numbered)
    for _, v in numbered:
        judge.verdicts.setdefault(v.id, {}).setdefault(v.order, []).append(v)
    names = Counter(v.judge for _, v in numbered if v.judge)
    judge.name = names.most_common(1)[0][0] if names else Path(path).stem
    return judge


def _verdict_mode(v: Verdict) -> str | None:
    if not v.parse_ok:
        return None
    if v.winner is not None or (v.scores and len(v.scores) == 2):
        return "pairwise"
    return "pointwise" if v.score is not None else None


def check_matches(judge: Predictions, gold: GoldSet) -> list[str]:
    """Refuse predictions that cannot be measured against this gold; return the ids both hold."""
    for line, v in judge.rows:
        mode = _verdict_mode(v)
        if mode and mode != gold.mode:
            kind = "a winner" if mode == "pairwise" else "a single score"
            raise InputError(f"a {mode} verdict ({kind}), but the gold file {gold.path} holds {gold.mode} labels",
                             judge.path, line)
    common = [i for i in gold.labels if i in judge.verdicts]
    if not common:
        pred_id, gold_id = next(iter(judge.verdicts)), next(iter(gold.labels))
        unlabelled = sum(i in gold.unlabelled for i in judge.verdicts)
        why = (f"; {unlabelled} of its ids are in the gold file, but none of their gold verdicts parsed" if unlabelled
               else " (are they about the same items?)")
        raise InputError(f"no id in common with the gold file {gold.path}: predictions have e.g. {pred_id!r}, "
                         f"gold has e.g. {gold_id!r}{why}", judge.path)
    return common


def escalation_of(path: str, verdicts: list[Verdict]) -> dict:
    """For `eval`'s side-by-side view of one prediction file: the share of items escalated to the
    teacher and the teacher's cost. A cascade's output (verdicts with `meta.cascade`): from the
    verdicts and its manifest; a distill folder's verdicts (the teacher alone): everything, at the
    cost in its stats.json; any other file (a local judge alone): nothing, at no teacher cost."""
    items = {v.id for v in verdicts}
    if items and all("cascade" in v.meta for v in verdicts):
        escalated = {v.id for v in verdicts if v.meta["cascade"]["decided_by"] == "teacher"}
        manifest = Path(path).with_name(f"{Path(path).stem}.manifest.json")
        cost = read_json(manifest).get("cascade", {}).get("teacher_cost_usd") if manifest.exists() else None
        return {"share_escalated": round(len(escalated) / len(items), 6), "teacher_cost_usd": cost}
    stats = Path(path).with_name("stats.json")
    if Path(path).name == "verdicts.jsonl" and stats.exists():
        return {"share_escalated": 1.0, "teacher_cost_usd": read_json(stats).get("cost_usd")}
    return {"share_escalated": 0.0, "teacher_cost_usd": 0.0}
