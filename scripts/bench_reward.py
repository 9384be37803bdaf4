"""What the reward route costs: the same pointwise judgments through `POST /get_reward` (OpenRLHF's
remote reward protocol, one query per request as its rollouts send them) and through
`POST /v1/judge/batch` (one item per request), at concurrency 64, in logprob mode; then
`/get_reward` in full mode (free-text feedback, then the grade) for the price of the mode.

    flock /tmp/jf-heavy.lock .venv/bin/python scripts/bench_reward.py [--model models/SmolLM2-135M-Instruct]

One vLLM engine (float32, prefix caching off; every request a different answer from the PandaLM
test set, so none is served from another's cache) and `judgeforge serve --upstream ENGINE` in its
own process, as users run them (bench_serve.py's setup). Before timing, a few items go through both
routes and their rewards are checked against the batch route's grades: (grade - 1) / 4. Each
comparison runs in four quarters, reward / batch / batch / reward, so a load that drifts weighs on
both alike. Prints rewards/s and p50/p99 latency per path and their ratio (target: /get_reward at
>= 0.9 of the batch route's rate); writes bench/results/reward.json with the machine and its load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_serve import cpu_name, footprint, load_pairs, send_all  # noqa: E402

from serve.engine import ChildServer, EngineConfig, EngineProcess, free_port  # noqa: E402

CONCURRENCY = 64
CHECK = 8  # items sent through both routes to check that they reward alike


def judge_api(engine: EngineProcess, model: str, log: Path, max_tokens: int) -> tuple[ChildServer, str]:
    """`judgeforge serve --upstream ENGINE` in its own process (access log off)."""
    port = free_port()
    command = [sys.executable, "-m", "judge.cli", "serve", "--upstream", engine.url, "--model", model,
               "--upstream-api-key", engine.api_key, "--port", str(port), "--max-tokens", str(max_tokens)]
    server = ChildServer(command, f"http://127.0.0.1:{port}/health", log_path=log, startup_timeout=120,
                         env={"JUDGEFORGE_LOG_LEVEL": "warning"}, name="the judge API")
    return server, f"http://127.0.0.1:{port}"


def answers_of(pairs) -> list[tuple[str, str]]:
    """(question, answer) for every distinct answer: two per pair."""
    seen, out = set(), []
    for pair in pairs:
        for answer in (pair.answer1, pair.answer2):
            if answer.strip() and (pair.question, answer) not in seen:
                seen.add((pair.question, answer))
                out.append((pair.question, answer))
    return out


def percentiles(latencies: list[float]) -> dict:
    ordered = sorted(latencies)
    return {"p50_ms": round(1000 * statistics.median(ordered), 1),
            "p99_ms": round(1000 * ordered[max(0, round(0.99 * len(ordered)) - 1)], 1)}


def latency_summary(runs: list[tuple[list[float], int, float]]) -> dict:
    latencies = [x for run in runs for x in run[0]]
    wall = sum(run[2] for run in runs)
    return {"requests": len(latencies), "failures": sum(run[1] for run in runs), "seconds": round(wall, 3),
            "rewards_per_s": round(len(latencies) / wall, 3), **percentiles(latencies)}


async def bench(url: str, items: list[tuple[str, str]], per_path: int, full_requests: int) -> dict:
    statuses: Counter = Counter()  # "path status" -> responses
    no_grade: Counter = Counter()  # mode -> 200 answers whose judgment gave no grade (the stand-in was used)
    async with httpx.AsyncClient(timeout=600, limits=httpx.Limits(max_connections=CONCURRENCY,
                                                                   max_keepalive_connections=CONCURRENCY)) as http:
        async def reward(item, mode: str) -> float | None:
            question, answer = item
            body = {"query": [question + answer], "prompts": [question], "labels": [None], "mode": mode}
            if mode == "full":  # the base model often writes no grade: measured with a stand-in, counted
                body["unparsed"] = 0.0
            response = await http.post(url + "/get_reward", json=body)
            statuses[f"get_reward {response.status_code}"] += 1
            if response.status_code != 200:
                return None
            answer = response.json()
            no_grade[mode] += int(answer["extra_logs"]["judge_unparsed"][0])
            return answer["rewards"][0]

        async def batch(item, mode: str) -> float | None:
            question, answer = item
            response = await http.post(url + "/v1/judge/batch", json={"items": [
                {"question": question, "answer": answer, "mode": mode}]})
            statuses[f"judge_batch {response.status_code}"] += 1
            result = response.json()["results"][0] if response.status_code == 200 else {}
            return (result["score"] - 1) / 4 if result.get("parse_ok") else None

        routes = {"get_reward": reward, "judge_batch": batch}

        def sender(path, mode, latencies=None):
            async def send(item) -> bool:
                started = time.perf_counter()
                ok = await routes[path](item, mode) is not None
                if latencies is not None:
                    latencies[path].append(time.perf_counter() - started)
                return ok
            return send

        queue = iter(items)
        checked = [next(queue) for _ in range(CHECK)]
        pairs = await asyncio.gather(*(asyncio.gather(reward(i, "logprob"), batch(i, "logprob")) for i in checked))
        same = all(r is not None and b is not None and abs(r - b) < 1e-5 for r, b in pairs)
        print(f"check: {CHECK} items, /get_reward == (batch grade - 1) / 4: {same} {pairs[:3]}", flush=True)
        # The same items through both routes, in quarters reward / batch / batch / reward.
        timed = [next(queue) for _ in range(per_path)]
        halves = (timed[:per_path // 2], timed[per_path // 2:])
        runs: dict = {"get_reward": [], "judge_batch": []}
        for path, half in (("get_reward", 0), ("judge_batch", 0), ("judge_batch", 1), ("get_reward", 1)):
            runs[path].append(await send_all(sender(path, "logprob"), halves[half], CONCURRENCY))
            print(f"logprob {path}: {len(runs[path][-1][0])} requests in {runs[path][-1][2]:.1f} s", flush=True)
        # Both routes in one stream (each item through both, alternating): a drifting load hits them alike;
        # at a fixed concurrency, throughput is inversely proportional to the mean latency (Little's law).
        mixed_items = [next(queue) for _ in range(per_path // 2)]
        latencies: dict = {"get_reward": [], "judge_batch": []}
        stream = [(path, item) for item in mixed_items for path in routes]

        async def mixed_send(entry) -> bool:
            return await sender(entry[0], "logprob", latencies)(entry[1])

        mixed_run = await send_all(mixed_send, stream, CONCURRENCY)
        print(f"interleaved: {len(stream)} requests in {mixed_run[2]:.1f} s", flush=True)
        full = await send_all(sender("get_reward", "full"), [next(queue) for _ in range(full_requests)], CONCURRENCY)
        print(f"full get_reward: {full_requests} requests in {full[2]:.1f} s", flush=True)
    logprob_reward, logprob_batch = latency_summary(runs["get_reward"]), latency_summary(runs["judge_batch"])
    mean = {path: statistics.fmean(values) for path, values in latencies.items()}
    full_reward = latency_summary([full])
    return {
        "same_rewards_check": {"items": CHECK, "equal": same, "pairs": [list(p) for p in pairs]},
        "logprob": {"get_reward": logprob_reward, "judge_batch": logprob_batch,
                    "ratio_rewards_per_s": round(logprob_reward["rewards_per_s"] / logprob_batch["rewards_per_s"], 3)},
        "interleaved": {**{path: {"requests": len(values), "mean_ms": round(1000 * mean[path], 1),
                                  **percentiles(values)} for path, values in latencies.items()},
                        "seconds": round(mixed_run[2], 3), "failures": mixed_run[1],
                        "ratio_by_mean_latency": round(mean["judge_batch"] / mean["get_reward"], 3)},
        "full": {"get_reward": {**full_reward, "no_grade": no_grade["full"]}},
        "logprob_over_full_rewards_per_s": round(logprob_reward["rewards_per_s"] / full_reward["rewards_per_s"], 2),
        "responses": dict(sorted(statuses.items())),
    }


def print_table(results: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"rewards through /get_reward vs /v1/judge/batch (concurrency {CONCURRENCY})")
    for column in ("mode", "path", "requests", "failures", "rewards/s", "p50 ms", "p99 ms"):
        table.add_column(column, justify="right")
    rows = [("logprob", "get_reward"), ("logprob", "judge_batch"), ("full", "get_reward")]
    for mode, path in rows:
        row = results[mode][path]
        table.add_row(mode, path, str(row["requests"]), str(row["failures"]), f"{row['rewards_per_s']:.2f}",
                      f"{row['p50_ms']:.0f}", f"{row['p99_ms']:.0f}")
    mixed = results["interleaved"]
    for path in ("get_reward", "judge_batch"):
        row = mixed[path]
        table.add_row("logprob, interleaved", path, str(row["requests"]), "", "", f"{row['p50_ms']:.0f}",
                      f"{row['p99_ms']:.0f}")
    Console(width=120).print(table)
    print(f"/get_reward / batch (logprob): rewards/s {results['logprob']['ratio_rewards_per_s']:.3f} in separate "
          f"quarters, {mixed['ratio_by_mean_latency']:.3f} by mean latency interleaved; logprob / full rewards/s: "
          f"{results['logprob_over_full_rewards_per_s']:.2f} (full mode: {results['full']['get_reward']['no_grade']} "
          f"without a grade); responses {results['responses']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(ROOT / "models" / "SmolLM2-135M-Instruct"))
    parser.add_argument("--requests", type=int, default=256, help="logprob-mode requests per path")
    parser.add_argument("--full-requests", type=int, default=64, help="full-mode /get_reward requests")
    parser.add_argument("--max-tokens", type=int, default=128, help="full mode's reply budget (the server's)")
    parser.add_argument("--dtype", default="float32", help="the engine's --dtype (bf16 is slow on AVX2-only CPUs)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "reward.json"))
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
    pairs, source = load_pairs()
    items = answers_of(pairs)
    needed = CHECK + args.requests + args.requests // 2 + args.full_requests
    if len(items) < needed:
        raise SystemExit(f"{source} has {len(items)} distinct answers; the benchmark needs {needed}")
    logs = Path(tempfile.mkdtemp(prefix="bench-reward-"))
    config = EngineConfig(args.model, args.model, max_model_len=4096,
                          extra_args=["--no-enable-prefix-caching", f"--dtype={args.dtype}"])
    load_before = os.getloadavg()
    started = time.perf_counter()
    with EngineProcess(config, log_path=logs / "engine.log") as engine:
        print(f"vLLM up in {time.perf_counter() - started:.0f} s (log {engine.log_path})", flush=True)
        server, url = judge_api(engine, args.model, logs / "judge.log", args.max_tokens)
        with server:
            results = asyncio.run(bench(url, items, args.requests, args.full_requests))
            process = footprint(server.process.pid)
    load_after = os.getloadavg()
    print_table(results)
    report = {
        "benchmark": "rewards through POST /get_reward (OpenRLHF protocol) vs the same judgments through "
                     "POST /v1/judge/batch; logprob vs full mode",
        "model": Path(args.model).name, "dtype": args.dtype, "template": "prometheus-absolute@1", "kind": "pointwise",
        "items": f"answers of the {source}, each judged once (prefix caching off)", "concurrency": CONCURRENCY,
        "one_item_per_request": True, "full_mode_max_tokens": args.max_tokens,
        "device": {"cpu": cpu_name(), "cores": os.cpu_count(),
                   "load_avg_1_5_15_before": [round(x, 2) for x in load_before],
                   "load_avg_1_5_15_after": [round(x, 2) for x in load_after],
                   "note": "CPU machine shared with other jobs while measured: numbers are noisy"},
        **results, "judge_api_process": process,
        "target": "/get_reward at >= 0.9 of /v1/judge/batch's rewards/s (interleaved: by mean latency)",
        "target_met": min(results["logprob"]["ratio_rewards_per_s"], results["interleaved"]["ratio_by_mean_latency"]) >= 0.9,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(args.out).with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    tmp.replace(args.out)  # a finished report or the previous one, never half of one
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
