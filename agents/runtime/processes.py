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
    """The console shows the demo's own progress; libraries only warn. The worker processes
    started afterwards (spawned: they inherit the environment, not this process's settings) load
    their models as quietly: diffusers says only errors and draws no progress bars (its
    "Loading pipeline components" bar and its advice to install accelerate). A variable already
    set in the environment is left as it is."""
    import logging

    from ape.logging import LogLevel, logger
    from diffusers.utils import logging as diffusers_logging

    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    os.environ.setdefault("TQDM_DISABLE", "1")
    logger.set_level(LogLevel.WARNING)
    diffusers_logging.set_verbosity_error()
    diffusers_logging.disable_progress_bar()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
