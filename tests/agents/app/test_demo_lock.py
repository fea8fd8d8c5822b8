"""Two demos in one checkout: the second is refused at once, saying why, instead of deleting the
first one's agents' state (each run removes `.cache/demo` and starts afresh)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from agents.app.demo import only_run
from agents.core.errors import PermanentError

ROOT = Path(__file__).resolve().parents[3]

pytestmark = pytest.mark.offchain  # no chain: once, in the anvil pass

HOLD = """
import sys, time
from pathlib import Path
from agents.app.demo import only_run
with only_run(Path(sys.argv[1])):
    print("holding", flush=True)
    time.sleep(60)
"""


def test_a_second_demo_is_refused_while_one_runs_and_runs_after(tmp_path: Path):
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        with pytest.raises(PermanentError, match="another demo is running"), only_run(tmp_path):
            pytest.fail("ran beside another demo")
    finally:
        holder.kill()
        holder.wait()
    ran = []
    with only_run(tmp_path):  # the kernel released the dead holder's lock
        ran.append(True)
    with only_run(tmp_path):  # and a run releases its own
        ran.append(True)
    assert ran == [True, True]
