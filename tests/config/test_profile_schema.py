"""The JSON Schemas built from the loader's constants, and the text merge behind
``profile migrate --write``: both checked against the loader itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from sparkwing.cli.profile_migrate import add_top_entries
from sparkwing.conf.interpolate import VARIABLES
from sparkwing.conf.profiles import parse_user_profiles
from sparkwing.conf.project import parse_project
from sparkwing.conf.schema import FILES, allowed_variables, dumps, schema, shipped_path
from sparkwing.conf.specs import TYPES
from sparkwing.errors import ConfigError

FILE = Path("/repo/.sparkwing/sparkwing.yaml")


@pytest.mark.parametrize("which", FILES)
def test_shipped_schema_files_match_the_generator(which: str) -> None:
    # Refresh with `python -m sparkwing.conf.schema --write` after changing the model.
    assert shipped_path(which).read_text(encoding="utf-8") == dumps(schema(which))


def test_schema_lists_every_type_of_every_surface() -> None:
    defs = schema("project")["$defs"]
    for surface, types in TYPES.items():
        assert defs[surface]["properties"]["type"]["enum"] == list(types)


def test_allowed_variables_follow_the_loader() -> None:
    assert allowed_variables("state") == ()
    assert allowed_variables("cache") == ("PIPELINE_NAME", "PROFILE")
    assert allowed_variables("cache.binaries") == ("PIPELINE_NAME", "PROFILE")
    assert allowed_variables("logs") == VARIABLES


# Documents the loader accepts or refuses; the schema must agree on each of them.
PROJECT_DOCS = [
    "",
    "pipelines: [{name: a, entrypoint: A, profile: p, args: {x: 1}}]",
    "defaults: {profile: p, args: {a: [1, 2]}}",
    "profiles: {p: {state: {type: sqlite}}}",
    "profiles: {p: {state: {type: sqlite, path: '/s/${RUN_ID}'}}}",
    "profiles: {p: {state: {type: sqlite, path: '/s/$${RUN_ID}'}}}",
    "profiles: {p: {cache: {type: filesystem, path: '/c/${PIPELINE_NAME}'}}}",
    "profiles: {p: {cache: {type: filesystem, path: '/c/${RUN_ID}'}}}",
    "profiles: {p: {cache: {type: filesystem, path: /c, binaries: {type: s3, bucket: b}}}}",
    "profiles: {p: {cache: {type: filesystem, path: /c, binaries: {type: s3}}}}",
    "profiles: {p: {logs: {type: filesystem, path: '/l/${RUN_ID}/${PROFILE}'}}}",
    "profiles: {p: {logs: {type: filesystem, path: '/l/${NOPE}'}}}",
    "profiles: {p: {logs: {type: filesystem, path: '/l/$x'}}}",
    "profiles: {p: {logs: {type: filesystem}}}",
    "profiles: {p: {logs: {type: stdout}}}",
    "profiles: {p: {logs: {type: sqlite}}}",
    "profiles: {p: {state: {type: s3, bucket: b, prefix: 'runs/'}}}",
    "profiles: {p: {state: {type: gcs}}}",
    "profiles: {p: {state: {type: postgres, url: x}}}",
    "profiles: {p: {state: {type: postgres, url_source: 'env:X'}}}",
    "profiles: {p: {state: {type: postgres, url: x, url_source: y}}}",
    "profiles: {p: {state: {type: mysql}}}",
    "profiles: {p: {state: {type: controller}}}",
    "profiles: {p: {controller: {url: 'https://c'}, state: {type: controller}}}",
    "profiles: {p: {controller: {token: t}}}",
    "profiles: {p: {secrets: {type: env, prefix: APP_}}}",
    "profiles: {p: {secrets: {type: dotenv}}}",
    "profiles: {p: {state: {path: /x}}}",
    "profiles: {p: {state: {type: sqlite, colour: red}}}",
    "profiles: {p: {extra: {type: sqlite}}}",
    "profiles: {'a/b': {}}",
    "pipelines: [{name: a}]",
    "pipelines: [{name: a, entrypoint: A, colour: red}]",
    "colour: red",
    "pipelines: [{name: a, entrypoint: A, concurrency: {group: 'deploy-${env}', on_busy: skip}}]",
    "pipelines: [{name: a, entrypoint: A, concurrency: {group: '${PIPELINE_NAME}'}}]",
    "pipelines: [{name: a, entrypoint: A, concurrency: {group: 'a$$b'}}]",
    "pipelines: [{name: a, entrypoint: A, concurrency: {group: 'a$b'}}]",
    "pipelines: [{name: a, entrypoint: A, concurrency: {group: '${1x}'}}]",
    "pipelines: [{name: a, entrypoint: A, concurrency: {group: ''}}]",
    "pipelines: [{name: a, entrypoint: A, concurrency: {on_busy: queue}}]",
    "pipelines: [{name: a, entrypoint: A, concurrency: {group: d, on_busy: later}}]",
    "pipelines: [{name: a, entrypoint: A, concurrency: {group: d, max: 2}}]",
    # 'on' quoted: a YAML 1.1 reader (safe_load) turns a bare on: key into True.
    "profiles: {p: {notify: [{url: 'https://h/x', 'on': [failed, cancelled]}]}}",
    "profiles: {p: {notify: [{url_source: 'env:HOOK'}, {url: 'http://h'}]}}",
    "profiles: {p: {notify: [{url: 'ftp://h/x'}]}}",
    "profiles: {p: {notify: [{url: 'https://h/${X}'}]}}",
    "profiles: {p: {notify: [{url: 'https://h', url_source: 'env:H'}]}}",
    "profiles: {p: {notify: [{url: 'https://h', 'on': []}]}}",
    "profiles: {p: {notify: [{url: 'https://h', 'on': [done]}]}}",
    "profiles: {p: {notify: [{url: 'https://h', when: [failed]}]}}",
    "profiles: {p: {notify: [{}]}}",
]


def _loads(text: str) -> bool:
    try:
        parse_project(text, FILE)
    except ConfigError:
        return False
    return True


@pytest.mark.parametrize("text", PROJECT_DOCS)
def test_schema_agrees_with_the_loader(text: str) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(schema("project"))
    doc: Any = yaml.safe_load(text)
    assert validator.is_valid(doc) == _loads(text)


def test_user_schema_agrees_on_profiles() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(schema("user"))
    good = "profiles: {p: {logs: {type: filesystem, path: '/l/${RUN_ID}'}}}"
    bad = "profiles: {p: {state: {type: sqlite, path: '/l/${RUN_ID}'}}}"
    assert validator.is_valid(yaml.safe_load(good))
    parse_user_profiles(good, FILE)
    assert not validator.is_valid(yaml.safe_load(bad))
    with pytest.raises(ConfigError):
        parse_user_profiles(bad, FILE)


# -- the text merge of `profile migrate --write` ----------------------------------------

NEW = {"n": {"state": {"type": "sqlite"}}}


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("", "profiles:\n  n:\n    state:\n      type: sqlite\n"),
        ("# c", "# c\nprofiles:\n  n:\n    state:\n      type: sqlite\n"),
        ("profiles:\n", "profiles:\n  n:\n    state:\n      type: sqlite\n"),
        (
            "profiles: ~\npipelines: []\n",
            "profiles:\n  n:\n    state:\n      type: sqlite\npipelines: []\n",
        ),
        (
            "profiles: {a: {logs: {type: stdout}}}  # keep\n",
            "profiles:\n  a:\n    logs:\n      type: stdout\n  n:\n    state:\n"
            "      type: sqlite  # keep\n",
        ),
        (
            "profiles:\n    a:\n        logs: {type: stdout}  # x\n# next\npipelines: []\n",
            "profiles:\n    a:\n        logs: {type: stdout}  # x\n    n:\n      state:\n"
            "        type: sqlite\n# next\npipelines: []\n",
        ),
        (
            "pipelines: []",
            "pipelines: []\nprofiles:\n  n:\n    state:\n      type: sqlite\n",
        ),
    ],
)
def test_profiles_merged_into_each_shape(before: str, after: str) -> None:
    text = add_top_entries(before, FILE, "profiles", NEW)
    assert text == after
    assert "n" in parse_project(text, FILE).profiles


def test_defaults_profile_added_beside_args() -> None:
    before = "defaults:\n  args: {a: 1}\npipelines: []\n"
    text = add_top_entries(before, FILE, "defaults", {"profile": "default"})
    assert text == "defaults:\n  args: {a: 1}\n  profile: default\npipelines: []\n"


@pytest.mark.parametrize("before", ["{profiles: {}}\n", "- x\n", "profiles: [1]\n"])
def test_shapes_it_will_not_edit(before: str) -> None:
    with pytest.raises(ConfigError):
        add_top_entries(before, FILE, "profiles", NEW)
