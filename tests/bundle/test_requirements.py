"""Where a pipeline's requirements come from, and how an installer failure is named."""

from __future__ import annotations

from pathlib import Path

import pytest

from sparkwing.bundle.installer import failing_requirement
from sparkwing.bundle.requirements import detect, requirement_lines
from sparkwing.errors import ConfigError


def test_requirement_lines_drop_comments_and_join_continuations() -> None:
    text = (
        "# tools for the pipeline\n"
        "six==1.16.0   # pinned\n"
        "\n"
        "idna==3.7 \\\n"
        "    --hash=sha256:abc\n"
        "-r more.txt\n"
    )
    assert requirement_lines(text) == ("six==1.16.0", "idna==3.7 --hash=sha256:abc", "-r more.txt")


def _present(folder: Path) -> dict[str, str]:
    return {p.name: "0" * 64 for p in folder.iterdir() if p.is_file()}


def test_lock_files_win_over_loose_requirements(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname="x"\ndependencies=["a>=1"]\n')
    assert detect(tmp_path, _present(tmp_path)).source == "pyproject.toml"
    (tmp_path / "requirements.txt").write_text("a>=1\nb\n")
    assert detect(tmp_path, _present(tmp_path)).lines == ("a>=1", "b")
    (tmp_path / "uv.lock").write_text("version = 1\n")
    assert detect(tmp_path, _present(tmp_path)).source == "uv.lock"
    (tmp_path / "pylock.toml").write_text(
        'lock-version = "1.0"\n'
        '[[packages]]\nname = "b"\nversion = "2.0"\n'
        '[[packages]]\nname = "a"\nversion = "1.5"\nmarker = "python_version >= \'3.8\'"\n'
    )
    pylock = detect(tmp_path, _present(tmp_path))
    assert (pylock.source, pylock.lines) == (
        "pylock.toml",
        ("a==1.5 ; python_version >= '3.8'", "b==2.0"),
    )
    (tmp_path / "requirements.lock").write_text("a==1.5\nb==2.0\n")
    assert detect(tmp_path, _present(tmp_path)).source == "requirements.lock"


def test_no_requirements(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    req = detect(tmp_path, _present(tmp_path))
    assert not req and req.describe() == "none"


def test_a_broken_pyproject_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[project\n")
    with pytest.raises(ConfigError, match=r"pyproject.toml: cannot read it"):
        detect(tmp_path, _present(tmp_path))
    (tmp_path / "pyproject.toml").write_text('[project]\ndependencies = "six"\n')
    with pytest.raises(ConfigError, match=r"dependencies must be a list of strings"):
        detect(tmp_path, _present(tmp_path))


@pytest.mark.parametrize(
    ("output", "name"),
    [
        (
            "ERROR: Could not find a version that satisfies the requirement nopkg==1.0 "
            "(from versions: none)\nERROR: No matching distribution found for nopkg==1.0\n",
            "nopkg==1.0",
        ),
        ("ERROR: Invalid requirement: 'six=1.0': Expected end or semicolon\n", "six=1.0"),
        (
            "  \u00d7 No solution found when resolving dependencies:\n"
            "  ╰─▶ Because nopkg was not found in the package registry and you require nopkg, "
            "we can conclude that your requirements are unsatisfiable.\n",
            "nopkg",
        ),
        (
            "  ╰─▶ Because there is no version of six==99.0 and you require six==99.0, "
            "we can conclude that your requirements are unsatisfiable.\n",
            "six==99.0",
        ),
        (
            "Collecting six==1.16.0\nCollecting brokenpkg==0.1\n  error: subprocess-exited\n",
            "brokenpkg==0.1",
        ),
        ("something else entirely\n", None),
    ],
)
def test_failing_requirement_is_named(output: str, name: str | None) -> None:
    assert failing_requirement(output) == name
