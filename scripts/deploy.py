"""Deploy proofmint's contracts: `ape run deploy [--network ecosystem:network:provider] [--account ALIAS]`.

On a development chain (the embedded default, anvil, any node answering chain id 1337 or 31337)
the first test account deploys unless told otherwise. On a live network an ape account alias is
required, the plan is shown, and nothing is broadcast until you confirm (or pass --yes).
The addresses are recorded where the other scripts find them: `deployments/` for live networks,
`.cache/deployments/` for development chains (not for the embedded chain, which ends with the
process).
"""

from __future__ import annotations

import ape
import click

from agents.core.toolchain import project_root
from agents.deploy.deployment import CORE_CONTRACTS, deploy_core, format_table
from agents.deploy.operator import cli_errors, confirm_broadcast, record, resolve_account, target_of
from scripts._cli import OperatorCommand


@click.command(cls=OperatorCommand)
@click.option("--account", "account_alias", default=None, help="ape account alias, or test:N on development chains")
@click.option("--yes", is_flag=True, help="Broadcast on a live network without asking")
def cli(network, provider, account_alias, yes):  # type: ignore[no-untyped-def]
    """Deploy the core contracts and print their addresses and gas."""
    with cli_errors():
        target = target_of(network, provider, ape.chain.chain_id)
        account = resolve_account(ape.accounts, account_alias, target)
        click.echo(f"network   {target.choice} (chain id {target.chain_id}{', live' if target.live else ''})")
        click.echo(f"deployer  {account.address}")
        click.echo(f"contracts {', '.join(CORE_CONTRACTS)}")
        confirm_broadcast(target, yes, f"Broadcast {len(CORE_CONTRACTS)} deployments")
        deployed = deploy_core(ape.project, account, ape.chain)
        click.echo("")
        click.echo(format_table(deployed))
        path = record(project_root(), target, deployed)
        if path is not None:
            click.echo(f"recorded  {path}")
