"""The job -> engine line protocol: long unterminated output never swallows a control message."""

from __future__ import annotations

from sparkwing.engine import protocol


def test_control_message_after_a_huge_partial_line_stays_whole() -> None:
    splitter = protocol.LineSplitter()
    text = b"y" * (protocol.MAX_LINE - 5)
    message = protocol.encode({"t": "result", "ok": True, "output": "z" * 10000})
    stream = text + message
    items = []
    for i in range(0, len(stream), 4096):  # a chunk ends inside the control message
        items += splitter.feed(stream[i : i + 4096])
    items += splitter.finish()
    lines = "".join(v for k, v in items if k == "line")
    controls = [v for k, v in items if k == "control"]
    assert lines == text.decode()
    assert controls == [{"t": "result", "ok": True, "output": "z" * 10000}]
