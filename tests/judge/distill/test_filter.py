"""filter: swap-consistency, reasons for every drop, the teacher's bias report, training messages,
the split by question, pointwise spread, reference-free rewrites, the OpenAI export."""

import json

import pytest

from judge.cli import main
from judge.core.errors import ConfigError, InputError
from judge.core.jsonl import write_jsonl
from judge.core.records import PairItem, SingleItem
from judge.distill.filter import FilterConfig, filter_verdicts, split_by_question
from judge.eval.metrics import consistency
from judge.templates import get_template
from teacher_replies import REPLIES

JUDGELM = get_template("judgelm")
PROMETHEUS = get_template("prometheus-absolute")


def pairs(n=16):
    kinds = list(REPLIES)
    return [PairItem(id=f"p{i}", question=f"Question {i // 2}?", answer1=f"right {i}", answer2=f"wrong {i}",
                     category=kinds[i % 4]) for i in range(n)]


def write_run(folder, items, verdicts):
    folder.mkdir(parents=True, exist_ok=True)
    write_jsonl(folder / "items.jsonl", items)
    write_jsonl(folder / "verdicts.jsonl", verdicts)
    return folder / "verdicts.jsonl"


def pairwise_run(tmp_path, items):
    verdicts = [JUDGELM.verdict(p.id, order, REPLIES[p.category][order], judge="teacher")
                for p in items for order in ("ab", "ba")]
    return write_run(tmp_path / "distill", items, verdicts), verdicts


def rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_keeps_exactly_the_swap_consistent_items(tmp_path):
    items = pairs()
    path, verdicts = pairwise_run(tmp_path, items)
    stats = filter_verdicts(FilterConfig(verdicts=str(path), out=str(tmp_path / "data"), val_fraction=0.25))
    kept = rows(tmp_path / "data" / "train.jsonl") + rows(tmp_path / "data" / "val.jsonl")
    assert sorted({r["id"] for r in kept}) == sorted(p.id for p in items if p.category in ("fair", "tie"))
    assert sorted((r["id"], r["order"]) for r in kept) == sorted((p.id, o) for p in items if p.category in ("fair", "tie")
                                                                 for o in ("ab", "ba"))
    dropped = rows(tmp_path / "data" / "dropped.jsonl")
    reasons = {(r["id"], r["order"]): r["reason"] for r in dropped}
    assert len(dropped) == 16 and {items[2].category, items[3].category} == {"biased", "mumble"}
    assert reasons[("p2", "ab")] == reasons[("p2", "ba")] == "inconsistent: ab says 1, ba says 2"
    assert reasons[("p3", "ba")].startswith("unparsed:") and reasons[("p3", "ab")].startswith("unparsed: another")
    assert stats["kept_items"] == 8 and stats["drop_reasons"] == {"inconsistent": 4, "unparsed": 4}
    assert stats["per_category"]["biased"] == {"items": 4, "inconsistent": 4}
    by_order = {o: [v.winner if v.parse_ok else None for v in verdicts if v.order == o] for o in ("ab", "ba")}
    assert stats["teacher"] == consistency(by_order["ab"], by_order["ba"], unparsed="drop")
    assert stats["teacher"]["prefer_first_rate"] == pytest.approx(4 / 12)


def test_training_rows_are_what_serving_sends_plus_the_target(tmp_path):
    items = pairs(4)
    path, _ = pairwise_run(tmp_path, items)
    filter_verdicts(FilterConfig(verdicts=str(path), out=str(tmp_path / "data"), val_fraction=0))
    train = {(r["id"], r["order"]): r for r in rows(tmp_path / "data" / "train.jsonl")}
    row = train[("p0", "ba")]
    assert row["messages"][:-1] == JUDGELM.render(items[0], "ba").messages
    assert row["messages"][-1] == {"role": "assistant", "content": REPLIES["fair"]["ba"]}
    user = row["messages"][1]["content"]
    assert user.index("wrong 0") < user.index("right 0")  # swapped as shown, while the label is mapped back
    assert row["winner"] == "1" and row["scores"] == [8.0, 3.0] and row["template"] == "judgelm@1"
    assert row["template_hash"] == JUDGELM.text_hash and row["mode"] == "pairwise" and "reason" not in row


def test_split_by_question_never_shares_a_question_and_is_deterministic(tmp_path):
    items = [PairItem(id=f"p{i}", question=f"Q{i % 10}", answer1="a", answer2="b", category="fair") for i in range(40)]
    path, _ = pairwise_run(tmp_path, items)
    runs = []
    for seed in (0, 0, 1):
        out = tmp_path / f"data{len(runs)}"
        stats = filter_verdicts(FilterConfig(verdicts=str(path), out=str(out), val_fraction=0.3, seed=seed))
        question = {p.id: p.question for p in items}
        train = {question[r["id"]] for r in rows(out / "train.jsonl")}
        val = {question[r["id"]] for r in rows(out / "val.jsonl")}
        assert train and val and not train & val and len(train | val) == 10
        assert stats["questions"] == {"train": len(train), "val": len(val)} and len(val) == 3
        runs.append((out / "train.jsonl").read_text())
    assert runs[0] == runs[1]
    assert split_by_question(["a", "b", "c"], 0, 0) == [False] * 3 and split_by_question(["a", "a"], 0.5, 0) == [False] * 2


def test_openai_export_rows_are_valid_chat_fine_tuning_rows(tmp_path):
    path, _ = pairwise_run(tmp_path, pairs())
    assert main(["filter", "--input", str(path), "--out", str(tmp_path / "data"), "--export", "openai"]) == 0
    exported = rows(tmp_path / "data" / "train_openai.jsonl") + rows(tmp_path / "data" / "val_openai.jsonl")
    assert len(exported) == 16
    for row in exported:
        assert list(row) == ["messages"]
        assert [m["role"] for m in row["messages"]] == ["system", "user", "assistant"]
        assert all(isinstance(m["content"], str) and m["content"].strip() for m in row["messages"])


def test_cli_prints_the_bias_report(tmp_path, capsys):
    path, _ = pairwise_run(tmp_path, pairs())
    assert main(["filter", "--input", str(path), "--out", str(tmp_path / "data")]) == 0
    text = capsys.readouterr().out
    assert "8 of 16 items kept" in text and "teacher consistency 0.667, prefers first 0.333" in text


def test_pointwise_drops_unparsed_and_wide_spreads_and_keeps_the_sample_nearest_the_mean(tmp_path):
    items = [SingleItem(id=f"s{i}", question=f"Q{i}", answer="x") for i in range(3)]
    replies = {"s0": ["[RESULT] 4", "[RESULT] 5", "[RESULT] 4"], "s1": ["[RESULT] 1", "[RESULT] 5", "[RESULT] 3"],
               "s2": ["no grade", "no grade", "no grade"]}
    verdicts = [PROMETHEUS.verdict(i, "ab", raw, sample=k) for i, rs in replies.items() for k, raw in enumerate(rs)]
    path = write_run(tmp_path / "distill", items, verdicts)
    stats = filter_verdicts(FilterConfig(verdicts=str(path), out=str(tmp_path / "data"), max_spread=2, val_fraction=0))
    (kept,) = rows(tmp_path / "data" / "train.jsonl")
    assert kept["id"] == "s0" and kept["scores"] == [4.0] and kept["n_samples"] == 3 and kept["spread"] == 1
    assert kept["mean_score"] == pytest.approx(13 / 3) and kept["sample"] == 0
    assert stats["drop_reasons"] == {"spread": 1, "unparsed": 1} and stats["rows"]["unused_samples"] == 2
    reasons = [r["reason"] for r in rows(tmp_path / "data" / "dropped.jsonl")]
    assert reasons[:3] == ["spread: scores [1.0, 5.0, 3.0] spread 4 > 2"] * 3 and len(reasons) == 6


def test_reference_free_rewrites_render_without_the_reference(tmp_path):
    items = [SingleItem(id=f"s{i}", question=f"Q{i}", answer="x", reference="the reference") for i in range(2)]
    verdicts = [PROMETHEUS.verdict("s0", "ab", "Matches the reference. [RESULT] 4"),
                PROMETHEUS.verdict("s0", "ab", "Correct. [RESULT] 4"),
                PROMETHEUS.verdict("s1", "ab", "Matches the reference. [RESULT] 4"),
                PROMETHEUS.verdict("s1", "ab", "Correct. [RESULT] 2")]
    verdicts[1].meta = verdicts[3].meta = {"variant": "reference-free"}
    path = write_run(tmp_path / "distill", items, verdicts)
    stats = filter_verdicts(FilterConfig(verdicts=str(path), out=str(tmp_path / "data"), val_fraction=0))
    train = rows(tmp_path / "data" / "train.jsonl")
    free = [r for r in train if r.get("variant") == "reference-free"]
    assert len(train) == 3 and len(free) == 1 and free[0]["messages"][-1]["content"] == "Correct. [RESULT] 4"
    assert "the reference" not in free[0]["messages"][1]["content"]
    assert all("the reference" in r["messages"][1]["content"] for r in train if r not in free)
    (dropped,) = rows(tmp_path / "data" / "dropped.jsonl")
    assert dropped["id"] == "s1" and dropped["reason"] == "rewrite_changed_score: 4.0 -> 2.0"
    assert stats["reference_free"] == {"kept": 1, "rewrite_changed_score": 1}


def test_bad_inputs_are_named(tmp_path):
    path, _ = pairwise_run(tmp_path, pairs(4))
    with pytest.raises(ConfigError, match="distill folder"):
        FilterConfig(verdicts=str(path), out=str(tmp_path / "distill"))
    with open(path, "a") as handle:
        handle.write(json.dumps({"id": "nope", "order": "ab", "raw": "1 2", "template": "judgelm@1"}) + "\n")
    with pytest.raises(InputError, match=r"verdicts.jsonl:9: verdict for id 'nope'"):
        filter_verdicts(FilterConfig(verdicts=str(path), out=str(tmp_path / "data")))
    (tmp_path / "distill" / "items.jsonl").unlink()
    with pytest.raises(InputError, match="items.jsonl"):
        filter_verdicts(FilterConfig(verdicts=str(path), out=str(tmp_path / "data")))


def distill_manifest(folder, swap, n_verdicts):
    from judge.core.manifest import write_manifest

    write_manifest(folder, "distill", config={"swap": swap}, counts={"verdicts": n_verdicts})


def one_order_run(tmp_path, manifest_swap="absent"):
    """Four position-fair pairs; p3 judged in order ab only (distill stopped by --max-cost, say)."""
    items = [p for p in pairs(16) if p.category == "fair"]
    verdicts = [JUDGELM.verdict(p.id, o, REPLIES["fair"][o]) for p in items for o in ("ab", "ba")][:-1]
    path = write_run(tmp_path / "distill", items, verdicts)
    if manifest_swap != "absent":
        distill_manifest(tmp_path / "distill", manifest_swap, len(verdicts))
    return path, items


@pytest.mark.parametrize("manifest_swap", [True, "absent"])
def test_an_item_judged_in_one_order_only_is_dropped(tmp_path, manifest_swap):
    path, items = one_order_run(tmp_path, manifest_swap)
    stats = filter_verdicts(FilterConfig(verdicts=str(path), out=str(tmp_path / "data"), val_fraction=0))
    kept = {r["id"] for r in rows(tmp_path / "data" / "train.jsonl")}
    (dropped,) = rows(tmp_path / "data" / "dropped.jsonl")
    assert kept == {p.id for p in items[:-1]} and stats["swap"] is True
    assert (dropped["id"], dropped["order"]) == (items[-1].id, "ab")
    assert dropped["reason"] == "one order only: ba was not judged"
    assert stats["drop_reasons"] == {"one_order_only": 1} and stats["per_category"]["fair"]["one_order_only"] == 1


def test_one_order_is_kept_when_distill_ran_with_no_swap(tmp_path):
    items = pairs(4)
    verdicts = [JUDGELM.verdict(p.id, "ab", REPLIES[p.category]["ab"]) for p in items]
    path = write_run(tmp_path / "distill", items, verdicts)
    with pytest.raises(InputError, match="pass --no-swap if they were judged in one order only"):
        filter_verdicts(FilterConfig(verdicts=str(path), out=str(tmp_path / "data")))  # no manifest: ambiguous
    stats = filter_verdicts(FilterConfig(verdicts=str(path), out=str(tmp_path / "data"), swap=False, val_fraction=0))
    assert stats["kept_items"] == 4 and stats["drop_reasons"] == {} and stats["swap"] is False
    distill_manifest(tmp_path / "distill", False, len(verdicts))
    assert filter_verdicts(FilterConfig(verdicts=str(path), out=str(tmp_path / "data")))["kept_items"] == 4
    with pytest.raises(ConfigError, match="--swap contradicts .* distill ran with --no-swap"):
        filter_verdicts(FilterConfig(verdicts=str(path), out=str(tmp_path / "data"), swap=True))


def test_verdicts_the_distill_manifest_does_not_describe_are_refused(tmp_path):
    path, _ = one_order_run(tmp_path, manifest_swap=True)
    distill_manifest(tmp_path / "distill", True, 3)
    with pytest.raises(InputError, match="counts 3 verdicts, the file holds 7"):
        filter_verdicts(FilterConfig(verdicts=str(path), out=str(tmp_path / "data")))
    distill_manifest(tmp_path / "distill", False, 7)
    with pytest.raises(InputError, match=r"one order \(--no-swap\), yet 3 verdicts are in order ba"):
        filter_verdicts(FilterConfig(verdicts=str(path), out=str(tmp_path / "data")))


def test_filter_reads_how_distill_ran_from_its_manifest(tmp_path):
    from judge.distill import DistillConfig, TeacherConfig, distill
    from judge.testing.fake_openai import FakeOpenAI

    items = tmp_path / "items.jsonl"
    write_jsonl(items, pairs(4))
    with FakeOpenAI(reply=lambda body: "8 3\nThe first is right.") as fake:
        distill(DistillConfig(input=str(items), template="judgelm", out=str(tmp_path / "run"), progress=False,
                              swap=False, teacher=TeacherConfig(model="teacher", base_url=fake.base_url)))
    stats = filter_verdicts(FilterConfig(verdicts=str(tmp_path / "run" / "verdicts.jsonl"), out=str(tmp_path / "data")))
    assert stats["swap"] is False and stats["kept_items"] == 4


def test_a_failed_filter_leaves_the_previous_output_set_whole(tmp_path, monkeypatch):
    import judge.distill.filter

    path, _ = pairwise_run(tmp_path, pairs())
    out = tmp_path / "data"

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(judge.distill.filter, "write_json", crash)  # after train/val/dropped are written
    with pytest.raises(OSError, match="disk full"):
        filter_verdicts(FilterConfig(verdicts=str(path), out=str(out)))
    assert not out.exists() and list(tmp_path.iterdir()) == [tmp_path / "distill"]
    monkeypatch.undo()
    filter_verdicts(FilterConfig(verdicts=str(path), out=str(out), val_fraction=0))
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    monkeypatch.setattr(judge.distill.filter, "write_json", crash)
    with pytest.raises(OSError, match="disk full"):
        filter_verdicts(FilterConfig(verdicts=str(path), out=str(out), val_fraction=0.5))
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "distill"]


def test_an_output_folder_holding_other_files_is_refused(tmp_path):
    path, _ = pairwise_run(tmp_path, pairs(4))
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="holds notes.txt, which filter did not write"):
        filter_verdicts(FilterConfig(verdicts=str(path), out=str(tmp_path / "data")))
    assert (tmp_path / "data" / "notes.txt").read_text() == "mine"
