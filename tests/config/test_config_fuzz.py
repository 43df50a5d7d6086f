"""Property: any document either loads (and resolves) or raises a one-line ConfigError.

About 2,600 generated documents in all: schema-shaped trees, mutated valid configs and raw
YAML-ish text. Derandomized so CI sees the same inputs every time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sparkwing.conf.interpolate import interpolate_spec
from sparkwing.conf.profiles import UserProfiles, parse_user_profiles
from sparkwing.conf.project import Project, parse_project
from sparkwing.conf.resolve import resolve_profile
from sparkwing.errors import ConfigError

FILE = Path("/fuzz/repo/.sparkwing/sparkwing.yaml")
USER_FILE = Path("/fuzz/home/profiles.yaml")
FUZZ = settings(
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

TYPES = [
    "sqlite",
    "postgres",
    "mysql",
    "s3",
    "gcs",
    "azure-blob",
    "controller",
    "filesystem",
    "stdout",
    "dotenv",
    "env",
    "none",
    "redis",
]
TEMPLATES = [
    "${RUN_ID}/",
    "${PIPELINE_NAME}",
    "${PROFILE}/x",
    "$$",
    "${NOPE}",
    "$x",
    "${",
    "~/a",
    "a/../b",
    "/abs/path",
    "env:",
    "env:DSN",
    "https://c",
    "",
]
NAMES = st.sampled_from(["ci", "local", "prod", "team", "a/b", "..", "x"])
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.sampled_from(TYPES + TEMPLATES),
    st.text(max_size=6),
)
ANY = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.one_of(NAMES, st.text(max_size=4)), inner, max_size=3)
    ),
    max_leaves=12,
)
VOCABULARY = st.sampled_from(
    [
        "type",
        "path",
        "bucket",
        "prefix",
        "url",
        "url_source",
        "token",
        "token_env",
        "binaries",
        "state",
        "cache",
        "logs",
        "secrets",
        "controller",
        "name",
        "entrypoint",
        "profile",
        "typo",
    ]
)


SPEC = st.fixed_dictionaries(
    {"type": st.sampled_from(TYPES)},
    optional={
        k: st.sampled_from(TEMPLATES) for k in ("path", "bucket", "prefix", "url", "url_source")
    },
)
CACHE_SPEC = st.fixed_dictionaries(
    {"type": st.sampled_from(TYPES)},
    optional={"path": st.sampled_from(TEMPLATES), "bucket": st.just("b"), "binaries": SPEC},
)
PROFILE = st.fixed_dictionaries(
    {},
    optional={
        "state": SPEC,
        "cache": CACHE_SPEC,
        "logs": SPEC,
        "secrets": SPEC,
        "controller": st.fixed_dictionaries({"url": st.sampled_from(TEMPLATES)}),
    },
)
PIPELINE = st.fixed_dictionaries(
    {"name": NAMES, "entrypoint": st.sampled_from(["Build", "Build", "", 3])},
    optional={"profile": NAMES, "args": ANY, "description": st.sampled_from(["d", None])},
)
SCHEMA_DOC = st.fixed_dictionaries(
    {},
    optional={
        "profiles": st.dictionaries(NAMES, PROFILE, max_size=3),
        "defaults": st.fixed_dictionaries({}, optional={"profile": NAMES, "args": ANY}),
        "pipelines": st.lists(PIPELINE, max_size=3),
    },
)
DOCUMENT = st.one_of(SCHEMA_DOC, SCHEMA_DOC, SCHEMA_DOC, ANY)

VALID = """\
defaults:
  profile: team
  args: {region: eu}
profiles:
  team: &team
    state: {type: s3, bucket: team, prefix: state}
    cache:
      type: filesystem
      path: ~/.cache/${PROFILE}
      binaries: {type: s3, bucket: bins, prefix: "${PIPELINE_NAME}/"}
    logs: {type: s3, bucket: logs, prefix: "${RUN_ID}/"}
    secrets: {type: env, prefix: SW_}
  remote:
    controller: {url: "https://ctl", token: swu_x}
  db:
    <<: *team
    state: {type: postgres, url_source: "env:PG"}
pipelines:
  - name: release
    entrypoint: Release
    profile: db
    args: {dry: true}
  - name: lint
    entrypoint: lint
"""
NOISE = st.sampled_from([*":-[]{}&*!|>'\"%@`#,?$~\\\n\t ", "  ", "- ", ": ", "<<: ", "${"])

WORDS = [
    "profiles",
    "state",
    "type",
    "sqlite",
    "a",
    "0",
    "\u00e9",
    "\x07",
    "\x00",
    "\ufeff",
    "\ud800",
]


def check(text: str) -> None:
    """Load ``text`` as both files; when both load, resolve and interpolate everything."""
    project: Project | None = None
    user: UserProfiles | None = None
    for parse in (lambda: parse_project(text, FILE), lambda: parse_user_profiles(text, USER_FILE)):
        try:
            result = parse()
        except ConfigError as exc:
            message = str(exc)
            assert "\n" not in message
            assert message.startswith((str(FILE), str(USER_FILE))), message
            continue
        if isinstance(result, Project):
            project = result
        else:
            user = result
    if project is None:
        return
    names = [None, *project.profiles, *(user.profiles if user else {})]
    pipelines = [None, *(p.name for p in project.pipelines)]
    for flag in names:
        for pipeline in pipelines:
            try:
                resolved = resolve_profile(
                    project,
                    flag=flag,
                    env={},
                    pipeline=pipeline,
                    user=user or UserProfiles(USER_FILE),
                )
            except ConfigError as exc:
                assert "\n" not in str(exc)
                continue
            for surface in ("state", "cache", "logs", "secrets"):
                interpolate_spec(
                    resolved.spec(surface), run_id="run-1", pipeline=pipeline or "p", profile="ci"
                )


def test_valid_seed_loads() -> None:
    project = parse_project(VALID, FILE)
    assert sorted(project.profiles) == ["db", "remote", "team"]
    check(VALID)


@settings(FUZZ, max_examples=800)
@given(DOCUMENT, st.booleans())
def test_schema_shaped_documents(document: Any, flow: bool) -> None:
    check(yaml.safe_dump(document, default_flow_style=flow, allow_unicode=True))


@st.composite
def mutated(draw: st.DrawFn) -> str:
    text = VALID
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text)))
        action = draw(st.sampled_from(["insert", "delete", "dup-line", "swap-lines", "indent"]))
        if action == "insert":
            text = text[:at] + draw(NOISE) + text[at:]
        elif action == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 12)) :]
        else:
            lines = text.split("\n")
            i = draw(st.integers(0, len(lines) - 1))
            j = draw(st.integers(0, len(lines) - 1))
            if action == "dup-line":
                lines.insert(j, lines[i])
            elif action == "swap-lines":
                lines[i], lines[j] = lines[j], lines[i]
            else:
                lines[i] = " " * draw(st.integers(0, 3)) + lines[i].lstrip()
            text = "\n".join(lines)
    return text


@settings(FUZZ, max_examples=700)
@given(mutated())
def test_text_mutated_valid_configs(text: str) -> None:
    check(text)


def _slots(node: Any) -> list[tuple[Any, Any]]:
    """Every (container, key-or-index) in a loaded YAML tree."""
    out: list[tuple[Any, Any]] = []
    items = node.items() if isinstance(node, dict) else enumerate(node)
    for key, value in items:
        out.append((node, key))
        if isinstance(value, dict | list):
            out.extend(_slots(value))
    return out


@st.composite
def tree_mutated(draw: st.DrawFn) -> str:
    doc = yaml.safe_load(VALID)
    for _ in range(draw(st.integers(1, 3))):
        container, key = draw(st.sampled_from(_slots(doc)))
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            container[key] = draw(st.one_of(SCALARS, ANY, SPEC))
        elif action == "delete" and isinstance(container, dict):
            del container[key]
        elif isinstance(container[key], dict):
            container[key][draw(VOCABULARY)] = draw(st.one_of(SCALARS, SPEC))
    return yaml.safe_dump(doc, default_flow_style=draw(st.booleans()))


@settings(FUZZ, max_examples=700)
@given(tree_mutated())
def test_tree_mutated_valid_configs(text: str) -> None:
    check(text)


@settings(FUZZ, max_examples=400)
@given(st.lists(st.one_of(NOISE, st.sampled_from(WORDS)), max_size=30).map("".join))
def test_raw_yaml_like_text(text: str) -> None:
    check(text)
