"""data pair: answers of several models to the same questions -> PairItems with stable ids."""

import json

import pytest

from judge.cli import main
from judge.core.errors import InputError
from judge.core.jsonl import read_items, write_jsonl
from judge.core.records import SingleItem
from judge.data.pairing import pair_answers, pair_id

QUESTIONS = [f"Question {i}?" for i in range(20)]


@pytest.fixture
def answers(tmp_path):
    """Three models answer all 20 questions, a fourth (no `model` field: named after its file) answers one."""
    paths = []
    for score, model in enumerate(("alpha", "beta", "gamma"), start=1):
        path = tmp_path / f"{model}.jsonl"
        write_jsonl(path, [SingleItem(id=f"{model}-{i}", question=q, answer=f"{model} says {i}", model=model,
                                      reference=f"ref {i}", category="math", score=float(score))
                           for i, q in enumerate(QUESTIONS)])
        paths.append(str(path))
    path = tmp_path / "delta.jsonl"
    write_jsonl(path, [SingleItem(id="d0", question=QUESTIONS[0], answer="delta says 0")])
    return paths + [str(path)]


def test_every_pair_of_models_per_question(answers):
    pairs = pair_answers(answers)
    assert len(pairs) == 20 * 3 + 3  # three pairs per question, plus delta against the three on question 0
    assert len({p.id for p in pairs}) == len(pairs)
    first = [p for p in pairs if p.question == QUESTIONS[0]]
    assert {frozenset((p.model1, p.model2)) for p in first} == {
        frozenset(c) for c in [("alpha", "beta"), ("alpha", "gamma"), ("beta", "gamma"), ("alpha", "delta"),
                               ("beta", "delta"), ("gamma", "delta")]}
    p = next(p for p in pairs if {p.model1, p.model2} == {"alpha", "gamma"} and p.question == QUESTIONS[3])
    assert p.answer1 == f"{p.model1} says 3" and p.reference == "ref 3" and p.category == "math"
    assert p.winner == ("2" if p.model2 == "gamma" else "1")  # gold scores: gamma 3 beats alpha 1


def test_positions_are_drawn_and_ids_do_not_depend_on_the_seed_or_cap(answers):
    pairs0, pairs1 = pair_answers(answers, seed=0), pair_answers(answers, seed=1)
    assert {p.id for p in pairs0} == {p.id for p in pairs1}
    assert [p.id for p in pair_answers(answers, seed=0)] == [p.id for p in pairs0]  # deterministic
    firsts = {p.model1 for p in pairs0 if {p.model1, p.model2} == {"alpha", "beta"}}
    assert firsts == {"alpha", "beta"}  # neither model sits first throughout
    capped = pair_answers(answers, per_question=2, seed=0)
    assert len(capped) == 20 * 2 and {p.id for p in capped} <= {p.id for p in pairs0}
    assert pair_id("Q", "b", "a") == pair_id("Q", "a", "b") != pair_id("Q2", "a", "b")


def test_a_model_answering_twice_is_an_error(tmp_path):
    path = tmp_path / "dup.jsonl"
    write_jsonl(path, [SingleItem(id="a", question="Q", answer="x", model="m"),
                       SingleItem(id="b", question="Q ", answer="y", model="m")])
    with pytest.raises(InputError, match="model 'm' answers the question of item 'b' twice"):
        pair_answers([str(path)])


def test_cli_writes_pairs(answers, tmp_path, capsys):
    out = tmp_path / "pairs.jsonl"
    assert main(["data", "pair", "--answers", *answers, "--out", str(out), "--per-question", "1", "--seed", "3"]) == 0
    assert "wrote 20 pairs over 20 questions" in capsys.readouterr().out
    items = read_items(out)
    assert len(items) == 20 and all(json.loads(line)["meta"]["answer_ids"] for line in out.read_text().splitlines())
    assert main(["data", "pair", "--answers", *answers, "--out", str(out), "--per-question", "0"]) == 2


def test_the_demo_distils_and_holds_out_pairs_of_different_questions():
    from judge.core.records import PairItem
    from script_module import load_script

    split_pairs = load_script("demo").split_pairs
    items = [PairItem(id=f"p{i}", question=f"Q{i // 3}", answer1="a", answer2="b") for i in range(30)]
    distill, heldout = split_pairs(items, 10, 9)  # Q3 holds p9..p11: it straddles the slice at 10
    assert [p.id for p in distill] == [f"p{i}" for i in range(12)] and [p.id for p in heldout][0] == "p12"
    assert not {p.question for p in distill} & {p.question for p in heldout} and len(heldout) == 9


def test_the_demo_split_of_the_pandalm_test_set_shares_no_question():
    from datafiles import shared_file

    from judge.core.jsonl import read_json
    from judge.data.convert import from_pandalm
    from script_module import load_script

    rows = read_json(shared_file("pandalm", "testset-v1.json"))
    items = [from_pandalm(row, number, "testset-v1") for number, row in enumerate(rows, start=1)]
    distill, heldout = load_script("demo").split_pairs(items, 160, 100)
    assert len(heldout) >= 100 and 160 <= len(distill) < 170
    assert not {p.question.strip() for p in distill} & {p.question.strip() for p in heldout}
