"""Other batches made from the same input file as the one a run uses. A create whose reply was lost
is looked up before creating again (judge.distill.batch), but a provider's listing may lag, and an older
judgeforge retried blindly: such a duplicate runs and is billed all the same. So when a file's batch
is collected, every other batch of that file is found, cancelled while it still runs, and recorded
in the ledger with what it cost (its completed rows at the batch price), which stats.json lists and
adds to the spend. Its replies are not stored: the kept batch answers the same requests."""

from __future__ import annotations

import asyncio
import json

from judge.backends.pricing import PriceTable, messages_text
from judge.distill.batch_ledger import FINAL, BatchLedger, OpenFile


async def find_duplicates(client, ledger: BatchLedger, f: OpenFile, keep: str) -> None:
    """Record every batch made from `f` other than `keep`."""
    async for batch in client.batches.list(limit=100):  # newest first
        if batch.input_file_id == f.file_id and batch.id != keep:
            ledger.add_duplicate(f.file_id, batch.id, batch.status)
        if batch.created_at < f.created - 3600:  # older than the file: none made from it
            break


async def settle_duplicates(client, ledger: BatchLedger, prices: PriceTable, model: str, *, poll: float,
                            timeout: float) -> list[str]:
    """Cancel the recorded duplicates still running, wait until each is final, record its status and
    cost (None without a price, which makes stats.json's total None); returns their ids."""
    settled = []
    for batch_id, file_id in ledger.unsettled_duplicates():
        batch = await client.batches.retrieve(batch_id)
        if batch.status not in FINAL and batch.status != "cancelling":
            batch = await client.batches.cancel(batch_id)
        while batch.status not in FINAL:
            await asyncio.sleep(poll)
            batch = await client.batches.retrieve(batch_id)
        cost = await _cost(client, batch, ledger.requests(file_id), prices, model, timeout)
        ledger.settle_duplicate(batch_id, batch.status, cost)
        settled.append(batch_id)
    return settled


async def _cost(client, batch, requests: dict[str, dict], prices: PriceTable, model: str,
                timeout: float) -> float | None:
    """USD of a final batch's completed rows at the batch price (None without a price)."""
    if prices.lookup(model) is None:
        return None
    if not batch.output_file_id:
        return 0.0
    content = await client.files.content(batch.output_file_id, timeout=timeout)
    total = 0.0
    for line in content.text.splitlines():
        row = json.loads(line) if line.strip() else {}
        body = (row.get("response") or {}).get("body") or {}
        request = requests.get(row.get("custom_id"))
        if request is None or not body.get("choices"):
            continue
        text = body["choices"][0].get("message", {}).get("content") or ""
        total += prices.reply_cost(model, messages_text(request["messages"]), text, body.get("usage"), batch=True)
    return total
