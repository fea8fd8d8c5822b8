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
