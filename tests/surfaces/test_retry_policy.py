"""The shared retry policy: backoff growth and cap, jitter bounds, the time budget, which
failures are retried, and the immediate first retry postgres relies on."""

from __future__ import annotations

import pytest

from sparkwing.retry import RetryPolicy


class Clock:
    """A fake clock advanced only by the policy's sleeps, so budgets are exact."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def __call__(self) -> float:
        return self.now


class Flaky(Exception):
    pass


def transient(exc: BaseException) -> bool:
    return isinstance(exc, Flaky)


def failing(times: int, result: str = "ok"):  # type: ignore[no-untyped-def]
    calls: list[int] = []

    def fn(attempt: int) -> str:
        calls.append(attempt)
        if len(calls) <= times:
            raise Flaky(f"failure {len(calls)}")
        return result

    return fn, calls


def test_pauses_double_up_to_the_maximum() -> None:
    policy = RetryPolicy(deadline=100, initial=0.1, maximum=0.5)
    assert [policy.pause(n) for n in range(1, 6)] == pytest.approx([0.1, 0.2, 0.4, 0.5, 0.5])


def test_immediate_retries_do_not_pause() -> None:
    policy = RetryPolicy(deadline=100, initial=0.01, maximum=1, immediate=1, transient=transient)
    clock = Clock()
    fn, calls = failing(3)
    assert policy.call(fn, sleep=clock.sleep, clock=clock) == "ok"
    assert calls == [0, 1, 2, 3]
    # No pause before the first retry, then 0.01 and 0.02 with jitter in [p/2, p].
    assert len(clock.sleeps) == 2
    assert 0.005 <= clock.sleeps[0] <= 0.01
    assert 0.01 <= clock.sleeps[1] <= 0.02


def test_jitter_stays_within_half_to_full_pause() -> None:
    policy = RetryPolicy(deadline=1000, initial=1, maximum=1, transient=transient)
    clock = Clock()
    fn, _ = failing(50)
    policy.call(fn, sleep=clock.sleep, clock=clock)
    assert all(0.5 <= s <= 1 for s in clock.sleeps)
    assert len(set(clock.sleeps)) > 1  # actually jittered, not a fixed pause


def test_gives_up_with_the_last_failure_once_the_budget_is_spent() -> None:
    policy = RetryPolicy(deadline=1.0, initial=0.2, maximum=0.2, transient=transient)
    clock = Clock()
    fn, calls = failing(1000)
    with pytest.raises(Flaky) as info:
        policy.call(fn, sleep=clock.sleep, clock=clock)
    # It never sleeps past the deadline, and raises what the last attempt raised.
    assert clock.now <= 1.0
    assert str(info.value) == f"failure {len(calls)}"
    assert len(calls) >= 5


def test_a_zero_budget_still_makes_one_attempt() -> None:
    policy = RetryPolicy(deadline=0, initial=0.1, maximum=1, transient=transient)
    fn, calls = failing(5)
    with pytest.raises(Flaky):
        policy.call(fn, sleep=Clock().sleep)
    assert calls == [0]


def test_other_failures_are_raised_at_once() -> None:
    policy = RetryPolicy(deadline=100, initial=0.1, maximum=1, transient=transient)
    calls: list[int] = []

    def fn(attempt: int) -> None:
        calls.append(attempt)
        raise ValueError("not transient")

    with pytest.raises(ValueError):
        policy.call(fn, sleep=Clock().sleep)
    assert calls == [0]


def test_attempts_cap_the_number_of_tries() -> None:
    policy = RetryPolicy(deadline=100, initial=0.01, maximum=0.01, attempts=3, transient=transient)
    fn, calls = failing(10)
    with pytest.raises(Flaky):
        policy.call(fn, sleep=Clock().sleep)
    assert calls == [0, 1, 2]


def test_on_retry_sees_each_failure_before_the_next_attempt() -> None:
    policy = RetryPolicy(deadline=100, initial=0.01, maximum=0.01, transient=transient)
    seen: list[tuple[str, int]] = []
    fn, _ = failing(2)
    policy.call(fn, on_retry=lambda exc, n: seen.append((str(exc), n)), sleep=Clock().sleep)
    assert seen == [("failure 1", 1), ("failure 2", 2)]


def test_run_and_pauses_for_loops_that_signal_failure_themselves() -> None:
    policy = RetryPolicy(deadline=0.35, initial=0.1, maximum=0.1)
    clock = Clock()
    tries = list(policy.pauses(sleep=clock.sleep, clock=clock))
    # 0.1 nominal pauses fit three times into 0.35 s of budget (jitter only shortens them).
    assert tries[:4] == [0, 1, 2, 3]
    assert clock.now <= 0.35
    assert RetryPolicy(deadline=1, initial=0.1, maximum=0.1).run(lambda: 7) == 7
