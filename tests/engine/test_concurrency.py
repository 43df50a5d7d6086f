"""Many `sparkwing run` processes against one SQLite state, starting on a fresh home."""

from __future__ import annotations

import json
import subprocess

from tests.engine.swtest import Proj

RUNS = 16
JOBS = 6


def test_sixteen_simultaneous_runs_on_a_fresh_database(proj: Proj) -> None:
    proj.pipeline(f"""
        @sw.pipeline("p")
        def plan(plan, args, rc):
            root = plan.job("root", "echo root")
            for i in range({JOBS - 2}):
                plan.job(f"mid{{i}}", lambda ctx: ctx.log.info("mid")).needs(root)
            plan.job("sink", "echo sink").needs([f"mid{{i}}" for i in range({JOBS - 2})])
    """)
    assert not proj.swhome.exists()
    procs = [proj.popen("run", "p", "-o", "json", stdin=subprocess.DEVNULL) for _ in range(RUNS)]
    results = [(p, *p.communicate(timeout=180)) for p in procs]
    for proc, _out, err in results:
        assert proc.returncode == 0, err
        assert "database is locked" not in err
    run_ids = {json.loads(out.strip().splitlines()[-1])["run"]["run_id"] for _, out, _ in results}
    assert len(run_ids) == RUNS
    db = proj.db()
    rows = db.execute("select run_id, status from runs").fetchall()
    assert {r[0] for r in rows} == run_ids
    assert {r[1] for r in rows} == {"success"}
    for run_id in run_ids:
        statuses = [r[0] for r in db.execute("select status from nodes where run_id=?", (run_id,))]
        assert statuses == ["success"] * JOBS
        seqs = [
            r[0]
            for r in db.execute("select seq from events where run_id=? order by seq", (run_id,))
        ]
        assert seqs == list(range(1, len(seqs) + 1))
        assert len(seqs) >= 2 + 2 * JOBS  # run start/finish + node start/finish each
    assert db.execute("pragma integrity_check").fetchone()[0] == "ok"
