"""The one retry policy every backend and client uses: a time budget, exponential backoff
with jitter between attempts, and a predicate saying which failures are worth another try."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import TypeVar

T = TypeVar("T")


def _never(_exc: BaseException) -> bool:
    return False


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts go on while ``transient(exc)`` says the failure may pass and the next pause
    still ends within ``deadline`` seconds of the first attempt (``attempts``, when set, caps
    their number as well). Pauses start at ``initial``, grow by ``multiplier`` up to
    ``maximum``, and are drawn from ``[pause / 2, pause]`` so peers that failed together do
    not retry in lockstep. The first ``immediate`` retries do not pause at all."""

    deadline: float
    initial: float
    maximum: float
    multiplier: float = 2.0
    attempts: int | None = None
    immediate: int = 0
    transient: Callable[[BaseException], bool] = _never

    def with_deadline(self, deadline: float) -> RetryPolicy:
        return replace(self, deadline=deadline)

    def pause(self, failures: int) -> float:
        """The nominal pause (before jitter) after ``failures`` consecutive failures (>= 1)."""
        step = max(0, failures - 1 - self.immediate)
        return min(self.initial * self.multiplier**step, self.maximum)

    def pauses(
        self,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> Iterator[int]:
        """Attempt numbers (0, 1, ...), sleeping the jittered pause before each retry; ends
        when the budget is spent. The caller stops iterating once an attempt succeeds."""
        end = clock() + self.deadline
        failures = 0
        while True:
            yield failures
            failures += 1
            if self.attempts is not None and failures >= self.attempts:
                return
            if failures <= self.immediate:
                continue
            pause = self.pause(failures)
            if clock() + pause > end:
                return
            import random  # only once something is retried

            sleep(random.uniform(pause / 2, pause))

    def call(
        self,
        fn: Callable[[int], T],
        *,
        on_retry: Callable[[BaseException, int], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> T:
        """``fn(attempt)`` until it returns; a transient failure is retried (after
        ``on_retry(exc, failures)``) while the budget lasts, then, like any other, raised."""
        last: Exception | None = None
        for attempt in self.pauses(sleep=sleep, clock=clock):
            try:
                return fn(attempt)
            except Exception as exc:
                if not self.transient(exc):
                    raise
                last = exc
                if on_retry is not None:
                    on_retry(exc, attempt + 1)
        assert last is not None  # pauses() always yields a first attempt
        raise last

    def run(self, fn: Callable[[], T]) -> T:
        """``fn()`` under this policy (see :meth:`call`)."""
        return self.call(lambda _attempt: fn())
