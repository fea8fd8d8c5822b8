"""The warm ape the script tests run `ape run` through (tests.scripts.helpers.WarmApe) behaves as a
new interpreter running the console script: the same output on stdout and stderr, the same exit
status, for a help, a usage error, ape's own error and a script's failure to connect."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.scripts.helpers import ape

pytestmark = [pytest.mark.slow, pytest.mark.anvil]  # with the other script tests


def fresh(*args: str) -> subprocess.CompletedProcess[str]:
    """The same run in a new interpreter (`ape` starts one for an environment it is given)."""
    return ape(*args, env=dict(os.environ))


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


def test_a_warm_run_sees_the_environment_as_it_is_at_the_call(monkeypatch: pytest.MonkeyPatch):
    """The server started with the test process's environment; a variable set after it started
    reaches the run (here the RPC URL ape-config.yaml reads for base:sepolia: set to a port
    where nothing listens, the script says no node answers there, not that the URL is unset)."""
    monkeypatch.delenv("PROOFMINT_BASE_SEPOLIA_RPC", raising=False)
    unset = ape("deploy", "--network", "base:sepolia")
    assert unset.returncode == 1 and "has no node URL" in unset.stderr
    monkeypatch.setenv("PROOFMINT_BASE_SEPOLIA_RPC", "http://127.0.0.1:9")
    set_now = ape("deploy", "--network", "base:sepolia")
    assert set_now.returncode == 1 and "has no node URL" not in set_now.stderr
    assert set_now.stderr == fresh("deploy", "--network", "base:sepolia").stderr
