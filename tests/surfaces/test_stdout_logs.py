"""StdoutLogs: prefixed lines out, a clear not-supported error for every read."""

from __future__ import annotations

import io
import threading

import pytest

from sparkwing.errors import InvalidKeyError, NotSupportedError
from sparkwing.surfaces.logs.base import LogQuery, LogRecord
from sparkwing.surfaces.logs.stdout import StdoutLogs
from sparkwing.surfaces.open import open_logs
from sparkwing.surfaces.spec import SurfaceSpec

EXPECTED_ERROR = (
    "logs backend type=stdout does not support reading logs; "
    "use a filesystem or object-store logs backend"
)


def test_prints_prefixed_lines() -> None:
    out = io.StringIO()
    logs = StdoutLogs(stream=out)
    logs.append("run-1", "build", [LogRecord("t", "hello"), LogRecord("t", "world", "stderr")])
    logs.append("run-1", "test", [LogRecord("t", "ok ✓")])
    assert out.getvalue() == "run-1 build | hello\nrun-1 build | world\nrun-1 test | ok ✓\n"


def test_multiline_and_empty_messages_keep_the_prefix() -> None:
    out = io.StringIO()
    StdoutLogs(out).append("r", "n", [LogRecord("t", "one\ntwo"), LogRecord("t", "")])
    assert out.getvalue() == "r n | one\nr n | two\nr n | \n"


def test_default_stream_is_stdout_at_write_time(capsys: pytest.CaptureFixture[str]) -> None:
    logs = open_logs(SurfaceSpec(type="stdout"))
    assert isinstance(logs, StdoutLogs)
    logs.append("run-2", "deploy", [LogRecord("t", "shipped")])
    assert capsys.readouterr().out == "run-2 deploy | shipped\n"


def test_reads_are_not_supported() -> None:
    logs = StdoutLogs(io.StringIO())
    with pytest.raises(NotSupportedError) as info:
        logs.read("run-1", "build", LogQuery(tail=5))
    assert str(info.value) == EXPECTED_ERROR
    with pytest.raises(NotSupportedError, match="does not support reading logs"):
        logs.nodes("run-1")
    with pytest.raises(NotSupportedError, match="does not support reading logs"):
        logs.follow("run-1", "build", lambda: True)
    with pytest.raises(NotSupportedError, match="does not support reading logs"):
        list(logs.read_run("run-1"))


def test_invalid_ids_rejected() -> None:
    out = io.StringIO()
    with pytest.raises(InvalidKeyError):
        StdoutLogs(out).append("../x", "build", [LogRecord("t", "m")])
    assert out.getvalue() == ""


def test_parallel_batches_do_not_interleave() -> None:
    out = io.StringIO()
    logs = StdoutLogs(out)

    def write(node: str) -> None:
        for _ in range(50):
            logs.append("r", node, [LogRecord("t", f"{node}-{i}") for i in range(10)])

    threads = [threading.Thread(target=write, args=(n,)) for n in ("a", "b", "c")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = out.getvalue().splitlines()
    assert len(lines) == 3 * 50 * 10
    for start in range(0, len(lines), 10):
        batch = lines[start : start + 10]
        node = batch[0].split(" ")[1]
        assert batch == [f"r {node} | {node}-{i}" for i in range(10)]
