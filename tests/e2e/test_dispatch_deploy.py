"""The Kubernetes manifests in deploy/kubernetes/: valid resources for the Kubernetes API
(checked offline with kubernetes-validate, strictly), whose sparkwing profiles parse and
whose commands are ones the real CLI accepts."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from sparkwing.conf.profiles import parse_user_profiles
from tests.conftest import sparkwing_command

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"
KUBERNETES_VERSION = "1.30.0"


def _documents() -> list[tuple[str, dict[str, Any]]]:
    docs = []
    for path in sorted(DEPLOY.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                docs.append((f"{path.name}:{doc['kind']}/{doc['metadata']['name']}", doc))
    return docs


DOCS = _documents()


def test_the_manifests_hold_a_controller_and_a_worker() -> None:
    kinds = {(doc["kind"], doc["metadata"]["name"]) for _, doc in DOCS}
    assert {
        ("Deployment", "sparkwing-controller"),
        ("Service", "sparkwing-controller"),
        ("PersistentVolumeClaim", "sparkwing-controller-data"),
        ("Deployment", "sparkwing-worker"),
    } <= kinds


@pytest.mark.parametrize("doc", [d for _, d in DOCS], ids=[name for name, _ in DOCS])
def test_each_manifest_is_a_valid_resource(doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_an_invalid_manifest_is_refused() -> None:
    broken = next(doc for _, doc in DOCS if doc["kind"] == "Deployment")
    broken = {**broken, "spec": {**broken["spec"], "replicas": "three"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def _deployments() -> list[dict[str, Any]]:
    return [doc for _, doc in DOCS if doc["kind"] == "Deployment"]


def test_every_reference_names_a_shipped_resource_or_a_documented_secret() -> None:
    shipped = {(doc["kind"], doc["metadata"]["name"]) for _, doc in DOCS}
    text = "".join(path.read_text() for path in DEPLOY.glob("*.yaml"))
    for deployment in _deployments():
        pod = deployment["spec"]["template"]["spec"]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
        for volume in pod["volumes"]:
            if "configMap" in volume:
                assert ("ConfigMap", volume["configMap"]["name"]) in shipped
            if "persistentVolumeClaim" in volume:
                assert ("PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"]) in (
                    shipped
                )
        for container in pod["containers"]:
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:  # not shipped (never commit a secret): the comments say how to make it
                    assert f"kubectl create secret generic {ref['name']}" in text
                    assert ref["key"] in text.split(ref["name"], 1)[1]


@pytest.mark.parametrize("deployment", _deployments(), ids=lambda d: d["metadata"]["name"])
def test_each_deployment_runs_a_real_command_with_a_profile_that_parses(
    deployment: dict[str, Any], tmp_path: Path
) -> None:
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    args = container["args"]
    profile = args[args.index("--profile") + 1]
    [config] = [
        doc
        for _, doc in DOCS
        if doc["kind"] == "ConfigMap" and doc["metadata"]["name"] == deployment["metadata"]["name"]
    ]
    profiles = parse_user_profiles(config["data"]["profiles.yaml"], tmp_path / "profiles.yaml")
    assert profile in profiles.profiles and not profiles.warnings
    # The CLI takes these arguments (asking for help stops before anything starts).
    command = args[: args.index("--")] if "--" in args else args
    done = subprocess.run(
        [*sparkwing_command(), *command, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr
