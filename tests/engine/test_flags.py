"""The one scraper of engine flags among a run's arguments (``sparkwing run``, ``runs submit``
and a queued run's start all use it)."""

from __future__ import annotations

from typing import Any

import pytest

from sparkwing.engine.flags import (
    PROFILE_FLAG,
    RUN_FLAGS,
    by_spelling,
    defaults,
    take_flags,
)
from sparkwing.errors import UsageError

FLAGS = by_spelling([PROFILE_FLAG, *RUN_FLAGS])


def test_engine_flags_come_out_and_inputs_stay_in_order() -> None:
    options: dict[str, Any] = {**defaults(RUN_FLAGS), "pause_before": ("a",)}
    rest = take_flags(
        [
            "--env",
            "prod",
            "--sw-parallel=3",
            "-o",
            "json",
            "--sw-pause-before",
            "b",
            "--dry-run",
            "--sw-pause-on-failure",
            "--profile",
            "ci",
        ],
        FLAGS,
        options,
    )
    assert rest == ["--env", "prod", "--dry-run"]
    assert options["parallel"] == 3 and options["output"] == "json"
    assert options["pause_before"] == ("a", "b")  # a repeatable flag adds to earlier values
    assert options["pause_on_failure"] is True and options["no_bundle_cache"] is False
    assert options["profile"] == "ci"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--sw-bogus"],
            "unknown engine flag --sw-bogus (engine flags: --sw-dispatch, --sw-label,",
        ),
        (["--sw-parallel"], "option --sw-parallel requires a value"),
        (["--sw-parallel", "0"], "--sw-parallel: 0 is less than 1"),
        (["--sw-parallel", "many"], "--sw-parallel: 'many' is not a whole number"),
        (["-o", "yaml"], "--output: 'yaml' is not one of auto, plain, json, quiet"),
    ],
)
def test_bad_engine_flags_are_usage_errors(args: list[str], message: str) -> None:
    with pytest.raises(UsageError) as caught:
        take_flags(args, FLAGS, defaults(RUN_FLAGS))
    assert str(caught.value).startswith(message)


def test_only_the_flags_asked_for_are_taken() -> None:
    options: dict[str, Any] = {"profile": None}
    rest = take_flags(
        ["--sw-parallel", "2", "--profile=ci", "--x"],
        by_spelling([PROFILE_FLAG]),
        options,
        reserved=None,
    )
    assert (rest, options) == (["--sw-parallel", "2", "--x"], {"profile": "ci"})
