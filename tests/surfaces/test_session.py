"""The ``Surfaces`` session: a profile's surfaces opened on first use, closed together on
every path (real sqlite state, filesystem cache and logs, dotenv secrets)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sparkwing.conf.resolved import ResolvedProfile
from sparkwing.errors import ConfigError, StorageError
from sparkwing.surfaces.session import Surfaces
from sparkwing.surfaces.spec import SurfaceSpec


def _profile(tmp_path: Path) -> ResolvedProfile:
    return ResolvedProfile(
        "test",
        "flag",
        state=SurfaceSpec("sqlite", path=str(tmp_path / "state.db")),
        cache=SurfaceSpec("filesystem", path=str(tmp_path / "cache")),
        logs=SurfaceSpec("filesystem", path=str(tmp_path / "logs" / "${RUN_ID}")),
        secrets=SurfaceSpec("dotenv", path=str(tmp_path / "secrets.env")),
    )


def test_only_what_is_used_is_opened_and_all_of_it_is_closed(tmp_path: Path) -> None:
    with Surfaces.of_profile(_profile(tmp_path), run_id="20260101-000000-abcd") as surfaces:
        assert surfaces.state.list_runs(limit=1).runs == []
        assert not (tmp_path / "logs").exists()  # logs never asked for, never opened
        assert surfaces.spec("logs").path == str(tmp_path / "logs" / "20260101-000000-abcd")
        assert surfaces.where("state") == f"sqlite:{tmp_path / 'state.db'}"
        state = surfaces.state
        assert surfaces.state is state  # opened once
    with pytest.raises(StorageError, match="is closed"):
        state.list_runs(limit=1)


def test_surfaces_are_closed_when_the_block_fails(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="boom"), Surfaces.of_profile(_profile(tmp_path)) as s:
        state = s.state
        raise RuntimeError("boom")
    with pytest.raises(StorageError, match="is closed"):
        state.list_runs(limit=1)


def test_a_variable_without_a_value_fails_only_the_surface_using_it(tmp_path: Path) -> None:
    with Surfaces.of_profile(_profile(tmp_path)) as surfaces:
        surfaces.state.list_runs(limit=1)
        with pytest.raises(ConfigError):
            surfaces.logs  # noqa: B018 - ${RUN_ID} has no value outside a run


def test_a_surface_the_session_was_not_given_is_a_clear_error() -> None:
    with Surfaces({}) as surfaces, pytest.raises(ConfigError, match="no cache surface"):
        surfaces.cache  # noqa: B018


def test_one_surface_can_be_closed_early(tmp_path: Path) -> None:
    with Surfaces.of_profile(_profile(tmp_path)) as surfaces:
        state = surfaces.state
        surfaces.close_one("state")
        with pytest.raises(StorageError, match="is closed"):
            state.list_runs(limit=1)
        assert surfaces.state is not state  # asked again: opened again
        assert surfaces.state.list_runs(limit=1).runs == []
        surfaces.close_one("cache")  # never opened: nothing to do
