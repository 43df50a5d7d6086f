"""A long log a page at a time (from the end, counted back from it, or from the first line),
on real filesystem logs: a page holds at most its lines, and the links walk the whole log."""

from __future__ import annotations

from pathlib import Path

from sparkwing.dashboard.logview import read_page
from sparkwing.surfaces.logs.base import LogRecord
from sparkwing.surfaces.logs.filesystem import FilesystemLogs

RUN = "run-20261202-000000-logs"


def _logs(tmp_path: Path, lines: int) -> FilesystemLogs:
    logs = FilesystemLogs(tmp_path / "logs")
    records = [
        LogRecord(f"2026-12-02T00:00:{i // 1000:02d}.{i % 1000:03d}000Z", f"line {i}")
        for i in range(lines)
    ]
    logs.append(RUN, "job", records)
    return logs


def _numbers(page: object) -> list[int]:
    return [int(r.msg.split()[1]) for r in page.lines]  # type: ignore[attr-defined]


def test_pages_walk_a_long_log(tmp_path: Path) -> None:
    logs = _logs(tmp_path, 5000)
    newest = read_page(logs, RUN, "job", size=1000)
    assert _numbers(newest) == list(range(4000, 5000))
    assert newest.earlier and not newest.later and newest.at_end
    assert newest.last_position() == (newest.lines[-1].ts, 1)
    query = newest.earlier_query()  # what the page's "Earlier" link asks for
    back = read_page(logs, RUN, "job", back=query["back"], size=query["lines"])
    assert _numbers(back) == list(range(3000, 4000)) and back.later
    assert back.later_query() == {"back": 0, "lines": 1000}
    first = read_page(logs, RUN, "job", start=0, size=1000)
    assert _numbers(first) == list(range(1000)) and first.first_number == 1
    assert not first.earlier and first.later
    last = read_page(logs, RUN, "job", start=4500, size=1000)
    assert _numbers(last) == list(range(4500, 5000)) and not last.later
    oldest = read_page(logs, RUN, "job", back=4500, size=1000)
    assert _numbers(oldest) == list(range(500)) and not oldest.earlier


def test_short_and_missing_logs(tmp_path: Path) -> None:
    logs = _logs(tmp_path, 3)
    page = read_page(logs, RUN, "job")
    assert _numbers(page) == [0, 1, 2] and not page.earlier and not page.later
    empty = read_page(logs, RUN, "nothing")
    assert empty.lines == [] and empty.last_position() == ("", 0)
    huge = read_page(logs, RUN, "job", size=10**9)
    assert huge.size == 5000  # a page is bounded whatever the URL asks
