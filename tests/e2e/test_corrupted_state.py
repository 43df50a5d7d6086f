"""A corrupted state database is one clear error naming it (exit 2) for `run` and `runs list`,
never a traceback and never a run left behind half-recorded; `doctor` reports it as a failed
check (exit 1)."""

from __future__ import annotations

from tests.conftest import Cli, ProjectFiles


def test_a_corrupted_state_database_is_one_error_line(project: ProjectFiles, cli: Cli) -> None:
    project.write(
        "hi.py",
        'import sparkwing as sw\nsw.pipeline("hi")(lambda p, a, r: p.job("x", "echo hi"))\n',
    )
    assert cli("run", "hi", "-o", "quiet").code == 0
    db = cli.sparkwing_home / "state.db"
    with db.open("r+b") as fh:  # overwrite pages after the header: "malformed"
        fh.seek(4096)
        fh.write(b"\xde\xad" * 2048)
    for args in (("run", "hi"), ("runs", "list")):
        code, out, err = cli(*args)
        assert code == 2, (args, out, err)
        assert err.startswith("error: ") and err.count("\n") == 1, (args, err)
        assert str(db) in err and "Traceback" not in out + err
    code, out, _ = cli("doctor")
    assert code == 1
    assert any(line.startswith("FAIL  state") and str(db) in line for line in out.splitlines())
