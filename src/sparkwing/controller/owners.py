"""The table of which tokens created or claimed each run, read by the write checks in
:mod:`sparkwing.controller.authority`."""

from __future__ import annotations

from typing import Literal

from sparkwing.controller.metadb import MetaDB

How = Literal["created", "claimed"]


class RunOwners:
    """The ``controller_run_tokens`` table: (run, token name, how it got the run)."""

    def __init__(self, db: MetaDB) -> None:
        self.db = db

    def add(self, run_id: str, token_name: str, how: How) -> None:
        self.db.execute(
            "INSERT INTO controller_run_tokens (run_id, token_name, how) VALUES (?, ?, ?)"
            " ON CONFLICT DO NOTHING",
            (run_id, token_name, how),
        )

    def of(self, run_id: str) -> dict[str, set[str]]:
        """Token name -> the ways it got ``run_id`` (created, claimed)."""
        found: dict[str, set[str]] = {}
        rows = self.db.query(
            "SELECT token_name, how FROM controller_run_tokens WHERE run_id = ?", (run_id,)
        )
        for name, how in rows:
            found.setdefault(str(name), set()).add(str(how))
        return found

    def forget(self, run_id: str) -> None:
        """Drop the run's owners (its history was deleted)."""
        self.db.execute("DELETE FROM controller_run_tokens WHERE run_id = ?", (run_id,))
