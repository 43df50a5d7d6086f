"""``sparkwing pipeline``: scaffold a new pipeline, list the project's pipelines, describe one.

Pipeline code is imported only in a child process (``sparkwing.engine.describe``), so the
CLI never runs user code and a broken module is reported, not crashed on."""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from sparkwing.cli.common import (
    OUTPUT_OPTION,
    PROFILE_OPTION,
    emit_json,
    emit_ndjson,
    job_modifiers,
    load_project,
    table,
    workdir,
)

if TYPE_CHECKING:
    from sparkwing.conf.project import Project

LOAD_TIMEOUT_SECONDS = 120.0
DEFAULT_DESCRIPTION = "A new pipeline: build, then check."


@click.group("pipeline", context_settings={"help_option_names": ["-h", "--help"]})
def pipeline_group() -> None:
    """Create, list and describe the pipelines of the project in .sparkwing/."""


def inspect_project(
    project: Project, pipeline: str | None = None, profile: str | None = None
) -> dict[str, Any]:
    """What the project's modules register (and, for ``pipeline``, its inputs and plan),
    found by importing them in a child process."""
    with _project_bundle(project, profile) as bundle:
        return _inspect(project, pipeline, profile, bundle)


_REQUIREMENT_FILES = (
    "requirements.txt",
    "requirements.lock",
    "pyproject.toml",
    "uv.lock",
    "pylock.toml",
)


@contextlib.contextmanager
def _project_bundle(project: Project, profile: str | None) -> Iterator[Any]:
    """The pipeline's bundle when it has requirements (its modules may import them), so
    describing a pipeline sees exactly what running it would; None otherwise."""
    if not any((project.dir / name).exists() for name in _REQUIREMENT_FILES):
        yield None
        return
    from sparkwing.bundle.resolve import open_bundle
    from sparkwing.conf.interpolate import interpolate_spec
    from sparkwing.conf.resolve import resolve_profile

    resolved = resolve_profile(project, flag=profile, env=os.environ, pipeline=None)
    cache = interpolate_spec(resolved.cache, run_id="", pipeline="", profile=resolved.name)
    with open_bundle(
        project.dir,
        cache,
        say=lambda m: click.echo(m, err=True),
        warn=lambda m: click.echo(m, err=True),
    ) as bundle:
        yield bundle


def _inspect(
    project: Project, pipeline: str | None, profile: str | None, bundle: Any
) -> dict[str, Any]:
    import subprocess
    import sys

    from sparkwing.errors import UsageError

    entry = project.pipeline(pipeline) if pipeline else None
    request = {
        "sparkwing_dir": str(project.dir),
        "root": str(project.root),
        "yaml": [{"name": p.name, "entrypoint": p.entrypoint} for p in project.pipelines],
        "pipeline": pipeline,
        "yaml_args": dict(entry.args) if entry else {},
        "default_args": dict(project.defaults.args),
        "profile": profile,
    }
    flags: list[str] = []
    if bundle is not None and bundle.sources_dir is not None:
        from sparkwing.engine.supervise import isolation_flags

        request["sparkwing_dir"] = str(bundle.sources_dir)
        request["sys_path"] = bundle.sys_path
        flags = isolation_flags() if bundle.isolated else []
    try:
        proc = subprocess.run(
            [sys.executable, *flags, "-m", "sparkwing.engine.describe"],
            input=json.dumps(request, default=str),
            capture_output=True,
            text=True,
            cwd=project.root,
            timeout=LOAD_TIMEOUT_SECONDS,
        )
    except subprocess.TimeoutExpired:
        raise UsageError(
            f"importing the modules of {project.dir} took longer than {LOAD_TIMEOUT_SECONDS:g}s"
        ) from None
    if proc.stderr:
        # What user modules printed while importing; our JSON is on stdout alone.
        click.echo(proc.stderr.rstrip("\n"), err=True)
    try:
        doc = json.loads(proc.stdout)
    except ValueError:
        last = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
        raise UsageError(f"could not load the pipelines of {project.dir}: {last}") from None
    if not isinstance(doc, dict):
        raise UsageError(f"could not load the pipelines of {project.dir}: unexpected output")
    if "error" in doc:
        raise UsageError(str(doc["error"]))
    return doc


def _relative(project: Project, file: str | None) -> str | None:
    if not file:
        return None
    try:
        return str(Path(file).resolve().relative_to(project.dir.resolve()))
    except ValueError:
        return file


def pipeline_rows(project: Project, doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Every runnable name: sparkwing.yaml entries (with what their entrypoint resolves to),
    then decorator-registered pipelines that no entry names."""
    rows: list[dict[str, Any]] = []
    for entry in project.pipelines:
        found = doc.get("yaml", {}).get(entry.name) or {}
        rows.append(
            {
                "name": entry.name,
                "entrypoint": entry.entrypoint,
                "description": entry.description or found.get("description"),
                "profile": entry.profile,
                "args": dict(entry.args),
                "sources": ["sparkwing.yaml"],
                "file": _relative(project, found.get("file")),
                "inputs": found.get("inputs", []),
                "error": found.get("error"),
            }
        )
    named = {e.name for e in project.pipelines}
    for item in doc.get("pipelines", []):
        if item["name"] in named:
            for row in rows:
                if row["name"] == item["name"]:
                    row["sources"].append("decorator")
            continue
        rows.append(
            {
                "name": item["name"],
                "entrypoint": item["entrypoint"],
                "description": item.get("description"),
                "profile": None,
                "args": {},
                "sources": ["decorator"],
                "file": _relative(project, item.get("file")),
                "inputs": item.get("inputs", []),
                "error": None,
            }
        )
    return rows


@pipeline_group.command("list")
@OUTPUT_OPTION
@click.pass_context
def list_cmd(ctx: click.Context, output: str) -> None:
    """List the pipelines: those in sparkwing.yaml and those registered with
    @sparkwing.pipeline in .sparkwing/*.py (-o json: one per line)."""
    project = load_project(ctx, required=True)
    assert project is not None
    rows = pipeline_rows(project, inspect_project(project))
    if output == "json":
        emit_ndjson(rows)
        return
    if not rows:
        click.echo(f"no pipelines in {project.dir}; create one with `sparkwing pipeline new NAME`")
        return
    table(
        ["name", "entrypoint", "defined in", "profile", "description"],
        [
            (
                r["name"],
                r["entrypoint"],
                _where(r),
                r["profile"] or "-",
                f"error: {r['error']}" if r["error"] else (r["description"] or ""),
            )
            for r in rows
        ],
    )


def _where(row: dict[str, Any]) -> str:
    parts = ["sparkwing.yaml"] if "sparkwing.yaml" in row["sources"] else []
    if row["file"]:
        parts.append(row["file"])
    return ", ".join(parts) or "-"


@pipeline_group.command("describe")
@click.argument("name")
@OUTPUT_OPTION
@PROFILE_OPTION
@click.pass_context
def describe_cmd(ctx: click.Context, name: str, output: str, profile: str | None) -> None:
    """Show a pipeline: description, inputs (flags), sparkwing.yaml settings, and the jobs
    its plan() builds with default inputs."""
    project = load_project(ctx, required=True)
    assert project is not None
    doc = inspect_project(project, name, profile)
    found: dict[str, Any] = doc["pipeline"]
    entry = project.pipeline(name)
    result = {
        "name": name,
        "entrypoint": found["entrypoint"],
        "description": (entry.description if entry else None) or found.get("description"),
        "file": _relative(project, found.get("file")),
        "inputs": found.get("inputs", []),
        "yaml": None
        if entry is None
        else {"entrypoint": entry.entrypoint, "profile": entry.profile, "args": dict(entry.args)},
        "plan": found.get("plan"),
    }
    if output == "json":
        emit_json(result)
        return
    _print_description(result)


def _print_description(result: dict[str, Any]) -> None:
    where = f" ({result['file']})" if result["file"] else ""
    click.echo(f"pipeline     {result['name']}")
    click.echo(f"entrypoint   {result['entrypoint']}{where}")
    if result["description"]:
        click.echo(f"description  {result['description']}")
    yaml_part = result["yaml"]
    if yaml_part is not None:
        click.echo(f"profile pin  {yaml_part['profile'] or '- (uses the resolved profile)'}")
        if yaml_part["args"]:
            shown = " ".join(f"{k}={json.dumps(v)}" for k, v in yaml_part["args"].items())
            click.echo(f"yaml args    {shown}")
    click.echo("")
    if result["inputs"]:
        click.echo("inputs:")
        table(
            ["flag", "type", "default", "required", "help"],
            [
                (
                    i["flag"],
                    ("|".join(str(c) for c in i["choices"]) if i.get("choices") else i["type"])
                    + (" (secret)" if i.get("secret") else ""),
                    "-" if i["required"] else json.dumps(i["default"], default=str),
                    "yes" if i["required"] else "no",
                    i.get("help") or "",
                )
                for i in result["inputs"]
            ],
        )
    else:
        click.echo("inputs: none")
    plan = result["plan"] or {}
    click.echo("")
    if "error" in plan:
        click.echo(f"plan: not available with default inputs ({plan['error']})")
        return
    click.echo("jobs (plan with default inputs):")
    for job in plan.get("jobs", []):
        needs = f" needs {', '.join(job['needs'])}" if job.get("needs") else ""
        click.echo(f"  {job['id']}{needs}{job_modifiers(job)}")


def _check_unregistered(project: Project, name: str, module: Path) -> None:
    """Refuse a name another module already registers: the run would find it twice."""
    from sparkwing.errors import UsageError

    try:
        doc = inspect_project(project)
    except UsageError:
        return  # modules that do not import yet are for `sparkwing run` to report
    for item in doc.get("pipelines", []):
        if item["name"] == name and item.get("file") and Path(item["file"]) != module:
            raise UsageError(f'pipeline "{name}" is already registered in {item["file"]}')


@pipeline_group.command("new")
@click.argument("name")
@click.option(
    "--description",
    default=DEFAULT_DESCRIPTION,
    show_default=True,
    help="One line for sparkwing.yaml and the pipeline's docstring.",
)
@click.option("--force", is_flag=True, help="Overwrite the pipeline's module if it exists.")
@OUTPUT_OPTION
@click.pass_context
def new_cmd(ctx: click.Context, name: str, description: str, force: bool, output: str) -> None:
    """Create pipeline NAME: a module .sparkwing/<name>.py with two jobs (build, then
    check) and its entry in .sparkwing/sparkwing.yaml; creates .sparkwing/ here (or in
    -C DIR) when there is no project yet. Then: `sparkwing run NAME`."""
    from sparkwing.cli.scaffold import (
        add_pipeline_entry,
        class_name,
        module_name,
        module_source,
        write_atomic,
    )
    from sparkwing.conf.project import PROJECT_DIR, PROJECT_FILE
    from sparkwing.errors import UsageError
    from sparkwing.ids import check_segment

    check_segment(name, "pipeline name")
    if not re.match(r"^[A-Za-z][A-Za-z0-9._-]*$", name):
        raise UsageError(
            f"pipeline name {name!r}: use letters, digits, '-', '_' and '.', starting with a letter"
        )
    if "\n" in description:
        raise UsageError("--description must be one line")
    project = load_project(ctx)
    folder = project.dir if project is not None else workdir(ctx) / PROJECT_DIR
    yaml_file = folder / PROJECT_FILE
    module = folder / f"{module_name(name)}.py"
    cls = class_name(name)
    existing = project.pipeline(name) if project is not None else None
    if existing is not None and not (force and existing.entrypoint == cls):
        raise UsageError(f'pipeline "{name}" already exists in {yaml_file}:{existing.line}')
    if module.exists() and not force:
        raise UsageError(f"{module} already exists (--force overwrites it)")
    if project is not None and existing is None:
        _check_unregistered(project, name, module)
    text = yaml_file.read_text(encoding="utf-8") if yaml_file.exists() else ""
    new_text = text
    if existing is None:
        new_text = add_pipeline_entry(
            text, yaml_file, {"name": name, "entrypoint": cls, "description": description}
        )
    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(module, module_source(name, cls, description))
    if new_text != text or not yaml_file.exists():
        write_atomic(yaml_file, new_text)
    if output == "json":
        emit_json(
            {
                "name": name,
                "entrypoint": cls,
                "module": str(module),
                "project_file": str(yaml_file),
                "added_entry": existing is None,
            }
        )
        return
    click.echo(f"created {module}")
    if existing is None:
        click.echo(
            f"{'added to' if text else 'created'} {yaml_file}: pipeline {name} (entrypoint {cls})"
        )
    click.echo(f"run it with: sparkwing run {name}")
