"""What every `ape run` script needs: where it acts, as whom, and on which deployment.

- `Target`: the network a script is connected to, whether it is live (real money: confirm before
  broadcasting, accounts from `ape accounts` only) and whether its state dies with the process
  (the embedded in-process chain).
- `resolve_account`: an ape account alias, `test:N` on development chains, test account 0 by
  default there.
- `record_path` / `load_core`: deployments are recorded per network (live ones in `deployments/`,
  committed; development chains such as a running anvil in `.cache/deployments/`, ignored), and
  the scripts after `deploy` find the contracts there, checking the chain id and that code is
  still at every address (a restarted anvil has lost it).
- `Session`: a script's target, account and contracts; `simulate` runs a transaction on the
  pending state before it is sent, `read` makes a view call, and both name a revert's custom
  error with its arguments.
- `cli_errors`: every failure a script meets on purpose (a permanent error, a revert, a node's
  refusal, an ape error) ends it with one line on stderr and exit status 1, never a stack dump.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from agents.core.errors import PermanentError
from agents.core.reverts import WouldRevertError, error_table, preflight
from agents.core.toolchain import project_root
from agents.deploy.deployment import CORE_CONTRACTS, Deployed, deploy_core, is_live, record_deployment

DEV_CHAIN_IDS = frozenset({1337, 31337})
"""Chain ids of development chains (the embedded chain, anvil, geth --dev); nobody runs a public
network on them, so a node URI that answers with one is treated as local."""


class DeploymentMissingError(PermanentError, LookupError):
    """The script's network has no usable proofmint deployment; the message says how to make one."""


@dataclass(frozen=True)
class Target:
    """Where a script acts."""

    choice: str
    """`ecosystem:network`, or the node URI for a custom network."""
    chain_id: int
    live: bool
    ephemeral: bool
    """The embedded chain: a fresh chain in every process, so nothing recorded outlives it."""


@dataclass(frozen=True)
class CoreContracts:
    """The four core contracts as ape contract instances."""

    models: Any
    provenance: Any
    licenses: Any
    splitter: Any

    @classmethod
    def at(cls, project: Any, addresses: dict[str, str]) -> CoreContracts:
        return cls(
            models=project.ModelRegistry.at(addresses["ModelRegistry"]),
            provenance=project.ProvenanceRegistry.at(addresses["ProvenanceRegistry"]),
            licenses=project.LicenseManager.at(addresses["LicenseManager"]),
            splitter=project.RoyaltySplitter.at(addresses["RoyaltySplitter"]),
        )

    def errors(self) -> dict[bytes, tuple[str, list[str], list[str]]]:
        """Selector table of every custom error the core contracts can revert with."""
        contracts = (self.models, self.provenance, self.licenses, self.splitter)
        return error_table(
            [item.model_dump(mode="json", by_alias=True) for item in c.contract_type.abi] for c in contracts
        )


def target_of(network: Any, provider: Any, chain_id: int) -> Target:
    """Describe the connected network. A custom node URI is named by the URI itself."""
    if network.name == "custom":
        choice = str(getattr(provider, "uri", None) or "custom")
    else:
        choice = f"{network.ecosystem.name}:{network.name}"
    live = is_live(network.name) and chain_id not in DEV_CHAIN_IDS
    ephemeral = network.name == "local" and provider.name == "test"
    return Target(choice=choice, chain_id=chain_id, live=live, ephemeral=ephemeral)


def resolve_account(accounts: Any, alias: str | None, target: Target) -> Any:
    """The account a script acts as. Live networks need an explicit ape account alias."""
    if alias is None:
        if target.live:
            raise PermanentError("--account ALIAS is required on a live network (see `ape accounts list`)")
        return accounts.test_accounts[0]
    if alias.startswith("test:"):
        if target.live:
            raise PermanentError("test accounts have public keys; use an `ape accounts` alias on a live network")
        index = alias.split(":", 1)[1]
        if not index.isdigit() or int(index) >= len(accounts.test_accounts):
            raise PermanentError(f"{alias}: expected test:N with N below {len(accounts.test_accounts)}")
        return accounts.test_accounts[int(index)]
    try:
        return accounts.load(alias)
    except (KeyError, ValueError) as exc:
        raise PermanentError(f"no ape account with alias {alias!r} (see `ape accounts list`)") from exc


def record_path(root: Path, target: Target) -> Path:
    """Where the deployment of `target` is recorded."""
    stem = re.sub(r"[^A-Za-z0-9.-]+", "_", target.choice).strip("_")
    folder = root / "deployments" if target.live else root / ".cache" / "deployments"
    return folder / f"{stem}.json"


def record(root: Path, target: Target, deployed: list[Deployed]) -> Path | None:
    """Record a deployment where `load_core` finds it; nothing for the embedded chain."""
    if target.ephemeral:
        return None
    path = record_path(root, target)
    return record_deployment(path, target.choice, target.chain_id, deployed)


def load_core(project: Any, chain: Any, account: Any, root: Path, target: Target) -> tuple[CoreContracts, str]:
    """The core contracts of `target`, and a line saying where they came from.

    On the embedded chain nothing persists between processes, so the core contracts are deployed
    first (from `account`) and the caller is told so.
    """
    if target.ephemeral:
        deployed = deploy_core(project, account, chain)
        addresses = {d.name: d.address for d in deployed}
        return CoreContracts.at(project, addresses), "embedded chain: deployed the core contracts first"
    path = record_path(root, target)
    deploy_hint = f"run `ape run deploy --network {target.choice}` first"
    if not path.is_file():
        raise DeploymentMissingError(f"no proofmint deployment recorded for {target.choice} ({path}); {deploy_hint}")
    try:
        data = json.loads(path.read_text(encoding="utf8"))
        addresses = {c["name"]: c["address"] for c in data["contracts"]}
        recorded_chain = int(data["chainId"])
    except (ValueError, KeyError, TypeError) as exc:
        raise DeploymentMissingError(f"{path} is not a deployment record ({exc}); {deploy_hint}") from exc
    if recorded_chain != target.chain_id:
        raise DeploymentMissingError(
            f"{path} is for chain {recorded_chain} but {target.choice} is chain {target.chain_id}; {deploy_hint}"
        )
    for name in CORE_CONTRACTS:
        if name not in addresses:
            raise DeploymentMissingError(f"{path} has no {name}; {deploy_hint}")
    for name in CORE_CONTRACTS:
        if len(chain.provider.get_code(addresses[name])) == 0:
            raise DeploymentMissingError(
                f"no code at {addresses[name]} ({name} in {path}): the chain was reset since; {deploy_hint}"
            )
    return CoreContracts.at(project, addresses), f"deployment {path}"


@dataclass(frozen=True)
class Session:
    """A script's context: where it acts, as whom, on which contracts."""

    target: Target
    account: Any
    core: CoreContracts
    origin: str
    web3: Any
    errors: dict[bytes, tuple[str, list[str], list[str]]]
    """Selector table of the core contracts' custom errors, built once per session."""

    def simulate(self, contract: Any, method: str, *args: Any, value: int = 0) -> bytes:
        """Run the call on the pending state as this account; its return data, or
        WouldRevertError naming the custom error. Call before every broadcast."""
        tx = {
            "from": str(self.account.address),
            "to": str(contract.address),
            "data": getattr(contract, method).encode_input(*args),
            "value": value,
        }
        return preflight(self.web3, tx, self.errors)

    def read(self, contract: Any, method: str, *args: Any) -> Any:
        """A view call on the pending state, decoded as ape decodes it (a struct's fields by name,
        one output unwrapped). A revert raises WouldRevertError naming the custom error and the
        call (`LicenseManager.getTerms(99) reverted: LicenseManager__UnknownTerms(termsId=99)`),
        where ape's own call would print a call trace and the error's raw bytes."""
        handler = getattr(contract, method)
        data = bytes(handler.encode_input(*args))
        ecosystem = contract.provider.network.ecosystem
        abi = next(a for a in handler.abis if bytes(ecosystem.get_method_selector(a)) == data[:4])
        tx = {"from": str(self.account.address), "to": str(contract.address), "data": data}
        try:
            raw = preflight(self.web3, tx, self.errors)
        except WouldRevertError as exc:
            shown = ", ".join(str(arg) for arg in args)
            detail = str(exc).removeprefix("would revert: ")
            raise WouldRevertError(f"{contract.contract_type.name}.{method}({shown}) reverted: {detail}") from exc
        decoded = ecosystem.decode_returndata(abi, raw)
        if isinstance(decoded, list | tuple) and len(decoded) < 2:
            return decoded[0] if decoded else None
        return decoded

    def transact(self, contract: Any, method: str, *args: Any, value: int = 0, yes: bool, action: str) -> Any:
        """Simulate, confirm on a live network, then send; returns the receipt."""
        self.simulate(contract, method, *args, value=value)
        confirm_broadcast(self.target, yes, action)
        return getattr(contract, method)(*args, sender=self.account, value=value)


def open_session(ape: Any, network: Any, provider: Any, alias: str | None) -> Session:
    """Resolve the target, the account and the deployment for a script. `ape` is the `ape` module
    (its `accounts`, `chain` and `project`), passed in so this module stays importable without a
    connected provider."""
    target = target_of(network, provider, int(ape.chain.chain_id))
    account = resolve_account(ape.accounts, alias, target)
    core, origin = load_core(ape.project, ape.chain, account, project_root(), target)
    return Session(
        target=target,
        account=account,
        core=core,
        origin=origin,
        web3=ape.chain.provider.web3,
        errors=core.errors(),
    )


def confirm_broadcast(target: Target, yes: bool, action: str) -> None:
    """Ask before broadcasting on a live network, unless `--yes`; aborts the command on "no"."""
    if target.live and not yes:
        click.confirm(f"{action} on {target.choice} (chain {target.chain_id})?", abort=True)


def _one_line(text: str) -> str:
    return " ".join(text.split())


_CUSTOM_ERROR = re.compile(r"custom error (0x[0-9a-fA-F]{8})")


def _ape_revert(exc: Exception) -> str:
    """What an ape `ContractLogicError` says, readable. ape keeps a custom error's arguments only
    as text it decoded from the raw bytes (NULs and all); a node's message still names the 4-byte
    selector (anvil: `custom error 0x43ad4751: ...`), which is looked up among the project's errors.
    Reads and simulations go through `Session.read` / `Session.simulate`, which keep the bytes and
    name the arguments too: this is the fallback for a revert met only when sending."""
    texts = [str(getattr(exc, "revert_message", "") or ""), str(getattr(exc, "base_err", "") or ""), str(exc)]
    for text in texts:
        if match := _CUSTOM_ERROR.search(text):
            with suppress(Exception):  # the project's ABIs are a nicety here, never a new failure
                import ape

                abis = [
                    [i.model_dump(mode="json", by_alias=True) for i in getattr(ape.project, name).contract_type.abi]
                    for name in CORE_CONTRACTS
                ]
                found = error_table(abis).get(bytes.fromhex(match.group(1)[2:]))
                if found is not None:
                    return f"{found[0]}(...)"
            return f"unknown error {match.group(1)}"
    message = texts[0] or texts[2]
    printable = message.isprintable() and message.strip()
    return _one_line(message) if printable else "reverted (the error's data was lost on the way: simulate it again)"


@contextmanager
def cli_errors() -> Iterator[None]:
    """Turn proofmint's, the chain's and the node's refusals into one-line click errors (no
    traceback): a permanent error (the agents' or zkml's) says what to fix, a revert names the
    contract's custom error, a node's refusal (insufficient funds, a nonce too low) says what the
    node said, and any other ape error its message."""
    from ape.exceptions import ApeException, ContractLogicError
    from web3.exceptions import Web3RPCError

    from zkml.errors import ZkmlError

    try:
        yield
    except (PermanentError, ZkmlError) as exc:
        raise click.ClickException(str(exc)) from exc
    except ContractLogicError as exc:
        raise click.ClickException(f"the transaction would revert: {_ape_revert(exc)}") from exc
    except Web3RPCError as exc:
        raise click.ClickException(f"the node refused it: {_one_line(str(exc.message or exc))}") from exc
    except ApeException as exc:
        raise click.ClickException(f"{_one_line(str(exc))} ({type(exc).__name__})") from exc
