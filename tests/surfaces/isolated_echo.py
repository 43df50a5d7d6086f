"""A tiny class for the isolated-client test: the helper process imports it by name."""

from __future__ import annotations

import time


class Echo:
    """Answers each call with its argument, after a pause that lets calls overlap."""

    def __init__(self, pause: float) -> None:
        self.pause = pause

    def echo(self, value: str) -> str:
        time.sleep(self.pause)
        return value
