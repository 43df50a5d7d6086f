"""``${RUN_ID}`` / ``${PIPELINE_NAME}`` / ``${PROFILE}`` in spec ``path`` and ``prefix``:
checked per surface at load, substituted (then ``~`` expanded) when a run starts."""

from __future__ import annotations

import dataclasses
import os

from sparkwing.errors import ConfigError
from sparkwing.ids import check_prefix, check_segment
from sparkwing.surfaces.spec import SurfaceSpec

VARIABLES: tuple[str, ...] = ("RUN_ID", "PIPELINE_NAME", "PROFILE")

# Which variables each surface may use, and why the others are refused.
_ALLOWED: dict[str, tuple[tuple[str, ...], str]] = {
    "state": ((), "history must stay listable"),
    "cache": (("PIPELINE_NAME", "PROFILE"), "it would defeat content addressing"),
    "cache.binaries": (("PIPELINE_NAME", "PROFILE"), "it would defeat content addressing"),
    "logs": (VARIABLES, ""),
    # Secrets commands (`sparkwing secrets set`) run outside any pipeline or run.
    "secrets": (("PROFILE",), "secrets are shared by every pipeline and run"),
}


class TemplateError(ValueError):
    """A malformed template; the caller adds which surface and file it came from."""


def parse(text: str, names: tuple[str, ...] | None = VARIABLES) -> list[str | tuple[str]]:
    """Literal pieces (``$$`` already unescaped) and ``(NAME,)`` for each ``${NAME}``;
    ``names`` None accepts any identifier (checked against values when substituted)."""
    parts: list[str | tuple[str]] = []
    literal: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        i += 1
        if char != "$":
            literal.append(char)
            continue
        follower = text[i : i + 1]
        if follower == "$":
            literal.append("$")
            i += 1
        elif follower == "{":
            end = text.find("}", i + 1)
            if end < 0:
                raise TemplateError('unterminated "${"')
            name = text[i + 1 : end]
            if names is None and not name.isidentifier():
                raise TemplateError(f"${{{name}}} is not a variable name")
            if names is not None and name not in names:
                expected = ", ".join("${" + v + "}" for v in names)
                raise TemplateError(
                    f"unknown variable ${{{name}}} (expected one of: {expected}; "
                    "write $$ for a literal $)"
                )
            if literal:
                parts.append("".join(literal))
                literal = []
            parts.append((name,))
            i = end + 1
        else:
            raise TemplateError('"$" must start ${NAME} (write $$ for a literal $)')
    if literal:
        parts.append("".join(literal))
    return parts


def check_template(surface: str, field: str, text: str) -> None:
    """Refuse what ``surface`` may not use in ``field``; messages are SPEC's (unprefixed)."""
    try:
        parts = parse(text)
    except TemplateError as exc:
        raise ConfigError(f"{surface} backend: {field}: {exc}") from None
    allowed, why = _ALLOWED[surface]
    for part in parts:
        if isinstance(part, tuple) and part[0] not in allowed:
            kind = surface.split(".")[0]
            raise ConfigError(
                f"{surface} backend: ${{{part[0]}}} is not allowed in {kind} specs ({why})"
            )


_VALUE_NAMES = {"RUN_ID": "run id", "PIPELINE_NAME": "pipeline name", "PROFILE": "profile name"}


def substitute(text: str, values: dict[str, str]) -> str:
    try:
        parts = parse(text)
    except TemplateError as exc:
        raise ConfigError(f"{text!r}: {exc}") from None
    out: list[str] = []
    for part in parts:
        if isinstance(part, str):
            out.append(part)
            continue
        value = values.get(part[0], "")
        if not value:
            raise ConfigError(f"${{{part[0]}}} is used in {text!r} but has no value here")
        out.append(check_segment(value, _VALUE_NAMES[part[0]]))
    return "".join(out)


def escape(text: str) -> str:
    """``text`` as a template that substitutes back to itself."""
    return text.replace("$", "$$")


def interpolate_spec(spec: SurfaceSpec, *, run_id: str, pipeline: str, profile: str) -> SurfaceSpec:
    """The spec with variables substituted in ``path`` / ``prefix`` and ``~`` expanded.

    Each substituted value must be a valid key segment (no ``/``, ``..`` or control
    characters), so a pipeline or profile name can never move data outside its prefix.
    """
    values = {"RUN_ID": run_id, "PIPELINE_NAME": pipeline, "PROFILE": profile}
    changes: dict[str, object] = {}
    if spec.path is not None:
        changes["path"] = os.path.expanduser(substitute(spec.path, values))
    if spec.prefix is not None:
        changes["prefix"] = check_prefix(substitute(spec.prefix, values))
    if spec.binaries is not None:
        changes["binaries"] = interpolate_spec(
            spec.binaries, run_id=run_id, pipeline=pipeline, profile=profile
        )
    return dataclasses.replace(spec, **changes)  # type: ignore[arg-type]
