import json
from collections import Counter

import pytest

from datafiles import shared_file
from judge.core.errors import InputError
from judge.data.convert import convert, convert_records


def write(tmp_path, name, obj):
    path = tmp_path / name
    path.write_text(json.dumps(obj) if name.endswith(".json") else "\n".join(json.dumps(r) for r in obj) + "\n")
    return str(path)


def pair(pair_id, source, label="A>B", **extra):
    return {"pair_id": pair_id, "original_id": 7, "source": source, "question": "Q", "response_model": "gpt-4o",
            "response_A": "a", "response_B": "b", "label": label, **extra}


def game(decision, model="haiku", scores=None):
    judgment = {"judge_model": model, "prompt": "long prompt", "response": f"reply {decision}"}
    if scores:
        judgment["scores"] = scores
    return {"judgment": judgment, "decision": decision}


def test_judgebench_pairs_categories_and_labels(tmp_path):
    path = write(tmp_path, "pairs.jsonl", [pair("p1", "mmlu-pro-law"), pair("p2", "livebench-reasoning", "B>A"),
                                           pair("p3", "livebench-math"), pair("p4", "livecodebench")])
    items = convert_records("judgebench", path)
    assert [(i.id, i.category, i.winner) for i in items] == [
        ("p1", "knowledge", "1"), ("p2", "reasoning", "2"), ("p3", "math", "1"), ("p4", "coding", "1")]
    assert items[0].meta == {"source": "mmlu-pro-law", "pair_id": "p1", "original_id": 7, "benchmark": "judgebench"}
    assert (items[0].answer1, items[0].answer2) == ("a", "b")


@pytest.mark.parametrize("row, message", [
    (pair("p", "mmlu-pro-law", "A=B"), "field 'label'"),
    (pair("p", "arena-hard"), "field 'source'"),
])
def test_judgebench_pairs_refuse_what_does_not_fit(tmp_path, row, message):
    path = write(tmp_path, "pairs.jsonl", [pair("ok", "livecodebench"), row])
    with pytest.raises(InputError, match=f"pairs.jsonl:2: {message}"):
        convert_records("judgebench", path)


def test_judgebench_judgments_map_game_two_back(tmp_path):
    path = write(tmp_path, "judged.jsonl", [
        pair("p1", "livebench-math", judge_name="arena_hard", judgments=[game("A>B"), game("A>B")]),
        pair("p2", "livebench-math", judge_name="arena_hard", judgments=[game("A=B"), None]),
        pair("p3", "livebench-math", judge_name="arena_hard", judgments=[game(None), game("B>A")]),
        pair("p4", "livebench-math", judge_name="reward_model",
             judgments=[game("A>B", "grm", [1.5, -2.0]), game("B>A", "grm", [-1.0, 0.5])]),
    ])
    v = convert_records("judgebench-judgments", path)
    got = [(x.id, x.order, x.winner, x.parse_ok) for x in v]
    assert got == [("p1", "ab", "1", True), ("p1", "ba", "2", True),  # game 2's A>B is answer 2 winning
                   ("p2", "ab", "tie", True), ("p2", "ba", None, False),  # a null game: unparsed, not a tie
                   ("p3", "ab", None, False), ("p3", "ba", "1", True),
                   ("p4", "ab", "1", True), ("p4", "ba", "1", True)]
    assert {x.judge for x in v[:6]} == {"haiku"} and v[6].judge == "grm"
    assert v[6].scores == [1.5, -2.0] and v[7].scores == [0.5, -1.0]  # reward scores, mapped back
    assert v[1].raw == "reply A>B" and v[3].error and v[4].error


def test_judgebench_judgments_need_two_games(tmp_path):
    path = write(tmp_path, "judged.jsonl", [pair("p1", "livebench-math", judgments=[game("A>B")])])
    with pytest.raises(InputError, match="judged.jsonl:1: field 'judgments': expected two games"):
        convert_records("judgebench-judgments", path)


def bias_file(tmp_path, sizes=None):
    sizes = sizes or {"length bias": 17, "concreteness": 14, "empty reference": 13}
    data = {bias: [{"bias": bias, "instruction": f"{bias} q{k}", "response1": f"good {k}", "response2": f"bad {k}",
                    "label": "1"} for k in range(n)] for bias, n in sizes.items()}
    return write(tmp_path, "biasbench.json", data)


def test_evalbiasbench_balanced_and_seeded(tmp_path):
    path = bias_file(tmp_path)
    a, b, c = (convert_records("evalbiasbench", path, seed) for seed in (1, 1, 2))
    assert [x.__dict__ for x in a] == [x.__dict__ for x in b]  # same seed, same file
    assert [x.winner for x in a] != [x.winner for x in c] and [x.id for x in a] == [x.id for x in c]
    for items in (a, c):
        second = Counter(x.category for x in items if x.winner == "2")
        for bias, n in {"length bias": 17, "concreteness": 14, "empty reference": 13}.items():
            assert 0.4 <= second[bias] / n <= 0.6
        assert sum(second.values()) == 22  # 44 items: the odd groups' extra items go to alternate sides
        for x in items:  # the better answer is where the gold says
            assert (x.answer1 if x.winner == "1" else x.answer2).startswith("good")
            assert x.meta["seed"] in (1, 2) and x.meta["swapped"] == (x.winner == "2")


def test_evalbiasbench_refuses_a_bad_label(tmp_path):
    path = write(tmp_path, "biasbench.json", {"length bias": [{"instruction": "q", "response1": "a",
                                                               "response2": "b", "label": "3"}]})
    with pytest.raises(InputError, match="item 1 of 'length bias': field 'label'"):
        convert_records("evalbiasbench", path)


def test_seed_only_where_positions_are_drawn(tmp_path):
    path = write(tmp_path, "pairs.jsonl", [pair("p1", "livecodebench")])
    from judge.core.errors import ConfigError

    with pytest.raises(ConfigError, match="--seed"):
        convert("judgebench", path, str(tmp_path / "out.jsonl"), seed=3)


def test_shared_evalbiasbench_is_balanced(tmp_path):
    items = convert_records("evalbiasbench", str(shared_file("evalbiasbench", "biasbench.json")), 0)
    assert len(items) == 80 and Counter(x.winner for x in items) == {"1": 40, "2": 40}
    groups = Counter(x.category for x in items)
    assert len(groups) == 6 and groups["length bias"] == 17
    for bias, n in groups.items():
        assert 0.4 <= sum(x.winner == "2" for x in items if x.category == bias) / n <= 0.6
