"""The cascade's test scenario, shared by its tests and `scripts/cascade_demo.py`: pairs where one
answer is marked GOOD, a local judge that is sure and right on the easy ones and flips a coin on
the hard ones, and a teacher that is always right. `run_target` (calibrate for a target, run the
cascade, `result_row`) is what both cascade scripts (fakes and SmolLM2) report for each target.

The local judge's belief depends on the rendered prompt only, so the two orders of a hard pair are
two independent coin flips (they often disagree, as a confused judge's do).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable

from pathlib import Path

from judge.cascade.calibrate import calibrate
from judge.cascade.cascade import CascadeConfig, output_paths, run_cascade
from judge.core.jsonl import read_jsonl, write_jsonl
from judge.core.records import PairItem, Verdict, from_row
from judge.scoring.score import ScoreConfig


def good_position(prompt: str) -> str:
    """Where the GOOD answer sits in a rendered prompt: "1" or "2"."""
    return "1" if prompt.index("GOOD") < prompt.index("bad") else "2"


def local_belief(prompt: str) -> dict[str, float]:
    """Easy items: the GOOD answer with probability 0.90-0.99. Hard items: a coin flip, 0.50-0.60 sure."""
    u = hashlib.sha256(prompt.encode()).digest()
    if "(hard)" in prompt:
        choice, p = ("1" if u[0] % 2 else "2"), 0.5 + 0.1 * u[1] / 255
    else:
        choice, p = good_position(prompt), 0.9 + 0.09 * u[1] / 255
    return {choice: p, ("2" if choice == "1" else "1"): 1 - p}


def teacher_reply(body: dict) -> str:
    """An always-right teacher in PandaLM's reply format (for `FakeOpenAI(reply=...)`)."""
    return f"{good_position(body['messages'][-1]['content'])}\n\n### Reason: the right one.\n\n### Reference: -"


def make_items(path, prefix: str, n: int, seed: int, hard_share: float = 0.25) -> set[str]:
    """Write n pairs with gold winners (the GOOD answer on a random side); returns the hard ones' ids."""
    rng = random.Random(seed)
    items, hard = [], set()
    for i in range(n):
        item_id, is_hard, first = f"{prefix}{i}", i < n * hard_share, rng.random() < 0.5
        good, bad = f"GOOD answer {item_id}", f"bad answer {item_id}"
        items.append(PairItem(id=item_id, question=f"Task {item_id} ({'hard' if is_hard else 'easy'})",
                              answer1=good if first else bad, answer2=bad if first else good,
                              winner="1" if first else "2"))
        if is_hard:
            hard.add(item_id)
    write_jsonl(path, items)
    return hard


def read_verdicts(path) -> list[Verdict]:
    return read_jsonl(path, lambda row: from_row(Verdict, row, extra_to_meta=False))


def agreement(path, gold: dict[str, str]) -> float:
    """The share of a prediction file's verdicts whose winner is the gold one (4 decimals)."""
    rows = read_verdicts(path)
    return round(sum(v.winner == gold[v.id] for v in rows) / len(rows), 4)


def result_row(target: float, risk: float, cascade: dict, summary: dict, pred: Path, gold: dict[str, str]) -> dict:
    """One target's row: what `calibrate` chose (`cascade`, its JSON), what `run_cascade` did
    (`summary`), and the agreement with `gold` of the local judge alone and of the cascade (`pred`)."""
    local, _ = output_paths(Path(pred))
    return {
        "target_agreement": target, "risk": risk, "threshold": cascade["threshold"],
        "calibration_coverage": cascade["coverage"], "calibration_lower_bound": cascade["agreement_lower_bound"],
        "share_escalated": summary["share_escalated"],
        "agreement_local_only": agreement(local, gold), "agreement_cascade": agreement(pred, gold),
        "teacher_calls": summary["teacher_calls"], "teacher_cost_usd": summary["teacher_cost_usd"],
        "all_teacher_cost_usd_estimated": summary["all_teacher_cost_usd"],
    }


def run_target(out: Path, target: float, risk: float, local: Callable[[str, str], ScoreConfig], teacher_model: str,
               teacher_base_url: str, gold: dict[str, str], *, progress: bool = True) -> tuple[dict, Path]:
    """Calibrate the local judge's OUT/calibration-pred.jsonl for `target`, run the cascade on
    OUT/test.jsonl (`local(items, pred)` is the local judge's ScoreConfig) with the teacher at
    `teacher_base_url`; returns the target's `result_row` and its predictions file."""
    cascade = calibrate(str(out / "calibration-pred.jsonl"), str(out / "calibration.jsonl"), target=target, risk=risk,
                        out=str(out / f"cascade-{target}.json"))
    pred = out / f"pred-{target}.jsonl"
    summary = run_cascade(local("test.jsonl", pred.name),
                          CascadeConfig(cascade=str(out / f"cascade-{target}.json"), teacher_model=teacher_model,
                                        teacher_base_url=teacher_base_url), progress=progress)
    return result_row(target, risk, cascade, summary, pred, gold), pred
