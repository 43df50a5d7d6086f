"""What a run writes under SPARKWING_HOME is private to the user: files 0600 (the state
database with its -wal/-shm, logs, cache objects, the outbox) in folders 0700."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from sparkwing.surfaces.state.outbox_queue import OutboxQueue
from tests.engine.swtest import Proj


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_run_creates_private_files_in_private_folders(proj: Proj) -> None:
    proj.pipeline(f"""
        import os, stat

        HOME = {str(proj.swhome)!r}

        def modes(ctx):
            # The runner holds the database open in WAL mode while jobs run.
            for name in ("state.db", "state.db-wal", "state.db-shm"):
                mode = stat.S_IMODE(os.stat(os.path.join(HOME, name)).st_mode)
                print(f"mode {{name}} {{mode:o}}")
            return {{"built": True}}

        @sw.pipeline("p")
        def plan(plan, args, rc):
            plan.job("modes", modes).memoize(lambda ctx: "once")
    """)
    code, doc = proj.run_json("p")
    assert code == 0, doc
    logs = proj.sw("runs", "logs", "--job", "modes")
    assert [line for line in logs.out.splitlines() if line.startswith("mode ")] == [
        "mode state.db 600",
        "mode state.db-wal 600",
        "mode state.db-shm 600",
    ]
    assert _mode(proj.swhome) == 0o700
    for sub in ("logs", "cache"):
        root = proj.swhome / sub
        files = [p for p in root.rglob("*") if p.is_file()]
        assert files, f"the run wrote nothing under {sub}/"
        assert {str(p): oct(_mode(p)) for p in files if _mode(p) != 0o600} == {}
        folders = [root, *(p for p in root.rglob("*") if p.is_dir())]
        assert {str(p): oct(_mode(p)) for p in folders if _mode(p) != 0o700} == {}
    for path in proj.swhome.glob("state.db*"):
        assert _mode(path) == 0o600, path


def test_the_outbox_database_is_private(tmp_path: Path) -> None:
    path = tmp_path / "home" / "outbox" / "outbox.db"
    outbox = OutboxQueue(path)
    try:
        outbox.push("state", "run-1", "upsert_run", {"run_id": "run-1"})
        assert outbox.pending("state") == 1
        assert {p.name: _mode(p) for p in path.parent.iterdir()} == {
            "outbox.db": 0o600,
            "outbox.db-wal": 0o600,
            "outbox.db-shm": 0o600,
        }
        assert _mode(path.parent) == _mode(tmp_path / "home") == 0o700
    finally:
        outbox.close()
    assert os.path.exists(path)
