"""tally: count the most frequent words in text files."""

__version__ = "0.3.0"
