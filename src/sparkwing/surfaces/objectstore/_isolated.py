"""Runs an adapter's calls in a fresh interpreter, for processes forked after obstore's
runtime started (it cannot be used there). Requests and answers are pickled frames on the
helper's stdin/stdout; the helper exits when its parent closes the pipe.
"""

from __future__ import annotations

import os
import pickle
import struct
import subprocess
import sys
import threading
from typing import IO, Any

from sparkwing.errors import StorageError

_HEADER = struct.Struct("!Q")


def _send(stream: IO[bytes], payload: Any) -> None:
    data = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


def _recv(stream: IO[bytes]) -> Any:
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        raise EOFError
    (size,) = _HEADER.unpack(header)
    data = stream.read(size)
    if len(data) < size:
        raise EOFError
    return pickle.loads(data)


class IsolatedClient:
    """One helper process per adapter per forked process; calls are serialised."""

    def __init__(self, cls: type, kwargs: dict[str, Any]) -> None:
        self.pid_owner = os.getpid()
        self._where = f"{cls.__name__}"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "sparkwing.surfaces.objectstore._isolated"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            close_fds=True,
        )
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._in: IO[bytes] = self._proc.stdin
        self._out: IO[bytes] = self._proc.stdout
        # One request at a time on the pipe: callers on several threads (segment fetches run
        # eight at once) would otherwise read each other's answers.
        self._lock = threading.Lock()
        _send(self._in, (cls.__module__, cls.__qualname__, kwargs))

    def call(self, method: str, *args: Any) -> Any:
        try:
            with self._lock:
                _send(self._in, (method, args))
                ok, value = _recv(self._out)
        except (EOFError, OSError, pickle.PickleError) as exc:
            raise StorageError(
                f"{self._where}: the object-store helper process failed ({type(exc).__name__})"
            ) from None
        if not ok:
            raise value
        return value

    def close(self) -> None:
        try:
            self._in.close()
        except OSError:
            pass
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


def _serve(stdin: IO[bytes], stdout: IO[bytes]) -> None:
    import importlib

    module, name, kwargs = _recv(stdin)
    store = getattr(importlib.import_module(module), name)(**kwargs)
    while True:
        try:
            method, args = _recv(stdin)
        except EOFError:
            return
        try:
            answer: tuple[bool, Any] = (True, getattr(store, method)(*args))
        except Exception as exc:  # handed back to the caller, which raises it
            answer = (False, exc)
        try:
            _send(stdout, answer)
        except (pickle.PickleError, TypeError, AttributeError):
            _send(stdout, (False, StorageError(f"{name}.{method}: unpicklable result")))


if __name__ == "__main__":
    _serve(sys.stdin.buffer, sys.stdout.buffer)
