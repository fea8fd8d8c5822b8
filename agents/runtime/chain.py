"""The chain as the daemons see it: a web3 connection, one signing key with its nonce-managed
sender, and the core contracts at their addresses with the ABIs `ape compile` wrote.

Reads (`call`) run in a worker thread, retried as RPC calls; writes (`transact`) go through the
key's `TxSender`: journaled before broadcast, checked before it is sent (simulated on a node
behind a URL; on the in-process chain applied once and undone if it reverted, see
`agents.runtime.inprocess`), awaited with replacement when stuck. One `ChainClient` per key:
daemons sharing a key in one process share the client (and so the nonce).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from agents.core.errors import PermanentError
from agents.core.reverts import error_table
from agents.runtime.inprocess import node_executor
from agents.runtime.journal import Journal
from agents.runtime.retry import Backoff, call_node
from agents.runtime.sender import RPC_BACKOFF, TxSender

CORE = ("ModelRegistry", "ProvenanceRegistry", "LicenseManager", "RoyaltySplitter")


class ChainConfigError(PermanentError, ValueError):
    """Contract artifacts or addresses are missing or malformed."""


def tx_hash_hex(value: Any) -> str:
    """A transaction hash (bytes, HexBytes or text) as the journal keeps it: hex, no 0x."""
    text = value.hex() if hasattr(value, "hex") else str(value)
    return text.removeprefix("0x")


def load_abis(root: Path, names: Iterable[str] = CORE) -> dict[str, list[dict[str, Any]]]:
    """The ABIs of `names` from ape's build manifest (`.build/__local__.json`)."""
    path = root / ".build" / "__local__.json"
    try:
        types = json.loads(path.read_text(encoding="utf8"))["contractTypes"]
        return {name: list(types[name]["abi"]) for name in names}
    except (OSError, ValueError, KeyError) as exc:
        raise ChainConfigError(f"{path}: no compiled contracts ({exc}); run `make compile` first") from exc


def load_addresses(path: Path) -> dict[str, str]:
    """Contract addresses from a deployment record (`ape run deploy` writes one per network)."""
    try:
        data = json.loads(path.read_text(encoding="utf8"))
        addresses = {str(c["name"]): str(c["address"]) for c in data["contracts"]}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ChainConfigError(f"{path}: not a deployment record ({exc})") from exc
    missing = [name for name in CORE if name not in addresses]
    if missing:
        raise ChainConfigError(f"{path}: no address for {', '.join(missing)}")
    return addresses


class ChainClient:
    """See the module docstring."""

    def __init__(
        self,
        web3: Any,
        account: Any,
        journal: Journal,
        addresses: Mapping[str, str],
        abis: Mapping[str, list[dict[str, Any]]],
        *,
        backoff: Backoff = RPC_BACKOFF,
        **sender_options: Any,
    ) -> None:
        self.web3, self.account, self.backoff = web3, account, backoff
        self.address: str = account.address
        self.contracts = {
            name: web3.eth.contract(address=web3.to_checksum_address(addresses[name]), abi=abis[name])
            for name in abis
            if name in addresses
        }
        self.errors = error_table(abis.values())
        self.sender = TxSender(web3, account, journal, errors=self.errors, backoff=backoff, **sender_options)
        self._started = False
        self.executor = node_executor(web3)

    async def start(self) -> list[dict[str, Any]]:
        """Reconciles the key's previous transactions (once per client)."""
        if self._started:
            return []
        self._started = True
        return await self.sender.start()

    def contract(self, name: str) -> Any:
        try:
            return self.contracts[name]
        except KeyError:
            raise ChainConfigError(f"no address for {name}") from None

    async def call(self, name: str, function: str, *args: Any) -> Any:
        bound = self.contract(name).get_function_by_name(function)(*args)
        return await call_node(bound.call, backoff=self.backoff, executor=self.executor)

    async def node(self, function: Any, *args: Any) -> Any:
        """Any other node call (`web3.eth.get_block`, ...), on the node's thread, retried."""
        return await call_node(function, *args, backoff=self.backoff, executor=self.executor)

    async def block_number(self) -> int:
        return int(await call_node(lambda: self.web3.eth.block_number, backoff=self.backoff, executor=self.executor))

    async def transact(
        self, name: str, function: str, *args: Any, value: int = 0, label: str = "", keys: Iterable[str] = ()
    ) -> dict[str, Any]:
        contract = self.contract(name)
        data = bytes.fromhex(contract.encode_abi(function, args=list(args))[2:])
        return await self.sender.send_and_wait(
            contract.address, data, value=value, label=label or f"{name}.{function}", keys=keys
        )

    def logs(self, name: str, event: str, receipt: Mapping[str, Any]) -> list[Any]:
        """The `event` logs a receipt holds, decoded."""
        from web3.logs import DISCARD

        return list(self.contract(name).events[event]().process_receipt(receipt, errors=DISCARD))

    async def get_logs(
        self,
        name: str,
        event: str,
        *,
        from_block: int,
        argument_filters: dict[str, Any],
        to_block: int | None = None,
    ) -> list[Any]:
        getter = self.contract(name).events[event]().get_logs

        def fetch() -> list[Any]:
            return list(getter(from_block=from_block, to_block=to_block, argument_filters=argument_filters))

        return await call_node(fetch, backoff=self.backoff, executor=self.executor)
