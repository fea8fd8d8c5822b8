"""How the agents' worker pools start their processes (`agents.runtime.processes.worker_context`)."""

from __future__ import annotations

import json
import subprocess
import sys

from agents.core.toolchain import project_root

# In a process of its own: the fork server is one per process, and its preload is the first
# pool's (an earlier test in this process may have started one with another preload).
SCRIPT = """
import json, os, sys
from concurrent.futures import ProcessPoolExecutor
from agents.runtime.processes import MODEL_PRELOAD, ignore_interrupts, worker_context

def started_with():
    return [name for name in MODEL_PRELOAD if name in sys.modules], os.getppid()

if __name__ == "__main__":
    context = worker_context(MODEL_PRELOAD)
    seen = []
    for _ in range(2):  # two pools
        with ProcessPoolExecutor(max_workers=2, mp_context=context, initializer=ignore_interrupts) as pool:
            seen += [pool.submit(started_with).result() for _ in range(2)]
    print(json.dumps({"method": context.get_start_method(), "me": os.getpid(), "seen": seen,
                      "here": [name for name in MODEL_PRELOAD if name in sys.modules]}))
"""


def test_workers_fork_from_a_server_that_imported_the_model_libraries_once(tmp_path):  # type: ignore[no-untyped-def]
    """Each worker starts with torch and diffusers imported (the fork server imported them: not
    the worker, and not the pool's process, which never did), and its parent is the fork server,
    one for both pools of the process."""
    script = tmp_path / "pools.py"
    script.write_text(SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script)], cwd=project_root(), capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["method"] == "forkserver" and out["here"] == []
    assert [imported for imported, _ in out["seen"]] == [["torch", "diffusers"]] * 4
    parents = {parent for _, parent in out["seen"]}
    assert len(parents) == 1 and parents != {out["me"]}


BLAS_SCRIPT = """
import asyncio, ctypes, json, sys
from pathlib import Path
import numpy
from agents.app.wiring import load_models
from agents.core.toolchain import project_root
from agents.runtime.processes import limit_blas_threads

library = next((Path(numpy.__file__).parent.parent / "numpy.libs").glob("libopenblas*"))
threads = ctypes.CDLL(str(library)).openblas_get_num_threads64_
seen = {"start": threads(), "empty_folder": limit_blas_threads(1, [sys.argv[1]])}
seen["after_empty_folder"] = threads()
seen["set_2"] = limit_blas_threads(2)
seen["after_2"] = threads()
asyncio.run(load_models(project_root(), names=[]))  # a daemon's default: agent_threads=1
seen["daemon"] = threads()
print(json.dumps(seen))
"""


def test_a_daemon_runs_numpys_blas_on_its_agent_threads(tmp_path):  # type: ignore[no-untyped-def]
    """`load_models` (every daemon's start) puts numpy's bundled OpenBLAS on `agent_threads`
    threads, as it does torch: OpenBLAS's default is one thread per core. A folder without
    OpenBLAS changes nothing and says so. In a process of its own (the setting is process-wide),
    with OPENBLAS_NUM_THREADS unset."""
    import os

    script = tmp_path / "blas.py"
    script.write_text(BLAS_SCRIPT)
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path)],
        cwd=project_root(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["start"] >= min(2, os.cpu_count() or 1)  # OpenBLAS's default: a thread per core
    assert seen["empty_folder"] is False and seen["after_empty_folder"] == seen["start"]
    assert seen["set_2"] is True and seen["after_2"] == min(2, seen["start"])
    assert seen["daemon"] == 1
