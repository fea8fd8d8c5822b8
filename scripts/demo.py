"""The main job: `make demo` (`ape run demo [--count N] [--out DIR]`), on the embedded chain: deploy,
generate, curate, publish, register, prove, licence, pay, settle, distribute, report (what each
step does: `agents.app.demo`).

The run is imported when the command runs: `ape run` loads every script to list its commands, and
the agents this one starts would otherwise be imported by every other script's run too.
"""

from __future__ import annotations

from pathlib import Path

import click
from ape.cli import ConnectedProviderCommand


@click.command(cls=ConnectedProviderCommand)
@click.option("--count", type=click.IntRange(1, 64), default=8, show_default=True, help="Prompts to generate")
@click.option("--seed", type=int, default=7, show_default=True, help="Seed for prompts and generation")
@click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path), default=Path("artifacts/demo"), show_default=True
)
@click.option(
    "--upscale/--no-upscale",
    default=True,
    show_default=True,
    help="Run the upscaler: each registered base of the operator's gets an x2 upscale, a derivative of its own",
)
def cli(network, provider, count, seed, out, upscale):  # type: ignore[no-untyped-def]
    """Run the whole product once on a development chain and write a report."""
    from agents.app.demo import run

    run(network, provider, count, seed, out, upscale)
