"""User mistakes end in one clear line and exit code 2, never a traceback."""

from __future__ import annotations

import pytest

from tests.engine.swtest import Proj

GOOD = """
from dataclasses import dataclass

@dataclass
class Args:
    env: str = "dev"
    count: int = 1
    dry_run: bool = False

@sw.pipeline("p")
class P:
    def plan(self, plan, args: Args, rc):
        plan.job("show", lambda ctx: [ctx.args.env, ctx.args.count, ctx.args.dry_run])
"""


def _one_line_error(res: object, code: int = 2) -> str:
    assert res.code == code, (res.out, res.err)  # type: ignore[attr-defined]
    err = res.err.strip()  # type: ignore[attr-defined]
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error: ")
    return err


CASES = [
    # (yaml, code, argv, expected substring)
    ("pipelines: [\n", GOOD, ["p"], "sparkwing.yaml:"),
    (
        "pipelines:\n  - name: p\n    entrypoint: P\n    colour: red\n",
        GOOD,
        ["p"],
        'unknown key "colour"',
    ),
    ("", GOOD, ["nope"], 'unknown pipeline "nope" (available: p)'),
    ("", GOOD, ["p", "--region", "eu"], 'pipeline "p": unknown flag --region'),
    ("", GOOD, ["p", "--count", "many"], "invalid value 'many'"),
    ("", GOOD, ["p", "--sw-bogus"], "unknown engine flag --sw-bogus"),
    (
        "",
        """
@sw.pipeline("p")
def plan(plan, args, rc):
    a = plan.job("a", "true").needs("c")
    plan.job("b", "true").needs(a)
    plan.job("c", "true").needs("b")
""",
        ["p"],
        "cycle in needs: a -> c -> b -> a",
    ),
    (
        "",
        """
@sw.pipeline("p")
def plan(plan, args, rc):
    plan.job("a", "true")
    plan.job("a", "false")
""",
        ["p"],
        'pipeline "p": duplicate job id "a"',
    ),
    (
        "",
        """
@sw.pipeline("p")
def plan(plan, args, rc):
    plan.job("a", "true").needs("ghost")
""",
        ["p"],
        'job "a" needs unknown job "ghost"',
    ),
    (
        "",
        """
@sw.pipeline("p")
def plan(plan, args, rc):
    raise ValueError("bad plan")
""",
        ["p"],
        'plan() of pipeline "p" raised ValueError: bad plan (at ',
    ),
    ("", "import nonexistent_module_xyz\n", ["p"], "failed to import"),
    (
        "",
        """
@sw.pipeline("p")
def plan(plan, args, rc):
    plan.job("a", "true").timeout("soon")
""",
        ["p"],
        "timeout: expected a duration like '30s' or '10m', got 'soon'",
    ),
]


@pytest.mark.parametrize(("yaml", "code", "argv", "expected"), CASES)
def test_bad_input_is_one_line_exit_2(
    proj: Proj, yaml: str, code: str, argv: list[str], expected: str
) -> None:
    proj.pipeline(code, yaml)
    err = _one_line_error(proj.sw("run", *argv))
    assert expected in err
    # Nothing was recorded for a run that never started.
    assert (
        not (proj.swhome / "state.db").exists()
        or proj.db().execute("select count(*) from runs").fetchone()[0] == 0
    )


def test_no_project_is_a_clear_error(proj: Proj) -> None:
    (proj.root / ".sparkwing").rmdir()
    err = _one_line_error(proj.sw("run", "p"))
    assert "no .sparkwing/ folder found" in err


def test_inputs_precedence_cli_over_yaml_over_defaults_over_field(proj: Proj) -> None:
    yaml = """
defaults:
  args: {count: 3, dry_run: true, unrelated: 1}
pipelines:
  - name: p
    entrypoint: P
    args: {env: staging}
"""
    proj.pipeline(GOOD, yaml)
    code, doc = proj.run_json("p")
    assert code == 0
    assert proj.nodes(doc)["show"]["output"] == ["staging", 3, True]
    code, doc = proj.run_json("p", "--env", "prod", "--count=7", "--no-dry-run")
    assert code == 0
    assert proj.nodes(doc)["show"]["output"] == ["prod", 7, False]
    assert doc["run"]["args"] == {"env": "prod", "count": 7, "dry_run": False}


def test_field_defaults_apply_without_yaml(proj: Proj) -> None:
    proj.pipeline(GOOD)
    code, doc = proj.run_json("p", "--dry-run")
    assert code == 0
    assert proj.nodes(doc)["show"]["output"] == ["dev", 1, True]
