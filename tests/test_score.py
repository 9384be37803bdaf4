import json

import pytest

from judge.backends import FakeBackend
from judge.errors import ConfigError, InputError
from judge.jsonl import read_jsonl, write_jsonl
from judge.records import PairItem, SingleItem, Verdict, from_row
from judge.score import ScoreConfig, score


def items_file(tmp_path, n=10):
    path = tmp_path / "items.jsonl"
    write_jsonl(path, [PairItem(id=f"q{i}", question=f"question {i}", answer1="GOOD", answer2="bad", winner="1")
                       for i in range(n)])
    return str(path)


def prefers_good(request):
    user = request.prompt.messages[-1]["content"]
    return "9 2\nok" if user.index("GOOD") < user.index("bad") else "2 9\nok"


def read_verdicts(path):
    return read_jsonl(path, lambda r: from_row(Verdict, r, extra_to_meta=False))


class Interrupting(FakeBackend):
    """Dies (like a SIGINT) after `after` batches."""

    def __init__(self, after):
        super().__init__(prefers_good)
        self.after, self.batches = after, 0

    def generate(self, requests):
        if self.batches == self.after:
            raise KeyboardInterrupt
        self.batches += 1
        return super().generate(requests)


def test_score_writes_verdicts_in_item_order_with_manifest(tmp_path):
    config = ScoreConfig(input=items_file(tmp_path), out=str(tmp_path / "pred.jsonl"), backend="hf", model="m", swap=True)
    counts = score(config, FakeBackend(prefers_good), progress=False)
    verdicts = read_verdicts(tmp_path / "pred.jsonl")
    assert [(v.id, v.order) for v in verdicts][:4] == [("q0", "ab"), ("q0", "ba"), ("q1", "ab"), ("q1", "ba")]
    assert all(v.winner == "1" and v.parse_ok and v.template == "judgelm@1" for v in verdicts)
    assert counts["verdicts"] == 20 and counts["judged_now"] == 20
    manifest = json.loads((tmp_path / "pred.manifest.json").read_text())
    assert manifest["stage"] == "score" and manifest["counts"]["verdicts"] == 20
    assert manifest["inputs"]["items"]["sha256"]
    assert not (tmp_path / "pred.jsonl.partial").exists()


def test_interrupted_score_resumes_without_rejudging(tmp_path):
    config = ScoreConfig(input=items_file(tmp_path), out=str(tmp_path / "pred.jsonl"), backend="hf", model="m",
                         swap=True, batch_size=4)
    with pytest.raises(KeyboardInterrupt):
        score(config, Interrupting(after=2), progress=False)
    assert not (tmp_path / "pred.jsonl").exists()
    assert len((tmp_path / "pred.jsonl.partial").read_text().splitlines()) == 8
    second = FakeBackend(prefers_good)
    counts = score(config, second, progress=False)
    assert len(second.calls) == 12 and counts["resumed"] == 8
    verdicts = read_verdicts(tmp_path / "pred.jsonl")
    assert len(verdicts) == 20 and len({(v.id, v.order) for v in verdicts}) == 20


def test_partial_run_with_other_settings_is_refused(tmp_path):
    config = ScoreConfig(input=items_file(tmp_path), out=str(tmp_path / "pred.jsonl"), backend="hf", model="m", batch_size=4)
    with pytest.raises(KeyboardInterrupt):
        score(config, Interrupting(after=1), progress=False)
    other = ScoreConfig(input=config.input, out=config.out, backend="hf", model="m", template="pandalm")
    with pytest.raises(ConfigError, match="other settings"):
        score(other, FakeBackend(), progress=False)


def test_template_comes_from_the_adapter(tmp_path):
    from judge.adapters import AdapterInfo, write_adapter_info

    adapter = tmp_path / "adapter"
    write_adapter_info(adapter, AdapterInfo(template="pandalm@1", template_hash="h", mode="pairwise", base_model="m"))
    config = ScoreConfig(input=items_file(tmp_path, 2), out=str(tmp_path / "p.jsonl"), backend="hf", model="m",
                         adapter=str(adapter))
    score(config, FakeBackend(lambda r: "1\n\n### Reason: x"), progress=False)
    assert {v.template for v in read_verdicts(tmp_path / "p.jsonl")} == {"pandalm@1"}


def test_pointwise_default_template_and_mode_mismatch(tmp_path):
    path = tmp_path / "single.jsonl"
    write_jsonl(path, [SingleItem(id="s", question="q", answer="a", score=4.0)])
    score(ScoreConfig(input=str(path), out=str(tmp_path / "p.jsonl"), backend="hf", model="m", swap=True),
          FakeBackend(lambda r: "Good. [RESULT] 4"), progress=False)
    (v,) = read_verdicts(tmp_path / "p.jsonl")
    assert v.scores == [4.0] and v.template == "prometheus-absolute@1"
    with pytest.raises(ConfigError, match="pairwise"):
        score(ScoreConfig(input=str(path), out=str(tmp_path / "q.jsonl"), backend="hf", model="m", template="judgelm"),
              FakeBackend(), progress=False)


def test_bad_items_file_fails_before_any_call(tmp_path):
    path = tmp_path / "items.jsonl"
    path.write_text('{"id": "1", "question": "q", "answer1": "a"}\n')
    backend = FakeBackend()
    with pytest.raises(InputError, match="items.jsonl:1"):
        score(ScoreConfig(input=str(path), out=str(tmp_path / "p.jsonl"), backend="hf", model="m"), backend, progress=False)
    assert backend.calls == []
