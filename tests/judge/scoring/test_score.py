import json
import subprocess
import sys

import pytest

from judge.backends import FakeBackend
from judge.backends.base import BackendError
from judge.cli import main
from judge.core.errors import ConfigError, InputError
from judge.core.jsonl import read_jsonl, write_jsonl
from judge.core.records import PairItem, SingleItem, Verdict, from_row
from judge.scoring.score import ScoreConfig, score


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


class DiesAfter(FakeBackend):
    """Answers `answers` requests, then its endpoint goes down for good: the rest of that batch and
    every later call fail with BackendError carrying what did come back."""

    def __init__(self, answers):
        super().__init__(prefers_good)
        self.answers = answers

    def generate(self, requests):
        room = max(0, self.answers - len(self.calls))
        done = super().generate(requests[:room])
        if len(done) < len(requests):
            raise BackendError("the judge at http://judge/v1 failed 7 times on one request (last: Connection error)",
                               partial=done + [None] * (len(requests) - len(done)))
        return done


def test_a_judge_that_stops_answering_stops_the_run_keeping_what_was_judged(tmp_path):
    config = ScoreConfig(input=items_file(tmp_path), out=str(tmp_path / "pred.jsonl"), backend="openai", model="m",
                         swap=True, batch_size=8)
    with pytest.raises(BackendError, match=r"http://judge/v1.*11 of 20 verdicts are kept in .*pred.jsonl.partial: rerun .* other 9"):
        score(config, DiesAfter(11), progress=False)
    assert not (tmp_path / "pred.jsonl").exists()  # no verdict for what was not judged
    assert len((tmp_path / "pred.jsonl.partial").read_text().splitlines()) == 11
    second = FakeBackend(prefers_good)
    counts = score(config, second, progress=False)
    assert len(second.calls) == 9 and (counts["judged_now"], counts["resumed"]) == (9, 11)
    verdicts = read_verdicts(tmp_path / "pred.jsonl")
    assert len({(v.id, v.order) for v in verdicts}) == 20 and all(v.parse_ok for v in verdicts)


def test_the_openai_backend_going_down_mid_run_keeps_what_came_back(tmp_path, monkeypatch):
    """The whole chain: retries run out on a dropped connection, the batch's answered requests are
    kept, and the rerun sends only the rest."""
    import httpx
    import openai

    from judge.backends.openai import OpenAIBackend
    from judge.backends.retry import RetryPolicy

    sent, answers = [], {"left": 13}

    def endpoint(request):
        sent.append(request)
        answers["left"] -= 1
        if answers["left"] < 0:
            raise httpx.ConnectError("connection refused")
        return httpx.Response(200, json={"id": "x", "object": "chat.completion", "created": 0, "model": "m",
                                         "choices": [{"index": 0, "finish_reason": "stop",
                                                      "message": {"role": "assistant", "content": "9 2\nok"}}]})

    def backend():
        made = OpenAIBackend("m", "http://judge/v1", "k", concurrency=1, retry=RetryPolicy(1, backoff=0.01))
        monkeypatch.setattr(made, "_new_client", lambda: openai.AsyncOpenAI(
            base_url="http://judge/v1", api_key="k", max_retries=0,
            http_client=httpx.AsyncClient(transport=httpx.MockTransport(endpoint))))
        return made

    config = ScoreConfig(input=items_file(tmp_path), out=str(tmp_path / "pred.jsonl"), backend="openai", model="m",
                         swap=True, batch_size=8)
    with pytest.raises(BackendError, match="13 of 20 verdicts are kept"):
        score(config, backend(), progress=False)
    assert len(sent) == 15  # 13 answered, then the 14th tried twice; nothing more was sent
    sent.clear()
    answers["left"] = 100  # the endpoint is back up
    counts = score(config, backend(), progress=False)
    assert len(sent) == 7 and (counts["judged_now"], counts["resumed"]) == (7, 13)


def test_unreachable_endpoint_exits_1_naming_it(tmp_path, capsys):
    out = tmp_path / "pred.jsonl"
    code = main(["score", "--input", items_file(tmp_path, 2), "--backend", "openai", "--model", "judge", "--base-url",
                 "http://127.0.0.1:9/v1", "--max-retries", "1", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 1 and "http://127.0.0.1:9/v1" in err and "failed 2 times" in err and "connection failed" in err
    assert not out.exists() and "0 of 2 verdicts are kept" in err


def test_a_finished_run_rerun_does_no_work(tmp_path):
    config = ScoreConfig(input=items_file(tmp_path), out=str(tmp_path / "pred.jsonl"), backend="hf", model="m", swap=True)
    score(config, FakeBackend(prefers_good), progress=False)
    written = (tmp_path / "pred.jsonl").stat().st_mtime_ns, (tmp_path / "pred.manifest.json").read_text()
    again = FakeBackend(prefers_good)
    counts = score(config, again, progress=False)
    assert again.calls == [] and (counts["judged_now"], counts["resumed"], counts["verdicts"]) == (0, 20, 20)
    assert ((tmp_path / "pred.jsonl").stat().st_mtime_ns, (tmp_path / "pred.manifest.json").read_text()) == written


def test_a_longer_limit_judges_only_the_new_items(tmp_path):
    config = ScoreConfig(input=items_file(tmp_path), out=str(tmp_path / "pred.jsonl"), backend="hf", model="m", limit=3)
    score(config, FakeBackend(prefers_good), progress=False)
    more = FakeBackend(prefers_good)
    counts = score(ScoreConfig(**{**config.__dict__, "limit": 7}), more, progress=False)
    assert len(more.calls) == 4 and (counts["judged_now"], counts["resumed"]) == (4, 3)
    assert [v.id for v in read_verdicts(config.out)] == [f"q{i}" for i in range(7)]


def test_an_edited_input_is_refused_and_fresh_starts_over(tmp_path):
    config = ScoreConfig(input=items_file(tmp_path), out=str(tmp_path / "pred.jsonl"), backend="hf", model="m")
    score(config, FakeBackend(prefers_good), progress=False)
    items_file(tmp_path, 11)  # one more item, same path
    with pytest.raises(ConfigError, match="other settings \\(changed: the input file's content\\).*--fresh"):
        score(config, FakeBackend(prefers_good), progress=False)
    fresh = FakeBackend(prefers_good)
    counts = score(ScoreConfig(**{**config.__dict__, "fresh": True}), fresh, progress=False)
    assert len(fresh.calls) == 11 and counts["judged_now"] == 11 and len(read_verdicts(config.out)) == 11


def prefers_bad(request):
    return "2 9\nok" if prefers_good(request).startswith("9") else "9 2\nok"


@pytest.mark.parametrize("edited", [False, True], ids=["same-input", "edited-input"])
@pytest.mark.parametrize("again", [False, True], ids=["rerun", "rerun-fresh"])
def test_an_interrupted_fresh_run_keeps_the_old_output_and_resumes(tmp_path, edited, again):
    """--fresh judges again from the start: until it finishes, the old predictions stay as they were;
    interrupted, the same command (or the command without --fresh) resumes the new work, never
    deleting it and never mixing in the old verdicts."""
    config = ScoreConfig(input=items_file(tmp_path), out=str(tmp_path / "pred.jsonl"), backend="hf", model="m",
                         batch_size=2)
    score(config, FakeBackend(prefers_good), progress=False)
    old = (tmp_path / "pred.jsonl").read_bytes()
    if edited:
        items_file(tmp_path, 11)
    fresh = ScoreConfig(**{**config.__dict__, "fresh": True})
    with pytest.raises(BackendError, match=r"4 of \d+ verdicts are kept in .*pred.jsonl.partial: rerun the same command"):
        score(fresh, DiesAfter(4), progress=False)
    assert (tmp_path / "pred.jsonl").read_bytes() == old  # the old output is intact while the fresh run is unfinished
    second = FakeBackend(prefers_bad)  # a judge that differs, so an old verdict mixed in would show
    counts = score(fresh if again else config, second, progress=False)
    n = 11 if edited else 10
    assert (len(second.calls), counts["resumed"], counts["judged_now"]) == (n - 4, 4, n - 4)
    verdicts = read_verdicts(config.out)
    assert [v.id for v in verdicts] == [f"q{i}" for i in range(n)]
    assert [v.winner for v in verdicts] == ["1"] * 4 + ["2"] * (n - 4)  # DiesAfter's 4, then the second judge's
    assert not (tmp_path / "pred.jsonl.partial").exists()
    assert score(config, FakeBackend(prefers_good), progress=False)["judged_now"] == 0  # finished: nothing to do


def test_a_retrained_adapter_at_the_same_path_is_refused_mid_run_and_after(tmp_path):
    from judge.backends.adapters import AdapterInfo, write_adapter_info

    adapter = tmp_path / "adapter"
    write_adapter_info(adapter, AdapterInfo(template="judgelm@1", template_hash="h", mode="pairwise", base_model="m"))
    (adapter / "adapter_model.safetensors").write_bytes(b"weights v1")
    config = ScoreConfig(input=items_file(tmp_path), out=str(tmp_path / "pred.jsonl"), backend="hf", model="m",
                         adapter=str(adapter), batch_size=4)
    with pytest.raises(KeyboardInterrupt):
        score(config, Interrupting(after=1), progress=False)
    (adapter / "adapter_model.safetensors").write_bytes(b"weights v2")
    with pytest.raises(ConfigError, match="partial run .* other settings \\(changed: the adapter's files\\)"):
        score(config, FakeBackend(prefers_good), progress=False)
    (adapter / "adapter_model.safetensors").write_bytes(b"weights v1")
    score(config, FakeBackend(prefers_good), progress=False)
    (adapter / "adapter_model.safetensors").write_bytes(b"weights v3")
    with pytest.raises(ConfigError, match="pred.jsonl was judged with other settings \\(changed: the adapter's files"):
        score(config, FakeBackend(prefers_good), progress=False)


def test_an_output_with_no_record_of_its_judge_is_not_added_to(tmp_path):
    (tmp_path / "pred.jsonl").write_text('{"id": "q0", "order": "ab", "winner": "1", "parse_ok": true}\n')
    config = ScoreConfig(input=items_file(tmp_path), out=str(tmp_path / "pred.jsonl"), backend="hf", model="m")
    with pytest.raises(ConfigError, match="no record of how it was judged.*--fresh"):
        score(config, FakeBackend(prefers_good), progress=False)


def test_the_resume_state_is_written_before_judging_and_records_contents(tmp_path):
    config = ScoreConfig(input=items_file(tmp_path), out=str(tmp_path / "pred.jsonl"), backend="hf", model="m",
                         batch_size=4)
    with pytest.raises(KeyboardInterrupt):
        score(config, Interrupting(after=1), progress=False)
    state = json.loads((tmp_path / "pred.jsonl.partial.json").read_text())
    assert state["input_sha256"] and state["template"] == "judgelm@1" and state["template_hash"]
    assert not list(tmp_path.glob(".pred.jsonl.partial.json.*"))  # written through a temp file, renamed


def test_two_runs_on_one_output_cannot_both_proceed(tmp_path):
    out = tmp_path / "pred.jsonl"
    holder = subprocess.Popen([sys.executable, "-c", "import time; from judge.core.runlock import RunLock; "
                               f"RunLock({str(out) + '.lock'!r}, what='x').acquire(); print('held', flush=True); "
                               "time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        backend = FakeBackend(prefers_good)
        with pytest.raises(ConfigError, match=f"another judgeforge run \\(pid {holder.pid}\\) is writing score --out"):
            score(ScoreConfig(input=items_file(tmp_path), out=str(out), backend="hf", model="m"), backend, progress=False)
        assert backend.calls == [] and not out.exists()
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()


def test_template_comes_from_the_adapter(tmp_path):
    from judge.backends.adapters import AdapterInfo, write_adapter_info

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
