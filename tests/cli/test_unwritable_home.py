"""A HOME or SPARKWING_HOME that cannot be written is one ``error:`` line naming the path
(exit 2), never a traceback. Tests run as root, where a chmod does not stop writes, so the
locations used cannot be created by anyone: a path under a regular file, or under /proc."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Cli, ProjectFiles

COMMANDS = [("run", "hi"), ("runs", "list"), ("secrets", "set", "API_TOKEN", "s3cr3t-value")]


@pytest.fixture
def blocked(project: ProjectFiles, cli: Cli, tmp_path: Path) -> Path:
    """A regular file: every path below it fails with "Not a directory"."""
    project.write("pipes.py", 'import sparkwing as sw\nsw.pipeline("hi")(lambda p, a, r: None)\n')
    path = tmp_path / "a-file"
    path.write_text("not a folder\n")
    return path


def _assert_one_line_error(cli: Cli, args: tuple[str, ...], env: dict[str, str], path: str) -> None:
    code, out, err = cli(*args, env=env, timeout=60)
    assert (code, out) == (2, ""), f"{args}: {code} {out!r} {err!r}"
    assert err.startswith("error: ") and err.count("\n") == 1, f"{args}: {err!r}"
    assert path in err, f"{args}: {err!r}"
    assert "Traceback" not in err


@pytest.mark.parametrize("args", COMMANDS, ids=[" ".join(a[:2]) for a in COMMANDS])
def test_sparkwing_home_and_config_under_a_file(
    cli: Cli, blocked: Path, args: tuple[str, ...]
) -> None:
    env = {
        "SPARKWING_HOME": str(blocked / "sparkwing"),
        "XDG_CONFIG_HOME": str(blocked / "config"),
    }
    _assert_one_line_error(cli, args, env, str(blocked))


@pytest.mark.parametrize("args", COMMANDS, ids=[" ".join(a[:2]) for a in COMMANDS])
def test_home_that_cannot_be_created(cli: Cli, blocked: Path, args: tuple[str, ...]) -> None:
    # SPARKWING_HOME and XDG_CONFIG_HOME empty (unset): everything goes under HOME, which
    # /proc refuses to create.
    env = {"HOME": "/proc/sparkwing-test-home", "SPARKWING_HOME": "", "XDG_CONFIG_HOME": ""}
    _assert_one_line_error(cli, args, env, "/proc/sparkwing-test-home")
