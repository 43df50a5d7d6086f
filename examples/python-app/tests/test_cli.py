"""End-to-end tests of the tally command on temporary files."""

import contextlib
import io
import tempfile
import unittest
from pathlib import Path

from tally import cli


class CliTest(unittest.TestCase):
    def run_cli(self, *argv: str) -> str:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            self.assertEqual(cli.main(list(argv)), 0)
        return out.getvalue()

    def test_prints_top_words_with_stopwords_from_config(self) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            text = Path(tmp, "a.txt")
            text.write_text("red blue red green red blue the the the the\n")
            conf = Path(tmp, "tally.toml")
            conf.write_text('[tally]\ntop = 2\nstopwords = ["the"]\n')
            lines = self.run_cli(str(text), "--config", str(conf)).splitlines()
        self.assertEqual([line.split() for line in lines], [["3", "red"], ["2", "blue"]])

    def test_rejects_bad_config(self) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            text = Path(tmp, "a.txt")
            text.write_text("x\n")
            conf = Path(tmp, "tally.toml")
            conf.write_text("[tally]\ntop = -1\n")
            with self.assertRaises(ValueError):
                cli.main([str(text), "--config", str(conf)])


if __name__ == "__main__":
    unittest.main()
