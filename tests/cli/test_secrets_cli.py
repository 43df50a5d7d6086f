"""``sparkwing secrets set|get|list|delete`` through the real CLI and the default dotenv files."""

from __future__ import annotations

import stat
from pathlib import Path

from tests.conftest import Cli, ProjectFiles

VALUE = "s3cr3t-Value with spaces & $dollar"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_round_trip(cli: Cli) -> None:
    code, out, err = cli("secrets", "set", "API_TOKEN", VALUE)
    assert code == 0, err
    assert out.startswith("set API_TOKEN (masked) in dotenv secrets ")
    secrets_file = cli.config_dir / "secrets.env"
    assert _mode(secrets_file) == 0o600
    assert cli("secrets", "set", "REGION", "--plain", input="eu-west-1\n").code == 0
    assert _mode(cli.config_dir / "config.env") == 0o600
    piped = cli("secrets", "set", "PIPE", "--from-stdin", "-o", "json", input="two\nlines\n")
    assert piped.json() == {"name": "PIPE", "masked": True, "store": piped.json()["store"]}
    assert str(secrets_file) in piped.json()["store"]

    listed = cli("secrets", "list")
    assert listed.code == 0
    assert listed.stdout.split() == [
        "NAME",
        "KIND",
        "API_TOKEN",
        "masked",
        "PIPE",
        "masked",
        "REGION",
        "plain",
    ]
    as_json = cli("secrets", "list", "-o", "json")
    assert as_json.ndjson() == [
        {"name": "API_TOKEN", "masked": True},
        {"name": "PIPE", "masked": True},
        {"name": "REGION", "masked": False},
    ]
    for result in (listed, as_json):
        assert "s3cr3t" not in result.stdout and "eu-west" not in result.stdout

    assert cli("secrets", "get", "API_TOKEN").stdout == "***\n"
    assert cli("secrets", "get", "API_TOKEN", "--reveal").stdout == VALUE + "\n"
    assert cli("secrets", "get", "REGION").stdout == "eu-west-1\n"  # plain values show
    assert cli("secrets", "get", "PIPE", "--reveal", "-o", "json").json() == {
        "name": "PIPE",
        "masked": True,
        "value": "two\nlines",
    }

    code, out, _ = cli("secrets", "delete", "API_TOKEN")
    assert code == 0 and out.startswith("deleted API_TOKEN from ")
    assert "API_TOKEN" not in secrets_file.read_text()
    deleted = cli("secrets", "delete", "PIPE", "-o", "json").json()
    assert (deleted["name"], deleted["deleted"]) == ("PIPE", True)
    gone = cli("secrets", "get", "API_TOKEN")
    assert gone.code == 1 and gone.stderr.startswith("error: API_TOKEN is not defined in ")
    assert cli("secrets", "delete", "API_TOKEN").code == 1


def test_names_are_checked(cli: Cli) -> None:
    for name in ("1ABC", "A-B", "../x", "A B", ""):
        for args in (("set", name, "v"), ("get", name), ("delete", name)):
            code, _, err = cli("secrets", *args)
            assert code == 2, (name, args)
            assert err.startswith("error: secret name ") and err.count("\n") == 1
    assert not (cli.config_dir / "secrets.env").exists()
    both = cli("secrets", "set", "X", "v", "--from-stdin", input="w")
    assert both.code == 2 and "not both" in both.stderr


def test_secrets_follow_the_profile(cli: Cli, project: ProjectFiles, tmp_path: Path) -> None:
    team = tmp_path / "team.env"
    project.yaml(f"""
        profiles:
          team:
            secrets: {{type: filesystem, path: "{team}"}}
          ci:
            secrets: {{type: env, prefix: CI_SECRET_}}
        """)
    assert cli("secrets", "set", "TOKEN", "t", "--profile", "team").code == 0
    assert "TOKEN=t" in team.read_text() and _mode(team) == 0o600
    assert not (cli.config_dir / "secrets.env").exists()
    assert cli("secrets", "list", "--profile", "team", "-o", "json").ndjson() == [
        {"name": "TOKEN", "masked": True}
    ]
    assert cli("secrets", "list", "-o", "json").ndjson() == []

    from_env = cli(
        "secrets",
        "get",
        "TOKEN",
        "--profile",
        "ci",
        "--reveal",
        env={"CI_SECRET_TOKEN": "from-env"},
    )
    assert from_env.stdout == "from-env\n"
    read_only = cli("secrets", "set", "TOKEN", "x", "--profile", "ci")
    assert read_only.code == 2 and read_only.stderr.startswith("error: env secrets")
    unknown = cli("secrets", "list", "--profile", "nope")
    assert unknown.code == 2 and 'profile "nope" not found' in unknown.stderr


def test_set_prompts_without_echo_on_a_terminal(cli: Cli) -> None:
    """No VALUE and stdin a terminal: prompt, read the value with echo off."""
    import fcntl
    import os
    import subprocess
    import termios

    from tests.conftest import sparkwing_command

    master, slave = os.openpty()

    def own_terminal() -> None:  # the pty becomes the child's controlling terminal
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(
        [*sparkwing_command(), "secrets", "set", "TYPED"],
        cwd=cli.cwd,
        env=cli.env,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        preexec_fn=own_terminal,
    )
    os.close(slave)
    seen = b""
    try:
        while b"value for TYPED" not in seen:
            chunk = os.read(master, 1024)
            assert chunk, seen
            seen += chunk
        os.write(master, b"typed-secret\n")
        assert proc.wait(timeout=30) == 0
        while True:
            try:
                chunk = os.read(master, 1024)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert b"set TYPED (masked)" in seen
    assert b"typed-secret" not in seen  # never echoed
    assert cli("secrets", "get", "TYPED", "--reveal").stdout == "typed-secret\n"
