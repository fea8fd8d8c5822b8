"""ape's search for console.log output skipped where it can find none: on the embedded chain.

After every transaction to a contract, ape prints the contract's debug logs
(`ape_ethereum.provider._post_send_transaction` -> `ReceiptAPI.show_debug_logs`): calls to the
console.log address found in the transaction's call tree. The embedded chain (ape_test's
`LocalProvider`, eth-tester) has no tracing RPC, so its call tree is the basic one: the root call
alone, whose returndata ape gets by executing the whole transaction again as an `eth_call`. A
basic tree has no subcalls, so it holds a debug log only when the transaction itself is sent to
the console.log address (or is a Vyper print); for any other receiver the search replays the
transaction in py-evm to find nothing: in test_provenance_registry, test_royalty_splitter,
test_model_registry and test_license_manager, 1,347 replays took 31 s of the 148 s of CPU (23 ms
a transaction). Here it is skipped for exactly those receivers on that
provider; anywhere else (anvil, a console.log receiver) ape's own method runs unchanged."""

from __future__ import annotations

from typing import Any


def finds_nothing(receipt: Any) -> bool:
    """Whether ape's debug-log search of `receipt` is certain to find nothing: a basic call tree
    (the embedded provider's) whose root call is not to the console.log address."""
    from ape_ethereum._print import CONSOLE_ADDRESS
    from ape_test.provider import LocalProvider

    receiver = str(receipt.receiver or "")
    return isinstance(receipt.provider, LocalProvider) and receiver.lower() != CONSOLE_ADDRESS.lower()


def install() -> None:
    """Wrap `ReceiptAPI.show_debug_logs` (once per process)."""
    from ape.api.transactions import ReceiptAPI

    original = ReceiptAPI.show_debug_logs
    if getattr(original, "skips_basic_trees", False):
        return

    def show_debug_logs(self: Any) -> None:
        if finds_nothing(self):
            return
        original(self)

    show_debug_logs.skips_basic_trees = True  # type: ignore[attr-defined]
    show_debug_logs.__wrapped__ = original  # type: ignore[attr-defined]
    show_debug_logs.__doc__ = original.__doc__
    ReceiptAPI.show_debug_logs = show_debug_logs  # type: ignore[method-assign]
