"""The reply cache as a layer any backend can wear: `CachedBackend(backend, ReplyCache(path))`.

A request's key is the sha256 of its wire body (`openai.request_body`, the model included) and its
`identity` (judge.backends.cache.request_key), so a changed template, sample or sampling field asks again.
A reply is committed the moment it arrives, before anything is built from it: a killed run loses
only the requests in flight, a rerun sends only the misses, identical requests are asked once. A
failure of one request (`Generation.error`) is not a reply and is never cached.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from judge.backends.base import Backend, BackendError, Generation, Request, served_model
from judge.backends.cache import ReplyCache, request_key
from judge.backends.openai import request_body


def cache_key(request: Request, model: str) -> str:
    body = stored_request(request_body(request, model))
    return request_key(model, body.pop("messages"), {**body, **(request.identity or {})})


def stored_request(body: dict) -> dict:
    """What the cache stores as a reply's request: the body without the model (a column of its own)."""
    return {k: v for k, v in body.items() if k != "model"}


def reply_record(generation: Generation) -> dict:
    """A generation as the cache stores it (the logprob fields only when there are some)."""
    record = {"text": generation.text, "usage": generation.usage, "model": generation.model,
              "finish_reason": generation.finish_reason}
    if generation.tokens is not None:
        record.update(tokens=generation.tokens, top_logprobs=generation.top_logprobs)
    return record


def generation_of(record: dict) -> Generation:
    """The Generation a cached reply stands for."""
    return Generation(text=record["text"], usage=record.get("usage"), model=record.get("model"),
                      finish_reason=record.get("finish_reason"), tokens=record.get("tokens"),
                      top_logprobs=record.get("top_logprobs"))


class CachedBackend:
    """`generate` and `acomplete` answer from the cache where they can and send the rest to `backend`.
    `hits` counts the requests answered from the cache."""

    def __init__(self, backend: Backend, cache: ReplyCache):
        self.backend, self.cache = backend, cache
        self.name = backend.name
        self.hits = 0
        self._asking: dict[str, asyncio.Lock] = {}  # key -> held while that request is in flight

    def key(self, request: Request) -> str:
        return cache_key(request, served_model(self.backend, request))

    def _store(self, key: str, request: Request, generation: Generation) -> None:
        if generation.error is None:
            model = served_model(self.backend, request)
            self.cache.put(key, model, stored_request(request_body(request, model)), reply_record(generation))

    def generate(self, requests: Sequence[Request]) -> list[Generation]:
        keys = [self.key(r) for r in requests]
        found = {key: generation_of(reply) for key, reply in self.cache.get_many(keys).items()}
        self.hits += sum(key in found for key in keys)
        misses = {key: r for key, r in zip(keys, requests) if key not in found}  # identical requests asked once
        try:
            fresh, failure = self.backend.generate(list(misses.values())), None
        except BackendError as e:
            fresh, failure = e.partial, e
        for (key, request), generation in zip(misses.items(), fresh):  # committed before anything else
            if generation is not None:
                self._store(key, request, generation)
                found[key] = generation
        if failure is not None:
            failure.partial = [found.get(key) for key in keys]  # in the caller's order, cached replies included
            raise failure
        return [found[key] for key in keys]

    async def acomplete(self, request: Request) -> Generation:
        key = self.key(request)
        async with self._asking.setdefault(key, asyncio.Lock()):  # an identical request in flight: wait for it
            reply = self.cache.get(key)
            if reply is not None:
                self.hits += 1
                return generation_of(reply)
            generation = await self.backend.acomplete(request)
            self._store(key, request, generation)
            return generation
