"""The refusal ``runs submit`` gives a secret input spelled out: a queued run's arguments are
stored in the state until a worker starts it, so a secret input must name a profile secret
(``--token secret:NAME``) instead of carrying its value."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sparkwing.conf.project import Project


def _given(args: Sequence[str], flags: set[str]) -> list[tuple[str, str]]:
    """(flag, value) for each of ``flags`` in ``args`` (``--flag value`` or ``--flag=value``)."""
    found = []
    for i, token in enumerate(args):
        name, eq, value = token.partition("=")
        if name not in flags:
            continue
        if eq:
            found.append((name, value))
        elif i + 1 < len(args):
            found.append((name, args[i + 1]))
    return found


def refuse_secret_values(
    project: Project, pipeline: str, profile: str | None, args: Sequence[str]
) -> None:
    """UsageError when ``args`` give a secret input of ``pipeline`` a value rather than a
    ``secret:NAME`` reference. Pipelines that cannot be loaded here are checked by the
    worker that starts the run (which refuses them all the same)."""
    from sparkwing.cli.pipeline import inspect_project
    from sparkwing.errors import SparkwingError, UsageError
    from sparkwing.sdk.inputs import SECRET_REF

    if not any(a.startswith("--") and not a.startswith("--sw-") for a in args):
        return
    try:
        found = inspect_project(project, pipeline, profile)["pipeline"]
    except SparkwingError:
        return
    secret = {
        spelling
        for field in found.get("inputs", [])
        if field.get("secret")
        for spelling in (str(field["flag"]), "--" + str(field["name"]))
    }
    for flag, value in _given(args, secret):
        if not value.startswith(SECRET_REF):
            raise UsageError(
                f'pipeline "{pipeline}": input {flag} is secret and a queued run\'s arguments '
                f"are stored in the state: give it as {flag} {SECRET_REF}NAME, naming a "
                "secret of the profile (`sparkwing secrets set NAME`)"
            )
