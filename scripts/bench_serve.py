"""What the judge API costs on top of vLLM: the same judge prompts sent straight to vLLM's
`/v1/chat/completions` and through `POST /v1/judge/pairwise`, at concurrency 1, 8 and 32.

    .venv/bin/python scripts/bench_serve.py [--model models/SmolLM2-135M-Instruct] [--mode verdict]

One vLLM engine (prefix caching off, and every request a different PandaLM test pair, so no
request is served from another's cache); the judge API runs in its own process as `judgeforge
serve --upstream ENGINE`. The direct requests carry exactly the body the judge API sends (built by
the same template and backend code). After a warm-up of both, each level runs its requests in four
halves, direct / judge / judge / direct, so a load that drifts meanwhile weighs on both alike.
Prints p50/p95 latency and requests/s per path and their ratio; writes bench/results/serve.json,
with the judge API process's start time, resident memory and whether torch is loaded in it (it
should not be). Goal: the judge API adds under 10% at concurrency 32.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from judge.backends.openai import OpenAIBackend  # noqa: E402
from judge.core.jsonl import read_items  # noqa: E402
from judge.data.convert import convert_records  # noqa: E402
from judge.scoring.judging import params_for, request_for  # noqa: E402
from judge.templates import get_template  # noqa: E402
from serve.engine import ChildServer, EngineConfig, EngineProcess, free_port  # noqa: E402

LEVELS = {1: 16, 8: 64, 32: 128}  # concurrency -> requests per path


def load_pairs() -> tuple[list, str]:
    source = ROOT.parent / "shared" / "data" / "pandalm" / "testset-v1.json"
    if source.exists():
        return convert_records("pandalm", str(source)), "PandaLM test set"
    return read_items(ROOT / "examples" / "pairs.jsonl"), "examples/pairs.jsonl"


def judge_api(engine: EngineProcess, model: str, log: Path) -> tuple[ChildServer, str]:
    """`judgeforge serve --upstream ENGINE` (its own process, as users run it; access log off)."""
    port = free_port()
    # The engine's key given explicitly: OPENAI_API_KEY is not forwarded by a judge API without a key.
    command = [sys.executable, "-m", "judge.cli", "serve", "--upstream", engine.url, "--model", model,
               "--upstream-api-key", engine.api_key, "--port", str(port), "--max-batch", "64"]
    server = ChildServer(command, f"http://127.0.0.1:{port}/health", log_path=log, startup_timeout=120,
                         env={"JUDGEFORGE_LOG_LEVEL": "warning"}, name="the judge API")
    return server, f"http://127.0.0.1:{port}"


async def send_all(send, bodies: list, concurrency: int) -> tuple[list[float], int, float]:
    """Send every body with at most `concurrency` in flight: (latencies, failures, wall seconds)."""
    queue = list(reversed(bodies))
    latencies: list[float] = []
    failures = 0

    async def worker():
        nonlocal failures
        while queue:
            body = queue.pop()
            start = time.perf_counter()
            ok = await send(body)
            latencies.append(time.perf_counter() - start)
            failures += not ok

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, failures, time.perf_counter() - start


def summary(runs: list[tuple[list[float], int, float]]) -> dict:
    latencies = sorted(x for run in runs for x in run[0])
    wall = sum(run[2] for run in runs)
    return {"requests": len(latencies), "failures": sum(run[1] for run in runs), "seconds": round(wall, 3),
            "requests_per_s": round(len(latencies) / wall, 3), "p50_ms": round(1000 * statistics.median(latencies), 1),
            "p95_ms": round(1000 * latencies[max(0, round(0.95 * len(latencies)) - 1)], 1)}


async def bench(engine: EngineProcess, judge_url: str, model: str, pairs: list, mode: str) -> dict:
    template = get_template("judgelm")
    params = params_for(template, mode, max_tokens=64)
    backend = OpenAIBackend(model)

    def direct_body(item) -> dict:
        body = backend.body(request_for(template, item, "ab", params))
        body.update(body.pop("extra_body", {}))  # what the openai client puts on the wire
        return body

    def judge_body(item) -> dict:
        return {"question": item.question, "answer1": item.answer1, "answer2": item.answer2, "mode": mode,
                "max_tokens": 64}

    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(timeout=600, limits=limits) as http:
        async def to_engine(body) -> bool:
            response = await http.post(engine.url + "/chat/completions", json=body,
                                       headers={"Authorization": f"Bearer {engine.api_key}"})
            return response.status_code == 200

        async def to_judge(body) -> bool:
            response = await http.post(judge_url + "/v1/judge/pairwise", json=body)
            return response.status_code == 200 and response.json()["parse_ok"]

        items = iter(pairs)
        warm = [next(items) for _ in range(8)]
        await send_all(to_engine, [direct_body(i) for i in warm[:4]], 4)
        await send_all(to_judge, [judge_body(i) for i in warm[4:]], 4)
        results = {}
        for concurrency, n in LEVELS.items():
            runs: dict = {"direct": [], "judge": []}
            # direct, judge, judge, direct: a load that drifts during the level hits both paths alike
            for path in ("direct", "judge", "judge", "direct"):
                send, body = (to_engine, direct_body) if path == "direct" else (to_judge, judge_body)
                runs[path].append(await send_all(send, [body(next(items)) for _ in range(n // 2)], concurrency))
            direct, judged = summary(runs["direct"]), summary(runs["judge"])
            results[concurrency] = {
                "direct": direct, "judge_api": judged,
                "ratio": {"p50": round(judged["p50_ms"] / direct["p50_ms"], 3),
                          "p95": round(judged["p95_ms"] / direct["p95_ms"], 3),
                          "requests_per_s": round(judged["requests_per_s"] / direct["requests_per_s"], 3)},
                "overhead_pct": round(100 * (direct["requests_per_s"] / judged["requests_per_s"] - 1), 1),
            }
            print(f"concurrency {concurrency}: direct {direct['requests_per_s']} req/s, judge API "
                  f"{judged['requests_per_s']} req/s", flush=True)
        return results


def footprint(pid: int) -> dict:
    """A process's resident memory and whether torch's library is mapped into it (Linux /proc)."""
    try:
        rss_kib = next(int(line.split()[1]) for line in open(f"/proc/{pid}/status") if line.startswith("VmRSS"))
        torch = any("libtorch" in line for line in open(f"/proc/{pid}/maps"))
    except (OSError, StopIteration):
        return {}
    return {"rss_mib": round(rss_kib / 1024), "torch_loaded": torch}


def cpu_name() -> str:
    try:
        return next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def print_table(results: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="judge API vs vLLM direct (same prompts)")
    for column in ("concurrency", "path", "req/s", "p50 ms", "p95 ms", "judge/direct req/s", "overhead"):
        table.add_column(column, justify="right")
    for concurrency, level in results.items():
        for path in ("direct", "judge_api"):
            row = level[path]
            extra = (f"{level['ratio']['requests_per_s']:.3f}", f"{level['overhead_pct']:+.1f}%") if path == "judge_api" \
                else ("", "")
            table.add_row(str(concurrency), path, f"{row['requests_per_s']:.2f}", f"{row['p50_ms']:.0f}",
                          f"{row['p95_ms']:.0f}", *extra)
    Console(width=120).print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(ROOT / "models" / "SmolLM2-135M-Instruct"))
    parser.add_argument("--mode", default="verdict", choices=["verdict", "logprob", "full"])
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "serve.json"))
    # SmolLM2 is saved in bf16, which vLLM runs on a slow fallback on CPUs without AVX512-BF16 (10x
    # slower here); the overhead ratio does not depend on the dtype, so float32 keeps the run short.
    parser.add_argument("--dtype", default="float32", help="the engine's --dtype (auto: the checkpoint's)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
    pairs, source = load_pairs()
    needed = 8 + 2 * sum(LEVELS.values())
    if len(pairs) < needed:
        raise SystemExit(f"{source} has {len(pairs)} pairs; the benchmark needs {needed} distinct ones")
    logs = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    config = EngineConfig(args.model, args.model, max_model_len=4096, extra_args=["--no-enable-prefix-caching", f"--dtype={args.dtype}"])
    started = time.perf_counter()
    with EngineProcess(config, log_path=logs / "engine.log") as engine:
        print(f"vLLM up in {time.perf_counter() - started:.0f} s (log {engine.log_path})", flush=True)
        server, url = judge_api(engine, args.model, logs / "judge.log")
        started = time.perf_counter()
        with server:
            judge_process = {"ready_s": round(time.perf_counter() - started, 1)}
            results = asyncio.run(bench(engine, url, args.model, pairs, args.mode))
            judge_process.update(footprint(server.process.pid))  # after serving every request
    print_table(results)
    print(f"judge API process: {judge_process}")
    report = {
        "benchmark": "judge API overhead over vLLM's /v1/chat/completions", "mode": args.mode, "template": "judgelm@1",
        "model": Path(args.model).name, "dtype": args.dtype, "pairs": source, "prefix_caching": False,
        "device": {"cpu": cpu_name(), "cores": os.cpu_count(),
                   "note": "CPU machine shared with other jobs while measured: numbers are noisy"},
        "levels": results, "judge_api_process": judge_process, "goal": "judge API adds under 10% at concurrency 32",
        "goal_met": results[32]["overhead_pct"] < 10,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
