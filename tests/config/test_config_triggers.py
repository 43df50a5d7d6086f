"""``on:`` in sparkwing.yaml: parsed strictly (one error naming file, line and key), and the
JSON Schema agreeing with the loader on accepted and refused documents."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from sparkwing.conf.project import Project, parse_project
from sparkwing.conf.schema import schema
from sparkwing.conf.triggers import DEFAULT_PULL_REQUEST_TYPES, Schedule
from sparkwing.errors import ConfigError
from tests.conftest import Cli, ProjectFiles

FILE = Path("/p/.sparkwing/sparkwing.yaml")
FULL = """
pipelines:
  - name: ci
    entrypoint: CI
    on:
      push: { branches: [main, "release/*"], tags: ["v*"], paths: ["src/**", "!docs/**"] }
      pull_request: { branches: [main], paths: ["src/**"], types: [opened, closed] }
      schedule:
        - { cron: "0 3 * * 1-5", timezone: "Europe/Paris" }
        - cron: "@daily"
  - name: lint
    entrypoint: Lint
    on: { push: }
  - name: plain
    entrypoint: Plain
"""


def _parse(text: str) -> Project:
    return parse_project(textwrap.dedent(text), FILE)


def _error(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        _parse(text)
    return str(info.value)


def test_the_full_example_parses() -> None:
    ci, lint, plain = _parse(FULL).pipelines
    assert ci.on is not None and ci.on.push is not None and ci.on.pull_request is not None
    assert ci.on.push.branches == ("main", "release/*")
    assert ci.on.push.tags == ("v*",)
    assert ci.on.push.paths == ("src/**", "!docs/**")
    assert ci.on.pull_request.branches == ("main",)
    assert ci.on.pull_request.types == ("opened", "closed")
    assert ci.on.schedule == (Schedule("0 3 * * 1-5", "Europe/Paris"), Schedule("@daily", "UTC"))
    assert lint.on is not None and lint.on.push is not None
    assert (lint.on.push.branches, lint.on.push.tags, lint.on.push.paths) == (None, None, None)
    assert lint.on.pull_request is None and lint.on.schedule == ()
    assert plain.on is None


def test_pull_request_types_default() -> None:
    text = "pipelines: [{name: a, entrypoint: A, on: {pull_request: {}}}]"
    (entry,) = _parse(text).pipelines
    assert entry.on is not None and entry.on.pull_request is not None
    assert entry.on.pull_request.types == DEFAULT_PULL_REQUEST_TYPES


def _pipeline(on: str) -> str:
    return f"pipelines:\n  - name: ci\n    entrypoint: CI\n    on:\n{textwrap.indent(on, '      ')}"


@pytest.mark.parametrize(
    ("on", "line", "message"),
    [
        ("workflow_dispatch: {}\n", 5, 'unknown key "workflow_dispatch" in pipeline "ci" on'),
        ("push: {branch: [main]}\n", 5, 'unknown key "branch" in pipeline "ci" on.push'),
        ("push: {branches: main}\n", 5, 'pipeline "ci" on.push.branches must be a list'),
        ("push: {branches: []}\n", 5, 'pipeline "ci" on.push.branches is an empty list'),
        ("push: {paths: ['!']}\n", 5, 'pipeline "ci" on.push.paths has an empty pattern'),
        ("push: {tags: [1]}\n", 5, 'pipeline "ci" on.push.tags entries must be a string'),
        ("pull_request: {types: [merged]}\n", 5, "unknown type 'merged'"),
        ("pull_request: {base: [main]}\n", 5, 'unknown key "base"'),
        ("push: [main]\n", 5, 'pipeline "ci" on.push must be a mapping (got a list)'),
        ("schedule: {cron: '* * * * *'}\n", 5, "on.schedule must be a list"),
        ("schedule: []\n", 5, "on.schedule is an empty list"),
        ("schedule:\n  - timezone: UTC\n", 6, 'on.schedule[0] is missing required key "cron"'),
        (
            "schedule:\n  - cron: '61 * * * *'\n",
            6,
            "on.schedule[0].cron '61 * * * *': not a valid cron expression",
        ),
        (
            "schedule:\n  - cron: '0 * * * * *'\n",
            6,
            "on.schedule[0].cron '0 * * * * *': a cron expression has five fields",
        ),
        ("schedule:\n  - cron: ''\n", 6, "empty cron expression"),
        (
            "schedule:\n  - {cron: '0 3 * * *', timezone: Mars/Olympus}\n",
            6,
            "on.schedule[0].timezone 'Mars/Olympus': unknown time zone",
        ),
        (
            "schedule:\n  - {cron: '0 3 * * *', timezone: ../../etc/passwd}\n",
            6,
            "unknown time zone",
        ),
        ("schedule:\n  - {cron: '0 3 * * *', tz: UTC}\n", 6, 'unknown key "tz"'),
    ],
)
def test_bad_on_entries_are_one_error_naming_file_line_and_key(
    on: str, line: int, message: str
) -> None:
    got = _error(_pipeline(on))
    assert got.startswith(f"{FILE}:{line}: "), got
    assert message in got
    assert "\n" not in got


# Documents as JSON (so `on` stays a string key: YAML 1.1 loaders read a bare `on` as true).
DOCS = [
    {"pipelines": [{"name": "a", "entrypoint": "A", "on": {"push": None}}]},
    {"pipelines": [{"name": "a", "entrypoint": "A", "on": None}]},
    {"pipelines": [{"name": "a", "entrypoint": "A", "on": {"push": {"branches": ["main"]}}}]},
    {"pipelines": [{"name": "a", "entrypoint": "A", "on": {"push": {"branches": []}}}]},
    {"pipelines": [{"name": "a", "entrypoint": "A", "on": {"push": {"branches": ["!"]}}}]},
    {"pipelines": [{"name": "a", "entrypoint": "A", "on": {"push": {"colour": ["x"]}}}]},
    {"pipelines": [{"name": "a", "entrypoint": "A", "on": {"pull_request": {"types": ["x"]}}}]},
    {
        "pipelines": [
            {"name": "a", "entrypoint": "A", "on": {"pull_request": {"types": ["closed"]}}}
        ]
    },
    {"pipelines": [{"name": "a", "entrypoint": "A", "on": {"schedule": [{"cron": "0 3 * * *"}]}}]},
    {"pipelines": [{"name": "a", "entrypoint": "A", "on": {"schedule": [{"timezone": "UTC"}]}}]},
    {"pipelines": [{"name": "a", "entrypoint": "A", "on": {"schedule": []}}]},
    {"pipelines": [{"name": "a", "entrypoint": "A", "on": {"cron": "0 3 * * *"}}]},
]


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: json.dumps(d)[:80])
def test_schema_agrees_with_the_loader(doc: dict[str, object]) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(schema("project"))
    try:
        parse_project(json.dumps(doc), FILE)  # JSON is YAML
        loads = True
    except ConfigError:
        loads = False
    assert validator.is_valid(doc) == loads


def test_a_bad_cron_fails_the_cli_with_exit_2(project: ProjectFiles, cli: Cli) -> None:
    file = project.yaml(_pipeline("schedule:\n  - cron: 'every day'\n"))
    code, _, err = cli("schedules", "list")
    assert code == 2
    assert err.strip().splitlines() == [
        f"error: {file}:6: pipeline \"ci\" on.schedule[0].cron 'every day': a cron "
        "expression has five fields (minute hour day month weekday)"
    ]
    assert "Traceback" not in err
