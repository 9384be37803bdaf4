"""The batch ledger of a distill run folder (tables beside `replies` in its cache.sqlite): each
uploaded input file with the keys and request bodies it covers, recorded *before* its batch is
created, the batch id the moment it exists, its last status, whether its results are stored, and
its error rows, and any other batch found made from the same file (a duplicate: billed, so recorded
with its cost). It is what lets a killed `distill --batch` rerun re-attach instead of paying twice."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

FINAL = ("completed", "failed", "expired", "cancelled")  # batch statuses that change no more
CANCELLED = "batch_cancelled"  # rows a cancelled batch did not reach
REFUSED = "batch_failed"  # rows of a batch that failed validation (never run, not billed)
NOT_FAILURES = (CANCELLED, REFUSED)  # unanswered, but nothing to retry live: a later --batch run resubmits them

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batch_files (
    file_id TEXT PRIMARY KEY,
    batch_id TEXT,
    model TEXT NOT NULL,
    requests INTEGER NOT NULL,
    status TEXT,
    collected INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS batch_requests (
    file_id TEXT NOT NULL,
    key TEXT NOT NULL,
    request TEXT NOT NULL,
    PRIMARY KEY (file_id, key)
);
CREATE TABLE IF NOT EXISTS batch_errors (
    file_id TEXT NOT NULL,
    key TEXT NOT NULL,
    code TEXT NOT NULL,
    message TEXT,
    PRIMARY KEY (file_id, key)
);
CREATE TABLE IF NOT EXISTS batch_duplicates (
    batch_id TEXT PRIMARY KEY,
    file_id TEXT NOT NULL,
    status TEXT,
    cost_usd REAL,
    settled INTEGER NOT NULL DEFAULT 0
);
"""


@dataclass(frozen=True)
class OpenFile:
    """An uploaded input file whose results are not collected yet."""

    file_id: str
    batch_id: str | None
    requests: int
    created: float


class BatchLedger:
    """The batches of a run folder, in its cache.sqlite: each input file with the keys (and request
    bodies) it covers, its batch id and last status, whether its results are stored, its error rows."""

    def __init__(self, path: str | Path):
        self._db = sqlite3.connect(path)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._db.commit()

    def add_file(self, file_id: str, model: str, requests: dict[str, dict]) -> None:
        with self._db:
            self._db.execute("INSERT INTO batch_files (file_id, model, requests, created) VALUES (?, ?, ?, ?)",
                             (file_id, model, len(requests), time.time()))
            self._db.executemany("INSERT INTO batch_requests VALUES (?, ?, ?)",
                                 [(file_id, k, json.dumps(r, ensure_ascii=False)) for k, r in requests.items()])

    def set_batch(self, file_id: str, batch_id: str, status: str) -> None:
        with self._db:
            self._db.execute("UPDATE batch_files SET batch_id = ?, status = ? WHERE file_id = ?",
                             (batch_id, status, file_id))

    def set_status(self, file_id: str, status: str) -> None:
        with self._db:
            self._db.execute("UPDATE batch_files SET status = ? WHERE file_id = ?", (status, file_id))

    def open_files(self) -> list[OpenFile]:
        rows = self._db.execute("SELECT file_id, batch_id, requests, created FROM batch_files WHERE collected = 0 "
                                "ORDER BY created")
        return [OpenFile(*row) for row in rows]

    def requests(self, file_id: str) -> dict[str, dict]:
        rows = self._db.execute("SELECT key, request FROM batch_requests WHERE file_id = ?", (file_id,))
        return {key: json.loads(request) for key, request in rows}

    def collected(self, file_id: str, errors: list[tuple[str, str, str]]) -> None:
        """Results stored: record the file's error rows (key, code, message) and close it."""
        with self._db:
            self._db.executemany("INSERT OR REPLACE INTO batch_errors VALUES (?, ?, ?, ?)",
                                 [(file_id, *error) for error in errors])
            self._db.execute("UPDATE batch_files SET collected = 1 WHERE file_id = ?", (file_id,))

    def failed(self, keys: Iterable[str]) -> dict[str, str]:
        """key -> error code, for the given keys with an error row worth retrying (not NOT_FAILURES)."""
        keys = list(dict.fromkeys(keys))
        found: dict[str, str] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start:start + 500]
            rows = self._db.execute(f"SELECT key, code FROM batch_errors WHERE code NOT IN (?, ?) AND key IN "
                                    f"({','.join('?' * len(chunk))})", [*NOT_FAILURES, *chunk])
            found.update(rows)
        return found

    def open_keys(self) -> set[str]:
        """The keys inside input files whose results are not collected yet (submitted, or about to be)."""
        rows = self._db.execute("SELECT r.key FROM batch_requests r JOIN batch_files f ON f.file_id = r.file_id "
                                "WHERE f.collected = 0")
        return {key for (key,) in rows}

    def add_duplicate(self, file_id: str, batch_id: str, status: str) -> None:
        with self._db:
            self._db.execute("INSERT OR IGNORE INTO batch_duplicates (batch_id, file_id, status) VALUES (?, ?, ?)",
                             (batch_id, file_id, status))

    def unsettled_duplicates(self) -> list[tuple[str, str]]:
        """(batch id, file id) of the duplicates whose final status and cost are not recorded yet."""
        return list(self._db.execute("SELECT batch_id, file_id FROM batch_duplicates WHERE settled = 0"))

    def settle_duplicate(self, batch_id: str, status: str, cost: float | None) -> None:
        with self._db:
            self._db.execute("UPDATE batch_duplicates SET status = ?, cost_usd = ?, settled = 1 WHERE batch_id = ?",
                             (status, cost, batch_id))

    def duplicate_cost(self) -> float | None:
        """USD the duplicates cost (None when one's cost is unknown: no price, or not settled yet)."""
        rows = list(self._db.execute("SELECT cost_usd, settled FROM batch_duplicates"))
        return None if any(c is None or not s for c, s in rows) else sum(c for c, _ in rows)

    def summary(self) -> list[dict]:
        rows = self._db.execute(
            "SELECT f.batch_id, f.file_id, f.status, f.requests, f.collected, COUNT(e.key) FROM batch_files f "
            "LEFT JOIN batch_errors e ON e.file_id = f.file_id GROUP BY f.file_id ORDER BY f.created")
        duplicates: dict[str, list[dict]] = {}
        for batch_id, file_id, status, cost in self._db.execute(
                "SELECT batch_id, file_id, status, cost_usd FROM batch_duplicates ORDER BY batch_id"):
            duplicates.setdefault(file_id, []).append({"batch_id": batch_id, "status": status, "cost_usd": cost})
        return [{"batch_id": b, "input_file_id": f, "status": s, "requests": n, "collected": bool(c), "error_rows": e,
                 **({"duplicates": duplicates[f]} if f in duplicates else {})}
                for b, f, s, n, c, e in rows]

    def close(self) -> None:
        self._db.close()
