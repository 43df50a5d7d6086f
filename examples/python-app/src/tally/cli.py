"""The ``tally`` command: ``tally [-n N] FILE...`` prints the top words and their counts."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from tally import __version__, core, settings


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tally", description=__doc__)
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("-n", "--top", type=int, default=None, help="how many words to show")
    parser.add_argument("--config", type=Path, default=Path("tally.toml"))
    parser.add_argument("--version", action="version", version=f"tally {__version__}")
    opts = parser.parse_args(argv)
    conf = settings.load(opts.config)
    texts = [path.read_text(encoding="utf-8") for path in opts.files]
    for word, n in core.top(core.count(texts, conf.stopwords), opts.top or conf.top):
        print(f"{n:>6}  {word}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
