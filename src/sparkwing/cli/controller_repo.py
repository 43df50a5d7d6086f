"""``sparkwing controller repo``: the repositories whose pushes (webhooks) and schedules
start runs, kept in the controller's database."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import click

from sparkwing.cli.common import OUTPUT_OPTION, PROFILE_OPTION, emit_json, emit_ndjson, table

if TYPE_CHECKING:
    from sparkwing.controller.repos import RepoStore

CONTEXT = {"help_option_names": ["-h", "--help"]}


@click.group("repo", context_settings=CONTEXT)
def repo_group() -> None:
    """Add, list and remove repositories. The controller keeps a mirror of each, reads
    .sparkwing/sparkwing.yaml at every pushed commit (POST /v1/hooks/github/NAME,
    /v1/hooks/gitlab/NAME or /v1/hooks/generic/NAME) and queues the pipelines whose on:
    filters match; it also fires their on.schedule ticks."""


def _repos(ctx: click.Context, profile: str | None) -> RepoStore:
    from sparkwing.cli.common import resolve
    from sparkwing.controller.backend import open_metadb_for
    from sparkwing.controller.repos import RepoStore

    return RepoStore(open_metadb_for(resolve(ctx, profile), os.environ))


@repo_group.command("add")
@click.argument("name")
@click.option("--url", required=True, help="Clone URL (https://, ssh://, git@host:..., file://).")
@click.option(
    "--branch",
    default="main",
    show_default=True,
    help="The branch whose sparkwing.yaml the schedules come from.",
)
@click.option(
    "--webhook-secret-env",
    "secret_env",
    default=None,
    metavar="VAR",
    help="The controller's environment variable holding the webhook secret (GitHub's "
    "HMAC secret, GitLab's token); only the name is stored. Without it only the generic "
    "webhook (a runs.trigger token) works.",
)
@OUTPUT_OPTION
@PROFILE_OPTION
@click.pass_context
def add_cmd(
    ctx: click.Context,
    name: str,
    url: str,
    branch: str,
    secret_env: str | None,
    output: str,
    profile: str | None,
) -> None:
    """Add repository NAME (the last segment of its webhook URLs)."""
    from sparkwing.errors import PreconditionFailedError, UsageError

    store = _repos(ctx, profile)
    try:
        repo = store.add(name, url, branch, secret_env)
    except PreconditionFailedError as exc:
        raise UsageError(str(exc)) from None
    finally:
        store.db.close()
    if output == "json":
        emit_json(repo.to_dict())
    else:
        click.echo(f"added repository {repo.name} ({repo.to_dict()['url']}, branch {branch})")


@repo_group.command("list")
@OUTPUT_OPTION
@PROFILE_OPTION
@click.pass_context
def list_cmd(ctx: click.Context, output: str, profile: str | None) -> None:
    """List repositories: name, URL (without credentials), branch, secret variable."""
    store = _repos(ctx, profile)
    try:
        repos = store.list()
    finally:
        store.db.close()
    if output == "json":
        emit_ndjson(r.to_dict() for r in repos)
        return
    if not repos:
        click.echo("no repositories; add one with `sparkwing controller repo add`")
        return
    rows = [r.to_dict() for r in repos]
    table(
        ["name", "url", "branch", "secret env", "added"],
        [
            (d["name"], d["url"], d["branch"], d["webhook_secret_env"] or "-", d["created_at"])
            for d in rows
        ],
    )


@repo_group.command("remove")
@click.argument("name")
@OUTPUT_OPTION
@PROFILE_OPTION
@click.pass_context
def remove_cmd(ctx: click.Context, name: str, output: str, profile: str | None) -> None:
    """Remove repository NAME: its webhooks answer 404 and its schedules stop."""
    from sparkwing.errors import UsageError

    store = _repos(ctx, profile)
    try:
        removed = store.remove(name)
    finally:
        store.db.close()
    if not removed:
        raise UsageError(f"no repository named {name!r}")
    if output == "json":
        emit_json({"name": name, "removed": True})
    else:
        click.echo(f"removed repository {name}")
