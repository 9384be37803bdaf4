"""The cascade on loopback fakes, end to end through the Python API: a local judge sure and right
on 75% of the pairs and a coin flip on the rest (judge.testing.cascade_scenario), a stand-in teacher
that is always right and is priced as gpt-4o. For two targets: calibrate on 400 labelled pairs, then
score a fresh 400 with the cascade, and compare local-only, cascade and teacher-only.

    .venv/bin/python scripts/cascade_demo.py [--out runs/cascade-demo]

Writes bench/results/cascade.json (the figures the README quotes) and bench/results/cascade.png
(the calibration curve). Takes about a minute on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

from judge.core.jsonl import write_json
from judge.distill import DistillConfig, TeacherConfig, distill
from judge.scoring.score import ScoreConfig, score
from judge.testing.cascade_scenario import agreement, local_belief, make_items, read_verdicts, run_target, teacher_reply
from judge.testing.fake_openai import FakeOpenAI
from judge.testing.logprob_judge import LogprobJudge

ROOT = Path(__file__).resolve().parents[1]
TEACHER = "gpt-4o"  # the stand-in's name, so the shipped price table prices it
TARGETS = (0.9, 0.97)
RISK = 0.1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(ROOT / "runs" / "cascade-demo"))
    out = Path(parser.parse_args().out)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    os.environ.setdefault("OPENAI_API_KEY", "unused-by-the-fake")
    make_items(out / "calibration.jsonl", "c", 400, seed=1)
    hard = make_items(out / "test.jsonl", "t", 400, seed=2)
    gold = {row["id"]: row["winner"] for row in map(json.loads, open(out / "test.jsonl"))}
    results = []
    with LogprobJudge(local_belief) as local, FakeOpenAI(reply=teacher_reply) as teacher:
        def local_config(items: str, pred: str) -> ScoreConfig:
            return ScoreConfig(input=str(out / items), out=str(out / pred), backend="openai", model="local-judge",
                               base_url=local.base_url, template="pandalm", swap=True, mode="logprob")

        score(local_config("calibration.jsonl", "calibration-pred.jsonl"), progress=False)
        teacher_only = distill(DistillConfig(input=str(out / "test.jsonl"), template="pandalm", out=str(out / "teacher-only"),
                                             teacher=TeacherConfig(model=TEACHER, base_url=teacher.base_url),
                                             progress=False))
        for target in TARGETS:
            row, pred = run_target(out, target, RISK, local_config, TEACHER, teacher.base_url, gold, progress=False)
            escalated = {v.id for v in read_verdicts(pred) if v.meta["cascade"]["decided_by"] == "teacher"}
            results.append({**row,
                            "escalated_hard": len(escalated & hard), "escalated_easy": len(escalated - hard),
                            "hard": len(hard),
                            "agreement_teacher_only": agreement(out / "teacher-only" / "verdicts.jsonl", gold),
                            "all_teacher_cost_usd_measured": teacher_only["cost_usd"]})
    write_json(ROOT / "bench" / "results" / "cascade.json",
               {"command": "scripts/cascade_demo.py", "calibration_items": 400, "test_items": 400,
                "teacher": f"stand-in, always right, priced as {TEACHER}", "results": results})
    shutil.copyfile(out / f"cascade-{TARGETS[0]}.png", ROOT / "bench" / "results" / "cascade.png")
    for r in results:
        print(f"target {r['target_agreement']} (risk {r['risk']}): threshold {r['threshold']}, escalated "
              f"{r['share_escalated']:.1%} ({r['escalated_hard']} of {r['hard']} hard, {r['escalated_easy']} easy); "
              f"agreement local {r['agreement_local_only']}, cascade {r['agreement_cascade']}, teacher "
              f"{r['agreement_teacher_only']}; teacher ${r['teacher_cost_usd']:.4f} vs all-teacher "
              f"${r['all_teacher_cost_usd_measured']:.4f} (estimated ${r['all_teacher_cost_usd_estimated']:.4f})")


if __name__ == "__main__":
    main()
