"""schemathesis against the OpenAPI document a real controller serves: generated requests,
valid and invalid, never get a 5xx. Seeded (derandomized) and bounded, so CI stays fast."""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from tests.controller.harness import Controller, controller, local_profile

__all__ = ["controller"]

EXAMPLES = 12
# A live follow streams until the client leaves; its answers are covered by the logs suite.
STREAMING = {"GET /v1/logs/{run_id}/{node_id}/follow"}


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_generated_requests_never_get_a_server_error(
    controller: Controller, tmp_path: Path, mode: GenerationMode
) -> None:
    controller.reset(local_profile(tmp_path / "controller"))
    headers = {"Authorization": f"Bearer {controller.token('admin')}"}
    schema = schemathesis.openapi.from_url(controller.url + "/openapi.json")
    failures: list[str] = []
    exercised = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.label in STREAMING:
            continue

        @settings(
            max_examples=EXAMPLES,
            derandomize=True,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def check(case: schemathesis.Case) -> None:
            response = case.call(base_url=controller.url, headers=headers, timeout=30)
            if response.status_code >= 500:
                failures.append(
                    f"{case.operation.label}: {response.status_code} {response.text[:200]} "
                    f"for {case.path_parameters} {case.query} {str(case.body)[:200]}"
                )

        try:
            check()
        except Unsatisfiable:
            continue  # nothing about the operation can be made invalid (e.g. no inputs)
        exercised += 1
    assert exercised >= (40 if mode is GenerationMode.POSITIVE else 25)
    assert failures == []
