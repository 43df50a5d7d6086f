"""JSON schemas of the controller API's documents, and the small validator that enforces them.

The same schemas feed the served OpenAPI document, so what is documented is what is checked.
Only the JSON Schema subset used here is implemented.
"""

from __future__ import annotations

import math
from typing import Any

from sparkwing.errors import UsageError
from sparkwing.status import NODE_STATUSES, RUN_STATUSES
from sparkwing.surfaces.state.base import GATE_RESOLUTIONS

Schema = dict[str, Any]

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# Bounds of what a state write may hold, so a stored record is always one readers can show.
SHORT_MAX = 1024  # ids, statuses, times, names
TEXT_MAX = 256 * 1024  # reasons, errors, messages
MAX_NODES = 10_000
MAX_EVENTS = 100_000

STR: Schema = {"type": "string"}
OPT_STR: Schema = {"type": ["string", "null"]}
SHORT: Schema = {"type": "string", "maxLength": SHORT_MAX}
OPT_SHORT: Schema = {"type": ["string", "null"], "maxLength": SHORT_MAX}
OPT_TEXT: Schema = {"type": ["string", "null"], "maxLength": TEXT_MAX}
OPT_NUMBER: Schema = {"type": ["number", "null"], "minimum": 0}
OBJ: Schema = {"type": "object", "additionalProperties": True}
ANY: Schema = {}
BOOL: Schema = {"type": "boolean"}
INT64: Schema = {"type": "integer", "minimum": INT64_MIN, "maximum": INT64_MAX}


def obj(
    properties: dict[str, Schema], required: tuple[str, ...] = (), extra: bool = False
) -> Schema:
    schema: Schema = {
        "type": "object",
        "properties": properties,
        "additionalProperties": extra,
    }
    if required:
        schema["required"] = list(required)
    return schema


def array(items: Schema, max_items: int | None = None) -> Schema:
    schema: Schema = {"type": "array", "items": items}
    if max_items is not None:
        schema["maxItems"] = max_items
    return schema


ERROR = obj({"error": STR, "type": STR, "scope": STR}, ("error", "type"))

RUN_FIELDS: dict[str, Schema] = {
    "pipeline": SHORT,
    "status": {"type": "string", "enum": list(RUN_STATUSES)},
    "reason": OPT_TEXT,
    "created_at": SHORT,
    "started_at": OPT_SHORT,
    "finished_at": OPT_SHORT,
    "heartbeat_at": OPT_SHORT,
    "args": OBJ,
    "git": OBJ,
    "trigger": SHORT,
    "profile": SHORT,
    "profile_source": SHORT,
    "surfaces": OBJ,
    "host": SHORT,
    "pid": {"type": ["integer", "null"], "minimum": INT64_MIN, "maximum": INT64_MAX},
    "extra": OBJ,
    "source": OBJ,
}
# Unknown fields are accepted (and dropped) so an older controller serves newer runners.
RUN = obj({"run_id": STR, **RUN_FIELDS}, ("run_id", "pipeline"), extra=True)
RUN_UPDATE = obj({"fields": obj(RUN_FIELDS)}, ("fields",))
RUN_PAGE = obj({"runs": array(RUN), "next_cursor": OPT_STR}, ("runs",))
HEARTBEAT = obj({"at": SHORT}, ("at",))

NODE = obj(
    {
        "run_id": SHORT,
        "node_id": SHORT,
        "status": {"type": "string", "enum": list(NODE_STATUSES)},
        "reason": OPT_TEXT,
        "attempt": {**INT64, "minimum": 0},
        "needs": array(SHORT, MAX_NODES),
        "started_at": OPT_SHORT,
        "finished_at": OPT_SHORT,
        "output": ANY,
        "error": OPT_TEXT,
        "memo_key": OPT_SHORT,
        "artifacts": OPT_SHORT,
        "extra": OBJ,
    },
    ("run_id", "node_id"),
    extra=True,
)
NODES = obj({"nodes": array(NODE, MAX_NODES)}, ("nodes",))

# The plan snapshot (sparkwing.sdk.plan.Plan.snapshot): typed where readers rely on a type.
PLAN_JOB = obj(
    {
        "id": SHORT,
        "shell": OPT_TEXT,
        "fn": OPT_SHORT,
        "noop": BOOL,
        "needs": array(SHORT, MAX_NODES),
        "retries": {"type": "integer", "minimum": 0, "maximum": 10**6},
        "backoff_s": OPT_NUMBER,
        "timeout_s": OPT_NUMBER,
        "optional": BOOL,
        "continue_on_error": BOOL,
        "skip_if": BOOL,
        "env": array(SHORT, MAX_NODES),
        "memoize": BOOL,
        "memo_ttl_s": OPT_NUMBER,
        "outputs": array({"type": "string", "maxLength": TEXT_MAX}, MAX_NODES),
        "consumes": array(SHORT, MAX_NODES),
        "description": OPT_TEXT,
        "approval": obj(
            {"message": OPT_TEXT, "timeout_s": OPT_NUMBER, "on_expiry": OPT_SHORT}, extra=True
        ),
    },
    ("id",),
    extra=True,
)
# Readers take a missing field as empty (plan.get("jobs", [])): only present ones are typed.
PLAN = obj({"pipeline": SHORT, "jobs": array(PLAN_JOB, MAX_NODES)}, extra=True)

NEW_EVENT = obj({"kind": SHORT, "ts": SHORT, "node_id": OPT_SHORT, "data": OBJ}, ("kind", "ts"))
EVENT = obj(
    {"run_id": STR, "seq": INT64, "ts": STR, "kind": STR, "node_id": OPT_STR, "data": OBJ},
    ("run_id", "seq", "ts", "kind"),
)
NEW_EVENTS = obj({"events": array(NEW_EVENT, MAX_EVENTS)}, ("events",))
EVENTS = obj({"events": array(EVENT)}, ("events",))
SEQS = obj({"seqs": array(INT64)}, ("seqs",))

LEASE: Schema = {"type": "number", "minimum": 0, "maximum": 10**9}
MEMO_ACQUIRE = obj({"key": STR, "holder": STR, "lease_seconds": LEASE}, ("key", "holder"))
MEMO_HOLDER = obj({"key": STR, "holder": STR}, ("key", "holder"))
MEMO_COMPLETE = obj({"key": STR, "holder": STR, "result": STR}, ("key", "holder", "result"))
MEMO_KEY = obj({"key": STR}, ("key",))
MEMO_CLAIM = obj(
    {
        "state": {"type": "string", "enum": ["leader", "held", "done"]},
        "holder": OPT_STR,
        "result": OPT_STR,
        "expires_at": {"type": ["number", "null"]},
    },
    ("state",),
)
OK = obj({"ok": BOOL}, ("ok",))
DELETED = obj({"deleted": BOOL}, ("deleted",))

STATE_CAPABILITIES = obj(
    {"gates": BOOL, "queue": BOOL, "fleet": BOOL, "ticks": BOOL, "groups": BOOL},
    ("gates", "queue"),
)

SUBMIT = obj({"run": RUN, "spec": OBJ}, ("run", "spec"))
GATE_STATUSES = ["pending", *(s for kind in GATE_RESOLUTIONS.values() for s in kind)]
CLAIM_REQUEST = obj(
    {"worker": STR, "lease_seconds": LEASE, "labels": array(SHORT, 256)}, ("worker",)
)
CLAIM = obj(
    {
        "run": RUN,
        "spec": OBJ,
        "worker": STR,
        "attempt": INT64,
        "expires_at": {"type": "number"},
        "previous_worker": OPT_STR,
    },
    ("run", "spec", "worker", "attempt", "expires_at"),
)
CLAIMED = obj({"claim": {"anyOf": [CLAIM, {"type": "null"}]}}, ("claim",))
RELEASE = obj({"worker": STR, "requeue": BOOL}, ("worker",))
CANCEL_QUEUED = obj({"reason": STR, "at": STR}, ("reason", "at"))

GATE = obj(
    {
        "run_id": SHORT,
        "node_id": SHORT,
        "kind": SHORT,
        "status": {"type": "string", "enum": GATE_STATUSES},
        "message": OPT_TEXT,
        "created_at": SHORT,
        "expires_at": OPT_SHORT,
        "resolved_by": OPT_SHORT,
        "resolved_at": OPT_SHORT,
        "comment": OPT_TEXT,
        "extra": OBJ,
    },
    ("run_id", "node_id", "kind"),
    extra=True,
)
GATES = obj({"gates": array(GATE)}, ("gates",))
GATE_RESOLVE = obj(
    {
        "status": {"type": "string", "enum": GATE_STATUSES[1:]},
        "by": {
            **SHORT,
            "description": "Ignored: the decision is recorded under the calling token's name.",
        },
        "comment": OPT_TEXT,
    },
    ("status",),
)
GATE_EXPIRE = obj(
    {"status": {"type": "string", "enum": GATE_STATUSES[1:]}, "comment": OPT_TEXT}, ("status",)
)

OBJECT_INFO = obj(
    {"key": STR, "size": INT64, "modified": {"type": "number"}, "etag": OPT_STR},
    ("key", "size", "modified"),
)
OBJECT_PAGE = obj({"objects": array(OBJECT_INFO), "next": OPT_STR}, ("objects",))
ETAG = obj({"etag": OPT_STR}, ("etag",))
CAPABILITIES = obj({"conditional_writes": BOOL}, ("conditional_writes",))

# A log record on the wire: [ts, stream, msg] (arrays parse about twice as fast as objects).
LOG_RECORD: Schema = {
    "type": "array",
    "items": STR,
    "minItems": 3,
    "maxItems": 3,
    "description": "[ts, stream, msg]",
}
LOG_RECORDS = obj({"records": array(LOG_RECORD)}, ("records",))
LOG_NODES = obj({"nodes": array(STR)}, ("nodes",))

SECRET = obj({"name": STR, "value": STR, "masked": BOOL}, ("name", "value", "masked"))
SECRET_SET = obj({"value": STR, "masked": BOOL}, ("value",))
SECRET_NAMES = obj(
    {"secrets": array(obj({"name": STR, "masked": BOOL}, ("name", "masked")))}, ("secrets",)
)
WHOAMI = obj({"name": STR, "id": STR, "scopes": array(STR)}, ("name", "id", "scopes"))
HEALTH = obj({"status": STR, "version": STR}, ("status",))


# -- validation ------------------------------------------------------------------------
_PY_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "boolean": (bool,),
    "integer": (int,),
    "number": (int, float),
}


def _type_ok(value: Any, name: str) -> bool:
    if name == "null":
        return value is None
    if isinstance(value, bool) and name != "boolean":
        return False
    return isinstance(value, _PY_TYPES[name])


def validate(value: Any, schema: Schema, where: str = "body") -> None:
    """Raise UsageError naming the first place where ``value`` breaks ``schema``."""
    if "anyOf" in schema and not any(_matches(value, option) for option in schema["anyOf"]):
        raise UsageError(f"{where} matches none of the allowed forms")
    expected = schema.get("type")
    if expected is not None:
        names = [expected] if isinstance(expected, str) else list(expected)
        if not any(_type_ok(value, n) for n in names):
            raise UsageError(f"{where} must be {' or '.join(names)}")
    if "enum" in schema and value not in schema["enum"]:
        raise UsageError(f"{where} must be one of {', '.join(map(str, schema['enum']))}")
    if isinstance(value, str) and "maxLength" in schema and len(value) > schema["maxLength"]:
        raise UsageError(f"{where} is longer than {schema['maxLength']} characters")
    if isinstance(value, float) and not math.isfinite(value):
        raise UsageError(f"{where} must be a finite number")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            raise UsageError(f"{where} must be at least {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            raise UsageError(f"{where} must be at most {schema['maximum']}")
    if isinstance(value, dict):
        _validate_object(value, schema, where)
    elif isinstance(value, list):
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            raise UsageError(f"{where} has more than {schema['maxItems']} items")
        if "minItems" in schema and len(value) < schema["minItems"]:
            raise UsageError(f"{where} has fewer than {schema['minItems']} items")
        items = schema.get("items")
        if items:
            for i, item in enumerate(value):
                validate(item, items, f"{where}[{i}]")


def _matches(value: Any, schema: Schema) -> bool:
    try:
        validate(value, schema)
    except UsageError:
        return False
    return True


def _validate_object(value: dict[str, Any], schema: Schema, where: str) -> None:
    properties: dict[str, Schema] = schema.get("properties", {})
    for name in schema.get("required", ()):
        if name not in value:
            raise UsageError(f"{where}.{name} is required")
    extra = schema.get("additionalProperties", True)
    for name, item in value.items():
        if name in properties:
            validate(item, properties[name], f"{where}.{name}")
        elif extra is False:
            raise UsageError(f"{where}: unknown field {name!r}")
        elif isinstance(extra, dict):
            validate(item, extra, f"{where}.{name}")
