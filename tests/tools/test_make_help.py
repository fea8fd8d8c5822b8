"""`make help` lists every target the Makefile declares phony, digits and all (`train-t2i`)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_make_help_lists_every_phony_target_with_its_description():
    makefile = (ROOT / "Makefile").read_text(encoding="utf8")
    (phony,) = re.findall(r"^\.PHONY:(.*)$", makefile, flags=re.MULTILINE)
    targets = set(phony.split())
    shown = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    listed = {line.split()[1]: line for line in shown.splitlines() if line.startswith("  make ")}
    assert set(listed) == targets, sorted(targets ^ set(listed))
    assert all(len(line.split()) > 2 for line in listed.values()), "each target says what it does"
    assert "train-t2i" in listed
