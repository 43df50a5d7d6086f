"""Run and node statuses: the one definition every backend, the engine and the CLI use.

They are plain string constants grouped in a namespace (``RunStatus.SUCCESS == "success"``),
stored and compared as the strings they are. (``StrEnum`` classes cost more to create than
the rest of this module: every command pays for them at start-up.)
"""

from __future__ import annotations


class RunStatus:
    # QUEUED: submitted to a state store's queue and not yet started by a worker.
    QUEUED = "queued"
    PENDING = "pending"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    CANCELLED = "cancelled"


class NodeStatus:
    PENDING = "pending"
    RUNNING = "running"
    APPROVAL_PENDING = "approval_pending"  # waiting at an approval gate
    PAUSED = "paused"  # waiting at a debug pause
    SUCCESS = "success"
    FAILED = "failed"
    CACHED = "cached"
    # Not run again: its outcome, outputs and artifacts come from an earlier run (`runs
    # retry --failed`, `run --sw-start-at`); final, and successful for its dependants.
    REUSED = "reused"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"


RUN_STATUSES: tuple[str, ...] = tuple(
    v for k, v in vars(RunStatus).items() if k.isupper() and isinstance(v, str)
)
NODE_STATUSES: tuple[str, ...] = tuple(
    v for k, v in vars(NodeStatus).items() if k.isupper() and isinstance(v, str)
)
FINAL_RUN_STATUSES: frozenset[str] = frozenset(
    {RunStatus.SUCCESS, RunStatus.FAILED, RunStatus.CANCELLED}
)
FINAL_NODE_STATUSES: frozenset[str] = frozenset(
    {
        NodeStatus.SUCCESS,
        NodeStatus.FAILED,
        NodeStatus.CACHED,
        NodeStatus.REUSED,
        NodeStatus.SKIPPED,
        NodeStatus.CANCELLED,
    }
)
# Nodes waiting for a person (an approval or a resume), neither running nor final.
WAITING_NODE_STATUSES: frozenset[str] = frozenset({NodeStatus.APPROVAL_PENDING, NodeStatus.PAUSED})
