"""The OpenAI backend's policy, as distill's teacher wears it (TeacherConfig.backend()), against the
fault-injecting fake server: retries by cause, Retry-After, fail-fast errors, timeouts, bounded
concurrency, counters. Sleeps are recorded instead of waited, so the tests check what the client
decided to wait, not how long it took.

Covers: judge/testing/fake_core.py, judge/testing/fake_chat.py, judge/backends/retry.py,
judge/distill/config.py, judge/testing/fake_openai.py."""

import asyncio

import pytest

from judge.backends import Request
from judge.backends.openai import request_body
from judge.core.errors import ConfigError, TeacherError
from judge.distill import TeacherConfig
from judge.templates import Prompt
from judge.testing.fake_openai import FakeOpenAI

MESSAGES = [{"role": "user", "content": "Which answer is better?"}]


class Sleeps(list):
    async def __call__(self, seconds):
        self.append(seconds)


def ask(fake, n=1, sleeps=None, **config):
    """Send n requests at once through a fresh teacher backend; returns (generations or the error, backend)."""
    settings = TeacherConfig(model="fake-teacher", base_url=fake.base_url, **config)
    teacher = settings.backend(sleep=sleeps if sleeps is not None else Sleeps())

    async def main():
        try:
            prompts = [Prompt([{"role": "user", "content": f"question {i}"}], f"question {i}") for i in range(n)]
            return await asyncio.gather(*(teacher.acomplete(Request(p, settings.params())) for p in prompts))
        except TeacherError as e:
            return e
        finally:
            await teacher.aclose()

    return asyncio.run(main()), teacher


def test_rate_limits_wait_at_least_retry_after():
    sleeps = Sleeps()
    with FakeOpenAI(rate_limit_rate=1.0, retry_after=7) as fake:
        error, teacher = ask(fake, sleeps=sleeps, max_retries=3)
        assert fake.stats()["rate_limited"] == 4  # the first try and three retries, then it gives up
    assert isinstance(error, TeacherError) and "failed 4 times" in str(error) and "HTTP 429" in str(error)
    assert len(sleeps) == 3 and all(7 <= s <= 8 for s in sleeps)
    assert teacher.retries == {"rate_limit": 3}


def test_retries_by_cause_until_every_request_succeeds():
    sleeps = Sleeps()
    with FakeOpenAI(rate_limit_rate=0.3, retry_after=2, error_rate=0.2, seed=3) as fake:
        replies, teacher = ask(fake, n=30, sleeps=sleeps, max_retries=20)
        stats = fake.stats()
    assert len(replies) == 30 and all(r.text and r.usage["completion_tokens"] > 0 for r in replies)
    assert teacher.calls == stats["ok"] == 30
    assert teacher.retries["rate_limit"] == stats["rate_limited"] > 0
    assert teacher.retries["server_error"] == stats["server_errors"] > 0
    # 429s carried Retry-After: 2; 500s carried none and backed off exponentially from 1 s
    assert sum(s >= 2 for s in sleeps) >= stats["rate_limited"]


def test_backoff_grows_exponentially_with_jitter():
    sleeps = Sleeps()
    with FakeOpenAI(error_rate=1.0) as fake:
        ask(fake, sleeps=sleeps, max_retries=5, backoff=1.0, max_backoff=8.0)
    caps = [1, 2, 4, 8, 8]
    assert len(sleeps) == 5 and all(cap / 2 <= s <= cap for s, cap in zip(sleeps, caps))


def test_401_fails_fast_without_retrying():
    sleeps = Sleeps()
    with FakeOpenAI(unauthorized=True) as fake:
        error, teacher = ask(fake, n=3, sleeps=sleeps, concurrency=1)
        stats = fake.stats()
    assert isinstance(error, TeacherError) and "401" in str(error) and "OPENAI_API_KEY" in str(error)
    assert stats["unauthorized"] == 1 and not sleeps and not teacher.retries


def test_wrong_api_key_is_401_and_right_one_works():
    with FakeOpenAI(api_key="sk-right") as fake:
        error, _ = ask(fake, api_key="sk-wrong")
        replies, _ = ask(fake, api_key="sk-right")
    assert isinstance(error, TeacherError) and "401" in str(error)
    assert replies[0].text


def test_unknown_model_fails_fast_with_404():
    with FakeOpenAI(models=("gpt-4o",)) as fake:
        error, _ = ask(fake)
        assert fake.stats()["not_found"] == 1
    assert isinstance(error, TeacherError) and "404" in str(error) and "--teacher-model" in str(error)


def test_a_teacher_that_never_answers_times_out_then_errors():
    with FakeOpenAI(stall_rate=1.0, stall_seconds=3) as fake:
        error, teacher = ask(fake, timeout=0.2, max_retries=1)
    assert isinstance(error, TeacherError) and "no answer within 0.2 s" in str(error)
    assert teacher.retries == {"timeout": 1}


def test_concurrency_is_bounded():
    with FakeOpenAI(latency=0.05) as fake:
        replies, _ = ask(fake, n=24, concurrency=4)
        stats = fake.stats()
    assert len(replies) == 24 and stats["max_in_flight"] == 4


def test_samples_use_successive_seeds():
    config = TeacherConfig(model="m", seed=5, temperature=0.7)
    assert [config.params(k).seed for k in range(3)] == [5, 6, 7]
    assert TeacherConfig(model="m", seed=None).params(2).seed is None
    # the body (and so the reply cache's keys) the teacher always sent, built by the backends' request_body
    body = request_body(Request(Prompt(MESSAGES, ""), TeacherConfig(model="m", seed=3, regex="(1|2)", max_tokens=8)
                                .params(1)), "m")
    assert body == {"model": "m", "messages": MESSAGES, "temperature": 0.0, "max_tokens": 8, "seed": 4,
                    "structured_outputs": {"regex": "(1|2)"}}


def test_openai_without_key_is_a_config_error(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        TeacherConfig(model="gpt-4o").backend()
    with pytest.raises(ConfigError, match="concurrency"):
        TeacherConfig(model="m", concurrency=0)
