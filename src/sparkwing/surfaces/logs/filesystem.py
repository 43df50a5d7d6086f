"""Filesystem logs: one NDJSON file per (run, node) at ``<root>/<run_id>/<node_id>.ndjson``.

Each batch is one O_APPEND write, so readers in other processes never see half a record;
a trailing line without its newline (a write in flight, or a crash) is ignored.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from sparkwing.errors import StorageError
from sparkwing.ids import check_segment
from sparkwing.paths import PRIVATE_FILE_MODE, make_private_dirs
from sparkwing.surfaces.logs.base import LogQuery, LogRecord, LogStore
from sparkwing.surfaces.logs.search import line_matcher

SUFFIX = ".ndjson"
_BLOCK = 64 * 1024
# One encoder for every record: json.dumps with options builds a new one for each call.
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
# How that encoder quotes a string (None where json has no C accelerator).
_quote: Callable[[str], str] | None = getattr(json.encoder, "c_encode_basestring", None)


# -- encoding and filtering (backend-independent) -----------------------------------
def encode_records(records: Iterable[LogRecord]) -> bytes:
    """NDJSON bytes for ``records``: one line each, newline-terminated."""
    # Each line as the encoder writes it, its three strings quoted by the C function it
    # would call: going through the encoder costs a dict and an encoder set-up a line.
    quote = _quote
    parts = []
    for r in records:
        ts, stream, msg = r.ts, r.stream, r.msg
        if quote is None or type(ts) is not str or type(stream) is not str or type(msg) is not str:
            parts.append(_encode({"ts": ts, "stream": stream, "msg": msg}) + "\n")
        else:
            parts.append(f'{{"ts":{quote(ts)},"stream":{quote(stream)},"msg":{quote(msg)}}}\n')
    return "".join(parts).encode()


def decode_line(line: bytes) -> LogRecord | None:
    """The record of one NDJSON line, or None when it is not a valid record."""
    try:
        doc = json.loads(line)
    except ValueError:
        return None
    if not isinstance(doc, dict):
        return None
    ts, msg, stream = doc.get("ts"), doc.get("msg"), doc.get("stream", "stdout")
    if not (isinstance(ts, str) and isinstance(msg, str) and isinstance(stream, str)):
        return None
    return LogRecord(ts=ts, msg=msg, stream=stream)


def _instant(ts: str) -> float | None:
    try:
        parsed = datetime.fromisoformat(ts)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def record_filter(query: LogQuery | None) -> Callable[[LogRecord], bool]:
    """The grep/since part of ``query`` as a predicate (head/tail are applied by the caller)."""
    if query is None or (query.grep is None and query.since is None):
        return lambda rec: True
    found = None if query.grep is None else line_matcher(query.grep, query.regex)
    since = query.since
    since_instant = _instant(since) if since is not None else None

    def keep(rec: LogRecord) -> bool:
        if found is not None and not found(rec.msg):
            return False
        if since is not None:
            at = _instant(rec.ts) if since_instant is not None else None
            # Times compare as instants; unparseable ones fall back to text order.
            if at is None or since_instant is None:
                return rec.ts >= since
            return at >= since_instant
        return True

    return keep


def apply_query(records: Iterable[LogRecord], query: LogQuery | None) -> list[LogRecord]:
    """Filter records in order: grep/since, then head, then tail."""
    keep = record_filter(query)
    out = [r for r in records if keep(r)]
    if query is not None and query.head is not None:
        out = out[: max(query.head, 0)]
    if query is not None and query.tail is not None:
        out = out[len(out) - max(query.tail, 0) :]
    return out


def select_records(
    query: LogQuery | None,
    keep: Callable[[LogRecord], bool],
    forward: Callable[[], Iterable[LogRecord]],
    backward: Callable[[], Iterable[LogRecord]],
) -> list[LogRecord]:
    """``query`` over one stream (``keep`` is its :func:`record_filter`): read ``forward``
    (oldest first), or for a tail without a head ``backward`` (newest first), so that a
    tail costs only the records it returns."""
    out: list[LogRecord] = []
    if query is not None and query.tail is not None and query.head is None:
        if query.tail <= 0:
            return out
        for rec in backward():
            if keep(rec):
                out.append(rec)
                if len(out) >= query.tail:
                    break
        out.reverse()
        return out
    head = query.head if query is not None else None
    for rec in forward():
        if head is not None and len(out) >= head:
            break
        if keep(rec):
            out.append(rec)
    return apply_query(out, LogQuery(tail=query.tail) if query is not None else None)


def follow_polls(
    poll: Callable[[], Generator[LogRecord, None, bool]],
    is_done: Callable[[], bool],
    poll_interval: float,
) -> Iterator[LogRecord]:
    """The loop behind ``follow``: yield what each ``poll`` finds (it returns whether it
    found anything new), pausing after empty polls, until ``is_done()`` and drained."""
    while True:
        # Sample is_done before polling: a writer finishes appending before it reports
        # done, so the poll that follows a True sees everything.
        done = is_done()
        found = yield from poll()
        if done:
            return
        if not found:
            time.sleep(poll_interval)


# -- line readers ----------------------------------------------------------------------
def _forward_lines(fh: Iterable[bytes]) -> Iterator[bytes]:
    for line in fh:
        if line.endswith(b"\n"):  # a partial last line is still being written
            yield line


def _backward_lines(fd: int, size: int) -> Iterator[bytes]:
    """Complete lines of the first ``size`` bytes of ``fd``, last first."""
    end = size
    pending = b""  # the start of a line whose beginning lies in an earlier block
    in_partial = True  # still inside the unterminated text after the last newline
    while end > 0:
        start = max(0, end - _BLOCK)
        parts = (os.pread(fd, end - start, start) + pending).split(b"\n")
        end = start
        pending = parts.pop(0)
        if in_partial:
            if not parts:
                pending = b""
                continue
            parts.pop()
            in_partial = False
        for line in reversed(parts):
            if line:
                yield line
    if pending and not in_partial:
        yield pending


def _decoded(lines: Iterable[bytes]) -> Iterator[LogRecord]:
    for line in lines:
        rec = decode_line(line)
        if rec is not None:
            yield rec


class FilesystemLogs(LogStore):
    def __init__(self, root: Path) -> None:
        self.root = Path(root).expanduser()
        # Run folders this handle made or found: a run's thousands of appends stat its
        # folder once, not every time (a folder removed meanwhile is made again).
        self._made: set[str] = set()

    def _path(self, run_id: str, node_id: str) -> Path:
        check_segment(run_id, "run id")
        check_segment(node_id, "node id")
        return self.root / run_id / (node_id + SUFFIX)

    def append(self, run_id: str, node_id: str, records: list[LogRecord]) -> None:
        # Paths as strings: a run appends once per job, and Path objects cost more than the
        # write itself.
        check_segment(run_id, "run id")
        check_segment(node_id, "node id")
        folder = os.path.join(self.root, run_id)
        path = os.path.join(folder, node_id + SUFFIX)
        data = encode_records(records)
        if not data:
            return
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
        try:
            if folder not in self._made:
                make_private_dirs(Path(folder))
                self._made.add(folder)
            try:
                fd = os.open(path, flags, PRIVATE_FILE_MODE)
            except FileNotFoundError:
                make_private_dirs(Path(folder))
                fd = os.open(path, flags, PRIVATE_FILE_MODE)
        except OSError as exc:
            raise self._error("open", path, exc) from exc
        try:
            view = memoryview(data)
            # One write per batch; regular files only write short on ENOSPC or a signal.
            while view:
                written = os.write(fd, view)
                view = view[written:]
        except OSError as exc:
            raise self._error("append to", path, exc) from exc
        finally:
            os.close(fd)

    def _error(self, action: str, path: str, exc: OSError) -> StorageError:
        name = os.path.basename(path)
        return StorageError(f"logs {self.root}: cannot {action} {name}: {exc.strerror}")

    def read(self, run_id: str, node_id: str, query: LogQuery | None = None) -> list[LogRecord]:
        path = self._path(run_id, node_id)
        keep = record_filter(query)
        try:
            fh = path.open("rb")
        except (FileNotFoundError, NotADirectoryError):
            return []
        with fh:
            # A tail reads from the end, so on a huge log it costs only the lines returned.
            return select_records(
                query,
                keep,
                lambda: _decoded(_forward_lines(fh)),
                lambda: _decoded(_backward_lines(fh.fileno(), os.fstat(fh.fileno()).st_size)),
            )

    def nodes(self, run_id: str) -> list[str]:
        check_segment(run_id, "run id")
        try:
            names = os.listdir(self.root / run_id)
        except (FileNotFoundError, NotADirectoryError):
            return []
        return sorted(n[: -len(SUFFIX)] for n in names if n.endswith(SUFFIX) and n != SUFFIX)

    def follow(
        self,
        run_id: str,
        node_id: str,
        is_done: Callable[[], bool],
        poll_interval: float = 0.2,
    ) -> Iterator[LogRecord]:
        path = self._path(run_id, node_id)
        offset = 0
        buffer = b""

        def poll() -> Generator[LogRecord, None, bool]:
            nonlocal offset, buffer
            chunk = b""
            try:
                with path.open("rb") as fh:
                    fh.seek(offset)
                    chunk = fh.read()
            except (FileNotFoundError, NotADirectoryError):
                pass
            offset += len(chunk)
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            yield from _decoded(line for line in lines if line)
            return bool(chunk)

        yield from follow_polls(poll, is_done, poll_interval)

    def delete_run(self, run_id: str) -> None:
        check_segment(run_id, "run id")
        self._made.discard(os.path.join(self.root, run_id))
        import shutil  # deleting a run's logs only

        shutil.rmtree(self.root / run_id, ignore_errors=True)

    def describe(self) -> str:
        return f"filesystem logs {self.root}"
