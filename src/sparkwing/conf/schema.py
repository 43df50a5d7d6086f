"""JSON Schemas (draft 2020-12) for the user profiles file and the project file, built from
the same constants the loader validates with, so editors can check and complete both files.

``python -m sparkwing.conf.schema --write`` refreshes the copies shipped in ``schemas/``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from sparkwing.conf import retention
from sparkwing.conf.interpolate import VARIABLES, check_template
from sparkwing.conf.model import ON_BUSY
from sparkwing.conf.notify import NOTIFY_ON
from sparkwing.conf.profiles import USER_TOP_KEYS
from sparkwing.conf.project import DEFAULTS_KEYS, PIPELINE_KEYS, TOP_KEYS
from sparkwing.conf.resolved import SURFACES
from sparkwing.conf.specs import CACHE_KEYS, CONTROLLER_KEYS, PROFILE_KEYS, SPEC_KEYS, TYPES
from sparkwing.conf.triggers import (
    DEFAULT_PULL_REQUEST_TYPES,
    ON_KEYS,
    PULL_REQUEST_KEYS,
    PULL_REQUEST_TYPES,
    PUSH_KEYS,
    SCHEDULE_KEYS,
)
from sparkwing.errors import ConfigError
from sparkwing.ids import LABEL_PATTERN
from sparkwing.surfaces import registry

DIALECT = "https://json-schema.org/draft/2020-12/schema"
FILES: tuple[str, ...] = ("project", "user")
SCHEMA_DIR = Path(__file__).with_name("schemas")

# The same rules as sparkwing.ids.check_segment: what a profile or pipeline name may be.
_NAME: dict[str, Any] = {
    "type": "string",
    "minLength": 1,
    "maxLength": 255,
    "pattern": "^[^/\\\\\\u0000-\\u001f\\u007f]+$",
    "not": {"enum": [".", ".."]},
}

_FIELD_HELP = {
    "type": "Backend type.",
    "path": "Local path (~ expands); prefix-style variables allowed per surface.",
    "bucket": "Bucket or container name (object stores).",
    "prefix": "Key prefix inside the bucket; may use ${...} variables allowed for the surface.",
    "url": "Connection URL: a postgres/mysql DSN, or the base URL of the server.",
    "url_source": "Where the DSN comes from: env:VAR, or a secret NAME in the profile's "
    "secrets surface.",
    "token": "Controller token (prefer token_env; never commit a token).",
    "token_env": "Environment variable holding the controller token.",
}


def allowed_variables(surface: str) -> tuple[str, ...]:
    """The ``${...}`` variables ``surface`` specs may use, asked of the loader's own check."""
    allowed = []
    for name in VARIABLES:
        try:
            check_template(surface, "path", "${" + name + "}")
        except ConfigError:
            continue
        allowed.append(name)
    return tuple(allowed)


def _template_pattern(allowed: tuple[str, ...]) -> str:
    """A regex matching text the loader refuses: a single ``$`` (not part of ``$$``) that
    does not start an allowed ``${NAME}``."""
    unescaped = r"(^|[^$])(\$\$)*\$(?!\$)"
    if not allowed:
        return unescaped
    return unescaped + r"(?!\{(?:" + "|".join(allowed) + r")\})"


def _spec_schema(surface: str) -> dict[str, Any]:
    types = TYPES[surface]
    allowed = allowed_variables(surface)
    keys = CACHE_KEYS if surface == "cache" else SPEC_KEYS
    variables = ", ".join("${" + v + "}" for v in allowed) or "no variables"
    templated: dict[str, Any] = {"type": "string", "not": {"pattern": _template_pattern(allowed)}}
    properties: dict[str, Any] = {}
    for key in keys:
        if key == "type":
            properties[key] = {"enum": list(types), "description": _FIELD_HELP[key]}
        elif key == "binaries":
            properties[key] = {
                "$ref": "#/$defs/cache.binaries",
                "description": "Where pipeline bundles (bin/<hash>) go, if not in this cache.",
            }
        elif key in ("path", "prefix"):
            help_ = f"{_FIELD_HELP[key]} Allowed here: {variables} ($$ is a literal $)."
            properties[key] = {**templated, "description": help_}
        else:
            properties[key] = {"type": "string", "description": _FIELD_HELP[key]}
    # `path: ~` is YAML null, which the loader reads as the home folder.
    properties["path"] = {"anyOf": [properties["path"], {"type": "null"}]}
    schema: dict[str, Any] = {
        "type": "object",
        "description": f"The {surface} surface: one of {', '.join(types)}.",
        "properties": properties,
        "required": ["type"],
        "additionalProperties": False,
    }
    rules = _field_rules(surface)
    if rules:
        schema["allOf"] = rules
    return schema


def _field_rules(surface: str) -> list[dict[str, Any]]:
    """One if/then per distinct field requirement of the registry's backends, naming every
    type that has it. A controller's url is left to the profile rule (a profile's
    ``controller:`` entry may supply it)."""
    grouped: dict[str, tuple[list[str], dict[str, Any]]] = {}
    for backend in registry.backends(surface):
        if backend.has("controller"):
            continue
        thens: list[dict[str, Any]] = (
            [{"required": list(backend.required)}] if backend.required else []
        )
        for group in backend.one_of:
            thens.append({"oneOf": [{"required": [name]} for name in group]})
        for then in thens:
            key = json.dumps(then, sort_keys=True)
            grouped.setdefault(key, ([], then))[0].append(backend.type)
    return [_when(names, then) for names, then in grouped.values()]


def _when(types: list[str], then: dict[str, Any]) -> dict[str, Any]:
    return {"if": {"properties": {"type": {"enum": types}}, "required": ["type"]}, "then": then}


def _controller_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "A controller every surface this profile leaves out is routed through.",
        "properties": {
            key: {"type": "string", "description": _FIELD_HELP[key]} for key in CONTROLLER_KEYS
        },
        "required": ["url"],
        "additionalProperties": False,
    }


def _profile_schema() -> dict[str, Any]:
    properties: dict[str, Any] = {}
    for key in PROFILE_KEYS:
        properties[key] = {"$ref": f"#/$defs/{key}"}
    # A `type: controller` spec needs a url unless the profile has a controller: entry.
    needs_url = {
        surface: _when(
            [b.type for b in registry.backends(surface) if b.has("controller")],
            {"required": ["url"]},
        )
        for surface in SURFACES
    }
    return {
        "type": "object",
        "description": "Where state, cache, logs and secrets go; undeclared surfaces use the "
        "built-in local defaults (or the controller, when one is given).",
        "properties": properties,
        "additionalProperties": False,
        "if": {"not": {"required": ["controller"]}},
        "then": {"properties": needs_url},
    }


def _concurrency_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "At most one run of the group is active at a time, across every "
        "runner sharing the state.",
        "properties": {
            "group": {
                "type": "string",
                "minLength": 1,
                # A "$" that neither is "$$" nor starts ${NAME} is refused by the loader.
                "not": {"pattern": r"(^|[^$])(\$\$)*\$(?!\$)(?!\{[A-Za-z_][A-Za-z0-9_]*\})"},
                "description": "Group name; ${PIPELINE_NAME} and ${INPUT} (the run's input "
                "values) are substituted when the run starts ($$ is a literal $).",
            },
            "on_busy": {
                "enum": list(ON_BUSY),
                "default": "queue",
                "description": "A run arriving while the group is busy: queue (wait in "
                "submission order), cancel-running (cancel the active and waiting runs and "
                "take over) or skip (end at once, cancelled).",
            },
        },
        "required": ["group"],
        "additionalProperties": False,
    }


def _notify_schema() -> dict[str, Any]:
    target = {
        "type": "object",
        "properties": {
            "url": {
                "type": "string",
                "pattern": "^https?://[^\\s$]+$",
                "description": "Where a JSON POST goes for each finished run.",
            },
            "url_source": {
                "type": "string",
                "description": "Where a URL holding a token comes from: env:VAR, or a "
                "secret NAME in the profile's secrets surface.",
            },
            "on": {
                "type": "array",
                "items": {"enum": list(NOTIFY_ON)},
                "minItems": 1,
                "description": "Final statuses that are announced (default: all).",
            },
        },
        "oneOf": [{"required": ["url"]}, {"required": ["url_source"]}],
        "additionalProperties": False,
    }
    return {
        "type": "array",
        "description": "Endpoints told about every finished run (retried, never blocking it).",
        "items": target,
    }


def _defs() -> dict[str, Any]:
    defs: dict[str, Any] = {"name": _NAME, "profile": _profile_schema()}
    defs["notify"] = _notify_schema()
    defs["controller"] = _controller_schema()
    for surface in TYPES:
        defs[surface] = _spec_schema(surface)
    defs["profiles"] = {
        "type": "object",
        "description": "Profiles by name; select one with --profile or SPARKWING_PROFILE.",
        "propertyNames": {"$ref": "#/$defs/name"},
        "additionalProperties": {"$ref": "#/$defs/profile"},
    }
    return defs


def _on_schema() -> dict[str, Any]:
    """``on:``: the loader checks cron expressions and time zones beyond these shapes."""
    patterns: dict[str, Any] = {
        "type": "array",
        "minItems": 1,
        "items": {"type": "string", "minLength": 1, "not": {"const": "!"}},
    }
    help_ = {
        "branches": "Branch globs (* within a segment, ** across; !pattern excludes).",
        "tags": "Tag globs; a push filter without tags (but with branches) skips tag pushes.",
        "paths": "Changed-path globs: at least one changed file must pass (!pattern excludes).",
    }
    push = {k: {**patterns, "description": help_[k]} for k in PUSH_KEYS}
    pull_request: dict[str, Any] = {
        "branches": {**patterns, "description": "Base (target) branch globs."},
        "paths": {**patterns, "description": help_["paths"]},
        "types": {
            "type": "array",
            "minItems": 1,
            "items": {"enum": list(PULL_REQUEST_TYPES)},
            "description": f"Actions (default: {', '.join(DEFAULT_PULL_REQUEST_TYPES)}).",
        },
    }
    schedule = {
        "cron": {"type": "string", "minLength": 1, "description": "Five-field cron or @daily."},
        "timezone": {"type": "string", "minLength": 1, "description": "IANA zone; default UTC."},
    }

    def filters(props: dict[str, Any], keys: tuple[str, ...], what: str) -> dict[str, Any]:
        return {
            "type": ["object", "null"],
            "description": what,
            "properties": {k: props[k] for k in keys},
            "additionalProperties": False,
        }

    on = {
        "push": filters(push, PUSH_KEYS, "Start on pushes that pass these filters."),
        "pull_request": filters(
            pull_request, PULL_REQUEST_KEYS, "Start on pull requests that pass these filters."
        ),
        "schedule": {
            "type": "array",
            "minItems": 1,
            "description": "Start on these cron schedules (one run per tick across schedulers).",
            "items": {
                "type": "object",
                "properties": {k: schedule[k] for k in SCHEDULE_KEYS},
                "required": ["cron"],
                "additionalProperties": False,
            },
        },
    }
    return {
        "type": ["object", "null"],
        "description": "What starts this pipeline without a person (controller or scheduler).",
        "properties": {k: on[k] for k in ON_KEYS},
        "additionalProperties": False,
    }


def project_schema() -> dict[str, Any]:
    """The schema of ``.sparkwing/sparkwing.yaml``."""
    defaults = {
        "profile": {"type": "string", "description": "Profile used when none is selected."},
        "args": {"type": "object", "description": "Inputs shared by every pipeline."},
        "retention": retention.SCHEMA,
    }
    pipeline = {
        "name": {"$ref": "#/$defs/name", "description": "The name for `sparkwing run`."},
        "entrypoint": {
            "type": "string",
            "minLength": 1,
            "description": "The registered pipeline class or function.",
        },
        "profile": {"type": "string", "description": "Pins this pipeline's surfaces."},
        "description": {"type": "string"},
        "args": {"type": "object", "description": "Inputs for this pipeline."},
        "requires": {
            "type": "array",
            "items": {"type": "string", "pattern": LABEL_PATTERN},
            "description": "Runner labels a worker must have to take a queued run of it.",
        },
        "on": _on_schema(),
        "concurrency": _concurrency_schema(),
    }
    top = {
        "defaults": {
            "type": "object",
            "properties": {k: defaults[k] for k in DEFAULTS_KEYS},
            "additionalProperties": False,
        },
        "profiles": {"$ref": "#/$defs/profiles"},
        "pipelines": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {k: pipeline[k] for k in PIPELINE_KEYS},
                "required": ["name", "entrypoint"],
                "additionalProperties": False,
            },
        },
    }
    return {
        "$schema": DIALECT,
        "$id": "https://sparkwing.dev/schemas/project.schema.json",
        "title": "Sparkwing project file (.sparkwing/sparkwing.yaml)",
        "type": ["object", "null"],
        "properties": {k: top[k] for k in TOP_KEYS},
        "additionalProperties": False,
        "$defs": _defs(),
    }


def user_schema() -> dict[str, Any]:
    """The schema of the user profiles file (``~/.config/sparkwing/profiles.yaml``). The
    loader only warns about unknown keys there; the schema flags them so editors show typos."""
    top = {"profiles": {"$ref": "#/$defs/profiles"}}
    return {
        "$schema": DIALECT,
        "$id": "https://sparkwing.dev/schemas/user.schema.json",
        "title": "Sparkwing user profiles file (profiles.yaml)",
        "type": ["object", "null"],
        "properties": {k: top[k] for k in USER_TOP_KEYS},
        "additionalProperties": False,
        "$defs": _defs(),
    }


def schema(which: str) -> dict[str, Any]:
    if which == "project":
        return project_schema()
    if which == "user":
        return user_schema()
    raise ValueError(f"unknown schema {which!r} (expected one of: {', '.join(FILES)})")


def dumps(doc: dict[str, Any]) -> str:
    """The text form shipped in ``schemas/`` and printed by ``sparkwing profile schema``."""
    return json.dumps(doc, indent=2) + "\n"


def shipped_path(which: str) -> Path:
    return SCHEMA_DIR / f"{which}.schema.json"


def main(argv: list[str]) -> int:
    if argv != ["--write"]:
        sys.stderr.write("usage: python -m sparkwing.conf.schema --write\n")
        return 2
    SCHEMA_DIR.mkdir(exist_ok=True)
    for which in FILES:
        shipped_path(which).write_text(dumps(schema(which)), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
