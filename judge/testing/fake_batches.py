"""The fake OpenAI server's Batch API: `/v1/files` (upload, retrieve, content) and `/v1/batches`
(create, retrieve, cancel, list). A batch's rows are decided at create time (reply or 500, and when
each finishes); its output and error files are written when it reaches a final state."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.responses import Response

from judge.testing.fake_core import FakeConfig, State, completion, error_response, prompt_hash


_BATCH_TERMINAL = ("completed", "failed", "expired", "cancelled")


def add_batch_routes(app: FastAPI, config: FakeConfig, state: State, reply: Callable[[dict], str], refused) -> None:
    """/v1/files and /v1/batches on `app`; `refused(request, model)` is the app's auth check."""
    def setting(name: str):
        return state.batch_settings.get(name, getattr(config, name))

    def new_file(content: bytes, purpose: str, filename: str) -> dict:
        with state.lock:
            file_id = f"file-fake-{len(state.files) + 1}"
            state.files[file_id] = {"purpose": purpose, "filename": filename, "content": content,
                                    "created_at": int(time.time())}
        return file_object(file_id)

    def file_object(file_id: str) -> dict:
        f = state.files[file_id]
        return {"id": file_id, "object": "file", "bytes": len(f["content"]), "created_at": f["created_at"],
                "filename": f["filename"], "purpose": f["purpose"], "status": "processed"}

    def rows_of(content: bytes) -> tuple[list[dict], str | None]:
        """The input lines, or why the file fails validation."""
        try:
            lines = [json.loads(line) for line in content.decode().splitlines() if line.strip()]
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            return [], f"the input file is not valid JSONL ({e})"
        if len(lines) > setting("batch_max_requests"):
            return [], f"the input file has {len(lines)} requests, more than the limit of {setting('batch_max_requests')}"
        ids = [line.get("custom_id") for line in lines]
        if len(set(ids)) != len(ids) or None in ids:
            return [], "every line needs a custom_id, unique within the file"
        if any(line.get("method") != "POST" or line.get("url") != "/v1/chat/completions"
               or not isinstance(line.get("body"), dict) for line in lines):
            return [], "every line must POST a body to /v1/chat/completions"
        return lines, None

    def finished_by(batch: dict, now: float) -> list[dict]:
        return [row for row in batch["_rows"] if row["done_at"] <= now]

    def settle(batch: dict) -> dict:
        """Advance a batch to where the clock says it is; write its files once it is final."""
        now = time.time()
        if batch["status"] == "in_progress" and now >= batch["_due"]:
            expiring = batch["_expiring"]
            batch["status"] = "expired" if expiring else "completed"
            batch["expired_at" if expiring else "completed_at"] = int(now)
            finish(batch, now, "batch_expired" if expiring else None)
        done = finished_by(batch, now) if batch["status"] == "in_progress" else [r for r in batch["_rows"] if r["kept"]]
        batch["request_counts"] = {"total": len(batch["_rows"]), "completed": sum(r["ok"] for r in done),
                                   "failed": sum(not r["ok"] for r in done)}
        return {k: v for k, v in batch.items() if not k.startswith("_")}

    def finish(batch: dict, now: float, unfinished_code: str | None) -> None:
        output, errors = [], []
        for row in batch["_rows"]:
            row["kept"] = row["done_at"] <= now or unfinished_code is None
            line = {"id": f"batch_req_{row['custom_id'][:16]}", "custom_id": row["custom_id"]}
            if not row["kept"]:
                errors.append({**line, "response": None, "error": {
                    "code": unfinished_code, "message": "This request could not be executed before the batch ended."}})
            elif row["ok"]:
                output.append({**line, "response": {"status_code": 200, "request_id": line["id"], "body": row["body"]},
                               "error": None})
            else:
                errors.append({**line, "response": {"status_code": 500, "request_id": line["id"], "body": {"error": {
                    "message": "The server had an error processing your request.", "type": "server_error"}}},
                    "error": None})
        with state.lock:
            for row in batch["_rows"]:
                if row["kept"] and row["ok"]:
                    state.counts.update(batch_ok=1, prompt_tokens=row["body"]["usage"]["prompt_tokens"],
                                        completion_tokens=row["body"]["usage"]["completion_tokens"])
                    state.served[row["hash"]] += 1
                elif row["kept"]:
                    state.counts.update(batch_errors=1)

        def jsonl(rows):
            return "".join(json.dumps(r) + "\n" for r in rows).encode()

        if output:
            batch["output_file_id"] = new_file(jsonl(output), "batch_output", "batch_output.jsonl")["id"]
        if errors:
            batch["error_file_id"] = new_file(jsonl(errors), "batch_output", "batch_errors.jsonl")["id"]

    @app.post("/v1/files")
    async def upload(request: Request):
        if refused(request, None):
            return refused(request, None)
        form = await request.form()
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            return error_response(400, "a file is required", "invalid_request_error")
        state.add(files_uploaded=1)
        return new_file(await upload.read(), str(form.get("purpose")), upload.filename or "upload.jsonl")

    @app.get("/v1/files/{file_id}")
    async def get_file(file_id: str, request: Request):
        if file_id not in state.files:
            return error_response(404, f"No such File object: {file_id}", "invalid_request_error")
        return refused(request, None) or file_object(file_id)

    @app.get("/v1/files/{file_id}/content")
    async def file_content(file_id: str, request: Request):
        if file_id not in state.files:
            return error_response(404, f"No such File object: {file_id}", "invalid_request_error")
        return refused(request, None) or Response(state.files[file_id]["content"],
                                                  media_type="application/octet-stream")

    @app.post("/v1/batches")
    async def create_batch(request: Request):
        if refused(request, None):
            return refused(request, None)
        body = await request.json()
        file_id = body.get("input_file_id")
        if file_id not in state.files or state.files[file_id]["purpose"] != "batch":
            return error_response(400, f"input_file_id {file_id!r} is not a file uploaded with purpose 'batch'",
                          "invalid_request_error")
        if body.get("endpoint") != "/v1/chat/completions" or body.get("completion_window") != "24h":
            return error_response(400, "this fake supports endpoint /v1/chat/completions with completion_window 24h",
                          "invalid_request_error")
        lines, invalid = rows_of(state.files[file_id]["content"])
        now = time.time()
        with state.lock:
            batch_id = f"batch_fake_{len(state.batches) + 1}"
            state.counts.update(batches_created=1)
            draws = [(state.rng.random(), state.rng.random()) for _ in lines]
        delay, expire, error_rate = setting("batch_delay"), setting("batch_expire_fraction"), setting("batch_error_rate")
        keep = len(lines) if expire is None else int(len(lines) * expire)
        rows = [{"custom_id": line["custom_id"], "hash": prompt_hash(line["body"]), "ok": draws[i][0] >= error_rate,
                 "body": completion(line["body"], reply(line["body"])),
                 "done_at": now + (delay * (i + 1) / max(keep, 1) if i < keep else 2 * delay + 1)}  # after the expiry
                for i, line in enumerate(lines)]
        batch = {"id": batch_id, "object": "batch", "endpoint": body["endpoint"], "input_file_id": file_id,
                 "completion_window": "24h", "status": "in_progress", "created_at": int(now),
                 "in_progress_at": int(now), "expires_at": int(now + 86400), "metadata": body.get("metadata"),
                 "output_file_id": None, "error_file_id": None, "errors": None, "_rows": rows,
                 "_due": now + delay, "_expiring": expire is not None, "_born": now}
        if invalid:
            batch.update(status="failed", failed_at=int(now), _rows=[],
                         errors={"object": "list", "data": [{"code": "invalid_request", "message": invalid}]})
        with state.lock:
            state.batches[batch_id] = batch
            lost = state.counts["batches_created"] <= setting("batch_create_errors")
        if lost:  # created and billed, but the client is told it failed: a retry must look before creating again
            return error_response(500, "The server had an error while processing your request.", "server_error")
        return settle(batch)

    @app.get("/v1/batches/{batch_id}")
    async def get_batch(batch_id: str, request: Request):
        if batch_id not in state.batches:
            return error_response(404, f"No such Batch object: {batch_id}", "invalid_request_error")
        return refused(request, None) or settle(state.batches[batch_id])

    @app.post("/v1/batches/{batch_id}/cancel")
    async def cancel_batch(batch_id: str, request: Request):
        if batch_id not in state.batches:
            return error_response(404, f"No such Batch object: {batch_id}", "invalid_request_error")
        if refused(request, None):
            return refused(request, None)
        batch = state.batches[batch_id]
        settle(batch)
        if batch["status"] not in _BATCH_TERMINAL:
            now = time.time()
            batch.update(status="cancelled", cancelling_at=int(now), cancelled_at=int(now))
            state.add(batches_cancelled=1)
            finish(batch, now, "batch_cancelled")
        return settle(batch)

    @app.get("/v1/batches")
    async def list_batches(request: Request, after: str | None = None, limit: int = 20):
        if refused(request, None):
            return refused(request, None)
        listed = time.time() - setting("batch_list_lag")
        ids = sorted((b for b in state.batches if state.batches[b]["_born"] <= listed),
                     key=lambda b: int(b.rsplit("_", 1)[1]), reverse=True)  # newest first
        if after in ids:
            ids = ids[ids.index(after) + 1:]
        page = [settle(state.batches[b]) for b in ids[:limit]]
        return {"object": "list", "data": page, "first_id": page[0]["id"] if page else None,
                "last_id": page[-1]["id"] if page else None, "has_more": len(ids) > limit}
