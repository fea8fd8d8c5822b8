"""Deploy proofmint's contracts: `ape run deploy [--network ecosystem:network:provider] [--account ALIAS]`.

On a local chain (the embedded default, or anvil) the first test account deploys unless told
otherwise. On a live network an ape account alias is required, the plan is shown, and nothing is
broadcast until you confirm (or pass --yes); the addresses are then written to deployments/.
"""

from __future__ import annotations

import click
from ape import accounts, chain, project
from ape.cli import ConnectedProviderCommand

from agents.deployment import CORE_CONTRACTS, deploy_core, format_table, is_live, record_deployment
from agents.toolchain import project_root


@click.command(cls=ConnectedProviderCommand)
@click.option(
    "--account", "account_alias", default=None, help="ape account alias (default on local chains: test account 0)"
)
@click.option("--yes", is_flag=True, help="Broadcast on a live network without asking")
def cli(network, account_alias, yes):  # type: ignore[no-untyped-def]
    """Deploy the core contracts and print their addresses and gas."""
    live = is_live(network.name)
    if account_alias is None:
        if live:
            raise click.UsageError("--account ALIAS is required on a live network (see `ape accounts list`)")
        account = accounts.test_accounts[0]
    elif account_alias.startswith("test:"):
        account = accounts.test_accounts[int(account_alias.split(":", 1)[1])]
    else:
        account = accounts.load(account_alias)

    choice = f"{network.ecosystem.name}:{network.name}"
    click.echo(f"network   {choice} (chain id {chain.chain_id})")
    click.echo(f"deployer  {account.address}")
    click.echo(f"contracts {', '.join(CORE_CONTRACTS)}")
    if live and not yes:
        click.confirm(f"Broadcast {len(CORE_CONTRACTS)} deployment(s) on {choice}?", abort=True)

    deployed = deploy_core(project, account, chain)
    click.echo("")
    click.echo(format_table(deployed))
    if live:
        path = record_deployment(project_root(), choice, chain.chain_id, deployed)
        click.echo(f"recorded  {path}")
