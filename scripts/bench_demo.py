"""Time `make demo` as a newcomer runs it: a fresh clone of this checkout, then `make install`,
`make model` and `make demo` (what `make demo` runs through its prerequisites), each timed.

    python3 scripts/bench_demo.py [--out bench/results/demo.json] [--keep]

The clone gets `../shared` beside it when this checkout has one (the demo reads PandaLM's test set
from there), and nothing else: no .venv, no models/, no runs/. pip's download cache and sources are
the user's; both are recorded (pip_cache_mb; pip_sources "local" when every configured index and wheel
folder is on the machine), since with local or cached wheels `make install` only unpacks. Each demo stage's
own line, `(stage NAME: N s; load average L on C cores)`, is collected, and the summary's
figures are read from the clone's metrics.json: the trained judge against the base one on the
held-out synthetic task is the demo's check that learning happened. Writes bench/results/demo.json
with the machine, its load before and after, and the commit.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAGE = re.compile(r"^\(stage (\S+): (\d+) s; load average ([\d.]+) on (\d+) cores\)$", re.M)


def timed(command: list[str], cwd: Path, log: Path) -> float:
    started = time.monotonic()
    with log.open("a") as out:
        done = subprocess.run(command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed (exit {done.returncode}); see {log}")
    return round(time.monotonic() - started, 1)


def pip_cache_mb() -> float | None:
    done = subprocess.run([sys.executable, "-m", "pip", "cache", "dir"], capture_output=True, text=True)
    path = Path(done.stdout.strip()) if done.returncode == 0 else None
    if not path or not path.is_dir():
        return None
    return round(sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20, 1)


def pip_sources() -> str:
    """Where `make install` got its wheels: "local" when every index and wheel folder pip is configured
    with is on this machine (an install that only unpacks), "network" otherwise. Only the kind is
    recorded: a configured index URL may hold credentials."""
    done = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True)
    values = [value.strip("'\"") for line in done.stdout.splitlines() if "=" in line
              and line.split("=", 1)[0].rsplit(".", 1)[-1] in ("index-url", "extra-index-url", "find-links")
              for value in line.split("=", 1)[1].strip("'\"").split()]
    local = values and all(v.startswith(("/", "file:")) for v in values)
    return "local" if local else "network (PyPI or a configured index)"


def agreement(metrics: Path) -> dict:
    judges = json.loads(metrics.read_text())["judges"]
    return {name: {"accuracy": round(m["accuracy"], 3), "consistency": m.get("consistency"), "f1": m.get("f1"),
                   "ci95": (m.get("ci95") or {}).get("accuracy")} for name, m in judges.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "demo.json"))
    parser.add_argument("--keep", action="store_true", help="leave the clone (its runs/demo/) in place")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-demo-"))
    clone, log = work / "judgeforge", work / "make.log"
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    if (ROOT.parent / "shared").is_dir():
        (work / "shared").symlink_to(ROOT.parent / "shared")
    cache_mb, load_before, started = pip_cache_mb(), os.getloadavg(), time.monotonic()
    phases = {target: timed(["make", target], clone, log) for target in ("install", "model", "demo")}
    total = round(time.monotonic() - started, 1)
    text = log.read_text()
    stages = [{"stage": m[1], "seconds": int(m[2]), "load_average": float(m[3]), "cores": int(m[4])}
              for m in STAGE.finditer(text)]
    results = {"heldout_pandalm_human_labels": agreement(clone / "runs/demo/eval/metrics.json")}
    if (clone / "runs/demo/eval-synthetic/metrics.json").exists():
        results["heldout_synthetic"] = agreement(clone / "runs/demo/eval-synthetic/metrics.json")
    flags = next((line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")), "")
    report = {
        "benchmark": "make demo on a fresh clone", "commit": commit, "seconds": phases, "total_seconds": total,
        "total_minutes": round(total / 60, 2), "stages": stages, "results": results,
        "machine": {"cpus": len(os.sched_getaffinity(0)), "platform": platform.platform(),
                    "cpu_bf16": [f for f in ("avx512_bf16", "amx_bf16") if f in flags.split()],
                    "load_average_1m_before": round(load_before[0], 2),
                    "load_average_1m_after": round(os.getloadavg()[0], 2),
                    "pip_cache_mb": cache_mb, "pip_sources": pip_sources()},
        "date": time.strftime("%Y-%m-%d"),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"\n{'phase':<28}{'seconds':>10}")
    for name, seconds in phases.items():
        print(f"make {name:<23}{seconds:>10}")
    for stage in stages:
        print(f"  stage {stage['stage']:<20}{stage['seconds']:>10}   load {stage['load_average']}")
    print(f"{'total':<28}{total:>10}   ({report['total_minutes']} min; load before {load_before[0]:.2f}, "
          f"after {os.getloadavg()[0]:.2f}; pip cache {cache_mb} MB)")
    for title, judges in results.items():
        for name, m in judges.items():
            print(f"{title}: {name}: agreement {m['accuracy']}")
    print(f"wrote {args.out}")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
