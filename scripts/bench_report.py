"""Benchmark report.html on a large synthetic run: its size and how long Chromium takes to open it.

    .venv/bin/python scripts/bench_report.py [--items 10000] [--judges 3] [--repeats 3] [--screenshot]

Writes a synthetic pairwise run (items with realistic text lengths, each judge in both orders, a few
unparsed verdicts and a few very long replies that the page cuts) and runs `evaluate` on it, with and
without the page, so the page's share of eval's time shows as a ratio. Then opens report.html in
headless Chromium (`--dump-dom`, no virtual time) `--repeats` times and reports, side by side with a
one-line page opened the same way: the browser's wall time, the difference (what the report adds to
a bare page), and the time the page itself measured from navigation start to its first rendered
rows (`data-rendered-ms`, performance.now()), also with a filter and with a search in the URL.
`--screenshot`: also the PandaLM report (two judges, from ../shared/data/pandalm) as
bench/results/report_pandalm.png. Writes bench/results/report.json with the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from judge.core.jsonl import write_jsonl  # noqa: E402
from judge.core.records import PairItem, Verdict  # noqa: E402
from judge.eval.evaluate import evaluate  # noqa: E402
from judge.eval.report_html import DISAGREES  # noqa: E402

WORDS = ("the judge answer question model reason because first second better worse clear correct detail "
         "example step result answer explains shows").split()


def _text(rng: random.Random, chars: int) -> str:
    words, size = [], 0
    while size < chars:
        words.append(rng.choice(WORDS))
        size += len(words[-1]) + 1
    return " ".join(words)


def synthetic_run(folder: Path, n_items: int, n_judges: int, seed: int = 0) -> tuple[Path, list[Path]]:
    """gold.jsonl and one predictions file per judge (both orders). Lengths: question ~300 characters,
    answers ~900, replies ~400; 1% of replies 20,000 (cut by the page); 2% of verdicts unparsed."""
    rng = random.Random(seed)
    items = [PairItem(id=f"item-{k:05d}", question=_text(rng, rng.randint(100, 500)),
                      answer1=_text(rng, rng.randint(300, 1500)), answer2=_text(rng, rng.randint(300, 1500)),
                      winner=rng.choice(["1", "2", "tie"]), category=f"category-{k % 12}") for k in range(n_items)]
    write_jsonl(folder / "gold.jsonl", items)
    paths = []
    for j in range(n_judges):
        name, verdicts = f"judge-{j + 1}", []
        for item in items:
            for order in ("ab", "ba"):
                winner = item.winner if rng.random() < 0.7 else rng.choice(["1", "2", "tie"])
                ok = rng.random() > 0.02
                reply = _text(rng, 20000 if rng.random() < 0.01 else rng.randint(150, 650))
                verdicts.append(Verdict(id=item.id, order=order, winner=winner if ok else None,
                                        raw=(f"{winner}\n{reply}" if ok else reply), parse_ok=ok, judge=name))
        paths.append(folder / f"{name}.jsonl")
        write_jsonl(paths[-1], verdicts)
    return folder / "gold.jsonl", paths


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        sys.exit("no chromium on PATH: apt-get install -y chromium (scripts/ensure_chromium.sh)")
    return found


def open_page(browser: str, url: str) -> tuple[float, int | None]:
    """Chromium's wall time to load `url` and dump its DOM, and the page's own rendered time (ms)."""
    start = time.perf_counter()
    out = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", url],
                         capture_output=True, text=True, timeout=300)
    wall = time.perf_counter() - start
    if out.returncode:
        sys.exit(f"chromium failed: {out.stderr[-2000:]}")
    found = re.search(r'data-rendered-ms="(\d+)"', out.stdout)
    return wall, int(found.group(1)) if found else None


def screenshot(browser: str, out: Path, work: Path) -> dict:
    """The PandaLM report with two judges (GPT-3.5 and PandaLM-7B verdict files) as a PNG."""
    from judge.data.convert import convert

    data = ROOT.parent / "shared" / "data" / "pandalm"
    if not (data / "testset-v1.json").exists():
        sys.exit(f"{data} absent: --screenshot needs the PandaLM test set and its verdict files")
    convert("pandalm", str(data / "testset-v1.json"), str(work / "pandalm-gold.jsonl"))
    preds = []
    for name in ("gpt-3.5-turbo", "pandalm-7b"):
        preds.append(str(work / f"{name}.jsonl"))
        convert("pandalm-verdicts", str(data / f"{name}-testset-v1.json"), preds[-1])
    evaluate(preds, str(work / "pandalm-gold.jsonl"), str(work / "pandalm"), n_resamples=1000)
    page = work / "pandalm" / "report.html"
    blob = json.loads(re.search(r'<script type="application/json" id="data">(.*?)</script>', page.read_text(),
                                re.S).group(1))
    judge = blob["judges"].index("pandalm-7b")
    first_wrong = next(row[0] for row in blob["items"] if row[6][judge] & DISAGREES)  # shown opened
    raw = work / "shot.png"
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    "--virtual-time-budget=5000", "--window-size=1400,2100", f"--screenshot={raw}",
                    f"file://{page}#filter=disagrees&judge=pandalm-7b&per=10&open={first_wrong}"],
                   capture_output=True, timeout=300, check=True)
    from PIL import Image  # matplotlib's dependency: a palette PNG keeps the picture small

    Image.open(raw).convert("RGB").quantize(colors=64).save(out, optimize=True)
    return {"file": str(out.relative_to(ROOT)), "bytes": out.stat().st_size, "page_bytes": page.stat().st_size}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=10000)
    parser.add_argument("--judges", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--screenshot", action="store_true")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "report.json"))
    args = parser.parse_args()
    browser = chromium()
    version = subprocess.run([browser, "--version"], capture_output=True, text=True).stdout.strip().splitlines()[-1]
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        gold, preds = synthetic_run(work, args.items, args.judges)
        timings = {}
        evaluate([str(p) for p in preds], str(gold), str(work / "warm-up"), n_resamples=0, plots=True, html=False)
        for html in (False, True):  # after a warm-up run, so neither pays the imports
            start = time.perf_counter()
            evaluate([str(p) for p in preds], str(gold), str(work / ("with" if html else "without")),
                     n_resamples=0, plots=True, html=html)
            timings["eval_with_html_s" if html else "eval_without_html_s"] = round(time.perf_counter() - start, 2)
        page = work / "with" / "report.html"
        bare = work / "bare.html"
        bare.write_text("<!DOCTYPE html><title>bare</title><p>bare page</p>")
        judge = "judge-1"
        urls = {"bare page": f"file://{bare}", "report.html": f"file://{page}",
                "report.html, filtered": f"file://{page}#filter=disagrees,flips&judge={judge}",
                "report.html, searched": f"file://{page}#q=item-09999"}
        runs = {}
        for name, url in urls.items():
            walls, rendered = [], []
            for _ in range(args.repeats):
                wall, ms = open_page(browser, url)
                walls.append(wall)
                rendered.append(ms)
            runs[name] = {"wall_s_median": round(statistics.median(walls), 3), "wall_s": [round(w, 3) for w in walls],
                          "rendered_ms_median": (None if None in rendered else statistics.median(rendered)),
                          "rendered_ms": rendered}
        shot = screenshot(browser, ROOT / "bench" / "results" / "report_pandalm.png", work) if args.screenshot else None
        size = page.stat().st_size
    bare_wall = runs["bare page"]["wall_s_median"]
    for name, r in runs.items():
        r["over_bare_page_s"] = round(r["wall_s_median"] - bare_wall, 3)
    result = {
        "what": f"report.html for {args.items} pairwise items x {args.judges} judges, both orders "
                f"({args.items * args.judges * 2} verdicts), synthetic",
        "report_html_bytes": size, "report_html_mb": round(size / 1e6, 1),
        "open": runs, "eval": {**timings, "html_over_without": round(timings["eval_with_html_s"]
                                                                     / timings["eval_without_html_s"], 2)},
        "goal": {"open_s_under": 2.0, "size_mb_under": 50},
        "browser": version, **({"screenshot": shot} if shot else {}),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "load_average_1m_before": round(load_before[0], 2),
                    "load_average_1m_after": round(os.getloadavg()[0], 2)},
        "date": time.strftime("%Y-%m-%d"),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"report.html: {result['report_html_mb']} MB ({args.items} items x {args.judges} judges, both orders)")
    print(f"{'page':<26}{'wall s':>9}{'over bare':>11}{'rendered ms':>13}")
    for name, r in runs.items():
        print(f"{name:<26}{r['wall_s_median']:>9}{r['over_bare_page_s']:>11}{str(r['rendered_ms_median']):>13}")
    print(f"eval without / with report.html: {timings['eval_without_html_s']} s / {timings['eval_with_html_s']} s "
          f"(ratio {result['eval']['html_over_without']})")
    if shot:
        print(f"screenshot: {shot['file']} ({shot['bytes']} bytes)")
    print(f"load average (1 min) before/after: {result['machine']['load_average_1m_before']} / "
          f"{result['machine']['load_average_1m_after']}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
