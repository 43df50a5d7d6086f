"""`sparkwing run ... | head`: once its output is closed the run's progress goes quiet, and
the run itself goes on to its own end, recorded as usual (it used to end the runner as an
internal error and record the run failed)."""

from __future__ import annotations

import json
import subprocess

from tests.conftest import Cli, ProjectFiles, sparkwing_command

PIPE = """
import sparkwing as sw


@sw.pipeline("chatty")
def chatty(plan):
    first = plan.job("first", "echo one; echo two; echo three")
    plan.job("second", lambda ctx: print("\\n".join(map(str, range(200))))).needs(first)
"""


def test_a_run_whose_output_is_closed_runs_to_its_end(project: ProjectFiles, cli: Cli) -> None:
    project.write("chatty.py", PIPE)
    proc = subprocess.Popen(
        [*sparkwing_command(), "run", "chatty", "-o", "plain"],
        cwd=project.root,
        env=cli.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.read(1)  # the first byte of the first line, then nobody reads on: `head -c1`
    proc.stdout.close()
    err = proc.stderr.read().decode()
    code = proc.wait(timeout=120)
    assert code == 0, err
    assert "internal error" not in err and "Traceback" not in err
    shown = cli("runs", "status", "--run", "latest", "-o", "json")
    assert shown.code == 0, shown.stderr
    doc = json.loads(shown.stdout)
    assert doc["run"]["status"] == "success"
    assert {n["node_id"]: n["status"] for n in doc["nodes"]} == {
        "first": "success",
        "second": "success",
    }
    logs = cli("runs", "logs", "--run", "latest", "--job", "second")
    assert "199" in logs.stdout, "the job's whole output is still in its log"
