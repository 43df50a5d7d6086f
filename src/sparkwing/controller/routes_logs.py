"""API operations of the logs surface, including a live follow over Server-Sent Events.

Only the tokens that created or claimed a run append to or delete its logs; a search is a
substring unless ``regex`` asks for RE2 (linear time: no pattern stalls the controller)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.responses import Response, StreamingResponse

from sparkwing.controller import schemas as s
from sparkwing.controller.authority import check_writer
from sparkwing.controller.endpoint import Call, Endpoint, Param, Reply
from sparkwing.errors import UsageError
from sparkwing.ids import check_segment
from sparkwing.surfaces.logs.base import LogQuery, LogRecord
from sparkwing.surfaces.logs.search import MAX_PATTERN

READ, WRITE = "logs.read", "logs.write"
SSE = "text/event-stream"
# A follow stream ends after this long; the client reconnects from the records it has.
MAX_FOLLOW_SECONDS = 600.0
_BACKLOG = 50_000


def _run_id(value: str) -> object:
    return check_segment(value, "run id")


def _node_id(value: str) -> object:
    return check_segment(value, "node id")


RUN_ID = Param("run_id", "path", s.STR, "Run id.", required=True, check=_run_id)
NODE_ID = Param("node_id", "path", s.STR, "Node (job) id.", required=True, check=_node_id)
COUNT: s.Schema = {"type": "integer", "minimum": 0, "maximum": 10**9}


def records_of(body: Any) -> list[LogRecord]:
    """The records of an append body, checked and built in one pass: validating 20,000
    records through the generic validator would cost more than writing them."""
    records = body.get("records") if isinstance(body, dict) else None
    if not isinstance(records, list) or set(body) != {"records"}:
        raise UsageError('body must be {"records": [[ts, stream, msg], ...]}')
    out: list[LogRecord] = []
    add = out.append
    for i, rec in enumerate(records):
        if type(rec) is list and len(rec) == 3:
            ts, stream, msg = rec
            if type(ts) is str and type(stream) is str and type(msg) is str:
                add(LogRecord(ts, msg, stream))
                continue
        raise UsageError(f"body.records[{i}] must be [ts, stream, msg] (three strings)")
    return out


def append(call: Call) -> None:
    check_writer(call, call.path["run_id"])
    call.backend.logs.append(call.path["run_id"], call.path["node_id"], call.body)


def _wire(rec: LogRecord) -> list[str]:
    return [rec.ts, rec.stream, rec.msg]


def read(call: Call) -> Any:
    q = call.query
    query = LogQuery(
        tail=q.get("tail"),
        head=q.get("head"),
        grep=q.get("grep"),
        regex=q.get("regex", False),
        since=q.get("since"),
    )
    records = call.backend.logs.read(call.path["run_id"], call.path["node_id"], query)
    offset = q.get("offset", 0)
    return {"records": [_wire(r) for r in records[offset:]]}


def nodes(call: Call) -> Any:
    return {"nodes": call.backend.logs.nodes(call.path["run_id"])}


def delete_run(call: Call) -> None:
    check_writer(call, call.path["run_id"])
    call.backend.logs.delete_run(call.path["run_id"])


def flush(call: Call) -> None:
    call.backend.logs.flush()


def _encode(index: int, rec: LogRecord) -> bytes:
    doc = json.dumps(_wire(rec), ensure_ascii=False, separators=(",", ":"))
    return f"id: {index}\ndata: {doc}\n\n".encode()


async def follow(call: Call) -> Response:
    """Records from ``offset`` on, then new ones as they arrive; a comment line every
    ``heartbeat`` seconds of silence, so the client can check whether it is done."""
    logs, run_id, node_id = call.backend.logs, call.path["run_id"], call.path["node_id"]
    offset = call.query.get("offset", 0)
    beat = min(max(call.query.get("heartbeat", 1.0), 0.05), 30.0)
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    stop = threading.Event()
    deadline = time.monotonic() + MAX_FOLLOW_SECONDS

    def pump() -> None:
        # The store's own follow runs in a thread of its own: it polls and sleeps, which
        # would tie up a worker of the shared pool for as long as the client listens.
        try:
            done = lambda: stop.is_set() or time.monotonic() > deadline  # noqa: E731
            for index, rec in enumerate(logs.follow(run_id, node_id, done, min(beat, 0.2))):
                if index >= offset:
                    loop.call_soon_threadsafe(queue.put_nowait, ("rec", (index, rec)))
                while queue.qsize() > _BACKLOG and not stop.is_set():
                    time.sleep(0.05)  # the client reads slowly: do not pile records up
        except Exception as exc:
            loop.call_soon_threadsafe(queue.put_nowait, ("error", exc))
        finally:
            loop.call_soon_threadsafe(queue.put_nowait, ("end", None))

    async def events() -> AsyncIterator[bytes]:
        thread = threading.Thread(target=pump, name="sparkwing-follow", daemon=True)
        thread.start()
        try:
            while True:
                try:
                    kind, item = await asyncio.wait_for(queue.get(), timeout=beat)
                except TimeoutError:
                    yield b": keepalive\n\n"
                    continue
                out: list[bytes] = []
                while True:
                    if kind == "rec":
                        out.append(_encode(*item))
                    elif kind == "error":
                        doc = {"error": str(item), "type": type(item).__name__}
                        out.append(f"event: error\ndata: {json.dumps(doc)}\n\n".encode())
                        yield b"".join(out)
                        return
                    else:
                        yield b"".join(out)
                        return
                    if queue.empty() or len(out) >= 1000:
                        break
                    kind, item = queue.get_nowait()
                yield b"".join(out)
        finally:
            stop.set()

    return StreamingResponse(events(), media_type=SSE, headers={"Cache-Control": "no-store"})


def _query(name: str, schema: s.Schema, description: str) -> Param:
    return Param(name, "query", schema, description)


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "POST",
        "/v1/logs/{run_id}/{node_id}",
        "logs_append",
        "Append records, in order, to a job's log (of a run the token created or claimed).",
        WRITE,
        append,
        Reply(204, "Appended."),
        params=(RUN_ID, NODE_ID),
        body=s.LOG_RECORDS,
        check_body=records_of,
    ),
    Endpoint(
        "GET",
        "/v1/logs/{run_id}/{node_id}",
        "logs_read",
        "A job's log records, filtered (grep and since first, then head or tail).",
        READ,
        read,
        Reply(200, "The records.", s.LOG_RECORDS),
        params=(
            RUN_ID,
            NODE_ID,
            _query("tail", COUNT, "Only the last N records."),
            _query("head", COUNT, "Only the first N records."),
            _query(
                "grep",
                {"type": "string", "maxLength": MAX_PATTERN},
                "Only records whose msg holds this text (a regular expression with regex).",
            ),
            _query("regex", s.BOOL, "grep is an RE2 regular expression (default false)."),
            _query("since", s.STR, "Only records at or after this ISO time."),
            _query("offset", COUNT, "Skip the first N records of the result."),
        ),
    ),
    Endpoint(
        "GET",
        "/v1/logs/{run_id}/{node_id}/follow",
        "logs_follow",
        "Follow a job's log live (Server-Sent Events: one [ts, stream, msg] record per "
        "event, comments as keep-alives); the stream ends after a while and is resumed "
        "with offset.",
        READ,
        follow,
        Reply(200, "An event stream of records.", media=SSE),
        params=(
            RUN_ID,
            NODE_ID,
            _query("offset", COUNT, "Start after this many records."),
            _query(
                "heartbeat",
                {"type": "number", "minimum": 0.05, "maximum": 30},
                "Seconds of silence before a keep-alive comment (default 1).",
            ),
        ),
    ),
    Endpoint(
        "GET",
        "/v1/logs/{run_id}",
        "logs_nodes",
        "Node ids that have a log in the run.",
        READ,
        nodes,
        Reply(200, "The node ids, sorted.", s.LOG_NODES),
        params=(RUN_ID,),
    ),
    Endpoint(
        "POST",
        "/v1/logs/flush",
        "logs_flush",
        "Make every appended record durable and visible to readers (stores that buffer).",
        WRITE,
        flush,
        Reply(204, "Flushed."),
    ),
    Endpoint(
        "DELETE",
        "/v1/logs/{run_id}",
        "logs_delete_run",
        "Delete every log of a run (one the token created or claimed).",
        WRITE,
        delete_run,
        Reply(204, "Deleted."),
        params=(RUN_ID,),
    ),
)
