"""The reply cache: what makes a key, persistence across processes, a kill right after a commit."""

import subprocess
import sys
import textwrap

from judge.backends.cache import ReplyCache, request_key

MESSAGES = [{"role": "system", "content": "Be fair."}, {"role": "user", "content": "Which is better?"}]
PARAMS = {"temperature": 0.0, "max_tokens": 64, "seed": 0, "template": "judgelm@1", "template_hash": "abc"}


def test_key_is_canonical_and_covers_model_messages_and_params():
    key = request_key("gpt-4o", MESSAGES, PARAMS)
    assert key == request_key("gpt-4o", [dict(reversed(m.items())) for m in MESSAGES], dict(reversed(PARAMS.items())))
    others = [
        request_key("gpt-4o-mini", MESSAGES, PARAMS),
        request_key("gpt-4o", MESSAGES[1:], PARAMS),
        request_key("gpt-4o", MESSAGES, {**PARAMS, "seed": 1}),
        request_key("gpt-4o", MESSAGES, {**PARAMS, "template_hash": "abd"}),  # edited prompt text: ask again
    ]
    assert len({key, *others}) == 5


def test_replies_persist_and_come_back_in_bulk(tmp_path):
    path = tmp_path / "cache.sqlite"
    with ReplyCache(path) as cache:
        for i in range(1200):  # more than one SELECT chunk
            cache.put(f"k{i}", "m", {"i": i}, {"text": f"reply {i}", "usage": None})
        cache.put("k0", "m", {"i": 0}, {"text": "replaced", "usage": None})
    with ReplyCache(path) as cache:
        assert len(cache) == 1200
        assert cache.get("k0")["text"] == "replaced" and cache.get("missing") is None
        found = cache.get_many([f"k{i}" for i in range(0, 1300, 7)])
        assert len(found) == len(range(0, 1200, 7)) and found["k7"]["text"] == "reply 7"
        assert cache._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_committed_reply_survives_sigkill(tmp_path):
    path = tmp_path / "cache.sqlite"
    child = textwrap.dedent(f"""
        import os, signal
        from judge.backends.cache import ReplyCache
        cache = ReplyCache({str(path)!r})
        cache.put("paid", "m", {{}}, {{"text": "kept"}})
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    result = subprocess.run([sys.executable, "-c", child], timeout=60)
    assert result.returncode == -9
    with ReplyCache(path) as cache:
        assert cache.get("paid") == {"text": "kept"}


def test_put_many_stores_rows_at_once_and_keeps_a_reply_already_cached(tmp_path):
    with ReplyCache(tmp_path / "cache.sqlite") as cache:
        cache.put("a", "m", {"messages": MESSAGES}, {"text": "first"})
        cache.put_many([("a", "m", {"messages": MESSAGES}, {"text": "from a batch"}),
                        ("b", "m", {"messages": MESSAGES}, {"text": "b"})])
        assert cache.get_many(["a", "b"]) == {"a": {"text": "first"}, "b": {"text": "b"}}
