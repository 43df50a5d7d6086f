"""A job cannot forge, overwrite or recolour another job's line on a terminal: control
characters in its output are shown escaped by ``sparkwing run`` (plain and live), ``runs
logs``, ``runs errors`` and ``runs status``, while the stored log keeps the bytes as printed."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess

from tests.engine.swtest import SPARKWING, Proj

# Carriage return + a fake prefix, erase-line + cursor-up, a colour rich itself never
# uses, a backspace, the C1 CSI and a NUL: each could rewrite what a terminal shows.
FORGERY = "\rother-job | forged\x1b[2K\x1b[1A\x1b[38;5;99mpurple\x08\x9b2J\x00end"
ESCAPED = "\\rother-job | forged\\x1b[2K\\x1b[1A\\x1b[38;5;99mpurple\\x08\\x9b2J\\x00end"
RAW_PARTS = ["\rother-job", "\x1b[38;5;99m", "\x08", "\x9b", "\x00"]

PIPELINE = f"""
import sys

FORGERY = {FORGERY!r}

def forge(ctx):
    print("before" + FORGERY)
    print("multi\\nother-job | fake line")
    ctx.log.info("multi-log\\nother-job | fake log")
    ctx.log.warn("warned" + FORGERY)
    ctx.annotate("noted" + FORGERY)
    raise RuntimeError("failed" + FORGERY)

@sw.pipeline("p")
def plan(plan, args, rc):
    plan.job("forge", forge)
    plan.job("other-job", "echo honest")
"""


def _assert_safe(text: str) -> None:
    assert [part for part in RAW_PARTS if part in text] == []
    # The text is still there to read, escaped, after the job's own prefix.
    assert f"before{ESCAPED}" in text
    # A newline in a message starts a line that is prefixed like any other.
    assert not [line for line in text.splitlines() if line.startswith("other-job | f")]


def test_plain_output_logs_and_errors_show_control_characters_escaped(proj: Proj) -> None:
    proj.pipeline(PIPELINE)
    run = proj.sw("run", "p", "-o", "plain")
    assert run.code == 1, run.err
    _assert_safe(run.out)
    assert f"forge     * noted{ESCAPED}" in run.out
    assert "forge     | other-job | fake line" in run.out
    assert "forge     | other-job | fake log" in run.out

    logs = proj.sw("runs", "logs")
    assert logs.code == 0, logs.err
    _assert_safe(logs.out)
    assert f"forge     | warned{ESCAPED}" in logs.out

    errors = proj.sw("runs", "errors")
    assert errors.code == 0, errors.err
    _assert_safe(errors.out)
    assert f"failed{ESCAPED}" in errors.out

    status = proj.sw("runs", "status")
    assert status.code == 0, status.err
    assert [part for part in RAW_PARTS if part in status.out] == []
    assert f"  forge: noted{ESCAPED}" in status.out

    # The stored log keeps what the job printed: JSON output gives it back unchanged.
    stored = proj.sw("runs", "logs", "--job", "forge", "-o", "json")
    messages = [json.loads(line)["msg"] for line in stored.out.splitlines()]
    assert "before" + FORGERY in messages


def test_live_terminal_display_shows_control_characters_escaped(proj: Proj) -> None:
    proj.pipeline(PIPELINE)
    leader, follower = pty.openpty()
    env = {**proj.env, "TERM": "xterm", "COLUMNS": "400"}
    env.pop("NO_COLOR")
    proc = subprocess.Popen(
        [SPARKWING, "run", "p"],
        cwd=proj.root,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=follower,
    )
    os.close(follower)
    chunks = []
    try:
        while True:
            ready, _, _ = select.select([leader], [], [], 60)
            assert ready, "no output from sparkwing run for 60 s"
            try:
                data = os.read(leader, 65536)
            except OSError:  # the terminal closed: the CLI has exited
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(leader)
        code = proc.wait(timeout=60)
    assert code == 1
    shown = b"".join(chunks).decode(errors="replace")
    # The live display itself moves the cursor, so only the job's own sequences are checked.
    assert "\rother-job" not in shown and "\x1b[38;5;99m" not in shown
    assert "\x9b" not in shown and "\x00" not in shown
    assert ESCAPED in shown
