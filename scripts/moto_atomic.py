"""moto's S3 server with writes made atomic, as S3's own are.

moto checks If-Match / If-None-Match and then stores the object in two steps with no lock,
so under load two conditional PUTs racing on one key can both succeed (a lost update that
real S3, GCS and Azure never allow). The test servers run moto through this wrapper: it is
`moto_server` with one lock around every request that writes, so preconditions hold.

    python scripts/moto_atomic.py -H 127.0.0.1 -p PORT
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple

WRITES = {"PUT", "POST", "DELETE", "PATCH"}


class SerialWrites:
    """WSGI middleware: requests that write run one at a time; reads stay concurrent."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ.get("REQUEST_METHOD") not in WRITES:
            return self.app(environ, start_response)
        with self.lock:
            # moto answers with a complete body, so the write is done when this returns.
            return list(self.app(environ, start_response))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    opts = parser.parse_args()
    os.environ.setdefault("MOTO_PORT", str(opts.port))  # moto builds some URLs from it
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(
        opts.host,
        opts.port,
        SerialWrites(app),
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
