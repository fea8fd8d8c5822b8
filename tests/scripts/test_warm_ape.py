"""The warm ape the script tests run `ape run` through (tests.scripts.helpers.WarmApe) behaves as a
new interpreter running the console script: the same output on stdout and stderr, the same exit
status, for a help, a usage error, ape's own error and a script's failure to connect."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.scripts.helpers import ROOT, ape

pytestmark = [pytest.mark.slow, pytest.mark.anvil]  # with the other script tests


def fresh(*args: str) -> subprocess.CompletedProcess[str]:
    environment = dict(os.environ)
    environment["PATH"] = f"{ROOT / '.venv' / 'bin'}:{ROOT / 'node_modules' / '.bin'}:{environment['PATH']}"
    return subprocess.run(
        [str(ROOT / ".venv" / "bin" / "ape"), "run", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.mark.parametrize(
    "args",
    [
        ("license", "--help"),  # exit 0, the help on stdout
        ("license", "attach", "--no-such-option"),  # click's usage error: exit 2 on stderr
        ("no-such-script",),  # ape's own error
        ("settle", "--vouchers", "/nonexistent/vouchers.jsonl", "--network", "http://127.0.0.1:9"),
    ],
)
def test_a_warm_run_prints_and_exits_as_a_new_interpreter_does(args: tuple[str, ...]):
    warm, new = ape(*args), fresh(*args)
    assert (warm.returncode, warm.stdout, warm.stderr) == (new.returncode, new.stdout, new.stderr)
