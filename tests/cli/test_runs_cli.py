"""``sparkwing runs list|status|get|logs|errors`` read through the real CLI against runs the
real engine recorded."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.cli.conftest import History, run_id_of, wait_for
from tests.conftest import Cli, ProjectFiles, sparkwing_command


def test_list_table_and_json(history: History) -> None:
    code, out, err = history.cli("runs", "list")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == [
        "RUN",
        "PIPELINE",
        "STATUS",
        "STARTED",
        "DURATION",
        "GIT",
        "TRIGGER",
    ]
    # Newest first.
    assert lines[1].split()[:3] == [history.bad, "bad", "failed"]
    assert lines[2].split()[:3] == [history.ok, "ok", "success"]

    docs = history.cli("runs", "list", "-o", "json").ndjson()
    assert [d["run_id"] for d in docs] == [history.bad, history.ok]
    assert docs[1]["status"] == "success" and docs[1]["pipeline"] == "ok"
    assert docs[1]["surfaces"]["logs"]["type"] == "filesystem"


def test_list_filters(history: History) -> None:
    def ids(*flags: str) -> list[str]:
        result = history.cli("runs", "list", "-o", "json", *flags)
        assert result.code == 0, result.stderr
        return [d["run_id"] for d in result.ndjson()]

    assert ids("--pipeline", "ok") == [history.ok]
    assert ids("--status", "failed") == [history.bad]
    assert ids("--limit", "1") == [history.bad]
    assert ids("--since", "1h") == [history.bad, history.ok]
    assert ids("--since", "2999-01-01") == []
    none = history.cli("runs", "list", "--since", "2999-01-01")
    assert none.code == 0 and "no runs match" in none.stdout

    bad = history.cli("runs", "list", "--since", "yesterday-ish")
    assert bad.code == 2 and bad.stderr.startswith("error: --since")


def test_list_without_runs_is_friendly(fresh: Cli) -> None:
    code, out, _ = fresh("runs", "list")
    assert code == 0
    assert out.strip() == "no runs yet; start one with `sparkwing run <pipeline>`"
    assert fresh("runs", "list", "-o", "json").stdout == ""
    code, _, err = fresh("runs", "status")
    assert code == 2 and err.startswith("error: no runs yet in ")


def test_status_table_and_json(history: History) -> None:
    code, out, err = history.cli("runs", "status")  # no id: the newest run
    assert code == 0, err
    assert f"run       {history.bad}" in out
    assert "status    failed: failed jobs: boom" in out
    assert "profile   local (built-in)" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines()[-3:]}
    assert rows["boom"][1:3] == ["failed", "1"]
    assert rows["after-boom"][1] == "cancelled"
    assert "upstream-failed" in " ".join(rows["after-boom"])
    assert rows["fine"][1] == "success"

    by_flag = history.cli("runs", "status", "--run", history.ok, "-o", "json").json()
    by_arg = history.cli("runs", "status", history.ok, "-o", "json").json()
    assert by_flag == by_arg
    assert set(by_flag) == {"run", "nodes"}
    assert by_flag["run"]["run_id"] == history.ok
    assert [n["node_id"] for n in by_flag["nodes"]] == ["greet", "after"]
    annotated = history.cli("runs", "status", history.ok).stdout
    assert "annotations:\n  greet: greeted 30 times" in annotated


def test_get_has_record_plan_nodes_and_outputs(history: History) -> None:
    doc = history.cli("runs", "get", "--run", history.ok, "-o", "json").json()
    assert doc["run"]["run_id"] == history.ok
    assert [j["id"] for j in doc["plan"]["jobs"]] == ["greet", "after"]
    assert doc["plan"]["jobs"][1]["needs"] == ["greet"]
    outputs = {n["node_id"]: n["output"] for n in doc["nodes"]}
    assert outputs == {"greet": {"lines": 30}, "after": 42}
    assert "events" not in doc
    with_events = history.cli("runs", "get", history.ok, "--events", "-o", "json").json()
    assert with_events["events"][-1]["kind"] == "run_finished"

    code, out, _ = history.cli("runs", "get", history.ok)
    assert code == 0
    assert "after needs greet" in out and "output: 42" in out


def test_logs_whole_run_and_one_job(history: History) -> None:
    code, out, err = history.cli("runs", "logs", history.ok)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "greet | line 1"
    assert lines[29] == "greet | line 30"
    assert lines[-1] == "after | upstream said {'lines': 30}"

    only = history.cli("runs", "logs", "--run", history.ok, "--job", "greet").stdout.splitlines()
    assert only == [f"line {i}" for i in range(1, 31)]


def test_logs_filters(history: History) -> None:
    def lines(*flags: str) -> list[str]:
        result = history.cli("runs", "logs", history.ok, "--node", "greet", *flags)
        assert result.code == 0, result.stderr
        return result.stdout.splitlines()

    assert lines("--tail", "3") == ["line 28", "line 29", "line 30"]
    assert lines("--head", "2") == ["line 1", "line 2"]
    assert lines("--grep-re", r"line 1\d$") == [f"line {i}" for i in range(10, 20)]
    assert lines("--grep", r"line 1\d$") == []  # --grep is plain text
    assert lines("--grep", "line 3") == ["line 3", "line 30"]
    assert lines("--grep", "line 2", "--tail", "2") == ["line 28", "line 29"]
    assert lines("--since", "2999-01-01") == []

    docs = history.cli("runs", "logs", history.ok, "--tail", "1", "-o", "json").ndjson()
    assert [(d["node"], d["msg"]) for d in docs] == [
        ("greet", "line 30"),
        ("after", "upstream said {'lines': 30}"),
    ]
    assert all(d["ts"] and d["stream"] for d in docs)

    bad = history.cli("runs", "logs", history.ok, "--grep-re", "(")
    assert bad.code == 2 and bad.stderr.startswith("error: invalid grep pattern")
    missing = history.cli("runs", "logs", history.ok, "--job", "nope")
    assert missing.code == 2
    assert missing.stderr.strip() == (
        f'error: job "nope" not found in run {history.ok} (jobs: greet, after)'
    )


def test_errors_report(history: History) -> None:
    code, out, err = history.cli("runs", "errors")
    assert code == 0, err
    assert out.startswith(f"run {history.bad} (bad) failed: failed jobs: boom")
    assert "boom: failed" in out
    assert "error: command failed with exit code 3" in out
    assert "    | about to fail" in out
    assert "after-boom: cancelled" in out and "fine" not in out

    doc = history.cli("runs", "errors", history.bad, "-o", "json").json()
    assert doc["run_id"] == history.bad and doc["reason"] == "failed jobs: boom"
    nodes = {n["node_id"]: n for n in doc["nodes"]}
    assert set(nodes) == {"boom", "after-boom"}
    assert nodes["boom"]["log_tail"][-1] == "about to fail"
    assert nodes["after-boom"]["log_tail"] is None
    assert nodes["after-boom"]["reason"].startswith("upstream-failed")

    clean = history.cli("runs", "errors", history.ok)
    assert clean.code == 0 and "no failed or cancelled jobs" in clean.stdout


def test_unknown_and_invalid_run_ids(history: History) -> None:
    state = history.cli.sparkwing_home / "state.db"
    for command in ("status", "get", "logs", "errors", "cancel"):
        code, out, err = history.cli("runs", command, "run-20000101-000000-zzzz")
        assert code == 2, command
        assert err == f'error: run "run-20000101-000000-zzzz" not found in sqlite:{state}\n'
        assert out == ""
    for bad in ("../etc", "a/b", "x\x01y"):
        code, _, err = history.cli("runs", "status", "--run", bad)
        assert code == 2
        assert err.startswith("error: run id") and err.count("\n") == 1
        assert "Traceback" not in err
    both = history.cli("runs", "status", history.ok, "--run", history.bad)
    assert both.code == 2 and "two different runs" in both.stderr


def test_logs_are_read_where_the_run_wrote_them(
    project: ProjectFiles, cli: Cli, tmp_path: Path
) -> None:
    """A run under a profile whose logs path uses ${RUN_ID}: `runs logs` without that
    profile still finds them through the run record."""
    elsewhere = tmp_path / "elsewhere"
    project.yaml(f"""
        profiles:
          scattered:
            logs: {{type: filesystem, path: "{elsewhere}/${{PIPELINE_NAME}}/${{RUN_ID}}"}}
        """)
    project.write(
        "p.py",
        """
        import sparkwing as sw

        @sw.pipeline("echo")
        def echo(plan, args, rc):
            plan.job("say", "echo from elsewhere")
        """,
    )
    result = cli("run", "echo", "--profile", "scattered", "-o", "json")
    assert result.code == 0, result.stderr
    run_id = run_id_of(result)
    assert (elsewhere / "echo" / run_id).is_dir()
    assert not (cli.sparkwing_home / "logs" / run_id).exists()
    code, out, err = cli("runs", "logs", run_id)
    assert code == 0, err
    assert out.splitlines() == ["say | $ echo from elsewhere", "say | from elsewhere"]


def test_stdout_logs_cannot_be_read_back(project: ProjectFiles, cli: Cli) -> None:
    project.yaml("""
        defaults: {profile: loud}
        profiles:
          loud:
            logs: {type: stdout}
        """)
    project.write(
        "p.py",
        """
        import sparkwing as sw

        @sw.pipeline("hi")
        def hi(plan, args, rc):
            plan.job("say", "echo hi")
        """,
    )
    assert cli("run", "hi", "-o", "quiet").code == 0
    code, _, err = cli("runs", "logs")
    assert code == 2
    assert err.startswith("error: logs backend type=stdout does not support reading logs")
    assert err.count("\n") == 1
    # `runs errors` still reports what the state knows.
    assert cli("runs", "errors").code == 0


def test_follow_prints_until_the_run_ends_including_later_jobs(fresh: Cli) -> None:
    run = subprocess.Popen(
        [*sparkwing_command(), "run", "ticker", "-o", "quiet"],
        cwd=fresh.cwd,
        env=fresh.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # Follows the newest run: wait until it exists so we follow this one.
        wait_for(lambda: fresh("runs", "list", "-o", "json").ndjson(), "the ticker run")
        result = fresh("runs", "logs", "-f", timeout=60)
    finally:
        assert run.wait(timeout=60) == 0, run.stderr.read() if run.stderr else ""
    assert result.code == 0, result.stderr
    # Jobs are prefixed (padded to the widest id); lines of one job keep their order.
    pairs = [
        tuple(part.strip() for part in line.split(" | ", 1)) for line in result.stdout.splitlines()
    ]
    assert [msg for job, msg in pairs if job == "tick" and not msg.startswith("$")] == [
        f"tick {i}" for i in range(1, 5)
    ]
    assert pairs[-1] == ("later", "done-later")
    assert fresh("runs", "status", "-o", "json").json()["run"]["status"] == "success"
