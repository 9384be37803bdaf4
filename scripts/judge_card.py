"""How good is my judge? Score SmolLM2 (the base model, and a trained adapter when given) on JudgeBench
and EvalBiasBench in verdict mode, both orders, and print its judge card beside the published judges.

    flock /tmp/jf-heavy.lock .venv/bin/python scripts/judge_card.py [--limit 4] [--adapter runs/smoke-cpu/adapter]

For each benchmark the first `--limit` items of every category (JudgeBench: knowledge, reasoning,
math, coding; EvalBiasBench: each bias type, positions balanced with `--seed`) are judged by the
transformers backend on CPU. The published judges shipped with JudgeBench (GRM-Gemma-2B on the
GPT-4o pairs, Claude-3-haiku prompted as arena-hard on the Claude-3.5 pairs) are evaluated on the
same items, so every number on the card compares like with like; their figures on the full sets
are in the eval folders too. It is the judgeforge path a user runs: `data convert`, `score --mode
verdict --swap`, `eval --protocol ... --card --card-include ...`.

Writes OUT/ (default runs/judge-card: items, predictions, one eval folder per benchmark, the last one holding the whole card)
and bench/results/judge_card.json (the card, timings, machine and load). Needs ../shared/data.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from judge.core.jsonl import read_json, write_json, write_jsonl  # noqa: E402
from judge.data.convert import convert_records  # noqa: E402
from judge.eval.evaluate import evaluate  # noqa: E402
from judge.scoring.score import ScoreConfig, make_backend, score  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
JUDGEBENCH = {  # set -> (pairs file, the published judge's file)
    "judgebench-gpt-4o": ("pairs-gpt-4o.jsonl", "judged-gpt-4o-pairs-by-reward_model-GRM-Gemma-2B.jsonl"),
    "judgebench-claude-3.5": ("pairs-claude-3.5-sonnet.jsonl",
                              "judged-claude-3.5-sonnet-pairs-by-arena_hard-claude-3-haiku.jsonl"),
}


def first_per_category(items: list, k: int) -> list:
    """The first k items of each category, in file order (no choosing)."""
    taken: dict = defaultdict(int)
    out = []
    for item in items:
        if taken[item.category] < k:
            taken[item.category] += 1
            out.append(item)
    return out


def benchmarks(out: Path, limit: int, seed: int) -> list[dict]:
    """Write each benchmark's item subset (and the published judges' verdicts on it)."""
    runs = []
    for name, (pairs, judged) in JUDGEBENCH.items():
        items = first_per_category(convert_records("judgebench", str(DATA / "judgebench" / pairs)), limit)
        ids = {i.id for i in items}
        published = [v for v in convert_records("judgebench-judgments", str(DATA / "judgebench" / judged)) if v.id in ids]
        write_jsonl(out / f"{name}-items.jsonl", items)
        write_jsonl(out / f"{name}-published.jsonl", published)
        runs.append({"name": name, "protocol": "judgebench", "items": out / f"{name}-items.jsonl",
                     "published": [out / f"{name}-published.jsonl"]})
    # the first `limit` items of each bias type, then imported: positions balanced within this subset
    subset = {bias: rows[:limit] for bias, rows in read_json(DATA / "evalbiasbench" / "biasbench.json").items()}
    write_json(out / "biasbench-subset.json", subset)
    write_jsonl(out / "evalbiasbench-items.jsonl", convert_records("evalbiasbench", str(out / "biasbench-subset.json"),
                                                                   seed))
    runs.append({"name": "evalbiasbench", "protocol": "evalbiasbench", "items": out / "evalbiasbench-items.jsonl",
                 "published": []})
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=os.environ.get("JUDGEFORGE_MODEL", str(ROOT / "models" / "SmolLM2-135M-Instruct")))
    parser.add_argument("--adapter", help="a trained adapter (e.g. the smoke run's runs/smoke-cpu/adapter)")
    parser.add_argument("--template", default="pandalm", help="the base model's template (an adapter uses its own)")
    parser.add_argument("--limit", type=int, default=4, help="items per category / bias type")
    parser.add_argument("--seed", type=int, default=0, help="EvalBiasBench's answer positions")
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--out", default=str(ROOT / "runs" / "judge-card"), help="work folder (items, predictions, evals)")
    parser.add_argument("--result", default=str(ROOT / "bench" / "results" / "judge_card.json"))
    args = parser.parse_args()
    if not (DATA / "judgebench").exists() or not (DATA / "evalbiasbench").exists():
        sys.exit(f"needs {DATA}/judgebench and {DATA}/evalbiasbench (see their README files)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start, load_before = time.perf_counter(), os.getloadavg()[0]
    runs = benchmarks(out, args.limit, args.seed)
    judges = [("base", None)] + ([("adapter", args.adapter)] if args.adapter else [])
    timings: dict = {}
    for label, adapter in judges:
        config = ScoreConfig(input="", out="", backend="hf", model=args.model, adapter=adapter, swap=True,
                             mode="verdict", dtype="float32", name=f"SmolLM2-135M {label}",
                             template=None if adapter else args.template)
        backend = make_backend(config)
        for run in runs:
            pred = out / f"{run['name']}-{label}.jsonl"
            pred.unlink(missing_ok=True)  # this script's own output of an earlier run: judge again
            config.input, config.out = str(run["items"]), str(pred)
            counts = score(config, backend, progress=False)
            timings[f"{label}/{run['name']}"] = {k: counts[k] for k in ("verdicts", "parse_failures", "seconds",
                                                                         "prompt_tokens")}
            run.setdefault("preds", []).append(pred)
    earlier: list[str] = []
    for run in runs:  # the card's judge first: the adapter when there is one
        folder = out / f"eval-{run['name']}"
        report = evaluate([str(p) for p in run["preds"][::-1] + run["published"]], str(run["items"]), str(folder),
                          protocol=run["protocol"], card=True, card_include=earlier, n_resamples=args.bootstrap,
                          plots=False)
        earlier = [str(folder)]
    card = report["card"]
    seconds = round(time.perf_counter() - start, 1)
    result = {"model": Path(args.model).name, "adapter": args.adapter, "template": args.template,
              "limit_per_category": args.limit, "seed": args.seed,
              "items": {r["name"]: len(r["items"].read_text().splitlines()) for r in runs},
              "backend": "hf (transformers), float32, verdict mode, both orders", "seconds_total": seconds,
              "score_timings": timings, "card": card, "card_report": str(folder / "report.md"),
              "date": time.strftime("%Y-%m-%d"),
              "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "processor": platform.machine(),
                          "load_average_1m_before": round(load_before, 2),
                          "load_average_1m_after": round(os.getloadavg()[0], 2)},
              "date": time.strftime("%Y-%m-%d")}
    write_json(args.result, result)
    text = (folder / "report.md").read_text()
    print(text[text.index("## Judge card"):text.index("## Details")] if "## Details" in text else text)
    scored = ", ".join(f"{k} {v['seconds']:.0f} s" for k, v in timings.items())
    print(f"{seconds} s in all (scoring: {scored}); card: {folder / 'report.md'}; {args.result}")


if __name__ == "__main__":
    main()
