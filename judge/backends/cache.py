"""The reply cache's file: every reply, keyed by a hash of what was asked, in one sqlite file
(`judge.backends.cached.CachedBackend` is the layer that asks it first; distill's teacher wears it).

A reply is committed the moment it arrives, before any verdict is built from it, so a killed run
loses only the requests in flight and a rerun never pays twice. WAL mode lets a reader (a dry run,
a second terminal) look while a run writes; `synchronous=NORMAL` makes each commit survive the
process being killed at any moment (only a power cut can drop the last few), at no fsync per reply.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS replies (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    request TEXT NOT NULL,
    reply TEXT NOT NULL,
    created REAL NOT NULL
)
"""
_CHUNK = 500  # keys per SELECT ... IN (...), well below sqlite's variable limit


def request_key(model: str, messages: list[dict], params: dict) -> str:
    """sha256 of the canonical JSON of (model, messages, params). `params` holds the sampling
    parameters and whatever else defines the request's identity (the template's name@version and
    text hash, the sample index), so changing any of them asks again instead of reusing a reply.

    >>> request_key("m", [{"role": "user", "content": "hi"}], {"b": 1, "a": 2}) == \\
    ...     request_key("m", [{"role": "user", "content": "hi"}], {"a": 2, "b": 1})
    True
    """
    blob = json.dumps({"model": model, "messages": messages, "params": params}, sort_keys=True,
                      ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


class ReplyCache:
    """`put(key, ...)` commits at once; `get`/`get_many` return the stored reply dicts."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(_SCHEMA)
        self._db.commit()

    def put(self, key: str, model: str, request: dict, reply: dict) -> None:
        with self._db:  # one transaction, committed on exit
            self._db.execute("INSERT OR REPLACE INTO replies VALUES (?, ?, ?, ?, ?)",
                             (key, model, json.dumps(request, ensure_ascii=False),
                              json.dumps(reply, ensure_ascii=False), time.time()))

    def put_many(self, rows: Iterable[tuple[str, str, dict, dict]]) -> None:
        """(key, model, request, reply) rows in one transaction; a reply already cached is kept (a
        batch's results never overwrite what a run has already built verdicts from)."""
        now = time.time()
        with self._db:
            self._db.executemany("INSERT OR IGNORE INTO replies VALUES (?, ?, ?, ?, ?)",
                                 [(key, model, json.dumps(request, ensure_ascii=False),
                                   json.dumps(reply, ensure_ascii=False), now) for key, model, request, reply in rows])

    def get(self, key: str) -> dict | None:
        row = self._db.execute("SELECT reply FROM replies WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def get_many(self, keys: Iterable[str]) -> dict[str, dict]:
        keys = list(dict.fromkeys(keys))
        found: dict[str, dict] = {}
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start:start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            for key, reply in self._db.execute(f"SELECT key, reply FROM replies WHERE key IN ({marks})", chunk):
                found[key] = json.loads(reply)
        return found

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM replies").fetchone()[0]

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> ReplyCache:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
