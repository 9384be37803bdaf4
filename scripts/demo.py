"""`make demo`: the whole judgeforge pipeline, for real, on the embedded default (CPU, SmolLM2-135M).

Every stage runs through the `judgeforge` CLI:
  1. a teacher on loopback (vLLM serving SmolLM2 stands in for GPT-4) distills a slice of the PandaLM
     test pairs in both orders (`distill`); DEMO_TEACHER_URL / DEMO_TEACHER_MODEL / OPENAI_API_KEY
     switch to a real teacher (then with full critiques instead of verdicts only);
  2. `filter` drops the pairs whose verdict flips when the answers are swapped, and reports the
     teacher's position bias;
  3. `train` runs the smoke config (LoRA on SmolLM2) on the filtered data;
  4. `serve` starts the trained judge (vLLM with the LoRA adapter, plus the judge HTTP API);
  5. `score` judges held-out pairs through the server (base model and trained adapter), and offline
     with vLLM;
  6. `eval` compares the base model, the trained judge and the teacher against the human labels.

Stages reuse what earlier runs made (runs/demo/.done-*): a rerun is fast; `--fresh` starts over.
Every server started here is stopped on exit, Ctrl-C included.
"""

from __future__ import annotations

import argparse
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
SERVERS: list[subprocess.Popen] = []


def say(text: str) -> None:
    print(f"\n=== {text}", flush=True)


def judgeforge(*args: str) -> None:
    print("$ judgeforge " + " ".join(str(a) for a in args), flush=True)
    subprocess.run([sys.executable, "-m", "judge.cli", *map(str, args)], check=True, cwd=ROOT)


def stage(run: Path, name: str, work) -> None:
    """Run `work` once; a marker records success so a rerun skips it."""
    marker = run / f".done-{name}"
    if marker.exists():
        print(f"(stage {name}: done in an earlier run, reused)")
        return
    work()
    marker.touch()


def start_server(*args: str, port: int, log: Path) -> str:
    """`judgeforge serve ...` in its own process group, healthy before we go on."""
    import httpx

    print(f"$ judgeforge serve {' '.join(args)} --port {port}   (log: {log})", flush=True)
    proc = subprocess.Popen([sys.executable, "-m", "judge.cli", "serve", *args, "--port", str(port)], cwd=ROOT,
                            stdout=open(log, "w"), stderr=subprocess.STDOUT, start_new_session=True)
    SERVERS.append(proc)
    url, started = f"http://127.0.0.1:{port}", time.monotonic()
    while time.monotonic() - started < 900:
        if proc.poll() is not None:
            raise SystemExit(f"demo: the server exited early; the end of {log}:\n" + "".join(open(log).readlines()[-20:]))
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                print(f"server up in {time.monotonic() - started:.0f} s", flush=True)
                return url
        except httpx.HTTPError:
            pass
        time.sleep(2)
    raise SystemExit(f"demo: the server did not become healthy in 15 minutes; see {log}")


def stop_servers() -> None:
    while SERVERS:
        proc = SERVERS.pop()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def prepare_data(run: Path, n_distill: int, n_heldout: int) -> tuple[Path, Path]:
    """Human-labelled pairs: a slice to distill and a disjoint held-out slice to judge."""
    from judge.jsonl import read_items, write_jsonl

    if PANDALM.exists():
        judgeforge("data", "convert", "--from", "pandalm", PANDALM, "--out", run / "pandalm.jsonl")
        items = read_items(run / "pandalm.jsonl")
    else:
        print(f"({PANDALM} is absent: using the pairs shipped in examples/pairs.jsonl)")
        items = read_items(ROOT / "examples" / "pairs.jsonl")
        n_distill, n_heldout = len(items) * 2 // 3, len(items) - len(items) * 2 // 3
    write_jsonl(run / "distill_pairs.jsonl", items[:n_distill])
    write_jsonl(run / "heldout.jsonl", items[n_distill:n_distill + n_heldout])
    return run / "distill_pairs.jsonl", run / "heldout.jsonl"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", default=str(ROOT / "runs" / "demo"))
    parser.add_argument("--distill-pairs", type=int, default=240)
    parser.add_argument("--heldout-pairs", type=int, default=120)
    parser.add_argument("--steps", type=int, default=40, help="training steps")
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
    started = time.monotonic()
    try:
        summary = pipeline(run, args)
    finally:
        stop_servers()
    print(f"\nDemo finished in {(time.monotonic() - started) / 60:.1f} minutes.")
    print(summary)
    return 0


def pipeline(run: Path, args) -> str:
    real_teacher = os.environ.get("DEMO_TEACHER_URL")
    teacher_model = os.environ.get("DEMO_TEACHER_MODEL", MODEL.name if not real_teacher else "gpt-4o-mini")
    distill_items, heldout = prepare_data(run, args.distill_pairs, args.heldout_pairs)

    say("1. distill: the teacher judges every pair in both orders")
    teacher_url = real_teacher

    def teacher() -> str:
        nonlocal teacher_url
        if not teacher_url:
            # The stand-in teacher is plain vLLM behind judgeforge's server (its /v1 forwards to vLLM).
            teacher_url = start_server("--base", MODEL, "--max-model-len", "4096", port=18761, log=run / "teacher.log") + "/v1"
        return teacher_url

    def distill():
        extra = [] if real_teacher else ["--verdict-only"]  # SmolLM2 cannot keep PandaLM's format unaided
        judgeforge("distill", "--input", distill_items, "--mode", "pairwise", "--template", TEMPLATE,
                   "--teacher-model", teacher_model, "--teacher-base-url", teacher(), "--concurrency", "16",
                   "--out", run / "distill", "--no-progress", *extra)

    def teacher_heldout():
        judgeforge("score", "--input", heldout, "--backend", "openai", "--base-url", teacher(), "--model", teacher_model,
                   "--template", TEMPLATE, "--swap", "--mode", "verdict" if not real_teacher else "full",
                   "--name", f"teacher ({teacher_model})", "--out", run / "pred_teacher.jsonl")

    stage(run, "distill", distill)
    stage(run, "teacher-heldout", teacher_heldout)
    stop_servers()

    say("2. filter: drop swap-inconsistent verdicts, report the teacher's position bias")
    stage(run, "filter", lambda: judgeforge("filter", "--verdicts", run / "distill" / "verdicts.jsonl",
                                            "--out", run / "data", "--val-fraction", "0.1"))

    say("3. train: LoRA on SmolLM2-135M (configs/train/smoke-cpu.yaml) on the filtered data")
    adapter = run / "train" / "adapter"
    stage(run, "train", lambda: judgeforge(
        "train", "--config", "configs/train/smoke-cpu.yaml", "--set", f"output_dir={run / 'train'}",
        "--set", f"train_file={run / 'data' / 'train.jsonl'}", "--set", f"val_file={run / 'data' / 'val.jsonl'}",
        "--set", f"template={TEMPLATE}@1", "--set", f"max_steps={args.steps}", "--set", f"base_model={MODEL}"))

    say("4. serve: the trained judge (vLLM + LoRA adapter) behind the judge API")
    say("5. score: held-out pairs through the server (base and trained), and offline with vLLM")

    def judge_server() -> str:
        return start_server("--base", MODEL, "--adapter", f"trained={adapter}", "--max-model-len", "4096",
                            port=18762, log=run / "judge.log") + "/v1"

    url = None

    def score_http(model: str, name: str, out: str):
        nonlocal url
        url = url or judge_server()
        judgeforge("score", "--input", heldout, "--backend", "openai", "--base-url", url, "--model", model,
                   "--template", TEMPLATE, "--swap", "--mode", "verdict", "--name", name, "--out", run / out)
        # one request through the structured judge API too, to show it
        from judge.client import JudgeClient
        from judge.jsonl import read_items

        item = read_items(heldout)[0]
        verdict = JudgeClient(url.removesuffix("/v1")).pairwise(question=item.question, answer1=item.answer1,
                                                                answer2=item.answer2, swap=True, mode="verdict",
                                                                judge=model)
        print("POST /v1/judge/pairwise ->", json.dumps({k: verdict.get(k) for k in ("judge", "winner", "consistent", "template")}))

    stage(run, "score-base", lambda: score_http(MODEL.name, "base SmolLM2-135M", "pred_base.jsonl"))
    stage(run, "score-trained", lambda: score_http("trained", "trained judge (HTTP)", "pred_trained.jsonl"))
    stop_servers()
    stage(run, "score-offline", lambda: judgeforge(
        "score", "--input", heldout, "--backend", "vllm", "--model", MODEL, "--adapter", adapter, "--swap",
        "--mode", "verdict", "--max-model-len", "4096", "--name", "trained judge (offline vLLM)",
        "--out", run / "pred_trained_offline.jsonl"))

    say("6. eval: base vs trained judge vs teacher, against the human labels")
    judgeforge("eval", "--pred", run / "pred_trained.jsonl", "--pred", run / "pred_base.jsonl",
               "--pred", run / "pred_teacher.jsonl", "--pred", run / "pred_trained_offline.jsonl",
               "--gold", heldout, "--out", run / "eval")
    return closing_lines(run, real_teacher is not None)


def closing_lines(run: Path, real_teacher: bool) -> str:
    metrics = json.loads((run / "eval" / "metrics.json").read_text())
    filter_stats = json.loads((run / "data" / "filter_stats.json").read_text())
    lines = ["", "This is a plumbing demo: a 135M model judges near chance; it shows every stage working, not judge quality."]
    if not real_teacher:
        lines.append("The stand-in teacher is the base SmolLM2 itself, so 'teacher' and 'base' agree by construction.")
    teacher = filter_stats.get("teacher") or {}
    lines.append(f"Teacher on the distilled pairs: consistency {teacher.get('consistency')}, prefers the first answer "
                 f"{teacher.get('prefer_first_rate')}, the second {teacher.get('prefer_second_rate')}; filter kept "
                 f"{filter_stats['kept_items']} of {filter_stats['items']} pairs ({filter_stats['rows']['train']} "
                 f"training rows).")
    lines += ["", "For the real run on a GPU (7B judge, see README 'Train'):",
              "  judgeforge train --config configs/train/judgelm-7b-lora.yaml --set train_file=DATA/train.jsonl --set val_file=DATA/val.jsonl",
              "  judgeforge train --config configs/train/judgelm-7b-qlora.yaml ...   # one 24 GB GPU",
              "", f"Report: {run / 'eval' / 'report.md'}"]
    for name, m in metrics["judges"].items():
        ci = (m.get("ci95") or {}).get("accuracy") or [None, None]
        lines.append(f"agreement (accuracy) with human labels, {name}: {m['accuracy']:.4f} "
                     f"[{ci[0]}, {ci[1]}], consistency {m.get('consistency')}, F1 {m['f1']:.4f}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
