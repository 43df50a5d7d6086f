"""``sparkwing profile``: the effective profile and why (the group itself), ``list``,
``check``, ``migrate`` and ``schema``. Never prints a token or a DSN."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from sparkwing.cli.common import emit_json, emit_ndjson, table
from sparkwing.cli.profile_check import check_cmd
from sparkwing.cli.profile_migrate import migrate_cmd
from sparkwing.cli.profileinfo import (
    Loaded,
    group_option,
    load_config,
    location,
    output_option,
    pipeline_option,
    profile_option,
    remember_group_options,
    resolve_loaded,
    surface_source,
)

if TYPE_CHECKING:
    from sparkwing.conf.model import ProfileDef
    from sparkwing.conf.resolved import ResolvedProfile


_HOW = {
    "flag": "from --profile",
    "env": "from SPARKWING_PROFILE",
    "project default": "the project's defaults.profile",
    "built-in": "nothing selected: built-in local defaults",
}


@click.group(
    "profile",
    invoke_without_command=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@profile_option
@pipeline_option
@output_option
@click.pass_context
def profile_group(
    ctx: click.Context, profile: str | None, pipeline: str | None, output: str | None
) -> None:
    """Show the effective profile: how it was chosen, where each surface (state, cache,
    logs, secrets) goes and why, and the chain of choices considered.

    Example: `sparkwing profile --pipeline release -o json`."""
    remember_group_options(ctx, profile=profile, pipeline=pipeline, output=output)
    if ctx.invoked_subcommand is not None:
        return
    loaded = load_config(ctx)
    resolved = resolve_loaded(loaded, profile, pipeline)
    doc = show_doc(loaded, resolved, pipeline)
    if output == "json":
        emit_json(doc)
        return
    _print_show(doc)


def _defining(loaded: Loaded, name: str) -> ProfileDef:
    from sparkwing.conf.resolve import all_profiles

    return all_profiles(loaded.project, loaded.user)[name]


def show_doc(loaded: Loaded, resolved: ResolvedProfile, pipeline: str | None) -> dict[str, Any]:
    """What ``sparkwing profile -o json`` prints (documented in the README)."""
    surfaces: dict[str, Any] = {}
    for surface in ("state", "cache", "logs", "secrets"):
        spec = resolved.spec(surface)
        item: dict[str, Any] = {
            "type": spec.type,
            "location": location(spec),
            "source": surface_source(resolved, surface),
            "reason": resolved.reasons.get(surface, ""),
        }
        if spec.binaries is not None:
            item["binaries"] = {"type": spec.binaries.type, "location": location(spec.binaries)}
        surfaces[surface] = item
    pinned = None
    if pipeline and loaded.project is not None:
        entry = loaded.project.pipeline(pipeline)
        pinned = entry.profile if entry is not None else None
    return {
        "profile": resolved.name,
        "source": resolved.source,
        "file": str(_defining(loaded, resolved.name).file),
        "pipeline": pipeline,
        "pinned_profile": pinned,
        "surfaces": surfaces,
        "chain": list(resolved.chain),
    }


def _print_show(doc: dict[str, Any]) -> None:
    click.echo(f"profile   {doc['profile']} ({_HOW.get(doc['source'], doc['source'])})")
    click.echo(f"defined   {doc['file']}")
    if doc["pipeline"]:
        pin = f'pins profile "{doc["pinned_profile"]}"' if doc["pinned_profile"] else "no pin"
        click.echo(f"pipeline  {doc['pipeline']} ({pin})")
    click.echo("")
    rows = []
    for surface, item in doc["surfaces"].items():
        rows.append((surface, item["type"], item["location"], item["source"], item["reason"]))
        if "binaries" in item:
            binaries = item["binaries"]
            rows.append(("  binaries", binaries["type"], binaries["location"], "", ""))
    table(["surface", "type", "location", "source", "reason"], rows)
    click.echo("")
    click.echo("chain considered:")
    for number, step in enumerate(doc["chain"], 1):
        click.echo(f"  {number}. {step}")


@profile_group.command("list")
@output_option
@click.pass_context
def list_cmd(ctx: click.Context, output: str | None) -> None:
    """List the profiles of the user file, the project file and the built-in `local`; a name
    in both files resolves to the user file's. DEFAULT marks what applies without --profile."""
    output = group_option(ctx, "output", output)
    loaded = load_config(ctx)
    rows = list_rows(loaded)
    if output == "json":
        emit_ndjson(rows)
        return
    user_note = "" if loaded.user.file.exists() else " (missing)"
    click.echo(f"user file     {loaded.user.file}{user_note}")
    if loaded.project is not None:
        project_note = "" if loaded.project.file.exists() else " (missing)"
        click.echo(f"project file  {loaded.project.file}{project_note}")
    else:
        click.echo("project file  none (no .sparkwing/ here or above)")
    click.echo("")
    table(
        ["profile", "file", "default", "surfaces", "note"],
        [
            (
                r["name"],
                r["file"],
                "*" if r["default"] else "",
                ", ".join(r["surfaces"]) or "-",
                r["note"] or "",
            )
            for r in rows
        ],
    )


def _default_name(loaded: Loaded) -> tuple[str, str]:
    """(name, source) of the profile used without --profile."""
    import os

    from sparkwing.conf.resolve import BUILTIN_NAME, PROFILE_ENV

    from_env = os.environ.get(PROFILE_ENV)
    if from_env:
        return from_env, "env"
    project = loaded.project
    if project is not None and project.defaults.profile:
        return project.defaults.profile, "project default"
    return BUILTIN_NAME, "built-in"


def list_rows(loaded: Loaded) -> list[dict[str, Any]]:
    """One row per profile definition; shadowed ones (a user-file name clash, or a file's
    ``local`` hiding the built-in one) are listed with ``active: false``."""
    from sparkwing.conf.resolve import BUILTIN_NAME, builtin_profile

    user = loaded.user.profiles
    project = loaded.project.profiles if loaded.project is not None else {}
    project_file = loaded.project.file if loaded.project is not None else None
    default, default_source = _default_name(loaded)
    found: list[tuple[str, ProfileDef, bool, str | None]] = []
    for name, p in user.items():
        note = f"overrides the one in {project_file}" if name in project else None
        found.append(("user", p, True, note))
    for name, p in project.items():
        note = f"shadowed by the one in {loaded.user.file}" if name in user else None
        found.append(("project", p, name not in user, note))
    builtin_active = BUILTIN_NAME not in user and BUILTIN_NAME not in project
    builtin_note = None if builtin_active else "shadowed by a profile of the same name"
    found.append(("built-in", builtin_profile(), builtin_active, builtin_note))
    rows = []
    for kind, p, active, note in sorted(found, key=lambda f: (f[1].name, not f[2])):
        rows.append(
            {
                "name": p.name,
                "file": kind,
                "path": str(p.file),
                "line": p.line or None,
                "active": active,
                "default": active and p.name == default,
                "default_source": default_source if active and p.name == default else None,
                "surfaces": p.declared_surfaces(),
                "controller": location(p.controller.spec()) if p.controller else None,
                "note": note,
            }
        )
    return rows


@profile_group.command("schema")
@click.option(
    "--file",
    "which",
    type=click.Choice(["project", "user"]),
    default="project",
    show_default=True,
    help="project: .sparkwing/sparkwing.yaml; user: ~/.config/sparkwing/profiles.yaml.",
)
@output_option
def schema_cmd(which: str, output: str | None) -> None:
    """Print the JSON Schema (draft 2020-12) of the project file or the user profiles file,
    for editors: e.g. `sparkwing profile schema --file user > profiles.schema.json`."""
    from sparkwing.conf.schema import dumps, schema

    # Always JSON; -o is accepted so every command takes it.
    click.echo(dumps(schema(which)), nl=False)


profile_group.add_command(check_cmd)
profile_group.add_command(migrate_cmd)
