"""Inside GitHub Actions (GITHUB_ACTIONS=true) each job's log is one collapsible group, a failed
job adds an ::error with its reason, secrets are announced with ::add-mask:: and a Markdown
summary of the run is appended to $GITHUB_STEP_SUMMARY; inside Buildkite the groups are
`---` lines (`+++` for a failed job). Driven through the real CLI."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import Cli, ProjectFiles

SECRET = "gh-actions-s3cr3t-value"

PIPELINE = """
import time

import sparkwing as sw


def talk(ctx):
    for i in range(3):
        print(f"{ctx.job}-line-{i}", flush=True)
        time.sleep(0.05)


def leak(ctx):
    print("token is", sw.secret("API_TOKEN"))


@sw.pipeline("ci")
def ci(plan, args, rc):
    a = plan.job("alpha", talk)
    b = plan.job("beta", talk)
    plan.job("uses-secret", leak).needs(a)
    plan.job("broken", "echo about to break; exit 4").needs(b)
"""


def _project(project: ProjectFiles, cli: Cli) -> None:
    project.write("ci.py", PIPELINE)
    cli.config_dir.mkdir(parents=True, exist_ok=True)
    secrets = cli.config_dir / "secrets.env"
    secrets.write_text(f"API_TOKEN={SECRET}\n")
    secrets.chmod(0o600)


def _groups(out: str) -> dict[str, list[str]]:
    """Group title (job id) -> the lines inside it; fails on an unclosed or nested group."""
    groups: dict[str, list[str]] = {}
    current: str | None = None
    for line in out.splitlines():
        if line.startswith("::group::"):
            assert current is None, f"nested group at {line!r}"
            current = line[len("::group::") :].split(" ", 1)[0]
            groups[current] = []
        elif line == "::endgroup::":
            assert current is not None, "endgroup without a group"
            current = None
        elif current is not None:
            groups[current].append(line)
    assert current is None, f"group {current} never closed"
    return groups


def test_github_actions_groups_errors_masks_and_summary(
    project: ProjectFiles, cli: Cli, tmp_path: Path
) -> None:
    _project(project, cli)
    summary = tmp_path / "step-summary.md"
    summary.write_text("earlier step\n")
    env = {"GITHUB_ACTIONS": "true", "GITHUB_RUN_ID": "42", "GITHUB_STEP_SUMMARY": str(summary)}
    code, out, err = cli("run", "ci", "--sw-parallel", "2", "-o", "plain", env=env)
    assert code == 1, err
    groups = _groups(out)
    assert set(groups) == {"alpha", "beta", "uses-secret", "broken"}
    # Each job's lines sit together in its own group, though alpha and beta ran at once.
    for job in ("alpha", "beta"):
        assert [line for line in groups[job] if "-line-" in line] == [
            f"{job}-line-{i}" for i in range(3)
        ]
    assert any("about to break" in line for line in groups["broken"])
    errors = [line for line in out.splitlines() if line.startswith("::error ")]
    assert len(errors) == 1 and "title=job broken failed::" in errors[0]
    assert "exit" in errors[0].split("::", 2)[2]  # the job's reason
    # The secret is announced before any group that could show it, and never shown itself.
    masks = [i for i, line in enumerate(out.splitlines()) if line == f"::add-mask::{SECRET}"]
    assert masks, out
    assert SECRET not in out.replace(f"::add-mask::{SECRET}", "")
    assert any("***" in line for line in groups["uses-secret"])
    text = summary.read_text()
    assert text.startswith("earlier step\n")  # appended, never replaced
    table = {
        m.group(1): m.group(2) for m in re.finditer(r"^\| `([\w-]+)` \| \S+ (\w+) \|", text, re.M)
    }
    assert table == {
        "alpha": "success",
        "beta": "success",
        "uses-secret": "success",
        "broken": "failed",
    }
    assert SECRET not in text


def test_buildkite_groups(project: ProjectFiles, cli: Cli) -> None:
    _project(project, cli)
    code, out, _ = cli("run", "ci", "--sw-parallel", "2", "-o", "plain", env={"BUILDKITE": "true"})
    assert code == 1
    headers = [line for line in out.splitlines() if line.startswith(("--- ", "+++ "))]
    assert sorted(h.split()[1] for h in headers) == ["alpha", "beta", "broken", "uses-secret"]
    assert [h.split()[1] for h in headers if h.startswith("+++ ")] == ["broken"]
    assert "::group::" not in out and "::add-mask::" not in out


def test_no_ci_variables_no_groups(project: ProjectFiles, cli: Cli) -> None:
    _project(project, cli)
    _, out, _ = cli("run", "ci", "-o", "plain")
    assert "::group::" not in out and not re.search(r"^(---|\+\+\+) ", out, re.M)
