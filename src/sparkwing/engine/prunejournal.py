"""The journal of a prune: what it is about to remove, written (privately, on this machine)
before anything is removed, so a prune that stopped halfway can be finished later."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sparkwing import _log
from sparkwing.paths import PRIVATE_FILE_MODE, local_dir, make_private_dirs
from sparkwing.surfaces.state.base import StateStore

log = _log.get("sparkwing.retention")


def journal_dir() -> Path:
    return local_dir() / "prune"


@dataclass
class Journal:
    """What one prune removes, written before anything is removed."""

    state: str  # the state store's describe(): a journal is finished only against it
    runs: list[dict[str, Any]]  # {"run_id", "pipeline", "surfaces"}
    memo: list[str]  # memo keys (cache key memo/<key> and the state's lease)
    manifests: list[str]
    blobs: list[str]
    path: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": 1,
            "state": self.state,
            "runs": self.runs,
            "memo": self.memo,
            "manifests": self.manifests,
            "blobs": self.blobs,
        }

    def write(self) -> None:
        folder = journal_dir()
        make_private_dirs(folder)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        self.path = folder / f"{stamp}-{os.getpid()}-{os.urandom(3).hex()}.json"
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, PRIVATE_FILE_MODE)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(self.to_dict(), fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)

    def remove(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)


def pending_journals(state: StateStore) -> list[Journal]:
    """Journals of prunes of ``state`` that did not finish, oldest first."""
    folder = journal_dir()
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.glob("*.json")):
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            log.warning("prune journal %s is unreadable (%s); leaving it", path, exc)
            continue
        if not isinstance(doc, dict) or doc.get("state") != state.describe():
            continue
        found.append(
            Journal(
                state=str(doc["state"]),
                runs=list(doc.get("runs", [])),
                memo=[str(k) for k in doc.get("memo", [])],
                manifests=[str(d) for d in doc.get("manifests", [])],
                blobs=[str(d) for d in doc.get("blobs", [])],
                path=path,
            )
        )
    return found
