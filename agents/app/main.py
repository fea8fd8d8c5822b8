"""The `proofmint` command line."""

from __future__ import annotations

import sys

import click

from agents import __version__
from agents.app.commands import agent_command, costs_command, request_command, up_command
from agents.app.pay_cli import pay_command
from agents.app.review_cli import review_group
from agents.app.scale_cli import scale_command
from agents.app.store_cli import cid_command, store_group
from agents.app.verify_cli import verify_command
from agents.app.zk_cli import zk
from agents.core.errors import ProofmintError
from agents.core.toolchain import check_all, project_root
from zkml.errors import ZkmlError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="proofmint")
def cli() -> None:
    """proofmint: provenance, licensing and royalties for AI-generated media.

    The main job runs with `make demo`; the tests with `make test`.
    """


@cli.command()
def doctor() -> None:
    """Check the toolchain (Node.js, solc, OpenZeppelin, anvil) and say what is missing."""
    statuses = check_all(project_root())
    width = max(len(s.name) for s in statuses)
    for status in statuses:
        mark = "ok " if status.ok else "MISSING"
        line = f"{status.name:<{width}}  {mark:<7}  {status.detail}"
        if not status.ok and status.hint:
            line += f"\n{'':<{width}}           -> {status.hint}"
        click.echo(line)
    if not all(s.ok for s in statuses):
        raise SystemExit(1)


cli.add_command(zk)
cli.add_command(cid_command)
cli.add_command(store_group)
cli.add_command(agent_command)
cli.add_command(up_command)
cli.add_command(request_command)
cli.add_command(costs_command)
cli.add_command(pay_command)
cli.add_command(verify_command)
cli.add_command(review_group)
cli.add_command(scale_command)


def main() -> None:
    """Console-script entry point: a ProofmintError (or zkml's ZkmlError) prints its message, not a
    traceback."""
    try:
        cli(standalone_mode=True)
    except (ProofmintError, ZkmlError) as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(2)
