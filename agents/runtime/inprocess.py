"""What changes when the node is in this process (ape's embedded chain: py-evm behind
eth-tester, reached through web3's `EthereumTesterProvider`) rather than behind a URL.

1. py-evm is not thread-safe: two calls from two threads interleave inside one state and fail
   in odd ways ("Invalid transaction nonce: expected 10, got 9" from a plain `eth_call`). Every
   call the daemons make to an in-process node goes through one thread, `node_executor(web3)`;
   calls to a remote node run on any worker thread. (Code that uses ape on the same chain from
   the main thread must not do so while daemons run.)
2. eth-tester estimates gas by a binary search over full executions of the transaction, about
   eight of them, which makes estimation most of the cost of a transaction on this chain.
   `estimate_gas_once(web3, tx)` is the sender's explicit choice on this chain: one execution
   at the block gas limit, intrinsic gas plus the execution's gas (before refunds) plus 1/63
   for the gas a call must leave behind (EIP-150). The sender adds its own 20% margin on top.
   The estimator is in place for that one call only (on the node thread), so ape and every
   other caller of the same chain keep eth-tester's.
3. On this node nothing can come between a simulation and the transaction it vets (every call
   runs on the one node thread, and blocks are mined as transactions arrive), so the sender
   need not run a transaction twice: `send_or_undo` applies it once and, if it reverted, puts
   the chain back as it was before (the block, the nonce and the fee gone), which is what a
   simulation that caught the revert would have left.
"""

from __future__ import annotations

import threading
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any

_LOCK = threading.Lock()
_ATTRIBUTE = "_proofmint_node_executor"


def is_in_process(web3: Any) -> bool:
    """True for web3's eth-tester provider and its subclasses (ape's `ApeTester`)."""
    from web3.providers.eth_tester import EthereumTesterProvider

    return isinstance(getattr(web3, "provider", None), EthereumTesterProvider)


def node_executor(web3: Any) -> Executor | None:
    """The one thread that talks to an in-process node; None for a remote node."""
    if not is_in_process(web3):
        return None
    provider = web3.provider
    with _LOCK:
        executor = getattr(provider, _ATTRIBUTE, None)
        if executor is None:
            executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="evm")
            setattr(provider, _ATTRIBUTE, executor)
    return executor


def _one_shot(state: Any, transaction: Any) -> int:
    from eth.vm.spoof import SpoofTransaction

    snapshot = state.snapshot()
    try:
        computation = state.apply_transaction(SpoofTransaction(transaction, gas=state.gas_limit, gas_price=0))
        if computation.is_error:
            raise computation.error
        used = int(transaction.intrinsic_gas) + int(computation.get_gas_used())
    finally:
        state.revert(snapshot)
    return min(int(state.gas_limit), used + used // 63 + 1)


def _pyevm_chain(web3: Any) -> Any:
    backend = getattr(getattr(web3.provider, "ethereum_tester", None), "backend", None)
    return getattr(backend, "chain", None)


def estimate_gas_once(web3: Any, transaction: dict[str, Any]) -> int:
    """`eth_estimateGas` of `transaction` by one execution (see the module docstring), on an
    in-process py-evm chain; any other node's own estimate elsewhere. Run it on the node thread
    (`node_executor`): the one-execution estimator is installed for this call and removed
    after it, whatever happens, so nothing else on the chain ever sees it. Reverts surface as
    from `web3.eth.estimate_gas`."""
    chain = _pyevm_chain(web3) if is_in_process(web3) else None
    if chain is None:
        return int(web3.eth.estimate_gas(transaction))
    saved = chain.gas_estimator
    chain.gas_estimator = _one_shot
    try:
        return int(web3.eth.estimate_gas(transaction))
    finally:
        chain.gas_estimator = saved


def send_or_undo(web3: Any, raw: bytes) -> Any:
    """Broadcasts `raw` on an in-process node, which mines it at once (run on the node thread).
    Its receipt if it succeeded; if it reverted, the chain is put back to the block before it (as
    if it had never been sent) and False is returned. Errors of the broadcast itself propagate."""
    backend = web3.provider.ethereum_tester.backend
    before = backend.take_snapshot()  # the latest block's hash
    receipt = web3.eth.get_transaction_receipt(web3.eth.send_raw_transaction(raw))
    if int(receipt["status"]) == 1:
        return receipt
    backend.revert_to_snapshot(before)
    return False
