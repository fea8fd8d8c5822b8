"""How the agents' worker pools start their processes (`agents.runtime.processes.worker_context`)."""

from __future__ import annotations

import os
import sys
from concurrent.futures import ProcessPoolExecutor

from agents.runtime.processes import WORKER_PRELOAD, ignore_interrupts, worker_context


def _what_a_worker_started_with() -> tuple[list[str], int]:
    return [name for name in WORKER_PRELOAD if name in sys.modules], os.getppid()


def test_workers_fork_from_a_server_that_imported_the_heavy_libraries_once():
    """Each worker starts with torch, diffusers and ezkl imported (the fork server imported them,
    not the worker, and not this process's own imports), and its parent is the fork server, one
    for every pool of this process."""
    context = worker_context()
    assert context.get_start_method() == "forkserver"
    parents = set()
    for _ in range(2):  # two pools: one server
        with ProcessPoolExecutor(max_workers=2, mp_context=context, initializer=ignore_interrupts) as pool:
            for imported, parent in [pool.submit(_what_a_worker_started_with).result() for _ in range(2)]:
                assert imported == list(WORKER_PRELOAD)
                assert parent != os.getpid()
                parents.add(parent)
    assert len(parents) == 1
