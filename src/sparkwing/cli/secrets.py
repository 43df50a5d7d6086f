"""``sparkwing secrets``: set, get, list and delete values in the resolved profile's secrets
surface. Masked values never print unless asked for with ``--reveal``; lists show names only."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import click

from sparkwing.cli.common import OUTPUT_OPTION, PROFILE_OPTION, emit_json, emit_ndjson, table

if TYPE_CHECKING:
    from sparkwing.surfaces.secrets.base import SecretStore

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
HIDDEN = "***"


@click.group("secrets", context_settings={"help_option_names": ["-h", "--help"]})
def secrets_group() -> None:
    """Manage secrets (masked in every log) and plain config values, in the secrets surface
    of the resolved profile (built-in: ~/.config/sparkwing/secrets.env and config.env)."""


def _check_name(name: str) -> str:
    from sparkwing.errors import UsageError

    if not _NAME_RE.match(name):
        raise UsageError(
            f"secret name {name!r} must be letters, digits and '_', "
            "not starting with a digit (like API_TOKEN)"
        )
    return name


def _store(ctx: click.Context, profile: str | None) -> SecretStore:
    from sparkwing.cli.common import resolve, surface_spec
    from sparkwing.surfaces.open import open_secrets

    return open_secrets(surface_spec(resolve(ctx, profile), "secrets"))


def _read_value(name: str, value: str | None, from_stdin: bool) -> str:
    import sys

    if value is not None and from_stdin:
        raise click.UsageError("give the value as an argument or with --from-stdin, not both")
    if value is not None:
        return value
    if not from_stdin and sys.stdin.isatty():
        return str(click.prompt(f"value for {name}", hide_input=True, err=True))
    text = sys.stdin.read()
    # `echo value | sparkwing secrets set NAME` adds a newline that is not part of the value.
    return text[:-1] if text.endswith("\n") else text


@secrets_group.command("set")
@click.argument("name")
@click.argument("value", required=False)
@click.option(
    "--plain",
    is_flag=True,
    help="A plain config value (read with sparkwing.config(); not masked in logs).",
)
@click.option("--from-stdin", is_flag=True, help="Read the value from standard input.")
@OUTPUT_OPTION
@PROFILE_OPTION
@click.pass_context
def set_cmd(
    ctx: click.Context,
    name: str,
    value: str | None,
    plain: bool,
    from_stdin: bool,
    output: str,
    profile: str | None,
) -> None:
    """Set NAME. Without VALUE the value is prompted for (not echoed) on a terminal, else
    read from standard input, which keeps it out of shell history."""
    _check_name(name)
    secret = _read_value(name, value, from_stdin)
    store = _store(ctx, profile)
    store.set(name, secret, masked=not plain)
    where = store.describe()
    if output == "json":
        emit_json({"name": name, "masked": not plain, "store": where})
    else:
        click.echo(f"set {name} ({'plain' if plain else 'masked'}) in {where}")


@secrets_group.command("get")
@click.argument("name")
@click.option("--reveal", is_flag=True, help="Print a masked value instead of ***.")
@OUTPUT_OPTION
@PROFILE_OPTION
@click.pass_context
def get_cmd(ctx: click.Context, name: str, reveal: bool, output: str, profile: str | None) -> None:
    """Print NAME's value (masked values as *** unless --reveal)."""
    from sparkwing.errors import SparkwingError

    _check_name(name)
    store = _store(ctx, profile)
    found = store.resolve(name)
    where = store.describe()
    if found is None:
        raise SparkwingError(f"{name} is not defined in {where}")
    shown = found.value if reveal or not found.masked else HIDDEN
    if output == "json":
        emit_json({"name": name, "masked": found.masked, "value": shown})
    else:
        click.echo(shown)


@secrets_group.command("list")
@OUTPUT_OPTION
@PROFILE_OPTION
@click.pass_context
def list_cmd(ctx: click.Context, output: str, profile: str | None) -> None:
    """List names and whether each is masked; never values."""
    store = _store(ctx, profile)
    names = store.names()
    where = store.describe()
    if output == "json":
        emit_ndjson({"name": n, "masked": masked} for n, masked in names)
        return
    if not names:
        click.echo(f"no secrets in {where}; add one with `sparkwing secrets set NAME`")
        return
    table(["name", "kind"], [(n, "masked" if masked else "plain") for n, masked in names])


@secrets_group.command("delete")
@click.argument("name")
@OUTPUT_OPTION
@PROFILE_OPTION
@click.pass_context
def delete_cmd(ctx: click.Context, name: str, output: str, profile: str | None) -> None:
    """Remove NAME."""
    from sparkwing.errors import SparkwingError

    _check_name(name)
    store = _store(ctx, profile)
    removed = store.delete(name)
    where = store.describe()
    if not removed:
        raise SparkwingError(f"{name} is not defined in {where}")
    if output == "json":
        emit_json({"name": name, "deleted": True, "store": where})
    else:
        click.echo(f"deleted {name} from {where}")
