"""`make demo`: the judgeforge pipeline end to end on the embedded default (CPU, SmolLM2-135M).

Stages available so far run for real through the CLI; the rest of the pipeline (distill, filter,
train, serve, score) is added to this script as those stages land.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "pandalm"
RUN = ROOT / "runs" / "demo"


def judgeforge(*args: str) -> None:
    cmd = [sys.executable, "-m", "judge.cli", *args]
    print("\n$ judgeforge " + " ".join(args), flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT)


def main() -> int:
    RUN.mkdir(parents=True, exist_ok=True)
    if not SHARED.exists():
        print(f"demo: {SHARED} is absent; the evaluation stage needs the PandaLM test set")
        return 1
    judgeforge("data", "convert", "--from", "pandalm", str(SHARED / "testset-v1.json"), "--out", str(RUN / "gold.jsonl"))
    for name in ("gpt-3.5-turbo", "pandalm-7b"):
        judgeforge("data", "convert", "--from", "pandalm-verdicts", str(SHARED / f"{name}-testset-v1.json"),
                   "--out", str(RUN / f"{name}.jsonl"))
    judgeforge("eval", "--pred", str(RUN / "gpt-3.5-turbo.jsonl"), "--pred", str(RUN / "pandalm-7b.jsonl"),
               "--gold", str(RUN / "gold.jsonl"), "--out", str(RUN / "eval"))
    print(f"\nreport: {RUN / 'eval' / 'report.md'}")
    print("demo: published PandaLM verdicts evaluated against the human labels (agreement = accuracy above).")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.exit(main())
