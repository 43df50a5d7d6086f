"""The ``sparkwing`` entry point: a fast path for ``--version``, then a lazily loaded click
group whose subcommands import only when invoked."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args in (["--version"], ["-V"], ["version"]):
        # Answer before importing click: `sparkwing --version` must cost ~ one interpreter start.
        from sparkwing.__about__ import __version__

        sys.stdout.write(f"sparkwing {__version__}\n")
        return
    import gc

    # Start-up allocates hundreds of thousands of objects and frees almost none: collecting
    # meanwhile costs ~10 ms and finds nothing. A run turns collection back on once its
    # jobs start (see engine.runner); every other command does so below.
    gc.disable()
    from sparkwing import _gencache

    _gencache.install()
    # The common `sparkwing run NAME ...` is answered without importing click.
    from sparkwing.cli.runpath import run_fast

    code = run_fast(args)
    if code is not None and argv is None:
        _end_process(code)
    if code is None:
        gc.enable()
        from sparkwing.cli.app import run_cli

        code = run_cli(args)
    sys.exit(code)


def _end_process(code: int) -> None:
    """End `sparkwing run` once its run is over and recorded: its output flushed and the
    dataclass cache saved, the process ends without tearing down the ~200 modules start-up
    loaded one by one (several ms of every run, for nothing). Only when this is the program
    (no ``argv`` given), never for a caller of ``main`` in its own process."""
    import os

    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    from sparkwing import _gencache

    _gencache.save()
    os._exit(code)


if __name__ == "__main__":
    main()
