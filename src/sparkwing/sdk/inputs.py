"""Typed pipeline inputs: CLI flags > pipeline ``args:`` > ``defaults.args`` > field default.

A secret input (typed :class:`SecretStr`, or a field with ``metadata={"secret": True}``) is
masked in every log and display and recorded as ``***``; given as ``secret:NAME`` it is the
profile's secret NAME, looked up when the run starts (and that reference is what is stored)."""

from __future__ import annotations

import dataclasses
import enum
import itertools
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, get_args, get_origin, get_type_hints

from sparkwing.errors import UsageError

_TRUE = {"1", "true", "yes", "on"}
MASK = "***"  # what a secret input shows and is recorded as (engine.masking's mask)
SECRET_REF = "secret:"  # an input value naming a secret of the profile instead of holding it


class SecretStr:
    """A secret pipeline input: ``str()``, ``repr()`` and f-strings show ``***``; ``get()``
    returns the value. Its value is masked wherever the run prints or records it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = str(value)

    def get(self) -> str:
        return self._value

    def __str__(self) -> str:
        return MASK

    def __repr__(self) -> str:
        return f"SecretStr('{MASK}')"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretStr) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("SecretStr", self._value))

    def __bool__(self) -> bool:
        return bool(self._value)


def _isclass(obj: Any) -> bool:
    # inspect.isclass without importing inspect (it costs ~6 ms of start-up).
    return isinstance(obj, type)


_FALSE = {"0", "false", "no", "off"}


@dataclasses.dataclass(frozen=True)
class InputField:
    """One pipeline input: its name, type, default and help."""

    name: str
    type: Any
    default: Any
    required: bool
    help: str | None = None
    secret: bool = False

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


def args_type_of(obj: Any) -> type | None:
    """The inputs class of a pipeline: the ``args`` annotation of ``plan``, or ``Args``."""
    plan_fn = getattr(obj, "plan", None) if _isclass(obj) else obj
    if plan_fn is not None:
        try:
            hints = get_type_hints(plan_fn)
        except Exception:  # unresolvable annotations: fall back to the attribute
            hints = {}
        hinted = hints.get("args")
        if _isclass(hinted) and hinted is not type(None):
            return hinted
    explicit = getattr(obj, "Args", None)
    return explicit if _isclass(explicit) else None


def field_docs(args_type: type) -> dict[str, str]:
    """Attribute docstrings of an inputs class (a string literal right after a field), the
    other place, besides ``field(metadata={"help": ...})``, where an input's help is written.
    Read from the source with ``ast``; a class without source has none."""
    import ast
    import inspect
    import textwrap

    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(args_type)))
    except (OSError, TypeError, SyntaxError):
        return {}
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    docs: dict[str, str] = {}
    for stmt, after in itertools.pairwise(body):
        if (
            isinstance(stmt, ast.AnnAssign)
            and isinstance(stmt.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            docs[stmt.target.id] = " ".join(after.value.value.split())
    return docs


def fields_of(args_type: type | None) -> list[InputField]:
    if args_type is None:
        return []
    hints = get_type_hints(args_type)
    out: list[InputField] = []
    if dataclasses.is_dataclass(args_type):
        for f in dataclasses.fields(args_type):
            if f.default is not dataclasses.MISSING:
                default, required = f.default, False
            elif f.default_factory is not dataclasses.MISSING:
                default, required = f.default_factory(), False
            else:
                default, required = None, True
            help_text = f.metadata.get("help")
            tp = hints.get(f.name, str)
            secret = _is_secret(tp) or bool(f.metadata.get("secret"))
            out.append(InputField(f.name, tp, default, required, help_text, secret))
        return out
    for name, tp in hints.items():
        if name.startswith("_"):
            continue
        if hasattr(args_type, name):
            out.append(InputField(name, tp, getattr(args_type, name), False, None, _is_secret(tp)))
        else:
            out.append(InputField(name, tp, None, True, None, _is_secret(tp)))
    return out


def _is_secret(tp: Any) -> bool:
    return _unoptional(tp) is SecretStr


def parse_cli_flags(argv: Sequence[str], fields: list[InputField], pipeline: str) -> dict[str, Any]:
    """``--name value`` / ``--name=value`` / ``--flag`` / ``--no-flag`` into raw values."""
    by_flag = {f.flag: f for f in fields}
    by_flag.update({"--" + f.name: f for f in fields})
    out: dict[str, Any] = {}
    i = 0
    while i < len(argv):
        token = argv[i]
        if not token.startswith("--"):
            raise UsageError(
                f'pipeline "{pipeline}": unexpected argument {token!r} '
                f"(inputs are given as --name value){_available(fields)}"
            )
        name, eq, value = token.partition("=")
        field = by_flag.get(name)
        negated = False
        if field is None and name.startswith("--no-"):
            field = by_flag.get("--" + name[5:])
            negated = field is not None and _is_bool(field.type)
            if not negated:
                field = None
        if field is None:
            raise UsageError(f'pipeline "{pipeline}": unknown flag {name}{_available(fields)}')
        if negated:
            out[field.name] = False
        elif eq:
            _add(out, field, value)
        elif _is_bool(field.type):
            nxt = argv[i + 1].lower() if i + 1 < len(argv) else ""
            if nxt in _TRUE | _FALSE:
                out[field.name] = nxt in _TRUE
                i += 1
            else:
                out[field.name] = True
        else:
            if i + 1 >= len(argv):
                raise UsageError(f'pipeline "{pipeline}": flag {name} needs a value')
            _add(out, field, argv[i + 1])
            i += 1
        i += 1
    return out


def _add(out: dict[str, Any], field: InputField, value: str) -> None:
    if _is_list(field.type):
        out.setdefault(field.name, []).append(value)
    else:
        out[field.name] = value


def _available(fields: list[InputField]) -> str:
    if not fields:
        return " (this pipeline takes no inputs)"
    return " (inputs: " + ", ".join(f.flag for f in fields) + ")"


def build_args(
    args_type: type | None,
    pipeline: str,
    *,
    cli: Sequence[str] = (),
    yaml_args: Mapping[str, Any] | None = None,
    default_args: Mapping[str, Any] | None = None,
    resolve_secret: Callable[[str], str | None] | None = None,
) -> tuple[Any, dict[str, Any]]:
    """The inputs object and its values as plain data (for the run record: a secret input
    as ``***``, or as the ``secret:NAME`` it was given as). ``resolve_secret`` looks such a
    name up; without it (describing a pipeline) the reference itself is the value."""
    fields = fields_of(args_type)
    known = {f.name for f in fields}
    from_cli = parse_cli_flags(list(cli), fields, pipeline)
    pipeline_yaml = {k.replace("-", "_"): v for k, v in (yaml_args or {}).items()}
    for name in pipeline_yaml:
        if name not in known:
            raise UsageError(
                f'pipeline "{pipeline}": args key "{name}" in sparkwing.yaml is not '
                f"an input of this pipeline{_available(fields)}"
            )
    # defaults.args is shared by every pipeline, so keys another pipeline uses are fine here.
    shared = {
        k.replace("-", "_"): v
        for k, v in (default_args or {}).items()
        if k.replace("-", "_") in known
    }
    values: dict[str, Any] = {}
    recorded: dict[str, Any] = {}
    for field in fields:
        for layer, label in (
            (from_cli, "flag"),
            (pipeline_yaml, "args"),
            (shared, "defaults.args"),
        ):
            if field.name in layer:
                where = f'pipeline "{pipeline}": {label} {field.flag}'
                raw = layer[field.name]
                if field.secret:
                    raw, recorded[field.name] = _secret_value(raw, where, resolve_secret)
                values[field.name] = convert(raw, field.type, where)
                break
        else:
            if field.required:
                raise UsageError(f'pipeline "{pipeline}": missing required input {field.flag}')
            values[field.name] = field.default
            if _is_secret(field.type) and isinstance(field.default, str):
                values[field.name] = SecretStr(field.default)  # a plain default, wrapped
            if field.secret and field.default not in (None, ""):
                recorded[field.name] = MASK
    if args_type is None:
        return None, {}
    plain = {k: recorded[k] if k in recorded else _plain(v) for k, v in values.items()}
    return args_type(**values), plain


def _secret_value(
    raw: Any, where: str, resolve: Callable[[str], str | None] | None
) -> tuple[Any, str]:
    """(the value to use, what the run records) for a secret input given as ``raw``."""
    if isinstance(raw, SecretStr):
        return raw, MASK
    text = str(raw)
    if not text.startswith(SECRET_REF):
        return raw, MASK
    name = text[len(SECRET_REF) :]
    if not name:
        raise UsageError(f"{where}: {SECRET_REF} needs a secret name ({SECRET_REF}NAME)")
    if resolve is None:
        return text, text
    value = resolve(name)
    if value is None:
        raise UsageError(f'{where}: secret "{name}" is not defined in the profile\'s secrets')
    return value, text


def secret_values(args_type: type | None, args: Any) -> list[str]:
    """The values of ``args``' secret inputs, to be masked wherever the run prints them."""
    out = []
    for field in fields_of(args_type):
        value = getattr(args, field.name, None) if field.secret else None
        text = value.get() if isinstance(value, SecretStr) else value
        if isinstance(text, str) and text:
            out.append(text)
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return MASK
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _is_bool(tp: Any) -> bool:
    return _unoptional(tp) is bool


def _is_list(tp: Any) -> bool:
    return get_origin(_unoptional(tp)) in (list, Sequence, tuple)


def _unoptional(tp: Any) -> Any:
    if get_origin(tp) in (typing.Union, types.UnionType):
        rest = [a for a in get_args(tp) if a is not type(None)]
        if len(rest) == 1:
            return rest[0]
    return tp


def convert(value: Any, tp: Any, where: str) -> Any:
    """Coerce a CLI string or YAML value to ``tp``; a clear UsageError when it does not fit."""
    if value is None and _unoptional(tp) is not tp:
        return None
    tp = _unoptional(tp)
    origin = get_origin(tp)
    try:
        if tp is Any or tp is object:
            return value
        if tp is SecretStr:
            if isinstance(value, dict | list):
                raise ValueError("expected a string")
            return value if isinstance(value, SecretStr) else SecretStr(str(value))
        if tp is bool:
            if isinstance(value, bool):
                return value
            text = str(value).lower()
            if text in _TRUE | _FALSE:
                return text in _TRUE
            raise ValueError("expected true or false")
        if tp is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError("expected an integer")
            return int(value)
        if tp is float:
            if isinstance(value, bool):
                raise ValueError("expected a number")
            return float(value)
        if tp is str:
            if isinstance(value, dict | list):
                raise ValueError("expected a string")
            return str(value)
        if origin is Literal:
            choices = get_args(tp)
            for choice in choices:
                if value == choice or str(value) == str(choice):
                    return choice
            raise ValueError("expected one of " + ", ".join(map(str, choices)))
        if _isclass(tp) and issubclass(tp, enum.Enum):
            for member in tp:
                if value in (member.value, member.name) or str(value) == str(member.value):
                    return member
            raise ValueError("expected one of " + ", ".join(str(m.value) for m in tp))
        if origin in (list, Sequence, tuple):
            (inner,) = get_args(tp)[:1] or (str,)
            items = (
                value
                if isinstance(value, list | tuple)
                else [
                    part
                    for v in ([value] if isinstance(value, str) else value)
                    for part in str(v).split(",")
                    if part != ""
                ]
            )
            return [convert(v, inner, where) for v in items]
        if origin is dict or tp is dict:
            if not isinstance(value, dict):
                raise ValueError("expected a mapping")
            return dict(value)
    except ValueError as exc:
        raise UsageError(f"{where}: invalid value {value!r}: {exc}") from None
    except TypeError:
        raise UsageError(f"{where}: invalid value {value!r}") from None
    return value


def describe_inputs(args_type: type | None) -> list[dict[str, Any]]:
    """Inputs as plain data (for ``pipeline describe`` / ``--help``); help from a field's
    metadata, else its attribute docstring (read only here: parsing source costs time)."""
    out = []
    docs = field_docs(args_type) if args_type is not None else {}
    for f in fields_of(args_type):
        out.append(
            {
                "name": f.name,
                "flag": f.flag,
                "type": "str" if _is_secret(f.type) else _type_name(f.type),
                "required": f.required,
                "default": None if f.required else _shown_default(f),
                "choices": choices_of(f.type),
                "help": f.help or docs.get(f.name),
                "secret": f.secret,
            }
        )
    return out


def _shown_default(field: InputField) -> Any:
    if field.secret and field.default not in (None, ""):
        return MASK
    return _plain(field.default)


def choices_of(tp: Any) -> list[Any] | None:
    """The values a ``Literal[...]`` or enum input accepts (of a list's items too), else None."""
    tp = _unoptional(tp)
    if _is_list(tp):
        item = get_args(tp)
        return choices_of(item[0]) if item else None
    if get_origin(tp) is Literal:
        return [_plain(v) for v in get_args(tp)]
    if _isclass(tp) and issubclass(tp, enum.Enum):
        return [_plain(m.value) for m in tp]
    return None


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")
