"""Benchmark: distill throughput against a loopback fake teacher with a fixed latency.

At concurrency C and latency L a perfect client completes C / L calls per second; this prints the
achieved calls/s at C = 8, 32, 64 as a ratio of that ideal (target >= 0.8 at 64), and the time of a
fully cached rerun as a share of the first run (target < 5%). Calls/s is measured over the calling
phase (first request to last reply, `calling_seconds` in stats.json) and, stricter, over the whole
`distill()` call (reading and checking the items, rebuilding verdicts.jsonl, the manifest). The fake teacher runs in its own
process, so it does not share the client's GIL. Each concurrency level judges its own distinct
prompts (ROUNDS x C calls, pairwise judgelm in both orders) into a fresh folder.

    .venv/bin/python scripts/bench_distill.py [--latency 0.2] [--rounds 20] [--out bench/results/distill.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from judge.distill import DistillConfig, distill  # noqa: E402
from judge.jsonl import write_json, write_jsonl  # noqa: E402
from judge.records import PairItem  # noqa: E402
from judge.teacher import TeacherConfig  # noqa: E402
from judge.testing.fake_openai import FakeOpenAI  # noqa: E402

LEVELS = (8, 32, 64)


def run_level(base_url: str, folder: Path, concurrency: int, rounds: int, latency: float) -> dict:
    calls = concurrency * rounds
    items = [PairItem(id=f"c{concurrency}-{i}", question=f"Benchmark question {i} at concurrency {concurrency}?",
                      answer1=f"First answer to {i}.", answer2=f"Second answer to {i}.") for i in range(calls // 2)]
    write_jsonl(folder / "items.jsonl", items)
    config = DistillConfig(input=str(folder / "items.jsonl"), template="judgelm", out=str(folder / "run"),
                           progress=False, teacher=TeacherConfig(model="bench-teacher", base_url=base_url,
                                                                 concurrency=concurrency, max_tokens=64))
    start = time.perf_counter()
    stats = distill(config)
    first = time.perf_counter() - start
    assert stats["this_run"]["sent"] == calls, stats["this_run"]
    start = time.perf_counter()
    again = distill(config)
    cached = time.perf_counter() - start
    assert again["this_run"]["sent"] == 0
    ideal, calling = concurrency / latency, stats["this_run"]["calling_seconds"]
    return {"concurrency": concurrency, "calls": calls, "ideal_calls_per_s": round(ideal, 1),
            "calling_seconds": calling, "calls_per_s": round(calls / calling, 1),
            "ratio_to_ideal": round(calls / calling / ideal, 3), "end_to_end_seconds": round(first, 3),
            "end_to_end_ratio": round(calls / first / ideal, 3), "cached_rerun_seconds": round(cached, 4),
            "cached_rerun_share": round(cached / first, 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency", type=float, default=0.2, help="the fake teacher's reply latency, seconds")
    parser.add_argument("--rounds", type=int, default=20, help="calls per level = rounds x concurrency")
    parser.add_argument("--out", default="bench/results/distill.json")
    args = parser.parse_args()
    results = []
    with FakeOpenAI(process=True, latency=args.latency) as fake, tempfile.TemporaryDirectory() as tmp:
        for concurrency in LEVELS:
            folder = Path(tmp) / f"c{concurrency}"
            folder.mkdir()
            results.append(run_level(fake.base_url, folder, concurrency, args.rounds, args.latency))
            print(f"  concurrency {concurrency}: done", file=sys.stderr)
    print(f"\ndistill against a loopback fake teacher, latency {args.latency * 1000:.0f} ms "
          f"({os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f})")
    print(f"{'concurrency':>11} {'calls':>6} {'ideal/s':>8} {'calls/s':>8} {'ratio':>6} {'end-to-end s':>13} "
          f"{'e2e ratio':>10} {'cached rerun s':>15} {'rerun/first':>12}")
    for r in results:
        print(f"{r['concurrency']:>11} {r['calls']:>6} {r['ideal_calls_per_s']:>8.0f} {r['calls_per_s']:>8.1f} "
              f"{r['ratio_to_ideal']:>6.3f} {r['end_to_end_seconds']:>13.2f} {r['end_to_end_ratio']:>10.3f} "
              f"{r['cached_rerun_seconds']:>15.3f} {r['cached_rerun_share']:>11.1%}")
    top = results[-1]
    verdict = {"ratio_at_64": top["ratio_to_ideal"], "ratio_target": 0.8, "ratio_met": top["ratio_to_ideal"] >= 0.8,
               "cached_rerun_share_at_64": top["cached_rerun_share"], "cached_target": 0.05,
               "cached_met": top["cached_rerun_share"] < 0.05}
    print(f"ratio at 64: {verdict['ratio_at_64']:.3f} (target >= 0.8: {'met' if verdict['ratio_met'] else 'NOT met'}); "
          f"cached rerun {verdict['cached_rerun_share_at_64']:.1%} of the first run "
          f"(target < 5%: {'met' if verdict['cached_met'] else 'NOT met'})")
    write_json(args.out, {"benchmark": "distill", "latency_s": args.latency, "rounds": args.rounds,
                          "machine": {"cpus": os.cpu_count(), "load_average_1m": round(os.getloadavg()[0], 2),
                                      "python": platform.python_version(), "platform": platform.platform()},
                          "note": "loopback fake teacher in its own process; machine shared with other jobs",
                          "results": results, "targets": verdict,
                          "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
