"""A pipeline entry's ``concurrency:`` as the loader reads it (strict, file:line errors) and
the group name one run gets (``${PIPELINE_NAME}`` and input values substituted)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sparkwing.conf.concurrency import group_name
from sparkwing.conf.model import ConcurrencyDef
from sparkwing.conf.project import parse_project
from sparkwing.errors import ConfigError

FILE = Path("/proj/.sparkwing/sparkwing.yaml")


def _entry(concurrency: str) -> str:
    return f"pipelines:\n  - name: deploy\n    entrypoint: Deploy\n    concurrency: {concurrency}\n"


def test_group_and_policy_are_read_with_their_place() -> None:
    project = parse_project(_entry("{ group: 'deploy-${env}', on_busy: cancel-running }"), FILE)
    assert project.pipelines[0].concurrency == ConcurrencyDef(
        group="deploy-${env}", on_busy="cancel-running", where=f"{FILE}:4"
    )
    plain = parse_project(_entry("{ group: deploy }"), FILE).pipelines[0].concurrency
    assert plain is not None and plain.on_busy == "queue"
    bare = _entry("{ group: d }").replace("    concurrency: { group: d }\n", "")
    assert parse_project(bare, FILE).pipelines[0].concurrency is None


@pytest.mark.parametrize(
    ("concurrency", "message"),
    [
        ("{ on_busy: skip }", ':4: pipeline "deploy" concurrency is missing required key "group"'),
        ("{ group: '' }", ':4: pipeline "deploy" concurrency.group must not be empty'),
        ("{ group: 3 }", ':4: pipeline "deploy" concurrency.group must be a string (got int)'),
        (
            "{ group: d, on_busy: later }",
            ':4: pipeline "deploy" concurrency.on_busy "later" must be one of: queue, '
            "cancel-running, skip",
        ),
        ("{ group: d, limit: 2 }", ':4: unknown key "limit" in pipeline "deploy" concurrency'),
        ("{ group: 'a$b' }", ':4: pipeline "deploy" concurrency.group: "$" must start ${NAME}'),
        ("{ group: 'a${b' }", ':4: pipeline "deploy" concurrency.group: unterminated "${"'),
        ("[deploy]", ':4: pipeline "deploy" concurrency must be a mapping (got a list)'),
    ],
)
def test_bad_concurrency_is_one_line_naming_file_and_line(concurrency: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_project(_entry(concurrency), FILE)
    assert str(info.value).startswith(str(FILE))
    assert message in str(info.value)


def test_group_name_substitutes_pipeline_and_inputs() -> None:
    inputs = {"env": "prod", "dry": True, "n": 3, "none": None}
    assert group_name("deploy-${env}", "ship", inputs) == "deploy-prod"
    assert group_name("${PIPELINE_NAME}-${dry}-${n}", "ship", inputs) == "ship-true-3"
    assert group_name("cost-$$5", "ship", {}) == "cost-$5"


def test_group_name_errors_name_the_variable_and_what_is_known() -> None:
    with pytest.raises(ConfigError) as info:
        group_name("deploy-${region}", "ship", {"env": "prod"}, where="f.yaml:4")
    assert str(info.value) == (
        'f.yaml:4: pipeline "ship" concurrency group "deploy-${region}": unknown variable '
        "${region} (known here: ${PIPELINE_NAME}, ${env}; write $$ for a literal $)"
    )
    with pytest.raises(ConfigError, match="concurrency group 'deploy-a/b' must not contain"):
        group_name("deploy-${env}", "ship", {"env": "a/b"})
    with pytest.raises(ConfigError, match="concurrency group"):
        group_name("${none}", "ship", {"none": None})
