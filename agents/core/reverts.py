"""Simulate a contract call before sending it, and name the custom error when it would revert.

A transaction that would revert is caught here and never broadcast (it would only burn gas).
The revert data is matched against the custom errors of the contracts involved, so the operator
reads `ModelRegistry__WeightsAlreadyRegistered(weightsDigest=0x58…, existingId=1)` instead of hex.
"""

from __future__ import annotations

import ast
import contextlib
from collections.abc import Callable, Iterable
from typing import Any

from eth_abi.abi import decode
from eth_abi.exceptions import DecodingError
from eth_utils.crypto import keccak

from agents.core.errors import PermanentError

_ERROR_STRING = keccak(text="Error(string)")[:4]
_PANIC = keccak(text="Panic(uint256)")[:4]


class WouldRevertError(PermanentError):
    """A simulated call reverted; nothing was sent. The message names the error and its arguments."""


def _canonical(param: dict[str, Any]) -> str:
    kind = str(param["type"])
    if kind.startswith("tuple"):
        inner = ",".join(_canonical(c) for c in param.get("components", []))
        return f"({inner}){kind[len('tuple') :]}"
    return kind


def error_table(abis: Iterable[Iterable[dict[str, Any]]]) -> dict[bytes, tuple[str, list[str], list[str]]]:
    """4-byte selector -> (name, argument names, argument types) over the errors of some ABIs."""
    table: dict[bytes, tuple[str, list[str], list[str]]] = {}
    for abi in abis:
        for item in abi:
            if item.get("type") != "error":
                continue
            types = [_canonical(p) for p in item.get("inputs", [])]
            names = [str(p.get("name") or f"arg{i}") for i, p in enumerate(item.get("inputs", []))]
            table[keccak(text=f"{item['name']}({','.join(types)})")[:4]] = (str(item["name"]), names, types)
    return table


def _show(value: Any) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return str(value)


def describe_revert(data: bytes, table: dict[bytes, tuple[str, list[str], list[str]]]) -> str:
    """A readable line for revert data."""
    if not data:
        return "reverted without data (out of gas, a failed call without reason, or a non-contract target)"
    selector, body = data[:4], data[4:]
    try:
        if selector == _ERROR_STRING:
            return f"Error({decode(['string'], body)[0]!r})"
        if selector == _PANIC:
            return f"Panic(0x{decode(['uint256'], body)[0]:02x})"
        if selector in table:
            name, names, types = table[selector]
            values = decode(types, body)
            return f"{name}({', '.join(f'{n}={_show(v)}' for n, v in zip(names, values, strict=True))})"
    except (DecodingError, ValueError, OverflowError):
        pass  # undecodable revert data is still worth showing raw
    return f"unknown error 0x{data.hex()}"


def _revert_data(exc: Exception) -> bytes | None:
    data = getattr(exc, "data", None)
    if isinstance(data, dict):
        data = data.get("data")
    if isinstance(data, str) and data.startswith("0x"):
        try:
            return bytes.fromhex(data[2:])
        except ValueError:
            return None
    return None


def _tester_revert_data(exc: BaseException) -> bytes | None:
    """The revert data of py-evm's eth-tester (ape's embedded chain), which web3's tester
    provider raises as `TransactionFailed` instead of `ContractLogicError`: the original
    exception in the chain carries the raw bytes."""
    seen: BaseException | None = exc
    while seen is not None:
        first = seen.args[0] if seen.args else None
        if isinstance(first, BaseException) and first.args:  # eth-tester wraps the error at times
            first = first.args[0]
        if type(seen).__name__ == "TransactionFailed":
            if isinstance(first, bytes):
                return first
            if isinstance(first, str):  # py-evm's backend passes the bytes' repr
                text = first.removeprefix("execution reverted: ")
                if text[:2] in ("b'", 'b"'):
                    with contextlib.suppress(ValueError, SyntaxError):
                        value = ast.literal_eval(text)
                        if isinstance(value, bytes):
                            return value
        seen = seen.__context__
    return None


def preflight(web3: Any, tx: dict[str, Any], table: dict[bytes, tuple[str, list[str], list[str]]]) -> bytes:
    """eth_call `tx` ({from, to, data, value}) on the pending state; return its output, or raise
    WouldRevertError naming the custom error."""
    return bytes(_decoding_reverts(lambda: web3.eth.call(tx, "pending"), table))


def preflight_gas(
    estimate: Callable[[dict[str, Any]], int], tx: dict[str, Any], table: dict[bytes, tuple[str, list[str], list[str]]]
) -> int:
    """`estimate(tx)` (an `eth_estimateGas`, which executes it): its gas, or WouldRevertError
    naming the custom error. One execution instead of a call and an estimate, where executions
    are dear (the in-process chain)."""
    return int(_decoding_reverts(lambda: estimate(tx), table))


def _decoding_reverts(function: Any, table: dict[bytes, tuple[str, list[str], list[str]]]) -> Any:
    from web3.exceptions import ContractLogicError

    try:
        return function()
    except ContractLogicError as exc:
        data = _revert_data(exc)
        detail = describe_revert(data, table) if data is not None else str(exc.message or exc)
        raise WouldRevertError(f"would revert: {detail}") from exc
    except Exception as exc:
        if type(exc).__name__ != "TransactionFailed":
            raise
        data = _tester_revert_data(exc)
        detail = describe_revert(data, table) if data else str(exc)
        raise WouldRevertError(f"would revert: {detail}") from exc
