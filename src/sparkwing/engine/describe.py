"""``python -m sparkwing.engine.describe``: imports a project's pipeline modules in a child
process (user code never runs inside the CLI) and prints what they register as JSON.

Input on stdin: ``{"sparkwing_dir", "root", "yaml": [{"name", "entrypoint"}], "pipeline"?,
"yaml_args"?, "default_args"?, "profile"?}``. Output on stdout: ``{"pipelines": [registered],
"yaml": {name: summary or {"error"}}, "pipeline"?: {..., "plan"}}`` or ``{"error"}``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from sparkwing.errors import SparkwingError


def summary(pdef: Any) -> dict[str, Any]:
    """A registered pipeline as plain data: name, entrypoint, description, where, inputs."""
    from sparkwing.sdk.inputs import args_type_of, describe_inputs

    module = getattr(pdef.obj, "__module__", None)
    file = getattr(sys.modules.get(module or ""), "__file__", None)
    # A yaml-bound class is not registered, so its docstring was never read for it.
    doc = (getattr(pdef.obj, "__doc__", None) or "").strip().split("\n")[0] or None
    out: dict[str, Any] = {
        "name": pdef.name,
        "entrypoint": pdef.entrypoint,
        "description": pdef.description or doc,
        "module": module,
        "file": file,
    }
    try:
        out["inputs"] = describe_inputs(args_type_of(pdef.obj))
    except Exception as exc:  # an unresolvable annotation must not hide the other pipelines
        out["inputs"] = []
        out["inputs_error"] = f"{type(exc).__name__}: {exc}"
    return out


def plan_snapshot(pdef: Any, request: dict[str, Any]) -> dict[str, Any]:
    """The jobs ``plan()`` builds with the default inputs, or why it could not be built."""
    from sparkwing.engine.runner import call_plan
    from sparkwing.sdk.context import RunContext
    from sparkwing.sdk.inputs import args_type_of, build_args
    from sparkwing.sdk.plan import Plan
    from sparkwing.sdk.runtime import planning

    name = pdef.name if not request.get("pipeline") else str(request["pipeline"])
    try:
        args, _ = build_args(
            args_type_of(pdef.obj),
            name,
            yaml_args=request.get("yaml_args") or {},
            default_args=request.get("default_args") or {},
        )
        rc = RunContext(
            run_id="describe",
            pipeline=name,
            trigger="describe",
            profile=str(request.get("profile") or "local"),
            workdir=Path(request.get("root") or Path.cwd()),
        )
        plan = Plan(name)
        with planning(name):
            call_plan(pdef.obj, plan, args, rc)
        plan.order()
    except SparkwingError as exc:
        return {"error": str(exc)}
    except Exception as exc:
        return {"error": f"plan() raised {type(exc).__name__}: {exc}"}
    return plan.snapshot()


def describe(request: dict[str, Any]) -> dict[str, Any]:
    from sparkwing.engine.loader import find_pipeline, import_project
    from sparkwing.sdk.registry import PipelineDef, registered

    if request.get("sys_path"):
        from sparkwing.engine.runner import add_site_dirs

        add_site_dirs(list(request["sys_path"]))
    modules = import_project(Path(request["sparkwing_dir"]))
    yaml_entries = list(request.get("yaml") or [])
    yaml_names = [str(e["name"]) for e in yaml_entries]
    out: dict[str, Any] = {"pipelines": [summary(p) for p in registered().values()], "yaml": {}}
    for entry in yaml_entries:
        try:
            found = find_pipeline(entry["name"], entry["entrypoint"], modules, yaml_names)
        except SparkwingError as exc:
            out["yaml"][entry["name"]] = {"error": str(exc)}
        else:
            out["yaml"][entry["name"]] = summary(
                PipelineDef(entry["name"], found.obj, found.description)
            )
    name = request.get("pipeline")
    if name:
        entrypoint = next((e["entrypoint"] for e in yaml_entries if e["name"] == name), None)
        found = find_pipeline(str(name), entrypoint, modules, yaml_names)
        pdef = PipelineDef(str(name), found.obj, found.description)
        out["pipeline"] = {**summary(pdef), "plan": plan_snapshot(pdef, request)}
    return out


def main() -> None:
    from sparkwing.engine.procutil import die_with_parent

    die_with_parent()
    # User modules may print while importing: keep file descriptor 1 for our JSON only.
    result_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    try:
        request = json.loads(sys.stdin.read())
        if not isinstance(request, dict) or "sparkwing_dir" not in request:
            raise ValueError("expected a JSON object with sparkwing_dir")
        doc = describe(request)
    except SparkwingError as exc:
        doc = {"error": str(exc)}
    except ValueError as exc:
        doc = {"error": f"invalid describe request: {exc}"}
    with os.fdopen(result_fd, "w", encoding="utf-8") as out:
        out.write(json.dumps(doc, default=str))
    sys.exit(0)


if __name__ == "__main__":
    main()
