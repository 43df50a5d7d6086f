"""The isolated object-store client (used by processes forked after obstore started) answers
each caller with its own answer when several threads call at once, as segment reads do."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from sparkwing.surfaces.objectstore._isolated import IsolatedClient
from tests.surfaces.isolated_echo import Echo


def test_concurrent_calls_each_get_their_own_answer() -> None:
    client = IsolatedClient(Echo, {"pause": 0.002})
    try:
        values = [f"key-{i}" for i in range(200)]
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda v: client.call("echo", v), values))
        assert answers == values
    finally:
        client.close()
