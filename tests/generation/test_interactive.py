"""`nmt interactive`: each buffer of lines is translated and printed before the next is read; a pipe
sees each translation at once; end of input and Ctrl-C end the process cleanly."""

from __future__ import annotations

import io
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from nmt.config import GenerateConfig, InteractiveConfig
from nmt.errors import UserError
from nmt.generation import interactive
from nmt.generation.generate import run as generate

ROOT = Path(__file__).resolve().parents[2]
SEARCH = dict(beam=2, max_len_b=6, device="cpu", threads=1)
WAIT = 120  # seconds for the process to start (imports, loading the checkpoint) and answer


@pytest.fixture(scope="module")
def lines(toy_raw_dir) -> list[str]:
    return (toy_raw_dir / "test.en").read_text(encoding="utf-8").split("\n")[:5]


def _translations(ckpt: str, lines: list[str], tmp_path: Path, **extra) -> list[str]:
    """What `nmt generate` prints for `lines`, one sentence at a time."""
    src, out = tmp_path / "in.txt", tmp_path / "out.txt"
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    generate(GenerateConfig(path=ckpt, input=str(src), output=str(out), chunk_size=1, **SEARCH | extra))
    return out.read_text(encoding="utf-8").split("\n")[:-1]


class Recorder:
    """A stdin and stdout that log, in order, every line read and every write and flush."""

    def __init__(self, lines: list[str]):
        self.lines, self.events = lines, []

    def __iter__(self):
        for line in self.lines:
            self.events.append(("read", line))
            yield (line + "\n").encode("utf-8")

    def write(self, text: str) -> None:
        self.events.append(("write", text))

    def flush(self) -> None:
        self.events.append(("flush",))


@pytest.mark.parametrize("buffer_size", [1, 2])
def test_each_buffer_is_written_and_flushed_before_the_next_line_is_read(ckpts, lines, tmp_path, buffer_size):
    given = lines[:2] + [""] + lines[2:]  # 6 lines: with buffer 2, three full buffers
    want = _translations(ckpts["a"], given, tmp_path)
    io_ = Recorder(given)
    stats = interactive.run(
        InteractiveConfig(generate=GenerateConfig(path=ckpts["a"], **SEARCH), buffer_size=buffer_size), io_, io_
    )
    expected = []
    for k in range(0, len(given), buffer_size):
        expected += [("read", line) for line in given[k : k + buffer_size]]
        expected += [("write", "".join(t + "\n" for t in want[k : k + buffer_size])), ("flush",)]
    assert io_.events == expected and want[2] == ""
    assert stats.sentences == 6


def test_fairseq_format_numbers_lines_across_buffers(ckpts, lines):
    cfg = InteractiveConfig(generate=GenerateConfig(path=ckpts["a"], format="fairseq", **SEARCH), buffer_size=2)
    out = io.StringIO()
    interactive.run(cfg, [(line + "\n").encode() for line in lines[:3]], out)
    assert [row.split("\t")[0] for row in out.getvalue().split("\n") if row.startswith(("S-", "H-"))] == [
        *("S-0", "H-0", "S-1", "H-1", "S-2", "H-2")
    ]


def test_buffer_size_is_checked():
    cfg = InteractiveConfig(generate=GenerateConfig(path="x.pt"), buffer_size=0)
    with pytest.raises(UserError, match=r"^--buffer-size must be >= 1, got 0$"):
        interactive.run(cfg, [], io.StringIO())


# ----------------------------------------------------------------------------- the command in a pipe
class Process:
    """`python -m nmt interactive` with pipes; stdout lines arrive in a queue read by a thread."""

    def __init__(self, ckpt: str, *args: str):
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
        flags = [f"--{k.replace('_', '-')}={v}" for k, v in SEARCH.items()]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "nmt", "interactive", "--path", ckpt, *flags, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            env=env,
            # A shell starting pytest in the background (`cmd &`) makes it ignore SIGINT, and a
            # child would inherit that; the Ctrl-C test needs the default, as in a terminal.
            preexec_fn=_default_sigint if sys.platform != "win32" else None,
        )
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line)

    def send(self, text: str) -> None:
        self.proc.stdin.write(text)
        self.proc.stdin.flush()

    def next_line(self, timeout: float = WAIT) -> str:
        try:
            return self.lines.get(timeout=timeout).rstrip("\n")
        except queue.Empty:
            self.proc.kill()
            pytest.fail(f"no output within {timeout} s; stderr: {self.proc.stderr.read()}")

    def finish(self) -> tuple[int, str]:
        """Exit code and stderr once the process has ended."""
        try:
            code = self.proc.wait(timeout=WAIT)
        finally:
            self.proc.kill()
        return code, self.proc.stderr.read()


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_pipe_gets_each_translation_before_the_next_line_is_written(ckpts, lines, tmp_path):
    want = _translations(ckpts["a"], lines[:2], tmp_path)
    p = Process(ckpts["a"])
    p.send(lines[0] + "\n")
    assert p.next_line() == want[0]  # the second line is not written yet
    p.send(lines[1])  # no newline: the line ends with the input
    p.proc.stdin.close()
    assert p.next_line() == want[1]
    code, err = p.finish()
    assert code == 0 and err == "" and p.lines.empty()


def test_pipe_with_buffer_size_2_prints_after_two_lines(ckpts, lines, tmp_path):
    want = _translations(ckpts["a"], lines[:4], tmp_path)
    p = Process(ckpts["a"], "--buffer-size", "2")
    p.send(lines[0] + "\n" + lines[1] + "\n")
    assert [p.next_line(), p.next_line()] == want[:2]
    p.send(lines[2] + "\n")  # the process is warm: one line would be translated in milliseconds
    with pytest.raises(queue.Empty):
        p.lines.get(timeout=2)
    p.send(lines[3] + "\n")
    assert [p.next_line(), p.next_line()] == want[2:4]
    p.proc.stdin.close()
    code, err = p.finish()
    assert code == 0 and err == ""


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_while_waiting_for_input_exits_130_without_a_traceback(ckpts, lines):
    p = Process(ckpts["a"])
    p.send(lines[0] + "\n")
    p.next_line()  # translated: the process is now waiting for the next line
    p.proc.send_signal(signal.SIGINT)
    code, err = p.finish()
    assert code == 130 and err.strip() in ("", "interrupted")  # no traceback
