"""Benchmark: distill throughput against a loopback fake teacher with a fixed latency.

At concurrency C and latency L a perfect client completes C / L calls per second; this prints the
achieved calls/s at C = 8, 32, 64 as a ratio of that ideal (target >= 0.8 at 64), and the time of a
fully cached rerun as a share of the first run (target < 5%), each the median of --repeat runs.
Calls/s is measured over the calling phase (first request to last reply, `calling_seconds` in
stats.json) and, stricter, over the whole `distill()` call (reading and checking the items,
rebuilding verdicts.jsonl, the manifest). The fake teacher runs in its own process, so it does not
share the client's GIL. Every run judges its own distinct prompts (ROUNDS x C calls, pairwise
judgelm in both orders) into a fresh folder.

    .venv/bin/python scripts/bench_distill.py [--latency 0.2] [--rounds 20] [--repeat 3] [--out bench/results/distill.json]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from judge.core.jsonl import write_json, write_jsonl  # noqa: E402
from judge.core.records import PairItem  # noqa: E402
from judge.distill import DistillConfig, TeacherConfig, distill  # noqa: E402
from judge.testing.fake_openai import FakeOpenAI  # noqa: E402

LEVELS = (8, 32, 64)


def run_level(base_url: str, folder: Path, concurrency: int, rounds: int, latency: float) -> dict:
    """One first run and one fully cached rerun, on prompts no other run has sent."""
    calls = concurrency * rounds
    items = [PairItem(id=f"{i}", question=f"Benchmark question {i} ({folder.name})?",
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
    return {"calling_seconds": calling, "ratio_to_ideal": calls / calling / ideal, "end_to_end_seconds": first,
            "end_to_end_ratio": calls / first / ideal, "cached_rerun_seconds": cached,
            "cached_rerun_share": cached / first}


def summarize(concurrency: int, calls: int, latency: float, runs: list[dict]) -> dict:
    """Medians over the repeats (the machine is shared: one run can be slowed by other jobs), and the best ratio."""
    median = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
    return {"concurrency": concurrency, "calls": calls, "ideal_calls_per_s": round(concurrency / latency, 1),
            "calls_per_s": round(calls / median["calling_seconds"], 1),
            **{key: round(value, 4) for key, value in median.items()},
            "best_ratio_to_ideal": round(max(r["ratio_to_ideal"] for r in runs), 4), "repeats": len(runs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency", type=float, default=0.2, help="the fake teacher's reply latency, seconds")
    parser.add_argument("--rounds", type=int, default=20, help="calls per level = rounds x concurrency")
    parser.add_argument("--repeat", type=int, default=3, help="runs per level; medians are reported")
    parser.add_argument("--out", default="bench/results/distill.json")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    results = []
    with FakeOpenAI(process=True, latency=args.latency) as fake, tempfile.TemporaryDirectory() as tmp:
        for concurrency in LEVELS:
            runs = []
            for repeat in range(args.repeat):
                folder = Path(tmp) / f"c{concurrency}-r{repeat}"
                folder.mkdir()
                runs.append(run_level(fake.base_url, folder, concurrency, args.rounds, args.latency))
            results.append(summarize(concurrency, concurrency * args.rounds, args.latency, runs))
            print(f"  concurrency {concurrency}: done", file=sys.stderr)
    load_after = os.getloadavg()[0]
    print(f"\ndistill against a loopback fake teacher, latency {args.latency * 1000:.0f} ms, median of {args.repeat} "
          f"runs ({os.cpu_count()} CPUs, load average {load_before:.2f} before, {load_after:.2f} after)")
    print(f"{'concurrency':>11} {'calls':>6} {'ideal/s':>8} {'calls/s':>8} {'ratio':>6} {'best':>6} {'end-to-end s':>13} "
          f"{'e2e ratio':>10} {'cached rerun s':>15} {'rerun/first':>12}")
    for r in results:
        print(f"{r['concurrency']:>11} {r['calls']:>6} {r['ideal_calls_per_s']:>8.0f} {r['calls_per_s']:>8.1f} "
              f"{r['ratio_to_ideal']:>6.3f} {r['best_ratio_to_ideal']:>6.3f} {r['end_to_end_seconds']:>13.2f} "
              f"{r['end_to_end_ratio']:>10.3f} {r['cached_rerun_seconds']:>15.3f} {r['cached_rerun_share']:>11.1%}")
    top = results[-1]
    targets = {"ratio_at_64": top["ratio_to_ideal"], "ratio_target": 0.8, "ratio_met": top["ratio_to_ideal"] >= 0.8,
               "cached_rerun_share_at_64": top["cached_rerun_share"], "cached_target": 0.05,
               "cached_met": top["cached_rerun_share"] < 0.05}
    print(f"ratio at 64: {targets['ratio_at_64']:.3f} (target >= 0.8: {'met' if targets['ratio_met'] else 'NOT met'}); "
          f"cached rerun {targets['cached_rerun_share_at_64']:.1%} of the first run "
          f"(target < 5%: {'met' if targets['cached_met'] else 'NOT met'})")
    write_json(args.out, {"benchmark": "distill", "latency_s": args.latency, "rounds": args.rounds,
                          "repeats": args.repeat,
                          "machine": {"cpus": os.cpu_count(), "load_average_1m_before": round(load_before, 2),
                                      "load_average_1m_after": round(load_after, 2),
                                      "python": platform.python_version(), "platform": platform.platform()},
                          "note": "loopback fake teacher in its own process; " + (
                              "other jobs shared the machine (load average above half its cores), so these are "
                              "contended numbers" if max(load_before, load_after) > os.cpu_count() / 2 else
                              "little else ran (load average at most half the cores)"),
                          "results": results, "targets": targets,
                          "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
