"""``sparkwing doctor``: check the installation, project, profile and surfaces, then find
runs whose runner died without finishing them and record them as failed, and cancel the
unfinished jobs of finished runs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from sparkwing.cli.common import PROFILE_OPTION, emit_json, output_option

if TYPE_CHECKING:
    from sparkwing.conf.project import Project
    from sparkwing.conf.resolved import ResolvedProfile
    from sparkwing.surfaces.session import Surfaces
    from sparkwing.surfaces.state.base import StateStore

MARKS = {"ok": "ok  ", "warn": "warn", "fail": "FAIL"}
COLOURS = {"ok": "green", "warn": "yellow", "fail": "red"}


@dataclass
class Report:
    checks: list[dict[str, str]] = field(default_factory=list)
    fixed: list[dict[str, Any]] = field(default_factory=list)

    def add(self, name: str, status: str, detail: str) -> None:
        self.checks.append({"check": name, "status": status, "detail": detail})

    @property
    def failed(self) -> bool:
        return any(c["status"] == "fail" for c in self.checks)


def _guard(report: Report, name: str, fn: Callable[[], Any]) -> Any:
    """Run one check; an error it raises becomes a ``fail`` line instead of stopping doctor."""
    try:
        return fn()
    except Exception as exc:
        report.add(name, "fail", " ".join(str(exc).split()) or type(exc).__name__)
        return None


@click.command("doctor")
@click.option(
    "--stale-after",
    default="120s",
    show_default=True,
    metavar="DURATION",
    help="A run on another host counts as dead after this long without a heartbeat.",
)
@click.option(
    "--fix",
    is_flag=True,
    help="Also finish prunes that stopped halfway and apply the project's defaults.retention.",
)
@output_option("Output format.")
@PROFILE_OPTION
@click.pass_context
def doctor_cmd(
    ctx: click.Context, stale_after: str, fix: bool, output: str, profile: str | None
) -> int:
    """Check the setup (versions, project, profile, state, cache, logs, secrets), mark
    runs whose runner process died as failed and cancel the unfinished jobs of finished
    runs. With --fix, also finish interrupted prunes and prune what defaults.retention
    says. Exit 1 if any check fails."""
    from sparkwing.errors import PlanError, UsageError
    from sparkwing.sdk.durations import parse_duration

    try:
        stale_seconds = parse_duration(stale_after, "--stale-after")
    except PlanError as exc:
        raise UsageError(str(exc)) from None
    report = Report()
    _versions(report)
    project = _guard(report, "project", lambda: _project(ctx, report))
    resolved = _guard(report, "profile", lambda: _profile(report, profile, project))
    if resolved is not None:
        from sparkwing.surfaces.session import Surfaces

        with Surfaces.of_profile(resolved) as surfaces:
            state = _guard(report, "state", lambda: _state(report, surfaces))
            _guard(report, "cache", lambda: _directory(report, "cache", resolved))
            _guard(report, "logs", lambda: _directory(report, "logs", resolved))
            _guard(report, "secrets", lambda: _secrets(report, resolved))
            if state is not None:
                _guard(report, "runs", lambda: _reap(report, state, stale_seconds))
                _guard(
                    report,
                    "history",
                    lambda: _retention(report, surfaces, resolved, project, fix),
                )
    _guard(report, "outbox", lambda: _outbox(report))
    _print(report, output)
    return 1 if report.failed else 0


def _versions(report: Report) -> None:
    import platform
    import sys

    from sparkwing.__about__ import __version__

    python = platform.python_version()
    status = "ok" if sys.version_info >= (3, 11) else "fail"
    report.add("version", status, f"sparkwing {__version__}, Python {python} ({sys.executable})")


def _project(ctx: click.Context, report: Report) -> Project | None:
    from sparkwing.cli.common import load_project

    project = load_project(ctx)
    if project is None:
        report.add(
            "project",
            "warn",
            "no .sparkwing/ here or above; `sparkwing pipeline new NAME` creates one",
        )
        return None
    names = ", ".join(p.name for p in project.pipelines) or "none listed"
    exists = "valid" if project.file.exists() else "no sparkwing.yaml (defaults only)"
    report.add("project", "ok", f"{project.dir}: {exists}; pipelines: {names}")
    return project


def _profile(report: Report, profile: str | None, project: Project | None) -> ResolvedProfile:
    import os

    from sparkwing.conf.profiles import load_user_profiles
    from sparkwing.conf.resolve import resolve_profile

    user = load_user_profiles()
    for warning in user.warnings:
        report.add("profiles file", "warn", warning)
    # ``project`` is None when it is missing or invalid (reported above): resolve without it.
    resolved = resolve_profile(project, flag=profile, env=os.environ, pipeline=None, user=user)
    report.add("profile", "ok", f"{resolved.name} ({resolved.source})")
    return resolved


def _state(report: Report, surfaces: Surfaces) -> StateStore | None:
    """The opened state when it is healthy (runs are only repaired in a healthy store)."""
    state = surfaces.state
    where = surfaces.where("state")
    check = getattr(state, "integrity_check", None)
    if callable(check):
        result = str(check())
        if result != "ok":
            report.add("state", "fail", f"{where}: integrity check: {result}")
            return None
        where += " (integrity ok)"
    report.add("state", "ok", f"{where} opens")
    return state


def _writable_dir(path: Path) -> tuple[bool, str]:
    """Whether ``path`` (or, if it does not exist yet, its nearest existing parent that
    would hold it) accepts new files."""
    import os
    import tempfile

    target = path
    while not target.exists() and target != target.parent:
        target = target.parent
    if not target.is_dir():
        return False, f"{target} is not a directory"
    if target != path:
        ok = os.access(target, os.W_OK | os.X_OK)
        return ok, f"{path} (will be created in {target})" if ok else f"{target} is not writable"
    try:
        with tempfile.NamedTemporaryFile(dir=path, prefix=".sparkwing-doctor-"):
            pass
    except OSError as exc:
        return False, f"{path} is not writable: {exc.strerror or exc}"
    return True, f"{path} writable"


def _directory(report: Report, surface: str, resolved: ResolvedProfile) -> None:
    import os

    from sparkwing.conf.interpolate import parse
    from sparkwing.surfaces import registry

    spec = resolved.spec(surface)
    if not registry.supports(surface, spec.type, "local_path") or not spec.path:
        report.add(
            surface, "ok", f"{spec.describe()} (`sparkwing profile check` tests remote stores)"
        )
        return
    # A path with ${RUN_ID} and friends: check the fixed folder the variables sit under.
    parts = parse(spec.path)
    literal: list[str] = []
    for part in parts:
        if isinstance(part, tuple):
            break
        literal.append(part)
    text = "".join(literal)
    if len(literal) < len(parts) and not text.endswith("/"):
        text = os.path.dirname(text)
    folder = Path(text or ".").expanduser()
    ok, detail = _writable_dir(folder)
    report.add(surface, "ok" if ok else "fail", detail)


def _secrets(report: Report, resolved: ResolvedProfile) -> None:
    import stat

    from sparkwing.cli.common import surface_spec
    from sparkwing.surfaces import registry

    spec = surface_spec(resolved, "secrets")
    if not registry.supports("secrets", spec.type, "local_path") or not spec.path:
        report.add("secrets", "ok", spec.describe())
        return
    plain = spec.options.get("plain_path")
    for path in [Path(spec.path)] + ([Path(str(plain)).expanduser()] if plain else []):
        if not path.exists():
            report.add("secrets", "ok", f"{path} (not created yet)")
            continue
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            report.add(
                "secrets",
                "warn",
                f"{path} is readable by group or others (mode {mode:04o}); run: chmod 600 {path}",
            )
        else:
            report.add("secrets", "ok", f"{path} (mode {mode:04o})")


def _reap(report: Report, state: StateStore, stale_seconds: float) -> None:
    from sparkwing.engine.recovery import finish_left_jobs, reap_dead_runs

    reaped, still = reap_dead_runs(state, stale_seconds)
    left = finish_left_jobs(state)
    for dead in [*reaped, *left]:
        report.fixed.append(
            {
                "run_id": dead.run.run_id,
                "pipeline": dead.run.pipeline,
                "status": "failed" if dead in reaped else dead.run.status,
                "reason": dead.reason,
                "cancelled_jobs": dead.cancelled_jobs,
            }
        )
    detail = f"{len(reaped)} dead run(s) marked failed" if reaped else "no dead runs"
    if left:
        detail += f"; unfinished jobs of {len(left)} finished run(s) cancelled"
    report.add("runs", "ok", detail + (f"; {still} live" if still else ""))


def _retention(
    report: Report,
    surfaces: Surfaces,
    resolved: ResolvedProfile,
    project: Project | None,
    fix: bool,
) -> None:
    """Prunes that stopped halfway (finished with --fix) and the project's retention policy
    (applied with --fix)."""
    from sparkwing.cli.runs_prune import open_pruner
    from sparkwing.engine.prunejournal import pending_journals
    from sparkwing.engine.retention import Policy

    retention = project.defaults.retention if project is not None else None
    if not fix:
        pending = len(pending_journals(surfaces.state))
        if pending:
            report.add(
                "history", "warn", f"{pending} prune(s) stopped halfway; `doctor --fix` ends them"
            )
        elif retention is None:
            report.add("history", "ok", "no defaults.retention: runs are kept until pruned")
        else:
            policy = Policy(retention.max_age, retention.keep_last)
            report.add("history", "ok", f"{policy.describe()} (`doctor --fix` applies it)")
        return
    with open_pruner(surfaces, resolved, quiet=True) as pruner:
        finished = pruner.finish_interrupted()
        detail = f"{finished} interrupted prune(s) finished; " if finished else ""
        if retention is None:
            report.add("history", "ok", detail + "no defaults.retention to apply")
            return
        policy = Policy(retention.max_age, retention.keep_last)
        result = pruner.prune(policy)
    report.add(
        "history",
        "ok",
        f"{detail}pruned {len(result.runs)} run(s) ({policy.describe()}), kept {result.kept}; "
        f"{result.manifests + result.blobs} artifact object(s) removed",
    )


def _outbox(report: Report) -> None:
    """State writes staged while an object store was unreachable (they replay by themselves
    at the next command that opens that store; failed ones need a look)."""
    from datetime import UTC, datetime

    from sparkwing.paths import local_dir
    from sparkwing.surfaces.state.outbox_queue import outbox_summary

    path = local_dir() / "outbox.db"
    if not path.exists():
        report.add("outbox", "ok", "empty")
        return
    summaries = outbox_summary(path)
    staged = [s for s in summaries if s.pending]
    failed = [s for s in summaries if s.failed]
    for s in staged:
        since = (
            datetime.fromtimestamp(s.oldest, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
            if s.oldest
            else "?"
        )
        report.add(
            "outbox",
            "warn",
            f"{s.pending} state write(s) for {s.store} staged since "
            f"{since}; they replay at the next command using it",
        )
    for s in failed:
        report.add(
            "outbox",
            "fail",
            f"{s.failed} state write(s) for {s.store} were refused by "
            f"the store and kept in {path} (table failed)",
        )
    if not staged and not failed:
        report.add("outbox", "ok", "empty")


def _print(report: Report, output: str) -> None:
    import sys

    if output == "json":
        emit_json({"ok": not report.failed, "checks": report.checks, "fixed": report.fixed})
        return
    tty = sys.stdout.isatty()
    width = max(len(c["check"]) for c in report.checks)
    for check in report.checks:
        mark = MARKS[check["status"]]
        if tty:
            mark = click.style(mark, fg=COLOURS[check["status"]])
        click.echo(f"{mark}  {check['check'].ljust(width)}  {check['detail']}")
    for fixed in report.fixed:
        jobs = f"; {fixed['cancelled_jobs']} job(s) cancelled" if fixed["cancelled_jobs"] else ""
        click.echo(
            f"fixed  {fixed['run_id']} ({fixed['pipeline']}): {fixed['status']}: "
            f"{fixed['reason']}{jobs}"
        )
