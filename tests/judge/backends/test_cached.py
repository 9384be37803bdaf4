"""The reply cache as a layer around any backend (FakeBackend here; distill wears it around the
teacher): misses only, identical requests once, replies committed as they arrive, failures never cached."""

import asyncio
import json
import sqlite3

import pytest

from judge.backends import GenerationParams, Request
from judge.backends.base import BackendError, FakeBackend, Generation
from judge.backends.cache import ReplyCache
from judge.backends.cached import CachedBackend
from judge.templates import Prompt


def request(text: str, **params) -> Request:
    return Request(Prompt([{"role": "user", "content": text}], text), GenerationParams(**params))


def upper(r: Request) -> str:
    return r.prompt.text.upper()


def test_a_rerun_sends_only_the_misses_and_identical_requests_once(tmp_path):
    inner = FakeBackend(upper)
    with ReplyCache(tmp_path / "cache.sqlite") as cache:
        first = CachedBackend(inner, cache).generate([request("a"), request("b"), request("a")])
    assert [g.text for g in first] == ["A", "B", "A"] and [r.prompt.text for r in inner.calls] == ["a", "b"]
    with ReplyCache(tmp_path / "cache.sqlite") as cache:  # a new process, the same file
        cached = CachedBackend(inner, cache)
        again = cached.generate([request("b"), request("c"), request("a")])
    assert [g.text for g in again] == ["B", "C", "A"] and [r.prompt.text for r in inner.calls] == ["a", "b", "c"]
    assert cached.hits == 2
    assert again[0].usage == first[1].usage  # the reply as it came, usage included


def test_what_defines_a_request_changes_its_key(tmp_path):
    with ReplyCache(tmp_path / "cache.sqlite") as cache:
        cached = CachedBackend(FakeBackend(upper), cache)
        keys = {cached.key(r) for r in [request("a"), request("a", seed=1), request("a", regex="x"),
                                        Request(request("a").prompt, adapter="lora"),
                                        Request(request("a").prompt, identity={"template_hash": "1"})]}
    assert len(keys) == 5


def test_the_stored_row_is_the_wire_body_and_the_reply(tmp_path):
    with ReplyCache(tmp_path / "cache.sqlite") as cache:
        CachedBackend(FakeBackend(upper, name="judge-m"), cache).generate([request("a", max_tokens=8)])
    row = sqlite3.connect(tmp_path / "cache.sqlite").execute("SELECT model, request, reply FROM replies").fetchone()
    assert row[0] == "judge-m"
    assert json.loads(row[1]) == {"messages": [{"role": "user", "content": "a"}], "temperature": 0.0, "max_tokens": 8,
                                  "seed": 0}
    assert json.loads(row[2]) == {"text": "A", "usage": {"prompt_tokens": 1, "completion_tokens": 1}, "model": None,
                                  "finish_reason": None}


class Flaky(FakeBackend):
    """Refuses prompts saying "long" (a per-request failure) and stops at prompts saying "down"."""

    def generate(self, requests):
        out = super().generate(requests)
        for i, r in enumerate(requests):
            if "long" in r.prompt.text:
                out[i] = Generation(text="", error="too long")
            if "down" in r.prompt.text:
                raise BackendError("endpoint down", partial=[*out[:i], *[None] * (len(requests) - i)])
        return out


def test_a_failure_is_never_cached_and_a_stop_keeps_what_came_back(tmp_path):
    with ReplyCache(tmp_path / "cache.sqlite") as cache:
        cached = CachedBackend(Flaky(upper), cache)
        cached.generate([request("x")])
        assert cached.generate([request("long")])[0].error == "too long"
        with pytest.raises(BackendError) as caught:
            cached.generate([request("y"), request("x"), request("down"), request("z")])
        assert [g and g.text for g in caught.value.partial] == ["Y", "X", None, None]  # the caller's order
        assert cache.get(cached.key(request("y")))["text"] == "Y"  # committed before the error went up
        assert cache.get(cached.key(request("long"))) is None and len(cache) == 2


def test_concurrent_identical_requests_are_asked_once(tmp_path):
    inner = FakeBackend(upper)

    async def main(cached):
        return await asyncio.gather(*(cached.acomplete(request("same")) for _ in range(5)))

    with ReplyCache(tmp_path / "cache.sqlite") as cache:
        cached = CachedBackend(inner, cache)
        generations = asyncio.run(main(cached))
    assert [g.text for g in generations] == ["SAME"] * 5 and len(inner.calls) == 1 and cached.hits == 4
