"""report.html: one self-contained page (nothing fetched) whose item browser counts what metrics.json
counts, checked on the data blob and, where Debian's chromium is installed, in the DOM a headless
browser renders (the filters driven through the URL hash the page reads)."""

import json
import re
import shutil
import subprocess

import pytest

from datafiles import shared_file
from judge.core.jsonl import write_jsonl
from judge.core.records import PairItem, Verdict
from judge.data.convert import convert
from judge.eval.evaluate import evaluate
from judge.eval.gold import load_gold
from judge.eval.predictions import load_predictions
from judge.eval.report_html import DISAGREES, FLIPS, MAX_REPLY, UNPARSED, browser_data

BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")
needs_browser = pytest.mark.skipif(BROWSER is None, reason="no chromium on PATH (make test installs Debian's "
                                                          "`chromium` where apt-get is available)")
ROW = re.compile(r'<tr class="item" data-k="\d+" data-id="([^"]*)"')


def _blob(html: str) -> dict:
    return json.loads(re.search(r'<script type="application/json" id="data">(.*?)</script>', html, re.S).group(1))


def _run(tmp_path, n=40, judges=("a", "b")):
    """n items judged by each judge in both orders: a few flips, wrong answers and unparsed verdicts."""
    items = [PairItem(id=f"q{k}", question=f"question {k}", answer1="x" * (k % 7 + 1), answer2="yyyy",
                      winner=("1", "2", "tie")[k % 3], category=("math", "code")[k % 2]) for k in range(n)]
    write_jsonl(tmp_path / "gold.jsonl", items)
    paths = []
    for j, name in enumerate(judges):
        verdicts = []
        for k, item in enumerate(items):
            ab = item.winner if (k + j) % 4 else "1"
            ba = "2" if k % 5 == j else ab
            for order, label in (("ab", ab), ("ba", ba)):
                failed = (k * 7 + j) % 11 == 0 and order == "ba"
                verdicts.append(Verdict(id=item.id, order=order, winner=None if failed else label,
                                        raw="??" if failed else f"verdict {label} " + "z" * (k * 150),
                                        parse_ok=not failed, judge=name))
        write_jsonl(tmp_path / f"{name}.jsonl", verdicts)
        paths.append(str(tmp_path / f"{name}.jsonl"))
    return items, paths


def test_the_filters_count_what_the_metrics_count(tmp_path):
    items, paths = _run(tmp_path)
    report = evaluate(paths, str(tmp_path / "gold.jsonl"), None, n_resamples=0)
    data = browser_data([load_predictions(p) for p in paths], load_gold(str(tmp_path / "gold.jsonl")),
                        unparsed="tie", threshold=0.0)
    assert len(data["items"]) == len(items) and data["judges"] == ["a", "b"]
    for j, name in enumerate(data["judges"]):
        m = report["judges"][name]
        flags = [row[6][j] for row in data["items"]]
        assert sum(bool(f & DISAGREES) for f in flags) == round((1 - m["accuracy"]) * m["n"])
        flips = round((m["prefer_first_rate"] + m["prefer_second_rate"]) * m["position_bias"]["n"])
        assert sum(bool(f & FLIPS) for f in flags) == flips > 0
        assert sum(bool(f & UNPARSED) for f in flags) == m["n_items_with_unparsed"] > 0


def test_the_page_is_self_contained_and_cuts_long_replies(tmp_path):
    items, paths = _run(tmp_path, n=30)
    rows = [json.loads(line) for line in open(paths[0])]
    rows[0]["raw"] = "</script><script>alert(1)</script>" + "w" * 5000
    write_jsonl(paths[0], rows)
    evaluate(paths, str(tmp_path / "gold.jsonl"), str(tmp_path / "e"), n_resamples=0)
    html = (tmp_path / "e" / "report.html").read_text()
    assert not re.search(r'(src|href)="(https?:)?//', html) and "<link" not in html and "<script src" not in html
    assert 'src="data:image/png;base64,' in html  # the plots are inside the page
    assert "<script>alert(1)" not in html
    blob = _blob(html)
    reply, length = blob["items"][0][5][0][0][3:5]
    assert reply.startswith("</script><script>alert(1)") and len(reply) == MAX_REPLY and length == 5000 + 34
    assert "<td class=\"judge-name\">a</td>" in html and "<td class=\"judge-name\">b</td>" in html
    assert "Swap protocol" in html and "the <code>ab</code> verdicts" in html and "is below" in html


def test_no_html_and_extra_sections(tmp_path):
    _, paths = _run(tmp_path, n=12, judges=("a",))
    evaluate(paths, str(tmp_path / "gold.jsonl"), str(tmp_path / "plain"), n_resamples=0, plots=False, html=False)
    assert not (tmp_path / "plain" / "report.html").exists() and (tmp_path / "plain" / "report.md").exists()
    from judge.eval.report_html import render_html

    report = {"mode": "pairwise", "gold": "g.jsonl", "n_gold": 1, "judge": "a", "unparsed_policy": "tie",
              "bootstrap_resamples": 0, "judgebench": {"overall": {"accuracy": 0.625, "n": 8}}}
    data = {"mode": "pairwise", "judges": ["a"], "categories": [], "items": [], "flags": {}}
    html = render_html(report, data, [])
    assert "<h2>JudgeBench</h2>" in html and "0.6250" in html


def _dom(page, fragment: str = "") -> str:
    """The DOM after the page's scripts ran, as headless Chromium renders it from disk."""
    out = subprocess.run([BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000",
                          "--dump-dom", f"file://{page}{fragment}"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def _count(dom: str) -> int:
    return int(re.search(r'<span id="count">(\d+)</span>', dom).group(1))


@needs_browser
def test_in_chromium_rows_judges_and_filters(tmp_path):
    items, paths = _run(tmp_path)
    evaluate(paths, str(tmp_path / "gold.jsonl"), str(tmp_path / "e"), n_resamples=0, plots=False)
    page = tmp_path / "e" / "report.html"
    dom = _dom(page, "#per=all")
    assert '<th colspan="2" class="judge-head">a</th>' in dom and '<th colspan="2" class="judge-head">b</th>' in dom
    assert len(ROW.findall(dom)) == _count(dom) == len(items)
    # flips of judge b, computed from its prediction file: both orders parsed and different
    by = {}
    for line in open(paths[1]):
        v = json.loads(line)
        by.setdefault(v["id"], {})[v["order"]] = v.get("winner")
    flips = {i for i, o in by.items() if None not in o.values() and o["ab"] != o["ba"]}
    # one order unparsed counts as a tie (--unparsed tie): a flip unless the other order says tie
    flips |= {i for i, o in by.items() if list(o.values()).count(None) == 1 and "tie" not in o.values()}
    dom = _dom(page, "#filter=flips&judge=b&per=all")
    assert _count(dom) == len(flips) > 0 and set(ROW.findall(dom)) == flips
    dom = _dom(page, "#q=question%2017&per=all")
    assert ROW.findall(dom) == ["q17"]


@needs_browser
def test_in_chromium_pandalm_two_judges(tmp_path):
    gold = tmp_path / "gold.jsonl"
    convert("pandalm", str(shared_file("pandalm", "testset-v1.json")), str(gold))
    paths = []
    for name in ("gpt-3.5-turbo", "pandalm-7b"):
        paths.append(str(tmp_path / f"{name}.jsonl"))
        convert("pandalm-verdicts", str(shared_file("pandalm", f"{name}-testset-v1.json")), paths[-1])
    evaluate(paths, str(gold), str(tmp_path / "e"), n_resamples=0, plots=False)
    page = tmp_path / "e" / "report.html"
    dom = _dom(page, "#per=all")
    assert "gpt-3.5-turbo" in dom and "pandalm-7b" in dom
    assert len(ROW.findall(dom)) == _count(dom) == 999
    labels = {r["id"]: r["winner"] for r in map(json.loads, open(gold))}
    wrong = {v["id"] for v in map(json.loads, open(paths[1])) if (v.get("winner") or "tie") != labels[v["id"]]}
    dom = _dom(page, "#filter=disagrees&judge=pandalm-7b&per=all")
    assert _count(dom) == len(wrong) and set(ROW.findall(dom)) == wrong
