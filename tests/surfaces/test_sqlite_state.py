"""SQLite-specific state behaviour: first-use races across processes, schema versions, WAL."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from sparkwing.errors import SchemaVersionError, StorageError
from sparkwing.surfaces.open import open_state
from sparkwing.surfaces.spec import SurfaceSpec
from sparkwing.surfaces.state import sql_schema
from sparkwing.surfaces.state.base import NewEvent, NodeRecord, RunRecord
from sparkwing.surfaces.state.sqlite import SqliteState

PROCESSES = 16
NODES = 20
EVENTS = 50
# Several fresh databases per test: one collision-prone first use is not always a collision.
ROUNDS = 5

# Per round: announce readiness, wait for the start file, then hit that round's absent database.
CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    root = Path(sys.argv[1])
    index, rounds, nodes, events = (int(a) for a in sys.argv[2:6])
    from sparkwing.surfaces.state.base import NewEvent, NodeRecord, RunRecord
    from sparkwing.surfaces.state.sqlite import SqliteState
    for r in range(rounds):
        (root / f"ready-{r}-{index}").touch()
        while not (root / f"start-{r}").exists():
            time.sleep(0.0005)
        store = SqliteState(root / f"db{r}" / "home" / "state.db")
        run_id = f"run-20260301-120000-p{index:03d}"
        run = RunRecord(run_id=run_id, pipeline="race", created_at="2026-03-01T12:00:00Z")
        store.create_run(run)
        for n in range(nodes):
            store.upsert_nodes([NodeRecord(run_id=run_id, node_id=f"n{n}", attempt=n)])
        for e in range(events):
            store.append_events(run_id, [NewEvent(kind="tick", ts="t", data={"e": e})])
        store.update_run(run_id, status="success")
        store.close()
    """
)


def _check_race_database(db: Path) -> None:
    store = SqliteState(db)
    try:
        runs = store.list_runs(pipeline="race", limit=100).runs
        assert sorted(r.run_id for r in runs) == [
            f"run-20260301-120000-p{i:03d}" for i in range(PROCESSES)
        ]
        for run in runs:
            assert run.status == "success"
            nodes = store.list_nodes(run.run_id)
            assert [(n.node_id, n.attempt) for n in nodes] == [(f"n{i}", i) for i in range(NODES)]
            events = store.list_events(run.run_id)
            assert [(e.seq, e.data["e"]) for e in events] == [(i + 1, i) for i in range(EVENTS)]
        assert store.integrity_check() == "ok"
    finally:
        store.close()


def _release_rounds(root: Path, procs: list[subprocess.Popen[str]]) -> None:
    """Start each round once every child waits for it; stop early if a child exits."""
    deadline = time.monotonic() + 120
    for r in range(ROUNDS):
        while sum(1 for _ in root.glob(f"ready-{r}-*")) < PROCESSES:
            if any(p.poll() is not None for p in procs):
                return
            assert time.monotonic() < deadline, "children never became ready"
            time.sleep(0.005)
        assert not (root / f"db{r}").exists()
        (root / f"start-{r}").touch()


def test_many_processes_first_use_of_missing_database(tmp_path: Path) -> None:
    sizes = [str(ROUNDS), str(NODES), str(EVENTS)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, str(tmp_path), str(i), *sizes],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(PROCESSES)
    ]
    try:
        _release_rounds(tmp_path, procs)
        # A child that failed leaves its peers waiting for the next start file: stop them.
        if any(p.poll() not in (None, 0) for p in procs):
            for p in procs:
                if p.poll() is None:
                    p.kill()
        results = [(p.communicate(timeout=240)[1], p.returncode) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()
    errors = [err for err, code in results if code not in (0, -signal.SIGKILL)]
    assert errors == [], errors[0]
    assert all(code == 0 for _, code in results)
    for r in range(ROUNDS):
        _check_race_database(tmp_path / f"db{r}" / "home" / "state.db")


def _stamp(db: Path, version: int) -> None:
    conn = sqlite3.connect(db)
    try:
        conn.execute(sql_schema.STAMP_VERSION_SQL, (version, "2030-01-01T00:00:00Z"))
        conn.commit()
    finally:
        conn.close()


# The versions a fresh database is stamped with (numbers may be skipped between them).
_VERSIONS = [version for version, _ in sql_schema.MIGRATIONS]


def _versions(db: Path) -> list[int]:
    conn = sqlite3.connect(db)
    try:
        return [row[0] for row in conn.execute("SELECT version FROM schema_version ORDER BY 1")]
    finally:
        conn.close()


def test_newer_schema_is_refused_naming_both_versions_and_file(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    SqliteState(db).close()
    _stamp(db, 99)
    supported = sql_schema.latest_version()
    with pytest.raises(SchemaVersionError) as info:
        SqliteState(db)
    assert str(info.value) == (
        f"state database {db} has schema version 99, newer than this sparkwing supports "
        f"({supported}); upgrade sparkwing"
    )
    assert _versions(db) == [*_VERSIONS, 99]


def test_older_schema_is_migrated_keeping_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "state.db"
    old = SqliteState(db)
    run = RunRecord(run_id="run-20260301-120000-abcd", pipeline="p", created_at="2026")
    old.create_run(run)
    old.close()
    current = sql_schema.latest_version()
    extra = (current + 1, ["CREATE INDEX IF NOT EXISTS test_events_kind_idx ON events (kind)"])
    monkeypatch.setattr(sql_schema, "MIGRATIONS", [*sql_schema.MIGRATIONS, extra])

    upgraded = SqliteState(db)
    try:
        assert upgraded.get_run(run.run_id) == run
        assert _versions(db) == [*_VERSIONS, current + 1]
        conn = sqlite3.connect(db)
        try:
            names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        finally:
            conn.close()
        assert "test_events_kind_idx" in names
    finally:
        upgraded.close()


def test_fresh_database_is_stamped_with_latest_version(tmp_path: Path) -> None:
    db = tmp_path / "a" / "b" / "state.db"
    SqliteState(db).close()
    assert _versions(db) == _VERSIONS
    SqliteState(db).close()  # reopening adds nothing
    assert _versions(db) == _VERSIONS


def test_integrity_check_after_work(tmp_path: Path) -> None:
    store = SqliteState(tmp_path / "state.db")
    try:
        for i in range(5):
            run_id = f"run-20260301-12000{i}-abcd"
            store.create_run(RunRecord(run_id=run_id, pipeline="p"))
            store.upsert_nodes([NodeRecord(run_id=run_id, node_id=f"n{j}") for j in range(30)])
            store.append_events(run_id, [NewEvent(kind="k", ts="t") for _ in range(30)])
            store.update_run(run_id, status="failed", reason="x" * 10_000)
        store.memo.acquire("k", "h", 60)
        assert store.integrity_check() == "ok"
    finally:
        store.close()


def test_wal_mode_is_on_and_data_survives_reopen(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    store = SqliteState(db)
    store.create_run(RunRecord(run_id="run-20260301-120000-abcd", pipeline="p"))
    store.close()
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()
    reopened = SqliteState(db)
    try:
        got = reopened.get_run("run-20260301-120000-abcd")
        assert got is not None and got.pipeline == "p"
    finally:
        reopened.close()


def test_garbage_file_is_a_storage_error_naming_the_file(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    db.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(StorageError, match=str(db)):
        SqliteState(db)


def test_closed_store_refuses_use(tmp_path: Path) -> None:
    store = SqliteState(tmp_path / "state.db")
    store.close()
    store.close()  # idempotent
    with pytest.raises(StorageError, match="closed"):
        store.get_run("run-20260301-120000-abcd")


def test_open_state_builds_sqlite_state(tmp_path: Path) -> None:
    db = tmp_path / "home" / "state.db"
    store = open_state(SurfaceSpec(type="sqlite", path=str(db)))
    try:
        assert isinstance(store, SqliteState)
        store.create_run(RunRecord(run_id="run-20260301-120000-abcd", pipeline="p"))
        assert db.exists()
    finally:
        store.close()
