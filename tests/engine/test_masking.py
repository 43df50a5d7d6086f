"""Secrets never reach a log, a state record or a cache object in clear text."""

from __future__ import annotations

from pathlib import Path

from tests.engine.swtest import Proj

SECRET = "hunter2-Zq81-secret"
LINE1 = "first-half-QW7e"
LINE2 = "second-half-ZZ3x"


def _scan(root: Path, needles: list[str]) -> list[str]:
    found = []
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for needle in needles:
                if needle.encode() in data:
                    found.append(f"{needle} in {path}")
    return found


def test_secret_values_are_masked_everywhere(proj: Proj) -> None:
    proj.secrets(f'API_TOKEN={SECRET}\nPEM="{LINE1}\\n{LINE2}"\n')
    proj.pipeline("""
        import sys

        def leak(ctx):
            token = sw.secret("API_TOKEN")
            pem = sw.secret("PEM")
            print(token)
            print(f"Authorization: Bearer{token}trailing")
            print(pem)
            print("halves", pem.splitlines()[0], "and", pem.splitlines()[1])
            print("stderr", token, file=sys.stderr)
            ctx.sh(f"echo shell {token}; echo err-{token} >&2")
            ctx.log.warn("warn " + token)
            ctx.annotate("annotation " + token)
            return {"token": token, "nested": [f"x{token}x"], token: "as key"}

        def fail(ctx):
            token = sw.secret("API_TOKEN")
            raise RuntimeError(f"failed with {token}")

        def failsh(ctx):
            sw.secret("API_TOKEN")
            ctx.sh("echo " + sw.secret("API_TOKEN") + "; exit 3")

        @sw.pipeline("p")
        def plan(plan, args, rc):
            plan.job("leak", leak)
            plan.job("fail", fail).retry(1, backoff=0)
            plan.job("failsh", failsh)
    """)
    code, doc = proj.run_json("p")
    assert code == 1
    nodes = proj.nodes(doc)
    assert nodes["leak"]["status"] == "success"
    assert nodes["leak"]["output"]["token"] == "***"
    assert "***" in nodes["fail"]["error"]
    logs = proj.sw("runs", "logs", "--run", doc["run"]["run_id"])
    assert logs.code == 0, logs.err
    assert "Bearer***trailing" in logs.out
    assert SECRET not in logs.out and LINE1 not in logs.out and LINE2 not in logs.out
    # Every byte the run wrote: state database (with WAL), cache, logs.
    assert _scan(proj.swhome, [SECRET, LINE1, LINE2]) == []
    assert not any(SECRET in s for s in (logs.err, str(doc)))


def test_secret_inside_plan_is_refused(proj: Proj) -> None:
    proj.secrets(f"API_TOKEN={SECRET}\n")
    proj.pipeline("""
        @sw.pipeline("p")
        def plan(plan, args, rc):
            sw.secret("API_TOKEN")
            plan.job("a", "true")
    """)
    res = proj.sw("run", "p")
    assert res.code == 2
    assert res.err.strip() == (
        'error: sparkwing.secret() cannot be called inside plan() of pipeline "p": plan() '
        "must be pure; call it inside a job"
    )
    assert "Traceback" not in res.err


def test_missing_secret_fails_the_job_with_its_name(proj: Proj) -> None:
    proj.pipeline("""
        @sw.pipeline("p")
        def plan(plan, args, rc):
            plan.job("a", lambda ctx: sw.secret("NOPE"))
            plan.job("b", lambda ctx: sw.config("REGION", "eu-west-1"))
    """)
    code, doc = proj.run_json("p")
    nodes = proj.nodes(doc)
    assert code == 1
    assert 'secret "NOPE" is not defined' in nodes["a"]["error"]
    assert nodes["b"]["output"] == "eu-west-1"
