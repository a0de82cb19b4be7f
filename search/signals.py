"""SIGTERM ends a search as Ctrl-C does: Tune saves its state, the search exits 130, resumable.

SIGTERM is how a search is told to stop by everything but a terminal: ``kill``, a container
runtime or Kubernetes shutting down a pod, systemd, ``ray job stop`` without
``RAY_JOB_STOP_SIGNAL=SIGINT``. Python's default answer kills the process at once, and the
handler ``ray.init`` installs raises ``SystemExit(15)`` wherever the driver is: either way the
experiment is left ``running`` with no ``trials.csv``. Forwarded to the SIGINT handler of the
moment, SIGTERM instead sets Tune's stop event while ``Tuner.fit`` runs (Tune finishes its
trials' bookkeeping, saves the experiment state and returns; the search records itself as
``interrupted`` and exits 130) and raises ``KeyboardInterrupt`` elsewhere (also 130).

``ray.init`` replaces the SIGTERM handler, so :func:`sigterm_as_interrupt` must run after it.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

INTERRUPTED_EXIT_CODE = 130  # what `tunecast search` exits with when interrupted (as for Ctrl-C)


def forward_to_sigint(signum: int, frame: FrameType | None) -> None:
    """Run what SIGINT would run now: Tune's handler during ``Tuner.fit`` (a second signal
    finds Python's default again, as a second Ctrl-C does), else ``KeyboardInterrupt``."""
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler):
        handler(signal.SIGINT, frame)
        return
    raise KeyboardInterrupt  # SIGINT ignored or at its OS default: interrupt all the same


def sigterm_as_interrupt() -> bool:
    """Make SIGTERM interrupt the search as SIGINT does. Call it after ``ray.init`` (which sets
    its own SIGTERM handler). Only the main thread may set handlers: elsewhere this does
    nothing and returns False."""
    if threading.current_thread() is not threading.main_thread():
        return False
    signal.signal(signal.SIGTERM, forward_to_sigint)
    return True
