"""``sparkwing pipeline new|list|describe`` through the real CLI."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import Cli, ProjectFiles


def test_new_in_an_empty_folder_creates_a_pipeline_that_runs(
    cli: Cli, project: ProjectFiles
) -> None:
    code, out, err = cli("pipeline", "new", "build-deploy")
    assert code == 0, err
    assert (project.dir / "build_deploy.py").is_file()
    assert "sparkwing run build-deploy" in out
    assert (project.dir / "sparkwing.yaml").read_text() == (
        "pipelines:\n"
        "  - name: build-deploy\n"
        "    entrypoint: BuildDeploy\n"
        '    description: "A new pipeline: build, then check."\n'
    )
    result = cli("run", "build-deploy", "--target", "staging", "-o", "json")
    assert result.code == 0, result.stderr
    doc = result.json()
    assert doc["run"]["status"] == "success"
    assert doc["run"]["args"] == {"target": "staging"}
    nodes = {n["node_id"]: n for n in doc["nodes"]}
    assert nodes["build"]["output"] == {"artifact": "app-staging"}
    assert nodes["check"]["status"] == "success" and nodes["check"]["needs"] == ["build"]

    again = cli("pipeline", "new", "build-deploy")
    assert again.code == 2
    assert again.stderr.startswith('error: pipeline "build-deploy" already exists in ')


def test_new_appends_to_an_existing_file_and_keeps_it(cli: Cli, project: ProjectFiles) -> None:
    original = (
        "# team pipelines\n"
        "defaults:\n"
        "  args: {target: qa}   # shared\n"
        "pipelines:\n"
        "  - name: old\n"
        "    entrypoint: Old\n"
        "    description: the old one\n"
        "# end of pipelines\n"
        "profiles:\n"
        "  spare:\n"
        "    cache: {type: filesystem, path: /tmp/x}\n"
    )
    project.yaml(original)
    project.write(
        "old.py",
        """
        import sparkwing as sw

        class Old:
            def plan(self, plan, args, rc):
                plan.job("o", "echo old")
        """,
    )
    sub = project.root / "sub"
    sub.mkdir()
    code, _, err = cli("pipeline", "new", "fresh_one", "--description", "Second: #2", cwd=sub)
    assert code == 0, err
    text = (project.dir / "sparkwing.yaml").read_text()
    assert text.startswith(original.split("# end of pipelines")[0])
    assert (
        "  - name: fresh_one\n    entrypoint: FreshOne\n"
        '    description: "Second: #2"\n# end of pipelines\n'
    ) in text
    assert text.endswith("profiles:\n  spare:\n    cache: {type: filesystem, path: /tmp/x}\n")
    assert not (sub / ".sparkwing").exists()
    for name, target in (("fresh_one", "qa"), ("old", None)):
        result = cli("run", name, "-o", "json")
        assert result.code == 0, result.stderr
        if target:
            assert result.json()["run"]["args"] == {"target": target}


def test_new_with_C_dir_and_name_checks(cli: Cli, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    made = cli("-C", str(other), "pipeline", "new", "json", "-o", "json")
    assert made.code == 0, made.stderr
    assert made.json() == {
        "name": "json",
        "entrypoint": "Json",
        "module": str(other / ".sparkwing" / "json_pipeline.py"),
        "project_file": str(other / ".sparkwing" / "sparkwing.yaml"),
        "added_entry": True,
    }
    # A module named json.py would shadow the standard library in the runner.
    assert (other / ".sparkwing" / "json_pipeline.py").is_file()
    assert cli("-C", str(other), "run", "json", "-o", "quiet").code == 0
    for bad in ("../x", "-x", "9lives", "a b"):
        result = cli("-C", str(other), "pipeline", "new", bad)
        assert result.code == 2, bad
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1


def test_list_shows_yaml_and_decorated_pipelines(cli: Cli, project: ProjectFiles) -> None:
    project.yaml("""
        pipelines:
          - name: release-prod
            entrypoint: Release
            description: Ship it
            profile: local
          - name: ghost
            entrypoint: Missing
        """)
    project.write(
        "release.py",
        """
        import sparkwing as sw

        class Release:
            def plan(self, plan, args, rc):
                plan.job("r", "echo r")

        @sw.pipeline("lint", description="Check style")
        def lint(plan, args, rc):
            plan.job("l", "echo l")
        """,
    )
    docs = {d["name"]: d for d in cli("pipeline", "list", "-o", "json").ndjson()}
    assert set(docs) == {"release-prod", "ghost", "lint"}
    assert docs["release-prod"]["sources"] == ["sparkwing.yaml"]
    assert docs["release-prod"]["file"] == "release.py"
    assert docs["release-prod"]["profile"] == "local"
    assert docs["lint"]["sources"] == ["decorator"]
    assert docs["lint"]["description"] == "Check style"
    assert 'entrypoint "Missing" was not found' in docs["ghost"]["error"]

    code, out, err = cli("pipeline", "list")
    assert code == 0, err
    rows = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert (
        "Ship it" in rows["release-prod"] and "sparkwing.yaml, release.py" in rows["release-prod"]
    )
    assert "release.py" in rows["lint"] and "Check style" in rows["lint"]
    assert "error: " in rows["ghost"]


def test_describe_shows_inputs_yaml_and_plan(cli: Cli, project: ProjectFiles) -> None:
    project.yaml("""
        pipelines:
          - name: deploy
            entrypoint: Deploy
            args: {region: eu}
        """)
    project.write(
        "deploy.py",
        """
        from dataclasses import dataclass, field
        import sparkwing as sw

        @dataclass
        class Args:
            env: str
            region: str = "us"
            dry_run: bool = False
            replicas: int = field(default=2, metadata={"help": "how many"})

        class Deploy:
            \"\"\"Deploy the app.\"\"\"

            def plan(self, plan: sw.Plan, args: Args, rc: sw.RunContext) -> None:
                b = plan.job("build", "echo b").retry(2).timeout("5m")
                plan.job("ship", "echo s").needs(b).optional()
        """,
    )
    doc = cli("pipeline", "describe", "deploy", "-o", "json").json()
    assert doc["description"] == "Deploy the app."
    inputs = {i["flag"]: i for i in doc["inputs"]}
    assert inputs["--env"]["required"] is True
    assert (inputs["--region"]["type"], inputs["--region"]["default"]) == ("str", "us")
    assert inputs["--dry-run"]["default"] is False
    assert inputs["--replicas"]["help"] == "how many"
    assert doc["yaml"] == {"entrypoint": "Deploy", "profile": None, "args": {"region": "eu"}}
    # --env is required and has no default, so plan() cannot be built with defaults.
    assert "missing required input --env" in doc["plan"]["error"]

    code, out, err = cli("pipeline", "describe", "deploy")
    assert code == 0, err
    assert "--replicas  int   2" in out
    assert 'yaml args    region="eu"' in out

    project.write(
        "deploy.py", (project.dir / "deploy.py").read_text().replace("env: str", 'env: str = "dev"')
    )
    plan = cli("pipeline", "describe", "deploy", "-o", "json").json()["plan"]
    assert [(j["id"], j["needs"], j["retries"], j["optional"]) for j in plan["jobs"]] == [
        ("build", [], 2, False),
        ("ship", ["build"], 0, True),
    ]
    human = cli("pipeline", "describe", "deploy").stdout
    assert "  build  [retry 2; timeout 300s; shell: echo b]" in human
    assert "  ship needs build  [optional; shell: echo s]" in human


def test_import_errors_and_unknown_names(cli: Cli, project: ProjectFiles) -> None:
    project.write(
        "broken.py",
        """
        import sparkwing as sw
        print("noise from user code")
        raise RuntimeError("kaboom")
        """,
    )
    for args in (("pipeline", "list"), ("pipeline", "describe", "x")):
        code, out, err = cli(*args)
        assert code == 2
        last = err.strip().splitlines()[-1]
        assert last.startswith("error: failed to import ") and "broken.py:3" in last
        assert "RuntimeError: kaboom" in last
        assert "Traceback" not in err and out == ""
    (project.dir / "broken.py").unlink()
    project.write(
        "fine.py",
        """
        import sparkwing as sw

        @sw.pipeline("fine")
        def fine(plan, args, rc):
            plan.job("f", "echo f")
        """,
    )
    code, _, err = cli("pipeline", "describe", "nope")
    assert code == 2
    assert err == 'error: unknown pipeline "nope" (available: fine)\n'


def test_commands_outside_a_project(cli: Cli, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = cli("pipeline", "list", cwd=empty)
    assert code == 2
    assert err.startswith("error: no .sparkwing/ folder found in ")
