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


#: The thread-count setters of the OpenBLAS builds numpy's wheels bundle: numpy 1.x's 64-bit-index
#: build, numpy 2.x's scipy-openblas, and a plain OpenBLAS.
_OPENBLAS_SETTERS: Final = (
    "openblas_set_num_threads64_",
    "scipy_openblas_set_num_threads64_",
    "openblas_set_num_threads",
)


def limit_blas_threads(count: int, folders: Sequence[os.PathLike[str] | str] | None = None) -> bool:
    """numpy's BLAS (the OpenBLAS its wheel bundles, in `folders`: by default numpy's own
    `numpy.libs`, `numpy/.dylibs` or `numpy/_core/lib` folder) uses `count` threads in this
    process from now on; False where no such library is found (numpy built against another
    BLAS: its own environment variables apply).

    A daemon's matrix-vector products (the curator's near-duplicate search over every accepted
    asset, its concept screens) are microseconds of work, and on a machine whose cores are busy
    with the other stages OpenBLAS's own threads make them wait: a 2,000 x 32 search took 6 µs
    alone and 3.5 ms with both cores loaded on two threads, 7 µs on one. torch keeps its own
    thread setting (`torch.set_num_threads`)."""
    import ctypes
    from pathlib import Path

    if folders is None:
        import numpy

        package = Path(numpy.__file__).parent
        folders = [package.parent / "numpy.libs", package / ".dylibs", package / "_core" / "lib"]
    for folder in folders:
        for library in sorted(Path(folder).glob("*openblas*")):
            try:
                handle = ctypes.CDLL(str(library))  # already loaded by numpy: the same handle
            except OSError:
                continue
            for name in _OPENBLAS_SETTERS:
                setter = getattr(handle, name, None)
                if setter is not None:
                    setter.argtypes = [ctypes.c_int]
                    setter(count)
                    return True
    return False
