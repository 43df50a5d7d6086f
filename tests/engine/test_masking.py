"""Secrets never reach a log, a state record or a cache object in clear text."""

from __future__ import annotations

import base64
import json
import urllib.parse
from pathlib import Path

from sparkwing.engine.masking import MIN_DERIVED_LENGTH, Masker, encoded_forms
from sparkwing.surfaces.secrets.dotenv import quote_value
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


# A quote, a backslash and non-ASCII: json.dumps escapes all three, so the printed form
# differs from the value (with and without ensure_ascii).
ODD = 'pa"ss\\w\u00f6rd-\u00df-Zq81-\u20ac'


def _forms(secret: str) -> list[str]:
    """Every form of ``secret`` the scan looks for, derived independently of the masker."""
    raw = secret.encode()
    forms = [
        secret,
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        urllib.parse.quote(secret),
        urllib.parse.quote(secret, safe=""),
        urllib.parse.quote_plus(secret),
        raw.hex(),
        raw.hex().upper(),
    ]
    for offset in range(3):
        # The characters of each alignment's encoding that do not depend on the neighbours.
        for prefix in (b"a" * offset, b"\xff" * offset):
            for encode in (base64.b64encode, base64.urlsafe_b64encode):
                enc = encode(prefix + raw).decode()
                forms.append(enc[-(-offset * 8 // 6) : (offset + len(raw)) * 8 // 6])
    return sorted(set(forms))


def test_encoded_forms_of_a_secret_are_masked_everywhere(proj: Proj) -> None:
    proj.secrets(f"ODD={quote_value(ODD)}\n")
    proj.pipeline("""
        import base64, json, sys, urllib.parse

        def leak(ctx):
            s = sw.secret("ODD")
            raw = s.encode()
            print(json.dumps(s))
            print(json.dumps({"token": s}, ensure_ascii=False))
            quote = urllib.parse.quote
            print("url", quote(s), urllib.parse.quote_plus(s), "q=" + quote(s, safe=""))
            print("hex", raw.hex(), raw.hex().upper(), file=sys.stderr)
            for prefix in (b"", b"a", b"ab", b"\\xff\\xfe"):
                for suffix in (b"", b"z", b"zz"):
                    print("b64", base64.b64encode(prefix + raw + suffix).decode())
                    print("b64url", base64.urlsafe_b64encode(prefix + raw + suffix).decode())
            ctx.sh("printf '%s\\n' " + "'" + base64.b64encode(b"xy" + raw).decode() + "'")
            ctx.annotate("note " + json.dumps(s))
            return {"json": json.dumps(s), "hex": raw.hex(), "b64": base64.b64encode(raw).decode()}

        def memo(ctx):
            return {"quoted": urllib.parse.quote_plus(sw.secret("ODD"))}

        def fail(ctx):
            raise RuntimeError("bad " + json.dumps(sw.secret("ODD")))

        @sw.pipeline("p")
        def plan(plan, args, rc):
            plan.job("leak", leak)
            plan.job("memo", memo).memoize(lambda ctx: "k")
            plan.job("fail", fail)
    """)
    run = proj.sw("run", "p")
    assert run.code == 1, run.err
    assert "leak" in run.out and "***" in run.out
    code, doc = proj.run_json("p")
    assert code == 1
    nodes = proj.nodes(doc)
    output = nodes["leak"]["output"]
    assert (output["json"], output["hex"]) == ('"***"', "***")
    assert output["b64"].startswith("***")
    assert nodes["memo"]["status"] in ("success", "cached")
    assert "***" in nodes["fail"]["error"]
    logs = proj.sw("runs", "logs", "--run", doc["run"]["run_id"])
    assert logs.code == 0, logs.err
    assert logs.out.count("***") >= 30
    forms = _forms(ODD)
    shown = "\n".join([run.out, run.err, logs.out, logs.err, json.dumps(doc, ensure_ascii=False)])
    assert [f for f in forms if f in shown] == []
    # Every byte under SPARKWING_HOME: state database (with WAL), cache objects, logs.
    assert _scan(proj.swhome, forms) == []


def test_short_encoded_forms_are_not_masked() -> None:
    # A 3-character secret is masked itself, but its hex and base64 forms are shorter than
    # MIN_DERIVED_LENGTH and would match ordinary output, so they are left alone.
    masker = Masker(["k9z"])
    assert masker.text("k9z 6b397a") == "*** 6b397a"
    assert all(len(f) >= MIN_DERIVED_LENGTH for f in encoded_forms("k9z-long-value"))
    assert masker.text("ab") == "ab"
