"""Unit tests for tally.core (stdlib unittest: no test runner to install)."""

import unittest

from tally import core


class WordsTest(unittest.TestCase):
    def test_lowercases_and_splits_on_punctuation(self) -> None:
        self.assertEqual(
            core.words("Hello, world! HELLO again."), ["hello", "world", "hello", "again"]
        )

    def test_keeps_apostrophes_inside_words(self) -> None:
        self.assertEqual(core.words("it's Bob's"), ["it's", "bob's"])

    def test_digits_are_separators(self) -> None:
        self.assertEqual(core.words("abc123def"), ["abc", "def"])


class CountTest(unittest.TestCase):
    def test_counts_across_texts_without_stopwords(self) -> None:
        counts = core.count(["the cat", "The dog and the cat"], stopwords=["THE", "and"])
        self.assertEqual(dict(counts), {"cat": 2, "dog": 1})

    def test_top_breaks_ties_alphabetically(self) -> None:
        counts = core.count(["b a c b a d"])
        self.assertEqual(core.top(counts, 3), [("a", 2), ("b", 2), ("c", 1)])

    def test_top_rejects_negative(self) -> None:
        with self.assertRaises(ValueError):
            core.top(core.count([]), -1)


if __name__ == "__main__":
    unittest.main()
