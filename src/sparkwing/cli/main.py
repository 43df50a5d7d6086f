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
    from sparkwing import _gencache

    _gencache.install()
    # The common `sparkwing run NAME ...` is answered without importing click.
    from sparkwing.cli.runpath import run_fast

    code = run_fast(args)
    if code is None:
        from sparkwing.cli.app import run_cli

        code = run_cli(args)
    sys.exit(code)


if __name__ == "__main__":
    main()
