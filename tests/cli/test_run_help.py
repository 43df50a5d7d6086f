"""`sparkwing run P --help` lists P's inputs (types, choices, defaults, help from field
metadata or attribute docstrings) instead of refusing `--help` as an unknown flag; and under
`-o json` every error is one JSON object on stderr."""

from __future__ import annotations

import json

from tests.conftest import Cli, ProjectFiles

PIPELINE = '''
from dataclasses import dataclass, field
from typing import Literal

import sparkwing as sw


@dataclass
class DeployArgs:
    region: Literal["eu-west-1", "us-east-1"] = "eu-west-1"
    """Where the release goes."""
    replicas: int = field(default=2, metadata={"help": "pods to keep running"})
    ticket: str = field(default="")
    dry_run: bool = False


@sw.pipeline("deploy")
class Deploy:
    """Ship the release."""

    def plan(self, plan: sw.Plan, args: DeployArgs, rc: sw.RunContext) -> None:
        plan.job("ship", "echo shipping > shipped.txt")


@sw.pipeline("bare")
def bare(plan, args, rc):
    plan.job("only", "true")
'''


def test_run_help_lists_the_pipelines_inputs_and_runs_nothing(
    project: ProjectFiles, cli: Cli
) -> None:
    project.write("deploy.py", PIPELINE)
    code, out, err = cli("run", "deploy", "--help")
    assert (code, err) == (0, ""), err
    assert "Usage: sparkwing run deploy" in out
    assert "Ship the release." in out
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith("  --")}
    assert "eu-west-1|us-east-1" in lines["--region"]
    assert "Where the release goes." in lines["--region"]  # attribute docstring
    assert '(default: "eu-west-1")' in lines["--region"]
    assert "pods to keep running" in lines["--replicas"]  # field metadata
    assert "(default: 2)" in lines["--replicas"]
    assert "--no-dry-run" in lines["--dry-run"]
    assert not (project.root / "shipped.txt").exists()
    runs = cli("runs", "list", "-o", "json")
    assert runs.code == 0 and runs.stdout.strip() == "", "a help request recorded a run"


def test_run_help_of_a_pipeline_without_inputs(project: ProjectFiles, cli: Cli) -> None:
    project.write("deploy.py", PIPELINE)
    code, out, _ = cli("run", "bare", "-h")
    assert code == 0
    assert "Inputs: bare takes none." in out


def test_pipeline_describe_shows_choices_and_docstring_help(
    project: ProjectFiles, cli: Cli
) -> None:
    project.write("deploy.py", PIPELINE)
    doc = cli("pipeline", "describe", "deploy", "-o", "json").json()
    region = next(i for i in doc["inputs"] if i["name"] == "region")
    assert region["choices"] == ["eu-west-1", "us-east-1"]
    assert region["help"] == "Where the release goes."


def _one_json_error(err: str) -> dict[str, object]:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    doc = json.loads(lines[0])
    assert isinstance(doc, dict)
    return doc


def test_errors_under_json_output_are_one_json_object(project: ProjectFiles, cli: Cli) -> None:
    project.write("deploy.py", PIPELINE)
    unknown = cli("run", "nope", "-o", "json")
    assert unknown.code == 2 and unknown.stdout == ""
    doc = _one_json_error(unknown.stderr)
    assert doc["exit"] == 2 and "unknown pipeline" in str(doc["error"])

    bad_flag = cli("run", "deploy", "--regoin", "x", "-o", "json")
    doc = _one_json_error(bad_flag.stderr)
    assert bad_flag.code == 2 and doc["exit"] == 2 and "--regoin" in str(doc["error"])

    missing = cli("runs", "status", "--run", "run-20260101-000000-zzzz", "-o", "json")
    doc = _one_json_error(missing.stderr)
    assert missing.code == doc["exit"] == 2 and "not found" in str(doc["error"])

    usage = cli("runs", "list", "--limit", "zero", "-o", "json")
    doc = _one_json_error(usage.stderr)
    assert usage.code == doc["exit"] == 2


def test_errors_without_json_output_stay_one_plain_line(project: ProjectFiles, cli: Cli) -> None:
    project.write("deploy.py", PIPELINE)
    code, _, err = cli("run", "nope")
    assert code == 2
    assert err.startswith("error: unknown pipeline") and err.count("\n") == 1


def test_runs_cancel_without_a_run_does_what_its_help_says(project: ProjectFiles, cli: Cli) -> None:
    project.write("deploy.py", PIPELINE)
    assert cli("run", "bare").code == 0
    help_text = cli("runs", "cancel", "--help").stdout
    assert "nothing is cancelled by default" in " ".join(help_text.split())
    assert "omitted: the newest" not in help_text
    code, _, err = cli("runs", "cancel")
    assert code == 2 and "name the run to cancel" in err
