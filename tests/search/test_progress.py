"""What a person sees while `tunecast search` runs: on a terminal (a real pseudo-terminal) a
status line redrawn in place with one line per finished trial above it; through a pipe plain
lines only. Both runs are real smoke searches in subprocesses with the user's environment."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

TRIAL_LINE = re.compile(r"^\[\s*(\d+)/4\] trial [0-9a-f]{8} (completed|stopped|failed)\s+\d+ epochs?  ")
FINAL_STATUS = re.compile(r"^\[#{20}\] 4/4 trials: 0 running, \d stopped early, 0 failed \| best [0-9.e+-]+ "
                          r"\([0-9a-f]{8}\) \| \d+s$")
CHATTER = ("Token authentication", "A new study created", "TensorBoard", "Trial status", "╭", "╰",
           "started with configuration", "Trial task failed")


def user_env() -> dict[str, str]:
    """The environment of a user's shell: no test-session token settings (Ray makes its own)."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "TUNE_", "PYTEST"))}


def screen(raw: str) -> list[str]:
    """The lines a terminal shows after ``raw``: a tiny emulator of what the display uses
    (``\\r`` to column 0, ``ESC[K`` erases to the end of the line, ``\\n`` a new line)."""
    lines, line, col = [], [], 0
    i = 0
    while i < len(raw):
        if raw.startswith("\x1b[K", i):
            del line[col:]
            i += 3
            continue
        ch = raw[i]
        if ch == "\r":
            col = 0
        elif ch == "\n":
            lines.append("".join(line))
            line, col = [], 0
        else:
            line[col:col + 1] = [ch]
            col += 1
        i += 1
    if line:
        lines.append("".join(line))
    return lines


def run_in_terminal(args: list[str], cwd: Path, timeout: float = 300) -> tuple[int, str]:
    """Run a command with a pseudo-terminal as its stdout and stderr; returns its exit code and
    everything it wrote (the terminal turns "\\n" into "\\r\\n": undone here)."""
    master, slave = pty.openpty()
    process = subprocess.Popen(args, cwd=cwd, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave,
                               env=user_env(), start_new_session=True)
    os.close(slave)
    chunks = []
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: every writer closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    code = process.wait(timeout=60)
    return code, b"".join(chunks).decode("utf-8", "replace").replace("\r\n", "\n")


def test_terminal_shows_one_live_status_line_and_a_line_per_trial(tmp_path):
    code, raw = run_in_terminal(
        [sys.executable, "-m", "tunecast", "search",
         "--smoke-test", "--storage", str(tmp_path), "--name", "tty",
         "--no-report", "--no-forecast"], cwd=tmp_path)
    assert code == 0, raw[-3000:]
    assert "\r\x1b[K[" in raw  # the status line was redrawn in place
    shown = screen(raw)
    trial_lines = [line for line in shown if TRIAL_LINE.match(line)]
    assert [int(TRIAL_LINE.match(line).group(1)) for line in trial_lines] == [1, 2, 3, 4], shown
    status = [line for line in shown if line.startswith("[#") or line.startswith("[-")]
    assert len(status) == 1 and FINAL_STATUS.match(status[0]), shown  # no stale status lines left
    assert shown.index(status[0]) > shown.index(trial_lines[-1])
    assert shown[0].startswith("4 trials; follow them in Optuna's dashboard: optuna-dashboard ")
    assert any(line.startswith("search completed: ") for line in shown)
    assert not [line for line in shown if any(c in line for c in CHATTER)], shown

