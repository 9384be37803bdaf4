"""Did a change of code change scoring? `scripts/bench_score.py` run on an older commit and on this
checkout, back to back on the same machine and pairs, then compared: items/s per backend and mode
(after / before) and the verdicts, item by item and order by order.

    .venv/bin/python scripts/bench_score_ab.py [--before 4ea982d] [--pairs 400] [--hf-pairs 100] [--full-pairs 16]

The older commit is checked out in a temporary git worktree and imports its own code (both runs use
this checkout's .venv and model). 4ea982d is the last commit before judge/ moved into rooms and the
score path became one (make_backend in judge.backends.factory, Ray as a backend). Ray replicas are
left out (`--skip-ray`). Writes bench/results/score_ab.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_bench(checkout: Path, args, out: Path, port: int) -> Path:
    """bench_score.py of `checkout`, its scoring folder returned (the newest bench-score-* it made)."""
    command = [sys.executable, "scripts/bench_score.py", "--model", args.model, "--pairs", str(args.pairs),
               "--hf-pairs", str(args.hf_pairs), "--full-pairs", str(args.full_pairs), "--skip-ray",
               "--port", str(port), "--out", str(out)]
    before = set(Path(tempfile.gettempdir()).glob("bench-score-*"))
    with (out.with_suffix(".log")).open("w") as log:
        done = subprocess.run(command, cwd=checkout, env={**os.environ, "PYTHONPATH": str(checkout)},
                              stdout=log, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        sys.exit(f"bench_score.py in {checkout} failed (exit {done.returncode}); see {out.with_suffix('.log')}")
    (made,) = set(Path(tempfile.gettempdir()).glob("bench-score-*")) - before
    return made


def verdicts(folder: Path) -> dict[str, dict]:
    """{run (e.g. vllm-verdict-400): {(id, order): (winner, parse_ok)}} from a bench_score folder."""
    runs = {}
    for path in folder.glob("*.jsonl"):
        if path.name.startswith("items-"):
            continue
        name = path.name.rsplit("-", 1)[0]
        runs[name] = {(r["id"], r["order"]): (r.get("winner"), r.get("parse_ok"))
                      for r in map(json.loads, path.read_text().splitlines())}
    return runs


def compare(before: dict, after: dict, before_dir: Path, after_dir: Path) -> dict:
    speed = {key: round(after["results"][key]["items_per_s"] / row["items_per_s"], 2)
             for key, row in before["results"].items() if key in after["results"]}
    old, new = verdicts(before_dir), verdicts(after_dir)
    same = {name: {"identical": sum(v == new.get(name, {}).get(k) for k, v in rows.items()), "verdicts": len(rows)}
            for name, rows in sorted(old.items())}
    return {"after_over_before_items_per_s": speed, "verdicts": same}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", default="4ea982d")
    parser.add_argument("--model", default=str(ROOT / "models" / "SmolLM2-135M-Instruct"))
    parser.add_argument("--pairs", type=int, default=400)
    parser.add_argument("--hf-pairs", type=int, default=100)
    parser.add_argument("--full-pairs", type=int, default=16)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "score_ab.json"))
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-score-ab-"))
    worktree = work / "before"
    subprocess.run(["git", "worktree", "add", "-q", "--detach", str(worktree), args.before], cwd=ROOT, check=True)
    if (ROOT.parent / "shared").is_dir():  # the PandaLM pairs, found beside the checkout
        (work / "shared").symlink_to(ROOT.parent / "shared")
    try:
        load_before = os.getloadavg()
        before_dir = run_bench(worktree, args, work / "before.json", 18753)
        after_dir = run_bench(ROOT, args, work / "after.json", 18754)
        load_after = os.getloadavg()
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(worktree)], cwd=ROOT)
    before, after = (json.loads((work / f"{side}.json").read_text()) for side in ("before", "after"))
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    report = {"benchmark": "score before/after a change", "before": args.before, "after": head,
              "pairs": args.pairs, "hf_pairs": args.hf_pairs, "full_pairs": args.full_pairs,
              **compare(before, after, before_dir, after_dir),
              "runs": {"before": before, "after": after}, "device": after["device"],
              "load_average_1m": {"before_runs": round(load_before[0], 2), "after_runs": round(load_after[0], 2)},
              "date": time.strftime("%Y-%m-%d")}
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"{'run':<24}{'before items/s':>16}{'after items/s':>16}{'after/before':>14}")
    for key, ratio in report["after_over_before_items_per_s"].items():
        print(f"{key:<24}{before['results'][key]['items_per_s']:>16}{after['results'][key]['items_per_s']:>16}{ratio:>14}")
    for name, same in report["verdicts"].items():
        print(f"{name:<24} {same['identical']}/{same['verdicts']} identical verdicts")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
