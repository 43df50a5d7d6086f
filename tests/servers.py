"""Where the test servers started by ``scripts/test`` are, and what to do when one is absent.

``scripts/test`` exports one variable per server. Outside it a missing server skips the
tests that need it; under ``CI=true`` a missing server is a failure, never a skip.
"""

from __future__ import annotations

import os

import pytest

# name -> environment variable scripts/test exports with the server's address
SERVERS = {
    "s3": "SPARKWING_TEST_S3_ENDPOINT",  # http://127.0.0.1:PORT (moto server)
    "gcs": "SPARKWING_TEST_GCS_ENDPOINT",  # http://127.0.0.1:PORT (fake-gcs-server)
    "azure": "SPARKWING_TEST_AZURE_ENDPOINT",  # http://127.0.0.1:PORT (Azurite blob)
    "postgres": "SPARKWING_TEST_PG_URL",  # postgresql://postgres@127.0.0.1:PORT/postgres
    "nginx": "SPARKWING_TEST_HTTP_CACHE_URL",  # http://127.0.0.1:PORT/ (WebDAV + JSON index)
    "chromium": "SPARKWING_TEST_CHROMIUM",  # /usr/lib/chromium/chromium (Debian's)
    "axe": "SPARKWING_TEST_AXE",  # path of axe.min.js (npm axe-core)
}


def server(name: str) -> str:
    """The address of test server ``name``; skips (or fails under CI=true) when absent."""
    value = os.environ.get(SERVERS[name], "")
    if value:
        return value
    message = f"test server {name!r} not running (${SERVERS[name]} unset; run ./scripts/test)"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message)
    pytest.skip(message)
