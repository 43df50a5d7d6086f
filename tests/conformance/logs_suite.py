"""The LogStore conformance suite: every readable logs backend subclasses LogsConformance.

A subclass provides a ``logs`` fixture (a fresh, empty store). Records go in through
``append`` and come back through ``read`` / ``read_run`` / ``follow`` only; ``flush`` is
called before reading so buffering backends are exercised the way the engine uses them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from sparkwing.errors import InvalidKeyError, UsageError
from sparkwing.surfaces.logs.base import LogQuery, LogRecord, LogStore

RUN = "run-20260301-120000-abcd"
BAD_IDS = ["", ".", "..", "a/b", "a\\b", "a\x00b", "a\nb", "x" * 256]
_T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def ts(seconds: float) -> str:
    return (_T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def recs(n: int, start: int = 0, word: str = "line") -> list[LogRecord]:
    return [LogRecord(ts=ts(i), msg=f"{word} {i}") for i in range(start, start + n)]


def msgs(records: list[LogRecord]) -> list[str]:
    return [r.msg for r in records]


class LogsConformance:
    def _read(self, logs: LogStore, node: str = "build", **query: object) -> list[LogRecord]:
        logs.flush()
        return logs.read(RUN, node, LogQuery(**query) if query else None)  # type: ignore[arg-type]

    # -- append / read -------------------------------------------------------------------
    def test_unknown_stream_reads_empty(self, logs: LogStore) -> None:
        assert logs.read(RUN, "nobody") == []
        assert logs.nodes(RUN) == []
        assert list(logs.read_run(RUN)) == []

    def test_append_then_read_in_order(self, logs: LogStore) -> None:
        logs.append(RUN, "build", recs(3))
        logs.append(RUN, "build", recs(4, start=3))
        got = self._read(logs)
        assert msgs(got) == [f"line {i}" for i in range(7)]
        assert got[0] == LogRecord(ts=ts(0), msg="line 0", stream="stdout")

    def test_streams_and_fields_roundtrip(self, logs: LogStore) -> None:
        batch = [
            LogRecord(ts=ts(0), msg="out", stream="stdout"),
            LogRecord(ts=ts(1), msg="err", stream="stderr"),
            LogRecord(ts=ts(2), msg="warned", stream="warn"),
        ]
        logs.append(RUN, "build", batch)
        assert self._read(logs) == batch

    def test_empty_batch_is_a_noop(self, logs: LogStore) -> None:
        logs.append(RUN, "build", [])
        assert self._read(logs) == []

    def test_unicode_and_awkward_messages(self, logs: LogStore) -> None:
        texts = [
            "héllo wörld ✓ 日本語 🚀",
            'quotes " and \\ backslashes',
            "multi\nline\r\nmessage",
            "",
            "   leading and trailing   ",
            '{"looks": "like json"}',
            "tab\tand \x1b[31mansi\x1b[0m",
        ]
        batch = [LogRecord(ts=ts(i), msg=t) for i, t in enumerate(texts)]
        logs.append(RUN, "build", batch)
        assert msgs(self._read(logs)) == texts

    def test_large_batch(self, logs: LogStore) -> None:
        batch = [LogRecord(ts=ts(i), msg=f"{i:06d} " + "x" * 200) for i in range(20_000)]
        logs.append(RUN, "build", batch)
        got = self._read(logs)
        assert len(got) == 20_000
        assert got == batch
        assert msgs(self._read(logs, tail=2)) == msgs(batch[-2:])

    def test_long_single_message(self, logs: LogStore) -> None:
        big = "y" * 300_000
        logs.append(RUN, "build", [LogRecord(ts=ts(0), msg="a"), LogRecord(ts=ts(1), msg=big)])
        logs.append(RUN, "build", [LogRecord(ts=ts(2), msg="z")])
        assert msgs(self._read(logs)) == ["a", big, "z"]
        assert msgs(self._read(logs, tail=2)) == [big, "z"]

    # -- queries -------------------------------------------------------------------------
    def test_head(self, logs: LogStore) -> None:
        logs.append(RUN, "build", recs(10))
        assert msgs(self._read(logs, head=3)) == ["line 0", "line 1", "line 2"]
        assert self._read(logs, head=0) == []
        assert len(self._read(logs, head=50)) == 10

    def test_tail(self, logs: LogStore) -> None:
        logs.append(RUN, "build", recs(10))
        assert msgs(self._read(logs, tail=3)) == ["line 7", "line 8", "line 9"]
        assert self._read(logs, tail=0) == []
        assert len(self._read(logs, tail=50)) == 10

    def test_grep(self, logs: LogStore) -> None:
        logs.append(RUN, "build", recs(12))
        assert msgs(self._read(logs, grep=r"line 1\d?$", regex=True)) == [
            "line 1",
            "line 10",
            "line 11",
        ]
        # Without regex the pattern is plain text: its metacharacters match themselves.
        assert self._read(logs, grep=r"line 1\d?$") == []
        assert msgs(self._read(logs, grep="line 1")) == ["line 1", "line 10", "line 11"]
        assert msgs(self._read(logs, grep="1", tail=2)) == ["line 10", "line 11"]
        assert msgs(self._read(logs, grep="1", head=2)) == ["line 1", "line 10"]
        assert self._read(logs, grep="nomatch") == []

    def test_grep_invalid_regex_is_usage_error(self, logs: LogStore) -> None:
        logs.append(RUN, "build", recs(1))
        with pytest.raises(UsageError):
            self._read(logs, grep="(unclosed", regex=True)
        assert self._read(logs, grep="(unclosed") == []  # as text it is fine

    def test_since(self, logs: LogStore) -> None:
        logs.append(RUN, "build", recs(10))
        assert msgs(self._read(logs, since=ts(7))) == ["line 7", "line 8", "line 9"]
        # The same instant written with an explicit offset compares equal.
        offset = (_T0 + timedelta(seconds=8)).isoformat()
        assert msgs(self._read(logs, since=offset)) == ["line 8", "line 9"]
        assert msgs(self._read(logs, since=ts(5), tail=1)) == ["line 9"]
        assert msgs(self._read(logs, since=ts(5), head=1)) == ["line 5"]
        assert self._read(logs, since=ts(100)) == []

    def test_since_and_grep_combined(self, logs: LogStore) -> None:
        logs.append(RUN, "build", recs(5, word="even") + recs(5, start=5, word="odd"))
        assert msgs(self._read(logs, grep="odd", since=ts(8))) == ["odd 8", "odd 9"]

    # -- nodes and runs ------------------------------------------------------------------
    def test_nodes_sorted(self, logs: LogStore) -> None:
        for node in ("test", "build", "deploy-prod", "a.b"):
            logs.append(RUN, node, recs(1))
        logs.append("run-other", "zzz", recs(1))
        logs.flush()
        assert logs.nodes(RUN) == ["a.b", "build", "deploy-prod", "test"]
        assert logs.nodes("run-other") == ["zzz"]

    def test_streams_are_separate(self, logs: LogStore) -> None:
        logs.append(RUN, "a", recs(2, word="a"))
        logs.append(RUN, "b", recs(3, word="b"))
        assert msgs(self._read(logs, "a")) == ["a 0", "a 1"]
        assert msgs(self._read(logs, "b")) == ["b 0", "b 1", "b 2"]

    def test_read_run(self, logs: LogStore) -> None:
        logs.append(RUN, "test", recs(2, word="t"))
        logs.append(RUN, "build", recs(2, word="b"))
        logs.flush()
        got = [(node, rec.msg) for node, rec in logs.read_run(RUN)]
        assert got == [("build", "b 0"), ("build", "b 1"), ("test", "t 0"), ("test", "t 1")]
        tail = [(node, rec.msg) for node, rec in logs.read_run(RUN, LogQuery(tail=1))]
        assert tail == [("build", "b 1"), ("test", "t 1")]

    def test_delete_run(self, logs: LogStore) -> None:
        logs.append(RUN, "build", recs(3))
        logs.append("run-keep", "build", recs(1))
        logs.flush()
        logs.delete_run(RUN)
        assert logs.read(RUN, "build") == []
        assert logs.nodes(RUN) == []
        assert len(logs.read("run-keep", "build")) == 1
        logs.delete_run(RUN)  # deleting twice is fine
        logs.append(RUN, "build", recs(1, start=5))
        assert msgs(self._read(logs)) == ["line 5"]

    @pytest.mark.parametrize("bad", BAD_IDS)
    def test_invalid_ids_rejected(self, logs: LogStore, bad: str) -> None:
        with pytest.raises(InvalidKeyError):
            logs.append(bad, "build", recs(1))
        with pytest.raises(InvalidKeyError):
            logs.append(RUN, bad, recs(1))
        with pytest.raises(InvalidKeyError):
            logs.read(bad, "build")
        with pytest.raises(InvalidKeyError):
            logs.read(RUN, bad)
        with pytest.raises(InvalidKeyError):
            logs.nodes(bad)
        with pytest.raises(InvalidKeyError):
            logs.delete_run(bad)

    # -- follow --------------------------------------------------------------------------
    def test_follow_finished_stream_returns_everything(self, logs: LogStore) -> None:
        logs.append(RUN, "build", recs(5))
        logs.flush()
        got = list(logs.follow(RUN, "build", is_done=lambda: True, poll_interval=0.01))
        assert msgs(got) == [f"line {i}" for i in range(5)]

    def test_follow_unknown_finished_stream_is_empty(self, logs: LogStore) -> None:
        assert list(logs.follow(RUN, "ghost", is_done=lambda: True, poll_interval=0.01)) == []

    def test_follow_while_writer_appends(self, logs: LogStore) -> None:
        done = threading.Event()
        expected: list[str] = []
        errors: list[BaseException] = []

        def writer() -> None:
            try:
                for batch in range(20):
                    chunk = recs(5, start=batch * 5)
                    logs.append(RUN, "build", chunk)
                    logs.flush()
                    expected.extend(msgs(chunk))
                    time.sleep(0.005)
            except BaseException as exc:  # reported by the reader's assertions
                errors.append(exc)
            finally:
                done.set()

        thread = threading.Thread(target=writer)
        thread.start()
        got: Iterator[LogRecord] = logs.follow(RUN, "build", done.is_set, poll_interval=0.01)
        received = msgs(list(got))
        thread.join()
        assert errors == []
        assert received == expected
        assert len(received) == 100
