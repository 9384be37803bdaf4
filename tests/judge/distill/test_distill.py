"""distill against the in-process fake teacher: verdicts mapped back, cache and resume, bad input
before any call, dry run, budget, samples, the reference-free rewrite, stats and the CLI.

Covers: judge/distill/plan.py, judge/distill/run.py, judge/distill/stats.py,
judge/distill/dryrun.py, judge/cli/distill.py."""

import json

import pytest

from judge.cli import main
from judge.core.errors import BudgetExceeded, ConfigError, InputError
from judge.core.jsonl import read_jsonl, write_jsonl
from judge.core.records import PairItem, SingleItem, Verdict, from_row
from judge.distill import REWRITE_INSTRUCTION, DistillConfig, TeacherConfig, distill, estimate
from judge.testing.fake_openai import FakeOpenAI

PAIRS = [PairItem(id=f"p{i}", question=f"Question {i}?", answer1="GOOD" if i % 2 else "bad",
                  answer2="bad" if i % 2 else "GOOD", category="odd" if i % 2 else "even") for i in range(6)]


def prefers_good(body):
    """A position-fair teacher: the answer saying GOOD wins, wherever it is shown."""
    user = body["messages"][-1]["content"]
    return "9 2\nThe first answer is good." if user.index("GOOD") < user.index("bad") else "2 9\nThe second is good."


def grader(body):
    """Prometheus-style: cites the reference unless asked to rewrite without it."""
    if body["messages"][-1]["content"] == REWRITE_INSTRUCTION:
        return "The answer is correct and complete. [RESULT] 4"
    return "Like the reference answer, it is correct. [RESULT] 4"


@pytest.fixture
def fake():
    with FakeOpenAI(reply=prefers_good) as server:
        yield server


@pytest.fixture
def items(tmp_path):
    path = tmp_path / "items.jsonl"
    write_jsonl(path, PAIRS)
    return path


def config(fake, items, out, **kwargs):
    teacher = {"model": "gpt-4o-mini", **{k: kwargs.pop(k) for k in list(kwargs) if k in TeacherConfig.__dataclass_fields__}}
    return DistillConfig(input=str(items), template=kwargs.pop("template", "judgelm"), out=str(out), progress=False,
                         teacher=TeacherConfig(base_url=fake.base_url, backoff=0.01, **teacher), **kwargs)


def verdicts(out):
    return read_jsonl(out / "verdicts.jsonl", lambda r: from_row(Verdict, r, extra_to_meta=False))


def test_both_orders_are_judged_and_mapped_back(fake, items, tmp_path):
    stats = distill(config(fake, items, tmp_path / "run"))
    vs = verdicts(tmp_path / "run")
    assert [(v.id, v.order) for v in vs] == [(p.id, o) for p in PAIRS for o in ("ab", "ba")]
    good = {p.id: "1" if p.answer1 == "GOOD" else "2" for p in PAIRS}
    assert all(v.parse_ok and v.winner == good[v.id] for v in vs)
    for v in vs:  # scores refer to the original answer1/answer2 in both orders
        assert v.scores == ([9.0, 2.0] if good[v.id] == "1" else [2.0, 9.0])
    assert stats["verdicts"] == 12 and stats["this_run"]["sent"] == 12 and fake.stats()["ok"] == 12
    assert (tmp_path / "run" / "items.jsonl").exists() and (tmp_path / "run" / "manifest.json").exists()


def test_rerun_sends_nothing_and_rebuilds_the_same_verdicts(fake, items, tmp_path):
    out = tmp_path / "run"
    distill(config(fake, items, out))
    first = (out / "verdicts.jsonl").read_text()
    stats = distill(config(fake, items, out))
    assert stats["this_run"]["sent"] == 0 and stats["this_run"]["cache_hits"] == 12
    assert fake.stats()["requests"] == 12
    assert (out / "verdicts.jsonl").read_text() == first  # rebuilt, not appended


def test_a_changed_request_is_asked_again(fake, items, tmp_path):
    out = tmp_path / "run"
    distill(config(fake, items, out))
    stats = distill(config(fake, items, out, max_tokens=100))
    assert stats["this_run"]["sent"] == 12 and fake.stats()["ok"] == 24


def test_malformed_items_exit_2_naming_line_before_any_call(fake, tmp_path, capsys):
    bad = tmp_path / "items.jsonl"
    bad.write_text('{"id": "a", "question": "q", "answer1": "x", "answer2": "y"}\n\n{"id": "b", "question": "q"\n')
    out = tmp_path / "run"
    code = main(["distill", "--input", str(bad), "--mode", "pairwise", "--template", "judgelm", "--teacher-model",
                 "m", "--teacher-base-url", fake.base_url, "--out", str(out), "--no-progress"])
    assert code == 2 and f"{bad}:3: malformed JSON" in capsys.readouterr().err
    assert fake.stats()["requests"] == 0 and not out.exists()


def test_an_item_missing_a_template_field_names_its_line(fake, tmp_path):
    path = tmp_path / "single.jsonl"
    write_jsonl(path, [SingleItem(id="a", question="q", answer="x", reference="r"),
                       SingleItem(id="b", question="q", answer="y")])
    with pytest.raises(InputError, match=r"single.jsonl:2: .*reference"):
        distill(config(fake, path, tmp_path / "run", template="score-100"))
    with pytest.raises(ConfigError, match="pairwise but --mode is pointwise"):
        distill(config(fake, path, tmp_path / "run", mode="pointwise"))
    assert fake.stats()["requests"] == 0


def test_dry_run_counts_and_estimates_without_calling(fake, items, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["distill", "--input", str(items), "--mode", "pairwise", "--template", "judgelm", "--teacher-model",
            "gpt-4o", "--teacher-base-url", fake.base_url, "--out", str(out), "--dry-run"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "12 calls to gpt-4o" in text and "12 to send" in text and "characters / 4" in text
    assert "estimated cost: $" in text and "$2.5 / $10 per 1M" in text
    assert fake.stats()["requests"] == 0 and not out.exists()
    distill(config(fake, items, out, model="gpt-4o"))
    plan = estimate(config(fake, items, out, model="gpt-4o"))
    assert plan["calls_cached"] == 12 and plan["calls_to_send"] == 0 and plan["cost_usd"] == 0


def test_dry_run_says_plainly_when_the_price_is_unknown(fake, items, tmp_path):
    plan = estimate(config(fake, items, tmp_path / "run", model="my-local-model"))
    assert plan["cost_usd"] is None and plan["price"].startswith("unknown: no price for 'my-local-model'")


def test_max_cost_stops_before_exceeding_and_resumes(fake, items, tmp_path):
    prices = tmp_path / "prices.yaml"
    prices.write_text("teacher: {input: 1000, output: 1000}\n")  # USD per 1M: about $0.25 a call here
    out = tmp_path / "run"
    budget = 1.2
    with pytest.raises(BudgetExceeded, match="rerun with a larger --max-cost"):
        distill(config(fake, items, out, model="teacher", prices=str(prices), max_cost=budget, max_tokens=64,
                       concurrency=2))
    stats = json.loads((out / "stats.json").read_text())
    assert 0 < stats["cost_usd"] <= budget and stats["this_run"]["stopped"] == "max-cost"
    assert 0 < stats["verdicts"] < 12 and len(verdicts(out)) == stats["verdicts"]
    done = fake.stats()["ok"]
    stats = distill(config(fake, items, out, model="teacher", prices=str(prices), max_cost=100, max_tokens=64))
    assert stats["verdicts"] == 12 and stats["this_run"]["sent"] == 12 - done
    assert fake.stats()["repeated_ok"] == 0


def test_max_cost_needs_a_price(fake, items, tmp_path):
    with pytest.raises(ConfigError, match="needs a price for 'my-local-model'"):
        distill(config(fake, items, tmp_path / "run", model="my-local-model", max_cost=1))


def test_samples_ask_k_times_with_distinct_seeds(fake, items, tmp_path):
    distill(config(fake, items, tmp_path / "run", samples=3, temperature=0.7))
    vs = verdicts(tmp_path / "run")
    assert len(vs) == 36 and {v.sample for v in vs} == {0, 1, 2}
    assert fake.stats()["distinct_ok"] == 36  # same prompt, three seeds: three requests


def test_reference_free_rewrite_is_a_second_turn(tmp_path):
    path = tmp_path / "single.jsonl"
    write_jsonl(path, [SingleItem(id="a", question="2+2?", answer="4", reference="4"),
                       SingleItem(id="b", question="3+3?", answer="6")])
    seen = []
    with FakeOpenAI(reply=lambda body: seen.append(body["messages"]) or grader(body)) as fake:
        stats = distill(config(fake, path, tmp_path / "run", template="prometheus-absolute",
                               reference_free_rewrite=True))
        again = distill(config(fake, path, tmp_path / "run", template="prometheus-absolute",
                               reference_free_rewrite=True))
    vs = verdicts(tmp_path / "run")
    assert [(v.id, v.meta.get("variant")) for v in vs] == [("a", None), ("a", "reference-free"), ("b", None)]
    assert [v.score for v in vs] == [4.0, 4.0, 4.0] and "reference" not in vs[1].raw
    rewrite = next(m for m in seen if len(m) == 4)
    assert [m["role"] for m in rewrite] == ["system", "user", "assistant", "user"]
    assert rewrite[2]["content"] == vs[0].raw and rewrite[3]["content"] == REWRITE_INSTRUCTION
    assert stats["rewrites"] == {"due": 1, "answered": 1} and again["this_run"]["sent"] == 0
    with pytest.raises(ConfigError, match="reference-free-rewrite"):
        distill(config(fake, path, tmp_path / "run2", template="score-100", reference_free_rewrite=True))


def test_stats_count_retries_by_cause_and_tokens(tmp_path, items):
    with FakeOpenAI(reply=prefers_good, rate_limit_rate=0.3, retry_after=0.01, error_rate=0.2, seed=1) as fake:
        stats = distill(config(fake, items, tmp_path / "run", max_retries=30))
        served = fake.stats()
    retries = stats["this_run"]["retries"]
    assert retries["rate_limit"] == served["rate_limited"] and retries["server_error"] == served["server_errors"]
    assert stats["tokens"]["gpt-4o-mini"] == {"prompt_tokens": served["prompt_tokens"],
                                              "completion_tokens": served["completion_tokens"]}
    assert stats["cost_usd"] == pytest.approx((served["prompt_tokens"] * 0.15 + served["completion_tokens"] * 0.6) / 1e6,
                                              abs=1e-6)
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["stage"] == "distill" and manifest["counts"]["verdicts"] == 12
    assert manifest["inputs"]["items"]["sha256"] and manifest["cost_usd"] == stats["cost_usd"]


def test_cli_401_exits_1_with_a_clear_message(tmp_path, items, capsys):
    with FakeOpenAI(unauthorized=True) as fake:
        code = main(["distill", "--input", str(items), "--mode", "pairwise", "--template", "judgelm",
                     "--teacher-model", "m", "--teacher-base-url", fake.base_url, "--out", str(tmp_path / "run"),
                     "--no-progress"])
        assert 1 <= fake.stats()["unauthorized"] <= 8  # the requests already in flight, none retried
    assert code == 1 and "refused the API key (401 Unauthorized)" in capsys.readouterr().err


def test_cli_run_prints_a_summary(fake, items, tmp_path, capsys):
    args = ["distill", "--input", str(items), "--mode", "pairwise", "--template", "judgelm", "--teacher-model",
            "gpt-4o", "--teacher-base-url", fake.base_url, "--out", str(tmp_path / "run"), "--no-swap",
            "--concurrency", "3"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "6 verdicts (0 unparsed)" in text and "6 calls sent, 0 cached" in text and "teacher cost so far: $" in text


def test_identical_requests_are_sent_once_and_serve_every_item(fake, tmp_path):
    path = tmp_path / "dups.jsonl"
    twin = PAIRS[0]
    write_jsonl(path, [twin, PairItem(**{**twin.__dict__, "id": "twin"}), *PAIRS[1:3]])
    stats = distill(config(fake, path, tmp_path / "run"))
    assert fake.stats()["ok"] == 6 and stats["verdicts"] == 8
    vs = {(v.id, v.order): v.raw for v in verdicts(tmp_path / "run")}
    assert vs[("twin", "ba")] == vs[(twin.id, "ba")]
    assert estimate(config(fake, path, tmp_path / "run"))["calls_total"] == 6
    assert stats["tokens"]["gpt-4o-mini"]["prompt_tokens"] == fake.stats()["prompt_tokens"]  # a shared reply is paid once


def test_verdict_only_holds_the_teacher_to_the_verdict_format(tmp_path, items):
    seen = []

    def verdict_only(body):
        seen.append(body)
        return "9 2"

    with FakeOpenAI(reply=verdict_only) as server:
        distill(config(server, items, tmp_path / "run", verdict_only=True))
    assert all(b["structured_outputs"] == {"regex": r"([1-9]|10) ([1-9]|10)"} and b["max_tokens"] <= 8 for b in seen)
    assert all(v.parse_ok for v in verdicts(tmp_path / "run"))
    with pytest.raises(ConfigError, match="nothing to rewrite"):
        distill(config(server, items, tmp_path / "other", verdict_only=True, reference_free_rewrite=True))


def test_distill_flags_are_generated_from_the_configs_with_their_names_and_defaults(tmp_path):
    import dataclasses

    from judge.cli import build_parser
    from judge.cli.distill import _config

    parser = build_parser()
    base = ["distill", "--input", "i.jsonl", "--mode", "pairwise", "--template", "judgelm", "--teacher-model", "t",
            "--out", "o"]
    config = _config(parser.parse_args(base))
    assert config.teacher == TeacherConfig(model="t")  # every other field at its dataclass default
    assert config == DistillConfig(input="i.jsonl", template="judgelm", out="o", mode="pairwise", teacher=config.teacher)
    flags = ["--no-swap", "--seed", "3", "--samples", "2", "--teacher-base-url", "http://h/v1", "--concurrency", "4",
             "--timeout", "9", "--max-retries", "1", "--temperature", "0.5", "--max-tokens", "64", "--max-cost", "2",
             "--verdict-only", "--prices", "p.yaml", "--no-progress", "--batch", "--batch-retry", "batch",
             "--batch-max-requests", "10", "--batch-max-bytes", "1000", "--batch-poll", "5"]
    given = _config(parser.parse_args([*base, *flags]))
    assert dataclasses.asdict(given.teacher) == {**dataclasses.asdict(TeacherConfig(model="t")), "seed": 3,
                                                 "base_url": "http://h/v1", "concurrency": 4, "timeout": 9.0,
                                                 "max_retries": 1, "temperature": 0.5, "max_tokens": 64}
    assert (given.swap, given.samples, given.max_cost, given.verdict_only, given.prices, given.progress, given.batch,
            given.batch_retry, given.batch_max_requests, given.batch_max_bytes, given.batch_poll) == (
        False, 2, 2.0, True, "p.yaml", False, True, "batch", 10, 1000, 5.0)
    yaml = tmp_path / "distill.yaml"
    yaml.write_text("input: i.jsonl\ntemplate: judgelm\nout: o\nmodel: t\nconcurrency: 16\nsamples: 3\n")
    from_file = _config(parser.parse_args(["distill", "--config", str(yaml), "--samples", "4"]))
    assert (from_file.teacher.model, from_file.teacher.concurrency, from_file.samples) == ("t", 16, 4)  # flags win
    yaml.write_text("input: i.jsonl\nconcurrrency: 16\n")
    with pytest.raises(ConfigError, match="concurrrency"):
        _config(parser.parse_args(["distill", "--config", str(yaml)]))


def test_cache_keys_are_those_earlier_versions_wrote(tmp_path):
    """An existing DIR/cache.sqlite must be reused by a rerun: these keys were computed by the code before
    the teacher became a Backend (judge/teacher.py); if a key changes, every cached reply is paid again."""
    from judge.distill import make_plan

    path = tmp_path / "items.jsonl"
    path.write_text(json.dumps({"id": "q1", "question": "What is 2+2?", "answer1": "4", "answer2": "five"}) + "\n")
    teacher = TeacherConfig(model="gpt-4o-mini", temperature=0.7, seed=3)
    full = make_plan(DistillConfig(input=str(path), template="pandalm", out=str(tmp_path), samples=2, teacher=teacher))
    assert [(c.order, c.sample, c.key) for c in full.calls][:2] == [
        ("ab", 0, "c3408c59ed1f3cec9c583672648ea4ce593a02d194d975173c169b53b3700e2a"),
        ("ab", 1, "a7f6d4f346b0f43f5690ef5a08a5e4d0449e75f8c35fdcf9a44e6f1739b358bc")]
    assert full.calls[2].key == "541c664de37eb9a68680eccdefcee194058d3020971848fd506849d319c3c84c"  # ba, sample 0
    verdict_only = make_plan(DistillConfig(input=str(path), template="pandalm", out=str(tmp_path), samples=2,
                                           teacher=teacher, verdict_only=True))
    assert verdict_only.calls[0].key == "7ed604867d786ae180f8dad39a612aaf151682aa2eaba828acc52428dbe86e15"
    path.write_text(json.dumps({"id": "s1", "question": "Q?", "answer": "A.", "reference": "R.",
                                "rubric": "Is it right?"}) + "\n")
    pointwise = make_plan(DistillConfig(input=str(path), template="prometheus-absolute", out=str(tmp_path),
                                        reference_free_rewrite=True, teacher=TeacherConfig(model="gpt-4o-mini")))
    first = pointwise.calls[0]
    assert first.key == "2573384cad9747605bc0f3973767d32ba31031adc304561862b1298b3620fbd7"
    rewrite = pointwise.rewrite_of(first, "Feedback: fine. [RESULT] 4")
    assert rewrite.key == "7ad233e16923c8326775b36cd7adf80bbb554ec9eee4c344620735df7a4d03cc"


def test_a_prompt_the_teacher_refuses_as_too_long_stops_the_run_and_is_never_a_verdict(items, tmp_path, monkeypatch):
    """The teacher backend records a too-long prompt as that request's failure; distill has no per-item
    failure record, so the run stops (exit 1) with the endpoint's reason, keeping what was answered."""
    import httpx
    import openai

    from judge.core.errors import TeacherError

    def endpoint(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        if "Question 3?" in body["messages"][-1]["content"]:
            return httpx.Response(400, json={"error": {"message": "This model's maximum context length is 8 tokens",
                                                       "type": "invalid_request_error", "code": None}})
        return httpx.Response(200, json={"id": "x", "object": "chat.completion", "created": 0, "model": "gpt-4o-mini",
                                         "choices": [{"index": 0, "finish_reason": "stop", "message": {
                                             "role": "assistant", "content": prefers_good(body)}}]})

    build = TeacherConfig.backend

    def backend(self, **kwargs):
        made = build(self, **kwargs)
        made.client = openai.AsyncOpenAI(base_url="http://teacher/v1", api_key="k", max_retries=0,
                                         http_client=httpx.AsyncClient(transport=httpx.MockTransport(endpoint)))
        return made

    monkeypatch.setattr(TeacherConfig, "backend", backend)
    run = config(type("Fake", (), {"base_url": "http://teacher/v1"}), items, tmp_path / "run", concurrency=1)
    with pytest.raises(TeacherError, match="too long"):
        distill(run)
    answered = verdicts(tmp_path / "run")
    assert answered and all(v.parse_ok for v in answered) and "p3" not in {v.id for v in answered}
    stats = json.loads((tmp_path / "run" / "stats.json").read_text())
    assert stats["calls"]["missing"] > 0 and stats["this_run"]["stopped"].startswith("TeacherError")
