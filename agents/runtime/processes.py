"""Process-wide settings a daemon process makes once at its start: how its worker processes
start, which signals they ignore, and how loud the libraries it loads may be."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Sequence
from multiprocessing.context import BaseContext
from typing import Final

MODEL_PRELOAD: Final = ("torch", "diffusers")
"""What a model worker (the generator's) imports: the fork server imports it once."""
PROVER_PRELOAD: Final = ("ezkl", "zkml.pipeline")
"""What a proving worker imports."""


def worker_context(preload: Sequence[str]) -> BaseContext:
    """How the agents' worker pools (the generator's, the prover's) start their processes: from a
    fork server (one per daemon process, started with its first pool) that has imported
    `preload` once, so each worker forks with them imported instead of importing them again (a
    generator pool of two workers started with 17 s of CPU here against 26 s spawned, in the same
    9.8 s). The first pool's `preload` is the server's: a later pool's workers import what else
    they need themselves, as a spawned worker would. Forked from a server that runs no threads, a
    worker is as clean as a spawned one; it reads the environment the server started with
    (`quiet_libraries` first). Spawned where there is no fork server (Windows)."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(preload))  # read when the server starts, once
    return context


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
    started afterwards (`worker_context`: they inherit the environment, not this process's
    settings) load their models as quietly: diffusers says only errors and draws no progress bars (its
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
