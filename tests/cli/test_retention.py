"""Retention through the CLI on the built-in local profile: ``defaults.retention`` in the
project file (checked strictly, in the JSON Schema too), applied by ``runs prune`` without
flags and by ``doctor --fix``, and a prune interrupted halfway finished by ``doctor --fix``."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from sparkwing.engine.prunejournal import journal_dir
from sparkwing.engine.pruner import Pruner
from sparkwing.engine.retention import Policy
from sparkwing.surfaces.cache.base import BLOB_PREFIX, MANIFEST_PREFIX
from sparkwing.surfaces.logs.base import LogStore
from sparkwing.surfaces.open import open_cache, open_logs
from sparkwing.surfaces.spec import SurfaceSpec
from sparkwing.surfaces.state.base import RunRecord
from sparkwing.surfaces.state.sqlite import SqliteState
from tests.conftest import Cli, ProjectFiles

PIPELINES = """
import os
from pathlib import Path

import sparkwing as sw


def make(ctx):
    Path("out").mkdir(exist_ok=True)
    Path("out/uniq.txt").write_text(f"only in run {os.environ['UNIQ']}\\n")
    print(f"made {os.environ['UNIQ']}")


@sw.pipeline("art")
def art(plan, args, rc):
    plan.job("make", make).outputs("out/**")
"""


def _run(cli: Cli, uniq: str) -> str:
    result = cli("run", "art", "-o", "json", env={"UNIQ": uniq})
    assert result.code == 0, result.stderr
    run_id = str(json.loads(result.stdout)["run"]["run_id"])
    while time.strftime("%Y%m%d-%H%M%S", time.gmtime()) <= run_id[4:19]:
        time.sleep(0.05)  # the next run starts in a later second, so "newest" is defined
    return run_id


def _run_ids(cli: Cli) -> list[str]:
    result = cli("runs", "list", "-o", "json")
    assert result.code == 0, result.stderr
    return [json.loads(line)["run_id"] for line in result.stdout.splitlines() if line.strip()]


@pytest.fixture
def art(project: ProjectFiles, cli: Cli) -> Cli:
    project.write("pipelines.py", PIPELINES)
    return cli


def test_defaults_retention_is_applied_by_prune_and_doctor_fix(
    art: Cli, project: ProjectFiles
) -> None:
    project.yaml("defaults:\n  retention: {max_age: 90d, keep_last: 1}\n")
    first, second = _run(art, "one"), _run(art, "two")
    # Young runs: 90 days have not passed, nothing goes.
    result = art("runs", "prune", "-o", "json")
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout)["runs"] == []
    project.yaml("defaults:\n  retention: {keep_last: 1}\n")
    checked = art("doctor", "-o", "json")
    assert checked.code == 0, checked.stdout
    (line,) = [c for c in json.loads(checked.stdout)["checks"] if c["check"] == "history"]
    assert "keeping the last 1" in line["detail"] and "--fix" in line["detail"]
    assert _run_ids(art) == [second, first]  # doctor without --fix changes nothing
    fixed = art("doctor", "--fix", "-o", "json")
    assert fixed.code == 0, fixed.stdout
    (line,) = [c for c in json.loads(fixed.stdout)["checks"] if c["check"] == "history"]
    assert line["status"] == "ok" and "pruned 1 run(s)" in line["detail"]
    assert _run_ids(art) == [second]


def test_an_interrupted_prune_is_finished_by_doctor_fix(
    art: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = _run(art, "one"), _run(art, "two")
    home = art.sparkwing_home
    monkeypatch.setenv("SPARKWING_HOME", str(home))
    state = SqliteState(home / "state.db")
    cache = open_cache(SurfaceSpec(type="filesystem", path=str(home / "cache")))
    logs = open_logs(SurfaceSpec(type="filesystem", path=str(home / "logs")))
    manifest = next(n.artifacts for n in state.list_nodes(first) if n.artifacts)
    assert manifest is not None

    def crash(run: RunRecord) -> LogStore:
        raise KeyboardInterrupt  # the process dies between a run's state and its logs

    pruner = Pruner(state, cache, crash)
    with pytest.raises(KeyboardInterrupt):
        pruner.prune(Policy(keep_last=1))
    # Halfway: the run record went first, so no reader finds a run whose logs are gone.
    assert state.get_run(first) is None
    assert logs.nodes(first) == ["make"]
    assert cache.has(MANIFEST_PREFIX + manifest)
    assert len(list(journal_dir().glob("*.json"))) == 1
    state.close()

    warned = art("doctor", "-o", "json")
    (line,) = [c for c in json.loads(warned.stdout)["checks"] if c["check"] == "history"]
    assert line["status"] == "warn" and "stopped halfway" in line["detail"]

    fixed = art("doctor", "--fix", "-o", "json")
    assert fixed.code == 0, fixed.stdout
    (line,) = [c for c in json.loads(fixed.stdout)["checks"] if c["check"] == "history"]
    assert "1 interrupted prune(s) finished" in line["detail"]
    assert logs.nodes(first) == []
    assert not cache.has(MANIFEST_PREFIX + manifest)
    assert not list(journal_dir().glob("*.json"))
    # The kept run and its artifacts are whole.
    assert _run_ids(art) == [second]
    assert len([i for i in cache.list(BLOB_PREFIX)]) == 1
    assert logs.nodes(second) == ["make"]


@pytest.mark.parametrize(
    ("retention", "message"),
    [
        ("{max_age: soon}", "defaults.retention.max_age: expected a duration"),
        ("{keep_last: many}", "defaults.retention.keep_last must be a whole number"),
        ("{keep_last: -2}", "defaults.retention.keep_last must be a whole number"),
        ("{max_age: 0s}", "defaults.retention.max_age must be longer than 0s"),
        ("{keep: 3}", 'unknown key "keep" in defaults.retention'),
        ("{interval: 1h}", "defaults.retention needs max_age, keep_last or both"),
    ],
)
def test_bad_retention_config_is_one_clear_line(
    art: Cli, project: ProjectFiles, retention: str, message: str
) -> None:
    project.yaml(f"defaults:\n  retention: {retention}\n")
    result = art("runs", "prune")
    assert result.code == 2, result.stderr
    assert message in result.stderr and "sparkwing.yaml:2" in result.stderr
    assert "Traceback" not in result.stderr


def test_retention_in_the_json_schema() -> None:
    import jsonschema

    from sparkwing.conf.schema import project_schema, shipped_path

    schema = project_schema()
    assert json.loads(Path(shipped_path("project")).read_text()) == schema
    good = {"defaults": {"retention": {"max_age": "90d", "keep_last": 50, "interval": "1h"}}}
    jsonschema.validate(good, schema)
    for bad in ({"keep": 1}, {"keep_last": -1}, {"interval": "1h"}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({"defaults": {"retention": bad}}, schema)
