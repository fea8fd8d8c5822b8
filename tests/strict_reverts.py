"""`ape.reverts`, made strict for custom errors.

`ape.reverts(SomeError, **inputs)` passes for any revert ape fails to decode: revert data that
holds a 0x27 byte on the embedded chain (ape parses the message Python writes as b"..."), an
error bubbled up from a contract the called one called (ape decodes only the called contract's),
an error type named on `project.X` rather than on a deployed instance. Such a check cannot fail.
`StrictReverts` keeps ape's checks and, where ape did not decode the revert, decodes the raw
revert data against the expected error's ABI: the selector and every named input must match.
`tests/conftest.py` installs it as `ape.reverts` for the whole suite."""

from __future__ import annotations

import ast
from types import TracebackType
from typing import Any

from ape.exceptions import ContractLogicError, CustomError
from ape.pytest.contextmanagers import RevertsContextManager
from eth_abi.abi import decode
from eth_utils.crypto import keccak


def revert_data(error: ContractLogicError) -> bytes | None:
    """The raw revert data of an error ape did not decode, or None when it has none."""
    message = str(error.revert_message)
    if message.startswith("0x"):
        try:
            return bytes.fromhex(message[2:])
        except ValueError:
            return None
    if message.startswith(("b'", 'b"')):
        return bytes(ast.literal_eval(message))
    return None


def same(expected: Any, actual: Any) -> bool:
    """An expected input (an account or contract stands for its address) and a decoded one."""
    expected = getattr(expected, "address", expected)
    if isinstance(actual, str) and isinstance(expected, str):
        return actual.lower() == expected.lower()
    if isinstance(expected, bytes | bytearray) and isinstance(actual, bytes | bytearray):
        return bytes(expected) == bytes(actual)
    if isinstance(expected, list | tuple) and isinstance(actual, list | tuple):
        return len(expected) == len(actual) and all(same(e, a) for e, a in zip(expected, actual, strict=True))
    return bool(expected == actual)


def check_raw(expected: type[CustomError], raised: BaseException, inputs: dict[str, Any]) -> None:
    """Asserts that `raised` carries `expected` with `inputs`, from its raw revert data."""
    data = revert_data(raised) if isinstance(raised, ContractLogicError) else None
    assert data is not None, f"expected {expected.__name__}, got {raised!r}"
    abi = expected.abi  # type: ignore[attr-defined]
    assert data[:4] == keccak(text=abi.selector)[:4], f"expected {abi.selector}, got 0x{data.hex()}"
    values = decode([i.canonical_type for i in abi.inputs], data[4:])
    got = dict(zip([i.name for i in abi.inputs], values, strict=True))
    for name, value in inputs.items():
        assert same(value, got[name]), f"{expected.__name__}.{name}: expected {value!r}, got {got[name]!r}"


class StrictReverts(RevertsContextManager):
    """See the module docstring."""

    def __exit__(
        self, exc_type: type[BaseException] | None, exc_value: BaseException | None, traceback: TracebackType | None
    ) -> bool:
        handled = super().__exit__(exc_type, exc_value, traceback)
        expected = self.expected_message
        if isinstance(expected, type) and issubclass(expected, CustomError) and exc_value is not None:
            decoded = isinstance(exc_value, CustomError) and type(exc_value).__name__ == expected.__name__
            if not decoded:
                check_raw(expected, exc_value, self.error_inputs)
        return bool(handled)
