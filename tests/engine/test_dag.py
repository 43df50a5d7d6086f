"""The DAG state machine on its own: readiness, propagation of final statuses to dependants,
and chains far deeper than Python's recursion limit. No processes are started."""

from __future__ import annotations

import sys

import pytest

from sparkwing.engine.dag import ACTIVE, READY, WAITING, Cancelled, Dag, DagNode


def take_all(dag: Dag) -> list[str]:
    taken = []
    while (node_id := dag.take()) is not None:
        taken.append(node_id)
    return taken


def test_roots_are_ready_in_plan_order_and_taken_once() -> None:
    dag = Dag([DagNode("b"), DagNode("a"), DagNode("c", ("a", "b"))])
    assert dag.phase("c") == WAITING
    assert take_all(dag) == ["b", "a"]
    assert dag.phase("a") == ACTIVE
    assert dag.take() is None


def test_a_dependant_is_ready_only_when_every_dependency_succeeded() -> None:
    dag = Dag([DagNode("a"), DagNode("b"), DagNode("c", ("a", "b"))])
    take_all(dag)
    assert dag.finish("a", "success") == []
    assert not dag.has_ready()
    assert dag.finish("b", "cached") == []
    assert dag.phase("c") == READY
    assert take_all(dag) == ["c"]
    dag.finish("c", "success")
    assert dag.done and not dag.failed_required


def test_skipped_dependency_lets_dependants_run() -> None:
    dag = Dag([DagNode("a"), DagNode("b", ("a",))])
    take_all(dag)
    dag.finish("a", "skipped")
    assert take_all(dag) == ["b"]


def test_failure_cancels_every_transitive_dependant_once_naming_the_direct_upstream() -> None:
    # A diamond below the failure: d is reached through b and c but cancelled once.
    dag = Dag(
        [
            DagNode("a"),
            DagNode("b", ("a",)),
            DagNode("c", ("a",)),
            DagNode("d", ("b", "c")),
            DagNode("free"),
        ]
    )
    take_all(dag)
    cancelled = dag.finish("a", "failed")
    assert cancelled == [
        Cancelled("b", "upstream-failed: a failed"),
        Cancelled("c", "upstream-failed: a failed"),
        Cancelled("d", "upstream-failed: b cancelled"),
    ]
    assert [dag.phase(n) for n in "bcd"] == ["cancelled"] * 3
    assert dag.failed_required
    assert not dag.done  # "free" is still running
    dag.finish("free", "success")
    assert dag.done


def test_optional_failure_neither_fails_the_run_nor_cancels() -> None:
    dag = Dag([DagNode("opt", optional=True), DagNode("after", ("opt",))])
    take_all(dag)
    assert dag.finish("opt", "failed") == []
    assert not dag.failed_required
    assert take_all(dag) == ["after"]


def test_continue_on_error_fails_the_run_but_dependants_run() -> None:
    dag = Dag([DagNode("coe", continue_on_error=True), DagNode("after", ("coe",))])
    take_all(dag)
    assert dag.finish("coe", "failed") == []
    assert dag.failed_required
    assert take_all(dag) == ["after"]


def test_a_cancelled_continue_on_error_job_still_cancels_its_dependants() -> None:
    dag = Dag([DagNode("coe", continue_on_error=True), DagNode("after", ("coe",))])
    take_all(dag)
    assert dag.finish("coe", "cancelled") == [Cancelled("after", "upstream-failed: coe cancelled")]
    assert not dag.failed_required


def test_without_propagation_dependants_are_left_for_the_caller() -> None:
    dag = Dag([DagNode("a"), DagNode("b", ("a",))])
    take_all(dag)
    assert dag.finish("a", "cancelled", propagate=False) == []
    assert dag.unfinished() == ["b"]
    dag.finish("b", "cancelled", propagate=False)
    assert dag.done


def test_requeue_puts_an_active_node_back_and_refuses_others() -> None:
    dag = Dag([DagNode("a"), DagNode("b", ("a",))])
    assert dag.take() == "a"
    dag.requeue("a")  # a retry
    assert dag.take() == "a"
    with pytest.raises(ValueError, match="not active"):
        dag.requeue("b")


def test_a_node_ends_only_once_and_only_with_a_final_status() -> None:
    dag = Dag([DagNode("a")])
    dag.take()
    with pytest.raises(ValueError, match="not a final status"):
        dag.finish("a", "running")
    dag.finish("a", "success")
    with pytest.raises(ValueError, match="already ended"):
        dag.finish("a", "failed")


def test_unknown_and_duplicate_nodes_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown node"):
        Dag([DagNode("a", ("ghost",))])
    with pytest.raises(ValueError, match="duplicate"):
        Dag([DagNode("a"), DagNode("a")])


def test_repeated_dependency_counts_once() -> None:
    dag = Dag([DagNode("a"), DagNode("b", ("a", "a"))])
    take_all(dag)
    dag.finish("a", "success")
    assert take_all(dag) == ["b"]


def test_a_100000_node_chain_failure_propagates_without_recursion() -> None:
    n = 100_000
    assert n > sys.getrecursionlimit() * 10
    dag = Dag([DagNode("j0"), *(DagNode(f"j{i}", (f"j{i - 1}",)) for i in range(1, n))])
    assert take_all(dag) == ["j0"]
    cancelled = dag.finish("j0", "failed")
    assert len(cancelled) == n - 1
    assert cancelled[0] == Cancelled("j1", "upstream-failed: j0 failed")
    assert cancelled[-1] == Cancelled(f"j{n - 1}", f"upstream-failed: j{n - 2} cancelled")
    assert dag.done and dag.unfinished() == []


def test_a_100000_node_chain_of_successes_runs_in_order() -> None:
    n = 100_000
    dag = Dag([DagNode("j0"), *(DagNode(f"j{i}", (f"j{i - 1}",)) for i in range(1, n))])
    for i in range(n):
        assert dag.take() == f"j{i}"
        dag.finish(f"j{i}", "success")
    assert dag.done


def test_a_failure_handler_runs_only_when_its_job_failed() -> None:
    from sparkwing.engine.dag import ON_FAILURE

    dag = Dag(
        [
            DagNode("a"),
            DagNode("a.on_failure", ("a",), role=ON_FAILURE),
            DagNode("b"),
            DagNode("b.on_failure", ("b",), role=ON_FAILURE),
            DagNode("after-a", ("a",)),
        ]
    )
    assert take_all(dag) == ["a", "b"]
    assert dag.finish("a", "failed") == [Cancelled("after-a", "upstream-failed: a failed")]
    assert dag.phase("a.on_failure") == READY
    assert dag.finish("b", "success") == [
        Cancelled("b.on_failure", "b did not fail (success)", "skipped")
    ]
    assert take_all(dag) == ["a.on_failure"]
    dag.finish("a.on_failure", "success")
    assert dag.done and dag.failed_required


def test_finally_nodes_wait_for_every_other_node_whatever_its_outcome() -> None:
    from sparkwing.engine.dag import FINALLY

    dag = Dag([DagNode("a"), DagNode("b", ("a",)), DagNode("clean", role=FINALLY)])
    assert dag.phase("clean") == WAITING
    assert take_all(dag) == ["a"]
    dag.finish("a", "failed")  # cancels b: every other node is now final
    assert take_all(dag) == ["clean"]
    dag.finish("clean", "success")
    assert dag.done


def test_a_run_cancelled_as_a_whole_leaves_its_finally_nodes_to_run() -> None:
    from sparkwing.engine.dag import FINALLY

    dag = Dag([DagNode("a"), DagNode("b", ("a",)), DagNode("clean", role=FINALLY)])
    take_all(dag)
    assert dag.unfinished(keep_finally=True) == ["a", "b"]
    for node_id in dag.unfinished(keep_finally=True):
        dag.finish(node_id, "cancelled", propagate=False)
    assert take_all(dag) == ["clean"]


def test_reused_is_final_and_lets_dependants_run() -> None:
    dag = Dag([DagNode("a"), DagNode("b", ("a",))])
    take_all(dag)
    assert dag.finish("a", "reused") == []
    assert take_all(dag) == ["b"]


@pytest.mark.parametrize(
    ("nodes", "message"),
    [
        ([DagNode("a"), DagNode("f", ("a",), role="finally")], "cannot have deps"),
        ([DagNode("a"), DagNode("h", role="on_failure")], "exactly one dep"),
        (
            [DagNode("f", role="finally"), DagNode("b", ("f",))],
            "needs 'f', not a job",
        ),
    ],
)
def test_roles_are_checked(nodes: list[DagNode], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Dag(nodes)
