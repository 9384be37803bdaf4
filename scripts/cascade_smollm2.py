"""The cascade with a real local judge: SmolLM2-135M LoRA-trained by the smoke config on the shipped
synthetic task (configs/train/smoke-cpu.yaml, CPU, a few minutes), scored in logprob mode with the hf
backend, and a stand-in teacher on loopback that always answers with the gold label (priced as
gpt-4o). For two targets: calibrate on 200 fresh synthetic pairs, then score 200 more with the
cascade, and compare local-only, cascade and teacher-only agreement, share escalated and cost.

    .venv/bin/python scripts/cascade_smollm2.py [--out runs/cascade-smollm2] [--steps 50]

Writes bench/results/cascade_smollm2.json (the figures the README quotes). The trained adapter is
reused from an earlier run in --out when it exists.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from judge.core.jsonl import write_json, write_jsonl  # noqa: E402
from judge.scoring.score import ScoreConfig, score  # noqa: E402
from judge.testing.cascade_scenario import run_target  # noqa: E402
from judge.testing.fake_openai import FakeOpenAI  # noqa: E402
from train.synthetic import make_items  # noqa: E402

MODEL = Path(os.environ.get("JUDGEFORGE_MODEL", ROOT / "models" / "SmolLM2-135M-Instruct"))
TEACHER = "gpt-4o"
TARGETS = (0.97, 0.995)
RISK = 0.1


def gold_teacher(items) -> callable:
    """A teacher that reads which item a prompt shows, and in which order, and answers the gold label
    in PandaLM's reply format."""
    def reply(body: dict) -> str:
        prompt = body["messages"][-1]["content"]
        for item in items:
            if item.question in prompt and item.answer1 in prompt and item.answer2 in prompt:
                swapped = prompt.index(item.answer1) > prompt.index(item.answer2)
                winner = {"1": "2", "2": "1"}[item.winner] if swapped else item.winner
                return f"{winner}\n\n### Reason: it follows the requested format.\n\n### Reference: -"
        return "I cannot tell."
    return reply


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(ROOT / "runs" / "cascade-smollm2"))
    parser.add_argument("--steps", type=int, default=50, help="training steps of the smoke config")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("OPENAI_API_KEY", "unused-by-the-stand-in")
    adapter = out / "train" / "adapter"
    if not (adapter / "adapter_config.json").exists():
        subprocess.run([sys.executable, "-m", "judge.cli", "train", "--config", "configs/train/smoke-cpu.yaml",
                        "--set", f"base_model={MODEL}", "--set", f"output_dir={out / 'train'}",
                        "--set", f"max_steps={args.steps}"], check=True, cwd=ROOT)
    calibration, test = make_items(200, seed=101, prefix="cal"), make_items(200, seed=102, prefix="test")
    write_jsonl(out / "calibration.jsonl", calibration)
    write_jsonl(out / "test.jsonl", test)
    gold = {item.id: item.winner for item in test}

    def local(items: str, pred: str) -> ScoreConfig:
        return ScoreConfig(input=str(out / items), out=str(out / pred), backend="hf", model=str(MODEL),
                           adapter=str(adapter), swap=True, mode="logprob", batch_size=64,
                           extra={"dtype": "float32"})

    score(local("calibration.jsonl", "calibration-pred.jsonl"))
    results = []
    with FakeOpenAI(reply=gold_teacher(calibration + test)) as teacher:
        for target in TARGETS:
            results.append(run_target(out, target, RISK, local, TEACHER, teacher.base_url, gold)[0])
    write_json(ROOT / "bench" / "results" / "cascade_smollm2.json",
               {"command": "scripts/cascade_smollm2.py", "local_judge": f"SmolLM2-135M-Instruct + LoRA, smoke config, "
                f"{args.steps} steps on the synthetic task", "calibration_items": 200, "test_items": 200,
                "orders": "both", "teacher": f"stand-in answering the gold label, priced as {TEACHER}",
                "results": results})
    for r in results:
        print(f"target {r['target_agreement']} (risk {r['risk']}): threshold {r['threshold']}, escalated "
              f"{r['share_escalated']:.1%}; agreement local {r['agreement_local_only']}, cascade "
              f"{r['agreement_cascade']}; teacher ${r['teacher_cost_usd']:.4f} vs all-teacher "
              f"${r['all_teacher_cost_usd_estimated']:.4f} (estimated)")


if __name__ == "__main__":
    main()
