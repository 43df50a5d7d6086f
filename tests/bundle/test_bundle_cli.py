"""Pipeline bundles end to end through `sparkwing run`: two SPARKWING_HOMEs stand in for two
machines sharing one filesystem cache surface; the installer records every call, so a test
can prove that a machine fetching a bundle installs nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sparkwing.bundle.archive import HEADER_SIZE, verify
from tests.bundle.conftest import installer_calls
from tests.conftest import Cli, ProjectFiles

DEPS_PIPELINE = """
import sparkwing as sw


def report(ctx):
    import six

    print(f"six {six.__version__} from {six.__file__}")
    # Commands the job starts see the bundle's packages too.
    child = ctx.sh("python3 -c 'import six; print(six.__file__)'").capture()
    return {"six": six.__version__, "file": six.__file__, "child_file": child}


@sw.pipeline("deps")
def deps(plan, args, rc):
    plan.job("report", report)
"""

PLAIN_PIPELINES = """
import sparkwing as sw


@sw.pipeline("alpha")
def alpha(plan, args, rc):
    plan.job("a", "echo alpha")


@sw.pipeline("beta")
def beta(plan, args, rc):
    plan.job("b", "echo beta")
"""


def machine(project: ProjectFiles, base: Path, cache: str) -> Cli:
    """A CLI with its own HOME and SPARKWING_HOME whose user profile ``shared`` puts the cache
    surface at ``cache`` (state and logs stay this machine's own)."""
    cli = Cli(project.root, base)
    cli.config_dir.mkdir(parents=True, exist_ok=True)
    (cli.config_dir / "profiles.yaml").write_text(f"profiles:\n  shared:\n    cache: {cache}\n")
    return cli


def run(cli: Cli, env: dict[str, str], *args: str, pipeline: str = "deps") -> dict[str, Any]:
    result = cli("run", pipeline, "--profile", "shared", "-o", "json", *args, env=env)
    assert result.code == 0, result.stderr
    doc: dict[str, Any] = result.json()
    doc["stderr"] = result.stderr
    return doc


def bundle_of(doc: dict[str, Any]) -> dict[str, str]:
    bundle: dict[str, str] = doc["run"]["extra"]["bundle"]
    return bundle


@pytest.fixture
def deps_project(project: ProjectFiles) -> ProjectFiles:
    project.write("deps.py", DEPS_PIPELINE)
    # Not the version installed beside sparkwing (1.17): the bundle's own must win.
    project.write("requirements.txt", "six==1.16.0\n")
    return project


def test_a_second_machine_fetches_the_bundle_and_installs_nothing(
    deps_project: ProjectFiles, tmp_path: Path, recording_installer: dict[str, str]
) -> None:
    shared = tmp_path / "shared-cache"
    spec = f'{{type: filesystem, path: "{shared}"}}'
    m1 = machine(deps_project, tmp_path / "m1", spec)
    m2 = machine(deps_project, tmp_path / "m2", spec)
    env = recording_installer

    first = run(m1, env)
    built = bundle_of(first)
    assert built["source"] == "built"
    assert len(installer_calls(env)) == 1 and "--target" in installer_calls(env)[0]
    output = first["nodes"][0]["output"]
    assert output["six"] == "1.16.0"
    assert output["file"].startswith(str(m1.sparkwing_home / "bundles" / "trees"))
    assert output["child_file"] == output["file"]
    uploaded = shared / "bin" / built["key"]
    assert verify(uploaded) == built["digest"]

    second = run(m2, env)
    assert bundle_of(second) == {**built, "source": "remote"}
    assert len(installer_calls(env)) == 1  # fetched: no installer ran on the second machine
    assert second["nodes"][0]["output"]["six"] == "1.16.0"
    assert second["nodes"][0]["output"]["file"].startswith(str(m2.sparkwing_home))
    record = m2("runs", "get", "-o", "json")
    assert record.code == 0, record.stderr
    assert record.json()["run"]["extra"]["bundle"] == bundle_of(second)

    third = run(m2, env)
    assert bundle_of(third) == {**built, "source": "local"}
    assert len(installer_calls(env)) == 1

    # A truncated bundle in the local cache is refused; the shared copy replaces it.
    local = m1.sparkwing_home / "bundles" / "objects" / f"{built['key']}.swb"
    local.write_bytes(local.read_bytes()[:-100])
    fourth = run(m1, env)
    assert (
        f"warning: bundle {built['key']} from the local bundle cache failed verification "
        "(truncated:" in fourth["stderr"]
    )
    assert f"using the copy from filesystem:{shared}" in fourth["stderr"]
    assert bundle_of(fourth) == {**built, "source": "remote"}
    assert len(installer_calls(env)) == 1

    # --sw-no-bundle-cache rebuilds (and installs) whatever the caches hold.
    forced = run(m2, env, "--sw-no-bundle-cache")
    assert bundle_of(forced)["source"] == "built"
    assert bundle_of(forced)["key"] == built["key"]
    assert len(installer_calls(env)) == 2


def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[HEADER_SIZE + (len(data) - HEADER_SIZE) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def test_a_corrupt_shared_bundle_is_refused_rebuilt_and_uploaded_again(
    deps_project: ProjectFiles, tmp_path: Path, recording_installer: dict[str, str]
) -> None:
    shared = tmp_path / "shared-cache"
    spec = f'{{type: filesystem, path: "{shared}"}}'
    m1 = machine(deps_project, tmp_path / "m1", spec)
    m2 = machine(deps_project, tmp_path / "m2", spec)
    env = recording_installer
    key = bundle_of(run(m1, env))["key"]
    remote = shared / "bin" / key
    _flip_a_byte(remote)

    second = run(m2, env)
    assert (
        f"warning: bundle {key} from filesystem:{shared} failed verification (hash mismatch"
        in second["stderr"]
    )
    assert "; rebuilding" in second["stderr"]
    rebuilt = bundle_of(second)
    assert rebuilt["source"] == "built" and rebuilt["key"] == key
    assert len(installer_calls(env)) == 2
    assert second["nodes"][0]["status"] == "success"
    assert second["nodes"][0]["output"]["six"] == "1.16.0"
    # Uploaded again, whole: a third machine gets it without installing.
    assert verify(remote) == rebuilt["digest"]
    m3 = machine(deps_project, tmp_path / "m3", spec)
    assert bundle_of(run(m3, env))["source"] == "remote"
    assert len(installer_calls(env)) == 2


def test_a_truncated_shared_bundle_is_refused_too(
    project: ProjectFiles, tmp_path: Path, recording_installer: dict[str, str]
) -> None:
    project.write("pipelines.py", PLAIN_PIPELINES)
    shared = tmp_path / "shared-cache"
    spec = f'{{type: filesystem, path: "{shared}"}}'
    env = recording_installer
    key = bundle_of(run(machine(project, tmp_path / "m1", spec), env, pipeline="alpha"))["key"]
    remote = shared / "bin" / key
    remote.write_bytes(remote.read_bytes()[: remote.stat().st_size // 2])
    second = run(machine(project, tmp_path / "m2", spec), env, pipeline="alpha")
    assert (
        f"warning: bundle {key} from filesystem:{shared} failed verification (truncated:"
        in second["stderr"]
    )
    assert bundle_of(second)["source"] == "built"
    assert verify(remote) == bundle_of(second)["digest"]


def test_cache_binaries_prefix_keeps_each_pipelines_bundles_apart(
    project: ProjectFiles, tmp_path: Path, recording_installer: dict[str, str]
) -> None:
    project.write("pipelines.py", PLAIN_PIPELINES)
    main, bins = tmp_path / "main-cache", tmp_path / "binaries"
    spec = (
        f'{{type: filesystem, path: "{main}", '
        f'binaries: {{type: filesystem, path: "{bins}", prefix: "${{PIPELINE_NAME}}/"}}}}'
    )
    m1 = machine(project, tmp_path / "m1", spec)
    alpha = bundle_of(run(m1, recording_installer, pipeline="alpha"))
    beta = bundle_of(run(m1, recording_installer, pipeline="beta"))
    assert alpha["source"] == "built" and beta["source"] == "local"
    key = alpha["key"]
    assert beta["key"] == key  # one project, one bundle: stored under each pipeline's prefix
    assert sorted(p.name for p in bins.iterdir()) == ["alpha", "beta"]
    for name in ("alpha", "beta"):
        assert [p.name for p in (bins / name / "bin").iterdir()] == [key]
        assert verify(bins / name / "bin" / key) == alpha["digest"]
    assert not (main / "bin").exists()
    # Another machine finds it under the pipeline's own prefix.
    m2 = machine(project, tmp_path / "m2", spec)
    assert bundle_of(run(m2, recording_installer, pipeline="beta"))["source"] == "remote"
    assert installer_calls(recording_installer) == []


def test_a_requirement_that_does_not_exist_is_one_clear_error(
    project: ProjectFiles, tmp_path: Path, recording_installer: dict[str, str]
) -> None:
    project.write("deps.py", DEPS_PIPELINE)
    project.write("requirements.txt", "six==1.16.0\nsparkwing-no-such-package-xyz==1.0\n")
    shared = tmp_path / "shared-cache"
    m1 = machine(project, tmp_path / "m1", f'{{type: filesystem, path: "{shared}"}}')
    env = {**recording_installer, "SPARKWING_INSTALLER": "pip"}
    result = m1("run", "deps", "--profile", "shared", env=env)
    assert result.code == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert 'requirement "sparkwing-no-such-package-xyz==1.0"' in errors[0]
    assert "requirements.txt" in errors[0]
    assert installer_calls(env) == []  # SPARKWING_INSTALLER=pip: the real pip, not `uv`
    # Nothing half-built is kept or shared, and no run was recorded.
    assert not (shared / "bin").exists()
    assert not list((m1.sparkwing_home / "bundles" / "objects").glob("*.swb"))
    listed = m1("runs", "list", "-o", "json")
    assert listed.code == 0 and listed.stdout.strip() == ""


def test_cache_commands_explain_list_and_prune(
    project: ProjectFiles, tmp_path: Path, recording_installer: dict[str, str]
) -> None:
    project.write("pipelines.py", PLAIN_PIPELINES)
    shared = tmp_path / "shared-cache"
    m1 = machine(project, tmp_path / "m1", f'{{type: filesystem, path: "{shared}"}}')
    env = recording_installer
    key = bundle_of(run(m1, env, pipeline="alpha"))["key"]
    run(m1, env, pipeline="alpha")

    info = m1("cache", "info", "-o", "json")
    assert info.code == 0, info.stderr
    doc = info.json()
    assert doc["count"] == 1
    entry = doc["entries"][0]
    assert (entry["key"], entry["hits"], entry["source"]) == (key, 1, "built")
    assert entry["size"] > 0 and entry["last_used_at"]

    explained = m1("cache", "explain", "alpha", "--profile", "shared", "-o", "json").json()
    assert explained["key"] == key and explained["local"] is True
    assert explained["remote"] == {"location": f"filesystem:{shared}", "present": True}
    assert {c["since_last"] for c in explained["components"]} == {"same"}

    project.write("pipelines.py", PLAIN_PIPELINES + "\n# changed\n")
    project.write("helper.py", "X = 1\n")
    changed = m1("cache", "explain", "alpha", "--profile", "shared", "-o", "json").json()
    assert changed["key"] != key and changed["local"] is False
    parts = {c["name"]: c["since_last"] for c in changed["components"]}
    assert parts == {
        "python": "same",
        "platform": "same",
        "sparkwing": "same",
        "sources": "changed",
        "requirements": "same",
    }
    assert changed["files"] == {"added": ["helper.py"], "removed": [], "modified": ["pipelines.py"]}
    table = m1("cache", "explain", "alpha", "--profile", "shared")
    assert "sources" in table.stdout and "changed" in table.stdout
    assert "modified: pipelines.py" in table.stdout

    pruned = m1("cache", "prune", "--max-bytes", "0", "-o", "json")
    assert pruned.code == 0, pruned.stderr
    assert [e["key"] for e in pruned.json()["removed"]] == [key]
    assert m1("cache", "info", "-o", "json").json()["count"] == 0
    assert (shared / "bin" / key).is_file()  # prune only ever touches the local cache

    bad = m1("cache", "prune")
    assert bad.code == 2 and bad.stderr.startswith("error: cache prune: give --max-bytes")
    bad_size = m1("cache", "prune", "--max-bytes", "lots")
    assert bad_size.code == 2 and "--max-bytes 'lots'" in bad_size.stderr


def test_two_machines_share_bundles_through_s3(
    deps_project: ProjectFiles, tmp_path: Path, recording_installer: dict[str, str]
) -> None:
    """The same through an S3 bucket (moto): built and uploaded once, fetched by the second
    machine with no install, a corrupt object refused, rebuilt and uploaded again."""
    objectstores = pytest.importorskip("tests.objectstores")
    env = {**recording_installer, **objectstores.emulator_env("s3")}
    bucket = objectstores.new_bucket_name()
    objectstores.create_bucket("s3", bucket)
    spec = f'{{type: s3, bucket: "{bucket}", prefix: "team/"}}'
    m1 = machine(deps_project, tmp_path / "m1", spec)
    m2 = machine(deps_project, tmp_path / "m2", spec)
    m3 = machine(deps_project, tmp_path / "m3", spec)
    store = objectstores.make_store("s3", bucket, "team/")

    built = bundle_of(run(m1, env))
    assert built["source"] == "built" and len(installer_calls(env)) == 1
    got = store.get(f"bin/{built['key']}")
    assert got is not None
    copy = tmp_path / "downloaded.swb"
    copy.write_bytes(got[0])
    assert verify(copy) == built["digest"]

    fetched = run(m2, env)
    assert bundle_of(fetched) == {**built, "source": "remote"}
    assert fetched["nodes"][0]["output"]["six"] == "1.16.0"
    assert len(installer_calls(env)) == 1

    data = bytearray(got[0])
    data[HEADER_SIZE + 10] ^= 0x01
    store.put(f"bin/{built['key']}", bytes(data))
    rebuilt = run(m3, env)
    assert (
        f"warning: bundle {built['key']} from s3://{bucket}/team/ failed verification"
        in (rebuilt["stderr"])
    )
    assert bundle_of(rebuilt)["source"] == "built" and len(installer_calls(env)) == 2
    again = store.get(f"bin/{built['key']}")
    assert again is not None
    copy.write_bytes(again[0])
    assert verify(copy) == bundle_of(rebuilt)["digest"]
    objectstores.empty(store)


def test_pipeline_list_and_describe_import_through_the_bundle(
    deps_project: ProjectFiles, tmp_path: Path, recording_installer: dict[str, str]
) -> None:
    # A module importing its requirement at top level: describing it needs the bundle.
    deps_project.write(
        "toplevel.py",
        """
        import six  # from the bundle, at the version requirements.txt pins
        import sparkwing as sw

        @sw.pipeline("needs-six", description="six " + six.__version__)
        def plan(plan, args, rc):
            plan.job("a", "echo a")
        """,
    )
    cli = machine(deps_project, tmp_path / "m1", f'{{type: filesystem, path: "{tmp_path}/c"}}')
    listed = cli("pipeline", "list", "-o", "json", env=recording_installer)
    assert listed.code == 0, listed.stderr
    rows = {row["name"]: row for row in listed.ndjson()}
    assert rows["needs-six"]["description"] == "six 1.16.0"
    described = cli("pipeline", "describe", "needs-six", "-o", "json", env=recording_installer)
    assert described.code == 0, described.stderr
    assert [j["id"] for j in described.json()["plan"]["jobs"]] == ["a"]


def test_the_bundle_wins_over_a_package_the_cli_itself_imported(
    project: ProjectFiles, tmp_path: Path, recording_installer: dict[str, str]
) -> None:
    # The CLI imports PyYAML (for sparkwing.yaml) before it starts the runner; a pipeline
    # pinning another PyYAML must still get its own.
    project.write(
        "yamlver.py",
        """
        import sparkwing as sw

        def report(ctx):
            import yaml

            return {"version": yaml.__version__, "file": yaml.__file__}

        @sw.pipeline("yamlver")
        def plan(plan, args, rc):
            plan.job("report", report)
        """,
    )
    project.write("requirements.txt", "PyYAML==6.0.1\n")
    cli = machine(project, tmp_path / "m1", f'{{type: filesystem, path: "{tmp_path}/c"}}')
    doc = run(cli, recording_installer, pipeline="yamlver")
    import yaml

    assert yaml.__version__ != "6.0.1"  # the CLI's own PyYAML is another version
    output = doc["nodes"][0]["output"]
    assert output["version"] == "6.0.1"
    assert output["file"].startswith(str(cli.sparkwing_home / "bundles"))
