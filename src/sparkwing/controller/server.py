"""Serving the controller app with uvicorn: in the foreground for ``controller serve``, or in
a background thread (tests, benchmarks). The access log never shows a credential."""

from __future__ import annotations

import logging
import re
import socket
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import uvicorn
    from starlette.applications import Starlette

# Longer than the client's keep-alive expiry, so the client always closes an idle
# connection first and never reuses one the server is closing.
KEEP_ALIVE_SECONDS = 30
SHUTDOWN_GRACE_SECONDS = 5
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters (glibc malloc.h)
_MMAP_THRESHOLD, _TRIM_THRESHOLD = 8 << 20, 32 << 20
_SENSITIVE_QUERY = re.compile(r"(?i)([?&][^=&]*(?:token|key|secret|password|auth)[^=&]*=)[^&]*")


class RedactQuery(logging.Filter):
    """Blanks query values whose name looks like a credential (``?access_token=...``): the
    API never takes one there, but a misconfigured client might send it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                _SENSITIVE_QUERY.sub(r"\1<redacted>", a) if isinstance(a, str) else a
                for a in record.args
            )
        return True


def setup_logging(level: int = logging.INFO) -> None:
    """For ``controller serve``: one plain format for sparkwing's and uvicorn's loggers."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for name in ("sparkwing", "uvicorn"):
        logger = logging.getLogger(name)
        logger.setLevel(level)
        logger.handlers = [handler]
        logger.propagate = False


def _redact_access_log() -> None:
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactQuery) for f in access.filters):
        access.addFilter(RedactQuery())


def tune_malloc() -> bool:
    """Fixed glibc malloc thresholds for this process (unless MALLOC_*_ variables set them);
    whether they were set. By default every large body chunk the server copies is mapped
    fresh and its pages faulted in again: about a quarter of an upload's CPU. Above the
    largest transient buffer (4 MiB) chunks stay on the heap; at most 32 MiB of freed heap
    is kept back from the system."""
    import ctypes
    import os
    import platform

    if platform.libc_ver()[0] != "glibc" or any(
        name in os.environ for name in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")
    ):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(
        mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD) and mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD)
    )


def bind(host: str, port: int) -> socket.socket:
    """A listening socket, so ``--port 0`` can report the port the system picked."""
    from sparkwing.errors import ConfigError

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    # Accepted sockets inherit it: without it Nagle's algorithm and delayed ACKs hold every
    # response back ~40 ms (uvicorn sets it only on sockets it creates itself).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def make_server(
    app: Starlette,
    *,
    tls_cert: str | None = None,
    tls_key: str | None = None,
    access_log: bool = True,
) -> uvicorn.Server:
    import uvicorn

    tune_malloc()
    _redact_access_log()
    config = uvicorn.Config(
        app,
        log_config=None,
        access_log=access_log,
        lifespan="on",
        ssl_certfile=tls_cert,
        ssl_keyfile=tls_key,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        # Open log follows would otherwise hold a shutdown for as long as they listen.
        timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,
        server_header=False,
    )
    if access_log:
        # A Config with access_log=False (another server of this process) turns propagation
        # off for good; this server's lines must reach the handlers again.
        logging.getLogger("uvicorn.access").propagate = True
    return uvicorn.Server(config)


def url_of(sock: socket.socket, tls: bool) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"{'https' if tls else 'http'}://{shown}:{port}"


@dataclass
class BackgroundServer:
    """A controller served from a thread of this process; ``stop()`` shuts it down."""

    server: uvicorn.Server
    thread: threading.Thread
    url: str

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)

    def __enter__(self) -> BackgroundServer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def serve_in_thread(
    app: Starlette, host: str = "127.0.0.1", port: int = 0, **options: Any
) -> BackgroundServer:
    """Start serving ``app`` on a free port and return once it accepts connections."""
    sock = bind(host, port)
    server = make_server(app, **options)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="sparkwing-controller", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError("the controller did not start (see the log above)")
        time.sleep(0.01)
    return BackgroundServer(server, thread, url_of(sock, bool(options.get("tls_cert"))))
