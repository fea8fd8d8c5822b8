"""Process-wide settings a daemon process makes once at its start: which signals its workers
ignore, and how loud the libraries it loads may be."""

from __future__ import annotations

import os


def ignore_interrupts(niceness: int = 0) -> None:
    """A worker process's start: Ctrl-C reaches the whole process group, but the parent decides
    when its workers stop (after the batch in hand), so the worker ignores SIGINT; `niceness`
    lowers its CPU priority."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if niceness:
        os.nice(niceness)


def quiet_libraries() -> None:
    """The console shows the demo's own progress; libraries only warn."""
    import logging

    from ape.logging import LogLevel, logger
    from diffusers.utils import logging as diffusers_logging

    logger.set_level(LogLevel.WARNING)
    diffusers_logging.set_verbosity_error()
    diffusers_logging.disable_progress_bar()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
