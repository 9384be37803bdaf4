"""Benchmark `judgeforge score` backends side by side on the PandaLM test set (both orders).

    .venv/bin/python scripts/bench_score.py [--pairs 999] [--full-pairs 32] [--skip-http] [--skip-hf] [--skip-ray]
    .venv/bin/python scripts/bench_score.py --only-ray [--ray-pairs 100] [--ray-replicas 2]
    .venv/bin/python scripts/bench_score.py --only-dtype [--dtype-pairs 32]

Runs, in one process and on the same pairs: vLLM offline (verdict, logprob, full), transformers
(verdict, logprob, full) and the OpenAI-compatible path through `judgeforge serve` (verdict).
Prints items/s (an item = one pair judged in both orders) and the ratios the goals are stated in:
vllm / hf per mode, verdict and logprob vs full per item, HTTP vs offline vLLM. Full mode runs on
`--full-pairs` pairs (it generates up to --full-max-tokens tokens per call). vLLM's prefix cache is
emptied before each of its runs, so it only reuses work within a run (the template's instructions,
the question both orders of a pair share); its hit rate is reported next to each vLLM figure.
Then the transformers backend (verdict mode) in one process vs on `--ray-replicas` Ray replicas
(`score --ray-replicas`): on the 2-core CPU machine two replicas share the same two cores, so
that ratio measures Ray's overhead, not a speed-up; on a GPU machine it is replicas per GPU.
`--only-dtype`: the transformers backend (verdict mode) with the default dtype (auto: bf16 only where
the CPU computes it natively, judge/backends/dtype.py) vs forced bfloat16 vs forced float32, and the ratios.
Writes bench/results/score.json (`--only-ray`: score_ray.json; `--only-dtype`: score_dtype.json).
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from judge.core.jsonl import read_items, write_jsonl  # noqa: E402
from judge.data.convert import convert_records  # noqa: E402
from judge.scoring.score import ScoreConfig, score  # noqa: E402


def load_pairs(n: int) -> tuple[list, str]:
    source = ROOT.parent / "shared" / "data" / "pandalm" / "testset-v1.json"
    if source.exists():
        return convert_records("pandalm", str(source))[:n], "PandaLM test set"
    return read_items(ROOT / "examples" / "pairs.jsonl")[:n], "examples/pairs.jsonl"


def run(backend, kind: str, pairs: list, mode: str, workdir: Path, template: str, max_tokens: int) -> dict:
    items = workdir / f"items-{len(pairs)}.jsonl"
    write_jsonl(items, pairs)
    out = workdir / f"{kind}-{mode}-{len(pairs)}-{time.monotonic_ns()}.jsonl"
    config = ScoreConfig(input=str(items), out=str(out), backend=kind, model="bench", template=template,
                         swap=True, mode=mode, max_tokens=max_tokens, batch_size=1024)
    if kind == "vllm":  # every run starts with an empty prefix cache: no run reuses another's prompts
        backend.llm.reset_prefix_cache()
        hits, queries = prefix_cache_counts(backend.llm)
    start = time.perf_counter()
    counts = score(config, backend, progress=False)
    seconds = time.perf_counter() - start
    result = {"pairs": len(pairs), "seconds": round(seconds, 2), "items_per_s": round(len(pairs) / seconds, 3),
              "parse_failures": counts["parse_failures"], "prompt_tokens": counts["prompt_tokens"],
              "completion_tokens": counts["completion_tokens"]}
    if kind == "vllm":
        hits_after, queries_after = prefix_cache_counts(backend.llm)
        result["prefix_cache_hit_rate"] = round((hits_after - hits) / max(queries_after - queries, 1), 3)
    return result


def ray_vs_process(model: str, pairs: list, workdir: Path, template: str, replicas: int) -> tuple[dict, dict]:
    """hf backend, verdict mode, the same pairs: one process vs `replicas` Ray replicas, each timed from
    building its backend(s) to the last verdict. The local Ray cluster's start, paid once per run, is
    timed apart; a replica's memory is its process's peak RSS, sampled while it judges."""
    import shutil
    import threading

    import psutil
    import ray

    items = workdir / f"ray-items-{len(pairs)}.jsonl"
    write_jsonl(items, pairs)
    common = {"input": str(items), "backend": "hf", "model": model, "template": template, "swap": True,
              "mode": "verdict", "batch_size": 16, "extra": {"batch_size": 16}}
    rows, outs = {}, {"one process": workdir / "one-process.jsonl", f"{replicas} ray replicas": workdir / "ray.jsonl"}

    def timed(label: str, **kwargs) -> None:
        start = time.perf_counter()
        counts = score(ScoreConfig(out=str(outs[label]), **common, **kwargs), progress=False)
        seconds = time.perf_counter() - start
        rows[f"hf/verdict/{label}"] = {"pairs": len(pairs), "seconds": round(seconds, 2),
                                       "items_per_s": round(len(pairs) / seconds, 3),
                                       "parse_failures": counts["parse_failures"]}

    timed("one process")
    folder = tempfile.mkdtemp(prefix="jf-ray-bench-")
    start = time.perf_counter()
    ray.init(address="local", include_dashboard=False, log_to_driver=False, configure_logging=False, _temp_dir=folder)
    cluster_start = time.perf_counter() - start
    peaks: dict[int, int] = {}
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            for proc in psutil.process_iter(["name", "cmdline", "memory_info"]):
                title = " ".join(proc.info["cmdline"] or []) or proc.info["name"] or ""
                if title.startswith("ray::_Replica") and proc.info["memory_info"]:
                    peaks[proc.pid] = max(peaks.get(proc.pid, 0), proc.info["memory_info"].rss)
            stop.wait(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        timed(f"{replicas} ray replicas", ray_replicas=replicas)
    finally:
        stop.set()
        sampler.join()
        ray.shutdown()
        shutil.rmtree(folder, ignore_errors=True)
    one, on_ray = (outs[k].read_text().splitlines() for k in outs)
    same = [(r["id"], r["order"], r["winner"]) for r in map(json.loads, one)] == \
        [(r["id"], r["order"], r["winner"]) for r in map(json.loads, on_ray)]
    return rows, {"ray_cluster_start_s": round(cluster_start, 1), "same_verdicts": same,
                  "replica_peak_rss_mib": sorted(round(rss / 2**20) for rss in peaks.values())}


def dtype_runs(model: str, pairs: list, workdir: Path, template: str) -> tuple[dict, dict]:
    """The transformers backend, verdict mode, the same pairs: the default dtype (auto, judge.backends.dtype's
    rule) vs forced bfloat16 vs forced float32, each in a fresh backend after one warm-up batch."""
    from judge.backends.hf import HFBackend

    rows, chosen = {}, None
    for dtype in ("auto", "bfloat16", "float32"):
        backend = HFBackend(model, dtype=dtype, batch_size=16)
        chosen = chosen or backend.dtype
        run(backend, "hf", pairs[:4], "verdict", workdir, template, 0)  # warm-up: first-call costs are not timed
        rows[f"hf/verdict/{dtype}"] = {**run(backend, "hf", pairs, "verdict", workdir, template, 0),
                                       "dtype": backend.dtype.dtype}
        del backend
    return rows, {"auto_chose": chosen.as_dict()}


def prefix_cache_counts(llm) -> tuple[float, float]:
    """vLLM's cumulative prefix-cache hits and queries, in tokens."""
    values = {m.name: getattr(m, "value", None) for m in llm.get_metrics()}
    return values.get("vllm:prefix_cache_hits") or 0, values.get("vllm:prefix_cache_queries") or 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(ROOT / "models" / "SmolLM2-135M-Instruct"))
    parser.add_argument("--template", default="pandalm")
    parser.add_argument("--pairs", type=int, default=999)
    parser.add_argument("--hf-pairs", type=int, default=200, help="pairs for the transformers backend (slow on CPU)")
    parser.add_argument("--full-pairs", type=int, default=32)
    parser.add_argument("--full-max-tokens", type=int, default=128)
    parser.add_argument("--skip-hf", action="store_true")
    parser.add_argument("--skip-http", action="store_true")
    parser.add_argument("--port", type=int, default=18751)
    parser.add_argument("--skip-ray", action="store_true")
    parser.add_argument("--only-ray", action="store_true", help="only one process vs Ray replicas (hf, verdict)")
    parser.add_argument("--ray-pairs", type=int, default=100, help="pairs for the one process vs Ray comparison")
    parser.add_argument("--ray-replicas", type=int, default=2)
    parser.add_argument("--only-dtype", action="store_true", help="only the default dtype (auto) vs forced bf16 "
                                                                   "and float32 (hf, verdict)")
    parser.add_argument("--dtype-pairs", type=int, default=32, help="pairs for the dtype comparison")
    parser.add_argument("--out", help="default bench/results/score.json (--only-ray: score_ray.json, --only-dtype: "
                                      "score_dtype.json)")
    args = parser.parse_args()
    args.out = args.out or str(ROOT / "bench" / "results" / ("score_ray.json" if args.only_ray else
                                                             "score_dtype.json" if args.only_dtype else "score.json"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")

    pairs, source = load_pairs(args.pairs)
    hf_pairs, full_pairs = pairs[: args.hf_pairs], pairs[: args.full_pairs]
    results: dict = {}
    workdir = Path(tempfile.mkdtemp(prefix="bench-score-"))

    ray_facts, dtype_facts = {}, {}
    if args.only_ray or args.only_dtype:
        args.skip_hf = args.skip_http = True
        args.skip_ray = args.skip_ray or args.only_dtype
    else:
        from judge.backends.vllm import VLLMBackend

        engine = VLLMBackend(args.model, max_model_len=4096, disable_log_stats=False)
        for mode, subset in (("verdict", pairs), ("logprob", pairs), ("verdict", hf_pairs), ("logprob", hf_pairs)):
            results[f"vllm/{mode}/{len(subset)}"] = run(engine, "vllm", subset, mode, workdir, args.template, 0)
        results[f"vllm/full/{len(full_pairs)}"] = run(engine, "vllm", full_pairs, "full", workdir, args.template,
                                                       args.full_max_tokens)
        engine.close()

    if not args.skip_hf:
        from judge.backends.hf import HFBackend

        hf = HFBackend(args.model, batch_size=16)
        for mode in ("verdict", "logprob"):
            results[f"hf/{mode}/{len(hf_pairs)}"] = run(hf, "hf", hf_pairs, mode, workdir, args.template, 0)
        results[f"hf/full/{len(full_pairs)}"] = run(hf, "hf", full_pairs, "full", workdir, args.template, args.full_max_tokens)
        del hf

    if not args.skip_http:
        from judge.backends.openai import OpenAIBackend

        from serve.engine import ChildServer

        command = [sys.executable, "-m", "judge.cli", "serve", "--model", args.model, "--port", str(args.port),
                   "--max-model-len", "4096"]
        with ChildServer(command, f"http://127.0.0.1:{args.port}/health", log_path=workdir / "serve.log",
                         name="judgeforge serve"):
            client = OpenAIBackend(model=Path(args.model).name, base_url=f"http://127.0.0.1:{args.port}/v1",
                                   concurrency=64)
            results[f"http/verdict/{len(pairs)}"] = run(client, "openai", pairs, "verdict", workdir, args.template, 0)

    if args.only_dtype:
        rows, dtype_facts = dtype_runs(args.model, pairs[: args.dtype_pairs], workdir, args.template)
        results.update(rows)

    if not args.skip_ray:
        rows, ray_facts = ray_vs_process(args.model, pairs[: args.ray_pairs], workdir, args.template, args.ray_replicas)
        results.update(rows)

    def rate(key):
        return results.get(key, {}).get("items_per_s")

    n, h, f = len(pairs), len(hf_pairs), len(full_pairs)
    ratios = {
        "vllm_over_hf_verdict": _ratio(rate(f"vllm/verdict/{h}"), rate(f"hf/verdict/{h}")),
        "vllm_over_hf_logprob": _ratio(rate(f"vllm/logprob/{h}"), rate(f"hf/logprob/{h}")),
        "vllm_over_hf_full": _ratio(rate(f"vllm/full/{f}"), rate(f"hf/full/{f}")),
        "vllm_verdict_over_full": _ratio(rate(f"vllm/verdict/{n}"), rate(f"vllm/full/{f}")),
        "vllm_logprob_over_full": _ratio(rate(f"vllm/logprob/{n}"), rate(f"vllm/full/{f}")),
        "http_over_offline_vllm_verdict": _ratio(rate(f"http/verdict/{n}"), rate(f"vllm/verdict/{n}")),
        "ray_replicas_over_one_process_hf_verdict": _ratio(rate(f"hf/verdict/{args.ray_replicas} ray replicas"),
                                                           rate("hf/verdict/one process")),
        "auto_over_bfloat16_hf_verdict": _ratio(rate("hf/verdict/auto"), rate("hf/verdict/bfloat16")),
        "auto_over_float32_hf_verdict": _ratio(rate("hf/verdict/auto"), rate("hf/verdict/float32")),
    }
    ratios = {k: v for k, v in ratios.items() if v is not None}
    from judge.backends.dtype import cpu_flags

    bf16 = [flag for flag in ("avx512_bf16", "amx_bf16") if flag in cpu_flags()]
    report = {"source": source, "template": args.template, "model": args.model, "device": f"CPU ({os.cpu_count()} cores, "
              f"{platform.machine()}; {', '.join(bf16) or 'no native bf16'})", "full_max_tokens": args.full_max_tokens,
              "results": results, "ratios": ratios, **({"ray": ray_facts} if ray_facts else {}), **dtype_facts,
              "load_average": [round(x, 2) for x in os.getloadavg()], "date": time.strftime("%Y-%m-%d")}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"\n{'run':<28}{'pairs':>7}{'seconds':>10}{'items/s':>10}{'unparsed':>10}{'prefix hits':>13}")
    for key, r in results.items():
        print(f"{key:<28}{r['pairs']:>7}{r['seconds']:>10}{r['items_per_s']:>10}{r['parse_failures']:>10}"
              f"{r.get('prefix_cache_hit_rate', ''):>13}")
    for key, value in ratios.items():
        print(f"{key:<34}{value}")
    for key, value in {**ray_facts, **dtype_facts}.items():
        print(f"{key:<34}{value}")
    print(f"wrote {args.out}")


def _ratio(a, b):
    return round(a / b, 2) if a and b else None


if __name__ == "__main__":
    main()
