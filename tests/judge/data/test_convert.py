import json

import pytest

from datafiles import shared_file
from judge.core.errors import InputError
from judge.core.records import PairItem, SingleItem, Verdict
from judge.data.convert import convert, convert_records
from judge.templates import get_template


def write(tmp_path, name, obj):
    path = tmp_path / name
    path.write_text(json.dumps(obj) if name.endswith(".json") else "\n".join(json.dumps(r) for r in obj) + "\n")
    return str(path)


def test_pandalm_majority_and_models(tmp_path):
    path = write(tmp_path, "testset.json", [
        {"idx": 0, "motivation_app": "Grammarly", "cmp_key": "bloom-7b_llama-7b", "instruction": "Fix.", "input": "teh",
         "response1": "the", "response2": True, "annotator1": 2, "annotator2": 0, "annotator3": 2},
        {"idx": 1, "cmp_key": "a_b", "instruction": "Say hi.", "input": "", "response1": "hi", "response2": "yo",
         "annotator1": 0, "annotator2": 0, "annotator3": 1},
    ])
    a, b = convert_records("pandalm", path)
    assert (a.id, a.winner, a.model1, a.model2, a.category) == ("0", "2", "bloom-7b", "llama-7b", "Grammarly")
    assert a.question == "Fix.\nteh" and a.meta["input"] == "teh" and a.answer2 == "True"
    assert (b.winner, b.question) == ("tie", "Say hi.")


def test_pandalm_verdicts_flags_unparseable(tmp_path):
    path = write(tmp_path, "gpt-3.5-turbo-testset-v1.json", [
        {"idx": 0, "gpt_result": "Tie", "gpt_reason": "same", "gpt_reference": "r"},
        {"idx": 1, "gpt_result": "garbage", "gpt_reason": "", "gpt_reference": ""},
        {"idx": 2, "gpt_result": "2", "gpt_reason": "b", "gpt_reference": "r"},
    ])
    v = convert_records("pandalm-verdicts", path)
    assert [x.winner for x in v] == ["tie", "tie", "2"]
    assert [x.parse_ok for x in v] == [True, False, True]
    assert v[0].judge == "gpt-3.5-turbo" and "None" not in v[1].raw


def test_judgelm_rows_with_and_without_reference(tmp_path):
    path = write(tmp_path, "judgelm.jsonl", [
        {"question_id": 5, "question_body": "Q", "answer1_body": "A", "answer2_body": "B", "score": [7, 9],
         "answer1_model_id": "alpaca", "answer2_model_id": "vicuna", "text": "7 9\nB is better"},
        {"question_id": 6, "question_body": "Q", "answer1_body": "A", "answer2_body": "B", "score": [[8, 8]],
         "reference": {"text": "R"}},
    ])
    a, b = convert_records("judgelm", path)
    assert (a.id, a.winner, a.model1, a.model2, a.reference) == ("5", "2", "alpaca", "vicuna", None)
    assert (b.winner, b.reference) == ("tie", "R")


def test_llmbar(tmp_path):
    path = write(tmp_path, "Natural.json", [{"input": "Q", "output_1": "A", "output_2": "B", "label": 2}])
    (item,) = convert_records("llmbar", path)
    assert (item.id, item.winner, item.category) == ("Natural-1", "2", "Natural")


def test_llmbar_bad_label_names_row(tmp_path):
    path = write(tmp_path, "x.json", [{"input": "Q", "output_1": "A", "output_2": "B", "label": 1},
                                      {"input": "Q", "output_1": "A", "output_2": "B", "label": 3}])
    with pytest.raises(InputError, match=r"x.json:2: field 'label'"):
        convert_records("llmbar", path)


def test_openai_chat(tmp_path):
    path = write(tmp_path, "chat.jsonl", [{"messages": [
        {"role": "system", "content": "be nice"}, {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"}, {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "4"}]}])
    (item,) = convert_records("openai-chat", path)
    assert isinstance(item, SingleItem) and (item.question, item.answer) == ("2+2?", "4")
    assert len(item.meta["history"]) == 3


def test_convert_writes_nothing_on_bad_input(tmp_path):
    path = write(tmp_path, "x.json", [{"input": "Q", "output_1": "A", "label": 1}])
    out = tmp_path / "out.jsonl"
    with pytest.raises(InputError, match="missing field 'output_2'"):
        convert("llmbar", path, str(out))
    assert not out.exists()


def test_real_pandalm_files_convert():
    items = convert_records("pandalm", str(shared_file("pandalm", "testset-v1.json")))
    verdicts = convert_records("pandalm-verdicts", str(shared_file("pandalm", "gpt-3.5-turbo-testset-v1.json")))
    assert len(items) == len(verdicts) == 999
    assert all(isinstance(i, PairItem) and i.winner for i in items)
    assert all(isinstance(v, Verdict) for v in verdicts)
    assert sum(not v.parse_ok for v in verdicts) == 25  # the 'garbage' rows


@pytest.mark.parametrize("name", ["vicuna_eval.json", "mt_bench_eval.json"])
def test_prometheus_rows_split_back_into_the_same_prompt(name):
    """Rendering the imported item with prometheus-absolute rebuilds the source's own grading prompt
    (which is Prometheus 1's: its output-format line also says 'Feedback: ')."""
    path = shared_file("prometheus", name)
    source = json.loads(path.read_text())
    items = convert_records("prometheus-absolute", str(path))
    template = get_template("prometheus-absolute")
    assert len({i.id for i in items}) == len(items) == len(source)
    for item, row in zip(items, source):
        assert item.score == pytest.approx(sum(row["gpt4_score"]) / 3)
        assert item.model == row["response_source"]
        expected = row["instruction"].replace('"Feedback: (write', '"(write')
        assert template.render(item).messages[-1]["content"] == expected


def test_prometheus_unreadable_score_list_names_the_row(tmp_path):
    prompt = ("###The instruction to evaluate:\nQ\n\n###Response to evaluate:\nA\n\n###Score Rubrics:\nR\n\n"
              "###Feedback:")
    path = write(tmp_path, "p.json", [{"instruction": prompt, "gpt4_score": "[4, 5"}])
    with pytest.raises(InputError, match=r"p.json:1: field 'gpt4_score': expected a list of numbers"):
        convert_records("prometheus-absolute", path)


@pytest.mark.parametrize("fmt", ["pandalm", "pandalm-verdicts", "judgelm", "llmbar", "prometheus-absolute", "openai-chat"])
def test_every_importer_refuses_a_missing_or_empty_file(tmp_path, fmt):
    with pytest.raises(InputError, match=r"nope.json: file not found"):
        convert_records(fmt, str(tmp_path / "nope.json"))
    (tmp_path / "empty.json").write_text("[]\n")
    with pytest.raises(InputError, match=r"empty.json: no rows"):
        convert_records(fmt, str(tmp_path / "empty.json"))
