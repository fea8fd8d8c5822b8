"""A warm `ape` for the script tests: a Python process that imports ape, its plugins and what the
scripts import once, then forks one child per `ape run` it is asked for.

Each `ape run` of the tests is still a process of its own, started as the console script starts
one (`ape._cli.cli` with the arguments, its own working directory, environment, stdin from
/dev/null, stdout and stderr to files, exit status as the interpreter gives it, exit handlers
run). What it does not do again is import about 2,400 modules: about 3.5 s of CPU of each run's
4.5 s on a 2-core machine, and the script tests start about 85 runs.

Started by `tests.scripts.helpers.ape` as `python -m tests.scripts.ape_server` in the project
root. Protocol, one JSON object a line: the test sends {"args", "cwd", "env", "stdout",
"stderr"}; the server answers {"pid"} once the child is forked and {"rc"} once it has ended (a
signal's death as -N, as `subprocess` reports it). Requests are served one at a time.
"""

from __future__ import annotations

import atexit
import importlib
import json
import os
import sys
import threading
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

PRELOAD = (
    "ape",
    "ape._cli",
    "ape_run._cli",
    "ape.cli",
    "ape.utils.basemodel",
    "ape_ethereum.provider",
    "ape_ethereum.ecosystem",
    "ape_foundry.provider",
    "ape_node.provider",
    "ape_test.provider",
    "ape_accounts.accounts",
    "ape_solidity.compiler",
    "ape_optimism.ecosystem",
    "ape_arbitrum.ecosystem",
    "ape_base.ecosystem",
    "eth.chains.base",
    "web3",
    "pandas",
    "IPython.lib.pretty",
    "agents.api.paywall",
    "agents.core.settlement",
    "agents.deploy.operator",
    "agents.storage.derivative",
)
"""What an `ape run` of a script imports that takes time (`python -X importtime`); nothing is
run, so each child starts from ape's state at import, as a new process does."""


def _exit_code(code: Any) -> int:
    """The status the interpreter gives `SystemExit(code)`."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def _redirect(path: str, fd: int) -> None:
    opened = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(opened, fd)
    os.close(opened)


def _child(request: dict[str, Any]) -> None:
    """The forked child: becomes `ape ARGS` and never returns."""
    status = 1
    try:
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        _redirect(request["stdout"], 1)
        _redirect(request["stderr"], 2)
        sys.stdin = open(0, closefd=False)  # noqa: SIM115 (the process's own stdin, kept open)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.path[0] = str(ROOT / ".venv" / "bin")  # as the console script's interpreter has it
        sys.argv = [str(ROOT / ".venv" / "bin" / "ape"), *request["args"]]
        from ape._cli import cli

        try:
            cli.main(args=list(request["args"]), prog_name="ape")
            status = 0
        except SystemExit as done:
            status = _exit_code(done.code)
        except BaseException:
            traceback.print_exc()
            status = 1
        for thread in threading.enumerate():  # the interpreter waits for these at exit
            if thread is not threading.main_thread() and not thread.daemon:
                thread.join()
        atexit._run_exitfuncs()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(status)


def serve() -> None:
    for name in PRELOAD:
        importlib.import_module(name)
    answer = sys.stdout
    print(json.dumps({"ready": True}), file=answer, flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _child(request)
        print(json.dumps({"pid": pid}), file=answer, flush=True)
        _, status = os.waitpid(pid, 0)
        print(json.dumps({"rc": os.waitstatus_to_exitcode(status)}), file=answer, flush=True)


if __name__ == "__main__":
    serve()
