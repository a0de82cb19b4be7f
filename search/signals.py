"""SIGTERM ends a search as Ctrl-C does: Tune saves its state, the search exits 130, resumable.

SIGTERM (``kill``, Kubernetes, ``ray job stop``) would otherwise kill the driver and leave the
experiment ``running``; forwarded to the current SIGINT handler it stops ``Tuner.fit`` cleanly
or raises ``KeyboardInterrupt``. ``ray.init`` replaces the SIGTERM handler, so call
:func:`sigterm_as_interrupt` after it.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

INTERRUPTED_EXIT_CODE = 130  # what `tunecast search` exits with when interrupted (as for Ctrl-C)


def forward_to_sigint(signum: int, frame: FrameType | None) -> None:
    """Run what SIGINT would run now: Tune's handler during ``Tuner.fit``, else ``KeyboardInterrupt``."""
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler):
        handler(signal.SIGINT, frame)
        return
    raise KeyboardInterrupt  # SIGINT ignored or at its OS default: interrupt all the same


def sigterm_as_interrupt() -> bool:
    """Make SIGTERM interrupt the search as SIGINT does (after ``ray.init``); False off the main thread."""
    if threading.current_thread() is not threading.main_thread():
        return False
    signal.signal(signal.SIGTERM, forward_to_sigint)
    return True
