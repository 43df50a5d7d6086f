"""The common `sparkwing run NAME` start-up stays lean: once the project file has been parsed
(and cached), a run imports neither click nor the YAML parser, nor the notifier of a profile
that has no notify targets, nor logging, tempfile, tarfile or inspect. A module-level import
added to the run path shows up here."""

from __future__ import annotations

import re
import time

from tests.conftest import Cli, ProjectFiles

PIPE = """
import sparkwing as sw


@sw.pipeline("one")
def one(plan):
    plan.job("a", "true")
"""

YAML = """
defaults:
  retention: { max_age: 90d, keep_last: 5 }
pipelines:
  - name: one
    entrypoint: one
    concurrency: { group: "one-${PIPELINE_NAME}" }
"""


def _imported(stderr: str) -> set[str]:
    return {m.group(1) for m in re.finditer(r"^import time:.*\|\s*(\S+)$", stderr, re.M)}


def test_a_run_with_a_cached_project_file_imports_no_click_yaml_or_notifier(
    project: ProjectFiles, cli: Cli
) -> None:
    project.write("one.py", PIPE)
    project.yaml(YAML)
    first = cli("run", "one", "-o", "quiet")  # parses the project file and caches the parse
    assert first.code == 0, first.stderr
    time.sleep(2.1)  # past the parse cache's "racily clean" window
    cli("run", "one", "-o", "quiet")
    again = cli("run", "one", "-o", "quiet", env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert again.code == 0, again.stderr
    modules = _imported(again.stderr)
    assert "sparkwing.engine.launch" in modules  # the profile is on, and the run went through
    # logging, tempfile and tarfile cost more than scheduling a one-job run; the source
    # delivery modules are for runs that travel only.
    for heavy in (
        "click",
        "yaml",
        "rich",
        "httpx",
        "sparkwing.engine.notify",
        "logging",
        "tempfile",
        "tarfile",
        "sparkwing.source.deliver",
        "inspect",  # only dataclasses asks for it, for classes without a docstring
    ):
        assert heavy not in modules, f"{heavy} imported on the run path"
