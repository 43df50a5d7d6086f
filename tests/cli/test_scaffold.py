"""``add_pipeline_entry``: the YAML text ``pipeline new`` writes, for each shape of an
existing ``pipelines:`` key; the rest of the file is kept byte for byte."""

from __future__ import annotations

from pathlib import Path

import pytest

from sparkwing.cli.scaffold import add_pipeline_entry, class_name, module_name
from sparkwing.conf.project import parse_project
from sparkwing.errors import ConfigError

FILE = Path("/repo/.sparkwing/sparkwing.yaml")
FIELDS = {"name": "new-one", "entrypoint": "NewOne", "description": "Fresh: #1"}
BLOCK = '  - name: new-one\n    entrypoint: NewOne\n    description: "Fresh: #1"\n'


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("", "pipelines:\n" + BLOCK),
        ("# only a comment", "# only a comment\npipelines:\n" + BLOCK),
        ("defaults: {args: {a: 1}}\n", "defaults: {args: {a: 1}}\npipelines:\n" + BLOCK),
        ("pipelines:\ndefaults: {}\n", "pipelines:\n" + BLOCK.rstrip("\n") + "\ndefaults: {}\n"),
        ("pipelines: ~\n", "pipelines:\n" + BLOCK),
        (
            "pipelines: []\n",
            'pipelines: [{name: new-one, entrypoint: NewOne, description: "Fresh: #1"}]\n',
        ),
        (
            "pipelines: [{name: a, entrypoint: A}]  # keep\n",
            "pipelines: [{name: a, entrypoint: A}, "
            '{name: new-one, entrypoint: NewOne, description: "Fresh: #1"}]  # keep\n',
        ),
        (
            "pipelines:\n- name: a\n  entrypoint: A  # inline\n# after\nprofiles: {}\n",
            "pipelines:\n- name: a\n  entrypoint: A  # inline\n"
            '- name: new-one\n  entrypoint: NewOne\n  description: "Fresh: #1"\n'
            "# after\nprofiles: {}\n",
        ),
        (
            "pipelines:\n  - name: a\n    entrypoint: A\n    description: |\n      two\n"
            "      lines\n",
            "pipelines:\n  - name: a\n    entrypoint: A\n    description: |\n      two\n"
            "      lines\n" + BLOCK,
        ),
    ],
)
def test_entry_added(before: str, after: str) -> None:
    text = add_pipeline_entry(before, FILE, FIELDS)
    assert text == after
    project = parse_project(text, FILE)
    entry = project.pipeline("new-one")
    assert entry is not None and entry.entrypoint == "NewOne"
    assert entry.description == "Fresh: #1"
    if "two\n" in before:
        first = project.pipeline("a")
        assert first is not None and first.description == "two\nlines\n"


@pytest.mark.parametrize("before", ["{pipelines: []}\n", "pipelines: {a: 1}\n", "- x\n"])
def test_shapes_it_will_not_edit(before: str) -> None:
    with pytest.raises(ConfigError):
        add_pipeline_entry(before, FILE, FIELDS)


def test_names() -> None:
    assert [module_name(n) for n in ("deploy", "build-deploy", "json", "os")] == [
        "deploy",
        "build_deploy",
        "json_pipeline",
        "os_pipeline",
    ]
    assert [class_name(n) for n in ("deploy", "build-deploy", "a.b")] == [
        "Deploy",
        "BuildDeploy",
        "AB",
    ]
