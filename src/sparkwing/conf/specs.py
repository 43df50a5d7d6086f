"""Parsing and load-time validation of ``profiles:`` (SPEC section 3), shared by the
project file and the user profiles file."""

from __future__ import annotations

from collections.abc import Callable

from yaml.nodes import Node, ScalarNode

from sparkwing.conf.interpolate import VARIABLES, check_template, substitute
from sparkwing.conf.model import ControllerDef, ProfileDef
from sparkwing.conf.notify import parse_notify
from sparkwing.conf.resolved import SURFACES
from sparkwing.conf.yamlload import Entry, Reader, is_null, line_of
from sparkwing.errors import ConfigError, InvalidKeyError
from sparkwing.ids import check_prefix, check_segment
from sparkwing.surfaces import registry
from sparkwing.surfaces.spec import SurfaceSpec

SPEC_KEYS: tuple[str, ...] = (
    "type",
    "path",
    "bucket",
    "prefix",
    "url",
    "url_source",
    "token",
    "token_env",
)
CACHE_KEYS: tuple[str, ...] = (*SPEC_KEYS, "binaries")
PROFILE_KEYS: tuple[str, ...] = ("controller", *SURFACES, "notify")
CONTROLLER_KEYS: tuple[str, ...] = ("url", "token", "token_env")
# The specs a profile may hold, each with the backend types the registry lists for it.
TYPES: dict[str, tuple[str, ...]] = {
    surface: registry.types(surface)
    for surface in ("state", "cache", "cache.binaries", "logs", "secrets")
}


def parse_profiles(reader: Reader, node: Node | None) -> dict[str, ProfileDef]:
    profiles: dict[str, ProfileDef] = {}
    for entry in reader.mapping(node, "profiles"):
        try:
            check_segment(entry.key, "profile name")
        except InvalidKeyError as exc:
            raise reader.error(entry.key_node, str(exc)) from None
        profiles[entry.key] = _profile(reader, entry)
    return profiles


def _profile(reader: Reader, entry: Entry) -> ProfileDef:
    where = f'profile "{entry.key}"'
    fields = reader.fields(entry.value, where, PROFILE_KEYS)
    controller = None
    if "controller" in fields:
        controller = _controller(reader, fields["controller"], where)
    specs = {s: _spec(reader, fields[s], s, where, controller) for s in SURFACES if s in fields}
    notify = parse_notify(reader, fields["notify"], where) if "notify" in fields else ()
    return ProfileDef(
        name=entry.key,
        file=reader.file,
        line=line_of(entry.key_node),
        controller=controller,
        notify=notify,
        **specs,
    )


def _controller(reader: Reader, entry: Entry, where: str) -> ControllerDef:
    where = f"{where} controller"
    fields = reader.fields(entry.value, where, CONTROLLER_KEYS)
    values = {k: reader.string(e.value, f"{where}.{k}") or None for k, e in fields.items()}
    url = values.get("url")
    if not url:
        raise reader.error(entry.key_node, f"{where} requires url")
    return ControllerDef(url=url, token=values.get("token"), token_env=values.get("token_env"))


def _spec(
    reader: Reader, entry: Entry, surface: str, where: str, controller: ControllerDef | None
) -> SurfaceSpec:
    def fail(message: str) -> ConfigError:
        return reader.error(entry.key_node, f"{surface} backend{message}")

    if is_null(entry.value):
        raise fail(": type is required")
    spec_where = f"{where} {surface}"
    allowed = CACHE_KEYS if surface == "cache" else SPEC_KEYS
    fields = reader.fields(entry.value, spec_where, allowed)
    values = {
        k: reader.string(fields[k].value, f"{spec_where}.{k}") or None
        for k in SPEC_KEYS
        if k in fields
    }
    if "path" in fields and _is_bare_tilde(fields["path"].value):
        values["path"] = "~"  # YAML reads `path: ~` as null; the user means their home.
    type_ = values.get("type")
    if not type_:
        raise fail(": type is required")
    backend = registry.backend(surface, type_)
    if backend is None:
        types = TYPES[surface]
        raise fail(f' type "{type_}" is not recognized (expected one of: {", ".join(types)})')
    bucket, path, prefix = values.get("bucket"), values.get("path"), values.get("prefix")
    url, url_source = values.get("url"), values.get("url_source")
    token, token_env = values.get("token"), values.get("token_env")
    if backend.has("controller") and not url:
        if controller is None:
            raise fail(f" type={type_} requires url (or a controller: entry in the profile)")
        url = values["url"] = controller.url
        token = token or controller.token
        token_env = token_env or controller.token_env
    missing = backend.missing(values)
    if missing:
        raise fail(missing)
    if bucket:
        _check(reader, fields["bucket"].value, surface, lambda: check_segment(bucket, "bucket"))
    if url_source is not None and url_source.startswith("env:") and not url_source[4:]:
        raise fail(f': url_source "{url_source}" names no environment variable')
    if path is not None:
        _check(reader, fields["path"].value, surface, lambda: _check_path(surface, path))
    if prefix is not None:
        _check(reader, fields["prefix"].value, surface, lambda: _check_prefix(surface, prefix))
    binaries = None
    if "binaries" in fields:
        binaries = _spec(reader, fields["binaries"], "cache.binaries", where, controller)
    return SurfaceSpec(
        type=type_,
        path=path,
        bucket=bucket,
        prefix=prefix,
        url=url,
        url_source=url_source,
        token=token,
        token_env=token_env,
        binaries=binaries,
    )


def _is_bare_tilde(node: Node) -> bool:
    return isinstance(node, ScalarNode) and not node.style and node.value == "~"


def _check(reader: Reader, node: Node, surface: str, check: Callable[[], object]) -> None:
    """Run ``check``; re-raise its error prefixed with the value's ``file:line``."""
    try:
        check()
    except ConfigError as exc:
        raise reader.error(node, str(exc)) from None
    except InvalidKeyError as exc:
        raise reader.error(node, f"{surface} backend: {exc}") from None


def _check_path(surface: str, path: str) -> None:
    check_template(surface, "path", path)
    if any(ord(c) < 32 or ord(c) == 127 for c in path):
        raise ConfigError(f"{surface} backend: path must not contain control characters")


def _check_prefix(surface: str, prefix: str) -> None:
    check_template(surface, "prefix", prefix)
    # Any value a variable can take is a single safe segment, so a stand-in proves the rest.
    check_prefix(substitute(prefix, dict.fromkeys(VARIABLES, "x")))
