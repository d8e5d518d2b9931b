"""Incremental decoding and per-execution splitting of worker output."""

from __future__ import annotations

from squall.runners.process import StreamCapture, strip_trailing_newline
from squall.runners.python_output import StreamDemux, new_sentinel


class Sink:
    def __init__(self) -> None:
        self.chunks: list[tuple[str, str]] = []

    async def write(self, stream: str, data: str) -> None:
        self.chunks.append((stream, data))


async def test_capture_decodes_split_multibyte():
    sink = Sink()
    cap = StreamCapture("stdout", sink)
    data = "héllo €".encode()
    for i in range(len(data)):
        await cap.feed(data[i : i + 1])
    await cap.finish()
    assert cap.text == "héllo €"
    assert "".join(d for _, d in sink.chunks) == "héllo €"


async def test_capture_replaces_invalid_bytes():
    cap = StreamCapture("stdout", Sink())
    await cap.feed(b"a\xffb\xc3")
    await cap.finish()
    assert cap.text == "a\ufffdb\ufffd"


async def test_capture_cap():
    cap = StreamCapture("stderr", Sink(), limit=4)
    await cap.feed(b"abcdef")
    await cap.feed(b"more")
    assert cap.truncated
    assert cap.text.startswith("abcd\n[squall: stderr truncated after 4 bytes]")


def test_strip_one_newline():
    assert strip_trailing_newline("a\n\n") == "a\n"
    assert strip_trailing_newline("a\r\n") == "a"
    assert strip_trailing_newline("a") == "a"


async def test_demux_splits_on_sentinel_across_chunks():
    demux = StreamDemux()
    first, second = Sink(), Sink()
    s1, s2 = new_sentinel(), new_sentinel()
    cap1 = StreamCapture("stdout", first)
    await demux.attach(cap1, s1)
    stream = b"one " + s1.encode() + b"stray " + b"two" + s2.encode()
    for i in range(0, len(stream), 3):  # sentinel arrives in pieces
        await demux.feed(stream[i : i + 3])
    await demux.wait_ended()
    assert cap1.text == "one "
    cap2 = StreamCapture("stdout", second)
    await demux.attach(cap2, s2)
    await demux.wait_ended()
    assert cap2.text == "stray two"


async def test_demux_streams_without_waiting_for_sentinel():
    demux = StreamDemux()
    sink = Sink()
    await demux.attach(StreamCapture("stdout", sink), new_sentinel())
    await demux.feed(b"progress 10%")
    assert sink.chunks == [("stdout", "progress 10%")]
    await demux.feed(b"\x00")  # could be the sentinel's start: held back
    assert sink.chunks == [("stdout", "progress 10%")]
    await demux.feed(b"x")
    assert sink.chunks[-1] == ("stdout", "\x00x")


async def test_demux_finish_flushes_to_execution():
    demux = StreamDemux()
    cap = StreamCapture("stderr", Sink())
    await demux.attach(cap, new_sentinel())
    await demux.feed(b"crash log\x00")
    await demux.finish()
    await demux.wait_ended()
    assert cap.text == "crash log\x00"


async def test_capture_survives_a_failing_sink(caplog):
    class Broken:
        async def write(self, stream: str, data: str) -> None:
            raise OSError("database gone")

    cap = StreamCapture("stdout", Broken())
    await cap.feed(b"one ")
    await cap.feed(b"two")
    await cap.finish()
    assert cap.text == "one two"
    assert "streaming stdout failed" in caplog.text
