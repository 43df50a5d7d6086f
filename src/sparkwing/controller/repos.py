"""Repositories known to the controller (name, clone URL, default branch, the environment
variable holding its webhook secret) and the webhook deliveries already acted on, in the
controller's own tables (``controller_repos``, ``controller_deliveries``)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sparkwing.controller.metadb import MetaDB
from sparkwing.engine.clock import now_iso
from sparkwing.errors import PreconditionFailedError, UsageError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_ENV = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_BRANCH = re.compile(r"^(?!/)(?!.*//)(?!.*\.\.)[A-Za-z0-9._/-]{1,200}(?<!/)$")
# user:password@ in a URL: a credential that would end up in run records.
_PASSWORD = re.compile(r"^[a-z][a-z0-9+.-]*://[^/@]*:[^/@]*@", re.IGNORECASE)
_COLUMNS = "name, url, branch, secret_env, created_at"
KEEP_DAYS = 30
# A claim still not done after this long was left by a controller that died handling it.
STALE_MINUTES = 10


@dataclass(frozen=True)
class Repo:
    name: str
    url: str
    branch: str  # where schedules read sparkwing.yaml
    secret_env: str | None
    created_at: str

    def to_dict(self) -> dict[str, str | None]:
        from sparkwing.source.mirror import redact_url

        return {
            "name": self.name,
            "url": redact_url(self.url),
            "branch": self.branch,
            "webhook_secret_env": self.secret_env,
            "created_at": self.created_at,
        }


def check_repo_name(name: str) -> str:
    """A repository name: letters, digits, ``.``, ``_``, ``-`` (it is a URL segment)."""
    if not _NAME.match(name):
        raise UsageError(
            f"repository name {name!r}: use 1-100 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def _check(repo: Repo) -> None:
    check_repo_name(repo.name)
    url = repo.url.strip()
    if not url or any(ord(c) < 33 for c in url):
        raise UsageError("--url: give the repository's clone URL (no spaces)")
    if _PASSWORD.match(url):
        raise UsageError(
            "--url holds a password or token: it would be recorded with every run; "
            "give git its credentials another way (a credential helper, an SSH key)"
        )
    if repo.secret_env is not None and not _ENV.match(repo.secret_env):
        raise UsageError(f"--webhook-secret-env {repo.secret_env!r} is not a variable name")
    if not _BRANCH.match(repo.branch):
        raise UsageError(f"--branch {repo.branch!r} is not a branch name")


class RepoStore:
    def __init__(self, db: MetaDB) -> None:
        self.db = db

    def add(self, name: str, url: str, branch: str, secret_env: str | None) -> Repo:
        repo = Repo(name, url.strip(), branch, secret_env, now_iso())
        _check(repo)
        inserted = self.db.execute(
            f"INSERT INTO controller_repos ({_COLUMNS}) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (name) DO NOTHING",
            (repo.name, repo.url, repo.branch, repo.secret_env, repo.created_at),
        )
        if not inserted:
            raise PreconditionFailedError(
                f"repository {name!r} exists already (remove it first to change it)"
            )
        return repo

    def get(self, name: str) -> Repo | None:
        rows = self.db.query(f"SELECT {_COLUMNS} FROM controller_repos WHERE name = ?", (name,))
        return Repo(*rows[0]) if rows else None

    def list(self) -> list[Repo]:
        return [Repo(*row) for row in self.db.query(f"SELECT {_COLUMNS} FROM controller_repos")]

    def remove(self, name: str) -> bool:
        if not self.db.execute("DELETE FROM controller_repos WHERE name = ?", (name,)):
            return False
        self.db.execute("DELETE FROM controller_deliveries WHERE repo = ?", (name,))
        return True


class Deliveries:
    """Which webhook deliveries were acted on: a delivery is claimed before its runs are
    queued and forgotten again if queueing fails, so only a sender's retry of a delivery
    that worked is ignored. A claim left by a controller that died while handling it is
    taken again by a redelivery once it is STALE_MINUTES old; the runs a delivery queues
    have ids derived from it, so handling it twice queues each run once."""

    def __init__(self, db: MetaDB) -> None:
        self.db = db

    def claim(self, repo: str, delivery: str) -> bool:
        """True for the first claim of (repo, delivery), or of one left half-handled long
        ago; False for a delivery done or being handled. Deliveries older than KEEP_DAYS are
        forgotten here (senders redeliver within days)."""
        now = datetime.now(UTC)
        cutoff = (now - timedelta(days=KEEP_DAYS)).strftime("%Y-%m-%dT%H:%M:%S")
        self.db.execute("DELETE FROM controller_deliveries WHERE received_at < ?", (cutoff,))
        if self.db.execute(
            "INSERT INTO controller_deliveries (repo, delivery, state, received_at, runs)"
            " VALUES (?, ?, 'received', ?, NULL) ON CONFLICT (repo, delivery) DO NOTHING",
            (repo, delivery, now_iso()),
        ):
            return True
        # Its handling failed (see release): a redelivery tries again, keeping the first
        # receive time, from which the runs' ids are derived.
        if self.db.execute(
            "UPDATE controller_deliveries SET state = 'received'"
            " WHERE repo = ? AND delivery = ? AND state = 'failed'",
            (repo, delivery),
        ):
            return True
        # Still being handled long after: whoever claimed it died before it was done. The
        # state moves on so that one redelivery, not every one at once, takes it over.
        stale = (now - timedelta(minutes=STALE_MINUTES)).strftime("%Y-%m-%dT%H:%M:%S")
        return bool(
            self.db.execute(
                "UPDATE controller_deliveries SET state = 'retaken'"
                " WHERE repo = ? AND delivery = ? AND state IN ('received', 'retaken')"
                " AND received_at < ?",
                (repo, delivery, stale),
            )
        )

    def received_at(self, repo: str, delivery: str) -> datetime | None:
        """When the delivery first arrived (its runs' ids are derived from it)."""
        rows = self.db.query(
            "SELECT received_at FROM controller_deliveries WHERE repo = ? AND delivery = ?",
            (repo, delivery),
        )
        if not rows:
            return None
        return datetime.fromisoformat(str(rows[0][0]).replace("Z", "+00:00"))

    def done(self, repo: str, delivery: str, run_ids: list[str]) -> None:
        self.db.execute(
            "UPDATE controller_deliveries SET state = 'done', runs = ?"
            " WHERE repo = ? AND delivery = ?",
            (json.dumps(run_ids), repo, delivery),
        )

    def release(self, repo: str, delivery: str) -> None:
        """Its handling failed: the next redelivery may claim it again."""
        self.db.execute(
            "UPDATE controller_deliveries SET state = 'failed' WHERE repo = ? AND delivery = ?",
            (repo, delivery),
        )

    def runs(self, repo: str, delivery: str) -> list[str] | None:
        """The runs a delivery queued (None: unknown or still being handled)."""
        rows = self.db.query(
            "SELECT runs FROM controller_deliveries WHERE repo = ? AND delivery = ?",
            (repo, delivery),
        )
        if not rows or rows[0][0] is None:
            return None
        return [str(r) for r in json.loads(rows[0][0])]
