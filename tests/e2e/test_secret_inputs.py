"""Secret pipeline inputs (``sw.SecretStr``, or a field marked secret) through the real CLI:
shown as secret by ``run P --help`` and ``pipeline describe``, handed to the job as given,
and nowhere in clear (nor base64 or hex) under the state, logs or cache; ``runs submit``
takes one only as a reference to a profile secret, which a worker then looks up."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from tests.conftest import Cli, ProjectFiles

PIPELINE = '''
import base64
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import sparkwing as sw


@dataclass
class Args:
    token: sw.SecretStr
    """The deploy token."""
    password: str = field(default="", metadata={"secret": True, "help": "database password"})
    region: str = "eu"


def deploy(ctx):
    token = ctx.args.token
    saw = {
        "token": token.get(),
        "password": ctx.args.password,
        "shown": str(token),
        "repr": repr(token),
        "fstring": f"{token}",
    }
    Path(os.environ["OUT"]).write_text(json.dumps(saw))
    print(f"token is {token}")
    print("raw", token.get(), "and", ctx.args.password)
    print("b64", base64.b64encode(token.get().encode()).decode())
    ctx.log.info(f"hex {token.get().encode().hex()}")
    return {"echo": token.get()}


@sw.pipeline("deploy")
def pipe(plan, args: Args, rc):
    plan.job("deploy", deploy)
    plan.job("shell", f"echo shell sees {args.token.get()} in {args.region}")
'''

TOKEN = "tok-Zq8v1Lw0Xr5c"
PASSWORD = "pw-Mh3nT7bQ2sKe"
REF_TOKEN = "ref-Jd4kP9gV6yUa"


def _forms(value: str) -> list[bytes]:
    raw = value.encode()
    return [raw, base64.b64encode(raw), raw.hex().encode(), raw.hex().upper().encode()]


def _leaks(folder: Path, *values: str) -> list[str]:
    """Files under ``folder`` holding any of ``values`` in clear, base64 or hex."""
    found = []
    for path in folder.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            found += [f"{path}: {f!r}" for v in values for f in _forms(v) if f in data]
    return found


@pytest.fixture
def sw(project: ProjectFiles, cli: Cli, tmp_path: Path) -> Cli:
    project.write("deploy.py", PIPELINE)
    cli.env["OUT"] = str(tmp_path / "job-saw.json")
    return cli


def test_help_and_describe_show_secret_inputs(sw: Cli) -> None:
    helped = sw("run", "deploy", "--help")
    assert helped.code == 0, helped.stderr
    lines = {
        line.split()[0]: line for line in helped.stdout.splitlines() if line.startswith("  --")
    }
    assert "(secret" in lines["--token"] and "secret:NAME" in lines["--token"]
    assert "The deploy token." in lines["--token"]
    assert "(secret" in lines["--password"] and "(secret" not in lines["--region"]
    described = sw("pipeline", "describe", "deploy", "-o", "json")
    assert described.code == 0, described.stderr
    inputs = {i["name"]: i for i in json.loads(described.stdout)["inputs"]}
    assert inputs["token"]["secret"] is True and inputs["token"]["type"] == "str"
    assert inputs["password"]["secret"] is True and inputs["region"]["secret"] is False
    text = sw("pipeline", "describe", "deploy")
    assert "str (secret)" in text.stdout


def test_a_secret_input_reaches_the_job_and_is_nowhere_in_clear(sw: Cli, tmp_path: Path) -> None:
    result = sw("run", "deploy", "--token", TOKEN, "--password", PASSWORD, "-o", "json")
    assert result.code == 0, result.stderr
    saw = json.loads(Path(sw.env["OUT"]).read_text())
    assert saw == {
        "token": TOKEN,
        "password": PASSWORD,
        "shown": "***",
        "repr": "SecretStr('***')",
        "fstring": "***",
    }
    assert not [v for v in (TOKEN, PASSWORD) if v in result.stdout + result.stderr]
    run = json.loads(result.stdout)["run"]
    assert run["args"] == {"token": "***", "password": "***", "region": "eu"}
    logs = sw("runs", "logs", "--run", run["run_id"])
    assert logs.code == 0, logs.stderr
    assert "token is ***" in logs.stdout and "raw *** and ***" in logs.stdout
    assert "b64 ***" in logs.stdout and "shell sees *** in eu" in logs.stdout
    got = sw("runs", "get", "--run", run["run_id"], "--events", "-o", "json")
    assert TOKEN not in got.stdout and PASSWORD not in got.stdout
    assert _leaks(sw.sparkwing_home, TOKEN, PASSWORD) == []
    # The search does look where the run wrote: the state, its logs and its cache.
    assert (sw.sparkwing_home / "state.db").is_file()
    assert any("logs" in hit for hit in _leaks(sw.sparkwing_home, "shell sees *** in eu"))
    assert any("state.db" in hit for hit in _leaks(sw.sparkwing_home, '"region":"eu"'))
    # A retry cannot reuse a value that was never recorded: it asks for it again.
    retried = sw("runs", "retry", "--run", run["run_id"])
    assert retried.code == 2 and "missing required input --token" in retried.stderr


def test_a_secret_reference_is_looked_up_and_recorded_as_the_reference(sw: Cli) -> None:
    sw.write_secrets({"DEPLOY_TOKEN": REF_TOKEN})
    result = sw("run", "deploy", "--token", "secret:DEPLOY_TOKEN", "-o", "json")
    assert result.code == 0, result.stderr
    assert json.loads(Path(sw.env["OUT"]).read_text())["token"] == REF_TOKEN
    assert json.loads(result.stdout)["run"]["args"]["token"] == "secret:DEPLOY_TOKEN"
    assert _leaks(sw.sparkwing_home, REF_TOKEN) == []
    Path(sw.env["OUT"]).unlink()
    retried = sw("runs", "retry", "--run", json.loads(result.stdout)["run"]["run_id"])
    assert retried.code == 0, retried.stderr  # the reference is recorded, so it is looked up
    assert json.loads(Path(sw.env["OUT"]).read_text())["token"] == REF_TOKEN
    missing = sw("run", "deploy", "--token", "secret:NOPE")
    assert missing.code == 2 and 'secret "NOPE" is not defined' in missing.stderr


def test_submit_refuses_a_secret_value_and_queues_a_reference(sw: Cli) -> None:
    refused = sw("runs", "submit", "deploy", "--token", TOKEN)
    assert refused.code == 2, refused.stderr
    assert "--token is secret" in refused.stderr and "secret:NAME" in refused.stderr
    refused = sw("runs", "submit", "deploy", f"--password={PASSWORD}", "--token", "secret:X")
    assert refused.code == 2 and "--password is secret" in refused.stderr
    assert sw("runs", "list", "-o", "json").stdout.strip() == ""
    assert _leaks(sw.sparkwing_home, TOKEN, PASSWORD) == []

    sw.write_secrets({"DEPLOY_TOKEN": REF_TOKEN})
    queued = sw("runs", "submit", "-o", "json", "deploy", "--token", "secret:DEPLOY_TOKEN")
    assert queued.code == 0, queued.stderr
    assert json.loads(queued.stdout)["spec"]["args"] == ["--token", "secret:DEPLOY_TOKEN"]
    worked = sw("worker", "--once", "--poll", "0.2s")
    assert worked.code == 0, worked.stderr
    assert json.loads(Path(sw.env["OUT"]).read_text())["token"] == REF_TOKEN
    (run,) = [json.loads(x) for x in sw("runs", "list", "-o", "json").stdout.splitlines()]
    assert run["status"] == "success" and run["args"]["token"] == "secret:DEPLOY_TOKEN"
    assert _leaks(sw.sparkwing_home, REF_TOKEN) == []
