"""Cron arithmetic: the tick due at a moment, the next one, time zones across a DST change,
and what a scheduler fires given the last tick fired (catch-up after an outage)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sparkwing.conf.triggers import Schedule
from sparkwing.triggers.ticks import due, latest_tick, next_tick, parse_tick, tick_key

EVERY_5 = Schedule("*/5 * * * *")
GRACE = timedelta(minutes=1)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def test_a_tick_exactly_now_is_due_and_a_fraction_early_is_not() -> None:
    assert latest_tick(EVERY_5, at("2026-03-02T09:05:00+00:00")) == at("2026-03-02T09:05:00+00:00")
    early = at("2026-03-02T09:04:59.999+00:00")
    assert latest_tick(EVERY_5, early) == at("2026-03-02T09:00:00+00:00")
    assert next_tick(EVERY_5, at("2026-03-02T09:05:00+00:00")) == at("2026-03-02T09:10:00+00:00")


def test_time_zones_and_daylight_saving() -> None:
    paris = Schedule("0 3 * * 1-5", "Europe/Paris")
    # Winter: 03:00 Paris is 02:00 UTC; summer (after 29 March 2026): 01:00 UTC.
    assert next_tick(paris, at("2026-03-02T00:00:00+00:00")) == at("2026-03-02T02:00:00+00:00")
    assert next_tick(paris, at("2026-03-30T00:00:00+00:00")) == at("2026-03-30T01:00:00+00:00")
    # Friday 03:00 is followed by Monday's (1-5 is Monday to Friday).
    assert next_tick(paris, at("2026-03-06T03:00:00+00:00")) == at("2026-03-09T02:00:00+00:00")


def test_tick_keys_round_trip_and_sort() -> None:
    moment = at("2026-03-02T09:05:00+01:00")
    assert tick_key(moment) == "2026-03-02T08:05:00Z"
    assert parse_tick(tick_key(moment)) == moment
    assert tick_key(at("2026-03-02T09:05:00+00:00")) < tick_key(at("2026-03-02T10:00:00+00:00"))


def test_a_new_schedule_fires_only_a_fresh_tick() -> None:
    got = due(EVERY_5, None, at("2026-03-02T09:05:20+00:00"), GRACE)
    assert got is not None and (got.key, got.skipped, got.catch_up) == (
        "2026-03-02T09:05:00Z",
        0,
        False,
    )
    # Added long after its last tick (03:00, now noon): it waits for the next one.
    assert due(Schedule("0 3 * * *"), None, at("2026-03-02T12:00:00+00:00"), GRACE) is None


def test_a_fired_tick_is_not_due_again() -> None:
    now = at("2026-03-02T09:07:00+00:00")
    assert due(EVERY_5, "2026-03-02T09:05:00Z", now, GRACE) is None


def test_the_next_tick_on_time() -> None:
    got = due(EVERY_5, "2026-03-02T09:00:00Z", at("2026-03-02T09:05:03+00:00"), GRACE)
    assert got is not None and (got.key, got.skipped, got.catch_up) == (
        "2026-03-02T09:05:00Z",
        0,
        False,
    )


@pytest.mark.parametrize(
    ("now", "skipped"),
    [
        ("2026-03-02T09:15:00+00:00", 2),  # 09:05 and 09:10 missed; 09:15 on time
        ("2026-03-02T09:17:30+00:00", 2),  # 09:05, 09:10 missed, 09:15 late
        ("2026-03-02T11:00:30+00:00", 23),
    ],
)
def test_an_outage_fires_one_catch_up_tick(now: str, skipped: int) -> None:
    got = due(EVERY_5, "2026-03-02T09:00:00Z", at(now), GRACE)
    assert got is not None
    assert got.tick == latest_tick(EVERY_5, at(now))
    assert (got.skipped, got.catch_up) == (skipped, True)


def test_a_late_tick_without_skips_is_a_catch_up() -> None:
    got = due(EVERY_5, "2026-03-02T09:00:00Z", at("2026-03-02T09:08:00+00:00"), GRACE)
    assert got is not None and (got.key, got.skipped, got.catch_up) == (
        "2026-03-02T09:05:00Z",
        0,
        True,
    )
