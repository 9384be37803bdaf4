"""Judge-aware evaluation during training: the live model judges a sample of the validation rows
through `judge.scoring.judging` and the HF backend, exactly as `score` would, and `judge.eval.metrics` scores the
verdicts against the rows' targets: agreement (accuracy), F1 and swap consistency for pairwise
templates, Pearson/Spearman/Kendall for pointwise ones.

Every process judges the same sample: with the same weights the greedy verdicts are the same, so
all ranks get the same metrics (the best checkpoint is chosen alike) and run the same forward
passes in lock-step (which sharded models need)."""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass

from judge.backends.hf import HFBackend
from judge.core.records import TrainRow, Verdict
from judge.eval.metrics import classification, consistency, correlations
from judge.scoring.judging import iter_calls
from judge.templates import Template

from train.data import row_prompt


def sample_rows(rows: list[TrainRow], items: int, seed: int) -> list[TrainRow]:
    """All rows of `items` randomly chosen item ids (both orders stay together); 0 = every row."""
    ids = sorted({row.id for row in rows})
    if items and items < len(ids):
        chosen = set(random.Random(seed).sample(ids, items))
        return [row for row in rows if row.id in chosen]
    return list(rows)


@dataclass
class JudgeEval:
    template: Template
    rows: list[TrainRow]
    mode: str = "verdict"
    batch_size: int = 8

    def __post_init__(self):
        self._backend: HFBackend | None = None

    def verdicts(self, model, tokenizer) -> list[Verdict]:
        if self._backend is None or self._backend.model is not model:  # kept: its regex constraints are cached
            self._backend = HFBackend(model, tokenizer, name="training", batch_size=self.batch_size)
        # each row's own prompt (exactly what the model was trained on), in one backend call, which batches itself
        calls = [(row.id, row.order, row) for row in self.rows]
        return [v for batch in iter_calls(calls, self.template, self._backend, mode=self.mode,
                                          render=lambda row, _order: row_prompt(self.template, row),
                                          batch_size=max(len(calls), 1))
                for v in batch]

    def __call__(self, model, tokenizer) -> dict[str, float]:
        return judge_metrics(self.template.mode, self.rows, self.verdicts(model, tokenizer))


def judge_metrics(mode: str, rows: list[TrainRow], verdicts: list[Verdict]) -> dict[str, float]:
    """Headline metrics of the verdicts against the rows' targets. An undefined correlation (constant
    predictions) counts as 0: such a judge ranks nothing."""
    parse_failure_rate = round(sum(not v.parse_ok for v in verdicts) / len(verdicts), 6)
    if mode == "pairwise":
        result = classification([r.winner for r in rows], [v.winner if v.parse_ok else None for v in verdicts],
                                unparsed="tie", n_resamples=0)
        by_id: dict[str, dict] = defaultdict(dict)
        for v in verdicts:
            by_id[v.id][v.order] = v.winner if v.parse_ok else None
        both = [orders for orders in by_id.values() if len(orders) == 2]
        swap = consistency([o["ab"] for o in both], [o["ba"] for o in both])
        return {"accuracy": result["accuracy"], "f1": result["f1"], "consistency": swap["consistency"] or 0.0,
                "parse_failure_rate": parse_failure_rate}
    pairs = [(r.scores[0], v.score) for r, v in zip(rows, verdicts) if v.parse_ok and v.score is not None and r.scores]
    corr = correlations([g for g, _ in pairs], [p for _, p in pairs])
    return {**{k: v if v is not None else 0.0 for k, v in corr.items()}, "parse_failure_rate": parse_failure_rate}
