"""distill --batch: the requests a run would send live, through the OpenAI Batch API instead (half
the price, answered within 24 h), into the same reply cache, so verdicts.jsonl, filter and a later
live rerun cannot tell the difference.

    pending calls -> JSONL input files, one line per request (custom_id = the request's cache key),
                     split under the provider's limits (requests and bytes per file)
                  -> files.create(purpose="batch") -> batches.create(completion_window="24h")
                  -> batches.retrieve every --batch-poll seconds (a bar: states, done/failed, elapsed)
                  -> files.content(output_file_id, error_file_id) -> replies into cache.sqlite

The ledger (judge.distill.batch_ledger: tables beside `replies` in the run's cache.sqlite) records each uploaded file and the
keys it covers *before* its batch is created, and the batch id the moment it exists, so a killed run
rerun with the same command re-attaches instead of paying twice (a file whose batch id was not yet
recorded is looked up by its input_file_id in batches.list). batches.create is never retried
blindly: on an error or timeout the provider may have created the batch all the same, so it is
looked up by its input file first and created again only when it is not there; any other batch
made from a file in use (a lagging listing, an older version's retries) is cancelled if running,
and recorded with its cost (judge.distill.batch_duplicates). Rows of a batch's error file, including
the rows an expired batch did not reach, are recorded with their code and retried live
(`--batch-retry live`) or in one follow-up batch per run (`--batch-retry batch`); what is still
unanswered after that is counted in stats.json and left for a rerun, never dropped. A cancelled
batch's unreached rows are not failures: a later `--batch` run submits them again. A batch that
fails validation (over the provider's limits, a model without batch support) stops the run with the
provider's reason; its requests were not run and are submitted again by the next `--batch` run.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from judge.backends.cached import reply_record, stored_request
from judge.backends.openai import read_completion, request_body
from judge.backends.pricing import PriceTable
from judge.core.errors import ConfigError, TeacherError
from judge.core.manifest import mask_urls
from judge.distill.batch_duplicates import find_duplicates, settle_duplicates
from judge.distill.batch_ledger import CANCELLED, FINAL, REFUSED, BatchLedger, OpenFile

if TYPE_CHECKING:
    from judge.distill.plan import Call, Plan

ENDPOINT = "/v1/chat/completions"
UPLOAD_TIMEOUT = 600.0  # seconds for one file upload or download (up to 200 MB)


def split_lines(lines: list[bytes], max_requests: int, max_bytes: int) -> list[list[int]]:
    """Indices of `lines` grouped into input files of at most `max_requests` lines and `max_bytes`.

    >>> split_lines([b"aa", b"bb", b"cc"], max_requests=2, max_bytes=100)
    [[0, 1], [2]]
    >>> split_lines([b"aa", b"bb", b"cc"], max_requests=10, max_bytes=5)
    [[0, 1], [2]]
    """
    files: list[list[int]] = []
    size = 0
    for index, line in enumerate(lines):
        if len(line) > max_bytes:
            raise ConfigError(f"one batch request is {len(line):,} bytes, more than --batch-max-bytes {max_bytes:,}")
        if not files or len(files[-1]) == max_requests or size + len(line) > max_bytes:
            files.append([])
            size = 0
        files[-1].append(index)
        size += len(line)
    return files


def input_lines(plan: Plan, calls: list[Call]) -> list[bytes]:
    return [(json.dumps({"custom_id": c.key, "method": "POST", "url": ENDPOINT,
                         "body": request_body(c.request, plan.model)},
                        ensure_ascii=False) + "\n").encode() for c in calls]


@dataclass
class BatchReport:
    """What the batch side of one run did, for stats.json."""

    submitted: int = 0  # requests put into new batches
    batches_created: int = 0
    found_after_error: int = 0  # of those: created although batches.create answered an error, found by input file
    batch_ids: list[str] = field(default_factory=list)  # every batch this run created or found, in order
    duplicates: int = 0  # other batches of a file in use, found, cancelled if running, and costed (batch_duplicates)
    reattached: int = 0  # batches of an earlier run picked up again
    cancelled: int = 0  # batches cancelled (--batch-cancel)
    answered: int = 0  # replies stored from output files
    error_rows: Counter = field(default_factory=Counter)  # by code: server errors, batch_expired, ...
    retried_live: int = 0
    retried_batch: int = 0  # error rows sent again in a follow-up batch
    unresolved: int = 0  # requests still unanswered after their retry (rerun to try again)
    cost_usd: float = 0.0  # USD of the replies this run stored from batches (at the batch price)

    def to_json(self) -> dict:
        return {"submitted": self.submitted, "batches_created": self.batches_created,
                "found_after_error": self.found_after_error, "batch_ids": self.batch_ids,
                "duplicates": self.duplicates, "reattached": self.reattached,
                "cancelled": self.cancelled, "answered": self.answered, "error_rows": dict(self.error_rows),
                "retried_live": self.retried_live, "retried_batch": self.retried_batch, "unresolved": self.unresolved,
                "cost_usd": round(self.cost_usd, 6)}


class BatchRunner:
    """One run's batch phase. `run()` re-attaches to the ledger's open batches, then submits what is
    pending round by round (rewrite turns become due once their first turns are answered) and returns
    the calls to send live (error rows under `--batch-retry live`); `cancel()` cancels the open ones."""

    def __init__(self, plan: Plan, cache, ledger: BatchLedger, client, prices: PriceTable, budget, *,
                 pending: Callable[[], list[Call]], spent: Callable[[], float]):
        config = plan.config
        self.plan, self.cache, self.ledger, self.client = plan, cache, ledger, client
        self.prices, self.budget, self.pending, self.spent = prices, budget, pending, spent
        self.retry, self.poll, self.progress = config.batch_retry, config.batch_poll, config.progress
        self.max_requests, self.max_bytes = config.batch_max_requests, config.batch_max_bytes
        self.create_attempts = max(config.teacher.max_retries, 2) + 1
        self.report = BatchReport()
        self.budget_stop = False
        self.refusals: dict[str, str] = {}  # batch id -> the provider's reason, for batches that failed validation

    async def run(self) -> list[Call]:
        await self._wait(self.ledger.open_files(), reattach=True)
        attempts: Counter = Counter()  # submissions per key in this run
        while True:
            work = self.pending()
            failed = self.ledger.failed(c.key for c in work)
            live = [c for c in work if c.key in failed and self.retry == "live"]
            batch = [c for c in work if not (c.key in failed and self.retry == "live") and (
                attempts[c.key] == 0 or (c.key in failed and attempts[c.key] == 1))]
            admitted = self._admit(batch)
            if not admitted:  # nothing left to batch: the rest goes live, or stays for a rerun
                self.report.retried_live = len(live)
                self.report.unresolved = len(work) - len(live) - len(batch)
                return live
            self.report.retried_batch += sum(c.key in failed for c in admitted)
            attempts.update(c.key for c in admitted)
            await self._wait(await self._submit(admitted))

    async def cancel(self) -> None:
        """Cancel every open batch, then store what they completed before the cancel."""
        for f in self.ledger.open_files():
            batch_id = f.batch_id or await self._find_batch(f)
            if batch_id is None:  # uploaded, never submitted: nothing to cancel, its requests stay pending
                self.ledger.collected(f.file_id, [(key, CANCELLED, "cancelled before its batch was created")
                                                  for key in self.ledger.requests(f.file_id)])
                continue
            batch = await self.client.batches.retrieve(batch_id)
            if batch.status not in FINAL and batch.status != "cancelling":  # a finished batch is just collected
                batch = await self.client.batches.cancel(batch_id)
                self.report.cancelled += 1
            self.ledger.set_batch(f.file_id, batch.id, batch.status)
        await self._wait(self.ledger.open_files(), reattach=True)

    def _admit(self, calls: list[Call]) -> list[Call]:
        """--max-cost: the calls whose worst case (at the batch price) fits in the budget, in order."""
        self.budget_stop = False
        if self.budget.limit is None or self.prices.lookup(self.plan.model) is None:
            return calls
        self.budget.spent, self.budget.reserved = self.spent(), 0.0
        admitted = []
        for call in calls:
            worst = self.prices.worst_case(self.plan.model, call.prompt_text, call.request.params.max_tokens,
                                           batch=True)
            if not self.budget.admit(worst):
                self.budget_stop = True
                break
            admitted.append(call)
        return admitted

    async def _submit(self, calls: list[Call]) -> list[OpenFile]:
        """Upload the calls as input files under the limits, record each with its keys, create its batch."""
        lines = input_lines(self.plan, calls)
        groups = split_lines(lines, self.max_requests, self.max_bytes)  # raises before anything is uploaded
        files = []
        for group in groups:
            content = b"".join(lines[i] for i in group)
            uploaded = await self.client.files.create(file=("judgeforge-distill.jsonl", content), purpose="batch",
                                                      timeout=UPLOAD_TIMEOUT)
            requests = {calls[i].key: stored_request(request_body(calls[i].request, self.plan.model)) for i in group}
            self.ledger.add_file(uploaded.id, self.plan.model, requests)
            files.append(OpenFile(uploaded.id, None, len(group), time.time()))
            self.report.submitted += len(group)
        return files

    async def _create(self, f: OpenFile) -> str:
        """Create the file's batch. An error or timeout does not say the batch was not created (the
        provider may have created it and lost the reply), so no blind retry: each new attempt first
        waits, then looks the batch up by its input file, and creates it only when it is not there."""
        import openai

        client = self.client.with_options(max_retries=0)  # the SDK's own retries would create it twice
        teacher = self.plan.config.teacher
        for attempt in range(self.create_attempts):
            if attempt:
                await asyncio.sleep(min(teacher.backoff * 2 ** attempt, teacher.max_backoff))
                found = await self._find_batch(f)
                if found is not None:
                    self.report.batches_created += 1
                    self.report.found_after_error += 1
                    return found
            try:
                batch = await client.batches.create(input_file_id=f.file_id, endpoint=ENDPOINT,
                                                    completion_window="24h",
                                                    metadata={"created_by": "judgeforge distill"})
                break
            except (openai.APIConnectionError, openai.InternalServerError, openai.RateLimitError):
                if attempt == self.create_attempts - 1:
                    raise
        self.ledger.set_batch(f.file_id, batch.id, batch.status)
        self.report.batches_created += 1
        return batch.id

    async def _find_batch(self, f: OpenFile) -> str | None:
        """The batch created from an input file whose batch id was not recorded (a killed run, or a
        create whose reply was lost)."""
        async for batch in self.client.batches.list(limit=100):  # newest first
            if batch.input_file_id == f.file_id:
                self.ledger.set_batch(f.file_id, batch.id, batch.status)
                return batch.id
            if batch.created_at < f.created - 3600:  # older than the file: it was never submitted
                break
        return None

    async def _wait(self, files: list[OpenFile], reattach: bool = False) -> None:
        """Poll until every file's batch is final, storing each one's results as it ends."""
        from tqdm import tqdm

        if not files:
            return
        batches: dict[str, OpenFile] = {}
        for f in files:
            batch_id = f.batch_id or (await self._find_batch(f) if reattach else None) or await self._create(f)
            batches[batch_id] = f
        self.report.batch_ids.extend(b for b in batches if b not in self.report.batch_ids)
        self.report.reattached += len(batches) if reattach else 0
        counts = {batch_id: (0, 0) for batch_id in batches}
        states: dict[str, str] = {}
        bar = tqdm(total=sum(f.requests for f in files), unit="req", desc="batch", dynamic_ncols=True,
                   disable=not self.progress)
        try:
            while True:
                for batch_id in [b for b in batches if states.get(b) not in FINAL]:
                    batch = await self.client.batches.retrieve(batch_id)
                    states[batch_id] = batch.status
                    self.ledger.set_status(batches[batch_id].file_id, batch.status)
                    rc = batch.request_counts
                    counts[batch_id] = (rc.completed, rc.failed) if rc else counts[batch_id]
                    if batch.status in FINAL:
                        await self._collect(batches[batch_id], batch)
                done, failed = (sum(c[i] for c in counts.values()) for i in (0, 1))
                bar.n = min(done + failed, bar.total)
                summary = ", ".join(f"{state} {n}" for state, n in sorted(Counter(states.values()).items()))
                bar.set_postfix_str(f"{summary}; done {done} failed {failed}", refresh=False)
                bar.refresh()
                if all(state in FINAL for state in states.values()):
                    break
                await asyncio.sleep(self.poll)
        finally:
            bar.close()
        refused = [b for b, state in states.items() if state == "failed"]
        if refused:
            raise TeacherError(f"batch {', '.join(refused)} failed validation ({self.refusals[refused[0]]}); its "
                               f"requests were not run: fix the cause (--batch-max-requests and --batch-max-bytes "
                               f"must be within the provider's limits) and rerun the same command")

    async def _collect(self, f: OpenFile, batch) -> None:
        """Store a final batch's replies in the cache and its error rows in the ledger. Every key the
        file covers ends up answered or with an error row: none is left unaccounted for."""
        requests = self.ledger.requests(f.file_id)
        replies: dict[str, dict] = {}
        errors: dict[str, tuple[str, str]] = {}
        for file_id in (batch.output_file_id, batch.error_file_id):
            if not file_id:
                continue
            content = await self.client.files.content(file_id, timeout=UPLOAD_TIMEOUT)
            for line in content.text.splitlines():
                if not line.strip():
                    continue
                row = json.loads(line)
                key = row.get("custom_id")
                if key not in requests:
                    continue  # not a request of this file (a provider bug): nothing of ours to store
                response = row.get("response") or {}
                body = response.get("body")
                if response.get("status_code") == 200 and isinstance(body, dict) and body.get("choices"):
                    replies[key] = {**reply_record(read_completion(body)), "batch": batch.id}
                else:
                    error = row.get("error") or (body or {}).get("error") or {}
                    code = str(error.get("code") or f"http_{response.get('status_code')}")
                    errors[key] = (code, str(error.get("message") or ""))
        why = "; ".join(e.message or "" for e in (batch.errors.data or [])) if batch.errors else ""
        if batch.status == "failed":
            self.refusals[batch.id] = why or "no reason given"
        unreached = {"failed": REFUSED, "cancelled": CANCELLED, "expired": "batch_expired"}.get(
            batch.status, "missing_from_output")
        for key in requests:
            if key not in replies and key not in errors:
                errors[key] = (unreached, why or f"no result for this request in batch {batch.id} ({batch.status})")
        self.cache.put_many([(key, self.plan.model, requests[key], reply) for key, reply in replies.items()])
        self.ledger.collected(f.file_id, [(key, code, message) for key, (code, message) in errors.items()])
        await find_duplicates(self.client, self.ledger, f, keep=batch.id)
        self.report.answered += len(replies)
        self.report.error_rows.update(code for code, _ in errors.values())


def batch_client(teacher_config):
    """The teacher's OpenAI client, with the SDK's own retries for the few batch control calls."""
    return teacher_config.backend()._new_client().with_options(max_retries=max(teacher_config.max_retries, 2))


async def run_batches(runner: BatchRunner, cancel: bool) -> list[Call]:
    """The batch phase with its client closed after, and API failures as TeacherError (exit 1)."""
    import openai

    start = runner.spent()
    try:
        if cancel:
            await runner.cancel()
            live = []
        else:
            live = await runner.run()
        settled = await settle_duplicates(runner.client, runner.ledger, runner.prices, runner.plan.model,
                                          poll=runner.poll, timeout=UPLOAD_TIMEOUT)
        runner.report.duplicates += len(settled)
        runner.report.batch_ids.extend(settled)
        return live
    except openai.APIStatusError as e:
        raise TeacherError(f"the Batch API at {mask_urls(str(runner.client.base_url))} refused a request"
                           f" (HTTP {e.status_code}): "
                           f"{e.message}; everything collected is cached, rerun the same command to re-attach") from None
    except openai.APIConnectionError as e:
        raise TeacherError(f"the Batch API at {mask_urls(str(runner.client.base_url))} did not answer"
                           f" ({e.__cause__ or e}); "
                           f"rerun the same command to re-attach to the batches already submitted") from None
    finally:
        runner.report.cost_usd = runner.spent() - start  # replies stored from batches, and duplicates settled
        await runner.client.close()
