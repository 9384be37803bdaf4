"""scripts/judge_card.py end to end on the shared benchmarks with a fake judge (no model): the items
it picks, the published judges on the same items, and the card it writes."""

import json
import sys

from datafiles import shared_file
from judge.backends.base import FakeBackend
from script_module import load_script


def test_card_for_a_judge_that_always_picks_the_first_answer(tmp_path, monkeypatch):
    shared_file("judgebench", "README.md"), shared_file("evalbiasbench", "biasbench.json")
    script = load_script("judge_card")
    monkeypatch.setattr(script, "make_backend", lambda config: FakeBackend(lambda request: "1", name=config.name))
    result = tmp_path / "card.json"
    monkeypatch.setattr(sys, "argv", ["judge_card.py", "--limit", "2", "--bootstrap", "20", "--out", str(tmp_path / "o"),
                                      "--result", str(result)])
    script.main()
    report = json.loads(result.read_text())
    card = report["card"]
    assert card["judge"] == "SmolLM2-135M base"
    assert [b["benchmark"] for b in card["benchmarks"]] == ["judgebench", "judgebench", "evalbiasbench"]
    assert report["items"] == {"judgebench-gpt-4o": 8, "judgebench-claude-3.5": 8, "evalbiasbench": 12}
    gpt4o = card["benchmarks"][0]["judges"]
    assert [j["judge"] for j in gpt4o] == ["SmolLM2-135M base", "Ray2333/GRM-Gemma-2B-rewardmodel-ft"]
    assert gpt4o[0]["numbers"]["judgebench overall"]["value"] == 0.0  # first shown always wins: +1 -1 on every pair
    bias = card["benchmarks"][2]
    assert bias["judges"][0]["numbers"]["fell for the bias"]["value"] == 0.5
    assert all("followed the position" in line for line in bias["bias_lines"])
