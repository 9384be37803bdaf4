"""`make demo`: the whole judgeforge pipeline, for real, on the embedded default (CPU, SmolLM2-135M).

Every stage runs through the `judgeforge` CLI:
  1. a teacher on loopback (vLLM serving SmolLM2 stands in for GPT-4) distills a slice of the PandaLM
     test pairs in both orders (`distill`); DEMO_TEACHER_URL / DEMO_TEACHER_MODEL / OPENAI_API_KEY
     switch to a real teacher (then with full critiques instead of verdicts only);
  2. `filter` drops the pairs whose verdict flips when the answers are swapped, and reports the
     teacher's position bias;
  3. `train` runs the smoke config (LoRA on SmolLM2) on the filtered data when the teacher left
     enough of it; the stand-in teacher is so position-biased that it does not, and then the smoke
     config trains on its shipped synthetic task, where learning is visible; `merge` folds the
     adapter into the base (runtime LoRA is 10-20x slower on CPU);
  4. `serve` starts the trained judge (vLLM plus the judge HTTP API);
  5. `score` judges held-out pairs through the server (`--offline`: also offline with vLLM, to show
     both give the same verdicts; a third engine start, so not by default);
  6. `eval` compares the base model, the trained judge and the teacher against the human labels
     (and, when trained on the synthetic task, on its held-out test).

Two vLLM engines in all (each takes 30-100 s to start on CPU): the base model's serves the teacher's
distillation and the base judge's scoring, the trained judge's serves all of its scoring. The
default sizes keep a first run on 2 CPU cores under 10 minutes. The run ends by printing the paths
of the eval reports (report.html, report.md beside it).

Stages reuse what earlier runs made (runs/demo/.done-*): a rerun is fast; `--fresh` starts over.
Every server started here is stopped on exit, Ctrl-C included.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PANDALM = ROOT.parent / "shared" / "data" / "pandalm" / "testset-v1.json"
MODEL = Path(os.environ.get("JUDGEFORGE_MODEL", ROOT / "models" / "SmolLM2-135M-Instruct"))
TEMPLATE = "pandalm"
SERVERS: list = []  # serve.engine.ChildServer, stopped on the way out


def say(text: str) -> None:
    print(f"\n=== {text}", flush=True)


def judgeforge(*args: str) -> None:
    print("$ judgeforge " + " ".join(str(a) for a in args), flush=True)
    subprocess.run([sys.executable, "-m", "judge.cli", *map(str, args)], check=True, cwd=ROOT)


def stage(run: Path, name: str, work) -> None:
    """Run `work` once; a marker records success so a rerun skips it. Each stage's wall time is
    printed with the machine's load: a slow demo says where its minutes went, and whether other
    processes shared the cores (vLLM's and torch's OpenMP threads slow down far more than in
    proportion when they do)."""
    marker = run / f".done-{name}"
    if marker.exists():
        print(f"(stage {name}: done in an earlier run, reused)")
        return
    started = time.monotonic()
    work()
    marker.touch()
    print(f"(stage {name}: {time.monotonic() - started:.0f} s; load average {os.getloadavg()[0]:.1f} on "
          f"{len(os.sched_getaffinity(0))} cores)", flush=True)


def start_server(*args: str, port: int, log: Path) -> str:
    """`judgeforge serve ...` as a child process, healthy before we go on."""
    from serve.engine import ChildServer
    from serve.errors import ServerStartError

    args = tuple(map(str, args))
    print(f"$ judgeforge serve {' '.join(args)} --port {port}   (log: {log})", flush=True)
    url, started = f"http://127.0.0.1:{port}", time.monotonic()
    server = ChildServer([sys.executable, "-m", "judge.cli", "serve", *args, "--port", str(port)], url + "/health",
                         log_path=log, name="judgeforge serve")
    SERVERS.append(server)
    server.start()
    try:
        server.wait_healthy()
    except ServerStartError as error:
        raise SystemExit(f"demo: {error}") from None
    print(f"server up in {time.monotonic() - started:.0f} s", flush=True)
    return url


def stop_servers() -> None:
    while SERVERS:
        SERVERS.pop().stop()


def prepare_data(run: Path, n_distill: int, n_heldout: int) -> tuple[Path, Path]:
    """Human-labelled pairs: a slice to distill and a disjoint held-out slice to judge."""
    from judge.core.jsonl import read_items, write_jsonl

    if PANDALM.exists():
        judgeforge("data", "convert", "--from", "pandalm", PANDALM, "--out", run / "pandalm.jsonl")
        items = read_items(run / "pandalm.jsonl")
        print(f"data: the PandaLM human-labelled test set, {len(items)} pairs ({PANDALM})")
    else:
        items = read_items(ROOT / "examples" / "pairs.jsonl")
        # a user's clone has no ../shared: say so, or the figures below look like PandaLM's
        print(f"data: the {len(items)} example pairs in examples/pairs.jsonl, NOT the PandaLM set ({PANDALM} is "
              f"absent). For the real run, get data/testset-v1.json from https://github.com/WeOpenML/PandaLM and "
              f"put it at that path.")
        n_distill, n_heldout = len(items) * 2 // 3, len(items) - len(items) * 2 // 3
    distill, heldout = split_pairs(items, n_distill, n_heldout)
    write_jsonl(run / "distill_pairs.jsonl", distill)
    write_jsonl(run / "heldout.jsonl", heldout)
    return run / "distill_pairs.jsonl", run / "heldout.jsonl"


def split_pairs(items: list, n_distill: int, n_heldout: int) -> tuple[list, list]:
    """About the first `n_distill` pairs to distill and the next `n_heldout` to hold out, whole
    questions at a time (a question's pairs go where its first pair falls), so no question is on
    both sides: a held-out score must not measure what the judge saw in training."""
    by_question: dict[str, list] = {}
    for item in items:
        by_question.setdefault(item.question.strip(), []).append(item)
    distill, heldout = [], []
    for pairs in by_question.values():
        if len(distill) < n_distill:
            distill += pairs
        elif len(heldout) < n_heldout:
            heldout += pairs
    return distill, heldout


def balanced_subset(path: Path, n: int, out: Path) -> Path:
    """The first n/2 items of `path` with each winner, in file order, written to `out`: the score of a
    judge that always answers "1" (or "2") stays 0.5, and chance against learning stays readable."""
    from judge.core.jsonl import read_items, write_jsonl

    if n < 2 or n % 2:
        raise SystemExit(f"demo: --synthetic-items must be an even number of 2 or more, got {n}")
    items = read_items(path)
    chosen = {w: [item for item in items if item.winner == w][:n // 2] for w in ("1", "2")}
    if min(map(len, chosen.values())) < n // 2:
        raise SystemExit(f"demo: {path} has fewer than {n // 2} items with each winner")
    keep = {id(item) for group in chosen.values() for item in group}
    write_jsonl(out, [item for item in items if id(item) in keep])
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", default=str(ROOT / "runs" / "demo"))
    # 64 pairs give a real teacher (DEMO_TEACHER_URL) enough swap-consistent rows to train on (>= MIN_TRAIN_ROWS);
    # the stand-in teacher keeps none whatever the number, so more would only cost time
    parser.add_argument("--distill-pairs", type=int, default=64)
    parser.add_argument("--heldout-pairs", type=int, default=50)
    parser.add_argument("--synthetic-items", type=int, default=50,
                        help="held-out synthetic test items judged (even: half with each winner, so a constant "
                             "verdict scores 0.5)")
    parser.add_argument("--steps", type=int, help="training steps (default: the smoke config's max_steps)")
    parser.add_argument("--offline", action="store_true",
                        help="also judge the held-out pairs offline with vLLM (a third engine start, ~1-1.5 min)")
    parser.add_argument("--fresh", action="store_true", help="start over (delete the run folder)")
    args = parser.parse_args()
    run = Path(args.run)
    if args.fresh and run.exists():
        shutil.rmtree(run)
    run.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
    if not (MODEL / "config.json").exists():
        raise SystemExit(f"demo: {MODEL} is missing; run `make model`")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    cores, load = len(os.sched_getaffinity(0)), os.getloadavg()[0]
    if load >= cores / 2:  # the figures in the README were measured with the cores to ourselves
        print(f"note: load average {load:.1f} on {cores} cores: while other processes keep the cores busy, every "
              f"stage takes longer (several times longer when they do so throughout)", flush=True)
    started = time.monotonic()
    try:
        summary = pipeline(run, args)
    finally:
        stop_servers()
    print(f"\nDemo finished in {(time.monotonic() - started) / 60:.1f} minutes.")
    print(summary)
    return 0


FAST_START = "--engine-arg=-O0"  # no torch.compile warm-up: ~40 s instead of ~100 s to start on CPU, ~6% slower
# No dtype is passed: every engine and the merge follow --dtype auto (judge/backends/dtype.py), bf16 only on CPUs
# that compute it natively (AVX512-BF16/AMX), float32 on AVX2-only ones where bf16 is 2.3x slower.
MIN_TRAIN_ROWS = 64
SYNTHETIC = ROOT / "examples" / "synthetic"


def pipeline(run: Path, args) -> str:
    real_teacher = os.environ.get("DEMO_TEACHER_URL")
    teacher_model = os.environ.get("DEMO_TEACHER_MODEL", MODEL.name if not real_teacher else "gpt-4o-mini")
    distill_items, heldout = prepare_data(run, args.distill_pairs, args.heldout_pairs)
    synthetic_test = balanced_subset(SYNTHETIC / "test.jsonl", args.synthetic_items, run / "synthetic_test.jsonl")

    @functools.cache  # started on first use only: a rerun whose stages are all done starts nothing
    def base_server() -> str:
        """vLLM serving the base SmolLM2 (judgeforge serve forwards /v1 to it): the stand-in teacher,
        and the base judge of the comparison."""
        return start_server("--model", MODEL, "--max-model-len", "4096", FAST_START, port=18761,
                            log=run / "base-server.log") + "/v1"

    def score_http(url: str, model: str, items: Path, name: str, out: str, mode: str = "verdict"):
        judgeforge("score", "--input", items, "--backend", "openai", "--base-url", url, "--model", model,
                   "--template", TEMPLATE, "--swap", "--mode", mode, "--name", name, "--out", run / out)

    say("1. distill: the teacher judges every pair in both orders")
    teacher_url = real_teacher or None

    def distill():
        extra = [] if real_teacher else ["--verdict-only"]  # SmolLM2 cannot keep PandaLM's format unaided
        judgeforge("distill", "--input", distill_items, "--mode", "pairwise", "--template", TEMPLATE,
                   "--teacher-model", teacher_model, "--teacher-base-url", teacher_url or base_server(),
                   "--concurrency", "16", "--out", run / "distill", "--no-progress", *extra)

    stage(run, "distill", distill)
    if real_teacher:  # (the stand-in teacher is the base model: its verdicts are the base judge's)
        stage(run, "score-teacher", lambda: score_http(teacher_url, teacher_model, heldout, f"teacher ({teacher_model})",
                                                       "pred_teacher.jsonl", "full"))
    base_name = "base SmolLM2-135M" + ("" if real_teacher else " (also the stand-in teacher)")
    stage(run, "score-base", lambda: score_http(base_server(), MODEL.name, heldout, base_name, "pred_base.jsonl"))
    stage(run, "score-base-synthetic", lambda: score_http(base_server(), MODEL.name, synthetic_test, "base SmolLM2-135M",
                                                          "synthetic_base.jsonl"))
    stop_servers()

    say("2. filter: drop swap-inconsistent verdicts, report the teacher's position bias")
    stage(run, "filter", lambda: judgeforge("filter", "--input", run / "distill" / "verdicts.jsonl",
                                            "--out", run / "data", "--val-fraction", "0.1"))

    say("3. train: LoRA on SmolLM2-135M with the smoke config (configs/train/smoke-cpu.yaml)")
    stats = json.loads((run / "data" / "filter_stats.json").read_text())
    on_distilled = stats["rows"]["train"] >= MIN_TRAIN_ROWS and stats["rows"]["val"] > 0
    if on_distilled:
        data = [f"train_file={run / 'data' / 'train.jsonl'}", f"val_file={run / 'data' / 'val.jsonl'}"]
        print(f"training on the {stats['rows']['train']} filtered teacher rows")
    else:
        data = []  # the smoke config's own data: the shipped synthetic format task
        print(f"the teacher kept {stats['kept_items']} swap-consistent pairs of {stats['items']} (consistency "
              f"{stats['teacher']['consistency']}): too few to train on, which is what the filter is for. The smoke "
              f"config trains on its shipped synthetic task instead (examples/synthetic: the better answer follows "
              f"the format the question asks for), so learning is visible below.")
    if args.steps:  # evaluated (and checkpointed) at the last step only, as the smoke config does
        data += [f"max_steps={args.steps}", f"eval_steps={args.steps}", f"save_steps={args.steps}"]
    adapter = run / "train" / "adapter"
    stage(run, "train", lambda: judgeforge(
        "train", "--config", "configs/train/smoke-cpu.yaml", "--set", f"output_dir={run / 'train'}",
        "--set", f"base_model={MODEL}", *[a for d in data for a in ("--set", d)]))
    stage(run, "merge", lambda: judgeforge("merge", "--model", MODEL, "--adapter", adapter, "--out", run / "merged"))

    say("4. serve: the trained judge behind the judge API (merged: runtime LoRA is 10-20x slower on CPU)")
    say("5. score: held-out pairs through the server" + (", and offline with vLLM" if args.offline else ""))

    @functools.cache
    def judge_server() -> str:
        return start_server("--model", run / "merged", "--template", TEMPLATE, "--max-model-len", "4096",
                            FAST_START, port=18762, log=run / "judge-server.log") + "/v1"

    def show_judge_api():
        from judge.client import JudgeClient
        from judge.core.jsonl import read_items

        item = read_items(heldout)[0]
        with JudgeClient(judge_server().removesuffix("/v1")) as client:
            verdict = client.pairwise(question=item.question, answer1=item.answer1, answer2=item.answer2, swap=True,
                                      mode="logprob")
        shown = {k: verdict.get(k) for k in ("judge", "template", "winner", "consistent", "probs", "logprobs")}
        print("POST /v1/judge/pairwise (swap, logprob) ->", json.dumps({k: v for k, v in shown.items() if v is not None}))

    stage(run, "score-trained", lambda: score_http(judge_server(), "merged", heldout, "trained judge (HTTP)",
                                                   "pred_trained.jsonl"))
    stage(run, "score-trained-synthetic", lambda: score_http(judge_server(), "merged", synthetic_test,
                                                             "trained judge (HTTP)", "synthetic_trained.jsonl"))
    stage(run, "judge-api", show_judge_api)
    stop_servers()
    if args.offline:
        stage(run, "score-offline", lambda: judgeforge(
            "score", "--input", heldout, "--backend", "vllm", "--model", run / "merged", "--template", TEMPLATE,
            "--swap", "--mode", "verdict", "--max-model-len", "4096", "--engine-arg", "compilation_config=0",
            "--name", "trained judge (offline vLLM)", "--out", run / "pred_trained_offline.jsonl"))

    say("6. eval: base vs trained judge vs teacher, against the human labels")
    preds = ["pred_trained.jsonl", "pred_base.jsonl", *(["pred_teacher.jsonl"] if real_teacher else []),
             *(["pred_trained_offline.jsonl"] if args.offline else [])]
    judgeforge("eval", *[a for p in preds for a in ("--pred", run / p)], "--gold", heldout, "--out", run / "eval")
    if not on_distilled:
        judgeforge("eval", "--pred", run / "synthetic_trained.jsonl", "--pred", run / "synthetic_base.jsonl",
                   "--gold", synthetic_test, "--out", run / "eval-synthetic")
    return closing_lines(run, real_teacher is not None, on_distilled)


def rate(value) -> str:
    """A share as the summary prints it (three decimals), "n/a" where the metrics hold none."""
    return "n/a" if value is None else f"{value:.3f}"


def closing_lines(run: Path, real_teacher: bool, on_distilled: bool) -> str:
    stats = json.loads((run / "data" / "filter_stats.json").read_text())
    teacher = stats.get("teacher") or {}
    lines = ["", "This is a plumbing demo: a 135M model on 2 CPU cores shows every stage working, not judge quality.",
             f"Teacher ({'your endpoint' if real_teacher else 'the base SmolLM2 standing in for GPT-4'}) on the distilled "
             f"pairs: consistency {rate(teacher.get('consistency'))}, prefers the answer shown first "
             f"{rate(teacher.get('prefer_first_rate'))}, second {rate(teacher.get('prefer_second_rate'))}; filter kept "
             f"{stats['kept_items']} of {stats['items']} pairs.",
             "", "The real run on a GPU (README 'Train'):",
             "  judgeforge train --config configs/train/judgelm-7b-lora.yaml --set train_file=DATA/train.jsonl --set val_file=DATA/val.jsonl",
             "  judgeforge train --config configs/train/judgelm-7b-qlora.yaml --set train_file=DATA/train.jsonl --set val_file=DATA/val.jsonl",
             ""]
    heldout = "held-out PandaLM pairs" if PANDALM.exists() else "held-out example pairs (not the PandaLM set)"
    evals = [(f"{heldout}, human labels", run / "eval")]
    if not on_distilled:
        evals.append(("synthetic format task (what the judge was trained on), held-out", run / "eval-synthetic"))
    for title, folder in evals:
        metrics = json.loads((folder / "metrics.json").read_text())
        lines.append(f"{title}:")
        for name, m in metrics["judges"].items():
            lo, hi = (m.get("ci95") or {}).get("accuracy") or (None, None)
            lines.append(f"  agreement (accuracy) {m['accuracy']:.3f} [95% CI {lo:.3f}-{hi:.3f}], consistency "
                         f"{rate(m.get('consistency'))}, F1 {m['f1']:.3f}: {name}")
    reports = [report_path(folder) for _, folder in reversed(evals)]
    pages = all(path.suffix == ".html" for path in reports)
    lines += ["", "Reports (open them in a browser; report.md beside each):" if pages else "Reports:",
              *(f"  {path}" for path in reports)]
    return "\n".join(lines)


def report_path(folder: Path) -> Path:
    """The eval's report.html, or its report.md where eval wrote no page (--no-html)."""
    return folder / "report.html" if (folder / "report.html").exists() else folder / "report.md"


if __name__ == "__main__":
    sys.exit(main())
