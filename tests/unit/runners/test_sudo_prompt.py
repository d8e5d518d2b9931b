"""The SSH runners answer sudo's own prompt, however the output is split, and only once."""

from __future__ import annotations

from squall.runners.remote_shell import _SudoPrompt

PROMPT = "[squall-sudo-0123456789abcdef] "


class _Stdin:
    def __init__(self) -> None:
        self.data = b""
        self.closed = False

    def write(self, data: bytes) -> None:
        assert not self.closed
        self.data += data

    def write_eof(self) -> None:
        self.closed = True


def _run(chunks: list[bytes]) -> tuple[bytes, _Stdin]:
    stdin = _Stdin()
    prompt = _SudoPrompt(PROMPT, "pw", stdin)  # type: ignore[arg-type]
    out = b"".join(prompt.filter(c) for c in chunks) + prompt.rest()
    return out, stdin


def test_a_prompt_split_across_reads_is_answered_and_cut() -> None:
    raw = f"before {PROMPT}after\n".encode()
    for cut in range(1, len(raw)):
        out, stdin = _run([raw[:cut], raw[cut:]])
        assert out == b"before after\n", cut
        assert stdin.data == b"pw\n" and stdin.closed


def test_no_prompt_no_password() -> None:
    text = "[squall-sudo-01 looks alike but is not it\n[squall"
    out, stdin = _run([text.encode()])
    assert out == text.encode()
    assert stdin.data == b"" and not stdin.closed


def test_a_second_prompt_gets_nothing_more() -> None:
    out, stdin = _run([f"{PROMPT}Sorry, try again.\n{PROMPT}".encode()])
    assert out == b"Sorry, try again.\n"
    assert stdin.data == b"pw\n"
