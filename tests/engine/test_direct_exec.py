"""Simple commands are executed directly (one exec, as make does); anything the shell would
interpret still goes through /bin/sh, and a job behaves the same either way."""

from __future__ import annotations

import os
import select
import shutil
from pathlib import Path

import pytest

from sparkwing.engine.jobproc import ShellLaunch, direct_argv, spawn_shell

ENV = {"PATH": os.environ.get("PATH", os.defpath)}


def test_a_simple_command_is_executed_without_a_shell() -> None:
    assert direct_argv("true", ENV) == [shutil.which("true")]
    assert direct_argv("  echo hello   world ", ENV) == [shutil.which("echo"), "hello", "world"]


@pytest.mark.parametrize(
    "command",
    [
        "echo $HOME",  # expansion
        "echo a > f",  # redirection
        "true && false",  # lists
        "ls *.py",  # globs
        "echo 'quoted'",  # quoting
        "FOO=1 env",  # an assignment
        "cd /tmp",  # a builtin no program replaces
        "exit 3",
        "echo a\\tb",  # backslashes (dash's echo reads them)
        "no-such-program-anywhere",  # the shell says "not found", exit 127
        "",
        "echo ~",
        "a | b",
        "echo one\necho two",
        "./build.sh",  # relative to the job's folder: the shell finds it there
        "/bin/echo hi",
    ],
)
def test_anything_the_shell_would_interpret_goes_through_it(command: str) -> None:
    assert direct_argv(command, ENV) is None


def _run(command: str, tmp: str) -> tuple[int, str, str]:
    proc, out_fd, err_fd = spawn_shell(
        ShellLaunch("j", command, dict(ENV), tmp), os.open(os.devnull, os.O_RDONLY)
    )
    chunks: dict[int, bytes] = {out_fd: b"", err_fd: b""}
    open_fds = [out_fd, err_fd]
    while open_fds:
        ready, _, _ = select.select(open_fds, [], [], 10)
        assert ready, "the command did not finish"
        for fd in ready:
            data = os.read(fd, 65536)
            if data:
                chunks[fd] += data
            else:
                open_fds.remove(fd)
                os.close(fd)
    return proc.wait(), chunks[out_fd].decode(), chunks[err_fd].decode()


def test_both_ways_give_the_same_output_and_exit_codes(tmp_path: os.PathLike[str]) -> None:
    tmp = str(tmp_path)
    assert _run("echo hello world", tmp) == (0, "hello world\n", "")
    assert _run("sh -c 'echo x; exit 4'", tmp)[0] == 4  # via the shell (quotes)
    assert _run("false", tmp)[0] == 1
    code, _, err = _run("no-such-program-anywhere", tmp)
    assert code == 127 and "not found" in err
    assert _run("pwd", tmp)[1].strip() in (tmp, os.path.realpath(tmp))


def test_a_program_without_a_shebang_still_runs_through_the_shell(
    tmp_path: os.PathLike[str],
) -> None:
    bin_dir = os.path.join(str(tmp_path), "bin")
    os.mkdir(bin_dir)
    script = os.path.join(bin_dir, "noshebang-tool")
    with open(script, "w") as f:
        f.write("echo from the script\n")
    os.chmod(script, 0o755)
    env = {"PATH": bin_dir + os.pathsep + ENV["PATH"]}
    assert direct_argv("noshebang-tool", env) == [script]  # it is on PATH, yet not executable
    proc, out_fd, err_fd = spawn_shell(
        ShellLaunch("j", "noshebang-tool", env, str(tmp_path)), os.open(os.devnull, os.O_RDONLY)
    )
    assert proc.wait() == 0
    assert os.read(out_fd, 1000) == b"from the script\n"
    os.close(out_fd)
    os.close(err_fd)


def test_the_path_lookup_finds_what_shutil_which_finds(tmp_path: Path) -> None:
    from sparkwing.engine.jobproc import _on_path

    first, second = tmp_path / "first", tmp_path / "second"
    for folder in (first, second):
        folder.mkdir()
    (first / "tool").write_text("#!/bin/sh\n")  # not executable: skipped
    (second / "tool").write_text("#!/bin/sh\n")
    (second / "tool").chmod(0o755)
    (first / "dir-tool").mkdir(mode=0o755)  # a folder is no program
    path = os.pathsep.join([str(first), str(second), os.environ.get("PATH", "")])
    for name in ("tool", "dir-tool", "sh", "true", "no-such-program-here"):
        assert _on_path(name, path) == shutil.which(name, path=path), name
    assert _on_path("tool", path) == str(second / "tool")
