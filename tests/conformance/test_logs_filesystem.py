"""Runs the logs conformance suite against FilesystemLogs, plus on-disk guarantees."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sparkwing.surfaces.logs.base import LogQuery, LogRecord, LogStore
from sparkwing.surfaces.logs.filesystem import FilesystemLogs
from sparkwing.surfaces.open import open_logs
from sparkwing.surfaces.spec import SurfaceSpec

from .logs_suite import RUN, LogsConformance, msgs, recs


class TestFilesystemLogs(LogsConformance):
    @pytest.fixture
    def logs(self, tmp_path: Path) -> LogStore:
        return FilesystemLogs(tmp_path / "logs")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "logs"


def test_open_logs_builds_filesystem_logs(root: Path) -> None:
    logs = open_logs(SurfaceSpec(type="filesystem", path=str(root)))
    assert isinstance(logs, FilesystemLogs)
    logs.append(RUN, "build", recs(1))
    assert (root / RUN / "build.ndjson").exists()


def test_one_ndjson_line_per_record(root: Path) -> None:
    logs = FilesystemLogs(root)
    logs.append(RUN, "build", [LogRecord(ts="t0", msg="two\nlines", stream="stderr")])
    raw = (root / RUN / "build.ndjson").read_bytes()
    assert raw.count(b"\n") == 1
    assert json.loads(raw) == {"ts": "t0", "stream": "stderr", "msg": "two\nlines"}


def test_trailing_partial_line_is_ignored(root: Path) -> None:
    logs = FilesystemLogs(root)
    logs.append(RUN, "build", recs(3))
    with (root / RUN / "build.ndjson").open("ab") as fh:
        fh.write(b'{"ts":"x","msg":"half a rec')  # a write in flight, or a crash
    assert msgs(logs.read(RUN, "build")) == ["line 0", "line 1", "line 2"]
    assert msgs(logs.read(RUN, "build", LogQuery(tail=2))) == ["line 1", "line 2"]
    assert msgs(logs.read(RUN, "build", LogQuery(head=5))) == ["line 0", "line 1", "line 2"]
    followed = list(logs.follow(RUN, "build", lambda: True, poll_interval=0.01))
    assert msgs(followed) == ["line 0", "line 1", "line 2"]


def test_garbage_lines_are_skipped(root: Path) -> None:
    logs = FilesystemLogs(root)
    logs.append(RUN, "build", recs(1))
    with (root / RUN / "build.ndjson").open("ab") as fh:
        fh.write(b"not json\n[1,2]\n{}\n\n" + b'{"ts":"t","msg":5}\n' + b"\xff\xfe\n")
    logs.append(RUN, "build", recs(1, start=1))
    assert msgs(logs.read(RUN, "build")) == ["line 0", "line 1"]
    assert msgs(logs.read(RUN, "build", LogQuery(tail=5))) == ["line 0", "line 1"]


def test_tail_of_a_big_file_spans_blocks(root: Path) -> None:
    logs = FilesystemLogs(root)
    batch = [LogRecord(ts="t", msg=f"{i} " + "z" * (i % 300)) for i in range(5000)]
    logs.append(RUN, "build", batch)
    for n in (1, 7, 333, 4999, 5000, 6000):
        assert logs.read(RUN, "build", LogQuery(tail=n)) == batch[-n:]


def test_huge_partial_line_at_end_is_ignored_by_tail(root: Path) -> None:
    logs = FilesystemLogs(root)
    logs.append(RUN, "build", recs(2))
    with (root / RUN / "build.ndjson").open("ab") as fh:
        fh.write(b'{"ts":"t","msg":"' + b"p" * 200_000)  # longer than a read block
    assert msgs(logs.read(RUN, "build", LogQuery(tail=1))) == ["line 1"]
    assert msgs(logs.read(RUN, "build", LogQuery(tail=5))) == ["line 0", "line 1"]


def test_nodes_ignore_other_files(root: Path) -> None:
    logs = FilesystemLogs(root)
    logs.append(RUN, "build", recs(1))
    (root / RUN / "notes.txt").write_text("x")
    (root / RUN / "sub").mkdir()
    assert logs.nodes(RUN) == ["build"]


_APPENDER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from sparkwing.surfaces.logs.base import LogRecord
    from sparkwing.surfaces.logs.filesystem import FilesystemLogs

    logs = FilesystemLogs(Path(sys.argv[1]))
    who = sys.argv[2]
    for b in range(60):
        batch = [
            LogRecord(ts="t", msg=f"{who}|{b}|{i}|" + who * (1000 + 37 * i)) for i in range(20)
        ]
        logs.append("run-x", "shared", batch)
    """
)


def test_concurrent_appends_from_two_processes_never_interleave(root: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    procs = [
        subprocess.Popen([sys.executable, "-c", _APPENDER, str(root), who], env=env)
        for who in ("A", "B")
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]

    raw_lines = (root / "run-x" / "shared.ndjson").read_bytes().split(b"\n")
    assert raw_lines[-1] == b""
    assert len(raw_lines) - 1 == 2 * 60 * 20
    for line in raw_lines[:-1]:
        json.loads(line)  # every line is a whole record

    records = FilesystemLogs(root).read("run-x", "shared")
    assert len(records) == 2 * 60 * 20
    for who in ("A", "B"):
        mine = [r.msg.split("|") for r in records if r.msg.startswith(who + "|")]
        assert [(int(b), int(i)) for _, b, i, _ in mine] == [
            (b, i) for b in range(60) for i in range(20)
        ]
        assert all(body == who * (1000 + 37 * int(i)) for _, _, i, body in mine)
