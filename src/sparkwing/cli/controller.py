"""``sparkwing controller``: serve the HTTP API runners send their surfaces through, and
manage its API tokens (created, listed, rotated and revoked directly in the controller's
database); ``controller repo`` lives in :mod:`sparkwing.cli.controller_repo`."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from sparkwing.cli.common import OUTPUT_OPTION, PROFILE_OPTION, emit_json, emit_ndjson, table

if TYPE_CHECKING:
    from sparkwing.controller.tokens import TokenInfo, TokenStore

CONTEXT = {"help_option_names": ["-h", "--help"]}
_LOOPBACK = ("127.0.0.1", "::1", "localhost")
EXPIRES_OPTION = click.option(
    "--expires",
    default=None,
    metavar="DURATION",
    help="The token stops working after this long (30d, 12h, 90m); default: never.",
)


@click.group("controller", context_settings=CONTEXT)
def controller_group() -> None:
    """Run a controller: one service owning the database and stores, reached by runners
    whose profile says `controller: {url, token}`, so CI never holds store credentials."""


@controller_group.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=8420, show_default=True, help="0: any."
)
@click.option("--tls-cert", type=click.Path(dir_okay=False, exists=True), default=None)
@click.option("--tls-key", type=click.Path(dir_okay=False, exists=True), default=None)
@click.option(
    "--key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="File holding the base64 key secrets are encrypted with "
    "(default: $SPARKWING_CONTROLLER_KEY).",
)
@click.option("--no-access-log", is_flag=True, help="Do not log one line per request.")
@click.option(
    "--schedule-poll",
    type=click.FloatRange(min=0.05),
    default=30.0,
    show_default=True,
    metavar="SECONDS",
    help="How often the schedules (on.schedule) of the known repositories are checked.",
)
@PROFILE_OPTION
@click.pass_context
def serve_cmd(
    ctx: click.Context,
    host: str,
    port: int,
    tls_cert: str | None,
    tls_key: str | None,
    key_file: Path | None,
    no_access_log: bool,
    schedule_poll: float,
    profile: str | None,
) -> None:
    """Serve the controller API, storing everything in the stores of profile P (sqlite or
    postgres state; filesystem or object-store cache and logs). The OpenAPI document is at
    /openapi.json and an unauthenticated health check at /healthz."""
    from sparkwing.cli.common import load_project, resolve
    from sparkwing.controller.backend import open_backend
    from sparkwing.controller.vault import load_key

    if bool(tls_cert) != bool(tls_key):
        raise click.UsageError("--tls-cert and --tls-key go together")
    key = load_key(os.environ, key_file)
    project = load_project(ctx)
    retention = project.defaults.retention if project is not None else None
    resolved = resolve(ctx, profile, project=project)
    backend = open_backend(resolved, key, os.environ)
    try:
        from sparkwing.controller.app import build_app
        from sparkwing.controller.server import bind, make_server, setup_logging, url_of

        sock = bind(host, port)
        url = url_of(sock, bool(tls_cert))
        click.echo(f"sparkwing controller for profile {resolved.name} listening on {url}")
        for surface, where in backend.where.items():
            click.echo(f"  {surface}: {where}")
        click.echo(f"  OpenAPI: {url}/openapi.json")
        if retention is not None:
            from sparkwing.engine.retention import Policy

            policy = Policy(retention.max_age, retention.keep_last)
            click.echo(f"  retention: {policy.describe()}, every {retention.interval:g}s")
        if not tls_cert and host not in _LOOPBACK:
            click.echo(
                "warning: plain HTTP on a non-loopback address: tokens and secrets cross the "
                "network in clear; use --tls-cert/--tls-key or a TLS-terminating proxy",
                err=True,
            )
        sys.stdout.flush()
        setup_logging()
        app = build_app(backend, schedule_poll=schedule_poll, retention=retention)
        server = make_server(app, tls_cert=tls_cert, tls_key=tls_key, access_log=not no_access_log)
    except BaseException:
        backend.close()
        raise
    server.run(sockets=[sock])  # the app's shutdown closes the backend


@controller_group.command("keygen")
def keygen_cmd() -> None:
    """Print a new random key for SPARKWING_CONTROLLER_KEY or a --key-file."""
    from sparkwing.controller.vault import generate_key

    click.echo(generate_key())


@controller_group.group("token", context_settings=CONTEXT)
def token_group() -> None:
    """Create, list, rotate and revoke API tokens (stored hashed in the controller's
    database)."""


def _tokens(ctx: click.Context, profile: str | None) -> TokenStore:
    from sparkwing.cli.common import resolve
    from sparkwing.controller.backend import open_metadb_for
    from sparkwing.controller.tokens import TokenStore

    return TokenStore(open_metadb_for(resolve(ctx, profile), os.environ))


@token_group.command("create")
@click.option("--name", required=True, help="A name to recognise and revoke the token by.")
@click.option(
    "--scope",
    "scopes",
    required=True,
    metavar="SCOPES",
    help="Comma-separated: runs.read, runs.write, runs.approve (resolve approvals and "
    "pauses), runs.trigger (the generic webhook), runs.delete (prune history), logs.read, "
    "logs.write, cache.read, cache.write, secrets.read, secrets.write, admin (all of them).",
)
@EXPIRES_OPTION
@OUTPUT_OPTION
@PROFILE_OPTION
@click.pass_context
def create_cmd(
    ctx: click.Context,
    name: str,
    scopes: str,
    expires: str | None,
    output: str,
    profile: str | None,
) -> None:
    """Create a token and print it: it is shown this once and stored only as a hash. In
    table output the token is the only line on stdout (details go to stderr), so
    `TOKEN=$(sparkwing controller token create ...)` captures it."""
    lifetime = _lifetime(expires)
    store = _tokens(ctx, profile)
    try:
        info, value = store.create(name, scopes, lifetime)
    finally:
        store.db.close()
    until = f", expires {info.expires_at}" if info.expires_at else ""
    _show_value(
        info,
        value,
        output,
        f"created token {info.name} ({info.id}) with {', '.join(info.scopes)}{until}",
    )


def _lifetime(expires: str | None) -> float | None:
    """``--expires 30d`` in seconds (None: never)."""
    from sparkwing.errors import PlanError, UsageError
    from sparkwing.sdk.durations import parse_duration

    if expires is None:
        return None
    try:
        seconds = parse_duration(expires, "--expires")
    except PlanError as exc:
        raise UsageError(str(exc)) from None
    if seconds <= 0:
        raise UsageError(f"--expires {expires!r}: give a duration longer than zero, like 30d")
    return seconds


def _doc(info: TokenInfo) -> dict[str, object]:
    return {
        "id": info.id,
        "name": info.name,
        "scopes": list(info.scopes),
        "created_at": info.created_at,
        "last_used_at": info.last_used_at,
        "expires_at": info.expires_at,
    }


def _show_value(info: TokenInfo, value: str, output: str, summary: str) -> None:
    """Print a new token value: in table output alone on stdout, so it can be captured."""
    if output == "json":
        emit_json({**_doc(info), "token": value})
        return
    click.echo(summary, err=True)
    click.echo(value)
    click.echo("store it now: it cannot be shown again", err=True)


@token_group.command("rotate")
@click.argument("token")
@EXPIRES_OPTION
@OUTPUT_OPTION
@PROFILE_OPTION
@click.pass_context
def rotate_cmd(
    ctx: click.Context, token: str, expires: str | None, output: str, profile: str | None
) -> None:
    """Give the token named (or with id) TOKEN a new value, keeping its name and scopes, and
    print it once; the old value stops working within seconds. Its expiry is kept unless
    --expires sets a new one."""
    from sparkwing.errors import UsageError

    lifetime = _lifetime(expires)
    store = _tokens(ctx, profile)
    try:
        rotated = store.rotate(token, lifetime)
    finally:
        store.db.close()
    if rotated is None:
        raise UsageError(f"no token named or with id {token!r}")
    info, value = rotated
    until = f", expires {info.expires_at}" if info.expires_at else ""
    _show_value(info, value, output, f"rotated token {info.name} ({info.id}){until}")


@token_group.command("list")
@OUTPUT_OPTION
@PROFILE_OPTION
@click.pass_context
def list_cmd(ctx: click.Context, output: str, profile: str | None) -> None:
    """List tokens: name, id, scopes, when created, last used and when they expire (never
    values)."""
    store = _tokens(ctx, profile)
    try:
        tokens = store.list()
    finally:
        store.db.close()
    if output == "json":
        emit_ndjson(_doc(t) for t in tokens)
        return
    if not tokens:
        click.echo("no tokens; create one with `sparkwing controller token create`")
        return
    table(
        ["name", "id", "scopes", "created", "last used", "expires"],
        [
            (
                t.name,
                t.id,
                ",".join(t.scopes),
                t.created_at,
                t.last_used_at or "-",
                _expiry(t),
            )
            for t in tokens
        ],
    )


def _expiry(info: TokenInfo) -> str:
    if info.expires_at is None:
        return "never"
    return f"{info.expires_at} (expired)" if info.expired() else info.expires_at


@token_group.command("revoke")
@click.argument("token")
@OUTPUT_OPTION
@PROFILE_OPTION
@click.pass_context
def revoke_cmd(ctx: click.Context, token: str, output: str, profile: str | None) -> None:
    """Revoke a token by name or id; a running controller stops accepting it within
    seconds."""
    from sparkwing.errors import UsageError

    store = _tokens(ctx, profile)
    try:
        revoked = store.revoke(token)
    finally:
        store.db.close()
    if revoked is None:
        raise UsageError(f"no token named or with id {token!r}")
    if output == "json":
        emit_json({"id": revoked.id, "name": revoked.name, "revoked": True})
    else:
        click.echo(f"revoked token {revoked.name} ({revoked.id})")


from sparkwing.cli.controller_repo import repo_group  # noqa: E402 - registered last

controller_group.add_command(repo_group)
