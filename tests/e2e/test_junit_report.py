"""`sparkwing runs report --format junit` gives JUnit XML that a CI's test-result reader takes:
read back with junitparser, one test case per job, failures where the jobs failed (with the
reason and the log's last lines), skipped where they were cancelled."""

from __future__ import annotations

from pathlib import Path

from junitparser import Failure, JUnitXml, Skipped

from tests.conftest import Cli, ProjectFiles

PIPELINE = """
import sparkwing as sw


@sw.pipeline("six")
def six(plan, args, rc):
    lint = plan.job("lint", "echo lint ok")
    unit = plan.job(
        "unit", "echo 'unit <tests> & \\x1b[31mred'; echo 'boom: assertion failed'; exit 1"
    )
    plan.job("build", "echo building").needs(lint)
    plan.job("package", "echo packaging").needs(unit)
    plan.job("docs", "echo docs")
    plan.job("flaky", "echo flaky && exit 2").optional()
"""


def _run(project: ProjectFiles, cli: Cli) -> str:
    project.write("six.py", PIPELINE)
    result = cli("run", "six", "-o", "json")
    assert result.code == 1, result.stderr
    return str(result.json()["run"]["run_id"])


def test_junit_report_to_a_file_reads_back_one_case_per_job(
    project: ProjectFiles, cli: Cli, tmp_path: Path
) -> None:
    run_id = _run(project, cli)
    out = tmp_path / "reports" / "sparkwing.xml"
    code, stdout, err = cli(
        "runs", "report", "--run", run_id, "--format", "junit", "--out", str(out)
    )
    assert code == 0, err
    assert stdout == "" and "6 test cases" in err
    xml = JUnitXml.fromfile(str(out))
    suites = list(xml)
    assert len(suites) == 1
    suite = suites[0]
    cases = {case.name: case for case in suite}
    assert set(cases) == {"lint", "unit", "build", "package", "docs", "flaky"}
    outcome = {
        name: type(case.result[0]).__name__ if case.result else "passed"
        for name, case in cases.items()
    }
    assert outcome == {
        "lint": "passed",
        "unit": "Failure",
        "build": "passed",
        "package": "Skipped",  # cancelled: upstream-failed
        "docs": "passed",
        "flaky": "Failure",  # optional, but it did fail
    }
    failure = cases["unit"].result[0]
    assert isinstance(failure, Failure)
    assert "exit code 1" in (failure.message or "")
    assert "boom: assertion failed" in (failure.text or "")
    assert "unit <tests> &" in (failure.text or "")  # escaped, not markup
    skipped = cases["package"].result[0]
    assert isinstance(skipped, Skipped) and "upstream-failed" in (skipped.message or "")
    assert (suite.tests, suite.failures, suite.skipped) == (6, 2, 1)


def test_junit_report_on_stdout_for_the_latest_run(
    project: ProjectFiles, cli: Cli, tmp_path: Path
) -> None:
    _run(project, cli)
    code, stdout, _ = cli("runs", "report")
    assert code == 0
    assert stdout.startswith("<?xml")
    path = tmp_path / "from-stdout.xml"
    path.write_text(stdout)
    assert sorted(case.name for suite in JUnitXml.fromfile(str(path)) for case in suite) == [
        "build",
        "docs",
        "flaky",
        "lint",
        "package",
        "unit",
    ]


def test_junit_report_of_a_missing_run_is_one_error_line(project: ProjectFiles, cli: Cli) -> None:
    project.write("six.py", PIPELINE)
    code, stdout, err = cli("runs", "report", "--run", "run-20260101-000000-zzzz")
    assert code == 2 and stdout == ""
    assert err.startswith("error: ") and err.count("\n") == 1
